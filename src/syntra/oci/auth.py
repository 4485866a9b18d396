"""Registry logins: where they come from, and answering Basic and Bearer challenges.

Credentials are looked up the way docker and podman look them up, first match wins:
the environment variables named in syntra.yaml (passed in by the caller), then
`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
`~/.config/containers/auth.json` and the docker config (`$DOCKER_CONFIG/config.json`,
else `~/.docker/config.json`): an `auths` entry, else `credHelpers[host]` or
`credsStore`, run as `docker-credential-<name> get`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from oras import defaults
from oras.auth.utils import parse_auth_header

from syntra import process
from syntra.errors import RegistryError, SyntraError
from syntra.oci.media import json_object

DOCKER_HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io"}
TokenFetch = Callable[[str, dict[str, str]], requests.Response]
"""GET a token realm with these parameters (the client's retry policy, the login)."""


@dataclass(frozen=True)
class Login:
    username: str
    password: str = field(repr=False)
    source: str
    """Where it came from, for messages: `$PROD_USER / $PROD_PASSWORD`, a file, a helper."""

    def __post_init__(self) -> None:
        process.keep_secret(self.password)  # a tool's output or a registry must not show it
        process.keep_secret(base64.b64encode(f"{self.username}:{self.password}".encode()).decode())


def env_login(username_env: str, password_env: str) -> Login:
    """The login named by syntra.yaml's `credentials`; one line when a variable is unset."""
    user, password = os.environ.get(username_env), os.environ.get(password_env)
    if not user or not password:
        missing = username_env if not user else password_env
        raise SyntraError(f"credentials variable {missing} is not set")
    return Login(user, password, f"${username_env} / ${password_env}")


def auth_files() -> list[Path]:
    files = []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        files.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    if os.environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    files.append(Path.home() / ".config" / "containers" / "auth.json")
    docker = os.environ.get("DOCKER_CONFIG")
    files.append((Path(docker) if docker else Path.home() / ".docker") / "config.json")
    return files


def _host_of(key: str) -> str:
    """An auths key (`https://index.docker.io/v1/`, `ghcr.io`, `host:5000/ns`) → its host."""
    return key.split("://", 1)[-1].split("/", 1)[0]


def _same_host(key: str, host: str) -> bool:
    found = _host_of(key)
    return found == host or {found, host} <= DOCKER_HUB_HOSTS


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SyntraError(f"{path}: unreadable auth file ({exc})") from None
    return data if isinstance(data, dict) else {}


def _from_entry(entry: Any, source: str) -> Login | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise SyntraError(f"{source}: an `auth` entry is not base64 user:password") from None
        return Login(user, password, source) if user else None
    if entry.get("username") and entry.get("password"):
        return Login(entry["username"], entry["password"], source)
    return None


def _helper(name: str, host: str) -> Login | None:
    program = f"docker-credential-{name}"
    server = defaults.registry.index_server if host in DOCKER_HUB_HOSTS else host
    if shutil.which(program) is None:
        raise SyntraError(f"credential helper {program} is not installed")
    done = process.run([program, "get"], check=False, stdin=server, timeout=30)
    if done.code is None:
        raise SyntraError(f"credential helper {program} did not answer in 30 s")
    if not done.ok:
        return None  # "credentials not found in native keychain"
    try:
        answer = json.loads(done.out)
    except ValueError:
        raise SyntraError(f"credential helper {program} did not answer with JSON") from None
    if not isinstance(answer, dict) or not answer.get("Username") or not answer.get("Secret"):
        return None
    return Login(answer["Username"], answer["Secret"], program)


def stored_login(host: str) -> Login | None:
    """The login for `host` from the auth files and credential helpers, if any."""
    for path in auth_files():
        config = _read(path)
        auths, helpers = config.get("auths"), config.get("credHelpers")
        for key, entry in (auths if isinstance(auths, dict) else {}).items():
            if _same_host(key, host) and (login := _from_entry(entry, str(path))):
                return login
        named = helpers if isinstance(helpers, dict) else {}
        helper = next((v for k, v in named.items() if _same_host(k, host)), None)
        helper = helper or config.get("credsStore")
        if isinstance(helper, str) and helper and (login := _helper(helper, host)):
            return login
    return None


def looked_in() -> str:
    return ", ".join(str(path) for path in auth_files())


class Authenticator:
    """Answers a registry's challenges for one host; thread-safe.

    Basic: the login, sent from then on. Bearer: a token from the realm for the scope the
    registry asks for, kept per repository and kind of access (pull, or push, which also
    serves pulls) and reused until the registry refuses it; then a fresh one is asked
    for, so a token that expires during a long build is renewed."""

    def __init__(self, label: str, login: Login | None) -> None:
        self.label = label
        self.login = login
        self._lock = threading.Lock()
        self._basic: str | None = None
        self._tokens: dict[tuple[str, bool], str] = {}  # (repository, push) → token

    def headers(self, repository: str, push: bool) -> dict[str, str]:
        with self._lock:
            if self._basic:
                return {"Authorization": self._basic}
            token = self._tokens.get((repository, push)) or self._tokens.get((repository, True))
        return {"Authorization": f"Bearer {token}"} if token else {}

    def answer(
        self, response: requests.Response, repository: str, push: bool, fetch: TokenFetch
    ) -> bool:
        """Take the challenge of a 401; True when there is something new to try."""
        sent = response.request.headers.get("Authorization")
        current = self.headers(repository, push).get("Authorization")
        if current and sent != current:
            return True  # another thread answered a challenge meanwhile: try with that
        challenge = response.headers.get("WWW-Authenticate", "")
        kind = challenge.split(" ", 1)[0].lower()
        if kind == "basic":
            if self.login is None or self._basic:
                return False
            raw = f"{self.login.username}:{self.login.password}".encode()
            with self._lock:
                self._basic = "Basic " + base64.b64encode(raw).decode()
            return True
        parsed = parse_auth_header(challenge) if kind == "bearer" else None
        if parsed is None or not parsed.realm:
            return False
        token = self._token(fetch, parsed.realm, parsed.service, parsed.scope or "")
        with self._lock:
            self._tokens[(repository, push)] = token
        return True

    def _token(self, fetch: TokenFetch, realm: str, service: str | None, scope: str) -> str:
        params = {key: value for key, value in (("service", service), ("scope", scope)) if value}
        response = fetch(realm, params)
        if response.status_code in (401, 403):
            raise RegistryError(f"{self.label}: {self.refused()}")
        body = json_object(response.content) or {}
        token = body.get("token") or body.get("access_token")
        if response.status_code != 200 or not isinstance(token, str):
            raise RegistryError(
                f"{self.label}: token service {realm} answered {response.status_code} "
                "without a token"
            )
        return process.keep_secret(token)

    def refused(self) -> str:
        if self.login is None:
            return f"needs a login and none is configured (looked in {looked_in()})"
        return f"login refused for '{self.login.username}' (credentials from {self.login.source})"
