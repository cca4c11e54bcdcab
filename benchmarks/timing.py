"""Timing side by side: alternating runs, medians of the warm ones, the cold first run apart.

Each repeat runs every contestant once, rotating which goes first, so that
slow drift of a shared machine (other processes, clock changes) falls on all
of them alike. Setup (copying the initial weights into a fresh model and
optimizer) is never timed. Wall-clock time is the measure; the CPU time of
this process is kept too, as a cross-check that is less disturbed by other
processes on a busy machine (it is only meaningful with one torch thread).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field


@dataclass
class Timings:
    """One contestant's runs: the first (cold) one and the rest (warm)."""

    name: str
    cold: float = float("nan")
    warm: list = field(default_factory=list)
    warm_cpu: list = field(default_factory=list)
    result: object = None  # what the run returned (e.g. its final loss)

    @property
    def median(self) -> float:
        return statistics.median(self.warm)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.warm_cpu)

    @property
    def best(self) -> float:
        """The fastest warm run: the least disturbed by other processes on a shared machine."""
        return min(self.warm)


def alternate(setups: dict, repeats: int) -> dict:
    """Time ``setups[name]()()`` (setup untimed, run timed) `repeats` + 1 times each.

    The first round is the cold run of each contestant, in the order given;
    the next `repeats` rounds rotate the order. Returns {name: Timings}.
    """
    names = list(setups)
    timings = {name: Timings(name) for name in names}
    for round_ in range(repeats + 1):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            run = setups[name]()
            cpu, wall = time.process_time(), time.perf_counter()
            result = run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            record = timings[name]
            record.result = result
            if round_ == 0:
                record.cold = wall
            else:
                record.warm.append(wall)
                record.warm_cpu.append(cpu)
    return timings
