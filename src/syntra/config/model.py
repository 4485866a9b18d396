"""The syntra.yaml schema as pydantic models.

Every model forbids unknown keys. Values that need the repository root (paths)
read it from the validation context, so the same model serves `syntra schema`.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from syntra import refs
from syntra.errors import SyntraError, did_you_mean
from syntra.fsutil import confined

BUILDERS = ("auto", "buildx", "podman", "container")
"""Image builders syntra.yaml may name (`syntra.image.build` holds their backends)."""


def _reason(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Turn a ValueError from `check` into a pydantic error whose message is exactly its text."""

    def validate(value: Any) -> Any:
        try:
            return check(value)
        except ValueError as exc:
            raise PydanticCustomError("syntra", "{reason}", {"reason": str(exc)}) from None

    return validate


_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}\Z")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_SIZE_RE = re.compile(r"^(\d+)\s*([KMGT]?)(i?)B?\Z", re.IGNORECASE)
_TEMPLATE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*\Z")
_ACTION_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\Z")
_PIN_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\Z")
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(
            f"'{value}' is not a valid name: lowercase letters, digits, '.', '_', '-', "
            "starting with a letter or digit"
        )
    return value


def _env_name(value: str) -> str:
    if not _ENV_RE.match(value):
        raise ValueError(f"'{value}' is not an environment variable name")
    return value


def parse_size(value: Any) -> int:
    """`64Mi`, `2G` or a number of bytes; SyntraError for anything else."""
    try:
        return _size(value)
    except ValueError as exc:
        raise SyntraError(str(exc)) from None


def _size(value: Any) -> int:
    match = None if isinstance(value, bool) else _SIZE_RE.match(str(value).strip())
    size = int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()] if match else 0
    if size <= 0:
        raise ValueError(f"'{value}' is not a size; write e.g. 512Mi or 2G")
    return size


def _scalar_text(value: Any) -> Any:
    """Build args and labels accept YAML scalars and pass them on as text.

    Not floats: YAML reads `1.20` as 1.2, and the text the user wrote is lost.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        raise ValueError(f"YAML reads this as the number {value}; write it in quotes")
    if isinstance(value, int):
        return str(value)
    return value


def _registry_url(value: str) -> str:
    if "://" in value:
        raise ValueError(
            f"'{value}' has a scheme; write host[:port][/namespace] "
            "and set insecure: true for plain HTTP"
        )
    host, slash, namespace = value.partition("/")
    if slash and not namespace:
        raise ValueError(f"'{value}' ends with '/'; write host[:port][/namespace]")
    if not refs.DOMAIN_RE.match(host):
        raise ValueError(f"'{value}' is not a registry: expected host[:port][/namespace]")
    if namespace:
        refs.check_repository(namespace)
    return value


def _schema_version(value: Any) -> int:
    if value == 1 and type(value) is int:
        return 1
    shown = f"'{value}'" if isinstance(value, str) else str(value).lower()
    raise ValueError(f"{shown} is not a schema version; write version: 1")


def _builder(value: str) -> str:
    if value not in BUILDERS:
        listed = ", ".join(BUILDERS)
        raise ValueError(f"'{value}' is not one of {listed}{did_you_mean(value, BUILDERS)}")
    return value


def _template_name(value: str) -> str:
    if not _TEMPLATE_NAME_RE.match(value) or ".." in value.split("/"):
        raise ValueError(f"'{value}' is not a template name: a file name under templates/")
    return value


def _version(value: str) -> str:
    if value != "git" and not refs.TAG_RE.match(value):
        raise ValueError(f"'{value}' cannot be part of a tag: {refs.TAG_RULE}")
    return value


def _template_text(value: str) -> str:
    if "{{" in value or "{%" in value:
        from syntra.templating import check_syntax

        check_syntax(value)
    return value


def _pattern(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"'{value}' is not a regular expression: {exc}") from None
    return value


_PATH_CHARACTERS = frozenset("._-+@=,/ ")
"""Besides letters and digits: what a path in syntra.yaml may hold. Anything else ($,
quotes, backticks, control characters) would mean something to a shell or a workflow
that meets the path, and no real path needs it."""
_SHELL_CHARACTERS = frozenset("$`'\"\\;&|")


def _shown(value: str) -> str:
    """`value` on one line (control characters escaped), for a message."""
    return value if value.isprintable() else value.encode("unicode_escape").decode()


def _workflow_text(value: str) -> str:
    """A value the generated workflows carry (a runner, a version, a pin)."""
    if "${{" in value:
        raise ValueError(
            f"'{_shown(value)}' holds '${{{{', which GitHub Actions would evaluate; "
            "write the value itself"
        )
    if not value.isprintable():
        raise ValueError(f"'{_shown(value)}' holds a control character: write it on one line")
    return value


def _command(value: str) -> str:
    """A command and its arguments, split at spaces, run without a shell."""
    _workflow_text(value)
    unsafe = next((c for c in value if c in _SHELL_CHARACTERS), None)
    if unsafe is not None or not value.split():
        said = f"'{unsafe}' has no meaning there" if unsafe else "it is empty"
        raise ValueError(
            f"'{value}' is run as a command and its arguments, without a shell: {said}"
        )
    return value


_DEBIAN_PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+\Z")
_SYMBOL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PROGRAM_RE = re.compile(r"[A-Za-z0-9._+-]+\Z")
_ALLOWED_FLAGS = re.compile(
    r"-O[0-3sz]?|-Og"  # optimisation
    r"|-[DU][A-Za-z_][A-Za-z0-9_]*(=[A-Za-z0-9_.,+-]*)?"  # defines
    r"|-I(?P<include>[A-Za-z0-9_.+@,/-]+)"  # includes: relative paths inside the folder
    r"|-W(no-)?(error=)?[a-z][a-z0-9+=-]*|-w|-pedantic(-errors)?"  # warnings
    r"|-std=(c|gnu)(89|90|99|11|17|18|2x|23)"
    r"|-g[0-3]?"
    r"|-f(no-)?(?P<feature>[a-z][a-z0-9-]*)(=(hidden|default|protected|on|off|fast))?"
    r"|-m(no-)?(?P<machine>[a-z][a-z0-9-]*)(=(reactor|command|generic|mvp|bleeding-edge))?"
)
"""The compiler flags a guest may give: optimisation, defines, includes inside its
folder, warnings, the C standard, debug info and -f/-m features (an allow-list: anything
else, such as `-fuse-ld=`, `-fpass-plugin=`, `-B`, `-Xclang` or `-o`, is refused)."""
_REFUSED_FEATURES = ("plugin", "pass-plugin", "use-ld", "profile", "save-", "crash-",
                     "coverage", "instrument", "modules-cache", "llvm")  # fmt: skip
"""-f/-m names that load code, run programs or write files elsewhere."""


def _debian_package(value: str) -> str:
    if not _DEBIAN_PACKAGE_RE.match(value):
        raise ValueError(f"'{_shown(value)}' is not a Debian package name")
    return value


def _symbol(value: str) -> str:
    if not _SYMBOL_RE.match(value):
        raise ValueError(f"'{_shown(value)}' is not a function name (letters, digits, _)")
    return value


def _program(value: str) -> str:
    """A program or a folder of programs: an absolute path, or a name found on PATH."""
    plain = all(c.isalnum() or c in _PATH_CHARACTERS - {" "} for c in value)
    if not (plain and (value.startswith("/") or _PROGRAM_RE.match(value))):
        raise ValueError(
            f"'{_shown(value)}' is not a program: an absolute path or a name on PATH "
            "(letters, digits and ._-+@=,/)"
        )
    return value


def _compiler_flag(value: str) -> str:
    plain = all(c.isalnum() or c in _PATH_CHARACTERS - {" "} for c in value)
    if not (value.startswith("-") and plain):
        raise ValueError(
            f"'{_shown(value)}' is not a compiler flag: it starts with '-' and holds "
            "letters, digits and ._-+@=,/"
        )
    allowed = _ALLOWED_FLAGS.fullmatch(value)
    include = allowed.group("include") if allowed else None
    feature = (allowed.group("feature") or allowed.group("machine") or "") if allowed else ""
    if (
        not allowed
        or (include is not None and confined(include) is None)
        or feature.startswith(_REFUSED_FEATURES)
    ):
        raise ValueError(
            f"'{value}' is not a flag a guest may give (optimisation, -D/-U, -I inside its "
            "folder, warnings, -std=, -g, -f/-m features); Syntra sets the target, the "
            "output, the linker and the sysroot"
        )
    return value


def _action(value: str) -> str:
    if not _ACTION_RE.match(value):
        raise ValueError(f"'{_shown(value)}' is not an action: write owner/repository[/path]")
    return value


def _pin(value: str) -> str:
    if not _PIN_RE.match(value):
        raise ValueError(f"'{_shown(value)}' is not a ref or commit SHA")
    return value


def _repo_path(value: str, info: ValidationInfo) -> str:
    """A path inside the repository, normalised to POSIX form relative to its root."""
    if not value:
        raise PydanticCustomError("syntra", "{reason}", {"reason": "a path cannot be empty"})
    if os.path.isabs(value) or value.startswith("~"):
        raise PydanticCustomError(
            "syntra", "{reason}", {"reason": f"'{value}' must be relative to the repository root"}
        )
    unsafe = next((c for c in value if not (c.isalnum() or c in _PATH_CHARACTERS)), None)
    if unsafe is not None:
        reason = (
            f"'{_shown(value)}' cannot be a path: {unsafe!r} is not allowed "
            f"(letters, digits, space and {' '.join(sorted(_PATH_CHARACTERS - {' '}))} are)"
        )
        raise PydanticCustomError("syntra", "{reason}", {"reason": reason})
    normal = posixpath.normpath(value.replace("\\", "/"))
    root = (info.context or {}).get("root")
    escapes = normal == ".." or normal.startswith("../")
    if not escapes and isinstance(root, Path):
        try:
            resolved = (root / normal).resolve()
        except (OSError, RuntimeError) as exc:  # symlink loops, over-long names
            reason = f"'{value}' cannot be resolved: {getattr(exc, 'strerror', None) or exc}"
            raise PydanticCustomError("syntra", "{reason}", {"reason": reason}) from None
        escapes = not resolved.is_relative_to(root.resolve())
    if escapes:
        raise PydanticCustomError(
            "syntra", "{reason}", {"reason": f"'{value}' escapes the repository root"}
        )
    return normal


Name = Annotated[str, AfterValidator(_reason(_name))]
EnvName = Annotated[str, AfterValidator(_reason(_env_name))]
Platform = Annotated[
    str,
    AfterValidator(_reason(lambda v: str(refs.parse_platform(v)))),
    Field(examples=["linux/amd64"]),
]
ImageReference = Annotated[str, AfterValidator(_reason(lambda v: str(refs.parse_image_ref(v))))]
Repository = Annotated[str, AfterValidator(_reason(refs.check_repository))]
PlatformOrAll = Annotated[
    str,
    AfterValidator(_reason(lambda v: v if v == "all" else str(refs.parse_platform(v)))),
    Field(examples=["all", "linux/arm64"]),
]
RepoPath = Annotated[str, AfterValidator(_repo_path)]
WorkflowText = Annotated[str, AfterValidator(_reason(_workflow_text))]
Command = Annotated[str, AfterValidator(_reason(_command))]
ActionName = Annotated[str, AfterValidator(_reason(_action))]
DebianPackage = Annotated[str, AfterValidator(_reason(_debian_package))]
Symbol = Annotated[str, AfterValidator(_reason(_symbol))]
Program = Annotated[str, AfterValidator(_reason(_program))]
CompilerFlag = Annotated[str, AfterValidator(_reason(_compiler_flag))]
Pin = Annotated[str, AfterValidator(_reason(_pin))]
RegistryUrl = Annotated[str, AfterValidator(_reason(_registry_url))]
Size = Annotated[int, BeforeValidator(_reason(_size), json_schema_input_type=str | int)]
ScalarText = Annotated[
    str, BeforeValidator(_reason(_scalar_text), json_schema_input_type=str | int | bool)
]
Template = Annotated[str, AfterValidator(_reason(_template_text))]
Builder = Annotated[
    str,
    AfterValidator(_reason(_builder)),
    WithJsonSchema({"type": "string", "enum": list(BUILDERS)}),
]
"""A backend of `syntra.image.build.BACKENDS`, or `auto`."""
TemplatedText = Annotated[ScalarText, AfterValidator(_reason(_template_text))]
Pattern = Annotated[str, AfterValidator(_reason(_pattern))]
TemplateName = Annotated[str, AfterValidator(_reason(_template_name))]
Version = Annotated[str, AfterValidator(_reason(_version))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Project(Strict):
    name: Name = Field(description="Project name; the default repository prefix of every artifact.")
    version: Version = Field(
        "git",
        description="`git` derives the version from `vX.Y.Z` tags; anything else is used as is.",
    )
    source: str | None = Field(
        None, description="Source URL for `org.opencontainers.image.source`; default: git remote."
    )


class Credentials(Strict):
    username_env: EnvName = Field(description="Environment variable holding the user name.")
    password_env: EnvName = Field(description="Environment variable holding the password/token.")


class Registry(Strict):
    url: RegistryUrl = Field(description="`host[:port][/namespace]`, no scheme.")
    insecure: bool = Field(False, description="Plain HTTP (and no TLS verification).")
    credentials: Credentials | None = Field(
        None, description="Where the login comes from; default: the docker/podman auth config."
    )


class Defaults(Strict):
    registry: Name | Annotated[list[Name], Field(min_length=1)] | None = Field(
        None,
        description="Registry used when an artifact names none; a list pushes to each, "
        "the same digests everywhere.",
    )
    platforms: list[Platform] = Field(
        ["linux/amd64", "linux/arm64"], min_length=1, description="Platforms of every image."
    )
    tags: list[Template] = Field(
        ["{{ version }}", "sha-{{ git.short_sha }}"],
        min_length=1,
        description="Tag templates of every image and guest (Jinja2: version, git.*, name).",
    )
    cache: Cache | None = Field(
        None, description="Registry layer cache of every image; default: none."
    )


class Secret(Strict):
    id: Name = Field(description="Secret id as the Dockerfile mounts it (`--mount=type=secret`).")
    env: EnvName | None = Field(None, description="Take the secret from this variable.")
    src: RepoPath | None = Field(None, description="...or from this file.")


class Resources(Strict):
    cpus: int = Field(4, gt=0, description="CPUs of Apple's builder VM.")
    memory: Size = Field(8 << 30, description="Memory of Apple's builder VM, e.g. `8G`.")


class TestExpect(Strict):
    exit: int | None = Field(None, description="Command: expected exit code (default 0).")
    stdout: Pattern | None = Field(
        None, description="Command: a regular expression stdout must match."
    )
    stderr: Pattern | None = Field(
        None, description="Command: a regular expression stderr must match."
    )
    status: int | None = Field(None, description="HTTP: expected status (default 200).")
    body: Pattern | None = Field(
        None, description="HTTP: a regular expression the body must match."
    )


class Metadata(Strict):
    entrypoint: list[str] | None = Field(None, description="Expected entrypoint, exactly.")
    cmd: list[str] | None = Field(None, description="Expected command, exactly.")
    env: dict[str, str] = Field({}, description="Environment variables the image must set.")
    labels: dict[str, Template] = Field(
        {}, description="Labels the image must carry (values may use template variables)."
    )
    user: str | None = Field(None, description="Expected user.")
    workdir: str | None = Field(None, description="Expected working directory.")
    exposed_ports: list[str] | None = Field(
        None, description="Ports the image must expose, e.g. `8080/tcp`."
    )


class Http(Strict):
    port: int = Field(gt=0, lt=65536, description="Port the entrypoint listens on.")
    path: str = Field("/", description="Path to request.")


class ImageTest(Strict):
    """One test of `command`, `file`, `metadata` or `http` (container-structure-test's
    command, file existence/content and metadata tests, plus HTTP)."""

    name: str | None = Field(None, description="Name shown in results; default: derived.")
    command: list[str] | None = Field(
        None, min_length=1, description="Command test: argv run in the image."
    )
    env: dict[str, str] = Field({}, description="Command test: extra environment.")
    timeout: int = Field(30, gt=0, description="Command and HTTP tests: seconds allowed.")
    file: str | None = Field(None, description="File test: absolute path in the image.")
    exists: bool = Field(True, description="File test: whether it must exist.")
    mode: str | None = Field(
        None, description="File test: permissions, octal (`0644`) or as `ls -l` shows them."
    )
    owner: str | None = Field(None, description="File test: `uid` or `uid:gid`.")
    contains: Pattern | None = Field(
        None, description="File test: a regular expression the content must match."
    )
    sha256: Template | None = Field(
        None, description="File test: the content's SHA-256 (hex; may use template variables)."
    )
    metadata: Metadata | None = Field(None, description="Metadata test: the image config.")
    http: Http | None = Field(None, description="HTTP test: start the entrypoint, request.")
    expect: TestExpect = Field(TestExpect(), description="Command and HTTP expectations.")


class Image(Strict):
    template: TemplateName | None = Field(
        None,
        description="Template in `templates/` (or built in) that renders the Dockerfile; "
        "default `default.j2`.",
    )
    dockerfile: RepoPath | None = Field(
        None, description="A hand-written Dockerfile to use instead of a template."
    )
    context: RepoPath = Field(".", description="Build context directory.")
    base: ImageReference | None = Field(None, description="Base image, passed as `BASE_IMAGE`.")
    platforms: list[Platform] | None = Field(None, min_length=1, description="Default: defaults.")
    args: dict[str, TemplatedText] = Field(
        {}, description="Build args (never secrets); values may use the tag template variables."
    )
    secrets: list[Secret] = Field([], description="Build secrets, mounted, never build args.")
    labels: dict[str, TemplatedText] = Field(
        {}, description="Extra image labels; values may use the tag template variables."
    )
    tags: list[Template] | None = Field(None, min_length=1, description="Default: defaults.")
    target: str | None = Field(None, description="Dockerfile stage to build.")
    plugins: list[Name] = Field([], description="Wasm guests copied to /opt/plugins/.")
    resources: Resources = Field(Resources(), description="Apple builder VM size.")
    registry: Name | Annotated[list[Name], Field(min_length=1)] | None = Field(
        None,
        description="Registry name, or a list (each gets the same digests); default: defaults.",
    )
    repository: Repository | None = Field(None, description="Default: `<project>/<image>`.")
    vars: dict[str, Any] = Field({}, description="Free variables for the template.")
    tests: list[ImageTest] = Field(
        [], description="Tests run on every platform after the build, before any push."
    )
    cache: Cache | Literal[False] | None = Field(
        None, description="Registry layer cache; default: defaults.cache; `false`: none."
    )


class WasmTest(Strict):
    call: str = Field(description="Exported function to call.")
    args: list[JsonValue] = Field(
        [], description="Arguments as JSON values, converted by the function's parameter types."
    )
    expect: JsonValue = Field(
        None, description="Expected result as a JSON value; leave out to only call."
    )
    approx: float | None = Field(
        None, gt=0, description="Floats match within this tolerance, e.g. `1e-9`."
    )


class Limits(Strict):
    max_mem: Size = Field(64 << 20, description="Linear memory cap, e.g. `64Mi`.")
    max_ms: int = Field(1000, gt=0, description="Wall-clock cap per call in milliseconds.")
    fuel: int | None = Field(None, gt=0, description="Instruction fuel per call.")


class Web(Strict):
    """A browser bundle of the guest: dist/web/<guest>/."""

    title: str | None = Field(None, max_length=200, description="Page title; default: the name.")
    publish: bool = Field(
        True, description="Attach the bundle to the guest's artifact as a signed OCI referrer."
    )


class GuestBase(Strict):
    """What every guest has, whatever its language."""

    language: str = Field(description="Guest language: the keys below it depend on it.")
    source: RepoPath = Field(description="Source directory.")
    optimize: Literal["O0", "O1", "O2", "O3", "O4", "Os", "Oz"] = Field(
        "Os", description="wasm-opt level."
    )
    limits: Limits = Field(Limits(), description="Sandbox limits for the test calls.")
    tests: list[WasmTest] = Field([], description="Calls run in the sandbox.")
    runtimes: Annotated[list[Literal["wasmtime", "wasm3"]], Field(min_length=1)] = Field(
        ["wasmtime"],
        description="Runtimes the tests run under; the first is the reference, any other "
        "must return the same values (wasm3: core modules, no fuel).",
    )
    registry: Name | Annotated[list[Name], Field(min_length=1)] | None = Field(
        None,
        description="Registry name, or a list (each gets the same digests); default: defaults.",
    )
    repository: Repository | None = Field(None, description="Default: `<project>/<guest>`.")
    tags: list[Template] | None = Field(None, min_length=1, description="Default: defaults.")
    web: bool | Web = Field(
        False, description="Also write a browser bundle (`true`, or a block with options)."
    )


class SwiftGuest(GuestBase):
    language: Literal["swift"] = Field(description="Guest language.")
    mode: Literal["auto", "embedded", "wasi"] = Field(
        "auto", description="Embedded Swift (stock toolchain) or a WASI Swift SDK."
    )
    product: str | None = Field(None, description="Swift product / output name.")


class PythonGuest(GuestBase):
    language: Literal["python"] = Field(description="Guest language.")
    world: str = Field(description="The WIT world to componentize.")
    wit: RepoPath | None = Field(None, description="WIT directory; default `<source>/wit`.")
    app: str = Field("app", description="The module implementing the world.")


class RustGuest(GuestBase):
    language: Literal["rust"] = Field(description="Guest language.")
    toolchain: Program = Field(
        "/usr/bin",
        description="Folder holding cargo and rustc with the wasm32-wasi standard library "
        "(Debian's `libstd-rust-dev-wasm32`).",
    )
    packages: list[DebianPackage] = Field(
        [],
        description="Debian packages of the crates it uses, for the generated CI, "
        "e.g. `[librust-itoa-dev]`.",
    )


class CGuest(GuestBase):
    language: Literal["c"] = Field(description="Guest language.")
    compiler: Program = Field(
        "/usr/bin/clang", description="clang with Debian's wasi-libc (`--sysroot=/usr`)."
    )
    cflags: list[CompilerFlag] = Field(
        ["-O2"], description="Compiler flags, e.g. `[-O2, -Iinclude]`."
    )
    exports: list[Symbol] = Field(
        [], description="Functions to export, besides those marked `export_name`."
    )


Guest = Annotated[SwiftGuest | PythonGuest | RustGuest | CGuest, Field(discriminator="language")]
"""One model per language (wasm/languages/ holds what each does), told apart by `language`."""


class Signing(Strict):
    mode: Literal["none", "key", "keyless"] = Field("none", description="How to sign.")
    key: RepoPath | None = Field(None, description="Key mode: the private key (cosign format).")
    passphrase_env: EnvName = Field(
        "SYNTRA_KEY_PASSPHRASE", description="Key mode: variable holding the key's passphrase."
    )
    identity: Pattern | None = Field(
        None,
        description="Keyless mode: regular expression the signing certificate's identity "
        "must match in full, e.g. `https://github.com/OWNER/REPO/.github/workflows/.*`.",
    )
    issuer: str = Field(
        "https://token.actions.githubusercontent.com",
        description="Keyless mode: the OIDC issuer the certificate must name.",
    )
    trust_config: RepoPath | None = Field(
        None,
        description="Keyless mode: a Sigstore ClientTrustConfig JSON for a private Sigstore "
        "deployment; default: the public-good instance.",
    )


class SupplyChain(Strict):
    sbom: list[Literal["spdx-json", "cyclonedx-json"]] = Field(
        ["spdx-json"], description="SBOM formats attached to every artifact."
    )
    signing: Signing = Field(Signing(), description="Signatures.")
    provenance: bool = Field(True, description="Attach SLSA provenance.")
    base_key: RepoPath | None = Field(
        None,
        description="Public key (cosign's or Syntra's) the base images must be signed with: "
        "`syntra lock` then records only digests whose signatures verify against it.",
    )


class CI(Strict):
    runners: dict[Platform, WorkflowText] = Field(
        {"linux/amd64": "ubuntu-24.04", "linux/arm64": "ubuntu-24.04-arm"},
        description="Native runner per platform.",
    )
    macos_runner: WorkflowText = Field(
        "macos-26", description="Runner of the Apple `container` job."
    )
    actions: dict[ActionName, Pin] = Field(
        {}, description="Pins: action name → ref or full commit SHA."
    )
    install: Command | None = Field(
        None,
        description="How CI jobs install Syntra: a command and its arguments (no shell). "
        "Unset: `pip install syntra-build==` the version that generated the workflows "
        "(a development build, which PyPI lacks, must set it).",
    )
    python: WorkflowText = Field("3.12", description="Python version of the CI jobs.")
    variables: list[EnvName] = Field(
        [], description="Repository variables passed to every job (e.g. SYNTRA_REGISTRY)."
    )


class Release(Strict):
    latest: bool = Field(True, description="Move `latest` to the highest released version.")
    short_tags: bool = Field(True, description="Also tag `X.Y` and `X`.")
    promote_to: list[Name] = Field(
        [],
        description="Registries each released artifact is promoted to (copied, signed, verified).",
    )


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_DURATION_RE = re.compile(rf"^(?:{_DURATION_PART.pattern})+\Z")
_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PORT_RE = re.compile(
    r"^(?:(?:\d{1,3}(?:\.\d{1,3}){3}):)?(?:(\d{1,5}):)?(\d{1,5})(?:/(?:tcp|udp))?\Z"
)
_VOLUME_RE = re.compile(r"^([^:]+):(/[^:]*)(?::(ro|rw))?\Z")


def duration_seconds(value: str) -> float:
    """The seconds of a compose-style duration (`5s`, `1m30s`, `500ms`): the one parser,
    for syntra.yaml's checks and for `syntra up`'s health-check budget."""
    if not _DURATION_RE.match(value):
        raise ValueError(f"'{value}' is not a duration; write e.g. 5s, 1m30s or 500ms")
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(value))


def _duration(value: str) -> str:
    duration_seconds(value)
    return value


def _port(value: Any) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    match = _PORT_RE.match(text) if isinstance(text, str) else None
    numbers = [int(n) for n in match.groups() if n] if match else []
    if not match or not all(0 < n < 65536 for n in numbers):
        raise ValueError(
            f"'{value}' is not a port mapping; write [IP:]HOST:CONTAINER[/tcp|udp], e.g. 8080:8080"
        )
    return str(text)


def _volume(value: str, info: ValidationInfo) -> str:
    """`NAME:/path`, or `./dir:/path` whose folder is checked as any repository path
    (`_repo_path`) and written normalised: `.//etc:/x` is the repository's etc/, never /etc."""
    match = _VOLUME_RE.match(value)
    source = match.group(1) if match else ""
    if not match or not (_NAME_RE.match(source) or source.startswith("./")):
        raise PydanticCustomError(
            "syntra",
            "{reason}",
            {
                "reason": f"'{value}' is not a volume; write NAME:/path or ./dir:/path (a folder "
                "of the repository), with :ro to mount it read-only"
            },
        )
    if _NAME_RE.match(source):
        return value
    folder = _repo_path(source, info)
    return f"./{'' if folder == '.' else folder}:{value[len(source) + 1 :]}"


def _dependencies(value: Any) -> Any:
    """The Compose short form, a list of names, is the long form with default conditions."""
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        return {name: {} for name in value}
    return value


def _check_form(value: list[str]) -> list[str]:
    if value[0] not in ("CMD", "CMD-SHELL"):
        raise ValueError(
            f"'{value[0]}' is not CMD or CMD-SHELL; write [CMD, program, args…] or "
            "[CMD-SHELL, 'a shell line']"
        )
    return value


Duration = Annotated[str, AfterValidator(_reason(_duration))]
Port = Annotated[str, BeforeValidator(_reason(_port), json_schema_input_type=str | int)]
Volume = Annotated[str, AfterValidator(_volume)]


class Cache(Strict):
    """A layer cache in a registry, shared by every runner and builder (docs/cache.md)."""

    registry: Name = Field(description="Registry (under registries) holding the cache.")
    repository: Repository | None = Field(
        None,
        description="Repository of the cache, apart from every image's; default: "
        "`<image repository>/cache`. Holds cache tags only, never a release tag.",
    )
    mode: Literal["min", "max"] = Field(
        "max",
        description="buildx: `max` caches every step's layers, `min` only the final "
        "image's. podman always caches every step.",
    )
    ttl: Duration | None = Field(
        None, description="podman: use cached layers younger than this (e.g. `168h`)."
    )
    write: bool = Field(True, description="Push new layers to the cache; `false` only reads it.")


class Healthcheck(Strict):
    """The Compose Specification's healthcheck."""

    test: Annotated[list[str], Field(min_length=2), AfterValidator(_reason(_check_form))] | str = (
        Field(description="`[CMD, prog, arg…]`, `[CMD-SHELL, 'shell line']`, or a shell line.")
    )
    interval: Duration = Field("5s", description="Time between checks.")
    timeout: Duration = Field("5s", description="Time one check may take.")
    retries: int = Field(5, gt=0, description="Failures in a row that make it unhealthy.")
    start_period: Duration = Field("0s", description="Failures during it do not count.")


class Dependency(Strict):
    condition: Literal["service_started", "service_healthy"] = Field(
        "service_started",
        description="Start after the service started, or after its health check passed.",
    )


class Service(Strict):
    """A container of `syntra up`: one of the file's images or a pinned external image.
    Keys follow the Compose Specification."""

    image: str = Field(
        description="An image of `images`, or an external reference pinned by tag or digest."
    )
    ports: list[Port] = Field([], description="`[IP:]HOST:CONTAINER`, published on the host.")
    environment: dict[EnvName, TemplatedText] = Field(
        {}, description="Environment; values may use the tag template variables."
    )
    depends_on: Annotated[
        dict[Name, Dependency],
        BeforeValidator(_dependencies, json_schema_input_type=list[str] | dict[str, Any]),
    ] = Field({}, description="Services started first: a list, or a mapping with conditions.")
    healthcheck: Healthcheck | None = Field(None, description="How `syntra up` knows it is up.")
    volumes: list[Volume] = Field(
        [], description="`NAME:/path` (a named volume) or `./dir:/path`, optionally `:ro`."
    )
    command: list[str] | None = Field(None, description="Arguments instead of the image's CMD.")

    def dependencies(self) -> dict[str, str]:
        """Each service this one waits for, and its condition."""
        return {name: dep.condition for name, dep in self.depends_on.items()}


class Config(Strict):
    """A Syntra project: images and wasm guests, and how they are built and shipped."""

    model_config = ConfigDict(
        title="syntra.yaml",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    version: Annotated[Literal[1], BeforeValidator(_reason(_schema_version))] = Field(
        description="Schema version; always 1."
    )
    project: Project = Field(description="Project identity and version source.")
    builder: Builder = Field("auto", description="Image builder; `auto` picks what is installed.")
    builders: dict[PlatformOrAll, Name] = Field(
        {},
        description="buildx builders (`docker buildx create --name`) by platform, or `all`; "
        "default: the current builder.",
    )
    registries: dict[Name, Registry] = Field({}, description="Registries by name.")
    defaults: Defaults = Field(Defaults(), description="Defaults for images and guests.")
    images: dict[Name, Image] = Field({}, description="Container images by name.")
    wasm: dict[Name, Guest] = Field({}, description="WebAssembly guests by name.")
    services: dict[Name, Service] = Field(
        {}, description="The local stack of `syntra up`: containers by name."
    )
    supply_chain: SupplyChain = Field(SupplyChain(), description="SBOMs, signatures, provenance.")
    ci: CI = Field(CI(), description="Generated GitHub Actions workflows.")
    release: Release = Field(Release(), description="Release tagging.")
