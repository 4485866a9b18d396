"""Stage: release. Promote what was built and verified to the release tags.

Nothing is rebuilt: for a commit tagged vX.Y.Z, each artifact's digest (the one its
commit tags point at) is checked with `syntra verify`, then its manifest is put
under X.Y.Z, and for images under X.Y, X and `latest` when X.Y.Z is the newest
release of X.Y.*, of X.* and of all, in that repository. Every step is idempotent:
a finished release re-runs as a no-op, an interrupted one completes. The release
manifest and notes go to dist/.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syntra import process
from syntra.config import Loaded
from syntra.errors import Refused, SyntraError, count
from syntra.fsutil import write_if_changed
from syntra.oci import platform_of, push
from syntra.oci.locate import Registries, Where, digest_in
from syntra.plan import Destination, Plan
from syntra.supply import keys
from syntra.supply.attach import attachment_tag
from syntra.supply.verify import policy_for, problems_of, verify
from syntra.versioning import SemVer

NOTE_GROUPS = [
    ("feat", "Features"),
    ("fix", "Fixes"),
    ("perf", "Performance"),
    ("refactor", "Refactoring"),
    ("docs", "Documentation"),
    ("test", "Tests"),
    ("build", "Build"),
    ("ci", "CI"),
    ("chore", "Chores"),
]
_CONVENTIONAL = re.compile(r"^(\w+)(?:\([^)]*\))?(!)?: (.+)$")


@dataclass
class Artifact:
    name: str
    kind: str
    destination: Destination
    where: Where
    digest: str = ""
    tags: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)


def release_version(plan: Plan) -> SemVer:
    tag = plan.git.get("tag")
    version = SemVer.parse(tag) if isinstance(tag, str) else None
    if version is None or plan.git.get("dirty"):
        raise SyntraError("release needs a clean checkout of a commit tagged vX.Y.Z")
    return version


def release_tags(version: SemVer, existing: list[str], kind: str) -> list[str]:
    """X.Y.Z always; for images, X.Y when it is the newest X.Y.*, X when it is the newest
    X.*, and latest when it is the newest release of all. Pre-releases get X.Y.Z only."""
    tags = [str(version)]
    if kind != "image" or version.prerelease:
        return tags
    releases = [v for tag in existing if (v := SemVer.parse(tag)) and not v.prerelease]

    def newest(same_series: Callable[[SemVer], bool]) -> bool:
        return all(other <= version for other in releases if same_series(other))

    if newest(lambda v: (v.major, v.minor) == (version.major, version.minor)):
        tags.append(f"{version.major}.{version.minor}")
    if newest(lambda v: v.major == version.major):
        tags.append(f"{version.major}")
    if newest(lambda v: True):
        tags.append("latest")
    return tags


def plan_release(registries: Registries, plan: Plan) -> tuple[SemVer, list[Artifact]]:
    version = release_version(plan)
    artifacts = [  # one per registry the artifact goes to
        Artifact(o.name, o.kind, d, registries.locate(d))
        for o in plan.outputs()
        for d in o.destinations
    ]
    for artifact in artifacts:
        registry, path = artifact.where.registry, artifact.where.path
        if not artifact.destination.tags:
            raise SyntraError(f"{artifact.name}: no tag renders in this checkout; nothing to find")
        built = artifact.destination.tags[0]
        digest = digest_in(artifact.where, built)
        if digest is None:
            raise SyntraError(
                f"{artifact.name}: {path}:{built} is not in the registry; build first"
            )
        artifact.digest = digest
        artifact.tags = release_tags(version, registry.tags(path), artifact.kind)
        for tag in artifact.tags:
            current = digest_in(artifact.where, tag)
            (artifact.done if current == digest else artifact.todo).append(tag)
    return version, artifacts


def refusals(loaded: Loaded, artifacts: list[Artifact]) -> list[str]:
    """One line per artifact that `syntra verify` rejects."""
    chain = loaded.config.supply_chain
    if chain.signing.mode == "none":
        return ["release needs verified artifacts: set supply_chain.signing (mode key or keyless)"]
    policy = policy_for(loaded)
    lines = []
    for artifact in artifacts:
        checks = verify(artifact.name, artifact.where, artifact.digest, policy)
        problems = problems_of(checks)
        if problems:
            lines.append(f"{artifact.name} {artifact.digest}: refused: {problems}")
    return lines


def tag_release(artifacts: list[Artifact]) -> None:
    """Put each artifact's manifest under its missing release tags."""
    for artifact in artifacts:
        registry, path = artifact.where.registry, artifact.where.path
        manifest = registry.get_manifest(path, artifact.digest)  # verified against the digest
        push(registry, path, tags=dict.fromkeys(artifact.todo, manifest))
        artifact.done += artifact.todo
        artifact.todo = []


def manifest(version: SemVer, plan: Plan, artifacts: list[Artifact]) -> dict[str, Any]:
    entries = []
    for artifact in artifacts:
        registry, path = artifact.where.registry, artifact.where.path
        repository = artifact.where.identity
        top = registry.get_manifest(path, artifact.digest)
        children = top.children() if top.is_index else []
        platforms = [{"platform": platform_of(m), "digest": m["digest"]} for m in children]
        entries.append(
            {
                "name": artifact.name,
                "kind": artifact.kind,
                "repository": repository,
                "digest": artifact.digest,
                "references": [f"{repository}:{tag}" for tag in artifact.tags],
                "platforms": platforms,
                "insecure": artifact.destination.insecure,
                "signature": f"{repository}:{attachment_tag(artifact.digest, 'sig')}",
                "attestations": f"{repository}:{attachment_tag(artifact.digest, 'att')}",
                "referrers": f"{repository}:{attachment_tag(artifact.digest)}",
            }
        )
    return {"version": str(version), "commit": plan.git.get("commit"), "artifacts": entries}


def verification(
    loaded: Loaded, repository: str, digest: str, platforms: list[str], insecure: bool
) -> list[str]:
    """The commands that check an artifact independently and with Syntra: signature and
    provenance on its top digest, SBOMs on each platform image (or the wasm artifact)."""
    signing, chain = loaded.config.supply_chain.signing, loaded.config.supply_chain
    top = f"{repository}@{digest}"
    http = " --allow-http-registry" if insecure else ""
    lines = []
    if signing.mode == "key" and signing.key:
        public = shlex.quote(keys.public_path(Path(signing.key)).as_posix())
        # Key-mode signatures are not in a transparency log: cosign must not look for one.
        flags = f"--key {public} --insecure-ignore-tlog=true{http}"
        lines.append(f"cosign verify {flags} {top}")
        attest = f"cosign verify-attestation {flags} --type"
        if chain.provenance:
            lines.append(f"{attest} slsaprovenance1 {top}")
        for child in platforms or [digest]:
            lines += [f"{attest} {_COSIGN_TYPES[f]} {repository}@{child}" for f in chain.sbom]
    elif signing.mode == "keyless" and signing.identity:
        lines.append(
            f"cosign verify --new-bundle-format --certificate-identity-regexp "
            f"{shlex.quote(signing.identity)} --certificate-oidc-issuer "
            f"{shlex.quote(signing.issuer)}{http} {top}"
        )
    lines.append(f"syntra verify {top}")
    return lines


_COSIGN_TYPES = {"spdx-json": "spdxjson", "cyclonedx-json": "cyclonedx"}


def artifact_notes(loaded: Loaded, entries: list[dict[str, Any]]) -> list[str]:
    """A section per artifact: references, digest, platforms and how to verify it."""
    lines = ["## Artifacts", ""]
    for entry in entries:
        lines += [f"### {entry['name']} ({entry['kind']})", "", f"- digest: `{entry['digest']}`"]
        lines += [f"- `{ref}`" for ref in entry["references"]]
        if entry["platforms"]:
            shown = ", ".join(f"{p['platform']} `{p['digest']}`" for p in entry["platforms"])
            lines.append(f"- platforms: {shown}")
        children = [p["digest"] for p in entry["platforms"]]
        commands = verification(
            loaded, entry["repository"], entry["digest"], children, entry["insecure"]
        )
        lines += ["", "Verify:", "", "```sh", *commands, "```", ""]
    return lines


def notes(root: Path, version: SemVer) -> str:
    """Release notes from the commits since the previous release tag, by type."""
    previous = _previous_tag(root, version)
    span = f"{previous}..HEAD" if previous else "HEAD"
    log = _git(root, "log", "--format=%s", span).splitlines()
    groups: dict[str, list[str]] = {}
    for subject in log:
        match = _CONVENTIONAL.match(subject)
        kind = match.group(1) if match and match.group(1) in dict(NOTE_GROUPS) else "other"
        text = match.group(3) if match and kind != "other" else subject
        breaking = " (breaking)" if match and match.group(2) else ""
        groups.setdefault(kind, []).append(f"- {text}{breaking}")
    lines = [f"# {version}", ""]
    if previous:
        lines += [f"Changes since {previous}.", ""]
    for kind, title in [*NOTE_GROUPS, ("other", "Other changes")]:
        if kind in groups:
            lines += [f"## {title}", "", *groups[kind], ""]
    return "\n".join(lines)


def _git(root: Path, *args: str) -> str:
    return process.run(["git", "-C", str(root), *args]).out


def _previous_tag(root: Path, version: SemVer) -> str | None:
    tags = _git(root, "tag", "--list", "v*", "--merged", "HEAD").split()
    older = [(v, t) for t in tags if (v := SemVer.parse(t)) and v < version]
    return max(older)[1] if older else None


def write_outputs(
    loaded: Loaded, version: SemVer, plan: Plan, artifacts: list[Artifact]
) -> list[Path]:
    """dist/release-X.Y.Z.json, and .md: fit to be the body of a GitHub release."""
    root, dist = loaded.root, loaded.root / "dist"
    described = manifest(version, plan, artifacts)
    body = (
        notes(root, version).rstrip("\n")
        + "\n\n"
        + "\n".join(artifact_notes(loaded, described["artifacts"]))
    )
    files = {
        dist / f"release-{version}.json": json.dumps(described, indent=2) + "\n",
        dist / f"release-{version}.md": body,
    }
    return [path for path, text in files.items() if write_if_changed(path, text.encode())]


def run_release(
    loaded: Loaded, registries: Registries, plan: Plan, dry_run: bool = False
) -> Iterator[str]:
    """`syntra release` / `doit release`: plan, verify, tag, promote_to, write dist/; what was
    done, line by line. Refused, naming every artifact that does not verify, before
    anything is tagged."""
    version, artifacts = plan_release(registries, plan)
    refused = refusals(loaded, artifacts)
    if refused:
        raise Refused(
            "\n".join(refused)
            + f"\nrelease {version}: refused ({count(len(refused), 'artifact')} of "
            f"{len(artifacts)} not verified); nothing tagged"
        )
    for artifact in artifacts:
        todo = ", ".join(artifact.todo) or "nothing"
        yield f"{artifact.name} {artifact.digest}: tag {todo}" + (" (dry run)" if dry_run else "")
    if dry_run:
        return
    complete = not any(artifact.todo for artifact in artifacts)
    tag_release(artifacts)
    for target in loaded.config.release.promote_to:  # release.promote_to
        from syntra.release.promote import promote as promote_elsewhere

        first: dict[str, Artifact] = {}  # each artifact once, from its first registry
        for artifact in artifacts:
            first.setdefault(artifact.name, artifact)
        for artifact in first.values():
            reference = f"{artifact.where.identity}@{artifact.digest}"
            tags = [*artifact.destination.tags, *artifact.tags]
            for line in promote_elsewhere(loaded, registries, plan, reference, target, tags):
                yield f"{artifact.name}: {line}"
    for path in write_outputs(loaded, version, plan, artifacts):
        yield f"wrote {path.relative_to(loaded.root)}"
    yield f"release {version}: " + ("already complete, nothing changed" if complete else "done")
