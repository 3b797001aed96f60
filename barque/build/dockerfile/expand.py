"""Variable substitution and word splitting as BuildKit's shell lexer does it
(frontend/dockerfile/shell/lex.go), which is what the reference's "Environment
replacement" section describes:

- `$VAR`, `${VAR}`; `${VAR:-word}` / `${VAR-word}` (default when unset, or also empty with
  `:`), `${VAR:+word}` / `${VAR+word}` (alternative when set), `${VAR:?msg}` / `${VAR?msg}`
  (error when unset, or also empty), `${VAR#pat}` / `${VAR##pat}` (shortest / longest
  prefix removed), `${VAR%pat}` / `${VAR%%pat}` (suffix), `${VAR/pat/repl}` /
  `${VAR//pat/repl}` (first / every match replaced); patterns with `*` and `?`;
- single quotes literal, double quotes expand `$` and allow escaping `"`, `$` and the
  escape character; the escape character (`\\` or the `# escape=` one) outside quotes
  makes the next character literal;
- positional and special parameters (`$1`, `$@`, `$#`, ...) are never set.

Errors are ExpandError (a ValueError) worded as BuildKit's:
`failed to process "${X:?}": X: is not allowed to be unset`.
"""

from __future__ import annotations

from collections.abc import Mapping

from barque.structs import dataclass, field

_SPECIAL_PARAMS = "@*#?-$!0"
MAX_NESTING = 100
_SHELL_SPACE = "\t\r "


class ExpandError(ValueError):
    """A word BuildKit's lexer refuses; the message is its text."""


class _Fail(Exception):
    """An error inside the lexer, before "failed to process" is added."""


def _go_quote(text: str) -> str:
    import json
    return json.dumps(text, ensure_ascii=False)


def _is_space(ch: str) -> bool:
    return ch.isspace()


@dataclass
class Options:
    """The lexer's switches (BuildKit's Lex fields)."""
    escape: str = "\\"
    raw_quotes: bool = False      # keep quote characters in the result
    raw_escapes: bool = False     # keep escape characters in the result
    skip_unset: bool = False      # leave `$UNSET` / `${UNSET...}` as written
    skip_quotes: bool = False     # quotes are ordinary characters


@dataclass
class Result:
    word: str                                    # the whole text, expanded
    words: list[str]                             # split into words
    matched: set[str] = field(default_factory=set)    # variables found in env
    unmatched: set[str] = field(default_factory=set)  # variables looked up, not found


class _Words:
    """Word splitting as the text is expanded: whitespace from unquoted text and from
    unquoted `$` expansions separates words, quoted text never does."""

    def __init__(self) -> None:
        self.buf: list[str] = []     # a list: words can be long (a heredoc's body)
        self.size = 0
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if _is_space(ch):
            if self.in_word and self.size:
                self._flush()
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.buf.append(text)
        self.size += len(text)
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def _flush(self) -> None:
        self.words.append("".join(self.buf))
        self.buf.clear()
        self.size = 0

    def result(self) -> list[str]:
        if self.size:
            self._flush()
        return self.words


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], opts: Options) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.opts = opts
        self.raw_escapes = opts.raw_escapes
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()
        self.depth = 0

    # -- the scanner --
    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def lookup(self, name: str) -> str | None:
        value = self.env.get(name)
        (self.matched if value is not None else self.unmatched).add(name)
        return value

    # -- the grammar --
    def stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        """Text up to `stop` (consumed; "" = end of text), expanded, and its words."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        self.depth += 1
        if self.depth > MAX_NESTING:  # Go has no limit; Python's stack does
            raise _Fail("syntax error: substitutions nested too deeply")
        try:
            return self._stop_on(stop)
        finally:
            self.raw_escapes = saved
            self.depth -= 1

    def _stop_on(self, stop: str) -> tuple[str, list[str]]:
        out: list[str] = []
        words = _Words()
        escape = self.opts.escape
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(out), words.result()
            if ch == "$":
                value = self.dollar()
                out.append(value)
                words.add_string(value)
            elif ch == "<":
                value = self.possible_heredoc()
                out.append(value)
                words.add_raw(value)
            elif ch in "'\"" and not self.opts.skip_quotes:
                value = self.single_quote() if ch == "'" else self.double_quote()
                out.append(value)
                words.add_raw(value)
            else:
                ch = self.next()
                if ch == escape:
                    if self.raw_escapes:
                        words.add_raw(ch)
                        out.append(ch)
                    ch = self.next()
                    if not ch:
                        break  # an escape at the very end is dropped
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                out.append(ch)
        if stop:
            raise _Fail(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out), words.result()

    def single_quote(self) -> str:
        first = self.next()
        out = [first] if self.opts.raw_quotes else []
        while True:
            ch = self.next()
            if not ch:
                raise _Fail("unexpected end of statement while looking for matching "
                            "single-quote")
            if ch == "'":
                if self.opts.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        first = self.next()
        out = [first] if self.opts.raw_quotes else []
        escape = self.opts.escape
        while True:
            ch = self.peek()
            if not ch:
                raise _Fail("unexpected end of statement while looking for matching "
                            "double-quote")
            if ch == '"':
                self.next()
                if self.opts.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == escape:
                if self.raw_escapes:
                    out.append(ch)
                following = self.peek()
                if not following:
                    continue  # the end-of-text error comes next round
                if following in ('"', "$", escape):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        """A variable name: letters, digits, `_`; or all-digit positional; or one special
        parameter character."""
        first = self.peek()
        if first and first.isdecimal():
            start = self.pos
            while self.peek() and self.peek().isdecimal():
                self.pos += 1
            return self.text[start:self.pos]
        if first and first in _SPECIAL_PARAMS:
            return self.next()
        start = self.pos
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.pos += 1
        return self.text[start:self.pos]

    def dollar(self) -> str:
        self.next()  # the $
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value = self.lookup(name)
            if value is None and self.opts.skip_unset:
                return "$" + name
            return value or ""
        self.next()  # the {
        if not self.peek():
            raise _Fail("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise _Fail("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            value = self.lookup(name)
            if value is None and self.opts.skip_unset:
                return "${" + name + "}"
            return value or ""
        if not ch:
            # BuildKit says "unsupported modifier (\ufffd)": the missing brace is clearer
            raise _Fail("syntax error: missing '}'")
        if ch == "/":
            return self.replace(name)
        modifier, null_is_unset = ch, False
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            modifier += ch
        if not ch:
            raise _Fail("syntax error: missing '}'")
        if ch not in "+-?#%":
            if null_is_unset:  # BuildKit reads the word before refusing the modifier
                self._braced_word(False)
            raise _Fail(f"unsupported modifier ({modifier}) in substitution")
        raw = ch in "#%"
        if null_is_unset and raw:
            raise _Fail(f"unsupported modifier ({modifier}) in substitution")
        word = self._braced_word(raw)
        value = self.lookup(name)
        if value is None and self.opts.skip_unset:
            return "${" + name + modifier + word + "}"
        unset = value is None or (null_is_unset and value == "")
        if ch == "-":
            return word if unset else value or ""
        if ch == "+":
            return "" if unset else word
        if ch == "?":
            if value is None:
                raise _Fail(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise _Fail(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        greedy = word.startswith(ch)
        if greedy:
            word = word[1:]
        if ch == "%":
            return _trim_suffix(word, value or "", greedy)
        return _trim_prefix(word, value or "", greedy)

    def _braced_word(self, raw_escapes: bool) -> str:
        try:
            word, _ = self.stop_on("}", raw_escapes)
        except _Fail:
            if not self.peek():
                raise _Fail("syntax error: missing '}'") from None
            raise
        return word

    def replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        try:
            pattern, _ = self.stop_on("/", True)
        except _Fail:
            if not self.peek():
                raise _Fail("syntax error: missing '/' in ${}") from None
            raise
        replacement = self._braced_word(True)
        value = self.lookup(name)
        if value is None and self.opts.skip_unset:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        return _replace(pattern, value or "", replacement, replace_all)

    def possible_heredoc(self) -> str:
        self.next()
        if self.peek() != "<":
            return "<"
        self.next()
        start = self.pos
        while self.peek() and self.peek() in _SHELL_SPACE:
            self.pos += 1
        return "<<" + self.text[start:self.pos]


# --- patterns ----------------------------------------------------------------------------
# BuildKit turns a pattern into a Go regexp (RE2: linear time). Python's backtracking
# engine would take exponential time on `${X#*a*a*a*b}`-like patterns, so patterns run here
# on a small NFA over their tokens instead, with RE2's answers: anchored, the shortest
# (lazy) or longest (greedy) match; unanchored, the leftmost match, longest from there.
# As Go's `.`, `?` and `*` never match a newline.

_STAR, _ANY = object(), object()
_Token = object


def _tokens(pattern: str) -> list[_Token]:
    """A shell pattern (`*`, `?`, `\\` escapes; no bracket expressions) as tokens: _STAR,
    _ANY or a literal character."""
    out: list[_Token] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(_STAR)
        elif ch == "?":
            out.append(_ANY)
        elif ch == "\\":
            if i < n and pattern[i] in "}/":
                continue  # an escaped } or / of the ${} syntax: the next char is literal
            nxt = pattern[i] if i < n else ""
            i += 1
            if nxt not in ("*", "?", "\\") or not nxt:
                raise _Fail(f"invalid pattern ({pattern}) in substitution: invalid escape "
                            f"'\\{nxt or chr(0xFFFD)}'")
            out.append(nxt)
        else:
            out.append(ch)
    return out


def _closure(tokens: list[_Token], states: dict[int, int]) -> dict[int, int]:
    """`states` (token index -> the earliest start that reached it) with every star that
    may match nothing skipped."""
    for i in sorted(states):
        j, start = i, states[i]
        while j < len(tokens) and tokens[j] is _STAR:
            j += 1
            if states.get(j, start + 1) > start:
                states[j] = start
    return states


def _step(tokens: list[_Token], states: dict[int, int], ch: str) -> dict[int, int]:
    out: dict[int, int] = {}
    for i, start in states.items():
        if i == len(tokens):
            continue
        tok = tokens[i]
        if ch == "\n" and (tok is _STAR or tok is _ANY):
            continue
        nxt = i if tok is _STAR else i + 1
        if tok is _STAR or tok is _ANY or tok == ch:
            if out.get(nxt, start + 1) > start:
                out[nxt] = start
    return _closure(tokens, out)


def _prefix_ends(tokens: list[_Token], value: str) -> list[int]:
    """The lengths of the prefixes of `value` the whole pattern matches, shortest first."""
    ends = []
    states = _closure(tokens, {0: 0})
    for j in range(len(value) + 1):
        if len(tokens) in states:
            ends.append(j)
        if j == len(value) or not states:
            break
        states = _step(tokens, states, value[j])
    return ends


def _search(tokens: list[_Token], value: str, pos: int) -> tuple[int, int] | None:
    """The leftmost match at or after `pos`, longest from its start: (start, end)."""
    best: tuple[int, int] | None = None
    states: dict[int, int] = {}
    for j in range(pos, len(value) + 1):
        if best is None:  # a thread may start here; once a match is known, later ones lose
            states.setdefault(0, j)
            states = _closure(tokens, states)
        start = states.get(len(tokens))
        if start is not None and (best is None or (start, -j) < (best[0], -best[1])):
            best = (start, j)
        if best is not None:
            states = {i: s for i, s in states.items() if s <= best[0]}
            if not states:
                break
        if j < len(value):
            states = _step(tokens, states, value[j])
    return best


def _replace(pattern: str, value: str, replacement: str, replace_all: bool) -> str:
    tokens = _tokens(pattern)
    out: list[str] = []
    pos, last_end = 0, -1
    while pos <= len(value):
        found = _search(tokens, value, pos)
        if found is None:
            break
        start, end = found
        if start == end == last_end:  # Go: an empty match right after a match is skipped
            if start < len(value):
                out.append(value[start])
            pos = start + 1
            continue
        out.append(value[pos:start] + replacement)
        last_end = end
        if not replace_all:
            pos = end
            break
        if end == start:
            if start < len(value):
                out.append(value[start])
            pos = start + 1
        else:
            pos = end
    out.append(value[pos:])
    return "".join(out)


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    ends = _prefix_ends(_tokens(pattern), value)
    if not ends:
        return value
    return value[ends[-1] if greedy else ends[0]:]


def _reverse_pattern(pattern: str) -> str:
    """The pattern reversed, each `\\x` escape kept in front of its character."""
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            parts.append(pattern[i:i + 2])
            i += 2
        else:
            parts.append(pattern[i])
            i += 1
    return "".join(reversed(parts))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # The shortest rightmost match is the shortest leftmost one of both reversed.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


# --- the API -----------------------------------------------------------------------------

def process(text: str, env: Mapping[str, str], opts: Options | None = None) -> Result:
    """`text` expanded with `env`, as one word and split into words, with the variables
    it looked up (BuildKit's ProcessWordWithMatches)."""
    lexer = _Lexer(text, env, opts or Options())
    try:
        word, words = lexer.stop_on("", lexer.raw_escapes)
    except _Fail as e:
        raise ExpandError(f"failed to process {_go_quote(text)}: {e}") from None
    return Result(word, words, lexer.matched, lexer.unmatched)


def expand_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One word, quotes removed, variables replaced; inner whitespace kept
    (BuildKit's ProcessWord: ENV values, WORKDIR, COPY paths, ...)."""
    return process(word, env, Options(escape=escape)).word


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """`text` expanded and split into words at unquoted whitespace (BuildKit's
    ProcessWords: EXPOSE)."""
    return process(text, env, Options(escape=escape)).words


def used_variables(word: str, env: Mapping[str, str], escape: str = "\\") -> set[str]:
    """The names in `env` that expanding `word` reads (for cache keys: the build args a
    step depends on)."""
    return process(word, env, Options(escape=escape)).matched
