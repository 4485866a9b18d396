"""Stage 2, plan: the config resolved against git into exactly what will be built.

Every image and platform, every rendered tag and reference, every guest. `syntra plan`
prints it; the later stages (build, wasm, registry, supply, ci, release) read it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from syntra import refs
from syntra.config import Loaded
from syntra.config.model import Config, Guest, GuestBase, Image, PythonGuest, Web
from syntra.formats import rfc3339
from syntra.paths import DEFAULT_TEMPLATE, SPECS_DIR, plugin_file, web_dir
from syntra.templating import render_inline
from syntra.versioning import BuildVersion, derive, last_change, read_git

BASE_IMAGE_ARG = "BASE_IMAGE"


@dataclass(frozen=True)
class Destination:
    """Where an artifact is pushed: registry host[/namespace], repository, tags."""

    registry: str | None
    insecure: bool
    repository: str
    tags: list[str]
    refs: list[str]


@dataclass(frozen=True)
class CachePlan:
    """Where an image's layer cache lives (syntra.yaml `cache`): a repository of its own,
    apart from the image's, so no cache tag is ever one a user pulls."""

    registry: str
    """`host[/namespace]` of the registry under `registries`."""
    insecure: bool
    repository: str
    mode: str
    """buildx's `min` or `max`."""
    ttl: str | None
    """podman's `--cache-ttl`."""
    write: bool

    @property
    def reference(self) -> str:
        return f"{self.registry}/{self.repository}"


@dataclass(frozen=True)
class ImagePlan:
    name: str
    destination: Destination
    platforms: list[str]
    context: str
    dockerfile: str
    containerfile: str
    template: str | None
    source_dockerfile: str | None
    base: str | None
    args: dict[str, str]
    labels: dict[str, str]
    secrets: list[dict[str, str]]
    target: str | None
    plugins: list[str]
    cpus: int
    memory: int
    vars: dict[str, Any]
    tests: list[dict[str, Any]] = field(default_factory=list)
    mirrors: list[Destination] = field(default_factory=list)
    """Further registries that get the same digests (a list under `registry:`)."""
    cache: CachePlan | None = None
    builders: dict[str, str] = field(default_factory=dict)
    """buildx builder by platform (syntra.yaml `builders`); a platform not named uses the
    current builder."""

    @property
    def destinations(self) -> list[Destination]:
        return [self.destination, *self.mirrors]


@dataclass(frozen=True)
class WebPlan:
    """A guest's browser bundle: where it is written, and whether it goes to the registry
    as a referrer of the guest's artifact."""

    dir: str
    title: str
    publish: bool


@dataclass(frozen=True)
class GuestPlan:
    name: str
    language: str
    settings: Guest
    """The guest as syntra.yaml gives it: its language's own model (wasm/languages/)."""
    source: str
    optimize: str
    output: str
    limits: dict[str, int | None]
    tests: list[dict[str, Any]]
    destination: Destination
    source_date_epoch: int = 0
    """The last commit that changed the guest's sources (its build time): other commits
    leave its bytes, and its artifact, as they are."""
    mirrors: list[Destination] = field(default_factory=list)
    runtimes: list[str] = field(default_factory=lambda: ["wasmtime"])
    """The runtimes its tests run under; the first is the reference."""
    web: WebPlan | None = None

    @property
    def destinations(self) -> list[Destination]:
        return [self.destination, *self.mirrors]

    def compile_inputs(self) -> dict[str, Any]:
        """What the compiled bytes depend on besides the sources: the language's settings."""
        shared = set(GuestBase.model_fields)
        return self.settings.model_dump(mode="json", exclude=shared)


@dataclass(frozen=True)
class Output:
    """An artifact the run pushes (GoReleaser's artifact list): what supply signs,
    verify checks and release tags, in every registry it goes to."""

    name: str
    kind: Literal["image", "wasm"]
    destinations: list[Destination]
    task: str
    """The doit task that pushes it: supply runs after it, on its record."""


@dataclass(frozen=True)
class Plan:
    project: str
    version: str
    git: dict[str, Any]
    source_date_epoch: int
    config_digest: str
    builder: str
    variables: dict[str, Any] = field(default_factory=dict)
    """What tag, arg and test templates see: version, semver, git, source_date_epoch."""
    images: list[ImagePlan] = field(default_factory=list)
    guests: list[GuestPlan] = field(default_factory=list)
    matrix: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """One line each for what resolving skipped (a tag that renders empty); the command
    line prints them."""

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        del data["warnings"]
        for shown, guest in zip(data["guests"], self.guests, strict=True):
            shown["settings"] = guest.compile_inputs()
        return data

    def image(self, name: str) -> ImagePlan:
        return next(image for image in self.images if image.name == name)

    def guest(self, name: str) -> GuestPlan:
        return next(guest for guest in self.guests if guest.name == name)

    def outputs(self) -> list[Output]:
        """Every image, then every guest that has a registry."""
        found = [Output(i.name, "image", i.destinations, f"docker:{i.name}") for i in self.images]
        return found + [
            Output(g.name, "wasm", g.destinations, f"wasm:{g.name}.publish")
            for g in self.guests
            if g.destination.registry
        ]


def build_plan(loaded: Loaded, version: BuildVersion | None = None) -> Plan:
    """Resolve `loaded` into a Plan; tag errors point back into syntra.yaml."""
    config = loaded.config
    version = version or derive(read_git(loaded.root), config.project.version)
    context = version.template_context()
    warnings: list[str] = []
    images = [
        _image(loaded, name, image, context, version, warnings)
        for name, image in config.images.items()
    ]
    guests = [_guest(loaded, name, guest, context, warnings) for name, guest in config.wasm.items()]
    return Plan(
        project=config.project.name,
        version=version.version,
        git=dataclasses.asdict(version.git),
        source_date_epoch=version.source_date_epoch,
        config_digest=loaded.digest,
        builder=config.builder,
        variables=context,
        images=images,
        guests=guests,
        matrix=[{"image": i.name, "platform": p} for i in images for p in i.platforms],
        warnings=list(dict.fromkeys(warnings)),
    )


def _destinations(
    loaded: Loaded,
    section: str,
    name: str,
    artifact: Image | GuestBase,
    context: dict[str, Any],
    warnings: list[str],
) -> list[Destination]:
    """Where an artifact goes: one destination per registry, the first where it is built."""
    config = loaded.config
    chosen = artifact.registry or config.defaults.registry or next(iter(config.registries), None)
    names = [chosen] if isinstance(chosen, str) or chosen is None else chosen
    repo = artifact.repository or f"{config.project.name}/{name}"
    rendered = _tags(loaded, (section, name), artifact.tags, {**context, "name": name}, warnings)
    found = []
    for registry_name in names:
        entry = config.registries.get(registry_name) if registry_name else None
        host = entry.url if entry else None
        found.append(
            Destination(
                registry=host,
                insecure=bool(entry and entry.insecure),
                repository=repo,
                tags=rendered,
                refs=[f"{host}/{repo}:{tag}" for tag in rendered] if host else [],
            )
        )
    return found


def _tags(
    loaded: Loaded,
    artifact: tuple[str, str],
    own: list[str] | None,
    context: dict[str, Any],
    warnings: list[str],
) -> list[str]:
    """Render tag templates; an error points at the template that produced it. `artifact`
    is its (section, name)."""
    section, name = artifact
    templates = own or loaded.config.defaults.tags
    where = (section, name, "tags") if own else ("defaults", "tags")
    for_whom = "" if own else f" (for {section} '{name}')"
    rendered: list[str] = []
    if context["git"]["dirty"]:
        # Uncommitted code never moves sha-<commit>, branch or release tags: only the dev
        # version (which ends in .dirty) names it.
        return [refs.tag_of(str(context["version"]))]
    skipped: list[str] = []
    for index, template in enumerate(templates):
        tag = _render(loaded, (*where, index), template, context, for_whom)
        if not tag:  # e.g. a branch tag on a detached HEAD
            skipped.append(f"{'.'.join(map(str, (*where, index)))}: '{template}' renders "
                           f"empty here: skipped{for_whom}")  # fmt: skip
            continue
        if not refs.TAG_RE.match(tag):
            shown = f"'{template}' renders to '{tag}', which" if tag != template else f"'{tag}'"
            raise loaded.document.error(
                (*where, index), f"{shown} is not a valid tag: {refs.TAG_RULE}{for_whom}"
            )
        if tag not in rendered:
            rendered.append(tag)
    warnings.extend(skipped)
    return rendered


def _render(
    loaded: Loaded, where: tuple[str | int, ...], text: str, context: dict[str, Any], note: str = ""
) -> str:
    """A one-line template of syntra.yaml rendered; an error points at its position."""
    try:
        return render_inline(text, context)
    except ValueError as exc:
        raise loaded.document.error(where, f"{exc}{note}") from None


def _image(
    loaded: Loaded,
    name: str,
    image: Image,
    context: dict[str, Any],
    version: BuildVersion,
    warnings: list[str],
) -> ImagePlan:
    config: Config = loaded.config
    labels = {
        "org.opencontainers.image.title": name,
        "org.opencontainers.image.version": version.version,
        "org.opencontainers.image.revision": version.git.commit,
        "org.opencontainers.image.created": rfc3339(version.source_date_epoch),
    }
    source = config.project.source or version.git.remote
    if source:
        labels["org.opencontainers.image.source"] = source
    context = {**context, "name": name}
    args = {
        k: _render(loaded, ("images", name, "args", k), v, context) for k, v in image.args.items()
    }
    own_labels = {
        k: _render(loaded, ("images", name, "labels", k), v, context)
        for k, v in image.labels.items()
    }
    if image.base:
        args[BASE_IMAGE_ARG] = image.base
    destination, *mirrors = _destinations(loaded, "images", name, image, context, warnings)
    return ImagePlan(
        name=name,
        destination=destination,
        mirrors=mirrors,
        platforms=list(image.platforms or config.defaults.platforms),
        context=image.context,
        dockerfile=f"{SPECS_DIR}/{name}/Dockerfile",
        containerfile=f"{SPECS_DIR}/{name}/Containerfile",
        template=None if image.dockerfile else (image.template or DEFAULT_TEMPLATE),
        source_dockerfile=image.dockerfile,
        base=image.base,
        args=args,
        labels={**labels, **own_labels},
        secrets=[s.model_dump(exclude_none=True) for s in image.secrets],
        target=image.target,
        plugins=list(image.plugins),
        cpus=image.resources.cpus,
        memory=image.resources.memory,
        vars=image.vars,
        tests=_tests(loaded, name, image, context),
        cache=_cache(loaded, name, image, destination),
        builders=_builders(config, list(image.platforms or config.defaults.platforms)),
    )


def _cache(loaded: Loaded, name: str, image: Image, destination: Destination) -> CachePlan | None:
    """The image's cache, or the defaults', or none (`cache: false`, or neither set).
    Never the image's own repository: its cache tags would sit beside the releases."""
    config = loaded.config
    own = image.cache is not None
    chosen = config.defaults.cache if image.cache is None else image.cache
    if not chosen:
        return None
    entry = config.registries[chosen.registry]
    repository = chosen.repository or f"{destination.repository}/cache"
    if (entry.url, repository) == (destination.registry, destination.repository):
        where = ("images", name, "cache", "repository") if own else ("defaults", "cache")
        raise loaded.document.error(
            where, f"'{repository}' is the image's own repository; the cache needs its own"
        )
    return CachePlan(
        registry=entry.url,
        insecure=entry.insecure,
        repository=repository,
        mode=chosen.mode,
        ttl=chosen.ttl,
        write=chosen.write,
    )


def _builders(config: Config, platforms: list[str]) -> dict[str, str]:
    everywhere = config.builders.get("all")
    chosen = {p: config.builders.get(p, everywhere) for p in platforms}
    return {platform: name for platform, name in chosen.items() if name}


def test_variables(context: dict[str, Any], plugins: dict[str, str]) -> dict[str, Any]:
    """Template variables of image tests: the tag variables, and each bundled plugin's
    SHA-256 as `plugins['<guest>'].sha256`."""
    return {**context, "plugins": {name: {"sha256": digest} for name, digest in plugins.items()}}


def _tests(
    loaded: Loaded, name: str, image: Image, context: dict[str, Any]
) -> list[dict[str, Any]]:
    """The image's tests; their templates are tried now, with placeholder plugin digests,
    so `syntra validate` catches a misspelt variable."""
    trial = test_variables({**context, "name": name}, dict.fromkeys(image.plugins, "0" * 64))
    for index, test in enumerate(image.tests):
        if test.sha256:
            _render(loaded, ("images", name, "tests", index, "sha256"), test.sha256, trial)
        for key, value in (test.metadata.labels if test.metadata else {}).items():
            where = ("images", name, "tests", index, "metadata", "labels", key)
            _render(loaded, where, value, trial)
    return [test.model_dump(exclude_defaults=True) for test in image.tests]


def _guest(
    loaded: Loaded, name: str, guest: Guest, context: dict[str, Any], warnings: list[str]
) -> GuestPlan:
    destination, *mirrors = _destinations(loaded, "wasm", name, guest, context, warnings)
    planned = GuestPlan(
        name=name,
        language=guest.language,
        settings=guest,
        source=guest.source,
        optimize=guest.optimize,
        output=str(plugin_file(Path(), name)),
        limits=guest.limits.model_dump(),
        tests=[test.model_dump(exclude_unset=True) for test in guest.tests],
        destination=destination,
        mirrors=mirrors,
        runtimes=list(guest.runtimes),
        web=_web(name, guest),
    )
    sources = [guest.source, *([guest.wit] if isinstance(guest, PythonGuest) and guest.wit else [])]
    fallback, head = int(context["source_date_epoch"]), str(context["git"]["commit"])
    built_at = last_change(loaded.root, sources, fallback, head)
    return dataclasses.replace(planned, source_date_epoch=built_at)


def _web(name: str, guest: Guest) -> WebPlan | None:
    if guest.web is False:
        return None
    options = guest.web if isinstance(guest.web, Web) else Web()
    return WebPlan(str(web_dir(Path(), name)), options.title or name, options.publish)
