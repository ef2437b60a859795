"""The qualification summary: a board x step matrix with verdicts and timings, plus each board's identity
(factory-data SHA-256, DAC serial numbers, firmware, VID/PID), as reports/qualification.md and .html.

Built from the harness's own step records (`hil.reports.records`), not from allure results, so it needs no
Java and can be rebuilt at any time: `python -m hil.reports.qualification --records DIR --out DIR`.

Aggregation rules (why they are what they are):
* A test re-run after an infrastructure failure counts with its last attempt only; the cell says how many
  runs were retried, so a flaky programmer stays visible without failing the product.
* A cell's verdict is the worst of its runs: failed > broken (infrastructure) > skipped > passed.
* Every board that appears in any record gets a row, even when none of its steps ran (its cells are empty),
  so a board that silently dropped out of a run is visible.
"""

from __future__ import annotations

import argparse
import html
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hil.fileio import atomic_write_text
from hil.reports.categories import STEPS
from hil.reports.records import FACT_DAC_SERIAL, FACT_FACTORY_DATA_SHA256, read_records

SEVERITY = {"passed": 0, "skipped": 1, "broken": 2, "failed": 3}
MARK = {"passed": "✅", "skipped": "⏭", "broken": "⚠", "failed": "❌"}
MD_FILE = "qualification.md"
HTML_FILE = "qualification.html"


@dataclass
class Cell:
    verdict: str = "passed"
    runs: int = 0
    duration_s: float = 0.0
    retried: int = 0
    messages: list[str] = field(default_factory=list)

    def add(self, record: dict[str, Any], retried: bool) -> None:
        verdict = record.get("verdict")
        verdict = verdict if verdict in SEVERITY else "failed"
        if self.runs == 0 or SEVERITY[verdict] > SEVERITY[self.verdict]:
            self.verdict = verdict
        self.runs += 1
        self.duration_s += float(record.get("duration_s") or 0.0)
        self.retried += int(retried)
        if record.get("message") and record["message"] not in self.messages:
            self.messages.append(record["message"])

    def text(self) -> str:
        extra = f", {self.retried} infra retry" if self.retried else ""
        runs = f" ×{self.runs}" if self.runs > 1 else ""
        return f"{MARK[self.verdict]} {self.verdict}{runs} ({self.duration_s:.2f} s{extra})"


@dataclass
class Summary:
    boards: dict[str, dict[str, Any]]  # name -> identity facts (family, firmware, vid, pid, sha256s, serials)
    steps: list[str]
    cells: dict[tuple[str, str], Cell]
    details: list[dict[str, Any]]

    @property
    def verdict(self) -> str:
        worst = max((c.verdict for c in self.cells.values()), key=SEVERITY.__getitem__, default="skipped")
        names = {"passed": "PASS", "skipped": "INCOMPLETE", "broken": "INFRASTRUCTURE FAILURE"}
        return names.get(worst, "FAIL")


def summarize(records: Iterable[dict[str, Any]]) -> Summary:
    boards: dict[str, dict[str, Any]] = {}
    steps_seen: list[str] = []
    by_run: dict[tuple[Any, str, str], list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        name = rec.get("board")
        if not name:
            continue
        identity = boards.setdefault(name, {"family": None, "sha256": set(), "dac_serial": set()})
        if rec.get("family"):
            identity["family"] = rec["family"]
        facts = rec.get("facts", {}) if rec.get("kind") == "step" else rec
        if facts.get(FACT_FACTORY_DATA_SHA256):
            identity["sha256"].add(str(facts[FACT_FACTORY_DATA_SHA256]))
        if facts.get(FACT_DAC_SERIAL):
            identity["dac_serial"].add(str(facts[FACT_DAC_SERIAL]))
        if rec.get("kind") == "env":
            for key in ("firmware", "vid", "pid", "emulated"):
                if rec.get(key) is not None:
                    identity[key] = rec[key]
        elif rec.get("kind") == "step":
            if rec["step"] not in steps_seen:
                steps_seen.append(rec["step"])
            by_run[(rec.get("test"), name, rec["step"])].append(rec)

    cells: dict[tuple[str, str], Cell] = {}
    details = []
    for (_test, board, step), recs in by_run.items():
        last = max(int(r.get("attempt", 1)) for r in recs)
        cell = cells.setdefault((board, step), Cell())
        for rec in recs:
            if int(rec.get("attempt", 1)) == last:
                cell.add(rec, retried=last > 1)
            details.append(rec)
    ordered = [s for s in STEPS if s in steps_seen] + [s for s in steps_seen if s not in STEPS]
    details.sort(key=lambda r: (r["board"], r.get("started") or "", int(r.get("attempt", 1))))
    return Summary(dict(sorted(boards.items())), ordered, cells, details)


def _vidpid(identity: dict[str, Any]) -> str:
    vid, pid = identity.get("vid"), identity.get("pid")
    if vid is None and pid is None:
        return ""
    return "/".join(f"0x{v:04X}" if isinstance(v, int) else str(v) for v in (vid, pid))


def _identity_rows(summary: Summary) -> list[list[str]]:
    rows = []
    for name, ident in summary.boards.items():
        rows.append(
            [
                name,
                ident.get("family") or "",
                ", ".join(sorted(ident["sha256"])),
                ", ".join(sorted(ident["dac_serial"])),
                str(ident.get("firmware") or ""),
                _vidpid(ident),
            ]
        )
    return rows


IDENTITY_HEADER = ["board", "family", "factory-data SHA-256", "DAC serial", "firmware", "VID/PID"]
DETAIL_HEADER = ["board", "step", "test", "attempt", "verdict", "time (s)", "category", "message"]


def _detail_row(rec: dict[str, Any]) -> list[str]:
    return [
        rec["board"],
        rec["step"],
        rec.get("test") or "",
        str(rec.get("attempt", 1)),
        rec.get("verdict", ""),
        f"{float(rec.get('duration_s') or 0):.3f}",
        rec.get("category") or "",
        rec.get("message") or "",
    ]


def render_markdown(summary: Summary, *, generated: str) -> str:
    def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
        def cell(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ")

        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
        return out

    matrix = [
        [name, ident.get("family") or "", *(_cell_text(summary, name, s) for s in summary.steps)]
        for name, ident in summary.boards.items()
    ]
    lines = [
        "# Qualification summary",
        "",
        f"Verdict: **{summary.verdict}** · generated {generated} · {len(summary.boards)} boards · "
        f"{len(summary.details)} step runs",
        "",
        "Legend: ✅ passed · ❌ failed (product) · ⚠ broken (infrastructure: programmer timeout, probe lost; "
        "retried once) · ⏭ skipped · — not run. Times are the sum over runs.",
        "",
        "## Board × step",
        "",
        *table(["board", "family", *summary.steps], matrix),
        "",
        "## Board identity",
        "",
        *table(IDENTITY_HEADER, _identity_rows(summary)),
        "",
        "## Every step run",
        "",
        *table(DETAIL_HEADER, (_detail_row(r) for r in summary.details)),
        "",
    ]
    return "\n".join(lines)


def _cell_text(summary: Summary, board: str, step: str) -> str:
    cell = summary.cells.get((board, step))
    return cell.text() if cell else "—"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;
vertical-align:top;font-size:14px}th{background:#f3f3f3}td.passed{background:#e6f6e6}
td.failed{background:#fbe3e3}td.broken{background:#fff2d6}td.skipped{background:#eeeeee}
code{font-size:12px}.verdict{font-size:1.2em;font-weight:bold}
"""


def render_html(summary: Summary, *, generated: str) -> str:
    e = html.escape

    def table(header: Sequence[str], rows: Iterable[Sequence[str]], mono: Sequence[int] = ()) -> str:
        head = "".join(f"<th>{e(h)}</th>" for h in header)
        body = []
        for row in rows:
            tds = "".join(
                f"<td><code>{e(c)}</code></td>" if i in mono else f"<td>{e(c)}</td>"
                for i, c in enumerate(row)
            )
            body.append(f"<tr>{tds}</tr>")
        return f"<table><tr>{head}</tr>{''.join(body)}</table>"

    matrix_rows = []
    for name, ident in summary.boards.items():
        tds = [f"<td>{e(name)}</td><td>{e(ident.get('family') or '')}</td>"]
        for s in summary.steps:
            cell = summary.cells.get((name, s))
            if cell is None:
                tds.append("<td>—</td>")
            else:
                title = e(" | ".join(cell.messages))
                tds.append(f'<td class="{cell.verdict}" title="{title}">{e(cell.text())}</td>')
        matrix_rows.append(f"<tr>{''.join(tds)}</tr>")
    head = "".join(f"<th>{e(h)}</th>" for h in ["board", "family", *summary.steps])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Qualification summary</title><style>{_CSS}</style></head>
<body><h1>Qualification summary</h1>
<p class="verdict">Verdict: {e(summary.verdict)}</p>
<p>Generated {e(generated)} · {len(summary.boards)} boards · {len(summary.details)} step runs</p>
<p>✅ passed · ❌ failed (product) · ⚠ broken (infrastructure, retried once) · ⏭ skipped · — not run</p>
<h2>Board × step</h2><table><tr>{head}</tr>{"".join(matrix_rows)}</table>
<h2>Board identity</h2>{table(IDENTITY_HEADER, _identity_rows(summary), mono=(2, 3))}
<h2>Every step run</h2>{table(DETAIL_HEADER, (_detail_row(r) for r in summary.details))}
</body></html>
"""


def write_summary(records_dir: Path, out_dir: Path) -> tuple[Path, Path] | None:
    """Write qualification.md and .html into `out_dir` from the records in `records_dir`.

    Returns the two paths, or None (writing nothing, so an earlier summary is not clobbered) when there is
    no record at all.
    """
    recs = list(read_records(records_dir))
    if not recs:
        return None
    summary = summarize(recs)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    md = atomic_write_text(Path(out_dir) / MD_FILE, render_markdown(summary, generated=generated))
    page = atomic_write_text(Path(out_dir) / HTML_FILE, render_html(summary, generated=generated))
    return md, page


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hil.reports.qualification",
        description="Rebuild reports/qualification.{md,html} from the harness's step records.",
    )
    parser.add_argument("--records", type=Path, default=Path("reports/hil-records"), help="records directory")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="output directory")
    args = parser.parse_args(argv)
    written = write_summary(args.records, args.out)
    if written is None:
        print(f"qualification: no step records in {args.records}; nothing written", file=sys.stderr)
        return 1
    print(f"qualification summary: {written[0]} and {written[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
