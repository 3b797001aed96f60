"""What every harness in fuzz/ shares: a byte-driven input provider, a run-prefixed sandbox,
and a driver that runs a target under atheris (coverage-guided) or, without atheris or with
`--iterations N`, under a plain-Python loop of random and mutated inputs.

A target takes the fuzzer's bytes and returns normally when the code under test either
succeeded or raised its documented error; anything else it raises (an undocumented exception,
or an AssertionError from a property check) is a crash.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import os
import random
import shutil
import signal
import stat
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # `python fuzz/x.py` from a checkout, installed or not

T = TypeVar("T")
CRASH_DIR = os.path.join(ROOT, "fuzz", "crashes")


class Provider:
    """Structured values drawn from fuzzer bytes (atheris's FuzzedDataProvider, in Python so
    that one input means the same thing under atheris and the fallback). Past the end of the
    data every draw returns its smallest value, so every input is a complete, valid draw."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def bytes(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def int(self, lo: int, hi: int) -> int:
        """An int in [lo, hi]."""
        span = hi - lo
        if span <= 0:
            return lo
        width = (span.bit_length() + 7) // 8
        return lo + int.from_bytes(self.bytes(width).ljust(width, b"\0"), "little") % (span + 1)

    def bool(self) -> bool:
        return self.int(0, 1) == 1

    def chance(self, percent: int) -> bool:
        return self.int(0, 99) < percent

    def pick(self, items: Sequence[T]) -> T:
        return items[self.int(0, len(items) - 1)]

    def blob(self, max_len: int) -> bytes:
        return self.bytes(self.int(0, max_len))

    def text(self, max_len: int, alphabet: str | None = None) -> str:
        if alphabet is not None:
            return "".join(self.pick(alphabet) for _ in range(self.int(0, max_len)))
        return self.blob(max_len).decode("utf-8", "surrogateescape")


# --- the sandbox -------------------------------------------------------------------------

_SANDBOX: list[str] = []


def sandbox() -> str:
    """This process's scratch dir (run-prefixed: bqfuzz<pid>-), removed at exit."""
    if not _SANDBOX:
        path = tempfile.mkdtemp(prefix=f"bqfuzz{os.getpid()}-")
        _SANDBOX.append(path)
        atexit.register(shutil.rmtree, path, True)
    return _SANDBOX[0]


def snapshot(root: str, skip: str | None = None) -> dict[str, tuple[Any, ...]]:
    """Every path under `root` but `skip` and what is under it (symlinks not followed): type,
    mode, owner, size, mtime, link target. A directory's size and mtime are left out: the
    target's parent changes them by holding the target (its entries are compared anyway)."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if skip is not None and (path == skip or path.startswith(skip + "/")):
                continue
            st = os.lstat(path)
            link = os.readlink(path) if os.path.islink(path) else None
            is_dir = stat.S_ISDIR(st.st_mode)
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_uid, st.st_gid,
                                                None if is_dir else st.st_size,
                                                None if is_dir else st.st_mtime_ns, st.st_ino,
                                                link)
    return out


# --- running -----------------------------------------------------------------------------

def _mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(5)
        if op == 0 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 1:
            pos = rng.randint(0, len(buf))
            buf[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif op == 2 and buf:
            start = rng.randrange(len(buf))
            del buf[start:start + rng.randint(1, 16)]
        elif op == 3 and buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        else:
            buf += rng.randbytes(rng.randint(1, 64))
    return bytes(buf)


def _save_crash(name: str, data: bytes) -> str:
    os.makedirs(CRASH_DIR, exist_ok=True)
    path = os.path.join(CRASH_DIR, f"{name}-{hashlib.sha256(data).hexdigest()[:16]}")
    with open(path, "wb") as f:
        f.write(data)
    return path


class Hang(Exception):
    """An input ran past the driver's per-input time limit: a hang counts as a crash."""


def _alarm(signum: int, frame: object) -> None:
    raise Hang("the input ran longer than the time limit")


def _fallback(name: str, target: Callable[[bytes], None], iterations: int, seed: int,
              max_len: int, timeout: float) -> int:
    signal.signal(signal.SIGALRM, _alarm)
    rng = random.Random(seed)
    corpus: list[bytes] = [b""]
    crashes: dict[str, str] = {}
    start = time.monotonic()
    for i in range(iterations):
        if rng.random() < 0.3 or len(corpus) == 1:
            data = rng.randbytes(rng.randint(0, max_len))
        else:
            data = _mutate(rng.choice(corpus), rng)[:max_len]
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            target(data)
        except Exception as e:
            tb = traceback.format_exc()
            frame = traceback.extract_tb(e.__traceback__)[-1]
            where = f"{type(e).__name__} at {frame.filename}:{frame.lineno}"
            if where not in crashes:
                crashes[where] = _save_crash(name, data)
                sys.stderr.write(f"\n=== crash at input {i}: saved to {crashes[where]}\n{tb}")
            continue
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if len(corpus) < 256 and rng.random() < 0.1:
            corpus.append(data)
    took = time.monotonic() - start
    print(f"{name}: {iterations} inputs fuzzed in {took:.1f} s, {len(crashes)} distinct "
          f"crash(es)")
    return 1 if crashes else 0


def _replay(target: Callable[[bytes], None], paths: list[str]) -> int:
    for path in paths:
        with open(path, "rb") as f:
            target(f.read())
        print(f"{path}: no crash")
    return 0


def main(name: str, target: Callable[[bytes], None], max_len: int = 4096) -> None:
    """`python fuzz/NAME.py [libFuzzer flags] [corpus dirs]` runs atheris;
    `--iterations N [--seed S]` (or no atheris) runs the plain-Python loop;
    `--replay FILE...` runs the target once per saved input."""
    parser = argparse.ArgumentParser(prog=f"fuzz/{name}.py", add_help=False)
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replay", nargs="+")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per input")
    ours, rest = parser.parse_known_args()
    if ours.replay:
        sys.exit(_replay(target, ours.replay))
    try:
        import atheris
    except ImportError:
        atheris = None
    if ours.iterations is not None or atheris is None:
        if atheris is None and ours.iterations is None:
            print("atheris is not installed (pip install atheris): running 10000 plain-Python "
                  "iterations", file=sys.stderr)
        sys.exit(_fallback(name, target, ours.iterations or 10000, ours.seed, max_len,
                           ours.timeout))
    if not any(a.startswith("-max_len=") for a in rest):
        rest.append(f"-max_len={max_len}")
    if not any(a.startswith("-artifact_prefix=") for a in rest):
        os.makedirs(CRASH_DIR, exist_ok=True)
        rest.append(f"-artifact_prefix={CRASH_DIR}/{name}-")
    if not any(a.startswith("-len_control=") for a in rest):
        rest.append("-len_control=0")  # full-size inputs from the start: structure needs bytes
    if not any(a.startswith("-timeout=") for a in rest):
        rest.append(f"-timeout={int(ours.timeout)}")
    atheris.Setup([sys.argv[0], *rest], target)
    atheris.Fuzz()


def instrumented() -> Any:
    """A context manager for the harness's imports: atheris instruments them for coverage
    when it is installed and a harness of fuzz/ is the program run (not when the tests
    import a harness's checks), else a no-op."""
    import contextlib

    main_file = getattr(sys.modules.get("__main__"), "__file__", None) or ""
    if os.path.dirname(os.path.abspath(main_file)) != os.path.join(ROOT, "fuzz"):
        return contextlib.nullcontext()
    try:
        import atheris
    except ImportError:
        return contextlib.nullcontext()
    return atheris.instrument_imports()
