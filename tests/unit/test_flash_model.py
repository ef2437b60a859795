"""The NOR flash model, the fault plan and the pty port that every ROM emulator relies on."""

from __future__ import annotations

import os
import time

import pytest
import serial

from hil.emulator.faults import FaultPlan
from hil.emulator.flash import MemoryAccessError, MemoryMap, Region
from hil.emulator.probe import flash_download
from hil.emulator.pty import PtyPort


def test_flash_erases_to_ff_and_programming_only_clears_bits():
    r = Region("FLASH", 0x1000, 0x400, 0x200)
    assert r.read(0x1000, 4) == b"\xff" * 4
    assert r.program(0x1000, b"\x0f\xf0")
    assert r.read(0x1000, 2) == b"\x0f\xf0"
    # programming over programmed bytes ANDs them and reports that the result is not what was asked
    assert not r.program(0x1000, b"\xf0\xf0")
    assert r.read(0x1000, 2) == b"\x00\xf0"
    r.erase(0x1000, 0x200)
    assert r.is_erased(0x1000, 0x200)


def test_erase_must_be_sector_aligned_and_ram_cannot_be_erased():
    flash = Region("FLASH", 0x0, 0x800, 0x200)
    with pytest.raises(MemoryAccessError, match="not aligned"):
        flash.erase(0x100, 0x200)
    with pytest.raises(MemoryAccessError, match="not aligned"):
        flash.erase(0x0, 0x100)
    ram = Region("RAM", 0x20000000, 0x100)
    assert ram.read(0x20000000, 2) == b"\0\0"
    assert ram.program(0x20000000, b"\x12\x34") and ram.read(0x20000000, 2) == b"\x12\x34"
    with pytest.raises(MemoryAccessError, match="erase of RAM"):
        ram.erase(0x20000000, 0x100)


def test_flash_file_persists_and_a_size_change_starts_blank(tmp_path):
    path = tmp_path / "flash.bin"
    r = Region("FLASH", 0x0, 0x400, 0x200, path)
    r.program(0x10, b"hello")
    r.flush()
    assert path.read_bytes()[0x10:0x15] == b"hello"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = Region("FLASH", 0x0, 0x400, 0x200, path)
    assert again.read(0x10, 5) == b"hello"
    resized = Region("FLASH", 0x0, 0x800, 0x200, path)
    assert resized.is_erased(0x0, 0x800)


def test_memory_map_routes_by_address_and_refuses_gaps():
    m = MemoryMap([Region("RAM", 0x20000000, 0x100), Region("FLASH", 0x0, 0x400, 0x200)])
    assert [r.name for r in m.regions] == ["FLASH", "RAM"]
    assert m.region(0x3FF).name == "FLASH"
    with pytest.raises(MemoryAccessError):
        m.region(0x3FF, 2)  # straddles the end of FLASH
    with pytest.raises(MemoryAccessError):
        m.read(0x10000000, 1)
    assert m.by_name("RAM").base == 0x20000000


def test_fault_plan_counts_frames_from_installation_and_fires_once():
    plan = FaultPlan(drop_frames={2}, garble_frames={3}, seed=1)
    assert plan.outgoing(b"one") == b"one"
    assert plan.outgoing(b"two") is None
    garbled = plan.outgoing(b"three")
    assert garbled is not None and garbled != b"three" and len(garbled) == 5
    assert sum(a != b for a, b in zip(garbled, b"three", strict=True)) == 1
    assert plan.outgoing(b"four") == b"four"
    assert plan.fired == ["drop#2", "garble#3"]
    assert FaultPlan.from_dict({"drop_frames": [2], "stall_frames": {"4": 0.1}}).stall_frames == {4: 0.1}


def test_disconnect_budget_and_bit_flip():
    memory = MemoryMap([Region("FLASH", 0x0, 0x400, 0x200)])
    plan = FaultPlan(disconnect_after_bytes=300, flip_bit=(0x105, 7))
    assert plan.allow_program(200) == 200
    plan.after_program(memory, 0x0, 200)  # the flip target is not in this range
    assert plan.allow_program(200) == 100 and plan.disconnected
    assert plan.outgoing(b"late") is None  # a cut cable answers nothing
    memory.program(0x100, b"\x00" * 8)
    plan.after_program(memory, 0x100, 8)
    assert memory.read(0x105, 1) == b"\x80"
    assert plan.fired == ["disconnect", "flip@0x105.7"]


def test_jlink_flash_loader_model_read_modify_writes_sectors():
    """The probe's flash loader: touched sectors are erased and rewritten with their other bytes kept."""
    memory = MemoryMap([Region("FLASH", 0x0, 0x800, 0x200), Region("RAM", 0x20000000, 0x100)])
    memory.program(0x0, b"\x00" * 0x800)
    assert flash_download(memory, FaultPlan(), 0x1F0, b"\x11" * 0x20) == 0  # straddles two sectors
    data = memory.read(0x0, 0x800)
    assert data[0x1F0:0x210] == b"\x11" * 0x20
    assert data[:0x1F0] == b"\x00" * 0x1F0 and data[0x210:] == b"\x00" * (0x800 - 0x210)
    assert flash_download(memory, FaultPlan(), 0x200, b"\xff" * 0x200) == 0  # all-0xFF data: an erase
    assert memory.read(0x200, 0x200) == b"\xff" * 0x200
    assert flash_download(memory, FaultPlan(), 0x20000010, b"ab") == 0 and memory.read(0x20000010, 2) == b"ab"
    assert flash_download(memory, FaultPlan(), 0x10000, b"x") < 0  # unmapped


def test_pty_port_serves_a_pyserial_client_and_drops_output_nobody_reads():
    port = PtyPort()
    received: list[bytes] = []
    port.start(lambda data: (received.append(data), port.send(data.upper())))
    try:
        with serial.Serial(port.path, 115200, timeout=1) as client:
            client.write(b"ping")
            assert client.read(4) == b"PING"
        assert b"".join(received) == b"ping"
        # nobody reads now: with a write timeout the port gives up instead of blocking its thread
        port.write_timeout = 0.05
        t0 = time.monotonic()
        while port.send(os.urandom(4096)):  # ends when a send gives up (returns False)
            assert time.monotonic() - t0 < 10, "the pty never filled up"
    finally:
        port.close()
