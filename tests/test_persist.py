"""Atomic writes and the model file: round trip, foreign files, and nothing half-written."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mnist_accel.errors import DataError
from mnist_accel.persist import atomic_write, check_writable, load_model, save_model


def test_model_round_trip(tmp_path):
    params = [np.ones((4, 3), np.float32), np.zeros(3, np.float32)]
    save_model(tmp_path / "m.npz", params, {"activation": "tanh"})
    loaded, meta = load_model(tmp_path / "m.npz")
    assert meta["activation"] == "tanh" and meta["shapes"] == [[4, 3], [3]]
    for a, b in zip(loaded, params):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04broken"])
def test_garbage_is_a_clear_error(tmp_path, content):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match="m.npz"):
        load_model(path)


def test_foreign_npz_is_refused(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    with pytest.raises(DataError, match="not an mnist-accel model"):
        load_model(tmp_path / "other.npz")
    save_model(tmp_path / "m.npz", [np.ones((2, 2))], {})
    with np.load(tmp_path / "m.npz") as npz:
        arrays = dict(npz)
    arrays["a0"] = np.ones((3, 2))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match="metadata says"):
        load_model(tmp_path / "bad.npz")


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"previous")

    def writer(f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(target, writer)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux shows the umask in /proc")
def test_saved_files_take_the_umask_without_touching_it(tmp_path, monkeypatch):
    import mnist_accel.persist as persist

    umask = os.umask
    previous = umask(0o027)
    try:
        monkeypatch.setattr(persist.os, "umask", lambda *_: pytest.fail("the umask was set to be read"))
        save_model(tmp_path / "m.npz", [np.ones(2)], {})
    finally:
        monkeypatch.undo()
        umask(previous)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o640  # mkstemp alone would give 0o600


def test_check_writable(tmp_path):
    check_writable(tmp_path / "new.json", "--x")
    with pytest.raises(ValueError, match="is a directory"):
        check_writable(tmp_path, "--x")
    with pytest.raises(ValueError, match="does not exist"):
        check_writable(tmp_path / "no" / "f.json", "--x")


# --- fuzzing: random and mutated files either load or raise DataError, nothing else -------------------

import io

from hypothesis import HealthCheck, given, settings, strategies as st

from mnist_accel.training import checkpoint


def _valid_model_bytes() -> bytes:
    buf = io.BytesIO()
    import json

    header = {"format": "mnist-accel-model", "format_version": 1, "activation": "relu", "shapes": [[3, 2], [2]]}
    np.savez(buf, p0=np.ones((3, 2), np.float32), p1=np.zeros(2, np.float32),
             meta=np.frombuffer(json.dumps(header).encode(), np.uint8))
    return buf.getvalue()


VALID = _valid_model_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_model_and_checkpoint_loaders(tmp_path, data):
    kind = data.draw(st.sampled_from(["random", "mutated", "truncated"]))
    if kind == "random":
        blob = data.draw(st.binary(max_size=400))
    elif kind == "mutated":
        blob = bytearray(VALID)
        for _ in range(data.draw(st.integers(1, 8))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
        blob = bytes(blob)
    else:
        blob = VALID[:data.draw(st.integers(0, len(VALID) - 1))]
    path = tmp_path / "fuzz.npz"
    path.write_bytes(blob)
    for loader in (load_model, checkpoint.load):
        try:
            loader(path)
        except DataError:
            pass


# --- concurrent writers: one complete file, never a mixture ---------------------------------------------

import subprocess
import sys
import time

WRITER = ("import sys, numpy as np; from mnist_accel.training import checkpoint\n"
          "from mnist_accel.persist import save_model\n"
          "kind, value = sys.argv[2], float(sys.argv[3])\n"
          "params = [np.full((300, 200), value, np.float32), np.full(200, value, np.float32)]\n"
          "meta = {'writer': value, 'config': {}, 'history': [], 'trainer': {}, 'trainer_arrays': 2}\n"
          "for _ in range(60):\n"
          "    (save_model if kind == 'model' else checkpoint.save)(sys.argv[1], params, meta)\n")


@pytest.mark.parametrize("kind", ["model", "checkpoint"])  # --save and --checkpoint
def test_concurrent_writers_leave_one_complete_file(kind, tmp_path):
    load = load_model if kind == "model" else checkpoint.load
    target = tmp_path / "m.npz"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(target), kind, str(v)], stderr=subprocess.PIPE,
                                text=True) for v in (1.0, 2.0)]
    reads = 0
    while any(w.poll() is None for w in writers) or reads == 0:
        if target.exists():
            params, meta = load(target)  # a mixture or a half-written file would fail here
            assert all((p == meta["writer"]).all() for p in params)
            reads += 1
        else:
            time.sleep(0.001)
    assert [w.wait(timeout=60) for w in writers] == [0, 0], [w.stderr.read() for w in writers]
    params, meta = load(target)
    assert meta["writer"] in (1.0, 2.0) and all((p == meta["writer"]).all() for p in params)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # every writer's temporary file is gone
