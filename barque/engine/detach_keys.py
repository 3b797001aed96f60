"""Docker's detach keys: the key sequence (ctrl-p,ctrl-q unless told) that, typed on an
attached terminal, ends the attach and leaves the container running.

The spec is moby's `term.ToBytes`: comma-separated keys, each a single character or one of
"ctrl-@", "ctrl-a".."ctrl-z", "ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_" (and "DEL").
The watch is byte by byte across reads (as moby/term's escape proxy since 0.5): a sequence
typed key by key or arriving in one read detaches alike."""

from __future__ import annotations

DEFAULT_SPEC = "ctrl-p,ctrl-q"
DEFAULT = b"\x10\x11"

_CTRL = "@abcdefghijklmnopqrstuvwxyz[\\]^_"  # ctrl-X is the index: 0..31


class DetachKeysError(ValueError):
    pass


def to_bytes(spec: str) -> bytes:
    """The bytes of a spec; DetachKeysError in moby's words for a key it does not know."""
    codes = bytearray()
    for key in spec.split(","):
        if len(key.encode()) == 1:
            codes += key.encode()
        elif key.startswith("ctrl-") and len(key) == 6 and key[5] in _CTRL:
            codes.append(_CTRL.index(key[5]))
        elif key == "DEL":
            codes.append(127)
        else:
            raise DetachKeysError(f"Unknown character: '{key}'")
    return bytes(codes)


def invalid(spec: str) -> str:
    """dockerd's words for a spec it refuses (the attach's or exec's 400)."""
    return f"Invalid detach keys ({spec}) provided"


def invalid_exec(spec: str) -> str:
    """dockerd's words at exec create (its own, not the attach's)."""
    return f"Invalid escape keys ({spec}) provided"


def parse(spec: str | None) -> bytes:
    """The sequence for a spec as the API and CLI take it: empty or None is the default;
    DetachKeysError in dockerd's words otherwise."""
    if not spec:
        return DEFAULT
    try:
        return to_bytes(spec)
    except DetachKeysError:
        raise DetachKeysError(invalid(spec)) from None


def configured() -> str:
    """The docker CLI's default: `detachKeys` of its config file ($DOCKER_CONFIG/config.json,
    else ~/.docker/config.json, the file barque.registry.auth keeps credentials in), else
    Docker's own; an unreadable file is no setting. Read here with json alone: importing the
    registry's module would cost every attached `run` milliseconds."""
    import json
    import os

    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"),
                                                                  ".docker")
    try:
        with open(os.path.join(directory, "config.json"), "rb") as f:
            value = json.load(f).get("detachKeys")
    except (OSError, ValueError, AttributeError):
        return DEFAULT_SPEC
    return value if isinstance(value, str) and value else DEFAULT_SPEC


class Watch:
    """The sequence looked for in a stream of input. feed() gives what to pass on: a key
    that may begin the sequence is held back until the next says whether it does (a partial
    sequence is then passed on whole, with the key that broke it)."""

    def __init__(self, keys: bytes = DEFAULT) -> None:
        self.keys = keys
        self.held = 0  # how many of keys have matched so far
        self.detached = False

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        i = 0
        while i < len(data):
            if not self.held:  # the common case: to the next first key, at C speed
                j = data.find(self.keys[0], i)
                if j < 0:
                    out += data[i:]
                    break
                out += data[i:j]
                self.held, i = 1, j + 1
            elif data[i] == self.keys[self.held]:
                self.held += 1
                i += 1
            else:  # a partial sequence: passed on; the breaking key may begin it anew
                out += self.keys[:self.held]
                self.held = 0
                continue
            if self.held == len(self.keys):
                self.detached = True  # what follows the sequence is dropped
                self.held = 0
                return bytes(out)
        return bytes(out)
