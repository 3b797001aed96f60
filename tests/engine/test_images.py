"""The engine's image operations, called as `barque serve` will call them: plain arguments in,
plain data (rows, Docker-shaped dicts) out, errors as ImageError."""

from __future__ import annotations

import io
import os
import tarfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

from barque.engine import images as eng
from barque.engine.image_list import ImageFilterError, list_images, parse_filter_flags
from barque.image.store import ImageConflict, ImageNotFound, ImageStore
from tests.support.marks import needs_busybox

pytestmark = pytest.mark.root  # layers keep their owners


def _rootfs_tar(marker: bytes) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("marker")
        info.size = len(marker)
        tar.addfile(info, io.BytesIO(marker))
    buf.seek(0)
    return buf


@pytest.fixture
def store(tmp_path: Any) -> Iterator[ImageStore]:
    s = eng.open_store(str(tmp_path / "root"))
    yield s
    s.close()


@pytest.fixture
def three(store: ImageStore) -> list[str]:
    """old (label tier=db), mid:v1 and mid:v2 (label tier=web), new (untagged): oldest first."""
    made = []
    for ref, label in (("old:latest", "db"), ("mid:v1", "web"), (None, None)):
        changes = [f"LABEL tier={label}"] if label else []
        made.append(eng.import_image(store, _rootfs_tar(ref.encode() if ref else b"x"), ref,
                                     changes).id)
        time.sleep(0.01)  # distinct creation times
    eng.tag(store, "mid:v1", "mid:v2")
    return made


def _names(rows: list[Any]) -> list[str]:
    return sorted(f"{r.repository}:{r.tag}" for r in rows)


def test_list_images_one_row_per_tag(store: ImageStore, three: list[str]) -> None:
    rows = list_images(store)
    assert _names(rows) == ["<none>:<none>", "mid:v1", "mid:v2", "old:latest"]
    row = next(r for r in rows if r.repository == "old")
    assert row.id == three[0] and row.digest == "<none>" and row.size > 0
    assert row.created.endswith("Z")


@pytest.mark.parametrize("flags,want", [
    (["dangling=true"], ["<none>:<none>"]),
    (["dangling=false"], ["mid:v1", "mid:v2", "old:latest"]),
    (["label=tier"], ["mid:v1", "mid:v2", "old:latest"]),
    (["label=tier=web"], ["mid:v1", "mid:v2"]),
    (["label=tier=web", "label=tier=db"], []),  # label filters are ANDed
    (["reference=mid:v1"], ["mid:v1"]),  # only the matching tags are rows
    (["reference=mid"], ["mid:v1", "mid:v2"]),  # the name without its tag matches too
    (["reference=old", "reference=mid:v2"], ["mid:v2", "old:latest"]),  # ORed
    (["reference=m*"], ["mid:v1", "mid:v2"]),
    (["reference=*/mid"], []),  # Go's path.Match: '*' stops at '/'
    (["reference=mi[a-e]:v[^1]"], ["mid:v2"]),
    (["before=mid:v1"], ["old:latest"]),
    (["since=mid:v1"], ["<none>:<none>"]),
    (["since=old", "before=mid:v1"], []),
])
def test_list_images_filters(store: ImageStore, three: list[str], flags: list[str],
                             want: list[str]) -> None:
    assert _names(list_images(store, parse_filter_flags(flags))) == want


def test_list_images_by_repository(store: ImageStore, three: list[str]) -> None:
    assert _names(list_images(store, {}, "mid")) == ["mid:v1", "mid:v2"]
    assert _names(list_images(store, {}, "mid:v2")) == ["mid:v2"]
    assert list_images(store, {}, "nothing") == []


@pytest.mark.parametrize("filters,message", [
    ({"nope": ["1"]}, "Invalid filter 'nope'"),
    ({"dangling": ["maybe"]}, "Invalid filter 'dangling=maybe'"),
    ({"dangling": ["true", "false"]}, "Invalid filter"),
    ({"reference": ["a["]}, "syntax error in pattern"),
])
def test_bad_filters_are_refused(store: ImageStore, three: list[str],
                                 filters: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ImageFilterError, match=message.replace("[", r"\[")):
        list_images(store, filters)


def test_filter_flags_need_name_and_value() -> None:
    assert parse_filter_flags(["a=b", "a=c", "label=x=y"]) == {"a": ["b", "c"],
                                                               "label": ["x=y"]}
    with pytest.raises(ImageFilterError, match="bad format of filter"):
        parse_filter_flags(["dangling"])


def test_before_an_unknown_image(store: ImageStore, three: list[str]) -> None:
    with pytest.raises(ImageNotFound):
        list_images(store, {"before": ["ghost"]})


def test_tag_inspect_history(store: ImageStore, three: list[str]) -> None:
    assert eng.tag(store, "old", "again:1") == "docker.io/library/again:1"
    data = eng.inspect_named(store, "again:1")
    assert data["Id"] == three[0]
    assert sorted(data["RepoTags"]) == ["again:1", "old:latest"]
    assert data["Config"]["Labels"] == {"tier": "db"}
    rows = eng.history(store, "again:1")
    assert rows[0].id == three[0] and rows[0].comment == "Imported from -"
    with pytest.raises(ImageNotFound):
        eng.inspect_named(store, "ghost")
    with pytest.raises(ImageNotFound):
        eng.history(store, "ghost")


def test_remove_and_prune_in_docker_shapes(store: ImageStore, three: list[str]) -> None:
    assert eng.remove(store, "mid:v2") == [{"Untagged": "mid:v2"}]
    done = eng.remove(store, "mid:v1")
    assert done[0] == {"Untagged": "mid:v1"} and {"Deleted": three[1]} in done
    store.hold("a-container", store.get(three[0]))
    with pytest.raises(ImageConflict):
        eng.remove(store, three[0])
    report = eng.prune(store)  # the untagged image goes; the held one stays
    assert {"Deleted": three[2]} in report["ImagesDeleted"]
    assert report["SpaceReclaimed"] > 0
    assert [i.id for i in store.images()] == [three[0]]
    assert eng.prune(store, all_images=True) == {"ImagesDeleted": [], "SpaceReclaimed": 0}


def test_save_to_a_path_then_load(store: ImageStore, three: list[str], tmp_path: Any) -> None:
    out = str(tmp_path / "old.tar")
    with pytest.raises(ImageNotFound):
        eng.save(store, ["old", "ghost"], out)
    assert not os.path.exists(out)  # no half archive, not even an empty one
    eng.save(store, ["old"], out)
    eng.remove(store, "old")
    assert eng.load(store, out) == ["Loaded image: old:latest"]
    assert eng.inspect_named(store, "old")["Id"] == three[0]


def test_import_from_a_path(store: ImageStore, tmp_path: Any) -> None:
    path = tmp_path / "fs.tar"
    path.write_bytes(_rootfs_tar(b"from a file").getvalue())
    image = eng.import_image(store, str(path), "fromfile:1", ["CMD [\"true\"]"], "hello")
    data = eng.inspect_named(store, "fromfile:1")
    assert data["Id"] == image.id and data["Config"]["Cmd"] == ["true"]
    assert data["Comment"] == "hello"
    with pytest.raises(FileNotFoundError):
        eng.import_image(store, str(tmp_path / "missing.tar"))


def test_a_label_filter_with_an_empty_value_wants_an_empty_label(store: ImageStore) -> None:
    # filters.Args.MatchKVList: "key=" is the key with the empty value, not any value.
    eng.import_image(store, _rootfs_tar(b"e"), "empty:1", ["LABEL note="])
    eng.import_image(store, _rootfs_tar(b"f"), "full:1", ["LABEL note=x"])
    assert _names(list_images(store, {"label": ["note="]})) == ["empty:1"]
    assert _names(list_images(store, {"label": ["note"]})) == ["empty:1", "full:1"]


@needs_busybox
def test_the_default_image_saved_then_loaded(store: ImageStore, tmp_path: Any) -> None:
    out = str(tmp_path / "busybox.oci")
    eng.save_default_image(str(tmp_path / "other-root"), out)
    lines = eng.load(store, out)
    assert len(lines) == 1 and "busybox" in lines[0]
    assert eng.inspect_named(store, "busybox")["Id"] == eng.ensure_default_image(store).id
