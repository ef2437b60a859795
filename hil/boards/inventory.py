"""boards.toml: the inventory of boards, real and emulated, checked against a schema before anything runs.

Schema (every key optional unless marked; addresses are TOML integers, 0x... hex allowed):

    [board.NAME]                      # NAME: lower-case letters, digits, '.', '_' or '-'
    family = "k32w1"                  # required: k32w0x1 | k32w1 | rt1060 | rt1170 | rw61x
    emulated = true                   # default false
    programmer = "blhost"             # default: the family's first programmer
    factory_data_address = 0xF4000    # default: the family's address; or instead a symbol:
    factory_data_symbol = "__MATTER_FACTORY_DATA_START"   # default: the family's symbol
    map_file = "build/app.map"        # GNU ld map to look the symbol up in (relative to this file), or
    elf = "build/app.elf"             # an ELF with a symbol table
    factory_data_size = 0x2000        # defaults: the family's
    sector_size = 0x2000
    app_address = 0x0
    app_size = 0xC0000
    aes_key = "2B7E...4F3C"           # hex, 16 or 32 bytes, only where the firmware decrypts
    aes_key_file = "keys/fd.key"      # or: a file holding the hex key (keeps real keys out of this file)
    [board.NAME.connection]           # real boards: how to reach them
    port = "/dev/ttyUSB0"             # serial programmers (dk6, blhost, sdp)
    baudrate = 115200
    timeout_ms = 5000
    jlink_serial = 123456789          # jlink: USB serial number, or
    jlink_ip = "192.168.1.20:19020"   # J-Link over IP
    [board.NAME.options]              # passed to the programmer backend (e.g. the RT flashloader image)
    [board.NAME.emulator]             # passed to the emulated ROM (e.g. the DK6 MAC address)
    labgrid_place = "k32w1-03"        # a board in a labgrid lab (hil.lab.config): reached through the place
    [lab]                             # the lab: coordinator = "host:20408", lease_seconds = 30

Every schema error names the file, the board and the key, and exits 2 through `ConfigError`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hil.boards.elf import find_symbol_in_elf
from hil.boards.families import FAMILIES, Family
from hil.boards.mapfile import find_symbol_in_map
from hil.boards.profile import BoardProfile
from hil.errors import ConfigError, InputError
from hil.lab.config import LabConfig, check_place_name, parse_lab_table
from hil.programmers.base import Connection

# Serial programmers need a port on a real board; J-Link needs a serial number or an IP address.
SERIAL_PROGRAMMERS = frozenset({"dk6", "blhost", "sdp"})
# A short timeout keeps fault-injection retries fast on emulated boards (a pty answers in microseconds).
EMULATED_TIMEOUT_MS = 1000

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_INT_KEYS = ("factory_data_address", "factory_data_size", "sector_size", "app_address", "app_size")
_STR_KEYS = ("family", "programmer", "factory_data_symbol", "map_file", "elf", "aes_key", "aes_key_file")
_TABLE_KEYS = ("connection", "options", "emulator")
_BOARD_KEYS = frozenset({"emulated", "labgrid_place", *_INT_KEYS, *_STR_KEYS, *_TABLE_KEYS})
_TYPE_NAMES = {int: "an integer", str: "a string", bool: "true or false"}
_CONNECTION_KEYS = {"port": str, "baudrate": int, "timeout_ms": int, "jlink_serial": int, "jlink_ip": str}


@dataclass(frozen=True)
class Inventory:
    """The boards of one boards.toml (or the built-in default: one emulated board per family)."""

    boards: Mapping[str, BoardProfile]
    path: Path | None
    lab: LabConfig = field(default_factory=LabConfig)  # the [lab] table (labgrid coordinator, lease)

    def get(self, name: str) -> BoardProfile:
        try:
            return self.boards[name]
        except KeyError:
            where = str(self.path) if self.path else "the built-in default inventory"
            raise InputError.field("board", name, f"one of {', '.join(self.boards)} (from {where})") from None

    def __iter__(self) -> Iterator[BoardProfile]:
        return iter(self.boards.values())

    def __len__(self) -> int:
        return len(self.boards)

    def emulated(self) -> list[BoardProfile]:
        return [b for b in self if b.emulated]


def default_inventory_path() -> Path | None:
    """$HIL_BOARDS, else ./boards.toml, else the repository's boards.toml next to the package, else None."""
    env = os.environ.get("HIL_BOARDS")
    if env:
        return Path(env)
    for candidate in (Path.cwd() / "boards.toml", Path(__file__).resolve().parents[2] / "boards.toml"):
        if candidate.is_file():
            return candidate
    return None


def default_boards() -> dict[str, dict[str, Any]]:
    """The built-in default inventory: `<family>-emu`, one emulated board per family."""
    return {f"{name}-emu": {"family": name, "emulated": True} for name in FAMILIES}


def load_inventory(path: Path | str | None = None) -> Inventory:
    """Load and validate an inventory; `path=None` uses `default_inventory_path()`."""
    path = Path(path) if path is not None else default_inventory_path()
    if path is None:
        return _build(default_boards(), None)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the board inventory: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    extra = set(data) - {"board", "lab"}
    if extra:
        raise ConfigError(
            f"{path}: unknown top-level key(s) {', '.join(sorted(extra))}; allowed: [board.NAME], [lab]"
        )
    lab = parse_lab_table(path, data.get("lab", {}))
    boards = data.get("board", {})
    if not isinstance(boards, dict) or not boards:
        raise ConfigError(f"{path}: no [board.NAME] tables; define at least one board")
    return _build(boards, path, lab)


def get_board(name: str, path: Path | str | None = None) -> BoardProfile:
    """The profile of board `name` from the inventory at `path` (default inventory if None)."""
    return load_inventory(path).get(name)


def _build(boards: Mapping[str, Any], path: Path | None, lab: LabConfig | None = None) -> Inventory:
    profiles = {}
    for name, table in boards.items():
        profiles[name] = _ProfileBuilder(path, name, table).build()
    return Inventory(MappingProxyType(profiles), path, lab or LabConfig())


class _ProfileBuilder:
    """Validates one [board.NAME] table; every error says file, board and key."""

    def __init__(self, path: Path | None, name: str, table: Any) -> None:
        self.path, self.name, self.table = path, name, table
        self.base_dir = path.parent if path else Path.cwd()

    def error(self, key: str | None, message: str) -> ConfigError:
        where = f"{self.path}" if self.path else "built-in inventory"
        key_part = f": key {key!r}" if key else ""
        return ConfigError(f"{where}: board {self.name!r}{key_part}: {message}")

    def get(self, key: str, typ: type, default: Any = None) -> Any:
        value = self.table.get(key, default)
        if value is default:
            return value
        if typ is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.error(key, f"{value!r} is not an integer (use 0x... for hex)")
        if typ is int and value < 0:
            raise self.error(key, f"{value} is negative")
        if typ is not int and not isinstance(value, typ):
            raise self.error(key, f"{value!r} is not {_TYPE_NAMES[typ]}")
        return value

    def build(self) -> BoardProfile:
        if not _NAME.match(self.name):
            raise self.error(None, "the name must be lower-case letters, digits, '.', '_' or '-'")
        if not isinstance(self.table, dict):
            raise self.error(None, "must be a table ([board.NAME])")
        unknown = sorted(set(self.table) - _BOARD_KEYS)
        if unknown:
            raise self.error(unknown[0], f"unknown key; allowed: {', '.join(sorted(_BOARD_KEYS))}")
        family_name = self.get("family", str)
        if family_name is None:
            raise self.error("family", f"missing; one of {', '.join(FAMILIES)}")
        if family_name not in FAMILIES:
            raise self.error("family", f"{family_name!r} is not one of {', '.join(FAMILIES)}")
        fam = FAMILIES[family_name]
        emulated = self.get("emulated", bool, False)
        programmer = self.get("programmer", str, fam.programmers[0])
        if programmer not in fam.programmers:
            raise self.error(
                "programmer", f"{programmer!r} cannot program a {fam.name}; one of {fam.programmers}"
            )
        address, source = self._address(fam)
        size = self.get("factory_data_size", int, fam.factory_data_size)
        sector = self.get("sector_size", int, fam.sector_size)
        if sector <= 0 or sector & (sector - 1):
            raise self.error("sector_size", f"0x{sector:X} is not a power of two")
        if size <= 0:
            raise self.error("factory_data_size", "must be positive")
        app_address = self.get("app_address", int, fam.app_address)
        app_size = self.get("app_size", int, fam.app_size)
        if emulated:
            self._check_in_flash(fam, "factory_data_address", address, size)
            self._check_in_flash(fam, "app_address", app_address, app_size)
        place = self._labgrid_place()
        connection = self._connection(emulated, programmer, lab=place is not None)
        return BoardProfile(
            name=self.name,
            family=fam.name,
            emulated=emulated,
            programmer=programmer,
            factory_data_address=address,
            factory_data_size=size,
            sector_size=sector,
            app_address=app_address,
            app_size=app_size,
            connection=connection,
            aes_key=self._aes_key(fam),
            address_source=source,
            options=MappingProxyType(dict(self._table("options"))),
            emulator=MappingProxyType(dict(self._table("emulator"))),
            source=self.path,
            labgrid_place=place,
        )

    def _labgrid_place(self) -> str | None:
        place = self.get("labgrid_place", str)
        if place is not None and (allowed := check_place_name(place)):
            raise self.error("labgrid_place", f"{place!r}: {allowed}")
        return place

    def _table(self, key: str) -> Mapping[str, Any]:
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, "must be a table")
        return value

    def _address(self, fam: Family) -> tuple[int, str]:
        literal = self.get("factory_data_address", int)
        symbol = self.get("factory_data_symbol", str, fam.factory_data_symbol)
        map_file, elf = self.get("map_file", str), self.get("elf", str)
        if map_file and elf:
            raise self.error("elf", "give either map_file or elf, not both")
        lookup_key, lookup = ("map_file", map_file) if map_file else ("elf", elf)
        if literal is not None and lookup:
            raise self.error(lookup_key, "give either factory_data_address or a symbol lookup, not both")
        if literal is not None:
            return literal, "literal"
        if not lookup:
            if "factory_data_symbol" in self.table:
                raise self.error("factory_data_symbol", "needs map_file or elf to look the symbol up in")
            return fam.factory_data_address, "family default"
        file = (self.base_dir / lookup).resolve()
        finder = find_symbol_in_map if lookup_key == "map_file" else find_symbol_in_elf
        try:
            return finder(file, symbol), f"{symbol} in {file}"
        except ConfigError as exc:
            raise self.error(lookup_key, str(exc)) from None

    def _check_in_flash(self, fam: Family, key: str, address: int, size: int) -> None:
        if fam.flash_region_for(address, size) is None:
            windows = ", ".join(
                f"{m.name} 0x{m.base:X}-0x{m.base + m.size - 1:X}" for m in fam.memory if m.is_flash
            )
            raise self.error(
                key, f"0x{address:X}+0x{size:X} is outside the emulated {fam.name} flash ({windows})"
            )

    def _connection(self, emulated: bool, programmer: str, *, lab: bool = False) -> Connection:
        table = self._table("connection")
        for key, value in table.items():
            typ = _CONNECTION_KEYS.get(key)
            if typ is None:
                raise self.error(f"connection.{key}", f"unknown key; allowed: {', '.join(_CONNECTION_KEYS)}")
            if not isinstance(value, typ) or isinstance(value, bool):
                raise self.error(f"connection.{key}", f"{value!r} is not {_TYPE_NAMES[typ]}")
        jlink_ip = table.get("jlink_ip")
        if jlink_ip is not None and ":" not in jlink_ip:
            jlink_ip = f"{jlink_ip}:19020"  # pylink needs host:port; 19020 is J-Link's TCP/IP port
        if not emulated and not lab:  # a lab board's ports come from its labgrid place
            if programmer in SERIAL_PROGRAMMERS and not table.get("port"):
                raise self.error(
                    "connection.port", f"missing; a real board programmed by {programmer} needs it"
                )
            if programmer == "jlink" and not (table.get("jlink_serial") or jlink_ip):
                raise self.error(
                    "connection.jlink_serial", "missing; a real J-Link board needs it or jlink_ip"
                )
        default_timeout = EMULATED_TIMEOUT_MS if emulated else 5000
        return Connection(
            port=table.get("port"),
            baudrate=table.get("baudrate", 115200),
            timeout_ms=table.get("timeout_ms", default_timeout),
            jlink_serial=table.get("jlink_serial"),
            jlink_ip=jlink_ip,
            emulated=emulated,
        )

    def _aes_key(self, fam: Family) -> str | None:
        text = self.get("aes_key", str)
        key_file = self.get("aes_key_file", str)
        key_name = "aes_key"
        if text and key_file:
            raise self.error("aes_key_file", "give either aes_key or aes_key_file, not both")
        if key_file:
            key_name = "aes_key_file"
            try:
                text = (self.base_dir / key_file).read_text(encoding="ascii").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise self.error(key_name, f"cannot read {key_file}: {exc}") from None
        if text is None:
            if fam.encryption == "aes128-ecb":
                raise self.error(
                    "aes_key", f"missing; {fam.name} firmware decrypts factory data (AES-128-ECB)"
                )
            return None
        if fam.encryption == "none":
            raise self.error(key_name, f"{fam.name} firmware reads plain factory data only; remove the key")
        clean = text.replace(" ", "").upper()
        try:
            raw = bytes.fromhex(clean)
        except ValueError:
            raise self.error(key_name, "is not hex (the key itself is not shown)") from None
        allowed = (16,) if fam.encryption == "aes128-ecb" else (16, 32)
        if len(raw) not in allowed:
            sizes = " or ".join(str(n) for n in allowed)
            raise self.error(key_name, f"is {len(raw)} bytes; {fam.name} needs {sizes} bytes")
        return clean
