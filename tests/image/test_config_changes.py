"""`--change` instructions on an image's container config (barque/image/config_changes.py)."""

from __future__ import annotations

import pytest

from barque.image.config_changes import ChangeError, apply_changes


def test_changes_shell_and_exec_forms() -> None:
    cfg = apply_changes(None, ["CMD ls -l", 'ENTRYPOINT ["/bin/app", "--x"]'])
    assert cfg == {"Cmd": ["/bin/sh", "-c", "ls -l"], "Entrypoint": ["/bin/app", "--x"]}
    # A new ENTRYPOINT drops an inherited CMD, as Docker's builder does.
    assert apply_changes({"Cmd": ["sh"]}, ["ENTRYPOINT top"]) == {
        "Cmd": None, "Entrypoint": ["/bin/sh", "-c", "top"]}


def test_changes_env_label_and_expansion() -> None:
    cfg = apply_changes({"Env": ["PATH=/bin"]}, [
        # Within one ENV, expansions see the variables as they were before it (Docker's rule).
        'ENV A=1 B="two words" C=$A', "ENV D=$A${A}x", "ENV legacy some value", "ENV A=3",
        'LABEL a=b "c d"=e', "USER ${B:-nobody}", "WORKDIR app", "WORKDIR sub/.."])
    assert cfg["Env"] == ["PATH=/bin", "B=two words", "C=", "D=11x", "legacy=some value",
                          "A=3"]
    assert cfg["Labels"] == {"a": "b", "c d": "e"}
    assert cfg["User"] == "two words"
    assert cfg["WorkingDir"] == "/app"


def test_changes_ports_volumes_signal_onbuild_healthcheck() -> None:
    cfg = apply_changes(None, [
        "EXPOSE 80 53/udp 8000-8001", 'VOLUME ["/data"]', "VOLUME /a /b", "STOPSIGNAL SIGINT",
        "ONBUILD RUN make", "HEALTHCHECK --interval=1m30s --retries=2 CMD curl -f x"])
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}
    assert cfg["Volumes"] == {"/data": {}, "/a": {}, "/b": {}}
    assert cfg["StopSignal"] == "SIGINT"
    assert cfg["OnBuild"] == ["RUN make"]
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "curl -f x"], "Interval": 90 * 10**9,
                                  "Retries": 2}
    assert apply_changes(None, ["HEALTHCHECK NONE"])["Healthcheck"] == {"Test": ["NONE"]}


@pytest.mark.parametrize("change,message", [
    ("RUN make", "run is not a valid change command"),
    ("FROM busybox", "from is not a valid change command"),
    ("NOSUCH x", "nosuch is not a valid change command"),
    ("ENV A", "ENV must have two arguments"),
    ("ENV A=b C", "can't find = in \"C\""),
    ("EXPOSE 70000", "invalid containerPort"),
    ("STOPSIGNAL SIGNOPE", "Invalid signal: SIGNOPE"),
    ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD"),
    ("WORKDIR", "WORKDIR requires exactly one argument"),
    ("HEALTHCHECK --bogus=1 CMD x", "unknown flag: --bogus"),
    ('ENV A="unterminated', "matching double-quote"),
])
def test_changes_refused(change: str, message: str) -> None:
    with pytest.raises(ChangeError, match=message):
        apply_changes(None, [change])
