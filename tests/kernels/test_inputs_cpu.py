"""The first layer's batch gather and column compaction on the CPU, against NumPy indexing."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel.kernels.cpu import inputs_cpu


def _inputs(dtype, n=40, features=30, seed=0):
    r = np.random.default_rng(seed)
    lit = r.random((n, features)) < 0.2
    lit[:, ::4] = False  # columns no sample lights
    if dtype == np.uint8:
        return np.where(lit, r.integers(1, 256, (n, features)), 0).astype(np.uint8)
    return np.where(lit, r.normal(size=(n, features)), 0).astype(dtype)


@pytest.mark.parametrize("source, dtype", [(np.uint8, np.float32), (np.uint8, np.float64), (np.float32, np.float32),
                                           (np.float64, np.float64)])
def test_gather_scales_like_numpy_and_lists_the_lit_columns(source, dtype):
    inputs = _inputs(source)
    batch = np.array([7, 3, 3, 39, 0, 12])
    divisor = np.dtype(dtype).type(255 if source == np.uint8 else 1)
    x, active = np.empty((len(batch), inputs.shape[1]), dtype), np.empty(inputs.shape[1], np.int64)
    scratch = np.ones(inputs.shape[1], np.bool_)  # left lit by an earlier batch: the gather clears it
    lit = _gather(inputs, batch, divisor, x, active, scratch)
    expected = inputs[batch].astype(dtype) / divisor
    np.testing.assert_array_equal(x, expected)  # bit for bit, as XpOps scales pixels
    np.testing.assert_array_equal(active[:lit], np.flatnonzero(expected.any(axis=0)))


def test_every_pixel_value_scales_exactly():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 256)
    for dtype in (np.float32, np.float64):
        x, active = np.empty((1, 256), dtype), np.empty(256, np.int64)
        assert _gather(pixels, np.array([0]), np.dtype(dtype).type(255), x, active, np.empty(256, np.bool_)) == 255
        np.testing.assert_array_equal(x, np.divide(pixels, dtype(255), dtype=dtype))


def _gather(inputs, batch, divisor, x, active, lit):
    """The gather alone (``below`` 0: nothing compacted, the compaction buffers never touched)."""
    w, none = np.zeros((inputs.shape[1], 3), x.dtype), np.empty(0, x.dtype)
    return inputs_cpu.gather(inputs, batch, divisor, x, active, lit, w, none, none, 0.0)


@pytest.mark.parametrize("below, compacted", [(6.0, True), (5.0, False)])
def test_gather_compacts_the_lit_columns_and_rows_when_they_are_few(below, compacted):
    r = np.random.default_rng(1)
    inputs = np.zeros((9, 12))
    inputs[:, [0, 3, 4, 10, 11]] = r.normal(size=(9, 5))
    w, batch = r.normal(size=(12, 7)), np.array([8, 2, 2, 5, 0])
    x, active, scratch = np.empty((5, 12)), np.empty(12, np.int64), np.empty(12, np.bool_)
    xc, wc = np.full(60, -1.0), np.full(84, -1.0)
    assert inputs_cpu.gather(inputs, batch, 1.0, x, active, scratch, w, xc, wc, below) == 5
    np.testing.assert_array_equal(x, inputs[batch])
    if compacted:
        np.testing.assert_array_equal(xc[:25].reshape(5, 5), inputs[batch][:, [0, 3, 4, 10, 11]])
        np.testing.assert_array_equal(wc[:35].reshape(5, 7), w[[0, 3, 4, 10, 11]])
    assert (xc[25 if compacted else 0:] == -1).all() and (wc[35 if compacted else 0:] == -1).all()


@pytest.mark.parametrize("layout", ["F", "strided"])
def test_gather_reads_inputs_of_any_layout(layout):
    """The rows it prefetches ahead are addressed through the array's strides, as every read is."""
    inputs = _inputs(np.float32, n=12)
    given = np.asfortranarray(inputs) if layout == "F" else np.repeat(inputs, 2, axis=1)[:, ::2]
    batch = np.array([11, 0, 5, 5, 2, 9, 1])
    x, active = np.empty((len(batch), inputs.shape[1]), np.float32), np.empty(inputs.shape[1], np.int64)
    lit = _gather(given, batch, np.float32(1), x, active, np.empty(inputs.shape[1], np.bool_))
    np.testing.assert_array_equal(x, inputs[batch])
    np.testing.assert_array_equal(active[:lit], np.flatnonzero(inputs[batch].any(axis=0)))
