"""Qualification summary from synthetic step records: every board and step with its verdict, timings,
factory-data SHA-256 and DAC serials; retries folded; nothing written without records."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from hil.reports.qualification import main, summarize, write_summary
from hil.reports.records import RecordSink, read_records

SHA_A = "a1" * 32
SHA_B = "b2" * 32


def step(
    board, family, name, verdict, test, attempt=1, duration=0.5, facts=None, message=None, category=None
):
    return {
        "kind": "step",
        "board": board,
        "family": family,
        "step": name,
        "verdict": verdict,
        "test": test,
        "attempt": attempt,
        "duration_s": duration,
        "facts": facts or {},
        "message": message,
        "category": category,
        "started": f"2026-11-24T10:00:{attempt:02d}",
    }


RECORDS = [
    {"kind": "env", "board": "k32w1-emu", "family": "k32w1", "firmware": "lighting 1.4",
     "vid": 0xFFF1, "pid": 0x8005},
    {"kind": "env", "board": "rt1060-emu", "family": "rt1060", "emulated": True},
    {"kind": "env", "board": "rw61x-emu", "family": "rw61x"},  # selected, but none of its steps ran
    step("k32w1-emu", "k32w1", "generation", "passed", "t::gen[k32w1-emu]", facts={"dac_serial": "0A1B2C"}),
    step(
        "k32w1-emu", "k32w1", "flashing", "broken", "t::flash[k32w1-emu]", attempt=1,
        message="TransientError: k32w1-emu: write at 0xFE080: no response", category="infrastructure",
    ),
    step(
        "k32w1-emu", "k32w1", "flashing", "passed", "t::flash[k32w1-emu]", attempt=2,
        facts={"factory_data_sha256": SHA_A},
    ),
    step("k32w1-emu", "k32w1", "conversion", "passed", "t::convert[k32w1-emu]", duration=10.25),
    step("k32w1-emu", "k32w1", "commissioning", "passed", "t::commission[k32w1-emu]"),
    step("k32w1-emu", "k32w1", "commissioning", "passed", "t::commission_again[k32w1-emu]"),
    step("rt1060-emu", "rt1060", "generation", "passed", "t::gen[rt1060-emu]", facts={"dac_serial": "77"}),
    step(
        "rt1060-emu", "rt1060", "flashing", "passed", "t::flash[rt1060-emu]",
        facts={"factory_data_sha256": SHA_B},
    ),
    step(
        "rt1060-emu", "rt1060", "attestation", "failed", "t::attest[rt1060-emu]",
        message="AttestationError: DAC VID 0xFFF2 does not match PAI VID 0xFFF1", category="attestation",
    ),
    step("rt1060-emu", "rt1060", "commissioning", "skipped", "t::commission[rt1060-emu]"),
]  # fmt: skip


def test_matrix_has_every_board_and_step_with_its_verdict() -> None:
    s = summarize(RECORDS)
    assert list(s.boards) == ["k32w1-emu", "rt1060-emu", "rw61x-emu"]
    assert s.steps == ["generation", "flashing", "conversion", "attestation", "commissioning"]
    verdicts = {key: cell.verdict for key, cell in s.cells.items()}
    assert verdicts == {
        ("k32w1-emu", "generation"): "passed",
        ("k32w1-emu", "flashing"): "passed",  # the retry passed: the attempt-1 failure is infrastructure
        ("k32w1-emu", "conversion"): "passed",
        ("k32w1-emu", "commissioning"): "passed",
        ("rt1060-emu", "generation"): "passed",
        ("rt1060-emu", "flashing"): "passed",
        ("rt1060-emu", "attestation"): "failed",
        ("rt1060-emu", "commissioning"): "skipped",
    }
    assert s.cells[("k32w1-emu", "flashing")].retried == 1
    assert s.cells[("k32w1-emu", "commissioning")].runs == 2
    assert s.verdict == "FAIL"
    assert s.boards["k32w1-emu"]["sha256"] == {SHA_A}
    assert s.boards["rt1060-emu"]["dac_serial"] == {"77"}


def test_verdict_of_a_clean_run_and_of_an_infrastructure_only_failure() -> None:
    ok = [r for r in RECORDS if r.get("verdict") in (None, "passed")]
    assert summarize(ok).verdict == "PASS"
    broken = [
        *ok,
        step("rw61x-emu", "rw61x", "flashing", "broken", "t::f[rw61x-emu]", category="infrastructure"),
    ]
    assert summarize(broken).verdict == "INFRASTRUCTURE FAILURE"


def _md_table(md: str, heading: str) -> list[list[str]]:
    section = md.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[2:]]


def test_written_markdown_and_html(tmp_path: Path) -> None:
    sink = RecordSink(tmp_path / "records" / "20261124-100000-abcdef", "gw0")
    for rec in RECORDS:
        sink.write(rec)
    md_path, html_path = write_summary(tmp_path / "records", tmp_path / "out")
    md = md_path.read_text()
    matrix = {row[0]: row for row in _md_table(md, "Board × step")}
    header = ["board", "family", "generation", "flashing", "conversion", "attestation", "commissioning"]
    assert set(matrix) == {"k32w1-emu", "rt1060-emu", "rw61x-emu"}
    for board, row in matrix.items():
        assert len(row) == len(header), (board, row)
    assert matrix["k32w1-emu"][3].startswith("✅ passed") and "1 infra retry" in matrix["k32w1-emu"][3]
    assert matrix["k32w1-emu"][4] == "✅ passed (10.25 s)"
    assert matrix["k32w1-emu"][6].startswith("✅ passed ×2")
    assert matrix["rt1060-emu"][5].startswith("❌ failed")
    assert matrix["rt1060-emu"][6].startswith("⏭ skipped")
    assert matrix["rw61x-emu"][2:] == ["—"] * 5
    identity = {row[0]: row for row in _md_table(md, "Board identity")}
    assert identity["k32w1-emu"][2:] == [SHA_A, "0A1B2C", "lighting 1.4", "0xFFF1/0x8005"]
    assert identity["rt1060-emu"][2:4] == [SHA_B, "77"]
    details = _md_table(md, "Every step run")
    assert len(details) == 10
    assert details[1][:5] == ["k32w1-emu", "flashing", "t::flash[k32w1-emu]", "1", "broken"]
    assert "Verdict: **FAIL**" in md

    page = html_path.read_text()
    assert "<td>k32w1-emu</td>" in page and html.escape("DAC VID 0xFFF2 does not match") in page
    assert page.count('class="failed"') == 1 and SHA_B in page


def test_no_records_writes_nothing(tmp_path: Path, capsys) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "qualification.md").write_text("previous run")
    assert write_summary(tmp_path / "missing", tmp_path / "out") is None
    assert (tmp_path / "out" / "qualification.md").read_text() == "previous run"
    assert main(["--records", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 1
    assert "no step records" in capsys.readouterr().err


def test_records_are_redacted_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    sink = RecordSink(tmp_path, "main")
    sink.write(step("b", "k32w1", "generation", "passed", "t", facts={"dac_private_key": "3077"}))
    with open(sink.path, "a") as f:
        f.write('{"kind": "step", "board": "b", "st')  # a writer killed mid-line
    recs = list(read_records(tmp_path))
    assert len(recs) == 1 and recs[0]["facts"] == {"dac_private_key": "[REDACTED]"}
    assert "3077" not in sink.path.read_text()
    assert json.loads(sink.path.read_text().splitlines()[0])["worker"] == "main"
