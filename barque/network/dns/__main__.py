"""`python -m barque.network.dns --root R --runroot RR`: the resolver for one runroot.

It detaches itself: the process started exits once the resolver (its child, in a session of
its own, stdio on /dev/null) listens on its control socket — 0 then, else 1 with the reason on
stderr — so whoever starts it knows it is ready and never has to reap it."""

from __future__ import annotations

import argparse
import os
import sys


def _detach(read_end: int, write_end: int) -> None:
    """Fork; the parent waits for the child's word and exits with it."""
    if os.fork() > 0:
        os.close(write_end)
        word = b""
        while chunk := os.read(read_end, 4096):
            word += chunk
        if word.startswith(b"ok"):
            os._exit(0)
        sys.stderr.write(word.decode(errors="replace") or "the DNS resolver died starting\n")
        sys.stderr.flush()
        os._exit(1)
    os.close(read_end)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    os.chdir("/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m barque.network.dns")
    parser.add_argument("--root", required=True)
    parser.add_argument("--runroot", required=True)
    parser.add_argument("--foreground", action="store_true", help="do not detach")
    args = parser.parse_args(argv)
    ready: int | None = None
    if not args.foreground:
        read_end, ready = os.pipe()
        _detach(read_end, ready)

    import asyncio

    from barque.network.dns.server import serve

    try:
        asyncio.run(serve(os.path.abspath(args.root), os.path.abspath(args.runroot), ready))
    except Exception as e:
        if args.foreground:
            print(f"barque dns: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
