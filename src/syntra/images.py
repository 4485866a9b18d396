"""Build an image for its platforms and publish it: what `doit docker` and
`syntra build` / `syntra merge` run for one image."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from syntra import imagetest, preflight
from syntra.build import Builder, BuildRequest
from syntra.build.container import (
    STAGING_TAG,
    AppleContainer,
    repair_with_skopeo,
    staging_ref,
    work_log,
)
from syntra.build.context import BuildContext
from syntra.config import Loaded
from syntra.errors import SyntraError
from syntra.invocation import invocation
from syntra.layout import STATE_DIR, plugin_file, slug
from syntra.oci import digest_of, push
from syntra.plan import BASE_IMAGE_ARG, ImagePlan, Plan
from syntra.publish import (
    BuildFacts,
    LayoutImage,
    Where,
    base_digest,
    image_record,
    index_children,
    index_document,
    locate,
    note_base_blobs,
    pin,
    publish_index,
    push_images,
    read_layout,
)
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
from syntra.testbox import BoxFactory, apple_boxes, buildah_box, require_buildah
from syntra.toolerrors import tool_failed
from syntra.wasm import manifest as plugin_manifest


@dataclass(frozen=True)
class Job:
    loaded: Loaded
    plan: Plan
    image: ImagePlan

    @property
    def root(self) -> Path:
        return self.loaded.root

    @cached_property
    def shared_inputs(self) -> dict[str, Any]:
        """Computed once per job: hashing the context and pinning the base cost time."""
        return _shared_inputs(self)


def build_inputs(job: Job) -> dict[str, Any]:
    """Everything that must trigger a rebuild when it changes (doit's uptodate)."""
    image = job.image
    try:
        spec = (job.root / image.dockerfile).read_text()
    except OSError:
        raise SyntraError(f"{image.dockerfile}: not rendered yet; run `doit render`") from None
    return {
        "spec": spec,
        "context": BuildContext(job.root / image.context).digest(),
        "base": pin(job.loaded.config, image.base)[0] if image.base else None,
        "args": image.args,
        "labels": image.labels,
        "platforms": image.platforms,
        "target": image.target,
        "secrets": [secret["id"] for secret in image.secrets],
        "refs": image.destination.refs,
        # Plugin files are doit file_deps of the image tasks: doit tracks their bytes.
        "plugins": image.plugins,
        "plugin_limits": [g.limits for g in job.plan.guests if g.name in image.plugins],
        "tests": image.tests,
    }


PER_COMMIT_LABELS = (
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.created",
)
"""Labels that change with every commit but say nothing about what the image holds:
left out of the inputs digest, so an unchanged image keeps the labels of the commit
that built it."""


def inputs_tag(job: Job, platform: str) -> str:
    """`inputs-<sha256>` of what one platform image is built from; the registry tag that
    finds an image already built from exactly these inputs."""
    encoded = json.dumps({**job.shared_inputs, "platform": platform}, sort_keys=True,
                         separators=(",", ":"), default=str).encode()  # fmt: skip
    return "inputs-" + hashlib.sha256(encoded).hexdigest()


def _shared_inputs(job: Job) -> dict[str, Any]:
    """What every platform of the image is built from, but the commit it is built at."""
    inputs = build_inputs(job)
    for varying in ("refs", "platforms"):
        inputs.pop(varying)
    inputs["labels"] = {k: v for k, v in inputs["labels"].items() if k not in PER_COMMIT_LABELS}
    inputs["plugin_bytes"] = [_plugin_digest(job.root, name) for name in job.image.plugins]
    return inputs


def _plugin_digest(root: Path, guest: str) -> str:
    try:
        return digest_of(plugin_file(root, guest).read_bytes())
    except OSError:
        shown = plugin_file(root, guest).relative_to(root)
        raise SyntraError(
            f"plugin {guest}: {shown} is missing; build it first (`doit wasm`)"
        ) from None


def already_built(job: Job, where: Where, platform: str) -> PlatformImage | None:
    """The platform image the registry holds for exactly this platform's inputs."""
    manifest = where.registry.find_manifest(where.path, inputs_tag(job, platform))
    if manifest is None:
        return None
    content = len(manifest.data) + sum(blob["size"] for blob in manifest.children())
    return PlatformImage(
        platform=platform,
        digest=manifest.digest,
        size=len(manifest.data),
        media_type=manifest.media_type,
        content_bytes=content,
    )


def _mirrored(job: Job, where: Where, record: ImageRecord) -> ImageRecord:
    """The index, as pushed, in every further registry of the image; the record."""
    if job.image.mirrors:
        from syntra.copy import mirror

        mirror(job.loaded.config, where, record.digest, job.image.mirrors)
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
    base = _pinned_args(job)[0].get(BASE_IMAGE_ARG)
    record = image_record(job.plan, job.image, digest, children, 0, base)
    record = record.model_copy(update={"retagged": True})
    write_record(job.root, record)
    return _mirrored(job, where, record)


def _pinned_args(job: Job) -> tuple[dict[str, str], bool]:
    """Build args with the base image pinned to its digest; whether its registry is HTTP."""
    args = dict(job.image.args)
    insecure = False
    if job.image.base:
        args[BASE_IMAGE_ARG], insecure = pin(job.loaded.config, job.image.base)
    return args, insecure


def _request(job: Job, platform: str, builder: Builder) -> BuildRequest:
    args, insecure = _pinned_args(job)
    work = job.root / STATE_DIR / "build" / job.image.name
    work.mkdir(parents=True, exist_ok=True)
    return BuildRequest(
        image=job.image,
        platform=platform,
        root=job.root,
        source_date_epoch=job.plan.source_date_epoch,
        args=args,
        layout=work / slug(platform),
        log=job.root / STATE_DIR / "logs" / job.image.name / f"{slug(platform)}-{builder.name}.log",
        insecure_pull=insecure,
    )


def build_platform(job: Job, platform: str, builder: Builder) -> LayoutImage:
    """Build one platform into an OCI layout, with the facts of the build."""
    request = _request(job, platform, builder)
    if job.image.plugins:
        plugin_manifest.write(job.loaded.config, job.plan, job.root, job.image)
    builder.build(request)
    base = request.args.get(BASE_IMAGE_ARG)
    found = base_digest(job.loaded.config, base, platform) if base else None
    facts = BuildFacts(builder.name, invocation(), base, found)
    return read_layout(request.layout, platform, facts)


def _base(job: Job, where: Where) -> str | None:
    """The base image pinned to its digest; its blobs are noted for cross-repository mounts."""
    base = _pinned_args(job)[0].get(BASE_IMAGE_ARG)
    if base:
        note_base_blobs(job.loaded.config, base, where)
    return base


def _ready(job: Job, platforms: list[str]) -> None:
    """What needs no network: the platforms are the image's, its build secrets are set,
    and the test runtime is there (before the build, not after it)."""
    for platform in platforms:
        if platform not in job.image.platforms:
            listed = ", ".join(job.image.platforms)
            raise SyntraError(f"{job.image.name} is not built for {platform} (only {listed})")
    preflight.build_secrets(job.root, [job.image])
    if job.image.tests:
        require_buildah()


def build_and_test(
    job: Job, builder: Builder, platforms: list[str]
) -> tuple[list[LayoutImage], list[TestResult]]:
    """Build `platforms` and run the image's tests on each; nothing is pushed."""
    _ready(job, platforms)
    return _built_and_tested(job, builder, platforms)


def _built_and_tested(
    job: Job, builder: Builder, platforms: list[str]
) -> tuple[list[LayoutImage], list[TestResult]]:
    built = [build_platform(job, p, builder) for p in platforms]
    boxes: dict[str, BoxFactory] = {
        image.platform.platform: partial(buildah_box, image.layout) for image in built
    }
    return built, imagetest.run_tests(job.image, job.plan, job.root, boxes)


def build_and_publish(job: Job, builder: Builder) -> ImageRecord:
    """Every platform of the image, tested, then all of them pushed together with their
    index and tags; returns the record."""
    _ready(job, job.image.platforms)
    where = locate(job.loaded.config, job.image.destination)
    where.registry.check_push(where.path)
    reused = _reuse(job, where)
    if reused is not None:
        return reused
    built, tested = _built_and_tested(job, builder, job.image.platforms)
    base = _base(job, where)
    before = where.registry.transfer.uploaded_bytes
    cache_tags = {inputs_tag(job, image.platform.platform): image for image in built}
    digest = push_images(where, built, job.image.destination, cache_tags)
    assert digest is not None
    uploaded = where.registry.transfer.uploaded_bytes - before
    children = [image.platform for image in built]
    record = image_record(job.plan, job.image, digest, children, uploaded, base, tested)
    write_record(job.root, record)
    return _mirrored(job, where, record)


def build_to(job: Job, builder: Builder, platforms: list[str], output: str) -> str:
    """Build and test `platforms`, then write them to `output` (oci:DIR[:TAG],
    oci-archive:FILE[:TAG], docker-archive:FILE): nothing pushed, no registry needed but
    for the base image."""
    from syntra.copy import Content, write

    built, _ = build_and_test(job, builder, platforms)
    index = index_document([image.platform for image in built])
    content = Content(index.digest)
    for image in built:
        for blob in image.blobs:
            assert blob.path is not None
            content.blobs[blob.digest] = blob.path
        content.documents[image.manifest.digest] = image.manifest
    content.documents[index.digest] = index
    if output != "load":
        try:
            return write(None, output, content, insecure=False)
        except OSError as exc:
            raise SyntraError(f"--output {output}: {exc.strerror or exc}") from None
    # `load`: this host's platform into the builder's own image store.
    program = "podman" if builder.name == "podman" else "docker"
    with tempfile.TemporaryDirectory(prefix="syntra-load-") as folder:
        archive = Path(folder) / "image.tar"
        written = write(None, f"docker-archive:{archive}", content, insecure=False)
        done = subprocess.run(
            [program, "load", "-i", str(archive)], capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise tool_failed(f"{program} load", done.returncode, done.stdout + done.stderr)
    return f"{program} image store ({written.split('(', 1)[1].rstrip(')')})"


def push_by_digest(job: Job, platform: str, builder: Builder) -> Path:
    """CI fan-out: build one platform, push it untagged, write its digest file."""
    _ready(job, [platform])
    where = locate(job.loaded.config, job.image.destination)
    where.registry.check_push(where.path)
    built, _ = _built_and_tested(job, builder, [platform])
    _base(job, where)
    push_images(where, built, None, {inputs_tag(job, platform): built[0]})
    return write_digest_file(job.root, job.image.name, built[0].platform)


def merge(job: Job) -> ImageRecord:
    """Assemble the index from the digest files of every platform and push it with tags."""
    where = locate(job.loaded.config, job.image.destination)
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
    # The base each platform was built from, as its build recorded it: not resolved again.
    base = children[0].base or _pinned_args(job)[0].get(BASE_IMAGE_ARG)
    record = image_record(job.plan, job.image, digest, children, 0, base)
    write_record(job.root, record)
    return _mirrored(job, where, record)


def build_with_container(job: Job, cli: AppleContainer) -> ImageRecord:
    """Apple's CLI builds every platform and pushes a staging tag; Syntra checks the
    index it left in the registry, repairs missing children, then tags and records."""
    image, destination = job.image, job.image.destination
    preflight.build_secrets(job.root, [image])
    if image.plugins:
        raise SyntraError(
            f"{image.name}: bundling plugins needs a named build context (--build-context), "
            "which Apple's container CLI does not have; build this image with podman or buildx"
        )
    where = locate(job.loaded.config, destination)
    where.registry.check_push(where.path)
    scheme = "http" if destination.insecure else "https"
    cli.ensure_started()
    if where.registry.login:
        login = where.registry.login
        cli.login(where.registry.host, scheme, login.username, login.password)
    args, _ = _pinned_args(job)
    cli.build(image, job.root, args, job.plan.source_date_epoch, work_log(job.root, image.name))
    staging = staging_ref(image)
    tested: list[TestResult] = []
    if image.tests:  # before the staging push: a failing image leaves the registry alone
        save = partial(cli.save, staging)
        with apple_boxes(cli.program, staging, image.platforms, save) as boxes:
            tested = imagetest.run_tests(image, job.plan, job.root, boxes)
    local = cli.local_digest(staging)
    cli.push(staging, scheme)
    children, missing = index_children(where, STAGING_TAG)
    if missing:
        repair_with_skopeo(cli, staging, destination.insecure)
        children, missing = index_children(where, STAGING_TAG)
        if missing:
            raise SyntraError(f"{image.name}: {', '.join(missing)} still missing after repair")
    index = where.registry.get_manifest(where.path, STAGING_TAG)
    if index.digest != local:
        raise SyntraError(
            f"{image.name}: the registry holds {index.digest}, the local image is {local}"
        )
    # Tags last: everything they point at is verified.
    push(where.registry, where.path, tags=dict.fromkeys(destination.tags, index))
    digest = index.digest
    record = image_record(job.plan, image, digest, children, 0, args.get(BASE_IMAGE_ARG), tested)
    write_record(job.root, record)
    return _mirrored(job, where, record)
