"""exec through `barque serve`: the real docker CLI (exec, exec -i, -t, -d, -it under a pty)
and the Docker SDK (exec_run, streamed and demultiplexed), inspect, resize, bad requests."""

from __future__ import annotations

import json
import time

import pytest

from tests.api.conftest import Server
from tests.api.ptys import docker_in_pty

pytestmark = pytest.mark.root


def _running(server: Server, name: str = "box") -> str:
    out = server.docker("run", "-d", "--name", name, "busybox", "sleep", "300")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_exec_output_exit_codes_and_options(server: Server) -> None:
    _running(server)
    out = server.docker("exec", "box", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (out.returncode, out.stdout, out.stderr) == (3, "out\n", "err\n")
    out = server.docker("exec", "-u", "nobody", "-w", "/tmp", "-e", "A=b", "box",
                        "sh", "-c", "id -un; pwd; echo $A")
    assert (out.returncode, out.stdout) == (0, "nobody\n/tmp\nb\n"), out.stderr
    out = server.docker("exec", "box", "nosuchcmd")  # dockerd: 126 for any failed start
    assert (out.returncode, out.stdout, out.stderr) == (126, (
        "OCI runtime exec failed: exec failed: unable to start container process: exec: "
        '"nosuchcmd": executable file not found in $PATH: unknown\n'), "")  # \r\n as text
    out = server.docker("exec", "box", "/etc/passwd")  # not executable
    assert out.returncode == 126, (out.stdout, out.stderr)
    out = server.docker("exec", "-u", "nosuchuser", "box", "true")  # start's error, as dockerd
    assert (out.returncode, out.stdout) == \
        (126, "unable to find user nosuchuser: no matching entries in passwd file\n")


def test_exec_i_forwards_stdin_t_is_raw(server: Server) -> None:
    _running(server)
    out = server.docker("exec", "-i", "box", "sh", "-c", "cat; echo done", input="abc\n")
    assert (out.returncode, out.stdout) == (0, "abc\ndone\n"), out.stderr
    out = server.docker("exec", "-t", "box", "sh", "-c", "tty >/dev/null && echo tty")
    assert (out.returncode, out.stdout) == (0, "tty\n"), out.stderr  # raw: no frames


def test_exec_d_runs_on(server: Server) -> None:
    _running(server)
    out = server.docker("exec", "-d", "box", "sh", "-c", "sleep 0.3; touch /tmp/marker")
    assert (out.returncode, out.stdout) == (0, ""), out.stderr
    deadline = time.monotonic() + 20
    while server.docker("exec", "box", "test", "-e", "/tmp/marker").returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_exec_it_under_a_pty(server: Server) -> None:
    _running(server)
    output, code = docker_in_pty(server, ["exec", "-it", "box", "sh"],
                                 [(b"#", b"stty size\r"), (b"33 111", (40, 120)),
                                  (b"", b"\r"), (b"#", b"stty size; exit 5\r")],
                                 size=(33, 111))
    assert b"40 120" in output, output
    assert code == 5


def test_run_it_under_a_pty(server: Server) -> None:
    output, code = docker_in_pty(server, ["run", "-it", "--rm", "busybox", "sh"],
                                 [(b"#", b"echo h''i; exit 3\r")])
    assert b"hi" in output.replace(b"h''i", b""), output
    assert code == 3


def test_sdk_exec_run(server: Server) -> None:
    import docker

    client = docker.DockerClient(base_url=server.host)
    try:
        _running(server)
        box = client.containers.get("box")
        result = box.exec_run(["sh", "-c", "echo out; echo err >&2; exit 4"])
        assert (result.exit_code, result.output) == (4, b"out\nerr\n")
        result = box.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
        assert (result.exit_code, result.output) == (0, (b"out\n", b"err\n"))
        result = box.exec_run(["sh", "-c", "echo only-err >&2"], stdout=False)
        assert result.output == b"only-err\n"
        result = box.exec_run(["sh", "-c", "for i in 1 2 3; do echo $i; done"], stream=True)
        assert result.exit_code is None
        assert b"".join(result.output) == b"1\n2\n3\n"
        result = box.exec_run("tty", tty=True)
        assert (result.exit_code, result.output) == (0, b"/dev/pts/0\r\n") or \
            result.output.startswith(b"/dev/pts/")
        result = box.exec_run("sleep 30", detach=True)
        assert result.exit_code is None
        result = box.exec_run(["env"], environment={"X": "y"}, user="nobody",
                              workdir="/tmp")
        assert b"X=y\n" in result.output, result.output
    finally:
        client.close()


def test_exec_inspect_and_resize(server: Server) -> None:
    import docker

    client = docker.DockerClient(base_url=server.host)
    api = client.api
    try:
        container_id = _running(server)
        exec_id = api.exec_create("box", ["sh", "-c", "exit 7"], user="nobody")["Id"]
        before = api.exec_inspect(exec_id)
        assert (before["Running"], before["ExitCode"], before["Pid"]) == (False, None, 0)
        assert before["ProcessConfig"] == {"tty": False, "entrypoint": "sh",
                                           "arguments": ["-c", "exit 7"],
                                           "privileged": False, "user": "nobody"}
        assert (before["ContainerID"], before["OpenStdout"]) == (container_id, True)
        assert api.inspect_container("box")["ExecIDs"] == [exec_id]
        api.exec_start(exec_id)
        after = api.exec_inspect(exec_id)
        assert (after["Running"], after["ExitCode"]) == (False, 7)
        assert api.inspect_container("box")["ExecIDs"] is None  # as dockerd: ended, gone
        assert after["Pid"] > 0
        # Started once only: dockerd says so on the stream's stdout (a 409 if detached).
        assert api.exec_start(exec_id) == \
            f"Error: Exec command {exec_id} has already run\r\n".encode()
        status, _, body = server.request("POST", f"/v1.43/exec/{exec_id}/start",
                                         b'{"Detach": true}',
                                         {"Content-Type": "application/json"})
        assert (status, json.loads(body)["message"]) == \
            (409, f"Error: Exec command {exec_id} has already run")
        api.exec_resize(exec_id, height=10, width=20)  # ended: nothing to resize, no error
        status, _, body = server.request("POST", f"/v1.43/exec/{exec_id}/resize?h=x&w=2")
        assert (status, json.loads(body)["message"]) == \
            (400, 'strconv.Atoi: parsing "x": invalid syntax')

        exec_id = api.exec_create("box", "sleep 30", tty=True)["Id"]
        api.exec_start(exec_id, detach=True)
        running = api.exec_inspect(exec_id)
        assert running["Running"] and running["Pid"] > 0
        api.exec_resize(exec_id, height=10, width=20)
        assert api.exec_start(exec_id) == \
            f"Error: Exec command {exec_id} is already running\r\n".encode()
    finally:
        client.close()


def test_bad_exec_requests(server: Server) -> None:
    def post(path: str, body: bytes) -> tuple[int, str]:
        status, _, answer = server.request("POST", path, body,
                                           {"Content-Type": "application/json"})
        return status, json.loads(answer)["message"]

    assert post("/v1.43/containers/nosuch/exec", b'{"Cmd": ["true"]}') == \
        (404, "No such container: nosuch")
    out = server.docker("create", "--name", "idle", "busybox", "true")
    assert out.returncode == 0, out.stderr
    idle = out.stdout.strip()
    assert post("/v1.43/containers/idle/exec", b'{"Cmd": ["true"]}') == \
        (409, f"Container {idle} is not running")
    _running(server)
    assert post("/v1.43/containers/box/exec", b'{"Cmd": []}') == \
        (400, "No exec command specified")
    assert post("/v1.43/containers/box/exec", b'{"Cmd": [1]}') == \
        (400, "json: cannot unmarshal number into Go struct field ExecConfig.Cmd of type "
         "string")  # dockerd's words
    status, message = post("/v1.43/containers/box/exec", b'{"Cmd": ["true"}')
    assert status == 400 and message.startswith("invalid JSON")
    assert post("/v1.43/exec/nosuch/start", b"{}") == (404, "No such exec instance: nosuch")
    status, _, body = server.request("GET", "/v1.43/exec/nosuch/json")
    assert (status, json.loads(body)) == (404, {"message": "No such exec instance: nosuch"})
    out = server.docker("exec", "idle", "true")
    assert out.returncode == 1
    assert f"Container {idle} is not running" in out.stderr


def test_sdk_exec_socket_stdin(server: Server) -> None:
    import struct

    import docker

    client = docker.DockerClient(base_url=server.host)
    api = client.api
    try:
        _running(server)
        exec_id = api.exec_create("box", ["sh", "-c", "read line; echo got $line"],
                                  stdin=True)["Id"]
        sock = api.exec_start(exec_id, socket=True)._sock
        sock.settimeout(20)
        sock.sendall(b"x\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        sock.close()
        stream, size = struct.unpack(">BxxxI", data[:8])
        assert (stream, data[8:8 + size], len(data)) == (1, b"got x\n", 8 + size)
        assert api.exec_inspect(exec_id)["ExitCode"] == 0
    finally:
        client.close()
