"""Emulated boards: the same wires as silicon (ptys, a fake J-Link library, UDP), never a side door.

An emulated board (`board.py`) is its own process with file-backed NOR flash (`flash.py`), its family's ROM
bootloader on a pty (`rom_dk6.py`, `rom_mboot.py`, `rom_sdp.py`), a J-Link probe endpoint reached through
pylink's real `JLink` class (`probe.py`), a console pty and a JSON control channel. Faults (dropped,
garbled or stalled frames, a disconnect mid-write, a flipped bit) come from `faults.py`. The harness
starts boards on demand with `board.ensure_running(profile)`; `hil emulate --board NAME` runs one in the
foreground.
"""
