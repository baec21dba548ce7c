"""What the benchmarks share: a timed result, pinning to one CPU, the machine's load."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    name: str
    iterations: int
    seconds: float
    best_batch_us: float  # the fastest batch's cost per operation: the least disturbed figure

    @property
    def per_op_us(self) -> float:
        return self.seconds / self.iterations * 1e6

    @property
    def ops_per_second(self) -> float:
        return self.iterations / self.seconds


def pin_to_one_core() -> tuple[str, set[int] | None]:
    """Pin this process to one CPU where the OS allows; say what happened, return the old set
    (for `unpin`)."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this OS)", None
    try:
        before = os.sched_getaffinity(0)
        cpu = min(before)
        os.sched_setaffinity(0, {cpu})
    except OSError as error:
        return f"not pinned ({error})", None
    return f"pinned to CPU {cpu}", before


def unpin(before: set[int] | None) -> None:
    if before is not None:
        os.sched_setaffinity(0, before)


def load_average() -> float:
    """The 1-minute load average (0 where the OS has none): other work skews timings."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
