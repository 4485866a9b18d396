"""Stage: ci. The GitHub Actions workflows that run Syntra, generated from the plan.

One pipeline workflow (`docker.yml`, or `wasm.yml` when there are only guests):

- pushes to main and `v*` tags: guests built, tested and published; a plan job lists
  the images x platforms whose inputs are not built yet (`syntra plan --changed`), in
  chunks of at most 256 jobs; each is built on a native runner and pushed by digest;
  one merge job assembles every index (unchanged images are only retagged); then
  signing and verification; on a `v*` tag, the release;
- pull requests: the same builds and tests with nothing pushed, no secrets and
  read-only permissions.

`macos_container.yml` builds with Apple's `container` on demand (workflow_dispatch), so
it never races the pipeline for the same tags.

Hardening: every action pinned to a full commit SHA (the table below, current majors
that run on Node 24; `ci.actions` overrides), checkouts without persisted credentials,
no caches, no permissions at the top and least privilege per job with the reason
beside each grant, secrets only in the environment of the steps that need them. No
value of syntra.yaml is written into a script: each reaches it through `env:` and a
quoted variable (names and paths validated; `ci.install` split into words, no shell).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import LiteralScalarString

from syntra import generated
from syntra.ci.matrix import chunk_count
from syntra.config import Loaded
from syntra.errors import SyntraError
from syntra.generated import Family, Generated
from syntra.paths import (
    CONFIG_FILE,
    LOCK_FILE,
    WORKFLOWS_DIR,
    digests_dir,
    plugins_dir,
    records_dir,
)
from syntra.plan import Plan
from syntra.supply import keys
from syntra.version import installed_version, pinned_install
from syntra.wasm.languages import language

HEADER = (
    "# Generated from syntra.yaml by `syntra ci` — do not edit.\n"
    "# Change syntra.yaml (ci:) and run `doit ci`.\n"
)
WORKFLOWS = Family(WORKFLOWS_DIR, ("*.yml",), HEADER.splitlines()[0])
"""Workflows `syntra ci` generated: only these are ever removed."""
DEFAULT_ACTIONS = {
    "actions/checkout": ("de0fac2e4500dabe0009e67214ff5f5447ce83dd", "v6.0.2"),
    "actions/setup-python": ("a309ff8b426b58ec0e2a45f0f869d46889d02405", "v6.2.0"),
    "actions/upload-artifact": ("b7c566a772e6b6bfb58ed0dc250532a479d7789f", "v6.0.0"),
    "actions/download-artifact": ("37930b1c2abaa49bbe596cd826c3c89aef350131", "v7.0.0"),
}
"""Commit SHAs of the action versions Syntra emits (all run on Node 24)."""
PULL_REQUEST = "github.event_name == 'pull_request'"
PUSHED = "github.event_name != 'pull_request'"
Job = dict[str, Any]

# Workflow paths, relative to the checkout.
_WASM = str(plugins_dir(Path()))
_RECORDS = str(records_dir(Path()))
_DIGESTS = str(digests_dir(Path()))


def _grants(**grants: tuple[str, str]) -> CommentedMap:
    """Job permissions, each with the reason for it as a comment."""
    found = CommentedMap()
    for scope, (level, why) in grants.items():
        found[scope.replace("_", "-")] = level
        found.yaml_add_eol_comment(why, scope.replace("_", "-"))
    return found


READ_SOURCE = ("read", "check out the repository")


class _Steps:
    """The steps every job shares, with actions pinned by SHA."""

    def __init__(self, loaded: Loaded, plan: Plan) -> None:
        self.plan = plan
        self.ci = loaded.config.ci
        self.pins = {name: sha for name, (sha, _) in DEFAULT_ACTIONS.items()} | self.ci.actions

    def uses(self, action: str, **with_: Any) -> dict[str, Any]:
        if action not in self.pins:
            raise SyntraError(
                f"ci.actions: {action} has no pinned commit: add `{action}: <full commit SHA>`"
            )
        step: dict[str, Any] = {"uses": f"{action}@{self.pins[action]}"}
        if with_:
            step["with"] = with_
        return step

    def setup(self) -> list[dict[str, Any]]:
        checkout = {"fetch-depth": 0, "persist-credentials": False}
        return [
            self.uses("actions/checkout", **checkout),
            self.uses("actions/setup-python", **{"python-version": self.ci.python}),
            {
                "name": "Install Syntra",
                "env": {"SYNTRA_INSTALL": self.install()},
                # A command and its arguments, never shell code (see ci.install).
                "run": 'read -r -a install <<< "$SYNTRA_INSTALL"\n"${install[@]}"',
            },
        ]

    def install(self) -> str:
        """`ci.install`, else the exact version generating these workflows, from PyPI."""
        found = self.ci.install or pinned_install()
        if found is None:
            raise SyntraError(
                f"{CONFIG_FILE}: ci.install: this Syntra is a development build "
                f"({installed_version()}), which PyPI does not have: set ci.install to how CI "
                f"installs it, e.g. `pip install git+https://<your fork>@<commit>`"
            )
        return found

    def guest_tools(self) -> list[dict[str, Any]]:
        """wasm-opt, libfaketime for reproducible Python components, and what each guest
        language installs from apt; a Swift SDK for WebAssembly when a guest builds in
        mode wasi."""
        packages, actions = ["binaryen", "faketime"], []
        for name in sorted({g.language for g in self.plan.guests}):
            guests = [g for g in self.plan.guests if g.language == name]
            packages += [p for p in language(name).ci_packages(guests) if p not in packages]
            actions += language(name).ci_actions(guests)
        steps: list[dict[str, Any]] = [
            {
                "name": "Guest toolchains",
                "env": {"PACKAGES": " ".join(packages)},  # names syntra.yaml validated
                "run": 'read -r -a packages <<< "$PACKAGES"\n'
                'sudo apt-get update\nsudo apt-get install -y "${packages[@]}"',
            }
        ]
        return steps + [self.uses(action) for action in actions]


def _secret(name: str) -> str:
    return f"${{{{ secrets.{name} }}}}"


def _registry_env(loaded: Loaded) -> dict[str, str]:
    """Repository variables named in `ci.variables` and the registry logins."""
    env = _variables(loaded)
    for registry in loaded.config.registries.values():
        if registry.credentials:
            for name in (registry.credentials.username_env, registry.credentials.password_env):
                env[name] = _secret(name)
    return env


def _variables(loaded: Loaded) -> dict[str, str]:
    return {name: f"${{{{ vars.{name} }}}}" for name in loaded.config.ci.variables}


def _build_secrets(plan: Plan) -> dict[str, str]:
    """Build secrets read from the environment (`secrets: [{env: …}]`), as repository
    secrets of the same name."""
    names = sorted({s["env"] for image in plan.images for s in image.secrets if "env" in s})
    return {name: _secret(name) for name in names}


def _key_steps(loaded: Loaded, *, private: bool) -> list[dict[str, Any]]:
    """The public key (a repository variable) where `syntra verify` reads it; the private
    key (a secret) too where signing."""
    signing = loaded.config.supply_chain.signing
    if signing.mode != "key" or not signing.key:
        return []
    public = keys.public_path(Path(signing.key)).as_posix()
    env = {
        "SYNTRA_KEY": signing.key,
        "SYNTRA_PUBLIC_KEY": public,
        "PUBLIC_KEY": "${{ vars.SYNTRA_SIGNING_PUBLIC_KEY }}",
    }
    script = (
        'mkdir -p "$(dirname "$SYNTRA_KEY")"\n'
        'printf \'%s\\n\' "$PUBLIC_KEY" > "$SYNTRA_PUBLIC_KEY"\n'
    )
    if private:
        env["SIGNING_KEY"] = "${{ secrets.SYNTRA_SIGNING_KEY }}"
        script += '(umask 077 && printf \'%s\\n\' "$SIGNING_KEY" > "$SYNTRA_KEY")\n'
    return [{"name": "Signing keys" if private else "Public key", "env": env, "run": script}]


def _guest_tests(plan: Plan) -> dict[str, Any]:
    return {
        "name": "Build, optimise and test the guests",
        "env": {"GUESTS": " ".join(g.name for g in plan.guests)},
        "run": (
            "tasks=()\n"
            'for guest in $GUESTS; do tasks+=("wasm:$guest.test"); done\n'
            'doit "${tasks[@]}"\n'
        ),
    }


def _guests_jobs(loaded: Loaded, plan: Plan, steps: _Steps) -> dict[str, Job]:
    """Guests first: images bundle them as plugins, and signing needs their records."""
    plugins = {"name": "plugins", "path": f"{_WASM}/*.wasm"}
    published = any(output.kind == "wasm" for output in plan.outputs())
    publish: Job = {
        "name": "wasm guests",
        "if": PUSHED,
        "runs-on": "ubuntu-24.04",
        "permissions": _grants(contents=READ_SOURCE, packages=("write", "push the wasm artifacts")),
        "steps": [
            *steps.setup(),
            *steps.guest_tools(),
            {
                "name": "Build, optimise, test and publish the guests",
                "env": _registry_env(loaded),
                "run": "doit wasm",
            },
            steps.uses("actions/upload-artifact", **plugins),
            *(
                [steps.uses("actions/upload-artifact", name="record-wasm", path=f"{_RECORDS}/")]
                if published
                else []
            ),
        ],
    }
    check: Job = {
        "name": "wasm guests (pull request: nothing published)",
        "if": PULL_REQUEST,
        "runs-on": "ubuntu-24.04",
        "permissions": _grants(contents=READ_SOURCE),
        "steps": [
            *steps.setup(),
            *steps.guest_tools(),
            _guest_tests(plan),
            steps.uses("actions/upload-artifact", **plugins),
        ],
    }
    return {"wasm": publish, "wasm-check": check}


def _either(output: str) -> str:
    """The output of whichever of the plan steps ran."""
    return f"${{{{ steps.changed.outputs.{output} || steps.all.outputs.{output} }}}}"


def _plugins(steps: _Steps) -> list[dict[str, Any]]:
    """The guests' wasm files, where images bundle them and inputs digests read them."""
    if not (steps.plan.guests and any(image.plugins for image in steps.plan.images)):
        return []
    return [steps.uses("actions/download-artifact", name="plugins", path=_WASM)]


def _plan_job(loaded: Loaded, plan: Plan, steps: _Steps) -> Job:
    count = chunk_count(plan)
    split = (
        'plan="$RUNNER_TEMP/plan.json"\n'
        f'syntra plan "$@" --json > "$plan"\n'
        f"for k in $(seq 0 {count - 1}); do\n"
        '  echo "chunk-$k=$(jq -c ".chunks[$k]" "$plan")" >> "$GITHUB_OUTPUT"\n'
        "done\n"
    )
    plugins = _plugins(steps)
    return {
        "name": "plan: what to build",
        **({"needs": ["wasm", "wasm-check"]} if plugins else {}),
        # One of the two guest jobs ran (push or pull request), the other was skipped.
        **({"if": "!cancelled() && !failure()"} if plugins else {}),
        "runs-on": "ubuntu-24.04",
        "permissions": _grants(contents=READ_SOURCE),
        "outputs": {f"chunk-{k}": _either(f"chunk-{k}") for k in range(count)},
        "steps": [
            *steps.setup(),
            LOCK_MATCHES,
            *plugins,
            {
                "name": "Images x platforms not built yet from their inputs",
                "id": "changed",
                "if": PUSHED,
                "env": _registry_env(loaded),
                "run": f"set -- --changed\n{split}",
            },
            {
                "name": "Every image x platform (pull request: no registry access)",
                "id": "all",
                "if": PULL_REQUEST,
                "run": f"set -- --matrix\n{split}",
            },
        ],
    }


def _read_cache(plan: Plan) -> dict[str, str]:
    """Pull requests (from forks too) take cached layers and push none: they have no
    write access to the registry, and must not be able to poison the cache."""
    return {"SYNTRA_LAYER_CACHE": "read"} if any(i.cache for i in plan.images) else {}


def _build_jobs(loaded: Loaded, plan: Plan, steps: _Steps, guests: bool) -> dict[str, Job]:
    """Per chunk of the matrix: build and push by digest (pushes), or build and test with
    nothing pushed (pull requests)."""
    needs = ["plan", "wasm"] if guests else ["plan"]
    download = _plugins(steps)
    tested = any(image.tests for image in plan.images)
    buildah = (
        [
            {
                "name": "buildah for the image tests",
                "run": "sudo apt-get update\nsudo apt-get install -y buildah",
            }
        ]
        if tested
        else []
    )
    matrix_env = {"IMAGE": "${{ matrix.image }}", "PLATFORM": "${{ matrix.platform }}"}
    jobs: dict[str, Job] = {}
    for k in range(chunk_count(plan)):
        chunk = f"needs.plan.outputs.chunk-{k}"
        strategy = {"fail-fast": False, "matrix": {"include": f"${{{{ fromJSON({chunk}) }}}}"}}
        jobs[f"build-{k}"] = {
            "name": "build ${{ matrix.image }} ${{ matrix.platform }}",
            "needs": needs,
            "if": f"{PUSHED} && {chunk} != '[]'",
            "runs-on": "${{ matrix.runner }}",
            "permissions": _grants(
                contents=READ_SOURCE, packages=("write", "push the image by digest")
            ),
            "strategy": strategy,
            "steps": [
                *steps.setup(),
                *download,
                *buildah,
                {
                    "name": "Build, test and push by digest",
                    "env": {**_registry_env(loaded), **_build_secrets(plan), **matrix_env},
                    "run": 'syntra build "$IMAGE" --platform "$PLATFORM" --push-by-digest',
                },
                steps.uses(
                    "actions/upload-artifact",
                    name="digests-${{ matrix.image }}-${{ matrix.slug }}",
                    path=f"{_DIGESTS}/",  # <image>/<platform>.json inside
                    **{"retention-days": 1},
                ),
            ],
        }
        jobs[f"test-{k}"] = {
            "name": "test ${{ matrix.image }} ${{ matrix.platform }} (nothing pushed)",
            "needs": ["plan", "wasm-check"] if guests else ["plan"],
            "if": f"{PULL_REQUEST} && {chunk} != '[]'",
            "runs-on": "${{ matrix.runner }}",
            "permissions": _grants(contents=READ_SOURCE),
            "strategy": strategy,
            "steps": [
                *steps.setup(),
                *download,
                *buildah,
                {
                    "name": "Build and test, push nothing",
                    "env": {**_variables(loaded), **matrix_env, **_read_cache(plan)},
                    "run": 'syntra test "$IMAGE" --platform "$PLATFORM" --without-secrets',
                },
            ],
        }
    return jobs


def _merge_job(loaded: Loaded, plan: Plan, steps: _Steps) -> Job:
    builds = [f"build-{k}" for k in range(chunk_count(plan))]
    return {
        "name": "merge: indexes and tags",
        "needs": ["plan", *builds],
        # Runs when some chunks had nothing to build (skipped), not after a failure.
        "if": f"{PUSHED} && !cancelled() && !failure()",
        "runs-on": "ubuntu-24.04",
        "permissions": _grants(contents=READ_SOURCE, packages=("write", "push indexes and tags")),
        "steps": [
            *steps.setup(),
            *_plugins(steps),
            steps.uses(
                "actions/download-artifact",
                pattern="digests-*",
                path=_DIGESTS,
                **{"merge-multiple": True},
            ),
            {
                "name": "Every index with its tags (unchanged images retagged)",
                "env": _registry_env(loaded),
                "run": "syntra merge --all",
            },
            steps.uses(
                "actions/upload-artifact",
                name="record-images",
                path=f"{_RECORDS}/",
                **{"retention-days": 1},
            ),
        ],
    }


def _signer(loaded: Loaded) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """What a job that signs needs besides the key: the OIDC grant (keyless), or the
    key's passphrase (key)."""
    signing = loaded.config.supply_chain.signing
    if signing.mode == "keyless":
        return {"id_token": ("write", "the OIDC token Fulcio certifies (keyless signing)")}, {}
    if signing.mode == "key":
        return {}, {signing.passphrase_env: _secret(signing.passphrase_env)}
    return {}, {}


def _supply_job(loaded: Loaded, needs: list[str], steps: _Steps) -> Job:
    grant, secret = _signer(loaded)
    grants = {"contents": READ_SOURCE, "packages": ("write", "push signatures and attestations")}
    env = _registry_env(loaded) | secret
    return {
        "name": "sign, attest, verify",
        "needs": needs,
        "if": f"{PUSHED} && !cancelled() && !failure()",
        "runs-on": "ubuntu-24.04",
        "permissions": _grants(**grants, **grant),
        "steps": [
            *steps.setup(),
            steps.uses(
                "actions/download-artifact",
                pattern="record-*",
                path=_RECORDS,
                **{"merge-multiple": True},
            ),
            *_plugins(steps),  # the plugins images bundle are listed in their SBOMs
            *_key_steps(loaded, private=True),
            {"name": "Sign and attest", "env": env, "run": "syntra supply"},
            {"name": "Verify", "env": _registry_env(loaded), "run": "syntra verify --all"},
        ],
    }


def _release_job(loaded: Loaded, steps: _Steps) -> Job:
    """On a `v*` tag, after everything is signed and verified: promote, on this commit.
    With `release.promote_to` it signs at the other registries too, as supply does."""
    signs = bool(loaded.config.release.promote_to)
    grant, secret = _signer(loaded) if signs else ({}, {})
    return {
        "name": "release",
        "needs": ["supply"],
        "if": f"startsWith(github.ref, 'refs/tags/v') && {PUSHED}",
        "runs-on": "ubuntu-24.04",
        "permissions": _grants(
            contents=READ_SOURCE, packages=("write", "push release tags"), **grant
        ),
        "steps": [
            *steps.setup(),
            *_key_steps(loaded, private=signs),
            {
                "name": "Promote the verified digests",
                "env": _registry_env(loaded) | secret,
                "run": "syntra release",
            },
            steps.uses("actions/upload-artifact", name="release", path="dist/"),
        ],
    }


def pipeline(loaded: Loaded, plan: Plan) -> dict[str, Any]:
    steps = _Steps(loaded, plan)
    guests = bool(plan.guests)
    jobs: dict[str, Job] = _guests_jobs(loaded, plan, steps) if guests else {}
    before_supply = ["wasm"] if any(o.kind == "wasm" for o in plan.outputs()) else []
    if plan.images:
        jobs["plan"] = _plan_job(loaded, plan, steps)
        jobs |= _build_jobs(loaded, plan, steps, guests)
        jobs["merge"] = _merge_job(loaded, plan, steps)
        before_supply.append("merge")
    if loaded.config.supply_chain.signing.mode != "none" and before_supply:
        jobs["supply"] = _supply_job(loaded, before_supply, steps)
        jobs["release"] = _release_job(loaded, steps)
    name = "docker" if plan.images else "wasm"
    on = {"push": {"branches": ["main"], "tags": ["v*"]}, "pull_request": {}}
    return _workflow(name, on, jobs)


def macos_container(loaded: Loaded, plan: Plan) -> dict[str, Any] | None:
    """Apple's `container` on demand; images with plugins need named build contexts,
    which it lacks, so they are left to the pipeline."""
    steps = _Steps(loaded, plan)
    eligible = [image.name for image in plan.images if not image.plugins]
    if not eligible:
        return None
    job: Job = {
        "runs-on": loaded.config.ci.macos_runner,
        "permissions": _grants(contents=READ_SOURCE, packages=("write", "push the images")),
        "steps": [
            *steps.setup(),
            {
                "name": "Build and push with Apple's container",
                "env": {
                    **_registry_env(loaded),
                    **_build_secrets(plan),
                    "IMAGES": " ".join(eligible),
                },
                "run": 'for image in $IMAGES; do syntra build "$image" --builder container; done\n',
            },
        ],
    }
    return _workflow("macos_container", {"workflow_dispatch": {}}, {"container": job})


LOCK_MATCHES = {
    "name": "syntra.lock matches syntra.yaml",
    "if": f"hashFiles('{LOCK_FILE}') != ''",
    "run": "syntra lock --check --offline",
}
"""Every run, pull requests included: a lock that disagrees with syntra.yaml fails here,
asking no registry (tags that moved upstream are the scheduled `lock` workflow's)."""
LOCK_BRANCH = "syntra-lock"
LOCK_PR_BODY = "Written by syntra lock --update: image tags that moved upstream, pinned again."


def lock_update(loaded: Loaded, plan: Plan) -> dict[str, Any]:
    """Weekly and on demand: every locked image resolved again; a changed `syntra.lock`
    is pushed to the `syntra-lock` branch with a pull request, which the pipeline then
    builds and tests like any other."""
    steps = _Steps(loaded, plan)
    title = f"{LOCK_FILE}: images resolved again"
    publish = (
        f'if [ -z "$(git status --porcelain -- {LOCK_FILE})" ]; then\n'
        f'  echo "{LOCK_FILE} is current"\n'
        "  exit 0\n"
        "fi\n"
        f"git switch -C {LOCK_BRANCH}\n"
        f"git add {LOCK_FILE}\n"
        "git -c user.name=github-actions -c user.email=github-actions@users.noreply.github.com"
        f' commit -q -m "{title}"\n'
        f'remote="https://x-access-token:$GH_TOKEN@github.com/$GITHUB_REPOSITORY.git"\n'
        f'git push --force "$remote" {LOCK_BRANCH}\n'
        f"open=$(gh pr list --head {LOCK_BRANCH} --state open --json number --jq length)\n"
        'if [ "$open" = 0 ]; then\n'
        f'  gh pr create --head {LOCK_BRANCH} --title "{title}" --body "{LOCK_PR_BODY}"\n'
        "fi\n"
    )
    job: Job = {
        "name": f"lock: resolve the images of {LOCK_FILE} again",
        "runs-on": "ubuntu-24.04",
        "permissions": _grants(
            contents=("write", f"push the {LOCK_BRANCH} branch"),
            pull_requests=("write", "open the pull request"),
        ),
        "steps": [
            *steps.setup(),
            {
                "name": "Resolve every image again",
                "env": _registry_env(loaded),
                "run": "syntra lock --update",
            },
            {
                "name": f"Push a changed lock to {LOCK_BRANCH} and open a pull request",
                "env": {"GH_TOKEN": "${{ github.token }}"},
                "run": publish,
            },
        ],
    }
    on = {"schedule": [{"cron": "17 5 * * 1"}], "workflow_dispatch": {}}
    return _workflow("lock", on, {"lock": job})


def _workflow(name: str, on: dict[str, Any], jobs: dict[str, Job]) -> dict[str, Any]:
    return {
        "name": name,
        "on": on,
        "permissions": {},
        "concurrency": {
            "group": f"{name}-${{{{ github.ref }}}}",
            # Pull requests: a new push supersedes the old run; never cancel a publish.
            "cancel-in-progress": f"${{{{ {PULL_REQUEST} }}}}",
        },
        "jobs": jobs,
    }


def workflows(loaded: Loaded, plan: Plan) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    if plan.images or plan.guests:
        found["docker.yml" if plan.images else "wasm.yml"] = pipeline(loaded, plan)
    if plan.images or loaded.config.services:
        found["lock.yml"] = lock_update(loaded, plan)
    container = macos_container(loaded, plan)
    if container is not None:
        found["macos_container.yml"] = container
    return dict(sorted(found.items()))


def _literal_blocks(node: Any, script: bool = False) -> Any:
    """Multi-line scripts as `|` blocks, the way people write workflows; other values
    keep their exact text."""
    if isinstance(node, CommentedMap):
        return node
    if isinstance(node, dict):  # an empty `env:` is an error to actionlint
        return {
            k: _literal_blocks(v, k == "run")
            for k, v in node.items()
            if not (k == "env" and v == {})
        }
    if isinstance(node, list):
        return [_literal_blocks(item) for item in node]
    if isinstance(node, str) and "\n" in node:
        return LiteralScalarString(node + "\n" if script and not node.endswith("\n") else node)
    return node


def _dump(data: dict[str, Any], loaded: Loaded) -> str:
    yaml = YAML(typ="rt")
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    buffer = io.StringIO()
    yaml.dump(_literal_blocks(data), buffer)
    text = buffer.getvalue()
    for action, (sha, version) in DEFAULT_ACTIONS.items():
        if action not in loaded.config.ci.actions:
            text = text.replace(f"uses: {action}@{sha}\n", f"uses: {action}@{sha}  # {version}\n")
    return HEADER + text


def render(loaded: Loaded, plan: Plan) -> list[Generated]:
    """The workflows, with their paths relative to the repository."""
    return [
        Generated(f"{WORKFLOWS_DIR}/{name}", _dump(body, loaded))
        for name, body in workflows(loaded, plan).items()
    ]


def write_workflows(rendered: list[Generated], root: Path) -> list[str]:
    """Write what changed and delete what is no longer generated; the paths touched."""
    removed = generated.prune(WORKFLOWS, (file.path for file in rendered), root)
    return generated.write_generated(rendered, root) + [f"{path} (removed)" for path in removed]


def drift(rendered: list[Generated], root: Path) -> list[str]:
    return generated.drift(rendered, WORKFLOWS, root)
