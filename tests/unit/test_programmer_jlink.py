"""K32W1 over J-Link: pylink's real `JLink` class writes factory data into an emulated board process.

pylink runs unchanged above the DLL boundary; below it, `EmulatedJLinkLibrary` forwards the JLINKARM_*
calls over TCP to the board process's probe endpoint, as a networked J-Link forwards them over IP.
"""

from __future__ import annotations

import pylink
import pytest
from emulated_boards import assert_other_process, cut_write_then_recover, lab, random_image

from hil import programmers
from hil.emulator.faults import FaultPlan
from hil.emulator.probe import EmulatedJLinkLibrary
from hil.errors import ProgrammerError, TransientError

BOARD, HW = "k32w1-emu", "k32w1-hw"
ADDRESS, SIZE = 0xF4000, 0x2000
FLASH_SIZE = 0x100000
HW_ADDRESS, HW_SIZE = 0xFE080, 0x800  # generate.py --hw_params layout, in the PROD_DATA sector 0xFE000


@pytest.fixture(scope="module")
def k32w1(tmp_path_factory):
    boards = {
        BOARD: "k32w1",
        HW: f"k32w1|factory_data_address = {HW_ADDRESS:#x}\nfactory_data_size = {HW_SIZE:#x}",
    }
    with lab(tmp_path_factory.mktemp("jlink"), boards) as the_lab:
        the_lab.app = random_image(FLASH_SIZE, seed=11)
        the_lab.prefill(BOARD, the_lab.app)
        the_lab.prefill(HW, the_lab.app)
        yield the_lab


@pytest.fixture
def board(k32w1):
    yield from k32w1.fault_free(BOARD)


def test_write_and_read_back_through_pylink(k32w1, board):
    assert_other_process(board)
    profile = k32w1.profile(BOARD)
    assert profile.programmer == "jlink"
    image = random_image(3000, seed=12)
    report = programmers.flash(profile, image)
    assert (report.address, report.attempts) == (ADDRESS, 1)
    assert programmers.read(profile) == image + b"\xff" * (SIZE - len(image))
    assert k32w1.flash_bytes(BOARD) == k32w1.expected_flash(image, ADDRESS, SIZE)
    assert board.status()["last_reset"] == "probe"  # programmers.flash resets through the probe


def test_plain_pylink_loadfile_against_the_board_process(k32w1, board, tmp_path):
    """The seed's `loadfile factory_data.bin 0xF4000` as pylink calls it; nothing of ours above pylink."""
    image = random_image(1024, seed=13)
    (tmp_path / "factory_data.bin").write_bytes(image)
    before = board.peek(ADDRESS, SIZE)
    jl = pylink.JLink(lib=EmulatedJLinkLibrary())
    jl.open(ip_addr=f"127.0.0.1:{board.probe_port}")
    jl.set_tif(pylink.enums.JLinkInterfaces.SWD)
    jl.connect("K32W1480", speed=4000)
    assert jl.target_connected()
    assert jl.flash_file(str(tmp_path / "factory_data.bin"), ADDRESS) == 1024
    assert bytes(jl.memory_read8(ADDRESS, 1024)) == image
    jl.reset(halt=False)
    jl.close()
    assert k32w1.flash_bytes(BOARD)[ADDRESS : ADDRESS + 1024] == image
    # the loader rewrote the whole 8 KiB sector: the rest of it kept its bytes (read-modify-write)
    assert k32w1.flash_bytes(BOARD)[ADDRESS + 1024 : ADDRESS + SIZE] == before[1024:]


def test_wrong_device_name_is_refused_by_the_probe(k32w1, board):
    jl = pylink.JLink(lib=EmulatedJLinkLibrary())
    jl.open(ip_addr=f"127.0.0.1:{board.probe_port}")
    with pytest.raises(pylink.errors.JLinkException):
        jl.connect("K32W061")  # a known device, but not the chip on this board
    jl.close()


def test_hw_params_region_preserves_prod_data_in_its_sector(k32w1):
    """0xFE080 shares the last sector with PROD_DATA at 0xFE000: only the region changes."""
    handle = k32w1.start(HW)
    profile = k32w1.profile(HW)
    image = random_image(700, seed=14)
    report = programmers.flash(profile, image)
    assert (report.erase_start, report.erase_length) == (0xFE000, 0x2000)
    assert k32w1.flash_bytes(HW) == k32w1.expected_flash(image, HW_ADDRESS, HW_SIZE)
    assert handle.peek(0xFE000, 0x80) == k32w1.app[0xFE000:0xFE080]


def test_dropped_frame_is_retried_and_verifies(k32w1, board):
    # Frames count from the plan's installation: 1 hello, 2 connect, 3-4 erase (halt, write),
    # 5-6 loadfile (halt, write), 7 read-back. Losing #6 loses the answer to the image write.
    board.install_faults(FaultPlan(drop_frames={6}))
    image = random_image(2500, seed=15)
    report = programmers.flash(k32w1.profile(BOARD), image)
    assert report.attempts == 2
    fault = report.transient_faults[0]
    assert "J-Link error -257" in fault and "write (loadfile) at 0xF4000" in fault
    assert board.status()["faults"]["fired"] == ["drop#6"]
    assert k32w1.flash_bytes(BOARD) == k32w1.expected_flash(image, ADDRESS, SIZE)


@pytest.mark.parametrize("frame", [1, 4, 7])  # hello (open), erase, read-back
def test_garbled_frame_is_retried_and_verifies(k32w1, board, frame):
    board.install_faults(FaultPlan(garble_frames={frame}, seed=frame))
    image = random_image(2500, seed=100 + frame)
    report = programmers.flash(k32w1.profile(BOARD), image)
    if frame > 2:  # 1-2 are the opening handshake, retried by open_programmer
        assert report.attempts == 2, report.transient_faults
    assert board.status()["faults"]["fired"] == [f"garble#{frame}"]
    assert k32w1.flash_bytes(BOARD) == k32w1.expected_flash(image, ADDRESS, SIZE)


def test_stalled_frame_within_the_timeout_needs_no_retry(k32w1, board):
    board.install_faults(FaultPlan(stall_frames={6: 0.05}))
    image = random_image(100, seed=16)
    assert programmers.flash(k32w1.profile(BOARD), image).attempts == 1
    assert board.status()["faults"]["fired"] == ["stall#6"]


def test_disconnect_mid_write_is_a_clear_error_not_a_partial_region(k32w1, board):
    image = random_image(3000, seed=17)
    message = str(cut_write_then_recover(k32w1, board, image, cut=500, address=ADDRESS, size=SIZE))
    assert BOARD in message and "0xF4000" in message and "partial image" in message


def test_flipped_bit_is_caught_by_verify(k32w1, board):
    board.install_faults(FaultPlan(flip_bit=(ADDRESS + 0x123, 0)))
    image = random_image(1000, seed=18)
    with pytest.raises(ProgrammerError) as exc:
        programmers.flash(k32w1.profile(BOARD), image)
    assert f"verify of factory data failed at 0x{ADDRESS + 0x123:X}" in str(exc.value)
    assert f"expected 0x{image[0x123]:02X}" in str(exc.value)
    assert not isinstance(exc.value, TransientError)  # a product failure: never retried


def test_board_process_gone_is_a_programmer_error(k32w1):
    """A probe that refuses the connection (board process stopped under us) fails clearly, not silently."""
    handle = k32w1.start(BOARD)
    profile = k32w1.profile(BOARD)
    from hil.programmers.jlink import JLinkProgrammer

    conn = programmers.resolve_connection(profile)
    handle.stop()
    with pytest.raises(ProgrammerError, match=r"k32w1-emu: open probe .*Could not connect"):
        JLinkProgrammer.open(conn, profile)


def test_hil_flash_at_the_app_address_rewrites_only_the_images_sectors(tmp_path, capsys):
    """`hil flash --address <app address>` erases and verifies the sectors the image needs; the rest of the
    app region (768 KiB here, 4 MiB on RW61x / RT) keeps its bytes and costs no erase or read-back."""
    from hil.cli import main

    with lab(tmp_path, {BOARD: "k32w1"}) as the_lab:
        before = random_image(FLASH_SIZE, seed=13)
        the_lab.prefill(BOARD, before)
        profile = the_lab.profile(BOARD)
        sector = profile.sector_size_at(profile.app_address)
        app = random_image(sector + 100, seed=14)
        (tmp_path / "app.bin").write_bytes(app)
        argv = ["flash", "--board", BOARD, "--address", hex(profile.app_address), str(tmp_path / "app.bin")]
        assert main(argv) == 0
        span = f"0x{profile.app_address:X}+0x{2 * sector:X}"
        assert f"(region 0x{2 * sector:X}, erased {span})" in capsys.readouterr().out
        end = profile.app_address + 2 * sector
        after = the_lab.flash_file(BOARD).read_bytes()
        assert after[profile.app_address : end] == app + b"\xff" * (2 * sector - len(app))
        assert after[end:] == before[end:]
