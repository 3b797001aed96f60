"""--cache-from: an image's recorded step keys (its inline cache) seed a build's cache, on a
fresh root or after `builder prune -a`, with the image local or pulled from a real registry
(docker-registry on 127.0.0.1)."""

from __future__ import annotations

import os

import pytest

from barque.build.cache import CONFIG_FIELD, BuildCache
from barque.engine import images
from barque.engine.build import BuildFailed
from barque.engine.context import Engine
from tests.build.conftest import Recorder, build_recorded
from tests.build.executors import Recording
from tests.support.registry import Registry

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.usefixtures("private_docker_config")]

DOCKERFILE = """\
FROM busybox
ENV GREETING=hello
WORKDIR /app
COPY a.txt b.txt ./
RUN echo "$GREETING" > made.txt && cat a.txt >> made.txt
LABEL stage=one
RUN echo second > second.txt
CMD ["cat", "/app/made.txt"]
"""


def _build(engine: Engine, context: str, text: str = DOCKERFILE,
           **kw: object) -> tuple[str, Recorder, Recording]:
    return build_recorded(engine, context, text, **kw)


def _context(context: str, a: str = "alpha\n") -> str:
    with open(os.path.join(context, "a.txt"), "w") as f:
        f.write(a)
    with open(os.path.join(context, "b.txt"), "w") as f:
        f.write("beta\n")
    return context


def _pushed(engine: Engine, context: str, registry: Registry, name: str) -> tuple[str, str]:
    """Build DOCKERFILE and push it: (the image ID, its name in the registry)."""
    ref = f"{registry.host}/cachefrom/{name}:latest"
    image_id, _, _ = _build(engine, context, tags=[ref])
    images.push(engine.store, ref)
    return image_id, ref


def _forget(engine: Engine, ref: str) -> None:
    """`builder prune -a`, `rmi REF` and the collector: nothing of the build is left."""
    BuildCache(engine.store.conn).prune(all_entries=True)
    engine.store.remove(ref)
    engine.store.collect_garbage()
    assert engine.store.lookup(ref) is None


def _manifest_gets(registry: Registry, name: str) -> int:
    return registry.count("GET", f"/v2/cachefrom/{name}/manifests/latest")


def test_image_records_its_steps_keys(engine: Engine, context: str) -> None:
    image_id, events, _ = _build(engine, _context(context), tags=["app:1"])
    config = engine.store.config(engine.store.resolve("app:1"))
    records = config[CONFIG_FIELD]
    assert len(records) == 7  # every step, the metadata ones (which have no vertex) too
    assert len(events.steps()) == 5
    counts = [r[1] for r in records]  # each step's result: a prefix of the image's layers
    assert counts == sorted(counts) and counts[-1] == len(config["rootfs"]["diff_ids"])
    assert counts[1] == counts[0] + 1  # WORKDIR made a layer, ENV did not
    assert all(r[0].startswith("sha256:") for r in records)
    # An image built on it records its own steps only, never its base's.
    _, _, _ = _build(engine, context, "FROM app:1\nRUN true\n", tags=["app:2"])
    config2 = engine.store.config(engine.store.resolve("app:2"))
    keys = {r[0] for r in config2[CONFIG_FIELD]}
    assert len(config2[CONFIG_FIELD]) == 1 and not keys & {r[0] for r in records}


def test_fresh_root_from_registry_reuses_every_step(engine: Engine, fresh: Engine,
                                                    context: str, registry: Registry) -> None:
    image_id, ref = _pushed(engine, _context(context), registry, "fresh")
    again, events, executor = _build(fresh, context, cache_from=[ref], tags=["mine:1"])
    assert again == image_id
    assert executor.runs == []  # no RUN ran: the image's layers were taken
    assert all(v.cached for v in events.steps()), [(v.name, v.cached) for v in events.steps()]
    assert any(v.name == f"importing cache manifest from {ref}" and not v.error
               for v in events.vertices.values())
    assert fresh.store.resolve("mine:1").id == image_id
    # The cache-from image's entries are now the local cache: a rebuild reads nothing else.
    before = _manifest_gets(registry, "fresh")
    third, events, executor = _build(fresh, context, cache_from=[ref])
    assert third == image_id and executor.runs == []
    assert _manifest_gets(registry, "fresh") == before


def test_after_prune_and_rmi_pulls_and_reuses(engine: Engine, context: str,
                                              registry: Registry) -> None:
    image_id, ref = _pushed(engine, _context(context), registry, "pruned")
    _forget(engine, ref)
    before = _manifest_gets(registry, "pruned")
    again, events, executor = _build(engine, context, cache_from=[ref])
    assert again == image_id and executor.runs == []
    assert all(v.cached for v in events.steps())
    assert _manifest_gets(registry, "pruned") == before + 1  # pulled, once


def test_local_hits_pull_nothing(engine: Engine, context: str, registry: Registry) -> None:
    image_id, ref = _pushed(engine, _context(context), registry, "local")
    engine.store.remove(ref)  # the image is gone, its cache entries are not
    before = _manifest_gets(registry, "local")
    again, events, executor = _build(engine, context, cache_from=[ref])
    assert again == image_id and executor.runs == []
    assert _manifest_gets(registry, "local") == before  # never asked for
    assert not any(v.name.startswith("importing cache manifest")
                   for v in events.vertices.values())


def test_changed_steps_run_the_rest_come_from_the_image(engine: Engine, fresh: Engine,
                                                        context: str,
                                                        registry: Registry) -> None:
    image_id, ref = _pushed(engine, _context(context), registry, "partial")
    changed = DOCKERFILE.replace("echo second", "echo other")
    new_id, events, executor = _build(fresh, context, changed, cache_from=[ref])
    assert new_id != image_id
    assert [r.args[-1] for r in executor.runs] == ["echo other > second.txt"]
    cached = {v.name.split("] ", 1)[1]: v.cached for v in events.steps()}
    assert cached["RUN echo other > second.txt"] is False
    assert cached["COPY a.txt b.txt ./"] and cached['RUN echo "$GREETING" > made.txt '
                                                   '&& cat a.txt >> made.txt']
    # A changed source file: its COPY and everything after it run.
    _context(context, a="changed\n")
    _, events, executor = _build(fresh, context, cache_from=[ref])
    assert len(executor.runs) == 2
    assert [v.cached for v in events.steps()] == [True, True, False, False, False]


def test_missing_cache_image_is_skipped(engine: Engine, context: str,
                                        registry: Registry) -> None:
    ref = f"{registry.host}/cachefrom/nothing:latest"
    image_id, events, executor = _build(engine, _context(context), cache_from=[ref])
    assert len(executor.runs) == 2
    failed = [v for v in events.vertices.values()
              if v.name == f"importing cache manifest from {ref}"]
    assert len(failed) == 1 and failed[0].error


def test_other_cache_kinds_are_refused(engine: Engine, context: str) -> None:
    with pytest.raises(BuildFailed, match="unsupported --cache-from"):
        _build(engine, _context(context), cache_from=["type=local,src=/tmp/cache"])


def test_multistage_copy_from_is_found_by_content(engine: Engine, fresh: Engine,
                                                  context: str, registry: Registry) -> None:
    """Only the final stage's steps are in the image (BuildKit's inline cache, mode=min): a
    source stage runs again on a fresh root, and the COPY --from it is found by the content
    it copies, so the rest of the final stage and the image ID are the same."""
    text = ("FROM busybox AS src\nRUN echo made > /out\n"
            "FROM busybox\nCOPY --from=src /out /o\nRUN cat /o > /seen\n")
    ref = f"{registry.host}/cachefrom/multi:latest"
    image_id, _, _ = _build(engine, context, text, tags=[ref])
    images.push(engine.store, ref)
    again, events, executor = _build(fresh, context, text, cache_from=[ref])
    assert [r.args[-1] for r in executor.runs] == ["echo made > /out"]
    cached = {v.name.split("] ", 1)[1]: v.cached for v in events.steps()}
    assert cached["COPY --from=src /out /o"] and cached["RUN cat /o > /seen"]
    assert again == image_id


def test_local_image_after_builder_prune(engine: Engine, context: str) -> None:
    image_id, _, _ = _build(engine, _context(context), tags=["app:cache"])
    BuildCache(engine.store.conn).prune(all_entries=True)
    engine.store.collect_garbage()  # (the image keeps its layers)
    again, events, executor = _build(engine, context, cache_from=["app:cache"])
    assert again == image_id and executor.runs == []
    assert all(v.cached for v in events.steps())
    # The build cache has the image's steps again: `system df`'s Build Cache row.
    usage = BuildCache(engine.store.conn).usage()
    assert usage and all(u.description == "imported from app:cache" for u in usage)


@pytest.mark.parametrize("field", [
    None, "x", {"a": 1}, [["sha256:" + "a" * 64, 3, "t"]],         # more layers than it has
    [["sha256:" + "a" * 64, -1, "t"]], [["sha256:" + "a" * 64, True, "t"]],
    [["md5:x", 1, "t"]], [["sha256:" + "a" * 64, 1]], [[1, 1, "t"]],
    [["sha256:" + "a" * 64, 1, 5]],
])
def test_malformed_records_are_skipped(field: object) -> None:
    from barque.build.cache import records

    assert records({CONFIG_FIELD: field}, ["l1", "l2"], "img") == {}
    good = ["sha256:" + "b" * 64, 2, "t"]
    found = records({CONFIG_FIELD: [good, good[:1] + [1, "u"]]}, ["l1", "l2"], "img")
    assert list(found) == [good[0]] and found[good[0]].count == 2  # the first one wins
