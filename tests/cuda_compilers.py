"""The real CUDA compilers on the project's kernels, without a GPU: NVRTC compiles the ``.cu`` kernels with the
options CuPy gives it, NVVM (through Numba) compiles the Numba kernels, and ``ptxas -v`` reports each kernel's
registers, static shared memory and spills, which ``check`` holds against the block the project launches it
with (``cu_launch``, ``loop_launch``).

The compilers are NVIDIA's wheels of the ``dev`` extra, found inside those distributions and never in a system
toolkit, so that what runs here is what CI installs. Run as a script (``python cuda_compilers.py numba ARCH``),
this module prints the PTX of every Numba kernel for one architecture as JSON: Numba compiles a kernel's device
functions for the current device's compute capability and keeps them by argument types alone, so each
architecture gets a process of its own, where a stand-in device gives that capability (there is no GPU to ask).
"""

from __future__ import annotations

import ctypes
import importlib
import inspect
import itertools
import json
import math
import os
import pkgutil
import re
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

ARCHS = (80, 90, 100)  # A100, H100/H200, B200
DTYPES = ("float32", "float64")  # the Numba kernels run at the weights' dtype, either

# Per block, the same on every architecture in ARCHS (the CUDA C++ Programming Guide's table of technical
# specifications per compute capability).
REGISTERS_PER_BLOCK = 65536
REGISTER_UNIT = 256  # registers go to a warp in multiples of this: a thread's count rounds up to a multiple of 8
MAX_THREADS = 1024
SHARED_DEFAULT = 48 * 1024  # static plus dynamic shared memory without the opt-in attribute
# With max_dynamic_shared_size_bytes set (cudaDevAttrMaxSharedMemoryPerBlockOptin).
SHARED_OPT_IN = {80: 163 * 1024, 90: 227 * 1024, 100: 227 * 1024}

# Each compiler: the distribution that ships it and the file's path inside it (Linux, then Windows names).
WHEELS = {
    "NVRTC": ("nvidia-cuda-nvrtc", r"(^|/)(libnvrtc\.so\.\d+|nvrtc64_\d+_0\.dll)$"),
    "ptxas": ("nvidia-cuda-nvcc", r"(^|/)bin/ptxas(\.exe)?$"),
    "NVVM": ("nvidia-nvvm", r"(^|/)(libnvvm\.so\.\d+|nvvm64_\d+_0\.dll)$"),
}


@cache
def find(tool: str) -> Path | None:
    """``tool``'s file inside its wheel (``WHEELS``), or None where that wheel is not installed."""
    dist, pattern = WHEELS[tool]
    try:
        files = metadata.distribution(dist).files or []
    except metadata.PackageNotFoundError:
        return None
    hits = [f for f in files if re.search(pattern, f.as_posix())]
    return Path(hits[0].locate()).resolve() if hits else None


def missing() -> str | None:
    """Why the compilers cannot run here (a wheel not installed), or None."""
    absent = [f"{tool} ({WHEELS[tool][0]})" for tool in WHEELS if find(tool) is None]
    if absent:
        return f"the CUDA compiler wheels are not installed: {', '.join(absent)}; pip install -e '.[dev]'"
    return None


# ---- NVRTC, through its C API ----------------------------------------------------------------------------

def cupy_nvrtc_options(options: Iterable[str], arch: int) -> tuple[str, ...]:
    """``options`` as ``cupy.RawModule(code=..., options=options, name_expressions=...)`` hands them to NVRTC on a
    device of compute capability ``arch`` (CuPy's cupy/_core/core.pyx ``assemble_cupy_compiler_options``, then
    cupy/cuda/compiler.py ``_compile_with_cache_cuda`` and ``_compile_using_nvrtc_no_warning``): ``--std=c++17``
    unless a standard is given; ``-ftz=true``; ``-arch=sm_XX`` (a cubin, for any architecture up to NVRTC's
    newest, ``_get_arch_for_options_for_nvrtc``); ``--device-as-default-execution-space`` (no jitify). CuPy also
    puts its bundled CCCL, its own headers and the toolkit's headers on the include path: left out here, since
    the sources include no header (the test checks that)."""
    options = tuple(options)
    std = () if any("-std=" in o for o in options) else ("--std=c++17",)
    return (*options, *std, "-ftz=true", f"-arch=sm_{arch}", "--device-as-default-execution-space")


@cache
def _nvrtc() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(find("NVRTC")))
    lib.nvrtcGetErrorString.restype = ctypes.c_char_p
    return lib


def _checked(status: int, what: str, log: str = "") -> None:
    if status:
        raise RuntimeError(f"NVRTC {what}: {_nvrtc().nvrtcGetErrorString(status).decode()}\n{log}")


def nvrtc_ptx(source: str, filename: str, name_expressions: Iterable[str],
              options: Iterable[str]) -> tuple[str, dict[str, str]]:
    """NVRTC's PTX of ``source``, and each of ``name_expressions`` as its lowered (mangled) name."""
    lib, prog = _nvrtc(), ctypes.c_void_p()
    names = list(name_expressions)
    _checked(lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), filename.encode(), 0, None, None), "create")
    try:
        for name in names:
            _checked(lib.nvrtcAddNameExpression(prog, name.encode()), f"name expression {name}")
        opts = [o.encode() for o in options]
        status = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        _checked(status, f"compiling {filename} with {b' '.join(opts).decode()}", _text(lib, prog, "ProgramLog"))
        lowered = {}
        for name in names:
            out = ctypes.c_char_p()
            _checked(lib.nvrtcGetLoweredName(prog, name.encode(), ctypes.byref(out)), f"lowered name of {name}")
            lowered[name] = out.value.decode()
        return _text(lib, prog, "PTX"), lowered
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def _text(lib: ctypes.CDLL, prog: ctypes.c_void_p, what: str) -> str:
    size = ctypes.c_size_t()
    getattr(lib, f"nvrtcGet{what}Size")(prog, ctypes.byref(size))
    buf = ctypes.create_string_buffer(size.value)
    getattr(lib, f"nvrtcGet{what}")(prog, buf)
    return buf.value.decode(errors="replace")


# ---- ptxas -v ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Usage:
    """One function as ``ptxas -v`` reports it; ``entry``: a kernel (else a function its kernels call)."""
    registers: int
    smem: int  # static shared memory, bytes
    stack: int
    spill_stores: int
    spill_loads: int
    entry: bool = True


def ptxas(ptx: str, arch: int) -> dict[str, Usage]:
    """Every function of ``ptx`` compiled for ``sm_<arch>``, by its (mangled) name."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "kernels.ptx"
        src.write_text(ptx)
        command = [str(find("ptxas")), "-v", f"-arch=sm_{arch}", str(src), "-o", str(src.with_suffix(".cubin"))]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise RuntimeError(f"ptxas -arch=sm_{arch} failed:\n{proc.stderr[-3000:]}")
    return parse_ptxas(proc.stdout + proc.stderr)


_ENTRY = re.compile(r"Compiling entry function '([^']+)'")
_PROPERTIES = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")


def parse_ptxas(text: str) -> dict[str, Usage]:
    """``ptxas -v``'s report, by function: a kernel's "Compiling entry function" line, then its "Function
    properties" (stack and spills) and "Used N registers, ..., M bytes smem" (no smem part: none); a called
    function has properties only."""
    found: dict[str, dict[str, Any]] = {}
    entry = props = None
    for line in text.splitlines():
        if m := _ENTRY.search(line):
            entry = m[1]
            found.setdefault(entry, {})["entry"] = True
        elif m := _PROPERTIES.search(line):
            props = m[1]
        elif (m := _FRAME.search(line)) and props is not None:
            found.setdefault(props, {}).update(stack=int(m[1]), spill_stores=int(m[2]), spill_loads=int(m[3]))
            props = None
        elif (m := _USED.search(line)) and entry is not None:
            smem = _SMEM.search(line)
            found[entry].update(registers=int(m[1]), smem=int(smem[1]) if smem else 0)
            entry = None
    return {name: Usage(registers=f.get("registers", 0), smem=f.get("smem", 0), stack=f.get("stack", 0),
                        spill_stores=f.get("spill_stores", 0), spill_loads=f.get("spill_loads", 0),
                        entry=f.get("entry", False)) for name, f in found.items()}


# ---- Launches, and the check --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Launch:
    """A kernel as the project launches it: ``label`` names it in messages (``dense_forward<double>``,
    ``loop_cuda.sgd_epoch[float64]``); the most dynamic shared memory a launch passes; ``opt_in``: whether the
    launch sets ``max_dynamic_shared_size_bytes``."""
    label: str
    threads: int
    dynamic_smem: int = 0
    opt_in: bool = False


def check(launch: Launch, usage: Usage, arch: int) -> list[str]:
    """What of ``usage`` does not fit a block of ``launch`` on ``sm_<arch>``: one message each."""
    where, out = f"{launch.label} on sm_{arch}", []
    if launch.threads > MAX_THREADS:
        out.append(f"{where}: {launch.threads} threads > {MAX_THREADS} a block")
    unit = REGISTER_UNIT // 32
    allocated = -(-usage.registers // unit) * unit
    lanes = -(-launch.threads // 32) * 32
    if allocated * lanes > REGISTERS_PER_BLOCK:
        as_given = "" if allocated == usage.registers else f" (allocated as {allocated})"
        warps = "" if lanes == launch.threads else f" ({lanes // 32} warps)"
        out.append(f"{where}: {usage.registers} registers{as_given} x {launch.threads} threads{warps} = "
                   f"{allocated * lanes} > {REGISTERS_PER_BLOCK}")
    limit = SHARED_OPT_IN[arch] if launch.opt_in else SHARED_DEFAULT
    shared = usage.smem + launch.dynamic_smem
    if shared > limit:
        how = "the opt-in maximum" if launch.opt_in else "without max_dynamic_shared_size_bytes"
        out.append(f"{where}: {usage.smem} bytes static + {launch.dynamic_smem} dynamic shared memory = {shared} > "
                   f"{limit} ({how})")
    if usage.spill_stores or usage.spill_loads:
        out.append(f"{where}: spills {usage.spill_stores} bytes of stores, {usage.spill_loads} bytes of loads")
    return out


def cu_modules() -> list[types.ModuleType]:
    """The kernel modules NVRTC compiles: those of ``mnist_accel.kernels.cuda`` with ``source`` and
    ``name_expressions``."""
    return [m for m in _kernel_modules() if callable(getattr(m, "source", None))
            and callable(getattr(m, "name_expressions", None))]


def _kernel_modules() -> list[types.ModuleType]:
    package = importlib.import_module("mnist_accel.kernels.cuda")
    return [importlib.import_module(f"{package.__name__}.{m.name}") for m in pkgutil.iter_modules(package.__path__)]


def cu_launch(module: types.ModuleType, name_expression: str) -> Launch:
    """A ``.cu`` kernel's block: the most threads its module's ``<kernel>_shape`` gives over small and large
    sizes, else the module's ``BLOCK``. These kernels' shared memory is static (no launch passes any)."""
    kernel = name_expression.split("<")[0]
    shape = getattr(module, f"{kernel}_shape", None)
    if shape is not None:
        sizes = itertools.product((1, 32, 4096, 1 << 20), repeat=len(inspect.signature(shape).parameters))
        threads = max(math.prod(shape(*s)[1]) for s in sizes)
    elif hasattr(module, "BLOCK"):
        threads = module.BLOCK
    else:
        raise LookupError(f"{module.__name__}: {kernel} has no {kernel}_shape and the module no BLOCK")
    return Launch(name_expression, threads)


# ---- The Numba kernels: their launches, captured -------------------------------------------------------------

class _Recorder:
    """Stands in for a Numba kernel: records the launch configuration and arguments, runs nothing."""

    def __init__(self, kernel: Any) -> None:
        self.py_func = getattr(kernel, "py_func", kernel)  # where signatures.by_name reads the parameters
        self.calls: list[tuple[tuple, tuple]] = []

    def __getitem__(self, config: tuple) -> Callable[..., None]:
        return lambda *args: self.calls.append((config, args))


def _host_arrays(dtype: np.dtype, n: int, features: int, hidden: int):
    rng = np.random.default_rng(0)
    x = np.where(rng.random((n, features)) < 0.3, rng.random((n, features)), 0.0).astype(dtype)
    labels = rng.integers(0, 10, n).astype(np.int64)  # as LoopTrainer holds them
    masks = (rng.random((n, hidden)) < 0.5).astype(np.int8)
    return x, labels, masks


def _one_layer(module, dtype, hidden=6, n_out=10, features=8, n=5):
    """loop_cuda.launch's arguments as LoopTrainer._run passes them (host arrays: Numba types a device array
    of the same dtype, dimensions and layout alike)."""
    from mnist_accel.kernels import ACTIVATION_CODES, LOOP_LOSS_CODES
    from mnist_accel.trainers.loop import keep_scale

    x, labels, masks = _host_arrays(dtype, n, features, hidden)
    return dict(inputs=module.prepare(x, hidden, n_out, dtype), labels=labels, masks=masks, use_masks=True,
                scale=keep_scale(0.5, dtype), w1=np.zeros((features, hidden), dtype), b1=np.zeros(hidden, dtype),
                w2=np.zeros((hidden, n_out), dtype), b2=np.zeros(n_out, dtype), use_bias=True, lr=dtype.type(0.1),
                activation=ACTIVATION_CODES["relu"], loss=LOOP_LOSS_CODES["mse"], result=np.zeros(3))


def _deep(module, dtype, widths=(6, 5, 10), features=8, n=5):
    """loop_cuda_deep.launch's arguments as LoopTrainer._run passes them: the later layers flat, ``widths``
    (hidden widths, then the outputs) on the host."""
    from mnist_accel.kernels import ACTIVATION_CODES, LOOP_LOSS_CODES
    from mnist_accel.trainers.loop import keep_scale

    x, labels, masks = _host_arrays(dtype, n, features, sum(widths[:-1]))
    later = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    return dict(inputs=module.prepare(x, list(widths), dtype), labels=labels, masks=masks, use_masks=True,
                scale=keep_scale(0.5, dtype), w1=np.zeros((features, widths[0]), dtype), b1=np.zeros(widths[0], dtype),
                wd=np.zeros(later, dtype), bd=np.zeros(sum(widths[1:]), dtype), widths=np.array(widths, np.int64),
                use_bias=True, lr=dtype.type(0.1), activation=ACTIVATION_CODES["relu"], loss=LOOP_LOSS_CODES["mse"],
                result=np.zeros(3))


def _block(module) -> int:
    """The samples a block of the layout the trainer prepares (``prepare``'s default)."""
    return inspect.signature(module.prepare).parameters["block"].default


def _one_layer_shared(module, itemsize: int, threads: int) -> Iterable[int]:
    """The dynamic shared memory of the models loop_cuda.launch takes: every hidden width (the per-unit state
    that decides what fits), at one output, MNIST's ten and the most."""
    loop_cuda = importlib.import_module("mnist_accel.kernels.cuda.loop_cuda")
    for hidden, n_out in itertools.product(range(1, loop_cuda.MAX_HIDDEN + 1), _outputs()):
        yield module.plan(_block(module), hidden, n_out, itemsize, threads, loop_cuda.WARP)[2]


def _deep_shared(module, itemsize: int, threads: int) -> Iterable[int]:
    """The same for loop_cuda_deep.launch, whose plan reads the first hidden width, the last and the outputs:
    the last at one unit, a warp's, a block's and the most."""
    loop_cuda = importlib.import_module("mnist_accel.kernels.cuda.loop_cuda")
    top = loop_cuda.MAX_HIDDEN
    lasts = sorted({1, loop_cuda.WARP, min(threads, top), top})
    for hidden, last, n_out in itertools.product(range(1, top + 1), lasts, _outputs()):
        yield module.plan(_block(module), (hidden, last, n_out), itemsize, threads, loop_cuda.WARP)[2]


def _outputs() -> tuple[int, ...]:
    most = importlib.import_module("mnist_accel.kernels.cuda.loop_cuda_steps").MAX_OUT
    return tuple(sorted({1, min(10, most), most}))


@dataclass(frozen=True)
class LoopKernel:
    """A Numba kernel's launch, as the check needs it: ``arguments(module, dtype)``, its module's ``launch``
    keyword arguments; ``shared(module, itemsize, threads)``, the dynamic shared memory of each model it takes."""
    arguments: Callable[[types.ModuleType, np.dtype], dict[str, Any]]
    shared: Callable[[types.ModuleType, int, int], Iterable[int]]


# Every Numba kernel of mnist_accel.kernels.cuda, as "module.kernel" (the test fails for one missing here).
LOOP_KERNELS = {
    "loop_cuda.sgd_epoch": LoopKernel(_one_layer, _one_layer_shared),
    "loop_cuda_deep.sgd_epoch": LoopKernel(_deep, _deep_shared),
}


def capture(name: str, dtype: Any) -> tuple[Any, tuple, int, int]:
    """Launch ``name`` once as the project does, its kernel replaced by a recorder: (the kernel, the arguments
    it was given, threads a block, dynamic shared memory bytes)."""
    module_name, kernel_name = name.split(".")
    module = importlib.import_module(f"mnist_accel.kernels.cuda.{module_name}")
    kernel = getattr(module, kernel_name)
    recorder = _Recorder(kernel)
    # widths go to the device through cuda.to_device, which needs a GPU: kept on the host, typed the same
    with mock.patch.object(module, kernel_name, recorder), \
            mock.patch.object(module.cuda, "to_device", lambda a, stream=0: a):
        module.launch(**LOOP_KERNELS[name].arguments(module, np.dtype(dtype)))
    (config, args), = recorder.calls
    block = config[1]
    return kernel, args, math.prod(block) if isinstance(block, tuple) else block, config[3]


def loop_launch(name: str, dtype: Any) -> Launch:
    """A Numba kernel's block as its ``launch`` gives it, and the most dynamic shared memory over the models
    that ``launch`` takes."""
    module = importlib.import_module(f"mnist_accel.kernels.cuda.{name.split('.')[0]}")
    _, _, threads, shared = capture(name, dtype)
    most = max(shared, *LOOP_KERNELS[name].shared(module, np.dtype(dtype).itemsize, threads))
    return Launch(f"{name}[{np.dtype(dtype).name}]", threads, most)


def numba_kernels() -> list[str]:
    """Every ``@cuda.jit`` kernel (not device function) defined in a module of ``mnist_accel.kernels.cuda``."""
    from numba.cuda.dispatcher import CUDADispatcher

    found = []
    for module in _kernel_modules():
        for attr, value in vars(module).items():
            if (isinstance(value, CUDADispatcher) and not value.targetoptions.get("device")
                    and value.py_func.__module__ == module.__name__):
                found.append(f"{module.__name__.rsplit('.', 1)[1]}.{attr}")
    return sorted(found)


def numba_ptx(arch: int) -> dict[str, Any]:
    """In a process of its own: every kernel of ``LOOP_KERNELS`` compiled by NVVM for ``sm_<arch>`` at each of
    ``DTYPES``, with the argument types its launch passes and the kernel's own compile options."""
    from cuda.pathfinder import load_nvidia_dynamic_lib  # how cuda.bindings.nvvm, Numba's NVVM, loads it
    from numba import cuda, typeof
    from numba.cuda import dispatcher

    cc = divmod(arch, 10)
    device = types.SimpleNamespace(compute_capability=cc)
    dispatcher.get_current_device = lambda: device  # what the device functions are compiled for
    accepted = set(inspect.signature(cuda.compile_ptx).parameters) - {"pyfunc", "sig", "device", "cc", "abi"}
    ptx = {}
    for name in LOOP_KERNELS:
        for dtype in DTYPES:
            kernel, args, _, _ = capture(name, dtype)
            options = {k: v for k, v in kernel.targetoptions.items() if k in accepted}
            ptx[f"{name}[{dtype}]"], _ = cuda.compile_ptx(kernel.py_func, tuple(typeof(a) for a in args), cc=cc,
                                                         **options)
    nvvm = str(Path(load_nvidia_dynamic_lib("nvvm").abs_path).resolve())
    return {"kernels": numba_kernels(), "ptx": ptx, "nvvm": nvvm}


# ---- Everything, compiled ------------------------------------------------------------------------------------

@dataclass
class Compiled:
    """``usage[label, arch]``: each kernel's report; ``callees``: functions that kernels call rather than
    inline, by (name, arch); ``numba_kernels``: every Numba kernel found (``numba_kernels``); ``nvvm``: the
    library Numba compiled them with."""
    usage: dict[tuple[str, int], Usage]
    callees: dict[tuple[str, int], Usage]
    numba_kernels: list[str]
    nvvm: str = ""


def compile_all(archs: Iterable[int] = ARCHS) -> Compiled:
    """Every ``.cu`` kernel instantiation (NVRTC) and Numba kernel (NVVM, a process an architecture, started
    first so that they run beside NVRTC) through ``ptxas -v`` for each of ``archs``."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}  # the real compiler, not the simulator
    procs = {arch: subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "numba", str(arch)], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for arch in archs}
    out = Compiled({}, {}, [])
    try:
        for module in cu_modules():
            names = module.name_expressions()
            filename = f"{module.__name__.rsplit('.', 1)[1]}.cu"
            for arch in procs:
                ptx, lowered = nvrtc_ptx(module.source(), filename, names,
                                         cupy_nvrtc_options(module.NVRTC_OPTIONS, arch))
                report = ptxas(ptx, arch)
                for name in names:
                    if (name, arch) in out.usage:
                        raise ValueError(f"{name} is a kernel of two modules: the messages could not tell them apart")
                    out.usage[name, arch] = report[lowered[name]]
                out.callees.update(((f, arch), u) for f, u in report.items() if not u.entry)
        for arch, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=1800)
            if proc.returncode:
                raise RuntimeError(f"compiling the Numba kernels for sm_{arch} failed:\n{stderr[-3000:]}")
            result = json.loads(stdout)
            out.numba_kernels, out.nvvm = result["kernels"], result["nvvm"]
            for label, ptx in result["ptx"].items():
                report = ptxas(ptx, arch)
                (out.usage[label, arch],) = (u for u in report.values() if u.entry)  # one kernel a PTX
                out.callees.update(((f, arch), u) for f, u in report.items() if not u.entry)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return out


def launches() -> list[Launch]:
    """Every kernel as the project launches it: each ``.cu`` instantiation, each Numba kernel at each dtype."""
    return [cu_launch(m, name) for m in cu_modules() for name in m.name_expressions()] + \
        [loop_launch(name, dtype) for name in LOOP_KERNELS for dtype in DTYPES]


def figures(compiled: Compiled, launched: Iterable[Launch]) -> str:
    """The figures as a table: each kernel's block, then registers / static shared memory / spill stores on each
    architecture."""
    archs = sorted({arch for _, arch in compiled.usage})
    rows = ["| kernel | threads | dynamic smem | " + " | ".join(f"sm_{a} regs / smem / spills" for a in archs) + " |",
            "|---|---:|---:|" + "---:|" * len(archs)]
    for launch in launched:
        cells = []
        for arch in archs:
            u = compiled.usage.get((launch.label, arch))
            cells.append("-" if u is None else f"{u.registers} / {u.smem} / {u.spill_stores}")
        rows.append(f"| {launch.label} | {launch.threads} | {launch.dynamic_smem} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    if sys.argv[1:2] == ["numba"] and len(sys.argv) == 3:
        json.dump(numba_ptx(int(sys.argv[2])), sys.stdout)
    else:
        sys.exit("usage: cuda_compilers.py numba ARCH")
