"""-H as dockerd takes it, and the rule that TCP needs --tlsverify (no sockets made here)."""

from __future__ import annotations

import pytest

from barque.api.listeners import Host, TLSOptions, check, parse_host
from barque.engine.errors import EngineError


@pytest.mark.parametrize(("text", "host"), [
    ("unix:///run/b.sock", Host("unix", "/run/b.sock")),
    ("fd://", Host("fd", "")),
    ("tcp://127.0.0.1:2376", Host("tcp", "127.0.0.1", 2376)),
    ("tcp://10.1.2.3", Host("tcp", "10.1.2.3", 2376)),
    ("tcp://:2377", Host("tcp", "127.0.0.1", 2377)),
    ("tcp://localhost:2378", Host("tcp", "127.0.0.1", 2378)),
    ("127.0.0.1:2379", Host("tcp", "127.0.0.1", 2379)),
    ("tcp://[::1]:2380", Host("tcp", "::1", 2380)),
    ("tcp://0.0.0.0:2376/", Host("tcp", "0.0.0.0", 2376)),
])
def test_hosts(text: str, host: Host) -> None:
    assert parse_host(text) == host


@pytest.mark.parametrize(("text", "words"), [
    ("unix://relative.sock", "must be absolute"),
    ("http://127.0.0.1:1", "unsupported protocol 'http'"),
    ("fd://3", "only fd://"),
    ("tcp://example.com:2376", "an IP address and a port"),
    ("tcp://127.0.0.1:99999", "invalid port 99999"),
    ("tcp://127.0.0.1:x", "an IP address and a port"),
    ("tcp://::1:2376", "in brackets"),
    ("tcp://127.0.0.1:2376/v1", "no path"),
])
def test_bad_hosts(text: str, words: str) -> None:
    with pytest.raises(EngineError, match=words) as e:
        parse_host(text)
    assert e.value.status == 400


def test_tcp_needs_tlsverify() -> None:
    tcp = [parse_host("tcp://127.0.0.1:2376")]
    for options in (TLSOptions(), TLSOptions(tls=True, cacert="ca.pem", cert="c", key="k")):
        with pytest.raises(EngineError, match="without --tlsverify"):
            check(tcp, options)
    check(tcp, TLSOptions(tls=True, verify=True))
    check([parse_host("unix:///b.sock")], TLSOptions())  # a unix socket needs no TLS
    with pytest.raises(EngineError, match="more than once"):
        check([parse_host("127.0.0.1:1"), parse_host("tcp://127.0.0.1:1")],
              TLSOptions(tls=True, verify=True))


def test_default_cert_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CERT_PATH", "/etc/certs")
    assert TLSOptions().path(None, "ca.pem") == "/etc/certs/ca.pem"
    assert TLSOptions().path("/x/ca.pem", "ca.pem") == "/x/ca.pem"
