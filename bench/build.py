#!/usr/bin/env python3
"""`barque build` beside `docker build` (classic builder) and `podman build`: issue 10's bench.

The same 5-stage Dockerfile (bench/build-context: four stages each COPY three 5.5 KB files and
RUN something; the fifth copies their results), from the same busybox image loaded into each
engine, built three ways in every round:
- cold: `build --no-cache`;
- cached: the same build again, nothing changed (every step from the cache);
- changed: after one copied file of stage 3 changed (new content each round, same size).
Each round starts with the bench's images and build cache removed (untimed), so every round
finds each engine in the same state. Within a phase the engines take turns, so drift in
machine load hits all alike. Wall time and CPU time of each build's whole process tree
(dockerd and containerd included for Docker; Barque's network agent and resolver if a RUN
starts them); medians, p10/p90, ratios to Docker's same phase. Docker is Debian's docker.io
with `DOCKER_BUILDKIT=0`, a private dockerd on its own socket and roots (netpeers.py), the host's
iptables, sysctls and links put back afterwards, also on Ctrl-C.

Run as root from the repository: `python3 bench/build.py --runs 15` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import netpeers as np_
from netpeers import Barque, CpuMeter, DockerDaemon, Podman, progress

CONTEXT = Path(__file__).resolve().parent / "build-context"
CHANGED = "stage3/util.c"      # the file the `changed` phase edits: stage 3 copies it
TAG = "barque-bench-build:latest"
PHASES = ("cold", "cached", "changed")
PEER = "docker"
TARGETS = {"cold": 1.0, "cached": 2.0, "changed": 1.0}   # issue 10: barque / docker at most
TIMEOUT = 300.0
MISSING = ("skipped: this barque has no `build` command (its code predates issue 10's "
           "`barque build`: measure a newer one, or pass --barque PATH)")


# ---------------------------------------------------------------------------------------------
# The context and what its Dockerfile lets the cache keep


def make_context(tmp: Path) -> Path:
    """A copy of bench/build-context: the `changed` phase edits it, never the repository."""
    ctx = tmp / "context"
    shutil.copytree(CONTEXT, ctx)
    return ctx


def changed_content(base: bytes, nonce: str) -> bytes:
    """`base` with its first line replaced by one naming `nonce`, padded to the same length:
    same size, new content (a new nonce per round, so no earlier round's cache can match)."""
    first, sep, rest = base.partition(b"\n")
    line = f"/* changed by bench/build.py: {nonce}".encode()
    if len(line) + 2 > len(first):
        raise ValueError(f"nonce too long for the first line: {nonce!r}")
    return line.ljust(len(first) - 2) + b"*/" + sep + rest


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(keyword, arguments) of each instruction; comments and blank lines skipped (the bench's
    Dockerfile has no continuations)."""
    out = []
    for line in dockerfile.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            out.append((keyword.upper(), args.strip()))
    return out


def expected_hits(dockerfile: str, changed: str) -> tuple[int, int]:
    """How many steps (instructions other than FROM) a builder takes from its cache in the
    `cached` phase (all) and in the `changed` phase: in each stage, the steps before the first
    one that copies `changed` from the context or copies from a stage that changed; after it,
    none (a step's cache key includes its parent)."""
    steps = hits = 0
    dirty_stages: set[str] = set()
    stage, index, dirty = "", -1, False
    for keyword, args in instructions(dockerfile):
        if keyword == "FROM":
            if dirty:
                dirty_stages |= {stage, str(index)}
            words = args.split()
            index += 1
            stage = words[2].lower() if len(words) == 3 and words[1].upper() == "AS" else ""
            dirty = words[0].lower() in dirty_stages
            continue
        steps += 1
        if keyword in ("COPY", "ADD") and not dirty:
            words = args.split()
            source = next((w.split("=", 1)[1].lower() for w in words
                           if w.startswith("--from=")), None)
            paths = [w for w in words if not w.startswith("--")][:-1]
            if source is not None:
                dirty = source in dirty_stages
            else:
                dirty = any(changed == p.rstrip("/") or changed.startswith(p.rstrip("/") + "/")
                            or p in (".", "./") for p in paths)
        hits += not dirty
    return steps, hits


# ---------------------------------------------------------------------------------------------
# Counting cache hits in each builder's output (the trial round's check)


def docker_hits(output: str) -> int:
    """Docker's classic builder: ` ---> Using cache` under each step it did not run."""
    return sum(line.strip() == "---> Using cache" for line in output.splitlines())


def podman_hits(output: str) -> int:
    """Buildah (podman build): `--> Using cache <id>`."""
    return sum(line.startswith("--> Using cache") for line in output.splitlines())


VERTEX = re.compile(r"#(\d+) (\[.*)$")
CACHED = re.compile(r"#(\d+) CACHED$")


def buildkit_hits(output: str) -> int:
    """BuildKit's plain progress (barque build): `#N CACHED` for a step vertex `#N [stage k/n]
    INSTR …`; [internal] vertices and FROM are not steps."""
    names: dict[str, str] = {}
    hits = 0
    for line in output.splitlines():
        if m := VERTEX.match(line):
            names.setdefault(m.group(1), m.group(2))
        elif m := CACHED.match(line):
            name = names.get(m.group(1), "")
            words = name.split("] ", 1)[1].split() if "] " in name else []
            hits += not name.startswith("[internal]") and bool(words) and words[0] != "FROM"
    return hits


# ---------------------------------------------------------------------------------------------
# The engines and the subjects (an engine in a phase)


@dataclass
class Engine:
    name: str
    cli: list[str]
    hits: Callable[[str], int]            # cache hits in a build's output
    env: dict[str, str] | None = None
    flags: list[str] = field(default_factory=list)      # its extra `build` flags
    cleanup: list[list[str]] = field(default_factory=list)   # before each round, untimed
    daemons: Callable[[], set[int]] = set                 # its long-lived processes
    error: str | None = None
    check: dict[str, int | None] = field(default_factory=dict)   # the trial's cache hits
    same_image: bool | None = None    # the trial's cached build gave the cold build's image

    def image_id(self) -> str:
        out = subprocess.run([*self.cli, "image", "inspect", "-f", "{{.Id}}", TAG],
                             capture_output=True, text=True, env=self.env, timeout=TIMEOUT)
        return out.stdout.strip() if out.returncode == 0 else ""

    def build(self, context: Path, phase: str, *extra: str) -> list[str]:
        no_cache = ["--no-cache"] if phase == "cold" else []
        return [*self.cli, "build", *self.flags, *no_cache, *extra, "-t", TAG, str(context)]


@dataclass
class Subject:
    engine: Engine
    phase: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.phase}, {self.engine.name}"


def barque_engine(barque: Barque, meter: CpuMeter) -> Engine:
    helpers = [barque.runroot / "netagent" / "pid", barque.runroot / "dns" / "pid"]
    meter.pid_files += helpers
    engine = Engine("barque", barque.cli, buildkit_hits,
                    cleanup=[[*barque.cli, "rmi", "-f", TAG],
                             [*barque.cli, "builder", "prune", "-a", "-f"],
                             [*barque.cli, "image", "prune", "-f"]],
                    daemons=lambda: np_.pids_in(helpers))
    engine.error = barque_build_missing(barque)
    return engine


def barque_build_missing(barque: Barque) -> str | None:
    """None if this barque has a `build` command; else the row's reason."""
    out = subprocess.run([*barque.cli, "build", "--help"], capture_output=True, text=True)
    if out.returncode == 0:
        return None
    if "not a barque command" in out.stderr:
        return MISSING
    return f"fails here: barque build --help: {(out.stderr.strip().splitlines() or ['?'])[-1]}"


def docker_engine(docker: DockerDaemon) -> Engine:
    env = dict(docker.env, DOCKER_BUILDKIT="0")    # the classic builder, whatever the default
    pid = docker.proc.pid if docker.proc is not None else 0
    return Engine("docker", docker.cli, docker_hits, env=env,
                  cleanup=[[*docker.cli, "rmi", "-f", TAG], [*docker.cli, "image", "prune",
                                                              "-f"]],
                  daemons=lambda: {pid})


def podman_engine(podman: Podman) -> Engine:
    return Engine("podman", podman.cli, podman_hits, flags=list(Podman.RUN),
                  cleanup=[[*podman.cli, "rmi", "-f", TAG], [*podman.cli, "image", "prune",
                                                              "-f"]])


def others_daemons(engine: Engine, engines: list[Engine]) -> set[int]:
    """Processes of the other engines (idle meanwhile): not this build's CPU."""
    out: set[int] = set()
    for e in engines:
        if e is not engine:
            out |= e.daemons()
    return out


# ---------------------------------------------------------------------------------------------
# Rounds


class Rounds:
    def __init__(self, engines: list[Engine], context: Path, meter: CpuMeter) -> None:
        self.engines = engines
        self.context = context
        self.meter = meter
        self.base = (context / CHANGED).read_bytes()
        self.count = 0

    def working(self) -> list[Engine]:
        return [e for e in self.engines if e.error is None]

    def reset(self) -> None:
        """Untimed: the changed file as in the fixture, the bench's images and cache gone."""
        (self.context / CHANGED).write_bytes(self.base)
        for e in self.working():
            for argv in e.cleanup:
                subprocess.run(argv, capture_output=True, env=e.env, timeout=TIMEOUT)
        self.meter.settle(set().union(*(e.daemons() for e in self.engines)))

    def change(self) -> None:
        self.count += 1
        nonce = f"pid {os.getpid()} round {self.count} {time.time_ns()}"
        (self.context / CHANGED).write_bytes(changed_content(self.base, nonce))

    def trial(self) -> None:
        """One round, outputs kept: an engine whose cold build fails is not measured, and the
        cache hits of its `cached` and `changed` builds are recorded (JSON, table notes)."""
        self.reset()
        ids: dict[tuple[str, str], str] = {}
        for phase in PHASES:
            if phase == "changed":
                self.change()
            for e in self.working():
                extra = ["--progress", "plain"] if e.name == "barque" else []
                try:
                    out = subprocess.run(e.build(self.context, phase, *extra), env=e.env,
                                         stdin=subprocess.DEVNULL, capture_output=True,
                                         text=True, timeout=TIMEOUT)
                except subprocess.TimeoutExpired:
                    e.error = f"fails here: {phase} build timed out after {TIMEOUT:.0f} s"
                    continue
                text = out.stdout + out.stderr
                if out.returncode != 0:
                    last = [line for line in text.splitlines() if line.strip()][-1:]
                    e.error = f"fails here: {phase} build: {last[0] if last else out.returncode}"
                    continue
                if phase != "cold":
                    e.check[phase] = e.hits(text)
                ids[e.name, phase] = e.image_id()
        for e in self.engines:
            if e.error:
                progress(f"{e.name}: {e.error}")
            else:   # a rebuild with nothing changed gives the same image
                e.same_image = bool(ids.get((e.name, "cold"))) and \
                    ids.get((e.name, "cold")) == ids.get((e.name, "cached"))

    def run(self, subjects: list[Subject], count: int, record: bool, pause: float) -> None:
        for i in range(count):
            self.reset()
            for phase in PHASES:
                if phase == "changed":
                    self.change()
                for s in subjects:
                    if s.phase == phase and s.engine.error is None:
                        self.measure(s, record, pause)
            if record and (i + 1) % 5 == 0:
                progress(f"round {i + 1}/{count}")

    def measure(self, s: Subject, record: bool, pause: float) -> None:
        if pause:
            time.sleep(pause)
        e = s.engine
        wall, cpu, error = np_.timed(e.build(self.context, s.phase), self.meter, e.env,
                                     others_daemons(e, self.engines), timeout=TIMEOUT)
        if record:
            np_.keep(s, wall, cpu, error)


# ---------------------------------------------------------------------------------------------
# Reporting

HEADER = ["phase, engine", "runs", "median s", "p10", "p90", "CPU median s", "CPU mean s",
          "x docker", "CPU x docker"]


def table(subjects: list[Subject]) -> str:
    rows = []
    for s in subjects:
        if not s.wall:
            rows.append([s.name, s.engine.error or f"no successful run: {s.failures[:1]}"])
            continue
        peer = next((p for p in subjects if p.phase == s.phase and p.engine.name == PEER
                     and p.wall), None)
        rows.append(np_.timing_row(s.name, s, peer))
    return np_.markdown_table(HEADER, rows)


def verdicts(subjects: list[Subject]) -> list[str]:
    medians = {(s.phase, s.engine.name): np_.stats(s.wall).median for s in subjects if s.wall}
    out = []
    for phase, limit in TARGETS.items():
        what = f"target {phase} (barque <= {limit:g}x docker)"
        if (phase, "barque") in medians and (phase, PEER) in medians:
            ratio = medians[phase, "barque"] / medians[phase, PEER]
            out.append(f"{what}: {ratio:.2f}x, {'met' if ratio <= limit else 'NOT met'}")
        else:
            out.append(f"{what}: not measured")
    return out


def cache_line(engines: list[Engine], expected: tuple[int, int]) -> str:
    parts = []
    for e in engines:
        if e.check:
            got = (e.check.get("cached"), e.check.get("changed"))
            ok = "" if got == expected else " (NOT as expected)"
            same = {True: "same image", False: "NOT the same image", None: "image ?"}
            parts.append(f"{e.name} {got[0]}/{got[1]}{ok}, {same[e.same_image]}")
        else:
            parts.append(f"{e.name} -")
    return (f"trial round: cache hits of the cached/changed builds (expected "
            f"{expected[0]}/{expected[1]}) and the cached build's image against the cold "
            "one's: " + "; ".join(parts))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    np_.add_peer_args(p, runs=15, runs_help="timed rounds", warmup=1,
                      pause_help="idle time before each timed build, in ms (default 0: back "
                                 "to back)")
    return np_.parse_peer_args(p, argv)


def make_engines(args: argparse.Namespace, barque: Barque, docker: DockerDaemon | None,
                 podman: Podman | None, meter: CpuMeter) -> list[Engine]:
    engines = []
    if "barque" in args.engines:
        engines.append(barque_engine(barque, meter))
    if docker is not None:
        engines.append(docker_engine(docker))
    if podman is not None:
        engines.append(podman_engine(podman))
    return engines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return np_.interruptible(lambda: measure(args))


def measure(args: argparse.Namespace) -> int:
    dockerfile = (CONTEXT / "Dockerfile").read_text()
    expected = expected_hits(dockerfile, CHANGED)
    with np_.PeerSession("bench/build.py", args, "barque-bench-build-",
                         needs="namespaces, cgroups, overlayfs, dockerd") as s:
        barque = s.barque
        s.cleanups.append(lambda: subprocess.run([*barque.cli, "builder", "prune", "-a", "-f"],
                                                 capture_output=True))
        engines = make_engines(args, s.barque, s.docker, s.podman, s.meter)
        subjects = [Subject(e, phase) for phase in PHASES for e in engines]
        rounds = Rounds(engines, make_context(s.tmp), s.meter)
        progress("trial round (outputs checked)")
        rounds.trial()
        rounds.run(subjects, args.warmup, record=False, pause=0)
        with s.timed_rounds():
            progress(f"{args.runs} timed rounds")
            rounds.run(subjects, args.runs, record=True, pause=args.pause / 1000)
    mode = (f"pause {args.pause:g} ms before each build" if args.pause else "back to back") + \
        (f", under load ({args.load} busy loops)" if args.load else "")
    print(f"5-stage build (bench/build-context), {args.runs} rounds of cold (--no-cache), "
          f"cached and one-file-changed builds, {mode}\n")
    print(table(subjects))
    print("\n" + "  \n".join([*verdicts(subjects), cache_line(engines, expected), *s.lines()]))
    write_outputs(s, subjects, engines, mode, expected)
    return 0


def write_outputs(s: np_.PeerSession, subjects: list[Subject], engines: list[Engine],
                  mode: str, expected: tuple[int, int]) -> None:
    s.write_samples("build", mode, {
        "dockerfile": (CONTEXT / "Dockerfile").read_text(), "changed_file": CHANGED,
        "expected_cache_hits": {"cached": expected[0], "changed": expected[1]},
        "engines": [{"name": e.name, "error": e.error, "env": {"DOCKER_BUILDKIT": "0"}
                     if e.name == "docker" else {}, "trial_cache_hits": e.check,
                     "trial_same_image": e.same_image}
                    for e in engines],
        "subjects": [{"engine": sub.engine.name, "phase": sub.phase,
                      "command": sub.engine.build(Path("<context>"), sub.phase),
                      "failures": sub.failures, "wall_s": sub.wall, "cpu_s": sub.cpu}
                     for sub in subjects]},
        lambda png, title: plot(png, subjects, title))


def plot(path: Path, subjects: list[Subject], title: str) -> bool:
    """A panel per phase (their times differ by orders of magnitude), boxes per engine."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    phases = [p for p in PHASES if any(s.wall for s in subjects if s.phase == p)]
    if not phases:
        return False
    engines = max(sum(1 for s in subjects if s.phase == p and s.wall) for p in phases)
    fig, axes = plt.subplots(len(phases), 1, squeeze=False,
                             figsize=(9, 0.9 + len(phases) * (0.7 + 0.45 * engines)))
    for ax, phase in zip((a[0] for a in axes), phases, strict=True):
        measured = [s for s in subjects if s.phase == phase and s.wall]
        np_.draw_boxes(ax, [s.name for s in measured], [s.wall for s in measured],
                       f"{phase} build, wall s")
        ax.set_xlim(0, 1.05 * max(max(s.wall) for s in measured))
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


if __name__ == "__main__":
    sys.exit(main())
