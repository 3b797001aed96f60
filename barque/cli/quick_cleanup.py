"""`barque container cleanup` with nothing to clean up, answered before the CLI is imported
(that alone is ~60 ms of CPU): the monitor's exit command for a container that `rm -f` (or an
attached CLI that died after its clean-up) removed already, or that a newer start owns.
Imports nothing but the engine's paths: bin/barque-runtime calls it first for this one command
line."""

import os

from barque.engine.paths import Paths


def nothing_to_do(argv: list[str]) -> bool:
    """True if the command line is the exit command's own (engine/monitor.cleanup_command:
    --root R --runroot RR container cleanup --run-id RUN ID) and `cleanup` would find nothing
    of RUN's to do: the container's dir is gone, or its monitor dir is a later start's. Else
    False: the full command decides (under the container's lock)."""
    if len(argv) != 9 or argv[0] != "--root" or argv[2] != "--runroot" or \
            argv[4:7] != ["container", "cleanup", "--run-id"]:
        return False
    paths, run_id, cid = Paths(argv[1], argv[3]), argv[7], argv[8]
    if not cid or "/" in cid or cid.startswith("."):
        return False
    if not os.path.isdir(paths.container_dir(cid)):
        return True  # removed (cleanup's lock would say "No such container")
    try:
        with open(paths.run_id_file(cid)) as f:
            current = f.read().strip()
    except OSError:
        return False
    return bool(current) and current != run_id  # started again: the files are not RUN's
