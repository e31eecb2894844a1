"""XY plots (RF spectrum + mask, FER vs level): reports.svgplot.xy_plot, Evidence.plot, inline in report.html."""

from __future__ import annotations

import json
import math
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import allure
import pytest
from journal_builder import JournalBuilder

from bench.journal import Journal
from bench.plotdata import PlotSeries
from fixtures.evidence import Evidence
from reports.html import PLOT_MIME, write_html_report
from reports.svgplot import PlotSpec, xy_plot

SVG_NS = "{http://www.w3.org/2000/svg}"


def _spectrum(n: int = 4096) -> list[PlotSeries]:
    x = [-200 + 400 * i / (n - 1) for i in range(n)]
    y = [-120 + 60 * math.exp(-((xi / 30) ** 2)) + 2 * math.sin(i * 1.7) for i, xi in enumerate(x)]
    mask = PlotSeries("mask", [-200, -50, -25, 25, 50, 200], [-100, -100, -50, -50, -100, -100], "limit")
    return [PlotSeries("PSD", x, y), mask]


def _fer() -> list[PlotSeries]:
    return [
        PlotSeries("FER", [-125, -123, -121, -119, -117], [0.5, 0.1, 0.01, 0.0, 0.0]),
        PlotSeries("FER limit", [0], [1e-2], "limit"),
        PlotSeries("sensitivity", [-121], [0.01], "markers"),
    ]


def test_xy_plot_is_valid_svg_with_series_limits_and_escaped_labels() -> None:
    svg = xy_plot(
        _spectrum(),
        title="Spectrum <TX> & mask",
        x_label="offset",
        x_units="kHz",
        y_label="PSD",
        y_units="dBm/Hz",
    )
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag == f"{SVG_NS}svg"
    texts = [t.text for t in root.iter(f"{SVG_NS}text")]
    assert "Spectrum <TX> & mask" in texts  # escaped in the source, intact once parsed
    assert "offset (kHz)" in texts and "PSD (dBm/Hz)" in texts
    assert "Spectrum &lt;TX&gt; &amp; mask" in svg
    polylines = list(root.iter(f"{SVG_NS}polyline"))
    assert {p.get("class") for p in polylines} == {"line", "limit"}
    limit = next(p for p in polylines if p.get("class") == "limit")
    assert limit.get("stroke-dasharray")
    # decimated for drawing: far fewer vertices than 4096, but the peak survives
    line = next(p for p in polylines if p.get("class") == "line")
    points = [tuple(map(float, pt.split(","))) for pt in (line.get("points") or "").split()]
    assert len(points) < 4096
    assert "mask" in texts and "PSD" in texts  # legend


def test_xy_plot_log_y_handles_zero_and_negative_values() -> None:
    series = [*_fer(), PlotSeries("odd", [-124, -122], [-1.0, math.nan])]
    svg = xy_plot(series, title="FER", x_label="input level", x_units="dBm", y_label="FER", log_y=True)
    root = ET.fromstring(svg)
    texts = [t.text or "" for t in root.iter(f"{SVG_NS}text")]
    assert "1e−2" in texts and "1" in texts
    assert any("values ≤ 0" in t for t in texts)
    limit = [el for el in root.iter(f"{SVG_NS}line") if el.get("class") == "limit"]
    assert len(limit) == 1  # the one-point limit is a horizontal line across the plot
    assert limit[0].get("y1") == limit[0].get("y2")
    # the x axis spans the data (−125…−117 dBm), not the one-point limit's x = 0
    assert "−120" in texts and "0" not in texts
    # all-zero data and no data do not crash
    ET.fromstring(xy_plot([PlotSeries("z", [1, 2], [0, 0])], log_y=True))
    assert "no data" in xy_plot([PlotSeries("e", [], [])])


def test_xy_plot_renders_a_4096_point_spectrum_fast(capsys: pytest.CaptureFixture[str]) -> None:
    series = _spectrum()
    xy_plot(series)
    start = time.process_time()  # CPU time: the work done, which other jobs on a loaded machine do not change
    for _ in range(10):
        xy_plot(series, title="s", x_label="f", x_units="kHz", y_label="PSD", y_units="dB")
    elapsed = (time.process_time() - start) / 10
    with capsys.disabled():
        print(f"\n[reports] xy_plot, 4096-point spectrum + mask: {elapsed * 1000:.1f} ms CPU")
    assert elapsed < 0.05


def test_plot_series_validates() -> None:
    with pytest.raises(ValueError, match="x has 2 values, y has 1"):
        PlotSeries("bad", [1, 2], [1])
    with pytest.raises(ValueError, match="style"):
        PlotSeries("bad", [1], [1], "bars")  # type: ignore[arg-type]


def test_evidence_plot_writes_json_journal_record_and_allure_svg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attached: list[tuple[object, str, object]] = []
    monkeypatch.setattr(
        allure, "attach", lambda body, name, attachment_type: attached.append((body, name, attachment_type))
    )
    journal = Journal(tmp_path / "journal.jsonl")
    evidence = Evidence(tmp_path, "test_plans/rf/test_rx.py::test_sensitivity[UHF]", journal)
    path = evidence.plot(
        "FER vs level",
        _fer(),
        title="Receiver sensitivity",
        x_label="input level",
        x_units="dBm",
        y_label="FER",
        y_units="",
        log_y=True,
    )
    journal.close()

    spec = PlotSpec.from_json(json.loads(path.read_text()))
    assert spec.log_y and spec.title == "Receiver sensitivity" and spec.x_units == "dBm"
    assert [s.name for s in spec.series] == ["FER", "FER limit", "sensitivity"]
    assert spec.series[0].y == (0.5, 0.1, 0.01, 0.0, 0.0) and spec.series[1].style == "limit"
    records = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert records == [
        {
            "kind": "attachment",
            "test_id": "test_plans/rf/test_rx.py::test_sensitivity[UHF]",
            "name": "FER vs level",
            "path": str(path.relative_to(tmp_path)),
            "mime": PLOT_MIME,
            "time": records[0]["time"],
        }
    ]
    assert len(attached) == 1
    body, name, kind = attached[0]
    assert name == "FER vs level" and kind == allure.attachment_type.SVG
    assert isinstance(body, str) and ET.fromstring(body).tag == f"{SVG_NS}svg"


def test_evidence_plot_stores_nan_as_null(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allure, "attach", lambda *a, **k: None)
    evidence = Evidence(tmp_path, "t", None)
    path = evidence.plot(
        "s",
        [PlotSeries("a", [1, 2, 3], [1.0, math.nan, 3.0])],
        title="",
        x_label="",
        x_units="",
        y_label="",
        y_units="",
    )
    assert json.loads(path.read_text())["series"][0]["y"] == [1.0, None, 3.0]


def _write_plot(run_dir: Path, rel: str, spec: PlotSpec) -> None:
    path = run_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec.to_json()), encoding="utf-8")


def test_report_draws_plot_attachments_inline(journal: JournalBuilder) -> None:
    t = "test_plans/rf/test_tx.py::test_spectrum"
    spec = PlotSpec(tuple(_spectrum()), "TX spectrum <UHF>", "offset", "kHz", "PSD", "dBm/Hz")
    _write_plot(journal.run_dir, "attachments/t/spectrum.json", spec)
    journal.run_start().test_start(t).measurement(t, "obw", 12.5, units="kHz", low=None, high=25.0)
    journal.add("attachment", test_id=t, name="TX spectrum", path="attachments/t/spectrum.json", mime=PLOT_MIME)
    journal.add("attachment", test_id=t, name="missing", path="attachments/t/nope.json", mime=PLOT_MIME)
    journal.test_end(t).run_end(0)
    journal.write()

    html = write_html_report(journal.run_dir).read_text(encoding="utf-8")

    article = re.search(r'<article class="test" id="test-1">.*?</article>', html, re.S)
    assert article
    svg = re.search(r'<svg [^>]*class="plot xy".*?</svg>', article.group(0), re.S)
    assert svg, "plot not drawn inline"
    ET.fromstring(svg.group(0))
    assert "TX spectrum &lt;UHF&gt;" in svg.group(0) and "offset (kHz)" in svg.group(0)
    assert "PSD: 4096 points; mask: limit" in article.group(0)
    assert '<a href="attachments/t/spectrum.json">TX spectrum</a>' in html
    assert "plot could not be drawn: attachments/t/nope.json not found in the run directory" in html


def test_report_notes_an_unreadable_plot(journal: JournalBuilder) -> None:
    t = "t::rx"
    journal.run_dir.mkdir(parents=True)
    (journal.run_dir / "bad.json").write_text('{"series": [{"name": "a", "x": [1, "two"], "y": [1, 2]}]}')
    (journal.run_dir / "short.json").write_text('{"series": [{"name": "a", "x": [1, 2], "y": [1]}]}')
    journal.run_start().test_start(t)
    journal.add("attachment", test_id=t, name="bad", path="bad.json", mime=PLOT_MIME)
    journal.add("attachment", test_id=t, name="short", path="short.json", mime=PLOT_MIME)
    journal.test_end(t).run_end(0)
    journal.write()

    html = write_html_report(journal.run_dir).read_text(encoding="utf-8")

    assert "<svg" not in html
    assert "bad.json: series 0 &#39;x&#39; holds &#39;two&#39;, not a number" in html
    assert "x has 2 values, y has 1" in html
