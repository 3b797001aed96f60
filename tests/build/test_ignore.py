"""barque/build/ignore.py and gomatch.py: moby/patternmatcher's and Go's filepath.Match
cases (ported from their test tables), the ignore file's reading, and the walk semantics
BuildKit applies to a context."""

from __future__ import annotations

import os
import posixpath

import pytest

from barque.build import gomatch, ignore
from barque.build.ignore import IgnoreError, Matcher

# (pattern, path, excluded) — patternmatcher_test.go's TestMatches table.
MATCHES = [
    ("**", "file", True), ("**", "file/", True), ("**/", "file", True),
    ("**/", "file/", True), ("**", "/", True), ("**/", "/", True),
    ("**", "dir/file", True), ("**/", "dir/file", True), ("**", "dir/file/", True),
    ("**/", "dir/file/", True), ("**/**", "dir/file", True), ("**/**", "dir/file/", True),
    ("dir/**", "dir/file", True), ("dir/**", "dir/file/", True),
    ("dir/**", "dir/dir2/file", True), ("dir/**", "dir/dir2/file/", True),
    ("**/dir", "dir", True), ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True), ("**/dir2/*", "dir/dir2/file/", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True), ("**/dir2/**", "dir/dir2/dir3/file/", True),
    ("**file", "file", True), ("**file", "dir/file", True), ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True), ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file", True), ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True), ("**/file*.txt", "dir/dir/file.txt", True),
    ("**/file*.txt*", "dir/dir/file.txt", True), ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False), ("**/*.txt", "file.txt", True),
    ("**/**/*.txt", "file.txt", True), ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True), ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False), ("a/*.txt", "a/file.txt", True),
    ("a/*.txt**", "a/file.txt", True), ("a[b-d]e", "ae", False), ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False), ("a[^b-d]e", "aze", True), (".*", ".foo", True),
    (".*", "foo", False), ("abc.def", "abcdef", False), ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False), ("abc?def", "abcZdef", True), ("abc?def", "abcdef", False),
    ("a\\\\", "a\\", True), ("**/foo/bar", "foo/bar", True), ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True), ("abc/**", "abc", False),
    ("abc/**", "abc/def", True), ("abc/**", "abc/def/ghi", True), ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False), ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False), ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\*b", "a*b", True),
]

MULTI = [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["!fileutils.go", "*.go"], "fileutils.go", True),
    (["*.go", "!fileutils.go"], "fileutils.go", False),
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs/", "!docs/README.md"], "docs/README.md", False),
    (["docs/*", "!docs/README.md"], "docs/README.md", False),
    (["*"], "fileutils.go", True),
    (["*.go"], "fileutils.go", True),
    ([], "any/path/there", False),
    (["*.go"], ".", False),  # the context root is never excluded
]

# Go's filepath.Match table (as patternmatcher_test.go carries it): (pattern, name, match,
# bad pattern).
GO_MATCH = [
    ("abc", "abc", True, False), ("*", "abc", True, False), ("*c", "abc", True, False),
    ("a*", "a", True, False), ("a*", "abc", True, False), ("a*", "ab/c", False, False),
    ("a*/b", "abc/b", True, False), ("a*/b", "a/c/b", False, False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True, False), ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True, False),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False, False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False, False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True, False), ("a*b?c*x", "abxbbxdbxebxczzy", False, False),
    ("ab[c]", "abc", True, False), ("ab[b-d]", "abc", True, False),
    ("ab[e-g]", "abc", False, False),
    ("ab[^c]", "abc", False, False), ("ab[^b-d]", "abc", False, False),
    ("ab[^e-g]", "abc", True, False), ("a\\*b", "a*b", True, False), ("a\\*b", "ab", False, False),
    ("a?b", "a☺b", True, False), ("a[^a]b", "a☺b", True, False), ("a???b", "a☺b", False, False),
    ("a[^a][^a][^a]b", "a☺b", False, False), ("[a-ζ]*", "α", True, False),
    ("*[a-ζ]", "A", False, False), ("a?b", "a/b", False, False), ("a*b", "a/b", False, False),
    ("[\\]a]", "]", True, False), ("[\\-]", "-", True, False), ("[x\\-]", "x", True, False),
    ("[x\\-]", "-", True, False), ("[x\\-]", "z", False, False), ("[\\-x]", "x", True, False),
    ("[\\-x]", "-", True, False), ("[\\-x]", "a", False, False),
    ("[]a]", "]", False, True), ("[-]", "-", False, True), ("[x-]", "x", False, True),
    ("[x-]", "-", False, True), ("[x-]", "z", False, True), ("[-x]", "x", False, True),
    ("[-x]", "-", False, True), ("[-x]", "a", False, True), ("\\", "a", False, True),
    ("[a-b-c]", "a", False, True), ("[", "a", False, True), ("[^", "a", False, True),
    ("[^bc", "a", False, True), ("a[", "a", False, True), ("a[", "ab", False, True),
    ("a[", "x", False, True), ("a/b[", "x", False, True), ("*x", "xxx", True, False),
]


@pytest.mark.parametrize(("pattern", "path", "excluded"), MATCHES)
def test_patternmatcher_table(pattern: str, path: str, excluded: bool) -> None:
    matcher = Matcher([pattern])
    assert matcher.check(path, None)[0] is excluded  # MatchesOrParentMatches
    # The same answer walking down from the top with each parent's result, as BuildKit does
    # (the table's MatchesUsingParentResults run: parents as Go's filepath.Dir gives them).
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
def test_patternmatcher_multi(patterns: list[str], path: str, excluded: bool) -> None:
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
    # patternmatcher's TestMatch: the same table through Matches (paths with "/" excepted:
    # there a parent directory may match where filepath.Match does not).
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
