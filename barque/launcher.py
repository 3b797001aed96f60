"""What bin/barque-runtime runs once it has found Barque: the OCI runtime, or the CLI when
bin/barque passed --barque-cli. It lives here, where Python caches its bytecode, and not in
the launcher script, which Python compiles afresh at every start."""

from __future__ import annotations

import gc
import os
import sys

TYPE_CHECKING = False  # not typing's: see barque/linux/libc.py
if TYPE_CHECKING:
    from collections.abc import Callable


def run() -> None:
    cli = sys.argv[1:2] == ["--barque-cli"]
    if cli:
        del sys.argv[1]
        sys.argv[0] = os.path.join(os.path.dirname(sys.argv[0]), "barque")
        if sys.argv[5:7] == ["container", "cleanup"]:  # the monitor's exit command: often
            from barque.cli.quick_cleanup import nothing_to_do  # moot, told without the CLI

            if nothing_to_do(sys.argv[1:]):
                os._exit(0)
    main = _main(cli)
    # The launcher turned the collector off for the imports (thousands of objects, no garbage
    # cycles: ~0.5 ms of collections); what they made stays out of every later collection
    # (and so out of the pages a forked container init would copy on write).
    gc.freeze()
    gc.enable()
    code = main()
    # Skip the interpreter's teardown (~5 ms of module and object finalisation): nothing is
    # left to clean up but the standard streams' buffers.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        code = code or 1
    os._exit(code)


def _main(cli: bool) -> Callable[[], int]:
    try:
        return _import_main(cli)
    except ImportError:  # a dependency outside the paths the launcher added: site.py's job
        import site

        site.main()
        return _import_main(cli)


def _import_main(cli: bool) -> Callable[[], int]:
    if cli:
        from barque.cli import main as cli_main

        return cli_main.main
    from barque.runtime import cli as runtime_cli

    return runtime_cli.main
