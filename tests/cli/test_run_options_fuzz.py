"""Fuzz `run`'s flag values (hypothesis; the atheris harness is fuzz/run_flags.py, whose
property check this shares): argparse, run_options (sizes, --cpus, --ulimit, --restart,
--env-file, --security-opt, durations, ...), -v/--mount/--tmpfs and the engine's create-time
checks. A bad value is a usage error, an OptionError or an EngineError, never a traceback."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from barque.cli import run_options
from barque.engine import seccomp_profile
from barque.engine.units import parse_bytes
from fuzz import _driver
from fuzz.run_flags import BOOLEAN_FLAGS, VALUES, check
from tests.support.fuzzing import fuzz_settings


@pytest.fixture(scope="module", autouse=True)
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = str(tmp_path_factory.mktemp("flags"))
    _driver._SANDBOX[:] = [path]
    yield path
    _driver._SANDBOX.clear()


def _file(directory: str, name: str, content: bytes) -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(content)
    return path


@st.composite
def argvs(draw: st.DrawFn) -> list[str]:
    argv = ["run"]
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 9)) == 0:
            argv.append(draw(st.sampled_from(BOOLEAN_FLAGS)))
            continue
        flag = draw(st.sampled_from(sorted(VALUES)))
        value = draw(st.sampled_from(VALUES[flag]))
        if value == "@FILE@":
            content = draw(st.one_of(st.binary(max_size=64), st.lists(st.sampled_from(
                ["A=1", "# c", "", " B=2 ", "C", "=x", "É=é"]), max_size=4).map(
                lambda lines: "\n".join(lines).encode())))
            value = _file(_driver.sandbox(), flag.strip("-"), content)
        elif "@PROFILE@" in value:
            profile = draw(st.one_of(st.binary(max_size=64), st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=4),
                lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                    st.sampled_from(["defaultAction", "syscalls", "names", "action",
                                     "archMap", "architecture", "includes", "caps"]),
                    inner, max_size=3), max_leaves=8).map(lambda v: repr(v).encode())))
            value = value.replace("@PROFILE@", _file(_driver.sandbox(), "profile", profile))
        elif draw(st.integers(0, 6)) == 0:  # bent, as a typo or an attack would
            pos = draw(st.integers(0, len(value)))
            noise = draw(st.text(max_size=5).filter(lambda t: "\0" not in t))
            value = value[:pos] + noise + value[pos:]
        argv += [flag, value]
    return argv + ["busybox", "true"]


@fuzz_settings(300)
@given(argv=argvs())
def test_run_flags_fail_with_docker_errors_only(argv: list[str]) -> None:
    check(argv)


# What fuzzing found (each a Python traceback before the fix).

@pytest.mark.parametrize("text", ["9" * 400, "9" * 400 + "p", "99999999999999999999t"])
def test_sizes_too_large_are_invalid_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_bytes(text, binary=True)


def test_a_duration_too_long_is_an_option_error() -> None:
    with pytest.raises(run_options.OptionError, match="invalid duration"):
        run_options.duration_ns("9" * 400 + "h", "--health-interval")


@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_cpus_that_are_not_numbers_are_option_errors(text: str) -> None:
    with pytest.raises(run_options.OptionError, match="--cpus"):
        run_options._nano_cpus(text)


def test_an_env_file_of_invalid_utf8_is_refused(tmp_path: os.PathLike) -> None:
    path = _file(str(tmp_path), "env", b"A=1\nB=\xff\xfe\n")
    with pytest.raises(run_options.OptionError, match="invalid utf8 bytes at line 2"):
        run_options._read_lines(path)


@pytest.mark.parametrize("spec", ["type=bind,src=/tmp,dst=/x\ny", "dst=/x\r", 'dst="/x\n'])
def test_a_line_break_in_mount_is_an_option_error(spec: str) -> None:
    check(["run", "--mount", spec, "busybox"])  # raised csv.Error (found by atheris)


def test_an_unclosed_quote_in_entrypoint_is_an_option_error() -> None:
    check(["run", "--entrypoint", "'sh", "busybox"])  # raised shlex's ValueError


@pytest.mark.parametrize("profile", [
    b'{"defaultAction": "SCMP_ACT_ERRNO", "archMap": [1]}',
    b'{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": ["read"]}',
    b'{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]}',
    b'{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": "read", "action": "x"}]}',
    b'{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "x", '
    b'"includes": []}]}',
])
def test_seccomp_profiles_of_the_wrong_shape_are_profile_errors(profile: bytes) -> None:
    with pytest.raises(seccomp_profile.ProfileError, match="decoding seccomp profile failed"):
        seccomp_profile.parse(profile)


def test_a_seccomp_profile_file_of_binary_junk_is_an_error(tmp_path: os.PathLike) -> None:
    """Found by atheris: a profile file whose text is not JSON is taken for a path, and a NUL
    byte in it raised ValueError."""
    path = _file(str(tmp_path), "profile", b"\xff\x00junk")
    check(["run", "--security-opt", f"seccomp={path}", "busybox", "true"])


def test_the_default_seccomp_profile_still_parses() -> None:
    assert seccomp_profile.to_oci(seccomp_profile.load_default(), ["CAP_CHOWN"])["syscalls"]
