"""Run signed wasm plugins from a Python application.

    from syntra import plugins

    # From a registry: the signature is verified before anything is compiled.
    pricing = plugins.load("registry.example.com/shop/pricing:1.4.0",
                           key="cosign.pub", limits=plugins.Limits(max_ms=200))
    # A local file: by name, checked against the SHA-256 given (or run as it is).
    rules = plugins.load_file(Path("rules.wasm"), sha256="9f86d0…")
    pricing.call("price", 100, 0.19)        # {'net': 100.0, 'vat': 19.0, 'gross': 119.0}
    pricing.exports                          # {'price': 'func(net: f64, rate: f64) -> quote', …}

    # Inside an image built with `plugins:`: the manifest Syntra wrote at build time,
    # each file checked against its digest, each plugin with the limits of syntra.yaml.
    bundled = plugins.load_manifest("/opt/plugins/plugins.json")
    bundled["fib-python"].call("fib", 24)   # 46368

Calls are serialised per plugin (safe from any thread); each runs in a fresh store in
the plugin's call worker (a child process, ended when a call outlives `max_ms`), so a
trap, a timeout or an exhausted memory limit leaves nothing behind for the next call.
Arguments and results are JSON-like values converted by the function's WIT types.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syntra.errors import Refused, SyntraError, ToolError
from syntra.fsutil import confined

if TYPE_CHECKING:
    from syntra.oci.locate import Registries
    from syntra.plugins.remote import Pulled
    from syntra.plugins.sandbox import CallResult
    from syntra.supply.verify import Trust

__all__ = ["Limits", "Metrics", "Plugin", "default_cache", "load", "load_file", "load_manifest"]

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


@dataclass(frozen=True)
class Limits:
    """Per call: linear memory in bytes, wall-clock milliseconds, and optional fuel."""

    max_mem: int = 64 << 20
    max_ms: int = 1000
    fuel: int | None = None


@dataclass(frozen=True)
class Metrics:
    """How a plugin was obtained: times in milliseconds, and whether caches were hit."""

    reference: str | None = None
    pull_ms: float = 0.0
    verify_ms: float = 0.0
    compile_ms: float = 0.0
    blob_cached: bool = False
    compile_cached: bool = False
    verified: bool = False


@dataclass
class Plugin:
    name: str
    wasm: Path
    limits: Limits
    cache: Path
    metrics: Metrics = field(default_factory=Metrics)
    runtime: str = "wasmtime"
    """wasmtime, or wasm3 (core modules; no fuel)."""

    def __post_init__(self) -> None:
        from syntra.plugins.sandbox import open_runtime

        limits = asdict(self.limits)
        self._sandbox = open_runtime(self.runtime, self.name, self.wasm, limits, self.cache)
        self._lock = threading.Lock()
        self.metrics = Metrics(
            **{
                **asdict(self.metrics),
                "compile_ms": self._sandbox.compile_ms,
                "compile_cached": self._sandbox.cache_hit,
            }
        )

    @property
    def kind(self) -> str:
        return self._sandbox.kind

    @property
    def exports(self) -> dict[str, str]:
        """Exported functions and their signatures (WIT spelling for components)."""
        return self._sandbox.exports()

    def call(self, function: str, *args: Any) -> Any:
        """The result of `function(*args)` under the limits; SyntraError when it fails."""
        return self.measure(function, *args).value

    def measure(self, function: str, *args: Any) -> CallResult:
        """Like `call`, with the call's time, memory and fuel."""
        with self._lock:
            return self._sandbox.call(function, args)

    def close(self) -> None:
        """End the call worker now (else it ends with the plugin; a call starts another)."""
        with self._lock:
            self._sandbox.close()


def default_cache() -> Path:
    """Where compiled plugins are kept: $SYNTRA_CACHE, else $XDG_CACHE_HOME/syntra, else
    ~/.cache/syntra. (The runtime, wasmtime, loads with the first plugin, not with this
    module.)"""
    from syntra.plugins import codecache

    return codecache.default_cache()


def load(
    reference: str,
    *,
    key: str | Path | None = None,
    identity: str | None = None,
    issuer: str = GITHUB_ISSUER,
    limits: Limits | Mapping[str, Any] | None = None,
    cache: Path | None = None,
    insecure: bool = False,
    insecure_skip_verify: bool = False,
    runtime: str = "wasmtime",
) -> Plugin:
    """A plugin from a registry reference, verified with the public `key` (cosign's
    format) or a keyless `identity` (a regular expression the signing certificate must
    match, with `issuer`). `reference` is always a registry reference, never a file
    (`load_file` loads those). `insecure` talks plain HTTP to the registry; `runtime`
    "wasm3" runs a core module in wasm3 instead of wasmtime (no fuel)."""
    if not isinstance(reference, str):
        raise SyntraError(
            f"plugins.load takes a registry reference, not {type(reference).__name__} "
            f"{reference!r}: a local file is loaded with plugins.load_file(path, sha256=...)"
        )
    trust = None if insecure_skip_verify else trust_from(key, identity, issuer)
    chosen = limits_of(limits)
    source = Source(reference, trust, insecure)
    return load_reference(source, chosen, cache or default_cache(), runtime)


def load_file(
    path: str | Path,
    *,
    sha256: str | None = None,
    limits: Limits | Mapping[str, Any] | None = None,
    cache: Path | None = None,
    name: str | None = None,
    runtime: str = "wasmtime",
) -> Plugin:
    """A plugin from a local wasm file. With `sha256` (hex), its bytes must have that
    digest (Refused otherwise); without, the file is run as it is: it is as trusted as
    whoever could write it. `metrics.verified` says which."""
    wasm = Path(path)
    verified = sha256 is not None
    if sha256 is not None:
        try:
            actual = hashlib.sha256(wasm.read_bytes()).hexdigest()
        except OSError as exc:
            raise ToolError(f"{wasm}: cannot read it ({exc.strerror})") from None
        if actual != sha256.lower().removeprefix("sha256:"):
            raise Refused(f"{wasm}: its SHA-256 is {actual}, expected {sha256}")
    metrics = Metrics(reference=str(wasm), verified=verified)
    chosen = limits_of(limits)
    return Plugin(name or wasm.stem, wasm, chosen, cache or default_cache(), metrics, runtime)


@dataclass(frozen=True)
class Source:
    """A plugin in a registry: its reference, what its signature must verify against
    (None: not checked), plain HTTP or not, and the run's registry clients (syntra.yaml's
    registries and their logins; None: stored logins only)."""

    reference: str
    trust: Trust | None
    insecure: bool = False
    registries: Registries | None = None


def load_reference(
    source: Source, limits: Limits, cache: Path, runtime: str = "wasmtime"
) -> Plugin:
    """The plugin at `source`, pulled and verified against its trust."""
    from syntra.oci.digest import Damaged
    from syntra.oci.locate import Registries
    from syntra.plugins.codecache import private
    from syntra.plugins.remote import pull

    registries = source.registries or Registries()
    where, version = registries.for_ref(source.reference, source.insecure)
    pulled = pull(where, version, source.trust, private(cache))
    name = where.path.rsplit("/", 1)[-1]
    try:
        return Plugin(name, pulled.wasm, limits, cache, _pulled(pulled, source), runtime)
    except Damaged:  # the cached blob changed since it was fetched: fetch it again
        pulled.wasm.unlink(missing_ok=True)
        pulled = pull(where, version, source.trust, private(cache))
        return Plugin(name, pulled.wasm, limits, cache, _pulled(pulled, source), runtime)


def _pulled(pulled: Pulled, source: Source) -> Metrics:
    return Metrics(
        reference=pulled.reference,
        pull_ms=pulled.pull_ms,
        verify_ms=pulled.verify_ms,
        blob_cached=pulled.cached,
        verified=source.trust is not None,
    )


def trust_from(key: str | Path | None, identity: str | None, issuer: str) -> Trust:
    """What a signature must verify against: a public key or a keyless identity."""
    from syntra.supply.verify import trust_in

    keyless = None
    if identity is not None:
        from syntra.config.model import Signing

        keyless = Signing(mode="keyless", identity=identity, issuer=issuer)
    missing = (
        "nothing to verify the plugin's signature against: give key= or identity= "
        "(insecure_skip_verify=True runs it unverified)"
    )
    return trust_in(Path(key) if key is not None else None, keyless, Path.cwd(), missing)


def load_manifest(path: str | Path, *, cache: Path | None = None) -> dict[str, Plugin]:
    """The plugins an image bundles, from the `plugins.json` Syntra wrote beside them:
    each file must have the digest the manifest names (Refused otherwise)."""
    manifest = Path(path)
    try:
        entries = json.loads(manifest.read_text())["plugins"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SyntraError(f"{manifest}: not a plugin manifest ({exc})") from None
    found = {}
    for entry in entries:
        try:
            name, file, expected = str(entry["name"]), str(entry["file"]), str(entry["sha256"])
            limits = limits_of(entry.get("limits"))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise SyntraError(f"{manifest}: not a plugin manifest (an entry lacks {exc})") from None
        if confined(file, deepest=1) != file:
            raise SyntraError(f"{manifest}: not a plugin manifest ('{file}' is not a file name)")
        try:
            found[name] = load_file(
                manifest.parent / file, sha256=expected, limits=limits, cache=cache, name=name
            )
        except Refused as refused:
            raise Refused(f"{refused}, as the manifest says") from None
    return found


def limits_of(given: Limits | Mapping[str, Any] | None) -> Limits:
    """Limits as given, or from a mapping (`max_mem` may be a size such as `64Mi`)."""
    if isinstance(given, Limits):
        return given
    from syntra.config.model import Limits as Declared

    checked = Declared.model_validate(  # syntra.yaml's rules: sizes, positive numbers
        {k: v for k, v in (given or {}).items() if k in ("max_mem", "max_ms", "fuel")}
    )
    return Limits(checked.max_mem, checked.max_ms, checked.fuel)
