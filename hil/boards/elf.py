"""Look up a symbol's address in an ELF image's symbol table (pyelftools).

Why next to the .map lookup: a build directory always has the ELF, while the .map needs a linker flag.
Linker-script symbols such as `__MATTER_FACTORY_DATA_START` are absolute symbols (SHN_ABS) in `.symtab`; a
stripped ELF has no `.symtab` and is reported as such.
"""

from __future__ import annotations

from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from hil.errors import ConfigError


def find_symbol_in_elf(path: Path | str, symbol: str) -> int:
    """The value of `symbol` in the ELF's symbol tables; ConfigError naming file and symbol otherwise."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            elf = ELFFile(fh)
            tables = [s for s in elf.iter_sections() if isinstance(s, SymbolTableSection)]
            if not tables:
                raise ConfigError(f"{path}: the ELF has no symbol table (stripped?)")
            values = {sym["st_value"] for t in tables for sym in t.get_symbol_by_name(symbol) or ()}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ELF file: {exc.strerror}") from None
    except ELFError as exc:
        raise ConfigError(f"{path}: not an ELF file ({exc})") from None
    if not values:
        raise ConfigError(f"{path}: symbol {symbol!r} not found in the ELF symbol table")
    if len(values) > 1:
        addrs = ", ".join(f"0x{a:X}" for a in sorted(values))
        raise ConfigError(f"{path}: symbol {symbol!r} has several values ({addrs})")
    return values.pop()
