"""Stage: ci. The GitHub Actions workflows that run Syntra, generated from the plan.

- docker.yml: one job per image and platform on a native runner (`syntra build
  --push-by-digest`), a merge job per image, then signing and verification;
- macos_container.yml: `doit container` on a macOS runner;
- wasm.yml: guests with a Swift SDK for WebAssembly installed;
- release.yml: `syntra release` on `v*` tags.

Least privilege: the workflow grants `contents: read`; jobs that push or sign ask
for more. Secrets reach steps only as environment variables, never on a command
line. Actions are pinned to the refs in `ci.actions` (full commit SHAs there).
"""

from __future__ import annotations

import difflib
import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

from syntra.config import Loaded
from syntra.fsutil import write_if_changed
from syntra.layout import slug
from syntra.plan import Plan

WORKFLOWS_DIR = ".github/workflows"
HEADER = (
    "# Generated from syntra.yaml by `syntra ci` — do not edit.\n"
    "# Change syntra.yaml (ci:) and run `doit ci`.\n"
)
DEFAULT_ACTIONS = {
    "actions/checkout": "v4",
    "actions/setup-python": "v5",
    "actions/cache": "v4",
    "actions/upload-artifact": "v4",
    "actions/download-artifact": "v4",
    "swiftwasm/setup-swiftwasm": "v2",
}
Job = dict[str, Any]


class _Steps:
    """The steps every job shares, with actions pinned as syntra.yaml says."""

    def __init__(self, loaded: Loaded) -> None:
        self.ci = loaded.config.ci
        self.pins = {**DEFAULT_ACTIONS, **self.ci.actions}

    def uses(self, action: str, **with_: Any) -> dict[str, Any]:
        step: dict[str, Any] = {"uses": f"{action}@{self.pins[action]}"}
        if with_:
            step["with"] = with_
        return step

    def setup(self) -> list[dict[str, Any]]:
        return [
            self.uses("actions/checkout", **{"fetch-depth": 0}),
            self.uses("actions/setup-python", **{"python-version": self.ci.python, "cache": "pip"}),
            {"name": "Install Syntra", "run": self.ci.install},
        ]


def _secret(name: str) -> str:
    return f"${{{{ secrets.{name} }}}}"


def _secrets_env(loaded: Loaded, *, signing: bool = False) -> dict[str, str]:
    """Repository variables named in `ci.variables`, registry logins from repository
    secrets, and the signing passphrase only where asked."""
    env = {name: f"${{{{ vars.{name} }}}}" for name in loaded.config.ci.variables}
    for registry in loaded.config.registries.values():
        if registry.credentials:
            for name in (registry.credentials.username_env, registry.credentials.password_env):
                env[name] = _secret(name)
    mode = loaded.config.supply_chain.signing
    if signing and mode.mode == "key":
        env[mode.passphrase_env] = _secret(mode.passphrase_env)
    return env


def _key_step(loaded: Loaded, *, private: bool) -> list[dict[str, Any]]:
    """The public key (a repository variable) for verifying; the private key (a secret)
    too where signing."""
    signing = loaded.config.supply_chain.signing
    if signing.mode != "key" or not signing.key:
        return []
    env = {"PUBLIC_KEY": "${{ vars.SYNTRA_SIGNING_PUBLIC_KEY }}"}
    script = (
        f'mkdir -p "$(dirname {signing.key})"\nprintf \'%s\\n\' "$PUBLIC_KEY" > {signing.key}.pub\n'
    )
    if private:
        env["SIGNING_KEY"] = "${{ secrets.SYNTRA_SIGNING_KEY }}"
        script += f"printf '%s\\n' \"$SIGNING_KEY\" > {signing.key}\n"
    return [{"name": "Signing keys" if private else "Public key", "env": env, "run": script}]


def _guests_job(loaded: Loaded, steps: _Steps) -> Job:
    """Guests first: images bundle them as plugins, and the signing job needs their records."""
    return {
        "name": "wasm guests",
        "runs-on": "ubuntu-24.04",
        "permissions": {"contents": "read", "packages": "write"},
        "env": _secrets_env(loaded),
        "steps": [
            *steps.setup(),
            {"name": "wasm-opt", "run": "sudo apt-get update && sudo apt-get install -y binaryen"},
            {"name": "Build, optimise, test and publish the guests", "run": "doit wasm"},
            steps.uses("actions/upload-artifact", name="plugins", path=".syntra/wasm/*.wasm"),
            steps.uses("actions/upload-artifact", name="record-wasm", path=".syntra/out/"),
        ],
    }


def docker(loaded: Loaded, plan: Plan) -> dict[str, Any]:
    steps = _Steps(loaded)
    runners = loaded.config.ci.runners
    include = [
        {
            "image": entry["image"],
            "platform": entry["platform"],
            "slug": slug(entry["platform"]),
            "runner": runners.get(entry["platform"], "ubuntu-24.04"),
        }
        for entry in plan.matrix
    ]
    guests = [g for g in plan.guests if g.destination.registry]
    build: Job = {
        "name": "build ${{ matrix.image }} ${{ matrix.platform }}",
        **({"needs": "wasm"} if guests else {}),
        "runs-on": "${{ matrix.runner }}",
        "permissions": {"contents": "read", "packages": "write"},
        "strategy": {"fail-fast": False, "matrix": {"include": include}},
        "env": _secrets_env(loaded),
        "steps": [
            *steps.setup(),
            *(
                [steps.uses("actions/download-artifact", name="plugins", path=".syntra/wasm")]
                if guests
                else []
            ),
            {
                "name": "Build and push by digest",
                "env": {"IMAGE": "${{ matrix.image }}", "PLATFORM": "${{ matrix.platform }}"},
                "run": 'syntra build "$IMAGE" --platform "$PLATFORM" --push-by-digest',
            },
            steps.uses(
                "actions/upload-artifact",
                name="digests-${{ matrix.image }}-${{ matrix.slug }}",
                path=".syntra/digests/${{ matrix.image }}/",
                **{"retention-days": 1},
            ),
        ],
    }
    merge: Job = {
        "name": "merge ${{ matrix.image }}",
        "needs": "build",
        "runs-on": "ubuntu-24.04",
        "permissions": {"contents": "read", "packages": "write"},
        "strategy": {"matrix": {"image": [image.name for image in plan.images]}},
        "env": _secrets_env(loaded),
        "steps": [
            *steps.setup(),
            steps.uses(
                "actions/download-artifact",
                pattern="digests-${{ matrix.image }}-*",
                path=".syntra/digests/${{ matrix.image }}",
                **{"merge-multiple": True},
            ),
            {
                "name": "Push the index with every tag",
                "env": {"IMAGE": "${{ matrix.image }}"},
                "run": 'syntra merge "$IMAGE"',
            },
            steps.uses(
                "actions/upload-artifact",
                name="record-${{ matrix.image }}",
                path=".syntra/out/",
                **{"retention-days": 1},
            ),
        ],
    }
    jobs: dict[str, Job] = {"wasm": _guests_job(loaded, steps)} if guests else {}
    jobs |= {"build": build, "merge": merge}
    if loaded.config.supply_chain.signing.mode != "none":
        jobs["supply"] = {
            "name": "sign, attest, verify",
            "needs": "merge",
            "runs-on": "ubuntu-24.04",
            "permissions": {"contents": "read", "packages": "write", "id-token": "write"},
            "env": _secrets_env(loaded, signing=True),
            "steps": [
                *steps.setup(),
                steps.uses(
                    "actions/download-artifact",
                    pattern="record-*",
                    path=".syntra/out",
                    **{"merge-multiple": True},
                ),
                *_key_step(loaded, private=True),
                {"name": "Sign and attest", "run": "syntra supply"},
                {"name": "Verify", "run": "syntra verify --all"},
            ],
        }
    return _workflow(
        "docker", {"push": {"branches": ["main"], "tags": ["v*"]}, "pull_request": {}}, jobs
    )


def macos_container(loaded: Loaded) -> dict[str, Any]:
    steps = _Steps(loaded)
    job: Job = {
        "runs-on": loaded.config.ci.macos_runner,
        "permissions": {"contents": "read", "packages": "write"},
        "env": _secrets_env(loaded),
        "steps": [
            *steps.setup(),
            {"name": "Build and push with Apple's container", "run": "doit container"},
        ],
    }
    return _workflow(
        "macos_container",
        {"push": {"branches": ["main"]}, "workflow_dispatch": {}},
        {"container": job},
    )


def wasm(loaded: Loaded, plan: Plan) -> dict[str, Any]:
    steps = _Steps(loaded)
    builds = [f"{guest.source}/.build" for guest in plan.guests if guest.language == "swift"]
    job: Job = {
        "runs-on": "ubuntu-24.04",
        "permissions": {"contents": "read", "packages": "write"},
        "env": _secrets_env(loaded),
        "steps": [
            *steps.setup(),
            {"name": "wasm-opt", "run": "sudo apt-get update && sudo apt-get install -y binaryen"},
            steps.uses("swiftwasm/setup-swiftwasm"),
            steps.uses(
                "actions/cache",
                path="\n".join(builds) if builds else ".syntra/wasm-cache",
                key="swift-build-${{ runner.os }}-"
                "${{ hashFiles('**/*.swift', '**/Package.swift') }}",
            ),
            {"name": "Build, optimise, test and publish the guests", "run": "doit wasm"},
        ],
    }
    return _workflow(
        "wasm", {"push": {"branches": ["main"], "tags": ["v*"]}, "pull_request": {}}, {"wasm": job}
    )


def release(loaded: Loaded) -> dict[str, Any]:
    """After the docker workflow succeeded for a `v*` tag (it builds, signs and verifies
    everything first): promote, on the commit that workflow ran for."""
    steps = _Steps(loaded)
    run = "github.event.workflow_run"
    job: Job = {
        "if": f"${{{{ {run}.conclusion == 'success' && startsWith({run}.head_branch, 'v') }}}}",
        "runs-on": "ubuntu-24.04",
        "permissions": {"contents": "write", "packages": "write"},
        "env": _secrets_env(loaded),
        "steps": [
            steps.uses(
                "actions/checkout", **{"fetch-depth": 0, "ref": f"${{{{ {run}.head_sha }}}}"}
            ),
            *steps.setup()[1:],
            *_key_step(loaded, private=False),
            {"name": "Promote the verified digests", "run": "doit release"},
            steps.uses("actions/upload-artifact", name="release", path="dist/"),
        ],
    }
    on = {"workflow_run": {"workflows": ["docker"], "types": ["completed"]}}
    return _workflow("release", on, {"release": job})


def _workflow(name: str, on: dict[str, Any], jobs: dict[str, Job]) -> dict[str, Any]:
    return {
        "name": name,
        "on": on,
        "permissions": {"contents": "read"},
        "concurrency": {
            "group": f"{name}-${{{{ github.ref }}}}",
            "cancel-in-progress": name != "release",
        },
        "jobs": jobs,
    }


def workflows(loaded: Loaded, plan: Plan) -> dict[str, dict[str, Any]]:
    found = {"wasm.yml": wasm(loaded, plan), "release.yml": release(loaded)}
    if plan.images:
        found["docker.yml"] = docker(loaded, plan)
        found["macos_container.yml"] = macos_container(loaded)
    return dict(sorted(found.items()))


def _literal_blocks(node: Any) -> Any:
    """Multi-line scripts as `|` blocks, the way people write workflows."""
    if isinstance(node, dict):
        return {key: _literal_blocks(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_literal_blocks(item) for item in node]
    if isinstance(node, str) and "\n" in node:
        return LiteralScalarString(node if node.endswith("\n") else node + "\n")
    return node


def _dump(data: dict[str, Any]) -> str:
    yaml = YAML(typ="rt")
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    buffer = io.StringIO()
    yaml.dump(_literal_blocks(data), buffer)
    return HEADER + buffer.getvalue()


def render(loaded: Loaded, plan: Plan) -> dict[str, str]:
    """Workflow path (relative to the repository) → its text."""
    return {
        f"{WORKFLOWS_DIR}/{name}": _dump(body) for name, body in workflows(loaded, plan).items()
    }


def write(rendered: dict[str, str], root: Path) -> list[str]:
    return [path for path, text in rendered.items() if write_if_changed(root / path, text.encode())]


def drift(rendered: dict[str, str], root: Path) -> list[str]:
    diffs = []
    for path, text in rendered.items():
        current = (root / path).read_text() if (root / path).is_file() else ""
        if current != text:
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        fromfile=f"a/{path}",
                        tofile=f"b/{path}",
                    )
                )
            )
    return diffs
