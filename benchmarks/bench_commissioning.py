"""Commissioning: SDK controller start-up, emulated node start-up, and one commissioning per node.

Everything runs in one commissioning sandbox with the real CHIP SDK Python controller and emulated
nodes built from freshly generated credentials (PAA -> PAI -> DAC, CD signed with the SDK's test CD key).
Baseline, measured in the same run through the same path: `python -c pass` started inside the sandbox
(nsenter + interpreter start), so the ratios read "costs N bare interpreter starts" on any machine.
Times are medians of a few runs (each commissioning needs a fresh node: a commissioned one closes its
window).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from typing import Any

from hil.commissioning import controller as controller_mod
from hil.commissioning.controller import Controller
from hil.commissioning.sandbox import Sandbox
from hil.emulator.matter_device import MatterNode, NodeConfig
from hil.matter import cd, certs, spake2p, test_cd_key

VID, PID, PASSCODE = 0xFFF2, 0x8001, 34567890
RUNS = 5


def _credentials() -> tuple[certs.Credential, NodeConfig]:
    paa = certs.generate_paa("Bench PAA", VID)
    pai = certs.generate_pai(paa, "Bench PAI", VID, PID)
    dac = certs.generate_dac(pai, "Bench DAC", VID, PID)
    signer = test_cd_key.signing_credential()
    assert signer.key is not None
    decl = cd.CertificationDeclaration(VID, [PID], 0x0100, "ZIG20142ZB330003-24")
    salt = os.urandom(32)
    config = NodeConfig(
        discriminator=3840,
        spake2p_salt=salt,
        spake2p_iterations=1000,
        spake2p_verifier=spake2p.compute_verifier(PASSCODE, salt, 1000),
        dac_cert=dac.cert_der(),
        pai_cert=pai.cert_der(),
        cd=cd.sign(decl, signer.key, signer.cert),
        signer=dac.key_der(),
        vendor_id=VID,
        product_id=PID,
        vendor_name="NXP Semiconductors",
        product_name="Bench light",
    )
    return paa, config


def _median_s(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def _bare_start_us(sandbox: Sandbox) -> float:
    samples = []
    for _ in range(RUNS):
        t0 = time.monotonic()
        sandbox.run([sys.executable, "-c", "pass"], check=True)
        samples.append(time.monotonic() - t0)
    return _median_s(samples)


def run() -> list[dict[str, Any]]:
    why = controller_mod.availability()
    if why is not None:
        return [{"case": "commissioning", "note": f"skipped: {why}"}]
    paa, config = _credentials()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-commissioning-") as logs, Sandbox(log_dir=logs) as sb:
        baseline = _bare_start_us(sb)
        base = {"baseline": "python -c pass in the sandbox", "baseline_us": baseline}

        starts = []
        for _ in range(3):
            ctrl = Controller(sb, paa).start()
            starts.append(ctrl.startup_s or 0.0)
            ctrl.close()
        rows.append({"case": "SDK controller start-up (process to ready)", "us": _median_s(starts), **base})

        node_starts: list[float] = []
        by_ip: list[float] = []
        by_mdns: list[float] = []
        with Controller(sb, paa) as ctrl:
            for method, samples in (("ip", by_ip), ("discriminator", by_mdns)):
                for _ in range(RUNS):
                    with MatterNode(config, sb, announce=False) as node:
                        node_starts.append(node.startup_s or 0.0)
                        verdict = ctrl.commission_node(node, PASSCODE, by=method)
                    verdict.raise_for_failure()
                    samples.append(verdict.timings.commission_s or 0.0)
        rows.append({"case": "emulated node start-up (to ready)", "us": _median_s(node_starts), **base})
        rows.append(
            {
                "case": "commission by IP (PASE to CommissioningComplete)",
                "us": _median_s(by_ip),
                **base,
                "note": f"median of {RUNS}",
            }
        )
        rows.append(
            {
                "case": "commission by discriminator (mDNS query + the above)",
                "us": _median_s(by_mdns),
                **base,
                "note": f"median of {RUNS}",
            }
        )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
