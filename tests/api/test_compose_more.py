"""Debian's docker-compose 1.29 against `barque serve`, beyond `up -d` (test_compose.py):
`up` in the foreground (each service's output prefixed, `--abort-on-container-exit`,
`--exit-code-from`, a restart policy's runs), `exec` and `run` (with and without -T; under a
pty, through the docker CLI and through the SDK), `stop`/`start`/`restart`, `--scale`,
`kill`, `rm`, `build` and `down --rmi local`. Each answer checked was compared with a
dockerd's (20.10) on the same project."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from tests.api.conftest import Server
from tests.cli.conftest import until
from tests.support import tools
from tests.support.ptys import run_in_pty

pytestmark = [pytest.mark.root, pytest.mark.slow]

PROJECT = "bqmore"


def _env(server: Server, project_dir: str, cli: bool) -> dict[str, str]:
    """cli: `exec` and `run` go through the docker CLI (compose's default when it finds
    one); else through the Docker SDK (dockerpty)."""
    env = {**os.environ, "DOCKER_HOST": server.host,
           "DOCKER_CONFIG": os.path.join(project_dir, "docker-config")}
    env.pop("COMPOSE_INTERACTIVE_NO_CLI", None)
    if not cli:
        env["COMPOSE_INTERACTIVE_NO_CLI"] = "1"
    return env


def _compose(server: Server, project_dir: str, *args: str, cli: bool = False,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    tools.require("docker-compose")
    return subprocess.run(["docker-compose", "--ansi", "never", "-p", PROJECT, *args],
                          cwd=project_dir, capture_output=True, text=True,
                          env=_env(server, project_dir, cli), timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _down(server: Server, project_dir: str, *flags: str) -> subprocess.CompletedProcess[str]:
    """`down -t 1` with `flags`, which must succeed."""
    down = _compose(server, project_dir, "down", *flags, "-t", "1")
    assert down.returncode == 0, down.stderr
    return down


def _compose_in_pty(server: Server, project_dir: str, args: list[str], typed: bytes,
                    cli: bool) -> tuple[bytes, int]:
    tools.require("docker-compose", "docker")
    compose = shutil.which("docker-compose")
    assert compose is not None
    here = os.getcwd()
    os.chdir(project_dir)  # compose finds its file in its working directory
    try:
        return run_in_pty([compose, "--ansi", "never", "-p", PROJECT, *args],
                          [(b"# ", typed)], env=_env(server, project_dir, cli),
                          size=(33, 111), timeout=60)
    finally:
        os.chdir(here)


def _project(server: Server, project_dir: str, compose_file: str) -> None:
    with open(os.path.join(project_dir, "docker-compose.yml"), "w") as f:
        f.write(compose_file)
    assert server.barque.run("image", "build-default").returncode == 0


def _rows(ps: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """`docker-compose ps`: its rows by container name."""
    assert ps.returncode == 0, ps.stderr
    return {line.split()[0]: line for line in ps.stdout.splitlines()[2:] if line.strip()}


FOREGROUND = """\
version: "3.8"
services:
  quick:
    image: busybox
    command: sh -c 'echo quick says hi; echo quick to stderr >&2; exit 3'
  slow:
    image: busybox
    stop_grace_period: 1s
    command: sh -c 'echo slow says hi; sleep 4; echo slow bye'
"""


def test_compose_up_in_the_foreground(server: Server, tmp_path: os.PathLike[str]) -> None:
    project_dir = str(tmp_path)
    _project(server, project_dir, FOREGROUND)
    up = _compose(server, project_dir, "up")
    # compose's own exit code: 0 when the services ended by themselves, whatever theirs
    assert up.returncode == 0, up.stderr
    assert f"Attaching to {PROJECT}_" in up.stdout, up.stdout
    lines = up.stdout.splitlines()
    for line in ("quick_1  | quick says hi", "quick_1  | quick to stderr",
                 "slow_1   | slow says hi", "slow_1   | slow bye",
                 f"{PROJECT}_quick_1 exited with code 3",
                 f"{PROJECT}_slow_1 exited with code 0"):
        assert line in lines, up.stdout
    # each service's output before its end
    assert lines.index("slow_1   | slow bye") < lines.index(
        f"{PROJECT}_slow_1 exited with code 0"), up.stdout

    # --abort-on-container-exit: quick's end stops slow; the exit code is quick's
    abort = _compose(server, project_dir, "up", "--abort-on-container-exit", "-t", "1")
    assert abort.returncode == 3, (abort.stdout, abort.stderr)
    assert "Aborting on container exit..." in abort.stdout, abort.stdout
    assert f"Stopping {PROJECT}_slow_1" in abort.stderr, abort.stderr
    assert "slow bye" not in abort.stdout, abort.stdout
    states = _rows(_compose(server, project_dir, "ps"))
    assert "Exit 3" in states[f"{PROJECT}_quick_1"], states

    # --exit-code-from: that service's exit code, the others stopped
    coded = _compose(server, project_dir, "up", "--exit-code-from", "quick", "-t", "1")
    assert coded.returncode == 3, (coded.stdout, coded.stderr)
    assert "using --exit-code-from implies --abort-on-container-exit" in coded.stderr
    _down(server, project_dir)
    assert server.docker("ps", "-aq").stdout == ""


RESTARTING = """\
version: "3.8"
services:
  flaky:
    image: busybox
    restart: on-failure:2
    command: sh -c 'sleep 0.5; echo attempt; sleep 0.3; exit 7'
  steady:
    image: busybox
    command: sh -c 'echo steady-up; sleep 6; echo steady-done'
"""


def test_compose_up_follows_each_run_of_a_restarting_service(
        server: Server, tmp_path: os.PathLike[str]) -> None:
    """compose's log printer ends a service's output at its attach stream's end, prints its
    exit from /wait, and attaches again on the next start event: one line and one exit per
    run, as with dockerd (an attach stream that outlived the run printed runs twice)."""
    project_dir = str(tmp_path)
    _project(server, project_dir, RESTARTING)
    up = _compose(server, project_dir, "up")
    assert up.returncode == 0, up.stderr
    lines = up.stdout.splitlines()
    assert lines.count("flaky_1   | attempt") == 3, up.stdout
    assert lines.count(f"{PROJECT}_flaky_1 exited with code 7") == 3, up.stdout
    # each exit reported as it happened, not all at the end of the last run
    assert lines.index(f"{PROJECT}_flaky_1 exited with code 7") < \
        max(i for i, line in enumerate(lines) if line == "flaky_1   | attempt"), up.stdout
    assert lines[-1] == f"{PROJECT}_steady_1 exited with code 0", up.stdout
    _down(server, project_dir)


INTERRUPTED = """\
version: "3.8"
services:
  polite:
    image: busybox
    command: sh -c 'trap "echo got-term; exit 0" TERM; echo polite-up; while :; do sleep 0.1; done'
  stubborn:
    image: busybox
    stop_signal: SIGKILL
    command: sh -c 'echo stubborn-up; exec sleep 600'
"""


def test_compose_up_stops_the_services_on_ctrl_c(server: Server,
                                                  tmp_path: os.PathLike[str]) -> None:
    import signal

    project_dir = str(tmp_path)
    _project(server, project_dir, INTERRUPTED)
    tools.require("docker-compose")
    up = subprocess.Popen(["docker-compose", "--ansi", "never", "-p", PROJECT, "up"],
                          cwd=project_dir, env=_env(server, project_dir, False),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    try:
        def both_up() -> bool:
            rows = _rows(_compose(server, project_dir, "ps"))
            return len(rows) == 2 and all(" Up " in row for row in rows.values())
        until(both_up, timeout=60)
        time.sleep(1)  # compose's log printer attached
        up.send_signal(signal.SIGINT)  # the terminal's ctrl-c
        out, err = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    assert "Gracefully stopping... (press Ctrl+C again to force)" in out, out
    assert re.search(rf"Stopping {PROJECT}_polite_1 +\.\.\. done", err), err
    rows = _rows(_compose(server, project_dir, "ps"))
    assert "Exit 0" in rows[f"{PROJECT}_polite_1"], rows  # its TERM trap ran
    assert "Exit 137" in rows[f"{PROJECT}_stubborn_1"], rows  # its stop signal
    logs = _compose(server, project_dir, "logs", "--no-color", "polite")
    assert "got-term" in logs.stdout, logs.stdout
    assert _compose(server, project_dir, "down").returncode == 0


SERVICES = """\
version: "3.8"
services:
  web:
    image: busybox
    command: sh -c 'echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www'
    volumes:
      - www:/www
  client:
    image: busybox
    command: sleep 600
volumes:
  www:
"""


@pytest.mark.parametrize("cli", [False, True], ids=["sdk", "docker-cli"])
def test_compose_exec_and_run(server: Server, tmp_path: os.PathLike[str], cli: bool) -> None:
    project_dir = str(tmp_path)
    _project(server, project_dir, SERVICES)
    up = _compose(server, project_dir, "up", "-d")
    assert up.returncode == 0, up.stderr

    # exec -T: output, stderr, the exit code, the user, directory and environment
    ran = _compose(server, project_dir, "exec", "-T", "-u", "nobody", "-w", "/tmp", "-e",
                   "FOO=bar", "web", "sh", "-c",
                   "cat /www/index.html; id -u; pwd; echo $FOO; echo oops >&2; exit 4",
                   cli=cli)
    assert ran.returncode == 4, ran.stderr
    assert ran.stdout.startswith("hello-from-web\n65534\n/tmp\nbar\n"), ran.stdout
    # the docker CLI keeps stderr apart; compose's SDK path sends both to stdout, as with
    # dockerd
    assert "oops" in (ran.stderr if cli else ran.stdout)
    missing = _compose(server, project_dir, "exec", "-T", "web", "nosuchcmd", cli=cli)
    assert missing.returncode == 126, missing.stderr
    assert 'exec: "nosuchcmd": executable file not found in $PATH' in \
        missing.stderr + missing.stdout

    # exec (no -T): a terminal of its size, typed at
    output, code = _compose_in_pty(server, project_dir, ["exec", "web", "sh"],
                                   b"stty size; tty; echo h''i; exit 5\r", cli)
    assert code == 5, output
    assert b"33 111" in output and b"/dev/pts/" in output, output
    assert b"\r\nhi\r\n" in output, output

    # run --rm -T: a one-off container on the project's network (service names resolve).
    # Compose's SDK path attaches only once the start has returned (dockerpty's sockets() is
    # a lazy map), so output written before then is lost, with dockerd too: the command
    # waits a moment first (without it, the output was lost once under 6 helpers' load).
    one = _compose(server, project_dir, "run", "--rm", "-T", "-e", "X=1", "client", "sh",
                   "-c", "sleep 2; wget -qO- http://web/index.html; echo $X; exit 6", cli=cli)
    assert one.returncode == 6, one.stderr
    assert one.stdout.startswith("hello-from-web\n1\n"), one.stdout
    assert f"Creating {PROJECT}_client_run" in one.stderr, one.stderr
    # run --rm under a pty
    output, code = _compose_in_pty(server, project_dir, ["run", "--rm", "client", "sh"],
                                   b"stty size; echo h''i; exit 7\r", cli)
    assert code == 7, output
    assert b"33 111" in output and b"\r\nhi\r\n" in output, output
    # a command that cannot run: the daemon's error, exit 1 as with dockerd
    bad = _compose(server, project_dir, "run", "--rm", "-T", "client", "nosuch", cli=cli)
    assert bad.returncode == 1, bad.stderr
    assert 'exec: "nosuch": executable file not found in $PATH' in bad.stderr, bad.stderr
    # run -d: the one-off's name, left running
    detached = _compose(server, project_dir, "run", "-d", "client", "sleep", "30", cli=cli)
    assert detached.returncode == 0, detached.stderr
    name = detached.stdout.strip()
    assert name.startswith(f"{PROJECT}_client_run_"), detached.stdout

    rows = _rows(_compose(server, project_dir, "ps"))
    assert set(rows) == {f"{PROJECT}_web_1", f"{PROJECT}_client_1", name}, rows  # --rm: gone
    _down(server, project_dir, "-v")
    assert server.docker("ps", "-aq").stdout == ""


BUILT = """\
version: "3.8"
services:
  app:
    build: ./app
  client:
    image: busybox
    command: sleep 600
"""


def test_compose_lifecycle_scale_build_and_rmi(server: Server,
                                               tmp_path: os.PathLike[str]) -> None:
    project_dir = str(tmp_path)
    os.makedirs(os.path.join(project_dir, "app"))
    with open(os.path.join(project_dir, "app", "Dockerfile"), "w") as f:
        f.write('FROM busybox\nRUN echo built > /built\n'
                'CMD ["sh", "-c", "cat /built; exec sleep 600"]\n')
    _project(server, project_dir, BUILT)
    built = _compose(server, project_dir, "build")
    assert built.returncode == 0, built.stderr
    assert f"Successfully tagged {PROJECT}_app:latest" in built.stdout, built.stdout
    up = _compose(server, project_dir, "up", "-d")
    assert up.returncode == 0, up.stderr
    app, client = f"{PROJECT}_app_1", f"{PROJECT}_client_1"

    stop = _compose(server, project_dir, "stop", "-t", "1")
    assert stop.returncode == 0 and f"Stopping {app}" in stop.stderr, stop.stderr
    rows = _rows(_compose(server, project_dir, "ps"))
    assert all("Exit 137" in rows[n] for n in (app, client)), rows
    start = _compose(server, project_dir, "start")
    assert start.returncode == 0 and "Starting app" in start.stderr, start.stderr
    assert all(" Up " in row for row in _rows(_compose(server, project_dir, "ps")).values())
    restart = _compose(server, project_dir, "restart", "-t", "1", "client")
    assert restart.returncode == 0 and f"Restarting {client}" in restart.stderr
    logs = _compose(server, project_dir, "logs", "--no-color", "app")
    # both runs' output (`up`, then `start`), prefixed as compose pads the longest name
    assert logs.stdout.count("app_1     | built\n") == 2, logs.stdout

    scaled = _compose(server, project_dir, "up", "-d", "--scale", "client=2")
    assert scaled.returncode == 0, scaled.stderr
    assert f"Creating {PROJECT}_client_2" in scaled.stderr, scaled.stderr
    rows = _rows(_compose(server, project_dir, "ps"))
    assert set(rows) == {app, client, f"{PROJECT}_client_2"}, rows
    kill = _compose(server, project_dir, "kill", "client")
    assert kill.returncode == 0, kill.stderr
    rm = _compose(server, project_dir, "rm", "-f", "client")
    assert rm.returncode == 0 and f"Removing {PROJECT}_client_2" in rm.stderr, rm.stderr
    assert set(_rows(_compose(server, project_dir, "ps"))) == {app}

    down = _down(server, project_dir, "--rmi", "local")
    assert f"Removing image {PROJECT}_app" in down.stderr, down.stderr
    images = server.docker("images", "--format", "{{.Repository}}").stdout.split()
    assert images == ["busybox"], images
    assert server.docker("ps", "-aq").stdout == ""


HEALTHY = """\
version: "2.4"
services:
  db:
    image: busybox
    command: sh -c 'sleep 1; touch /tmp/ready; exec sleep 600'
    healthcheck:
      test: ["CMD", "test", "-e", "/tmp/ready"]
      interval: 1s
      retries: 10
  web:
    image: busybox
    command: sh -c 'echo {word}; exec httpd -f -p 80 -h /'
    ports:
      - "127.0.0.1::80"
    depends_on:
      db:
        condition: service_healthy
"""


def test_compose_health_recreate_ports_and_events(server: Server,
                                                   tmp_path: os.PathLike[str]) -> None:
    project_dir = str(tmp_path)
    _project(server, project_dir, HEALTHY.format(word="first"))
    up = _compose(server, project_dir, "up", "-d")  # web waits for db's health check
    assert up.returncode == 0, up.stderr
    db, web = f"{PROJECT}_db_1", f"{PROJECT}_web_1"
    rows = _rows(_compose(server, project_dir, "ps"))
    assert "Up (healthy)" in rows[db], rows
    port = _compose(server, project_dir, "port", "web", "80")
    assert port.returncode == 0 and port.stdout.startswith("127.0.0.1:"), port
    assert f"{port.stdout.strip()}->80/tcp" in rows[web], rows

    # a changed service is recreated, the other left as it is
    _project(server, project_dir, HEALTHY.format(word="second"))
    again = _compose(server, project_dir, "up", "-d")
    assert again.returncode == 0, again.stderr
    assert f"{db} is up-to-date" in again.stderr and f"Recreating {web} ... done" in \
        again.stderr, again.stderr
    logs = _compose(server, project_dir, "logs", "--no-color", "web")
    assert "| second" in logs.stdout and "| first" not in logs.stdout, logs.stdout

    # exec -d, exec --index, run's --no-deps, --name and -v
    assert _compose(server, project_dir, "exec", "-d", "web", "sh", "-c",
                    "echo detached > /tmp/d").returncode == 0
    cat = _compose(server, project_dir, "exec", "-T", "--index=1", "web", "sh", "-c",
                   "until [ -s /tmp/d ]; do sleep 0.1; done; cat /tmp/d")
    assert cat.returncode == 0 and cat.stdout == "detached\n", cat
    # (through the docker CLI: compose's SDK path starts the container before it attaches,
    # and a command this quick may be over by then, with dockerd too)
    listed = _compose(server, project_dir, "run", "--rm", "-T", "--no-deps", "--name",
                      f"{PROJECT}_one", "-v", f"{project_dir}:/p", "web", "ls", "/p", cli=True)
    assert listed.returncode == 0 and listed.stdout == "docker-compose.yml\n", listed

    # events: a restart's, with compose's service names
    events = subprocess.Popen(["docker-compose", "--ansi", "never", "-p", PROJECT, "events",
                               "--json"], cwd=project_dir, env=_env(server, project_dir,
                                                                    False),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=_collect, args=(events, lines), daemon=True)
    reader.start()
    try:
        # compose prints nothing until an event comes, and starts in well over a second on a
        # busy machine: an exec in db, repeated until its events come through, says it listens
        def listening() -> bool:
            assert server.docker("exec", db, "true").returncode == 0
            return any(_event(line)[1].startswith("exec_") for line in list(lines))
        until(listening, timeout=60)
        restart = _compose(server, project_dir, "restart", "-t", "1", "db")
        assert restart.returncode == 0, restart.stderr
        until(lambda: ("db", "restart") in map(_event, list(lines)), timeout=30)
    finally:
        events.terminate()
        events.wait(30)
        reader.join(30)
    seen = list(map(_event, lines))
    lifecycle = ("kill", "die", "stop", "start", "restart")
    assert [a for s, a in seen if s == "db" and a in lifecycle] == \
        ["kill", "kill", "die", "stop", "start", "restart"], seen  # dockerd's, in its order
    _down(server, project_dir)
    assert server.docker("ps", "-aq").stdout == ""


def _collect(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)


def _event(line: str) -> tuple[str, str]:
    """(service, action) of a line of `docker-compose events --json`."""
    event = json.loads(line)
    return event["service"], event["action"]


LINKED = """\
version: "3.8"
services:
  a:
    image: busybox
    command: sleep 600
  c:
    image: busybox
    command: sleep 600
    links: [a:alias_a]
"""


def test_compose_links_resolve_by_their_aliases(server: Server,
                                                tmp_path: os.PathLike[str]) -> None:
    """`links:` (HostConfig.Links at create, the endpoint's Links at each start's network
    connect): the alias resolves to the linked container on the project's network, as with
    dockerd; `up --no-start`, then `start`."""
    project_dir = str(tmp_path)
    _project(server, project_dir, LINKED)
    made = _compose(server, project_dir, "up", "--no-start")
    assert made.returncode == 0, made.stderr
    started = _compose(server, project_dir, "start")
    assert started.returncode == 0, started.stderr
    a = json.loads(server.docker("inspect", f"{PROJECT}_a_1").stdout)[0]
    address = a["NetworkSettings"]["Networks"][f"{PROJECT}_default"]["IPAddress"]
    c = json.loads(server.docker("inspect", f"{PROJECT}_c_1").stdout)[0]
    assert f"{PROJECT}_a_1:alias_a" in \
        c["NetworkSettings"]["Networks"][f"{PROJECT}_default"]["Links"], c
    for name in ("alias_a", "a"):
        found = _compose(server, project_dir, "exec", "-T", "c", "nslookup", name)
        assert found.returncode == 0 and f"Address: {address}" in found.stdout, found
    up = _compose(server, project_dir, "up", "-d")  # connects again, with the links
    assert up.returncode == 0, up.stderr
    assert _compose(server, project_dir, "down", "-t", "1").returncode == 0


SHARING = """\
version: "3.8"
services:
  owner:
    image: busybox
    command: sh -c 'echo from-owner > /anon/f && echo from-owner > /named/f && exec sleep 600'
    volumes:
      - /anon
      - named:/named
  borrower:
    image: busybox
    command: sleep 600
    volumes_from: ["owner:ro"]
    depends_on: [owner]
volumes:
  named:
"""


def test_compose_volumes_from(server: Server, tmp_path: os.PathLike[str]) -> None:
    """`volumes_from` (HostConfig.VolumesFrom): the other service's anonymous and named
    volumes at the same paths, read-only with `:ro`; `down -v` removes them all."""
    project_dir = str(tmp_path)
    _project(server, project_dir, SHARING)
    up = _compose(server, project_dir, "up", "-d")
    assert up.returncode == 0, up.stderr
    read = _compose(server, project_dir, "exec", "-T", "borrower", "sh", "-c",
                    "i=0; until [ -s /named/f ] || [ $i = 100 ]; do sleep 0.1; i=$((i+1));"
                    " done; cat /anon/f /named/f; "
                    "touch /anon/g")
    # (compose's SDK exec sends stderr to stdout, as with dockerd)
    assert read.stdout == "from-owner\nfrom-owner\ntouch: /anon/g: Read-only file system\n"
    owner = json.loads(server.docker("inspect", f"{PROJECT}_owner_1").stdout)[0]["Mounts"]
    borrower = json.loads(server.docker("inspect", f"{PROJECT}_borrower_1").stdout)[0]
    assert sorted(m["Name"] for m in borrower["Mounts"]) == \
        sorted(m["Name"] for m in owner), (owner, borrower["Mounts"])
    assert not any(m["RW"] for m in borrower["Mounts"]), borrower["Mounts"]
    missing = server.docker("run", "--rm", "--volumes-from", "nosuch", "busybox", "true")
    assert missing.returncode == 125, missing
    assert "No such container: nosuch" in missing.stderr, missing.stderr
    assert "Unable to find image" not in missing.stderr  # not a 404: nothing to pull
    _down(server, project_dir, "-v")
    assert server.docker("volume", "ls", "-q").stdout == ""


def test_an_empty_log_driver_is_dockerds_default(server: Server) -> None:
    """compose and the docker CLI send LogConfig {"Type": ""}: inspect shows dockerd's
    default driver then."""
    for args in ([], ["--log-opt", "max-size=1m"]):
        made = server.docker("create", *args, "busybox")
        assert made.returncode == 0, made.stderr
        shown = json.loads(server.docker("inspect", made.stdout.strip()).stdout)[0]
        assert shown["HostConfig"]["LogConfig"] == {
            "Type": "json-file", "Config": {"max-size": "1m"} if args else {}}, shown
