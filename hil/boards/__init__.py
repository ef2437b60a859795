"""Board profiles: which boards exist, what family each is, where its factory data goes, how to reach it.

    from hil.boards import get_board, load_inventory
    profile = get_board("k32w1-emu")            # from boards.toml (or $HIL_BOARDS, or the built-in default)
    profile.factory_data_address, profile.programmer, profile.connection

Family facts live in one table (`hil.boards.families.FAMILIES`); boards.toml holds the boards.
"""

from __future__ import annotations

from hil.boards.elf import find_symbol_in_elf
from hil.boards.families import FAMILIES, Family, MemorySpec
from hil.boards.inventory import Inventory, default_inventory_path, get_board, load_inventory
from hil.boards.mapfile import find_symbol_in_map
from hil.boards.profile import BoardProfile

__all__ = [
    "FAMILIES",
    "BoardProfile",
    "Family",
    "Inventory",
    "MemorySpec",
    "default_inventory_path",
    "find_symbol_in_elf",
    "find_symbol_in_map",
    "get_board",
    "load_inventory",
]
