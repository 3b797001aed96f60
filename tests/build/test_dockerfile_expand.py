"""The shell lexer (variable substitution, quotes, escapes, word splitting) against
BuildKit's lexer tests (frontend/dockerfile/shell: envVarTest, wordsTest, lex_test.go)."""

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

ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}

# BuildKit's envVarTest (Unix lines): source | expected ("error" = refused)
ENV_VAR_CASES = r"""
hello                    |     hello
he'll'o                  |     hello
he'llo                   |     error
he\'llo                  |     he'llo
he\\'llo                 |     error
abc\tdef                 |     abctdef
"abc\tdef"               |     abc\tdef
"abc\\tdef"              |     abc\tdef
'abc\tdef'               |     abc\tdef
hello\                   |     hello
hello\\                  |     hello\
"hello                   |     error
"hello\"                 |     error
"hel'lo"                 |     hel'lo
'hello                   |     error
'hello\'                 |     hello\
'hello\there'            |     hello\there
'hello\\there'           |     hello\\there
"''"                     |     ''
$.                       |     $.
he$1x                    |     hex
he$.x                    |     he$.x
he$pwd.                  |     he.
he$PWD                   |     he/home
he\$PWD                  |     he$PWD
he\\$PWD                 |     he\/home
"he\$PWD"                |     he$PWD
"he\\$PWD"               |     he\/home
\${}                     |     ${}
\${}aaa                  |     ${}aaa
he\${}                   |     he${}
he\${}xx                 |     he${}xx
${}                      |     error
${}aaa                   |     error
he${}                    |     error
he${}xx                  |     error
he${hi}                  |     he
he${hi}xx                |     hexx
he${PWD}                 |     he/home
he${.}                   |     error
he${XXX:-000}xx          |     he000xx
he${PWD:-000}xx          |     he/homexx
he${XXX:-$PWD}xx         |     he/homexx
he${XXX:-${PWD:-yyy}}xx  |     he/homexx
he${XXX:-${YYY:-yyy}}xx  |     heyyyxx
he${XXX:YYY}             |     error
he${XXX?}                |     error
he${XXX:?}               |     error
he${PWD?}                |     he/home
he${PWD:?}               |     he/home
he${NULL?}               |     he
he${NULL:?}              |     error
he${XXX:+${PWD}}xx       |     hexx
he${PWD:+${XXX}}xx       |     hexx
he${PWD:+${SHELL}}xx     |     hebashxx
he${XXX:+000}xx          |     hexx
he${PWD:+000}xx          |     he000xx
'he${XX}'                |     he${XX}
"he${PWD}"               |     he/home
"he'$PWD'"               |     he'/home'
"$PWD"                   |     /home
'$PWD'                   |     $PWD
'\$PWD'                  |     \$PWD
'"hello"'                |     "hello"
he\$PWD                  |     he$PWD
"he\$PWD"                |     he$PWD
'he\$PWD'                |     he\$PWD
he${PWD                  |     error
he${PWD:=000}xx          |     error
he${PWD:+${PWD}:}xx      |     he/home:xx
he${XXX:-\$PWD:}xx       |     he$PWD:xx
he${XXX:-\${PWD}z}xx     |     he${PWDz}xx
$KOREAN                    |     한국어
${{aaa}                   |     error
${aaa}}                   |     }
${aaa                     |     error
${{aaa:-bbb}              |     error
${aaa:-bbb}}              |     bbb}
${aaa:-bbb                |     error
${aaa:-bbb}               |     bbb
${aaa:-${bbb:-ccc}}       |     ccc
${aaa:-bbb ${foo}         |     error
${aaa:-bbb {foo}          |     bbb {foo
${:}                      |     error
${:-bbb}                  |     error
${:+bbb}                  |     error
$1                        |
${1}                      |
${1:+bbb}                 |
${1:-bbb}                 |     bbb
$2                        |
${2}                      |
${2:+bbb}                 |
${2:-bbb}                 |     bbb
$3                        |
${3}                      |
${3:+bbb}                 |
${3:-bbb}                 |     bbb
$4                        |
${4}                      |
${4:+bbb}                 |
${4:-bbb}                 |     bbb
$5                        |
${5}                      |
${5:+bbb}                 |
${5:-bbb}                 |     bbb
$6                        |
${6}                      |
${6:+bbb}                 |
${6:-bbb}                 |     bbb
$7                        |
${7}                      |
${7:+bbb}                 |
${7:-bbb}                 |     bbb
$8                        |
${8}                      |
${8:+bbb}                 |
${8:-bbb}                 |     bbb
$9                        |
${9}                      |
${9:+bbb}                 |
${9:-bbb}                 |     bbb
$999                      |
${999}                    |
${999:+bbb}               |
${999:-bbb}               |     bbb
$999aaa                   |     aaa
${999}aaa                 |     aaa
${999:+bbb}aaa            |     aaa
${999:-bbb}aaa            |     bbbaaa
$001                      |
${001}                    |
${001:+bbb}               |
${001:-bbb}               |     bbb
$001aaa                   |     aaa
${001}aaa                 |     aaa
${001:+bbb}aaa            |     aaa
${001:-bbb}aaa            |     bbbaaa
$@                        |
${@}                      |
${@:+bbb}                 |
${@:-bbb}                 |     bbb
$@@@                      |     @@
$@aaa                     |     aaa
${@}aaa                   |     aaa
${@:+bbb}aaa              |     aaa
${@:-bbb}aaa              |     bbbaaa
$*                        |
${*}                      |
${*:+bbb}                 |
${*:-bbb}                 |     bbb
$#                        |
${#}                      |
${#:+bbb}                 |
${#:-bbb}                 |     bbb
$?                        |
${?}                      |
${?:+bbb}                 |
${?:-bbb}                 |     bbb
$-                        |
${-}                      |
${-:+bbb}                 |
${-:-bbb}                 |     bbb
$$                        |
${$}                      |
${$:+bbb}                 |
${$:-bbb}                 |     bbb
$!                        |
${!}                      |
${!:+bbb}                 |
${!:-bbb}                 |     bbb
$0                        |
${0}                      |
${0:+bbb}                 |
${0:-bbb}                 |     bbb
안'녕'하세요               |     안녕하세요
안녕\'하세요               |     안녕'하세요
"안녕\t하세요"             |     안녕\t하세요
안녕${XXX:-${PWD:-yyy}}xx  |     안녕/homexx
$KOREAN                    |     한국어
"""


def _cases(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.strip("\n").splitlines():
        source, _, expected = line.partition("|")
        out.append((source.strip(), expected.strip()))
    return out


@pytest.mark.parametrize("source,expected", _cases(ENV_VAR_CASES))
def test_env_var_cases(source, expected):
    if expected == "error":
        with pytest.raises(ExpandError):
            expand_word(source, ENV)
    else:
        assert expand_word(source, ENV) == expected


# BuildKit's wordsTest: (env, source, words)
WORDS_ENV = {"hi": "hi", "space": "abc  def", "leading": "  ab c", "trailing": "ab c   "}


@pytest.mark.parametrize("source,words", [
    ("hello", ["hello"]),
    ("hello${hi}bye", ["hellohibye"]),
    ("hello${nope}bye", ["hellobye"]),
    ("hello${space}bye", ["helloabc", "defbye"]),
    ('hello"${space}"bye', ["helloabc  defbye"]),
    ('hello "${space}"bye', ["hello", "abc  defbye"]),
    ("hello${leading}def", ["hello", "ab", "cdef"]),
    ('hello"${leading}" def', ["hello  ab c", "def"]),
    ('hello"${leading}"', ["hello  ab c"]),
    ("hello${leading}", ["hello", "ab", "c"]),
    ("hello${trailing}", ["helloab", "c"]),
    ("hello${trailing}d", ["helloab", "c", "d"]),
    ('hello"${trailing}"d', ["helloab c   d"]),
    ('hel"lo${trailing}"', ["helloab c   "]),
    ('hello" there  "', ["hello there  "]),
    ("hello there     ", ["hello", "there"]),
    ("hello\\ there", ["hello there"]),
    ('hello\\" there', ['hello"', "there"]),
    ('hello"\\\\there"', ["hello\\there"]),
    ('hello"\\there"', ["hello\\there"]),
    ("hello'\\\\there'", ["hello\\\\there"]),
    ("hello'\\there'", ["hello\\there"]),
    ("hello'$there'", ["hello$there"]),
    ('a "" b', ["a", "b"]),
    ("80 443/udp ${PORTS}", ["80", "443/udp", "8080", "9090"]),
])
def test_words(source, words):
    assert expand_words(source, {**WORDS_ENV, "PORTS": "8080 9090"}) == words


def test_words_error():
    with pytest.raises(ExpandError):
        expand_words('hello" there', {})


# lex_test.go's TestProcessWithMatches: (source, env, result or None for an error,
# matched, unmatched)
@pytest.mark.parametrize("source,env,result,matched,unmatched", [
    ("x", {"DUMMY": "dummy"}, "x", set(), set()),
    ("x ${UNUSED}", {"DUMMY": "dummy"}, "x ", set(), {"UNUSED"}),
    ("x ${FOO}", {"FOO": "y"}, "x y", {"FOO"}, set()),
    ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx  ccc",
     {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx bbb ccc",
     {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO:-}", {"FOO": "xxx"}, "xxx", {"FOO"}, set()),
    ("${FOO:-}", {}, "", set(), {"FOO"}),
    ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa bbb ",
     {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa  ",
     {"FOO", "BAR"}, {"BAZ"}),
    ("${FOO?aaa}", {"FOO": "xxx", "BAR": ""}, "xxx", {"FOO"}, set()),
    ("${BAR?bbb}", {"FOO": "xxx", "BAR": ""}, "", {"BAR"}, set()),
    ("${BAZ?ccc}", {"FOO": "xxx"}, None, set(), set()),
    ("${FOO:?aaa}", {"FOO": "xxx"}, "xxx", {"FOO"}, set()),
    ("${BAR:?bbb}", {"BAR": ""}, None, set(), set()),
    ("${BAZ:?ccc}", {}, None, set(), set()),
    ("${BAZ:?}", {}, None, set(), set()),
    ("${FOO=aaa}", {"FOO": "xxx"}, None, set(), set()),
    ("${FOO=:aaa}", {"FOO": "xxx"}, None, set(), set()),
    ("${FOO=}", {}, None, set(), set()),
    ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", {"FOO": "()[]{}^$.*?|\\x"}, "x", {"FOO"}, set()),
    ("${FOO%%\\**}", {"FOO": "xx**"}, "xx", {"FOO"}, set()),
    ("${FOO#*x*y}", {"FOO": "xxyy"}, "y", {"FOO"}, set()),
    ("${FOO#*}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy", {"FOO", "BAR"}, set()),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy", {"FOO", "BAR"}, set()),
    ("${FOO#}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO##*x}", {"FOO": "xxyy"}, "yy", {"FOO"}, set()),
    ("${FOO##}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO#?\\?}", {"FOO": "???y"}, "?y", {"FOO"}, set()),
    ("${ABC:-.}${FOO%x}${ABC:-.}", {"FOO": "xxyy"}, ".xxyy.", {"FOO"}, {"ABC"}),
    ("${FOO%%\\**\\*}", {"FOO": "a***yy*"}, "a", {"FOO"}, set()),
    ("${FOO%}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO%%$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy", {"FOO", "BAR"}, set()),
    ("${FOO%y}", {"FOO": "xxyy"}, "xxy", {"FOO"}, set()),
    ("${FOO%%y*}", {"FOO": "xxyy"}, "xx", {"FOO"}, set()),
    ("${FOO%y*}", {"FOO": "xxyy"}, "xxy", {"FOO"}, set()),
    ("${FOO:#}", {}, None, set(), set()),
    ("${FOO:##}", {}, None, set(), set()),
    ("${FOO:%}", {}, None, set(), set()),
    ("${FOO:%%}", {}, None, set(), set()),
    ("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", {"FOO": "/foo*/*/*.txt", "NEEDLE": "\\*/"},
     "/foo.*/*.txt - /foo..*.txt", {"FOO", "NEEDLE"}, set()),
    ("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", {"FOO": "/tmp/tmp/bar.txt", "NEEDLE": "/tmp"},
     "/tmp/bar.txt - /bar.txt", {"FOO", "NEEDLE"}, set()),
    ("${FOO/$NEEDLE/$R} - ${FOO//$NEEDLE/$R}",
     {"FOO": "/a/foo/b/c.txt", "NEEDLE": "/?/", "R": "/"},
     "/foo/b/c.txt - /foo/c.txt", {"FOO", "NEEDLE", "R"}, set()),
    ("${FOO/$NEEDLE/$R}", {"FOO": "http://google.de", "NEEDLE": "http://", "R": "https://"},
     "https://google.de", {"FOO", "NEEDLE", "R"}, set()),
    ("${FOO//\\//\\/}", {"FOO": "/tmp/foo.txt"}, "\\/tmp\\/foo.txt", {"FOO"}, set()),
    ("${FOO/$BAR/ww}", {"FOO": "xxyy", "BAR": ""}, "wwxxyy", {"FOO", "BAR"}, set()),
    ("${FOO//ww}", {"FOO": "xxyy"}, None, set(), set()),
    ("${FOO//}", {"FOO": "xxyy"}, None, set(), set()),
    ("${FOO///}", {"FOO": "xxyy"}, "xxyy", {"FOO"}, set()),
    ("${FOO///}", {}, "", set(), {"FOO"}),
])
def test_process_with_matches(source, env, result, matched, unmatched):
    if result is None:
        with pytest.raises(ExpandError):
            process(source, env)
        return
    got = process(source, env)
    assert (got.word, got.matched, got.unmatched) == (result, matched, unmatched)


def test_platform_args_example():
    release = ("something-${VERSION}.${TARGETOS}-${TARGETARCH}"
               "${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz")
    base = {"VERSION": "v1.2.3", "TARGETOS": "linux"}
    assert expand_word(release, {**base, "TARGETARCH": "arm", "TARGETVARIANT": "v7"}) == \
        "something-v1.2.3.linux-arm-v7.tar.gz"
    assert expand_word(release, {**base, "TARGETARCH": "arm64", "TARGETVARIANT": ""}) == \
        "something-v1.2.3.linux-arm64.tar.gz"
    assert expand_word(release, {**base, "TARGETARCH": "arm64"}) == \
        "something-v1.2.3.linux-arm64.tar.gz"


@pytest.mark.parametrize("source,env,message", [
    ("${VAR:?message here$ARG}", {"ARG": "x"}, "VAR: message herex"),
    ("${VAR:?message here$ARG}", {"VAR": "", "ARG": "x"}, "VAR: message herex"),
    ("${VAR?message here$ARG}", {"ARG": "x"}, "VAR: message herex"),
    ("${VAR:?}", {}, "VAR: is not allowed to be unset"),
    ("${VAR:?}", {"VAR": ""}, "VAR: is not allowed to be empty"),
    ("${VAR?}", {}, "VAR: is not allowed to be unset"),
    ("${}", {}, "syntax error: bad substitution"),
    ("${", {}, "syntax error: missing '}'"),
    ("${aaa", {}, "syntax error: missing '}'"),
    ("${aaa:-bbb", {}, "syntax error: missing '}'"),
    ("${XXX:YYY}", {}, "unsupported modifier (:Y) in substitution"),
    ("${XXX=y}", {}, "unsupported modifier (=) in substitution"),
    ("${XXX:#y}", {}, "unsupported modifier (:#) in substitution"),
    ("${FOO/x", {}, "syntax error: missing '/' in ${}"),
    ("'abc", {}, "unexpected end of statement while looking for matching single-quote"),
    ('"abc', {}, "unexpected end of statement while looking for matching double-quote"),
    ("${FOO#\\x}", {"FOO": "a"}, "invalid pattern (\\x) in substitution: invalid escape '\\x'"),
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
    start = time.monotonic()
    assert expand_words("a" * 300000, {}) == ["a" * 300000]
    assert time.monotonic() - start < 2


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
    start = time.monotonic()
    assert expand_word(source, {"X": value}) == expected
    assert time.monotonic() - start < 2


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
    """BuildKit's convertShellPatternToRegex, for small differential checks (a backtracking
    engine agrees with RE2 on these; it is only slow on hostile ones)."""
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
