"""Compiling guests: Embedded Swift or a WASI Swift SDK, and componentize-py.

Commands run with a fixed environment (SOURCE_DATE_EPOCH, no hash randomisation)
and write through a temporary file, so a failed build leaves nothing behind.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from syntra import process
from syntra.errors import SyntraError
from syntra.fsutil import write_atomic
from syntra.plan import GuestPlan
from syntra.wasm import deterministic

SWIFT_TOOLCHAIN = Path("/opt/swift/usr/bin")
EMBEDDED_TRIPLE = "wasm32-unknown-none-wasm"
WASI_TRIPLE = "wasm32-unknown-wasip1"
# -disable-incremental-llvm-codegen: otherwise swiftc embeds a `.swift_modhash` of
# the LLVM module (named after a random temporary file) and no two builds match.
EMBEDDED_FLAGS = [
    "-enable-experimental-feature", "Embedded", "-wmo", "-Osize", "-parse-as-library",
    "-Xcc", "-fdeclspec", "-Xfrontend", "-disable-stack-protector",
    "-Xfrontend", "-disable-incremental-llvm-codegen",
    "-Xclang-linker", "-nostdlib", "-Xlinker", "--no-entry",
]  # fmt: skip


def swift_tool(name: str) -> str:
    """`swift`/`swiftc` from PATH, else from the toolchain at /opt/swift."""
    found = shutil.which(name) or (
        str(SWIFT_TOOLCHAIN / name) if (SWIFT_TOOLCHAIN / name).exists() else None
    )
    if found is None:
        raise SyntraError(f"{name} is not installed: Swift guests need the Swift toolchain")
    return found


def _run(
    argv: list[str], cwd: Path, what: str, epoch: int, extra: dict[str, str] | None = None
) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "PYTHONHASHSEED": "0", **(extra or {})}
    env["RUST_BACKTRACE"] = "0"  # componentize-py's frames would bury the guest's error
    process.run(argv, what, cwd=cwd, env=env)


def wasm_sdks() -> list[str]:
    """Installed Swift SDKs for WebAssembly (`swift sdk list`)."""
    done = process.run([swift_tool("swift"), "sdk", "list"], check=False)
    return [line.strip() for line in done.out.splitlines() if "wasm" in line.lower()]


def swift_mode(guest: GuestPlan) -> str:
    if guest.mode != "auto":
        return guest.mode
    return "wasi" if wasm_sdks() else "embedded"


def embedded_argv(guest: GuestPlan, root: Path, output: Path) -> list[str]:
    source = root / guest.source
    if (source / "Package.swift").is_file():
        product = guest.product or source.name
        flags = [flag for item in EMBEDDED_FLAGS for flag in ("-Xswiftc", item)]
        return [swift_tool("swift"), "build", "--package-path", str(source), "--triple",
                EMBEDDED_TRIPLE, "-c", "release", "--product", product, *flags]  # fmt: skip
    files = sorted(str(path) for path in source.rglob("*.swift"))
    if not files:
        raise SyntraError(f"{guest.source}: no .swift files")
    return [
        swift_tool("swiftc"),
        "-target",
        EMBEDDED_TRIPLE,
        *EMBEDDED_FLAGS,
        *files,
        "-o",
        str(output),
    ]


def wasi_argv(guest: GuestPlan, root: Path) -> list[str]:
    sdks = wasm_sdks()
    if not sdks:
        raise SyntraError(
            "mode wasi needs a Swift SDK for WebAssembly and `swift sdk list` "
            "shows none: install one with `swift sdk install`, or use mode: embedded"
        )
    product = guest.product or (root / guest.source).name
    return [swift_tool("swift"), "build", "--package-path", str(root / guest.source),
            "--swift-sdk", sdks[0], "-c", "release", "--product", product]  # fmt: skip


def python_argv(guest: GuestPlan, root: Path, source: Path, output: Path) -> list[str]:
    """componentize-py on `source` (a clean copy of the guest's source)."""
    wit = root / guest.wit if guest.wit else source / "wit"
    assert guest.world is not None
    # The console script installed beside this interpreter (the package has no __main__).
    program = shutil.which("componentize-py", path=str(Path(sys.executable).parent))
    program = program or shutil.which("componentize-py")
    if program is None:
        raise SyntraError("componentize-py is not installed (pip install componentize-py)")
    return [program, "-d", str(wit), "-w", guest.world, "componentize", guest.app,
            "-p", str(source), "-o", str(output)]  # fmt: skip


def _take(built: Path, temp: Path, what: str) -> None:
    if not built.is_file():
        raise SyntraError(f"{what}: the build wrote no {built.name} (is `product` right?)")
    shutil.copy(built, temp)


def _componentize(
    guest: GuestPlan, root: Path, output: Path, epoch: int, cache: Path
) -> str | None:
    """componentize-py on a deterministic host, from a copy of the sources without
    bytecode caches (the snapshot run writes some); returns the reproducibility caveat."""
    extra, caveat = deterministic.host_environment(cache, epoch)
    with tempfile.TemporaryDirectory(prefix="syntra-guest-") as scratch:
        source = Path(scratch) / "source"
        shutil.copytree(root / guest.source, source, ignore=shutil.ignore_patterns("__pycache__"))
        argv = python_argv(guest, root, source, output)
        _run(argv, source, "componentize-py", epoch, extra)
    return caveat


def toolchain(guest: GuestPlan) -> dict[str, str]:
    """The compilers that build `guest`, by name, with their versions."""
    if guest.language == "python":
        return {"componentize-py": importlib.metadata.version("componentize-py")}
    done = process.run([swift_tool("swiftc"), "--version"], check=False)
    found = re.search(r"Swift version (\S+)", done.out + done.err)
    return {"swift": found.group(1) if found else "unknown"}


def recorded_toolchain(tools: Path) -> dict[str, str]:
    """What `compile_guest` wrote to `tools`; empty when that file is gone or damaged."""
    try:
        found = json.loads(tools.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def compile_guest(
    guest: GuestPlan, root: Path, output: Path, epoch: int, cache: Path, tools: Path
) -> str | None:
    """Build `guest` into `output` (written atomically) and the compilers' versions into
    `tools`, for its SBOM; returns a caveat, if any."""
    temp = output.with_name(f".{output.name}.building")
    temp.parent.mkdir(parents=True, exist_ok=True)
    what = "swift build" if guest.language == "swift" else "componentize-py"
    caveat = None
    if guest.language == "python":
        caveat = _componentize(guest, root, temp, epoch, cache)
    elif swift_mode(guest) == "wasi":
        _run(wasi_argv(guest, root), root, what, epoch)
        product = guest.product or (root / guest.source).name
        _take(
            root / guest.source / ".build" / WASI_TRIPLE / "release" / f"{product}.wasm", temp, what
        )
    else:
        argv = embedded_argv(guest, root, temp)
        _run(argv, root, Path(argv[0]).name if argv[1] != "build" else what, epoch)
        if argv[1] == "build":
            product = guest.product or (root / guest.source).name
            _take(root / guest.source / ".build" / "release" / f"{product}.wasm", temp, what)
    write_atomic(tools, json.dumps(toolchain(guest), sort_keys=True).encode())
    write_atomic(output, temp.read_bytes())
    temp.unlink()
    return caveat
