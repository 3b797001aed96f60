"""barque-runtime against runc 1.1 as the oracle (issue 12): output shapes, the default spec,
runc's own bundles, and flags after the container ID. Each test runs the same command under
both, with separate --root dirs and ids carrying the run prefix."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from tests.support.bundles import Runtime
from tests.support.tools import require


class Oracle:
    """runc beside barque-runtime: same bundle, own state roots, every container removed."""

    def __init__(self, rt: Runtime) -> None:
        require("runc")
        self.rt = rt
        self.runc_root = os.path.join(rt.tmp, "runc-state")
        self.runc_ids: list[str] = []

    def runc(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        import tempfile

        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(["runc", "--root", self.runc_root, *args], stdout=out,
                                  stderr=err, stdin=subprocess.DEVNULL, timeout=timeout)
            out.seek(0)
            err.seek(0)
            proc.stdout, proc.stderr = out.read(), err.read()
        return proc

    def runc_id(self) -> str:
        cid = f"{self.rt.prefix}-runc-{uuid.uuid4().hex[:8]}"
        self.runc_ids.append(cid)
        return cid

    def runc_spec_bundle(self, args: list[str], edit: dict | None = None) -> str:
        """A bundle whose config.json is what `runc spec` wrote, with args (and edits)."""
        path = self.rt.bundle(self.rt.spec(args))
        os.unlink(os.path.join(path, "config.json"))
        subprocess.run(["runc", "spec", "--bundle", path], check=True)
        with open(os.path.join(path, "config.json")) as f:
            spec = json.load(f)
        spec["process"]["terminal"] = False
        spec["process"]["args"] = args
        spec["root"]["readonly"] = False
        if edit:
            edit_fn = edit.get("fn")
            if callable(edit_fn):
                edit_fn(spec)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(spec, f)
        return path

    def cleanup(self) -> None:
        for cid in self.runc_ids:
            self.runc("delete", "--force", cid)


def _keys(obj: object) -> object:
    """The key order of a JSON value, all the way down (lists by their first item)."""
    if isinstance(obj, dict):
        return [(k, _keys(v)) for k, v in obj.items()]
    if isinstance(obj, list):
        return [_keys(obj[0])] if obj else []
    return None


def _shape(text: str) -> tuple[str, object]:
    """How a JSON text is laid out (compact line, or two-space indent without a newline, as
    Go prints them) and its key order: what scripts reading runc's output depend on."""
    obj = json.loads(text)
    layouts = {
        "compact line": json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n",
        "indented": json.dumps(obj, indent=2, ensure_ascii=False),
    }
    for name, rendered in layouts.items():
        if text == rendered:
            return name, _keys(obj)
    return "other", _keys(obj)


def _start_both(oracle: Oracle) -> tuple[str, str]:
    """A running `sleep` under each runtime (runc's from its own spec)."""
    rid, bid = oracle.runc_id(), oracle.rt.new_id()
    proc = oracle.runc("run", "-d", "--bundle", oracle.runc_spec_bundle(["sleep", "60"]), rid)
    assert proc.returncode == 0, proc.stderr
    proc = oracle.rt.cmd("run", "-d", "--bundle", oracle.rt.bundle(oracle.rt.spec(["sleep", "60"])),
                         bid)
    assert proc.returncode == 0, proc.stderr
    return rid, bid


def test_output_shapes_match_runc(oracle: Oracle) -> None:
    rid, bid = _start_both(oracle)
    rt = oracle.rt
    # state: Go's MarshalIndent, no trailing newline, owner empty
    r, b = oracle.runc("state", rid), rt.cmd("state", bid)
    assert b.returncode == r.returncode == 0
    assert _shape(b.stdout.decode()) == _shape(r.stdout.decode())
    assert json.loads(b.stdout)["owner"] == json.loads(r.stdout)["owner"] == ""
    # list --format json: compact, one line, same key order
    r, b = oracle.runc("list", "--format", "json"), rt.cmd("list", "--format", "json")
    assert _shape(b.stdout.decode()) == _shape(r.stdout.decode())
    assert _shape(b.stdout.decode())[0] == "compact line"
    assert b.stdout.startswith(b'[{"ociVersion":"') and b", " not in b.stdout
    # events --stats: compact, {"type":"stats","id":...,"data":{...}} with runc's key order
    r, b = oracle.runc("events", "--stats", rid), rt.cmd("events", "--stats", bid)
    assert b.returncode == r.returncode == 0, b.stderr
    assert b.stdout.startswith(b'{"type":"stats","id":"' + bid.encode() + b'","data":{')
    assert b.stdout.count(b"\n") == 1 and b": " not in b.stdout and b", " not in b.stdout
    rdata, bdata = json.loads(r.stdout)["data"], json.loads(b.stdout)["data"]
    assert _shape(b.stdout.decode())[0] == _shape(r.stdout.decode())[0] == "compact line"
    assert list(bdata) == list(rdata)
    for key in ("cpuset", "pids"):
        assert list(bdata[key]) == list(rdata[key]), key
    if "raw" in rdata.get("memory", {}):
        assert list(bdata["memory"]["raw"]) == sorted(bdata["memory"]["raw"])


def test_events_oom_line_is_runcs(runtime: Runtime) -> None:
    """An OOM kill under `events` prints exactly {"type":"oom","id":"ID"}."""
    spec = runtime.spec(["sh", "-c", "sleep 1; tail /dev/zero; sleep 30"])
    spec["linux"]["resources"]["memory"] = {"limit": 16 * 1024 * 1024}
    cid = runtime.new_id()
    assert runtime.cmd("run", "-d", "--bundle", runtime.bundle(spec), cid).returncode == 0
    proc = subprocess.Popen([runtime.binary, "--root", runtime.state_root, "events",
                             "--interval", "60s", cid], stdout=subprocess.PIPE)
    try:
        lines = []
        assert proc.stdout is not None
        for _ in range(5):
            line = proc.stdout.readline()
            lines.append(line)
            if b'"oom"' in line:
                break
    finally:
        proc.kill()
        proc.wait()
    assert f'{{"type":"oom","id":"{cid}"}}\n'.encode() in lines, lines


def test_default_spec_is_runcs(tmp_path: os.PathLike) -> None:
    require("runc")
    from tests.conftest import runtime_binary

    for extra in ([], ["--rootless"]):
        ours, theirs = tmp_path / f"b{len(extra)}", tmp_path / f"r{len(extra)}"
        os.makedirs(ours)
        os.makedirs(theirs)
        subprocess.run([runtime_binary(), "spec", *extra, "--bundle", str(ours)], check=True)
        subprocess.run(["runc", "spec", *extra, "--bundle", str(theirs)], check=True)
        assert open(ours / "config.json").read() == open(theirs / "config.json").read(), extra


def test_bundle_appending_a_cgroup_namespace_runs(runtime: Runtime, tmp_path: os.PathLike) -> None:
    """Our own `spec` plus a cgroup namespace, as tools append it where runc's default has
    none (not on a pure cgroup v2 host, where runc's `spec` lists it itself): no "listed
    twice"."""
    bundle = runtime.bundle(runtime.spec(["true"]))
    os.unlink(os.path.join(bundle, "config.json"))
    assert runtime.cmd("spec", "--bundle", bundle).returncode == 0
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec["process"].update(terminal=False, args=["cat", "/proc/self/cgroup"])
    spec["root"]["readonly"] = False
    if {"type": "cgroup"} not in spec["linux"]["namespaces"]:
        spec["linux"]["namespaces"].append({"type": "cgroup"})
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    proc = runtime.cmd("run", "--bundle", bundle, runtime.new_id())
    assert proc.returncode == 0, proc.stderr
    assert b"listed twice" not in proc.stderr


def test_runc_spec_bundle_with_ambient_caps_runs_as_in_runc(oracle: Oracle) -> None:
    """runc's spec lists ambient capabilities that are not inheritable: runc runs it."""
    bundle = oracle.runc_spec_bundle(["grep", "^Cap", "/proc/self/status"])
    r = oracle.runc("run", "--bundle", bundle, oracle.runc_id())
    b = oracle.rt.cmd("run", "--bundle", bundle, oracle.rt.new_id())
    assert r.returncode == 0, r.stderr
    assert b.returncode == 0, b.stderr
    assert b.stdout == r.stdout
    assert b"prctl" not in b.stderr and b.stderr == r.stderr


# (arguments after the ID, expected exit code, words in barque-runtime's stderr)
STRAY = [
    (["update", "{id}", "--bogus"], 1, '"update" requires exactly 1 argument(s)'),
    (["state", "{id}", "--bogus"], 1, '"state" requires exactly 1 argument(s)'),
    (["state", "{id}", "extra"], 1, '"state" requires exactly 1 argument(s)'),
    (["pause", "{id}", "-x"], 1, '"pause" requires exactly 1 argument(s)'),
    (["resume", "{id}", "-x"], 1, '"resume" requires exactly 1 argument(s)'),
    (["start", "{id}", "-x"], 1, '"start" requires exactly 1 argument(s)'),
    (["delete", "{id}", "--bogus"], 1, '"delete" requires exactly 1 argument(s)'),
    (["events", "{id}", "--bogus"], 1, '"events" requires exactly 1 argument(s)'),
    (["kill", "{id}", "9", "extra"], 1, '"kill" requires a maximum of 2 argument(s)'),
    (["list", "extra"], 1, '"list" requires exactly 0 argument(s)'),
    (["list", "--bogus"], 1, "flag provided but not defined"),
]


@pytest.mark.parametrize("argv,code,words", STRAY, ids=[" ".join(a[0]) for a in STRAY])
def test_stray_arguments_refused_as_runc(oracle: Oracle, argv: list[str], code: int,
                                         words: str) -> None:
    rid, bid = _start_both(oracle)
    r = oracle.runc(*[a.format(id=rid) for a in argv])
    b = oracle.rt.cmd(*[a.format(id=bid) for a in argv])
    assert r.returncode == code, r.stderr
    assert b.returncode == code, b.stderr
    assert words in b.stderr.decode()
    # nothing happened: both still running
    assert json.loads(oracle.rt.cmd("state", bid).stdout)["status"] == "running"


def test_flags_after_the_id_are_applied_as_runc(oracle: Oracle) -> None:
    rid, bid = _start_both(oracle)
    rt = oracle.rt
    for cid, cmd in ((rid, oracle.runc), (bid, rt.cmd)):
        proc = cmd("update", cid, "--pids-limit", "77")
        assert proc.returncode == 0, proc.stderr
    assert _pids_max(bid) == _pids_max(rid) == "77"
    # kill ID SIG --all: --all moves to the front, as urfave/cli reorders it
    for cid, cmd in ((rid, oracle.runc), (bid, rt.cmd)):
        assert cmd("kill", cid, "KILL", "--all").returncode == 0
    # delete ID --force removes the (now dying) container in both
    for cid, cmd in ((rid, oracle.runc), (bid, rt.cmd)):
        assert cmd("delete", cid, "--force").returncode == 0
        assert cmd("state", cid).returncode == 1


def test_reorder_matches_urfave_cli() -> None:
    from barque.runtime.args import Flag, reorder

    flags = [Flag("--all,-a"), Flag("--bundle,-b", True)]
    assert reorder(["id", "--bundle", "x", "y"], flags) == ["--bundle", "x", "id", "y"]
    assert reorder(["id", "-b=x"], flags) == ["-b=x", "id"]
    assert reorder(["id", "--bogus", "v"], flags) == ["id", "--bogus", "v"]
    assert reorder(["id", "--", "--all"], flags) == ["id", "--", "--all"]
    assert reorder(["-b", "-", "id"], flags) == ["-b", "-", "id"]  # update -r - ID
    assert reorder(["id", "-b", "-"], flags) == ["-b", "-", "id"]
    # a boolean flag takes the next word along too (runc 1.1 then ends flags there)
    assert reorder(["id", "--all", "KILL"], flags) == ["--all", "KILL", "id"]


def _pids_max(cid: str) -> str:
    import glob

    for path in glob.glob(f"/sys/fs/cgroup/pids/{cid}/pids.max") + glob.glob(
            f"/sys/fs/cgroup/{cid}/pids.max"):
        with open(path) as f:
            return f.read().strip()
    raise AssertionError(f"no pids cgroup for {cid}")
