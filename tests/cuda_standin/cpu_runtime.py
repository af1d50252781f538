"""Runs CUDA C kernel sources on the CPU, for the tests: parses each ``__global__`` signature, writes a
translation unit (``cuda_on_cpu.h``, the source unchanged, one ``extern "C"`` launcher per kernel), compiles
it with g++ into a shared library cached on disk, and launches grids through ctypes.

Test code only: the installed package never imports it. The execution model is in the header's comment.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEADER = Path(__file__).with_name("cuda_on_cpu.h")
MAX_DYNAMIC_SHARED = 232448  # the header's kMaxDynamicShared
_SCALARS = {"float": "f4", "double": "f8", "int": "i4", "unsigned int": "u4", "long long": "i8",
            "unsigned long long": "u8", "long": "i8", "unsigned long": "u8", "short": "i2", "unsigned short": "u2",
            "char": "i1", "signed char": "i1", "unsigned char": "u1", "bool": "?", "size_t": "u8",
            "int8_t": "i1", "uint8_t": "u1", "int16_t": "i2", "uint16_t": "u2", "int32_t": "i4", "uint32_t": "u4",
            "int64_t": "i8", "uint64_t": "u8"}
_INTEGER_WORDS = {"signed", "unsigned", "short", "long", "int", "char"}
_QUALIFIERS = {"const", "volatile", "__restrict__", "__restrict", "restrict", "struct"}


class KernelError(RuntimeError):
    """A kernel failed while running: a deadlock, an invalid warp collective, __trap or assert."""


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


def _split(text: str) -> list[str]:
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


def _kernels(code: str) -> dict[str, _Decl]:
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
                   for p in _split(tm[1])] if tm else []
        params = [p for p in _split(text[m.end():end]) if p != "void"]
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


def _param(decl: str, index: int, subst: dict[str, str]) -> Param:
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


def _normal(expr: str) -> str:
    return re.sub(r"\s*([<>,*&])\s*", r"\1", " ".join(expr.split()))


def _map_options(options: Sequence[str]) -> list[str]:
    """NVRTC options to g++'s: -std, -D, -U and -I carry over; the rest (-arch, --use_fast_math, -lineinfo,
    ...) only steer device code generation, and fast math would make CPU results non-IEEE, so they are dropped."""
    flags, pending = [], None
    for opt in options:
        if pending:
            flags.append(pending + opt)
            pending = None
        elif m := re.fullmatch(r"--?std=(.+)", opt):
            flags.append(f"-std={m[1]}")
        elif m := re.fullmatch(r"(?:-([DUI])|--(define-macro|undefine-macro|include-path)=?)(.*)", opt):
            flag = m[1] or {"define-macro": "D", "undefine-macro": "U", "include-path": "I"}[m[2]]
            if m[3]:
                flags.append(f"-{flag}{m[3]}")
            else:
                pending = f"-{flag}"
    return flags


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "mnist-accel" / "cuda-on-cpu"


_LOADED: dict[Path, ctypes.CDLL] = {}
_LOCK = threading.Lock()


def _library(source: str, flags: list[str]) -> ctypes.CDLL:
    cxx = os.environ.get("CXX", "g++")
    # -ffp-contract=off: no fused multiply-adds, so float results do not depend on the compiler's mood;
    # -fno-math-errno only lets sqrt inline (results unchanged); never -ffast-math.
    cmd = [cxx, "-O2", "-std=c++17", *flags, "-fPIC", "-shared", "-ffp-contract=off", "-fno-math-errno",
           "-fno-strict-aliasing", "-fvisibility=hidden", "-pthread"]
    key = hashlib.sha256("\0".join([HEADER.read_text(), source, *cmd]).encode()).hexdigest()[:32]
    path = _cache_dir() / f"{key}.so"
    with _LOCK:
        if path in _LOADED:
            return _LOADED[path]
        if path.exists():
            try:
                _LOADED[path] = ctypes.CDLL(str(path))
                return _LOADED[path]
            except OSError:  # not a library this machine can load (a truncated disk, another libc): rebuild
                pass
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            cpp, out = Path(tmp, "wrapper.cpp"), Path(tmp, "kernels.so")
            cpp.write_text(source)
            proc = subprocess.run([*cmd, "-o", str(out), str(cpp)], capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(f"{cxx} could not compile the kernels:\n{proc.stderr}")
            fd, partial = tempfile.mkstemp(dir=path.parent, suffix=".so.partial")
            with os.fdopen(fd, "wb") as f:
                f.write(out.read_bytes())
            os.replace(partial, path)  # atomic: another process never loads a half-written library
        _LOADED[path] = ctypes.CDLL(str(path))
        return _LOADED[path]


class CpuKernel:
    def __init__(self, name: str, params: tuple[Param, ...], fn: ctypes._CFuncPtr, lib: ctypes.CDLL) -> None:
        self.name, self.params, self._fn, self._lib = name, params, fn, lib
        self._sizes = tuple(p.size for p in params)
        self._offsets = tuple(sum(self._sizes[:i]) for i in range(len(params)))
        self._pointers = ctypes.c_void_p * max(1, len(params))

    def _dims(self, what: str, dims: tuple[int, ...], top: tuple[int, int, int]) -> ctypes.Array:
        full = (*dims, 1, 1)[:3]
        if not 1 <= len(dims) <= 3 or not all(1 <= d <= t for d, t in zip(full, top)):
            raise ValueError(f"{self.name}: {what} {tuple(dims)} needs 1 to 3 dimensions, each from 1 to {top}")
        return (ctypes.c_uint * 3)(*full)

    def launch(self, grid: tuple[int, int, int], block: tuple[int, int, int], args: Sequence[bytes],
               shared_mem: int = 0) -> None:
        grid3 = self._dims("grid", grid, (2**31 - 1, 65535, 65535))
        block3 = self._dims("block", block, (1024, 1024, 64))
        if block3[0] * block3[1] * block3[2] > 1024:
            raise ValueError(f"{self.name}: block {tuple(block)} has more than 1024 threads")
        if not 0 <= shared_mem <= MAX_DYNAMIC_SHARED:
            raise ValueError(f"{self.name}: shared_mem {shared_mem} is outside [0, {MAX_DYNAMIC_SHARED}]")
        if len(args) != len(self.params):
            raise ValueError(f"{self.name} takes {len(self.params)} arguments "
                             f"({', '.join(p.name for p in self.params)}), got {len(args)}")
        packed = b"".join(args)
        if len(packed) != sum(self._sizes) or any(len(a) != n for a, n in zip(args, self._sizes)):
            i, p = next((i, p) for i, (p, a) in enumerate(zip(self.params, args)) if len(a) != p.size)
            raise ValueError(f"{self.name}: argument {i} ({p.ctype} {p.name}) takes {p.size} bytes, "
                             f"got {len(args[i])}")
        base = ctypes.cast(ctypes.c_char_p(packed), ctypes.c_void_p).value  # bytes are only read
        if self._fn(grid3, block3, shared_mem, self._pointers(*(base + o for o in self._offsets))):
            raise KernelError(f"{self.name}: {self._lib.cuda_on_cpu_error().decode()}")


class CpuModule:
    def __init__(self, code: str, options: tuple[str, ...] = (), name_expressions: Sequence[str] = ()) -> None:
        kernels = _kernels(code)
        entries: dict[str, tuple[str, tuple[Param, ...]]] = {}  # normalised name -> (C++ name, params)
        for expr in name_expressions:
            m = re.fullmatch(r"\s*(\w+)\s*(?:<(.*)>)?\s*", expr, re.S)
            if not m or m[1] not in kernels:
                raise LookupError(f"no __global__ kernel for {expr!r}; the source defines {sorted(kernels)}")
            tparams, decls = kernels[m[1]]
            targs = _split(m[2] or "")
            targs += [d for _, d in tparams[len(targs):] if d]
            if len(targs) != len(tparams):
                raise ValueError(f"{expr!r}: {m[1]} takes {len(tparams)} template arguments, e.g. {m[1]}<float>")
            subst = {name: arg for (name, _), arg in zip(tparams, targs)}
            call = f"{m[1]}<{', '.join(targs)}>" if tparams else m[1]
            entries.setdefault(_normal(expr), (call, tuple(_param(d, i, subst) for i, d in enumerate(decls))))
        for name, (tparams, decls) in kernels.items():  # plain kernels need no name expression, as in CuPy
            try:
                if not tparams:
                    entries.setdefault(name, (name, tuple(_param(d, i, {}) for i, d in enumerate(decls))))
            except ValueError:  # a parameter type the runtime cannot pass; fine while nobody asks for it
                pass
        self._names = list(entries)
        lib = _library(self._wrapper(code, entries.values()), _map_options(options))
        self._kernels = {}
        for i, (name, (_, params)) in enumerate(entries.items()):
            fn = lib[f"cuda_on_cpu_launch_{i}"]
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulonglong, ctypes.c_void_p]
            fn.restype = ctypes.c_int
            self._kernels[name] = CpuKernel(name, params, fn, lib)
        lib.cuda_on_cpu_error.restype = ctypes.c_char_p

    @staticmethod
    def _wrapper(code: str, entries: Iterable[tuple[str, tuple[Param, ...]]]) -> str:
        # extern __shared__ T name[] (dynamic shared memory) becomes a pointer to the per-launch buffer: the
        # one rewrite of the source, which C++ cannot express as a macro (`extern static` is ill-formed).
        def dynamic(m: re.Match) -> str:
            ctype = re.sub(r"__align__\s*\(\s*\w+\s*\)|alignas\s*\(\s*\w+\s*\)", "", m[1]).strip()
            return f"{ctype}* const {m[2]} = reinterpret_cast<{ctype}*>(::cuda_on_cpu::dynamic_shared);"

        code = re.sub(r"\bextern\s+__shared__\s+([^;\[]*?)\s*\b(\w+)\s*\[\s*\]\s*;", dynamic, code)
        out = [f'#include "{HEADER}"', '#line 1 "kernel.cu"', code, '#line 1 "cuda_on_cpu_wrapper.cpp"']
        for i, (call, params) in enumerate(entries):
            out.append(f"using cuda_on_cpu_k{i} = decltype(&{call});")
            checks = [f"::cuda_on_cpu::arity<cuda_on_cpu_k{i}>::value == {len(params)}"]
            for j, p in enumerate(params):
                kind = "'p'" if p.pointer else f"'{p.kind}'"
                checks.append(f"::cuda_on_cpu::param<cuda_on_cpu_k{i}, {j}>::kind == {kind} && "
                              f"::cuda_on_cpu::param<cuda_on_cpu_k{i}, {j}>::size == {p.size}")
            out.append(f'static_assert({" && ".join(checks)}, "cpu_runtime.py misread the signature of {call}");')
            out.append(f"CUDA_ON_CPU_EXPORT int cuda_on_cpu_launch_{i}(const unsigned* g, const unsigned* b, "
                       f"unsigned long long s, void** a) {{ return ::cuda_on_cpu::launch<cuda_on_cpu_k{i}, "
                       f"&{call}>(g, b, s, a); }}")
        return "\n".join(out) + "\n"

    def get_function(self, name: str) -> CpuKernel:
        try:
            return self._kernels[_normal(name)]
        except KeyError:
            raise LookupError(f"no kernel {name!r} in this module; it has {self._names}") from None
