"""Look up a symbol's address in a GNU ld map file (`-Wl,-Map=app.map`, also what MCUXpresso IDE writes).

Why: the factory-data address is a linker-script symbol (`__MATTER_FACTORY_DATA_START`,
`__FACTORY_DATA_START`) whose value changes with the SDK and with options such as the NVM sector count, so
the NXP guide says "take it from the .map file". In a map, a symbol appears in two shapes:

    0x000000000009d600                __MATTER_FACTORY_DATA_START = 0x9d600   (linker-script assignment)
    0x0009d600                        __MATTER_FACTORY_DATA_START = .
    0x0009d600                        some_function                            (symbol from an object)

Lines inside `PROVIDE(...)` that were not used carry no address and are ignored. A symbol that is defined
at two different addresses is reported as ambiguous rather than guessed.
"""

from __future__ import annotations

import re
from pathlib import Path

from hil.errors import ConfigError

_LINE = re.compile(r"^\s*0x(?P<addr>[0-9a-fA-F]+)\s+(?P<sym>[A-Za-z_.$][\w.$]*)\s*(?:=.*)?$")


def find_symbol_in_map(path: Path | str, symbol: str) -> int:
    """The address of `symbol` in the map file; ConfigError naming the file and symbol if it is absent."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read map file: {exc.strerror}") from None
    found: set[int] = set()
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and m.group("sym") == symbol:
            found.add(int(m.group("addr"), 16))
    if not found:
        if "Linker script and memory map" not in text and "Memory Configuration" not in text:
            raise ConfigError(f"{path}: not a GNU ld map file (no 'Linker script and memory map' section)")
        raise ConfigError(f"{path}: symbol {symbol!r} not found in the map file")
    if len(found) > 1:
        addrs = ", ".join(f"0x{a:X}" for a in sorted(found))
        raise ConfigError(f"{path}: symbol {symbol!r} is defined at several addresses ({addrs})")
    return found.pop()
