"""`barque build` end to end, as a user runs it: real Dockerfiles on the busybox base, the
images run afterwards (issue 10's acceptance list), the cache seen by `system df` and
emptied by `builder prune`."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator

import pytest

from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox

pytestmark = [needs_busybox, pytest.mark.slow]

IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")


@pytest.fixture
def ctx(run_prefix: str) -> Iterator[str]:
    """A build context directory of the test's own."""
    path = tempfile.mkdtemp(prefix=f"{run_prefix}-buildctx-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write(ctx: str, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = os.path.join(ctx, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)


def build(barque: Barque, *args: str, input: str | None = None,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = barque.argv("build", "--progress=plain", *args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


def built(barque: Barque, *args: str, **kwargs: object) -> str:
    """Build; return the image ID (from --iidfile, so the progress stays on stderr)."""
    fd, iidfile = tempfile.mkstemp()
    os.close(fd)
    try:
        result = build(barque, "--iidfile", iidfile, *args, **kwargs)  # type: ignore[arg-type]
        assert result.returncode == 0, result.stderr
        with open(iidfile) as f:
            image_id = f.read()
    finally:
        os.unlink(iidfile)
    assert IMAGE_ID.match(image_id), image_id
    return image_id


def run_out(barque: Barque, *args: str) -> str:
    return ok(barque.run("run", "--rm", *args, timeout=120))


def image_config(barque: Barque, image: str) -> dict:
    [obj] = json.loads(ok(barque.run("image", "inspect", image)))
    return obj["Config"]


def steps(stderr: str) -> dict[str, list[str]]:
    """The plain progress's lines by step name: {"[2/3] RUN x": ["#5 0.1 out", "#5 DONE"]}."""
    names: dict[str, str] = {}
    out: dict[str, list[str]] = {}
    for line in stderr.splitlines():
        m = re.match(r"#(\d+) (.*)$", line)
        if not m:
            continue
        number, rest = m.groups()
        if number not in names:
            names[number] = rest
            out[rest] = []
        elif rest != names[number]:
            out[names[number]].append(rest)
    return out


def leftover_mounts(barque: Barque) -> list[str]:
    """Mounts under the test's root and runroot but the engine's netns dir (a mount of
    itself, as `ip netns` makes it, kept as Docker keeps its own)."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith((barque.root, barque.runroot))
            and p != os.path.join(barque.runroot, "netns")]


# --- the basics ----------------------------------------------------------------------------

def test_build_run_and_fully_cached_rebuild(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\n"
                              "ENV GREETING=hello\n"
                              "WORKDIR /app\n"
                              "COPY greet.sh .\n"
                              "RUN chmod +x greet.sh && echo built > stamp\n"
                              'CMD ["./greet.sh"]\n',
                "greet.sh": '#!/bin/sh\necho "$GREETING from $(pwd) $(cat stamp)"\n'})
    first = build(barque, "-t", "greet", ctx)
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    shown = steps(first.stderr)
    assert "[internal] load build definition from Dockerfile" in shown
    assert shown["[4/4] RUN chmod +x greet.sh && echo built > stamp"][-1].startswith("DONE ")
    assert "naming to docker.io/library/greet:latest done" in shown["exporting to image"]
    assert run_out(barque, "greet") == "hello from /app built\n"

    image_id = ok(barque.run("image", "inspect", "-f", "{{.Id}}", "greet")).strip()
    again = build(barque, "-t", "greet", ctx)
    assert again.returncode == 0, again.stderr
    shown = steps(again.stderr)
    # every step under a number of its own (a reused number hides a step)
    assert {"[internal] load build context", "exporting to image"} <= set(shown), again.stderr
    # ENV and CMD make no step: BuildKit counts FROM, WORKDIR, COPY, RUN
    [base] = [n for n in shown if n.startswith("[1/4] FROM docker.io/library/busybox")]
    for name in (base, "[2/4] WORKDIR /app", "[3/4] COPY greet.sh .",
                 "[4/4] RUN chmod +x greet.sh && echo built > stamp"):
        assert shown[name] == ["CACHED"], (name, again.stderr)
    assert built(barque, "-q", ctx) == image_id


def test_quiet_prints_only_the_image_id(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\nRUN echo noisy\n"})
    result = build(barque, "-q", ctx)
    assert result.returncode == 0, result.stderr
    assert IMAGE_ID.match(result.stdout.strip()) and result.stdout.count("\n") == 1
    assert "noisy" not in result.stderr and "#" not in result.stderr
    iidfile = os.path.join(ctx, "iid")
    result = build(barque, "-q", "--iidfile", iidfile, ctx)
    with open(iidfile) as f:
        assert f.read() == result.stdout.strip()


def test_multi_stage_copy_from_and_target(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox AS base\n"
                              "RUN echo base > /base.txt\n"
                              "FROM busybox AS unused\n"
                              "RUN exit 7\n"
                              "FROM busybox AS tool\n"
                              "RUN echo tool > /tool.txt\n"
                              "FROM base AS final\n"
                              "COPY --from=tool /tool.txt /from-tool.txt\n"
                              "COPY --from=0 /base.txt /from-0.txt\n"
                              "CMD cat /base.txt /from-tool.txt /from-0.txt\n"})
    result = build(barque, "-t", "multi", ctx)
    assert result.returncode == 0, result.stderr
    assert "RUN exit 7" not in result.stderr         # a stage the target does not need
    assert run_out(barque, "multi") == "base\ntool\nbase\n"
    assert built(barque, "--target", "tool", "-t", "multi:tool", ctx)
    assert run_out(barque, "multi:tool", "cat", "/tool.txt") == "tool\n"
    result = build(barque, "--target", "nope", ctx)
    assert result.returncode == 1
    assert "target stage" in result.stderr and "nope" in result.stderr


def test_build_args(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "ARG BASE=busybox\n"
                              "FROM $BASE\n"
                              "ARG WHO=nobody\n"
                              "ARG FROM_ENV\n"
                              'RUN echo "$WHO/$FROM_ENV" > /who\n'})
    built(barque, "-t", "args", "--build-arg", "WHO=alice", "--build-arg", "FROM_ENV", ctx,
          env={"FROM_ENV": "env-value"})
    assert run_out(barque, "args", "cat", "/who") == "alice/env-value\n"
    built(barque, "-t", "args:default", ctx)
    assert run_out(barque, "args:default", "cat", "/who") == "nobody/\n"


@pytest.mark.parametrize(("instructions", "run_args", "expected"), [
    ('ENTRYPOINT ["echo", "a"]\nCMD ["b"]\n', [], "a b\n"),
    ('ENTRYPOINT ["echo", "a"]\nCMD ["b"]\n', ["c"], "a c\n"),
    ('ENTRYPOINT echo shell\nCMD ["ignored"]\n', ["also-ignored"], "shell\n"),
    ('CMD ["echo", "exec-form"]\n', [], "exec-form\n"),
    ("CMD echo $HOME shell-form\n", [], "/root shell-form\n"),
    ('ENTRYPOINT ["echo"]\n', [], "\n"),     # resets the base's CMD ["sh"]
    ('CMD ["x"]\nENTRYPOINT ["echo"]\n', [], "x\n"),   # but not the stage's own
])
def test_entrypoint_and_cmd_run_as_docker_runs_them(barque: Barque, ctx: str,
                                                    instructions: str, run_args: list[str],
                                                    expected: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\n" + instructions})
    built(barque, "-t", "ep", ctx)
    assert run_out(barque, "ep", *run_args) == expected


def test_user_workdir_env_carried_into_run(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\n"
                              "RUN echo app:x:1234:1234::/home/app:/bin/sh >> /etc/passwd\n"
                              "ENV FOO=bar BAZ=\"two words\"\n"
                              "WORKDIR /srv\n"
                              "WORKDIR data\n"
                              "USER app\n"
                              "RUN id -u > /tmp/build-uid && pwd > /tmp/build-pwd\n"})
    built(barque, "-t", "user", ctx)
    out = run_out(barque, "user", "sh", "-c",
                  'id -u; pwd; echo "$FOO/$BAZ"; cat /tmp/build-uid /tmp/build-pwd')
    assert out == "1234\n/srv/data\nbar/two words\n1234\n/srv/data\n"
    config = image_config(barque, "user")
    assert (config["User"], config["WorkingDir"]) == ("app", "/srv/data")


def test_dockerignore_honoured(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY . /ctx\n",
                ".dockerignore": "secret*\n*.log\n!keep.log\nsub/**/deep\n",
                "secret.txt": "no", "app.txt": "yes", "a.log": "no", "keep.log": "yes",
                "sub/x/deep": "no", "sub/x/shallow": "yes"})
    built(barque, "-t", "ignore", ctx)
    out = run_out(barque, "ignore", "find", "/ctx", "-type", "f")
    assert sorted(out.split()) == ["/ctx/.dockerignore", "/ctx/Dockerfile", "/ctx/app.txt",
                                   "/ctx/keep.log", "/ctx/sub/x/shallow"]


def test_add_local_tar_is_extracted(barque: Barque, ctx: str) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for name, body in (("pkg/a.txt", b"A\n"), ("pkg/b.txt", b"B\n")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    write(ctx, {"Dockerfile": "FROM busybox\nADD files.tar.gz /opt/\nCOPY files.tar.gz /raw/\n",
                "files.tar.gz": data.getvalue()})
    built(barque, "-t", "addtar", ctx)
    assert run_out(barque, "addtar", "cat", "/opt/pkg/a.txt", "/opt/pkg/b.txt") == "A\nB\n"
    assert run_out(barque, "addtar", "ls", "/raw") == "files.tar.gz\n"


def test_heredocs(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\n"
                              "ARG NAME=world\n"
                              "RUN <<EOF\n"
                              "echo one > /one\n"
                              "echo two >> /one\n"
                              "EOF\n"
                              "COPY <<EOF /hello.txt\n"
                              "hello ${NAME}\n"
                              "EOF\n"
                              "COPY <<'EOF' /literal.txt\n"
                              "hello ${NAME}\n"
                              "EOF\n"})
    built(barque, "-t", "heredoc", ctx)
    assert run_out(barque, "heredoc", "cat", "/one", "/hello.txt", "/literal.txt") == \
        "one\ntwo\nhello world\nhello ${NAME}\n"


def test_cache_mount_kept_across_builds(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\n"
                              "RUN --mount=type=cache,target=/cache "
                              "echo x >> /cache/log && wc -l < /cache/log > /count\n"})
    built(barque, "-t", "cachemount", ctx)
    assert run_out(barque, "cachemount", "cat", "/count").strip() == "1"
    built(barque, "--no-cache", "-t", "cachemount", ctx)
    assert run_out(barque, "cachemount", "cat", "/count").strip() == "2"
    # not in the layer (BuildKit may leave the empty mount point)
    assert run_out(barque, "cachemount", "sh", "-c", "ls /cache 2>/dev/null; true") == ""


def test_source_date_epoch_gives_the_same_digest(barque: Barque, ctx: str) -> None:
    # the RUN's files get the build's mtimes: clamped, they match
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY f /f\nRUN echo same > /when\n", "f": "x"})
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    first = built(barque, "--no-cache", ctx, env=env)
    os.utime(os.path.join(ctx, "f"))       # a newer mtime: clamped to the epoch in the layer
    second = built(barque, "--no-cache", ctx, env=env)
    assert first == second
    created = ok(barque.run("image", "inspect", "-f", "{{.Created}}", first)).strip()
    assert created.startswith("2023-11-14T22:13:20")


def test_one_changed_file_reruns_only_the_steps_after_it(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY a /a\nRUN cat /a > /a2\nCOPY b /b\n"
                              "RUN cat /b > /b2\n",
                "a": "1", "b": "1"})
    built(barque, ctx)
    write(ctx, {"b": "2"})
    result = build(barque, ctx)
    assert result.returncode == 0, result.stderr
    shown = steps(result.stderr)
    assert shown["[2/5] COPY a /a"] == ["CACHED"]
    assert shown["[3/5] RUN cat /a > /a2"] == ["CACHED"]
    assert shown["[4/5] COPY b /b"] != ["CACHED"]
    assert shown["[5/5] RUN cat /b > /b2"] != ["CACHED"]


# --- failures ------------------------------------------------------------------------------

def test_failing_run_stops_with_its_step_and_exit_code(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\nRUN echo before\nRUN echo oops; exit 3\n"
                              "RUN echo never\n"})
    result = build(barque, "-t", "fails", ctx)
    assert result.returncode == 1
    message = 'process "/bin/sh -c echo oops; exit 3" did not complete successfully: ' \
              "exit code: 3"
    shown = steps(result.stderr)
    assert shown["[3/4] RUN echo oops; exit 3"][-1] == f"ERROR: {message}"
    assert "[4/4] RUN echo never" not in shown
    tail = result.stderr.split("------\n", 1)[1]
    assert re.match(r" > \[3/4\] RUN echo oops; exit 3:\n\d\.\d{3} oops\n------\n", tail)
    assert ("Dockerfile:3\n--------------------\n"
            "   1 |     FROM busybox\n"
            "   2 |     RUN echo before\n"
            "   3 | >>> RUN echo oops; exit 3\n"
            "   4 |     RUN echo never\n"
            "   5 |     \n"
            "--------------------\n") in result.stderr
    assert result.stderr.endswith(f"ERROR: failed to build: failed to solve: {message}\n")
    # nothing left behind: no container, mount, image, half-made layer
    assert ok(barque.run("ps", "-aq")) == ""
    assert barque.run("image", "inspect", "fails").returncode == 1
    assert leftover_mounts(barque) == []


def test_malformed_dockerfile_fails_with_the_line(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\nRUN true\nFRM x\n"})
    result = build(barque, ctx)
    assert result.returncode == 1
    assert "Dockerfile:3\n" in result.stderr and " 3 | >>> FRM x\n" in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("ERROR: failed to build: failed to solve: dockerfile parse error "
                           "on line 3: unknown instruction: FRM"), result.stderr


def test_missing_context_and_dockerfile(barque: Barque, ctx: str) -> None:
    missing = os.path.join(ctx, "nope")
    result = build(barque, missing)
    assert (result.returncode, result.stderr) == (
        1, f'ERROR: unable to prepare context: path "{missing}" not found\n')
    result = build(barque, ctx)
    assert result.returncode == 1
    assert "Dockerfile" in result.stderr and result.stderr.startswith("ERROR: ")


def test_bad_flags(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\n"})
    for args, message in ((["-t", "Bad"], 'ERROR: invalid tag "Bad": invalid reference '
                                          "format: repository name must be lowercase\n"),
                          (["--network", "bogus"],
                           'ERROR: network mode "bogus" not supported by buildkit\n'),
                          (["-o", "type=local"], "ERROR: dest is required for local "
                                                 "exporter\n")):
        result = build(barque, *args, ctx)
        assert (result.returncode, result.stderr) == (1, message)


# --- contexts, Dockerfiles and outputs -----------------------------------------------------

def test_dockerfile_from_stdin_and_other_names(barque: Barque, ctx: str) -> None:
    write(ctx, {"f.txt": "ctx\n", "sub/Dockerfile.dev": "FROM busybox\nCOPY f.txt /dev.txt\n"})
    built(barque, "-t", "stdin", "-f", "-", ctx, input="FROM busybox\nCOPY f.txt /f.txt\n")
    assert run_out(barque, "stdin", "cat", "/f.txt") == "ctx\n"
    built(barque, "-t", "dev", "-f", os.path.join(ctx, "sub/Dockerfile.dev"), ctx)
    assert run_out(barque, "dev", "cat", "/dev.txt") == "ctx\n"
    # `-` alone: the Dockerfile on stdin, no context
    built(barque, "-t", "nocontext", "-", input="FROM busybox\nRUN echo ok > /ok\n")
    assert run_out(barque, "nocontext", "cat", "/ok") == "ok\n"


def test_tarball_context(barque: Barque, ctx: str) -> None:
    archive = os.path.join(ctx, "context.tar")
    with tarfile.open(archive, "w") as tar:
        for name, body in (("Dockerfile", b"FROM busybox\nCOPY in.txt /in.txt\n"),
                           ("in.txt", b"from tar\n")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    built(barque, "-t", "tarctx", archive)
    assert run_out(barque, "tarctx", "cat", "/in.txt") == "from tar\n"
    with open(archive, "rb") as f:
        data = f.read()
    result = subprocess.run(barque.argv("build", "-q", "-t", "tarstdin", "-"), input=data,
                            capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert run_out(barque, "tarstdin", "cat", "/in.txt") == "from tar\n"


def test_outputs_local_and_tar(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM scratch\nCOPY a.txt /dir/a.txt\n", "a.txt": "A"})
    out = os.path.join(ctx, "out")
    result = build(barque, "-o", f"type=local,dest={out}", ctx)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(out, "dir", "a.txt")) as f:
        assert f.read() == "A"
    short = os.path.join(ctx, "short")
    assert build(barque, "-o", short, ctx).returncode == 0
    assert os.path.isfile(os.path.join(short, "dir", "a.txt"))
    archive = os.path.join(ctx, "fs.tar")
    assert build(barque, "-o", f"type=tar,dest={archive}", ctx).returncode == 0
    with tarfile.open(archive) as tar:
        assert "dir/a.txt" in [m.name.lstrip("./") for m in tar.getmembers()]


def test_secret_mount_not_in_the_image(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\n"
                              "RUN --mount=type=secret,id=tok cat /run/secrets/tok > /seen\n"
                              "RUN --mount=type=secret,id=envtok,required=true "
                              "cat /run/secrets/envtok >> /seen\n",
                "token.txt": "file-secret\n"})
    built(barque, "-t", "secret", "--secret", f"id=tok,src={ctx}/token.txt",
          "--secret", "id=envtok,env=MY_TOKEN", ctx, env={"MY_TOKEN": "env-secret"})
    assert run_out(barque, "secret", "cat", "/seen") == "file-secret\nenv-secret"
    assert run_out(barque, "secret", "sh", "-c", "cat /run/secrets/* 2>/dev/null; true") == ""


def test_network_none(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\nRUN ls /sys/class/net > /ifaces\n"})
    built(barque, "--network", "none", "-t", "nonet", ctx)
    assert run_out(barque, "nonet", "cat", "/ifaces") == "lo\n"


# --- the cache in system df, builder prune ---------------------------------------------------

def df_build_cache(barque: Barque) -> dict[str, str]:
    rows = [json.loads(line) for line in
            ok(barque.run("system", "df", "--format", "json")).splitlines()]
    [row] = [r for r in rows if r["Type"] == "Build Cache"]
    return row


def test_builder_prune_and_system_df(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\nRUN head -c 20000 /dev/zero > /blob\n"})
    assert df_build_cache(barque)["TotalCount"] == "0"
    built(barque, "-t", "pruneme", ctx)
    row = df_build_cache(barque)
    # the image holds the cache's layers: shared, so not counted (Docker's Size)
    assert int(row["TotalCount"]) >= 1 and row["Size"] == "0B"
    assert "*" in ok(barque.run("builder", "du")).splitlines()[1]   # buildx marks shared
    ok(barque.run("rmi", "pruneme"))
    row = df_build_cache(barque)
    assert int(row["TotalCount"]) >= 1 and row["Size"] != "0B"
    assert "%" not in row["Reclaimable"]
    verbose = ok(barque.run("system", "df", "-v"))
    assert f"\nBuild cache usage: {row['Size']}\n\nCACHE ID " in verbose
    assert " regular " in verbose.split("Build cache usage:")[1]
    du = ok(barque.run("builder", "du")).splitlines()
    assert du[0].split() == ["ID", "RECLAIMABLE", "SIZE", "LAST", "ACCESSED"]
    assert du[1].split()[1] == "true" and len(du) == int(row["TotalCount"]) + 3
    assert du[-1] == f"Total:\t\t{row['Size']}"
    result = barque.run("builder", "prune", input="n\n")
    assert result.stdout == ("WARNING! This will remove all dangling build cache. Are you sure "
                             "you want to continue? [y/N] ")
    assert df_build_cache(barque)["TotalCount"] == row["TotalCount"]
    result = barque.run("builder", "prune", "-f")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Deleted build cache objects:"
    assert lines[-1].startswith("Total reclaimed space: ") and lines[-1] != \
        "Total reclaimed space: 0B"
    assert df_build_cache(barque)["TotalCount"] == "0"
    again = build(barque, ctx)
    assert "[2/2] RUN head -c 20000 /dev/zero > /blob" in steps(again.stderr)
    assert steps(again.stderr)["[2/2] RUN head -c 20000 /dev/zero > /blob"] != ["CACHED"]


def test_builder_prune_filters_and_system_prune(barque: Barque, ctx: str) -> None:
    write(ctx, {"Dockerfile": "FROM busybox\nRUN echo x > /x\n"})
    built(barque, ctx)
    result = barque.run("builder", "prune", "-f", "--filter", "until=1h")
    assert result.returncode == 0 and result.stdout == "Total reclaimed space: 0B\n"
    result = barque.run("builder", "prune", "-f", "--filter", "color=red")
    assert result.returncode == 1 and "invalid filter 'color'" in result.stderr
    result = barque.run("system", "prune", "-f")
    assert result.returncode == 0, result.stderr
    assert "Deleted build cache objects:" in result.stdout
    assert df_build_cache(barque)["TotalCount"] == "0"
