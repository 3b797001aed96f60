"""The builder's gaps found after its first version: ONBUILD in the step count, RUN in a
stage of another platform, COPY --link --chown by name, the context bind mount without
what .dockerignore excludes, the cache's in-use records and cache mounts as records."""

from __future__ import annotations

import os

import pytest

from barque.build.dockerfile.parser import parse
from barque.build.options import BuildOptions
from barque.engine.build import BuildFailed, build_parsed
from barque.engine.context import Engine
from tests.build.conftest import Recorder, image_files
from tests.build.executors import Recording

pytestmark = pytest.mark.root


def _build(engine: Engine, text: str, context: str = "/nonexistent",
           **kw: object) -> tuple[str, Recorder, Recording]:
    events = Recorder()
    executor = Recording(engine)
    kw.setdefault("network", "none")
    options = BuildOptions(context, text.encode(), **kw)  # type: ignore[arg-type]
    result = build_parsed(engine, parse(text), options, events, executor=executor)
    assert result.image_id is not None
    return result.image_id, events, executor


def _failed(engine: Engine, text: str, context: str = "/nonexistent",
            **kw: object) -> tuple[BuildFailed, Recorder, Recording]:
    events = Recorder()
    executor = Recording(engine)
    kw.setdefault("network", "none")
    options = BuildOptions(context, text.encode(), **kw)  # type: ignore[arg-type]
    with pytest.raises(BuildFailed) as info:
        build_parsed(engine, parse(text), options, events, executor=executor)
    return info.value, events, executor


def _write(context: str, name: str, data: str) -> None:
    path = os.path.join(context, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data)


def _owners(engine: Engine, image_id: str) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for lower in reversed(engine.store.lowers(engine.store.get(image_id))):
        for dirpath, _, names in os.walk(lower):
            for name in names:
                st = os.lstat(os.path.join(dirpath, name))
                rel = "/" + os.path.relpath(os.path.join(dirpath, name), lower)
                out[rel] = (st.st_uid, st.st_gid)
    return out


# --- (5) ONBUILD triggers in [stage k/n] ---------------------------------------------------
def test_onbuild_triggers_count_in_the_stage_total(engine: Engine, context: str) -> None:
    _build(engine, "FROM busybox\nONBUILD RUN echo one > /one\nONBUILD ENV X=1\n"
           "ONBUILD WORKDIR /w\n", tags=["trig-base"])
    _, events, _ = _build(engine, "FROM trig-base\nRUN cat /one\n")
    # BuildKit: cmdTotal = FROM + RUN, plus every trigger (3): 5; the ENV shows no step.
    assert [v.name for v in events.steps()] == [
        "[1/5] FROM docker.io/library/trig-base:latest",
        "[2/5] RUN echo one > /one",
        "[3/5] WORKDIR /w",
        "[4/5] RUN cat /one",
    ]


def test_stage_and_scratch_bases_show_no_from_step(engine: Engine, context: str) -> None:
    """BuildKit's cmdTotal counts FROM only for an image; a stage FROM another stage runs
    that stage's ONBUILD instructions first (and counts them)."""
    _write(context, "a.txt", "A")
    text = ("FROM busybox AS base\nONBUILD RUN echo t > /t\nRUN echo b > /b\n"
            "FROM base AS child\nRUN cat /t /b\n"
            "FROM scratch\nCOPY a.txt /\nCOPY --from=child /t /t\n")
    image, events, executor = _build(engine, text, context)
    assert [v.name for v in events.steps()] == [
        "[base 1/2] FROM docker.io/library/busybox:latest",
        "[base 2/2] RUN echo b > /b",
        "[child 1/2] RUN echo t > /t",
        "[child 2/2] RUN cat /t /b",
        "[stage-2 1/2] COPY a.txt /",
        "[stage-2 2/2] COPY --from=child /t /t",
    ]
    assert image_files(engine, image) == {"/a.txt": b"A", "/t": b"t\n"}


# --- (4) RUN in a stage of another platform -----------------------------------------------
def _other_platform() -> str:
    from barque.image.oci_layout import host_platform

    return "linux/arm64" if host_platform()["architecture"] != "arm64" else "linux/amd64"


def test_run_in_a_foreign_platform_stage_fails_as_exec_format_error(
        engine: Engine, context: str) -> None:
    other = _other_platform()
    _write(context, "a.txt", "A")
    err, events, executor = _failed(
        engine, f"FROM --platform={other} busybox\nCOPY a.txt /\nRUN echo ran > /ran\n",
        context)
    assert str(err) == 'process "/bin/sh -c echo ran > /ran" did not complete successfully: ' \
                       "exit code: 1"
    assert executor.runs == []  # never run natively
    logs = b"".join(d for name, _, d in events.logs if " RUN " in name)
    assert b"exec /bin/sh: exec format error" in logs and other.encode() in logs
    # The build's --platform too; COPY-only stages of another platform are fine.
    _, _, executor = _build(engine, "FROM busybox\nCOPY a.txt /\n", context, platform=other)
    err, _, executor = _failed(engine, "FROM busybox\nRUN true\n", platform=other)
    assert "exit code: 1" in str(err) and executor.runs == []
    # A stage built on a foreign one inherits its platform; a native one runs.
    err, _, _ = _failed(engine, f"FROM --platform={other} busybox AS a\nFROM a\nRUN true\n")
    assert "exit code: 1" in str(err)
    _, _, executor = _build(engine, f"FROM --platform={other} busybox AS a\n"
                            "COPY a.txt /\nFROM busybox\nCOPY --from=a /a.txt /b.txt\n"
                            "RUN cat /b.txt\n", context)
    assert len(executor.runs) == 1


# --- (6) COPY --link --chown ---------------------------------------------------------------
def test_copy_link_chown_numeric_root_and_names(engine: Engine, context: str) -> None:
    _write(context, "a.txt", "A")
    image, _, _ = _build(engine, "FROM busybox\nCOPY --link --chown=1234:55 a.txt /n/\n"
                         "COPY --link --chown=root a.txt /r/\n"
                         "COPY --link --chown=7 a.txt /s/\n", context)
    owners = _owners(engine, image)
    assert owners["/n/a.txt"] == (1234, 55)
    assert owners["/r/a.txt"] == (0, 0)
    assert owners["/s/a.txt"] == (7, 7)
    err, _, _ = _failed(engine, "FROM busybox\nCOPY --link --chown=nobody:nogroup a.txt /x/\n",
                        context)
    assert "--chown=nobody:nogroup can not be used with --link" in str(err)
    assert err.line == 2
    # With --chmod BuildKit does not link: names resolve against the stage's files.
    image, _, _ = _build(engine, "FROM busybox\n"
                         "COPY --link --chmod=600 --chown=nobody a.txt /m/\n", context)
    assert _owners(engine, image)["/m/a.txt"] == (65534, 65534)


# --- (1) RUN --mount=type=bind of the context without what .dockerignore leaves out -------
def test_context_bind_mount_hides_what_dockerignore_excludes(engine: Engine,
                                                             context: str) -> None:
    for name in ("a.txt", "secret.txt", "dir/keep", "dir/drop", "dir/sub/deep",
                 "logs/x.log", "Dockerfile"):
        _write(context, name, name)
    os.symlink("secret.txt", os.path.join(context, "link"))
    os.chmod(os.path.join(context, "dir"), 0o750)
    _write(context, ".dockerignore", "secret.txt\ndir\n!dir/keep\nlogs\n")
    text = ("FROM busybox\n"
            "RUN --mount=type=bind,target=/ctx cd /ctx && find . | sort > /seen && "
            "stat -c %a dir > /mode && (cat link 2>/dev/null || echo dangling) > /link\n"
            "RUN --mount=type=bind,rw,target=/ctx cd /ctx && find . | sort > /seen-rw\n"
            "RUN --mount=type=bind,source=dir,target=/d find /d | sort > /seen-dir\n")
    image, _, _ = _build(engine, text, context)
    files = image_files(engine, image)
    expected = b".\n./.dockerignore\n./Dockerfile\n./a.txt\n./dir\n./dir/keep\n./link\n"
    assert files["/seen"] == expected, files["/seen"]
    assert files["/seen-rw"] == expected
    assert files["/seen-dir"] == b"/d\n/d/keep\n"
    assert files["/mode"] == b"750\n" and files["/link"] == b"dangling\n"


# --- (2) in use, (3) cache mounts as records of their own -----------------------------------
WAIT = ("RUN --mount=type=cache,target=/cache --mount=type=bind,target=/ctx "
        "i=0; while [ ! -e /ctx/go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; "
        "echo data > /cache/f; echo done > /done\n")


def _cache(engine: Engine):  # type: ignore[no-untyped-def]
    """The cache as another process (barque system df) sees it: its own connection."""
    from barque.build.cache import BuildCache
    from barque.storage import db

    return BuildCache(db.connect(engine.paths.root, create=False))


def test_in_use_records_and_cache_mounts_while_a_build_runs(engine: Engine,
                                                            context: str) -> None:
    import threading
    import time

    _write(context, "a.txt", "A")
    text = "FROM busybox\nCOPY a.txt /a.txt\n" + WAIT
    errors: list[BaseException] = []

    def build() -> None:
        try:
            _build(engine, text, context)
        except BaseException as e:  # noqa: BLE001 — checked below
            errors.append(e)

    t = threading.Thread(target=build)
    t.start()
    other = _cache(engine)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            usage = other.usage()
            if any(u.type == "exec.cachemount" and u.in_use for u in usage):
                break
            time.sleep(0.05)
        copy = [u for u in usage if u.description.startswith("COPY a.txt")]
        mounts = [u for u in usage if u.type == "exec.cachemount"]
        assert len(copy) == 1 and copy[0].in_use and copy[0].type == "regular"
        assert len(mounts) == 1 and mounts[0].in_use
        assert mounts[0].description.startswith("cached mount /cache from exec /bin/sh -c ")
        # Nothing a running build uses is pruned, even with --all.
        assert [d for d in other.prune(all_entries=True) if d.in_use] == []
        assert any(u.type == "exec.cachemount" for u in other.usage())
    finally:
        _write(context, "go", "")
        t.join(60)
    assert not errors, errors
    usage = other.usage()
    assert not any(u.in_use for u in usage)
    mount = next(u for u in usage if u.type == "exec.cachemount")
    assert mount.size >= 5 and mount.usage_count == 1
    # Prune's filters and keep-storage apply to it as to the other records; without
    # --all it goes (a cache mount is never an image's).
    assert other.prune(until=mount.last_used - 60) == []
    assert other.prune(keep_storage=10**9) == []
    dropped = other.prune()
    assert [d.key for d in dropped if d.type == "exec.cachemount"] == [mount.key]
    assert not any(u.type == "exec.cachemount" for u in other.usage())
    assert os.listdir(os.path.join(engine.paths.root, "build", "cache-mounts")) == []
