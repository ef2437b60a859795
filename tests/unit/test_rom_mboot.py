"""The emulated MCU bootloader ROM against spsdk's real McuBoot client, raw frames and the `blhost` CLI."""

from __future__ import annotations

import binascii
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import serial
from emulated_mcu import emulated_mcu
from spsdk.mboot.exceptions import McuBootCommandError, McuBootConnectionError
from spsdk.mboot.interfaces.uart import MbootUARTInterface
from spsdk.mboot.mcuboot import McuBoot
from spsdk.mboot.properties import PropertyTag
from spsdk.utils.interfaces.device.serial_device import SerialDevice

from hil.emulator.faults import FaultPlan

BLHOST = Path(sys.executable).with_name("blhost")

# A real CLI's connection-level miss on a loaded machine (not a wrong answer): retried, nothing else is.
_LINK_MISS = re.compile(r"did not respond to PING|Connection issue -> Timeout")


def client(port: str, timeout_ms: int = 2000) -> McuBoot:
    return McuBoot(MbootUARTInterface(SerialDevice(port=port, timeout=timeout_ms)), cmd_exception=True)


def host_frame(ftype: int, payload: bytes) -> bytes:
    """A host frame built independently of the emulator's encoder (CRC-16/XMODEM over header + payload)."""
    head = struct.pack("<BBH", 0x5A, ftype, len(payload))
    return struct.pack("<BBHH", 0x5A, ftype, len(payload), binascii.crc_hqx(head + payload, 0)) + payload


def command(tag: int, *params: int) -> bytes:
    return host_frame(0xA4, struct.pack(f"<4B{len(params)}I", tag, 0, 0, len(params), *params))


def read_frame(ser: serial.Serial) -> tuple[int, bytes]:
    head = ser.read(6)
    assert len(head) == 6 and head[0] == 0x5A, head.hex()
    _, ftype, length, crc = struct.unpack("<BBHH", head)
    payload = ser.read(length)
    assert crc == binascii.crc_hqx(head[:4] + payload, 0)
    return ftype, payload


def test_properties_reflect_the_memory_map():
    with emulated_mcu("k32w1") as mcu, client(mcu.port.path) as mb:
        assert mb.get_property(PropertyTag.CURRENT_VERSION) == [0x4B030000]
        assert mb.get_property(PropertyTag.FLASH_START_ADDRESS) == [0x0]
        assert mb.get_property(PropertyTag.FLASH_SIZE) == [0x100000]
        assert mb.get_property(PropertyTag.FLASH_SECTOR_SIZE) == [0x2000]
        assert mb.get_property(PropertyTag.RAM_START_ADDRESS) == [0x20000000]
        assert mb.get_property(PropertyTag.MAX_PACKET_SIZE) == [512]
        with pytest.raises(McuBootCommandError, match="Unknown Property"):
            mb.get_property(0x22)


def test_property_values_are_constructor_data():
    with (
        emulated_mcu("rw61x", current_version=0x4B020100, max_packet_size=256) as mcu,
        client(mcu.port.path) as mb,
    ):
        assert mb.get_property(PropertyTag.CURRENT_VERSION) == [0x4B020100]
        assert mb.get_property(PropertyTag.FLASH_START_ADDRESS) == [0x08000000]
        assert mb.get_property(PropertyTag.MAX_PACKET_SIZE) == [256]
        data = os.urandom(1000)
        mb.flash_erase_region(0x0BFFF000, 0x1000)
        mb.write_memory(0x0BFFF000, data)
        assert mb.read_memory(0x0BFFF000, 1000) == data


def test_erase_region_checks_sector_alignment():
    with emulated_mcu("k32w1") as mcu, client(mcu.port.path) as mb:
        with pytest.raises(McuBootCommandError, match="Alignment"):
            mb.flash_erase_region(0xF4000, 0x1000)  # half of an 8 KiB sector
        with pytest.raises(McuBootCommandError, match="Alignment"):
            mb.flash_erase_region(0xF5000, 0x2000)
        assert mb.flash_erase_region(0xF4000, 0x2000)


def test_write_over_non_erased_flash_is_refused_with_105():
    with emulated_mcu("k32w1") as mcu, client(mcu.port.path) as mb:
        mb.flash_erase_region(0xF4000, 0x2000)
        mb.write_memory(0xF4010, b"\x0f" * 16)
        with pytest.raises(McuBootCommandError, match="FLASH Driver: Command Failure") as err:
            mb.write_memory(0xF4000, b"\x00" * 32)  # overlaps the programmed bytes
        assert err.value.error_value == 105
        assert mcu.memory.read(0xF4000, 32) == b"\xff" * 16 + b"\x0f" * 16  # strict: nothing programmed


def test_verify_policy_programs_bits_and_fails_when_the_result_differs():
    with emulated_mcu("k32w1", program_policy="verify") as mcu, client(mcu.port.path) as mb:
        mb.flash_erase_region(0xF4000, 0x2000)
        mb.write_memory(0xF4000, b"\x0f" * 16)
        with pytest.raises(McuBootCommandError, match="FLASH Driver: Command Failure") as err:
            mb.write_memory(0xF4000, b"\xf1" * 16)
        assert err.value.error_value == 105
        assert mcu.memory.read(0xF4000, 16) == b"\x01" * 16  # NOR: 0x0F & 0xF1
        mb.flash_erase_region(0xF4000, 0x2000)
        mb.write_memory(0xF4000, b"\xf1" * 16)
        assert mb.read_memory(0xF4000, 16) == b"\xf1" * 16


def test_unmapped_and_unconfigured_memory():
    with emulated_mcu("k32w1", needs_configure={"FLASH": 9}) as mcu, client(mcu.port.path) as mb:
        with pytest.raises(McuBootCommandError, match="Memory Range Invalid"):
            mb.read_memory(0x30000000, 16)
        with pytest.raises(McuBootCommandError, match="Memory Not Configured"):
            mb.flash_erase_region(0xF4000, 0x2000)
        mb.fill_memory(0x20000000, 4, 0x12345678)  # not a FlexSPI option word (tag nibble 0xC)
        with pytest.raises(McuBootCommandError, match="Invalid Argument"):
            mb.configure_memory(0x20000000, 9)
        mb.fill_memory(0x20000000, 4, 0xC0000007)
        assert mb.configure_memory(0x20000000, 9)
        assert mb.get_property(PropertyTag.EXTERNAL_MEMORY_ATTRIBUTES, 9)[1:3] == [0x0, 1024]
        assert mb.flash_erase_region(0xF4000, 0x2000)


def test_corrupt_host_frame_is_nacked_and_the_rom_recovers():
    with emulated_mcu("k32w1") as mcu, serial.Serial(mcu.port.path, 115200, timeout=1) as ser:
        bad = bytearray(command(0x07, 1, 0))
        bad[-1] ^= 0xFF
        ser.write(bytes(bad))
        assert ser.read(2) == b"\x5a\xa2"
        ser.write(command(0x07, 1, 0))
        assert ser.read(2) == b"\x5a\xa1"
        ftype, payload = read_frame(ser)
        assert ftype == 0xA4 and struct.unpack("<4B2I", payload)[4:] == (0, 0x4B030000)
        assert mcu.rom.stats.nacks_sent == 1


def test_a_new_host_frame_counts_as_the_ack_of_the_last_response():
    """The pty flush race (emulation-notes §1.4): the host's ACK never arrives, its next command does."""
    with emulated_mcu("k32w1") as mcu, serial.Serial(mcu.port.path, 115200, timeout=1) as ser:
        for expected in (0x100000, 0x2000):
            ser.write(command(0x07, 4 if expected == 0x100000 else 5, 0))  # FlashSize, then FlashSectorSize
            assert ser.read(2) == b"\x5a\xa1"
            _, payload = read_frame(ser)
            assert struct.unpack("<4B2I", payload)[5] == expected  # and no ACK sent for it
        assert mcu.rom.stats.implicit_acks == 1


def test_read_memory_frames_wait_for_the_hosts_ack():
    with (
        emulated_mcu("k32w1", max_packet_size=32) as mcu,
        serial.Serial(mcu.port.path, 115200, timeout=0.3) as ser,
    ):
        ser.write(command(0x03, 0x0, 64, 0))
        assert ser.read(2) == b"\x5a\xa1"
        ftype, payload = read_frame(ser)
        assert ftype == 0xA4 and payload[0] == 0xA3  # ReadMemoryResponse, data phase follows
        assert ser.read(1) == b""  # nothing until the host ACKs
        ser.write(b"\x5a\xa1")
        assert read_frame(ser) == (0xA5, b"\xff" * 32)
        ser.write(b"\x5a\xa1")
        assert read_frame(ser) == (0xA5, b"\xff" * 32)
        ser.write(b"\x5a\xa1")
        ftype, payload = read_frame(ser)
        assert payload[0] == 0xA0 and struct.unpack("<4B2I", payload)[4:] == (0, 0x03)


def test_disconnect_mid_write_programs_a_prefix_then_goes_silent():
    with emulated_mcu("k32w1") as mcu:
        with client(mcu.port.path, timeout_ms=300) as mb:
            mb.flash_erase_region(0xF4000, 0x2000)
            plan = mcu.install(FaultPlan(disconnect_after_bytes=700))
            data = os.urandom(2048)
            with pytest.raises((McuBootConnectionError, McuBootCommandError)):
                mb.write_memory(0xF4000, data)
        assert plan.disconnected and "disconnect" in plan.fired
        assert mcu.memory.read(0xF4000, 700) == data[:700]
        assert mcu.memory.read(0xF4000 + 700, 2048 - 700) == b"\xff" * (2048 - 700)
        with pytest.raises(McuBootConnectionError):
            client(mcu.port.path, timeout_ms=300).open()  # no answer to a ping any more


def test_dropped_and_garbled_frames_surface_as_connection_errors():
    with emulated_mcu("k32w1") as mcu, client(mcu.port.path, timeout_ms=300) as mb:
        mcu.install(FaultPlan(drop_frames={2}))  # the GetProperty response (frame 1 is the ACK)
        with pytest.raises(McuBootCommandError, match="No response"):
            mb.get_property(PropertyTag.CURRENT_VERSION)
        mcu.install(FaultPlan(garble_frames={2}, seed=1))
        with pytest.raises(McuBootConnectionError):
            mb.get_property(PropertyTag.CURRENT_VERSION)
        assert mb.get_property(PropertyTag.CURRENT_VERSION) == [0x4B030000]


def test_reset_answers_then_runs_the_board_hook():
    with emulated_mcu("rw61x") as mcu:
        with client(mcu.port.path) as mb:
            assert mb.reset(reopen=False)
        assert mcu.resets == ["reset"]


def test_stress_sessions_of_erase_write_read(capsys):
    """30 client sessions (the flush race bites at session and command boundaries): zero failures."""
    failures = []
    with emulated_mcu("rw61x") as mcu:
        for i in range(30):
            data = os.urandom(4096)
            try:
                with client(mcu.port.path) as mb:
                    mb.flash_erase_region(0x0BFFF000, 0x1000)
                    mb.write_memory(0x0BFFF000, data)
                    if mb.read_memory(0x0BFFF000, 4096) != data:
                        failures.append((i, "mismatch"))
            except Exception as exc:  # every failure is collected and reported, not just the first
                failures.append((i, repr(exc)))
        implicit = mcu.rom.stats.implicit_acks
    with capsys.disabled():
        print(f"\nmboot stress: 30 sessions, {len(failures)} failures, {implicit} implicit ACKs used")
    assert failures == []


def test_blhost_cli_writes_and_reads_back(tmp_path):
    """The real `blhost` executable on the pty: erase, write, read back, compare; errors exit non-zero."""
    data = os.urandom(4096)
    (tmp_path / "fd.bin").write_bytes(data)
    with emulated_mcu("rw61x") as mcu:
        port = f"{mcu.port.path},115200"

        def blhost(*args: str) -> subprocess.CompletedProcess[str]:
            # blhost's opening ping has a fixed short timeout that a loaded CI machine can miss ("did not
            # respond to PING", "Connection issue -> Timeout"); that, and only that, is retried.
            for _ in range(3):
                proc = subprocess.run(
                    [str(BLHOST), "-p", port, *args], capture_output=True, text=True, timeout=60
                )
                if proc.returncode == 0 or not _LINK_MISS.search(proc.stdout + proc.stderr):
                    break
            return proc

        (tmp_path / "cmds.blhost").write_text(
            "get-property 1\n"
            "flash-erase-region 0x0BFFF000 0x1000\n"
            f"write-memory 0x0BFFF000 {tmp_path / 'fd.bin'}\n"
            f"read-memory 0x0BFFF000 4096 {tmp_path / 'rb.bin'}\n"
        )
        run = blhost("batch", str(tmp_path / "cmds.blhost"))
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Current Version = K3.0.0" in run.stdout
        assert (tmp_path / "rb.bin").read_bytes() == data
        assert mcu.memory.read(0x0BFFF000, 4096) == data
        again = blhost("write-memory", "0x0BFFF000", str(tmp_path / "fd.bin"))
        assert again.returncode != 0 and "Command Failure" in again.stdout + again.stderr
