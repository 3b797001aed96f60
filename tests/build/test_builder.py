"""The builder on a real store: busybox bases, real overlayfs snapshots, RUN through
barque-runtime (tests/build/executors.py), the config each instruction makes, the cache."""

from __future__ import annotations

import os

import pytest

from barque.build.dockerfile.parser import parse
from barque.build.options import BuildOptions
from barque.engine.build import BuildFailed, build_parsed
from barque.engine.context import Engine
from tests.build.conftest import Recorder, image_files, mounts_under
from tests.build.executors import Recording

pytestmark = pytest.mark.root

MULTI = """\
FROM busybox AS base
ENV GREETING=hello PATH=/usr/local/bin:/usr/bin:/bin
WORKDIR /app
RUN echo "$GREETING from base" > /app/base.txt

FROM base AS tools
RUN echo tool > /app/tool.txt

FROM busybox
ARG VERSION=1.0
LABEL version=$VERSION maintainer=me
COPY --from=tools /app /app
WORKDIR sub
USER 1000:1000
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGINT
ENTRYPOINT ["/bin/echo"]
CMD ["hi"]
"""


def _build(engine: Engine, text: str, runtime_bin: str, run_prefix: str,
           context: str = "/nonexistent", **kw: object) -> tuple[str, Recorder, Recording]:
    events = Recorder()
    executor = Recording(engine)
    kw.setdefault("network", "none")  # (the default bridge: test_builder_run.py)
    options = BuildOptions(context, text.encode(), **kw)  # type: ignore[arg-type]
    result = build_parsed(engine, parse(text), options, events, executor=executor)
    assert result.image_id is not None
    return result.image_id, events, executor


def test_multistage_build_config_and_files(engine: Engine, runtime_bin: str,
                                           run_prefix: str) -> None:
    image_id, events, executor = _build(engine, MULTI, runtime_bin, run_prefix,
                                        tags=["built:1"])
    image = engine.store.resolve("built:1")
    assert image.id == image_id
    config = engine.store.config(image)
    cfg = config["config"]
    assert cfg["Entrypoint"] == ["/bin/echo"]
    assert cfg["Cmd"] == ["hi"]
    assert cfg["User"] == "1000:1000"
    assert cfg["WorkingDir"] == "/sub"  # relative to this stage's own (busybox: /)
    assert cfg["Labels"] == {"version": "1.0", "maintainer": "me"}
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}}
    assert cfg["StopSignal"] == "SIGINT"
    assert "GREETING=hello" not in cfg.get("Env", [])  # ENV of another stage
    files = image_files(engine, image_id)
    assert files["/app/base.txt"] == b"hello from base\n"
    assert files["/app/tool.txt"] == b"tool\n"
    # The RUN saw the stage's ENV and WORKDIR.
    first = executor.runs[0]
    assert "GREETING=hello" in first.env and first.cwd == "/app"
    history = config["history"]
    assert history[-1]["created_by"] == 'CMD ["hi"]'
    assert history[-1]["empty_layer"] is True
    # One history entry with a layer per layer (what `docker history` pairs up).
    assert len([h for h in history if not h.get("empty_layer")]) == len(image.layers)
    from barque.engine.images import history as image_history

    rows = image_history(engine.store, image.id)
    assert rows[0].id == image.id and any(r.size > 0 and "COPY /app /app" in r.created_by
                                          for r in rows)
    assert any(h["created_by"].startswith("COPY /app /app") for h in history)
    names = [v.name for v in events.steps()]
    assert "[base 1/3] FROM docker.io/library/busybox:latest" in names
    assert '[base 3/3] RUN echo "$GREETING from base" > /app/base.txt' in names
    assert "[stage-2 3/3] WORKDIR sub" in names


def test_rebuild_is_all_cached_and_same_id(engine: Engine, runtime_bin: str,
                                           run_prefix: str) -> None:
    # (no COPY here: that is Part C2's; the last stage builds on the others instead)
    text = MULTI.replace("COPY --from=tools /app /app\n", "").replace(
        "FROM busybox\nARG", "FROM tools\nARG")
    first, _, _ = _build(engine, text, runtime_bin, run_prefix)
    again, events, executor = _build(engine, text, runtime_bin, run_prefix)
    assert again == first
    assert executor.runs == []
    steps = [v for v in events.steps() if " FROM " not in v.name]
    assert steps and all(v.cached for v in steps)
    assert sorted(events.vertices) == list(range(1, len(events.vertices) + 1))
    assert not os.listdir(os.path.join(engine.paths.root, "build", "tmp"))
    # --no-cache runs everything again.
    _, events, executor = _build(engine, text, runtime_bin, run_prefix, no_cache=True)
    assert len(executor.runs) == 2
    assert not any(v.cached for v in events.steps() if " FROM " not in v.name)


def test_change_reruns_from_the_changed_step(engine: Engine, runtime_bin: str,
                                             run_prefix: str) -> None:
    text = "FROM busybox\nRUN echo one > /one\nARG X=1\nRUN echo $X > /x\nRUN echo three\n"
    _build(engine, text, runtime_bin, run_prefix)
    _, events, executor = _build(engine, text, runtime_bin, run_prefix,
                                 build_args={"X": "2"})
    assert [r.args[-1] for r in executor.runs] == ["echo $X > /x", "echo three"]
    cached = {v.name: v.cached for v in events.steps()}
    assert cached["[2/4] RUN echo one > /one"] is True
    assert cached["[3/4] RUN echo 2 > /x"] is False  # build args shown replaced


def test_source_date_epoch_reproducible(engine: Engine, runtime_bin: str,
                                        run_prefix: str) -> None:
    text = "FROM busybox\nENV A=b\nRUN echo hi > /hi && mkdir -p /d && touch /d/f\nCMD sh\n"
    first, _, _ = _build(engine, text, runtime_bin, run_prefix, no_cache=True,
                         source_date_epoch=1700000000)
    second, _, _ = _build(engine, text, runtime_bin, run_prefix, no_cache=True,
                          source_date_epoch=1700000000)
    assert first == second
    image = engine.store.get(first)
    config = engine.store.config(image)
    assert config["created"] == "2023-11-14T22:13:20Z"
    import tarfile

    with tarfile.open(engine.store.blobs.path(image.layers[-1].blob_digest)) as t:
        members = t.getmembers()
    names = [m.name for m in members]
    assert "hi" in names and "d/f" in names
    assert names == sorted(names, key=lambda n: n.split("/"))
    assert all(m.mtime <= 1700000000 for m in members)
    assert config["config"]["Cmd"] == ["/bin/sh", "-c", "sh"]
    # Without it, a cold rebuild is another image (its times).
    third, _, _ = _build(engine, text, runtime_bin, run_prefix, no_cache=True)
    assert third != first


def test_failing_run_leaves_nothing(engine: Engine, runtime_bin: str, run_prefix: str) -> None:
    layers_before = sorted(os.listdir(engine.store.layer_dir))
    text = "FROM busybox\nRUN echo partial > /partial\nRUN echo out; exit 3\n"
    with pytest.raises(BuildFailed) as info:
        _build(engine, text, runtime_bin, run_prefix)
    e = info.value
    assert str(e) == ('process "/bin/sh -c echo out; exit 3" did not complete successfully: '
                      "exit code: 3")
    assert e.exit_code == 1 and e.line == 3
    assert e.vertex is not None and e.vertex.name == "[3/3] RUN echo out; exit 3"
    assert mounts_under(engine.paths.root) == []
    assert not os.listdir(os.path.join(engine.paths.root, "build", "tmp"))
    assert not os.path.isdir(engine.paths.containers) or not os.listdir(engine.paths.containers)
    ingest = os.path.join(engine.paths.root, "ingest")
    assert [n for n in os.listdir(ingest) if n.startswith(".build-")] == []
    # The first RUN's layer is kept (cached), the failed one made none.
    layers_after = sorted(os.listdir(engine.store.layer_dir))
    assert len([n for n in layers_after if n not in layers_before
                and not n.endswith(".lock")]) == 1


def test_entrypoint_resets_inherited_cmd(engine: Engine, runtime_bin: str,
                                         run_prefix: str) -> None:
    base, _, _ = _build(engine, "FROM busybox\nCMD [\"base\"]\n", runtime_bin, run_prefix,
                        tags=["withcmd"])
    child, _, _ = _build(engine, "FROM withcmd\nENTRYPOINT [\"/bin/true\"]\n", runtime_bin,
                         run_prefix)
    cfg = engine.store.config(engine.store.get(child))["config"]
    assert cfg["Entrypoint"] == ["/bin/true"] and "Cmd" not in cfg
    both, _, _ = _build(engine, "FROM withcmd\nCMD [\"x\"]\nENTRYPOINT [\"/bin/true\"]\n",
                        runtime_bin, run_prefix)
    cfg = engine.store.config(engine.store.get(both))["config"]
    assert cfg["Cmd"] == ["x"]
    del base


def test_target_builds_only_needed_stages(engine: Engine, runtime_bin: str,
                                          run_prefix: str) -> None:
    text = ("FROM busybox AS a\nRUN echo a > /a\n"
            "FROM busybox AS b\nRUN echo b > /b\n"
            "FROM a AS c\nRUN echo c > /c\n")
    image_id, events, executor = _build(engine, text, runtime_bin, run_prefix, target="a")
    assert [r.args[-1] for r in executor.runs] == ["echo a > /a"]
    assert "/a" in image_files(engine, image_id) and "/c" not in image_files(engine, image_id)
    with pytest.raises(BuildFailed, match='target stage "nope" could not be found'):
        _build(engine, text, runtime_bin, run_prefix, target="nope")


def test_gc_keeps_cached_layers_and_prune_releases(engine: Engine, runtime_bin: str,
                                                   run_prefix: str) -> None:
    from barque.build.cache import BuildCache

    def cache_usage(engine: Engine) -> list:  # type: ignore[type-arg]
        return BuildCache(engine.store.conn).usage()

    text = "FROM busybox\nRUN echo big > /big\n"
    image_id, _, _ = _build(engine, text, runtime_bin, run_prefix)
    chain = engine.store.get(image_id).layers[-1].chain_id
    assert [(u.size > 0, u.shared) for u in cache_usage(engine)] == [(True, True)]
    # Without --all, a prune keeps what an image shares.
    assert BuildCache(engine.store.conn).prune() == []
    engine.store.remove(image_id)  # no tag: deleted, its layers collected... but cached
    assert os.path.isdir(engine.store.layer_path(chain))
    assert [(u.size > 0, u.shared) for u in cache_usage(engine)] == [(True, False)]
    before = engine.store.disk_usage()
    dropped = BuildCache(engine.store.conn).prune()
    engine.store.collect_garbage()
    assert len(dropped) == 1 and engine.store.disk_usage() < before
    assert not os.path.exists(engine.store.layer_path(chain))
    assert cache_usage(engine) == []


def test_metadata_change_keeps_run_cached(engine: Engine, runtime_bin: str,
                                          run_prefix: str) -> None:
    text = "FROM busybox\nLABEL a=1\nRUN echo x > /x\nCMD [\"a\"]\n"
    first, _, _ = _build(engine, text, runtime_bin, run_prefix)
    second, _, executor = _build(engine, text.replace("a=1", "a=2"), runtime_bin, run_prefix)
    assert executor.runs == [] and second != first
    _, _, executor = _build(engine, text.replace("LABEL a=1", "ENV a=1"), runtime_bin,
                            run_prefix)
    assert len(executor.runs) == 1  # the RUN's environment changed


def test_independent_stages_run_in_parallel(engine: Engine, runtime_bin: str,
                                            run_prefix: str) -> None:
    text = ("FROM busybox AS a\nRUN sleep 1; echo a > /a\n"
            "FROM busybox AS b\nRUN sleep 1; echo b > /b\n"
            "FROM a\nRUN --mount=type=bind,from=b,source=/b,target=/mnt/b cat /mnt/b\n")
    _, events, executor = _build(engine, text.replace("RUN --mount=type=bind,from=b,"
                                                      "source=/b,target=/mnt/b cat /mnt/b",
                                                      "ENV x=1"), runtime_bin, run_prefix)
    del events
    # Only `a` is needed without the mount: one RUN.
    assert len(executor.runs) == 1
    text = ("FROM busybox AS a\nRUN sleep 1; echo a > /a\n"
            "FROM busybox AS b\nRUN sleep 1; echo b > /b\n"
            "FROM a\nRUN --mount=type=bind,from=b,source=/b,target=/mnt/b true\n")
    second = _build(engine, text.replace("echo a", "echo A").replace("echo b", "echo B"),
                    runtime_bin, run_prefix)[2]
    assert len(second.runs) == 3
    mounts = second.runs[-1].mounts
    assert [(m.kind, m.target, m.readonly) for m in mounts] == [("bind", "/mnt/b", True)]
    # The two stages' RUNs (the first two to start; the third waits for both) ran at once:
    # one began before the other ended. (Not a bound on the wall time, which a busy machine
    # stretches past any margin.)
    (_, first_end), (second_start, _), _ = sorted(second.spans)
    assert second_start < first_end, second.spans


def test_outputs_local_and_tar(engine: Engine, runtime_bin: str, run_prefix: str,
                               tmp_path: os.PathLike[str]) -> None:
    import tarfile

    from barque.build.options import Output

    text = "FROM busybox\nRUN echo out > /out.txt\n"
    local = os.path.join(str(tmp_path), "local")
    tar = os.path.join(str(tmp_path), "fs.tar")
    events = Recorder()
    options = BuildOptions("/nonexistent", text.encode(),
                           outputs=[Output("local", local), Output("tar", tar)],
                           network="none")
    result = build_parsed(engine, parse(text), options, events,
                          executor=Recording(engine))
    assert result.image_id is None
    with open(os.path.join(local, "out.txt")) as f:
        assert f.read() == "out\n"
    assert os.path.islink(os.path.join(local, "bin", "sh")) or os.path.isfile(
        os.path.join(local, "bin", "sh"))
    with tarfile.open(tar) as t:
        assert t.extractfile("out.txt").read() == b"out\n"  # type: ignore[union-attr]
    assert engine.store.images() and all(not i.tags or "busybox" in i.tags[0]
                                         for i in engine.store.images())
    assert mounts_under(engine.paths.root) == []
    # Again into the same dir: replaced, what else it held kept.
    with open(os.path.join(local, "mine"), "w") as f:
        f.write("kept")
    text = text.replace("echo out", "echo again")
    build_parsed(engine, parse(text), BuildOptions("/nonexistent", text.encode(),
                                                   outputs=[Output("local", local)],
                                                   network="none"))
    with open(os.path.join(local, "out.txt")) as f:
        assert f.read() == "again\n"
    with open(os.path.join(local, "mine")) as f:
        assert f.read() == "kept"


def test_killed_build_is_reclaimed(engine: Engine, runtime_bin: str, run_prefix: str) -> None:
    """What a kill -9 leaves (a mounted step snapshot, an unlocked workspace) goes at the
    next build."""
    import subprocess
    import sys

    code = f"""
import os, sys, signal
sys.path.insert(0, {os.getcwd()!r})
from barque.build.layers import StepFS, Workspace
from barque.engine.context import Engine
from barque.engine.paths import Paths
e = Engine(Paths({engine.paths.root!r}, {engine.paths.runroot!r}))
image = e.store.resolve("busybox")
ws = Workspace(e.store.root)
fs = StepFS(e.store, ws, list(image.layers))
open(os.path.join(fs.mount(), "junk"), "w").write("x")
print(ws.dir, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    left = proc.stdout.strip()
    assert left and os.path.isdir(left) and mounts_under(left)
    _build(engine, "FROM busybox\nRUN true\n", runtime_bin, run_prefix)
    assert not os.path.exists(left) and mounts_under(engine.paths.root) == []


def _write(context: str, name: str, data: str) -> None:
    path = os.path.join(context, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data)


def test_copy_cache_keyed_by_content(engine: Engine, runtime_bin: str, run_prefix: str,
                                     context: str) -> None:
    for name in ("a.txt", "b.txt", "src/c.txt"):
        _write(context, name, name * 100)
    _write(context, ".dockerignore", "*.log\n")
    _write(context, "skip.log", "ignored")
    text = ("FROM busybox\nCOPY a.txt b.txt /app/\nCOPY src /app/src\nRUN ls /app /app/src\n"
            "COPY . /all\n")
    first, _, executor = _build(engine, text, runtime_bin, run_prefix, context)
    assert len(executor.runs) == 1
    files = image_files(engine, first)
    assert files["/app/a.txt"] == b"a.txt" * 100 and files["/app/src/c.txt"] == b"src/c.txt" * 100
    assert "/all/skip.log" not in files and "/all/a.txt" in files
    # Nothing changed (an mtime is no change): all cached, the same image.
    os.utime(os.path.join(context, "a.txt"), (1, 1))
    again, events, executor = _build(engine, text, runtime_bin, run_prefix, context)
    assert again == first and executor.runs == []
    assert all(v.cached for v in events.steps() if " FROM " not in v.name)
    # An ignored file changed: still all cached.
    _write(context, "skip.log", "ignored, changed")
    assert _build(engine, text, runtime_bin, run_prefix, context)[0] == first
    # One copied file changed: the steps from that COPY on run again, those before do not.
    _write(context, "src/c.txt", "changed")
    changed, events, executor = _build(engine, text, runtime_bin, run_prefix, context)
    assert changed != first and len(executor.runs) == 1
    cached = {v.name.split("] ", 1)[1]: v.cached for v in events.steps()}
    assert cached["COPY a.txt b.txt /app/"] is True
    assert cached["COPY src /app/src"] is False
    assert cached["COPY . /all"] is False
    assert image_files(engine, changed)["/app/src/c.txt"] == b"changed"


def test_copy_missing_source_fails_with_buildkit_words(engine: Engine, runtime_bin: str,
                                                       run_prefix: str, context: str) -> None:
    with pytest.raises(BuildFailed) as info:
        _build(engine, "FROM busybox\nCOPY nope /x\n", runtime_bin, run_prefix, context)
    assert '"/nope": not found' in str(info.value)
    assert info.value.line == 2
    assert mounts_under(engine.paths.root) == []


def test_add_local_tar_is_extracted(engine: Engine, runtime_bin: str, run_prefix: str,
                                    context: str) -> None:
    import io
    import tarfile

    with tarfile.open(os.path.join(context, "bundle.tar.gz"), "w:gz") as t:
        info = tarfile.TarInfo("pkg/hello.txt")
        info.size = 5
        t.addfile(info, io.BytesIO(b"hello"))
    image_id, _, _ = _build(engine, "FROM busybox\nADD bundle.tar.gz /opt/\n"
                            "COPY bundle.tar.gz /raw/\n", runtime_bin, run_prefix, context)
    files = image_files(engine, image_id)
    assert files["/opt/pkg/hello.txt"] == b"hello"
    assert "/raw/bundle.tar.gz" in files and "/opt/bundle.tar.gz" not in files


def test_cache_mount_kept_across_builds_until_prune(engine: Engine, runtime_bin: str,
                                                    run_prefix: str) -> None:
    from barque.build.cache import BuildCache

    text = ("FROM busybox\nRUN --mount=type=cache,target=/var/cache/app "
            "echo x >> /var/cache/app/log; wc -l < /var/cache/app/log\n")

    def lines() -> bytes:
        _, events, _ = _build(engine, text, runtime_bin, run_prefix, no_cache=True)
        return b"".join(data for name, stream, data in events.logs
                        if stream == 1 and " RUN " in name).strip()

    assert lines() == b"1"
    assert lines() == b"2"
    image_id, _, _ = _build(engine, text, runtime_bin, run_prefix)
    assert "/var/cache/app/log" not in image_files(engine, image_id)  # never in the layer
    BuildCache(engine.store.conn).prune(all_entries=True)
    assert lines() == b"1"


def test_heredocs(engine: Engine, runtime_bin: str, run_prefix: str) -> None:
    text = ('FROM busybox\nARG WHO=world\n'
            'RUN <<EOF\necho one > /one\necho two >> /one\nEOF\n'
            'RUN cat > /cat.txt <<EOT\nhello $WHO\nEOT\n'
            'RUN <<EOF\n#!/bin/sh\necho script > /script.txt\nEOF\n'
            'COPY <<EOF /hello.txt\nhello ${WHO}\nEOF\n'
            "COPY <<'EOF' /literal.txt\n$WHO stays\nEOF\n")
    image_id, _, _ = _build(engine, text, runtime_bin, run_prefix)
    files = image_files(engine, image_id)
    assert files["/one"] == b"one\ntwo\n"
    assert files["/cat.txt"] == b"hello world\n"
    assert files["/script.txt"] == b"script\n"
    assert files["/hello.txt"] == b"hello world\n"
    assert files["/literal.txt"] == b"$WHO stays\n"
    assert "/dev/pipes/EOF" not in files


def test_onbuild_triggers_run_after_from(engine: Engine, runtime_bin: str,
                                         run_prefix: str) -> None:
    _build(engine, "FROM busybox\nONBUILD RUN echo triggered > /trig\n", runtime_bin,
           run_prefix, tags=["onbuild-base"])
    child, _, executor = _build(engine, "FROM onbuild-base\nRUN cat /trig\n", runtime_bin,
                                run_prefix)
    assert [r.args[-1] for r in executor.runs] == ["echo triggered > /trig", "cat /trig"]
    config = engine.store.config(engine.store.get(child))
    assert "OnBuild" not in config["config"]
    assert image_files(engine, child)["/trig"] == b"triggered\n"


def test_healthcheck_and_shell_in_config(engine: Engine, runtime_bin: str,
                                         run_prefix: str) -> None:
    text = ('FROM busybox\nSHELL ["/bin/sh", "-ec"]\n'
            "HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost || exit 1\n"
            "RUN echo $0 > /shell\n")
    image_id, _, executor = _build(engine, text, runtime_bin, run_prefix)
    cfg = engine.store.config(engine.store.get(image_id))["config"]
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
                                  "Interval": 5_000_000_000, "Retries": 2}
    assert cfg["Shell"] == ["/bin/sh", "-ec"]
    assert executor.runs[0].args == ["/bin/sh", "-ec", "echo $0 > /shell"]


def test_bad_tag_fails_before_any_work(engine: Engine, runtime_bin: str,
                                      run_prefix: str) -> None:
    with pytest.raises(BuildFailed, match="invalid reference format"):
        _build(engine, "FROM busybox\nRUN exit 9\n", runtime_bin, run_prefix,
               tags=["Bad:Tag:x"])


def test_malformed_dockerfile_fails_with_its_line(engine: Engine) -> None:
    from barque.engine.build import build

    text = b"FROM busybox\nRUN true\nFRM x\n"
    with pytest.raises(BuildFailed) as info:
        build(engine, BuildOptions("/nonexistent", text))
    assert info.value.line == 3 and "unknown instruction: FRM" in str(info.value)
    with pytest.raises(BuildFailed, match="exit code: 5") as info:
        build(engine, BuildOptions("/nonexistent", b"FROM busybox\nRUN exit 5\n",
                                   network="none"))
    assert info.value.line == 2


def test_workdir_through_a_symlink_stays_in_the_rootfs(engine: Engine, runtime_bin: str,
                                                       run_prefix: str,
                                                       tmp_path: os.PathLike[str]) -> None:
    """An earlier step makes /escape a symlink to a host path (absolute, and ../..): the
    WORKDIR made through it lands inside the image, never on the host."""
    host = os.path.join(str(tmp_path), "host-target")
    os.makedirs(host)
    text = (f"FROM busybox\nRUN ln -s {host} /escape && ln -s ../../../../../..{host} /up\n"
            "WORKDIR /escape/marker\nWORKDIR /up/marker2\n")
    image_id, _, _ = _build(engine, text, runtime_bin, run_prefix)
    assert os.listdir(host) == []
    image = engine.store.get(image_id)
    top = engine.store.lowers(image)
    assert any(os.path.isdir(os.path.join(lower, host.lstrip("/"), "marker")) for lower in top)
    assert any(os.path.isdir(os.path.join(lower, host.lstrip("/"), "marker2"))
               for lower in top)


def test_copy_from_a_rebuilt_stage_with_the_same_files_stays_cached(
        engine: Engine, runtime_bin: str, run_prefix: str) -> None:
    text = ("FROM busybox AS src\nARG N=1\nRUN echo fixed > /out; echo $N > /n\n"
            "FROM busybox\nCOPY --from=src /out /o\nRUN cat /o > /seen\n")
    first, _, _ = _build(engine, text, runtime_bin, run_prefix)
    second, events, executor = _build(engine, text, runtime_bin, run_prefix,
                                      build_args={"N": "2"})
    # The source stage ran again (other files, a new mtime on /out) ...
    assert [r.args[-1] for r in executor.runs] == ["echo fixed > /out; echo $N > /n"]
    # ... but what the COPY takes is the same: it and what follows are cached.
    cached = {v.name.split("] ", 1)[1]: v.cached for v in events.steps()}
    assert cached["COPY --from=src /out /o"] and cached["RUN cat /o > /seen"]
    assert second == first
    # Fully cached again, without mounting the source (no work at all).
    third, events, executor = _build(engine, text, runtime_bin, run_prefix,
                                     build_args={"N": "2"})
    assert third == first and executor.runs == []
    assert not os.listdir(os.path.join(engine.paths.root, "build", "tmp"))


def test_bind_mounts_read_only_and_rw_never_reach_their_source(
        engine: Engine, runtime_bin: str, run_prefix: str, context: str) -> None:
    _write(context, "a.txt", "from the context\n")
    text = ("FROM busybox AS other\nRUN echo other > /o.txt\n"
            "FROM busybox\n"
            "RUN --mount=type=bind,target=/ctx cat /ctx/a.txt > /seen; "
            "touch /ctx/new 2>/dev/null && echo writable >> /seen || echo read-only >> /seen\n"
            "RUN --mount=type=bind,rw,target=/ctx echo scratch > /ctx/new && cat /ctx/new "
            ">> /seen\n"
            "RUN --mount=type=bind,from=other,source=/o.txt,target=/o.txt cat /o.txt >> /seen\n"
            "RUN --mount=type=bind,rw,from=other,target=/other rm /other/o.txt && "
            "echo removed >> /seen\n")
    image_id, _, _ = _build(engine, text, runtime_bin, run_prefix, context)
    files = image_files(engine, image_id)
    assert files["/seen"] == b"from the context\nread-only\nscratch\nother\nremoved\n"
    assert sorted(os.listdir(context)) == ["a.txt"]
    assert not any(name.startswith("/ctx") or name.startswith("/other") for name in files)
    # The other stage's layer still has its file (the rw mount's rm was thrown away).
    again, _, executor = _build(engine, text.replace("removed", "removed again"),
                                runtime_bin, run_prefix, context)
    assert len(executor.runs) == 1 and image_files(engine, again)["/seen"].endswith(
        b"removed again\n")
    assert mounts_under(engine.paths.root) == []


def test_scratch_stages(engine: Engine, runtime_bin: str, run_prefix: str,
                        context: str) -> None:
    _write(context, "a.txt", "A")
    empty, _, _ = _build(engine, 'FROM scratch\nLABEL empty=yes\n', runtime_bin, run_prefix,
                         context)
    assert engine.store.get(empty).layers == []
    one, _, _ = _build(engine, "FROM scratch AS files\nCOPY a.txt /\n"
                       "FROM busybox\nCOPY --from=files / /from-scratch/\n", runtime_bin,
                       run_prefix, context)
    assert image_files(engine, one)["/from-scratch/a.txt"] == b"A"
    config = engine.store.config(engine.store.get(empty))
    assert config["os"] == "linux" and config["rootfs"] == {"type": "layers", "diff_ids": []}


def test_copy_link_layer_is_made_once_for_any_parent(engine: Engine, runtime_bin: str,
                                                     run_prefix: str, context: str) -> None:
    _write(context, "a.txt", "A")
    text = "FROM busybox\nRUN echo {} > /before\nCOPY --link a.txt /app/\nRUN cat /app/a.txt\n"
    first, _, _ = _build(engine, text.format(1), runtime_bin, run_prefix, context)
    second, _, executor = _build(engine, text.format(2), runtime_bin, run_prefix, context)
    one, two = engine.store.get(first).layers, engine.store.get(second).layers
    # Another parent: the RUNs ran again, the --link layer is the same one.
    assert len(executor.runs) == 2
    assert one[-2].diff_id == two[-2].diff_id and one[-2].chain_id != two[-2].chain_id
    assert image_files(engine, second)["/app/a.txt"] == b"A"
    assert os.path.isdir(engine.store.layer_path(two[-2].chain_id))


def test_build_killed_mid_run_is_reclaimed_by_the_next(engine: Engine, runtime_bin: str,
                                                        run_prefix: str) -> None:
    """kill -9 of a build while its RUN runs: the next build (even a fully cached one)
    unmakes the step's container and snapshot."""
    import signal
    import subprocess
    import sys
    import time

    from barque.engine import build_run

    assert build_run.RUNS_DIR == "build-runs"  # engine/build.py looks there by name
    code = f"""
import sys
sys.path.insert(0, {os.getcwd()!r})
from barque.build.options import BuildOptions
from barque.engine.build import build
from barque.engine.context import Engine
from barque.engine.paths import Paths
e = Engine(Paths({engine.paths.root!r}, {engine.paths.runroot!r}))
build(e, BuildOptions("/nonexistent", b"FROM busybox\\nRUN sleep 30\\n", network="none"))
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    runs = os.path.join(engine.paths.runroot, "build-runs")
    tmp = os.path.join(engine.paths.root, "build", "tmp")
    try:
        deadline = time.monotonic() + 30
        while not (os.path.isdir(runs) and os.listdir(runs) and mounts_under(tmp)):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(0.3)  # the runtime's container started
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert mounts_under(tmp)
    _build(engine, "FROM busybox\nENV nothing=to-run\n", runtime_bin, run_prefix)
    assert mounts_under(engine.paths.root) == []
    assert os.listdir(tmp) == [] and os.listdir(runs) == []
    if os.path.isdir(engine.paths.runtime_root):
        # (no container left; "@seccomp" is the runtime's filter cache)
        assert [n for n in os.listdir(engine.paths.runtime_root) if n[0] != "@"] == []
    os.killpg(proc.pid, signal.SIGKILL) if _group_alive(proc.pid) else None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_concurrent_builds_in_one_root(engine: Engine, runtime_bin: str,
                                       run_prefix: str) -> None:
    """Two `barque build`s at once (separate processes, one store and cache): both finish,
    neither takes the other's snapshots, nothing is left."""
    import subprocess
    import sys

    def start(n: int) -> subprocess.Popen[bytes]:
        code = f"""
import sys
sys.path.insert(0, {os.getcwd()!r})
from barque.build.options import BuildOptions
from barque.engine.build import build
from barque.engine.context import Engine
from barque.engine.paths import Paths
e = Engine(Paths({engine.paths.root!r}, {engine.paths.runroot!r}))
text = b"FROM busybox\\nRUN sleep 0.3; echo {n} > /n\\nRUN echo shared > /s\\n"
print(build(e, BuildOptions("/nonexistent", text, network="none", tags=["c{n}"])).image_id)
"""
        return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    procs = [start(n) for n in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    ids = {out.decode().strip() for out, _ in outs}
    assert len(ids) == 3
    for n in range(3):
        assert image_files(engine, engine.store.resolve(f"c{n}").id)["/n"] == f"{n}\n".encode()
    assert mounts_under(engine.paths.root) == []
    assert os.listdir(os.path.join(engine.paths.root, "build", "tmp")) == []


def test_source_date_epoch_over_a_newer_base(engine: Engine, runtime_bin: str,
                                             run_prefix: str) -> None:
    _build(engine, "FROM busybox\nLABEL made=now\n", runtime_bin, run_prefix, tags=["newer"])
    child, _, _ = _build(engine, "FROM newer\nLABEL child=yes\n", runtime_bin, run_prefix,
                         source_date_epoch=1000)
    config = engine.store.config(engine.store.get(child))
    assert config["created"] == "1970-01-01T00:16:40Z"
    assert config["history"][-1]["created"] == "1970-01-01T00:16:40Z"
