"""Inputs that cannot live in the YAML corpus: bytes, sizes, files, the environment."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from syntra.config import load
from syntra.errors import ConfigError
from tests.conftest import MINIMAL, PYTHON, REPO, Result

HEAD = "version: 1\nproject:\n  name: demo\n"


def _validate(tmp_path: Path, syntra: Callable[..., Result], data: bytes) -> Result:
    (tmp_path / "syntra.yaml").write_bytes(data)
    return syntra(tmp_path, "validate")


@pytest.mark.parametrize("data", [b"", b"   \n\n", b"# only a comment\n"])
def test_empty_file(tmp_path: Path, syntra: Callable[..., Result], data: bytes) -> None:
    result = _validate(tmp_path, syntra, data)
    assert (result.code, result.err) == (
        2,
        "syntra.yaml:1:1: the file is empty; start with 'version: 1'\n",
    )


def test_not_utf8_names_line_and_column(tmp_path: Path, syntra: Callable[..., Result]) -> None:
    result = _validate(tmp_path, syntra, HEAD.encode() + b"builder: pod\xffman\n")
    assert (result.code, result.err) == (2, "syntra.yaml:4:13: not valid UTF-8 (byte 0xff)\n")


def test_alias_bomb_is_refused(tmp_path: Path, syntra: Callable[..., Result]) -> None:
    levels = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    bomb = HEAD + "images:\n  web:\n    vars:\n" + "".join(f"      {x}\n" for x in levels)
    result = _validate(tmp_path, syntra, bomb.encode())
    assert result.code == 2
    assert result.err.startswith("syntra.yaml:")
    assert "aliases expand to more than 250000 values" in result.err
    assert result.err.count("\n") == 1


def test_alias_inside_its_own_anchor(tmp_path: Path, syntra: Callable[..., Result]) -> None:
    data = HEAD + "images:\n  web:\n    vars: &v\n      again: [*v]\n"
    result = _validate(tmp_path, syntra, data.encode())
    assert (result.code, result.err) == (
        2,
        "syntra.yaml:7:15: images.web.vars.again[0]: an alias refers to a value that contains it\n",
    )


def test_deep_nesting(tmp_path: Path, syntra: Callable[..., Result]) -> None:
    data = HEAD + "images:\n  web:\n    vars:\n      x: " + "[" * 200 + "]" * 200 + "\n"
    result = _validate(tmp_path, syntra, data.encode())
    assert (result.code, result.err) == (2, "syntra.yaml:7:70: nested more than 64 levels deep\n")


def test_very_deep_nesting_does_not_crash_the_parser(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    result = _validate(tmp_path, syntra, b"version: " + b"[" * 50_000 + b"]" * 50_000)
    assert result.code == 2
    assert result.err.startswith("syntra.yaml:") and result.err.count("\n") == 1


def test_file_too_large(tmp_path: Path, syntra: Callable[..., Result]) -> None:
    result = _validate(tmp_path, syntra, HEAD.encode() + b"#" * (2 << 20))
    assert (result.code, result.err) == (2, "syntra.yaml:1:1: larger than 1 MiB\n")


def test_missing_file(tmp_path: Path, syntra: Callable[..., Result]) -> None:
    result = syntra(tmp_path, "validate")
    assert result.code == 2
    assert result.err == (
        "syntra.yaml: not found; run syntra in the repository root or pass --file\n"
    )


def test_other_file_name_is_shown(tmp_path: Path, syntra: Callable[..., Result]) -> None:
    (tmp_path / "ci.yaml").write_text("version: 3\nproject: {name: x}\n")
    result = syntra(tmp_path, "-f", "ci.yaml", "validate")
    assert result.err == "ci.yaml:1:10: version: 3 is not a schema version; write version: 1\n"


def test_symlink_out_of_the_repository(tmp_path: Path, syntra: Callable[..., Result]) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "ctx").symlink_to(tmp_path)
    data = HEAD + "images:\n  web:\n    context: ctx\n"
    result = _validate(repo, syntra, data.encode())
    assert result.err == "syntra.yaml:6:14: images.web.context: 'ctx' escapes the repository root\n"


def test_interpolation_forms(tmp_path: Path) -> None:
    (tmp_path / "syntra.yaml").write_text(
        HEAD
        + "registries:\n"
        + "  a: {url: '${HOST}:5000'}\n"
        + "  b: {url: '${EMPTY:-fallback.io}'}\n"
        + "  c: {url: '${EMPTY-kept.io}x'}\n"
        + "  d: {url: '${UNSET-unset.io}'}\n"
        + "defaults: {registry: a, tags: ['$${literal}']}\n"
    )
    env = {"HOST": "reg.example", "EMPTY": ""}
    config = load(tmp_path / "syntra.yaml", env).config
    urls = {name: registry.url for name, registry in config.registries.items()}
    assert urls == {"a": "reg.example:5000", "b": "fallback.io", "c": "x", "d": "unset.io"}
    assert config.defaults.tags == ["${literal}"]


def test_keys_are_never_interpolated(tmp_path: Path) -> None:
    (tmp_path / "syntra.yaml").write_text(HEAD + "images:\n  web:\n    args: {'${X}': v}\n")
    config = load(tmp_path / "syntra.yaml", {"X": "expanded"}).config
    assert config.images["web"].args == {"${X}": "v"}


def test_merge_keys_share_settings(tmp_path: Path) -> None:
    (tmp_path / "syntra.yaml").write_text(
        HEAD
        + "images:\n"
        + "  a: &common {platforms: [linux/arm64], args: {A: 1}}\n"
        + "  b:\n    <<: *common\n    target: final\n"
    )
    config = load(tmp_path / "syntra.yaml", {}).config
    assert config.images["b"].platforms == ["linux/arm64"]
    assert config.images["b"].args == {"A": "1"}


def test_error_inside_merged_mapping_points_into_the_file(tmp_path: Path) -> None:
    (tmp_path / "syntra.yaml").write_text(
        HEAD + "images:\n  a: &common {platforms: [linux/amd65]}\n  b:\n    <<: *common\n"
    )
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "syntra.yaml", {})
    assert str(caught.value).endswith(
        "syntra.yaml:5:27: images.a.platforms[0]: 'linux/amd65' is not a platform; "
        "did you mean 'linux/amd64'?"
    )


def test_console_script_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "syntra.yaml").write_text(MINIMAL.replace("insecure: true", "insecure: maybe"))
    done = subprocess.run(
        [PYTHON, "-m", "syntra", "validate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "syntra.yaml:7:15: registries.local.insecure: expected true or false, got 'maybe'\n"
    )


def test_long_number_is_refused(tmp_path: Path, syntra: Callable[..., Result]) -> None:
    result = _validate(tmp_path, syntra, HEAD.encode() + b"builder: " + b"9" * 5000 + b"\n")
    assert (result.code, result.err) == (
        2,
        "syntra.yaml:4:10: a number this long is not supported\n",
    )


def test_merge_key_bomb_is_refused(tmp_path: Path, syntra: Callable[..., Result]) -> None:
    lines = ["  a0: &a0 {context: .}"]
    lines += [f"  a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}]}}" for i in range(1, 30)]
    result = _validate(tmp_path, syntra, (HEAD + "images:\n" + "\n".join(lines) + "\n").encode())
    assert result.err == (
        "syntra.yaml:7:17: '<<' of *a1, which itself uses '<<': merge the original instead\n"
    )


def test_error_at_the_end_of_a_large_file(tmp_path: Path, syntra: Callable[..., Result]) -> None:
    items = "".join(f"        - item-{n}\n" for n in range(40_000))
    data = HEAD + "images:\n  web:\n    vars:\n      list:\n" + items + "    contxt: .\n"
    result = _validate(tmp_path, syntra, data.encode())
    assert result.err == (
        "syntra.yaml:40008:5: images.web.contxt: unknown key 'contxt'; did you mean 'context'?\n"
    )


def test_long_alias_chain_is_refused(tmp_path: Path, syntra: Callable[..., Result]) -> None:
    chain = ["      a0: &a0 {k: v}"] + [
        f"      a{i}: &a{i} {{k: *a{i - 1}}}" for i in range(1, 700)
    ]
    data = HEAD + "images:\n  web:\n    vars:\n" + "\n".join(chain) + "\n"
    result = _validate(tmp_path, syntra, data.encode())
    assert result.code == 2
    assert result.err.endswith("aliases nest more than 64 levels deep\n")
    assert result.err.count("\n") == 1


def test_expanded_values_are_not_echoed(
    tmp_path: Path, syntra: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASE", "Not An Image hunter2")
    result = _validate(tmp_path, syntra, (HEAD + "images:\n  web:\n    base: ${BASE}\n").encode())
    assert "hunter2" not in result.err
    assert result.err == (
        "syntra.yaml:6:11: images.web.base: '${BASE}' is not an image reference: "
        "expected [registry/]name[:tag][@digest]\n"
    )


def test_dates_are_text(tmp_path: Path) -> None:
    (tmp_path / "syntra.yaml").write_text(HEAD + "images:\n  web:\n    vars: {day: 2024-01-01}\n")
    assert load(tmp_path / "syntra.yaml", {}).config.images["web"].vars == {"day": "2024-01-01"}
