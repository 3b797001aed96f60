"""bench/api.py's parts that need no engine: the keep-alive list rounds (against a small HTTP
server of the test's own on a unix socket), the table and the option checks."""

from __future__ import annotations

import http.server
import importlib.util
import os
import socketserver
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
_spec = importlib.util.spec_from_file_location("bench_api", BENCH / "api.py")
assert _spec is not None and _spec.loader is not None
api = importlib.util.module_from_spec(_spec)
sys.modules["bench_api"] = api      # its dataclasses look their module up there
_spec.loader.exec_module(api)


_LIST = api.LIST_PATH


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the engines answer
    connections: set[int] = set()
    requests = 0

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).connections.add(id(self.connection))
        type(self).requests += 1
        body = b"[]\n" if self.path == _LIST else b"{}"
        self.send_response(200 if self.path == _LIST else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def sock() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "api.sock"
        server = _Server(str(path), _Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield path
        finally:
            server.shutdown()
            server.server_close()


def test_list_round_counts_keep_alive_requests(sock: Path) -> None:
    _Handler.connections.clear()
    _Handler.requests = 0
    engine = api.Engine("fake", sock, os.getpid(), {})
    rps, cpu = api.list_round(engine, clients=3, requests=7)
    assert _Handler.requests == 21
    assert len(_Handler.connections) == 3  # one connection per client, kept alive
    assert rps > 0 and cpu >= 0


def test_list_round_failure_is_an_error(sock: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "LIST_PATH", "/nosuch")
    engine = api.Engine("fake", sock, os.getpid(), {})
    with pytest.raises(RuntimeError, match="status 404"):
        api.list_round(engine, clients=2, requests=2)


def test_table_ratios_to_dockerd() -> None:
    barque = api.Engine("barque serve", Path("/b"), 1, {}, run_wall=[0.2, 0.3, 0.4],
                        run_cpu=[0.1] * 3, rps=[1000.0] * 3, cpu_per_request=[0.001] * 3)
    docker = api.Engine("dockerd", Path("/d"), 2, {}, run_wall=[0.6] * 3, run_cpu=[0.2] * 3,
                        rps=[2000.0] * 3, cpu_per_request=[0.0005] * 3)
    only_list = api.Engine("list only", Path("/l"), 3, {}, rps=[500.0],
                           cpu_per_request=[0.002])
    lines = api.table([barque, docker, only_list]).splitlines()
    assert lines[2].split(" | ")[1:] == ["0.300", "0.220", "0.380", "0.100", "0.50", "0.50",
                                         "1000", "1000", "1000", "1.00", "0.50", "2.00 |"]
    assert "not measured" in lines[4]


def test_option_checks() -> None:
    args = api.parse_args(["--runs", "2", "--engines", "barque"])
    assert args.engines == {"barque"} and args.containers == 100 and args.clients == 10
    for bad in (["--engines", "barque,podman"], ["--clients", "0"], ["--requests", "0"]):
        with pytest.raises(SystemExit):
            api.parse_args(bad)
