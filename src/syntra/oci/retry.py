"""The one retry policy of every registry request.

Retried: 408, 429, 500, 502, 503, 504, connection errors, resets, read timeouts and
bodies that do not match their digest. Each wait is exponential with full jitter, or what
`Retry-After` asks for when that is longer; the waits of one request add up to at most
`budget` seconds. Settings come from the environment so a flaky network can be met
without a code change:

- `SYNTRA_REGISTRY_TRIES` (default 5): attempts per request, the first included;
- `SYNTRA_REGISTRY_RETRY_SECONDS` (default 60): the most one request may spend waiting;
- `SYNTRA_REGISTRY_TIMEOUT` (default 30): seconds to wait for a connection or a read;
- `SYNTRA_REGISTRY_DEADLINE` (default ten times the timeout): the most seconds one
  exchange may take, connect and whole body, plus a second for each MiB of a blob.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from syntra import telemetry
from syntra.errors import SyntraError

RETRIABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise SyntraError(f"${name} is '{text}', not a number") from None
    if not math.isfinite(value) or value < 0:
        raise SyntraError(f"${name} is '{text}', not a positive number")
    return value


@dataclass(frozen=True)
class RetryPolicy:
    tries: int = 5
    budget: float = 60.0
    timeout: float = 30.0
    deadline: float = 300.0
    base: float = 0.25
    cap: float = 10.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        timeout = _env_number("SYNTRA_REGISTRY_TIMEOUT", cls.timeout) or cls.timeout
        return cls(
            tries=max(1, int(_env_number("SYNTRA_REGISTRY_TRIES", cls.tries))),
            budget=_env_number("SYNTRA_REGISTRY_RETRY_SECONDS", cls.budget),
            timeout=timeout,
            deadline=_env_number("SYNTRA_REGISTRY_DEADLINE", 10 * timeout) or 10 * timeout,
        )

    def attempts(self) -> Attempts:
        return Attempts(self)


class Attempts:
    """One request's tries: `wait()` sleeps before the next one, or says there is none."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.number = 1
        self.waited = 0.0

    def wait(self, retry_after: str | None = None) -> bool:
        """Sleep before another try; False when the tries or the time budget are spent."""
        if self.number >= self.policy.tries:
            return False
        backoff = random.uniform(0, min(self.policy.cap, self.policy.base * 2**self.number))
        asked = _seconds(retry_after)
        delay = max(backoff, asked) if asked is not None else backoff
        if self.waited + delay > self.policy.budget:
            if asked is not None and asked > self.policy.budget - self.waited:
                return False  # the registry asks for longer than we may wait
            delay = max(0.0, self.policy.budget - self.waited)
        time.sleep(delay)
        self.waited += delay
        self.number += 1
        telemetry.record("syntra.registry.retries", 1)
        return True


def _seconds(retry_after: str | None) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date."""
    if not retry_after:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(retry_after).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
