"""Small, dependency-free SVG line plots for reports (power-on current traces and the like).

:func:`line_plot` turns evenly sampled values into one self-contained ``<svg>`` element with axes, "nice"
tick marks (1-2-5 steps), axis labels and a title, ready to be inlined in an HTML report and printed.
It is a pure function: same input, same text out; no matplotlib, no files.

Long traces are reduced to at most ``max_points`` points by keeping the minimum and maximum of each bucket,
so a short inrush spike survives the reduction. Non-finite samples (NaN, ±inf) break the line.
Every piece of text placed in the SVG is XML-escaped here, so callers may pass untrusted titles and units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Final

__all__ = ["line_plot", "nice_ticks", "reduce_min_max"]

_TIME_SCALES: Final = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"))


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick positions covering [lo, hi] in steps of 1, 2 or 5 × 10^k, about ``target`` of them."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("tick range must be finite")
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    target = max(1, target)
    base = 10.0 ** math.floor(math.log10((hi - lo) / target))
    candidates = [m * base for m in (0.5, 1.0, 2.0, 5.0, 10.0)]

    def intervals(step: float) -> int:
        return math.ceil(hi / step - 1e-9) - math.floor(lo / step + 1e-9)

    # the 1-2-5 step whose number of intervals is closest to the target; on a tie, the one whose ticks
    # overshoot the data least
    step = min(candidates, key=lambda s: (abs(intervals(s) - target), intervals(s) * s - (hi - lo)))
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    return [_clean(k * step, step) for k in range(first, last + 1)]


def _clean(x: float, step: float) -> float:
    """Remove floating-point dust (0.30000000000000004 → 0.3, -0.0 → 0.0)."""
    digits = max(0, -math.floor(math.log10(step)) + 1)
    return round(x, digits) + 0.0


def _tick_label(x: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{x:.{decimals}f}".replace("-", "−")


def reduce_min_max(values: Sequence[float], max_points: int) -> list[tuple[int, float]]:
    """(index, value) pairs: all samples if few, else the min and max of each bucket, in time order."""
    n = len(values)
    if n <= max_points:
        return list(enumerate(values))
    buckets = max(1, max_points // 2)
    out: list[tuple[int, float]] = []
    for b in range(buckets):
        start = b * n // buckets
        stop = (b + 1) * n // buckets
        finite = [(i, values[i]) for i in range(start, stop) if math.isfinite(values[i])]
        if not finite:
            out.append((start, math.nan))
            continue
        lo = min(finite, key=lambda p: p[1])
        hi = max(finite, key=lambda p: p[1])
        out.extend(sorted({lo, hi}))
    return out


def line_plot(
    values: Sequence[float],
    interval_s: float,
    *,
    title: str = "",
    y_label: str = "",
    units: str = "",
    width: int = 640,
    height: int = 280,
    max_points: int = 1200,
) -> str:
    """An SVG line plot of ``values`` sampled every ``interval_s`` seconds, starting at t = 0.

    The y axis always includes zero when all values have one sign (a current trace reads from 0 A).
    """
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise ValueError(f"interval_s must be a positive number, got {interval_s!r}")
    left, right, top, bottom = 68, 16, 30 if title else 12, 46
    pw, ph = width - left - right, height - top - bottom
    y_axis = f"{y_label} ({units})" if y_label and units else (y_label or units)
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title or "plot")}" '
        'font-family="sans-serif" font-size="11">',
        f"<title>{escape(title or 'plot')}</title>",
    ]
    if title:
        parts.append(
            f'<text x="{left + pw / 2:.1f}" y="18" text-anchor="middle" font-size="13" '
            f'font-weight="bold">{escape(title)}</text>'
        )

    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
        parts.append(f'<text x="{left + pw / 2:.1f}" y="{top + ph / 2:.1f}" text-anchor="middle">no samples</text>')
        parts.append("</svg>")
        return "".join(parts)

    # y range and ticks
    lo, hi = min(finite), max(finite)
    if lo >= 0:
        lo = 0.0
    if hi <= 0:
        hi = 0.0
    y_ticks = nice_ticks(lo, hi)
    y0, y1 = y_ticks[0], y_ticks[-1]
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0

    # x range in a readable time unit
    duration = max(interval_s * (len(values) - 1), interval_s)
    scale, unit = next(((s, u) for s, u in _TIME_SCALES if duration >= s * 0.999), _TIME_SCALES[-1])
    x_ticks = [t for t in nice_ticks(0.0, duration / scale) if t <= duration / scale * (1 + 1e-9)]
    x_max = duration / scale
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else x_max

    def px(t: float) -> float:
        return left + pw * t / x_max

    def py(v: float) -> float:
        return top + ph * (1 - (v - y0) / (y1 - y0))

    # grid, ticks and labels
    grid: list[str] = []
    for t in y_ticks:
        y = py(t)
        grid.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        grid.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_tick_label(t, y_step)}</text>')
    for t in x_ticks:
        x = px(t)
        grid.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#eee"/>')
        grid.append(f'<text x="{x:.1f}" y="{top + ph + 16}" text-anchor="middle">{_tick_label(t, x_step)}</text>')
    parts.extend(grid)
    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    if y0 < 0 < y1:
        parts.append(f'<line x1="{left}" y1="{py(0):.1f}" x2="{left + pw}" y2="{py(0):.1f}" stroke="#888"/>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 8}" text-anchor="middle">time ({escape(unit)})</text>')
    if y_axis:
        cx, cy = 14, top + ph / 2
        parts.append(
            f'<text x="{cx}" y="{cy:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 {cx} {cy:.1f})">{escape(y_axis)}</text>'
        )

    # the trace, split where samples are not finite
    segments: list[list[str]] = [[]]
    for i, v in reduce_min_max(values, max_points):
        if math.isfinite(v):
            segments[-1].append(f"{px(i * interval_s / scale):.1f},{py(v):.1f}")
        elif segments[-1]:
            segments.append([])
    for seg in segments:
        if len(seg) == 1:
            cx_s, cy_s = seg[0].split(",")
            parts.append(f'<circle cx="{cx_s}" cy="{cy_s}" r="1.5" fill="#1f5fa8"/>')
        elif seg:
            parts.append(
                f'<polyline fill="none" stroke="#1f5fa8" stroke-width="1.3" '
                f'stroke-linejoin="round" points="{" ".join(seg)}"/>'
            )
    parts.append("</svg>")
    return "".join(parts)
