"""Fuzz image references (hypothesis; the atheris harness is fuzz/reference.py, whose property
check this shares): parse raises only ReferenceError, and what it accepts prints and parses
back to the same reference."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from barque.image import reference as refs
from fuzz.reference import PIECES, check
from tests.support.fuzzing import fuzz_settings

# Mostly pieces of real references (so most inputs get past the first check), some noise.
texts = st.one_of(
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), max_size=8).map("".join),
    st.text(max_size=300))


@fuzz_settings(500)
@given(text=texts, default_tag=st.booleans())
@example(text="library/library/x", default_tag=True)
@example(text="docker.io/library/a/b:c", default_tag=False)
def test_references_parse_or_fail_cleanly(text: str, default_tag: bool) -> None:
    check(text, default_tag)


def test_a_hub_path_under_library_keeps_its_prefix_when_printed() -> None:
    """Found by fuzzing: docker.io/library/a/b printed as `a/b`, which names docker.io/a/b,
    another repository (images, rmi and load's messages showed the wrong name). Docker
    shortens only `library/NAME`."""
    ref = refs.parse("library/a/b")
    assert ref.familiar == "library/a/b:latest"
    assert refs.parse(ref.familiar) == ref
    assert refs.parse("library/busybox").familiar == "busybox:latest"
