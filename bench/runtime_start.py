#!/usr/bin/env python3
"""Wall and CPU time of `<runtime> --root R run --bundle B ID` for a container running `true`.

barque-runtime is measured beside Debian's runc and crun (where installed and working) on one
busybox bundle, interleaved round-robin so that drift in machine load hits every runtime
equally, plus two floors for context: the bare Python start barque-runtime's launcher pays
(`python3 -I -S -c pass`) and the bare Go start runc pays (`runc --version`); with `--floor`, a
third: bench/python_floor.py, the least a runtime whose create path is Python can do.

The modes a caller meets: back to back (the default), from quiet (`--pause MS` before each
run), one runtime alone (`--alone`: all of one runtime's runs, then the next's, nothing
interleaved), containerd's sequence (`--lifecycle`: `create --pid-file`, `start`, the
container's exit reaped by this process as a shim reaps it, `delete`, timed as one), and
under load (`--load N` busy loops). CPU time is every process's user+system time, from
wait4(2): the runtime's and all it forked, the container's included (this process is a
subreaper, so nothing escapes the count).

Run as root from the repository: `python3 bench/runtime_start.py --runs 50` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

# Shared with the benches beside Docker (bench/ is this script's sys.path[0]).
from netpeers import (
    become_subreaper,
    loadavg,
    mounts_under,
    progress,
    raise_interrupt,
    signals_ignored,
)

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "bench" / "out"
RUN_TIMEOUT_S = 30.0

Sink = IO[bytes] | int  # where a child's stderr goes: a file or subprocess.DEVNULL


@dataclass
class Subject:
    """One row of the table: a runtime (runs a container) or a floor (runs a fixed command)."""

    name: str
    argv: list[str]
    state_root: str | None = None
    bundle: str | None = None
    version: str = ""
    error: str | None = None
    samples_ns: list[int] = field(default_factory=list)
    cpu_ns: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def is_runtime(self) -> bool:
        return self.state_root is not None

    def command(self, cid: str) -> list[str]:
        if self.state_root is None or self.bundle is None:
            return list(self.argv)
        return [*self.argv, "--root", self.state_root, "run", "--bundle", self.bundle, cid]

    def lifecycle(self, cid: str, pid_file: str) -> list[list[str]]:
        """containerd's calls: create, start (then the exit is awaited), delete."""
        assert self.state_root is not None and self.bundle is not None
        base = [*self.argv, "--root", self.state_root]
        return [[*base, "create", "--bundle", self.bundle, "--pid-file", pid_file, cid],
                [*base, "start", cid], [*base, "delete", cid]]

    def delete_command(self, cid: str) -> list[str]:
        assert self.state_root is not None
        return [*self.argv, "--root", self.state_root, "delete", "--force", cid]


@dataclass
class Stats:
    median: float
    p10: float
    p90: float
    mean: float
    stdev: float


# ---------------------------------------------------------------------------------------------
# Environment: which binaries, which interpreter, what machine


def find_barque_runtime(explicit: str | None) -> str:
    """The launcher beside this interpreter, else PATH's; never a pyenv shim (a shell script
    that runs `pyenv exec` would add ~100 ms that is not barque-runtime's)."""
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "barque-runtime"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("barque-runtime")
    if found and "/shims/" in found:
        sys.exit(f"barque-runtime on PATH is a shim ({found}): pass --barque /real/path")
    return found or str(REPO / "bin" / "barque-runtime")


def launcher_python(barque: str) -> str:
    """The interpreter bin/barque-runtime execs: python3 (or python) beside it, else PATH's."""
    here = Path(barque).resolve().parent if "/" in barque else None
    for name in ("python3", "python"):
        if here and os.access(here / name, os.X_OK):
            return str(here / name)
    return shutil.which("python3") or sys.executable


def child_env() -> dict[str, str]:
    """The environment every measured command gets. PYTHONDONTWRITEBYTECODE is dropped so a
    Python child never runs without its compiled bytecode."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_barque(python: str, env: dict[str, str]) -> None:
    """Make sure barque's .pyc files exist for the interpreter that will run it."""
    where = "import barque, os; print(os.path.dirname(barque.__file__))"
    out = subprocess.run([python, "-c", where], capture_output=True, text=True, env=env, cwd="/")
    package = out.stdout.strip() if out.returncode == 0 else str(REPO / "barque")
    subprocess.run([python, "-m", "compileall", "-q", package], check=True, env=env)


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no output)"


def version_of(argv: Sequence[str], env: dict[str, str]) -> str:
    """`X version 1.2.3 ...` -> `1.2.3`; the first line otherwise."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"? ({e})"
    line = first_line(out.stdout or out.stderr)
    words = line.split()
    if "version" in words and words.index("version") + 1 < len(words):
        return words[words.index("version") + 1]
    return line


def python_version(python: str, env: dict[str, str]) -> str:
    return version_of([python, "-I", "-S", "-c", "import sys; print('python version', "
                       "sys.version.split()[0])"], env)


def cgroup_layout(mountinfo: str = "/proc/self/mountinfo") -> str:
    """v2 (unified at /sys/fs/cgroup), hybrid (v1 controllers plus a cgroup2 mount) or v1."""
    v1 = v2 = False
    unified_root = False
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            v1 |= fstype == "cgroup"
            v2 |= fstype == "cgroup2"
            unified_root |= fstype == "cgroup2" and fields[4] == "/sys/fs/cgroup"
    if unified_root and not v1:
        return "v2"
    if v1 and v2:
        return "hybrid"
    return "v1" if v1 else ("v2" if v2 else "none")


def barque_commit() -> str:
    """The repository's short HEAD, `+dirty` if the working tree differs from it."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "barque", "bin")
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine_info(python: str, env: dict[str, str]) -> dict[str, Any]:
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "cgroup": cgroup_layout(),
        "python": python_version(python, env),
        "barque": barque_commit(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def machine_line(info: dict[str, Any]) -> str:
    return (f"machine: nproc {info['nproc']}, kernel {info['kernel']}, cgroup {info['cgroup']}, "
            f"python {info['python']}, barque {info['barque']}, {info['date']}")


# ---------------------------------------------------------------------------------------------
# The bundle


def build_bundle(tmp: Path) -> str:
    """A busybox rootfs and runc's default spec running `true`, read-only root as default."""
    sys.path.insert(0, str(REPO))
    from barque.runtime.spec import default_spec
    from tests.support.bundles import make_busybox_rootfs

    bundle = tmp / "bundle"
    make_busybox_rootfs(str(bundle / "rootfs"))
    spec = default_spec()
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["true"]
    spec["root"]["path"] = "rootfs"
    (bundle / "config.json").write_text(json.dumps(spec, indent=2))
    return str(bundle)


def make_subjects(args: argparse.Namespace, tmp: Path, bundle: str, python: str,
                  env: dict[str, str]) -> list[Subject]:
    runtimes = [("barque-runtime", args.barque), ("runc", args.runc), ("crun", args.crun)]
    subjects: list[Subject] = []
    for name, binary in runtimes:
        root = tmp / f"state-{name}"
        root.mkdir(mode=0o700)
        subject = Subject(name, [binary], state_root=str(root), bundle=bundle)
        if shutil.which(binary) is None:
            subject.error = f"not installed ({binary})"
        else:
            subject.version = version_of([binary, "--version"], env)
        subjects.append(subject)
    if args.floor:
        subjects += floor_subjects(tmp, bundle, python, env)
    subjects.append(Subject("python3 -I -S -c pass", [python, "-I", "-S", "-c", "pass"],
                            version=python_version(python, env)))
    subjects.append(Subject("runc --version", [args.runc, "--version"],
                            version=version_of([args.runc, "--version"], env),
                            error=None if shutil.which(args.runc) else "not installed"))
    return subjects


def floor_subjects(tmp: Path, bundle: str, python: str, env: dict[str, str]) -> list[Subject]:
    """bench/python_floor.py, the least a Python create path can do, on the launcher's
    interpreter and on the system's /usr/bin/python3 where that is another build (Debian's
    is built with PGO and LTO, a pyenv one usually without)."""
    script = str(REPO / "bench" / "python_floor.py")
    pythons = [python]
    system = "/usr/bin/python3"
    if os.access(system, os.X_OK) and os.path.realpath(system) != os.path.realpath(python):
        pythons.append(system)
    subjects = []
    for i, interpreter in enumerate(pythons):
        root = tmp / f"state-floor-{i}"
        root.mkdir(mode=0o700)
        name = "python floor" + (f" ({interpreter})" if i else "")
        subjects.append(Subject(name, [interpreter, "-I", "-S", script], state_root=str(root),
                                bundle=bundle, version=python_version(interpreter, env)))
    return subjects


# ---------------------------------------------------------------------------------------------
# Measuring


class RunTimeout(Exception):
    """A measured command ran longer than RUN_TIMEOUT_S."""


def _alarm(signum: int, frame: object) -> NoReturn:
    raise RunTimeout


def timed_run(argv: list[str], env: dict[str, str], stderr: Sink) -> tuple[int, int, int]:
    """(exit status, nanoseconds from spawn to reaped exit, CPU nanoseconds) of one command;
    status -1 on timeout. The CPU time is the command's and its descendants' (wait4's
    rusage), plus any orphan of it that ended meanwhile (reparented here: a subreaper).

    The wait is a blocking wait4. Popen.wait(timeout=...) (and so subprocess.run(timeout=...))
    polls with sleeps doubling from 0.5 ms to 50 ms, which rounds every sample up to the next
    of 0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 63.5, 113.5... ms; the timeout is an interval timer."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, RUN_TIMEOUT_S)
    proc: subprocess.Popen[bytes] | None = None
    start = time.perf_counter_ns()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=stderr, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter_ns() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        return proc.returncode, elapsed, _cpu_ns(usage) + reap_orphans()
    except RunTimeout:
        return -1, time.perf_counter_ns() - start, 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if proc is not None and proc.returncode is None:  # timed out or interrupted
            proc.kill()
            proc.wait()


def _cpu_ns(usage: Any) -> int:
    return int((usage.ru_utime + usage.ru_stime) * 1e9)


def reap_orphans() -> int:
    """CPU nanoseconds of the orphans that ended and were reparented here."""
    total = 0
    while True:
        try:
            pid, _, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return total
        if pid == 0:
            return total
        total += _cpu_ns(usage)


def wait_container(pid: int) -> int:
    """Wait for the container's process (reparented here once `create` exited, as to a
    shim); its CPU nanoseconds. Bounded by the run timeout."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, RUN_TIMEOUT_S)
    try:
        _, _, usage = os.wait4(pid, 0)
        return _cpu_ns(usage)
    except ChildProcessError:  # not ours (not reparented here): wait for it to go
        while os.path.exists(f"/proc/{pid}"):
            time.sleep(0.001)
        return 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Runner:
    """Runs and times commands; remembers every container it may have left, to delete it."""

    def __init__(self, env: dict[str, str], errfile: IO[bytes], token: str) -> None:
        self.env = env
        self.errfile = errfile
        self.token = token
        self.count = 0
        self.pending: list[tuple[Subject, str]] = []
        self.lifecycle = False  # containerd's create/start/delete instead of `run`

    def new_id(self) -> str:
        self.count += 1
        return f"bench-{self.token}-{self.count}"

    def run_once(self, subject: Subject) -> tuple[int, int, str | None]:
        """One timed run: (wall ns, CPU ns, None) or (..., first line of the error)."""
        cid = self.new_id()
        if subject.is_runtime:
            self.pending.append((subject, cid))
        self.errfile.seek(0)
        self.errfile.truncate()
        if subject.is_runtime and self.lifecycle:
            rc, elapsed, cpu = self.containerd_sequence(subject, cid)
        else:
            rc, elapsed, cpu = timed_run(subject.command(cid), self.env, self.errfile)
        if subject.is_runtime:
            self.delete(subject, cid)
        return elapsed, cpu, None if rc == 0 else self.error_text(rc)

    def containerd_sequence(self, subject: Subject, cid: str) -> tuple[int, int, int]:
        """create, start, the container's exit, delete: (status, wall ns, CPU ns)."""
        pid_file = os.path.join(subject.state_root or "", f"{cid}.pid")
        create, start_, delete = subject.lifecycle(cid, pid_file)
        begin = time.perf_counter_ns()
        rc, _, cpu = timed_run(create, self.env, self.errfile)
        if rc == 0:
            with open(pid_file) as f:
                pid = int(f.read())
            os.unlink(pid_file)
            rc, _, cpu_start = timed_run(start_, self.env, self.errfile)
            cpu += cpu_start
            if rc == 0:
                cpu += wait_container(pid)
                rc, _, cpu_delete = timed_run(delete, self.env, self.errfile)
                cpu += cpu_delete
        return rc, time.perf_counter_ns() - begin, cpu + reap_orphans()

    def error_text(self, rc: int) -> str:
        self.errfile.seek(0)
        text = self.errfile.read().decode(errors="replace")
        return first_line(text) if text.strip() else f"exit status {rc}"

    def delete(self, subject: Subject, cid: str) -> None:
        timed_run(subject.delete_command(cid), self.env, subprocess.DEVNULL)
        with contextlib.suppress(ValueError):
            self.pending.remove((subject, cid))

    def delete_pending(self) -> None:
        for subject, cid in list(self.pending):
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self.delete(subject, cid)


def trial(runner: Runner, subjects: list[Subject]) -> None:
    """One untimed run each: a subject that fails it is reported, not measured."""
    for subject in subjects:
        if subject.error is None:
            _, _, error = runner.run_once(subject)
            if error is not None:
                subject.error = f"fails here: {error}"
                progress(f"{subject.name}: {subject.error}")


def round_robin(runner: Runner, subjects: list[Subject], rounds: int, record: bool,
                pause: float = 0.0) -> None:
    """A,B,C,A,B,C...: every round runs each working subject once, each `pause` seconds after
    the previous one ended (its delete included)."""
    working = [s for s in subjects if s.error is None]
    for i in range(rounds):
        for subject in working:
            run_recorded(runner, subject, record, pause)
        if record and (i + 1) % 10 == 0:
            progress(f"round {i + 1}/{rounds}")


def one_by_one(runner: Runner, subjects: list[Subject], rounds: int, record: bool,
               pause: float = 0.0) -> None:
    """A,A,A...,B,B,B...: each runtime alone, all its runs before the next one's."""
    for subject in (s for s in subjects if s.error is None):
        for _ in range(rounds):
            run_recorded(runner, subject, record, pause)
        if record:
            progress(f"{subject.name}: {rounds} runs")


def run_recorded(runner: Runner, subject: Subject, record: bool, pause: float) -> None:
    if pause:
        time.sleep(pause)
    elapsed, cpu, error = runner.run_once(subject)
    if not record:
        return
    if error is None:
        subject.samples_ns.append(elapsed)
        subject.cpu_ns.append(cpu)
    else:
        subject.failures.append(error)


class Load:
    """N busy loops (`--load N`) for the "under load" mode; not reaped as orphans (they are
    this process's own children, running until stop())."""

    def __init__(self, count: int) -> None:
        self.procs = [subprocess.Popen([sys.executable, "-I", "-S", "-c", "while 1: pass"])
                      for _ in range(count)]

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


# ---------------------------------------------------------------------------------------------
# Reporting


def stats(samples_ns: list[int]) -> Stats:
    ms = [s / 1e6 for s in samples_ns]
    if len(ms) < 2:
        return Stats(ms[0], ms[0], ms[0], ms[0], 0.0)
    deciles = statistics.quantiles(ms, n=10, method="inclusive")
    return Stats(statistics.median(ms), deciles[0], deciles[-1], statistics.mean(ms),
                 statistics.stdev(ms))


HEADER = ["runtime", "version", "runs", "median ms", "p10", "p90", "mean", "stdev", "x runc",
          "CPU median ms", "CPU x runc"]


def table_rows(subjects: list[Subject]) -> list[list[str]]:
    runc = next((s for s in subjects if s.name == "runc" and s.samples_ns), None)
    runc_median = stats(runc.samples_ns).median if runc else None
    runc_cpu = statistics.median(runc.cpu_ns) / 1e6 if runc else None
    rows = []
    for s in subjects:
        if not s.samples_ns:
            rows.append([s.name, s.version or "-", s.error or "no successful run"])
            continue
        st = stats(s.samples_ns)
        runs = str(len(s.samples_ns)) + (f" ({len(s.failures)} failed)" if s.failures else "")
        ratio = f"{st.median / runc_median:.2f}" if runc_median else "-"
        cpu = statistics.median(s.cpu_ns) / 1e6
        cpu_ratio = f"{cpu / runc_cpu:.2f}" if runc_cpu else "-"
        rows.append([s.name, s.version, runs, f"{st.median:.1f}", f"{st.p10:.1f}",
                     f"{st.p90:.1f}", f"{st.mean:.1f}", f"{st.stdev:.1f}", ratio,
                     f"{cpu:.1f}", cpu_ratio])
    return rows


def plain_table(rows: list[list[str]]) -> str:
    full = [r for r in rows if len(r) == len(HEADER)]
    widths = [max(len(r[i]) for r in [HEADER, *full]) for i in range(len(HEADER))]
    widths[1] = max(len(r[1]) for r in [HEADER, *rows])
    widths[0] = max(len(r[0]) for r in [HEADER, *rows])

    def fmt(row: list[str]) -> str:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        if len(row) == len(HEADER):
            cells += [c.rjust(w) for c, w in zip(row[2:], widths[2:], strict=True)]
        else:
            cells.append(row[2])
        return "  ".join(cells).rstrip()

    return "\n".join([fmt(HEADER), *(fmt(r) for r in rows)])


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |",
             "|---|---|" + "---:|" * (len(HEADER) - 2)]
    for r in rows:
        cells = r if len(r) == len(HEADER) else [*r, *[""] * (len(HEADER) - len(r))]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def mode_of(args: argparse.Namespace) -> str:
    return ", ".join([
        "containerd's create/start/delete" if args.lifecycle else "run",
        "each runtime alone" if args.alone else "interleaved",
        f"pause {args.pause:g} ms before each" if args.pause else "back to back",
        *([f"under load ({args.load} busy loops)"] if args.load else [])])


def report(subjects: list[Subject], info: dict[str, Any], load: tuple[list[float], list[float]],
           markdown: bool, mode: str) -> str:
    rows = table_rows(subjects)
    start, end = (" ".join(f"{x:.2f}" for x in avg) for avg in load)
    load_line = f"load average (1/5/15 min): start {start}, end {end}"
    if markdown:
        return f"mode: {mode}\n\n{markdown_table(rows)}\n\n{machine_line(info)}  \n{load_line}"
    return f"mode: {mode}\n{plain_table(rows)}\n\n{machine_line(info)}\n{load_line}"


def write_json(path: Path, subjects: list[Subject], info: dict[str, Any], args: argparse.Namespace,
               load: tuple[list[float], list[float]]) -> None:
    data = {
        "benchmark": "runtime_start",
        "what": "wall ms from spawn to exit of `<runtime> --root R run --bundle B ID` (true), "
                "or of create/start/exit/delete (--lifecycle); CPU ms of every process",
        "mode": mode_of(args),
        "machine": info,
        "loadavg": {"start": load[0], "end": load[1]},
        "runs": args.runs,
        "warmup": args.warmup,
        "pause_ms": args.pause,
        "load": args.load,
        "subjects": [{
            "name": s.name,
            "version": s.version,
            "command": s.command("ID"),
            "error": s.error,
            "failures": s.failures,
            "samples_ms": [round(x / 1e6, 4) for x in s.samples_ns],
            "cpu_ms": [round(x / 1e6, 4) for x in s.cpu_ns],
        } for s in subjects],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_plot(path: Path, subjects: list[Subject], info: dict[str, Any]) -> bool:
    """A box plot per subject with every sample drawn over it; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    measured = [s for s in subjects if s.samples_ns]
    if not measured:
        return False
    data = [[x / 1e6 for x in s.samples_ns] for s in measured]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.8 * len(measured)))
    ax.boxplot(data, orientation="horizontal", tick_labels=[s.name for s in measured],
               showfliers=False, widths=0.5)
    jitter = random.Random(0)
    for i, values in enumerate(data, start=1):
        ax.scatter(values, [i + jitter.uniform(-0.15, 0.15) for _ in values], s=8, alpha=0.5)
    ax.invert_yaxis()
    ax.set_xlabel("start to exit, ms")
    ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"runtime start: {info['nproc']} cpus, {info['kernel']}, cgroup {info['cgroup']}, "
                 f"{info['date'][:10]}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------------
# Cleanup and signals


def remove_cgroup_leftovers(token: str) -> None:
    """Containers without cgroupsPath get /<id> per hierarchy; their runtime removes it. Warn
    about (and remove, when empty) any that outlived its container."""
    base = Path("/sys/fs/cgroup")
    for path in [*base.glob(f"bench-{token}-*"), *base.glob(f"*/bench-{token}-*")]:
        try:
            path.rmdir()
        except OSError as e:
            progress(f"warning: cgroup {path} left behind: {e.strerror}")


def remove_tmp(tmp: Path) -> None:
    leftover = mounts_under(tmp)
    if leftover:
        progress(f"warning: not removing {tmp}: still mounted: {', '.join(leftover)}")
        return
    shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--runs", type=int, default=50, help="timed runs per runtime (default 50)")
    p.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument("--pause", type=float, default=0.0, metavar="MS",
                   help="idle time before each timed run, in ms (default 0: back to back)")
    p.add_argument("--alone", action="store_true",
                   help="each runtime's runs one after another, not interleaved")
    p.add_argument("--lifecycle", action="store_true",
                   help="time containerd's create, start, exit and delete instead of `run`")
    p.add_argument("--load", type=int, default=0, metavar="N",
                   help="N busy loops running during the timed rounds (default 0)")
    p.add_argument("--floor", action="store_true",
                   help="also run bench/python_floor.py: the least a Python create path can do")
    p.add_argument("--barque", default=None, help="barque-runtime (default: beside python3)")
    p.add_argument("--runc", default="/usr/sbin/runc")
    p.add_argument("--crun", default="/usr/bin/crun")
    p.add_argument("--out", type=Path, default=OUT_DIR, help="where JSON and PNG go")
    args = p.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.load < 0:
        p.error("--runs must be >= 1, --warmup and --load >= 0")
    args.barque = find_barque_runtime(args.barque)
    return args


def measure(args: argparse.Namespace, tmp: Path, runner: Runner, python: str,
            env: dict[str, str]) -> list[Subject]:
    progress("building the busybox bundle")
    bundle = build_bundle(tmp)
    subjects = make_subjects(args, tmp, bundle, python, env)
    if args.lifecycle:  # the floors have no create/start/delete
        subjects = [s for s in subjects if s.is_runtime and not s.name.startswith("python floor")]
    runner.lifecycle = args.lifecycle
    trial(runner, subjects)
    progress(f"{args.warmup} warm-up rounds, then {args.runs} timed rounds ({mode_of(args)})")
    rounds = one_by_one if args.alone else round_robin
    rounds(runner, subjects, args.warmup, record=False)
    load = Load(args.load) if args.load else None
    try:
        rounds(runner, subjects, args.runs, record=True, pause=args.pause / 1000)
    finally:
        if load is not None:
            load.stop()
    return subjects


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("runtime_start needs root (containers need namespaces, mounts and cgroups)")
    env = child_env()
    python = launcher_python(args.barque)
    compile_barque(python, env)
    info = machine_info(python, env)
    load_start = loadavg()
    signal.signal(signal.SIGTERM, raise_interrupt)
    become_subreaper()
    tmp = Path(tempfile.mkdtemp(prefix="barque-bench-"))
    token = str(os.getpid())
    with tempfile.TemporaryFile() as errfile:
        runner = Runner(env, errfile, token)
        try:
            subjects = measure(args, tmp, runner, python, env)
        except KeyboardInterrupt:
            progress("interrupted: cleaning up")
            return 130
        finally:
            with signals_ignored():
                runner.delete_pending()
                remove_cgroup_leftovers(token)
                remove_tmp(tmp)
    load = (load_start, loadavg())
    stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"runtime_start-{stamp}.json"
    write_json(json_path, subjects, info, args, load)
    png_path = args.out / f"runtime_start-{stamp}.png"
    plotted = write_plot(png_path, subjects, info)
    print(report(subjects, info, load, args.markdown, mode_of(args)))
    progress(f"samples: {json_path}")
    progress(f"plot: {png_path}" if plotted else "plot: skipped (no samples or no matplotlib)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
