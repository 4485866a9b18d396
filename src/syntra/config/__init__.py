"""Stage 1, config: syntra.yaml → a validated `Config`, or one positioned error line."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from syntra.config.checks import check
from syntra.config.model import Config
from syntra.config.validate import model_of
from syntra.config.yamldoc import Document, parse, to_plain
from syntra.errors import SyntraError
from syntra.paths import CONFIG_FILE

__all__ = ["Config", "Document", "Loaded", "load"]


@dataclass(frozen=True)
class Loaded:
    """A validated config with what later stages need to report positions and provenance."""

    config: Config
    document: Document
    path: Path
    root: Path
    digest: str


def load(path: Path | str = CONFIG_FILE, environ: Mapping[str, str] | None = None) -> Loaded:
    """Read, interpolate, validate and cross-check syntra.yaml."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SyntraError(
            f"{path}: not found; run syntra in the repository root or pass --file"
        ) from None
    except OSError as exc:
        raise SyntraError(f"{path}: cannot read: {exc.strerror}") from None
    document = parse(data, str(path))
    root = path.resolve().parent
    config = model_of(to_plain(document, environ), document, {"root": root})
    check(config, document, root)
    return Loaded(config, document, path, root, "sha256:" + hashlib.sha256(data).hexdigest())
