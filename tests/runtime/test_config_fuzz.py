"""Fuzz the runtime's config.json reading and checking (hypothesis; the atheris harness is
fuzz/oci_config.py, whose property check this shares): runc's default spec with values of
other types at random places, raw bytes, deep nesting. Only RuntimeFailure may come out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from barque.runtime.config import load_bundle, validate
from barque.runtime.errors import RuntimeFailure
from fuzz import _driver
from fuzz.oci_config import BASE_PATHS, SCALARS, _set, check_bundle, check_config
from tests.support.fuzzing import fuzz_settings

json_values = st.recursive(
    st.sampled_from(SCALARS) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "path", "destination", "options", "domain", "policy", "class",
                         "priority", "flags", "initial", "x"]), inner, max_size=3),
    max_leaves=10)


@pytest.fixture(scope="module", autouse=True)
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Any:
    _driver._SANDBOX[:] = [str(tmp_path_factory.mktemp("bundles"))]
    yield
    _driver._SANDBOX.clear()


@fuzz_settings(400)
@given(changes=st.lists(st.tuples(st.sampled_from(BASE_PATHS), json_values), min_size=1,
                        max_size=4))
def test_configs_of_the_wrong_shape_are_runtime_failures(
        changes: list[tuple[tuple[Any, ...], Any]]) -> None:
    from barque.runtime.spec import default_spec

    config = default_spec()
    for path, value in changes:
        _set(config, path, value)
    check_config(config)
    check_bundle(json.dumps(config).encode())


@fuzz_settings(100)
@given(raw=st.binary(max_size=512))
def test_config_bytes_are_runtime_failures(raw: bytes) -> None:
    check_bundle(raw)


@pytest.mark.parametrize("config", [
    {"mounts": 1.5}, {"mounts": [{"destination": "/x", "options": [{}]}]},
    {"linux": {"namespaces": 1}}, {"linux": {"namespaces": [{"type": {}}]}},
    {"hooks": 1}, {"hooks": {"prestart": None}}, {"hooks": {"prestart": 1}},
    {"process": {"args": ["x"], "env": 1}},
    {"process": {"args": ["x"], "execCPUAffinity": "0"}},
    {"process": {"args": ["x"], "scheduler": {"policy": {}}}},
    {"process": {"args": ["x"], "ioPriority": {"class": []}}},
    {"root": {"path": "root\0fs"}},  # found by atheris: ValueError in load_bundle's realpath
    {"process": {"args": ["x\0y"]}}, {"mounts": [{"destination": "/x\0"}]},
])
def test_what_fuzzing_found_is_a_runtime_failure(config: dict[str, Any]) -> None:
    """Each raised TypeError or AttributeError in validate before the fix."""
    base: dict[str, Any] = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
                            "process": {"args": ["x"]},
                            "linux": {"namespaces": [{"type": "mount"}]}}
    for key, value in config.items():
        base[key] = {**base[key], **value} if key == "process" else value
    with pytest.raises(RuntimeFailure):
        validate(base)


def test_json_nested_too_deeply_is_a_runtime_failure(tmp_path: Any) -> None:
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(RuntimeFailure, match="nested too deeply"):
        load_bundle(str(tmp_path))


@pytest.mark.parametrize("change", [
    {"root": {"path": "root\0fs"}}, {"process": {"args": ["x\0y"]}},
    {"process": {"args": ["x"], "env": ["A=\0"]}}, {"hostname": "h\0"},
    {"mounts": [{"destination": "/x\0"}]}, {"mounts": [{"destination": "/x", "type\0": "x"}]},
    {"linux": {"namespaces": [{"type": "mount"}],
               "seccomp": {"defaultAction": "SCMP_ACT_ALLOW",
                           "syscalls": [{"names": ["mkdir\0"], "action": "SCMP_ACT_ERRNO"}]}}},
])
def test_nul_from_config_json_text_is_refused(tmp_path: Any, change: dict[str, Any]) -> None:
    """load_bundle skips the walk over every string when the text has no \\u0000 escape:
    each of these has one (json.dumps writes NUL so), wherever it is."""
    (tmp_path / "rootfs").mkdir()
    base: dict[str, Any] = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
                            "process": {"args": ["x"]},
                            "linux": {"namespaces": [{"type": "mount"}]}, **change}
    text = json.dumps(base).encode()
    assert b"\\u0000" in text
    (tmp_path / "config.json").write_bytes(text)
    with pytest.raises(RuntimeFailure, match="NUL"):
        load_bundle(str(tmp_path))


def test_an_escaped_backslash_before_u0000_is_no_nul(tmp_path: Any) -> None:
    (tmp_path / "rootfs").mkdir()
    config = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
              "process": {"args": ["echo", "\\u0000"], "cwd": "/"},
              "linux": {"namespaces": [{"type": "mount"}]}}
    (tmp_path / "config.json").write_bytes(json.dumps(config).encode())
    loaded, _ = load_bundle(str(tmp_path))
    assert loaded["process"]["args"] == ["echo", "\\u0000"]
