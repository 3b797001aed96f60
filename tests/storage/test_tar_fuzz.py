"""Fuzz the layer unpacker with hostile tars (hypothesis; the atheris harness is
fuzz/tar_unpack.py, whose property check this shares): absolute names, `..`, symlinks then
entries through them, hard links out of the layer, device nodes, huge and lying sizes, sparse
pax headers, whiteouts of `..`, duplicates, long names, pax overrides, corrupt and cut
streams. Only LayerError may come out, and nothing outside the target dir may change."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from barque.storage.layers import LayerError, unpack_layer
from fuzz import tars
from fuzz.tar_unpack import MEDIA, check_unpack
from tests.support.fuzzing import fuzz_settings

pytestmark = pytest.mark.root  # layers keep their owners and device nodes


def _name(prefix: str, parts: list[str], slash: bool) -> str:
    return prefix + "/".join(parts) + ("/" if slash else "")


# Benign names four times as likely as odd ones, so that tars get past their first entry.
components = st.sampled_from(tars.COMPONENTS * 4 + tars.ODD_COMPONENTS)
names = st.builds(_name, st.sampled_from(tars.PREFIXES * 8 + tars.ODD_PREFIXES),
                  st.lists(components, min_size=1, max_size=4), st.booleans())
targets = st.one_of(st.sampled_from(tars.TARGETS), names)
pax = st.dictionaries(st.sampled_from(tars.PAX_KEYS),
                      st.one_of(st.sampled_from(tars.PAX_VALUES), st.text(max_size=8)),
                      max_size=3)
members = st.builds(
    tars.Member,
    kind=st.sampled_from(tars.KINDS),
    name=names,
    target=targets,
    data=st.one_of(st.just(b"pwned"), st.binary(max_size=64)),
    size=st.one_of(st.none(), st.none(), st.none(), st.sampled_from(tars.SIZES)),
    pax=st.one_of(st.just({}), st.just({}), pax),
    mode=st.sampled_from((0o644, 0o755, 0o4755, 0o7777, 0o000, 8 ** 8 - 1, -1)),
    uid=st.sampled_from((0, 0, 1000, 2 ** 32 - 1, 8 ** 7 - 1, 2 ** 40, -1)),
    gid=st.sampled_from((0, 0, 1000, -1)),
    dev=st.sampled_from(((0, 0), (1, 3), (8, 0), (-1, 0), (4095, 1 << 20))),
    raw_type=st.sampled_from((b"S", b"K", b"L", b"x", b"g", b"7", b"V", b"\0", b"9")),
)
hostile_tars = st.builds(
    tars.Tar,
    members=st.lists(members, max_size=10),
    fmt=st.sampled_from(tars.FORMATS),
    end=st.sampled_from((2, 2, 2, 0, 1, 3)),
    trailing=st.sampled_from((b"", b"", b"", b"\0" * 512, b"junk")),
    compression=st.sampled_from(("", "", "", "gzip", "zstd")),
    truncate=st.one_of(st.none(), st.none(), st.none(), st.integers(0, 4096)),
    flips=st.one_of(st.just([]), st.just([]), st.lists(
        st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)), max_size=3)),
)


@pytest.fixture(scope="module")
def parent(run_prefix: str) -> Iterator[str]:
    path = tempfile.mkdtemp(prefix=f"{run_prefix}-tarfuzz-")
    yield path
    shutil.rmtree(path)


@fuzz_settings(200)
@given(tar=hostile_tars, media=st.sampled_from(MEDIA))
def test_hostile_tars_fail_cleanly_and_stay_inside(parent: str, tar: tars.Tar,
                                                  media: str) -> None:
    # check_unpack makes case<N>/canary beside the target, N its next case number.
    from fuzz import tar_unpack

    canary = os.path.join(parent, f"case{tar_unpack._COUNT[0] + 1}", "canary")
    check_unpack(tars.serialise(tar, canary), media, parent)


@fuzz_settings(100)
@given(blob=st.binary(max_size=2048), media=st.sampled_from(MEDIA))
def test_random_bytes_fail_cleanly(parent: str, blob: bytes, media: str) -> None:
    check_unpack(blob, media, parent)


@pytest.mark.parametrize("name", [".wh.victim", ".wh..wh.plnk", "etc/.wh..wh.aufs"])
def test_a_skipped_member_claiming_exabytes_fails_at_once(parent: str, name: str) -> None:
    """Found by fuzzing: tarfile skips a member's data by reading it and never stops at the
    stream's end, so a 1.5 KiB layer whose whiteout claimed 4 EiB hung the unpacker (pull,
    load, import) forever."""
    import signal

    info = tarfile.TarInfo(name)
    info.size = 1 << 62
    blob = info.tobuf(tarfile.PAX_FORMAT)

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("the unpacker spins on a member claiming 4 EiB")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        with pytest.raises(LayerError, match="unexpected end of data"):
            unpack_layer(io.BytesIO(blob), MEDIA[0], os.path.join(parent, "exabytes"))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert not os.path.lexists(os.path.join(parent, "exabytes"))
