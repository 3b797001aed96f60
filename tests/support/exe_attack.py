"""The CVE-2019-5736 attack on Barque's runtime, for tests: a copy of the interpreter that only
the runtime under test runs, the attack programs (exe_attack/*.c) and a hostile root.

The copy is a `venv --copies` whose bin holds Barque's launchers and C programs, with a .pth
naming this worktree: `$here/python3` of the launcher is then the copy, never the host's
interpreter, so a successful attack only ever damages the copy.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time

from tests.support.tools import require

SOURCES = os.path.join(os.path.dirname(__file__), "exe_attack")
LOG = "/tmp/attack.log"  # in the container
PROGRAMS = ("barque-runtime", "barque", "barque-monitor", "barque-sealexec", "barque-runtime-fast")


class Interpreter:
    """A private copy of the interpreter with Barque's programs beside it."""

    def __init__(self, venv: str) -> None:
        self.venv = venv
        self.bin = os.path.join(venv, "bin")
        self.python = os.path.join(self.bin, "python3")
        self.runtime = os.path.join(self.bin, "barque-runtime")
        self.barque = os.path.join(self.bin, "barque")
        self.digest = self.sha256()

    def sha256(self) -> str:
        with open(self.python, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def contains(self, marker: str) -> bool:
        with open(self.python, "rb") as f:
            return marker.encode() in f.read()

    def assert_intact(self, marker: str) -> None:
        assert not self.contains(marker), "the attack wrote into the runtime's interpreter"
        assert self.sha256() == self.digest, "the runtime's interpreter changed"


def interpreter_copy(dest: str, sealexec: bool = True) -> Interpreter:
    """A venv --copies at dest running this worktree's Barque; sealexec False leaves the
    sealing helper out (the runtime must then seal itself)."""
    subprocess.run([sys.executable, "-m", "venv", "--copies", "--without-pip", dest],
                   check=True, capture_output=True)
    ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = os.path.join(dest, "lib", ver, "site-packages")
    worktree = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import site as site_module

    with open(os.path.join(site, "barque-under-test.pth"), "w") as f:
        # This worktree first, then the test interpreter's packages (the CLI's dependencies).
        f.write("\n".join([worktree, *site_module.getsitepackages()]) + "\n")
    from tests.conftest import runtime_binary

    beside = os.path.dirname(runtime_binary())
    for name in PROGRAMS:
        if name == "barque-sealexec" and not sealexec:
            continue
        src = os.path.join(beside, name)
        if os.path.exists(src):
            shutil.copy2(src, os.path.join(dest, "bin", name))
    return Interpreter(dest)


class Tools:
    """The attack programs, built once into a directory."""

    def __init__(self, where: str) -> None:
        require("gcc")
        os.makedirs(where, exist_ok=True)
        self.dir = where
        self.attack = os.path.join(where, "attack")
        _cc(["-static", "-o", self.attack, os.path.join(SOURCES, "attack.c")])

    def hostile_lib(self, seconds: float, marker: str, background: bool) -> str:
        """The hostile libpython, its attack's arguments compiled in."""
        args = [str(seconds), LOG, marker] + (["bg"] if background else [])
        out = os.path.join(self.dir, f"libpython-{len(os.listdir(self.dir))}.so")
        define = "-DATTACK_ARGS=" + ", ".join(f'"{a}"' for a in args)
        _cc(["-shared", "-fPIC", define, "-o", out, os.path.join(SOURCES, "lib.c")])
        return out


def _cc(args: list[str]) -> None:
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", *args], check=True,
                   capture_output=True)


def add_attack(rootfs: str, tools: Tools) -> None:
    shutil.copy2(tools.attack, os.path.join(rootfs, "attack"))


def make_hostile(rootfs: str, interpreter: Interpreter, lib: str, tools: Tools) -> str:
    """Give rootfs what re-executing the interpreter inside it needs (its dynamic loader and
    C library, copied) with lib where it looks for libpython, the attack program, and a
    `#!/proc/self/exe` script; return the script's path in the container."""
    add_attack(rootfs, tools)
    out = subprocess.run(["ldd", interpreter.python], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        m = re.match(r"\s*(\S+)(?: => (\S+))? \(0x", line)
        if not m or not (m.group(2) or m.group(1)).startswith("/"):
            continue  # the vDSO
        path = m.group(2) or m.group(1)
        inside = os.path.join(rootfs, path.lstrip("/"))
        os.makedirs(os.path.dirname(inside), exist_ok=True)
        shutil.copy(lib if m.group(1).startswith("libpython") else path, inside)
    with open(os.path.join(rootfs, "evil.sh"), "w") as f:
        f.write("#!/proc/self/exe\n")
    os.chmod(os.path.join(rootfs, "evil.sh"), 0o755)
    return "/evil.sh"


def wait_for_log(read: object, timeout: float = 20) -> str:
    """The attack's log once it ended (success or time up); read() returns it so far."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = read()  # type: ignore[operator]
        if "WROTE" in text or "done caught" in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"the attack did not end in {timeout}s; its log: {text!r}")


def read_file(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""
