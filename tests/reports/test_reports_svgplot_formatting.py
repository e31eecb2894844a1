"""reports.svgplot and reports.formatting: the small pure functions the report is drawn and written with."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from reports.formatting import fmt_duration, fmt_margin, fmt_number, fmt_pct, fmt_time, fmt_value
from reports.svgplot import line_plot, nice_ticks, reduce_min_max

SVG = "{http://www.w3.org/2000/svg}"


def _texts(svg: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text")]


def test_line_plot_is_well_formed_svg_with_axes_and_labels() -> None:
    values = [0.0, 0.0, 2.6, 1.8, 1.0, 0.6, 0.4, 0.35, 0.35, 0.35]
    svg = line_plot(values, 0.01, title="Power-on current", y_label="current", units="A")

    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag == f"{SVG}svg"
    texts = _texts(svg)
    assert "Power-on current" in texts
    assert "current (A)" in texts
    assert "time (ms)" in texts
    assert {"0.0", "1.0", "2.0", "3.0"} <= set(texts)  # y ticks from 0 A, 1-2-5 steps
    (line,) = root.iter(f"{SVG}polyline")
    assert len(line.attrib["points"].split()) == len(values)


def test_line_plot_escapes_text() -> None:
    svg = line_plot([1.0, 2.0], 1.0, title='<script>alert("x")</script>', units="A&B")
    assert "<script" not in svg
    assert '<script>alert("x")</script>' in _texts(svg)


def test_line_plot_breaks_the_line_at_missing_samples() -> None:
    svg = line_plot([1.0, 2.0, math.nan, 2.0, 1.0, math.inf, 3.0], 0.5)
    root = ET.fromstring(svg)
    assert len(list(root.iter(f"{SVG}polyline"))) == 2
    assert len(list(root.iter(f"{SVG}circle"))) == 1  # the lone sample after inf


def test_line_plot_of_nothing_says_so() -> None:
    assert "no samples" in _texts(line_plot([], 1.0))
    assert "no samples" in _texts(line_plot([math.nan], 1.0))


def test_line_plot_rejects_a_bad_interval() -> None:
    with pytest.raises(ValueError, match="interval_s"):
        line_plot([1.0], 0.0)


def test_long_traces_are_reduced_but_keep_the_spike() -> None:
    values = [0.3] * 100_000
    values[54_321] = 4.2
    reduced = reduce_min_max(values, 1000)
    assert len(reduced) <= 1000
    assert (54_321, 4.2) in reduced
    assert [i for i, _ in reduced] == sorted(i for i, _ in reduced)
    svg = line_plot(values, 1e-5, max_points=1000)
    assert _texts(svg)[:6] == ["0", "1", "2", "3", "4", "5"]  # the y axis reaches past the spike


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0, 1, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (0, 2.65, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]),
        (0, 102, [0.0, 20.0, 40.0, 60.0, 80.0, 100.0, 120.0]),
        (-0.3, 0.3, [-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3]),
    ],
)
def test_nice_ticks(lo: float, hi: float, expected: list[float]) -> None:
    assert nice_ticks(lo, hi) == expected


def test_nice_ticks_of_a_flat_range() -> None:
    ticks = nice_ticks(5.0, 5.0)
    assert ticks[0] < 5.0 < ticks[-1]


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (1.5, "1.500"),
        (1.38, "1.380"),
        (1000.0, "1000"),
        (0.000123456, "0.0001235"),
        (123456.0, "1.235e5"),
        (-0.3, "−0.3000"),
        (0.0, "0.000"),
        (-0.0, "0.000"),
        (math.nan, "NaN"),
        (None, ""),
    ],
)
def test_fmt_number(x: float | None, text: str) -> None:
    assert fmt_number(x) == text


def test_fmt_value_keeps_integers_and_text() -> None:
    assert fmt_value(3) == "3"
    assert fmt_value(True) == "true"
    assert fmt_value("v2.1.0") == "v2.1.0"
    assert fmt_value(None) == ""
    assert fmt_value(3.14159) == "3.142"


def test_fmt_margin_and_pct_carry_a_sign() -> None:
    assert fmt_margin(0.12) == "+0.1200"
    assert fmt_margin(-0.035) == "−0.03500"
    assert fmt_margin(0.0) == "+0.000"
    assert fmt_pct(12.0) == "+12.0 %"
    assert fmt_pct(-100.0) == "−100.0 %"
    assert fmt_pct(None) == ""


def test_fmt_time_and_duration() -> None:
    assert fmt_time("2025-11-25T18:41:03.123456+00:00") == "2025-11-25 18:41:03 UTC"
    assert fmt_time("2025-11-25T20:41:03+02:00") == "2025-11-25 18:41:03 UTC"
    assert fmt_time("yesterday") == "yesterday"
    assert fmt_duration(0.25) == "250 ms"
    assert fmt_duration(1.25) == "1.25 s"
    assert fmt_duration(42.04) == "42.0 s"
    assert fmt_duration(125) == "2 min 05 s"
    assert fmt_duration(3725) == "1 h 02 min"
    assert fmt_duration(None) == ""
    assert re.fullmatch(r"\d+(\.\d+)? ms", fmt_duration(0.0005))
