"""The runtime's cache of compiled seccomp programs (barque/runtime/seccomp_cache.py): what it
returns is what libseccomp compiles, and nothing it cannot vouch for is ever used."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from barque.linux import seccomp as sc
from barque.runtime import seccomp_cache as cache
from tests.support.bundles import Runtime
from tests.support.marks import needs_busybox


def profile(errno_ret: int = 28, *names: str) -> dict:
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": list(names or ("mkdir", "mkdirat")), "action": "SCMP_ACT_ERRNO",
                      "errnoRet": errno_ret}],
    }


def deny_default() -> dict:
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["read", "write", "exit_group", "openat"],
                      "action": "SCMP_ACT_ALLOW"}],
    }


def entry(root: Path, prof: dict) -> Path:
    return root / cache.DIR_NAME / cache.cache_key(prof).hex()


def fresh(prof: dict) -> sc.Program:
    return sc.compile_filter(prof)


def assert_same(a: sc.Program, b: sc.Program) -> None:
    assert (a.program, a.flags, a.uses_notify) == (b.program, b.flags, b.uses_notify)


@pytest.mark.parametrize("prof", [profile(), deny_default()], ids=["allow", "deny"])
def test_cached_program_is_what_libseccomp_compiles(tmp_path: Path, prof: dict) -> None:
    first = cache.compiled(str(tmp_path), prof)
    assert_same(first, fresh(prof))
    path = entry(tmp_path, prof)
    assert path.is_file()
    assert (os.stat(path).st_mode & 0o777, os.stat(path.parent).st_mode & 0o777) == (0o600, 0o700)
    assert_same(cache.compiled(str(tmp_path), prof), first)


def test_a_hit_does_not_compile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prof = profile()
    want = cache.compiled(str(tmp_path), prof)

    def refuse(_: dict) -> sc.Program:
        raise AssertionError("compiled again although the cache holds the program")

    monkeypatch.setattr(sc, "compile_filter", refuse)
    assert_same(cache.compiled(str(tmp_path), prof), want)


def test_different_profiles_get_different_programs(tmp_path: Path) -> None:
    one, two, three = profile(28), profile(13), profile(28, "mkdir", "rmdir")
    programs = [cache.compiled(str(tmp_path), p) for p in (one, two, three)]
    assert len({cache.cache_key(p) for p in (one, two, three)}) == 3
    assert len({p.program for p in programs}) == 3
    for p, got in zip((one, two, three), programs, strict=True):
        assert_same(got, fresh(p))
        assert_same(cache.compiled(str(tmp_path), p), fresh(p))
    assert len(os.listdir(tmp_path / cache.DIR_NAME)) == 3


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


@pytest.mark.parametrize("damage", [
    "program_byte", "header_key", "digest", "count", "truncated", "extended", "empty", "magic",
])
def test_a_damaged_entry_is_rejected_and_rebuilt(tmp_path: Path, damage: str) -> None:
    prof = deny_default()
    cache.compiled(str(tmp_path), prof)
    path = entry(tmp_path, prof)
    good = path.read_bytes()
    head = cache.HEADER_SIZE
    bad = {
        "program_byte": lambda d: _flip(d, len(d) - 3),  # e.g. a return value: ALLOW vs ERRNO
        "header_key": lambda d: _flip(d, 12),
        "digest": lambda d: _flip(d, head - 1),
        "count": lambda d: _flip(d, 46),
        "truncated": lambda d: d[:-8],
        "extended": lambda d: d + b"\0" * 8,
        "empty": lambda d: b"",
        "magic": lambda d: _flip(d, 0),
    }[damage](good)
    path.write_bytes(bad)
    os.chmod(path, 0o600)
    key = cache.cache_key(prof)
    assert cache.read_entry(str(path.parent), path.name, key) is None
    assert_same(cache.compiled(str(tmp_path), prof), fresh(prof))
    assert path.read_bytes() == good  # rewritten whole


def test_an_entry_of_another_profile_is_rejected(tmp_path: Path) -> None:
    # Valid in itself (its own key and digest), but filed under the wrong name: e.g. an
    # allow-everything program where a strict one belongs.
    strict, lax = deny_default(), profile()
    cache.compiled(str(tmp_path), lax)
    shutil.copy(entry(tmp_path, lax), entry(tmp_path, strict))
    got = cache.compiled(str(tmp_path), strict)
    assert_same(got, fresh(strict))
    assert got.program != fresh(lax).program


@pytest.mark.parametrize("where", ["file_mode", "dir_mode", "file_owner", "dir_owner"])
def test_an_entry_others_could_write_is_ignored(tmp_path: Path, where: str) -> None:
    prof = deny_default()
    cache.compiled(str(tmp_path), prof)
    path = entry(tmp_path, prof)
    key = cache.cache_key(prof)
    assert cache.read_entry(str(path.parent), path.name, key) is not None
    if where == "file_mode":
        os.chmod(path, 0o622)
    elif where == "dir_mode":
        os.chmod(path.parent, 0o777)
    elif where == "file_owner":
        os.chown(path, 65534, 65534)
    else:
        os.chown(path.parent, 65534, 65534)
    assert cache.read_entry(str(path.parent), path.name, key) is None
    assert_same(cache.compiled(str(tmp_path), prof), fresh(prof))


def test_a_symlinked_entry_is_ignored(tmp_path: Path) -> None:
    prof, other = deny_default(), profile()
    cache.compiled(str(tmp_path), other)
    outside = tmp_path / "outside"
    shutil.copy(entry(tmp_path, other), outside)
    entry(tmp_path, prof).symlink_to(outside)
    key = cache.cache_key(prof)
    assert cache.read_entry(str(tmp_path / cache.DIR_NAME), key.hex(), key) is None
    assert_same(cache.compiled(str(tmp_path), prof), fresh(prof))


def test_invalid_profiles_are_never_stored(tmp_path: Path) -> None:
    for bad in ({"defaultAction": "SCMP_ACT_BOGUS"},
                {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"]}]}):
        with pytest.raises(sc.SeccompError):
            cache.compiled(str(tmp_path), bad)
        with pytest.raises(sc.SeccompError):  # and again: no entry vouches for it now
            cache.compiled(str(tmp_path), bad)
    assert not (tmp_path / cache.DIR_NAME).exists()


def test_the_directory_is_emptied_when_full(tmp_path: Path) -> None:
    for i in range(cache._MAX_ENTRIES + 2):
        cache.compiled(str(tmp_path), profile(i + 1))
    assert 1 <= len(os.listdir(tmp_path / cache.DIR_NAME)) <= cache._MAX_ENTRIES


def test_the_engines_default_profile_round_trips(tmp_path: Path) -> None:
    from barque.engine import seccomp_profile
    from barque.engine.spec_security import DOCKER_CAPS

    prof = seccomp_profile.to_oci(seccomp_profile.load_default(), list(DOCKER_CAPS))
    want = fresh(prof)
    assert_same(cache.compiled(str(tmp_path), prof), want)
    assert_same(cache.compiled(str(tmp_path), prof), want)


@needs_busybox
def test_containers_get_the_filter_from_a_damaged_cache_too(runtime: Runtime) -> None:
    """The runtime end to end: the first container fills the cache, a damaged entry (here an
    allow-all program) is not used by the second, the third uses the rewritten entry."""
    spec = runtime.spec(["sh", "-c", "mkdir /tmp/d 2>&1; touch /tmp/f && echo touched"])
    spec["linux"]["seccomp"] = profile()
    out = runtime.output(spec["process"]["args"], linux=spec["linux"])
    assert "No space left on device" in out and "touched" in out
    path = entry(Path(runtime.state_root), spec["linux"]["seccomp"])
    good = path.read_bytes()
    allow_all = sc.compile_filter({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]}).program
    magic, key, flags, _, digest = cache.unpack_header(good)
    # Only the digest tells this one from the real entry.
    path.write_bytes(cache.pack_header(magic, key, flags, len(allow_all) // 8, digest) + allow_all)
    out = runtime.output(spec["process"]["args"], linux=spec["linux"])
    assert "No space left on device" in out and "touched" in out
    assert path.read_bytes() == good
    out = runtime.output(spec["process"]["args"], linux=spec["linux"])
    assert "No space left on device" in out and "touched" in out
