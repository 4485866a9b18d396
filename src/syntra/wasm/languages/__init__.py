"""Guest languages, in one registry (cibuildwheel's platform modules): how a guest is
compiled, which compilers it names, what its SBOM lists, what CI sets up for it.

A new language is its config model in `config/model.py` (a member of the `Guest`
union, told apart by `language:`), one module here exposing `LANGUAGE`, and its line
in LANGUAGES.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from syntra.plan import GuestPlan
    from syntra.supply.contents import Component

LANGUAGES = {
    "swift": "syntra.wasm.languages.swift",
    "python": "syntra.wasm.languages.python",
    "rust": "syntra.wasm.languages.rust",
    "c": "syntra.wasm.languages.c",
}
"""`language:` value → the module holding its `LANGUAGE`."""


class Language(Protocol):
    def compile(
        self, guest: GuestPlan, root: Path, output: Path, epoch: int, cache: Path
    ) -> str | None:
        """Build `guest` into `output`; a caveat (why the bytes may not reproduce), if any."""
        ...

    def toolchain(self, guest: GuestPlan) -> dict[str, str]:
        """The compilers that build `guest`, by name, with their versions."""
        ...

    def components(self, wasm: bytes, source: Path, built_with: dict[str, str]) -> list[Component]:
        """What the built guest is made of, for its SBOM (syft cannot see inside wasm)."""
        ...

    def describe(self, guest: GuestPlan) -> str:
        """The language as `syntra plan` shows it: `swift (embedded)`."""
        ...

    def ci_actions(self, guests: list[GuestPlan]) -> list[str]:
        """GitHub actions the guests job needs for these guests (a toolchain setup)."""
        ...

    def ci_packages(self, guests: list[GuestPlan]) -> list[str]:
        """Debian/Ubuntu packages the guests job installs for these guests."""
        ...

    def probe(self, guest: GuestPlan, scratch: Path) -> str:
        """For `syntra doctor`: build a tiny guest with `guest`'s toolchain in `scratch`,
        linked for its target; what was used, or a SyntraError naming what is missing and
        the package that brings it (the same line the compile stage prints)."""
        ...

    def detect(self, folder: Path) -> list[str] | None:
        """For `syntra init`: None unless `folder` holds a guest in this language; else
        the guest's syntra.yaml lines besides `language` and `source` (may be comments)."""
        ...


def language(name: str) -> Language:
    return cast(Language, importlib.import_module(LANGUAGES[name]).LANGUAGE)
