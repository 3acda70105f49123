"""Charts of the console drawn on the server as inline SVG: a leg's temperature with its
excursions marked, and a clock's elapsed time. No script runs in the browser."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

W, H, PAD = 640, 200, 36


@dataclass(frozen=True)
class Band:
    """An excursion on the chart: from, to, the limit crossed, its severity."""

    start: datetime
    end: datetime
    limit_c: float | None
    severity: str | None


def temperature_chart(readings: Sequence[Mapping[str, Any]], bands: Sequence[Band]) -> Markup:
    """Point readings as a line, interval reports as min-max bars, excursions as red bands."""
    points = [
        (r["at"], r.get("temperature_c") if r.get("temperature_c") is not None else r.get("mean_c"))
        for r in readings
    ]
    values = [
        float(v)
        for r in readings
        for v in (r.get("temperature_c"), r.get("min_c"), r.get("max_c"), r.get("mean_c"))
        if v is not None
    ]
    values += [float(b.limit_c) for b in bands if b.limit_c is not None]
    times: list[datetime] = [r["at"] for r in readings] + [t for b in bands for t in (b.start, b.end)]
    if not values or not times:
        return Markup('<p class="muted">No logger readings recorded for this leg.</p>')
    t0, t1 = min(times), max(times)
    lo, hi = min(values), max(values)
    if hi - lo < 1:
        lo, hi = lo - 1, hi + 1
    lo, hi = lo - (hi - lo) * 0.1, hi + (hi - lo) * 0.1
    span = max((t1 - t0).total_seconds(), 1.0)

    def x(at: datetime) -> float:
        return PAD + (W - 2 * PAD) * (at - t0).total_seconds() / span

    def y(value: float) -> float:
        return H - PAD + (2 * PAD - H) * (value - lo) / (hi - lo)

    parts = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
        f'aria-label="temperature chart" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{PAD}" y="{PAD}" width="{W - 2 * PAD}" height="{H - 2 * PAD}" class="plot"/>',
    ]
    for band in bands:
        left, right = x(band.start), max(x(band.end), x(band.start) + 3)
        parts.append(
            f'<rect class="excursion" x="{left:.1f}" y="{PAD}" width="{right - left:.1f}" '
            f'height="{H - 2 * PAD}"><title>excursion {escape(band.severity or "")}</title></rect>'
        )
        if band.limit_c is not None:
            ly = y(band.limit_c)
            parts.append(f'<line class="limit" x1="{PAD}" x2="{W - PAD}" y1="{ly:.1f}" y2="{ly:.1f}"/>')
            parts.append(f'<text class="label" x="{W - PAD + 2}" y="{ly + 4:.1f}">{band.limit_c:g}</text>')
    for r in readings:
        if r.get("min_c") is not None and r.get("max_c") is not None:
            rx = x(r["at"])
            parts.append(
                f'<line class="range" x1="{rx:.1f}" x2="{rx:.1f}" y1="{y(r["min_c"]):.1f}" y2="{y(r["max_c"]):.1f}"/>'
            )
    line = " ".join(f"{x(at):.1f},{y(v):.1f}" for at, v in points if v is not None)
    if line:
        parts.append(f'<polyline class="reading" points="{line}"/>')
    parts += [
        f'<text class="label" x="2" y="{PAD + 4}">{hi:.1f} °C</text>',
        f'<text class="label" x="2" y="{H - PAD + 4}">{lo:.1f} °C</text>',
        f'<text class="label" x="{PAD}" y="{H - 8}">{t0:%d %b %H:%M}</text>',
        f'<text class="label end" x="{W - PAD}" y="{H - 8}">{t1:%d %b %H:%M} UTC</text>',
        "</svg>",
    ]
    # Every value interpolated above is a number, a time or escaped: safe to mark as markup.
    return Markup("".join(parts))  # noqa: S704


def clock_bar(starts_at: datetime, due_at: datetime, now: datetime, stopped_at: datetime | None) -> Markup:
    """The share of a clock's window used: green, amber past 75 %, red past 90 %."""
    end = stopped_at or now
    window = max((due_at - starts_at).total_seconds(), 1.0)
    pct = max(0.0, (end - starts_at).total_seconds() / window * 100)
    level = "ok" if pct < 75 else "warn" if pct < 90 else "breach"
    width = 320
    filled = min(pct, 100) / 100 * width
    return Markup(  # noqa: S704 (numbers only)
        f'<svg class="clock" viewBox="0 0 {width} 18" width="{width}" height="18" role="img" '
        f'aria-label="{pct:.0f} percent used" xmlns="http://www.w3.org/2000/svg">'
        f'<rect class="track" x="0" y="0" width="{width}" height="18"/>'
        f'<rect class="fill {level}" x="0" y="0" width="{filled:.1f}" height="18"/>'
        f'<line class="mark" x1="{width * 0.75:.1f}" x2="{width * 0.75:.1f}" y1="0" y2="18"/>'
        f'<line class="mark" x1="{width * 0.9:.1f}" x2="{width * 0.9:.1f}" y1="0" y2="18"/>'
        f'<text x="{width / 2:.0f}" y="13" class="pct">{pct:.0f} %</text></svg>'
    )
