"""POST /containers/{id}/update with RestartPolicy on a running container, through the docker
CLI and the SDK on `barque serve`: as dockerd's, the policy decides at this run's end.

Each container runs until the test lets it exit (a file in a bind-mounted directory of the
test's own); every wait has a deadline."""

from __future__ import annotations

import json
import os

import pytest

from tests.api.conftest import Server
from tests.cli.conftest import until

pytestmark = pytest.mark.root

SCRIPT = "echo run; while [ ! -e /ctl/go ]; do sleep 0.1; done; rm -f /ctl/go; exit {code}"


def _gated(name: str, ctl: str, code: int = 1) -> list[str]:
    return ["--name", name, "-v", f"{ctl}:/ctl", "busybox", "sh", "-c",
            SCRIPT.format(code=code)]


def _inspect(server: Server, name: str) -> dict:
    out = server.docker("inspect", name)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)[0]


def _runs(server: Server, name: str) -> int:
    out = server.docker("logs", name)
    return out.stdout.count("run\n") if out.returncode == 0 else 0


def _running_run(server: Server, name: str, runs: int) -> None:
    until(lambda: _runs(server, name) == runs and
          _inspect(server, name)["State"]["Status"] == "running", timeout=30)


def _let_exit(ctl: str) -> None:
    with open(os.path.join(ctl, "go"), "w"):
        pass


def _exited(server: Server, name: str) -> dict:
    until(lambda: _inspect(server, name)["State"]["Status"] == "exited", timeout=30)
    return _inspect(server, name)


def test_docker_update_restart_on_a_running_container(server: Server,
                                                      tmp_path: object) -> None:
    """on-failure updated to no: no restart at this run's end; with the docker CLI."""
    ctl = str(tmp_path)
    out = server.docker("run", "-d", "--restart", "on-failure", *_gated("flaky", ctl))
    assert out.returncode == 0, out.stderr
    _running_run(server, "flaky", 1)
    _let_exit(ctl)
    _running_run(server, "flaky", 2)
    out = server.docker("update", "--restart", "no", "flaky")
    assert (out.returncode, out.stdout) == (0, "flaky\n"), out.stderr
    _let_exit(ctl)
    final = _exited(server, "flaky")
    assert (final["State"]["ExitCode"], final["RestartCount"]) == (1, 1)
    assert final["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}


def test_sdk_update_and_wait(server: Server, tmp_path: object) -> None:
    """no updated to on-failure:1 with the SDK: this run restarts once; a wait begun before
    the update ends with the run, with its exit code, as dockerd's next-exit does."""
    import docker

    ctl = str(tmp_path)
    out = server.docker("run", "-d", *_gated("late", ctl, code=4))
    assert out.returncode == 0, out.stderr
    _running_run(server, "late", 1)
    client = docker.DockerClient(base_url=server.host)
    try:
        container = client.containers.get("late")
        container.update(restart_policy={"Name": "on-failure", "MaximumRetryCount": 1})
        _let_exit(ctl)
        assert container.wait(timeout=30)["StatusCode"] == 4  # this run's end
        _running_run(server, "late", 2)
        _let_exit(ctl)
        final = _exited(server, "late")
        assert (final["State"]["ExitCode"], final["RestartCount"]) == (4, 1)
        assert final["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                        "MaximumRetryCount": 1}
    finally:
        client.close()


def test_restart_policy_updates_refused(server: Server) -> None:
    out = server.docker("run", "-d", "--rm", "--name", "gone", "busybox", "sleep", "60")
    assert out.returncode == 0, out.stderr
    full_id = out.stdout.strip()
    out = server.docker("update", "--restart", "always", "gone")
    assert (out.returncode, out.stderr) == (
        1, f"Error response from daemon: Cannot update container {full_id}: Restart policy "
           "cannot be updated because AutoRemove is enabled for the container\n")
    for body, status, message in (
            ({"Name": "always"}, 500, f"Cannot update container {full_id}: Restart policy "
             "cannot be updated because AutoRemove is enabled for the container"),
            ({"Name": "sometimes"}, 400, "invalid restart policy 'sometimes'"),
            ({"Name": "always", "MaximumRetryCount": 2}, 400,
             "maximum retry count cannot be used with restart policy 'always'"),
            ({"Name": "on-failure", "MaximumRetryCount": -1}, 400,
             "maximum retry count cannot be negative"),
            ({"Name": "on-failure", "MaximumRetryCount": "2"}, 400,
             "json: cannot unmarshal string into Go struct field "
             "RestartPolicy.RestartPolicy.MaximumRetryCount of type int"),
            ({"Name": 1}, 400, "json: cannot unmarshal number into Go struct field "
             "RestartPolicy.RestartPolicy.Name of type string"),
            ("always", 400, "json: cannot unmarshal string into Go struct field "
             "UpdateConfig.RestartPolicy of type container.RestartPolicy")):
        reply = server.request("POST", "/v1.43/containers/gone/update",
                               json.dumps({"RestartPolicy": body}).encode(),
                               {"Content-Type": "application/json"})
        assert (reply[0], json.loads(reply[2])) == (status, {"message": message}), body
    assert _inspect(server, "gone")["HostConfig"]["RestartPolicy"]["Name"] == "no"
    out = server.docker("update", "--restart", "no", "gone")  # no conflict with AutoRemove
    assert out.returncode == 0, out.stderr
