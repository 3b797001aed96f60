"""--cache-to type=local / --cache-from type=local: a build's cache kept in a directory (an
OCI layout) and read back on a fresh root or after `builder prune -a`; mode=min and max; a
failed export leaves the previous cache whole; a tampered directory never gives a layer."""

from __future__ import annotations

import json
import os

import pytest

from barque.build import cache_local
from barque.build.cache import BuildCache
from barque.build.options import CacheExport
from barque.engine.build import BuildFailed
from barque.engine.context import Engine
from barque.image import oci_layout as ol
from tests.build.conftest import Recorder, build_recorded
from tests.build.executors import Recording

pytestmark = [pytest.mark.root, pytest.mark.slow]

DOCKERFILE = """\
FROM busybox
ENV GREETING=hello
WORKDIR /app
COPY a.txt ./
RUN echo "$GREETING" > made.txt && cat a.txt >> made.txt
RUN echo second > second.txt
CMD ["cat", "/app/made.txt"]
"""

MULTI = """\
FROM busybox AS src
RUN echo made > /out
FROM busybox
COPY --from=src /out /o
RUN cat /o > /seen
"""


def _build(engine: Engine, context: str, text: str = DOCKERFILE,
           **kw: object) -> tuple[str, Recorder, Recording]:
    return build_recorded(engine, context, text, **kw)


@pytest.fixture
def cache_dir(tmp_path: os.PathLike[str]) -> str:
    return os.path.join(str(tmp_path), "ci-cache", "build")


def _context(context: str, a: str = "alpha\n") -> str:
    with open(os.path.join(context, "a.txt"), "w") as f:
        f.write(a)
    return context


def _manifest(layout: str) -> dict:
    [desc] = ol.read_index(layout)["manifests"]
    assert desc["annotations"] == {ol.ANNOTATION_REF_NAME: "latest"}
    return ol.read_json_blob(layout, desc)


def _config(layout: str) -> dict:
    return ol.read_json_blob(layout, _manifest(layout)["config"])


def test_export_is_an_oci_layout_with_the_steps_records(engine: Engine, context: str,
                                                        cache_dir: str) -> None:
    _build(engine, _context(context), cache_to=[CacheExport(cache_dir)])
    assert sorted(os.listdir(cache_dir)) == ["blobs", "index.json", "oci-layout"]
    manifest = _manifest(cache_dir)
    assert manifest["mediaType"] == ol.MEDIA_MANIFEST
    assert manifest["config"]["mediaType"] == cache_local.MEDIA_CACHE_CONFIG
    config = _config(cache_dir)
    assert len(config["records"]) == 6  # every step after FROM, the metadata ones too
    assert [la["blob"] for la in config["layers"]] == [
        d["digest"] for d in manifest["layers"]]
    for desc in manifest["layers"]:  # every blob there, checked against its digest
        ol.read_blob(cache_dir, desc)
    # nothing left beside it
    assert os.listdir(os.path.dirname(cache_dir)) == ["build"]


def test_fresh_root_takes_every_step_from_the_directory(engine: Engine, fresh: Engine,
                                                        context: str, cache_dir: str) -> None:
    image_id, _, _ = _build(engine, _context(context), cache_to=[CacheExport(cache_dir)])
    again, events, executor = _build(fresh, context, cache_from_local=[cache_dir],
                                     tags=["mine:1"])
    assert again == image_id
    assert executor.runs == []
    assert all(v.cached for v in events.steps()), [(v.name, v.cached) for v in events.steps()]
    assert any(v.name == f"importing cache manifest from local:{cache_dir}" and not v.error
               for v in events.vertices.values())
    assert fresh.store.resolve("mine:1").id == image_id
    # The image's layers are now the fresh root's own: it runs without the directory.
    assert all(os.path.isdir(fresh.store.layer_path(la.chain_id))
               for la in fresh.store.resolve("mine:1").layers)


def test_after_builder_prune_all_every_step_is_cached(engine: Engine, context: str,
                                                     cache_dir: str) -> None:
    image_id, _, _ = _build(engine, _context(context), tags=["app:1"],
                            cache_to=[CacheExport(cache_dir)])
    BuildCache(engine.store.conn).prune(all_entries=True)
    engine.store.remove("app:1")
    engine.store.collect_garbage()
    again, events, executor = _build(engine, context, cache_from_local=[cache_dir])
    assert again == image_id and executor.runs == []
    assert all(v.cached for v in events.steps())


def test_changed_file_runs_only_what_follows(engine: Engine, fresh: Engine, context: str,
                                             cache_dir: str) -> None:
    _build(engine, _context(context), cache_to=[CacheExport(cache_dir)])
    _context(context, a="changed\n")
    _, events, executor = _build(fresh, context, cache_from_local=[cache_dir])
    assert len(executor.runs) == 2
    assert [v.cached for v in events.steps()] == [True, True, False, False, False]


def test_mode_min_has_the_final_stage_mode_max_every_stage(engine: Engine, fresh: Engine,
                                                          context: str, tmp_path: str) -> None:
    low, high = os.path.join(str(tmp_path), "min"), os.path.join(str(tmp_path), "max")
    image_id, _, _ = _build(engine, context, MULTI,
                            cache_to=[CacheExport(low), CacheExport(high, "max")])
    assert len(_config(high)["records"]) == len(_config(low)["records"]) + 1
    # min: the source stage runs again (its COPY --from is then found by content)
    again, events, executor = _build(fresh, context, MULTI, cache_from_local=[low])
    assert [r.args[-1] for r in executor.runs] == ["echo made > /out"]
    assert again == image_id
    BuildCache(fresh.store.conn).prune(all_entries=True)
    # max: nothing runs
    again, events, executor = _build(fresh, context, MULTI, cache_from_local=[high])
    assert executor.runs == [] and again == image_id
    assert all(v.cached for v in events.steps())


def test_export_replaces_the_previous_one(engine: Engine, context: str,
                                          cache_dir: str) -> None:
    _build(engine, _context(context), cache_to=[CacheExport(cache_dir)])
    first = _manifest(cache_dir)
    _context(context, a="changed\n")
    _build(engine, context, cache_to=[CacheExport(cache_dir)])
    second = _manifest(cache_dir)
    assert first != second
    # only the new export's blobs: the old one was swapped out whole
    blobs = set(os.listdir(os.path.join(cache_dir, "blobs", "sha256")))
    wanted = {d["digest"].split(":")[1] for d in (second["config"], *second["layers"])}
    assert blobs == wanted | {ol.read_index(cache_dir)["manifests"][0]["digest"].split(":")[1]}
    assert os.listdir(os.path.dirname(cache_dir)) == ["build"]


def test_failed_export_leaves_the_previous_cache_whole(engine: Engine, fresh: Engine,
                                                       context: str, cache_dir: str,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    image_id, _, _ = _build(engine, _context(context), cache_to=[CacheExport(cache_dir)])
    with open(os.path.join(cache_dir, "index.json"), "rb") as f:
        index = f.read()
    copied: list[str] = []
    real = cache_local._copy_blob

    def copy_then_fail(src: str, dst: str) -> None:  # a full disk after the first blob
        if copied:
            raise OSError(28, "No space left on device")
        real(src, dst)
        copied.append(dst)

    monkeypatch.setattr(cache_local, "_copy_blob", copy_then_fail)
    _context(context, a="changed\n")
    with pytest.raises(BuildFailed, match="failed to export cache: .*No space left"):
        _build(engine, context, cache_to=[CacheExport(cache_dir)])
    monkeypatch.undo()
    assert copied  # the export was under way when it failed
    with open(os.path.join(cache_dir, "index.json"), "rb") as f:
        assert f.read() == index
    assert os.listdir(os.path.dirname(cache_dir)) == ["build"]  # no half-written dir
    _context(context)
    again, _, executor = _build(fresh, context, cache_from_local=[cache_dir])
    assert again == image_id and executor.runs == []


def test_a_directory_of_the_users_is_never_replaced(engine: Engine, context: str,
                                                    tmp_path: str) -> None:
    mine = os.path.join(str(tmp_path), "mine")
    os.makedirs(mine)
    with open(os.path.join(mine, "notes.txt"), "w") as f:
        f.write("keep\n")
    with pytest.raises(BuildFailed, match="not empty and not a cache directory"):
        _build(engine, _context(context), cache_to=[CacheExport(mine)])
    assert os.listdir(mine) == ["notes.txt"]


def test_missing_directory_is_skipped(engine: Engine, context: str, tmp_path: str) -> None:
    missing = os.path.join(str(tmp_path), "nothing")
    _, events, executor = _build(engine, _context(context), cache_from_local=[missing])
    assert len(executor.runs) == 2
    [failed] = [v for v in events.vertices.values()
                if v.name == f"importing cache manifest from local:{missing}"]
    assert failed.error and "index.json" in failed.error


def _rewrite_config(layout: str, change: object) -> None:
    """Replace the layout's cache config with `change(config)`, the manifest and index
    rewritten to match (a hand-made directory: every digest in it right)."""
    manifest = _manifest(layout)
    config = _config(layout)
    change(config)  # type: ignore[operator]
    data = ol.canonical_json(config)
    manifest["config"] = ol.descriptor(cache_local.MEDIA_CACHE_CONFIG, data)
    ol.write_blob(layout, data)
    m = ol.canonical_json(manifest)
    ol.write_blob(layout, m)
    ol.write_index(layout, {"schemaVersion": 2, "manifests": [ol.descriptor(
        ol.MEDIA_MANIFEST, m, annotations={ol.ANNOTATION_REF_NAME: "latest"})]})


def test_tampered_layer_is_never_taken(engine: Engine, fresh: Engine, context: str,
                                       cache_dir: str) -> None:
    """A layer blob whose content is not its digest (a tampered shared cache): the step
    that needs it runs, and the store never holds the forged content."""
    _build(engine, _context(context), cache_to=[CacheExport(cache_dir)])
    config = _config(cache_dir)
    last = config["layers"][-1]["blob"]   # the last RUN's layer
    path = ol.blob_path(cache_dir, last)
    os.chmod(path, 0o644)
    with open(path, "wb") as f:
        f.write(b"forged")
    _, _, executor = _build(fresh, context, cache_from_local=[cache_dir])
    assert [r.args[-1] for r in executor.runs] == ["echo second > second.txt"]
    assert not fresh.store.blobs.has(last) or fresh.store.blobs.size(last) != 6


@pytest.mark.parametrize("change", [
    lambda c: c["layers"][0].update(blob="sha256:../../../../etc/passwd"),
    lambda c: c["layers"][0].update(mediaType="text/plain"),
    lambda c: c.update(layers="x"),
])
def test_malformed_config_is_refused(engine: Engine, context: str, cache_dir: str,
                                     change: object) -> None:
    _build(engine, _context(context), cache_to=[CacheExport(cache_dir)])
    _rewrite_config(cache_dir, change)
    with pytest.raises(cache_local.CacheError, match="cache config"):
        cache_local.load(cache_dir)


def test_records_naming_other_layers_are_skipped(engine: Engine, context: str,
                                                 cache_dir: str) -> None:
    _build(engine, _context(context), cache_to=[CacheExport(cache_dir)])

    def change(c: dict) -> None:
        c["records"][0]["layers"] = [99]
        c["records"][1]["layers"] = ["0"]
        c["records"][2]["key"] = "md5:x"

    _rewrite_config(cache_dir, change)
    found = cache_local.load(cache_dir)
    assert len(found) == 3
    assert all(len(imp.layers) == imp.count for imp in found.values())
    json.dumps([imp.created for imp in found.values()])


def test_what_a_killed_export_left_is_reclaimed(engine: Engine, context: str,
                                                cache_dir: str) -> None:
    """A dir a killed export left beside DEST goes at the next export; one a running export
    holds (locked) stays, and so does anything not named as an export's."""
    from barque.linux import locks

    parent = os.path.dirname(cache_dir)
    os.makedirs(parent)
    dead, live, other = (os.path.join(parent, n) for n in (
        ".build" + cache_local.TEMP_PREFIX + "dead", ".build" + cache_local.TEMP_PREFIX + "live",
        ".other" + cache_local.TEMP_PREFIX + "x"))
    for path in (dead, live, other):
        os.makedirs(os.path.join(path, "blobs"))
    fd = locks.open_dir(live)
    locks.lock(fd)
    try:
        _build(engine, _context(context), cache_to=[CacheExport(cache_dir)])
    finally:
        os.close(fd)
    assert sorted(os.listdir(parent)) == sorted(["build", os.path.basename(live),
                                                 os.path.basename(other)])


def test_ignore_error_keeps_the_build(engine: Engine, context: str, tmp_path: str) -> None:
    """`ignore-error=true`: an export that fails is shown, and the build still succeeds."""
    mine = os.path.join(str(tmp_path), "mine")
    os.makedirs(mine)
    with open(os.path.join(mine, "notes.txt"), "w") as f:
        f.write("keep\n")
    _, events, _ = _build(engine, _context(context),
                          cache_to=[CacheExport(mine, ignore_error=True)])
    [v] = [v for v in events.vertices.values()
           if v.name == "exporting cache to client directory"]
    assert v.error and "not a cache directory" in v.error
    assert os.listdir(mine) == ["notes.txt"]


def test_endless_files_never_stall_the_build(engine: Engine, fresh: Engine, context: str,
                                             cache_dir: str) -> None:
    """A layer blob that is a symlink to /dev/zero, an index.json that is a FIFO: the import
    refuses them (the step runs; the cache is skipped), nothing reads without end."""
    _build(engine, _context(context), cache_to=[CacheExport(cache_dir)])
    last = _config(cache_dir)["layers"][-1]["blob"]
    path = ol.blob_path(cache_dir, last)
    os.unlink(path)
    os.symlink("/dev/zero", path)
    _, _, executor = _build(fresh, context, cache_from_local=[cache_dir])
    assert [r.args[-1] for r in executor.runs] == ["echo second > second.txt"]
    index = os.path.join(cache_dir, "index.json")
    os.unlink(index)
    os.mkfifo(index)
    BuildCache(fresh.store.conn).prune(all_entries=True)
    _, events, executor = _build(fresh, context, cache_from_local=[cache_dir])
    assert len(executor.runs) == 2
    [v] = [v for v in events.vertices.values() if v.name.startswith("importing cache")]
    assert v.error and "not a regular file" in v.error
