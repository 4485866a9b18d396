"""Rust guests: a `cdylib` crate built by cargo for wasm32-wasi, offline.

Debian's rustc and cargo (`toolchain:`, /usr/bin by default: a rustup toolchain earlier
on PATH has no wasm32-wasi standard library unless one was added). Crates come from
Debian's packaged sources in /usr/share/cargo/registry (a directory source replacing
crates.io), never from the network. The build runs in a scratch copy whose paths are
remapped, so two clones in two folders give the same bytes. Without a committed
`Cargo.lock`, cargo resolves one offline in the scratch copy (`cargo generate-lockfile
--offline`, against the same crates) and builds with it `--locked`; the SBOM resolves it
the same way, so it lists every crate compiled in. Commit `Cargo.lock` to pin them.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from syntra import process
from syntra.config.model import RustGuest
from syntra.errors import SyntraError
from syntra.paths import BUILD_OUTPUT
from syntra.plan import GuestPlan
from syntra.supply.contents import Component, purl
from syntra.wasm.compiler import run_compiler

TARGET = "wasm32-wasi"
LINKER = "rust-lld"
PROBE = """#![no_std]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! { loop {} }
#[no_mangle]
pub extern "C" fn probe(n: i32) -> i32 { n + 1 }
"""
DEFAULT_TOOLCHAIN = Path("/usr/bin")
"""Debian's rustc and cargo (the model's default `toolchain:`), which resolve the SBOM's
lock when none is committed."""
REGISTRY = Path("/usr/share/cargo/registry")
PACKAGES = ["rustc", "cargo", "libstd-rust-dev-wasm32", "lld"]
"""lld: rustc links wasm32 with `rust-lld`, a link to lld that the standard library
package only recommends (named here, since recommends may not be installed)."""
CARGO_CONFIG = """\
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "{registry}"
"""


def settings(guest: GuestPlan) -> RustGuest:
    assert isinstance(guest.settings, RustGuest)
    return guest.settings


def tool(toolchain: Path, name: str) -> str:
    path = toolchain / name
    if not path.is_file():
        raise SyntraError(
            f"{path} is not installed: Rust guests need Debian's rustc and cargo "
            f"(apt-get install {' '.join(PACKAGES)})"
        )
    return str(path)


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SyntraError(f"{path.name}: not readable TOML ({exc})") from None


def crate_file(manifest: Path) -> str:
    """The file cargo writes for the crate's `cdylib` (`my-guest` → `my_guest.wasm`)."""
    data = _toml(manifest)
    lib, package = data.get("lib", {}), data.get("package", {})
    for key, table in (("lib", lib), ("package", package)):
        if not isinstance(table, dict):
            raise SyntraError(f"{manifest.name}: '{key}' is not a table; write [{key}]")
    kinds = lib.get("crate-type", [])
    if not isinstance(kinds, list) or "cdylib" not in kinds:
        raise SyntraError(
            f'{manifest.name}: a wasm guest is a library with crate-type = ["cdylib"] under [lib]'
        )
    name = lib.get("name") or package.get("name")
    if not isinstance(name, str) or not name:
        raise SyntraError(f"{manifest.name}: no [package] name")
    return name.replace("-", "_") + ".wasm"


def _check_std(rustc: str) -> None:
    sysroot = process.run([rustc, "--print", "sysroot"], check=False).out.strip()
    if not (Path(sysroot) / "lib" / "rustlib" / TARGET).is_dir():
        raise SyntraError(
            f"{rustc} has no {TARGET} standard library (apt-get install libstd-rust-dev-wasm32)"
        )


def _check_linker() -> None:
    """rustc links wasm32 with the first `rust-lld` on PATH that runs; Debian's is a link
    to a versioned lld that the wasm32 standard library only recommends."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    found = [Path(folder or ".") / LINKER for folder in folders]
    if any(path.exists() for path in found):
        return
    for path in found:
        if path.is_symlink():
            target = os.readlink(path)
            raise SyntraError(
                f"{path} links to {target}, which is not installed (Rust guests link with "
                f"it): apt-get install {Path(target).name}"
            )
    raise SyntraError(f"no {LINKER} on PATH (Rust guests link with it): apt-get install lld")


def cargo_build(toolchain: Path, work: Path, home: Path) -> tuple[list[str], dict[str, str]]:
    """cargo's command line and environment for the copy in `work`, with its own
    CARGO_HOME (`home`) that reads crates from Debian's registry only."""
    rustc = tool(toolchain, "rustc")
    _check_std(rustc)
    _check_linker()
    if REGISTRY.is_dir():
        (home / "config.toml").write_text(CARGO_CONFIG.format(registry=REGISTRY))
    flags = [f"--remap-path-prefix={work}=/guest", f"--remap-path-prefix={home}=/cargo"]
    env = {
        "CARGO_HOME": str(home),
        "CARGO_TARGET_DIR": str(work / "target"),
        "CARGO_ENCODED_RUSTFLAGS": "\x1f".join(flags),
        "CARGO_INCREMENTAL": "0",
        "RUSTC": rustc,
    }
    argv = [tool(toolchain, "cargo"), "build", "--offline", "--release", "--target", TARGET,
            "--manifest-path", str(work / "Cargo.toml"), "--locked"]  # fmt: skip
    return argv, env


def lock(toolchain: Path, work: Path, env: dict[str, str], epoch: int) -> None:
    """`work`'s Cargo.lock: the committed one, else resolved offline by cargo."""
    if not (work / "Cargo.lock").is_file():
        argv = [tool(toolchain, "cargo"), "generate-lockfile", "--offline",
                "--manifest-path", str(work / "Cargo.toml")]  # fmt: skip
        run_compiler(argv, work, "cargo generate-lockfile", epoch, env)


def scratch_copy(source: Path, scratch: Path) -> tuple[Path, Path]:
    """The guest's source copied into `scratch` (no build output) and a CARGO_HOME."""
    work, home = scratch / "source", scratch / "cargo"
    shutil.copytree(source, work, ignore=shutil.ignore_patterns(*BUILD_OUTPUT))
    home.mkdir()
    return work, home


def resolved_lock(source: Path, toolchain: Path = DEFAULT_TOOLCHAIN) -> str:
    """The Cargo.lock the build used: the committed one, else cargo's offline resolution
    (against the same crates, so the same lock)."""
    if (source / "Cargo.lock").is_file():
        return (source / "Cargo.lock").read_bytes().decode(errors="replace")
    with tempfile.TemporaryDirectory(prefix="syntra-lock-") as scratch:
        work, home = scratch_copy(source, Path(scratch))
        _, env = cargo_build(toolchain, work, home)
        lock(toolchain, work, env, 0)
        return (work / "Cargo.lock").read_bytes().decode(errors="replace")


def components(lock_text: str, built_with: dict[str, str]) -> list[Component]:
    """rustc as the build recorded it, and the crates the lock pins (`pkg:cargo`); the
    guest's own crate and path dependencies have no registry source and are left out."""
    version = built_with.get("rustc", "unknown")
    parts = [Component("rustc", version, purl("generic", "rustc", version), "framework")]
    try:
        packages = tomllib.loads(lock_text).get("package")
    except tomllib.TOMLDecodeError as exc:
        raise SyntraError(f"Cargo.lock: not readable TOML ({exc})") from None
    if not isinstance(packages, list):
        raise SyntraError("Cargo.lock: no [[package]] entries: not a Cargo lock file")
    for package in packages:
        if isinstance(package, dict) and package.get("source") and package.get("name"):
            name, release = str(package["name"]), str(package.get("version", "unknown"))
            parts.append(Component(name, release, purl("cargo", name, release)))
    return parts


def _version(argv: list[str]) -> str:
    done = process.run(argv, check=False)
    found = re.search(r"\d+\.\d+\.\d+\S*", done.out)
    return found.group(0) if found else "unknown"


class Rust:
    def compile(
        self, guest: GuestPlan, root: Path, output: Path, epoch: int, cache: Path
    ) -> str | None:
        source = root / guest.source
        if not (source / "Cargo.toml").is_file():
            raise SyntraError(f"{guest.source}: no Cargo.toml")
        built = crate_file(source / "Cargo.toml")
        with tempfile.TemporaryDirectory(prefix="syntra-guest-") as scratch:
            work, home = scratch_copy(source, Path(scratch))
            toolchain = Path(settings(guest).toolchain)
            argv, env = cargo_build(toolchain, work, home)
            lock(toolchain, work, env, epoch)
            run_compiler(argv, work, "cargo build", epoch, env)
            shutil.copy(work / "target" / TARGET / "release" / built, output)
        return None

    def toolchain(self, guest: GuestPlan) -> dict[str, str]:
        return {
            "rustc": _version([tool(Path(settings(guest).toolchain), "rustc"), "--version"]),
            "cargo": _version([tool(Path(settings(guest).toolchain), "cargo"), "--version"]),
        }

    def components(self, wasm: bytes, source: Path, built_with: dict[str, str]) -> list[Component]:
        return components(resolved_lock(source), built_with)

    def describe(self, guest: GuestPlan) -> str:
        return f"rust ({TARGET})"

    def ci_actions(self, guests: list[GuestPlan]) -> list[str]:
        return []

    def ci_packages(self, guests: list[GuestPlan]) -> list[str]:
        crates = sorted({package for g in guests for package in settings(g).packages})
        return PACKAGES + crates

    def probe(self, guest: GuestPlan, scratch: Path) -> str:
        toolchain = Path(settings(guest).toolchain)
        rustc = tool(toolchain, "rustc")
        tool(toolchain, "cargo")
        _check_std(rustc)
        _check_linker()
        (scratch / "probe.rs").write_text(PROBE)
        argv = [rustc, "--target", TARGET, "--crate-type", "cdylib", "-O", "probe.rs"]
        process.run(argv, "rustc", cwd=scratch)
        return f"rustc {self.toolchain(guest)['rustc']} links {TARGET} with {LINKER}"

    def detect(self, folder: Path) -> list[str] | None:
        try:
            crate_file(folder / "Cargo.toml")
        except SyntraError:
            return None
        return []


LANGUAGE = Rust()
