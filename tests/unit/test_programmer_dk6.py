"""K32W0x1 over DK6 ISP: spsdk's real DK6 client writes factory data into an emulated board process.

The board runs as its own process (hil.emulator.board) with the DK6 ROM on a pty; the client is spsdk's
`DK6Device` (and the `dk6prog` CLI) over pyserial. Fault plans are installed through the board's control
channel; flash contents are checked in the flash file the board process persists.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from emulated_boards import assert_other_process, cut_write_then_recover, lab, random_image

from hil import programmers
from hil.emulator.faults import FaultPlan
from hil.errors import ProgrammerError, TransientError

BOARD = "k32w0x1-emu"
ADDRESS, SIZE = 0x9D600, 0x800
FLASH_SIZE = 0x9DE00


@pytest.fixture(scope="module")
def k32w0(tmp_path_factory):
    with lab(tmp_path_factory.mktemp("dk6"), {BOARD: "k32w0x1"}) as the_lab:
        the_lab.app = random_image(FLASH_SIZE, seed=1)  # an "application" everywhere, so stray writes show
        the_lab.prefill(BOARD, the_lab.app)
        yield the_lab


@pytest.fixture
def board(k32w0):
    yield from k32w0.fault_free(BOARD)


def test_write_and_read_back_through_spsdk_dk6(k32w0, board):
    assert_other_process(board)
    profile = k32w0.profile(BOARD)
    assert profile.programmer == "dk6"
    image = random_image(1500, seed=2)
    report = programmers.flash(profile, image)
    assert (report.address, report.attempts, report.transient_faults) == (ADDRESS, 1, [])
    assert programmers.read(profile) == image + b"\xff" * (SIZE - len(image))
    # the whole flash: only the region changed (erased, then programmed), the bytes around it did not
    assert k32w0.flash_bytes(BOARD) == k32w0.expected_flash(image, ADDRESS, SIZE)
    status = board.status()
    assert status["resets"] >= 1 and status["last_reset"] == "rom"  # programmers.flash resets after writing


def test_shorter_image_leaves_no_stale_bytes(k32w0, board):
    profile = k32w0.profile(BOARD)
    programmers.flash(profile, random_image(SIZE, seed=3))
    short = random_image(100, seed=4)
    programmers.flash(profile, short)
    assert k32w0.flash_bytes(BOARD)[ADDRESS : ADDRESS + SIZE] == short + b"\xff" * (SIZE - 100)


def test_dk6prog_cli_reads_what_the_library_wrote(k32w0, board, tmp_path):
    """The unmodified `dk6prog` CLI (PYSERIAL backend, no ISP entry) against the board process's pty."""
    image = random_image(512, seed=5)
    programmers.flash(k32w0.profile(BOARD), image)
    out = tmp_path / "rb.bin"
    exe = os.path.join(os.path.dirname(sys.executable), "dk6prog")
    r = subprocess.run(
        [exe, "-b", "PYSERIAL", "-n", "-d", board.serial_port, "read", "-o", str(out), hex(ADDRESS), "512"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.read_bytes() == image


def test_dropped_frame_is_retried_and_verifies(k32w0, board):
    # Frames count from the plan's installation: #25 is the answer to the first MEM_WRITE chunk.
    board.install_faults(FaultPlan(drop_frames={25}))
    image = random_image(2048, seed=6)
    report = programmers.flash(k32w0.profile(BOARD), image)
    assert report.attempts == 2 and len(report.transient_faults) == 1
    assert "write at 0x9D600" in report.transient_faults[0] and "No Response" in report.transient_faults[0]
    assert board.status()["faults"]["fired"] == ["drop#25"]
    assert k32w0.flash_bytes(BOARD) == k32w0.expected_flash(image, ADDRESS, SIZE)


@pytest.mark.parametrize("frame", [5, 26, 31])  # ISP unlock handshake, 2nd write chunk, 1st read-back
def test_garbled_frame_is_retried_and_verifies(k32w0, board, frame):
    board.install_faults(FaultPlan(garble_frames={frame}, seed=frame))
    image = random_image(2000, seed=frame)
    report = programmers.flash(k32w0.profile(BOARD), image)
    if frame > 19:  # frames 1-19 are the opening handshake, retried by open_programmer
        assert report.attempts == 2, report.transient_faults
    assert board.status()["faults"]["fired"] == [f"garble#{frame}"]
    assert k32w0.flash_bytes(BOARD) == k32w0.expected_flash(image, ADDRESS, SIZE)


def test_disconnect_mid_write_is_a_clear_error_not_a_partial_region(k32w0, board):
    programmers.flash(k32w0.profile(BOARD), random_image(SIZE, seed=7))  # so "erased" shows
    image = random_image(2000, seed=8)
    message = str(cut_write_then_recover(k32w0, board, image, cut=700, address=ADDRESS, size=SIZE))
    assert BOARD in message and "0x9D600" in message and "partial image" in message
    assert "failed after 4 attempts" in message


def test_flipped_bit_is_caught_by_verify(k32w0, board):
    board.install_faults(FaultPlan(flip_bit=(ADDRESS + 100, 3)))
    image = random_image(1024, seed=9)
    with pytest.raises(ProgrammerError) as exc:
        programmers.flash(k32w0.profile(BOARD), image)
    expected = f"0x{image[100]:02X}"
    assert f"verify of factory data failed at 0x{ADDRESS + 100:X}" in str(exc.value)
    assert f"expected {expected}" in str(exc.value)
    assert not isinstance(exc.value, TransientError)  # a product failure: never retried


def test_read_of_an_address_outside_every_memory_is_a_clear_error(k32w0, board):
    profile = k32w0.profile(BOARD)
    region = programmers.TargetRegion(0x200000, 0x200, 0x200, "nowhere")
    with pytest.raises(ProgrammerError, match=r"k32w0x1-emu: address check at 0x200000"):
        programmers.read(profile, region=region)


def test_cli_flash_and_read_start_the_board_and_flash_persists(tmp_path):
    """`hil flash` starts the board process; `hil read` in a later command reads the same bytes back,
    also after the board process was stopped and started again (the flash file persists)."""
    with lab(tmp_path, {BOARD: "k32w0x1"}) as the_lab:
        image = random_image(1200, seed=10)
        (tmp_path / "fd.bin").write_bytes(image)
        env = dict(os.environ)

        def hil(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "hil", *args], capture_output=True, text=True, env=env
            )

        assert the_lab.running(BOARD) is None
        r = hil("flash", "--board", BOARD, str(tmp_path / "fd.bin"))
        assert r.returncode == 0, r.stderr
        assert "wrote 1200 bytes at 0x9D600" in r.stdout
        first = the_lab.running(BOARD)
        assert first is not None  # left running in the background, like a powered board
        r = hil("read", "--board", BOARD, "--out", str(tmp_path / "rb.bin"))
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "rb.bin").read_bytes() == image + b"\xff" * (SIZE - 1200)
        assert the_lab.running(BOARD).pid == first.pid
        r = hil("emulate", "--board", BOARD, "--stop")
        assert r.returncode == 0 and the_lab.running(BOARD) is None
        r = hil("read", "--board", BOARD, "--out", str(tmp_path / "rb2.bin"), "--length", "1200")
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "rb2.bin").read_bytes() == image
        # bad input: one line, exit 2, nothing written
        big = tmp_path / "big.bin"
        big.write_bytes(b"\0" * (SIZE + 1))
        r = hil("flash", "--board", BOARD, str(big))
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "image size" in r.stderr
        assert not Path(tmp_path / "nope.bin").exists()
