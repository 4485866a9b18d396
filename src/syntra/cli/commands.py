"""The `syntra` command line. Each subcommand is a thin call into a stage module."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from syntra import config as config_stage
from syntra import progress, telemetry
from syntra.errors import EXIT_REFUSED, EXIT_TOOL, SyntraError, count, failure, one_line
from syntra.image.build import CHOICES
from syntra.invocation import invocation, started_as
from syntra.paths import CONFIG_FILE, DEFAULT_KEY, SNAPSHOT_ENV, report_page
from syntra.version import installed_version

if TYPE_CHECKING:
    from syntra.image.build import Backend
    from syntra.image.inputs import Job
    from syntra.pipeline.context import Context
    from syntra.plan import Plan

Command = Callable[[argparse.Namespace], int]


def _init(args: argparse.Namespace) -> int:
    from syntra.cli.init import first_lock, init

    root = args.file.parent
    for written in init(root):
        print(f"wrote {written}")
    print(first_lock(root))
    print(
        "next: `syntra validate` checks syntra.yaml; `syntra doctor` checks the tools its "
        "stages need; `syntra plan` shows what would be built; "
        "`doit` renders, builds and pushes (start a registry on 127.0.0.1:5000 first, "
        "or set SYNTRA_REGISTRY)"
    )
    return 0


def _schema(args: argparse.Namespace) -> int:
    from syntra.config.schema import json_schema, markdown_reference

    print(markdown_reference() if args.markdown else json.dumps(json_schema(), indent=2))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from syntra.plan import build_plan

    plan = build_plan(config_stage.load(args.file))
    _warn(plan)
    print(
        f"{args.file}: ok ({count(len(plan.images), 'image')}, "
        f"{count(len(plan.guests), 'wasm guest')}, {count(len(plan.matrix), 'platform build')})"
    )
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from syntra.pipeline import doctor

    findings = []
    for finding in doctor.examine(_context(args), registries=args.registries):
        findings.append(finding)
        if not args.json:
            print(finding.line(), flush=True)
    if args.json:
        print(json.dumps(doctor.to_json(findings), indent=2))
    return doctor.exit_code(findings)


def _plan(args: argparse.Namespace) -> int:
    ctx = _context(args)
    if args.changed or args.matrix:
        from syntra.ci import matrix

        found = matrix.to_json(ctx, changed=args.changed)
        print(json.dumps(found, indent=None if args.json else 2))
    elif args.json:
        print(json.dumps(ctx.plan.to_json(), indent=2))
    else:
        from syntra.cli.report import plan_text

        print(plan_text(ctx.plan))
    return 0


def _context(args: argparse.Namespace) -> Context:
    from syntra.pipeline.context import Context

    ctx = Context.load(args.file, getattr(args, "builder", None))
    _warn(ctx.plan)
    return ctx


def _warn(plan: Plan) -> None:
    """What resolving the plan skipped, one line each on stderr."""
    for line in plan.warnings:
        print(line, file=sys.stderr)


def _report(lines: Iterable[str]) -> int:
    for line in lines:
        print(line, flush=True)
    return 0


def _render(args: argparse.Namespace) -> int:
    from syntra import generated
    from syntra.image import render
    from syntra.pipeline import stages
    from syntra.up import compose

    ctx = _context(args)
    if args.check:
        diffs = render.drift(ctx.plan, ctx.root)
        diffs += generated.drift(compose.render(ctx.loaded, ctx.plan), compose.COMPOSE, ctx.root)
        if diffs:
            sys.stdout.write("".join(diffs))
            print(
                f"{len(diffs)} spec(s) differ from what {args.file} and its templates or "
                "Dockerfiles render; run `doit render`",
                file=sys.stderr,
            )
            return 1
        print("ContainerSpecs match syntra.yaml")
        return 0
    lines = [line for name in ctx.image_names() for line in stages.render(ctx, name)]
    lines += stages.prune(ctx)
    lines += stages.compose(ctx)
    return _report(lines or ["ContainerSpecs up to date"])


def _lock(args: argparse.Namespace) -> int:
    from syntra.image import locking

    ctx = _context(args)
    repo = locking.Repository(ctx.loaded, ctx.plan, ctx.registries)
    if args.check or args.offline:
        return _report(locking.check(repo, offline=args.offline))
    return _report(locking.lock(repo, args.update))


def _prepared(ctx: Context, image: str) -> tuple[Job, Backend]:
    """The image's job with its specs rendered, and the backend: --builder, then
    $SYNTRA_BUILDER, then syntra.yaml."""
    from syntra.pipeline import stages

    job = ctx.job(image)
    for _ in stages.render(ctx, job.image.name):
        pass
    backend, note = ctx.backend()
    if note:
        print(f"{job.image.name}: {note}")
    return job, backend


def _build(args: argparse.Namespace) -> int:
    from syntra.image import job as images
    from syntra.pipeline import stages

    ctx = _context(args)
    if args.output:
        if args.push_by_digest:
            raise SyntraError("--output writes locally: it does not go with --push-by-digest")
        job, backend = _prepared(ctx, args.image)
        platforms = [args.platform] if args.platform else job.image.platforms
        if args.output == "load" and not args.platform:
            from syntra.registry.transfer import host_platform

            platforms = [host_platform()]  # an image store holds this machine's platform only
        print(f"{job.image.name}: wrote {images.build_to(job, backend, platforms, args.output)}")
        return 0
    if args.push_by_digest != bool(args.platform):
        raise SyntraError("--push-by-digest and --platform go together: one platform, no tags")
    if not stages.publishes(ctx):  # as `SYNTRA_SNAPSHOT=1 doit`: built, tested, written
        if args.push_by_digest:
            raise SyntraError(f"{SNAPSHOT_ENV} is set: nothing is pushed, so no --push-by-digest")
        for _ in stages.render(ctx, ctx.check_image(args.image)):
            pass
        for line in stages.image(ctx, args.image):
            print(line)
        return 0
    job, backend = _prepared(ctx, args.image)
    if args.push_by_digest:
        path = images.push_by_digest(job, args.platform, backend)
        print(path.read_text(), end="")
        return 0
    print(images.publish_image(job, backend).model_dump_json(indent=2))
    return 0


def _test(args: argparse.Namespace) -> int:
    from syntra.image import job as images
    from syntra.image.inputs import Job

    job, backend = _prepared(_context(args), args.image)
    if args.without_secrets and job.image.secrets:
        # Pull requests get no secrets: the build runs without them (a RUN step that
        # mounts one finds nothing there).
        left_out = ", ".join(secret["id"] for secret in job.image.secrets)
        print(f"{job.image.name}: build secrets left out: {left_out}")
        job = Job(job.ctx, dataclasses.replace(job.image, secrets=[]))
    platforms = [args.platform] if args.platform else job.image.platforms
    _, results = images.build_and_test(job, backend, platforms)
    for result in results:
        print(f"{job.image.name} {result.platform}: {result.test}: passed")
    said = (
        f"{count(len(results), 'test')} passed" if job.image.tests else "built, no tests declared"
    )
    print(f"{job.image.name}: {said}; nothing pushed")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from syntra.pipeline import stages

    if bool(args.image) == args.all:
        raise SyntraError("give an image name or --all")
    ctx = _context(args)
    if args.image:
        return _merge_one(ctx, args.image)
    return _report(line for name in ctx.image_names() for line in stages.merge(ctx, name))


def _merge_one(ctx: Context, name: str) -> int:
    """The record on stdout, what was done on stderr; no digest file at all is a refusal
    (`--all` retags images unchanged since their last build)."""
    from syntra.image import job as images
    from syntra.paths import digest_dir
    from syntra.records import ImageRecord, digest_file, find_record

    job = ctx.job(name)
    if not any(digest_file(ctx.root, name, p).exists() for p in job.image.platforms):
        raise SyntraError(
            f"{name}: no digest files in {digest_dir(ctx.root, name).relative_to(ctx.root)}; "
            f"run `syntra build {name} --platform P --push-by-digest` first"
        )
    before = find_record(ctx.root, name)
    record = images.merge(job)
    print(record.model_dump_json(indent=2))
    unchanged = isinstance(before, ImageRecord) and before.digest == record.digest
    done = "index unchanged" if unchanged else "index pushed"
    print(f"{name}: {done}: {record.digest} -> {', '.join(record.refs)}", file=sys.stderr)
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from syntra.supply import keys

    signing = config_stage.load(args.file).config.supply_chain.signing
    key = Path(args.key or signing.key or DEFAULT_KEY)
    public = keys.generate(key, signing.passphrase_env)
    print(f"wrote {key} (encrypted with ${signing.passphrase_env}) and {public}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from syntra.cli.supply import run_verify

    if bool(args.ref) == args.all:
        raise SyntraError("give a reference or --all")
    key = Path(args.key) if args.key else None
    return run_verify(config_stage.load(args.file), args.ref, args.json, key, args.insecure)


def _run(args: argparse.Namespace) -> int:
    from syntra.cli.run import RunRequest, run
    from syntra.config.model import parse_size

    file = Path(args.file)
    loaded = config_stage.load(file) if file.exists() else None
    request = RunRequest(
        target=args.target,
        function=args.function,
        args=list(args.args),
        max_mem=parse_size(args.max_mem) if args.max_mem else None,
        max_ms=args.max_ms,
        fuel=args.fuel,
        runtime=args.runtime,
        key=Path(args.key) if args.key else None,
        insecure_skip_verify=args.insecure_skip_verify,
        insecure=args.insecure,
        as_json=args.json,
    )
    return run(loaded, request)


def _supply(args: argparse.Namespace) -> int:
    from syntra.pipeline import stages

    ctx = _context(args)
    return _report(line for o in ctx.plan.outputs() for line in stages.supply(ctx, o.name))


def _promote(args: argparse.Namespace) -> int:
    from syntra.release.promote import promote

    ctx = _context(args)
    return _report(promote(ctx.loaded, ctx.registries, ctx.plan, args.source, args.to))


def _ci(args: argparse.Namespace) -> int:
    from syntra.ci import workflows as ci
    from syntra.pipeline import stages

    ctx = _context(args)
    if args.check:
        diffs = ci.drift(ci.render(ctx.loaded, ctx.plan), ctx.root)
        sys.stdout.write("".join(diffs))
        if diffs:
            print(
                f"{len(diffs)} workflow(s) differ from {args.file}; run `doit ci`", file=sys.stderr
            )
        return 1 if diffs else 0
    return _report(stages.workflows(ctx))


def _release(args: argparse.Namespace) -> int:
    from syntra.pipeline import stages

    ctx = dataclasses.replace(_context(args), dry_run=args.dry_run)
    return _report(stages.release(ctx))


def _report_page(args: argparse.Namespace) -> int:
    from syntra.pipeline.buildreport import write_report

    ctx = _context(args)
    target = args.output or report_page(ctx.root)
    reported = write_report(ctx.plan, ctx.root, target)
    print(f"wrote {target}")
    if reported is not None and reported.result == "failure":
        print(f"the reported run failed: {reported.command}", file=sys.stderr)
        return EXIT_REFUSED  # the page is there; the run it shows did not succeed
    return 0


def _up(args: argparse.Namespace) -> int:
    from syntra.up import stack

    return _report(stack.up(_context(args), list(args.services)))


def _down(args: argparse.Namespace) -> int:
    from syntra.up import stack

    return _report(stack.down(_context(args), volumes=args.volumes))


def _logs(args: argparse.Namespace) -> int:
    from syntra.up import stack

    return _report(stack.logs(_context(args), args.service))


def _import(args: argparse.Namespace) -> int:
    from syntra.image import rootfs

    settings = rootfs.ImageConfig(
        entrypoint=rootfs.words(args.entrypoint) if args.entrypoint is not None else None,
        cmd=rootfs.words(args.cmd) if args.cmd is not None else None,
        env=args.env,
        expose=args.expose,
        workdir=args.workdir,
        user=args.user,
        stop_signal=args.stop_signal,
    )
    program = args.engine or rootfs.engine_program()
    pinned = rootfs.import_rootfs(args.tarball, args.name, settings, program)
    print(f"imported {args.tarball} into {program} as {args.name} ({pinned})")
    return 0


def _positive(text: str) -> int:
    """A whole number of at least 1 (argparse says so in one line otherwise)."""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of at least 1")
    return number


class _GroupedHelp(argparse.HelpFormatter):
    """`syntra --help` lists the pipeline commands, then the registry commands under
    their own heading."""

    def _format_action(self, action: argparse.Action) -> str:
        if not isinstance(action, argparse._SubParsersAction):
            return super()._format_action(action)
        from syntra.cli.registry import NAMES

        parts = []
        choices = list(action._get_subactions())
        for title, chosen in (
            ("pipeline commands:", [c for c in choices if c.dest not in NAMES]),
            ("registry commands:", [c for c in choices if c.dest in NAMES]),
        ):
            parts.append(self._indent_text(title))
            self._indent()
            parts += [super(_GroupedHelp, self)._format_action(c) for c in chosen]
            self._dedent()
        return "".join(parts)

    def _indent_text(self, title: str) -> str:
        return " " * self._current_indent + title + "\n"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="syntra",
        description="Declarative builds of container images and WebAssembly plugins.",
        formatter_class=_GroupedHelp,
    )
    top.add_argument(
        "-f", "--file", type=Path, default=Path(CONFIG_FILE), help="config file (syntra.yaml)"
    )
    top.add_argument("--version", action="version", version=f"syntra {installed_version()}")
    top.add_argument(
        "--trace",
        type=Path,
        metavar="FILE",
        help="write the run's spans to FILE as Chrome/Perfetto trace-event JSON",
    )
    top.add_argument(
        "-q", "--quiet", action="store_true", help="no live progress, only the plain lines"
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Command, help: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help, description=help)
        cmd.set_defaults(run=run)
        return cmd

    command("init", _init, "write a first syntra.yaml, dodo.py and .gitignore entries")
    command("schema", _schema, "print the JSON Schema of syntra.yaml").add_argument(
        "--markdown", action="store_true", help="print the reference as Markdown instead"
    )
    command("validate", _validate, "check syntra.yaml")
    doctor = command(
        "doctor", _doctor, "check that the tools syntra.yaml's stages need are here and work"
    )
    doctor.add_argument(
        "--registries",
        action="store_true",
        help="also check that each destination registry answers and takes a push (network)",
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    plan = command("plan", _plan, "print the resolved plan")
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    plan.add_argument(
        "--matrix", action="store_true", help="the CI build matrix, in chunks of at most 256"
    )
    plan.add_argument(
        "--changed",
        action="store_true",
        help="only the images x platforms not built yet from their inputs, as CI matrix chunks",
    )
    command("render", _render, "render ContainerSpecs/ from templates").add_argument(
        "--check", action="store_true", help="exit 1 and show a diff when specs drifted"
    )
    lock = command("lock", _lock, "pin every base, FROM and service image by digest in syntra.lock")
    lock.add_argument(
        "--update",
        nargs="*",
        metavar="NAME",
        help="resolve these references (or the images and services that use them) again; "
        "none named: all",
    )
    lock.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the lock is stale or a locked digest is gone; write nothing",
    )
    lock.add_argument(
        "--offline",
        action="store_true",
        help="with --check: only whether the lock matches syntra.yaml, asking no registry",
    )
    build = command("build", _build, "build an image and push it")
    build.add_argument("image", help="image name in syntra.yaml")
    build.add_argument("--platform", help="build only this platform (os/arch[/variant])")
    build.add_argument(
        "--push-by-digest",
        action="store_true",
        help="push without tags and write a digest file for `syntra merge` (CI fan-out)",
    )
    build.add_argument("--builder", choices=CHOICES)
    build.add_argument(
        "--output",
        metavar="DEST",
        help="write instead of pushing: oci:DIR[:TAG], oci-archive:FILE[:TAG], "
        "docker-archive:FILE, or load (into podman's or docker's image store)",
    )
    merge = command("merge", _merge, "push the index of digests pushed by `build --push-by-digest`")
    merge.add_argument("image", nargs="?", help="image name in syntra.yaml")
    merge.add_argument("--all", action="store_true", help="every image (unchanged ones retagged)")
    test = command("test", _test, "build an image and run its tests; push nothing (pull requests)")
    test.add_argument("image", help="image name in syntra.yaml")
    test.add_argument("--platform", help="test only this platform (os/arch[/variant])")
    test.add_argument("--builder", choices=CHOICES)
    test.add_argument(
        "--without-secrets",
        action="store_true",
        help="build without the image's build secrets (pull requests get none)",
    )
    keygen = command("keygen", _keygen, "write an ECDSA P-256 signing key pair")
    keygen.add_argument("--key", help="private key path (default: supply_chain.signing.key)")
    verify = command("verify", _verify, "check signatures, SBOMs and provenance in the registry")
    verify.add_argument(
        "ref", nargs="?", help="an image or guest name from syntra.yaml, or a reference"
    )
    verify.add_argument(
        "--key", metavar="PUB", help="this public key (cosign's or ours), not the configured one"
    )
    verify.add_argument("--all", action="store_true", help="every artifact syntra.yaml pushes")
    verify.add_argument(
        "--insecure", action="store_true", help="plain HTTP to a registry syntra.yaml lacks"
    )
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    run = command(
        "run", _run, "pull a signed wasm artifact, verify it, and call a function under limits"
    )
    run.add_argument("target", metavar="REF|GUEST", help="a registry reference or a guest name")
    run.add_argument("function", help="the exported function to call")
    run.add_argument("args", nargs="*", help='arguments as JSON values (`5`, `"text"`, `[1,2]`)')
    run.add_argument("--max-mem", metavar="SIZE", help="linear memory cap, e.g. 64Mi")
    run.add_argument("--max-ms", type=_positive, metavar="MS", help="wall-clock cap per call")
    run.add_argument("--fuel", type=_positive, metavar="N", help="instruction fuel for the call")
    run.add_argument(
        "--runtime",
        choices=["wasmtime", "wasm3"],
        default="wasmtime",
        help="wasm3 runs core modules, without fuel",
    )
    run.add_argument("--key", metavar="PUB", help="verify with this public key")
    run.add_argument(
        "--insecure-skip-verify", action="store_true", help="run it without checking a signature"
    )
    run.add_argument(
        "--insecure", action="store_true", help="plain HTTP to a registry syntra.yaml does not list"
    )
    run.add_argument(
        "--json", action="store_true", help="the result with pull/verify/compile/call metrics"
    )
    command("supply", _supply, "sign and attest every pushed artifact (from its record)")
    command("ci", _ci, "render .github/workflows/ from syntra.yaml").add_argument(
        "--check", action="store_true", help="exit 1 and show a diff when workflows drifted"
    )
    promote = command(
        "promote", _promote, "copy a verified artifact to another registry, sign and verify it"
    )
    promote.add_argument("source", metavar="NAME|REF", help="an image or guest, or a reference")
    promote.add_argument(
        "--to", required=True, metavar="REGISTRY[/REPOSITORY]", help="a registry of syntra.yaml"
    )
    command("report", _report_page, "write an HTML page of the last run").add_argument(
        "--output", type=Path, metavar="FILE", help=f"where (default: {report_page(Path())})"
    )
    command("release", _release, "promote the verified digests of a vX.Y.Z commit").add_argument(
        "--dry-run", action="store_true", help="print what would be tagged, change nothing"
    )
    up = command(
        "up", _up, "build what changed for this host, start the services and wait until healthy"
    )
    up.add_argument("services", nargs="*", metavar="SERVICE", help="these and their dependencies")
    up.add_argument("--builder", choices=CHOICES)
    down = command("down", _down, "stop the services; remove their containers and network")
    down.add_argument(
        "--volumes", action="store_true", help="remove their named volumes (the data) too"
    )
    command("logs", _logs, "print the services' logs").add_argument(
        "service", nargs="?", help="only this service"
    )
    imports = command(
        "import", _import, "import a root filesystem tarball into the engine as an image"
    )
    imports.add_argument("tarball", type=Path, metavar="TARBALL", help="a tar of the root")
    imports.add_argument("name", metavar="NAME", help="the image's name:tag in the engine")
    imports.add_argument("--entrypoint", metavar="CMD", help='JSON array (["a", "b"]) or words')
    imports.add_argument("--cmd", metavar="CMD", help='JSON array (["a", "b"]) or words')
    imports.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="repeatable"
    )
    imports.add_argument("--expose", action="append", default=[], metavar="PORT")
    imports.add_argument("--workdir", metavar="DIR", help="an absolute path")
    imports.add_argument("--user", metavar="USER", help="user[:group] the image runs as")
    imports.add_argument("--stop-signal", metavar="SIGNAL", help="e.g. SIGINT")
    imports.add_argument(
        "--engine", choices=["podman", "docker"], help="default: podman if installed"
    )
    import syntra.cli.registry as registry_commands

    registry_commands.add(command)
    return top


EXIT_CLOSED_PIPE = 141
"""What a shell reports for a program stopped by SIGPIPE (`syntra plan --json | head`)."""
EXIT_TERMINATED = 143
"""What a shell reports for a program stopped by SIGTERM."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every `finally` runs: partial files are removed."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    started_as(["syntra", *(sys.argv[1:] if argv is None else argv)])
    args = parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
    try:
        return _main(args)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _main(args: argparse.Namespace) -> int:
    telemetry.configure(args.trace)
    if problem := telemetry.trace_problem():
        print(problem, file=sys.stderr)
        return EXIT_TOOL
    progress.enable(sys.stderr.isatty() and not args.quiet and not getattr(args, "json", False))
    try:
        with telemetry.pipeline(f"syntra {args.command}", invocation()) as finished:
            code = _dispatch(args)
            finished(code)
        return code
    finally:
        progress.enable(False)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        code: int = args.run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away: nothing more to say, and nothing to say it to. Point
        # stdout at /dev/null so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CLOSED_PIPE
    except (SyntraError, OSError) as exc:
        failed = failure(exc)
        # Control characters from outside stay inert; a refusal of several lines keeps them.
        print("\n".join(map(one_line, str(failed).split("\n"))), file=sys.stderr)
        return failed.exit_code
    except Terminated:
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
