"""Fault injection for emulated boards: what a flaky cable, a stalled ROM or a power cut looks like.

A ROM or probe emulator passes every frame it is about to send through `outgoing()`, and reports flash
programming through `after_program()`. Frames are counted from the moment the plan is installed, so a test
can say "drop the 3rd response" without knowing the protocol's chatter. Each fault fires once.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from hil.emulator.flash import MemoryMap


@dataclass
class FaultPlan:
    drop_frames: set[int] = field(default_factory=set)  # 1-based response frame numbers never sent
    garble_frames: set[int] = field(default_factory=set)  # ... sent with one byte corrupted
    stall_frames: dict[int, float] = field(default_factory=dict)  # ... sent after a delay (seconds)
    disconnect_after_bytes: int | None = None  # go silent once this many bytes were programmed
    flip_bit: tuple[int, int] | None = None  # (address, bit): flipped right after that byte is programmed
    seed: int = 0

    _frames: int = field(default=0, init=False, repr=False)
    _programmed: int = field(default=0, init=False, repr=False)
    disconnected: bool = field(default=False, init=False)
    fired: list[str] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def from_dict(cls, d: dict) -> FaultPlan:
        return cls(
            drop_frames=set(d.get("drop_frames", ())),
            garble_frames=set(d.get("garble_frames", ())),
            stall_frames={int(k): float(v) for k, v in d.get("stall_frames", {}).items()},
            disconnect_after_bytes=d.get("disconnect_after_bytes"),
            flip_bit=tuple(d["flip_bit"]) if d.get("flip_bit") else None,  # type: ignore[arg-type]
            seed=d.get("seed", 0),
        )

    def outgoing(self, frame: bytes) -> bytes | None:
        """The bytes to put on the wire for `frame`, or None to send nothing."""
        with self._lock:
            if self.disconnected:
                return None
            self._frames += 1
            n = self._frames
        if n in self.drop_frames:
            self.fired.append(f"drop#{n}")
            return None
        if n in self.stall_frames:
            self.fired.append(f"stall#{n}")
            time.sleep(self.stall_frames[n])
        if n in self.garble_frames and frame:
            self.fired.append(f"garble#{n}")
            rng = random.Random(self.seed + n)
            i = rng.randrange(len(frame))
            frame = frame[:i] + bytes([frame[i] ^ 0x5A]) + frame[i + 1 :]
        return frame

    def allow_program(self, length: int) -> int:
        """How many of `length` bytes may still be programmed before the simulated disconnect."""
        if self.disconnect_after_bytes is None:
            return length
        left = max(self.disconnect_after_bytes - self._programmed, 0)
        if left < length:
            self.disconnected = True
            self.fired.append("disconnect")
        return min(left, length)

    def after_program(self, memory: MemoryMap, address: int, length: int) -> None:
        self._programmed += length
        if self.flip_bit is not None:
            target, bit = self.flip_bit
            if address <= target < address + length:
                region = memory.region(target)
                value = region.read(target, 1)[0] ^ (1 << bit)
                region.write_raw(target, bytes([value]))
                self.fired.append(f"flip@0x{target:X}.{bit}")
                self.flip_bit = None
