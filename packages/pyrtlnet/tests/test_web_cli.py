"""``pyrtlnet serve``: it says where it serves, answers there, and stops cleanly on Ctrl-C."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from pyrtlnet.cli import main


def _serve(*args: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pyrtlnet", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    for line in process.stdout:
        found = re.match(r"serving (http://\S+)  \(Ctrl-C stops\)$", line.rstrip("\n"))
        if found:
            return process, found.group(1)
    process.wait(timeout=30)
    pytest.fail(f"no URL printed; stderr: {process.stderr.read() if process.stderr else ''}")


def _stop(process: subprocess.Popen) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    return out, err


def test_serve_prints_its_url_answers_there_and_stops_on_ctrl_c():
    process, url = _serve()
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/models", timeout=30) as response:
            names = [model["name"] for model in json.load(response)["models"]]
        assert names == ["mlp"]
    finally:
        out, err = _stop(process)
    assert process.returncode == 0
    assert out.strip().endswith("stopped")
    assert "Traceback" not in err


def test_serve_warns_when_listening_beyond_this_machine():
    process, url = _serve("--host", "0.0.0.0")
    try:
        assert url.startswith("http://0.0.0.0:")
        port = url.rsplit(":", 1)[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=30) as response:
            assert response.status == 200
    finally:
        _, err = _stop(process)
    assert (
        "pyrtlnet serve: warning: --host 0.0.0.0 makes the page and its API reachable from "
        "other machines; the server has no authentication"
    ) in err
    assert process.returncode == 0


def test_serve_reports_a_port_in_use_in_one_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert re.fullmatch(
        rf"pyrtlnet serve: error: cannot listen on 127\.0\.0\.1 port {port} \(.+\); "
        r"choose another with --port\n",
        err,
    )


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_serve_refuses_a_port_that_is_not_one(capsys, port):
    assert main(["serve", "--port", port]) == 2
    assert f"a port must be an integer 0-65535, not {port!r}" in capsys.readouterr().err


def test_serve_reports_a_model_it_cannot_read(capsys, tmp_path):
    missing = tmp_path / "missing.tflite"
    assert main(["serve", "--port", "0", "--model", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pyrtlnet serve: error: ")
    assert str(missing) in err
