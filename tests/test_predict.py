"""The predict command: a model trained here reads PNGs the test writes, in any common framing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mnist_accel.predict import main as predict
from mnist_accel.train import main as train


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
    assert "cannot identify image file" in capsys.readouterr().err
    np.savez(tmp_path / "foreign.npz", w=np.ones(2))
    _write(tmp_path / "ok.png", np.eye(28) * 255)
    assert predict(["--model", str(tmp_path / "foreign.npz"), str(tmp_path / "ok.png")]) == 1
    assert "not an mnist-accel model" in capsys.readouterr().err
