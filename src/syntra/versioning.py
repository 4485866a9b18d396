"""The version of what is being built, derived from git.

On an exact `vX.Y.Z` tag of a clean tree the version is `X.Y.Z`. Anywhere else it
is a semver pre-release that sorts after the last tag and names the commit, e.g.
`1.4.1-dev.3.g1a2b3c4` (three commits after v1.4.0), with `.dirty` appended for
uncommitted changes. Container tags allow no `+`, so no build metadata is used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import total_ordering
from pathlib import Path

from syntra import process
from syntra.fsutil import write_atomic
from syntra.paths import SPECS_DIR, WORKFLOWS_DIR, last_change_cache

_SEMVER_RE = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


@total_ordering
@dataclass(frozen=True)
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer | None:
        match = _SEMVER_RE.match(text)
        if not match:
            return None
        major, minor, patch, pre = match.groups()
        return cls(int(major), int(minor), int(patch), pre or "")

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{self.prerelease}" if self.prerelease else core

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # Semver precedence: a release sorts after its pre-releases; numeric
        # identifiers compare as numbers and before alphanumeric ones.
        ids = tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in self.prerelease.split(".")
            if self.prerelease
        )
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, ids)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() < other._key()


@dataclass(frozen=True)
class GitInfo:
    commit: str
    short_sha: str
    tag: str | None
    last_tag: str | None
    distance: int
    dirty: bool
    branch: str | None
    remote: str | None
    commit_time: int


@dataclass(frozen=True)
class BuildVersion:
    version: str
    git: GitInfo
    source_date_epoch: int

    def template_context(self) -> dict[str, object]:
        parsed = SemVer.parse(self.version)
        return {
            "version": self.version,
            "semver": parsed.__dict__ if parsed else None,
            # None renders as '', which no tag accepts: the error then says so.
            "git": {k: "" if v is None else v for k, v in self.git.__dict__.items()}
            # Branch names may hold `/` (feature/x): as tags they read feature-x.
            | {"branch": re.sub(r"[^\w.-]", "-", self.git.branch or "", flags=re.ASCII)},
            "source_date_epoch": self.source_date_epoch,
        }


NO_GIT = GitInfo("", "unknown", None, None, 0, False, None, None, 0)


def _git(root: Path, *args: str) -> str | None:
    done = process.run(["git", "-C", str(root), *args], check=False)
    return done.out.strip() if done.ok else None


def read_git(root: Path) -> GitInfo:
    head = _git(root, "log", "-1", "--format=%H %ct")
    if not head:
        return NO_GIT
    commit, commit_time = head.split()
    asked = {  # independent questions, asked at once: every run (a no-op too) waits on them
        "exact": ("tag", "--points-at", "HEAD"),
        "described": ("describe", "--tags", "--long", "--match", "v[0-9]*", "--abbrev=7"),
        "count": ("rev-list", "--count", "HEAD"),
        "status": ("status", "--porcelain", "--untracked-files=no", "--", *_AUTHORED),
        "branch": ("symbolic-ref", "--short", "-q", "HEAD"),
        "remote": ("config", "--get", "remote.origin.url"),
    }
    with ThreadPoolExecutor(len(asked)) as pool:
        answers = pool.map(lambda args: _git(root, *args), asked.values())
        said = dict(zip(asked, answers, strict=True))
    exact = _highest((said["exact"] or "").split())
    described = said["described"]
    last_tag, distance = None, int(said["count"] or 0)
    if described and (match := re.match(r"^(.*)-(\d+)-g[0-9a-f]*$", described)):
        last_tag, distance = match.group(1), int(match.group(2))
    return GitInfo(
        commit=commit,
        short_sha=commit[:7],
        tag=exact,
        last_tag=exact or last_tag,
        distance=0 if exact else distance,
        dirty=bool(said["status"]),
        branch=said["branch"] or ci_branch(),
        remote=_remote_url(root, said["remote"]),
        commit_time=int(commit_time),
    )


_AUTHORED = (".", f":(exclude){SPECS_DIR}", f":(exclude){WORKFLOWS_DIR}")
"""What makes a tree dirty: not the files Syntra generates from syntra.yaml and the
templates, which a run re-renders before it builds (the version is derived before that:
a render must not make the next run's version differ)."""


def last_change(root: Path, paths: list[str], fallback: int, head: str = "") -> int:
    """When `paths` last changed (the commit time), for builds that depend on them
    alone; SOURCE_DATE_EPOCH, when set, wins, and `fallback` outside git.

    Given the `head` commit, the answer is kept in `.syntra/` for that commit (history
    does not change under it), so a no-op run starts no `git log` per guest."""
    epoch_env = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch_env.isdigit():
        return int(epoch_env)
    key = "\0".join(paths)
    known = _known_changes(root, head)
    if key not in known:
        found = _git(root, "log", "-1", "--format=%ct", "--", *paths)
        known[key] = int(found) if found and found.isdigit() else fallback
        if head:
            _keep_changes(root, head, known)
    return known[key]


def _known_changes(root: Path, head: str) -> dict[str, int]:
    """The cached answers for `head`; none for another commit or a damaged file."""
    try:
        data = json.loads(last_change_cache(root).read_bytes())
        changes = data["changes"] if head and data["head"] == head else {}
        return {str(k): v for k, v in changes.items() if isinstance(v, int)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _keep_changes(root: Path, head: str, known: dict[str, int]) -> None:
    with contextlib.suppress(OSError):  # only a cache: the next run asks git again
        write_atomic(last_change_cache(root), json.dumps({"head": head, "changes": known}).encode())


def ci_branch() -> str | None:
    """On a detached HEAD (tag builds, pull requests, a checkout by SHA), the branch
    GitHub Actions names: the pull request's source branch, else the pushed branch."""
    if os.environ.get("GITHUB_HEAD_REF"):
        return os.environ["GITHUB_HEAD_REF"]
    if os.environ.get("GITHUB_REF_TYPE") == "branch":
        return os.environ.get("GITHUB_REF_NAME") or None
    return None


def _highest(tags: list[str]) -> str | None:
    versions = [(v, tag) for tag in tags if tag.startswith("v") and (v := SemVer.parse(tag))]
    return max(versions)[1] if versions else None


def _remote_url(root: Path, remote: str | None) -> str | None:
    """The origin as a URL people can open: SSH remotes as https, credentials removed,
    a local path as a file URL."""
    if not remote:
        return None
    if match := re.match(r"^(?:ssh://)?git@([^:/]+)[:/](.+?)(?:\.git)?$", remote):
        return f"https://{match.group(1)}/{match.group(2)}"
    if "://" not in remote:
        return (root / remote).resolve().as_uri().removesuffix(".git")
    scheme, _, rest = remote.partition("://")
    host_and_path = rest.split("@", 1)[1] if "@" in rest.split("/", 1)[0] else rest
    return f"{scheme}://{host_and_path}".removesuffix(".git")


def derive(git: GitInfo, declared: str = "git") -> BuildVersion:
    """The build version for `git`; `declared` other than 'git' is taken as is."""
    epoch_env = os.environ.get("SOURCE_DATE_EPOCH", "")
    epoch = int(epoch_env) if epoch_env.isdigit() else git.commit_time
    if declared != "git":
        return BuildVersion(declared, git, epoch)
    last = SemVer.parse(git.last_tag) if git.last_tag else None
    if git.tag and last and not git.dirty:
        return BuildVersion(str(last), git, epoch)
    suffix = f"dev.{git.distance}.g{git.short_sha}" + (".dirty" if git.dirty else "")
    if last is None:
        version = f"0.0.0-{suffix}"
    elif last.prerelease:
        version = f"{last}.{suffix}"
    else:
        version = f"{last.major}.{last.minor}.{last.patch + 1}-{suffix}"
    return BuildVersion(version, git, epoch)
