"""Finding Barque's own programs (barque-runtime, barque-monitor): an environment variable
naming one (a path or a name on PATH), else the one beside this Python's scripts (a venv need
not be on PATH), else PATH."""

from __future__ import annotations

import os
import shutil
import sys


def find(name: str, env_var: str) -> str:
    """The program's path; LookupError saying what is missing."""
    wanted = os.environ.get(env_var)
    if wanted:
        found = shutil.which(wanted)
        if found is None:
            raise LookupError(f'{env_var}: "{wanted}" not found')
        return found
    beside = os.path.join(os.path.dirname(sys.executable), name)
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    if found is None:
        raise LookupError(f'"{name}" not found: is barque installed (scripts/install)?')
    return found
