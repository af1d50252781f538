"""Counter-based randomness: dropout masks and shuffles from a stateless integer hash of
(seed, step, layer, element index), computed with ``xp`` integer operations.

Every backend draws bit-identical bits (NumPy, Numba and CuPy do the same uint32 arithmetic), nothing
is carried between steps, and the draw can live inside a captured CUDA graph (cuRAND state cannot).
The mixer is Wellons' "lowbias32", a bijection on 32-bit integers with good avalanche.
"""

from __future__ import annotations

from typing import Any

_MASK = 0xFFFFFFFF
M1, M2 = 0x7FEB352D, 0x846CA68B
GOLDEN = 0x9E3779B9


def mix_int(x: int) -> int:
    """lowbias32 on a Python int (host-side key derivation)."""
    x &= _MASK
    x ^= x >> 16
    x = (x * M1) & _MASK
    x ^= x >> 15
    x = (x * M2) & _MASK
    return x ^ (x >> 16)


def key(seed: int, *counters: int) -> int:
    """A 32-bit stream key for ``seed`` and counters such as (purpose, step, layer)."""
    k = mix_int((seed ^ (seed >> 32)) & _MASK)
    for c in counters:
        k = mix_int(k ^ mix_int((c + GOLDEN) & _MASK))
    return k


def mix(x: Any) -> Any:
    """lowbias32 over a uint32 array (wrapping arithmetic), on any backend."""
    x = x ^ (x >> 16)
    x = x * M1
    x = x ^ (x >> 15)
    x = x * M2
    return x ^ (x >> 16)


def bits(k: Any, n: int, xp: Any) -> Any:
    """``n`` pseudo-random uint32 values for stream ``k``: element i is mix(mix(i ^ k) + k).

    ``k`` is a key from ``key`` or a uint32 in device memory (read there, so a captured step can
    take a new key every replay)."""
    k = k if hasattr(k, "dtype") else xp.uint32(k)
    i = xp.arange(n, dtype=xp.uint32)
    return mix(mix(i ^ k) + k)


def threshold(p: float) -> int:
    """uint32 cut-off: a unit is kept when its bits are >= this, i.e. with probability 1 - p."""
    return min(int(round(p * 2.0 ** 32)), _MASK)


def dropout_mask(k: Any, shape: tuple[int, int], p: float, dtype: Any, xp: Any) -> Any:
    """Inverted-dropout multipliers: 0 for a dropped unit, 1/(1-p) for a kept one."""
    kept = bits(k, shape[0] * shape[1], xp) >= xp.uint32(threshold(p))
    return (kept.reshape(shape) * xp.asarray(1.0 / (1.0 - p), dtype=dtype)).astype(dtype)


def permutation(k: int, n: int, xp: Any) -> Any:
    """A permutation of range(n) ordered by hashed keys (the index breaks ties, so it is total)."""
    sort_key = (bits(k, n, xp).astype(xp.uint64) << xp.uint64(32)) | xp.arange(n, dtype=xp.uint64)
    return xp.argsort(sort_key)
