"""The pad's HTTP routes: the page and its files, the model's description, predictions from a PNG (raw or
base64) and from pixels; every bad request a JSON 4xx that leaves the server serving; 50 clients at once."""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import threading
import time
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from mnist_accel.serve.handlers import MAX_BODY


def request(server, method, path, body=None, headers=None):
    """(status, headers, body) of one request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(server.url).port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def png_of(digit: np.ndarray, scale: int = 10, paper: bool = False) -> bytes:
    """An MNIST test digit as a larger PNG, white on black or dark on paper."""
    img = Image.fromarray(255 - digit if paper else digit).resize((28 * scale, 28 * scale), Image.BILINEAR)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def test_page_and_its_files(pad_server):
    status, headers, body = request(pad_server, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<canvas id="pad"' in body and b"/static/pad.js" in body
    assert "default-src 'none'" in headers["Content-Security-Policy"]  # nothing from elsewhere may load
    for name, kind in (("pad.js", "text/javascript"), ("pad.css", "text/css")):
        status, headers, body = request(pad_server, "GET", f"/static/{name}")
        assert status == 200 and headers["Content-Type"].startswith(kind) and len(body) > 500
    assert b"http" not in request(pad_server, "GET", "/static/pad.js")[2]  # no URL of a CDN, or of anything
    status, headers, body = request(pad_server, "HEAD", "/static/pad.css")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 500


def test_info(pad_server):
    status, _, body = request(pad_server, "GET", "/api/info")
    info = json.loads(body)
    assert status == 200 and info["classes"] == list(range(10)) and info["layers"] == [784, 512, 10]


def test_predicts_a_png_in_every_form(pad_server, mnist):
    digit, label = mnist.test_images[0], int(mnist.test_labels[0])
    png = png_of(digit)
    answers = [json.loads(request(pad_server, "POST", "/api/predict", png, {"Content-Type": "image/png"})[2]),
               json.loads(request(pad_server, "POST", "/api/predict", png_of(digit, paper=True))[2])]
    for text in (base64.b64encode(png).decode(), "data:image/png;base64," + base64.b64encode(png).decode()):
        status, _, body = request(pad_server, "POST", "/api/predict", json.dumps({"png": text}),
                                  {"Content-Type": "application/json"})
        assert status == 200
        answers.append(json.loads(body))
    for answer in answers:
        assert answer["label"] == label and answer["index"] == label
        assert np.asarray(answer["image"]).shape == (28, 28) and max(map(max, answer["image"])) == 1
        assert abs(sum(answer["probabilities"].values()) - 1) < 1e-4
        assert answer["probability"] == max(answer["probabilities"].values())
    assert answers[0] == answers[2] == answers[3]  # raw and base64: the same bytes, the same answer


def test_predicts_pixels_as_the_model_input(pad_server, mnist):
    """784 pixels in [0, 1] go to the model as they are: the answers match the MNIST test labels as often as
    the model does, and come back with the pixels as the image."""
    hits = 0
    for i in range(20):
        pixels = (mnist.test_images[i] / 255).ravel().tolist()
        status, _, body = request(pad_server, "POST", "/api/predict", json.dumps({"pixels": pixels}),
                                  {"Content-Type": "application/json"})
        answer = json.loads(body)
        assert status == 200 and np.allclose(np.ravel(answer["image"]), pixels, atol=1e-4)
        hits += answer["label"] == int(mnist.test_labels[i])
    assert hits >= 19


JSON = {"Content-Type": "application/json"}
BAD = [  # method, path, body, headers, status, words of the error
    ("POST", "/api/predict", b"not an image", {"Content-Type": "image/png"}, 400, "not a readable PNG"),
    ("POST", "/api/predict", b"", {"Content-Type": "image/png"}, 400, "the body is empty"),
    ("POST", "/api/predict", b"\0" * (MAX_BODY + 1), {"Content-Type": "image/png"}, 413, "over the limit"),
    ("POST", "/api/predict", json.dumps({"pixels": [0.5] * 783}), JSON, 400, "784 values"),
    ("POST", "/api/predict", json.dumps({"pixels": [[0.5] * 28] * 27}), JSON, 400, "784 values"),
    ("POST", "/api/predict", json.dumps({"pixels": [255] * 784}), JSON, 400, "divide 0-255 values by 255"),
    ("POST", "/api/predict", json.dumps({"pixels": ["a"] * 784}), JSON, 400, "must be numbers"),
    ("POST", "/api/predict", b'{"pixels": [', JSON, 400, "not valid JSON"),
    ("POST", "/api/predict", b"\xff\xfe", JSON, 400, "not valid JSON"),
    ("POST", "/api/predict", b"[" * 100_000, JSON, 400, "not valid JSON"),
    ("POST", "/api/predict", b"[1, 2]", JSON, 400, 'either "png" or "pixels"'),
    ("POST", "/api/predict", json.dumps({"png": "###"}), JSON, 400, "not valid base64"),
    ("POST", "/api/predict", json.dumps({"png": 7}), JSON, 400, "must be a base64 string"),
    ("POST", "/api/predict", json.dumps({"png": base64.b64encode(b"GIF89a").decode()}), JSON, 400, "not a readable"),
    ("GET", "/nowhere", None, {}, 404, "no such page"),
    ("POST", "/static/../handlers.py", b"x", {}, 404, "no such page"),
    ("GET", "/api/predict", None, {}, 405, "use POST"),
    ("DELETE", "/", None, {}, 405, "use GET"),
    ("POST", "/api/info", b"{}", JSON, 405, "use GET"),
    ("BREW", "/", None, {}, 501, "Unsupported method"),
]


@pytest.mark.parametrize("method, path, body, headers, status, words", BAD, ids=[f"{b[4]}-{b[5]}" for b in BAD])
def test_bad_requests_get_a_json_error(pad_server, method, path, body, headers, status, words):
    got, response_headers, answer = request(pad_server, method, path, body, headers)
    error = json.loads(answer)
    assert got == status and error["status"] == status and words in error["error"], error
    assert response_headers["Content-Type"] == "application/json"
    if status == 405:
        assert response_headers["Allow"] in ("GET, HEAD", "POST")
    assert request(pad_server, "GET", "/api/info")[0] == 200  # still serving


def test_blank_drawing_and_missing_length(pad_server):
    blank = io.BytesIO()
    Image.new("L", (280, 280), 0).save(blank, "PNG")
    status, _, body = request(pad_server, "POST", "/api/predict", blank.getvalue(), {"Content-Type": "image/png"})
    assert status == 400 and "no digit found" in json.loads(body)["error"]
    with socket.create_connection(("127.0.0.1", urlsplit(pad_server.url).port), timeout=30) as sock:
        sock.sendall(b"POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n0\r\n\r\n")
        reply = sock.makefile("rb").read()  # the server closes the connection after an error
    assert reply.startswith(b"HTTP/1.1 411") and b"chunked bodies are not accepted" in reply


def test_fifty_clients_at_once(pad_server, mnist):
    """50 threads post at the same moment, each its own digit, over keep-alive connections, twice: each
    gets its own answer, as one client alone gets it."""
    pngs = [png_of(mnist.test_images[i]) for i in range(50)]
    alone = [json.loads(request(pad_server, "POST", "/api/predict", p, {"Content-Type": "image/png"})[2]) for p in pngs]
    start, answers, failures = threading.Barrier(50), [None] * 50, []

    def client(i):
        conn = http.client.HTTPConnection("127.0.0.1", urlsplit(pad_server.url).port, timeout=60)
        try:
            start.wait()
            for _ in range(2):
                conn.request("POST", "/api/predict", pngs[i], {"Content-Type": "image/png"})
                response = conn.getresponse()
                answers[i] = (response.status, json.loads(response.read()))
        except Exception as exc:  # reported below, with the client's number
            failures.append(f"client {i}: {type(exc).__name__}: {exc}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures
    assert [a for a in answers] == [(200, a) for a in alone]


def test_a_fault_of_ours_is_a_500_and_the_server_goes_on(pad_server, monkeypatch, capsys):
    def broken(data):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(pad_server.predictor, "predict_image", broken)
    status, _, body = request(pad_server, "POST", "/api/predict", b"x", {"Content-Type": "image/png"})
    assert status == 500 and json.loads(body)["error"] == "the server failed: RuntimeError"
    assert "POST /api/predict: RuntimeError: broken on purpose" in capsys.readouterr().err
    monkeypatch.undo()
    assert request(pad_server, "GET", "/api/info")[0] == 200


def test_keep_alive_answers_do_not_wait_for_acknowledgements(pad_server, mnist):
    """The page sends a request per stroke segment on one connection: an answer must not sit out the
    client's delayed acknowledgement (40 ms or more on Linux) as it would under Nagle's algorithm."""
    png = png_of(mnist.test_images[0])
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(pad_server.url).port, timeout=30)
    times = []
    try:
        for _ in range(21):
            start = time.perf_counter()
            conn.request("POST", "/api/predict", png, {"Content-Type": "image/png"})
            response = conn.getresponse()
            assert response.status == 200 and response.read()
            times.append(time.perf_counter() - start)
    finally:
        conn.close()
    assert sorted(times)[10] < 0.03, times
