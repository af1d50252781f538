"""The drawing pad's command: it prints where the page is, serves until Ctrl-C (which ends it cleanly, with
no traceback), and says in one line what is wrong with a model file or a port."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from mnist_accel.cli.serve import main as serve
from mnist_accel.model import init_params
from mnist_accel.persist import save_model


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.npz"
    save_model(path, init_params(np.random.default_rng(0), [784, 8, 10], dtype=np.float32),
               {"activation": "relu", "classes": list(range(10))})
    return path


def _start(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mnist_accel.serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    found = re.search(r"at (http://\S+/) ", line)
    if not found:
        proc.kill()
        pytest.fail(f"no address in {line!r}; stderr: {proc.stderr.read()}")
    return proc, found[1]


@pytest.mark.parametrize("stop, code, last", [(signal.SIGINT, 0, "mnist_accel.serve: stopped"),
                                              (signal.SIGTERM, 128 + signal.SIGTERM, "stopped by SIGTERM")])
def test_serves_until_stopped(model, stop, code, last):
    proc, url = _start("--model", str(model), "--port", "0")
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/info", timeout=120) as response:
            assert json.loads(response.read())["classes"] == list(range(10))
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code
    assert "Traceback" not in err and (out + err).strip().splitlines()[-1].endswith(last)


def test_warns_when_open_to_the_network(model):
    proc, url = _start("--model", str(model), "--port", "0", "--host", "0.0.0.0")
    try:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert "warning: listening on 0.0.0.0: anyone who can reach this machine can use the pad" in err
    assert proc.returncode == 0


def test_one_line_errors(model, tmp_path, capsys):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"junk")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cases = [(["--model", str(tmp_path / "missing.npz")], 2, "missing.npz: no such file"),
                 (["--model", str(junk)], 1, "junk.npz: not a readable mnist-accel model"),
                 (["--model", str(model), "--port", str(port)], 2, f"port {port} is in use"),
                 (["--model", str(model), "--port", "-1"], 2, "--port -1 is not a port number"),
                 (["--port", "0"], 2, "required: --model")]
        for args, code, message in cases:
            with pytest.raises(SystemExit) as info:
                raise SystemExit(serve(args))
            err = capsys.readouterr().err
            assert info.value.code == code and message in err and len(err.strip().splitlines()) == 1, err
