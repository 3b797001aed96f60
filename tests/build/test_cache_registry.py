"""--cache-to type=registry,ref=R / --cache-from R: a build's cache pushed as a cache manifest
of its own (not an image) to a real registry (docker-registry on 127.0.0.1) and read back by
a build on a fresh root, each layer fetched only when a step needs it."""

from __future__ import annotations

import pytest

from barque.build import cache_local
from barque.build.options import CacheExport
from barque.engine.context import Engine
from tests.build.test_cache_local import DOCKERFILE, MULTI, _build, _context
from tests.support.registry import Registry

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.usefixtures("private_docker_config")]


def test_fresh_root_takes_every_step_from_the_registry(engine: Engine, fresh: Engine,
                                                       context: str,
                                                       registry: Registry) -> None:
    ref = f"{registry.host}/cache/app:buildcache"
    image_id, _, _ = _build(engine, _context(context),
                            cache_to=[CacheExport(ref, type="registry")])
    again, events, executor = _build(fresh, context, cache_from=[ref])
    assert again == image_id and executor.runs == []
    assert all(v.cached for v in events.steps()), [(v.name, v.cached) for v in events.steps()]
    assert any(v.name == f"importing cache manifest from {ref}" and not v.error
               for v in events.vertices.values())


def test_mode_max_in_a_registry(engine: Engine, fresh: Engine, context: str,
                                registry: Registry) -> None:
    ref = f"{registry.host}/cache/multi:max"
    image_id, _, _ = _build(engine, context, MULTI,
                            cache_to=[CacheExport(ref, "max", type="registry")])
    again, _, executor = _build(fresh, context, MULTI, cache_from=[ref])
    assert again == image_id and executor.runs == []


def test_only_the_layers_a_step_needs_are_fetched(engine: Engine, fresh: Engine,
                                                  context: str, registry: Registry) -> None:
    ref = f"{registry.host}/cache/partial:c"
    _build(engine, _context(context), cache_to=[CacheExport(ref, type="registry")])
    before = _blob_gets(registry, "partial")
    _context(context, a="changed\n")  # the COPY and both RUNs run: only WORKDIR's layer
    _, _, executor = _build(fresh, context, DOCKERFILE, cache_from=[ref])
    assert len(executor.runs) == 2
    assert _blob_gets(registry, "partial") - before == 2  # the config and WORKDIR's layer


def _blob_gets(registry: Registry, name: str) -> int:
    return sum(1 for m, p, s in registry.access_log()
               if m == "GET" and p.startswith(f"/v2/cache/{name}/blobs/") and s == 200)


def test_an_image_is_not_a_cache_manifest(engine: Engine, context: str,
                                         registry: Registry) -> None:
    """build_cache.load refuses an image (the builder then reads its inline records, as
    before: tests/build/test_cache_from.py)."""
    from barque.engine import build_cache, images

    ref = f"{registry.host}/cache/image:1"
    _build(engine, _context(context), tags=[ref])
    images.push(engine.store, ref)
    with pytest.raises(cache_local.CacheError, match="not a cache Barque wrote"):
        build_cache.load(engine.store, ref)
