"""`barque events`: docker's line format, --format, --filter, --since/--until, following."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from barque.engine import events
from tests.cli.conftest import Barque, ok, until
from tests.support.marks import needs_busybox

pytestmark = [pytest.mark.root, needs_busybox]


def _events(barque: Barque, since: str, *args: str) -> list[str]:
    return ok(barque.run("events", "--since", since, "--until", f"{time.time():.9f}",
                         *args)).splitlines()


def test_objects_of_every_type(barque: Barque, tmp_path: object) -> None:
    since = f"{time.time():.9f}"
    ok(barque.run("network", "create", "evnet"))
    ok(barque.run("run", "--rm", "--network", "evnet", "-v", "evvol:/data", "--name", "evc",
                  "busybox", "true"))
    ok(barque.run("volume", "rm", "evvol"))
    ok(barque.run("network", "rm", "evnet"))
    ok(barque.run("tag", "busybox", "evimg:1"))
    archive = os.path.join(str(tmp_path), "evimg.tar")
    ok(barque.run("save", "-o", archive, "evimg:1"))
    ok(barque.run("rmi", "evimg:1"))
    ok(barque.run("load", "-i", archive))
    lines = _events(barque, since, "--format",
                    "{{.Type}} {{.Action}} {{index .Actor.Attributes \"name\"}}")
    image_id = lines[14].rsplit(" ", 1)[-1]
    assert re.fullmatch("sha256:[0-9a-f]{64}", image_id)
    assert lines == ["network create evnet", "volume create ", "container create evc",
                     "container attach evc", "network connect evnet", "volume mount ",
                     "container start evc", "container die evc", "network disconnect evnet",
                     "volume unmount ", "container destroy evc", "volume destroy ",
                     "network destroy evnet", "image tag evimg:1", f"image save {image_id}",
                     f"image untag {image_id}", f"image load {image_id}"], lines
    vols = _events(barque, since, "--filter", "volume=evvol", "--format", "{{.Action}}")
    assert vols == ["create", "mount", "unmount", "destroy"]
    nets = _events(barque, since, "-f", "network=evnet", "-f", "event=connect",
                   "--format", "{{.Actor.Attributes.container}}")
    [container_id] = nets
    assert re.fullmatch("[0-9a-f]{64}", container_id)
    images = _events(barque, since, "--filter", "image=evimg", "--format", "{{.Action}}")
    assert images == ["tag"]  # by name; untag/save/load name the image by its ID


def test_line_format_json_and_time_windows(barque: Barque) -> None:
    start = time.time()
    ok(barque.run("create", "--name", "fmt", "-l", "z=last", "-l", "a=first", "busybox"))
    ok(barque.run("rename", "fmt", "fmt2"))
    [line] = _events(barque, f"{start:.9f}", "--filter", "event=rename")
    match = re.fullmatch(r"(\S+) container rename ([0-9a-f]{64}) \((.*)\)", line)
    assert match, line
    assert match.group(3) == "a=first, image=busybox, name=fmt2, oldName=/fmt, z=last"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)",
                        match.group(1))
    [raw] = _events(barque, f"{start:.9f}", "--filter", "event=create", "--format", "json")
    event = json.loads(raw)
    assert list(event) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time",
                           "timeNano"]  # Go's field order
    assert event["Actor"]["ID"] == match.group(2)
    assert _events(barque, "10m", "--filter", "event=rename", "--format", "{{.ID}}") == \
        [match.group(2)]  # a duration before now
    assert _events(barque, f"{time.time():.9f}") == []  # nothing since now
    bad = barque.run("events", "--filter", "nokey", "--until", "1")
    assert (bad.returncode, bad.stderr) == \
        (1, 'invalid argument "nokey" for "-f, --filter" flag: bad format of filter '
            "(expected name=value)\n")
    bad = barque.run("events", "--since", "soon")
    assert bad.returncode == 1 and "failed to parse value as time or duration" in bad.stderr


def test_follows_until_interrupted(barque: Barque) -> None:
    ok(barque.run("create", "--name", "fol", "--network", "none", "busybox", "true"))
    proc = subprocess.Popen(barque.argv("events", "--filter", "container=fol", "--format",
                                        "{{.Action}}"), stdout=subprocess.PIPE, text=True)
    # Nothing ends a readline if the events never come: the process, after a minute.
    guard = threading.Timer(60, proc.kill)
    guard.start()
    try:
        # It says nothing until an event comes; it follows once it has the log open (a fixed
        # sleep is too short for a CLI start on a busy machine).
        log = os.path.realpath(events.log_path(barque.runroot))
        until(lambda: _has_open(proc.pid, log))
        ok(barque.run("start", "fol"))
        assert proc.stdout is not None
        assert [proc.stdout.readline().strip() for _ in range(2)] == ["start", "die"]
    finally:
        guard.cancel()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130


def _has_open(pid: int, path: str) -> bool:
    fds = f"/proc/{pid}/fd"
    for fd in os.listdir(fds):
        try:
            if os.readlink(os.path.join(fds, fd)) == path:
                return True
        except OSError:
            continue
    return False


def test_push_pull_import(barque: Barque, tmp_path: object) -> None:
    from tests.support.registry import run_registry

    with run_registry(os.path.join(str(tmp_path), "registry")) as registry:
        made = ok(barque.run("create", "busybox")).strip()  # the built-in image made
        since = f"{time.time():.9f}"
        name = f"{registry.host}/evbox:1"
        ok(barque.run("tag", "busybox", name))
        ok(barque.run("push", name))
        ok(barque.run("rmi", name))
        ok(barque.run("pull", name))
        archive = os.path.join(str(tmp_path), "rootfs.tar")
        ok(barque.run("export", "-o", archive, made))
        imported = ok(barque.run("import", archive, "evimported:1")).strip()
        lines = _events(barque, since, "--filter", "type=image", "--format",
                        "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}")
    image_id = lines[0].split()[1]
    assert lines == [f"tag {image_id} {name}", f"push {name} {registry.host}/evbox",
                     # the tag and the digest the push recorded: one untag each, as moby
                     f"untag {image_id} {image_id}", f"untag {image_id} {image_id}",
                     f"pull {name} {registry.host}/evbox",
                     f"import {imported} {imported}"], lines


def test_restart_policy_runs_each_say_start_and_die(barque: Barque) -> None:
    from tests.cli.conftest import inspect_container, until

    since = f"{time.time():.9f}"
    ok(barque.run("run", "-d", "--network", "none", "--name", "fails", "--restart",
                  "on-failure:2", "busybox", "sh", "-c", "exit 3"))
    until(lambda: inspect_container(barque, "fails")["State"]["Status"] == "exited")
    time.sleep(0.5)  # the exit command's report of the end for good
    lines = _events(barque, since, "--filter", "container=fails", "--format",
                    "{{.Action}} {{index .Actor.Attributes \"exitCode\"}}")
    assert lines == ["create ", "start ", "die 3", "start ", "die 3", "start ", "die 3"]
    ok(barque.run("run", "-d", "--network", "none", "--name", "loops", "--restart", "always",
                  "busybox", "sh", "-c", "exit 1"))
    until(lambda: inspect_container(barque, "loops")["RestartCount"] >= 2)
    ok(barque.run("stop", "loops"))  # running or backing off: its last end said once
    time.sleep(0.5)
    actions = _events(barque, since, "--filter", "container=loops", "--format", "{{.Action}}")
    assert actions[0] == "create" and actions[-1] == "stop", actions
    runs = [a for a in actions if a in ("start", "die")]
    assert runs == ["start", "die"] * (len(runs) // 2) and len(runs) >= 4, actions


def test_health_status_changes(barque: Barque) -> None:
    from tests.cli.conftest import until

    since = f"{time.time():.9f}"
    ok(barque.run("run", "-d", "--network", "none", "--name", "checked", "--health-cmd",
                  "test ! -e /tmp/sick", "--health-interval", "200ms", "--health-retries", "1",
                  "busybox", "sleep", "60"))

    def actions() -> list[str]:
        return _events(barque, since, "--filter", "event=health_status", "--format",
                       "{{.Action}}")

    until(lambda: actions() == ["health_status: healthy"])
    ok(barque.run("exec", "checked", "touch", "/tmp/sick"))
    until(lambda: actions() == ["health_status: healthy", "health_status: unhealthy"])
    time.sleep(0.5)  # more failing checks: no change, no event
    assert actions() == ["health_status: healthy", "health_status: unhealthy"]
    ok(barque.run("rm", "-f", "checked"))
    every = _events(barque, since, "--filter", "container=checked", "--format", "{{.Action}}")
    assert every[:2] == ["create", "start"] and every.count("start") == 1, every
    assert every[-2:] == ["die", "destroy"], every
