"""Apple's `container` CLI (macOS 26 on Apple silicon): build and push in its own store.

Unlike podman and buildx it cannot hand out an OCI layout or push by digest, so it
builds every platform at once and pushes one staging tag; Syntra then checks the
pushed index through the registry API (the CLI has been seen to leave index
children behind), repairs a gap with `image save` + skopeo, puts the real tags last,
and records the result in the same record as the Linux builders.

This cannot run on Linux: it is verified against a recording stand-in that answers
like CLI versions 0.4.x and 1.x (tests/standins/container).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from syntra import process, refs
from syntra.errors import SyntraError
from syntra.image import buildsecrets, imagetest
from syntra.image.build.contract import Entry
from syntra.image.build.flags import image_flags
from syntra.image.inputs import Job, inputs_tag
from syntra.image.publish import Pushed, index_children
from syntra.image.testbox import apple_boxes
from syntra.invocation import invocation
from syntra.oci import push
from syntra.oci.locate import Where
from syntra.paths import build_log
from syntra.plan import ImagePlan
from syntra.records import TestResult

CLI_ENV = "SYNTRA_CONTAINER_CLI"
"""Apple's CLI to run, when not `container` on PATH: a path, or a wrapper (one that runs
it on a Mac over ssh, say). Set, it is taken as usable whatever this host is."""
MAX_SPEC_BYTES = 16 * 1024
STAGING_TAG = "syntra-staging"
"""The only tag the CLI pushes: the real tags go up through the registry API once the
index and all its children are verified there (the CLI cannot push by digest)."""


def staging_ref(image: ImagePlan) -> str:
    return image.destination.refs[0].rsplit(":", 1)[0] + f":{STAGING_TAG}"


_VERSION_RE = re.compile(r"container CLI version (\d+)\.(\d+)\.(\d+)")

Version = tuple[int, int, int]


@dataclass(frozen=True)
class Host:
    system: str
    release: str
    machine: str

    @classmethod
    def here(cls) -> Host:
        return cls(platform.system(), platform.mac_ver()[0], platform.machine())


def unavailable_reason(host: Host, program: str | None) -> str | None:
    """Why Apple's backend cannot be used on `host`, or None when it can."""
    needs = "Apple's container CLI needs macOS 26 on Apple silicon; this is"
    if host.system != "Darwin":
        return f"{needs} {host.system} {host.machine}"
    major = int(host.release.split(".")[0] or 0) if host.release else 0
    if major < 26 or host.machine != "arm64":
        return f"{needs} macOS {host.release} {host.machine}"
    if program is None:
        return "Apple's container CLI is not installed (github.com/apple/container/releases)"
    return None


def parse_version(text: str) -> Version:
    match = _VERSION_RE.search(text)
    if not match:
        raise SyntraError(f"cannot read the container CLI version from {text.strip()!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return (major, minor, patch)


def memory_flag(size: int) -> str:
    """The CLI takes 1 MiB granularity with a K/M/G suffix."""
    gib, mib = 1 << 30, 1 << 20
    return f"{size // gib}G" if size % gib == 0 else f"{max(size // mib, 1)}M"


def platform_flags(platforms: list[str]) -> list[str]:
    """`--arch` for plain linux platforms (every version has it), else `--platform`."""
    parsed = [refs.parse_platform(p) for p in platforms]
    if all(p.os == "linux" and not p.variant for p in parsed):
        return [flag for p in parsed for flag in ("--arch", p.arch)]
    return [flag for p in platforms for flag in ("--platform", p)]


def unavailable() -> str | None:
    if os.environ.get(CLI_ENV):
        return None
    return unavailable_reason(Host.here(), shutil.which("container"))


class AppleContainer:
    """The build-and-push backend: `publish` is the whole of it."""

    name = "container"

    def __init__(self, program: str = "container") -> None:
        self.program = program
        self.version = parse_version(self._run("--version"))

    @classmethod
    def here(cls) -> AppleContainer:
        return cls(os.environ.get(CLI_ENV) or "container")

    @property
    def label(self) -> str:
        return f"container {'.'.join(map(str, self.version))}"

    def _run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        return process.run(
            [self.program, *args], f"container {args[0]}", stdin=stdin, check=check
        ).out

    # The commands, one method each, so contract tests can name what they check.

    def ensure_started(self) -> None:
        if not self._running():
            self._run("system", "start", "--enable-kernel-install")
            if not self._running():
                raise SyntraError("container system start did not bring the services up")

    def _running(self) -> bool:
        try:
            status = json.loads(
                self._run("system", "status", "--format", "json", check=False) or "{}"
            )
        except json.JSONDecodeError:
            return False
        return str(status.get("status", "")).lower() == "running"

    def login(self, server: str, scheme: str, user: str, password: str) -> None:
        self._run(
            "registry", "login", "--scheme", scheme, "-u", user, "--password-stdin", server,
            stdin=password,
        )  # fmt: skip

    def build_argv(
        self, image: ImagePlan, root: Path, args: dict[str, str], epoch: int
    ) -> list[str]:
        spec = root / image.containerfile
        if spec.stat().st_size >= MAX_SPEC_BYTES:
            raise SyntraError(
                f"{image.containerfile} is {spec.stat().st_size} bytes: Apple's container CLI "
                "refuses Containerfiles of 16 KiB or more"
            )
        argv = ["build", "-t", staging_ref(image), "-f", str(spec)]
        argv += platform_flags(image.platforms)
        # Always both: the CLI recreates its builder VM when they differ from its config.
        argv += ["-c", str(image.cpus), "-m", memory_flag(image.memory)]
        argv += image_flags(image, root, {**args, "SOURCE_DATE_EPOCH": str(epoch)}, "-l")
        return [*argv, "--progress", "plain", str(root / image.context)]

    def push_argv(self, reference: str, scheme: str) -> list[str]:
        # 0.5.0 renamed `images` to `image`; 1.3.0 stopped guessing plain HTTP, so
        # the scheme is always given.
        group = "image" if self.version >= (0, 5, 0) else "images"
        return [group, "push", "--scheme", scheme, reference]

    def build(
        self, image: ImagePlan, root: Path, args: dict[str, str], epoch: int, log: Path
    ) -> None:
        argv = [self.program, *self.build_argv(image, root, args, epoch)]
        process.run(argv, f"container build of {image.name}", log=log)
        for reference in image.destination.refs:  # the local store knows the real names
            self._run("image", "tag", staging_ref(image), reference)

    def push(self, reference: str, scheme: str) -> None:
        self._run(*self.push_argv(reference, scheme))

    def local_digest(self, reference: str) -> str:
        """The index digest in the local store, from `image list --format json`.

        Before 1.0.0 entries are {reference, descriptor: {digest}}; from 1.0.0 they
        are {name, index: {digest}}. Both are read, whichever the version.
        """
        entries: list[dict[str, Any]] = json.loads(self._run("image", "list", "--format", "json"))
        for entry in entries:
            name = entry.get("reference") or entry.get("name") or ""
            descriptor = entry.get("descriptor") or entry.get("index") or {}
            if _same_image(str(name), reference) and descriptor.get("digest"):
                return str(descriptor["digest"])
        raise SyntraError(f"container image list does not show {reference} after the build")

    def save(self, reference: str, output: Path) -> None:
        self._run("image", "save", "--output", str(output), reference)

    def build_and_push(self, job: Job, where: Where) -> Pushed:
        """Build every platform and push a staging tag; then check the index the CLI left
        in the registry, repair missing children, and put the tags; what was pushed."""
        image, destination = job.image, job.image.destination
        buildsecrets.check(job.root, [image])
        if image.plugins:
            raise SyntraError(
                f"{image.name}: bundling plugins needs a named build context (--build-context), "
                "which Apple's container CLI does not have; build this image with podman or buildx"
            )
        if job.stage_images:
            raise SyntraError(
                f"{image.name}: the locked FROM {next(iter(job.stage_images))} needs a named "
                "build context (--build-context), which Apple's container CLI does not have; "
                "build this image with podman or buildx"
            )
        where.registry.check_push(where.path)
        scheme = "http" if destination.insecure else "https"
        self.ensure_started()
        if where.registry.login:
            login = where.registry.login
            self.login(where.registry.host, scheme, login.username, login.password)
        self.build(
            image,
            job.root,
            job.args,
            job.plan.source_date_epoch,
            build_log(job.root, image.name, "all", "container"),
        )
        staging = staging_ref(image)
        tested: list[TestResult] = []
        if image.tests:  # before the staging push: a failing image leaves the registry alone
            save = partial(self.save, staging)
            with apple_boxes(self.program, staging, image.platforms, save) as boxes:
                tested = imagetest.run_tests(image, job.plan, job.root, boxes)
        local = self.local_digest(staging)
        self.push(staging, scheme)
        children, missing = index_children(where, STAGING_TAG)
        if missing:
            repair_with_skopeo(self, staging, destination.insecure)
            children, missing = index_children(where, STAGING_TAG)
            if missing:
                raise SyntraError(f"{image.name}: {', '.join(missing)} still missing after repair")
        index = where.registry.get_manifest(where.path, STAGING_TAG)
        if index.digest != local:
            raise SyntraError(
                f"{image.name}: the registry holds {index.digest}, the local image is {local}"
            )
        # Tags last: everything they point at is verified. Each platform also gets its
        # inputs tag, so any backend finds it already built from these inputs.
        facts = {"builder": self.label, "command": invocation(), "base": job.base_reference}
        built = [
            child.model_copy(update=facts | {"inputs": inputs_tag(job, child.platform)})
            for child in children
        ]
        tags = dict.fromkeys(destination.tags, index)
        for child in built:
            assert child.inputs is not None
            tags[child.inputs] = where.registry.get_manifest(where.path, child.digest)
        push(where.registry, where.path, tags=tags)
        return Pushed(index.digest, built, tested=tested)


def _same_image(listed: str, reference: str) -> bool:
    """The CLI may list `docker.io/library/x:tag` for `x:tag`; compare without that prefix."""

    def bare(text: str) -> str:
        return text.removeprefix("docker.io/").removeprefix("library/")

    return bare(listed) == bare(reference)


def repair_with_skopeo(cli: AppleContainer, reference: str, insecure: bool) -> None:
    """Re-push every child of an index the CLI left incomplete, by digest."""
    if shutil.which("skopeo") is None:
        raise SyntraError(
            "the pushed index misses children and skopeo is not installed to repair it"
        )
    with tempfile.TemporaryDirectory(prefix="syntra-container-") as folder:
        archive = Path(folder) / "image.tar"
        cli.save(reference, archive)
        tls = "false" if insecure else "true"
        process.run(
            ["skopeo", "copy", "--all", "--preserve-digests", f"--dest-tls-verify={tls}",
             f"oci-archive:{archive}", f"docker://{reference}"],
            f"skopeo repair of {reference}",
        )  # fmt: skip


ENTRY = Entry(unavailable, AppleContainer.here, fallback=True)
