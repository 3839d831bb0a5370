"""Capped exponential backoff with jitter, for every outbox that retries a peer (Dynamics, delivery)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_seconds: float = 60.0
    cap_seconds: float = 6 * 3600.0
    #: After this many failed attempts the outbox gives up (and operations hear of it).
    max_attempts: int = 8

    def ceiling(self, attempts: int) -> float:
        """The longest wait after `attempts` failed tries: base * 2^(attempts-1), capped."""
        return min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))

    def delay_after(self, attempts: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds until the next try after `attempts` failed ones: the ceiling scaled by a random
        factor in [0.5, 1.0), so that many failed items do not retry in step."""
        return self.ceiling(attempts) * (0.5 + rng() / 2)
