"""The fast layer: attach, verify and release logic against a registry in memory
(tests/support/memory.py), through Syntra's real client. Milliseconds each; the same
behaviour is checked end to end against distribution and cosign elsewhere."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from syntra.errors import Refused
from syntra.image import publish
from syntra.image.publish import image_record, index_document
from syntra.oci import INDEX, Blob, Document, push
from syntra.oci.locate import Where
from syntra.pipeline.context import Context
from syntra.plan import Destination
from syntra.records import ImageRecord, PlatformImage
from syntra.release.cut import run_release
from syntra.supply import keys
from syntra.supply.attach import attachment_tag
from syntra.supply.verify import KeyTrust, Policy, trust_of, verify
from syntra.supplychain.secure import secure
from tests.conftest import commit, git
from tests.support.memory import MemoryRegistry, memory_registry

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class Pushed:
    ctx: Context
    registry: MemoryRegistry
    where: Where
    record: ImageRecord


def _image(where: Where) -> PlatformImage:
    """A tiny one-layer image, pushed by digest: blobs, then its manifest."""
    config, layer = Blob.of(b'{"architecture":"amd64","os":"linux"}'), Blob.of(b"layer")
    manifest = {
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer.digest, "size": layer.size}],
    }  # fmt: skip
    document = Document(json.dumps(manifest).encode(), MANIFEST)
    push(where.registry, where.path, blobs=[config, layer], manifests=[document])
    size = len(document.data)
    content = size + config.size + layer.size
    return PlatformImage(
        platform="linux/amd64", digest=document.digest, size=size, media_type=MANIFEST,
        content_bytes=content,
    )  # fmt: skip


@pytest.fixture
def pushed(project: Path, monkeypatch: pytest.MonkeyPatch) -> Pushed:
    monkeypatch.setenv("SYNTRA_KEY_PASSPHRASE", "a passphrase")
    registry = memory_registry()
    text = (project / "syntra.yaml").read_text().replace("127.0.0.1:5000", registry.host)
    text += "    tags: ['{{ version }}']\n"
    text += "supply_chain: {sbom: [], signing: {mode: key, key: keys/cosign.key}}\n"
    (project / "syntra.yaml").write_text(text)
    keys.generate(project / "keys" / "cosign.key", "SYNTRA_KEY_PASSPHRASE")
    commit(project, "release")
    git(project, "tag", "v1.2.3")
    ctx = Context.load(project / "syntra.yaml")
    image = ctx.plan.image("web")
    registry.serve(ctx.registries)
    where = ctx.registries.locate(image.destination)
    child = _image(where)
    index = index_document([child])
    push(where.registry, where.path, manifests=[index], tags={"1.2.3": index})
    record = image_record(ctx.plan, image, publish.Pushed(index.digest, [child]))
    return Pushed(ctx, registry, where, record)


def _secure(pushed: Pushed, destination: Destination) -> list[str]:
    ctx = pushed.ctx
    return secure(ctx.loaded, ctx.registries, ctx.plan, pushed.record, destination)


def _puts(registry: MemoryRegistry) -> list[str]:
    return [path for method, path in registry.seen if method in ("PUT", "POST")]


def test_secure_signs_each_digest_once_and_again_changes_nothing(pushed: Pushed) -> None:
    destination = pushed.ctx.plan.image("web").destination
    lines = _secure(pushed, destination)
    child = pushed.record.platforms[0].digest
    assert lines == [
        f"signed {pushed.record.digest}",
        f"provenance for {pushed.record.digest}",
        f"signed {child}",
    ]
    tags = pushed.registry.repository(pushed.where.path).tags
    assert attachment_tag(pushed.record.digest, "sig") in tags
    assert attachment_tag(pushed.record.digest, "att") in tags
    assert attachment_tag(child, "sig") in tags
    before = len(_puts(pushed.registry))
    _secure(pushed, destination)
    assert _puts(pushed.registry)[before:] == []  # signed already: nothing written


def test_verify_takes_the_configured_key_and_refuses_another(
    pushed: Pushed, tmp_path: Path
) -> None:
    destination = pushed.ctx.plan.image("web").destination
    policy = Policy(trust_of(pushed.ctx.loaded), [], True)
    unsigned = verify("web", pushed.where, pushed.record.digest, policy)
    assert [check.signature for check in unsigned] == [False, False]
    _secure(pushed, destination)
    checks = verify("web", pushed.where, pushed.record.digest, policy)
    assert [(c.platform, c.ok) for c in checks] == [(None, True), ("linux/amd64", True)]
    keys.generate(tmp_path / "other.key", "SYNTRA_KEY_PASSPHRASE")
    foreign = KeyTrust(keys.load_public(tmp_path / "other.pub"))
    refused = verify("web", pushed.where, pushed.record.digest, Policy(foreign, [], True))
    assert not any(check.ok for check in refused)


def test_release_refuses_before_signing_then_tags_the_verified_digest(pushed: Pushed) -> None:
    with pytest.raises(Refused, match=r"release 1\.2\.3: refused \(1 artifact of 1 not verified\)"):
        list(run_release(pushed.ctx.loaded, pushed.ctx.registries, pushed.ctx.plan))
    tags = pushed.registry.repository(pushed.where.path).tags
    assert set(tags) == {"1.2.3"}  # nothing tagged
    destination = pushed.ctx.plan.image("web").destination
    _secure(pushed, destination)
    lines = list(run_release(pushed.ctx.loaded, pushed.ctx.registries, pushed.ctx.plan))
    assert lines[-1] == "release 1.2.3: done"
    for tag in ("1.2.3", "1.2", "1", "latest"):
        assert tags[tag] == pushed.record.digest
    again = list(run_release(pushed.ctx.loaded, pushed.ctx.registries, pushed.ctx.plan))
    assert again[-1] == "release 1.2.3: already complete, nothing changed"
    assert pushed.registry.repository(pushed.where.path).manifests[pushed.record.digest][1] == INDEX
