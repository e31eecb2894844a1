"""Which JSON codec the journal uses: orjson or msgspec, timed on the journal's own records, in one process.

    python benchmarks/bench_codec.py [--n 100000] [--repeat 5]

The journal (docs/contracts.md §4) is written once per measurement on the hot path of a test (budget: 10 µs per
recorded measurement, benchmarks/bench_foundation.py `measure`) and read back whole by every report and every
results-DB import (budget: 100 000 measurements/s, benchmarks/bench_results.py). So the codec is judged on:

* encode  one measurement record (the writer's hot path) and one ordinary record (test_start);
* decode  a journal's measurement lines into the reader's typed record — for orjson: ``orjson.loads`` to a dict,
          then the record built from it (type checks as the reader must do them); for msgspec: one typed
          ``Decoder(Measurement).decode`` (validation included) — and into plain dicts (the other kinds);

each against the standard library (``json.dumps`` / ``json.loads``) measured in the same run. Best of
``--repeat`` runs; ratios are what count on a shared machine. Needs both candidates installed
(``pip install '.[benchmarks]'``). The journal uses the winner (msgspec: bench/journal.py, reports/run_record.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, Literal

import msgspec
import orjson

MEASUREMENT: dict[str, Any] = {
    "kind": "measurement",
    "test_id": "test_plans/eps/test_eps_power.py::test_idle_current[nominal]",
    "name": "EPS.IDLE_CURRENT",
    "value": 0.51234,
    "units": "A",
    "low": 0.35,
    "high": 0.65,
    "verdict": "pass",
    "margin": 0.13766,
    "margin_pct": 45.886666666666667,
    "requirements": ["OTS-EPS-020"],
    "time": "2026-11-25T18:00:01.123456+00:00",
}
TEST_START: dict[str, Any] = {
    "kind": "test_start",
    "test_id": MEASUREMENT["test_id"],
    "name": "test_idle_current[nominal]",
    "requirements": ["OTS-EPS-020"],
    "subsystem": "EPS",
    "doc": "Idle current of the main bus.",
    "time": "2026-11-25T18:00:01.000000+00:00",
}

Verdict = Literal["pass", "marginal", "fail"]


class MeasurementStruct(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """The reader's record as a msgspec Struct (what reports/run_record.py decodes into)."""

    test_id: str
    name: str
    value: float | int | bool | str | None
    units: str
    low: float | None
    high: float | None
    verdict: Verdict
    margin: float | None
    margin_pct: float | None
    requirements: tuple[str, ...]
    time: str
    description: str = ""
    uncertainty: float | None = None
    extra: dict[str, Any] = {}


class MeasurementLine(msgspec.Struct, tag_field="kind", tag="measurement", omit_defaults=True):
    """The writer's record as a msgspec Struct (fields in the contract's order, kind first)."""

    test_id: str
    name: str
    value: float | str
    units: str
    low: float | None
    high: float | None
    verdict: str
    margin: float | None
    margin_pct: float | None
    requirements: tuple[str, ...]
    time: str
    description: str = ""
    uncertainty: float | None = None
    extra: dict[str, Any] | None = None


def from_dict(obj: dict[str, Any]) -> MeasurementStruct:
    """orjson's path: a dict, then the typed record with the checks msgspec does while decoding."""
    value, low, high = obj["value"], obj.get("low"), obj.get("high")
    verdict, margin, pct = obj["verdict"], obj.get("margin"), obj.get("margin_pct")
    reqs = obj["requirements"]
    if not (
        type(obj["test_id"]) is str
        and type(obj["name"]) is str
        and (value is None or type(value) in (float, int, bool, str))
        and type(obj["units"]) is str
        and (low is None or type(low) is float)
        and (high is None or type(high) is float)
        and verdict in ("pass", "marginal", "fail")
        and (margin is None or type(margin) is float)
        and (pct is None or type(pct) is float)
        and type(reqs) is list
        and all(type(r) is str for r in reqs)
        and type(obj["time"]) is str
    ):
        raise ValueError("bad record")
    return MeasurementStruct(
        obj["test_id"], obj["name"], value, obj["units"], low, high, verdict, margin, pct, tuple(reqs), obj["time"]
    )


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="records per timing (default 100000)")
    parser.add_argument("--repeat", type=int, default=5, help="best of N (default 5)")
    args = parser.parse_args()
    n, repeat = args.n, args.repeat

    m, ts = MEASUREMENT, TEST_START
    fields = tuple(v for k, v in m.items() if k != "kind")
    std_enc = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    ms_enc = msgspec.json.Encoder().encode
    encode: dict[str, dict[str, Callable[[], object]]] = {
        "measurement": {
            "json.dumps (baseline)": lambda: [std_enc(m).encode() for _ in range(n)],
            "orjson.dumps(dict)": lambda: [orjson.dumps(m) for _ in range(n)],
            "msgspec encode(dict)": lambda: [ms_enc(m) for _ in range(n)],
            "msgspec encode(Struct)": lambda: [ms_enc(MeasurementLine(*fields)) for _ in range(n)],
        },
        "test_start": {
            "json.dumps (baseline)": lambda: [std_enc(ts).encode() for _ in range(n)],
            "orjson.dumps(dict)": lambda: [orjson.dumps(ts) for _ in range(n)],
            "msgspec encode(dict)": lambda: [ms_enc(ts) for _ in range(n)],
        },
    }
    line = orjson.dumps(m)
    assert json.loads(line) == json.loads(ms_enc(MeasurementLine(*fields))) == m
    lines = [line] * n
    typed = msgspec.json.Decoder(MeasurementStruct).decode
    generic = msgspec.json.Decoder().decode
    assert typed(line) == from_dict(orjson.loads(line))
    decode: dict[str, dict[str, Callable[[], object]]] = {
        "measurement → typed record": {
            "json.loads + build (baseline)": lambda: [from_dict(json.loads(x)) for x in lines],
            "orjson.loads + build": lambda: [from_dict(orjson.loads(x)) for x in lines],
            "msgspec Decoder(Struct)": lambda: [typed(x) for x in lines],
        },
        "any record → dict": {
            "json.loads (baseline)": lambda: [json.loads(x) for x in lines],
            "orjson.loads": lambda: [orjson.loads(x) for x in lines],
            "msgspec Decoder()": lambda: [generic(x) for x in lines],
        },
    }
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"JSON codec for the journal — {n:,} records per timing, best of {repeat}; orjson {orjson.__version__}, "
          f"msgspec {msgspec.__version__}, Python {sys.version.split()[0]}; load average {load:.2f}")  # fmt: skip
    winners: dict[str, float] = {"orjson": 0.0, "msgspec": 0.0}
    for title, table in (*(("encode " + k, v) for k, v in encode.items()),
                         *(("decode " + k, v) for k, v in decode.items())):  # fmt: skip
        print(f"  {title}")
        timings = {label: best(fn, repeat) / n for label, fn in table.items()}
        base = next(iter(timings.values()))
        for label, t in timings.items():
            print(f"    {label:<32} {t * 1e6:7.3f} µs   {base / t:5.2f} × the standard library")
        o = min(t for label, t in timings.items() if label.startswith("orjson"))
        s = min(t for label, t in timings.items() if label.startswith("msgspec"))
        winners["orjson"] += o
        winners["msgspec"] += s
    chosen = min(winners, key=lambda k: winners[k])
    print(f"  sum of the four costs: orjson {winners['orjson'] * 1e6:.3f} µs, msgspec {winners['msgspec'] * 1e6:.3f} µs"
          f" → {chosen}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
