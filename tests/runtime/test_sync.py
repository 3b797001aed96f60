"""The runtime's message pipe: how a forked stage reports why it failed."""

from __future__ import annotations

from barque.runtime.errors import RuntimeFailure
from barque.runtime.sync import pipe_pair


def test_a_failure_reaches_the_runtime_in_its_words_and_code() -> None:
    reader, writer = pipe_pair()
    try:
        writer.send_failure(RuntimeFailure("exec failed: no such file", 127), "exec set-up")
        writer.send_failure(ValueError("bad fd"), "exec set-up")
        assert reader.recv() == {"op": "error", "message": "exec failed: no such file",
                                 "code": 127}
        assert reader.recv() == {"op": "error", "message": "exec set-up: bad fd", "code": 1}
    finally:
        reader.close()
        writer.close()
