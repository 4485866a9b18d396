"""Python guests: WIT world + module → a component with componentize-py.

componentize-py runs on a deterministic host (fixed clock and inode numbers), from a
copy of the sources without bytecode caches, so the same sources give the same bytes.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import sys
import tempfile
from email.parser import HeaderParser
from pathlib import Path

from syntra import process
from syntra.config.model import PythonGuest
from syntra.errors import SyntraError
from syntra.plan import GuestPlan
from syntra.supply.contents import Component, purl
from syntra.wasm import deterministic
from syntra.wasm.compiler import run_compiler

_CPYTHON = re.compile(rb"\x00(3\.\d+\.\d+(?:(?:a|b|rc)\d+)?\+?) \(")


def settings(guest: GuestPlan) -> PythonGuest:
    assert isinstance(guest.settings, PythonGuest)
    return guest.settings


def python_argv(guest: GuestPlan, root: Path, source: Path, output: Path) -> list[str]:
    """componentize-py on `source` (a clean copy of the guest's source)."""
    own = settings(guest)
    wit = root / own.wit if own.wit else source / "wit"
    # The console script installed beside this interpreter (the package has no __main__).
    program = shutil.which("componentize-py", path=str(Path(sys.executable).parent))
    program = program or shutil.which("componentize-py")
    if program is None:
        raise SyntraError("componentize-py is not installed (pip install componentize-py)")
    return [program, "-d", str(wit), "-w", own.world, "componentize", own.app,
            "-p", str(source), "-o", str(output)]  # fmt: skip


def components(wasm: bytes, source: Path, built_with: dict[str, str]) -> list[Component]:
    """CPython (its version string is in the component), the componentize-py runtime, and
    every package on the guest's Python path (vendored packages carry `*.dist-info`)."""
    found = _CPYTHON.search(wasm)
    if found is None:
        raise SyntraError("the component embeds no CPython version string: not componentize-py's")
    cpython = found.group(1).decode()
    parts = [Component("cpython", cpython, purl("generic", "cpython", cpython), "framework")]
    if "componentize-py" in built_with:
        version = built_with["componentize-py"]
        parts.append(
            Component("componentize-py", version, purl("pypi", "componentize-py", version))
        )
    for metadata in sorted(source.glob("*.dist-info/METADATA")):
        headers = HeaderParser().parsestr(metadata.read_text(errors="replace"))
        package, release = headers.get("Name"), headers.get("Version")
        if package and release:
            parts.append(Component(package, release, purl("pypi", package, release)))
    return parts


class Python:
    def compile(
        self, guest: GuestPlan, root: Path, output: Path, epoch: int, cache: Path
    ) -> str | None:
        extra, caveat = deterministic.host_environment(cache, epoch)
        with tempfile.TemporaryDirectory(prefix="syntra-guest-") as scratch:
            source = Path(scratch) / "source"
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(root / guest.source, source, ignore=ignore)
            argv = python_argv(guest, root, source, output)
            run_compiler(argv, source, "componentize-py", epoch, extra)
        return caveat

    def toolchain(self, guest: GuestPlan) -> dict[str, str]:
        try:
            return {"componentize-py": importlib.metadata.version("componentize-py")}
        except importlib.metadata.PackageNotFoundError:  # found on PATH, not beside Syntra
            return {"componentize-py": "unknown"}

    def components(self, wasm: bytes, source: Path, built_with: dict[str, str]) -> list[Component]:
        return components(wasm, source, built_with)

    def describe(self, guest: GuestPlan) -> str:
        return "python"

    def ci_actions(self, guests: list[GuestPlan]) -> list[str]:
        return []  # componentize-py comes with Syntra's own install

    def ci_packages(self, guests: list[GuestPlan]) -> list[str]:
        return []

    def probe(self, guest: GuestPlan, scratch: Path) -> str:
        program = python_argv(guest, scratch, scratch, scratch / "probe.wasm")[0]
        process.run([program, "--version"], "componentize-py")
        _, caveat = deterministic.host_environment(scratch, 0)
        if caveat and "install" in caveat:
            raise SyntraError(f"Python guests would be {caveat}")
        return f"componentize-py {self.toolchain(guest)['componentize-py']}" + (
            f" ({caveat})" if caveat else ""
        )

    def detect(self, folder: Path) -> list[str] | None:
        worlds = [
            found.group(1)
            for wit in sorted(folder.glob("wit/*.wit"))
            if (found := re.search(r"^\s*world\s+([\w-]+)", wit.read_text(errors="replace"), re.M))
        ]
        if not worlds or not any(folder.glob("*.py")):
            return None
        return [f"world: {worlds[0]}"]


LANGUAGE = Python()
