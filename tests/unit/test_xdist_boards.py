"""Two pytest-xdist workers flash two emulated boards at the same time without interfering.

The outer test runs `pytest -n 2` on a small inner test file. Both inner tests meet at a rendezvous before
they touch their board, so the two board processes start and are written concurrently; each worker then
writes and verifies several images on its own board while the other does the same on its.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from emulated_boards import inventory_text

INNER = textwrap.dedent(
    """
    import json, os, random, time
    from pathlib import Path

    import pytest

    from hil import programmers
    from hil.boards import get_board

    SHARED = Path(os.environ["XDIST_SHARED"])


    def meet(name):
        (SHARED / "rendezvous").mkdir(exist_ok=True)
        (SHARED / "rendezvous" / name).touch()
        deadline = time.monotonic() + 60
        while len(list((SHARED / "rendezvous").iterdir())) < 2:
            assert time.monotonic() < deadline, "the other worker never arrived"
            time.sleep(0.005)


    @pytest.mark.parametrize("name", ["dk6-a", "dk6-b"])
    def test_flash_own_board(name):
        profile = get_board(name)
        meet(name)
        images = [random.Random(f"{name}{i}").randbytes(1500 + i) for i in range(5)]
        for image in images:
            report = programmers.flash(profile, image)
            assert report.attempts == 1
            assert programmers.read(profile)[: len(image)] == image
        from hil.emulator.board import find_running
        handle = find_running(name)
        (SHARED / f"{name}.json").write_text(json.dumps({
            "worker": os.environ.get("PYTEST_XDIST_WORKER"), "board_pid": handle.pid,
            "serial": handle.serial_port, "last": images[-1].hex(),
        }))
    """
)


def test_two_workers_flash_two_boards_at_once(tmp_path):
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "test_inner.py").write_text(INNER)
    inventory = tmp_path / "boards.toml"
    inventory.write_text(inventory_text({"dk6-a": "k32w0x1", "dk6-b": "k32w0x1"}))
    shared = tmp_path / "shared"
    shared.mkdir()
    env = dict(
        os.environ, HIL_BOARDS=str(inventory), HIL_STATE_DIR=str(tmp_path / "state"), XDIST_SHARED=str(shared)
    )
    env.pop("PYTEST_XDIST_WORKER", None)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-n",
        "2",
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(tmp_path),
    ]
    try:
        r = subprocess.run(
            [*cmd, str(tmp_path / "inner")], capture_output=True, text=True, env=env, timeout=300
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert "2 passed" in r.stdout
        results = {name: json.loads((shared / f"{name}.json").read_text()) for name in ("dk6-a", "dk6-b")}
        assert {res["worker"] for res in results.values()} == {"gw0", "gw1"}
        assert results["dk6-a"]["board_pid"] != results["dk6-b"]["board_pid"]
        assert results["dk6-a"]["serial"] != results["dk6-b"]["serial"]
        for name, res in results.items():  # each board holds exactly its own worker's last image
            flash = (tmp_path / "state" / name / "flash-FLASH.bin").read_bytes()
            last = bytes.fromhex(res["last"])
            assert flash[0x9D600 : 0x9D600 + 0x800] == last + b"\xff" * (0x800 - len(last))
    finally:
        subprocess.run(
            [sys.executable, "-m", "hil", "emulate", "--board", "dk6-a", "--stop"],
            env=env,
            capture_output=True,
        )
        subprocess.run(
            [sys.executable, "-m", "hil", "emulate", "--board", "dk6-b", "--stop"],
            env=env,
            capture_output=True,
        )
