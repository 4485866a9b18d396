"""Two CI runners, one registry layer cache (syntra.yaml `cache:`, docs/cache.md).

Runner A builds an image whose Containerfile has a slow step (20 s, standing for
installing packages or compiling dependencies), then copies the sources and builds
them (2 s), in its own fresh podman store, filling the cache. One source file then
changes, and runner B, a fresh store again, rebuilds it:

- cold: without the cache (`SYNTRA_LAYER_CACHE=off`), the slow step runs again;
- cached: with the cache, the slow step's layer comes from the registry;
- warm local: runner A's own store rebuilds it (what one machine gets for free).

Targets: cached <= 0.3x cold and <= 1.5x warm local. Each time is the best of five
rounds, interleaved, every cold and cached run in a store of its own. Also printed:
the bytes the cache repository holds. `syntra test` builds without pushing the
image, so the times are the builds' (and the cache's pushes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
RUNS = 5
SLOW = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN ["/bin/busybox", "sh", "-c", "sleep 20; /bin/busybox od -An -N64 -tx1 /dev/urandom > /built"]
COPY . /srv/
RUN ["/bin/busybox", "sh", "-c", "sleep 2; /bin/busybox md5sum /srv/main.c > /srv/built"]
"""


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def project(root: Path, registry: str, base: str) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "templates" / "app.j2").write_text(SLOW)
    (root / "app" / "main.c").write_text("int main(void) { return 0; }\n")
    (root / ".gitignore").write_text(".syntra/\n")
    (root / "syntra.yaml").write_text(
        "version: 1\n"
        "project: {name: bench}\n"
        f"registries: {{local: {{url: '{registry}', insecure: true}}}}\n"
        "defaults: {platforms: [linux/amd64], cache: {registry: local}}\n"
        f"images: {{app: {{template: app.j2, context: app, base: '{base}'}}}}\n"
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=bench", "-c", "user.email=b@x", "commit", "-qm", "one")
    return root


def store(folder: Path) -> dict[str, str]:
    """A fresh podman store of its own: a runner that starts cold."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{folder}/graph"\nrunroot = "{folder}/run"\n'
    )
    (folder / "containers.conf").write_text(f'[engine]\ntmp_dir = "{folder}/tmp"\n')
    return {
        "CONTAINERS_STORAGE_CONF": str(folder / "storage.conf"),
        "CONTAINERS_CONF": str(folder / "containers.conf"),
    }


def reset(env: dict[str, str]) -> None:
    subprocess.run(["podman", "system", "reset", "--force"], env={**os.environ, **env},
                   check=True, capture_output=True)  # fmt: skip


def build(root: Path, env: dict[str, str]) -> float:
    argv = [PY, "-m", "syntra", "test", "app", "--platform", "linux/amd64"]
    full = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **env}
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=root, env=full, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0 or "warning" in done.stderr:
        raise SystemExit(f"build failed or warned:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return took


def cache_bytes(registry: str, repository: str) -> tuple[int, int]:
    """(tags, bytes of every distinct blob and manifest) of the cache repository."""
    from syntra.oci.locate import Registries

    client = Registries().client(registry, insecure=True)
    tags = client.tags(repository)
    sizes: dict[str, int] = {}
    for tag in tags:
        manifest = client.get_manifest(repository, tag)
        sizes[manifest.digest] = len(manifest.data)
        for blob in manifest.children():
            sizes[blob["digest"]] = blob["size"]
    return len(tags), sum(sizes.values())


def main() -> int:
    from tests.support.bases import seed_busybox

    from syntra.registry.local import serve

    binaries = {a: ROOT / ".cache" / "busybox" / a / "bin" / "busybox" for a in ("amd64", "arm64")}
    with serve() as registry, tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        base = seed_busybox(registry, binaries, "bench/busybox", "1.36")
        root = project(folder / "repo", registry, base)
        stores: list[dict[str, str]] = []

        def fresh(name: str) -> dict[str, str]:
            stores.append(store(folder / "stores" / name))
            return stores[-1]

        try:
            runner_a = fresh("a")
            first = build(root, runner_a)  # fills the cache
            off = {"SYNTRA_LAYER_CACHE": "off"}
            rounds = []
            for n in range(RUNS):  # interleaved: each round sees the same load
                # A one-file change from what runner A and the cache last saw.
                (root / "app" / "main.c").write_text(f"int main(void) {{ return {n + 1}; }}\n")
                git(root, "-c", "user.name=bench", "-c", "user.email=b@x", "commit", "-qam", "edit")
                rounds.append((
                    build(root, {**fresh(f"cold-{n}"), **off}),
                    build(root, fresh(f"cached-{n}")),
                    build(root, {**runner_a, **off}),
                ))  # fmt: skip
            cold, cached, warm = (min(times) for times in zip(*rounds, strict=True))
            tags, size = cache_bytes(registry, "bench/app/cache")
        finally:
            for env in stores:
                reset(env)
    rows = [
        ("runner A, first build (fills the cache)", first),
        ("runner B after a one-file change, cold (no cache)", cold),
        ("runner B after a one-file change, with the cache", cached),
        ("runner A after the change, warm local store", warm),
    ]
    for label, seconds in rows:
        print(f"{label:<52} {seconds:7.2f} s")
    print(f"{'cache repository':<52} {tags} tags, {size / 1024:.0f} KiB")
    ratios = [("cached / cold", cached / cold, 0.3), ("cached / warm local", cached / warm, 1.5)]
    failed = False
    for label, ratio, target in ratios:
        ok = ratio <= target
        failed |= not ok
        print(f"{label:<52} {ratio:7.2f}x  (target <= {target}x) {'ok' if ok else 'MISSED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
