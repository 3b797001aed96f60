"""Escape 2 of issue 8: `barque exec` without -t gave the container the caller's own stdio
(its terminal and session, or the host file its output was redirected to). Like Docker and
`barque run`, the process gets pipes (stdin /dev/null without -i). Also: the caller's other
descriptors reach no container (escape 6, through the CLI), and exec's exit codes."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.cli.conftest import Barque, ok
from tests.support.fds import leaking, listed_fds
from tests.support.marks import needs_busybox
from tests.support.tty_attack import admin_shell, build_injector, in_pty

pytestmark = [pytest.mark.root, needs_busybox]

SECRET = "host-secret-7f3a"
@pytest.fixture
def box(cleanup: Barque, tmp_path: object) -> str:
    tools = os.path.join(str(tmp_path), "tools")
    os.mkdir(tools)
    ok(cleanup.run("run", "-d", "--name", "box", "-v", f"{tools}:/tools:ro", "busybox",
                   "sleep", "300"))
    return tools


def _stdio_targets(listing: str) -> dict[int, str]:
    return {fd: t for fd, t in listed_fds(listing).items() if fd < 3}


def _assert_not_host(targets: dict[int, str], host: str) -> None:
    assert sorted(targets) == [0, 1, 2], targets
    for fd, target in targets.items():
        assert target.startswith("pipe:") or target == "/dev/null", (fd, target)
        assert target != host


def test_exec_output_redirected_to_a_host_file_stays_unreadable(cleanup: Barque, box: str,
                                                                tmp_path: object) -> None:
    host = os.path.join(str(tmp_path), "out.txt")
    with open(host, "w") as f:
        f.write(SECRET + "\n")
    # Each read bounded: a pipe blocks (timeout), the host file must not feed itself.
    script = "; ".join(f"timeout 1 head -c 100 {src}" for src in
                       ("/proc/self/fd/1", "<&1", "/dev/stdout", "/proc/self/fd/2"))
    script += "; ls -l /proc/self/fd/"
    with open(host, "r+") as out:  # read-write, as a terminal would be; stderr too
        out.seek(0, os.SEEK_END)
        proc = subprocess.run(cleanup.argv("exec", "box", "sh", "-c", script), stdout=out,
                              stderr=out, stdin=subprocess.DEVNULL, timeout=60)
    with open(host) as f:
        written = f.read()
    assert written.count(SECRET) == 1, written  # the container read nothing back
    _assert_not_host(_stdio_targets(written), host)
    assert proc.returncode == 0, written


def test_exec_stdin_follows_i(cleanup: Barque, box: str) -> None:
    listing = ok(cleanup.run("exec", "box", "ls", "-l", "/proc/self/fd/"))
    assert _stdio_targets(listing)[0] == "/dev/null"
    big = "x" * (1 << 20) + "\n"  # more than both pipes hold: no deadlock between them
    piped = cleanup.run("exec", "-i", "box", "sh", "-c", "cat; echo err >&2", input=big)
    assert piped.returncode == 0 and piped.stdout == big and piped.stderr == "err\n"
    listing = cleanup.run("exec", "-i", "box", "ls", "-l", "/proc/self/fd/", input="").stdout
    assert _stdio_targets(listing)[0].startswith("pipe:")


def test_exec_without_t_gets_no_terminal(cleanup: Barque, box: str) -> None:
    script = ("tty; [ -t 0 ] || echo in-no-tty; [ -t 1 ] || echo out-no-tty; "
              "[ -t 2 ] || echo err-no-tty; ls -l /proc/self/fd/; "
              "echo </dev/tty || echo no-ctty; cat /proc/self/stat")
    for flags in ([], ["-i"]):
        out, code = in_pty(cleanup.argv("exec", *flags, "box", "sh", "-c", script))
        text = out.decode().replace("\r\n", "\n")
        assert code == 0, text
        assert "not a tty" in text and "in-no-tty" in text and "out-no-tty" in text
        assert "err-no-tty" in text and "no-ctty" in text  # /dev/tty: no such device
        for target in _stdio_targets(text).values():
            assert target.startswith("pipe:") or target == "/dev/null", text
        stat = text[text.rindex(") ") + 2:].split()
        assert stat[4] == "0", text  # tty_nr: no controlling terminal
    # -t: a terminal of the container's own, not ours.
    out, code = in_pty(cleanup.argv("exec", "-t", "box", "sh", "-c", "tty"))
    assert code == 0 and b"/dev/pts/" in out


def test_tiocsti_cannot_type_into_the_callers_terminal(cleanup: Barque, box: str) -> None:
    build_injector(box)
    # The admin's shell: exec, then it reads its next line from the terminal. An injected
    # "PWNED" would be that line; the test types "nothing" once the exec has returned.
    shell = admin_shell(" ".join(cleanup.argv("exec", "box", "/tools/tiocsti")))
    out, code = in_pty(shell, b"COMMAND-DONE", b"nothing\n")
    text = out.decode(errors="replace")
    assert code == 0, text
    assert "GOT:nothing" in text and "GOT:PWNED" not in text, text
    assert "injected" not in text
    assert text.count("Inappropriate ioctl for device") == 3, text  # no fd is a terminal
    assert "/dev/tty: No such device or address" in text, text  # no controlling terminal


def test_ctrl_c_ends_exec_not_its_process(cleanup: Barque, box: str) -> None:
    """As Docker's exec, which proxies no signal (moby#9098): ^C on the caller's terminal ends
    `barque exec` (130), the process runs on. With -it the ^C is a key typed into the
    container's own terminal (ours is raw): its foreground process gets SIGINT."""
    script = "echo READY; sleep 2; touch /survived"
    out, code = in_pty(cleanup.argv("exec", "box", "sh", "-c", script), b"READY", b"\x03")
    assert code == 130, out
    deadline = time.monotonic() + 20
    while cleanup.run("exec", "box", "ls", "/survived").returncode != 0:
        assert time.monotonic() < deadline, "the process did not run on"
        time.sleep(0.2)
    script = "trap 'echo GOT-INT; exit 5' INT; echo READY; sleep 30 & wait"
    out, code = in_pty(cleanup.argv("exec", "-it", "box", "sh", "-c", script), b"READY",
                       b"\x03")
    assert code == 5 and out.count(b"GOT-INT") == 1, out


def test_cli_passes_no_inherited_fds(cleanup: Barque, box: str, tmp_path: object) -> None:
    secret = os.path.join(str(tmp_path), "secret")
    with open(secret, "w") as f:
        f.write(SECRET)
    for args in (["exec", "box"], ["run", "--rm", "busybox"]):
        proc = subprocess.run(cleanup.argv(*args, "ls", "-l", "/proc/self/fd/"),
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=60, close_fds=False, preexec_fn=leaking(secret))
        assert proc.returncode == 0, proc.stderr
        fds = listed_fds(proc.stdout)
        assert sorted(fds) == [0, 1, 2], proc.stdout


def test_exec_exit_codes(cleanup: Barque, box: str) -> None:
    b = cleanup
    assert b.run("exec", "box", "sh", "-c", "exit 9").returncode == 9
    # Docker's exec: 126 for whatever stops the runtime (not 127 for a missing command, as
    # run), its error in dockerd's words on stdout (dockerd writes it on the stream), none of
    # the runtime's own lines
    head = "OCI runtime exec failed: exec failed: unable to start container process: "
    for flags, command, reason in (
            ((), "no-such-command", 'exec: "no-such-command": executable file not found in '
                                    "$PATH"),
            (("-t",), "no-such-command", 'exec: "no-such-command": executable file not found '
                                         "in $PATH"),
            ((), "/etc", 'exec: "/etc": permission denied'),
            (("-w", "/missing"), "true", 'chdir to cwd ("/missing") set in config.json failed: '
                                         "no such file or directory")):
        raw = subprocess.run(b.argv("exec", *flags, "box", command), capture_output=True,
                             stdin=subprocess.DEVNULL, timeout=60)
        assert (raw.returncode, raw.stdout, raw.stderr) == (
            126, f"{head}{reason}: unknown\r\n".encode(), b""), flags
    # detached, the daemon's answer to the start: an error, exit 1
    proc = b.run("exec", "-d", "box", "no-such-command")
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", (
        f"Error response from daemon: {head}exec: \"no-such-command\": executable file not "
        "found in $PATH: unknown\n"))


def test_exec_detached_output_is_dropped(cleanup: Barque, box: str) -> None:
    b = cleanup
    proc = b.run("exec", "-d", "box", "sh", "-c", "echo lost; echo kept > /kept")
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""
    deadline = time.monotonic() + 10
    while b.run("exec", "box", "cat", "/kept").stdout != "kept\n":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_exec_it_still_proxies_a_terminal(cleanup: Barque, box: str) -> None:
    out, code = in_pty(cleanup.argv("exec", "-it", "box", "sh"), b"# ",
                        b"tty; [ -t 0 ] && echo in-t''ty; exit 3\r")
    assert code == 3 and b"/dev/pts/" in out and b"in-tty" in out


def test_health_check_gets_no_inherited_fds(cleanup: Barque, tmp_path: object) -> None:
    """The monitor's children (the runtime for the container and for each check) keep no
    descriptor of whoever ran the CLI, nor of the monitor."""
    secret = os.path.join(str(tmp_path), "secret")
    with open(secret, "w") as f:
        f.write(SECRET)
    argv = cleanup.argv("run", "-d", "--name", "hc", "--health-cmd",
                        "ls -l /proc/self/fd/ > /tmp/hc.new && mv /tmp/hc.new /tmp/hc",
                        "--health-interval", "1s", "busybox", "sh", "-c",
                        "ls -l /proc/self/fd/ > /tmp/init; exec sleep 300")
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=60, close_fds=False, preexec_fn=leaking(secret))
    assert proc.returncode == 0, proc.stderr
    deadline = time.monotonic() + 30
    while (listing := cleanup.run("exec", "hc", "cat", "/tmp/hc").stdout) == "":
        assert time.monotonic() < deadline, "no health check ran"
        time.sleep(0.2)
    assert sorted(listed_fds(listing)) == [0, 1, 2], listing
    init = ok(cleanup.run("exec", "hc", "cat", "/tmp/init"))
    assert sorted(listed_fds(init)) == [0, 1, 2], init
