"""What a ``POST /api/predict`` body may hold, and the answer to it: a picture's bytes (any Content-Type but
JSON), or JSON ``{"png": BASE64}`` (a ``data:`` URL too) or ``{"pixels": [784 values in [0, 1]]}``.
Anything else is a BadInput whose one-line message says what to send instead."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from mnist_accel.serve.predictor import BadInput, Predictor

USAGE = 'send a picture as the body, or JSON {"png": BASE64} or {"pixels": [784 values in [0, 1]]}'


def answer(predictor: Predictor, body: bytes, content_type: str) -> dict[str, Any]:
    """The predictor's answer to a request body of this (lower-case, parameterless) content type."""
    if content_type == "application/json" or content_type.endswith("+json"):
        request = parse_json(body)
        if "pixels" in request:
            return predictor.predict_pixels(request["pixels"])
        return predictor.predict_image(decode_base64(request["png"]))
    return predictor.predict_image(body)


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        detail = str(exc).split("\n")[0] if not isinstance(exc, RecursionError) else "nested too deeply"
        raise BadInput(f"the body is not valid JSON ({detail})") from None
    if not isinstance(request, dict) or ("png" in request) == ("pixels" in request):
        raise BadInput(f"JSON must be an object with either \"png\" or \"pixels\"; {USAGE}")
    return request


def decode_base64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise BadInput('"png" must be a base64 string (a data: URL is fine)')
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput('"png" is not valid base64') from None
