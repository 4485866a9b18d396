"""`syntra inspect|digest|tags|tree|delete|pull`: the command-line side of the registry
commands (`syntra.registry.toolkit`), usable with or without a syntra.yaml."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syntra.config import Loaded, load
from syntra.errors import one_line
from syntra.oci.locate import Registries
from syntra.registry import toolkit
from syntra.supply.attach import WEB_BUNDLE

NAMES = ("inspect", "digest", "tags", "tree", "sbom", "copy", "delete", "pull")
"""Shown under their own heading in `syntra --help`."""


def _loaded(args: argparse.Namespace) -> Loaded | None:
    """syntra.yaml when there is one here, loaded once per command."""
    if not hasattr(args, "_loaded"):
        file = Path(args.file)
        args._loaded = load(file) if file.exists() else None
    found: Loaded | None = args._loaded
    return found


def _registries(args: argparse.Namespace) -> Registries:
    """The command's registry clients, one set per command, with syntra.yaml's
    registries (credentials, insecure) when there is one here."""
    if not hasattr(args, "_registries"):
        loaded = _loaded(args)
        args._registries = Registries(loaded.config.registries if loaded else None)
    found: Registries = args._registries
    return found


def _target(args: argparse.Namespace) -> toolkit.Target:
    return toolkit.resolve(_registries(args), args.ref, args.insecure)


def _print(args: argparse.Namespace, found: Any, text: Callable[[Any], str]) -> None:
    """`found` as JSON (exact: JSON escapes what needs it), else `text(found)` of a copy
    whose every string has its control characters escaped: what a registry, an archive
    or a layout says never reaches the terminal as an escape sequence or a line break."""
    print(json.dumps(found, indent=2) if args.json else text(_escaped(found)))


def _escaped(found: Any) -> Any:
    if isinstance(found, str):
        return one_line(found)
    if isinstance(found, dict):
        return {_escaped(key): _escaped(value) for key, value in found.items()}
    if isinstance(found, list | tuple):
        return [_escaped(item) for item in found]
    return found


def _inspect(args: argparse.Namespace) -> int:
    _print(args, toolkit.inspect(_target(args), args.platform), _inspected)
    return 0


def _inspected(found: dict[str, Any]) -> str:
    lines = [f"{found['reference']}  {found['mediaType']}"]
    for image in found.get("platforms", [found]):
        where = image.get("platform") or image.get("artifactType") or ""
        created = image.get("created") or ""
        lines.append(f"  {where:16} {image['digest']}  {image['size']} bytes  {created}")
        lines += [f"    {key}={value}" for key, value in sorted(image.get("labels", {}).items())]
    return "\n".join(lines)


def _digest(args: argparse.Namespace) -> int:
    target = _target(args)
    _print(args, {"reference": target.reference, "digest": target.digest}, lambda f: f["digest"])
    return 0


def _tags(args: argparse.Namespace) -> int:
    where, _ = _registries(args).for_ref(args.repository, args.insecure)
    found = sorted(where.registry.tags(where.path))
    _print(args, found, "\n".join)
    return 0


def _tree(args: argparse.Namespace) -> int:
    _print(args, toolkit.tree(_target(args)), _treed)
    return 0


def _treed(found: dict[str, Any]) -> str:
    lines = [str(found["reference"])]
    for node, indent in [(found, "  "), *((p, "    ") for p in found.get("platforms", []))]:
        if node is not found:
            lines.append(f"  {node['platform']} {node['digest']}")
        signatures = node["signatures"]["layers"]
        if signatures:
            lines.append(f"{indent}signatures ({node['signatures']['tag']}): {len(signatures)}")
        kinds = node["attestations"]["predicateTypes"]
        if kinds:
            lines.append(
                f"{indent}attestations ({node['attestations']['tag']}): {', '.join(kinds)}"
            )
        for referrer in node["referrers"]:
            kind = f"{referrer['artifactType']} {referrer['predicateType'] or ''}".strip()
            lines.append(f"{indent}referrer {referrer['digest']} {kind}")
    return "\n".join(lines)


def _copy(args: argparse.Namespace) -> int:
    from syntra.registry.transfer import CopyOptions, copy

    options = CopyOptions(args.referrers, args.all_tags, args.insecure, args.platform)
    content, written = copy(_registries(args), args.source, args.destination, options)
    found = {
        "digest": content.top,
        "destination": written,
        "manifests": len(content.documents),
        "blobs_sent": len(content.blobs),
        "tags": sorted(content.tags),
    }
    _print(args, found, lambda f: f"copied {f['digest']} to {f['destination']}")
    return 0


def _sbom(args: argparse.Namespace) -> int:
    from syntra.supply.verify import trust_of

    missing = "nothing to verify the SBOM's signature against: give --key PUB"
    trust = trust_of(_loaded(args), Path(args.key) if args.key else None, missing)
    target = _target(args)
    print(json.dumps(toolkit.sbom(target, trust, args.format, args.platform), indent=2))
    return 0


def _delete(args: argparse.Namespace) -> int:
    target = _target(args)
    _, version = _registries(args).for_ref(args.ref, args.insecure)  # tag or digest
    said = toolkit.delete(target, version, args.force)
    _print(args, {"deleted": args.ref, "said": said}, lambda f: f["said"])
    return 0


def _pull(args: argparse.Namespace) -> int:
    from syntra.supply.verify import trust_of

    loaded = _loaded(args)
    signing = loaded.config.supply_chain.signing.mode if loaded else "none"
    key = Path(args.key) if args.key else None
    trust = trust_of(loaded, key, "") if key or signing != "none" else None
    target = _target(args)
    request = toolkit.PullRequest(Path(args.dir) if args.dir else None, args.force, trust)
    web = args.web or target.manifest.json().get("artifactType") == WEB_BUNDLE
    pulled = (
        toolkit.pull_bundle(toolkit.web_bundle(target), request)
        if web
        else toolkit.pull(target, request)
    )
    if pulled.verified is None:
        print(
            f"WARNING: {target.reference}: nothing was verified (no --key, no "
            "supply_chain.signing in syntra.yaml): the files are written unchecked",
            file=sys.stderr,
        )
    found = {"folder": str(pulled.folder), "files": [str(f) for f in pulled.files],
             "verified": pulled.verified}  # fmt: skip
    found |= {"bundle": pulled.reference} if web else {"file": str(pulled.files[0])}
    _print(args, found, _pulled)
    return 0


def _pulled(found: dict[str, Any]) -> str:
    said = [f"verified: signed by {found['verified']}"] if found["verified"] else []
    return "\n".join([*said, *(f"wrote {path}" for path in found["files"])])


def _guest_names(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """`run` with `args.ref` read as `syntra run` reads it: a guest's name from
    syntra.yaml is its published reference (`names.named`)."""
    from syntra.cli.names import named

    def with_names(args: argparse.Namespace) -> int:
        args.ref, _ = named(_loaded(args), _registries(args), args.ref)
        return run(args)

    return with_names


BY_NAME = ("inspect", "digest", "tree", "sbom", "pull")
"""The commands whose `ref` may be a guest's name (not `delete`: a name is no tag)."""


def add(register: Callable[[str, Callable[[argparse.Namespace], int], str], Any]) -> None:
    """Register the registry commands with `register(name, run, help)`."""

    def command(name: str, run: Callable[[argparse.Namespace], int], text: str) -> Any:
        return register(name, _guest_names(run) if name in BY_NAME else run, text)

    def shared(cmd: argparse.ArgumentParser, json_output: bool = True) -> None:
        cmd.add_argument(
            "--insecure", action="store_true", help="plain HTTP to a registry syntra.yaml lacks"
        )
        if json_output:
            cmd.add_argument("--json", action="store_true", help="machine-readable output")

    inspect = command("inspect", _inspect, "an index or manifest: platforms, sizes, labels")
    inspect.add_argument("ref", help="a reference (tag or digest)")
    inspect.add_argument("--platform", help="only this platform (os/arch[/variant])")
    shared(inspect)
    digest = command("digest", _digest, "the digest a reference points at")
    digest.add_argument("ref")
    shared(digest)
    tags = command("tags", _tags, "the tags of a repository")
    tags.add_argument("repository", help="host/repository")
    shared(tags)
    tree = command("tree", _tree, "signatures, attestations and referrers of a reference")
    tree.add_argument("ref")
    shared(tree)
    sbom = command("sbom", _sbom, "the SBOM of an image or artifact, from a verified attestation")
    sbom.add_argument("ref")
    sbom.add_argument("--platform", help="the platform image of an index (os/arch[/variant])")
    sbom.add_argument("--format", choices=["spdx-json", "cyclonedx-json"], default="spdx-json")
    sbom.add_argument("--key", metavar="PUB", help="verify with this public key")
    shared(sbom, json_output=False)
    copy = command("copy", _copy, "copy an image or artifact, digests kept, between transports")
    copy.add_argument(
        "source", help="REF, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE"
    )
    copy.add_argument("destination", help="the same transports")
    copy.add_argument("--all-tags", action="store_true", help="every tag of the repository")
    copy.add_argument(
        "--platform", help="docker-archive: the platform to write (default: this host's)"
    )
    copy.add_argument(
        "--referrers", action="store_true", help="with signatures, attestations and referrers"
    )
    shared(copy)
    delete = command("delete", _delete, "delete a tag, or a manifest by digest")
    delete.add_argument("ref", help="host/repository:tag or host/repository@sha256:…")
    delete.add_argument("--force", action="store_true", help="delete a manifest still tagged")
    shared(delete)
    pull = command(
        "pull", _pull, "write a wasm artifact's module or component (or web bundle) to a folder"
    )
    pull.add_argument("ref")
    pull.add_argument("--web", action="store_true", help="the web bundle attached to the artifact")
    pull.add_argument(
        "dir", nargs="?", help="folder (default: a new one named after the artifact, here)"
    )
    pull.add_argument("--force", action="store_true", help="replace files already there")
    pull.add_argument("--key", metavar="PUB", help="verify the signature with this public key")
    shared(pull)
