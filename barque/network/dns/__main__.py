"""`python -m barque.network.dns --root R --runroot RR`: the resolver for one runroot.

Started detached by client.register through barque.network.service, which hands it the
locked pid file (`--pid-fd`) and a pipe it tells "ok" once its control socket listens, or the
reason it could not start (`--ready-fd`). Started by hand it runs in the foreground."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m barque.network.dns")
    parser.add_argument("--root", required=True)
    parser.add_argument("--runroot", required=True)
    parser.add_argument("--pid-fd", type=int, help="the pid file, locked by the starter")
    parser.add_argument("--ready-fd", type=int, help="told 'ok' once it listens")
    args = parser.parse_args(argv)

    import asyncio

    from barque.network.dns.server import serve

    try:
        asyncio.run(serve(os.path.abspath(args.root), os.path.abspath(args.runroot),
                          args.ready_fd, pid_fd=args.pid_fd))
    except Exception as e:
        if args.ready_fd is None:
            print(f"barque dns: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
