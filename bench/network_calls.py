#!/usr/bin/env python3
"""What a bridged container's network costs Barque per `run`, call by call: importing
pyroute2, netns.create, links.ensure_bridge (bridge already there), links.add_veth,
links.delete_link, netns.remove — each round in a fresh interpreter started as the `barque`
launcher starts it (-I -S), so the import is measured cold-in-process as a real run pays it.

For comparison only, `--narrow` also times importing just pyroute2.iproute.linux with the
package's __init__ bypassed (a stub package module in sys.modules): what a lazier pyroute2
__init__ would save. Barque does not do this.

    sudo python3 bench/network_calls.py --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROUND = r"""
import json, os, sys, time
sys.path[:0] = json.loads(sys.argv[1])
narrow, nsdir, bridge = sys.argv[2] == "1", sys.argv[3], sys.argv[4]
t = [time.perf_counter()]
if narrow:
    import importlib.util, types
    spec = importlib.util.find_spec("pyroute2")
    stub = types.ModuleType("pyroute2")
    stub.__path__ = list(spec.submodule_search_locations)
    sys.modules["pyroute2"] = stub
    import pyroute2.iproute.linux
    print(json.dumps({"import": 1000 * (time.perf_counter() - t[0])}))
    sys.exit()
import pyroute2
t.append(time.perf_counter())
from barque.network import links, netns
path = os.path.join(nsdir, "ns")
netns.create(path); t.append(time.perf_counter())
links.ensure_bridge(bridge, ["198.18.251.1/24"]); t.append(time.perf_counter())
links.add_veth(path, bridge, bridge + "v", "eth0", ["198.18.251.2/24"], ["198.18.251.1"],
               "02:42:c6:12:fb:02"); t.append(time.perf_counter())
links.delete_link(bridge + "v"); t.append(time.perf_counter())
netns.remove(path); t.append(time.perf_counter())
names = ["import", "netns.create", "ensure_bridge", "add_veth", "delete_link", "netns.remove"]
print(json.dumps({n: 1000 * (b - a) for n, a, b in zip(names, t, t[1:])}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--narrow", action="store_true")
    args = parser.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [repo] + [p for p in sys.path if p.endswith("-packages")]
    bridge = f"bqb{os.getpid() % 100000}"
    samples: dict[str, list[float]] = {}
    nsdir = tempfile.mkdtemp(prefix="barque-bench-netns-")
    try:
        from barque.network import links

        links.ensure_bridge(bridge, ["198.18.251.1/24"])
        for _ in range(args.runs):
            for narrow in ([False, True] if args.narrow else [False]):
                out = subprocess.run([sys.executable, "-I", "-S", "-c", ROUND, json.dumps(paths),
                                      "1" if narrow else "0", nsdir, bridge],
                                     check=True, capture_output=True, text=True).stdout
                for name, ms in json.loads(out).items():
                    samples.setdefault(("narrow " if narrow else "") + name, []).append(ms)
    finally:
        from barque.linux import mount as mnt
        from barque.network import links, netns

        netns.remove(os.path.join(nsdir, "ns"))
        links.delete_bridge(bridge)
        try:
            mnt.umount(nsdir, mnt.MNT_DETACH)
        except OSError:
            pass
        os.rmdir(nsdir)
    print("| call | runs | median ms | p10 | p90 |\n|---|---:|---:|---:|---:|")
    for name, values in samples.items():
        v = sorted(values)
        print(f"| {name} | {len(v)} | {statistics.median(v):.2f} | {v[len(v) // 10]:.2f} "
              f"| {v[(9 * len(v)) // 10]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
