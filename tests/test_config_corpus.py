"""Every malformed config in tests/corpus gives exactly its expected line and exit 2."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Result

CORPUS = Path(__file__).parent / "corpus"


def _expected() -> dict[str, str]:
    lines = (CORPUS / "expected.txt").read_text().splitlines()
    pairs = (line.split(": ", 1) for line in lines if line and not line.startswith("#"))
    return {name: message for name, message in pairs}


EXPECTED = _expected()


def test_corpus_is_large_and_complete() -> None:
    cases = {path.stem for path in CORPUS.glob("*.yaml")}
    assert len(cases) >= 30
    assert cases == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_malformed_config(
    case: str, tmp_path: Path, syntra: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNTRA_TEST_UNSET_HOST", raising=False)
    monkeypatch.delenv("SYNTRA_TEST_UNSET_ORG", raising=False)
    shutil.copy(CORPUS / f"{case}.yaml", tmp_path / "syntra.yaml")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = syntra(tmp_path, "validate")
    assert result.code == 2
    assert result.out == ""
    assert result.err == EXPECTED[case] + "\n"
