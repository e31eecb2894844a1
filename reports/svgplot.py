"""Small, dependency-free SVG line plots for reports (power-on current traces and the like).

:func:`line_plot` turns evenly sampled values into one self-contained ``<svg>`` element with axes, "nice"
tick marks (1-2-5 steps), axis labels and a title, ready to be inlined in an HTML report and printed.
:func:`xy_plot` draws several (x, y) series — an RF spectrum with its mask, FER against input level on a
log axis. A series is plain data handed over by the domain (anything with ``name``, ``x``, ``y`` and
``style``: :class:`SeriesData`; the bench's is ``bench.plotdata.PlotSeries``); :class:`PlotSpec` is the
``application/vnd.ots.plot+json`` attachment that carries them (written by ``Evidence.plot``, read back
with :meth:`PlotSpec.from_json` and drawn by reports.html). Both are pure functions: same input, same text
out; no files.

Hand-written rather than matplotlib's SVG backend: benchmarks/bench_plots.py times both on the report's
plots; matplotlib's import alone is several times the whole report's budget, and each plot costs ~10× more.

Long traces are reduced to at most ``max_points`` points by keeping the minimum and maximum of each bucket,
so a short inrush spike survives the reduction. Non-finite samples (NaN, ±inf) break the line.
Every piece of text placed in the SVG is XML-escaped here, so callers may pass untrusted titles and units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final, Protocol

__all__ = [
    "PLOT_MIME",
    "PLOT_SCHEMA",
    "PlotSpec",
    "Series",
    "SeriesData",
    "line_plot",
    "nice_ticks",
    "reduce_min_max",
    "xy_plot",
]

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


def _svg_open(css_class: str, width: int, height: int, title: str, title_x: float) -> list[str]:
    """The opening of a plot's SVG: root element, accessible title, and the visible title if any."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title or "plot")}" '
        'font-family="sans-serif" font-size="11">',
        f"<title>{escape(title or 'plot')}</title>",
    ]
    if title:
        parts.append(
            f'<text x="{title_x:.1f}" y="18" text-anchor="middle" font-size="13" '
            f'font-weight="bold">{escape(title)}</text>'
        )
    return parts


def _grid(
    left: float, top: float, pw: float, ph: float, y_ticks: list[tuple[float, str]], x_ticks: list[tuple[float, str]]
) -> list[str]:
    """Grid lines and tick labels at the given pixel positions (labels are escaped here)."""
    out: list[str] = []
    for y, label in y_ticks:
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>')
    for x, label in x_ticks:
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{top + ph + 16}" text-anchor="middle">{escape(label)}</text>')
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
    parts = _svg_open("plot", width, height, title, left + pw / 2)

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
    parts += _grid(
        left, top, pw, ph,
        [(py(t), _tick_label(t, y_step)) for t in y_ticks],
        [(px(t), _tick_label(t, x_step)) for t in x_ticks],
    )  # fmt: skip
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


# --------------------------------------------------------------------------------------------------------
# XY plots (RF spectrum with a mask, FER against input level): series handed over as plain data by the
# domain, carried by the plot attachment (fixtures.evidence.Evidence.plot writes it; reports.html draws it).

PLOT_MIME: Final = "application/vnd.ots.plot+json"
PLOT_SCHEMA: Final = "ots.plot/1"
_STYLES: Final = ("line", "markers", "limit")
_PALETTE: Final = ("#1f5fa8", "#2e7d32", "#6a1b9a", "#ef8f00", "#00838f", "#5d4037", "#ad1457", "#455a64")
_LIMIT_COLOUR: Final = "#c62828"


class SeriesData(Protocol):
    """What :func:`xy_plot` draws of a series. ``style``: ``line`` (polyline), ``markers`` (points, e.g. the
    sensitivity point), ``limit`` (dashed red line, e.g. a spectral mask; a limit with a single point is drawn
    as a horizontal line across the whole plot, e.g. FER = 1e-2). NaN breaks a line."""

    @property
    def name(self) -> str: ...

    @property
    def x(self) -> Sequence[float]: ...

    @property
    def y(self) -> Sequence[float]: ...

    @property
    def style(self) -> str: ...


@dataclass(frozen=True)
class Series:
    """A series as read back from a plot attachment (:meth:`PlotSpec.from_json`): values as tuples of floats."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    style: str = "line"

    def __post_init__(self) -> None:
        if self.style not in _STYLES:
            raise ValueError(f"series {self.name!r}: style must be one of {_STYLES}, got {self.style!r}")
        x = tuple(float(v) for v in self.x)
        y = tuple(float(v) for v in self.y)
        if len(x) != len(y):
            raise ValueError(f"series {self.name!r}: x has {len(x)} values, y has {len(y)}")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)


@dataclass(frozen=True)
class PlotSpec:
    """An XY plot as stored in a ``application/vnd.ots.plot+json`` attachment."""

    series: tuple[SeriesData, ...]
    title: str = ""
    x_label: str = ""
    x_units: str = ""
    y_label: str = ""
    y_units: str = ""
    log_y: bool = False

    def svg(self) -> str:
        """The plot drawn by `xy_plot`."""
        return xy_plot(
            self.series,
            title=self.title,
            x_label=self.x_label,
            x_units=self.x_units,
            y_label=self.y_label,
            y_units=self.y_units,
            log_y=self.log_y,
        )

    def to_json(self) -> dict[str, object]:
        """The JSON payload (schema ``ots.plot/1``); NaN and ±inf are written as null."""
        return {
            "schema": PLOT_SCHEMA,
            "title": self.title,
            "x_label": self.x_label,
            "x_units": self.x_units,
            "y_label": self.y_label,
            "y_units": self.y_units,
            "log_y": self.log_y,
            "series": [
                {"name": s.name, "style": s.style, "x": _json_numbers(s.x), "y": _json_numbers(s.y)}
                for s in self.series
            ],
        }

    @classmethod
    def from_json(cls, obj: object) -> PlotSpec:
        """Parse a payload written by :meth:`to_json`; raises ValueError with a readable reason."""
        if not isinstance(obj, dict):
            raise ValueError("expected a JSON object")
        raw_series = obj.get("series")
        if not isinstance(raw_series, list):
            raise ValueError("'series' should be a list")
        series = []
        for k, s in enumerate(raw_series):
            if not isinstance(s, dict):
                raise ValueError(f"series {k} should be an object")
            style = s.get("style", "line")
            if style not in _STYLES:
                raise ValueError(f"series {k}: unknown style {style!r}")
            series.append(
                Series(
                    _text(s.get("name", f"series {k + 1}")),
                    _numbers(s.get("x"), f"series {k} 'x'"),
                    _numbers(s.get("y"), f"series {k} 'y'"),
                    style,
                )
            )
        return cls(
            series=tuple(series),
            title=_text(obj.get("title", "")),
            x_label=_text(obj.get("x_label", "")),
            x_units=_text(obj.get("x_units", "")),
            y_label=_text(obj.get("y_label", "")),
            y_units=_text(obj.get("y_units", "")),
            log_y=obj.get("log_y") is True,
        )


def _json_numbers(values: Sequence[float]) -> list[float | None]:
    return [float(f"{v:.9g}") if math.isfinite(v) else None for v in values]


def _text(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _numbers(raw: object, what: str) -> list[float]:
    if not isinstance(raw, list):
        raise ValueError(f"{what} should be a list of numbers")
    out: list[float] = []
    for v in raw:
        if v is None:
            out.append(math.nan)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out.append(float(v))
        else:
            raise ValueError(f"{what} holds {v!r}, not a number")
    return out


def _axis_title(label: str, units: str) -> str:
    return f"{label} ({units})" if label and units else (label or units)


def _log_label(exponent: int) -> str:
    return "1" if exponent == 0 else f"1e{exponent}".replace("-", "−")


def _decimate(points: list[tuple[float, float]], px: int) -> list[tuple[float, float]]:
    """Min/max per pixel column, in order (points are (pixel x, pixel y)); keeps spikes, shape and ends."""
    if len(points) <= 4 * px:
        return points
    out: list[tuple[float, float]] = []
    col = -1
    first = lo = hi = last = points[0]
    for p in points:
        c = int(p[0])
        if c != col:
            if col >= 0:
                out.extend(_column(first, lo, hi, last))
            col, first, lo, hi = c, p, p, p
        elif p[1] < lo[1]:
            lo = p
        elif p[1] > hi[1]:
            hi = p
        last = p
    out.extend(_column(first, lo, hi, last))
    return out


def _column(
    first: tuple[float, float], lo: tuple[float, float], hi: tuple[float, float], last: tuple[float, float]
) -> list[tuple[float, float]]:
    out = [first]
    for p in (lo, hi, last) if lo[0] <= hi[0] else (hi, lo, last):
        if p is not out[-1]:
            out.append(p)
    return out


def xy_plot(
    series: Sequence[SeriesData],
    *,
    title: str = "",
    x_label: str = "",
    x_units: str = "",
    y_label: str = "",
    y_units: str = "",
    log_y: bool = False,
    width: int = 640,
    height: int = 300,
) -> str:
    """An SVG plot of several (x, y) series with linear x and linear or logarithmic y.

    Limit series are dashed red lines; a limit series of one point is a horizontal line across the plot.
    With ``log_y`` the axis runs in whole decades; values ≤ 0 (FER = 0) cannot be placed on it and are
    drawn on the bottom edge as hollow markers, one decade below the smallest positive value. Series of
    many points are reduced to min/max per pixel column for drawing (the stored data is untouched).
    """
    left, right, top, bottom = 72, 16, 30 if title else 12, 46
    pw, ph = width - left - right, height - top - bottom
    parts = _svg_open("plot xy", width, height, title, left + pw / 2)
    frame = f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>'
    finite = [(s, x, y) for s in series for x, y in zip(s.x, s.y, strict=True) if math.isfinite(x) and math.isfinite(y)]
    ys = [y for _, _, y in finite]
    # a one-point limit is a horizontal line: its x does not widen the axis
    xs = [x for s, x, _ in finite if not (s.style == "limit" and len(s.x) == 1)] or [x for _, x, _ in finite]
    if not xs:
        parts.append(frame)
        parts.append(f'<text x="{left + pw / 2:.1f}" y="{top + ph / 2:.1f}" text-anchor="middle">no data</text>')
        parts.append("</svg>")
        return "".join(parts)

    x_ticks = nice_ticks(min(xs), max(xs))
    x0, x1 = x_ticks[0], x_ticks[-1]
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    floor_value: float | None = None
    if log_y:
        positive = [y for y in ys if y > 0]
        if positive:
            e0, e1 = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
        else:
            e0, e1 = -3, 0
        if any(y <= 0 for y in ys):
            e0 -= 1
            floor_value = 10.0**e0
        if e1 <= e0:
            e1 = e0 + 1
        stride = max(1, math.ceil((e1 - e0) / 8))
        y_ticks = [10.0**e for e in range(e0, e1 + 1, stride)]
        y_tick_labels = [_log_label(e) for e in range(e0, e1 + 1, stride)]
        ly0, ly1 = float(e0), float(e1)

        def ty(v: float) -> float:
            return math.log10(v) if v > 0 else ly0

    else:
        y_ticks = nice_ticks(min(ys), max(ys))
        y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
        y_tick_labels = [_tick_label(t, y_step) for t in y_ticks]
        ly0, ly1 = y_ticks[0], y_ticks[-1]

        def ty(v: float) -> float:
            return v

    def px(x: float) -> float:
        return left + pw * (x - x0) / (x1 - x0)

    def py(v: float) -> float:
        return top + ph * (1 - (ty(v) - ly0) / (ly1 - ly0))

    parts += _grid(
        left, top, pw, ph,
        [(py(t), label) for t, label in zip(y_ticks, y_tick_labels, strict=True)],
        [(px(t), _tick_label(t, x_step)) for t in x_ticks],
    )  # fmt: skip
    parts.append(frame)
    if not log_y and ly0 < 0 < ly1:
        parts.append(f'<line x1="{left}" y1="{py(0):.1f}" x2="{left + pw}" y2="{py(0):.1f}" stroke="#888"/>')
    x_axis = _axis_title(x_label, x_units)
    if x_axis:
        parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 8}" text-anchor="middle">{escape(x_axis)}</text>')
    y_axis = _axis_title(y_label, y_units)
    if y_axis:
        cx, cy = 14, top + ph / 2
        parts.append(
            f'<text x="{cx}" y="{cy:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 {cx} {cy:.1f})">{escape(y_axis)}</text>'
        )

    legend: list[tuple[str, str, str]] = []
    colour_index = 0
    for s in series:
        if s.style == "limit":
            colour = _LIMIT_COLOUR
        else:
            colour = _PALETTE[colour_index % len(_PALETTE)]
            colour_index += 1
        legend.append((s.name, s.style, colour))
        name = escape(s.name)
        if s.style == "limit" and len(s.x) == 1:
            if math.isfinite(s.y[0]) and (s.y[0] > 0 or not log_y):
                y = py(s.y[0])
                parts.append(
                    f'<line class="limit" x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="{colour}" '
                    f'stroke-width="1.3" stroke-dasharray="6 4"><title>{name}</title></line>'
                )
            continue
        if s.style == "markers":
            for x, v in zip(s.x, s.y, strict=True):
                if not (math.isfinite(x) and math.isfinite(v)):
                    continue
                hollow = log_y and v <= 0
                tip = escape(f"{s.name}: x = {x:g}, y = {v:g}")
                parts.append(
                    f'<circle cx="{px(x):.1f}" cy="{py(v):.1f}" r="4" fill="{"none" if hollow else colour}" '
                    f'stroke="{colour}" stroke-width="1.5"><title>{tip}</title></circle>'
                )
            continue
        segments: list[list[tuple[float, float]]] = [[]]
        floored: list[tuple[float, float]] = []
        for x, v in zip(s.x, s.y, strict=True):
            if math.isfinite(x) and math.isfinite(v):
                point = (px(x), py(v))
                segments[-1].append(point)
                if log_y and v <= 0:
                    floored.append(point)
            elif segments[-1]:
                segments.append([])
        dash = ' stroke-dasharray="6 4"' if s.style == "limit" else ""
        for seg in segments:
            if len(seg) == 1:
                parts.append(f'<circle cx="{seg[0][0]:.1f}" cy="{seg[0][1]:.1f}" r="1.5" fill="{colour}"/>')
            elif seg:
                pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in _decimate(seg, pw))
                parts.append(
                    f'<polyline class="{s.style}" fill="none" stroke="{colour}" stroke-width="1.3"{dash} '
                    f'stroke-linejoin="round" points="{pts}"><title>{name}</title></polyline>'
                )
        if len(floored) <= 200:
            parts.extend(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="none" stroke="{colour}"/>' for a, b in floored)
    if floor_value is not None:
        parts.append(
            f'<text x="{left + 4}" y="{top + ph - 4}" font-size="9" fill="#666">values ≤ 0 drawn at '
            f"{escape(_log_label(int(ly0)))}</text>"
        )
    # legend, top right inside the frame
    shown = legend[:8]
    box_w = min(pw // 2, 28 + 7 * max((len(n) for n, _, _ in shown), default=0))
    bx = left + pw - box_w - 6
    parts.append(
        f'<rect x="{bx}" y="{top + 6}" width="{box_w}" height="{14 * len(shown) + 6}" fill="#fff" '
        'fill-opacity="0.85" stroke="#bbb"/>'
    )
    for k, (name, style, colour) in enumerate(shown):
        y = top + 18 + 14 * k
        if style == "markers":
            parts.append(f'<circle cx="{bx + 11}" cy="{y - 4}" r="3.5" fill="{colour}"/>')
        else:
            dash = ' stroke-dasharray="6 4"' if style == "limit" else ""
            parts.append(
                f'<line x1="{bx + 4}" y1="{y - 4}" x2="{bx + 18}" y2="{y - 4}" stroke="{colour}" '
                f'stroke-width="1.5"{dash}/>'
            )
        parts.append(f'<text x="{bx + 22}" y="{y}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
