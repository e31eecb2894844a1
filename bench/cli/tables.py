"""The text tables of `bench trend` and `bench compare`: rows of strings from the records of reports.trends.

bench/cli/results.py puts these rows into rich tables; :func:`format_table` makes plain text of them (for logs
and e-mails, where rich is not available). Imported by the commands only (it pulls in the report modules).
"""

from __future__ import annotations

from collections.abc import Sequence

from reports.formatting import fmt_number
from reports.trends import Comparison, Trend

__all__ = ["comparison_table", "drift_lines", "format_table", "trend_table"]


def _num(x: float | None, *, sign: bool = False) -> str:
    return fmt_number(x, sign=sign) if x is not None else ""


def trend_table(t: Trend) -> tuple[list[str], list[list[str]]]:
    """Headers and rows: one row per point; flags in the last column ("!" marks a regression)."""
    by_run: dict[str, list[str]] = {}
    for f in t.flags:
        by_run.setdefault(f.run_id, []).append(("! " if f.regression else "") + f"{f.kind}: {f.message}")
    headers = ["#", "run", "start (UTC)", "value", "low", "high", "verdict", "flags"]
    rows = []
    for i, p in enumerate(t.points, 1):
        run = p.run_id + (" (baseline)" if t.baseline is not None and p.run_id == t.baseline.run_id else "")
        if p.status != "complete":
            run += " (incomplete)"
        when = p.time.strftime("%Y-%m-%d %H:%M") if p.time else ""
        rows.append(
            [
                str(i),
                run,
                when,
                _num(p.value),
                _num(p.low),
                _num(p.high),
                p.verdict,
                "; ".join(by_run.get(p.run_id, [])),
            ]
        )
    return headers, rows


def drift_lines(t: Trend) -> list[str]:
    """The drift and the regression summary as sentences."""
    units = f" {t.units}" if t.units else ""
    d = t.drift
    lines = []
    if d.slope_per_run is None:
        lines.append("drift: not enough runs to fit a line")
    else:
        text = f"drift: {_num(d.slope_per_run, sign=True)}{units} per run"
        if d.slope_per_day is not None:
            text += f", {_num(d.slope_per_day, sign=True)}{units} per day"
        lines.append(text)
    if d.crossing is not None:
        c = d.crossing
        when = f" (about {c.date:%Y-%m-%d})" if c.date else ""
        if c.runs_ahead == 0:
            lines.append(f"the fitted line is already beyond the {c.limit} limit {_num(c.limit_value)}{units}")
        else:
            lines.append(
                f"projected to cross the {c.limit} limit {_num(c.limit_value)}{units} in {c.runs_ahead:.1f} runs, "
                f"at run #{c.at_run}{when}"
            )
    base = t.baseline.run_id if t.baseline else "none"
    n = len({f.run_id for f in t.regressions})
    lines.append(
        f"baseline {base}; rule: verdict worse, or moved > {t.k:g}×u or > {t.span_pct:g} % of span towards a limit: "
        + (f"regression flagged in {n} run(s)" if n else "no regression")
    )
    return lines


def comparison_table(c: Comparison, *, changed_only: bool = False) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the measurement comparison; ``changed_only`` keeps verdict changes and one-sided rows."""
    headers = ["measurement", "units", c.run_a, c.run_b, "delta", "% span", "verdict"]
    rows = []
    for d in c.measurements:
        if changed_only and not d.verdict_changed:
            continue
        va = _num(d.a) if isinstance(d.a, float) else (d.a or "")
        vb = _num(d.b) if isinstance(d.b, float) else (d.b or "")
        verdict = d.verdict_a or "—" if not d.verdict_changed else f"{d.verdict_a or '—'} → {d.verdict_b or '—'}"
        pct = f"{d.delta_pct_span:+.1f} %" if d.delta_pct_span is not None else ""
        rows.append([d.name, d.units, va, vb, _num(d.delta, sign=True), pct, verdict])
    return headers, rows


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain-text table with aligned columns."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)
    return "\n".join(lines)
