"""The datasets by name: the registry, where each one's data comes from, and the verified download path,
against a server on 127.0.0.1 serving the real Fashion-MNIST files of Debian's ``dataset-fashion-mnist``
package (and corrupted ones)."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
from http_mirror import Mirror

from mnist_accel.data import datasets, idx
from mnist_accel.data.mnist import load_mnist
from mnist_accel.errors import ConfigError, DataUnavailable

DEBIAN = Path("/usr/share/datasets/fashion-mnist")  # dpkg -L dataset-fashion-mnist


@pytest.fixture(scope="module")
def fashion_gz() -> dict[str, bytes]:
    """The four .gz files of Debian's package, by stem."""
    if not all((DEBIAN / f"{stem}.gz").is_file() for stem in datasets.STEMS):
        pytest.skip(f"Debian's dataset-fashion-mnist is not installed ({DEBIAN} lacks its files): "
                    "apt-get install dataset-fashion-mnist")
    return {stem: (DEBIAN / f"{stem}.gz").read_bytes() for stem in datasets.STEMS}


@pytest.fixture
def no_env(tmp_path, monkeypatch):
    """No data folder from the environment and an empty cache: the loader must download."""
    for d in datasets.REGISTRY.values():
        monkeypatch.delenv(d.data_env, raising=False)
        monkeypatch.delenv(d.mirrors_env, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "mnist_accel"


def _corrupted(gz: bytes) -> bytes:
    """The same file with one label changed: still valid gzip and a valid IDX file, but not the official one."""
    raw = bytearray(gzip.decompress(gz))
    raw[-1] = (raw[-1] + 1) % 10
    return gzip.compress(bytes(raw))


# --- the registry ---------------------------------------------------------------------------------------


def test_each_dataset_is_defined_once_and_completely():
    assert datasets.NAMES == ("mnist", "fashion-mnist", "kmnist")
    for d in datasets.REGISTRY.values():
        assert set(d.sha256) == set(datasets.STEMS) and all(len(h) == 64 for h in d.sha256.values())
        assert len(d.classes) == len(set(d.classes)) == 10 and d.digest_of in ("raw", "gz")
        assert d.mirrors and all(m.startswith(("https://", "http://")) and m.endswith("/") for m in d.mirrors)
    for attr in ("data_env", "mirrors_env", "cache_subdir", "homepage"):
        assert len({getattr(d, attr) for d in datasets.REGISTRY.values()}) == 3, attr
    assert datasets.MNIST.data_env == "MNIST_ACCEL_DATA" and datasets.MNIST.mirrors_env == "MNIST_ACCEL_MIRRORS"
    assert datasets.FASHION_MNIST.classes[7] == "Sneaker" and datasets.KMNIST.classes[0] == "o"
    with pytest.raises(ConfigError, match="--dataset 'emnist' is not one of mnist, fashion-mnist, kmnist"):
        load_mnist(dataset="emnist")


def test_class_names_fall_back_to_the_labels():
    assert datasets.class_names("fashion-mnist", 10)[0] == "T-shirt/top"
    assert datasets.class_names("fashion-mnist", 3) == ["0", "1", "2"]  # not that dataset's classes
    assert datasets.class_names(None, 2) == ["0", "1"] and datasets.class_names("cifar", 2) == ["0", "1"]


def test_cache_folders(no_env):
    assert datasets.MNIST.cache_dir() == no_env  # where it always was
    assert datasets.FASHION_MNIST.cache_dir() == no_env / "fashion-mnist"
    assert datasets.KMNIST.cache_dir() == no_env / "kmnist"


# --- the real Fashion-MNIST ------------------------------------------------------------------------------


def test_debian_copy_is_the_official_fashion_mnist(fashion_gz, no_env):
    d = load_mnist(DEBIAN, progress=False, dataset="fashion-mnist")
    assert d.official and d.dataset == "fashion-mnist" and d.classes[9] == "Ankle boot"
    assert d.description == f"official Fashion-MNIST (SHA-256 verified) from {DEBIAN} (--data-dir)"
    assert d.train_images.shape == (60000, 28, 28) and d.test_images.shape == (10000, 28, 28)
    assert np.bincount(d.test_labels).tolist() == [1000] * 10
    mnist = load_mnist(DEBIAN, progress=False)  # the same files asked for as MNIST are not MNIST
    assert not mnist.official and "not the official MNIST" in mnist.description


def test_each_dataset_reads_its_own_environment_variable(fashion_gz, no_env, tmp_path, monkeypatch, make_dataset):
    monkeypatch.setenv("MNIST_ACCEL_DATA", str(make_dataset(tmp_path / "digits")))  # MNIST's: not Fashion-MNIST's
    monkeypatch.setenv("MNIST_ACCEL_FASHION_MNIST_MIRRORS", "http://127.0.0.1:9/")
    with pytest.raises(DataUnavailable) as info:
        load_mnist(progress=False, dataset="fashion-mnist")
    message = str(info.value)
    assert "Fashion-MNIST is not cached in" in message and "MNIST_ACCEL_FASHION_MNIST_DATA=DIR" in message
    assert "\n" not in message and not list((no_env / "fashion-mnist").iterdir())
    monkeypatch.setenv("MNIST_ACCEL_FASHION_MNIST_DATA", str(DEBIAN))
    d = load_mnist(progress=False, dataset="fashion-mnist")
    assert d.official and "$MNIST_ACCEL_FASHION_MNIST_DATA" in d.source
    assert len(load_mnist(progress=False).train_images) == 40  # MNIST still reads MNIST_ACCEL_DATA


def test_download_verifies_and_caches(fashion_gz, no_env, monkeypatch):
    with Mirror({f"/fm/{stem}.gz": body for stem, body in fashion_gz.items()}) as server:
        monkeypatch.setenv("MNIST_ACCEL_FASHION_MNIST_MIRRORS", server.url + "/fm/")
        d = load_mnist(progress=False, dataset="fashion-mnist")
        assert d.official and d.source.endswith("(cache)") and d.classes[7] == "Sneaker"
        folder = no_env / "fashion-mnist"
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s}.gz" for s in datasets.STEMS)
        assert all((folder / f"{s}.gz").read_bytes() == fashion_gz[s] for s in datasets.STEMS)
        asked = len(server.hits)
        assert load_mnist(progress=False, dataset="fashion-mnist").official  # from the cache now
        assert len(server.hits) == asked == 4
    assert not no_env.joinpath("train-images-idx3-ubyte.gz").exists()  # MNIST's cache is not touched


def test_corrupted_download_fails_in_one_line_and_keeps_nothing(fashion_gz, no_env, monkeypatch):
    routes = {f"/fm/{stem}.gz": body for stem, body in fashion_gz.items()}
    routes["/fm/train-labels-idx1-ubyte.gz"] = _corrupted(fashion_gz["train-labels-idx1-ubyte"])
    with Mirror(routes) as server:
        monkeypatch.setenv("MNIST_ACCEL_FASHION_MNIST_MIRRORS", server.url + "/fm/")
        with pytest.raises(DataUnavailable) as info:
            load_mnist(progress=False, dataset="fashion-mnist")
    message = str(info.value)
    assert "\n" not in message and "train-labels-idx1-ubyte: SHA-256 of the decompressed file does not match " \
        "the official Fashion-MNIST digest" in message
    kept = sorted(p.name for p in (no_env / "fashion-mnist").iterdir())
    assert kept == ["train-images-idx3-ubyte.gz"]  # verified before it; the bad file and no temporary file


def test_corrupted_mirror_falls_back_to_the_next(fashion_gz, no_env, monkeypatch):
    routes = {f"/good/{stem}.gz": body for stem, body in fashion_gz.items()}
    routes.update({f"/bad/{stem}.gz": _corrupted(body) if "labels" in stem else body[:-100]
                   for stem, body in fashion_gz.items()})
    with Mirror(routes) as server:
        monkeypatch.setenv("MNIST_ACCEL_FASHION_MNIST_MIRRORS", f"{server.url}/bad/,{server.url}/good/")
        assert load_mnist(progress=False, dataset="fashion-mnist").official
        assert sorted(server.hits) == sorted(f"/{m}/{s}.gz" for m in ("bad", "good") for s in datasets.STEMS)


def test_cli_reports_a_corrupted_download_in_one_line(fashion_gz, no_env, monkeypatch, capsys):
    from mnist_accel.cli.train import main

    routes = {f"/fm/{stem}.gz": _corrupted(body) if "labels" in stem else body for stem, body in fashion_gz.items()}
    with Mirror(routes) as server:
        monkeypatch.setenv("MNIST_ACCEL_FASHION_MNIST_MIRRORS", server.url + "/fm/")
        assert main(["--dataset", "fashion-mnist", "--epochs", "1", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "Fashion-MNIST digest" in err
    assert not [p for p in (no_env / "fashion-mnist").iterdir() if "labels" in p.name or p.name.startswith(".")]


# --- Kuzushiji-MNIST: digests of the .gz files ----------------------------------------------------------


def test_gz_digests_verify_the_gz_file_only(fashion_gz, tmp_path):
    """A dataset whose published digests are of the .gz files (Kuzushiji-MNIST's) verifies the bytes served,
    shown here with Debian's Fashion-MNIST files standing in for them."""
    stem = "t10k-labels-idx1-ubyte"
    stand_in = dataclasses.replace(datasets.KMNIST, sha256={**datasets.KMNIST.sha256,
                                                            stem: hashlib.sha256(fashion_gz[stem]).hexdigest()})
    gz = tmp_path / f"{stem}.gz"
    gz.write_bytes(fashion_gz[stem])
    raw = tmp_path / stem
    raw.write_bytes(gzip.decompress(fashion_gz[stem]))
    assert stand_in.matches(stem, gz) and not stand_in.matches(stem, raw)
    regzipped = tmp_path / "again.gz"
    regzipped.write_bytes(gzip.compress(raw.read_bytes()))  # the same IDX bytes, other .gz bytes
    assert not stand_in.matches(stem, regzipped)


def test_kmnist_download_of_foreign_files_is_refused(no_env, tmp_path, monkeypatch, make_dataset):
    folder = make_dataset(tmp_path / "fake", compress=True)
    with Mirror({f"/k/{stem}.gz": (folder / f"{stem}.gz").read_bytes() for stem in datasets.STEMS}) as server:
        monkeypatch.setenv("MNIST_ACCEL_KMNIST_MIRRORS", server.url + "/k/")
        with pytest.raises(DataUnavailable, match="SHA-256 of the .gz file does not match the official "
                                                  "Kuzushiji-MNIST digest"):
            load_mnist(progress=False, dataset="kmnist")
    assert not list((no_env / "kmnist").iterdir())
    d = load_mnist(folder, progress=False, dataset="kmnist")  # a folder you name is read, marked unofficial
    assert not d.official and "not the official Kuzushiji-MNIST" in d.description and d.classes[1] == "ki"
    idx.write_idx(folder / "t10k-labels-idx1-ubyte", np.full(20, 10))
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(Exception, match="outside 0..9"):
        load_mnist(folder, progress=False, dataset="kmnist")


@pytest.mark.slow
def test_the_default_run_on_fashion_mnist_reaches_88_percent(fashion_gz, tmp_path, capsys):
    """``python -m mnist_accel.train --dataset fashion-mnist``: the default preset's 5 epochs on all of it."""
    import json

    from mnist_accel.cli.train import main

    metrics = tmp_path / "m.json"
    assert main(["--dataset", "fashion-mnist", "--data-dir", str(DEBIAN), "--metrics-json", str(metrics),
                 "--quiet"]) == 0
    m = json.loads(metrics.read_text())
    assert m["config"]["dataset"] == "fashion-mnist" and m["dataset"]["official"] and len(m["epochs"]) == 5
    assert m["test_accuracy"] >= 0.88, capsys.readouterr().out
    assert set(m["dataset"]["per_class_test_accuracy"]) == set(datasets.FASHION_MNIST.classes)


def test_fit_refuses_data_of_another_dataset(tiny_dir):
    from mnist_accel import fit, resolve

    digits = load_mnist(tiny_dir, progress=False)
    with pytest.raises(ConfigError, match="the data given is mnist but the config trains on fashion-mnist"):
        fit(resolve(dataset="fashion-mnist", epochs=1, backend="numpy"), digits)
