"""`syntra.lock`: every image a build starts from or a service runs, pinned by digest.

The file is JSON with sorted keys, one value a line, so a change reviews as a diff of
digests. It is read as untrusted input (bounded, every digest and platform checked),
and written atomically. Resolving references lives in `syntra.image.locking`; this
module knows the format, which references syntra.yaml uses, and whether the two agree.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syntra import refs
from syntra.config import Loaded
from syntra.errors import SyntraError
from syntra.fsutil import write_if_changed
from syntra.paths import LOCK_FILE
from syntra.plan import Plan

LOCK_VERSION = 1
MAX_LOCK_BYTES = 1 << 20
"""A lock of a thousand images is far below this; a larger file is not ours."""
ABOUT = (
    "Images syntra.yaml builds from or runs, pinned by digest. Written by `syntra lock`; "
    "refresh with `syntra lock --update`."
)
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?\Z")
RUN_LOCK = "run `syntra lock`"


@dataclass(frozen=True)
class Locked:
    """One reference as syntra.yaml or a spec writes it, and what it pointed at when
    locked: the index (or single manifest) digest, and the manifest of each platform."""

    reference: str
    digest: str
    platforms: dict[str, str]

    @property
    def pinned(self) -> str:
        """`name@sha256:…`: the reference a build pulls, by digest."""
        parsed = refs.parse_image_ref(self.reference)
        name = f"{parsed.domain}/{parsed.path}" if parsed.domain else parsed.path
        return f"{name}@{self.digest}"


@dataclass(frozen=True)
class Lock:
    images: dict[str, Locked] = field(default_factory=dict)

    def entry(self, reference: str) -> Locked:
        """The locked entry of `reference`; one line that says to lock it when missing."""
        found = self.images.get(reference)
        if found is None:
            raise SyntraError(f"{LOCK_FILE}: {reference} is not locked; {RUN_LOCK}")
        return found

    def dumps(self) -> bytes:
        """The same lock, the same bytes: sorted keys, two-space indent, final newline."""
        images = {
            ref: {"digest": e.digest, "platforms": dict(sorted(e.platforms.items()))}
            for ref, e in sorted(self.images.items())
        }
        document = {"version": LOCK_VERSION, "about": ABOUT, "images": images}
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class Use:
    """A reference syntra.yaml or a rendered spec uses, where, and the platforms the
    repository builds from it (`required`: each must be in the lock; a service's image
    is locked for those it has)."""

    reference: str
    where: tuple[str, ...]
    platforms: tuple[str, ...]
    required: bool = True


def parse(data: bytes, shown: str = LOCK_FILE) -> Lock:
    """A lock from its bytes; a malformed or foreign file is one line saying so."""
    if len(data) > MAX_LOCK_BYTES:
        raise SyntraError(f"{shown}: larger than {MAX_LOCK_BYTES} bytes; not a lock file")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SyntraError(f"{shown}: not JSON ({exc}); {RUN_LOCK} to write it again") from None
    if not isinstance(document, dict) or document.get("version") != LOCK_VERSION:
        version = document.get("version") if isinstance(document, dict) else None
        raise SyntraError(
            f"{shown}: version {version!r} is not one this Syntra reads ({LOCK_VERSION})"
        )
    images = document.get("images")
    if not isinstance(images, dict):
        raise SyntraError(f"{shown}: 'images' must be a mapping of reference to digests")
    return Lock({ref: _entry(shown, ref, body) for ref, body in images.items()})


def _entry(shown: str, reference: str, body: Any) -> Locked:
    where = f"{shown}: images[{json.dumps(reference)}]"
    try:
        parsed = refs.parse_image_ref(reference)
    except ValueError as exc:
        raise SyntraError(f"{where}: {exc}") from None
    if not isinstance(body, dict) or set(body) != {"digest", "platforms"}:
        raise SyntraError(f"{where}: expected exactly 'digest' and 'platforms'")
    digest, platforms = body["digest"], body["platforms"]
    if not isinstance(digest, str) or not refs.DIGEST_RE.match(digest):
        raise SyntraError(f"{where}.digest: not a sha256 digest")
    if parsed.digest and parsed.digest != digest:
        raise SyntraError(f"{where}.digest: the reference names {parsed.digest} itself")
    if not isinstance(platforms, dict):
        raise SyntraError(f"{where}.platforms: expected a mapping of platform to digest")
    for platform, child in platforms.items():
        if not _PLATFORM.match(platform):
            raise SyntraError(f"{where}.platforms: '{platform}' is not a platform")
        if not isinstance(child, str) or not refs.DIGEST_RE.match(child):
            raise SyntraError(f"{where}.platforms.{platform}: not a sha256 digest")
    return Locked(reference, digest, dict(platforms))


def lock_path(root: Path) -> Path:
    return root / LOCK_FILE


def read(root: Path) -> Lock | None:
    """The repository's lock, None when it has none."""
    path = lock_path(root)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_LOCK_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SyntraError(f"{LOCK_FILE}: cannot read ({exc.strerror or exc})") from None
    return parse(data)


def write(root: Path, lock: Lock) -> bool:
    """Write the lock through a temporary file; False when it was already these bytes."""
    return write_if_changed(lock_path(root), lock.dumps())


def uses(loaded: Loaded, plan: Plan, specs: dict[str, list[str]]) -> dict[str, Use]:
    """Every reference to lock: each image's base, each literal `FROM` of its rendered
    specs (`specs`: image name → spec texts), each service image not built here; not the
    `localhost/…` images of the engine's own store (`engine_local`)."""
    found: dict[str, Use] = {}

    def add(reference: str, where: str, platforms: list[str], required: bool = True) -> None:
        known = found.get(reference)
        if known:
            merged = tuple(sorted({*known.platforms, *platforms}))
            where_all = (*known.where, where) if where not in known.where else known.where
            found[reference] = Use(reference, where_all, merged, known.required or required)
        else:
            found[reference] = Use(reference, (where,), tuple(sorted(platforms)), required)

    for image in plan.images:
        if image.base and not engine_local(image.base):
            add(image.base, f"images.{image.name}.base", image.platforms)
        for text in specs.get(image.name, []):
            for reference in spec_images(text):
                if not engine_local(reference):
                    where = f"images.{image.name}: FROM in {image.dockerfile}"
                    add(reference, where, image.platforms)
    every = sorted({p for image in plan.images for p in image.platforms})
    for name, service in loaded.config.services.items():
        if service.image not in loaded.config.images and not engine_local(service.image):
            add(service.image, f"services.{name}.image", every, required=False)
    return found


def engine_local(reference: str) -> bool:
    """`localhost/name`: an image only the engine's own store holds (podman's name for
    what it built or imported), which no registry serves: nothing to lock."""
    return reference.startswith("localhost/")


_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE)


def spec_images(text: str) -> list[str]:
    """The image references a Dockerfile's `FROM` lines name literally: not `scratch`,
    not an earlier stage, not one made of build args (the base comes as `${BASE_IMAGE}`,
    pinned through the argument)."""
    stages: set[str] = set()
    found: list[str] = []
    for line in text.replace("\\\n", " ").splitlines():
        match = _FROM.match(line)
        if not match:
            continue
        image, stage = match.group(1), match.group(2)
        literal = "$" not in image and image.lower() not in ("scratch", *stages)
        if literal and image not in found:
            found.append(image)
        if stage:
            stages.add(stage.lower())
    return found


def disagreement(lock: Lock, wanted: dict[str, Use]) -> str | None:
    """One line when the lock and syntra.yaml disagree: a reference used but not locked,
    a platform built but not locked, or an entry nothing uses."""
    for reference, use in sorted(wanted.items()):
        entry = lock.images.get(reference)
        if entry is None:
            return f"{LOCK_FILE}: {reference} ({use.where[0]}) is not locked; {RUN_LOCK}"
        missing = [p for p in use.platforms if p not in entry.platforms]
        if use.required and missing:
            return (
                f"{LOCK_FILE}: {reference} has no {missing[0]} manifest locked "
                f"({use.where[0]} builds it); {RUN_LOCK}"
            )
    unused = sorted(set(lock.images) - set(wanted))
    if unused:
        return f"{LOCK_FILE}: {unused[0]} is locked but nothing uses it; {RUN_LOCK}"
    return None
