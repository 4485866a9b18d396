"""Checks that span several keys or look at the repository: names that must refer to
something, files that must exist, keys that exclude each other."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from syntra.config.model import Config, Guest, Image
from syntra.config.yamldoc import Document, Loc
from syntra.errors import did_you_mean
from syntra.layout import (
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
        _registry(config, document, ("defaults", "registry"), config.defaults.registry)
    _unique(document, ("defaults", "platforms"), config.defaults.platforms)
    for name, image in config.images.items():
        _image(config, document, root, ("images", name), image)
    for name, guest in config.wasm.items():
        _guest(config, document, root, ("wasm", name), guest)
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


def _guest(config: Config, document: Document, root: Path, loc: Loc, guest: Guest) -> None:
    _exists(document, root, (*loc, "source"), guest.source, dir=True)
    if guest.wit:
        _exists(document, root, (*loc, "wit"), guest.wit, dir=True)
    if guest.language == "python" and not guest.world:
        raise document.error(loc, "missing required key 'world' (python guests)", key=True)
    _artifact_registry(config, document, loc, guest.registry)


def _artifact_registry(config: Config, document: Document, loc: Loc, name: str | None) -> None:
    if name:
        _registry(config, document, (*loc, "registry"), name)
    elif len(config.registries) > 1 and not config.defaults.registry:
        raise document.error(
            loc,
            "several registries and no defaults.registry: name one with 'registry'",
            key=True,
        )


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
