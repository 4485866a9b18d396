"""The README stays short, and the documentation cannot rot: links resolve, the CLI page
names every command and flag of the parser, the environment page every SYNTRA_* variable
the source mentions."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from syntra.cli import parser
from tests.conftest import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
VARIABLE = re.compile(r"\bSYNTRA_[A-Z0-9_]+")


def _prose(text: str) -> str:
    """The text without fenced blocks and code spans, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.MULTILINE | re.DOTALL)
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE):
        found.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return found


def test_readme_is_short() -> None:
    lines = README.read_text().count("\n")
    assert lines <= 250, f"README.md has {lines} lines; move detail to docs/"


def test_relative_links_resolve() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(_prose(page.read_text())):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(REPO)}: {target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.relative_to(REPO)}: {target}: no such heading")
    assert not broken, "\n".join(broken)


def test_every_page_is_linked_from_the_readme_or_another_page() -> None:
    linked = {
        (page.parent / target.partition("#")[0]).resolve()
        for page in PAGES
        for target in LINK.findall(_prose(page.read_text()))
        if not re.match(r"[a-z]+:", target)
    }
    orphans = [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked]
    assert not orphans


def _commands() -> dict[str, argparse.ArgumentParser]:
    top = parser()
    (sub,) = (a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _flags(command: argparse.ArgumentParser) -> list[str]:
    return [
        option
        for action in command._actions
        if not isinstance(action, argparse._HelpAction)
        for option in action.option_strings
    ]


def test_cli_page_lists_every_command_and_flag() -> None:
    page = (DOCS / "cli.md").read_text()
    sections = dict(re.findall(r"^### `syntra (\S+)`\n(.*?)(?=^##|\Z)", page, re.M | re.S))
    commands = _commands()
    assert sorted(sections) == sorted(commands), "docs/cli.md: commands differ from the parser"
    missing = [
        f"syntra {name} {flag}"
        for name, command in commands.items()
        for flag in _flags(command)
        if f"`{flag}`" not in sections[name]
    ]
    global_options = page.split("\n## ", 2)[1]
    missing += [f"syntra {flag}" for flag in _flags(parser()) if f"`{flag}`" not in global_options]
    assert not missing, "docs/cli.md lacks: " + ", ".join(missing)


def test_environment_page_lists_every_syntra_variable() -> None:
    sources = [*(REPO / "src").rglob("*.py"), *(REPO / "src").rglob("*.c")]
    used = {name for path in sources for name in re.findall(VARIABLE, path.read_text())}
    page = (DOCS / "environment.md").read_text()
    assert used
    assert not sorted(v for v in used if f"`{v}`" not in page), "docs/environment.md lacks them"
