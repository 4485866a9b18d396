"""The package's shape, checked from its source with `ast`: one folder per concern,
layered, without import circles, and no function with a long parameter list.

Every import counts: at module level, inside functions (a deferred import is still a
dependency), under `if TYPE_CHECKING:` (a lower layer that needs a type of a higher
one declares a Protocol of what it uses instead), and a module named in a string (the
`BACKENDS` and `LANGUAGES` registries load theirs with `importlib`).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "syntra"

LAYERS = {
    "core": 0,  # syntra.* modules and syntra.config: errors, paths, refs, plan, records, ...
    "oci": 1,  # the registry client, digests, media types, the OCI layout, locate
    "supply": 2,  # keys, signatures, attestations, SBOMs, verification
    "plugins": 3,  # the host runtime: sandbox, calls, worker, code cache, remote plugins
    "registry": 4,  # copying, inspecting, the local registry
    "wasm": 5,  # the guest build stage and its languages
    "image": 6,  # jobs, inputs, build backends, rendering, image tests, publishing
    "supplychain": 6,  # the supply stage: sign and attest what was pushed (needs wasm)
    "release": 7,  # promote, release
    "ci": 7,  # the generated workflows and their build matrix
    "pipeline": 8,  # context, stages, doit tasks, preflight, build report
    "up": 8,  # `syntra up`: the compose file and the stack
    "cli": 9,  # argument parsing and everything that prints
}
"""A module may import from its own layer or a lower one, never a higher one."""

MAX_PARAMETERS = 6
"""More than this, and the parameters that travel together become a small dataclass."""
KEYWORD_OPTIONS = {
    "syntra.plugins.load": "the documented Python API: keyword-only options with defaults",
    "syntra.process.run": "subprocess.run's keyword-only options",
}
"""Where keyword-only options with defaults are the interface, as in the standard library."""


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def layer(module: str) -> str:
    part = module.split(".")[1] if "." in module else ""
    if part == "__main__":
        return "cli"
    if part == "tasks":  # the doit entry point older dodo.py files import
        return "pipeline"
    return part if part in LAYERS else "core"


def imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The syntra modules `module` imports: each name's own module and every package on
    the way to it, since Python runs `syntra/__init__.py` and `syntra/oci/__init__.py`
    before `syntra.oci.digest`; and the package a `from … import` names, even the
    module's own (`from syntra.oci import digest` in a module `syntra/oci/__init__.py`
    imports is a circle)."""

    def owner(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    tree = ast.parse(path.read_text())
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    yield from registered(tree, known)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *filter(None, [base])])
            names = [f"{base}.{alias.name}" for alias in node.names]
            if (named := owner(base)) and named != module:
                yield named  # the package named, even the module's own: its __init__ runs
        else:
            continue
        for name in names:
            if name.split(".")[0] != "syntra":
                continue
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                found = owner(".".join(parts[:depth]))
                if found and found != module and not module.startswith(f"{found}."):
                    yield found


def registered(tree: ast.Module, known: dict[str, Path]) -> Iterator[str]:
    """The modules of a registry (`BACKENDS = {"podman": "syntra.image.build.podman"}`):
    a public upper-case dict at module level whose values name modules, which it
    imports by name with `importlib`. (`syntra/__init__.py`'s private `_HOMES` is the
    PEP 562 table of its public API, loaded on first use, not a registry.)"""
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)):
            continue
        names = [target.id for target in node.targets if isinstance(target, ast.Name)]
        if not any(name.isupper() and not name.startswith("_") for name in names):
            continue
        for value in node.value.values:
            if isinstance(value, ast.Constant) and value.value in known:
                yield str(value.value)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {module: set(imports(module, path, known)) for module, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_deferred_imports() -> None:
    edges = graph()
    assert "syntra.cli.commands" in edges["syntra.cli"]  # imported inside main()
    assert "syntra.plan" in edges["syntra.plugins.sandbox"]  # under TYPE_CHECKING
    assert "syntra.image.build.container" in edges["syntra.image.build"]  # BACKENDS
    assert "syntra.wasm.languages.swift" in edges["syntra.wasm.languages"]  # LANGUAGES
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles() -> None:
    assert cycles(graph()) == []


def test_no_import_runs_up_a_layer() -> None:
    upward = [
        f"{module} ({layer(module)}) imports {other} ({layer(other)})"
        for module, others in sorted(graph().items())
        for other in sorted(others)
        if LAYERS[layer(other)] > LAYERS[layer(module)]
    ]
    assert upward == []


def test_every_folder_is_a_layer() -> None:
    folders = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    assert folders - set(LAYERS) == {"config"}  # the configuration is part of the core


def test_no_function_takes_more_than_six_parameters() -> None:
    long = []
    for module, path in sorted(modules().items()):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                arguments = node.args
                named = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
                count = len([a for a in named if a.arg not in ("self", "cls")])
                if count > MAX_PARAMETERS and f"{module}.{node.name}" not in KEYWORD_OPTIONS:
                    long.append(f"{module}.{node.name}: {count}")
    assert long == []


def _loaded_by(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    env_path = str(PACKAGE.parent)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
    )
    return set(result.stdout.split())


HEAVY = {"pydantic", "jinja2", "ruamel", "syntra.config", "syntra.plan", "rich", "doit"}


def test_the_embeddable_api_loads_no_configuration() -> None:
    """`syntra.oci` and `syntra.plugins` are used from applications: importing them
    loads neither the configuration model nor pydantic, jinja2 or ruamel."""
    for statement in ("import syntra.oci", "import syntra.plugins", "import syntra"):
        loaded = _loaded_by(statement)
        assert {name for name in loaded if name.split(".")[0] in HEAVY} == set(), statement
        assert loaded & HEAVY == set(), statement


def test_the_plugin_api_loads_its_runtime_with_the_first_plugin() -> None:
    """`import syntra.plugins` costs about what `python -c pass` does: wasmtime, the
    registry client and the supply chain load when a plugin does."""
    loaded = _loaded_by("import syntra.plugins")
    assert {name.split(".")[0] for name in loaded} & {"wasmtime", "requests", "oras"} == set()
    assert {name for name in loaded if name.startswith("syntra.")} == {
        "syntra.errors",
        "syntra.fsutil",  # standard library only: the check of a manifest's file names
        "syntra.plugins",
        "syntra.version",
    }


def test_the_version_loads_no_commands() -> None:
    loaded = _loaded_by("from syntra.cli import main; main(['--version'])")
    assert not {name for name in loaded if name.startswith("syntra.cli.")}
    assert {"pydantic", "importlib.metadata", "syntra.config"} & loaded == set()


def test_the_configuration_names_every_build_backend() -> None:
    """syntra.yaml's `builder` choices live in the core (the model validates them); the
    backends live in the image layer: both name the same builders."""
    from syntra.config.model import BUILDERS
    from syntra.image.build import BACKENDS

    assert set(BUILDERS) == {"auto", *BACKENDS}


def test_the_oci_layer_knows_no_configuration() -> None:
    """`oci/` takes registries and logins from a `Registries` it is given, never from
    syntra.yaml's model: it imports nothing of `syntra.config` (nor the plan built on it)."""
    leaks = [
        f"{module} imports {other}"
        for module, others in sorted(graph().items())
        if module.startswith("syntra.oci")
        for other in sorted(others)
        if other.startswith(("syntra.config", "syntra.plan"))
    ]
    assert leaks == []


@pytest.mark.unit
def test_the_unit_lane_starts_no_program() -> None:
    """In the unit lane (`-m unit`, tests/unit_lane.py), starting any program fails the
    test, however it is started."""
    from tests.conftest import SubprocessInUnitLane

    with pytest.raises(SubprocessInUnitLane):
        subprocess.run(["true"], check=False)
    with pytest.raises(SubprocessInUnitLane):
        os.system("true")
