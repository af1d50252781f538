"""The pad's server: where it listens, the address it prints, and one-line errors for the usual failures
to listen (a port in use, a port that is not one, a host this machine does not have)."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request

import numpy as np
import pytest

from mnist_accel.errors import ConfigError
from mnist_accel.model import init_params
from mnist_accel.serve.predictor import Predictor
from mnist_accel.serve.server import is_loopback, make_server


@pytest.fixture
def predictor():
    return Predictor(init_params(np.random.default_rng(0), [784, 8, 10], dtype=np.float32), {"activation": "relu"})


def _serve(server):
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


def test_listens_on_loopback_by_default(predictor):
    server = make_server(predictor)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1" and port > 0 and server.url == f"http://127.0.0.1:{port}/"
        thread = _serve(server)
        with urllib.request.urlopen(server.url + "api/info", timeout=10) as response:
            assert json.loads(response.read())["layers"] == [784, 8, 10]
    finally:
        server.shutdown()
        server.server_close()
    thread.join(5)


def test_wildcard_and_ipv6_addresses(predictor):
    server = make_server(predictor, "0.0.0.0", 0)
    try:
        assert server.url == f"http://127.0.0.1:{server.server_port}/"  # where a browser here finds it
    finally:
        server.server_close()
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        server = make_server(predictor, "::1", 0)
    except ConfigError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert server.url == f"http://[::1]:{server.server_port}/"
        thread = _serve(server)
        with urllib.request.urlopen(server.url + "api/info", timeout=10) as response:
            assert response.status == 200
    finally:
        server.shutdown()
        server.server_close()
    thread.join(5)


def test_one_line_errors(predictor):
    taken = make_server(predictor)
    try:
        with pytest.raises(ConfigError, match=rf"^127.0.0.1 port {taken.server_port} is in use: .* --port"):
            make_server(predictor, "127.0.0.1", taken.server_port)
    finally:
        taken.server_close()
    with pytest.raises(ConfigError, match="^--port 70000 is not a port number"):
        make_server(predictor, "127.0.0.1", 70000)
    with pytest.raises(ConfigError, match="^--host no-such-host.invalid: not an address or a known host name"):
        make_server(predictor, "no-such-host.invalid", 0)
    with pytest.raises(ConfigError, match="^cannot listen on 192.0.2.1: not an address of this machine"):
        make_server(predictor, "192.0.2.1", 0)  # TEST-NET-1: documentation only, never assigned


def test_is_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.1.2.3")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.168.1.2")
    assert not is_loopback("example.org")
