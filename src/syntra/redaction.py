"""Secrets noted once, blanked everywhere: in captured output, logs, reports and spans."""

from __future__ import annotations

REDACTED = "***"

_secrets: set[str] = set()
_longest_first: tuple[str, ...] = ()
"""The secrets, longest first (a secret that holds another is blanked whole), kept sorted
as they are noted rather than on every line redacted."""


def keep_secret(value: str) -> str:
    """Note `value` (a password, token, passphrase, build secret) so no output this
    process captures, logs or reports shows it; returns it unchanged. A secret of
    several lines (a file, a key) is noted line by line too: tools print such files a
    line at a time, and logs are redacted a line at a time. Lines that are only
    structure (PEM armour such as `-----BEGIN PRIVATE KEY-----`, a lone brace) are
    not secret, and blanking them would blank every key's armour and every brace."""
    global _longest_first
    lines = (line.strip() for line in value.splitlines())
    for part in {value, *(line for line in lines if not _structure(line))}:
        if len(part) >= 4:  # shorter values would blank ordinary words
            _secrets.add(part)
    _longest_first = tuple(sorted(_secrets, key=len, reverse=True))
    return value


def _structure(line: str) -> bool:
    return line.startswith("-----") or not any(c.isalnum() for c in line)


def redact(text: str) -> str:
    for secret in _longest_first:
        text = text.replace(secret, REDACTED)
    return text
