"""What a compiled kernel library says about itself, read from its ELF symbol table: the CPU runtime's view
of what the CUDA driver knows about a loaded module.

* Linkage: an ``extern "C"`` kernel's symbol is its plain name, a C++ kernel's is mangled (``_Z...``,
  the Itanium ABI that NVRTC's lowered names follow too), so only the former is found by its plain name.
* Static shared memory: the header makes ``__shared__`` a function-local ``static`` (kept with
  ``used``), which g++ names ``_ZZ<function>E<name>``; grouped by the function that declares them,
  their sizes are each kernel's static shared memory, as ptxas counts it, and their addresses are what
  the runtime poisons at each block's start.

Only little-endian ELF64 (the libraries g++ builds here) is read.
"""

from __future__ import annotations

import re
import struct
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

SHT_SYMTAB, STT_OBJECT, STT_FUNC = 2, 1, 2


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int  # address relative to the library's load base
    size: int
    kind: int  # STT_OBJECT, STT_FUNC, ...


def read_symbols(path: Path) -> list[Symbol]:
    """Every entry of the library's static symbol table (.symtab, which holds the local symbols too)."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4:6] != b"\x02\x01":
        raise ValueError(f"{path} is not a little-endian ELF64 file")
    try:
        (shoff,) = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
        sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        symbols = []
        for _, kind, _, _, offset, size, link, _, _, _ in sections:
            if kind != SHT_SYMTAB:
                continue
            strings = sections[link][4]
            for at in range(offset, offset + size, 24):
                name, info, _, _, value, nbytes = struct.unpack_from("<IBBHQQ", data, at)
                start = strings + name
                symbols.append(Symbol(data[start:data.index(b"\0", start)].decode(), value, nbytes, info & 0xF))
    except (struct.error, IndexError, ValueError) as exc:
        raise ValueError(f"{path}: a malformed ELF file ({exc})") from None
    if not symbols:
        raise ValueError(f"{path} has no symbol table")
    return symbols


def encoding(symbol: str) -> str:
    """The function part of the local names of ``symbol``'s statics: ``_Z3fooPf`` -> ``3fooPf``, and for an
    extern "C" function, ``foo`` -> ``3foo``."""
    return symbol[2:] if symbol.startswith("_Z") else f"{len(symbol)}{symbol}"


def static_shared(symbols: list[Symbol], names: set[str]) -> dict[str, list[Symbol]]:
    """The static ``__shared__`` variables (function-local statics named in ``names``) by the encoding of
    the function that declares them. A discriminator (``_0``, ``__12_``) follows a name declared twice."""
    if not names:
        return {}
    alternatives = "|".join(f"{len(n)}{re.escape(n)}" for n in names)
    pattern = re.compile(rf"_ZZ(.+)E(?:{alternatives})(?:_\d|__\d+_)?")
    found: dict[str, list[Symbol]] = defaultdict(list)
    for s in symbols:
        if s.kind == STT_OBJECT and s.size and (m := pattern.fullmatch(s.name)):
            found[m[1]].append(s)
    return dict(found)
