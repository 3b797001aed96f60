#!/usr/bin/env python3
"""Pull + unpack of a realistic image beside skopeo + umoci, and the copy-on-write cost.

1. A Debian minbase root filesystem (`debootstrap --variant=minbase`, cached) becomes a
   one-layer gzip OCI image, pushed by skopeo to a local registry (Debian's docker-registry
   on 127.0.0.1). Measured, interleaved, each run into a fresh empty directory:
   - `barque --root <fresh> pull -q 127.0.0.1:<port>/minbase` (download, verify, unpack);
   - `skopeo copy docker://… oci:<fresh>:latest` then `umoci unpack` (the same work).
2. Copy-on-write: `barque run --rm IMAGE true` for busybox (~1 MB) and minbase (~100 MB+),
   and the disk a new container takes (`du` of its directory after `barque run IMAGE true`):
   both must not grow with the image's size.

Run as root from the repository: `python3 bench/image_pull.py --runs 5` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from barque.image import oci_layout as ol  # noqa: E402

OUT_DIR = REPO / "bench" / "out"
CACHE = Path("/var/cache/barque-bench")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def barque_cmd() -> list[str]:
    beside = Path(sys.executable).parent / "barque"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "barque.cli.main"]


def ensure_minbase() -> Path:
    rootfs = CACHE / "minbase"
    if not (rootfs / "usr" / "bin" / "dpkg").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(rootfs, ignore_errors=True)
        print("debootstrap --variant=minbase bookworm (once, cached in /var/cache/barque-bench)")
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs),
                        "http://deb.debian.org/debian"], check=True, stdout=subprocess.DEVNULL)
        shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
    return rootfs


def make_layout(rootfs: Path, layout: Path) -> int:
    """A one-layer OCI image of `rootfs`; returns the uncompressed layer size."""
    tar = subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", "-",
                          "."], check=True, stdout=subprocess.PIPE).stdout
    layer = gzip.compress(tar, compresslevel=6, mtime=0)
    config = {"architecture": ol.host_platform()["architecture"], "os": "linux",
              "created": "2026-01-01T00:00:00Z",
              "config": {"Env": [PATH_ENV], "Cmd": ["bash"]},
              "rootfs": {"type": "layers", "diff_ids": [ol.sha256_digest(tar)]}}
    config_bytes = ol.canonical_json(config)
    manifest = ol.canonical_json({
        "schemaVersion": 2, "mediaType": ol.MEDIA_MANIFEST,
        "config": ol.descriptor(ol.MEDIA_CONFIG, config_bytes),
        "layers": [ol.descriptor(ol.MEDIA_LAYER_GZIP, layer)]})
    ol.init_layout(str(layout))
    for blob in (layer, config_bytes, manifest):
        ol.write_blob(str(layout), blob)
    ol.write_index(str(layout), {"schemaVersion": 2, "mediaType": ol.MEDIA_INDEX, "manifests": [
        ol.descriptor(ol.MEDIA_MANIFEST, manifest,
                      annotations={ol.ANNOTATION_REF_NAME: "latest"})]})
    return len(tar)


def barque_parent_cgroups() -> set[str]:
    """The parent cgroups `barque run` puts containers under (as Docker's /docker)."""
    import glob

    return set(glob.glob("/sys/fs/cgroup/barque") + glob.glob("/sys/fs/cgroup/*/barque"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_registry(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = work / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {work / 'registry'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("docker-registry did not start")


def timed(argv: list[str], **kw: object) -> float:
    # Barque syncs each unpacked layer before publishing it; without a sync here it would
    # also pay for flushing the previous subject's dirty pages.
    os.sync()
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - start


def du_kib(path: Path) -> int:
    out = subprocess.run(["du", "-sxk", str(path)], check=True, capture_output=True, text=True)
    return int(out.stdout.split()[0])


def bench_pull(work: Path, ref: str, runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"barque pull": [], "skopeo copy + umoci unpack": []}
    for i in range(runs):
        root = work / f"barque-{i}"
        samples["barque pull"].append(timed([*barque_cmd(), "--root", str(root), "pull", "-q",
                                             ref]))
        shutil.rmtree(root)
        oci, bundle = work / f"oci-{i}", work / f"bundle-{i}"
        t = timed(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                   f"oci:{oci}:latest"])
        t += timed(["umoci", "unpack", "--image", f"{oci}:latest", str(bundle)])
        samples["skopeo copy + umoci unpack"].append(t)
        shutil.rmtree(oci)
        shutil.rmtree(bundle)
    return samples


def bench_cow(work: Path, images: dict[str, str], runs: int) -> list[tuple[str, float, int]]:
    root = work / "cow-root"
    for ref in images.values():
        subprocess.run([*barque_cmd(), "--root", str(root), "pull", "-q", ref], check=True,
                       stdout=subprocess.DEVNULL)
    rows = []
    for name, ref in images.items():
        times = [timed([*barque_cmd(), "--root", str(root), "run", "--rm", ref, "true"])
                 for _ in range(runs)]
        before = set(os.listdir(root / "containers")) if (root / "containers").exists() else set()
        subprocess.run([*barque_cmd(), "--root", str(root), "run", ref, "true"], check=True)
        [cid] = set(os.listdir(root / "containers")) - before
        rows.append((name, statistics.median(times), du_kib(root / "containers" / cid)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default=str(OUT_DIR))
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: unpacking keeps owners, containers need namespaces")
    rootfs = ensure_minbase()
    parents_before = barque_parent_cgroups()
    work = Path(tempfile.mkdtemp(prefix="barque-bench-pull-"))
    registry = None
    try:
        layer_size = make_layout(rootfs, work / "layout")
        registry, port = start_registry(work)
        minbase = f"127.0.0.1:{port}/minbase:latest"
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false",
                        f"oci:{work / 'layout'}:latest", f"docker://{minbase}"], check=True)
        busybox = f"127.0.0.1:{port}/busybox:latest"
        subprocess.run([*barque_cmd(), "--root", str(work / "seed"), "image", "build-default"],
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([*barque_cmd(), "--root", str(work / "seed"), "tag", "busybox", busybox],
                       check=True)
        subprocess.run([*barque_cmd(), "--root", str(work / "seed"), "push", "-q", busybox],
                       check=True, stdout=subprocess.DEVNULL)
        pulls = bench_pull(work, minbase, args.runs)
        cow = bench_cow(work, {"busybox": busybox, "minbase": minbase}, args.runs)
    finally:
        if registry is not None:
            registry.terminate()
            registry.wait()
        subprocess.run(["umount", "-R", str(work / "cow-root")], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
        for path in barque_parent_cgroups() - parents_before:  # leave the host as we found it
            try:
                os.rmdir(path)
            except OSError:
                pass
    base = statistics.median(pulls["skopeo copy + umoci unpack"])
    print(f"\n## image_pull — {datetime.date.today()}\n")
    print(f"minbase layer: {layer_size / 1e6:.0f} MB uncompressed, {args.runs} runs each\n")
    print("| pull + unpack | median s | min s | max s | x skopeo+umoci |")
    print("|---|---:|---:|---:|---:|")
    for name, s in pulls.items():
        print(f"| {name} | {statistics.median(s):.2f} | {min(s):.2f} | {max(s):.2f} | "
              f"{statistics.median(s) / base:.2f} |")
    print("\n| image | `run --rm IMAGE true` median s | new container's disk (KiB) |")
    print("|---|---:|---:|")
    for name, t, kib in cow:
        print(f"| {name} | {t:.3f} | {kib} |")
    now = datetime.datetime.now().isoformat(timespec="seconds")
    print(f"\nmachine: nproc {os.cpu_count()}, kernel {platform.release()}, "
          f"python {platform.python_version()}, {now}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "image_pull.json").write_text(json.dumps({"pull": pulls, "cow": cow}))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3))
        ax.boxplot(list(pulls.values()), orientation="horizontal")
        ax.set_yticks(range(1, len(pulls) + 1), list(pulls.keys()))
        ax.set_xlabel("seconds (pull + unpack of minbase)")
        fig.tight_layout()
        fig.savefig(Path(args.out) / "image_pull.png")
    except ImportError:
        print("(matplotlib not installed: no plot)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
