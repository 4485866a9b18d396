"""Release tagging for real: git tags, a registry with signed images, skopeo."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from syntra.oci import Client
from syntra.paths import record_path
from syntra.registry.local import serve
from tests.conftest import commit, git, run, skopeo
from tests.support.projects import make_project
from tests.support.signing import COSIGN, PASSPHRASE, SIGNING

pytestmark = pytest.mark.e2e


@pytest.fixture
def project(tmp_path: Path, registry: str, base: str) -> Path:
    name = tmp_path.name.replace("_", "-").lower()[:30]
    root = make_project(
        tmp_path / "repo", registry, base,
        f"    repository: rel/{name}\n    platforms: [linux/amd64]\n" + SIGNING,
    )  # fmt: skip
    text = (root / "syntra.yaml").read_text().replace("    tags: ['{{ version }}', latest]\n", "")
    (root / "syntra.yaml").write_text(text)
    commit(root, "chore: no latest from builds")
    assert run(root, "syntra", "keygen", env=PASSPHRASE).returncode == 0
    return root


def ship(root: Path, tag: str, message: str, *, sign: bool = True) -> None:
    (root / "app" / "index.html").write_text(f"<h1>{tag}</h1>\n")
    commit(root, message)
    git(root, "tag", tag)
    done = run(root, "doit", "docker" if not sign else "supply", env=PASSPHRASE)
    assert done.returncode == 0, done.stdout


def release(root: Path, *args: str) -> tuple[int, str]:
    done = run(root, "syntra", "release", *args, env=PASSPHRASE)
    return done.returncode, done.stdout + done.stderr


def digest(registry: str, repository: str, tag: str) -> str:
    raw = skopeo("inspect", "--tls-verify=false", f"docker://{registry}/{repository}:{tag}")
    return str(json.loads(raw)["Digest"])


def repository(root: Path) -> str:
    return str(json.loads((record_path(root, "app")).read_text())["repository"])


def test_release_promotes_the_verified_digest(project: Path, registry: str) -> None:
    ship(project, "v1.0.0", "feat: first page")
    built = json.loads((record_path(project, "app")).read_text())["digest"]
    code, output = release(project, "--dry-run")
    assert code == 0 and "tag 1.0, 1, latest (dry run)" in output
    assert (
        "latest"
        not in json.loads(
            skopeo("list-tags", "--tls-verify=false", f"docker://{registry}/{repository(project)}")
        )["Tags"]
    )
    code, output = release(project)
    assert code == 0, output
    assert "release 1.0.0: done" in output
    for tag in ("1.0.0", "1.0", "1", "latest"):
        assert digest(registry, repository(project), tag) == built
    manifest = json.loads((project / "dist" / "release-1.0.0.json").read_text())
    (entry,) = manifest["artifacts"]
    assert entry["digest"] == built
    assert entry["signature"].endswith(":sha256-" + built[7:] + ".sig")
    assert [p["platform"] for p in entry["platforms"]] == ["linux/amd64"]
    notes = (project / "dist" / "release-1.0.0.md").read_text()
    assert "## Features\n\n- first page\n" in notes and "## Chores" in notes
    # The notes name the artifact and the commands that verify it: run them as written.
    assert f"- digest: `{built}`" in notes and f"`{entry['references'][0]}`" in notes
    block = notes[notes.index("```sh\n") + 6 : notes.index("```", notes.index("```sh\n") + 6)]
    commands = block.splitlines()
    assert [c.split()[:2] for c in commands] == [["cosign", "verify"]] + [
        ["cosign", "verify-attestation"]
    ] * 3 + [["syntra", "verify"]]
    for command in commands:
        program, *args = shlex.split(command)
        argv = (
            [str(COSIGN), *args] if program == "cosign" else [sys.executable, "-m", "syntra", *args]
        )
        done = subprocess.run(argv, cwd=project, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{command}: {done.stderr}"
    again = release(project)
    assert again == (0, again[1]) and "release 1.0.0: already complete, nothing changed" in again[1]


def test_latest_moves_only_forward(project: Path, registry: str) -> None:
    ship(project, "v1.0.0", "feat: one")
    assert release(project)[0] == 0
    ship(project, "v1.1.0", "feat: two")
    assert release(project)[0] == 0
    newest = digest(registry, repository(project), "1.1.0")
    assert digest(registry, repository(project), "latest") == newest
    git(project, "checkout", "-q", "-f", "v1.0.0")
    ship(project, "v1.0.1", "fix: a patch for 1.0")
    code, output = release(project)
    assert code == 0, output
    patch = digest(registry, repository(project), "1.0.1")
    assert digest(registry, repository(project), "latest") == newest
    assert digest(registry, repository(project), "1") == newest
    assert digest(registry, repository(project), "1.0") == patch  # the newest 1.0.x
    git(project, "checkout", "-q", "-f", "v1.1.0")
    ship(project, "v2.0.0-rc.1", "feat!: a preview")
    code, output = release(project)
    assert code == 0 and "tag nothing" in output  # 2.0.0-rc.1 is the build's own tag
    assert digest(registry, repository(project), "latest") == newest


def test_unsigned_digest_is_refused(project: Path) -> None:
    ship(project, "v3.0.0", "feat: unsigned", sign=False)
    code, output = release(project)
    assert code == 1
    assert (
        "refused: no signed SBOM attestation (spdx-json, cyclonedx-json); no signed provenance"
        in output
    )
    assert "no valid signature by the key" in output
    assert output.rstrip().endswith(
        "release 3.0.0: refused (1 artifact of 1 not verified); nothing tagged"
    )
    assert ": tag " not in output  # no list of tags that were never set
    assert not (project / "dist").exists()


def test_interrupted_release_completes(project: Path, registry: str) -> None:
    ship(project, "v1.2.0", "fix: something")
    built = json.loads((record_path(project, "app")).read_text())["digest"]
    source = f"docker://{registry}/{repository(project)}@{built}"
    skopeo("copy", "-q", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
           source, f"docker://{registry}/{repository(project)}:1.2")  # fmt: skip
    code, output = release(project)
    assert code == 0 and f"app {built}: tag 1, latest\n" in output
    assert all(
        digest(registry, repository(project), t) == built for t in ("1.2.0", "1.2", "1", "latest")
    )


def test_release_needs_a_tagged_commit(project: Path) -> None:
    done = run(project, "syntra", "release")
    assert (done.returncode, done.stderr) == (
        2,
        "release needs a clean checkout of a commit tagged vX.Y.Z\n",
    )


def test_release_promotes_to_the_registries_it_names(project: Path, registry: str) -> None:
    with serve() as prod:
        text = (project / "syntra.yaml").read_text()
        (project / "syntra.yaml").write_text(
            text.replace(
                "registries: {", f"registries: {{prod: {{url: '{prod}', insecure: true}}, "
            )
            + "defaults: {registry: local}\nrelease: {promote_to: [prod]}\n"
        )
        commit(project, "chore: promote releases to prod")
        ship(project, "v2.0.0", "feat: second page")
        built = json.loads((record_path(project, "app")).read_text())["digest"]
        code, output = release(project)
        assert code == 0, output
        there = Client(prod, insecure=True)
        for tag in ("2.0.0", "2.0", "latest"):
            assert there.head_manifest(repository(project), tag) == built
        verified = run(project, "syntra", "verify", f"{prod}/{repository(project)}@{built}")
        assert verified.returncode == 0, verified.stdout
        again = release(project)
        assert again[0] == 0 and "already complete" in again[1]
