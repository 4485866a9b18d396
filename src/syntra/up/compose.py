"""The local stack as a Compose Specification file: `ContainerSpecs/compose.yaml`.

The committed file holds nothing that changes from commit to commit or machine to
machine: the file's own images are named `localhost/<repository>:local`, templated
environment values are shown as written, and `${VAR}`s are left for Compose to expand.
`syntra up` writes the file it runs (`paths.up_compose_file`) from the same services
with each image pinned by the digest of its local build and the templates rendered.
Compose interpolates nothing of that file: Syntra expanded syntra.yaml's `${VAR}`s when
it loaded it, and every `$` left in a command, a health check or a value is written `$$`,
so it reaches the container as written.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from syntra.config import Loaded
from syntra.config.model import Service
from syntra.formats import canonical_json
from syntra.generated import Family, Generated
from syntra.lockfile import Lock, engine_local
from syntra.paths import CONFIG_FILE, SPECS_DIR
from syntra.plan import Plan
from syntra.templating import render_inline

COMPOSE_FILE = f"{SPECS_DIR}/compose.yaml"
COMPOSE = Family(SPECS_DIR, ("compose.yaml",), f"generated from {CONFIG_FILE}")
HEADER = (
    f"# The stack of services in {CONFIG_FILE}, generated from {CONFIG_FILE} — do not edit.\n"
    "# `syntra up` runs it with each image pinned by the digest of its local build.\n"
)
LOCAL_TAG = "local"
CONFIG_LABEL = "dev.syntra.config-hash"
"""The hash of a service's definition, on its container: `syntra up` recreates a
container whose definition changed, and leaves the others running."""


@dataclass(frozen=True)
class Stack:
    """The services as `syntra up` runs them."""

    services: dict[str, dict[str, Any]]
    volumes: list[str]

    def document(self) -> dict[str, Any]:
        found: dict[str, Any] = {"services": self.services}
        if self.volumes:
            found["volumes"] = {name: {} for name in self.volumes}
        return found

    def order(self) -> list[str]:
        """Services in an order that starts every dependency first (checked acyclic)."""
        ordered: list[str] = []

        def visit(name: str) -> None:
            if name not in ordered:
                for dependency in self.services[name].get("depends_on", {}):
                    visit(dependency)
                ordered.append(name)

        for name in self.services:
            visit(name)
        return ordered

    def closure(self, wanted: list[str]) -> list[str]:
        """`wanted` and everything they depend on, in start order."""
        needed: set[str] = set()

        def visit(name: str) -> None:
            if name not in needed:
                needed.add(name)
                for dependency in self.services[name].get("depends_on", {}):
                    visit(dependency)

        for name in wanted:
            visit(name)
        return [name for name in self.order() if name in needed]


def local_name(plan: Plan, image: str) -> str:
    """The stable name of one of the file's images in the local engine."""
    return f"localhost/{plan.image(image).destination.repository}:{LOCAL_TAG}"


def stack(
    loaded: Loaded,
    plan: Plan,
    pins: dict[str, str] | None = None,
) -> Stack:
    """The services of syntra.yaml. Without `pins` (each service's `image` as written ->
    the reference to run) it is the committed file: images by local name, templates as
    written, bind mounts relative to ContainerSpecs/. With them, the file `syntra up`
    runs: templates rendered, bind mounts absolute."""
    services: dict[str, dict[str, Any]] = {}
    volumes: list[str] = []
    for name, service in loaded.config.services.items():
        run = pins is not None
        body = _service(loaded, plan, name, service, pins or {}, loaded.root if run else None)
        if run:
            body["labels"] = {CONFIG_LABEL: _hash(body)}
        else:
            body = _as_written(loaded, name, body)
        services[name] = body
        for volume in service.volumes:
            source = volume.split(":", 1)[0]
            if not source.startswith("./") and source not in volumes:
                volumes.append(source)
    return Stack(services, volumes)


def _service(
    loaded: Loaded,
    plan: Plan,
    name: str,
    service: Service,
    pins: dict[str, str],
    root: Path | None,
) -> dict[str, Any]:
    image = service.image
    if image in pins:
        image = pins[image]
    elif image in loaded.config.images:
        image = local_name(plan, image)
    body: dict[str, Any] = {"image": image}
    if service.command is not None:
        body["command"] = [_escaped(word) for word in service.command]
    if service.environment:
        context = {**plan.variables, "name": name}
        body["environment"] = {
            key: _escaped(_value(loaded, name, key, value, context) if root else value)
            for key, value in service.environment.items()
        }
    if service.ports:
        body["ports"] = list(service.ports)
    if service.volumes:
        body["volumes"] = [_volume(volume, root) for volume in service.volumes]
    if service.depends_on:
        body["depends_on"] = {
            dependency: {"condition": condition}
            for dependency, condition in service.dependencies().items()
        }
    if service.healthcheck:
        check = service.healthcheck
        test = check.test if isinstance(check.test, list) else ["CMD-SHELL", check.test]
        body["healthcheck"] = {
            "test": [_escaped(word) for word in test],
            "interval": check.interval,
            "timeout": check.timeout,
            "retries": check.retries,
            "start_period": check.start_period,
        }
    return body


def locked_services(loaded: Loaded, lock: Lock | None) -> dict[str, str]:
    """The external images of the services, each to the `name@digest` `syntra.lock`
    pins it to (none without a lock): the pins `syntra up` runs them by."""
    if lock is None:
        return {}
    images = {s.image for s in loaded.config.services.values()} - set(loaded.config.images)
    return {image: lock.entry(image).pinned for image in images if not engine_local(image)}


def _as_written(loaded: Loaded, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The image, environment, command and health check values syntra.yaml writes with
    `${VAR}`s keep them in the committed file: Compose expands them the same way, and the
    file holds nothing the environment it was rendered in gave (a secret, say)."""
    raw = _written(loaded.document.text).get(name) or {}
    image = raw.get("image")
    if isinstance(image, str) and "${" in image:
        body["image"] = _for_compose(image)
    for key, value in (raw.get("environment") or {}).items():
        if isinstance(value, str) and "${" in value and key in body.get("environment", {}):
            body["environment"][key] = _for_compose(value)
    if "command" in body:
        body["command"] = _words_as_written(raw.get("command"), body["command"])
    check = raw.get("healthcheck")
    if "healthcheck" in body and isinstance(check, dict):
        test = check.get("test")
        written = ["CMD-SHELL", test] if isinstance(test, str) else test
        body["healthcheck"]["test"] = _words_as_written(written, body["healthcheck"]["test"])
    return body


def _words_as_written(raw: object, rendered: list[str]) -> list[str]:
    """Each word of `rendered` as syntra.yaml's text has it when that holds a `${VAR}`."""
    if not isinstance(raw, list) or len(raw) != len(rendered):
        return rendered
    return [
        _for_compose(w) if isinstance(w, str) and "${" in w else r
        for w, r in zip(raw, rendered, strict=True)
    ]


_DOLLARS = re.compile(r"\$\$|\$\{[A-Za-z_][A-Za-z0-9_]*(?:[:?-][^}]*)?\}|\$")


def _for_compose(written: str) -> str:
    """syntra.yaml's text as Compose reads it alike: its `${VAR}`s (Compose expands them
    as Syntra does) and its `$$` (a `$`) kept, any other `$` written `$$`."""
    return _DOLLARS.sub(lambda found: found[0] if len(found[0]) > 1 else "$$", written)


@cache
def _written(text: str) -> dict[str, Any]:
    """The services as syntra.yaml's text gives them, `${VAR}`s not expanded."""
    found = YAML(typ="safe", pure=True).load(text)
    services = found.get("services") if isinstance(found, dict) else None
    return services if isinstance(services, dict) else {}


def _value(loaded: Loaded, service: str, key: str, text: str, context: dict[str, Any]) -> str:
    try:
        return render_inline(text, context)
    except ValueError as exc:
        raise loaded.document.error(("services", service, "environment", key), str(exc)) from None


def _escaped(value: str) -> str:
    """Compose interpolates `$NAME` and `${NAME}`: written `$$`, a value reaches the
    container as written (`$${VAR}` in syntra.yaml stays `${VAR}`, for the container's
    shell; a host variable is a `${VAR}` Syntra expands when it loads syntra.yaml)."""
    return value.replace("$", "$$")


def _volume(volume: str, root: Path | None) -> str:
    """A repository folder relative to ContainerSpecs/, or absolute in the file `up` runs."""
    source, rest = volume.split(":", 1)
    if not source.startswith("./"):
        return _escaped(volume)
    relative = source[2:]
    return _escaped(f"{root / relative if root else Path('..', relative)}:{rest}")


def _hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body)).hexdigest()[:16]


def dump(document: dict[str, Any], header: str = "") -> str:
    yaml = YAML(typ="rt")
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    buffer = io.StringIO()
    yaml.dump(_quoted(document), buffer)
    return header + buffer.getvalue()


def _quoted(node: Any) -> Any:
    """Every string value in double quotes: engines read Compose files as YAML 1.1, where
    `8080:80` is a number in base 60 and `on` is true."""
    if isinstance(node, dict):
        return {key: _quoted(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_quoted(value) for value in node]
    return DoubleQuotedScalarString(node) if isinstance(node, str) else node


def render(loaded: Loaded, plan: Plan) -> list[Generated]:
    """`ContainerSpecs/compose.yaml`, when syntra.yaml has services."""
    if not loaded.config.services:
        return []
    return [Generated(COMPOSE_FILE, dump(stack(loaded, plan).document(), HEADER))]


def compose_inputs(loaded: Loaded, plan: Plan) -> dict[str, Any]:
    """Everything the committed compose file is rendered from (for doit's uptodate)."""
    services = {n: s.model_dump(mode="json") for n, s in loaded.config.services.items()}
    return {"services": services, "names": {i.name: local_name(plan, i.name) for i in plan.images}}
