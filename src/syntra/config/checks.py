"""Checks that span several keys or look at the repository: names that must refer to
something, files that must exist, keys that exclude each other."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from syntra.config.model import Config, Guest, Image, ImageTest, Service
from syntra.config.yamldoc import Document, Loc
from syntra.errors import did_you_mean
from syntra.paths import (
    DEFAULT_TEMPLATE,
    TEMPLATES_DIR,
    find_template,
    is_file,
    path_hint,
    template_names,
)


def check(config: Config, document: Document, root: Path) -> None:
    """Raise the first ConfigError found, in file order within each section."""
    if config.defaults.registry:
        _registries(config, document, ("defaults", "registry"), config.defaults.registry)
    _unique(document, ("defaults", "platforms"), config.defaults.platforms)
    if config.defaults.cache:
        _registry(
            config, document, ("defaults", "cache", "registry"), config.defaults.cache.registry
        )
    for name, image in config.images.items():
        _image(config, document, root, ("images", name), image)
    for name, guest in config.wasm.items():
        if name in config.images:  # records, logs and supply notes are kept by name
            raise document.error(
                ("wasm", name),
                f"'{name}' is also an image; artifacts need distinct names",
                key=True,
            )
        _guest(config, document, root, ("wasm", name), guest)
    for name, service in config.services.items():
        _service(config, document, ("services", name), service)
    _no_cycle(config, document)
    signing = config.supply_chain.signing
    if signing.mode == "key" and not signing.key:
        raise document.error(
            ("supply_chain", "signing"), "missing required key 'key' (signing mode 'key')"
        )
    if signing.mode == "keyless" and not signing.identity:
        raise document.error(
            ("supply_chain", "signing"),
            "missing required key 'identity' (signing mode 'keyless'): a pattern of the "
            "signer's identity, e.g. 'https://github.com/OWNER/REPO/.github/workflows/.*'",
        )
    if signing.trust_config:
        _exists(document, root, ("supply_chain", "signing", "trust_config"), signing.trust_config)


def _image(config: Config, document: Document, root: Path, loc: Loc, image: Image) -> None:
    if image.template and image.dockerfile:
        raise document.error((*loc, "dockerfile"), "give either template or dockerfile, not both")
    if image.dockerfile:
        _exists(document, root, (*loc, "dockerfile"), image.dockerfile)
    else:
        template = image.template or DEFAULT_TEMPLATE
        if find_template(root, template) is None:
            hint = did_you_mean(template, template_names(root))
            raise document.error(
                (*loc, "template"),
                f"template '{template}' is not in {TEMPLATES_DIR}/ nor built in{hint}",
            )
    _exists(document, root, (*loc, "context"), image.context, dir=True)
    if image.platforms:
        _unique(document, (*loc, "platforms"), image.platforms)
    for index, secret in enumerate(image.secrets):
        if (secret.env is None) == (secret.src is None):
            raise document.error((*loc, "secrets", index), "give exactly one of env or src")
        if secret.src:
            _exists(document, root, (*loc, "secrets", index, "src"), secret.src)
    for index, plugin in enumerate(image.plugins):
        if plugin not in config.wasm:
            hint = did_you_mean(plugin, config.wasm)
            raise document.error(
                (*loc, "plugins", index), f"'{plugin}' is not a guest under wasm{hint}"
            )
    _unique(document, (*loc, "plugins"), image.plugins)
    _artifact_registry(config, document, loc, image.registry)
    if image.cache:
        _registry(config, document, (*loc, "cache", "registry"), image.cache.registry)
    for index, test in enumerate(image.tests):
        _image_test(document, (*loc, "tests", index), test)


TEST_KINDS = ("command", "file", "metadata", "http")
_OWN_KEYS = {
    "command": {"env", "timeout"},
    "file": {"exists", "mode", "owner", "contains", "sha256"},
    "metadata": set(),
    "http": {"timeout"},
}
_OWN_EXPECT = {"command": {"exit", "stdout", "stderr"}, "http": {"status", "body"}}
_MODE_RE = re.compile(r"^(0?[0-7]{3,4}|[-dlcbps][-rwxsStT]{9})$")
_OWNER_RE = re.compile(r"^\d+(:\d+)?$")


def _image_test(document: Document, loc: Loc, test: ImageTest) -> None:
    """Exactly one kind of test, and only the keys that kind reads."""
    kinds = [kind for kind in TEST_KINDS if getattr(test, kind) is not None]
    if len(kinds) != 1:
        found = f"has {' and '.join(kinds)}" if kinds else "has none"
        raise document.error(
            loc, f"a test needs exactly one of {', '.join(TEST_KINDS)}; it {found}"
        )
    kind = kinds[0]
    for key in sorted(test.model_fields_set - {"name", kind, "expect"} - _OWN_KEYS[kind]):
        raise document.error((*loc, key), f"'{key}' does not apply to a {kind} test")
    for key in sorted(test.expect.model_fields_set - _OWN_EXPECT.get(kind, set())):
        raise document.error((*loc, "expect", key), f"'{key}' does not apply to a {kind} test")
    if test.file is not None and not test.file.startswith("/"):
        raise document.error((*loc, "file"), f"'{test.file}' is not an absolute path")
    if test.mode is not None and not _MODE_RE.match(test.mode):
        raise document.error(
            (*loc, "mode"), f"'{test.mode}' is not a mode: write e.g. 0644 or -rw-r--r--"
        )
    if test.owner is not None and not _OWNER_RE.match(test.owner):
        raise document.error((*loc, "owner"), f"'{test.owner}' is not uid or uid:gid, e.g. 0:0")


def _guest(config: Config, document: Document, root: Path, loc: Loc, guest: Guest) -> None:
    for key in ("source", "wit"):  # the folders a guest of any language may name
        folder = getattr(guest, key, None)
        if folder:
            _exists(document, root, (*loc, key), folder, dir=True)
    _unique(document, (*loc, "runtimes"), guest.runtimes)
    if "wasm3" in guest.runtimes and guest.limits.fuel is not None:
        raise document.error(
            (*loc, "runtimes"), "wasm3 cannot meter fuel: drop limits.fuel or wasm3"
        )
    _artifact_registry(config, document, loc, guest.registry)


def _artifact_registry(
    config: Config, document: Document, loc: Loc, name: str | list[str] | None
) -> None:
    if name:
        _registries(config, document, (*loc, "registry"), name)
    elif len(config.registries) > 1 and not config.defaults.registry:
        raise document.error(
            loc,
            "several registries and no defaults.registry: name one with 'registry'",
            key=True,
        )


def _registries(config: Config, document: Document, loc: Loc, names: str | list[str]) -> None:
    """One registry name, or a list of them (each at its own position)."""
    if isinstance(names, str):
        _registry(config, document, loc, names)
    else:
        for index, name in enumerate(names):
            _registry(config, document, (*loc, index), name)


def _registry(config: Config, document: Document, loc: Loc, name: str) -> None:
    if name not in config.registries:
        hint = did_you_mean(name, config.registries)
        raise document.error(loc, f"'{name}' is not a registry under registries{hint}")


def _exists(document: Document, root: Path, loc: Loc, path: str, *, dir: bool = False) -> None:
    if not is_file(root / path, dir=dir):
        kind = "a directory" if dir else "a file"
        raise document.error(loc, f"'{path}' is not {kind}{path_hint(root, path, dir=dir)}")


def _unique(document: Document, loc: Loc, values: Iterable[str]) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise document.error((*loc, index), f"'{value}' is listed twice")
        seen.add(value)


def _service(config: Config, document: Document, loc: Loc, service: Service) -> None:
    if service.image not in config.images:
        _external_image(config, document, (*loc, "image"), service.image)
    for dependency, condition in service.dependencies().items():
        where = _dependency_loc(document, (*loc, "depends_on"), service, dependency)
        if dependency == loc[-1]:
            raise document.error(where, f"service '{dependency}' cannot depend on itself")
        if dependency not in config.services:
            hint = did_you_mean(dependency, config.services)
            raise document.error(where, f"'{dependency}' is not a service under services{hint}")
        if condition == "service_healthy" and config.services[dependency].healthcheck is None:
            raise document.error(
                where,
                f"service_healthy needs a healthcheck on service '{dependency}'; give it one, "
                "or wait for service_started",
            )


def _dependency_loc(document: Document, loc: Loc, service: Service, name: str) -> Loc:
    """Where a dependency is written: an item of the short list, or a key of the mapping."""
    item = (*loc, list(service.depends_on).index(name))
    return item if item in document.spots else (*loc, name)


def _external_image(config: Config, document: Document, loc: Loc, image: str) -> None:
    """Not one of the file's images: a reference pinned by a tag or a digest."""
    from syntra import refs

    hint = did_you_mean(image, config.images)
    try:
        ref = refs.parse_image_ref(image)
    except ValueError:
        ref = None
    if ref is None or not (ref.tag or ref.digest):
        raise document.error(
            loc,
            f"'{image}' is not an image under images nor a pinned reference "
            f"(name:tag or name@sha256:digest){hint}",
        )


def _no_cycle(config: Config, document: Document) -> None:
    """depends_on must leave an order to start the services in."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise document.error(("services", name, "depends_on"), f"a cycle: {cycle}")
        if name in done:
            return
        for dependency in config.services[name].dependencies():
            visit(dependency, [*path, name])
        done.add(name)

    for name in config.services:
        visit(name, [])
