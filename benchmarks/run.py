"""Benchmark runner: `make bench` / `python benchmarks/run.py [NAME ...] [--json PATH]`.

Discovers `benchmarks/bench_*.py`, calls each module's `run() -> list[dict]`, and prints one table. Each
row measures one operation against a baseline measured in the same run on the same machine, so the ratio
means something on any CI box while absolute times do not; nothing here asserts a time.

Row keys (all optional except `case`):
    case          what was measured, e.g. "encode plain (1.5 KiB)"
    us            microseconds per operation (median of repeats)
    baseline      what it is compared with, e.g. "sha256 of the same bytes"
    baseline_us   microseconds per baseline operation
    ratio         us / baseline_us (filled in by the runner when both are present)
    note          anything else worth a column

Bench modules may use the timers here: `from run import paired_us, per_call_us`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def per_call_us(fn: Callable[[], object], *, min_time: float = 0.2, repeats: int = 5) -> float:
    """Median over `repeats` of the mean time per call (µs), each repeat running for at least `min_time` s."""
    fn()  # warm caches and lazy imports outside the measurement
    number = 1
    while True:  # calibrate: enough calls that one repeat lasts min_time
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            break
        number = max(number * 2, int(number * min_time / max(elapsed, 1e-9)))
    samples = [elapsed / number]
    for _ in range(repeats - 1):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples) * 1e6


def paired_us(
    fn: Callable[[], object], baseline: Callable[[], object], *, min_time: float = 0.2, repeats: int = 5
) -> tuple[float, float]:
    """(fn µs, baseline µs), measured in alternating repeats so load from other processes hits both alike."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeats):
        a.append(per_call_us(fn, min_time=min_time, repeats=1))
        b.append(per_call_us(baseline, min_time=min_time, repeats=1))
    return statistics.median(a), statistics.median(b)


def discover(names: list[str]) -> list[Path]:
    files = sorted(HERE.glob("bench_*.py"))
    if names:
        files = [f for f in files if f.stem.removeprefix("bench_") in names or f.stem in names]
    return files


def load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # so pickling (multiprocessing) finds functions by module name
    spec.loader.exec_module(module)
    return module


def _fmt_us(value: object) -> str:
    if not isinstance(value, int | float):
        return "" if value is None else str(value)
    if value >= 100_000:
        return f"{value / 1000:,.0f} ms"
    if value >= 1000:
        return f"{value / 1000:,.2f} ms"
    return f"{value:,.1f} µs"


def table(rows: list[dict[str, Any]]) -> str:
    cols = [("bench", "bench"), ("case", "case"), ("us", "time/op"), ("baseline", "baseline"),
            ("baseline_us", "baseline/op"), ("ratio", "ratio"), ("note", "note")]  # fmt: skip
    cells = []
    for row in rows:
        ratio = row.get("ratio")
        cells.append([
            str(row.get("bench", "")), str(row.get("case", "")), _fmt_us(row.get("us")),
            str(row.get("baseline", "")), _fmt_us(row.get("baseline_us")),
            "" if ratio is None else f"{ratio:,.2f}x", str(row.get("note", "")),
        ])  # fmt: skip
    widths = [
        max(len(title), *(len(c[i]) for c in cells)) if cells else len(title)
        for i, (_, title) in enumerate(cols)
    ]
    lines = ["  ".join(title.ljust(w) for (_, title), w in zip(cols, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for c in cells:
        lines.append(
            "  ".join(
                v.rjust(w) if i in (2, 4, 5) else v.ljust(w)
                for i, (v, w) in enumerate(zip(c, widths, strict=True))
            )
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run benchmarks/bench_*.py and print ratios to baselines.")
    parser.add_argument("names", nargs="*", help="only these benchmarks (e.g. factory_data)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    rows: list[dict[str, Any]] = []
    failed = 0
    for path in discover(args.names):
        name = path.stem.removeprefix("bench_")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            result = load(path).run()
        except Exception:  # one broken benchmark must not hide the others' numbers
            failed += 1
            traceback.print_exc()
            continue
        for row in result:
            row = {"bench": name, **row}
            if row.get("ratio") is None and row.get("us") and row.get("baseline_us"):
                row["ratio"] = row["us"] / row["baseline_us"]
            rows.append(row)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
