"""Board profiles: default inventory, family facts, schema errors, address lookup in .map files and ELFs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hil.boards import (
    FAMILIES,
    find_symbol_in_elf,
    find_symbol_in_map,
    get_board,
    load_inventory,
)
from hil.boards.inventory import default_boards
from hil.errors import ConfigError, InputError

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]


def write_inventory(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "boards.toml"
    path.write_text(text)
    return path


# -- the default inventory and the family table ------------------------------------------------------------
def test_default_inventory_is_one_emulated_board_per_family():
    inv = load_inventory(REPO / "boards.toml")
    assert [b.name for b in inv] == ["k32w0x1-emu", "k32w1-emu", "rt1060-emu", "rt1170-emu", "rw61x-emu"]
    assert all(b.emulated for b in inv)
    assert {b.family for b in inv} == set(FAMILIES)
    # the built-in fallback (no boards.toml anywhere) has the same boards
    assert set(default_boards()) == set(inv.boards)


@pytest.mark.parametrize(
    ("name", "programmer", "address", "size", "sector", "key"),
    [
        ("k32w0x1-emu", "dk6", 0x9D600, 0x800, 0x200, None),
        ("k32w1-emu", "jlink", 0xF4000, 0x2000, 0x2000, None),
        ("rt1060-emu", "sdp", 0x607DF000, 0x1000, 0x1000, "2B7E151628AED2A6ABF7158809CF4F3C"),
        ("rt1170-emu", "sdp", 0x30FDF000, 0x1000, 0x1000, "2B7E151628AED2A6ABF7158809CF4F3C"),
        ("rw61x-emu", "blhost", 0x0BFFF000, 0x1000, 0x1000, None),
    ],
)
def test_default_profiles_match_the_spec(name, programmer, address, size, sector, key):
    """nxp-factory-data.md §4: address, region, sector per board; RT firmware decrypts with the test key."""
    b = get_board(name, REPO / "boards.toml")
    assert (b.programmer, b.factory_data_address, b.factory_data_size, b.sector_size) == (
        programmer,
        address,
        size,
        sector,
    )
    assert b.aes_key == key
    assert b.encryption == ("aes128-ecb" if key else "none")
    assert key is None or key not in repr(b)  # a secret never shows in logs
    # the app region and the factory-data region both lie in the emulated flash, and do not overlap
    spec = b.spec
    assert spec.flash_region_for(b.app_address, b.app_size) is not None
    assert spec.flash_region_for(address, size) is not None
    assert b.app_address + b.app_size <= address or address + size <= b.app_address


def test_k32w1_can_pick_the_rom_bootloader_instead_of_jlink(tmp_path):
    inv = write_inventory(tmp_path, '[board.a]\nfamily = "k32w1"\nemulated = true\nprogrammer = "blhost"\n')
    assert get_board("a", inv).programmer == "blhost"
    assert FAMILIES["k32w1"].programmers == ("jlink", "blhost")


def test_hw_params_layout_region_keeps_its_sector_mates(tmp_path):
    """K32W1 HW-params flow: 0xFE080, 0x800 bytes, inside the last 8 KiB sector (shared with PROD_DATA)."""
    inv = write_inventory(
        tmp_path,
        '[board.hw]\nfamily = "k32w1"\nemulated = true\n'
        "factory_data_address = 0xFE080\nfactory_data_size = 0x800\n",
    )
    region = get_board("hw", inv).factory_data_region
    assert (region.address, region.size) == (0xFE080, 0x800)
    assert region.erase_span() == (0xFE000, 0x2000)


@pytest.mark.parametrize("name", ["k32w1-emu", "rt1060-emu", "rw61x-emu"])
def test_flash_at_the_app_address_rewrites_the_images_sectors_not_the_whole_app_region(name):
    """`hil flash --address <app>`: erasing and verifying 4 MiB for a 5 KB image is what this avoids."""
    b = get_board(name, REPO / "boards.toml")
    sector = b.sector_size_at(b.app_address)
    region = b.region_at(b.app_address, sector + 1)
    assert (region.address, region.size, region.name) == (b.app_address, 2 * sector, "app")
    assert region == b.app_region_for(sector + 1)  # one rule for `hil flash` and the flows
    assert b.region_at(b.factory_data_address, 16) == b.factory_data_region  # the firmware scans it all
    with pytest.raises(InputError, match="app image size"):
        b.region_at(b.app_address, b.app_size + 1)


def test_unknown_board_names_the_known_ones():
    with pytest.raises(InputError) as exc:
        get_board("nope", REPO / "boards.toml")
    assert "k32w1-emu" in str(exc.value) and "'nope'" in str(exc.value)


# -- address from a .map file or an ELF --------------------------------------------------------------------
def test_map_file_lookup_gnu_ld_64bit_fixture():
    path = DATA / "factory_data_fixture.map"
    assert find_symbol_in_map(path, "__MATTER_FACTORY_DATA_START") == 0x9D600
    assert find_symbol_in_map(path, "__FACTORY_DATA_START") == 0x607DF000
    assert find_symbol_in_map(path, "main") == 0x10000  # a symbol defined by an object, not the script


def test_map_file_lookup_arm_excerpt_does_not_confuse_prefixes():
    path = DATA / "arm_excerpt.map"
    assert find_symbol_in_map(path, "__FACTORY_DATA_START") == 0x607DF000
    assert find_symbol_in_map(path, "__FACTORY_DATA_START_OFFSET") == 0x7DF000
    with pytest.raises(ConfigError, match="__FACTORY_DATA_END"):  # PROVIDE without a value
        find_symbol_in_map(path, "__FACTORY_DATA_END")


def test_map_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        find_symbol_in_map(DATA / "factory_data_fixture.map", "__NOPE")
    (tmp_path / "x.map").write_text("hello\n")
    with pytest.raises(ConfigError, match="not a GNU ld map"):
        find_symbol_in_map(tmp_path / "x.map", "__NOPE")
    (tmp_path / "two.map").write_text(
        "Linker script and memory map\n\n                0x00001000                sym = 0x1000\n"
        "                0x00002000                sym = 0x2000\n"
    )
    with pytest.raises(ConfigError, match="several addresses"):
        find_symbol_in_map(tmp_path / "two.map", "sym")
    with pytest.raises(ConfigError, match="cannot read"):
        find_symbol_in_map(tmp_path / "missing.map", "sym")


def test_elf_lookup_fixture_and_errors(tmp_path):
    path = DATA / "factory_data_fixture.elf"
    assert find_symbol_in_elf(path, "__MATTER_FACTORY_DATA_START") == 0x9D600
    assert find_symbol_in_elf(path, "__MATTER_FACTORY_DATA_SIZE") == 0x800
    assert find_symbol_in_elf(path, "factory_data_marker") == 0x1000C
    with pytest.raises(ConfigError, match="not found"):
        find_symbol_in_elf(path, "__NOPE")
    (tmp_path / "x.elf").write_bytes(b"not an elf at all")
    with pytest.raises(ConfigError, match="not an ELF"):
        find_symbol_in_elf(tmp_path / "x.elf", "main")


def test_elf_without_symbol_table(tmp_path):
    stripped = tmp_path / "stripped.elf"
    shutil.copy(DATA / "factory_data_fixture.elf", stripped)
    subprocess.run(["strip", "--strip-all", str(stripped)], check=True)
    with pytest.raises(ConfigError, match="no symbol table"):
        find_symbol_in_elf(stripped, "main")


def test_fixtures_rebuild_identically_with_the_toolchain(tmp_path):
    """The committed .map/.elf come from make_fixtures.sh; rebuilding gives the same symbols."""
    work = tmp_path / "data"
    shutil.copytree(DATA, work)
    for name in ("factory_data_fixture.map", "factory_data_fixture.elf"):
        (work / name).unlink()
    subprocess.run(["sh", str(work / "make_fixtures.sh")], check=True, capture_output=True)
    for sym in ("__MATTER_FACTORY_DATA_START", "__FACTORY_DATA_START"):
        assert find_symbol_in_map(work / "factory_data_fixture.map", sym) == find_symbol_in_map(
            DATA / "factory_data_fixture.map", sym
        )
        assert find_symbol_in_elf(work / "factory_data_fixture.elf", sym) == find_symbol_in_elf(
            DATA / "factory_data_fixture.elf", sym
        )


def test_profile_address_from_map_and_elf_relative_to_the_inventory(tmp_path):
    shutil.copy(DATA / "factory_data_fixture.map", tmp_path / "app.map")
    (tmp_path / "build").mkdir()
    shutil.copy(DATA / "factory_data_fixture.elf", tmp_path / "build" / "app.elf")
    inv = write_inventory(
        tmp_path,
        '[board.by-map]\nfamily = "k32w0x1"\nemulated = true\nmap_file = "app.map"\n'
        '[board.by-elf]\nfamily = "k32w0x1"\nemulated = true\nelf = "build/app.elf"\n'
        '[board.rt-map]\nfamily = "rt1060"\nemulated = true\nmap_file = "app.map"\n'
        'aes_key = "2b7e151628aed2a6abf7158809cf4f3c"\n',
    )
    boards = load_inventory(inv)
    assert boards.get("by-map").factory_data_address == 0x9D600
    assert "__MATTER_FACTORY_DATA_START" in boards.get("by-map").address_source
    assert boards.get("by-elf").factory_data_address == 0x9D600
    # the RT family's symbol is __FACTORY_DATA_START
    assert boards.get("rt-map").factory_data_address == 0x607DF000
    assert boards.get("rt-map").aes_key == "2B7E151628AED2A6ABF7158809CF4F3C"


# -- schema errors: file, board and key in one line --------------------------------------------------------
def board(family: str, extra: str = "", *, emulated: bool = True) -> str:
    """One [board.x] table."""
    return f'[board.x]\nfamily = "{family}"\n' + ("emulated = true\n" if emulated else "") + extra


KEY16 = "00112233445566778899aabbccddeeff"


@pytest.mark.parametrize(
    ("body", "key", "fragment"),
    [
        ("[board.x]\nemulated = true\n", "family", "missing"),
        (board("k64"), "family", "not one of"),
        (board("k32w1", "speed = 3\n"), "speed", "unknown key"),
        (board("k32w1", 'factory_data_address = "0xF4000"\n'), "factory_data_address", "not an integer"),
        (board("k32w0x1", 'programmer = "blhost"\n'), "programmer", "cannot program"),
        (board("k32w0x1", 'map_file = "missing.map"\n'), "map_file", "cannot read"),
        (board("k32w0x1", 'map_file = "a.map"\nfactory_data_address = 1\n'), "map_file", "not both"),
        (board("k32w0x1", 'factory_data_symbol = "__X"\n'), "factory_data_symbol", "needs map_file or elf"),
        (
            board("k32w0x1", "factory_data_address = 0x200000\n"),
            "factory_data_address",
            "outside the emulated",
        ),
        (board("k32w0x1", "sector_size = 0x300\n"), "sector_size", "power of two"),
        (board("rt1060"), "aes_key", "decrypts"),
        (board("rt1060", 'aes_key = "zz"\n'), "aes_key", "not hex"),
        (board("rt1060", 'aes_key = "00112233"\n'), "aes_key", "4 bytes"),
        (board("k32w1", f'aes_key = "{KEY16}"\n'), "aes_key", "plain factory data only"),
        (board("k32w0x1", emulated=False), "connection.port", "missing"),
        (board("k32w1", emulated=False), "connection.jlink_serial", "missing"),
        (
            board("k32w1", '[board.x.connection]\njlink_serial = "12"\n'),
            "connection.jlink_serial",
            "an integer",
        ),
        (board("k32w1", "[board.x.connection]\nbaud = 1\n"), "connection.baud", "unknown key"),
    ],
)
def test_schema_errors_name_file_board_and_key(tmp_path, body, key, fragment):
    inv = write_inventory(tmp_path, body)
    with pytest.raises(ConfigError) as exc:
        load_inventory(inv)
    message = str(exc.value)
    assert message.startswith(f"{inv}: board 'x': key '{key}': "), message
    assert fragment in message
    assert "\n" not in message
    assert exc.value.exit_code == 2


def test_aes_key_is_not_echoed_in_errors(tmp_path):
    secret = "00112233445566778899AABBCCDDEEFF00"  # 17 bytes: rejected
    inv = write_inventory(tmp_path, f'[board.x]\nfamily = "rt1060"\nemulated = true\naes_key = "{secret}"\n')
    with pytest.raises(ConfigError) as exc:
        load_inventory(inv)
    assert secret not in str(exc.value) and secret.lower() not in str(exc.value)


def test_aes_key_file(tmp_path):
    (tmp_path / "fd.key").write_text("2B7E151628AED2A6ABF7158809CF4F3C\n")
    inv = write_inventory(tmp_path, '[board.x]\nfamily = "rw61x"\nemulated = true\naes_key_file = "fd.key"\n')
    assert get_board("x", inv).aes_key_bytes == bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")


def test_file_level_errors(tmp_path):
    bad = write_inventory(tmp_path, "[board.x\n")
    with pytest.raises(ConfigError, match=r"invalid TOML"):
        load_inventory(bad)
    bad.write_text('[boards.x]\nfamily = "k32w1"\n')
    with pytest.raises(ConfigError, match="unknown top-level key"):
        load_inventory(bad)
    bad.write_text('[board."Bad Name"]\nfamily = "k32w1"\n')
    with pytest.raises(ConfigError, match="lower-case"):
        load_inventory(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_inventory(tmp_path / "missing.toml")


def test_real_board_connection(tmp_path):
    inv = write_inventory(
        tmp_path,
        '[board.lab]\nfamily = "k32w1"\n[board.lab.connection]\njlink_ip = "10.0.0.5"\n'
        '[board.dk]\nfamily = "k32w0x1"\n[board.dk.connection]\nport = "/dev/ttyUSB0"\nbaudrate = 1000000\n',
    )
    boards = load_inventory(inv)
    lab = boards.get("lab")
    assert not lab.emulated and lab.connection.jlink_ip == "10.0.0.5:19020"
    assert lab.connection.timeout_ms == 5000
    dk = boards.get("dk")
    assert (dk.connection.port, dk.connection.baudrate) == ("/dev/ttyUSB0", 1000000)


# -- CLI ---------------------------------------------------------------------------------------------------
def hil(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hil", *args], capture_output=True, text=True, env=env)


def test_cli_boards_list_and_show(tmp_path, monkeypatch):
    monkeypatch.setenv("HIL_STATE_DIR", str(tmp_path / "state"))
    r = hil("boards", "list", "--boards", str(REPO / "boards.toml"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 6 and "k32w1-emu" in r.stdout and "0x9D600+0x800" in r.stdout
    r = hil("boards", "list", "--json", "--boards", str(REPO / "boards.toml"))
    rows = json.loads(r.stdout)
    assert {row["name"]: row["running"] for row in rows}["rw61x-emu"] is None
    r = hil("boards", "show", "rt1060-emu", "--boards", str(REPO / "boards.toml"))
    shown = json.loads(r.stdout)
    assert shown["aes_key"] == "set" and "2B7E" not in r.stdout


def test_cli_schema_error_is_one_line_exit_2(tmp_path):
    inv = write_inventory(tmp_path, '[board.x]\nfamily = "k32w1"\nemulated = true\nspeed = 3\n')
    r = hil("boards", "list", "--boards", str(inv))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"hil: error: {inv}: board 'x': key 'speed': unknown key; allowed: ")
    assert "Traceback" not in r.stderr
