""".dockerignore: which files of the build context the builder does not see.

The rules are moby/patternmatcher's, as BuildKit applies them while it sends the context
(fsutil's filtered walk): each pattern is Go's filepath.Match syntax turned into a regular
expression, plus `**` (any number of directories, even none); a pattern matches a path or any
of its parent directories; `!pattern` re-includes; the last pattern that matches decides. A
directory that is excluded is not walked unless an exception could re-include something below
it (`may_match_children`); an excluded directory that holds re-included files is still there
(as their parent), only the files the patterns exclude are missing.

The ignore file is read as BuildKit reads it (ignorefile.ReadAll): a UTF-8 BOM dropped, lines
beginning with `#` skipped, surrounding blanks trimmed, each pattern cleaned with Go's
path.Clean and a leading `/` dropped. `<Dockerfile>.dockerignore` beside the Dockerfile wins
over the context's `.dockerignore`.

Checked against Go: patternmatcher itself and a transcription of fsutil's walk agree with
this module on random patterns, paths and trees (see the report of the change that said so).
"""

from __future__ import annotations

import os

from barque.build import gomatch, goregex

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Iterable

# Characters patternmatcher escapes for its expression. It means ".+()|{}$", but its bitmap
# holds only characters below 64: "|", "{" and "}" reach Go's regexp as they are (so "a|b"
# is an alternation and "x{2}" a repetition there), and so here.
_REGEX_ONLY = frozenset(".+()$")
# What makes a pattern more than a literal prefix (fsutil's patternChars on Linux).
_PATTERN_CHARS = frozenset("*[]?^\\")

_EXACT, _PREFIX, _SUFFIX, _REGEX = range(4)

MatchInfo = tuple[bool, ...]  # per pattern: whether it matched the parent directory


class IgnoreError(ValueError):
    """A malformed pattern, with patternmatcher's words."""


def _compile(pattern: str) -> tuple[int, re.Pattern[str] | None]:
    """patternmatcher's compile: the match type and, for _REGEX, the expression, written as
    patternmatcher writes it for Go's regexp (classes and escapes as the pattern has them)
    and then translated for Python's (goregex)."""
    out = "^"
    kind = _EXACT
    i, n = 0, len(pattern)
    while i < n:
        start = i
        c = pattern[i]
        i += 1
        if c == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1  # "**/" is "**"
                if i >= n:  # a trailing "**": everything below, as .gitignore
                    if kind == _EXACT:
                        kind = _PREFIX
                    else:
                        out += ".*"
                        kind = _REGEX
                else:
                    out += "(.*/)?"  # any number of directories, even none
                    kind = _REGEX
                if start == 0:
                    kind = _SUFFIX
            else:
                out += "[^/]*"
                kind = _REGEX
        elif c == "?":
            out += "[^/]"
            kind = _REGEX
        elif c in _REGEX_ONLY:
            out += "\\" + c
        elif c == "\\":
            if i < n:  # the next character as it is: Go's regexp reads the escape
                out += "\\" + pattern[i]
                i += 1
                kind = _REGEX
            else:
                out += "\\"  # escapes the "$" below, as in Go
        elif c in "[]":
            out += c
            kind = _REGEX
        else:
            out += c
    if kind != _REGEX:
        return kind, None
    try:
        return kind, goregex.compile_go(out + "$")
    except goregex.GoRegexError:
        raise IgnoreError("syntax error in pattern") from None


class Pattern:
    __slots__ = ("text", "exclusion", "kind", "regex")

    def __init__(self, text: str, exclusion: bool) -> None:
        self.text, self.exclusion = text, exclusion
        self.kind, self.regex = _compile(text)

    def match(self, path: str) -> bool:
        kind = self.kind
        if kind == _EXACT:
            return path == self.text
        if kind == _PREFIX:
            return path.startswith(self.text[:-2])
        if kind == _SUFFIX:
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regex is not None
        # Searched, as Go's MatchString: only the first alternative of "a|b" is anchored.
        return self.regex.search(path) is not None

    def without_trailing_glob(self) -> str:
        text = self.text
        for tail in ("/**", "/*"):
            if text.endswith(tail):
                text = text[: -len(tail)]
        return text

    def __repr__(self) -> str:
        return f"Pattern({'!' if self.exclusion else ''}{self.text})"


class Matcher:
    """The patterns of one ignore file (or of COPY --exclude), as BuildKit applies them."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns: list[Pattern] = []
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            text = gomatch.clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise IgnoreError('illegal exclusion pattern: "!"')
                text = text[1:]
            try:
                gomatch.validate(text, check_rest=False)
            except gomatch.BadPattern as e:
                raise IgnoreError(str(e)) from None
            self.patterns.append(Pattern(text, exclusion))
        self.exclusions = any(p.exclusion for p in self.patterns)
        # Whether an excluded directory can be skipped by looking at the exceptions' literal
        # prefixes (fsutil's onlyPrefixExcludeExceptions); else it must be walked.
        self._prefix_exceptions = not any(
            p.exclusion and _PATTERN_CHARS.intersection(p.without_trailing_glob())
            for p in self.patterns)
        self._dirs: dict[str, tuple[bool, MatchInfo] | None] = {}

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def check(self, path: str, parent: MatchInfo | None) -> tuple[bool, MatchInfo]:
        """patternmatcher's MatchesUsingParentResults: whether `path` (relative, cleaned) is
        excluded, given what the patterns said of its parent directory (None at the top)."""
        matched = False
        info = []
        for i, pattern in enumerate(self.patterns):
            hit = parent[i] if parent else False
            if not hit and pattern.exclusion == matched:
                hit = pattern.match(path)
                if not hit and parent is None and "/" in path:  # MatchesOrParentMatches
                    hit = self._parents_match(pattern, path)
            info.append(hit)
            if hit:
                matched = not pattern.exclusion
        return matched, tuple(info)

    @staticmethod
    def _parents_match(pattern: Pattern, path: str) -> bool:
        """Whether `pattern` matches a parent of `path`: each prefix of Go's filepath.Dir."""
        parent = gomatch.clean(path[: path.rfind("/") + 1])
        if parent == ".":
            return False
        parts = parent.split("/")
        return any(pattern.match("/".join(parts[: i + 1])) for i in range(len(parts)))

    def may_match_children(self, directory: str) -> bool:
        """Whether an excluded `directory` may still hold something an exception re-includes,
        so a walk must go into it (fsutil's rule; conservative with wildcard exceptions)."""
        if not self.exclusions:
            return False
        if not self._prefix_exceptions:
            return True
        prefix = directory + "/"
        return any(p.exclusion and (p.without_trailing_glob() + "/").startswith(prefix)
                   for p in self.patterns)

    def dir_state(self, directory: str) -> tuple[bool, MatchInfo] | None:
        """(excluded, match info) of a directory as a walk from the top reaches it; None if
        the walk never gets there (an ancestor excluded with nothing to re-include below).
        Iterative, from the deepest ancestor already known: a hostile tree may be deep."""
        if directory in self._dirs:
            return self._dirs[directory]
        parts = directory.split("/")
        known = len(parts) - 1
        while known > 0 and "/".join(parts[:known]) not in self._dirs:
            known -= 1
        info: MatchInfo | None = None
        if known > 0:
            state = self._dirs["/".join(parts[:known])]
            if state is None:
                return None
            info = state[1]
        result: tuple[bool, MatchInfo] | None = None
        for depth in range(known, len(parts)):
            path = "/".join(parts[: depth + 1])
            excluded, info = self.check(path, info)
            result = (excluded, info)
            if excluded and not self.may_match_children(path):
                result = None
            self._dirs[path] = result
            if result is None:
                break
        return result

    def matches(self, path: str) -> bool:
        """Whether `path` (relative to the context, "/"-separated) is left out of the context.
        The context root itself never is."""
        if not self.patterns:
            return False
        path = gomatch.clean(path.lstrip("/"))
        if path in (".", ""):
            return False
        head, _, _ = path.rpartition("/")
        parent_info: MatchInfo | None = None
        if head:
            state = self.dir_state(head)
            if state is None:
                return True
            parent_info = state[1]
        return self.check(path, parent_info)[0]


def read_patterns(data: bytes) -> list[str]:
    """The patterns of an ignore file's text (ignorefile.ReadAll)."""
    text = data.decode("utf-8", "surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    out = []
    for line in text.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = gomatch.clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        out.append("!" + line if invert else line)
    return out


def ignore_file(context_dir: str, dockerfile_name: str) -> str | None:
    """The ignore file that applies: `<Dockerfile>.dockerignore` beside the Dockerfile, else
    the context's `.dockerignore`; None if neither exists. `dockerfile_name` is relative to
    the context (or absolute, for a Dockerfile outside it)."""
    specific = os.path.join(context_dir, dockerfile_name) + ".dockerignore"
    for path in (specific, os.path.join(context_dir, ".dockerignore")):
        if os.path.isfile(path):
            return path
    return None


def from_data(data: bytes) -> Matcher:
    """The Matcher of an ignore file's text; IgnoreError in fsutil's words for a malformed
    pattern."""
    patterns = read_patterns(data)
    try:
        return Matcher(patterns)
    except IgnoreError as e:
        raise IgnoreError(f"invalid excludepatterns: [{' '.join(patterns)}]: {e}") from None


def load(context_dir: str, dockerfile_name: str = "Dockerfile") -> Matcher:
    """The context's Matcher (an empty one when there is no ignore file)."""
    path = ignore_file(context_dir, dockerfile_name)
    if path is None:
        return Matcher()
    with open(path, "rb") as f:
        return from_data(f.read())
