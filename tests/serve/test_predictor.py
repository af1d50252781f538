"""What the pad's server computes: a picture is prepared by the predict command's own code (the same 28x28
input, the same probabilities as ``python -m mnist_accel.predict`` gives for that file), pixels are the
model's input as they are, and labels, names and framing are predict's for the model's dataset."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mnist_accel.cli.predict import predict_images
from mnist_accel.data.images import load_digit
from mnist_accel.errors import DataError
from mnist_accel.model import init_params
from mnist_accel.persist import save_model
from mnist_accel.serve.predictor import BadInput, Predictor


def tiny(meta=None, inputs=784, outputs=10) -> Predictor:
    params = init_params(np.random.default_rng(0), [inputs, 16, outputs], dtype=np.float32)
    return Predictor(params, {"activation": "relu", **(meta or {})})


def test_a_picture_reads_as_predict_reads_its_file(pad_model, mnist, tmp_path):
    predictor = Predictor.load(pad_model)
    for i in range(5):
        path = tmp_path / f"{i}.png"
        Image.fromarray(255 - mnist.test_images[i]).resize((200, 200), Image.BILINEAR).save(path)
        answer = predictor.predict_image(path.read_bytes())
        [record] = predict_images(predictor.params, predictor.meta, [str(path)])
        assert np.allclose(answer["image"], load_digit(path), atol=5e-5)  # rounded to 4 decimals for JSON
        assert answer["label"] == record["label"] == mnist.test_labels[i] and answer["name"] == str(answer["label"])
        assert answer["probabilities"] == pytest.approx(record["probabilities"], abs=1e-5)


def test_pictures_that_give_no_answer():
    predictor = tiny()
    with pytest.raises(BadInput, match="^the image is empty$"):
        predictor.predict_image(b"")
    with pytest.raises(BadInput, match="^not a readable PNG"):  # the file name is not in the message
        predictor.predict_image(b"<svg/>")
    blank = io.BytesIO()
    Image.new("L", (50, 50), 255).save(blank, "PNG")
    with pytest.raises(BadInput, match="^no digit found"):
        predictor.predict_image(blank.getvalue())


def test_pixels_are_the_input_as_they_are(pad_model, mnist):
    from mnist_accel import model

    predictor = Predictor.load(pad_model)
    x = mnist.test_images[:3].reshape(3, 784) / 255
    expected = model.probabilities(predictor.params, x.astype(np.float32), "relu", np)
    for row, want in zip(x, expected):
        for form in (row, row.reshape(28, 28), row.tolist()):
            answer = predictor.predict_pixels(form)
            assert list(answer["probabilities"].values()) == pytest.approx(want.tolist(), abs=1e-6)


@pytest.mark.parametrize("pixels, words", [
    ([0.5] * 783, "got shape [783]"), (np.zeros((2, 392)), "got shape [2, 392]"), ([[0.5]], "got shape [1, 1]"),
    ([2.0] * 784, "in [0, 1]"), ([float("nan")] * 784, "in [0, 1]"), ({"a": 1}, "must be numbers"),
    (["x"] * 784, "must be numbers"), ([[1, 2], [3]], "must be numbers"),
])
def test_bad_pixels(pixels, words):
    with pytest.raises(BadInput) as info:
        tiny().predict_pixels(pixels)
    assert words in str(info.value)


FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.mark.parametrize("meta, names, framing", [
    ({}, [str(d) for d in range(10)], "digit"),
    ({"classes": list(range(10)), "dataset": "mnist"}, [str(d) for d in range(10)], "digit"),
    ({"classes": list(range(10)), "dataset": "fashion-mnist", "class_names": FASHION}, FASHION, "fill"),
    ({"classes": list(range(10)), "dataset": "fashion-mnist"}, FASHION, "fill"),  # names from the dataset
])
def test_names_and_framing_follow_predict(meta, names, framing, mnist, tmp_path):
    """Whatever the model's dataset, a picture gets predict's answer: its framing, labels and names."""
    predictor = tiny(meta)
    assert predictor.names == names and predictor.framing == framing
    path = tmp_path / "shirt.png"
    Image.fromarray(255 - mnist.test_images[3]).resize((120, 90)).save(path)  # not square: framings differ
    answer = predictor.predict_image(path.read_bytes())
    [record] = predict_images(predictor.params, predictor.meta, [str(path)])
    assert np.allclose(answer["image"], load_digit(path, framing), atol=5e-5)
    assert (answer["label"], answer["name"]) == (record["label"], record["name"])
    assert answer["probabilities"] == pytest.approx(record["probabilities"], abs=1e-6)
    info = predictor.info()
    assert info["names"] == names and info["dataset"] == meta.get("dataset", "mnist")


def test_model_files(tmp_path):
    wide = init_params(np.random.default_rng(0), [100, 10], dtype=np.float32)
    save_model(tmp_path / "wide.npz", wide, {"activation": "relu"})
    with pytest.raises(DataError, match="wide.npz: takes 100 inputs, not 784 pixels"):
        Predictor.load(tmp_path / "wide.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.npz: not a readable mnist-accel model"):
        Predictor.load(tmp_path / "junk.npz")
    info = tiny().info()
    assert info["layers"] == [784, 16, 10] and info["classes"] == list(range(10))
