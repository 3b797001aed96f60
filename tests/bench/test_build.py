"""bench/build.py's pure parts: the build context it measures (issue 10's shape), the cache hits
it expects and counts in each builder's output, the one-file change, and how it says that the
barque measured has no `build` command. Nothing is built here."""

from __future__ import annotations

import importlib.util
import stat
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
_spec = importlib.util.spec_from_file_location("bench_build", BENCH / "build.py")
assert _spec is not None and _spec.loader is not None
build = importlib.util.module_from_spec(_spec)
sys.modules["bench_build"] = build      # its dataclasses look their module up there
_spec.loader.exec_module(build)

DOCKERFILE = (build.CONTEXT / "Dockerfile").read_text()


def test_context_is_the_issues_five_stage_build() -> None:
    steps = build.instructions(DOCKERFILE)
    froms = [args.split() for keyword, args in steps if keyword == "FROM"]
    assert [f[0] for f in froms] == ["busybox"] * 5
    assert [f[2] for f in froms[:4]] == ["stage1", "stage2", "stage3", "stage4"]
    for n in range(1, 5):
        files = sorted((build.CONTEXT / f"stage{n}").iterdir())
        assert [f.stat().st_size for f in files] == [5632] * 3     # three 5.5 KB files
        assert ("COPY", f"stage{n}/ /src/") in steps
    assert sum(keyword == "RUN" for keyword, _ in steps) == 4
    final = steps[steps.index(("FROM", "busybox")):]
    assert [args.split()[0] for keyword, args in final if keyword == "COPY"] == \
        [f"--from=stage{n}" for n in range(1, 5)]
    assert (build.CONTEXT / build.CHANGED).parent.name == "stage3"


def test_expected_cache_hits() -> None:
    assert build.expected_hits(DOCKERFILE, build.CHANGED) == (12, 8)
    assert build.expected_hits(DOCKERFILE, "stage1/main.c") == (12, 6)
    assert build.expected_hits(DOCKERFILE, "elsewhere.txt") == (12, 12)
    by_index = "FROM busybox\nCOPY a /a\nFROM busybox\nCOPY --from=0 /a /b\nRUN true\n"
    assert build.expected_hits(by_index, "a") == (3, 0)
    whole = "FROM busybox AS one\nRUN true\nCOPY . /src\nRUN true\n"
    assert build.expected_hits(whole, "x/y") == (3, 1)


def test_change_keeps_the_size_and_is_new_each_time() -> None:
    base = (build.CONTEXT / build.CHANGED).read_bytes()
    one = build.changed_content(base, "round 1")
    two = build.changed_content(base, "round 2")
    assert len(one) == len(two) == len(base)
    assert len({base, one, two}) == 3
    assert one.split(b"\n", 1)[1] == base.split(b"\n", 1)[1]


DOCKER_CLASSIC = """\
Sending build context to Docker daemon  73.73kB
Step 1/16 : FROM busybox AS stage1
 ---> 4c04bf92bd50
Step 2/16 : COPY stage1/ /src/
 ---> Using cache
 ---> 1b5d0e3b3d4f
Step 3/16 : RUN mkdir /out && cat /src/* | sha256sum > /out/stage1.sum
 ---> Running in 0a1b2c3d4e5f
Removing intermediate container 0a1b2c3d4e5f
 ---> 9f8e7d6c5b4a
Successfully built 9f8e7d6c5b4a
"""

PODMAN = """\
[1/5] STEP 1/3: FROM busybox AS stage1
[1/5] STEP 2/3: COPY stage1/ /src/
--> Using cache 5e1b0c2d7a
--> 5e1b0c2d7a
[1/5] STEP 3/3: RUN mkdir /out
--> Using cache 77aa
--> 77aa
"""

BUILDKIT_PLAIN = """\
#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 1.02kB done
#1 DONE 0.0s
#4 [stage1 1/3] FROM docker.io/library/busybox:latest
#4 CACHED
#5 [stage1 2/3] COPY stage1/ /src/
#5 CACHED
#6 [stage1 3/3] RUN mkdir /out && cat /src/* | sha256sum > /out/stage1.sum
#6 0.101 done
#6 DONE 0.2s
#9 [stage-4 2/5] COPY --from=stage1 /out/stage1.sum /results/
#9 CACHED
#10 exporting to image
#10 CACHED
"""


def test_cache_hits_counted_in_each_builders_output() -> None:
    assert build.docker_hits(DOCKER_CLASSIC) == 1
    assert build.podman_hits(PODMAN) == 2
    assert build.buildkit_hits(BUILDKIT_PLAIN) == 2    # not FROM, not exporting


def test_says_when_barque_has_no_build(tmp_path: Path) -> None:
    fake = tmp_path / "barque"
    fake.write_text("#!/bin/sh\necho \"barque: '$5' is not a barque command.\" >&2\n"
                    "echo \"See 'barque --help'\" >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    barque = build.Barque(tmp_path / "b", str(fake))
    assert build.barque_build_missing(barque) == build.MISSING
    assert "barque build" in build.MISSING
