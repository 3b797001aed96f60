"""A real registry (Debian's `docker-registry`, distribution 2.8) on 127.0.0.1, for tests.

`run_registry` writes its config (JSON, which the registry's YAML parser reads), starts
`docker-registry serve`, waits for `/v2/` to answer and stops it (by its Popen handle) on
exit. Its access log (one combined-log line per request) is kept for counting requests.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from tests.support.tools import require

_ACCESS_RE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) ')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    root: str
    log_path: str
    proc: subprocess.Popen[bytes]
    scheme: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def access_log(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request served so far."""
        with open(self.log_path, errors="replace") as f:
            return [(m["method"], m["path"], int(m["status"]))
                    for m in map(_ACCESS_RE.search, f) if m]

    def count(self, method: str, path: str, status: int | None = None) -> int:
        """How many `method` requests for exactly `path` (query ignored) were served."""
        return sum(1 for m, p, s in self.access_log()
                   if m == method and p.split("?")[0] == path and status in (None, s))


def _config(root: str, port: int, auth: dict[str, Any] | None,
            tls: tuple[str, str] | None) -> dict[str, Any]:
    http: dict[str, Any] = {"addr": f"127.0.0.1:{port}", "secret": "barque-tests"}
    if tls:
        http["tls"] = {"certificate": tls[0], "key": tls[1]}
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": os.path.join(root, "data")},
                    "delete": {"enabled": True}},
        "http": http,
    }
    if auth:
        config["auth"] = auth
    return config


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: str) -> bool:
    """True once /v2/ answers; False if the registry exited (e.g. the port was taken)."""
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if requests.get(url + "/v2/", timeout=2, verify=False).status_code in (200, 401):
                return True
        except requests.RequestException:
            pass
        time.sleep(0.05)
    with open(log_path, errors="replace") as f:
        raise AssertionError("docker-registry did not start:\n" + f.read()[-2000:])


@contextmanager
def run_registry(root: str, *, auth: dict[str, Any] | None = None,
                 tls: tuple[str, str] | None = None) -> Iterator[Registry]:
    """A registry storing under `root`; `auth` is the config's `auth:` section, `tls` a
    (certificate, key) pair."""
    require("docker-registry")
    os.makedirs(root, exist_ok=True)
    log_path = os.path.join(root, "registry.log")
    for _ in range(5):
        port = free_port()
        config_path = os.path.join(root, "config.yml")
        with open(config_path, "w") as f:
            json.dump(_config(root, port, auth, tls), f)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(["docker-registry", "serve", config_path], stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        scheme = "https" if tls else "http"
        try:
            ready = _wait_ready(f"{scheme}://127.0.0.1:{port}", proc, log_path)
        except BaseException:
            _stop(proc)
            raise
        if ready:
            break
        _stop(proc)
    else:
        with open(log_path, errors="replace") as f:
            raise AssertionError("docker-registry did not start:\n" + f.read()[-2000:])
    try:
        yield Registry(f"127.0.0.1:{port}", root, log_path, proc, scheme)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def skopeo_copy(src: str, dest: str, *args: str) -> None:
    """`skopeo copy` between transports, with TLS checks off for the local registries."""
    require("skopeo")
    proc = subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false",
                           "--dest-tls-verify=false", *args, src, dest],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"skopeo copy {src} {dest}: {proc.stderr}"


def skopeo_inspect(ref: str, *args: str) -> dict[str, Any]:
    require("skopeo")
    proc = subprocess.run(["skopeo", "inspect", "--tls-verify=false", *args, ref],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"skopeo inspect {ref}: {proc.stderr}"
    result: dict[str, Any] = json.loads(proc.stdout)
    return result
