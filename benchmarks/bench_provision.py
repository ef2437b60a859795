"""Provisioning per family, step by step: credentials, factory data, flash, boot, (conversion,) commission.

Each run is `Strategy.ensure("commissioned")` with a fresh plan (new DAC, passcode, factory data) on the
five default emulated boards (K32W1 twice: plain, and with the DAC-key conversion), through each family's
own programmer, the emulated firmware's boot log, and the real CHIP SDK controller (one per PAA, shared,
as a test session shares it). Board processes are started before timing (a session starts them once).

Baselines, measured in the same run through the same paths, so ratios survive a change of machine:
- CPU steps (credentials, factory data): one P-256 key generation;
- board steps (flash, boot, convert): one read of the board's factory-data region through its programmer
  right after a reset (open, read, close: the same wire, client library and ROM state as the flash step);
- commission: `python -c pass` started inside the commissioning sandbox (as bench_commissioning).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from hil import programmers
from hil.boards import load_inventory
from hil.commissioning import controller as controller_mod
from hil.commissioning.controller import ControllerPool
from hil.commissioning.sandbox import Sandbox
from hil.emulator.board import ensure_running, stop
from hil.flow import Pki
from hil.matter import test_cd_key
from hil.strategy import Strategy

RUNS = 3
PLANS = [
    ("k32w0x1-emu", False),
    ("k32w1-emu", False),
    ("k32w1-emu", True),
    ("rt1060-emu", False),
    ("rt1170-emu", False),
    ("rw61x-emu", False),
]
CPU_STEPS = ("credentials", "factory-data", "app-image")


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def _timed(fn: Any, runs: int = RUNS) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return _median_us(samples)


def _read_after_reset_us(profile: Any) -> float:
    """A region read through the programmer from the state the flash step meets: the ROM after a reset
    (an RT board whose flashloader still runs costs a ~0.5 s SDP probe timeout first; not measured here)."""
    handle = ensure_running(profile)
    samples = []
    for _ in range(RUNS):
        handle.reset()
        t0 = time.perf_counter()
        programmers.read(profile)
        samples.append(time.perf_counter() - t0)
    return _median_us(samples)


def run() -> list[dict[str, Any]]:
    why = controller_mod.availability()
    if why is not None:
        return [{"case": "provision", "note": f"skipped: {why}"}]
    old_state = os.environ.get("HIL_STATE_DIR")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-provision-") as tmp:
        os.environ["HIL_STATE_DIR"] = str(Path(tmp) / "state")
        boards = load_inventory()
        try:
            rows = _measure(boards, Path(tmp))
        finally:
            for name in {n for n, _ in PLANS}:
                stop(name)
            if old_state is None:
                os.environ.pop("HIL_STATE_DIR", None)
            else:
                os.environ["HIL_STATE_DIR"] = old_state
    return rows


def _measure(boards: Any, tmp: Path) -> list[dict[str, Any]]:
    signer = test_cd_key.signing_credential()
    assert signer.key is not None
    pki = Pki.generate(0x1037, 0xA220, cd_signer=(signer.key, signer.cert))
    keygen_us = _timed(lambda: ec.generate_private_key(ec.SECP256R1()), runs=20)
    rows: list[dict[str, Any]] = []
    with Sandbox(log_dir=tmp / "logs") as sandbox, ControllerPool(sandbox, log_dir=tmp / "logs") as pool:
        pool.warm(pki.paa)
        python_us = _timed(lambda: sandbox.run([sys.executable, "-c", "pass"], check=True))
        for name, convert in PLANS:
            profile = boards.get(name)
            read_us = _read_after_reset_us(profile)
            steps: dict[str, list[float]] = defaultdict(list)
            totals = []
            for _ in range(RUNS):
                strategy = Strategy(profile, pki, workdir=tmp / "work", controller_pool=pool, convert=convert)
                results = strategy.ensure("commissioned")
                assert results.verdict is not None and results.verdict.ok, results.verdict
                seen: dict[str, int] = defaultdict(int)
                for record in results.steps:
                    seen[record.name] += 1
                    key = record.name if seen[record.name] == 1 else f"{record.name} (after conversion)"
                    steps[key].append(record.seconds)
                totals.append(results.seconds)
            label = f"{profile.family}{' +convert' if convert else ''} ({profile.programmer})"
            for step, samples in steps.items():
                if step in CPU_STEPS:
                    base = {"baseline": "P-256 keygen", "baseline_us": keygen_us}
                elif step.startswith("commission"):
                    base = {"baseline": "python -c pass in sandbox", "baseline_us": python_us}
                else:
                    base = {"baseline": f"read region via {profile.programmer}", "baseline_us": read_us}
                rows.append(
                    {"case": f"{label} {step}", "us": _median_us(samples), **base, "note": f"n={RUNS}"}
                )
            rows.append(
                {
                    "case": f"{label} total",
                    "us": _median_us(totals),
                    "baseline": "python -c pass in sandbox",
                    "baseline_us": python_us,
                    "note": f"n={RUNS}",
                }
            )
    return rows
