"""Built images run as Docker runs them: ENTRYPOINT/CMD combinations, USER, WORKDIR and ENV
carried into `barque run`."""

from __future__ import annotations

import pytest

from barque.build.dockerfile.parser import parse
from barque.build.options import BuildOptions
from barque.engine.build import build_parsed
from barque.engine.context import Engine
from barque.engine.images import ensure_default_image
from barque.engine.paths import Paths
from tests.cli.conftest import Barque, ok

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _build(b: Barque, text: str, tag: str, runtime_bin: str, run_prefix: str) -> str:
    with Engine(Paths(b.root, b.runroot)) as engine:
        ensure_default_image(engine.store)
        # The RUNs on the default bridge (the test root's own, see daemon_json).
        result = build_parsed(engine, parse(text),
                              BuildOptions("/nonexistent", text.encode(), tags=[tag]))
    assert result.image_id
    return result.image_id


@pytest.mark.parametrize(("entrypoint", "cmd", "args", "expected"), [
    ('ENTRYPOINT ["/bin/echo", "e"]', 'CMD ["c"]', [], "e c"),
    ('ENTRYPOINT ["/bin/echo", "e"]', 'CMD ["c"]', ["x"], "e x"),
    ("ENTRYPOINT echo shell-form", 'CMD ["ignored"]', ["ignored too"], "shell-form"),
    ("", "CMD echo $HOME-$GREETING", [], "/root-hello"),
    ("", 'CMD ["echo", "exec"]', [], "exec"),
])
def test_entrypoint_and_cmd(barque: Barque, runtime_bin: str, run_prefix: str,
                            entrypoint: str, cmd: str, args: list[str], expected: str) -> None:
    text = f"FROM busybox\nENV GREETING=hello\n{cmd}\n{entrypoint}\n"
    if "echo $HOME" in cmd:
        text = f"FROM busybox\nENV GREETING=hello HOME=/root\n{cmd}\n"
    _build(barque, text, "ep:test", runtime_bin, run_prefix)
    out = ok(barque.run("run", "--rm", "--network", "none", "ep:test", *args))
    assert out.strip() == expected


def test_user_workdir_env_carried_into_run(barque: Barque, runtime_bin: str,
                                           run_prefix: str) -> None:
    text = ("FROM busybox\nWORKDIR /srv\nRUN echo made > made.txt\nWORKDIR app\n"
            "ENV MODE=prod\nUSER 1000:1000\n"
            'CMD ["sh", "-c", "pwd; id -u; echo $MODE; cat ../made.txt"]\n')
    _build(barque, text, "carry:test", runtime_bin, run_prefix)
    out = ok(barque.run("run", "--rm", "--network", "none", "carry:test"))
    assert out.split() == ["/srv/app", "1000", "prod", "made"]
