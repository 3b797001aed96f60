"""barque/build/ignore.py and gomatch.py: .dockerignore patterns and Go's filepath.Match
rules on Barque's own cases, the ignore file's reading, and the walk semantics BuildKit
applies to a context."""

from __future__ import annotations

import os
import posixpath

import pytest

from barque.build import gomatch, ignore
from barque.build.ignore import IgnoreError, Matcher

WHEEL = "pkg/tool-1.0+local.2-py3-none-any.whl"

# (pattern, path, excluded): one pattern against a path or any of its parents
MATCHES = [
    # ** matches anything, at any depth, with or without a trailing slash
    ("**", "notes.md", True), ("**", "src/", True), ("**/", "notes.md", True),
    ("**/", "src/", True), ("**", "/", True), ("**/", "/", True),
    ("**", "src/main.c", True), ("**/", "src/main.c", True), ("**", "src/lib/", True),
    ("**/", "src/lib/", True), ("**/**", "src/main.c", True), ("**/**", "src/lib/", True),
    ("src/**", "src/main.c", True), ("src/**", "src/lib/", True),
    ("src/**", "src/lib/util.c", True), ("src/**", "src/lib/util/", True),
    ("out/**", "out", False), ("out/**", "out/a", True), ("out/**", "out/a/b", True),
    # a leading **/ also matches at the top; a match of a parent excludes what is below
    ("**/build", "build", True), ("**/build", "build/out.o", True),
    ("**/lib/*", "src/lib/util.c", True), ("**/lib/*", "src/lib/x/", True),
    ("**/lib/**", "src/lib/x/y.c", True), ("**/lib/**", "src/lib/x/y/", True),
    ("**/cfg/app", "cfg/app", True), ("**/cfg/app", "x/cfg/app", True),
    ("**/cfg/app", "x/y/cfg/app", True), ("**/.git", ".git", True),
    ("**/.git", "x.git", False),
    # ** glued to a name crosses directories too
    ("**main.c", "main.c", True), ("**main.c", "src/main.c", True),
    ("**main.c", "src/app/main.c", True), ("**/main.c", "src/main.c", True),
    ("**/main.c", "src/app/main.c", True), ("s**/*.c", "s/main.c", True),
    ("s**/*.c", "s/app/main.c", True), ("s**/*.c", "s/app/x/main.c", True),
    # ... and may be followed by more wildcards
    ("**/main*", "src/app/main", True), ("**/main*", "src/app/main.c", True),
    ("**/main*c", "src/app/main.c", True), ("**/main*.c", "src/app/main.c", True),
    ("**/main*.c*", "src/app/main.c", True), ("**/**/*.c", "src/app/main.c", True),
    ("**/**/*.cc", "src/app/main.c", False), ("**/*.c", "main.c", True),
    ("**/**/*.c", "main.c", True),
    # one * stays within a path component; trailing ** after it adds nothing
    ("s/*.c", "s/app/main.c", False), ("s/*.c", "s/main.c", True), ("s/*.c**", "s/main.c", True),
    # classes, ?, and every other character as itself (regexp ones too)
    ("x[0-3]y", "xy", False), ("x[0-3]y", "x2y", True), ("x[0-3]y", "x9y", False),
    ("x[^0-3]y", "x9y", True), (".*", ".env", True), (".*", "env", False),
    ("v1.2", "v12", False), ("v1.2", "v1.2", True), ("v1.2", "v1x2", False),
    ("v1?2", "v1x2", True), ("v1?2", "v12", False), ("b\\\\", "b\\", True),
    ("v(1)/notes", "v(1)/notes", True), ("v(1)/notes", "v(1)/other", False),
    ("q.$(x)+z", "q.$(x)+z", True), ("q.$(x)+z", "qa$(x)+z", False),
    (WHEEL, WHEEL, True), ("pkg/*.whl", WHEEL, True), ("x\\*y", "x*y", True),
]

# (patterns, path, excluded): the last pattern that matches decides, ! re-includes
MULTI = [
    (["**", "!keep/this"], "keep/this/file", False),
    (["**", "!keep/this", "keep/this/file"], "keep/this/file", True),
    (["**", "!" + WHEEL], WHEEL, False),
    (["**", "!pkg/*.whl"], WHEEL, False),
    (["!main.c", "*.c"], "main.c", True),
    (["*.c", "!main.c"], "main.c", False),
    (["notes", "!notes/KEEP.md"], "notes/KEEP.md", False),
    (["notes/", "!notes/KEEP.md"], "notes/KEEP.md", False),
    (["notes/*", "!notes/KEEP.md"], "notes/KEEP.md", False),
    (["*"], "main.c", True),
    (["*.c"], "main.c", True),
    ([], "some/where/deep", False),
    (["*.c"], ".", False),  # the context root is never excluded
]

# filepath.Match's rules: (pattern, name, match, bad pattern)
GO_MATCH = [
    ("xyz", "xyz", True, False), ("*", "xyz", True, False), ("*z", "xyz", True, False),
    ("x*", "x", True, False), ("x*", "xyz", True, False), ("x*", "xy/z", False, False),
    ("x*/q", "xyz/q", True, False), ("x*/q", "x/y/q", False, False),
    # stars backtrack, but never across a /
    ("p*q*r*s*t*/u", "p1q1r1s1t/u", True, False),
    ("p*q*r*s*t*/u", "p1q1r1s1t111/u", True, False),
    ("p*q*r*s*t*/u", "p1q1r1s1t/111/u", False, False),
    ("p*q*r*s*t*/u", "p1q1r1s1t111/uuu", False, False),
    ("p*q?r*z", "pq1qq2pq3rxyz", True, False), ("p*q?r*z", "pq1qq2pq3rxyy", False, False),
    # classes and negated classes
    ("xy[z]", "xyz", True, False), ("xy[y-z]", "xyz", True, False),
    ("xy[a-c]", "xyz", False, False), ("xy[^z]", "xyz", False, False),
    ("xy[^y-z]", "xyz", False, False), ("xy[^a-c]", "xyz", True, False),
    ("x\\*y", "x*y", True, False), ("x\\*y", "xy", False, False),
    # ? and classes take one character, not one byte
    ("x?y", "x€y", True, False), ("x[^x]y", "x€y", True, False),
    ("x???y", "x€y", False, False), ("x[^x][^x][^x]y", "x€y", False, False),
    ("[α-ω]*", "λ", True, False), ("*[α-ω]", "L", False, False),
    ("x?y", "x/y", False, False), ("x*y", "x/y", False, False),
    # escapes inside classes
    ("[\\]x]", "]", True, False), ("[\\-]", "-", True, False), ("[q\\-]", "q", True, False),
    ("[q\\-]", "-", True, False), ("[q\\-]", "z", False, False), ("[\\-q]", "q", True, False),
    ("[\\-q]", "-", True, False), ("[\\-q]", "a", False, False),
    # malformed: an unescaped ] or - where a range cannot be, a lone escape, open classes
    ("[]x]", "]", False, True), ("[-]", "-", False, True), ("[q-]", "q", False, True),
    ("[q-]", "-", False, True), ("[q-]", "z", False, True), ("[-q]", "q", False, True),
    ("[-q]", "-", False, True), ("[-q]", "a", False, True), ("\\", "x", False, True),
    ("[x-y-z]", "x", False, True), ("[", "x", False, True), ("[^", "x", False, True),
    ("[^yz", "x", False, True), ("x[", "x", False, True), ("x[", "xy", False, True),
    ("x[", "q", False, True), ("x/y[", "q", False, True), ("*q", "qqq", True, False),
]


@pytest.mark.parametrize(("pattern", "path", "excluded"), MATCHES)
def test_pattern_matches(pattern: str, path: str, excluded: bool) -> None:
    matcher = Matcher([pattern])
    assert matcher.check(path, None)[0] is excluded  # the path or a parent
    # The same answer walking down from the top with each parent's result, as BuildKit does
    # (parents as Go's filepath.Dir gives them).
    parent = posixpath.dirname(path)
    info = None
    if parent not in ("", "/"):
        parts = parent.split("/")
        for i in range(len(parts)):
            _, info = matcher.check("/".join(parts[: i + 1]), info)
    assert matcher.check(path, info)[0] is excluded
    if gomatch.clean(path) not in ("/", "."):
        assert matcher.matches(path) is excluded


@pytest.mark.parametrize(("patterns", "path", "excluded"), MULTI)
def test_pattern_lists(patterns: list[str], path: str, excluded: bool) -> None:
    assert Matcher(patterns).matches(path) is excluded


@pytest.mark.parametrize(("pattern", "name", "matched", "bad"), GO_MATCH)
def test_go_filepath_match(pattern: str, name: str, matched: bool, bad: bool) -> None:
    if bad:
        with pytest.raises(gomatch.BadPattern, match="syntax error in pattern"):
            gomatch.match(pattern, name)
        with pytest.raises(IgnoreError, match="syntax error in pattern"):
            Matcher([pattern])
    else:
        assert gomatch.match(pattern, name) is matched


@pytest.mark.parametrize(("pattern", "path", "excluded", "bad"), GO_MATCH)
def test_matcher_agrees_with_go_match_on_one_component(pattern: str, path: str,
                                                        excluded: bool, bad: bool) -> None:
    # the same cases through Matches (paths with "/" excepted: there a parent directory
    # may match where filepath.Match does not).
    if bad or "/" in path:
        return
    assert Matcher([pattern]).matches(path) is excluded


def test_malformed_patterns() -> None:
    with pytest.raises(IgnoreError, match='illegal exclusion pattern: "!"'):
        Matcher(["!"])
    with pytest.raises(IgnoreError):
        Matcher(["["])
    # Accepted by filepath.Match (it does not check ranges), refused as a regexp, as Go.
    with pytest.raises(IgnoreError):
        Matcher(["[Local-Only]/"])


def test_clean() -> None:
    cases = {"": ".", ".": ".", "a/./b/../c": "a/c", "//a//b/": "/a/b", "/..": "/",
             "../a": "../a", "a/../..": "..", "./foo": "foo", "/": "/", "a/": "a"}
    for path, want in cases.items():
        assert gomatch.clean(path) == want, path


def test_has_wildcards() -> None:
    assert gomatch.has_wildcards("a/*.go")
    assert gomatch.has_wildcards("f?o")
    assert gomatch.has_wildcards("[ab]")
    assert not gomatch.has_wildcards("plain/name.txt")
    assert not gomatch.has_wildcards("a\\*b")


def test_cleaned_patterns() -> None:
    m = Matcher(["docs", "config", "", "  !docs/README.md  ", "./x/../y"])
    assert [p.text for p in m.patterns] == ["docs", "config", "docs/README.md", "y"]
    assert m.exclusions
    assert not Matcher(["docs"]).exclusions


def test_parent_results_as_the_walk_sees_them() -> None:
    # MatchesUsingParentResults differs from MatchesOrParentMatches here: "a" is skipped for
    # "a" (already excluded), so "a/b" re-included by "!a/b" stays included. BuildKit's walk
    # uses the former, and so do we.
    m = Matcher(["a", "!a/b", "a"])
    assert m.matches("a")
    assert not m.matches("a/b")
    assert m.matches("a/c")


def test_may_match_children() -> None:
    m = Matcher(["build", "!build/keep.txt", "node_modules"])
    assert m.may_match_children("build")
    assert not m.may_match_children("node_modules")
    assert m.matches("node_modules/x/y")
    assert not m.matches("build/keep.txt")
    assert m.matches("build/other")
    assert not Matcher(["x"]).may_match_children("x")
    # A wildcard exception: every excluded directory has to be walked.
    assert Matcher(["x", "!*/keep"]).may_match_children("x")
    # Pruned: an exception below a directory that is skipped does not re-include.
    m = Matcher(["a", "!b/c"])
    assert m.matches("a/b/c")


def test_read_patterns() -> None:
    data = ("\ufeff# comment\n  # not a comment: a pattern\n\n  *.log  \r\n!  keep.log\n"
            "/abs/path\n./rel/../x\n!/root-only\n/\n").encode()
    assert ignore.read_patterns(data) == [
        "# not a comment: a pattern", "*.log", "!keep.log", "abs/path", "x", "!root-only", "/"]


def test_load_prefers_the_dockerfile_specific_file(tmp_path: os.PathLike[str]) -> None:
    ctx = str(tmp_path)
    assert not ignore.load(ctx, "Dockerfile")
    with open(os.path.join(ctx, ".dockerignore"), "w") as f:
        f.write("*.tmp\n")
    assert ignore.load(ctx, "Dockerfile").matches("a.tmp")
    os.mkdir(os.path.join(ctx, "sub"))
    with open(os.path.join(ctx, "sub", "app.Dockerfile.dockerignore"), "w") as f:
        f.write("*.log\n")
    m = ignore.load(ctx, "sub/app.Dockerfile")
    assert m.matches("a.log") and not m.matches("a.tmp")
    assert ignore.load(ctx, "Dockerfile").matches("a.tmp")


def test_load_reports_a_bad_pattern(tmp_path: os.PathLike[str]) -> None:
    with open(os.path.join(str(tmp_path), ".dockerignore"), "w") as f:
        f.write("ok\n[bad\n")
    with pytest.raises(IgnoreError, match=r"^invalid excludepatterns: \[ok \[bad\]: syntax "
                                          r"error in pattern$"):
        ignore.load(str(tmp_path), "Dockerfile")


def test_deep_paths_do_not_recurse() -> None:
    deep = "/".join(["d"] * 5000)
    m = Matcher(["x", "!y"])
    assert not m.matches(deep + "/f")
    assert Matcher(["d"]).matches(deep + "/f")
    assert Matcher(["**/f", "!d/d/**"]).matches("d/f")
    assert not Matcher(["**/f", "!d/d/**"]).matches("d/d/f")


def test_cases_found_against_go() -> None:
    """Differences a differential run against Go 1.19's path.Match, filepath.Match and
    moby/patternmatcher turned up (now agreeing with Go)."""
    # A parent is each prefix of Go's filepath.Dir, which cleans: "/" is a parent of "/x",
    # and "./" has none.
    assert Matcher(["/"]).check("/-*a", None)[0]
    assert not Matcher(["."]).check("./", None)[0]
    # filepath.Match stops at the first failing chunk, so patternmatcher accepts a pattern
    # malformed after it; path.Match (COPY's wildcards, BuildKit's checksums) refuses it.
    assert Matcher(["-*b[*"]).patterns
    assert not gomatch.match("-*b[*", "x", check_rest=False)
    with pytest.raises(gomatch.BadPattern):
        gomatch.match("-*b[*", "x")
    # Go's expression for a pattern ending in a backslash wants a literal "$" there (the
    # backslash escapes the "$" anchor it appends), unanchored.
    m = Matcher(["**/*\\"])
    assert not m.matches("\\")
    assert m.matches("a$") and m.matches("x/a$b")


@pytest.mark.parametrize(("pattern", "path", "excluded"), [
    # patternmatcher's escaping bitmap misses "|", "{" and "}": Go's regexp sees them.
    ("a|b*", "azzz", True), ("a|b*", "qqqb", True), ("a|b*", "qqq", False),
    ("x{2}*", "xx", True), ("x{2}*", "x{2}", False), ("a{,2}*", "a{,2}", True),
    ("{*", "{a", True), ("}*", "}", True),
    # Escapes and classes are Go regexp's, not filepath.Match's.
    ("\\d*", "7up", True), ("\\d*", "dup", False), ("\\w\\W*", "a-", True),
    ("\\s*", "\v", False), ("\\x41*", "Ab", True), ("\\101*", "Ab", True),
    ("[[:alpha:]]*", "abc", True), ("[[:alpha:]]*", "1bc", False),
    ("[[:^digit:]]*", "abc", True), ("[[:^digit:]]*", "1bc", False),
    # \Q quotes what follows as Go's regexp gets it: the "*" already an expression.
    ("a\\Q*b", "a*b", False), ("a\\Q*b", "a[^/]*b$", True), ("a\\Q*b", "a[^/]*b$x", True),
    ("\\z*", "", True), ("*\\B", "", True), ("*\\B", "ab", False), ("a\\b*", "a", True),
    ("é?[☺]", "éx☺", True),
])
def test_go_regexp_semantics(pattern: str, path: str, excluded: bool) -> None:
    # Each expectation is what Go (1.19) with moby/patternmatcher answers.
    assert Matcher([pattern]).check(path, None)[0] is excluded


@pytest.mark.parametrize("pattern", ["a{1,2000}*", "*{2}", "\\pL*", "[\\p{Greek}]*",
                                     "[[:foo:]]*", "\\1*", "\\C*", "\\x{110000}*", "[z-a]*"])
def test_go_regexp_errors(pattern: str) -> None:
    # Go refuses these expressions when first used ("\p" classes are Go's, but refused here).
    with pytest.raises(IgnoreError, match="syntax error in pattern"):
        Matcher([pattern])
