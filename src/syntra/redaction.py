"""Secrets noted once, blanked everywhere: in captured output, logs, reports and spans."""

from __future__ import annotations

REDACTED = "***"

_secrets: set[str] = set()


def keep_secret(value: str) -> str:
    """Note `value` (a password, token, passphrase, build secret) so no output this
    process captures, logs or reports shows it; returns it unchanged. A secret of
    several lines (a file, a key) is noted line by line too: tools print such files a
    line at a time, and logs are redacted a line at a time."""
    for part in {value, *(line.strip() for line in value.splitlines())}:
        if len(part) >= 4:  # shorter values would blank ordinary words
            _secrets.add(part)
    return value


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
