"""C guests: every `.c` file of the guest's folder, compiled and linked by clang against
Debian's wasi-libc into a WASI reactor module (no `main`; `_initialize` runs once).

Reproducible: the compiler runs in the guest's folder on relative file names with the
folder mapped to `.` (`-ffile-prefix-map`), and `__DATE__`/`__TIME__` are errors.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from syntra import process
from syntra.config.model import CGuest
from syntra.errors import SyntraError
from syntra.plan import GuestPlan
from syntra.supply.contents import Component, purl
from syntra.wasm.compiler import run_compiler

TARGET = "wasm32-wasi"
SYSROOT = Path("/usr")
PACKAGES = ["clang", "lld", "wasi-libc", "libclang-rt-dev-wasm32"]
"""lld: clang links wasm with its wasm-ld, which is not among clang's dependencies."""
INSTALL = f"apt-get install {' '.join(PACKAGES)}"


def settings(guest: GuestPlan) -> CGuest:
    assert isinstance(guest.settings, CGuest)
    return guest.settings


def compiler(guest: GuestPlan) -> str:
    found = shutil.which(settings(guest).compiler)
    if found is None:
        raise SyntraError(f"{settings(guest).compiler} is not installed: C guests need {INSTALL}")
    return found


def _check_sysroot(clang: str) -> None:
    """wasi-libc in the sysroot and clang's wasm32 builtins: both are separate packages."""
    if not (SYSROOT / "lib" / TARGET / "libc.a").is_file():
        raise SyntraError(f"no wasi-libc under {SYSROOT}/lib/{TARGET}: {INSTALL}")
    builtins = process.run([clang, f"--target={TARGET}", "-print-libgcc-file-name"], check=False)
    if not Path(builtins.out.strip()).is_file():
        raise SyntraError(f"{clang} has no wasm32 builtins library: {INSTALL}")


def _check_linker(clang: str) -> None:
    """clang links wasm with wasm-ld, from the lld of clang's own version."""
    named = process.run([clang, f"--target={TARGET}", "-print-prog-name=wasm-ld"], check=False)
    if Path(named.out.strip()).is_file() or shutil.which("wasm-ld"):
        return
    version = re.search(r"clang version (\d+)", process.run([clang, "--version"], check=False).out)
    package = f"lld-{version.group(1)}" if version else "lld"
    raise SyntraError(f"{clang} has no wasm-ld to link wasm with: apt-get install {package}")


def clang_argv(guest: GuestPlan, source: Path, output: Path) -> list[str]:
    files = sorted(path.relative_to(source).as_posix() for path in source.rglob("*.c"))
    if not files:
        raise SyntraError(f"{guest.source}: no .c files")
    clang = compiler(guest)
    _check_sysroot(clang)
    _check_linker(clang)
    own = settings(guest)
    exports = [f"-Wl,--export={name}" for name in own.exports]
    return [clang, f"--target={TARGET}", f"--sysroot={SYSROOT}", "-mexec-model=reactor",
            f"-ffile-prefix-map={source.resolve()}=.", "-Werror=date-time", *own.cflags,
            *exports, *files, "-o", str(output)]  # fmt: skip


def wasi_libc_version() -> str:
    done = process.run(["dpkg-query", "-W", "-f=${Version}", "wasi-libc"], check=False)
    return done.out.strip() if done.code == 0 and done.out.strip() else "unknown"


def components(built_with: dict[str, str]) -> list[Component]:
    """clang and the wasi-libc linked in, as the build recorded them."""
    clang, libc = built_with.get("clang", "unknown"), built_with.get("wasi-libc", "unknown")
    return [
        Component("clang", clang, purl("generic", "clang", clang), "framework"),
        Component("wasi-libc", libc, purl("deb", "wasi-libc", libc, "debian")),
    ]


class C:
    def compile(
        self, guest: GuestPlan, root: Path, output: Path, epoch: int, cache: Path
    ) -> str | None:
        source = root / guest.source
        run_compiler(clang_argv(guest, source, output.resolve()), source, "clang", epoch)
        return None

    def toolchain(self, guest: GuestPlan) -> dict[str, str]:
        done = process.run([compiler(guest), "--version"], check=False)
        found = re.search(r"clang version (\S+)", done.out)
        return {"clang": found.group(1) if found else "unknown", "wasi-libc": wasi_libc_version()}

    def components(self, wasm: bytes, source: Path, built_with: dict[str, str]) -> list[Component]:
        return components(built_with)

    def describe(self, guest: GuestPlan) -> str:
        return f"c ({TARGET})"

    def ci_actions(self, guests: list[GuestPlan]) -> list[str]:
        return []

    def ci_packages(self, guests: list[GuestPlan]) -> list[str]:
        return PACKAGES

    def probe(self, guest: GuestPlan, scratch: Path) -> str:
        (scratch / "probe.c").write_text("int probe(int n) { return n + 1; }\n")
        argv = clang_argv(guest, scratch, scratch / "probe.wasm")
        process.run([a for a in argv if not a.startswith("-Wl,--export=")], "clang", cwd=scratch)
        return f"clang {self.toolchain(guest)['clang']} links {TARGET} against wasi-libc"

    def detect(self, folder: Path) -> list[str] | None:
        if not any(folder.glob("*.c")):
            return None
        return ['exports: []  # or mark functions __attribute__((export_name("…")))']


LANGUAGE = C()
