"""Render the allure results into one offline HTML file with the real allure command line, and say where.

Why the npm `allure-commandline` 2.x: PyPI ships no allure command line, and 2.x with `--single-file`
produces an index.html that opens from file:// with no server (allure 3 needs HTTP). It needs Java (17 on
the CI image). The report is generated into a temporary sibling and swapped in only when complete, so a
failed render never destroys the previous report.

    python -m hil.reports.render [--allure PATH] [RESULTS] [REPORT]     (what `make report` runs)
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hil.errors import HilError, InputError
from hil.reports import qualification

DEFAULT_ALLURE = Path("tools/node_modules/allure-commandline/dist/bin/allure")
INSTALL_HINT = "install it with: npm install --prefix tools allure-commandline@2.46.1 (make report does this)"


class RenderError(HilError):
    """The allure command line ran and failed (its last output line is in the message)."""


@dataclass(frozen=True)
class Rendered:
    index: Path
    seconds: float
    counts: dict[str, int]

    def describe(self) -> str:
        total = sum(self.counts.values())
        by_status = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
        tests = f"{total} tests: {by_status or 'none'}"  # retries are folded into their test
        return f"allure report: {self.index.resolve().as_uri()} ({tests}; rendered in {self.seconds:.1f} s)"


def embedded_file(index: Path, name: str) -> bytes | None:
    """A data file of a `--single-file` report (allure embeds each as `d('name','<base64>')`)."""
    match = re.search(
        r"d\('" + re.escape(name) + r"','([A-Za-z0-9+/=]*)'\)", index.read_text(encoding="utf-8")
    )
    return base64.b64decode(match.group(1)) if match else None


def report_counts(index: Path) -> dict[str, int]:
    """Tests by status as the report shows them (retries folded into their test): widgets/summary.json."""
    raw = embedded_file(index, "widgets/summary.json")
    statistic = json.loads(raw).get("statistic", {}) if raw else {}
    return {k: int(v) for k, v in statistic.items() if k != "total" and v}


def render(results: Path, report: Path, *, allure: Path = DEFAULT_ALLURE, timeout: float = 600) -> Rendered:
    """Run `allure generate --single-file RESULTS -o REPORT`; return the index path, time and counts."""
    results, report = Path(results), Path(report)
    if not results.is_dir() or not any(results.glob("*-result.json")):
        allowed = "a directory of allure results (pytest --alluredir=DIR)"
        raise InputError.field("results", str(results), allowed)
    if not Path(allure).is_file():
        raise InputError.field("allure", str(allure), INSTALL_HINT)
    report.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{report.name}.", dir=report.parent))
    try:
        cmd = [str(allure), "generate", "--single-file", str(results), "-o", str(staging), "--clean"]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RenderError(f"allure generate: no result after {timeout:.0f} s") from exc
        seconds = time.perf_counter() - start
        if proc.returncode != 0 or not (staging / "index.html").is_file():
            last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
            raise RenderError(f"allure generate failed (exit {proc.returncode}): {last}")
        if report.exists():
            shutil.rmtree(report)
        staging.rename(report)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    index = report / "index.html"
    return Rendered(index, seconds, report_counts(index))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hil.reports.render",
        description="Render allure results into a single offline HTML file, and rebuild the qualification "
        "summary from the harness's step records when there are any.",
    )
    parser.add_argument("results", nargs="?", type=Path, default=Path("reports/allure-results"))
    parser.add_argument("report", nargs="?", type=Path, default=Path("reports/allure-report"))
    parser.add_argument("--allure", type=Path, default=DEFAULT_ALLURE, help="allure command line (2.x)")
    parser.add_argument("--records", type=Path, default=Path("reports/hil-records"), help="step records")
    parser.add_argument("--summary-dir", type=Path, default=Path("reports"), help="qualification summary dir")
    args = parser.parse_args(argv)
    try:
        rendered = render(args.results, args.report, allure=args.allure)
    except HilError as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(rendered.describe())
    written = qualification.write_summary(args.records, args.summary_dir)
    if written:
        print(f"qualification summary: {written[0]} and {written[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
