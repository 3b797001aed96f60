"""barque.network.ports: `-p`/`--expose` parsed as Docker's (each case's result and error
words checked against the docker 28.2 CLI), what `-P` publishes, and host ports held by real
sockets: a port a host process has, a port another container publishes, kernel-chosen ports,
ranges, all or nothing. Sockets only on 127.0.0.1 (and the wildcard addresses, bound, never
connected to)."""

from __future__ import annotations

import errno
import fcntl
import os
import socket

import pytest

from barque.network import ports
from barque.network.ports import PortError, PortMap, PortRequest

# -p VALUE -> (ExposedPorts keys, PortBindings), as `docker create -p VALUE` sends them.
PUBLISH = [
    ("80", {"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
    ("8080:80", {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
    ("8080:80/udp", {"80/udp": [{"HostIp": "", "HostPort": "8080"}]}),
    ("8080:80/UDP", {"80/udp": [{"HostIp": "", "HostPort": "8080"}]}),
    ("53/sctp", {"53/sctp": [{"HostIp": "", "HostPort": ""}]}),
    ("127.0.0.1:8080:80", {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}),
    ("127.0.0.1::80", {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}),
    ("[::1]:8080:80", {"80/tcp": [{"HostIp": "::1", "HostPort": "8080"}]}),
    ("::1:8080:80", {"80/tcp": [{"HostIp": "::1", "HostPort": "8080"}]}),
    ("8000-8010:80", {"80/tcp": [{"HostIp": "", "HostPort": "8000-8010"}]}),
    ("8000-8001:80-81", {"80/tcp": [{"HostIp": "", "HostPort": "8000"}],
                         "81/tcp": [{"HostIp": "", "HostPort": "8001"}]}),
    ("80-81", {"80/tcp": [{"HostIp": "", "HostPort": ""}],
               "81/tcp": [{"HostIp": "", "HostPort": ""}]}),
    ("080:080", {"80/tcp": [{"HostIp": "", "HostPort": "80"}]}),
    ("80/", {"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
    ("target=80,published=8080", {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
    ("target=53,protocol=udp", {"53/udp": [{"HostIp": "", "HostPort": ""}]}),
]

PUBLISH_ERRORS = [
    ("abc", "Invalid containerPort: abc"),
    ("70000", "Invalid containerPort: 70000"),
    ("80-70", "Invalid containerPort: 80-70"),
    ("", "No port specified: <empty>"),
    ("/80", "No port specified: /80<empty>"),
    ("80/xyz", "Invalid proto: xyz"),
    ("127.0.0.1:abc:80", "Invalid hostPort: abc"),
    ("8000-:80", "Invalid hostPort: 8000-"),
    ("1.2.3.4:80:80:80", "Invalid ip address: 1.2.3.4:80"),
    ("300.1.1.1:80:80", "Invalid ip address: 300.1.1.1"),
    ("fe80::1%eth0:80:80", "Invalid ip address: fe80::1%eth0"),
    ("8000-8010:80-85", "Invalid ranges specified for container and host Ports: 80-85 and "
                        "8000-8010"),
    ("8080:80-81", "Invalid ranges specified for container and host Ports: 80-81 and 8080"),
    ("[::1:80:80", "Invalid ip address [::1: address [::1:: missing ']' in address"),
    ("published=80", "missing required 'target' in the publish port"),
    ("target=80,x", "invalid publish opts format (should be name=value but got 'x')"),
]

EXPOSE = [
    ("80", ["80/tcp"]), ("80/udp", ["80/udp"]), ("90-92", ["90/tcp", "91/tcp", "92/tcp"]),
    ("80/XYZ", ["80/XYZ"]),  # the CLI does not check --expose's protocol
]

EXPOSE_ERRORS = [
    ("80:80", "invalid port format for --expose: 80:80"),
    ("abc", 'invalid range format for --expose: abc, error: strconv.ParseUint: parsing "abc": '
            "invalid syntax"),
    ("80-70", "invalid range format for --expose: 80-70, error: invalid range specified for "
              "port: 80-70"),
    ("99999", 'invalid range format for --expose: 99999, error: strconv.ParseUint: parsing '
              '"99999": value out of range'),
]


@pytest.mark.parametrize("value,bindings", PUBLISH)
def test_publish_specs(value: str, bindings: dict) -> None:
    exposed, got = ports.parse_publish([value])
    assert got == bindings
    assert exposed == {key: {} for key in bindings}


@pytest.mark.parametrize("value,words", PUBLISH_ERRORS)
def test_publish_errors(value: str, words: str) -> None:
    with pytest.raises(PortError) as e:
        ports.parse_publish([value])
    assert str(e.value) == words


def test_publish_repeated_port_gets_every_binding() -> None:
    exposed, bindings = ports.parse_publish(["8080:80", "127.0.0.1:9090:80"])
    assert exposed == {"80/tcp": {}}
    assert bindings == {"80/tcp": [{"HostIp": "", "HostPort": "8080"},
                                   {"HostIp": "127.0.0.1", "HostPort": "9090"}]}


@pytest.mark.parametrize("value,keys", EXPOSE)
def test_expose(value: str, keys: list[str]) -> None:
    exposed: dict = {"80/tcp": {}}
    ports.parse_expose([value], exposed)
    assert sorted(exposed) == sorted({"80/tcp", *keys})


@pytest.mark.parametrize("value,words", EXPOSE_ERRORS)
def test_expose_errors(value: str, words: str) -> None:
    with pytest.raises(PortError) as e:
        ports.parse_expose([value], {})
    assert str(e.value) == words


def test_requested_publish_all_takes_the_images_expose() -> None:
    config = {"ExposedPorts": {"80/tcp": {}, "443/tcp": {}, "53/udp": {}}}  # merged with EXPOSE
    host_config = {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
                   "PublishAllPorts": True}
    assert ports.requested(config, host_config) == [
        PortRequest("tcp", "127.0.0.1", 8080, 8080, 80),  # exact ports first
        PortRequest("udp", "", 0, 0, 53),
        PortRequest("tcp", "", 0, 0, 443),
    ]
    host_config["PublishAllPorts"] = False
    assert ports.requested(config, host_config) == [
        PortRequest("tcp", "127.0.0.1", 8080, 8080, 80)]
    for mode in ("host", "none", "container:x"):  # Docker discards them
        assert ports.requested(config, {**host_config, "NetworkMode": mode}) == []


def test_requested_ranges_and_brackets() -> None:
    host_config = {"PortBindings": {"80/tcp": [{"HostIp": "[::1]", "HostPort": "8000-8010"}]}}
    assert ports.requested({}, host_config) == [PortRequest("tcp", "::1", 8000, 8010, 80)]


# --- holding host ports -----------------------------------------------------------------------

def _listener(address: str = "127.0.0.1", port: int = 0, kind: int = socket.SOCK_STREAM
              ) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    if kind == socket.SOCK_STREAM:
        sock.listen(1)
    return sock


def _free(port: int, address: str = "127.0.0.1") -> bool:
    """Could a host process (one that sets SO_REUSEADDR, as servers do) take the port?"""
    try:
        _listener(address, port).close()
        return True
    except OSError as e:
        assert e.errno == errno.EADDRINUSE
        return False


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_reserve_kernel_chosen_port_is_held() -> None:
    held = ports.reserve([PortRequest("tcp", "127.0.0.1", 0, 0, 80)])
    try:
        [(fd, mapping)] = held
        assert mapping.host_ip == "127.0.0.1" and mapping.container_port == 80
        assert 1024 < mapping.host_port < 65536
        assert not _free(mapping.host_port)
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    finally:
        ports.release(held)
    assert _free(mapping.host_port)


def test_reserve_every_address_gets_the_same_port() -> None:
    """A container with an IPv6 address gets 0.0.0.0 and :: (where the host has IPv6), one
    PortMap per socket naming its address."""
    held = ports.reserve([PortRequest("tcp", "", 0, 0, 80), PortRequest("udp", "", 0, 0, 53)],
                         container_ip="172.17.0.2", container_ipv6="fd00::2")
    try:
        families = {}
        for fd, mapping in held:
            sock = socket.socket(fileno=os.dup(fd))
            families[(mapping.proto, sock.family)] = (sock.getsockname()[:2], mapping)
            assert sock.getsockname()[0] == mapping.host_ip
            sock.close()
        tcp = [m for (proto, _), (_, m) in families.items() if proto == "tcp"]
        assert len({m.host_port for m in tcp}) == 1
        expected = 2 if ports.ipv6_listenable() else 1
        assert [m.host_ip for m in tcp] == ["0.0.0.0", "::"][:expected]
        assert len(tcp) == expected and len(families) == 2 * expected
        assert ports.port_maps(held) == [m for _, m in held]
        assert not _free(tcp[0].host_port)
    finally:
        ports.release(held)


def test_reserve_ipv4_only_container_gets_no_ipv6_address() -> None:
    """Docker without its userland proxy: no [::]:PORT for a container the kernel cannot
    forward IPv6 to (it would accept connections nothing ever answers)."""
    held = ports.reserve([PortRequest("tcp", "", 0, 0, 80)], container_ip="172.17.0.2")
    try:
        assert [m.host_ip for _, m in held] == ["0.0.0.0"]
    finally:
        ports.release(held)


@pytest.mark.parametrize("host_ip, ipv6, words", [
    ("::", "", "failed to bind host port for [::]:8080:172.17.0.2:80/tcp: Cannot map from "
               "IPv6 to an IPv4-only container because the userland proxy is disabled"),
    ("::1", "", "Cannot map from IPv6 to an IPv4-only container"),
    ("::1", "fd00::2", "failed to bind host port for [::1]:8080:[fd00::2]:80/tcp: Cannot "
                       "map from the IPv6 loopback address to a container"),
])
def test_reserve_ipv6_host_address_nothing_can_reach(host_ip: str, ipv6: str,
                                                     words: str) -> None:
    before = _open_fds()
    with pytest.raises(PortError) as e:
        ports.reserve([PortRequest("tcp", "127.0.0.1", 0, 0, 81),
                       PortRequest("tcp", host_ip, 8080, 8080, 80)],
                      container_ip="172.17.0.2", container_ipv6=ipv6)
    assert words in str(e.value) and e.value.status == 500  # as a bind that failed
    assert _open_fds() == before  # all or nothing


def test_reserve_ipv6_host_address_of_an_ipv6_container() -> None:
    if not ports.ipv6_listenable():
        pytest.skip("the host has no IPv6")  # (CI's has)
    held = ports.reserve([PortRequest("tcp", "::", 0, 0, 80)], container_ip="172.17.0.2",
                         container_ipv6="fd00::2")
    try:
        [(fd, mapping)] = held
        assert mapping.host_ip == "::"
        with socket.socket(fileno=os.dup(fd)) as sock:
            assert sock.family == socket.AF_INET6
    finally:
        ports.release(held)


def test_requested_ipv4_mapped_host_address_is_ipv4() -> None:
    wanted = ports.requested({}, {"PortBindings": {"80/tcp": [
        {"HostIp": "::ffff:127.0.0.1", "HostPort": "8080"}]}})
    assert [r.host_ip for r in wanted] == ["127.0.0.1"]


def test_reserve_port_of_a_host_process_gives_dockers_words() -> None:
    before = _open_fds()
    taken = _listener()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(PortError) as e:
            ports.reserve([PortMap("tcp", "127.0.0.1", port, 80)], container_ip="172.17.0.2")
        assert str(e.value) == (f"failed to bind host port for 127.0.0.1:{port}:172.17.0.2:80"
                                "/tcp: address already in use")
        assert e.value.status == 500
    finally:
        taken.close()
    assert _open_fds() == before


def test_reserve_port_another_container_publishes() -> None:
    with pytest.raises(PortError) as e:
        ports.reserve([PortMap("tcp", "", 8080, 80)], allocated=[("tcp", "127.0.0.1", 8080)])
    assert str(e.value) == "Bind for 0.0.0.0:8080 failed: port is already allocated"
    with pytest.raises(PortError) as e:
        ports.reserve([PortMap("udp", "127.0.0.1", 5353, 53)], allocated=[("udp", "", 5353)])
    assert str(e.value) == "Bind for 127.0.0.1:5353 failed: port is already allocated"
    # another protocol, another address of the same family: no conflict
    held = ports.reserve([PortRequest("udp", "127.0.0.1", 0, 0, 53)],
                         allocated=[("tcp", "", 1), ("udp", "127.0.0.2", 1)])
    ports.release(held)


def test_reserve_is_all_or_nothing() -> None:
    before = _open_fds()
    taken = _listener()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(PortError):
            ports.reserve([PortRequest("tcp", "127.0.0.1", 0, 0, 80),
                           PortRequest("udp", "127.0.0.1", 0, 0, 53),
                           PortMap("tcp", "127.0.0.1", port, 81)])
    finally:
        taken.close()
    assert _open_fds() == before  # the sockets made before the failure are closed


def test_reserve_range_skips_taken_ports() -> None:
    first = _listener()
    start = first.getsockname()[1]
    try:
        held = ports.reserve([PortRequest("tcp", "127.0.0.1", start, min(start + 20, 65535),
                                          80)],
                             allocated=[("tcp", "127.0.0.1", start + 1)])
        try:
            [(_, mapping)] = held
            assert start + 1 < mapping.host_port <= start + 20
        finally:
            ports.release(held)
        with pytest.raises(PortError) as e:
            ports.reserve([PortRequest("tcp", "127.0.0.1", start, start, 80)],
                          allocated=[])
        assert "address already in use" in str(e.value)
    finally:
        first.close()


def test_udp_port_is_held() -> None:
    held = ports.reserve([PortRequest("udp", "127.0.0.1", 0, 0, 53)])
    try:
        port = held[0][1].host_port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            with pytest.raises(OSError) as e:
                s.bind(("127.0.0.1", port))  # a process without SO_REUSEADDR
            assert e.value.errno == errno.EADDRINUSE
    finally:
        ports.release(held)


def test_reserve_ipv6_port_of_a_host_process_releases_the_ipv4_one() -> None:
    if not ports.ipv6_listenable():
        pytest.skip("the host has no IPv6")  # (CI's has)
    before = _open_fds()
    taken = socket.socket(socket.AF_INET6)
    taken.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    taken.bind(("::", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(PortError) as e:
            ports.reserve([PortRequest("tcp", "", port, port, 80)], container_ip="172.17.0.2",
                          container_ipv6="fd00::2")
        assert str(e.value) == (f"failed to bind host port for [::]:{port}:[fd00::2]:80/tcp: "
                                "address already in use")
    finally:
        taken.close()
    assert _open_fds() == before  # 0.0.0.0's socket closed too
