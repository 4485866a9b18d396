"""Swift guests: Embedded Swift with the stock toolchain, or a WASI Swift SDK.

Embedded Swift targets wasm32-unknown-none-wasm; `mode: auto` picks a WASI SDK when
`swift sdk list` shows one.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from syntra import process
from syntra.config.model import SwiftGuest
from syntra.errors import SyntraError
from syntra.plan import GuestPlan
from syntra.supply.contents import Component, purl
from syntra.wasm.compiler import run_compiler

SWIFT_TOOLCHAIN = Path("/opt/swift/usr/bin")
EMBEDDED_TRIPLE = "wasm32-unknown-none-wasm"
WASI_TRIPLE = "wasm32-unknown-wasip1"
SDK_ACTION = "swiftwasm/setup-swiftwasm"
# -disable-incremental-llvm-codegen: otherwise swiftc embeds a `.swift_modhash` of
# the LLVM module (named after a random temporary file) and no two builds match.
EMBEDDED_FLAGS = [
    "-enable-experimental-feature", "Embedded", "-wmo", "-Osize", "-parse-as-library",
    "-Xcc", "-fdeclspec", "-Xfrontend", "-disable-stack-protector",
    "-Xfrontend", "-disable-incremental-llvm-codegen",
    "-Xclang-linker", "-nostdlib", "-Xlinker", "--no-entry",
]  # fmt: skip


PROBE = """@_cdecl("probe")
public func probe(_ n: Int32) -> Int32 { n &+ 1 }
"""


def settings(guest: GuestPlan) -> SwiftGuest:
    assert isinstance(guest.settings, SwiftGuest)
    return guest.settings


def swift_tool(name: str) -> str:
    """`swift`/`swiftc` from PATH, else from the toolchain at /opt/swift."""
    found = shutil.which(name) or (
        str(SWIFT_TOOLCHAIN / name) if (SWIFT_TOOLCHAIN / name).exists() else None
    )
    if found is None:
        raise SyntraError(f"{name} is not installed: Swift guests need the Swift toolchain")
    return found


def wasm_sdks() -> list[str]:
    """Installed Swift SDKs for WebAssembly (`swift sdk list`)."""
    done = process.run([swift_tool("swift"), "sdk", "list"], check=False)
    return [line.strip() for line in done.out.splitlines() if "wasm" in line.lower()]


def swift_mode(guest: GuestPlan) -> str:
    mode = settings(guest).mode
    if mode != "auto":
        return mode
    return "wasi" if wasm_sdks() else "embedded"


def _product(guest: GuestPlan, root: Path) -> str:
    return settings(guest).product or (root / guest.source).name


def embedded_argv(guest: GuestPlan, root: Path, output: Path) -> list[str]:
    source = root / guest.source
    if (source / "Package.swift").is_file():
        flags = [flag for item in EMBEDDED_FLAGS for flag in ("-Xswiftc", item)]
        return [swift_tool("swift"), "build", "--package-path", str(source), "--triple",
                EMBEDDED_TRIPLE, "-c", "release", "--product", _product(guest, root),
                *flags]  # fmt: skip
    files = sorted(str(path) for path in source.rglob("*.swift"))
    if not files:
        raise SyntraError(f"{guest.source}: no .swift files")
    return [swift_tool("swiftc"), "-target", EMBEDDED_TRIPLE, *EMBEDDED_FLAGS, *files,
            "-o", str(output)]  # fmt: skip


def wasi_argv(guest: GuestPlan, root: Path) -> list[str]:
    sdks = wasm_sdks()
    if not sdks:
        raise SyntraError(
            "mode wasi needs a Swift SDK for WebAssembly and `swift sdk list` "
            "shows none: install one with `swift sdk install`, or use mode: embedded"
        )
    return [swift_tool("swift"), "build", "--package-path", str(root / guest.source),
            "--swift-sdk", sdks[0], "-c", "release",
            "--product", _product(guest, root)]  # fmt: skip


def _take(built: Path, output: Path, what: str) -> None:
    if not built.is_file():
        raise SyntraError(f"{what}: the build wrote no {built.name} (is `product` right?)")
    shutil.copy(built, output)


def components(source: Path, built_with: dict[str, str]) -> list[Component]:
    """The toolchain the build recorded, and SwiftPM's pins (`Package.resolved`)."""
    version = built_with.get("swift", "unknown")
    parts = [Component("swift", version, purl("generic", "swift", version), "framework")]
    resolved = source / "Package.resolved"
    if resolved.is_file():
        parts += _pins(resolved)
    return parts


def _pins(resolved: Path) -> list[Component]:
    """SwiftPM's pins (format versions 1 to 3) as `pkg:swift` components."""
    try:
        data = json.loads(resolved.read_text())
        pins = data["pins"] if "pins" in data else data["object"]["pins"]
    except (ValueError, KeyError, TypeError):
        raise SyntraError(f"{resolved.name}: not a SwiftPM Package.resolved") from None
    parts = []
    for pin in pins:
        location = str(pin.get("location") or pin.get("repositoryURL") or "")
        state = pin.get("state") or {}
        version = str(state.get("version") or state.get("revision") or "unknown")
        path = re.sub(r"^[a-z+]+://|^git@|\.git$", "", location).replace(":", "/").strip("/")
        namespace, _, name = path.rpartition("/")
        name = name or str(pin.get("identity") or pin.get("package"))
        parts.append(Component(name, version, purl("swift", name, version, namespace or None)))
    return parts


class Swift:
    def compile(
        self, guest: GuestPlan, root: Path, output: Path, epoch: int, cache: Path
    ) -> str | None:
        what = "swift build"
        if swift_mode(guest) == "wasi":
            run_compiler(wasi_argv(guest, root), root, what, epoch)
            release = root / guest.source / ".build" / WASI_TRIPLE / "release"
            _take(release / f"{_product(guest, root)}.wasm", output, what)
            return None
        argv = embedded_argv(guest, root, output)
        run_compiler(argv, root, Path(argv[0]).name if argv[1] != "build" else what, epoch)
        if argv[1] == "build":
            release = root / guest.source / ".build" / "release"
            _take(release / f"{_product(guest, root)}.wasm", output, what)
        return None

    def toolchain(self, guest: GuestPlan) -> dict[str, str]:
        done = process.run([swift_tool("swiftc"), "--version"], check=False)
        found = re.search(r"Swift version (\S+)", done.out + done.err)
        return {"swift": found.group(1) if found else "unknown"}

    def components(self, wasm: bytes, source: Path, built_with: dict[str, str]) -> list[Component]:
        return components(source, built_with)

    def describe(self, guest: GuestPlan) -> str:
        return f"swift ({settings(guest).mode})"

    def ci_actions(self, guests: list[GuestPlan]) -> list[str]:
        return [SDK_ACTION] if any(settings(g).mode == "wasi" for g in guests) else []

    def ci_packages(self, guests: list[GuestPlan]) -> list[str]:
        return []  # the toolchain comes from swift.org or the action, not from apt

    def probe(self, guest: GuestPlan, scratch: Path) -> str:
        if swift_mode(guest) == "wasi":
            wasi_argv(guest, scratch)  # names the missing Swift SDK for WebAssembly
            return f"swift {self.toolchain(guest)['swift']} with SDK {wasm_sdks()[0]}"
        (scratch / "probe.swift").write_text(PROBE)
        argv = [swift_tool("swiftc"), "-target", EMBEDDED_TRIPLE, *EMBEDDED_FLAGS,
                "probe.swift", "-o", "probe.wasm"]  # fmt: skip
        process.run(argv, "swiftc", cwd=scratch)
        return f"swift {self.toolchain(guest)['swift']} links {EMBEDDED_TRIPLE}"

    def detect(self, folder: Path) -> list[str] | None:
        if not (folder / "Package.swift").is_file() and not any(folder.glob("*.swift")):
            return None
        return ["mode: embedded  # or wasi, with a Swift SDK for WebAssembly"]


LANGUAGE = Swift()
