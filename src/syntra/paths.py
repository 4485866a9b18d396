"""Where things live in a Syntra repository."""

from __future__ import annotations

import os
from pathlib import Path

from syntra.errors import closest

CONFIG_FILE = "syntra.yaml"
LOCK_FILE = "syntra.lock"
TEMPLATES_DIR = "templates"
SPECS_DIR = "ContainerSpecs"
WORKFLOWS_DIR = ".github/workflows"
STATE_DIR = ".syntra"
BUILTIN_TEMPLATES = Path(__file__).parent / "templates"
DEFAULT_TEMPLATE = "default.j2"
SPEC_NAMES = ("Dockerfile", "Containerfile")
SNAPSHOT_ENV = "SYNTRA_SNAPSHOT"
"""`SYNTRA_SNAPSHOT=1 doit`: everything built, tested and written to dist/snapshot/;
nothing pushed, signed or released (laptops and pull requests)."""
BUILDER_ENV = "SYNTRA_BUILDER"
"""Overrides syntra.yaml's `builder` for one run (`SYNTRA_BUILDER=podman doit docker`)."""


def template_dirs(root: Path) -> list[Path]:
    """Search order: the repository's templates/ first, then the built-in ones."""
    return [root / TEMPLATES_DIR, BUILTIN_TEMPLATES]


def template_names(root: Path) -> list[str]:
    return sorted(
        {
            p.name
            for folder in template_dirs(root)
            if is_file(folder, dir=True)
            for p in folder.glob("*.j2")
        }
    )


def find_template(root: Path, name: str) -> Path | None:
    return next((f / name for f in template_dirs(root) if is_file(f / name)), None)


def is_file(path: Path, *, dir: bool = False) -> bool:
    """Path.is_file/is_dir that answer False for names the OS refuses (too long, loops)."""
    try:
        return path.is_dir() if dir else path.is_file()
    except OSError:
        return False


def path_hint(root: Path, relative: str, *, dir: bool = False) -> str:
    """'; did you mean 'x'?' for a repository path that does not exist: each missing part
    is replaced by the closest name in its folder (`server/Dockerfle` -> `server/Dockerfile`)."""
    folder, fixed = root, []
    parts = Path(relative).parts
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if not (is_file(folder / part) if last and not dir else is_file(folder / part, dir=True)):
            try:
                names = [
                    p.name
                    for p in folder.iterdir()
                    if (is_file(p) if last and not dir else is_file(p, dir=True))
                ]
            except OSError:
                return ""
            part = closest(part, names) or ""
            if not part:
                return ""
        fixed.append(part)
        folder = folder / part
    return f"; did you mean '{'/'.join(fixed)}'?" if fixed != list(parts) else ""


def snapshot_dir(root: Path) -> Path:
    """Where a snapshot run writes its archives and wasm files."""
    return root / "dist" / "snapshot"


def state_dir(root: Path) -> Path:
    """Syntra's working state: records, logs, build output, caches. Never committed."""
    return root / STATE_DIR


def doit_state(root: Path) -> Path:
    """doit's database of what ran (sqlite: written in transactions, never half-done)."""
    return root / STATE_DIR / "doit.sqlite3"


def doit_began(root: Path) -> Path:
    """Touched by a doit run that finds no state of doit's: a record written before it
    was written under a state doit has lost."""
    return root / STATE_DIR / "doit-began"


DEFAULT_KEY = Path(STATE_DIR) / "keys" / "cosign.key"
"""The signing key `syntra keygen` writes and the main job uses, relative to the root."""


def last_run(root: Path) -> Path:
    """The timeline of the last doit run (what ran, what was up to date), for `syntra report`."""
    return root / STATE_DIR / "runs" / "last.json"


def test_outcomes(root: Path, artifact: str) -> Path:
    """Each test's outcome in the last run of an image's or guest's tests (`syntra report`)."""
    return root / STATE_DIR / "runs" / "tests" / f"{artifact}.json"


def report_page(root: Path) -> Path:
    """Where `syntra report` writes its page unless told otherwise."""
    return root / STATE_DIR / "report.html"


def supply_note(root: Path, name: str) -> Path:
    """What `supply` attached to an artifact's digests (signatures, SBOM package counts)."""
    return root / STATE_DIR / "supply" / f"{name}.json"


def records_dir(root: Path) -> Path:
    """The records of pushed artifacts (CI hands them from job to job)."""
    return root / STATE_DIR / "out"


def record_path(root: Path, name: str) -> Path:
    """The result record of a pushed artifact: what SBOM, signing and release read."""
    return records_dir(root) / f"{name}.json"


def last_change_cache(root: Path) -> Path:
    """When each guest's sources last changed, for the HEAD commit (`versioning`)."""
    return root / STATE_DIR / "last-change.json"


def digests_dir(root: Path) -> Path:
    """Digest files of per-platform pushes, `<image>/<platform>.json` (CI fan-out)."""
    return root / STATE_DIR / "digests"


def digest_dir(root: Path, name: str) -> Path:
    """Digest files of one image's per-platform pushes, for `syntra merge`."""
    return digests_dir(root) / name


def build_dir(root: Path, image: str) -> Path:
    """The OCI layouts the builders write, one per platform."""
    return root / STATE_DIR / "build" / image


def logs_root(root: Path) -> Path:
    """Every tool's log, by image."""
    return root / STATE_DIR / "logs"


def logs_dir(root: Path, image: str) -> Path:
    return logs_root(root) / image


def up_log(root: Path) -> Path:
    """The compose engine's output and each health check run of `syntra up`, redacted."""
    return logs_root(root) / "up.log"


def up_compose_file(root: Path) -> Path:
    """The compose file `syntra up` runs: each image pinned by its local build's digest."""
    return root / STATE_DIR / "up" / "compose.yaml"


def up_images(root: Path) -> Path:
    """Each image `syntra up` built and loaded: a no-op `up` asks no registry."""
    return root / STATE_DIR / "up" / "images.json"


def build_log(root: Path, image: str, platform: str, builder: str) -> Path:
    """One builder's log for one platform; `all` for builders that build every platform
    at once (Apple's CLI)."""
    return logs_dir(root, image) / f"{slug(platform)}-{builder}.log"


def slug(platform: str) -> str:
    return platform.replace("/", "-")


def wasm_raw(root: Path, guest: str) -> Path:
    """A guest as its compiler wrote it, before wasm-opt."""
    return plugins_dir(root) / "raw" / f"{guest}.wasm"


def wasm_tools(root: Path, guest: str) -> Path:
    """The compilers a guest was built with, and their versions, written by the build."""
    return plugins_dir(root) / "raw" / f"{guest}.tools.json"


def wasm_cache(root: Path) -> Path:
    """Compilers' own caches (the deterministic host library); compiled guest code
    is kept in the user's private cache instead (`syntra.plugins.codecache`)."""
    return root / STATE_DIR / "wasm-cache"


BUILD_OUTPUT = frozenset({".build", "target", "__pycache__", ".git"})
"""Folders of a guest's source tree that are build output, caches or history (SwiftPM's
.build, cargo's target, bytecode): never sources, never copied into a build."""


def source_files(folder: Path) -> list[Path]:
    """Files of a guest's source tree, without build output and bytecode caches (the
    BUILD_OUTPUT folders are not entered)."""
    found: list[Path] = []
    for here, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in BUILD_OUTPUT]
        found += (Path(here) / name for name in files)
    return sorted(path for path in found if path.is_file())


def plugins_dir(root: Path) -> Path:
    """Optimised guests and plugin manifests: the `plugins` build context of images."""
    return root / STATE_DIR / "wasm"


def plugin_manifest(root: Path, image: str) -> Path:
    """The manifest of an image's plugins, beside them in the plugins build context; the
    specs copy it to /opt/plugins/plugins.json."""
    return plugins_dir(root) / f"{image}.plugins.json"


def plugin_file(root: Path, guest: str) -> Path:
    """An optimised guest, as images bundle it under /opt/plugins/."""
    return plugins_dir(root) / f"{guest}.wasm"


def web_dir(root: Path, guest: str) -> Path:
    """A guest's browser bundle: module, loader, WASI shim, types and a page."""
    return root / "dist" / "web" / guest
