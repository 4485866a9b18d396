"""The registry layer cache (syntra.yaml `cache`, docs/cache.md): whether it is usable
before a build, the flags each builder takes for it, and the credentials it reads.

A cache is an optimisation, never a reason to fail: a cache registry that is down or
refuses is one warning line, and the build goes on without it. Its repository is apart
from the image's and holds only cache tags (podman: hex cache keys; buildx: one
`buildx-<image>-<platform>` tag), so nothing a user pulls is ever tagged by it.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syntra.errors import SyntraError
from syntra.oci.auth import Login, auth_files
from syntra.oci.locate import Registries
from syntra.paths import slug
from syntra.plan import CachePlan, Destination, ImagePlan
from syntra.redaction import redact

CACHE_ENV = "SYNTRA_LAYER_CACHE"
"""`off` (no cache), `read` (take cached layers, push none: pull requests from forks) or
`write` (the default but in snapshots: read and push)."""
CACHE_MODES = ("off", "read", "write")


@dataclass(frozen=True)
class CacheUse:
    """The cache of one build, found usable."""

    plan: CachePlan
    write: bool
    login: Login | None
    """The login Syntra pushes to the cache registry with (syntra.yaml `credentials`,
    else the stored logins), handed to the builder in an auth file of its own."""

    @property
    def host(self) -> str:
        return self.plan.registry.split("/", 1)[0]


def mode(snapshot: bool) -> str:
    """This run's use of the cache: a snapshot (which pushes nothing) only reads it,
    unless SYNTRA_LAYER_CACHE says otherwise."""
    chosen = os.environ.get(CACHE_ENV) or ("read" if snapshot else "write")
    if chosen not in CACHE_MODES:
        raise SyntraError(f"{CACHE_ENV}={chosen!r} is not one of {', '.join(CACHE_MODES)}")
    return chosen


def warn(image: str, reference: str, why: str) -> None:
    """One line on stderr: the build goes on without the cache."""
    first = redact(why).strip().splitlines()[0] if why.strip() else "no reason given"
    print(f"warning: {image}: cache {reference} not used ({first}); building uncached",
          file=sys.stderr, flush=True)  # fmt: skip


def usable(registries: Registries, image: ImagePlan, snapshot: bool) -> CacheUse | None:
    """The image's cache when it answers with the rights this run needs (push when it
    writes, pull otherwise); else None, with a warning when one was configured."""
    chosen = mode(snapshot)
    if image.cache is None or chosen == "off":
        return None
    cache = image.cache
    write = cache.write and chosen == "write"
    place = Destination(cache.registry, cache.insecure, cache.repository, [], [])
    try:
        where = registries.locate(place)
        if write:
            where.registry.check_push(where.path)
        else:
            where.registry.find_manifest(where.path, "syntra-cache-probe")
    except SyntraError as exc:
        warn(image.name, cache.reference, str(exc))
        return None
    return CacheUse(cache, write, where.registry.login)


def buildx_reference(use: CacheUse, image: str, platform: str) -> str:
    return f"{use.plan.reference}:buildx-{image}-{slug(platform)}"


def buildx_flags(use: CacheUse, image: str, platform: str) -> list[str]:
    """BuildKit's registry cache: one manifest per image and platform."""
    where = f"type=registry,ref={buildx_reference(use, image, platform)}"
    if use.plan.insecure:
        where += ",registry.insecure=true"
    flags = ["--cache-from", where]
    if use.write:
        flags += ["--cache-to", f"{where},mode={use.plan.mode}"]
    return flags


def podman_flags(use: CacheUse) -> list[str]:
    """podman's cache: every step's layer under a tag that is its cache key."""
    flags = ["--layers", "--cache-from", use.plan.reference]
    if use.write:
        flags += ["--cache-to", use.plan.reference]
    if use.plan.ttl:
        flags += ["--cache-ttl", use.plan.ttl]
    if use.plan.insecure:
        flags.append("--tls-verify=false")
    return flags


def failed_on_cache(use: CacheUse, error: str) -> bool:
    """Whether a failed build names the cache registry (then it is built again, uncached)."""
    return use.host in error


def _docker_config_dir() -> Path:
    configured = os.environ.get("DOCKER_CONFIG")
    return Path(configured) if configured else Path.home() / ".docker"


def _with_login(config: dict[str, Any], host: str, login: Login, helper: str | None) -> str:
    """`config` (an auth file) with `login` for `host`: the `auths` entry wins over a
    credential store for that host (docker: an empty helper; podman: none)."""
    auths, helpers = config.get("auths"), config.get("credHelpers")
    auths = auths if isinstance(auths, dict) else {}
    helpers = helpers if isinstance(helpers, dict) else {}
    token = f"{login.username}:{login.password}".encode()
    auths = {**auths, host: {"auth": base64.b64encode(token).decode()}}
    helpers = {k: v for k, v in helpers.items() if k != host}
    if helper is not None:
        helpers[host] = helper
    return json.dumps({**config, "auths": auths, "credHelpers": helpers})


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextmanager
def podman_auth(use: CacheUse | None) -> Iterator[list[str]]:
    """`--authfile` flags: the first stored auth file with the cache's login added (none
    without a login)."""
    if use is None or use.login is None:
        yield []
        return
    stored = next((p for p in auth_files() if p.is_file()), None)
    config = _read_json(stored) if stored else {}
    with tempfile.TemporaryDirectory(prefix="syntra-auth-") as folder:
        path = Path(folder) / "auth.json"
        path.touch(mode=0o600)
        path.write_text(_with_login(config, use.host, use.login, None))
        yield ["--authfile", str(path)]


@contextmanager
def docker_env(use: CacheUse | None) -> Iterator[dict[str, str]]:
    """Environment for buildx: DOCKER_CONFIG in a temporary folder whose config.json adds
    the cache's login, with the user's builders, contexts and plugins linked in."""
    if use is None or use.login is None:
        yield {}
        return
    original = _docker_config_dir()
    config = _read_json(original / "config.json")
    with tempfile.TemporaryDirectory(prefix="syntra-docker-") as folder:
        path = Path(folder) / "config.json"
        path.touch(mode=0o600)
        path.write_text(_with_login(config, use.host, use.login, ""))
        for kept in ("buildx", "contexts", "cli-plugins"):
            if (original / kept).exists():
                (Path(folder) / kept).symlink_to(original / kept)
        yield {"DOCKER_CONFIG": folder}
