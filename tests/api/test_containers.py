"""The container run path of the real docker CLI and the Docker SDK through `barque serve`."""

from __future__ import annotations

import json
import subprocess
import threading

import pytest

from tests.api.conftest import Server

pytestmark = pytest.mark.root


def test_run_rm_prints_and_exits_with_the_container(server: Server) -> None:
    out = server.docker("run", "--rm", "busybox", "echo", "hi")
    assert (out.returncode, out.stdout) == (0, "hi\n"), out.stderr
    out = server.docker("run", "--rm", "busybox", "sh", "-c", "echo oops >&2; exit 3")
    assert (out.returncode, out.stdout, out.stderr) == (3, "", "oops\n")
    out = server.docker("run", "--rm", "busybox", "nosuchcmd")  # the start's answer, once
    assert (out.returncode, out.stdout, out.stderr.splitlines()[0].rstrip(".")) == (127, "", (
        "docker: Error response from daemon: failed to create shim task: OCI runtime create "
        "failed: barque-runtime run failed: unable to start container process: exec: "
        '"nosuchcmd": executable file not found in $PATH: unknown'))  # then the client's hint
    assert server.docker("ps", "-aq").stdout == ""  # --rm: removed


def test_run_i_forwards_stdin(server: Server) -> None:
    out = server.docker("run", "-i", "--rm", "busybox", "cat", input="abc\n")
    assert (out.returncode, out.stdout) == (0, "abc\n"), out.stderr


def test_run_t_is_raw(server: Server) -> None:
    out = server.docker("run", "--rm", "-t", "busybox", "echo", "tty")
    assert (out.returncode, out.stdout) == (0, "tty\n"), out.stderr  # no stdcopy headers


def test_ps_inspect_logs_rm(server: Server) -> None:
    out = server.docker("run", "--name", "kept", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert out.returncode == 0, out.stderr
    ps = server.docker("ps", "-a", "--format", "{{.Names}} {{.Image}} {{.State}}")
    assert ps.stdout.split() == ["kept", "busybox", "exited"]
    assert server.docker("ps", "-q").stdout == ""  # not running
    inspected = server.docker("inspect", "kept")
    assert inspected.returncode == 0, inspected.stderr
    [data] = json.loads(inspected.stdout)
    assert (data["Name"], data["State"]["ExitCode"], data["Args"]) == \
        ("/kept", 0, ["-c", "echo out; echo err >&2"])
    logs = server.docker("logs", "kept")
    assert (logs.stdout, logs.stderr) == ("out\n", "err\n")
    assert server.barque.run("ps", "-aq").stdout.strip() == data["Id"][:12]  # one set
    assert server.docker("rm", "kept").returncode == 0
    assert server.docker("ps", "-aq").stdout == ""


def test_logs_follow_and_tail(server: Server) -> None:
    out = server.docker("run", "-d", "--name", "talks", "busybox", "sh", "-c",
                        "echo a; echo b >&2; sleep 1; echo c")
    assert out.returncode == 0, out.stderr
    logs = server.docker("logs", "-f", "talks")  # ends when the container does
    assert (logs.returncode, logs.stdout, logs.stderr) == (0, "a\nc\n", "b\n")
    assert server.docker("logs", "--tail", "1", "talks").stdout == "c\n"
    stamped = server.docker("logs", "-t", "talks").stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["a", "c"]
    assert all(line[:4].isdigit() and "T" in line.split(" ")[0] for line in stamped)


def test_unknown_container(server: Server) -> None:
    out = server.docker("rm", "nosuch")
    assert out.returncode == 1
    assert "No such container: nosuch" in out.stderr
    status, headers, body = server.request("GET", "/v1.43/containers/nosuch/json")
    assert (status, headers["Content-Type"]) == (404, "application/json")
    assert json.loads(body) == {"message": "No such container: nosuch"}


def test_bad_requests_change_nothing(server: Server) -> None:
    status, _, body = server.request("POST", "/v1.43/containers/create", b"{bad",
                                     {"Content-Type": "application/json"})
    assert status == 400
    assert json.loads(body)["message"].startswith("invalid JSON")
    status, _, body = server.request("POST", "/v1.43/containers/create",
                                     b'{"Image": "busybox"' + b" " * (17 << 20) + b"}",
                                     {"Content-Type": "application/json"})
    assert status == 413
    status, _, body = server.request(
        "POST", "/v1.43/containers/create?name=bad",
        json.dumps({"Image": "busybox", "Cmd": ["true"],
                    "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}).encode(),
        {"Content-Type": "application/json"})
    assert status == 400
    assert "invalid restart policy" in json.loads(body)["message"]
    for bad in ({"Image": "busybox", "HostConfig": "x"}, {"Image": "busybox", "Cmd": [1]},
                {"Cmd": ["true"]}, {"Image": "busybox", "Cmd": ["true"], "Env": "A=1"}):
        status, headers, body = server.request("POST", "/v1.43/containers/create",
                                               json.dumps(bad).encode(),
                                               {"Content-Type": "application/json"})
        assert 400 <= status < 600 and headers["Content-Type"] == "application/json", body
        assert json.loads(body)["message"]
    status, _, body = server.request("POST", "/v1.43/containers/nosuch/wait?condition=never")
    assert (status, json.loads(body)) == (400, {"message": 'invalid condition: "never"'})
    status, _, body = server.request("POST", "/v1.43/containers/nosuch/wait")
    assert (status, json.loads(body)) == (404, {"message": "No such container: nosuch"})
    assert server.docker("ps", "-aq").stdout == ""


def test_docker_sdk(server: Server) -> None:
    import docker  # the test extra (pip install -e '.[test]'): never skipped
    client = docker.DockerClient(base_url=server.host)
    try:
        assert client.version()["ApiVersion"] == "1.43"
        assert client.containers.run("busybox", ["sh", "-c", "echo sdk; echo e >&2"],
                                     remove=True, stderr=True) == b"sdk\ne\n"
        container = client.containers.run("busybox", ["sh", "-c", "echo det; exit 5"],
                                          detach=True)
        assert container.wait()["StatusCode"] == 5
        assert container.logs() == b"det\n"
        assert [c.id for c in client.containers.list(all=True)] == [container.id]
        container.remove()
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(container.id)
    finally:
        client.close()


def test_ps_filters(server: Server) -> None:
    assert server.docker("run", "--name", "ok", "busybox", "true").returncode == 0
    assert server.docker("run", "--name", "bad", "busybox", "false").returncode == 1
    out = server.docker("ps", "-a", "--filter", "exited=1", "--format", "{{.Names}}")
    assert out.stdout.split() == ["bad"], out.stderr
    out = server.docker("ps", "-a", "--filter", "name=ok", "--format", "{{.Names}}")
    assert out.stdout.split() == ["ok"], out.stderr
    out = server.docker("ps", "-a", "--filter", "colour=blue")
    assert out.returncode == 1
    assert "Invalid filter 'colour'" in out.stderr


def test_concurrent_clients(server: Server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    assert server.docker("create", "--name", "one", "busybox", "true").returncode == 0

    def ask(i: int) -> int:
        path = "/v1.43/containers/json?all=1" if i % 2 else "/_ping"
        status, _, _ = server.request("GET", path)
        return status

    with ThreadPoolExecutor(100) as pool:
        assert set(pool.map(ask, range(200))) == {200}


def test_stop_kill_restart_pause(server: Server) -> None:
    out = server.docker("run", "-d", "--name", "long", "busybox", "sleep", "60")
    assert out.returncode == 0, out.stderr

    def state() -> str:
        return server.docker("inspect", "-f", "{{.State.Status}}", "long").stdout.strip()

    assert server.docker("pause", "long").returncode == 0
    assert state() == "paused"
    assert server.docker("unpause", "long").returncode == 0
    assert server.docker("restart", "-t", "0", "long").returncode == 0
    assert state() == "running"
    assert server.docker("stop", "-t", "1", "long").returncode == 0
    assert state() == "exited"
    out = server.docker("kill", "long")
    assert out.returncode == 1
    assert "is not running" in out.stderr
    assert server.docker("start", "long").returncode == 0
    assert server.docker("kill", "long").returncode == 0
    assert server.docker("wait", "long").stdout.strip() == "137"


def test_top_diff_rename_prune(server: Server) -> None:
    out = server.docker("run", "-d", "--name", "busy", "busybox", "sh", "-c",
                        "touch /made; exec sleep 60")
    assert out.returncode == 0, out.stderr
    top = server.docker("top", "busy")
    assert top.returncode == 0, top.stderr
    assert top.stdout.split("\n")[0].split()[:2] == ["UID", "PID"]
    assert "sleep 60" in top.stdout
    diff = server.docker("diff", "busy")
    assert "A /made" in diff.stdout.splitlines(), diff.stdout + diff.stderr
    assert server.docker("rename", "busy", "idle").returncode == 0
    assert server.docker("ps", "--format", "{{.Names}}").stdout == "idle\n"
    assert server.docker("run", "--name", "done", "busybox", "true").returncode == 0
    pruned = server.docker("container", "prune", "-f")
    assert pruned.returncode == 0, pruned.stderr
    assert server.docker("ps", "-a", "--format", "{{.Names}}").stdout == "idle\n"
    assert server.docker("rm", "-f", "idle").returncode == 0


def _listed(server: Server, query: str = "all=1") -> dict[str, tuple[str, str]]:
    """name -> (State, Status) of GET /containers/json?QUERY."""
    status, headers, body = server.request("GET", f"/v1.41/containers/json?{query}")
    assert (status, headers["Content-Type"]) == (200, "application/json"), body
    return {c["Names"][0][1:]: (c["State"], c["Status"]) for c in json.loads(body)}


def _ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_list_is_current_for_what_the_cli_did_meanwhile(server: Server) -> None:
    """The server keeps what it parsed between listings: a container the CLI made, started,
    stopped, renamed or removed a moment before is listed as it is now, at once."""
    cli = server.barque.run
    assert _listed(server) == {}  # what a cache would keep
    _ok(cli("create", "--name", "made", "--label", "k=v", "busybox", "true"))
    assert _listed(server) == {"made": ("created", "Created")}
    _ok(cli("run", "-d", "--name", "up", "busybox", "sleep", "60"))
    assert _listed(server, "")["up"][0] == "running"  # running ones only
    assert set(_listed(server, "")) == {"up"}
    _ok(cli("kill", "up"))
    assert _ok(cli("wait", "up")).strip() == "137"
    assert _listed(server)["up"][0] == "exited"  # its monitor's exit, read now
    assert _listed(server, "") == {}
    assert cli("run", "--name", "quick", "busybox", "sh", "-c", "exit 3").returncode == 3
    state, status = _listed(server)["quick"]
    assert (state, status[:len("Exited (3) ")]) == ("exited", "Exited (3) ")
    _ok(cli("rename", "made", "renamed"))
    assert set(_listed(server)) == {"renamed", "up", "quick"}
    filtered = 'filters={"label":["k=v"]}&all=1'
    assert list(_listed(server, filtered)) == ["renamed"]
    assert list(_listed(server, "limit=1")) == ["quick"]  # the newest, stopped or not
    _ok(cli("rm", "renamed", "quick"))
    assert set(_listed(server)) == {"up"}
    _ok(cli("start", "up"))
    assert _listed(server, "")["up"][0] == "running"  # its new run, not the last one's exit
    _ok(cli("rm", "-f", "up"))
    assert _listed(server) == {}


def test_list_under_polling_is_current(server: Server) -> None:
    """Requests that come while a listing is under way share the next one, never the one
    already under way: a container made a moment before a request is in its answer even
    while other clients poll without pause."""
    stop = threading.Event()
    errors: list[str] = []

    def poll() -> None:
        while not stop.is_set():
            status, _, body = server.request("GET", "/v1.41/containers/json?all=1")
            if status != 200:
                errors.append(body.decode())

    pollers = [threading.Thread(target=poll) for _ in range(4)]
    for t in pollers:
        t.start()
    try:
        for i in range(20):  # made and removed through the API: answered right after commit
            status, _, body = server.request(
                "POST", f"/v1.41/containers/create?name=c{i}",
                json.dumps({"Image": "busybox", "Cmd": ["true"]}).encode(),
                {"Content-Type": "application/json"})
            assert status == 201, body
            assert set(_listed(server)) == {"c0", f"c{i}"}
            if i:
                assert server.request("DELETE", f"/v1.41/containers/c{i}")[0] == 204
                assert set(_listed(server)) == {"c0"}
    finally:
        stop.set()
        for t in pollers:
            t.join(30)
    assert errors == []


def test_run_rm_whose_start_fails_in_the_engine_is_removed(server: Server) -> None:
    # As dockerd's containerStart: the docker CLI waits for the removal (condition=removed),
    # and hung until its timeout when the container stayed.
    out = server.docker("run", "--rm", "--network", "none", "-u", "nosuchuser", "busybox",
                        "id", timeout=30)
    assert out.returncode == 125
    assert "unable to find user nosuchuser" in out.stderr
    assert server.docker("ps", "-aq").stdout == ""
