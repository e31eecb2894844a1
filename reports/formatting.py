"""How numbers, times and durations are written in every report (HTML now; PDF, VCRM later).

* measured values and limits: 4 significant digits, trailing zeros kept (``1.500``), integers as integers;
* margins: the same, with an explicit sign (``+0.1200``, ``−0.0350``);
* margin %: one decimal with sign (``+12.0 %``);
* times: ``2025-11-25 18:41:03 UTC``; durations: ``250 ms`` / ``12.3 s`` / ``2 min 05 s`` / ``1 h 02 min``.

A missing value is an empty string: templates decide how to show a blank.
"""

from __future__ import annotations

import math

from reports.run_record import MeasuredValue, parse_time

__all__ = ["fmt_duration", "fmt_margin", "fmt_number", "fmt_pct", "fmt_time", "fmt_value"]

_MINUS = "−"  # U+2212, reads better than a hyphen in tables


def fmt_number(x: float | None, digits: int = 4, *, sign: bool = False) -> str:
    """``x`` with ``digits`` significant digits; ``""`` for None."""
    if x is None:
        return ""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return ("+" if sign and x > 0 else "") + ("∞" if x > 0 else _MINUS + "∞")
    if x == 0:
        x = 0.0  # no "-0.000"
    text = f"{x:{'+' if sign else ''}#.{digits}g}"
    mantissa, _, exponent = text.partition("e")
    mantissa = mantissa.rstrip(".")
    if exponent:
        mantissa += "e" + str(int(exponent))
    return mantissa.replace("-", _MINUS)


def fmt_value(value: MeasuredValue) -> str:
    """A measured value as written in a table: numbers to 4 significant digits, others as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value).replace("-", _MINUS)
    if isinstance(value, float):
        return fmt_number(value)
    return value


def fmt_margin(margin: float | None) -> str:
    return fmt_number(margin, sign=True)


def fmt_pct(pct: float | None) -> str:
    if pct is None:
        return ""
    if not math.isfinite(pct):
        return fmt_number(pct, sign=True) + " %"
    return f"{pct:+.1f} %".replace("-", _MINUS)


def fmt_time(text: str | None) -> str:
    """A journal time as ``YYYY-MM-DD HH:MM:SS UTC``; unreadable text is shown as it is."""
    t = parse_time(text)
    if t is None:
        return text or ""
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    if seconds == 0:
        return "0 s"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    if seconds < 60:
        return f"{seconds:.3g} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
