"""Runs CUDA C kernel sources on the CPU, for the tests: reads each ``__global__`` signature (``_cusource``),
writes a translation unit (``cuda_on_cpu.h``, the source, one ``extern "C"`` launcher per kernel), compiles it
with g++ into a shared library cached on disk, and launches grids through ctypes (``_cpukernel``).

A loaded module follows the CUDA driver and NVRTC (the rules CuPy meets in cupy/_core/raw.pyx
``get_function`` and cupy/cuda/compiler.py): a kernel is found by a name expression exactly as it was given
at compile time (``nvrtcGetLoweredName``), or by its symbol: the plain name of an ``extern "C"`` kernel, the
mangled name of a C++ one (``_symbols``); a C++ kernel's plain name is not a symbol, so it is not found
(LookupError, which CuPy's layer turns into CUDA_ERROR_NOT_FOUND). A function with more than 48 KiB of static
``__shared__`` memory fails to build, as ptxas refuses it.

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
from collections.abc import Sequence
from pathlib import Path

from ._cpukernel import MAX_DYNAMIC_SHARED, SHARED_PER_BLOCK, CpuKernel, KernelError
from ._cusource import Param, kernels, param, shared_names, split
from ._symbols import STT_FUNC, Symbol, encoding, read_symbols, static_shared

HEADER = Path(__file__).with_name("cuda_on_cpu.h")
__all__ = ["MAX_DYNAMIC_SHARED", "CpuKernel", "CpuModule", "KernelError", "Param"]


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


_LOADED: dict[Path, tuple[ctypes.CDLL, list[Symbol]]] = {}
_LOCK = threading.Lock()


def _library(source: str, flags: list[str]) -> tuple[ctypes.CDLL, list[Symbol]]:
    """The library built from ``source`` (from the disk cache when it is there) and its symbol table."""
    cxx = os.environ.get("CXX", "g++")
    # -ffp-contract=off: no fused multiply-adds, so float results do not depend on the compiler's mood;
    # -fno-math-errno only lets sqrt inline (results unchanged); never -ffast-math. -pedantic-errors: the
    # GNU extensions NVRTC rejects (variable-length arrays) fail to compile here too.
    cmd = [cxx, "-O2", "-std=c++17", *flags, "-pedantic-errors", "-fPIC", "-shared", "-ffp-contract=off",
           "-fno-math-errno", "-fno-strict-aliasing", "-fvisibility=hidden", "-pthread"]
    key = hashlib.sha256("\0".join([HEADER.read_text(), source, *cmd]).encode()).hexdigest()[:32]
    path = _cache_dir() / f"{key}.so"
    with _LOCK:
        if path in _LOADED:
            return _LOADED[path]
        if path.exists():
            try:
                _LOADED[path] = ctypes.CDLL(str(path)), read_symbols(path)
                return _LOADED[path]
            except (OSError, ValueError):  # not a library this machine can load, or no symbols: rebuild
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
        _LOADED[path] = ctypes.CDLL(str(path)), read_symbols(path)
        return _LOADED[path]


class CpuModule:
    """The kernels of ``code``, compiled with NVRTC ``options`` (those g++ understands) and instantiated for
    ``name_expressions`` (NVRTC's: ``kernel<float>``, or a plain kernel's name)."""

    def __init__(self, code: str, options: tuple[str, ...] = (), name_expressions: Sequence[str] = ()) -> None:
        decls = kernels(code)
        launchers: dict[str, tuple[Param, ...]] = {}  # C++ call expression -> parameters; one launcher each
        expressions: dict[str, str] = {}  # name expression, exactly as given -> call
        for expr in name_expressions:
            m = re.fullmatch(r"\s*(\w+)\s*(?:<(.*)>)?\s*", expr, re.S)
            if not m or m[1] not in decls:
                raise LookupError(f"no __global__ kernel for {expr!r}; the source defines {sorted(decls)}")
            tparams, params = decls[m[1]]
            targs = split(m[2] or "")
            targs += [d for _, d in tparams[len(targs):] if d]
            if len(targs) != len(tparams):
                raise ValueError(f"{expr!r}: {m[1]} takes {len(tparams)} template arguments, e.g. {m[1]}<float>")
            subst = {name: arg for (name, _), arg in zip(tparams, targs)}
            call = f"{m[1]}<{', '.join(targs)}>" if tparams else m[1]
            launchers.setdefault(call, tuple(param(d, i, subst) for i, d in enumerate(params)))
            expressions[expr] = call
        for name, (tparams, params) in decls.items():  # every plain kernel is in the module, as with NVRTC
            try:
                if not tparams:
                    launchers.setdefault(name, tuple(param(d, i, {}) for i, d in enumerate(params)))
            except ValueError:  # a parameter type the runtime cannot pass; fine while nobody asks for it
                pass
        lib, symbols = _library(self._wrapper(code, launchers), _map_options(options))
        loaded = dict(zip(launchers, self._load(lib, symbols, launchers, shared_names(code))))
        self._kernels = {n: k for k, names in loaded.values() for n in names}  # by symbol
        self._names = list(expressions) + [n for n in self._kernels if n in decls and n not in expressions]
        self._kernels.update({expr: loaded[call][0] for expr, call in expressions.items()})

    @staticmethod
    def _load(lib: ctypes.CDLL, symbols: list[Symbol], launchers: dict[str, tuple[Param, ...]],
              shared: set[str]) -> list[tuple[CpuKernel, list[str]]]:
        """Each launcher's kernel, with its static shared memory, and its symbols (cuModuleGetFunction's
        names); raises as ptxas does for a function with more than 48 KiB of static shared memory."""
        functions: dict[int, list[str]] = {}
        for s in symbols:
            if s.kind == STT_FUNC:
                functions.setdefault(s.value, []).append(s.name)
        lib.cuda_on_cpu_error.restype = ctypes.c_char_p
        base = ctypes.cast(lib.cuda_on_cpu_error, ctypes.c_void_p).value - next(
            s.value for s in symbols if s.name == "cuda_on_cpu_error")
        statics = static_shared(symbols, shared)
        symbol_of = {encoding(n): n for ns in functions.values() for n in ns}
        for enc, variables in statics.items():
            if (total := sum(v.size for v in variables)) > SHARED_PER_BLOCK:
                raise RuntimeError(f"ptxas error   : Entry function '{symbol_of.get(enc, '_Z' + enc)}' uses too "
                                   f"much shared data (0x{total:x} bytes, 0x{SHARED_PER_BLOCK:x} max)")
        names = []
        for i in range(len(launchers)):
            address = getattr(lib, f"cuda_on_cpu_kernel_{i}")
            address.restype = ctypes.c_ulonglong
            names.append([n for n in functions.get(address() - base, []) if "." not in n])  # no clones
        own = [{encoding(n) for n in ns} for ns in names]
        shared_by_devices = [v for enc, vs in statics.items() if not any(enc in o for o in own) for v in vs]
        found = []
        for i, ((call, params), symbol_names, encs) in enumerate(zip(launchers.items(), names, own)):
            fn = getattr(lib, f"cuda_on_cpu_launch_{i}")
            fn.argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_int]
            fn.restype = ctypes.c_int
            mine = [v for enc in encs for v in statics.get(enc, [])]
            poison = [(base + v.value, v.size) for v in mine + shared_by_devices]
            found.append((CpuKernel(call, params, fn, lib, sum(v.size for v in mine), poison), symbol_names))
        return found

    @staticmethod
    def _wrapper(code: str, launchers: dict[str, tuple[Param, ...]]) -> str:
        # extern __shared__ T name[] (dynamic shared memory) becomes a pointer to the per-launch buffer: the
        # one rewrite of the source, which C++ cannot express as a macro (`extern static` is ill-formed).
        def dynamic(m: re.Match) -> str:
            ctype = re.sub(r"__align__\s*\(\s*\w+\s*\)|alignas\s*\(\s*\w+\s*\)", "", m[1]).strip()
            return f"{ctype}* const {m[2]} = reinterpret_cast<{ctype}*>(::cuda_on_cpu::dynamic_shared);"

        code = re.sub(r"\bextern\s+__shared__\s+([^;\[]*?)\s*\b(\w+)\s*\[\s*\]\s*;", dynamic, code)
        out = [f'#include "{HEADER}"', '#line 1 "kernel.cu"', code, '#line 1 "cuda_on_cpu_wrapper.cpp"']
        for i, (call, params) in enumerate(launchers.items()):
            out.append(f"using cuda_on_cpu_k{i} = decltype(&{call});")
            checks = [f"::cuda_on_cpu::arity<cuda_on_cpu_k{i}>::value == {len(params)}"]
            for j, p in enumerate(params):
                kind = "'p'" if p.pointer else f"'{p.kind}'"
                checks.append(f"::cuda_on_cpu::param<cuda_on_cpu_k{i}, {j}>::kind == {kind} && "
                              f"::cuda_on_cpu::param<cuda_on_cpu_k{i}, {j}>::size == {p.size}")
            out.append(f'static_assert({" && ".join(checks)}, "cpu_runtime.py misread the signature of {call}");')
            out.append(f"CUDA_ON_CPU_EXPORT int cuda_on_cpu_launch_{i}(const unsigned* g, const unsigned* b, "
                       f"unsigned long long s, void** a, const unsigned long long* p, int np) {{ return "
                       f"::cuda_on_cpu::launch<cuda_on_cpu_k{i}, &{call}>(g, b, s, a, p, np); }}")
            out.append(f"CUDA_ON_CPU_EXPORT unsigned long long cuda_on_cpu_kernel_{i}() {{ "
                       f"return reinterpret_cast<unsigned long long>(&{call}); }}")  # its symbol, for _symbols
        return "\n".join(out) + "\n"

    def get_function(self, name: str) -> CpuKernel:
        try:
            return self._kernels[name]
        except KeyError:
            raise LookupError(f"no kernel {name!r} in this module; it has {self._names}") from None
