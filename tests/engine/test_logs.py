"""engine.logs.container_logs (`docker logs`, GET /containers/{id}/logs) and --tail's rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from barque.engine import logs
from barque.engine.context import Engine, EngineError, Paths
from tests.cli.conftest import Barque, ok
from tests.support.marks import needs_busybox


@pytest.mark.parametrize("text", ["2026-12-05T15:35:08.123456789Z", "0001-01-01T00:00:00Z",
                                  "2024-02-29T23:59:59Z", "1970-01-01T00:00:00.5",
                                  "2024-1-5T1:2:3Z", "2024-01-05T01:02:03"])
def test_parse_time_as_strptime(text: str) -> None:
    """The fast path (Barque's own times) gives strptime's answer; other forms go to it."""
    main, _, frac = text.rstrip("Z").partition(".")
    stamp = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    assert logs.parse_time(text) == stamp.timestamp() + (float("0." + frac) if frac else 0.0)


@pytest.mark.parametrize("text", ["2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
                                  "2024-01-01T24:00:00Z", "2024-01-01T00:00:60Z",
                                  "2024-01-01T00:00:0xZ", ""])
def test_parse_time_refuses_what_strptime_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        logs.parse_time(text)


def test_parse_tail() -> None:
    assert logs.parse_tail("all") is None and logs.parse_tail("") is None
    assert logs.parse_tail("3") == 3 and logs.parse_tail("0") == 0
    assert logs.parse_tail("-1") is None
    with pytest.raises(ValueError, match='invalid value for "tail": "x"'):
        logs.parse_tail("x")


@pytest.mark.root
@needs_busybox
def test_container_logs(barque: Barque) -> None:
    b = barque
    ok(b.run("run", "--name", "talker", "busybox", "sh", "-c",
             "echo one; echo two >&2; echo three"))
    try:
        with Engine(Paths(b.root, b.runroot)) as engine:
            entries = list(logs.container_logs(engine, "talker"))
            assert sorted((e.stream, e.text) for e in entries) == [
                ("stderr", b"two\n"), ("stdout", b"one\n"), ("stdout", b"three\n")]
            last = list(logs.container_logs(engine, "talker", tail=1))
            assert len(last) == 1 and last[0].text in (b"three\n", b"two\n")
            # follow on a stopped container: what there is, then the end
            assert len(list(logs.container_logs(engine, "talker", follow_=True))) == 3
            assert list(logs.container_logs(engine, "talker", since=entries[-1].seconds + 1)) \
                == []
            with pytest.raises(EngineError, match="No such container"):
                logs.container_logs(engine, "nothere")  # at the call, not when read
    finally:
        b.run("rm", "-f", "talker")
