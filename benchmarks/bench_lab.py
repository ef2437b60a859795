"""The lab (labgrid on loopback): how fast places are handed out, and what a flash costs over the network.

A real coordinator and two exporters (one with the tuned ser2net of `hil.lab.ser2net_tuned`, one with
labgrid's own ser2net settings), each exporting one emulated RW61x board (MCU bootloader, spsdk's McuBoot
client). Every number is a median over a few repeats, against a baseline measured in the same run:

* place hand-out: reserve + acquire + ports published + release (`LabSession.hold` / `release`; the
  exporter starts one ser2net per serial port and waits 0.5 s for each) and a reservation alone (create,
  allocated, cancel: the coordinator's part), against a local board lock (flock) acquire + release.
  places/s = 1e6 / time per op.
* flash: the factory-data region (erase, write, read back, compare; `hil.programmers.flash`) and a 64 KiB
  read, through the place (pty bridge -> rfc2217 -> ser2net -> the board's pty), against the same
  operation directly on the board's pty. The difference is the added latency per flash.

Loopback only: a real network adds its round-trip time to each of the few dozen frames of a flash.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPEATS = 5


def _median_us(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    fn()  # warm: imports, first connection, bridge start
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def run() -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-lab-"))
    os.environ["HIL_STATE_DIR"] = str(tmp / "state")
    from hil import programmers
    from hil.boards import load_inventory
    from hil.lab.daemons import Coordinator
    from hil.lab.host import EmulatedLabHost
    from hil.lab.labgrid import make_identity
    from hil.lab.locks import BoardLock
    from hil.programmers.base import TargetRegion

    host_boards = tmp / "host.toml"
    host_boards.write_text(
        '[board.tuned-emu]\nfamily = "rw61x"\nemulated = true\n'
        '[board.untuned-emu]\nfamily = "rw61x"\nemulated = true\n'
    )
    host_inv = load_inventory(host_boards)
    rows: list[dict[str, Any]] = []
    coordinator = Coordinator(tmp / "coordinator").start()
    hosts = []
    try:
        for name, tuned in (("tuned", True), ("untuned", False)):
            host = EmulatedLabHost(
                coordinator.address, f"exp-{name}", [(host_inv.get(f"{name}-emu"), f"rw61x-{name}")],
                tmp / name, tuned=tuned, state_root=tmp / "state",
            ).start()  # fmt: skip
            host.create_places()
            hosts.append(host)
        lab_boards = tmp / "lab.toml"
        lab_boards.write_text(
            f'[lab]\ncoordinator = "{coordinator.address}"\n'
            + "".join(
                f'[board.{n}]\nfamily = "rw61x"\nemulated = true\nlabgrid_place = "rw61x-{n}"\n'
                for n in ("tuned", "untuned")
            )
        )
        lab_inv = load_inventory(lab_boards)
        from hil.lab.places import LabSession

        session = LabSession(lab_inv.lab, make_identity("bench"))
        session.connect()

        # -- place hand-out --------------------------------------------------------------------------------
        lock_dir = tmp / "locks"

        def flock_cycle() -> None:
            BoardLock("bench-board", directory=lock_dir).acquire(5).release()

        def hold_cycle() -> None:
            session.hold("rw61x-tuned", timeout=30)
            session.release("rw61x-tuned")

        def reservation_cycle() -> None:
            token = session.client.create_reservation({"name": "rw61x-tuned"})
            while (res := session.client.poll_reservation(token)) is not None and res.state.name == "waiting":
                time.sleep(0.001)
            session.client.cancel_reservation(token)

        flock_us = _median_us(flock_cycle)
        for case, fn, note in (
            ("hold + release a place (2 serial ports)", hold_cycle, "reserve, acquire, ser2net x2, release"),
            ("reservation allocated + cancelled", reservation_cycle, "coordinator only, no acquire"),
        ):
            us = _median_us(fn)
            rows.append({"case": case, "us": us, "baseline": "local flock acquire + release",
                         "baseline_us": flock_us, "note": f"{1e6 / us:.1f} places/s; {note}"})  # fmt: skip

        # -- flash over the network vs direct ----------------------------------------------------------------
        image = os.urandom(2048)
        for name in ("tuned", "untuned"):
            direct = host_inv.get(f"{name}-emu")  # the same board process, through its own pty
            remote = lab_inv.get(name)
            big = TargetRegion(remote.factory_data_address - 0xF000, 0x10000, remote.sector_size, "64 KiB")
            direct_flash = _median_us(lambda p=direct: programmers.flash(p, image, reset=False))
            direct_read = _median_us(lambda p=direct, r=big: programmers.read(p, region=r))
            session.hold(f"rw61x-{name}", timeout=30)
            try:
                lab_flash = _median_us(lambda p=remote: programmers.flash(p, image, reset=False))
                lab_read = _median_us(lambda p=remote, r=big: programmers.read(p, region=r))
            finally:
                session.release(f"rw61x-{name}")
            ser2net = "tuned ser2net" if name == "tuned" else "labgrid's ser2net settings"
            rows.append({"case": f"flash factory data via lab ({ser2net})", "us": lab_flash,
                         "baseline": "same flash, direct pty", "baseline_us": direct_flash,
                         "note": f"+{(lab_flash - direct_flash) / 1000:.0f} ms per flash"})  # fmt: skip
            rows.append({"case": f"read 64 KiB via lab ({ser2net})", "us": lab_read,
                         "baseline": "same read, direct pty", "baseline_us": direct_read,
                         "note": f"{64 / (lab_read / 1e6):.0f} KiB/s"})  # fmt: skip
        session.close()
    finally:
        for host in hosts:
            host.stop()
        coordinator.stop()
    return rows
