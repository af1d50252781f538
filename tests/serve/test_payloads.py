"""What a prediction request may send: a picture's bytes, JSON with a base64 picture or 784 pixels; each
other body is refused with a message saying what to send."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from mnist_accel.model import init_params
from mnist_accel.serve.payloads import answer, decode_base64, parse_json
from mnist_accel.serve.predictor import BadInput, Predictor


@pytest.fixture(scope="module")
def predictor():
    return Predictor(init_params(np.random.default_rng(0), [784, 8, 10], dtype=np.float32), {"activation": "relu"})


def _png() -> bytes:
    out = io.BytesIO()
    img = np.zeros((56, 56), np.uint8)
    img[10:46, 24:32] = 255  # a "1"
    Image.fromarray(img).save(out, "PNG")
    return out.getvalue()


def test_every_form_of_a_picture_gets_the_same_answer(predictor):
    png = _png()
    raw = answer(predictor, png, "image/png")
    assert answer(predictor, png, "application/octet-stream") == raw
    assert answer(predictor, png, "application/x-www-form-urlencoded") == raw  # curl's default for --data-binary
    text = base64.b64encode(png).decode()
    for body in (json.dumps({"png": text}), json.dumps({"png": "data:image/png;base64," + text})):
        assert answer(predictor, body.encode(), "application/json") == raw
        assert answer(predictor, body.encode(), "application/vnd.example+json") == raw


def test_pixels(predictor):
    x = np.zeros((28, 28))
    x[5:23, 13:15] = 1
    got = answer(predictor, json.dumps({"pixels": x.ravel().tolist()}).encode(), "application/json")
    assert got == predictor.predict_pixels(x) and got["image"] == x.tolist()


@pytest.mark.parametrize("body, words", [
    (b"{", "not valid JSON (Expecting property name"), (b"\xff", "not valid JSON"), (b"[]", 'either "png" or "pixels"'),
    (b'{"png": "", "pixels": []}', 'either "png" or "pixels"'), (b'{"other": 1}', 'either "png" or "pixels"'),
    (b"[" * 50_000, "nested too deeply"),
])
def test_bad_json(body, words):
    with pytest.raises(BadInput) as info:
        parse_json(body)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_bad_base64():
    assert decode_base64("aGk=") == b"hi"
    for text, words in (("a b", "not valid base64"), ("abc", "not valid base64"), (None, "must be a base64 string")):
        with pytest.raises(BadInput, match=words):
            decode_base64(text)
