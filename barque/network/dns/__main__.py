"""`python -m barque.network.dns --root R --runroot RR`: the resolver for one runroot.

Started detached by client.register through barque.network.service, which hands it the
locked pid file (`--pid-fd`) and a pipe it tells "ok" once its control socket listens, or the
reason it could not start (`--ready-fd`). Started by hand it runs in the foreground."""

from __future__ import annotations

import os
import sys

from barque.network import service


def main(argv: list[str] | None = None) -> int:
    args = service.parse_args("barque.network.dns", argv)

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
