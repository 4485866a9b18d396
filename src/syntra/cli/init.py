"""`syntra init`: a first syntra.yaml, dodo.py and .gitignore entries for a repository.

One image per Dockerfile found (its folder is the build context), one guest per folder a
guest language recognises (`Language.detect`), a throwaway local
registry over plain HTTP, no signing: enough for `syntra validate` and `doit` to run,
with comments that say what to change next. Nothing existing is overwritten. The images
its Dockerfiles start `FROM` are locked in `syntra.lock` when their registries answer.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from syntra.errors import SyntraError, count
from syntra.fsutil import write_atomic
from syntra.paths import BUILD_OUTPUT, CONFIG_FILE, DEFAULT_KEY, LOCK_FILE, SPECS_DIR, STATE_DIR

DODO_FILE = "dodo.py"
DODO = '''"""doit entry point: the task graph comes from syntra.pipeline.tasks."""

from syntra.pipeline.tasks import *  # noqa: F403
'''
IGNORED = [f"{STATE_DIR}/", "dist/"]
_SKIP = {STATE_DIR, SPECS_DIR, "node_modules", ".venv", "venv", *BUILD_OUTPUT}


def _walk(root: Path) -> Iterator[tuple[Path, list[str]]]:
    """Each folder under `root` (itself included) and its file names, sorted; skipped
    folders (_SKIP, virtualenvs) are not entered at all."""
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(
            d for d in dirs if d not in _SKIP and not (here / d / "pyvenv.cfg").is_file()
        )
        yield here, sorted(files)


def _unique(base: str, names: set[str]) -> str:
    """`base`, or `base-2`, `base-3`… whichever is not taken yet; then taken."""
    name, n = base, 2
    while name in names:
        name, n = f"{_name(base, 59)}-{n}", n + 1
    names.add(name)
    return name


_DOCKERFILE = re.compile(r"^(Dockerfile|Containerfile)(\..+)?$|^.+\.(Dockerfile|Containerfile)$")


@dataclass(frozen=True)
class FoundImage:
    name: str
    dockerfile: str
    context: str


@dataclass(frozen=True)
class FoundGuest:
    name: str
    language: str
    source: str
    lines: list[str]
    """Its syntra.yaml keys besides language and source, as the language suggests them."""


def _name(text: str, limit: int = 63) -> str:
    """A name that is both a syntra.yaml name and a repository path component."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return cleaned[:limit].rstrip("-") or "app"


def find_dockerfiles(root: Path) -> list[FoundImage]:
    """Dockerfiles and Containerfiles under `root`, one image each, named after their
    folder (or `api` for `api.Dockerfile`); the project's name for one at the top."""
    root = root.resolve()
    found: list[FoundImage] = []
    names: set[str] = set()
    paths = [folder / f for folder, files in _walk(root) for f in files if _DOCKERFILE.match(f)]
    for path in sorted(paths):
        relative = path.relative_to(root)
        if path.name.endswith(".dockerignore") or not path.is_file():
            continue
        stem = path.name.split(".")[0]
        own = path.name.rsplit(".", 1)[0] if stem not in ("Dockerfile", "Containerfile") else ""
        base = _name(own or (relative.parent.name if relative.parent.parts else root.name))
        name = _unique(base, names)
        context = relative.parent.as_posix() if relative.parent.parts else "."
        found.append(FoundImage(name, relative.as_posix(), context))
    return found


def find_guests(root: Path) -> list[FoundGuest]:
    """Folders holding a guest (a Cargo.toml cdylib, C sources, a Swift package, a Python
    module with its WIT), each language asked in LANGUAGES order; a guest's own
    subfolders are not searched further."""
    from syntra.wasm.languages import LANGUAGES, language

    root = root.resolve()
    found: list[FoundGuest] = []
    taken: list[Path] = []
    names: set[str] = set()
    for folder in sorted(folder for folder, _ in _walk(root) if folder != root):
        relative = folder.relative_to(root)
        if any(t in folder.parents for t in taken):
            continue
        for name in LANGUAGES:
            lines = language(name).detect(folder)
            if lines is not None:
                # `Guest/Rust` → guest-rust; `fib/` → fib; a second fib → fib-2
                own = folder.name if folder.name.lower() != name else f"{folder.parent.name}-{name}"
                guest = _unique(_name(own), names)
                found.append(FoundGuest(guest, name, relative.as_posix(), lines))
                taken.append(folder)
                break
    return found


def _guest_lines(guests: list[FoundGuest]) -> list[str]:
    if not guests:
        return [
            "# WebAssembly guests, e.g.:",
            "# wasm:",
            "#   plugin:",
            "#     language: python",
            "#     source: plugin",
            "#     world: plugin",
        ]
    lines = ["wasm:  # add tests: [{call: NAME, args: [...], expect: VALUE}] to each"]
    for guest in guests:
        lines += [
            f"  {json.dumps(guest.name)}:",
            f"    language: {guest.language}",
            f"    source: {json.dumps(guest.source)}",
            *(f"    {line}" for line in guest.lines),
        ]
    return lines


def config_text(
    project: str, images: list[FoundImage], guests: list[FoundGuest] | None = None
) -> str:
    lines = [
        "# yaml-language-server: $schema=https://syntra.dev/schema/syntra.schema.json",
        "# Syntra: what this repository builds and where it goes. `syntra validate` checks it;",
        "# `syntra schema --markdown` lists every key.",
        "version: 1",
        "",
        "project:",
        f"  name: {json.dumps(project)}  # the repository prefix: <registry>/{project}/<image>",
        "  version: git  # from vX.Y.Z tags; 0.0.0-dev.N.g<sha> before the first",
        "",
        "registries:",
        "  # A throwaway local registry over plain HTTP; add your own, e.g.",
        "  # ghcr: {url: ghcr.io/OWNER, credentials: {username_env: GHCR_USER, "
        "password_env: GHCR_TOKEN}}",
        "  local:",
        "    url: ${SYNTRA_REGISTRY:-127.0.0.1:5000}",
        "    insecure: true",
        "",
        "defaults:",
        "  registry: local",
        "  platforms: [linux/amd64]  # add linux/arm64 for multi-arch images",
        '  tags: ["{{ version }}", "sha-{{ git.short_sha }}"]',
        "",
    ]
    if images:
        lines.append("images:")
        for image in images:
            lines += [  # quoted: a name like 2024 or a path with ' #' stays a string
                f"  {json.dumps(image.name)}:",
                f"    dockerfile: {json.dumps(image.dockerfile)}",
                f"    context: {json.dumps(image.context)}",
                '    # args: {APP_VERSION: "{{ version }}"}  # build args may use tag variables',
            ]
    else:
        lines += [
            "images: {}",
            "# No Dockerfile was found. An image from the built-in template:",
            "# images:",
            "#   app:",
            "#     context: .",
            "#     base: docker.io/library/alpine:3.20",
        ]
    lines += [
        "",
        *_guest_lines(guests or []),
        "",
        "# Signatures, SBOMs and provenance (`syntra keygen` makes the key):",
        "# supply_chain:",
        f"#   signing: {{mode: key, key: {DEFAULT_KEY}, passphrase_env: SYNTRA_KEY_PASSPHRASE}}",
        "",
    ]
    return "\n".join(lines)


def init(root: Path) -> list[str]:
    """Write the files; returns what was written. Refuses when syntra.yaml or dodo.py exist."""
    root = root.resolve()
    existing = [name for name in (CONFIG_FILE, DODO_FILE) if (root / name).exists()]
    if existing:
        raise SyntraError(
            f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''} in "
            f"{root}; syntra init never overwrites (remove {' and '.join(existing)} to start over)"
        )
    images, guests = find_dockerfiles(root), find_guests(root)
    text = config_text(_name(root.resolve().name), images, guests)
    write_atomic(root / CONFIG_FILE, text.encode())
    write_atomic(root / DODO_FILE, DODO.encode())
    found = f", {count(len(guests), 'guest')}" if guests else ""
    written = [
        f"{CONFIG_FILE} ({count(len(images), 'image')} from Dockerfiles{found})",
        DODO_FILE,
    ]
    gitignore = root / ".gitignore"
    present = gitignore.read_text().splitlines() if gitignore.is_file() else []
    missing = [entry for entry in IGNORED if entry not in present]
    if missing:
        text = "\n".join(present + missing) + "\n"
        write_atomic(gitignore, text.encode())
        written.append(f".gitignore (+{' '.join(missing)})")
    return written


def first_lock(root: Path) -> str:
    """`syntra.lock` for the new syntra.yaml when its registries answer; otherwise the line
    that says how to make one (init never fails for a registry out of reach)."""
    from syntra import config
    from syntra.image.locking import Repository, lock, wanted
    from syntra.oci.locate import Registries
    from syntra.plan import build_plan

    try:
        loaded = config.load(root / CONFIG_FILE)
        repo = Repository(loaded, build_plan(loaded), Registries(loaded.config.registries))
        if not wanted(repo):
            return f"no {LOCK_FILE}: no image to pin yet (`syntra lock` writes it once there is)"
        *_, last = lock(repo)
    except SyntraError as exc:
        return f"no {LOCK_FILE} yet ({exc}); run `syntra lock` once the registries answer"
    return last
