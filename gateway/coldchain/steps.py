"""When a clock warns: at 75 % and 90 % of its span and at its deadline; a logger's silence only
at its deadline (a fault, not a delay). Each running clock keeps the time of its next warning
(`deadlines.next_at`, indexed), so that a sweep reads the clocks that are due, not every one."""

from __future__ import annotations

from datetime import datetime

STEPS = (75, 90, 100)
SILENCE = "logger_silence"


def steps_of(clock: str) -> tuple[int, ...]:
    return (100,) if clock == SILENCE else STEPS


def next_warning(clock: str, starts_at: datetime, due_at: datetime, warned: int) -> datetime | None:
    """When the clock reaches its first step above `warned` (None: it has warned of every one)."""
    upcoming = [s for s in steps_of(clock) if s > warned]
    if not upcoming:
        return None
    return starts_at + (due_at - starts_at) * (upcoming[0] / 100) if due_at > starts_at else due_at
