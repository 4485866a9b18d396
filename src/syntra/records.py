"""What was pushed, as typed records (`layout.record_path`): the hand-off from the
build and wasm stages to supply, verify, release and the reports.

Written and read here only. A record is validated when read: one that is missing,
unreadable, incomplete or of another schema version counts as missing, so the task that
produces it runs again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from syntra import telemetry
from syntra.errors import SyntraError
from syntra.fsutil import write_atomic
from syntra.invocation import invocation
from syntra.paths import digest_dir, record_path, slug
from syntra.plan import Destination, Plan
from syntra.refs import DIGEST_ANCHORED

DigestText = Annotated[str, Field(pattern=DIGEST_ANCHORED)]
"""A digest as a record holds it: one `syntra.oci.digest.parse` accepts, or the record
is refused (a record is a file anyone can edit)."""

SCHEMA_VERSION: Literal[1] = 1


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PlatformImage(_Record):
    """One platform's manifest in the registry."""

    platform: str
    digest: DigestText
    size: int
    media_type: str
    content_bytes: int
    """Manifest, config and (compressed) layers together: what a pull transfers."""
    builder: str | None = None
    command: str | None = None
    """The build's facts, recorded when it ran: backend and the command that ran it."""
    base: str | None = None
    """The base image pinned to the digest this build used."""
    inputs: str | None = None
    """The `inputs-<sha256>` tag of what this platform was built from."""


class TestResult(_Record):
    """An image test that passed on one platform before the push."""

    platform: str
    test: str


class _Pushed(_Record):
    schema_version: Literal[1] = SCHEMA_VERSION
    name: str
    registry: str | None
    repository: str
    digest: DigestText
    media_type: str
    tags: list[str]
    refs: list[str]
    version: str
    source_commit: str | None
    source_date_epoch: int
    uploaded_bytes: int
    command: str = ""
    """The command that pushed it (`doit wasm`, `syntra merge server`)."""


class ImageRecord(_Pushed):
    kind: Literal["image"] = "image"
    platforms: list[PlatformImage]
    base: str | None = None
    """The base image pinned to the digest the build used."""
    tests: list[TestResult] = []
    retagged: bool = False
    """Nothing was built: the registry held this image for exactly these inputs."""
    inputs: str | None = None
    """The digest of everything it is built from (`Job.inputs_digest`): the record is
    current while that is unchanged, whichever backend pushed it."""


class WebBundle(_Record):
    """A guest's browser bundle, attached to its artifact as an OCI referrer."""

    digest: DigestText
    size: int
    files: list[str]


class WasmRecord(_Pushed):
    kind: Literal["wasm"] = "wasm"
    artifact_type: str
    wasm_digest: DigestText
    wasm_bytes: int
    wasm_kind: str
    built_with: dict[str, str] = {}
    """The compilers and their versions, as the build recorded them (for the SBOM)."""
    web: WebBundle | None = None


Record = ImageRecord | WasmRecord
_RECORD: TypeAdapter[Record] = TypeAdapter(Annotated[Record, Field(discriminator="kind")])


def shared_fields(
    plan: Plan, name: str, destination: Destination, digest: str, uploaded: int
) -> dict[str, Any]:
    """What every record says: where it went, at which digest, from which commit."""
    return {
        "name": name,
        "registry": destination.registry,
        "repository": destination.repository,
        "digest": digest,
        "tags": destination.tags,
        "refs": destination.refs,
        "version": plan.version,
        "source_commit": plan.git.get("commit"),
        "source_date_epoch": plan.source_date_epoch,
        "uploaded_bytes": uploaded,
        "command": invocation(),
    }


def write_record(root: Path, record: Record) -> None:
    telemetry.annotate({"syntra.digest": record.digest, "syntra.ref": ", ".join(record.refs)})
    data = record.model_dump(mode="json")
    write_atomic(record_path(root, record.name), (json.dumps(data, indent=2) + "\n").encode())


def find_record(root: Path, name: str) -> Record | None:
    """The record of `name`, or None when there is no sound one."""
    try:
        return _RECORD.validate_json(record_path(root, name).read_bytes())
    except (OSError, ValidationError):
        return None


def read_record(root: Path, name: str) -> Record:
    """The record of `name`, or one line saying which task pushes it."""
    record = find_record(root, name)
    if record is None:
        path = record_path(root, name)
        state = "is missing" if not path.exists() else "is damaged or from another version"
        raise SyntraError(f"{name}: nothing pushed yet ({path} {state}); push it again")
    return record


def read_image(root: Path, name: str) -> ImageRecord:
    record = read_record(root, name)
    if not isinstance(record, ImageRecord):
        raise SyntraError(f"{name}: {record_path(root, name)} is not an image's record")
    return record


def digest_file(root: Path, image: str, platform: str) -> Path:
    return digest_dir(root, image) / f"{slug(platform)}.json"


def write_digest_file(root: Path, image: str, pushed: PlatformImage) -> Path:
    """CI fan-out: what one runner pushed, for `syntra merge` on another."""
    path = digest_file(root, image, pushed.platform)
    write_atomic(path, (pushed.model_dump_json(indent=2) + "\n").encode())
    return path


def read_digest_file(root: Path, image: str, platform: str) -> PlatformImage:
    path = digest_file(root, image, platform)
    if not path.is_file():
        raise SyntraError(f"{image}: no digest file for {platform} ({path})")
    try:
        return PlatformImage.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        reason = str(exc).splitlines()[0]
        raise SyntraError(f"{path}: not a digest file written by syntra build ({reason})") from None
