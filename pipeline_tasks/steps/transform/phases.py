"""The transform's clock: seconds per phase, as the report's ``seconds_by_phase`` lists them."""

from __future__ import annotations

import time


class Phases:
    """Laps of one run: each phase's seconds since the end of the previous one."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def lap(self, name: str) -> None:
        """End the phase ``name`` now."""
        self.seconds[name] = round(time.perf_counter() - self.started - sum(self.seconds.values()), 3)

    def total(self) -> float:
        """Seconds since the run started."""
        return round(time.perf_counter() - self.started, 3)
