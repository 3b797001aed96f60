"""The stage graph (stages.py) and the image config each instruction makes
(imageconfig.py), without a kernel."""

from __future__ import annotations

import pytest

from barque.build import imageconfig as ic
from barque.build.dockerfile.parser import parse
from barque.build.stages import StageError, meta_scope, plan, platform_args

HOST = {"os": "linux", "architecture": "amd64"}


def _plan(text: str, target: str | None = None, args: dict[str, str] | None = None
          ) -> list[tuple[int, str, str, set[int]]]:
    df = parse(text)
    scope = meta_scope(df, args or {}, platform_args(None, HOST))
    return [(p.stage.index, p.prefix, p.base, p.deps) for p in plan(df, target, scope)]


def test_only_needed_stages_in_order() -> None:
    text = ("FROM busybox AS a\nFROM busybox AS b\nRUN true\n"
            "FROM a AS c\nCOPY --from=b /x /x\nFROM scratch AS d\n")
    assert _plan(text, "c") == [(0, "a ", "busybox", set()), (1, "b ", "busybox", set()),
                                (2, "c ", "a", {0, 1})]
    assert _plan(text) == [(3, "d ", "scratch", set())]
    assert [p[0] for p in _plan(text, "b")] == [1]


def test_from_by_index_and_run_mount_from() -> None:
    text = ("FROM busybox\nFROM busybox\nFROM busybox\n"
            "RUN --mount=type=bind,from=1,target=/m true\n")
    assert _plan(text)[-1][3] == {1}
    assert [p[0] for p in _plan(text)] == [1, 2]
    with pytest.raises(StageError, match="circular dependency"):
        _plan("FROM busybox\nCOPY --from=0 /a /b\n")


def test_meta_args_expand_from_and_build_args_win() -> None:
    text = "ARG BASE=busybox\nARG TAG=${BASE}-x\nFROM $BASE AS one\nFROM ${TAG}\n"
    assert [p[2] for p in _plan(text, "one")] == ["busybox"]
    assert [p[2] for p in _plan(text, None)] == ["busybox-x"]
    assert _plan(text, "one", {"BASE": "alpine"})[0][2] == "alpine"


def test_unknown_target_and_single_stage_prefix() -> None:
    with pytest.raises(StageError, match='target stage "nope" could not be found'):
        _plan("FROM busybox AS a\n", "nope")
    assert _plan("FROM busybox\n") == [(0, "", "busybox", set())]


def test_platform_args() -> None:
    args = platform_args("linux/arm64/v8", HOST)
    assert args["TARGETPLATFORM"] == "linux/arm64/v8" and args["TARGETARCH"] == "arm64"
    assert args["BUILDPLATFORM"] == "linux/amd64" and args["BUILDOS"] == "linux"


def _state(**args: str) -> ic.StageState:
    return ic.StageState({"config": {"Env": [ic.DEFAULT_PATH]}}, build_args=dict(args),
                         meta_args={"META": "m"})


def _apply(state: ic.StageState, text: str) -> str | None:
    [instr] = parse("FROM x\n" + text + "\n").stages[0].instructions
    return ic.apply(state, instr)


def test_config_changes_and_history_texts() -> None:
    s = _state(V="from-cli")
    assert _apply(s, "ARG V=default") == "ARG V=default"  # the value: --build-arg's
    assert _apply(s, "ARG META") == "ARG META"
    assert _apply(s, "ENV A=$V B=${META}") == "ENV A=from-cli B=m"
    assert s.cfg["Env"][-2:] == ["A=from-cli", "B=m"]
    assert _apply(s, "WORKDIR /srv") == "WORKDIR /srv"
    assert _apply(s, "WORKDIR app/$A") == "WORKDIR /srv/app/from-cli"
    assert _apply(s, "USER nobody") == "USER nobody"
    assert _apply(s, "EXPOSE 80 53/udp") == "EXPOSE map[53/udp:{} 80/tcp:{}]"
    assert _apply(s, 'CMD ["a", "b"]') == 'CMD ["a" "b"]'
    assert _apply(s, 'SHELL ["/bin/bash", "-c"]') == "SHELL [/bin/bash -c]"
    assert _apply(s, "ENTRYPOINT run me") == 'ENTRYPOINT ["/bin/bash" "-c" "run me"]'
    assert s.cfg["Cmd"] == ["a", "b"]  # set in this stage: ENTRYPOINT keeps it
    assert _apply(s, "STOPSIGNAL SIGTERM") == "STOPSIGNAL SIGTERM"
    with pytest.raises(ic.ConfigError, match="Invalid signal"):
        _apply(s, "STOPSIGNAL SIGNOPE")
    # A RUN sees ENV, and the ARGs ENV does not set; its history names the ARGs.
    env = s.run_env()
    assert "A=from-cli" in env and "V=from-cli" in env and "META=m" in env
    assert ic.run_created_by(s, ["/bin/sh", "-c", "x"], False) == (
        "RUN |2 META=m V=from-cli /bin/sh -c x # buildkit")


def test_entrypoint_drops_inherited_cmd() -> None:
    s = ic.StageState({"config": {"Cmd": ["sh"]}})
    _apply(s, 'ENTRYPOINT ["/bin/true"]')
    assert s.cfg["Cmd"] is None and s.cfg["Entrypoint"] == ["/bin/true"]
