"""What the CPU runtime reads from CUDA C source text itself: each ``__global__`` kernel's template and
function parameters (``kernels``, ``param``), and the names of the static ``__shared__`` variables
(``shared_names``), whose sizes the compiled library's symbols then give (``_symbols``).

A reading of the source, not a C++ parser: the compiler checks every signature read here (the wrapper's
static_asserts in ``cpu_runtime``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_SCALARS = {"float": "f4", "double": "f8", "int": "i4", "unsigned int": "u4", "long long": "i8",
            "unsigned long long": "u8", "long": "i8", "unsigned long": "u8", "short": "i2", "unsigned short": "u2",
            "char": "i1", "signed char": "i1", "unsigned char": "u1", "bool": "?", "size_t": "u8",
            "int8_t": "i1", "uint8_t": "u1", "int16_t": "i2", "uint16_t": "u2", "int32_t": "i4", "uint32_t": "u4",
            "int64_t": "i8", "uint64_t": "u8"}
_INTEGER_WORDS = {"signed", "unsigned", "short", "long", "int", "char"}
_QUALIFIERS = {"const", "volatile", "__restrict__", "__restrict", "restrict", "struct"}


@dataclass(frozen=True)
class Param:
    name: str
    ctype: str  # after template substitution, normalised: "const float*", "long long", "int"
    pointer: bool
    pointee: np.dtype | None  # element dtype of a pointer (void* -> uint8); None for values and unknown types
    kind: str  # NumPy kind of the value: 'i', 'u', 'f', 'b'; 'p' for pointers
    size: int  # bytes the kernel reads for this argument


def _strip(code: str) -> str:
    """Comments and preprocessor lines blanked (line breaks kept), string literals kept."""
    code = re.sub(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|//[^\n]*|/\*.*?\*/',
                  lambda m: m[0] if m[0][0] in "\"'" else re.sub(r"[^\n]", " ", m[0]), code, flags=re.S)
    return re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", lambda m: re.sub(r"[^\n]", " ", m[0]), code, flags=re.M)


def split(text: str) -> list[str]:
    """Split at commas outside (), <> and []."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch in "(<[") - (ch in ")>]")
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


_Decl = tuple[list[tuple[str, str | None]], list[str]]  # template parameters (name, default), parameters
_ATTRIBUTES = re.compile(r"(?:__launch_bounds__|__attribute__)\s*\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)")


def kernels(code: str) -> dict[str, _Decl]:
    """Every __global__ kernel of the source by name, with its template parameters and parameter declarations."""
    text = _ATTRIBUTES.sub(" ", _strip(code))
    found: dict[str, _Decl] = {}
    for m in re.finditer(r"\b__global__\b[\w\s]*?\b(\w+)\s*([(<])", text):
        if m[2] == "<":  # an explicit instantiation or specialization, not a definition
            continue
        depth, end = 1, m.end()
        while depth:
            depth += (text[end] == "(") - (text[end] == ")")
            end += 1
        end -= 1  # the closing parenthesis
        prefix = text[max(text.rfind(c, 0, m.start()) for c in ";{}") + 1:m.start()]
        tm = re.search(r"\btemplate\s*<(.*)>", prefix, re.S)
        tparams = [(re.findall(r"\w+", p.partition("=")[0])[-1], p.partition("=")[2].strip() or None)
                   for p in split(tm[1])] if tm else []
        params = [p for p in split(text[m.end():end]) if p != "void"]
        if m[1] not in found or text[end + 1:].lstrip().startswith("{"):  # a definition names its parameters
            found[m[1]] = (tparams, params)
    return found


def _canonical(words: list[str]) -> str:
    if words and set(words) <= _INTEGER_WORDS:
        if "char" in words:
            return "unsigned char" if "unsigned" in words else "signed char" if "signed" in words else "char"
        base = "short" if "short" in words else {2: "long long", 1: "long"}.get(words.count("long"), "int")
        return f"unsigned {base}" if "unsigned" in words else base
    return " ".join(words)


def param(decl: str, index: int, subst: dict[str, str]) -> Param:
    decl = re.sub(r"\b\w+\b", lambda m: subst.get(m[0], m[0]), decl.split("=")[0])
    tokens = re.findall(r"[A-Za-z_:][\w:]*|\*|&|\[", re.sub(r"\s*::\s*", "::", decl))
    type_words = [t.removeprefix("::").removeprefix("std::") for t in tokens
                  if t[0] not in "*&[" and t not in _QUALIFIERS]
    named = len(type_words) > 1 and type_words[-1] not in _INTEGER_WORDS | set(_SCALARS) | {"void"}
    name = type_words.pop() if named else f"arg{index}"
    if "&" in tokens:
        raise ValueError(f"kernel parameter {decl!r}: references cannot be kernel parameters")
    depth = tokens.count("*") + tokens.count("[")
    base = _canonical(type_words)
    if depth:
        stars = [i for i, t in enumerate(tokens) if t in "*["]
        const = "const" in tokens[:stars[0]]
        code = _SCALARS.get(base, "u1" if base == "void" else None) if depth == 1 else None
        pointee = np.dtype(code) if code else None
        return Param(name, f"{'const ' if const else ''}{base}{'*' * depth}", True, pointee, "p", 8)
    if base not in _SCALARS:
        raise ValueError(f"kernel parameter {decl!r}: unsupported type {base!r}")
    dtype = np.dtype(_SCALARS[base])
    return Param(name, base, False, None, dtype.kind, dtype.itemsize)


def shared_names(code: str) -> set[str]:
    """The variables of every static ``__shared__`` declaration (``extern __shared__``, dynamic shared
    memory, is not static): ``__shared__ T a[N][M + 1], b[N];`` gives a and b."""
    text = re.sub(r"(?:__align__|alignas|__attribute__)\s*\((?:[^()]|\([^()]*\))*\)", " ", _strip(code))
    names = set()
    for m in re.finditer(r"\b__shared__\b([^;{}]*);", text):
        if re.search(r"\bextern\s+(?:\w+\s+)*$", text[max(0, m.start() - 80):m.start()]):
            continue
        for declarator in split(m[1]):
            words = re.findall(r"\w+", re.sub(r"\[[^\]]*\]|=.*", "", declarator, flags=re.S))
            if words:
                names.add(words[-1])
    return names
