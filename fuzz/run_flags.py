"""Fuzz `barque run`'s flag values end to end, as far as the engine's create-time checks:
argparse, barque/cli/run_options.py (sizes through engine/units.py, --cpus, --ulimit,
--restart, --env-file, --label-file, --security-opt, --add-host, --device, --log-opt,
--health-*, the network flags), engine/mounts.py (-v, --mount, --tmpfs),
engine/create.check_settings, engine/netchecks and the seccomp profile a --security-opt names.

Property: a bad value is a usage error (argparse's exit 125), an OptionError, or the engine's
EngineError (SecurityError for a profile); never another exception. Nothing is created.

    python fuzz/run_flags.py -runs=100000
    python fuzz/run_flags.py --iterations 100000
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz import _driver  # noqa: E402

with _driver.instrumented():
    from barque.cli import argv_scan, run_options
    from barque.cli.main import build_parser
    from barque.engine import netchecks, spec_security
    from barque.engine.context import EngineError
    from barque.engine.create import check_settings

# Values that are nearly right for each flag (a value is drawn from these, then maybe bent).
NUMBERS = ("0", "1", "-1", "0.5", "1.5", "2", "1e3", "1e20", "1e400", "nan", "inf", "-inf",
           "0.0001", "0x10", "1_000", " 1", "9" * 400, "", "1.", ".5", "+1", "١")
SIZES = ("64m", "64M", "1g", "1.5g", "10 kb", "0", "1b", "6kib", "9" * 400 + "p", "1e20",
         "1e400", "-1", "64x", "", "1p", "nan", "9" * 20 + "t", "4.0000000001k")
PATHS = ("/data", "/", "/tmp", "relative", "../etc", "/a/../..", "/proc/self", "//", "/a:b",
         "C:\\x", "/" + "x" * 300, "")
VALUES: dict[str, tuple[str, ...]] = {
    "-v": ("/tmp:/data", "/tmp:/data:ro", "vol:/data:nocopy", "/data", "/tmp:/data:rshared",
           "::", ":/x", "/tmp:/", "a:b:c:d", "/tmp:/data:ro,Z,rw", "v@l:/x", "/tmp:rel"),
    "--mount": ("type=bind,src=/tmp,dst=/data", "type=volume,target=/v", "type=tmpfs,dst=/t,"
                "tmpfs-size=1m", 'type=bind,"src=/tmp",dst=/d,readonly', "dst=/x,bogus=1",
                "type=bind,src=/missing,dst=/x", "type=tmpfs,src=x,dst=/t", "\"unterminated",
                "type=bind,src=/tmp,dst=/d,bind-propagation=weird", "ro,dst=/x", ""),
    "--tmpfs": ("/run", "/run:size=64m", "/run:rw,noexec", "rel", "/", ":opts", "/a:b:c"),
    "--ulimit": ("nofile=1024:2048", "nofile=1024", "nproc=-1", "bogus=1", "nofile=2:1",
                 "nofile", "=1", "nofile=a:b", "nofile=1:", "nofile=-1:5", "core=9" + "9" * 30),
    "-m": SIZES, "--memory-swap": SIZES, "--memory-reservation": SIZES, "--shm-size": SIZES,
    "--cpus": NUMBERS,
    "--restart": ("no", "always", "on-failure", "on-failure:3", "on-failure:-1",
                  "always:3", "unless-stopped", "bogus", "on-failure:x", ":", "",
                  "on-failure:" + "9" * 30),
    "--security-opt": ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=x",
                       "seccomp=unconfined", "seccomp=builtin", "seccomp=@PROFILE@",
                       "seccomp={}", 'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}',
                       "apparmor=unconfined", "label=disable", "label:user:x", "bogus",
                       "seccomp", "seccomp=/missing", "systempaths=unconfined", "mask=/x"),
    "--env-file": ("@FILE@",), "--label-file": ("@FILE@",),
    "-e": ("A=1", "A", "=1", "", "PATH", "A=\n", "A=b=c"),
    "--add-host": ("h:127.0.0.1", "h:::1", "h:[::1]", "h:host-gateway", "h", ":1.2.3.4",
                   "h:300.1.1.1", "h:fe80::1%eth0"),
    "--device": ("/dev/null", "/dev/null:/dev/x", "/dev/null:rwm", "/dev/null:/x:rw",
                 "/dev/null:/x:rwz", "/etc/passwd", "rel", "/dev/null:a:b:c", "/missing"),
    "--log-opt": ("max-size=10m", "max-file=3", "max-size=junk", "max-file=0", "bogus=1",
                  "max-size", "max-size=" + "9" * 400),
    "--health-interval": ("1s", "1.5m", "1h30m", "0", "-1s", "1x", "9" * 400 + "h", "1e9s"),
    "--health-timeout": ("1s", "5ms", "s", "1.s"),
    "--health-retries": NUMBERS, "--pids-limit": NUMBERS, "--stop-timeout": NUMBERS,
    "--cpu-shares": NUMBERS, "--oom-score-adj": NUMBERS, "--blkio-weight": NUMBERS,
    "--cpu-period": NUMBERS, "--cpu-quota": NUMBERS,
    "--cpuset-cpus": ("0", "0-1", "0,1", "999", "a", "1-0", ""),
    "--sysctl": ("net.ipv4.ip_forward=1", "kernel.shmmax=1", "vm.swappiness=61", "x", "=1"),
    "--cap-add": ("NET_ADMIN", "CAP_SYS_ADMIN", "ALL", "bogus", "net_raw", ""),
    "--cap-drop": ("ALL", "CHOWN", "bogus"),
    "--network": ("none", "host", "default", "bridge", "container:x", "bogus", "",
                  "name=n,alias=a,ip=10.0.0.2", "alias=x", "name=n,bogus=1", "container:"),
    "-w": PATHS, "-u": ("0", "1000:1000", "root", ":", "a:b:c", ""),
    "--entrypoint": ("", "sh -c", "'unterminated", "a\\"),
    "-h": ("host", "", "x" * 300, "a b"),
    "--health-cmd": ("true", ""), "--log-driver": ("json-file", "none", "syslog"),
    "--name": ("x", "/x", "a b", ""), "-l": ("a=b", "a", "=b"),
    "-p": ("80:80", "127.0.0.1::80", "[::1]:8080:80/udp", "8000-8010:80", "8000-8001:80-81",
           "abc", "1:2:3:4", "80/xyz", "[::1:80", "target=80,published=8080", "published=1"),
    "--expose": ("80", "80-90/udp", "80:80", "90-80", "70000"),
    "--dns": ("1.1.1.1", "::1", "abc", " 8.8.8.8"), "--dns-search": ("example.com", ".", "a..b"),
    "--ip": ("172.17.0.5", "abc", "::1"), "--ip6": ("fd00::5", "1.2.3.4"),
    "--mac-address": ("02:42:ac:11:00:05", "zz", "0242.ac11.0005"),
    "--network-alias": ("web", ""), "--link": ("a:b", "a:b:c", ""),
    "--stop-signal": ("SIGTERM", "9", "bogus"),
}
FLAGS = tuple(VALUES)
BOOLEAN_FLAGS = ("--rm", "-d", "-i", "-t", "--read-only", "--privileged", "--init",
                 "--no-healthcheck", "--oom-kill-disable")


def _file(p: _driver.Provider, name: str) -> str:
    path = os.path.join(_driver.sandbox(), name)
    with open(path, "wb") as f:
        if p.bool():
            f.write(p.blob(200))
        else:
            lines = [p.pick(("A=1", "# c", "", "  B=2  ", "C", "=x", "D=\xff", "E=é"))
                     for _ in range(p.int(0, 5))]
            f.write("\n".join(lines).encode("utf-8", "surrogateescape"))
    return path


def _profile(p: _driver.Provider) -> str:
    """A seccomp profile file: JSON of the right shape with parts of the wrong type."""
    anything = (None, 1, "x", [], {}, [1], ["x"], {"a": 1}, True, 1.5)
    rule = {"names": p.pick((["read"], [], "read", [1], None)),
            "action": p.pick(("SCMP_ACT_ALLOW", 1, None)),
            "includes": p.pick(({}, {"caps": ["CAP_SYS_ADMIN"]}, {"arches": "amd64"},
                                {"minKernel": "5.x"}, {"minKernel": 5}, [], "x", None)),
            "excludes": p.pick(({}, {"caps": "x"}, {"arches": [1]}, [], None))}
    profile: dict[str, object] = {"defaultAction": p.pick(("SCMP_ACT_ERRNO", 1, None)),
                                  "syscalls": p.pick(([rule], rule, [1], None, "x")),
                                  "archMap": p.pick(([{"architecture": "SCMP_ARCH_X86_64",
                                                       "subArchitectures": ["x"]}], [1], "x",
                                                     None, [{"subArchitectures": 1}])),
                                  "architectures": p.pick((["SCMP_ARCH_X86_64"], 1, "ab"))}
    for _ in range(p.int(0, 2)):
        profile[p.pick(("flags", "defaultErrnoRet", "listenerPath", "x"))] = p.pick(anything)
    path = os.path.join(_driver.sandbox(), "profile.json")
    with open(path, "wb") as f:
        f.write(json.dumps(profile).encode() if p.chance(90) else p.blob(50))
    return path


def _value(p: _driver.Provider, flag: str) -> str:
    value = p.pick(VALUES[flag])
    if value == "@FILE@":
        return _file(p, flag.strip("-"))
    value = value.replace("@PROFILE@", _profile(p)) if "@PROFILE@" in value else value
    if p.chance(15):  # bent: a random insertion (argv strings cannot hold NUL)
        pos = p.int(0, len(value))
        value = value[:pos] + p.text(6).replace("\0", "") + value[pos:]
    return value


def draw_argv(p: _driver.Provider) -> list[str]:
    argv = ["run"]
    for _ in range(p.int(0, 6)):
        if p.chance(15):
            argv.append(p.pick(BOOLEAN_FLAGS))
            continue
        flag = p.pick(FLAGS)
        argv += [flag, _value(p, flag)]
    return argv + ["busybox", "true"]


_PARSER: list[object] = []


def check(argv: list[str]) -> None:
    if not _PARSER:
        argv_scan.scan(["run"])
        _PARSER.append(build_parser())
    parser = _PARSER[0]
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            ns = parser.parse_args(argv)  # type: ignore[attr-defined]
        except SystemExit as e:
            assert e.code in (0, 125), f"argparse exited {e.code}"
            return
    try:
        _, config, host_config, networking = run_options.create_request(ns)
    except run_options.OptionError:
        return
    try:
        networking = netchecks.normalize(host_config, networking)
        netchecks.check_mode(config, host_config)
        for name, settings in networking["EndpointsConfig"].items():
            netchecks.check_endpoint(name, settings)
        check_settings(config, host_config)
    except EngineError:
        return
    try:
        spec_security.seccomp(host_config, spec_security.capabilities(host_config))
    except spec_security.SecurityError:
        pass


def target(data: bytes) -> None:
    check(draw_argv(_driver.Provider(data)))


if __name__ == "__main__":
    _driver.main("run_flags", target, max_len=1024)
