"""The blhost backend (spsdk McuBoot) through write_region against emulated RW61x and K32W1 ROMs on a pty."""

from __future__ import annotations

import os

import pytest
from emulated_mcu import EmulatedMcu, emulated_mcu

from hil.emulator.faults import FaultPlan
from hil.emulator.pty import PtyPort
from hil.errors import ProgrammerError, TransientError
from hil.programmers import backend
from hil.programmers.base import Connection, write_region
from hil.programmers.blhost import BlhostProgrammer

FACTORY_DATA_SIZE = 1500  # a typical plain factory-data image: header, SHA-256 prefix, certs, keys, TLVs
FAST_MS = 300  # short client timeout: faults then cost a fraction of a second


def open_programmer(mcu: EmulatedMcu, timeout_ms: int = 2000, **options: object) -> BlhostProgrammer:
    return mcu.open(BlhostProgrammer, timeout_ms, **options)


def fill_neighbours(mcu: EmulatedMcu, address: int, end: int, sector: int) -> dict[int, bytes]:
    """Program a pattern into the flash sectors just outside [address, end) that exist on the part."""
    kept = {}
    for start in (address - sector, end):
        try:
            region = mcu.memory.region(start, sector)
        except Exception:
            continue
        pattern = bytes((start >> 12) + i & 0xFF for i in range(sector))
        region.program(start, pattern)
        kept[start] = pattern
    return kept


def test_backend_is_registered():
    assert backend("blhost") is BlhostProgrammer


@pytest.mark.parametrize("family", ["rw61x", "k32w1"])
def test_writes_factory_data_at_the_profile_address_and_reads_it_back(family):
    image = os.urandom(FACTORY_DATA_SIZE)
    with emulated_mcu(family) as mcu:
        profile = mcu.profile()
        region = profile.factory_data_region
        assert region.address == {"rw61x": 0x0BFFF000, "k32w1": 0xF4000}[family]
        neighbours = fill_neighbours(mcu, region.address, region.end, region.sector_size)
        assert neighbours, "at least one neighbouring sector is checked"
        mcu.memory.region(region.address).program(region.address + 3000, b"\x00" * 16)  # stale old image
        with BlhostProgrammer.open(profile.connection, profile) as prog:
            report = write_region(prog, profile, image)
            assert prog.read(region.address, len(image)) == image
        assert report.attempts == 1 and report.transient_faults == []
        assert mcu.memory.read(region.address, region.size) == image + b"\xff" * (region.size - len(image))
        for start, pattern in neighbours.items():
            assert mcu.memory.read(start, len(pattern)) == pattern, f"sector 0x{start:X} changed"


# Frame numbers count everything the ROM sends once the plan is installed: ACKs and responses alike.
FAULTS = {
    "drop-erase": {"drop_frames": [2]},  # the erase response
    "drop-write": {"drop_frames": [6]},  # the write-memory go-ahead
    "drop-data-ack": {"drop_frames": [9]},  # the ACK of a data packet
    "drop-read": {"drop_frames": [14]},  # a read-memory data packet
    "garble-erase": {"garble_frames": [2], "seed": 7},
    "garble-write-twice": {"garble_frames": [6, 40], "seed": 3},
    "garble-read": {"garble_frames": [14], "seed": 11},
    "stall-write": {"stall_frames": {6: 0.5}},  # longer than the 300 ms timeout
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("family", ["rw61x", "k32w1"])
def test_transient_faults_are_retried_and_the_write_verifies(family, fault):
    image = os.urandom(FACTORY_DATA_SIZE)
    with emulated_mcu(family) as mcu:
        prog = open_programmer(mcu, FAST_MS)
        try:
            plan = mcu.install(FaultPlan.from_dict(FAULTS[fault]))
            report = write_region(prog, prog.profile, image)
        finally:
            prog.close()
        assert plan.fired, "the fault was injected"
        assert report.transient_faults, "and it was noticed and retried"
        assert report.attempts == len(report.transient_faults) + 1
        region = prog.profile.factory_data_region
        assert mcu.memory.read(region.address, len(image)) == image


def test_a_disconnect_mid_write_ends_in_a_clear_error():
    with emulated_mcu("rw61x") as mcu:
        prog = open_programmer(mcu, FAST_MS)
        plan = mcu.install(FaultPlan(disconnect_after_bytes=1000))
        with pytest.raises(ProgrammerError) as err:
            write_region(prog, prog.profile, os.urandom(FACTORY_DATA_SIZE))
        prog.close()
    message = str(err.value)
    assert isinstance(err.value, TransientError)  # a dead link, as on dk6/jlink: the run's one retry applies
    assert "rw61x-emu" in message and "0xBFFF000" in message
    assert "partial image" in message and "ping" in message
    assert plan.fired == ["disconnect"]


def test_a_flipped_bit_is_caught_by_verify():
    with emulated_mcu("k32w1") as mcu:
        prog = open_programmer(mcu)
        mcu.install(FaultPlan(flip_bit=(0xF4000 + 100, 3)))
        with pytest.raises(ProgrammerError, match="verify of factory data failed at 0xF4064") as err:
            write_region(prog, prog.profile, os.urandom(FACTORY_DATA_SIZE))
        prog.close()
    assert not isinstance(err.value, TransientError)  # a product failure: never retried


def test_rom_status_errors_are_not_retried_and_name_step_and_address():
    with emulated_mcu("k32w1") as mcu, open_programmer(mcu) as prog:
        prog.erase(0xF4000, 0x2000)
        prog.write(0xF4000, b"\x00" * 8)
        with pytest.raises(ProgrammerError) as err:
            prog.write(0xF4000, b"\x01" * 8)
        assert not isinstance(err.value, TransientError)
        assert str(err.value).startswith("k32w1-emu: write at 0xF4000 (blhost via /dev/pts/")
        assert "status 105; flash not erased" in str(err.value)
        with pytest.raises(ProgrammerError, match="not aligned to the 0x2000-byte sector"):
            prog.erase(0xF5000, 0x2000)
        with pytest.raises(ProgrammerError, match="status 10200"):
            prog.read(0x30000000, 16)


def test_large_erases_are_split_into_chunks():
    with emulated_mcu("rw61x") as mcu, open_programmer(mcu, erase_chunk=0x4000) as prog:
        prog.erase(0x08000000, 0x10000)
        erases = [params[:2] for tag, params in mcu.rom.stats.commands if tag == 0x02]
        assert erases == [(0x08000000 + i * 0x4000, 0x4000) for i in range(4)]


def test_flexspi_option_configures_memory_after_connecting():
    with emulated_mcu("rw61x", needs_configure={"FLASH_TOP": 9}) as mcu:
        with pytest.raises(ProgrammerError, match="Memory Not Configured"), open_programmer(mcu) as prog:
            prog.erase(0x0BFFF000, 0x1000)
        with open_programmer(mcu, flexspi_option=0xC0000004, flexspi_config_address="0x20001000") as prog:
            prog.erase(0x0BFFF000, 0x1000)
        assert mcu.memory.read(0x20001000, 4) == (0xC0000004).to_bytes(4, "little")


def test_reset_runs_the_board_reset_and_closes():
    with emulated_mcu("rw61x") as mcu:
        prog = open_programmer(mcu)
        prog.reset()
        prog.close()
        assert mcu.resets == ["reset"]
        with pytest.raises(ProgrammerError, match="closed"):
            prog.read(0x0BFFF000, 4)


def test_a_board_that_does_not_answer_is_a_transient_programmer_error():
    silent = PtyPort()  # nobody serves it
    try:
        profile = None
        with emulated_mcu("rw61x") as mcu:
            profile = mcu.profile(timeout_ms=FAST_MS)
        with pytest.raises(ProgrammerError, match="no answer to the bootloader ping") as err:
            BlhostProgrammer.open(Connection(port=silent.path, timeout_ms=FAST_MS), profile)
        assert isinstance(err.value, TransientError)  # a timeout: retried by open_programmer / the run
    finally:
        silent.close()
    with pytest.raises(ProgrammerError, match="open port"):
        BlhostProgrammer.open(Connection(port="/dev/does-not-exist", timeout_ms=FAST_MS), profile)
