"""The shell lexer (variable substitution, quotes, escapes, word splitting) on Barque's own
cases, written from the Dockerfile reference (environment replacement) and the shell rules
BuildKit's lexer follows; error texts are BuildKit's (Docker's) words."""

from __future__ import annotations

import json

import pytest

from barque.build.dockerfile.expand import (
    ExpandError,
    Options,
    expand_word,
    expand_words,
    process,
    used_variables,
)

ENV = {"HOME": "/root", "USER": "ann", "EMPTY": "", "GREEK": "αβγ"}
ERROR = None

# (source, expected word or ERROR), one rule per group
WORD_CASES = [
    # quotes are removed; an unterminated one is an error
    ("plain", "plain"),
    ("ab'cd'ef", "abcdef"),
    ("ab'cd", ERROR),
    ('"open', ERROR),
    ("'open", ERROR),
    ('"open\\"', ERROR),                # an escaped quote does not close
    ('"don\'t"', "don't"),
    ("'say \"x\"'", 'say "x"'),
    ("\"'x'\"", "'x'"),
    # outside quotes the escape takes the next character as it is, whatever it is
    ("it\\'s", "it's"),
    ("it\\\\'s", ERROR),                # an escaped escape, then an open quote
    ("x\\ny", "xny"),
    ("end\\", "end"),                   # a lone escape at the end is dropped
    ("end\\\\", "end\\"),
    # inside double quotes it escapes only itself, the quote and $; inside single quotes
    # nothing
    ('"x\\ny"', "x\\ny"),
    ('"x\\\\ny"', "x\\ny"),
    ("'x\\ny'", "x\\ny"),
    ("'x\\\\y'", "x\\\\y"),
    ("'dir\\'", "dir\\"),
    # $ followed by no name is kept
    ("$/", "$/"),
    ("a$%b", "a$%b"),
    ("cost: $", "cost: $"),
    # names: letters, digits and _ after a letter; unset is empty
    ("~$HOME", "~/root"),
    ("a$home.", "a."),
    ("$USER_x", ""),
    ("$USER-x", "ann-x"),
    ("$GREEK!", "αβγ!"),
    ("a${HOME}b", "a/rootb"),
    ("a${nope}b", "ab"),
    # escaping the dollar, in and out of double quotes
    ("~\\$HOME", "~$HOME"),
    ("~\\\\$HOME", "~\\/root"),
    ('"~\\$HOME"', "~$HOME"),
    ('"~\\\\$HOME"', "~\\/root"),
    ("'\\$HOME'", "\\$HOME"),
    ("'a${HOME}'", "a${HOME}"),
    ('"a${HOME}"', "a/root"),
    ('"\'$USER\'"', "'ann'"),
    ("'\"q\"'", '"q"'),
    # ${} and bad names in braces
    ("\\${}!", "${}!"),
    ("pre\\${}", "pre${}"),
    ("x${}", ERROR),
    ("${}y", ERROR),
    ("a${,}", ERROR),
    ("${:}", ERROR),
    ("${:-x}", ERROR),
    ("${:+x}", ERROR),
    ("${{x}", ERROR),
    ("${{x:-y}", ERROR),
    # unterminated braces
    ("a${HOME", ERROR),
    ("${x:-y", ERROR),
    ("${x:-y ${z}", ERROR),
    # a brace after the closing one, or a { inside a word, is text
    ("${nope}}", "}"),
    ("${x:-y}}", "y}"),
    ("${x:-y {z}", "y {z"),
    # ${X:-word}: word when unset or empty; words expand and nest
    ("<${UNSET:-dflt}>", "<dflt>"),
    ("<${HOME:-dflt}>", "</root>"),
    ("<${EMPTY:-dflt}>", "<dflt>"),
    ("<${UNSET:-$HOME}>", "</root>"),
    ("<${U1:-${HOME:-z}}>", "</root>"),
    ("<${U1:-${U2:-z}}>", "<z>"),
    ("<${NOPE:-\\$HOME:}>", "<$HOME:>"),
    ("<${NOPE:-\\${USER}!}>", "<${USER!}>"),    # the escaped ${ ends at the first }
    # ${X:+word}: word when set and not empty
    ("<${NOPE:+${HOME}}>", "<>"),
    ("<${HOME:+${NOPE}}>", "<>"),
    ("<${HOME:+${USER}}>", "<ann>"),
    ("<${HOME:+x}>", "<x>"),
    ("<${EMPTY:+x}>", "<>"),
    ("<${USER:+${USER}:}>", "<ann:>"),
    # ${X?} and ${X:?}: an error when unset (or, with :, empty)
    ("${NOPE?}", ERROR),
    ("${NOPE:?}", ERROR),
    ("=${USER?}", "=ann"),
    ("=${USER:?}", "=ann"),
    ("=${EMPTY?}", "="),
    ("${EMPTY:?}", ERROR),
    # modifiers the lexer does not know
    ("${HOME:x}", ERROR),
    ("${HOME:=x}", ERROR),
    # text around non-ASCII
    ("ü'ber'all", "überall"),
    ("grü\\'n", "grü'n"),
    ('"ä\\tö"', "ä\\tö"),
    ("ü${NOPE:-${HOME:-x}}!", "ü/root!"),
    # a special parameter's name is one character ($@, $#, ...), a positional one all the
    # digits ($42); none is ever set here
    ("$##", "#"),
    ("$??", "?"),
    ("a$7b", "ab"),
    ("a$42b", "ab"),
]


@pytest.mark.parametrize("source,expected", WORD_CASES)
def test_word_cases(source, expected):
    if expected is ERROR:
        with pytest.raises(ExpandError):
            expand_word(source, ENV)
    else:
        assert expand_word(source, ENV) == expected


SPECIAL = ["0", "1", "5", "9", "42", "007", "@", "*", "#", "?", "-", "$", "!"]


@pytest.mark.parametrize("name", SPECIAL)
def test_special_parameters_are_unset(name):
    assert [expand_word(w, ENV) for w in (
        f"${name}", f"${{{name}}}", f"${{{name}:+set}}", f"${{{name}:-unset}}",
        f"${name}_t", f"${{{name}}}_t", f"${{{name}:+set}}_t", f"${{{name}:-unset}}_t",
    )] == ["", "", "", "unset", "_t", "_t", "_t", "unset_t"]


# (source, words) with WORDS_ENV: where unquoted values split and quoted ones do not
WORDS_ENV = {"one": "1", "pair": "x  y", "lead": "  p q", "trail": "p q  ",
             "PORTS": "8080 9090"}


@pytest.mark.parametrize("source,words", [
    ("w", ["w"]),
    ("a${one}b", ["a1b"]),
    ("a${none}b", ["ab"]),
    ("a${pair}b", ["ax", "yb"]),
    ('a"${pair}"b', ["ax  yb"]),
    ('a "${pair}"b', ["a", "x  yb"]),
    ("a${lead}b", ["a", "p", "qb"]),
    ('a"${lead}" b', ["a  p q", "b"]),
    ('a"${lead}"', ["a  p q"]),
    ("a${lead}", ["a", "p", "q"]),
    ("a${trail}", ["ap", "q"]),
    ("a${trail}b", ["ap", "q", "b"]),
    ('a"${trail}"b', ["ap q  b"]),
    ('x"y${trail}"', ["xyp q  "]),
    ('a" b  "', ["a b  "]),
    ("a b    ", ["a", "b"]),
    ("  a\t\tb", ["a", "b"]),
    ("a\\ b", ["a b"]),
    ('a\\" b', ['a"', "b"]),
    ('a"\\\\b"', ["a\\b"]),
    ('a"\\b"', ["a\\b"]),
    ("a'\\\\b'", ["a\\\\b"]),
    ("a'\\b'", ["a\\b"]),
    ("a'$one'", ["a$one"]),
    ('x "" y', ["x", "y"]),
    ("x '' y", ["x", "y"]),
    ("$none", []),
    ("80 443/udp ${PORTS}", ["80", "443/udp", "8080", "9090"]),
])
def test_words(source, words):
    assert expand_words(source, WORDS_ENV) == words


def test_words_error():
    with pytest.raises(ExpandError):
        expand_words("x 'y z", {})


# (source, env, result or ERROR, matched, unmatched): which variables a word used
@pytest.mark.parametrize("source,env,result,matched,unmatched", [
    ("plain", {"A": "a"}, "plain", set(), set()),
    ("v=${GONE}", {"A": "a"}, "v=", set(), {"GONE"}),
    ("v=${A}", {"A": "a"}, "v=a", {"A"}, set()),
    # without the colon only unset counts; with it empty counts too
    ("${S-1}|${E-2}|${U-3}", {"S": "s", "E": ""}, "s||3", {"S", "E"}, {"U"}),
    ("${S:-1}|${E:-2}|${U:-3}", {"S": "s", "E": ""}, "s|2|3", {"S", "E"}, {"U"}),
    ("${S:-}", {"S": "s"}, "s", {"S"}, set()),
    ("${U:-}", {}, "", set(), {"U"}),
    ("${S+1}|${E+2}|${U+3}", {"S": "s", "E": ""}, "1|2|", {"S", "E"}, {"U"}),
    ("${S:+1}|${E:+2}|${U:+3}", {"S": "s", "E": ""}, "1||", {"S", "E"}, {"U"}),
    ("${S?oops}", {"S": "s"}, "s", {"S"}, set()),
    ("${E?oops}", {"E": ""}, "", {"E"}, set()),
    ("${U?oops}", {"S": "s"}, ERROR, set(), set()),
    ("${S:?oops}", {"S": "s"}, "s", {"S"}, set()),
    ("${E:?oops}", {"E": ""}, ERROR, set(), set()),
    ("${U:?oops}", {}, ERROR, set(), set()),
    ("${U:?}", {}, ERROR, set(), set()),
    # assignment forms are not supported
    ("${S=x}", {"S": "s"}, ERROR, set(), set()),
    ("${S=:x}", {"S": "s"}, ERROR, set(), set()),
    ("${U=}", {}, ERROR, set(), set()),
    # prefix and suffix removal: * and ? are wildcards, escaped they are text, and every
    # other character (regexp ones too) is itself
    ("${P#\\*.+[x]|\\?}", {"P": "*.+[x]|?rest"}, "rest", {"P"}, set()),
    ("${P#(a)\\\\}", {"P": "(a)\\b"}, "b", {"P"}, set()),
    ("${P%%\\?*}", {"P": "ab??cd"}, "ab", {"P"}, set()),
    ("${P#*b*c}", {"P": "abcbcx"}, "bcx", {"P"}, set()),
    ("${P##*b*c}", {"P": "abcbcx"}, "x", {"P"}, set()),
    ("${P#*}", {"P": "abc"}, "abc", {"P"}, set()),        # shortest: nothing
    ("${P##*}", {"P": "abc"}, "", {"P"}, set()),
    ("${P#$Q}", {"P": "aab", "Q": "a"}, "ab", {"P", "Q"}, set()),
    ("${P#$Q}", {"P": "aab", "Q": ""}, "aab", {"P", "Q"}, set()),
    ("${P#}", {"P": "aab"}, "aab", {"P"}, set()),
    ("${P##}", {"P": "aab"}, "aab", {"P"}, set()),
    ("${P#?\\?}", {"P": "x??"}, "?", {"P"}, set()),
    ("${M:-[}${P%b}${M:-]}", {"P": "abab"}, "[aba]", {"P"}, {"M"}),
    ("${P%%\\?*\\?}", {"P": "ok???z?"}, "ok", {"P"}, set()),
    ("${P%}", {"P": "abab"}, "abab", {"P"}, set()),
    ("${P%%$Q}", {"P": "abab", "Q": ""}, "abab", {"P", "Q"}, set()),
    ("${P%b}", {"P": "abbb"}, "abb", {"P"}, set()),
    ("${P%%b*}", {"P": "abab"}, "a", {"P"}, set()),
    ("${P%b*}", {"P": "abab"}, "aba", {"P"}, set()),
    ("${P%.*}", {"P": "archive.tar.gz"}, "archive.tar", {"P"}, set()),
    ("${P%%.*}", {"P": "archive.tar.gz"}, "archive", {"P"}, set()),
    ("${P##*/}", {"P": "/usr/local/bin/tool"}, "tool", {"P"}, set()),
    ("${P:#}", {}, ERROR, set(), set()),
    ("${P:##}", {}, ERROR, set(), set()),
    ("${P:%}", {}, ERROR, set(), set()),
    ("${P:%%}", {}, ERROR, set(), set()),
    # replacement: first or (//) every match, the longest at the leftmost place; the
    # pattern and the replacement expand, an escaped / in the pattern is text, and the
    # replacement keeps its escapes as written
    ("${P/$N/-} ${P//$N/-}", {"P": "a*.b*.c", "N": "\\*."}, "a-b*.c a-b-c",
     {"P", "N"}, set()),
    ("${P/$N/} ${P//$N/}", {"P": "x.y.x.y.z", "N": "x."}, "y.x.y.z y.y.z", {"P", "N"}, set()),
    ("${P/$N/$R} ${P//$N/$R}", {"P": "1-a-2-b-3", "N": "-?-", "R": "+"},
     "1+2-b-3 1+2+3", {"P", "N", "R"}, set()),
    ("${P/$N/$R}", {"P": "git://example.org/r", "N": "git://", "R": "https://"},
     "https://example.org/r", {"P", "N", "R"}, set()),
    ("${P//\\//\\\\}", {"P": "a/b/c"}, "a\\\\b\\\\c", {"P"}, set()),
    ("${P/$E/pre}", {"P": "word", "E": ""}, "preword", {"P", "E"}, set()),
    ("${P//x}", {"P": "xyz"}, ERROR, set(), set()),
    ("${P//}", {"P": "xyz"}, ERROR, set(), set()),
    ("${P///}", {"P": "xyz"}, "xyz", {"P"}, set()),
    ("${P///}", {}, "", set(), {"P"}),
])
def test_process_with_matches(source, env, result, matched, unmatched):
    if result is ERROR:
        with pytest.raises(ExpandError):
            process(source, env)
        return
    got = process(source, env)
    assert (got.word, got.matched, got.unmatched) == (result, matched, unmatched)


def test_optional_suffix_example():
    # the reference's use of ${X:+...}: an optional part with its separator
    name = "tool_${VERSION}_${TARGETOS}_${TARGETARCH}${TARGETVARIANT:+_${TARGETVARIANT}}.zip"
    base = {"VERSION": "0.9", "TARGETOS": "linux"}
    assert expand_word(name, {**base, "TARGETARCH": "arm", "TARGETVARIANT": "v6"}) == \
        "tool_0.9_linux_arm_v6.zip"
    assert expand_word(name, {**base, "TARGETARCH": "riscv64", "TARGETVARIANT": ""}) == \
        "tool_0.9_linux_riscv64.zip"
    assert expand_word(name, {**base, "TARGETARCH": "riscv64"}) == \
        "tool_0.9_linux_riscv64.zip"


@pytest.mark.parametrize("source,env,message", [
    ("${TOKEN:?set it for $WHO}", {"WHO": "ci"}, "TOKEN: set it for ci"),
    ("${TOKEN:?set it for $WHO}", {"TOKEN": "", "WHO": "ci"}, "TOKEN: set it for ci"),
    ("${TOKEN?set it for $WHO}", {"WHO": "ci"}, "TOKEN: set it for ci"),
    ("${KEY:?}", {}, "KEY: is not allowed to be unset"),
    ("${KEY:?}", {"KEY": ""}, "KEY: is not allowed to be empty"),
    ("${KEY?}", {}, "KEY: is not allowed to be unset"),
    ("x${}", {}, "syntax error: bad substitution"),
    ("x${", {}, "syntax error: missing '}'"),
    ("${name", {}, "syntax error: missing '}'"),
    ("${name:-def", {}, "syntax error: missing '}'"),
    ("${V:W}", {}, "unsupported modifier (:W) in substitution"),
    ("${V=w}", {}, "unsupported modifier (=) in substitution"),
    ("${V:#w}", {}, "unsupported modifier (:#) in substitution"),
    ("${V/w", {}, "syntax error: missing '/' in ${}"),
    ("x 'yz", {}, "unexpected end of statement while looking for matching single-quote"),
    ('x "yz', {}, "unexpected end of statement while looking for matching double-quote"),
    ("${V%\\q}", {"V": "a"}, "invalid pattern (\\q) in substitution: invalid escape '\\q'"),
])
def test_error_texts(source, env, message):
    with pytest.raises(ExpandError) as info:
        expand_word(source, env)
    assert str(info.value) == f"failed to process {json.dumps(source)}: {message}"


def test_used_variables():
    assert used_variables("${A}-$B-${C:-x}-'$D'", {"A": "1", "C": "3", "D": "4"}) == {"A", "C"}


def test_backtick_escape():
    env = {"X": "1"}
    assert expand_word("c:\\dir`$X", env, escape="`") == "c:\\dir$X"
    assert expand_word('"a`"b"', env, escape="`") == 'a"b'
    assert expand_words("a` b c", env, escape="`") == ["a b", "c"]


def test_raw_options_keep_quotes_and_skip_unset():
    opts = Options(raw_quotes=True, raw_escapes=True, skip_unset=True)
    got = process("a'b' \"c $U ${U:-x}\" \\$d $S", {"S": "s"}, opts)
    assert got.words == ["a'b'", '"c $U ${U:-x}"', "\\$d", "s"]


def test_heredoc_words_in_lexer():
    assert expand_words("cat << EOF >x", {}) == ["cat", "<< EOF", ">x"]


def test_deep_nesting_is_an_error_not_a_crash():
    word = "${a:-" * 500 + "x" + "}" * 500
    with pytest.raises(ExpandError, match="nested too deeply"):
        expand_word(word, {})
    assert expand_word("${a:-" * 20 + "x" + "}" * 20, {}) == "x"


def test_long_word_is_linear():
    import time
    start = time.thread_time()  # CPU, as the bound means: a busy machine stretches wall time
    assert expand_words("a" * 300000, {}) == ["a" * 300000]
    assert time.thread_time() - start < 2


@pytest.mark.parametrize("source,value,expected", [
    ("${X#*a*a*a*a*b}", "a" * 3000, "a" * 3000),
    ("${X%%a*a*a*a*b}", "a" * 3000, "a" * 3000),
    ("${X/a*a*a*a*b/z}", "a" * 3000, "a" * 3000),
    ("${X//a?a?b/z}", "a" * 3000, "a" * 3000),
    ("${X##*a}", "a" * 3000 + "b", "b"),
])
def test_patterns_are_linear(source, value, expected):
    # Go's regexps are linear; a backtracking engine would not finish these
    import time
    start = time.thread_time()  # CPU, as the bound means: a busy machine stretches wall time
    assert expand_word(source, {"X": value}) == expected
    assert time.thread_time() - start < 2


@pytest.mark.parametrize("source,value,expected", [
    ("${X/b*/_}", "abcabc", "a_"),                 # greedy: longest from the leftmost start
    ("${X/c?/_}", "abcabc", "ab_bc"),
    ("${X//c?/_}", "abcabcx", "ab_b_"),
    ("${X//?/_}", "ab\ncd", "__\n__"),           # ? never matches a newline (Go's .)
    ("${X#*}", "a\nb", "a\nb"),
    ("${X##*}", "a\nb", "\nb"),
    ("${X%%*}", "a\nb", "a\n"),
    ("${X//x*/_}", "axbxc", "a_"),
    ("${X//y*/_}", "abc", "abc"),
    ("${X//*/_}", "abc", "_"),
    ("${X//*/_}", "a\nb", "_\n_"),               # Go skips empty matches after a match
    ("${X//*/_}", "a\n\nb", "_\n_\n_"),
    ("${X/*/_}", "", "_"),
    ("${X//b/}", "abcb", "ac"),
    ("${X#a?}", "abc", "c"),
    ("${X%?c}", "abc", "a"),
    ("${X%%b*}", "abcbc", "a"),
    ("${X%b*}", "abcbc", "abc"),
])
def test_pattern_semantics(source, value, expected):
    assert expand_word(source, {"X": value}) == expected


def _regex(pattern: str, greedy: bool, anchored: bool):
    """A shell pattern as a regexp (* any run, ? one character but a newline, the rest
    itself), for small differential checks (a backtracking engine agrees with RE2 on these;
    it is only slow on hostile ones)."""
    import re
    out = "^" if anchored else ""
    for ch in pattern:
        out += (".*" if greedy else ".*?") if ch == "*" else "." if ch == "?" else re.escape(ch)
    return re.compile(out)


def test_patterns_agree_with_regexps():
    import random
    rnd = random.Random(5)
    for _ in range(3000):
        pattern = "".join(rnd.choice("ab*?") for _ in range(rnd.randint(0, 5)))
        value = "".join(rnd.choice("ab\n") for _ in range(rnd.randint(0, 8)))
        env = {"X": value}
        for op, greedy in (("#", False), ("##", True)):
            m = _regex(pattern, greedy, True).match(value)
            want = value[m.end():] if m else value
            assert expand_word(f"${{X{op}{pattern}}}", env) == want, (op, pattern, value)
        for op, greedy in (("%", False), ("%%", True)):
            m = _regex(pattern[::-1], greedy, True).match(value[::-1])
            want = value[::-1][m.end():][::-1] if m else value
            assert expand_word(f"${{X{op}{pattern}}}", env) == want, (op, pattern, value)
        if not pattern:
            continue  # ${X//_} is a replace-all with a missing /
        regex = _regex(pattern, True, False)
        m = regex.search(value)
        want = value[:m.start()] + "_" + value[m.end():] if m else value
        assert expand_word(f"${{X/{pattern}/_}}", env) == want, ("/", pattern, value)
