"""Build an image for its platforms and publish it: what `doit docker` and
`syntra build` / `syntra merge` run for one image."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, cast

from syntra import process, telemetry
from syntra.errors import SyntraError, ToolError
from syntra.image import buildsecrets, imagetest
from syntra.image.build import (
    Backend,
    BuildRequest,
    LayoutBuilder,
    PushingBuilder,
    layout_builder,
)
from syntra.image.build.cache import CacheUse, failed_on_cache, usable, warn
from syntra.image.inputs import Job, inputs_tag
from syntra.image.publish import (
    BuildFacts,
    LayoutImage,
    Pushed,
    base_digest,
    image_record,
    index_document,
    note_base_blobs,
    publish_index,
    push_images,
    read_layout,
)
from syntra.image.testbox import BoxFactory, buildah_box, require_buildah
from syntra.invocation import invocation
from syntra.oci.locate import Registries, Where
from syntra.paths import build_dir, build_log, slug
from syntra.records import (
    ImageRecord,
    PlatformImage,
    TestResult,
    digest_file,
    find_record,
    read_digest_file,
    write_digest_file,
    write_record,
)
from syntra.wasm import manifest as plugin_manifest

if TYPE_CHECKING:
    from syntra.registry.transfer import Content


def already_built(job: Job, where: Where, platform: str) -> PlatformImage | None:
    """The platform image the registry holds for exactly this platform's inputs."""
    tag = inputs_tag(job, platform)
    manifest = where.registry.find_manifest(where.path, tag)
    if manifest is None:
        return None
    content = len(manifest.data) + sum(blob["size"] for blob in manifest.children())
    return PlatformImage(
        platform=platform,
        digest=manifest.digest,
        size=len(manifest.data),
        media_type=manifest.media_type,
        content_bytes=content,
        inputs=tag,
    )


def finish(job: Job, where: Where, pushed: Pushed, retagged: bool = False) -> ImageRecord:
    """The record of what was pushed, with the build's facts (base, inputs), written; then
    the same digests copied to every further registry of the image."""
    record = image_record(job.plan, job.image, pushed)
    base = record.base or job.base_reference
    record = record.model_copy(
        update={"base": base, "inputs": job.inputs_digest, "retagged": retagged}
    )
    write_record(job.root, record)
    if job.image.mirrors:
        from syntra.registry.transfer import mirror

        mirror(job.ctx.registries, where, record.digest, job.image.mirrors)
    return record


def _reuse(job: Job, where: Where) -> ImageRecord | None:
    """When every platform is already built from these inputs: the index over them with
    this commit's tags, and nothing built."""
    found = [already_built(job, where, platform) for platform in job.image.platforms]
    children = [child for child in found if child is not None]
    if len(children) != len(found):
        return None
    earlier = find_record(job.root, job.image.name)  # keeps the facts of the build
    known = {p.digest: p for p in earlier.platforms} if isinstance(earlier, ImageRecord) else {}
    children = [known.get(child.digest, child) for child in children]
    digest = publish_index(where, job.image.destination, children)
    return finish(job, where, Pushed(digest, children), retagged=True)


def _request(
    job: Job, platform: str, builder: LayoutBuilder, cache: CacheUse | None
) -> BuildRequest:
    work = build_dir(job.root, job.image.name)
    work.mkdir(parents=True, exist_ok=True)
    return BuildRequest(
        image=job.image,
        platform=platform,
        root=job.root,
        source_date_epoch=job.plan.source_date_epoch,
        args=job.args,
        layout=work / slug(platform),
        log=build_log(job.root, job.image.name, platform, builder.name),
        insecure_pull=job.insecure_pull,
        stage_images=job.stage_images,
        cache=cache,
        buildx_builder=job.image.builders.get(platform),
    )


def build_platform(
    job: Job, platform: str, builder: LayoutBuilder, cache: CacheUse | None = None
) -> LayoutImage:
    """Build one platform into an OCI layout, with the facts of the build. A build that
    fails on its cache (it names the cache registry) is built again without it."""
    request = _request(job, platform, builder, cache)
    watched = {
        "syntra.image": job.image.name,
        "syntra.platform": platform,
        "syntra.builder": builder.name,
    }
    with telemetry.span(f"build {job.image.name} {platform}", watched):
        try:
            builder.build(request)
        except ToolError as exc:
            if cache is None or not failed_on_cache(cache, str(exc)):
                raise
            warn(job.image.name, cache.plan.reference, str(exc))
            builder.build(replace(request, cache=None))
    base = job.base_reference
    found = base_digest(job.ctx.registries, base, platform) if base else None
    facts = BuildFacts(builder.name, invocation(), base, found, inputs_tag(job, platform))
    return read_layout(request.layout, platform, facts)


def _note_base(job: Job, where: Where) -> None:
    """The base image's blobs, noted for cross-repository mounts."""
    if job.base:
        note_base_blobs(job.ctx.registries, job.base.reference, where)


def _ready(job: Job, platforms: list[str]) -> None:
    """What needs no network: the platforms are the image's, its build secrets are set,
    and the test runtime is there (before the build, not after it)."""
    for platform in platforms:
        if platform not in job.image.platforms:
            listed = ", ".join(job.image.platforms)
            raise SyntraError(f"{job.image.name} is not built for {platform} (only {listed})")
    buildsecrets.check(job.root, [job.image])
    if job.image.tests:
        require_buildah()


def build_and_test(
    job: Job, backend: Backend, platforms: list[str]
) -> tuple[list[LayoutImage], list[TestResult]]:
    """Build `platforms` and run the image's tests on each; nothing is pushed."""
    builder = layout_builder(backend, "building without pushing")
    _ready(job, platforms)
    return _built_and_tested(job, builder, platforms, None)


def _built_and_tested(
    job: Job, builder: LayoutBuilder, platforms: list[str], publishing: Registries | None
) -> tuple[list[LayoutImage], list[TestResult]]:
    """Built and tested; `publishing` is where the image goes (None: nowhere, and no
    registry is asked what its plugins were published as)."""
    if job.image.plugins:  # once: every platform bundles the same plugins
        plugin_manifest.write_plugins_json(publishing, job.plan, job.root, job.image)
    cache = usable(job.ctx.registries, job.image, job.ctx.snapshot)
    built = [build_platform(job, p, builder, cache) for p in platforms]
    boxes: dict[str, BoxFactory] = {
        image.platform.platform: partial(buildah_box, image.layout) for image in built
    }
    return built, imagetest.run_tests(job.image, job.plan, job.root, boxes)


def publish_image(job: Job, backend: Backend) -> ImageRecord:
    """Build, test and push every platform of `job.image` with its index and tags, and
    write its record: through an OCI layout each, or by a builder that pushes itself
    (which returns what it pushed; recording it is done here, for both). First the
    registry is asked what it holds: an image already built from these inputs, by any
    backend, is only retagged, and nothing is built or sent."""
    if isinstance(backend, LayoutBuilder):
        _ready(job, job.image.platforms)
    where = job.ctx.registries.locate(job.image.destination)
    where.registry.check_push(where.path)
    reused = _reuse(job, where)
    if reused is not None:
        return reused
    if isinstance(backend, LayoutBuilder):
        return _build_and_push(job, backend, where)
    return finish(job, where, cast(PushingBuilder, backend).build_and_push(job, where))


def _build_and_push(job: Job, builder: LayoutBuilder, where: Where) -> ImageRecord:
    """Every platform of the image, tested, then all of them pushed together with their
    index and tags; returns the record, which counts the bytes this push sent."""
    built, tested = _built_and_tested(job, builder, job.image.platforms, job.ctx.registries)
    _note_base(job, where)
    cache_tags = {inputs_tag(job, image.platform.platform): image for image in built}
    sent = push_images(where, built, job.image.destination, cache_tags)
    assert sent.digest is not None
    children = [image.platform for image in built]
    return finish(job, where, Pushed(sent.digest, children, sent.uploaded, tested))


def build_to(job: Job, backend: Backend, platforms: list[str], output: str) -> str:
    """Build and test `platforms`, then write them to `output` (oci:DIR[:TAG],
    oci-archive:FILE[:TAG], docker-archive:FILE): nothing pushed, no registry needed but
    for the base image."""
    from syntra.registry.transfer import write_content

    built, _ = build_and_test(job, backend, platforms)
    content = _content(built)
    if output != "load":
        try:
            return write_content(job.ctx.registries, output, content, insecure=False)
        except OSError as exc:
            raise ToolError(f"--output {output}: {exc.strerror or exc}") from None
    program = engine_program(backend)
    written = load(program, content)
    return f"{program} image store ({written.split('(', 1)[1].rstrip(')')})"


def engine_program(backend: Backend) -> str:
    """The engine whose image store a backend's builds load into."""
    return "podman" if backend.name == "podman" else "docker"


def _content(built: list[LayoutImage]) -> Content:
    from syntra.registry.transfer import Content

    index = index_document([image.platform for image in built])
    content = Content(index.digest)
    for image in built:
        for blob in image.blobs:
            assert blob.path is not None
            content.blobs[blob.digest] = blob.path
        content.documents[image.manifest.digest] = image.manifest
    content.documents[index.digest] = index
    return content


def load(program: str, content: Content) -> str:
    """This host's platform of `content` into `program`'s image store; what was written."""
    from syntra.registry.transfer import write_content

    with tempfile.TemporaryDirectory(prefix="syntra-load-") as folder:
        archive = Path(folder) / "image.tar"
        written = write_content(Registries(), f"docker-archive:{archive}", content, insecure=False)
        process.run([program, "load", "-i", str(archive)], f"{program} load")
    return written


def load_built(job: Job, backend: Backend, platform: str) -> str:
    """Build and test one platform and load it into the engine; its image ID (the config
    digest: docker-archive keeps it)."""
    built, _ = build_and_test(job, backend, [platform])
    load(engine_program(backend), _content(built))
    config: str = built[0].manifest.json()["config"]["digest"]
    return config


def push_by_digest(job: Job, platform: str, backend: Backend) -> Path:
    """CI fan-out: build one platform, push it untagged, write its digest file."""
    builder = layout_builder(backend, "--push-by-digest")
    _ready(job, [platform])
    where = job.ctx.registries.locate(job.image.destination)
    where.registry.check_push(where.path)
    built, _ = _built_and_tested(job, builder, [platform], job.ctx.registries)
    _note_base(job, where)
    push_images(where, built, None, {inputs_tag(job, platform): built[0]})
    return write_digest_file(job.root, job.image.name, built[0].platform)


def merge(job: Job) -> ImageRecord:
    """Assemble the index from the digest files of every platform and push it with tags.
    The base each platform was built from is read from its digest file, as its build
    recorded it: not resolved again."""
    where = job.ctx.registries.locate(job.image.destination)
    children = []
    for platform in job.image.platforms:
        child = (
            read_digest_file(job.root, job.image.name, platform)
            if digest_file(job.root, job.image.name, platform).exists()
            else already_built(job, where, platform)  # unchanged: not built in this run
        )
        if child is None:
            raise SyntraError(
                f"{job.image.name}: {platform} was not built (no digest file, and nothing "
                "in the registry is built from its inputs)"
            )
        if where.registry.head_manifest(where.path, child.digest) != child.digest:
            raise SyntraError(
                f"{job.image.name}: {child.digest} ({platform}) is not in the registry"
            )
        children.append(child)
    digest = publish_index(where, job.image.destination, children)
    return finish(job, where, Pushed(digest, children))
