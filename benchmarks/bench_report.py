"""Report benchmarks: HTML and PDF of a run with 10,000 measurements, against baselines measured in this run.

    python benchmarks/bench_report.py               # 10,000 measurements + a normal run
    python benchmarks/bench_report.py --n 2000      # another size
    python benchmarks/bench_report.py --engine weasyprint   # one PDF engine (default: every one installed)
    python benchmarks/bench_report.py --chromium    # also print the full HTML with headless Chromium, for comparison

Targets (issue "Qualification evidence"): 10,000 measurements → HTML ≤ 2 s, PDF ≤ 20 s. At the end of a run the
bench writes both from one reading of the journal and one view (reports.report_files.write_html_and_pdf); the
last rows time that against writing them one after the other, each reading the journal and building its view.
Baselines, same machine, same moment: reading the journal alone (reports.run_record.read_journal), and a bare
Jinja2 render of the same rows (one <tr> per measurement, no view building, no formatting).

The synthetic run follows docs/contracts.md §4: run_start, instrument, limits (pointing at this project's
test_plans/limits.yaml, so the VCRM is built from test_plans/requirements.yaml), dut_identity, 100 tests of 100
measurements (1 % failing, some marginal), a power-on current trace, safe_state, run_end.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jinja2  # noqa: E402

from reports.html import TRACE_MIME, write_html_report  # noqa: E402
from reports.pdf import PdfEngineMissing, available_engine, write_pdf_report  # noqa: E402
from reports.report_files import write_html_and_pdf  # noqa: E402
from reports.run_record import read_journal  # noqa: E402

HTML_TARGET_S = 2.0
PDF_TARGET_S = 20.0
T0 = "2026-11-25T18:00:00.000000+00:00"


def build_run(run_dir: Path, n_measurements: int, per_test: int = 100) -> Path:
    """Write a synthetic journal with ``n_measurements`` measurements; return the journal path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    out: list[dict[str, Any]] = [
        {
            "kind": "run_start",
            "run_id": f"bench-{n_measurements}",
            "time": T0,
            "campaign": "benchmark",
            "model_level": "EM",
            "operator": "bench",
            "host": "ci",
            "bench": "twin-bench",
            "git_revision": "0000000",
            "software_version": "0.1.0",
            "bench_config": "bench/configs/twin.yaml",
            "config_hash": "0" * 64,
            "dut": {"name": "OTS-SAT", "part_number": "OTS-SAT-12U", "model_level": "EM", "serial": "OTS-EM-001"},
            "argv": ["bench", "run", "benchmark"],
        },
        {
            "kind": "instrument",
            "role": "psu",
            "driver": "keysight-e36312a",
            "resource": "TCPIP0::127.0.0.1::5025::SOCKET",
            "identity": {"maker": "Keysight", "model": "E36312A", "serial": "MY001", "firmware": "2.1.0"},
            "calibration": {"certificate": "CAL-1", "due": "2027-06-30", "status": "valid"},
        },
        {"kind": "limits", "path": str(ROOT / "test_plans" / "limits.yaml"), "model_level": "EM", "limits": {}},
        {"kind": "dut_identity", "node": "OBC", "firmware": "ots-obc 1.4.2", "hardware": "rev C", "serial": "42"},
    ]
    trace = {"interval_s": 5e-5, "units": "A", "title": "Main bus current at power-on"}
    trace["values"] = [round(0.29 + 2.4 * math.exp(-k / 40.0), 4) for k in range(2000)]
    (run_dir / "inrush.json").write_text(json.dumps(trace), encoding="utf-8")
    reqs = ["OTS-EPS-010", "OTS-EPS-011", "OTS-EPS-020", "OTS-EPS-021", "OTS-EPS-030", "OTS-EPS-031"]
    n_tests = max(1, math.ceil(n_measurements / per_test))
    left = n_measurements
    for n in range(n_tests):
        test_id = f"test_plans/eps/test_eps_sweep.py::test_sweep_point[{n}]"
        req = reqs[n % len(reqs)]
        out.append({"kind": "test_start", "test_id": test_id, "name": f"test_sweep_point[{n}]", "time": T0,
                    "requirements": [req], "subsystem": "EPS", "doc": "Bus current at one sweep point."})  # fmt: skip
        failed = False
        for k in range(min(per_test, left)):
            value = 0.40 + 0.002 * k
            verdict = "fail" if k == 99 and n % 10 == 0 else "marginal" if k == 98 else "pass"
            failed |= verdict == "fail"
            out.append({"kind": "measurement", "test_id": test_id, "name": f"EPS.SWEEP_CURRENT_{k:03d}",
                        "value": value, "units": "A", "low": 0.35, "high": 0.65, "verdict": verdict,
                        "margin": round(min(value - 0.35, 0.65 - value), 6), "margin_pct": 12.5,
                        "requirements": [req], "time": T0, "description": ""})  # fmt: skip
        left -= min(per_test, left)
        if n == 0:
            out.append({"kind": "attachment", "test_id": test_id, "name": "power-on current", "path": "inrush.json",
                        "mime": TRACE_MIME})  # fmt: skip
        out.append({"kind": "test_end", "test_id": test_id, "time": T0, "outcome": "failed" if failed else "passed",
                    "duration": 1.5, "message": "1 measurement outside limits" if failed else ""})  # fmt: skip
    out.append({"kind": "safe_state", "time": T0, "reason": "session end", "results": {"psu": "ok"}})
    any_failed = any(x["kind"] == "test_end" and x["outcome"] == "failed" for x in out)
    out.append({"kind": "run_end", "time": "2026-11-25T18:30:00+00:00", "exit_status": 1 if any_failed else 0})
    path = run_dir / "journal.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in out), encoding="utf-8")
    return path


BARE = jinja2.Environment(autoescape=True).from_string(
    "<table>{% for m in rows %}<tr><td>{{ m.name }}</td><td>{{ m.value }}</td><td>{{ m.units }}</td><td>{{ m.low }}"
    "</td><td>{{ m.high }}</td><td>{{ m.margin }}</td><td>{{ m.verdict }}</td></tr>{% endfor %}</table>"
)


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def chromium_pdf(html: Path) -> float | None:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as profile:
        argv = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--no-pdf-header-footer",
                f"--print-to-pdf={html.with_name('chromium.pdf')}", html.as_uri()]  # fmt: skip
        t = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        return time.perf_counter() - t


def _usable(engine: str) -> bool:
    try:
        available_engine(engine)  # type: ignore[arg-type]
    except PdfEngineMissing:
        return False
    return True


def pages(pdf: Path) -> str:
    if shutil.which("pdfinfo") is None:
        return "?"
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    return next((line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")), "?")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="measurements in the big run (default 10000)")
    parser.add_argument("--engine", choices=("all", "chromium", "weasyprint", "auto"), default="all",
                        help="PDF engine(s) to time (default: every one installed)")  # fmt: skip
    parser.add_argument("--chromium", action="store_true", help="also time Chromium on the full (uncondensed) HTML")
    parser.add_argument("--keep", type=Path, default=None, help="write the runs here and keep them")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    big, small = base / f"run-{args.n}", base / "run-normal"
    journal = build_run(big, args.n)
    build_run(small, 40, per_test=4)

    t_read = best(lambda: read_journal(journal), 3)
    rows = list(read_journal(journal).measurements())
    t_bare = best(lambda: BARE.render(rows=rows), 3)
    write_html_report(big)  # warm: template compiled, modules imported
    t_html = best(lambda: write_html_report(big), 3)
    engines = [e for e in ("chromium", "weasyprint") if _usable(e)] if args.engine == "all" else [args.engine]
    t_pdf: dict[str, tuple[float, float, str, str]] = {}
    for engine in engines:
        t_big = best(lambda e=engine: write_pdf_report(big, engine=e), 1)  # type: ignore[misc]
        p_big = pages(big / "report.pdf")
        t_small = best(lambda e=engine: write_pdf_report(small, engine=e), 1)  # type: ignore[misc]
        t_pdf[engine] = (t_big, t_small, p_big, pages(small / "report.pdf"))

    n = args.n
    print(f"report benchmark — {n:,} measurements in {math.ceil(n / 100)} tests (runs in {base})")
    print(f"  baseline  read_journal alone                  {t_read:7.3f} s")
    print(f"  baseline  bare Jinja2 render of the {len(rows):,} rows   {t_bare:7.3f} s")
    print(f"  HTML      write_html_report                   {t_html:7.3f} s   "
          f"{t_html / HTML_TARGET_S:5.2f} × target {HTML_TARGET_S:g} s   {t_html / t_read:5.1f} × read_journal  "
          f"{(big / 'report.html').stat().st_size / 1e6:.1f} MB")  # fmt: skip
    for engine, (t_big, t_small, p_big, p_small) in t_pdf.items():
        print(
            f"  PDF       write_pdf_report, {engine:<10}        {t_big:7.3f} s   "
            f"{t_big / PDF_TARGET_S:5.2f} × target {PDF_TARGET_S:g} s   {t_big / t_html:5.1f} × HTML  {p_big} pages"
        )
        print(f"  PDF       normal run (40 meas.), {engine:<10}   {t_small:7.3f} s   {p_small} pages")  # fmt: skip
    if args.chromium:
        t_chr = chromium_pdf(big / "report.html")
        if t_chr is None:
            print("  Chromium  not installed (apt-get install -y chromium)")
        else:
            print(f"  Chromium  --print-to-pdf of the full HTML       {t_chr:7.3f} s   "
                  f"{t_chr / PDF_TARGET_S:5.2f} × target   {pages(big / 'chromium.pdf')} pages")  # fmt: skip
    if engines:
        engine = engines[0]
        t_both = best(lambda: write_html_and_pdf(big, engine=engine), 1)  # type: ignore[arg-type]
        t_apart = best(lambda: (write_html_report(big), write_pdf_report(big, engine=engine)), 1)  # type: ignore[arg-type]
        print(f"  both      write_html_and_pdf, one view, {engine:<10} {t_both:7.3f} s   "
              f"HTML then PDF each from the journal {t_apart:7.3f} s   saves {t_apart - t_both:6.3f} s")  # fmt: skip
    chosen = available_engine()[0] if _usable("auto") else None
    ok = t_html <= HTML_TARGET_S and chosen is not None and t_pdf.get(chosen, (0.0,))[0] <= PDF_TARGET_S
    print(f"  verdict   (HTML and the engine write_pdf_report picks here: {chosen}) "
          + ("both within target" if ok else "OVER TARGET"))  # fmt: skip
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
