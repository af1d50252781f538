"""The predict command: a model trained here reads PNGs the test writes, in any common framing; a file
that cannot be read costs only its own answer."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from PIL import Image

from mnist_accel.cli.predict import main as predict
from mnist_accel.cli.train import main as train


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist):
    path = tmp_path_factory.mktemp("model") / "model.npz"
    assert train(["--epochs", "2", "--train-samples", "20000", "--test-samples", "500", "--save", str(path),
                  "--quiet"]) == 0
    return path


def _write(path, digit: np.ndarray, invert=False, scale=1):
    img = digit if not invert else 255 - digit
    Image.fromarray(img.astype(np.uint8)).resize((28 * scale, 28 * scale), Image.BILINEAR).save(path)


def test_predicts_written_pngs(trained, mnist, tmp_path, capsys):
    files, labels = [], []
    for i in range(8):
        digit, label = mnist.test_images[i], int(mnist.test_labels[i])
        for variant, kwargs in (("plain", {}), ("paper", {"invert": True, "scale": 8})):
            files.append(str(tmp_path / f"{i}-{variant}.png"))
            _write(files[-1], digit, **kwargs)
            labels.append(label)
    assert predict(["--model", str(trained), "--json", *files]) == 0
    results = json.loads(capsys.readouterr().out)
    got = [r["label"] for r in results]
    assert sum(g == t for g, t in zip(got, labels)) >= 14  # of 16; MNIST test digits 0-7, two framings each
    assert got[0::2] == got[1::2]  # white-on-black and black-on-white paper read the same
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in results)
    assert predict(["--model", str(trained), files[0]]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(files[0] + ": ") and "probability" in line


@pytest.mark.parametrize("args, code, message", [
    (["--model", "missing.npz", "x.png"], 2, "missing.npz: no such file"),
    (["x.png"], 2, "required: --model"),
])
def test_bad_arguments(args, code, message, capsys):
    with pytest.raises(SystemExit) as info:
        raise SystemExit(predict(args))
    err = capsys.readouterr().err.strip()
    assert info.value.code == code and message in err and len(err.splitlines()) == 1


def test_unreadable_image_and_foreign_model(trained, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert predict(["--model", str(trained), str(bad)]) == 1
    assert "bad.png: not a readable PNG, JPEG, BMP, GIF or WebP image" in capsys.readouterr().err
    np.savez(tmp_path / "foreign.npz", w=np.ones(2))
    _write(tmp_path / "ok.png", np.eye(28) * 255)
    assert predict(["--model", str(tmp_path / "foreign.npz"), str(tmp_path / "ok.png")]) == 1
    assert "not an mnist-accel model" in capsys.readouterr().err


def _bad_files(folder, mnist) -> dict[str, str]:
    """Files that cannot be read, each with the reason its error line must give."""
    good = folder / "good.png"
    _write(good, mnist.test_images[0])
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (folder / "cut.png").write_bytes(good.read_bytes()[:60])
    Image.new("L", (30, 30), 90).save(folder / "blank.png")
    blob = bytearray(good.read_bytes())  # a header claiming 40,000 x 40,000 pixels, its CRC fixed
    header = (40_000).to_bytes(4, "big") * 2 + blob[24:29]
    blob[16:33] = header + zlib.crc32(b"IHDR" + header).to_bytes(4, "big")
    (folder / "bomb.png").write_bytes(bytes(blob))
    return {"broken.png": "not a readable PNG", "missing.png": "no such file", "cut.png": "damaged",
            "blank.png": "no digit found", "bomb.png": "the image is too large"}


def test_one_bad_file_does_not_hide_the_good_ones(trained, mnist, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    reasons = _bad_files(tmp_path, mnist)
    files = ["broken.png", "good.png", "missing.png", "cut.png", "good.png", "blank.png", "bomb.png"]
    assert predict(["--model", str(trained), *files]) == 1
    captured = capsys.readouterr()
    answers = captured.out.splitlines()  # both good files answered, in one line each
    assert len(answers) == 2 and answers[0] == answers[1] and answers[0].startswith("good.png: ")
    label = int(answers[0].split()[1])
    errors = captured.err.strip().splitlines()
    assert len(errors) == len(reasons) and "Traceback" not in captured.err
    for line, name in zip(errors, reasons):
        assert line.startswith(f"mnist_accel.predict: error: {name}") and reasons[name] in line, line

    assert predict(["--model", str(trained), "--json", *files]) == 1
    captured = capsys.readouterr()
    records = json.loads(captured.out)
    assert [r["file"] for r in records] == files
    for record in records:
        if record["file"] == "good.png":
            assert record["label"] == label and "error" not in record
        else:
            assert set(record) == {"file", "error"} and reasons[record["file"]] in record["error"]
    assert len(captured.err.strip().splitlines()) == len(reasons)


def test_mnist_test_images_as_the_keras_tutorial_shows_them(trained, mnist, tmp_path, capsys):
    """--mnist-test N: "Pred: p, True: t" for the first N test images, the same answers as the model's
    probabilities, and with --plot the Keras tutorial's last two figures."""
    out = tmp_path / "pred.png"
    assert predict(["--model", str(trained), "--mnist-test", "12", "--plot", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert predict(["--model", str(trained), "--mnist-test", "12", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["true"] for r in records] == mnist.test_labels[:12].tolist()
    assert lines == [f"test image {i}: Pred: {r['label']}, True: {r['true']} (probability {r['probability']:.3f})"
                     for i, r in enumerate(records)]
    assert sum(r["label"] == r["true"] for r in records) >= 10  # a model at ~97%
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-4 for r in records)
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (1170, 495)


@pytest.mark.parametrize("extra, message", [
    (["--mnist-test", "3", "x.png"], "not both"),
    (["--mnist-test", "0"], "1 to 10000"),
    ([], "--mnist-test N"),
    (["x.png", "--plot", "p.png"], "belong to --mnist-test"),
])
def test_mnist_test_arguments(trained, extra, message, capsys):
    assert predict(["--model", str(trained), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


# --- another dataset by name: its class names in every answer ----------------------------------------------

FASHION_DEBIAN = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist package


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """A model trained on Fashion-MNIST (its folder: $MNIST_ACCEL_FASHION_MNIST_DATA, else Debian's package)."""
    import os
    from pathlib import Path

    folder = Path(os.environ.get("MNIST_ACCEL_FASHION_MNIST_DATA") or FASHION_DEBIAN)
    if not (folder / "t10k-labels-idx1-ubyte.gz").is_file() and not (folder / "t10k-labels-idx1-ubyte").is_file():
        pytest.skip(f"no Fashion-MNIST in {folder}: apt-get install dataset-fashion-mnist, or set "
                    "MNIST_ACCEL_FASHION_MNIST_DATA")
    path = tmp_path_factory.mktemp("fashion") / "fashion.npz"
    assert train(["--dataset", "fashion-mnist", "--data-dir", str(folder), "--epochs", "2", "--train-samples",
                  "20000", "--test-samples", "500", "--save", str(path), "--quiet"]) == 0
    return path, str(folder)


def test_fashion_model_names_its_classes(fashion, tmp_path, capsys):
    from mnist_accel.data.datasets import FASHION_MNIST
    from mnist_accel.data.mnist import load_mnist
    from mnist_accel.persist import load_model

    model, folder = fashion
    names = FASHION_MNIST.classes
    _, meta = load_model(model)
    assert meta["dataset"] == "fashion-mnist" and meta["class_names"] == list(FASHION_MNIST.classes)
    assert predict(["--model", str(model), "--mnist-test", "40", "--data-dir", folder, "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    truth = load_mnist(folder, progress=False, dataset="fashion-mnist").test_labels[:40]
    assert [r["true_name"] for r in records] == [FASHION_MNIST.classes[t] for t in truth]
    assert all(r["name"] == FASHION_MNIST.classes[r["label"]] for r in records)
    assert sum(r["name"] == r["true_name"] for r in records) >= 30  # a model at ~85%
    assert predict(["--model", str(model), "--mnist-test", "40", "--data-dir", folder]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [f"test image {i}: Pred: {r['name']}, True: {r['true_name']} (probability {r['probability']:.3f})"
                     for i, r in enumerate(records)]
    assert lines[0].startswith("test image 0: Pred: Ankle boot, True: Ankle boot")
    test = load_mnist(folder, progress=False, dataset="fashion-mnist")
    files = []  # pictures of the first test articles, as they are and on white paper, framed as the dataset's
    for i in range(10):
        for variant, kwargs in (("plain", {}), ("paper", {"invert": True, "scale": 8})):
            files.append(str(tmp_path / f"{i}-{variant}.png"))
            _write(files[-1], test.test_images[i], **kwargs)
    assert predict(["--model", str(model), *files]) == 0
    answers = [line.split(": ", 1)[1].split(" (probability ")[0] for line in capsys.readouterr().out.splitlines()]
    assert answers[0] == "Ankle boot" and set(answers) <= set(names)
    truth = [names[t] for t in test.test_labels[:10] for _ in range(2)]
    assert sum(a == t for a, t in zip(answers, truth)) >= 15  # of 20


@pytest.mark.parametrize("extra, message", [
    (["--mnist-test", "3", "--dataset", "kmnist"], "the model was trained on fashion-mnist; drop --dataset kmnist"),
    (["x.png", "--dataset", "fashion-mnist"], "--dataset belong to --mnist-test"),
])
def test_dataset_arguments(fashion, extra, message, capsys):
    assert predict(["--model", str(fashion[0]), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_model_without_class_names_shows_its_labels(trained, tmp_path, capsys):
    """Models saved before class names were kept (or by MLPClassifier.save) show their labels as before."""
    from mnist_accel.persist import load_model, save_model

    params, meta = load_model(trained)
    meta = {k: v for k, v in meta.items() if k not in ("dataset", "class_names", "shapes", "format_version")}
    old = tmp_path / "old.npz"
    save_model(old, params, meta)
    assert predict(["--model", str(old), "--mnist-test", "2"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("test image 0: Pred: 7, True: 7")
