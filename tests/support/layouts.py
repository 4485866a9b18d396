"""Synthetic OCI layouts of incompressible layers, and a script that pushes one through
Syntra's push path: for the kill tests and the push benchmarks."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

PUSH = """
import sys
from pathlib import Path
from syntra.oci import Client
from syntra.plan import Destination
from syntra.image.publish import push_images, read_layout
from syntra.oci.locate import Where
address, layout, repository = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
where = Where(Client(address, insecure=True), repository, f"{address}/{repository}")
destination = Destination(address, True, repository, ["v1"], [])
push_images(where, [read_layout(layout, "linux/amd64")], destination)
"""


def oci_layout(folder: Path, layers: int, size: int, seed: int) -> Path:
    """An OCI layout of one image with `layers` incompressible layers of `size` bytes."""
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    generator = random.Random(seed)

    def blob(data: bytes) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    def random_blob() -> dict[str, object]:
        """Written in pieces: a 512 MiB layer never sits in memory."""
        hasher, temp = hashlib.sha256(), blobs / "partial"
        with temp.open("wb") as sink:
            for start in range(0, size, 1 << 20):
                piece = generator.randbytes(min(1 << 20, size - start))
                hasher.update(piece)
                sink.write(piece)
        temp.rename(blobs / hasher.hexdigest())
        return {"digest": f"sha256:{hasher.hexdigest()}", "size": size}

    described = [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar", **random_blob()}
        for _ in range(layers)
    ]
    config = blob(
        json.dumps(
            {"architecture": "amd64", "os": "linux",
             "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in described]}}
        ).encode()
    )  # fmt: skip
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
         "layers": described}
    ).encode()  # fmt: skip
    top = blob(manifest)
    (folder / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (folder / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", **top}]})
    )  # fmt: skip
    return folder
