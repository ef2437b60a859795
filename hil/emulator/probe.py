"""An emulated SEGGER J-Link: a probe endpoint in the board process and the library object pylink loads.

Why at this boundary: pylink's `JLink` class is the client under test. It accepts any library object with
`.dll()`/`.unload()` (`pylink.JLink(lib=...)`), so `EmulatedJLinkLibrary` stands in for SEGGER's
libjlinkarm: every `JLINKARM_*` call pylink makes (open, connect, flash_file, memory_read8, reset...)
arrives here with pylink's own ctypes marshalling and error mapping intact. The DLL object forwards memory
and reset requests over TCP to the board process, the way a real J-Link forwards them over USB or IP:
`jl.open(ip_addr="127.0.0.1:PORT")` selects the board, just as `ip_addr="10.0.0.5:19020"` selects a
networked J-Link.

Wire (little-endian; CRC-32 over everything before it; both directions checked):

    request   b"JLq1" | op u8 | len u32 | payload | crc32 u32
    response  b"JLr1" | status i32 | len u32 | payload | crc32 u32     (status < 0: a J-Link error code)

Flash writes go through a model of J-Link's flash loader: each touched sector is read, merged, erased and
reprogrammed (read-modify-write), sectors whose content would not change are skipped, and all-0xFF data
only erases. That behaviour is SEGGER's documented "smart" download as far as this project knows; the exact
sector handling of the real K32W1/RT flash loaders is a guess (emulation-notes §2 says neither prototype
modelled it). A response lost to a fault plan makes the DLL return EMU_COMM_ERROR after its timeout, as a
real probe does on a USB/IP failure.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import socket
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hil.emulator.flash import MemoryAccessError, MemoryMap

if TYPE_CHECKING:
    from hil.emulator.board import Board
    from hil.emulator.faults import FaultPlan

REQ_MAGIC, RSP_MAGIC = b"JLq1", b"JLr1"
OP_HELLO, OP_CONNECT, OP_READ, OP_WRITE, OP_RESET, OP_HALT, OP_GO, OP_ERASE_CHIP = range(1, 9)

# pylink.enums.JLinkGlobalErrors values (the DLL's return codes)
UNSPECIFIED_ERROR = -1
EMU_NO_CONNECTION = -256
EMU_COMM_ERROR = -257
NO_CPU_FOUND = -261
UNKNOWN_FILE_FORMAT = -269
WRITE_TARGET_MEMORY_FAILED = -270
OPEN_FILE_FAILED = -268

SERIAL_BASE = 600000000  # emulated probe serial numbers: SERIAL_BASE + TCP port


def _pack(magic: bytes, head: bytes, payload: bytes) -> bytes:
    body = magic + head + struct.pack("<I", len(payload)) + payload
    return body + struct.pack("<I", zlib.crc32(body))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return bytes(buf)


# -- the board side ----------------------------------------------------------------------------------------
def flash_download(memory: MemoryMap, faults: FaultPlan, address: int, data: bytes) -> int:
    """J-Link flash-loader model: read-modify-write every touched sector. Returns a J-Link status.

    Bytes count against the fault plan's program budget only when they program something (all-0xFF data is
    an erase). Running out of budget leaves the sector erased and partly programmed, like a cut cable.
    """
    try:
        region = memory.region(address, len(data))
    except MemoryAccessError:
        return WRITE_TARGET_MEMORY_FAILED
    if not region.is_flash:
        region.write_raw(address, data)
        return 0
    blank = data.count(0xFF) == len(data)
    allowed = len(data) if blank else faults.allow_program(len(data))
    part = data[:allowed]
    sector = region.sector_size
    start = address - (address - region.base) % sector
    end = address + len(part)
    for sector_address in range(start, end, sector):
        old = region.read(sector_address, sector)
        new = bytearray(old)
        lo, hi = max(address, sector_address), min(end, sector_address + sector)
        new[lo - sector_address : hi - sector_address] = part[lo - address : hi - address]
        if new == old:
            continue
        region.erase(sector_address, sector)
        region.program(sector_address, bytes(new))
    if not blank:
        faults.after_program(memory, address, allowed)
    region.flush()
    return 0 if allowed == len(data) else EMU_COMM_ERROR


class ProbeServer:
    """The J-Link endpoint of one board process: TCP on 127.0.0.1, one thread per client connection."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.halted = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ProbeServer:
        self._thread = threading.Thread(target=self._accept, name="probe", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="probe-client", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while not self._stop.is_set():
                try:
                    head = _recv_exact(conn, 9)
                    if head[:4] != REQ_MAGIC:
                        return  # out of step: drop the link, the client reconnects
                    op, length = head[4], struct.unpack_from("<I", head, 5)[0]
                    rest = _recv_exact(conn, length + 4)
                except (ConnectionError, OSError):
                    return
                payload, crc = rest[:-4], struct.unpack("<I", rest[-4:])[0]
                if crc != zlib.crc32(head + payload):
                    status, body = EMU_COMM_ERROR, b""
                elif self.board.faults.disconnected:
                    continue  # the cable is cut: requests vanish
                else:
                    with self.board.lock:
                        self.board.touch()
                        status, body = self._handle(op, payload)
                out = self.board.faults.outgoing(_pack(RSP_MAGIC, struct.pack("<i", status), body))
                if out:
                    try:
                        conn.sendall(out)
                    except OSError:
                        return

    def _handle(self, op: int, p: bytes) -> tuple[int, bytes]:
        board = self.board
        if op == OP_HELLO:
            info = {
                "board": board.profile.name,
                "family": board.profile.family,
                "device": board.profile.spec.jlink_device,
                "serial": SERIAL_BASE + self.port,
            }
            return 0, json.dumps(info).encode()
        if op == OP_CONNECT:
            wanted = board.profile.spec.jlink_device.upper()
            return (0, b"") if p.decode(errors="replace").upper() == wanted else (NO_CPU_FOUND, b"")
        if op == OP_READ:
            address, length = struct.unpack("<II", p[:8])
            try:
                return 0, board.memory.read(address, length)
            except MemoryAccessError:
                return UNSPECIFIED_ERROR, b""
        if op == OP_WRITE:
            (address,) = struct.unpack_from("<I", p)
            return flash_download(board.memory, board.faults, address, p[4:]), b""
        if op == OP_RESET:
            board.reset("probe")
            self.halted = True
            return 0, b""
        if op == OP_HALT:
            self.halted = True
            return 0, b""
        if op == OP_GO:
            self.halted = False
            return 0, b""
        if op == OP_ERASE_CHIP:
            for region in board.memory.regions:
                if region.is_flash:
                    region.erase(region.base, region.size)
            return 0, b""
        return UNSPECIFIED_ERROR, b""


# -- the client side: what pylink loads ---------------------------------------------------------------------
class _Fn:
    """A callable that, like a ctypes function, lets pylink set `.restype` / `.argtypes` on it."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = f
        self.restype: Any = None
        self.argtypes: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # pylink passes some arguments by keyword (JLINKARM_BeginDownload(flags=...)): keep their order
        return self.f(*args, *kwargs.values())


def _address_of(obj: Any) -> int:
    """ctypes array or byref() argument -> address usable with memmove / string_at."""
    return ctypes.addressof(obj._obj) if type(obj).__name__ == "CArgObject" else ctypes.addressof(obj)


class EmulatedJLinkDLL:
    """The `JLINKARM_*` functions pylink calls, forwarded to a board's probe endpoint."""

    def __init__(self, timeout: float = 2.0, address: tuple[str, int] | None = None) -> None:
        self.timeout = timeout
        self.address = address
        self.sock: socket.socket | None = None
        self.is_open = False
        self.connected = False
        self.device: str | None = None
        self.info: dict[str, Any] = {}
        self._download: list[tuple[int, bytes]] | None = None
        self._error: ctypes.c_char_p | None = None
        self.commands: list[str] = []
        functions: dict[str, Callable[..., Any]] = {
            "JLINKARM_SelectIP": self._select_ip,
            "JLINKARM_EMU_SelectIPBySN": lambda sn: self._select_default(),
            "JLINKARM_EMU_SelectByUSBSN": lambda sn: self._select_default(),
            "JLINKARM_SelectUSB": lambda port: self._select_default(),
            "JLINKARM_OpenEx": lambda log, err: self._open(),
            "JLINKARM_Close": self._close,
            "JLINKARM_IsOpen": lambda: int(self.is_open),
            "JLINKARM_EMU_IsConnected": lambda: int(self.is_open),
            "JLINKARM_IsConnected": lambda: int(self.connected),
            "JLINKARM_GetCompileDateTime": lambda: None,
            "JLINKARM_GetRegisterName": lambda i: None,
            "JLINKARM_GetDLLVersion": lambda: 79600,
            "JLINKARM_GetSN": lambda: int(self.info.get("serial", 0)),
            "JLINKARM_HasError": lambda: 0,
            "JLINKARM_ClrError": lambda: None,
            "JLINKARM_ExecCommand": self._exec,
            "JLINKARM_TIF_GetAvailable": self._tif_available,
            "JLINKARM_TIF_Select": lambda tif: 0,
            "JLINKARM_DEVICE_GetIndex": self._device_index,
            "JLINKARM_DEVICE_GetInfo": lambda index, ref: len(_devices()) if index == -1 else 0,
            "JLINKARM_SetSpeed": lambda speed: None,
            "JLINKARM_Connect": self._connect,
            "JLINKARM_IsHalted": lambda: 1,
            "JLINKARM_Halt": self._halt,
            "JLINKARM_Go": self._go,
            "JLINKARM_SetResetDelay": lambda ms: None,
            "JLINKARM_Reset": lambda: self._request(OP_RESET)[0],
            "JLINK_SetFlashProgProgressCallback": lambda cb: None,
            "JLINK_DownloadFile": self._download_file,
            "JLINK_EraseChip": lambda: self._request(OP_ERASE_CHIP)[0],
            "JLINKARM_BeginDownload": self._begin_download,
            "JLINKARM_EndDownload": self._end_download,
            "JLINKARM_WriteMem": lambda address, n, buf: self._write_mem(address, n, buf, 0),
            "JLINKARM_WriteMemEx": self._write_mem,
            "JLINKARM_ReadMemEx": self._read_mem,
            "JLINKARM_SetErrorOutHandler": lambda h: None,
            "JLINKARM_SetWarnOutHandler": lambda h: None,
            "JLINKARM_SetLogFile": lambda path: None,
            "JLINKARM_EnableLog": lambda h: None,
            "JLINKARM_EnableLogCom": lambda h: None,
            "JLINK_SetHookUnsecureDialog": lambda f: 0,
        }
        for name, f in functions.items():
            setattr(self, name, _Fn(f))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("JLINK"):
            raise NotImplementedError(f"emulated J-Link: {name} is not emulated")
        raise AttributeError(name)

    # -- link ------------------------------------------------------------------------------------------
    def _select_ip(self, host: bytes, port: int) -> int:
        self.address = (bytes(host).decode(), int(port))
        return 0 if self._dial() else 1  # pylink: 1 means "could not connect"

    def _select_default(self) -> int:
        return 0 if self.address and self._dial() else -1

    def _dial(self) -> bool:
        self._hangup()
        assert self.address is not None
        try:
            self.sock = socket.create_connection(self.address, timeout=self.timeout)
        except OSError:
            return False
        self.sock.settimeout(self.timeout)
        return True

    def _hangup(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None

    def _open(self) -> Any:
        status, body = self._request(OP_HELLO)
        if status != 0:
            # pylink raises this text as JLinkException; it is the DLL's wording for EMU_COMM_ERROR
            self._error = ctypes.c_char_p(b"Emulator connection error.")
            return self._error
        self.info = json.loads(body)
        self.is_open = True
        return None

    def _close(self) -> None:
        self.is_open = self.connected = False
        self._hangup()

    def _request(self, op: int, payload: bytes = b"") -> tuple[int, bytes]:
        """One round trip; EMU_COMM_ERROR on timeout or a corrupt answer (the link is dropped, then)."""
        if self.sock is None:
            return EMU_NO_CONNECTION, b""
        try:
            self.sock.sendall(_pack(REQ_MAGIC, bytes([op]), payload))
            head = _recv_exact(self.sock, 12)
            length = struct.unpack_from("<I", head, 8)[0]
            if head[:4] != RSP_MAGIC or length > 64 * 1024 * 1024:
                raise ConnectionError("corrupt response header")
            rest = _recv_exact(self.sock, length + 4)
            if struct.unpack("<I", rest[-4:])[0] != zlib.crc32(head + rest[:-4]):
                raise ConnectionError("response CRC mismatch")
        except (OSError, ConnectionError):
            self._hangup()  # out of step with the probe: only a reopen recovers, as with a real probe
            return EMU_COMM_ERROR, b""
        return struct.unpack_from("<i", head, 4)[0], rest[:-4]

    # -- target ----------------------------------------------------------------------------------------
    def _exec(self, cmd: bytes, err_buf: Any, size: int) -> int:
        text = bytes(cmd).decode(errors="replace")
        self.commands.append(text)
        key, _, value = text.partition("=")
        if key.strip().lower() == "device":
            self.device = value.strip()
        return 0

    def _tif_available(self, ref: Any) -> None:
        ref._obj.value = (1 << 0) | (1 << 1)  # JTAG | SWD

    def _device_index(self, name: bytes) -> int:
        names = [d.upper() for d in _devices()]
        wanted = bytes(name).decode(errors="replace").upper()
        return names.index(wanted) + 1 if wanted in names else -1

    def _connect(self) -> int:
        status, _ = self._request(OP_CONNECT, (self.device or "").encode())
        self.connected = status == 0
        return status

    def _halt(self) -> int:
        # 1 rather than 0 on success: pylink sleeps 1 s after a halt reported as 0 (emulation-notes §2);
        # pylink's flash paths ignore the result either way.
        status, _ = self._request(OP_HALT)
        return 1 if status == 0 else status

    def _go(self) -> None:
        self._request(OP_GO)

    def _read_mem(self, address: int, nbytes: int, buf: Any, access: int) -> int:
        status, data = self._request(OP_READ, struct.pack("<II", address, nbytes))
        if status < 0:
            return status
        if len(data) != nbytes:
            return EMU_COMM_ERROR
        ctypes.memmove(_address_of(buf), data, nbytes)
        return nbytes if access in (0, 1) else nbytes // access

    def _write_mem(self, address: int, nbytes: int, buf: Any, access: int) -> int:
        if isinstance(buf, bytes | bytearray):  # pylink's flash() hands the DLL a bytes object
            data = bytes(buf[:nbytes])
        else:
            data = ctypes.string_at(_address_of(buf), nbytes)
        if self._download is not None:
            self._download.append((address, data))
            return nbytes
        status, _ = self._request(OP_WRITE, struct.pack("<I", address) + data)
        if status < 0:
            return status
        return nbytes if access in (0, 1) else nbytes // access

    def _begin_download(self, flags: int = 0) -> int:
        self._download = []
        return 0

    def _end_download(self) -> int:
        pending, self._download = self._download or [], None
        for address, data in pending:
            status, _ = self._request(OP_WRITE, struct.pack("<I", address) + data)
            if status < 0:
                return status
        return 0

    def _download_file(self, path: bytes, address: int) -> int:
        file = Path(bytes(path).decode())
        if file.suffix.lower() != ".bin":
            return UNKNOWN_FILE_FORMAT  # hex/elf carry their own addresses; only raw binaries are modelled
        try:
            data = file.read_bytes()
        except OSError:
            return OPEN_FILE_FAILED
        status, _ = self._request(OP_WRITE, struct.pack("<I", address) + data)
        return status if status < 0 else len(data)


def _devices() -> list[str]:
    from hil.boards.families import FAMILIES

    return [f.jlink_device for f in FAMILIES.values()]


class EmulatedJLinkLibrary:
    """What `pylink.JLink(lib=...)` needs of a library: `.dll()` and `.unload()`."""

    def __init__(self, timeout: float = 2.0, address: tuple[str, int] | None = None) -> None:
        self._dll = EmulatedJLinkDLL(timeout=timeout, address=address)

    def dll(self) -> EmulatedJLinkDLL:
        return self._dll

    def unload(self) -> bool:
        self._dll._close()
        return True
