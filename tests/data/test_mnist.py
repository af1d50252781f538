"""Where data comes from (argument, environment, cache, download), verification, and normalisation."""

from __future__ import annotations

import http.server
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from http_mirror import Mirror

from mnist_accel.data import mnist as mdata
from mnist_accel.errors import DataError, DataUnavailable


def test_named_folder_is_loaded_and_marked_unofficial(tiny_dir, monkeypatch):
    monkeypatch.delenv("MNIST_ACCEL_DATA", raising=False)
    d = mdata.load_mnist(tiny_dir)
    assert d.train_images.shape == (40, 28, 28) and d.test_labels.shape == (20,)
    assert not d.official and "not the official MNIST" in d.description and "--data-dir" in d.description


def test_official_copy_is_recognised(mnist):
    assert mnist.official and mnist.train_images.shape == (60000, 28, 28)
    assert mnist.test_images.shape == (10000, 28, 28)


def test_argument_wins_over_environment(tiny_dir, tmp_path, monkeypatch, make_dataset):
    other = make_dataset(tmp_path / "other", n_train=7, n_test=3, compress=True)
    monkeypatch.setenv("MNIST_ACCEL_DATA", str(other))
    assert len(mdata.load_mnist().train_images) == 7
    assert len(mdata.load_mnist(tiny_dir).train_images) == 40


def test_missing_file_and_missing_folder(tiny_dir, tmp_path):
    (tiny_dir / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataUnavailable, match="lacks t10k-labels-idx1-ubyte"):
        mdata.load_mnist(tiny_dir)
    with pytest.raises(DataUnavailable, match="is not a directory"):
        mdata.load_mnist(tmp_path / "nowhere")


def test_count_mismatch(tmp_path, make_dataset):
    folder = make_dataset(tmp_path / "d")
    from mnist_accel.data import idx

    idx.write_idx(folder / "train-labels-idx1-ubyte", np.zeros(39))
    with pytest.raises(DataError, match="40 images but 39 labels"):
        mdata.load_mnist(folder)


def test_normalize_and_one_hot():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    x = mdata.normalize(images, np.float32)
    assert x.dtype == np.float32 and x.shape == (1, 4)
    np.testing.assert_allclose(x, [[0, 1, 0.2, 0.4]], rtol=1e-7)
    np.testing.assert_array_equal(mdata.normalize(images, np.float64), images.reshape(1, 4) / 255)
    y = mdata.one_hot(np.array([3, 0]), np.float64)
    assert y.dtype == np.float64 and y.tolist()[0] == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0] and y[1, 0] == 1


# --- downloads, against a server on 127.0.0.1 -------------------------------------------------------


@pytest.fixture
def official_gz():
    folder = Path(os.environ.get("MNIST_ACCEL_DATA", ""))
    if not (folder / "train-labels-idx1-ubyte.gz").is_file():
        pytest.skip("offline MNIST copy not available")
    return {stem: (folder / f"{stem}.gz").read_bytes() for stem in mdata.OFFICIAL_SHA256}


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_ACCEL_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "mnist_accel"


def _leftovers(folder: Path):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")] if folder.exists() else []


def test_download_verifies_and_caches(official_gz, cache_env, monkeypatch):
    server = Mirror({f"/m/{stem}.gz": body for stem, body in official_gz.items()})
    try:
        monkeypatch.setenv("MNIST_ACCEL_MIRRORS", server.url + "/m/")
        d = mdata.load_mnist(progress=False)
        assert d.official and "cache" in d.source
        assert sorted(p.name for p in cache_env.iterdir()) == sorted(f"{s}.gz" for s in official_gz)
        n_hits = len(server.hits)
        mdata.load_mnist(progress=False)  # second run reads the cache
        assert len(server.hits) == n_hits
    finally:
        server.close()


def test_mirror_fallback_after_error_and_corrupt_copy(official_gz, cache_env, monkeypatch):
    bad = {f"/bad/{stem}.gz": b"\x1f\x8bnot really gzip" for stem in official_gz}
    wrong = {f"/wrong/{stem}.gz": official_gz["t10k-labels-idx1-ubyte"] for stem in official_gz}
    good = {f"/good/{stem}.gz": body for stem, body in official_gz.items()}
    server = Mirror({**bad, **wrong, **good})
    try:
        mirrors = ",".join(server.url + p for p in ("/down/", "/bad/", "/wrong/", "/good/"))
        monkeypatch.setenv("MNIST_ACCEL_MIRRORS", mirrors)
        assert mdata.load_mnist(progress=False).official
        assert any(h.startswith("/down/") for h in server.hits)  # 404 first, then on
        assert _leftovers(cache_env) == []
    finally:
        server.close()


def test_every_mirror_failing_is_one_clear_error(official_gz, cache_env, monkeypatch):
    server = Mirror({f"/m/{stem}.gz": 500 for stem in official_gz})
    try:
        monkeypatch.setenv("MNIST_ACCEL_MIRRORS", server.url + "/m/")
        with pytest.raises(DataUnavailable, match="--data-dir DIR or set MNIST_ACCEL_DATA") as info:
            mdata.load_mnist(progress=False)
        assert "\n" not in str(info.value)
        assert _leftovers(cache_env) == []
        assert not any(cache_env.glob("*.gz"))
    finally:
        server.close()


def test_bad_cached_file_is_replaced(official_gz, cache_env, monkeypatch):
    cache_env.mkdir(parents=True)
    for stem, body in official_gz.items():
        (cache_env / f"{stem}.gz").write_bytes(body)
    (cache_env / "train-labels-idx1-ubyte.gz").write_bytes(official_gz["t10k-labels-idx1-ubyte"])
    server = Mirror({"/m/train-labels-idx1-ubyte.gz": official_gz["train-labels-idx1-ubyte"]})
    try:
        monkeypatch.setenv("MNIST_ACCEL_MIRRORS", server.url + "/m/")
        assert mdata.load_mnist(progress=False).official
        assert server.hits == ["/m/train-labels-idx1-ubyte.gz"]
    finally:
        server.close()


def test_concurrent_downloads_into_one_cache(official_gz, cache_env, monkeypatch):
    server = Mirror({f"/m/{stem}.gz": body for stem, body in official_gz.items()})
    try:
        monkeypatch.setenv("MNIST_ACCEL_MIRRORS", server.url + "/m/")
        results, errors = [], []

        def run():
            try:
                results.append(mdata.load_mnist(progress=False).official)
            except Exception as exc:  # surfaced by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and results == [True, True]
        assert _leftovers(cache_env) == []
    finally:
        server.close()
    shutil.rmtree(cache_env)


def test_truncated_download_is_not_kept(official_gz, cache_env, monkeypatch):
    body = official_gz["train-labels-idx1-ubyte"]

    class Short(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])  # the connection drops half-way

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Short)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("MNIST_ACCEL_MIRRORS", f"http://127.0.0.1:{httpd.server_address[1]}/")
        with pytest.raises(DataUnavailable, match="could not be downloaded"):
            mdata.load_mnist(progress=False)
        assert not any(cache_env.iterdir())
    finally:
        httpd.shutdown()


def test_full_disk_while_downloading_leaves_nothing(official_gz, cache_env, monkeypatch):
    server = Mirror({f"/m/{stem}.gz": body for stem, body in official_gz.items()})
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FullDisk(real_fdopen(fd, *a, **k)))
    try:
        monkeypatch.setenv("MNIST_ACCEL_MIRRORS", server.url + "/m/")
        with pytest.raises(DataUnavailable, match="No space left on device"):
            mdata.load_mnist(progress=False)
        assert not any(cache_env.iterdir())
    finally:
        server.close()
