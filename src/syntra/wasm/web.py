"""Guests in the browser: `wasm.<guest>.web` writes dist/web/<guest>/.

For a core module: the optimised module, `<guest>.js` (an ES module that instantiates it
with `WebAssembly.instantiateStreaming` and wraps each numeric export with argument
checks), `_wasi.js` (a small WASI preview 1 of our own: fd_write to the console, clocks,
random, empty args and environment, proc_exit; everything else throws naming the call),
`<guest>.d.ts` from the module's export types, and `index.html`, which calls each export
with the guest's test values and shows the results. Strings cross through the guest's
memory when it exports an allocator (`cabi_realloc` or `malloc`) next to `memory`.
A component goes through `jco transpile` when jco is on PATH.

Everything derives from the wasm bytes, syntra.yaml and the templates shipped with
Syntra, so two clones write the same bytes. The folder is written beside the old one and
renamed over it: never half-written.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import wasmtime

from syntra import process
from syntra.errors import SyntraError
from syntra.formats import rfc3339
from syntra.oci.locate import Where
from syntra.oci.media import FILE_MEDIA_TYPES, TITLE
from syntra.paths import BUILTIN_TEMPLATES
from syntra.plan import GuestPlan
from syntra.plugins import wasi
from syntra.plugins.binary import kind_of, local_names, unnamed_signature
from syntra.plugins.calls import check_imports
from syntra.records import WebBundle
from syntra.supply.attach import WEB_BUNDLE, Attachments, Layer

WASI = wasi.MODULE
NUMBERS = ("i32", "i64", "f32", "f64")
JCO_HINT = "npm install -g @bytecodealliance/jco"
NO_EXPORTS = (
    "it exports no function, so a page has nothing to call (export one, or name it in `exports:`)"
)
_WORDS = (
    "break case catch class const continue debugger default delete do else enum export "
    "extends false finally for function if import in instanceof new null return super "
    "switch this throw true try typeof var void while with yield let static await "
    "arguments eval functions raw writeString readString i32 i64 f32 f64 float arity memory "
    "imports instance encoder decoder wasiImports wasi control called output args "
    "fetch URL WebAssembly BigInt Number Object TypeError RangeError Error Uint8Array "
    "TextEncoder TextDecoder globalThis console Promise"
)
_RESERVED = frozenset(_WORDS.split())
"""JavaScript's reserved words, and the names the module uses besides the wrappers (its
own and the globals it calls): an export is never named over one."""


@dataclass(frozen=True)
class Export:
    """A function export the bundle wraps: its name in the module and in JavaScript."""

    name: str
    js: str
    params: list[str]
    results: list[str]
    names: tuple[str, ...] = ()
    """The parameters' names the module records (its `name` section), when it does."""

    @property
    def arguments(self) -> list[str]:
        """The wrapper's parameters: the module's names as identifiers when it records one
        for each (distinct), else `a0`, `a1`, …"""
        given = [js_name(n) for n in self.names[: len(self.params)] if n]
        if len(given) == len(self.params) and len(set(given)) == len(given):
            return given
        return [f"a{n}" for n in range(len(self.params))]

    @property
    def signature(self) -> str:
        results = f" -> {', '.join(self.results)}" if self.results else ""
        return f"{self.name}({', '.join(self.params)}){results}"

    @property
    def returns(self) -> str:
        types = ["bigint" if t == "i64" else "number" for t in self.results]
        if not types:
            return "void"
        return types[0] if len(types) == 1 else f"[{', '.join(types)}]"


@dataclass(frozen=True)
class Allocator:
    name: str
    call: str
    """The JavaScript expression that allocates `bytes.length` bytes in the guest."""


@dataclass(frozen=True)
class Surface:
    """What a module shows JavaScript: wrapped exports, the ones left raw, an allocator."""

    exports: list[Export]
    unwrapped: list[str]
    allocator: Allocator | None


@dataclass(frozen=True)
class Bundle:
    folder: Path
    files: list[str]
    """File names in the folder, sorted."""
    note: str = ""


def js_name(name: str) -> str:
    """A JavaScript identifier for an export name: the name itself when it is one;
    else its runs of letters, digits, `_` and `$` joined in camelCase (`next-color` ->
    `nextColor`); `_` before one that starts with a digit or is a reserved word
    (`1st` -> `_1st`, `delete` -> `_delete`)."""
    parts = [p for p in re.split(r"[^A-Za-z0-9_$]+", name) if p]
    base = (parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])) if parts else "_"
    return f"_{base}" if base[0].isdigit() or base in _RESERVED else base


def js_names(names: list[str]) -> dict[str, str]:
    """Each export name's identifier (`js_name`); two names that would share one are
    refused in one line, never renamed behind the user's back."""
    found: dict[str, str] = {}
    for name in names:
        js = js_name(name)
        if js in found:
            raise SyntraError(
                f"the exports '{found[js]}' and '{name}' would both be '{js}' in "
                "JavaScript: rename one"
            )
        found[js] = name
    return {name: js for js, name in found.items()}


def surface(data: bytes) -> Surface:
    """The exports of a core module, refusing imports a browser page cannot give."""
    if why := unnamed_signature(data):
        raise SyntraError(f"no bundle: {why}")
    try:
        module = wasmtime.Module(wasmtime.Engine(), data)
    except wasmtime.WasmtimeError as exc:
        raise SyntraError(f"wasmtime cannot load it: {str(exc).splitlines()[0]}") from None
    foreign = [f"{i.module}.{i.name}" for i in module.imports if i.module != WASI]
    if foreign:
        raise SyntraError(
            f"it imports {', '.join(foreign)}, which a browser page cannot give it "
            f"(the bundle provides {WASI} only)"
        )
    check_imports(module)
    wrapped, unwrapped = [], []
    functions: dict[str, tuple[list[str], list[str]]] = {}
    memory = False
    for export in module.exports:
        if isinstance(export.type, wasmtime.MemoryType) and export.name == "memory":
            memory = True
        if not isinstance(export.type, wasmtime.FuncType):
            continue
        params = [str(t) for t in export.type.params]
        results = [str(t) for t in export.type.results]
        functions[export.name] = (params, results)
        if export.name.startswith("_") or export.name == "cabi_realloc":
            continue  # the runtime's own (`_initialize`, `_start`) and the allocator
        if all(t in NUMBERS for t in (*params, *results)):
            wrapped.append(Export(export.name, "", params, results))
        else:
            unwrapped.append(export.name)
    allocator = None
    if memory and functions.get("cabi_realloc") == (["i32"] * 4, ["i32"]):
        allocator = Allocator("cabi_realloc", "raw.cabi_realloc(0, 0, 1, bytes.length)")
    elif memory and functions.get("malloc") == (["i32"], ["i32"]):
        allocator = Allocator("malloc", "raw.malloc(bytes.length)")
    if not wrapped and not unwrapped:
        raise SyntraError(NO_EXPORTS)
    names, recorded = js_names([e.name for e in wrapped]), local_names(data)
    named = [
        Export(e.name, names[e.name], e.params, e.results, tuple(recorded.get(e.name, [])))
        for e in wrapped
    ]
    return Surface(named, unwrapped, allocator)


def comment(text: str) -> str:
    """An export's name (the module's own text, anything at all) made safe inside a `//`
    or `/* */` comment: one line, no `*/`."""
    return json.dumps(text)[1:-1].replace("*/", "*\\/")


SAFE_INTEGER = 2**53 - 1
"""JavaScript's numbers hold integers exactly up to here."""


def exact_json(value: Any) -> Any:
    """`value` with each integer JavaScript's numbers cannot hold exactly written as
    `{"$bigint": "<decimal>"}`, which the page reads back as a BigInt."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) > SAFE_INTEGER:
        return {"$bigint": str(value)}
    if isinstance(value, list):
        return [exact_json(v) for v in value]
    if isinstance(value, dict):
        return {k: exact_json(v) for k, v in value.items()}
    return value


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(BUILTIN_TEMPLATES / "web"),
        autoescape=jinja2.select_autoescape(["html.j2"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["comment"] = comment
    environment.filters["exact_json"] = exact_json
    return environment


def module_files(guest: GuestPlan, data: bytes, shown: Surface) -> dict[str, bytes]:
    """The bundle of a core module (its `surface`): file name -> bytes."""
    wasm = f"{guest.name}.wasm"
    title = guest.web.title if guest.web else guest.name
    values: dict[str, Any] = {
        "name": guest.name,
        "wasm": wasm,
        "title": title,
        "exports": shown.exports,
        "unwrapped": shown.unwrapped,
        "allocator": shown.allocator,
        "tests": guest.tests,
        "preview1": sorted(wasi.PREVIEW1),
        "stdio_limit": wasi.STDIO_LIMIT,
        "said_limit": wasi.SAID_LIMIT,
        "realtime_ns": wasi.REALTIME_RESOLUTION_NS,
        "monotonic_ns": wasi.MONOTONIC_RESOLUTION_NS,
    }
    env = _environment()
    rendered = {
        f"{guest.name}.js": "guest.js.j2",
        f"{guest.name}.d.ts": "guest.d.ts.j2",
        "_wasi.js": "_wasi.js.j2",  # no guest's name starts with `_`
        "index.html": "index.html.j2",
    }
    files = {name: env.get_template(t).render(values).encode() for name, t in rendered.items()}
    return {wasm: data, **files}


def component_files(guest: GuestPlan, wasm: Path, jco: str) -> dict[str, bytes]:
    """A component transpiled by jco (its own loader and preview 2 shims)."""
    with tempfile.TemporaryDirectory(prefix="syntra-jco-") as scratch:
        out = Path(scratch) / "out"
        command = [jco, "transpile", str(wasm), "--name", guest.name, "-o", str(out)]
        process.run(command, "jco transpile", timeout=600)  # a failure: one ToolError line
        return {
            str(path.relative_to(out)): path.read_bytes()
            for path in sorted(out.rglob("*"))
            if path.is_file()
        }


def build(guest: GuestPlan, wasm: Path, folder: Path) -> Bundle:
    """Write the guest's bundle to `folder`; a component without jco writes nothing and
    says how to get jco."""
    data = wasm.read_bytes()
    if kind_of(data) == "component":
        jco = shutil.which("jco")
        if jco is None:  # and no bundle of an earlier run left to be attached
            shutil.rmtree(folder, ignore_errors=True)
            return Bundle(folder, [], f"a component: its web bundle needs jco ({JCO_HINT})")
        files = component_files(guest, wasm, jco)
        note = "transpiled by jco"
    else:
        files, note = module_files(guest, data, surface(data)), ""
    write_folder(folder, files)
    return Bundle(folder, sorted(files), note)


def write_folder(folder: Path, files: Mapping[str, bytes]) -> None:
    """`folder` with exactly `files`, swapped in whole: a reader sees the old bundle or
    the new one."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    old = folder.with_name(f".{folder.name}.old")
    try:
        for name, data in files.items():
            target = fresh / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        fresh.chmod(0o755)
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        fresh.rename(folder)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def bundle_files(folder: Path) -> dict[str, bytes]:
    """The files of a written bundle, by their path in it."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def layers(files: Mapping[str, bytes]) -> list[Layer]:
    """One layer per file, titled with its path (what `oras pull` writes)."""
    return [
        Layer(
            data, FILE_MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream"), {TITLE: name}
        )
        for name, data in sorted(files.items())
    ]


def bundle_annotations(guest: GuestPlan) -> dict[str, str]:
    """The bundle's annotations: no version or commit, so a commit that leaves the guest
    as it is attaches the same bundle again."""
    return {
        "org.opencontainers.image.created": rfc3339(guest.source_date_epoch),
        TITLE: f"{guest.name} web bundle",
    }


def attach(where: Where, guest: GuestPlan, artifact: str, folder: Path) -> WebBundle | None:
    """The bundle in `folder` as a referrer of the guest's artifact (digest `artifact`):
    files as layers titled with their paths; None when there is no bundle to attach."""
    files = bundle_files(folder) if folder.is_dir() else {}
    if not files:
        return None
    pushed = where.registry.get_manifest(where.path, artifact)
    subject = {"mediaType": pushed.media_type, "digest": artifact, "size": len(pushed.data)}
    attachments = Attachments(where.registry, where.path)
    referrer = attachments.refer(subject, layers(files), WEB_BUNDLE, bundle_annotations(guest))
    return WebBundle(digest=referrer.digest, size=len(referrer.data), files=sorted(files))
