"""Each kernel's parameters declared once, and everything that must agree with them made from that declaration.

A CUDA C kernel's parameters are declared in Python (``declare``, as the C parameter list); ``render`` writes
them into the ``.cu`` source, whose kernel definitions say ``NAME_PARAMS`` instead of spelling them, and
appends the explicit instantiations; ``arguments`` builds a launch's positional arguments from keyword
arguments, by name, each value converted to its C type's width. A Numba CUDA kernel's ``def`` is its
declaration: ``by_name`` builds its call the same way. So adding a parameter is one edit plus its use; a body
that uses a name nobody declared does not compile, and a launch that misses a name or gives one too many
raises TypeError before anything runs, instead of shifting every later argument by one.
This module imports neither CuPy, Numba nor anything of ``mnist_accel``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

Params = tuple[tuple[str, str], ...]  # (name, C type) in the kernel's order

# The C types a kernel takes by value, as the NumPy scalar a launch passes: CuPy sends a Python int as 8
# bytes and a float as a double whatever the parameter, which the kernel would misread without a word.
# ``T`` is a templated kernel's float type.
VALUE_TYPES = {"int": np.int32, "unsigned": np.uint32, "long long": np.int64, "float": np.float32,
               "double": np.float64}
FLOATS = ("float", "double")  # the types every templated kernel is instantiated at
_T = re.compile(r"\bT\b")


def declare(c_list: str) -> Params:
    """``"const T* x, int n"`` as ``(("x", "const T*"), ("n", "int"))``. Pointers may point to anything; a
    value must be of a type in ``VALUE_TYPES``, or ``T``."""
    params = []
    for decl in c_list.split(","):
        m = re.fullmatch(r"\s*((?:const\s+)?[\w ]*?\w\s*\**)\s*\b(\w+)\s*", decl)
        if not m:
            raise ValueError(f"cannot read the parameter {decl.strip()!r} (write it as 'type name')")
        ctype = " ".join(m[1].replace("*", " * ").split()).replace(" *", "*")
        if not ctype.endswith("*") and ctype != "T" and ctype not in VALUE_TYPES:
            raise ValueError(f"parameter {m[2]!r}: a launch cannot pass a {ctype!r} by value")
        params.append((m[2], ctype))
    names = [n for n, _ in params]
    if len(set(names)) != len(names):
        raise ValueError(f"a parameter is declared twice in {names}")
    return tuple(params)


def templated(params: Params) -> bool:
    """Whether the kernel is a template on its float type ``T``: exactly when a parameter's type names it."""
    return any(_T.search(ctype) for _, ctype in params)


def c_list(params: Params, t: str | None = None) -> str:
    """The C parameter list, with ``T`` read as ``t`` where given."""
    return ", ".join(f"{_T.sub(t, ctype) if t else ctype} {name}" for name, ctype in params)


def placeholder(kernel: str) -> str:
    return f"{kernel.upper()}_PARAMS"


def render(text: str, kernels: Mapping[str, Params]) -> str:
    """The compilable source: ``text`` with each kernel's ``__global__ void name(NAME_PARAMS)`` given its
    parameter list, then every templated kernel instantiated at each of ``FLOATS`` (so that nvcc, given the
    source alone, compiles every kernel). Every ``__global__`` of ``text`` must be declared in ``kernels``
    and have its placeholder for a parameter list."""
    defined = re.findall(r"__global__\s+void\s+(\w+)\s*\(", text)
    if sorted(defined) != sorted(kernels):
        raise ValueError(f"the source defines the kernels {sorted(defined)}, but {sorted(kernels)} are declared")
    for name, params in kernels.items():
        mark, spelled = placeholder(name), c_list(params)
        text, found = re.subn(rf"(__global__\s+void\s+{name}\s*\(\s*){mark}(\s*\))",
                              lambda m, spelled=spelled: m[1] + spelled + m[2], text)
        if found != 1:
            raise ValueError(f"{name} must be defined once, as `__global__ void {name}({mark})`")
    lines = [f"template __global__ void {name}<{t}>({c_list(params, t)});"
             for name, params in kernels.items() if templated(params) for t in FLOATS]
    return "\n".join([text.rstrip(), "", "// Explicit instantiations, generated from the declarations.", *lines, ""])


def check_names(kernel: str, names: Iterable[str], given: Iterable[str]) -> None:
    """TypeError unless ``given`` holds each of ``names``, and nothing else."""
    names, given = list(names), list(given)
    missing, unexpected = [n for n in names if n not in given], [n for n in given if n not in names]
    if missing or unexpected:
        wrong = ([f"missing {', '.join(missing)}"] if missing else []) + \
            ([f"unexpected {', '.join(unexpected)}"] if unexpected else [])
        raise TypeError(f"{kernel}: {'; '.join(wrong)} (it takes {', '.join(names)})")


def arguments(kernel: str, params: Params, dtype: Any, values: Mapping[str, Any]) -> tuple:
    """A launch's positional arguments: ``values`` by name in the declared order, each value converted to its
    C type's NumPy scalar (``T``: ``dtype``'s); a pointer's value (a device array, or None for null) passes
    as given."""
    check_names(kernel, (name for name, _ in params), values)
    out = []
    for name, ctype in params:
        v = values[name]
        if ctype.endswith("*"):
            if isinstance(v, (int, float, np.generic)):
                raise TypeError(f"{kernel}: {ctype} {name} is a pointer: pass a device array or None, not {v!r}")
            out.append(v)
            continue
        if v is None or np.ndim(v):
            raise TypeError(f"{kernel}: {ctype} {name} is passed by value: pass a number, not {type(v).__name__}")
        out.append((np.dtype(dtype).type if ctype == "T" else VALUE_TYPES[ctype])(v))
    return tuple(out)


def by_name(kernel: Any, values: Mapping[str, Any]) -> list:
    """A Numba CUDA kernel's arguments, ``values`` by name in the order of its ``def`` (on the device, the
    dispatcher's ``py_func``; in Numba's simulator, the function the kernel wraps)."""
    fn = getattr(kernel, "py_func", kernel)
    names = list(inspect.signature(fn).parameters)
    check_names(getattr(fn, "__name__", repr(kernel)), names, values)
    return [values[name] for name in names]
