"""The detach keys' spec (moby's term.ToBytes) and the watch over typed input."""

from __future__ import annotations

import pytest

from barque.engine.detach_keys import DEFAULT, DetachKeysError, Watch, parse, to_bytes


@pytest.mark.parametrize(("spec", "keys"), [
    ("ctrl-p,ctrl-q", b"\x10\x11"), ("ctrl-a,x", b"\x01x"), ("ctrl-@", b"\x00"),
    ("ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", b"\x1b\x1c\x1d\x1e\x1f"), ("a", b"a"),
    ("X", b"X"), ("DEL", b"\x7f"), ("e,x,i,t", b"exit"),
])
def test_specs(spec: str, keys: bytes) -> None:
    assert to_bytes(spec) == keys


def test_moby_words_for_an_unknown_key() -> None:
    with pytest.raises(DetachKeysError, match="^Unknown character: 'ctrl-1'$"):
        to_bytes("ctrl-p,ctrl-1")
    with pytest.raises(DetachKeysError, match="^Unknown character: ''$"):
        to_bytes(",")  # two empty keys


@pytest.mark.parametrize("spec", ["ctrl-1", "ctrl-A", "ctrl-", "ab", "ctrl-a,", "é",
                                  "meta-q", "ctrl-p ctrl-q"])
def test_bad_specs_in_dockerd_words(spec: str) -> None:
    with pytest.raises(DetachKeysError) as e:
        parse(spec)
    assert str(e.value) == f"Invalid detach keys ({spec}) provided"


def test_default() -> None:
    assert parse("") == parse(None) == DEFAULT == b"\x10\x11"


def _typed(keys: bytes, chunks: list[bytes]) -> tuple[bytes, bool]:
    watch, out = Watch(keys), b""
    for chunk in chunks:
        out += watch.feed(chunk)
        if watch.detached:
            return out, True
    return out, False


@pytest.mark.parametrize(("chunks", "passed", "detached"), [
    ([b"ab\x10\x11cd"], b"ab", True),  # in one read; what follows is dropped
    ([b"a", b"\x10", b"\x11"], b"a", True),  # key by key
    ([b"\x10", b"x"], b"\x10x", False),  # partial: passed on with the key that broke it
    ([b"\x10"], b"", False),  # held until the next key says
    ([b"\x10\x10\x11"], b"\x10", True),  # the breaking key begins it anew
    ([b"\x10\x10", b"q"], b"\x10\x10q", False),
])
def test_watch(chunks: list[bytes], passed: bytes, detached: bool) -> None:
    assert _typed(DEFAULT, chunks) == (passed, detached)


def test_watch_of_one_key() -> None:
    assert _typed(b"z", [b"abzc"]) == (b"ab", True)
    assert _typed(b"\x01x", [b"\x01\x01x"]) == (b"\x01", True)


@pytest.mark.parametrize(("content", "spec"), [
    (None, "ctrl-p,ctrl-q"), ('{"detachKeys": "ctrl-a,x"}', "ctrl-a,x"),
    ('{"auths": {}}', "ctrl-p,ctrl-q"), ('{"detachKeys": ""}', "ctrl-p,ctrl-q"),
    ("not json", "ctrl-p,ctrl-q"), ("[1]", "ctrl-p,ctrl-q"), ('{"detachKeys": 3}',
                                                              "ctrl-p,ctrl-q"),
])
def test_the_docker_cli_config_file(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                    content: str | None, spec: str) -> None:
    from barque.engine.detach_keys import configured

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    if content is not None:
        (tmp_path / "config.json").write_text(content)
    assert configured() == spec
