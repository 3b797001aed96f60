"""Go text/template semantics and messages, checked against what Go prints.

Most cases are Go's own: src/text/template/exec_test.go (execTests, TestComparison,
TestExecError), parse/parse_test.go (parse errors, trim markers) and docker/cli's
formatter tests for the messages Docker shows. Go structs are played by Python objects,
Go maps by dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from barque.cli import gofmt
from barque.cli.gotemplate import NO_VALUE, Template, TemplateError, compile, render


class U:
    def __init__(self, v: str) -> None:
        self.V = v

    def TrueFalse(self, b: bool) -> str:
        return "true" if b else ""


class T:
    """exec_test.go's T, with the fields the cases below use."""

    def __init__(self) -> None:
        setattr(self, "True", True)  # noqa: B010 - "True" is not a Python identifier
        self.I = 17
        self.X = "x"
        self.FloatZero = 0.0
        self.U = U("v")
        self.SI = [3, 4, 5]
        self.SIEmpty: list[int] = []
        self.SB = [True, False]
        self.MSI = {"one": 1, "two": 2, "three": 3}
        self.MSIone = {"one": 1}
        self.MSIEmpty: dict[str, int] = {}
        self.MXI = {"one": 1}
        self.SMSI = [{"one": 1, "two": 2}, {"eleven": 11, "twelve": 12}]
        self.Empty0 = None
        self.Empty3 = [7, 8]
        self.Empty4 = U("UinEmpty")
        self.PS = "a string"
        self.BinaryFunc: Callable[[str, str], str] = lambda a, b: f"[{a}={b}]"
        self.VariadicFunc: Callable[..., str] = lambda *s: "<" + "+".join(s) + ">"
        self._unexported = 1

    def Method0(self) -> str:
        return "M0"

    def Method1(self, a: int) -> int:
        return a

    def Method2(self, a: int, b: str) -> str:
        return f"Method2: {a} {b}"

    def Method3(self, v: Any) -> str:
        return gofmt.sprintf("Method3: %v", v)

    def MAdd(self, a: int, b: list[int]) -> list[int]:
        return [x + a for x in b]

    def MyError(self, error: bool) -> bool:
        if error:
            raise ValueError("my error")
        return False

    def GetU(self) -> U:
        return self.U


FUNCS: dict[str, Callable[..., Any]] = {
    "add": lambda *args: sum(args),
    "echo": lambda arg: arg,
    "makemap": lambda *a: dict(zip(a[::2], a[1::2], strict=True)),
    "mapOfThree": lambda: {"three": 3},
    "oneArg": lambda a: "oneArg=" + a,
    "twoArgs": lambda a, b: "twoArgs=" + a + b,
    "zeroArgs": lambda: "zeroArgs",
    "count": lambda n: [chr(ord("a") + i) for i in range(n)],
}

TVAL = T()


def run(template: str, data: Any = TVAL) -> str:
    return compile(template, funcs=FUNCS).execute(data)


# --- execTests (expected output) ------------------------------------------------------------

EXEC_CASES = [
    ("empty", "", ""),
    ("text", "some text", "some text"),
    (".X", "-{{.X}}-", "-x-"),
    (".U.V", "-{{.U.V}}-", "-v-"),
    ("map .one", "{{.MSI.one}}", "1"),
    ("map .NO", "{{.MSI.NO}}", "<no value>"),
    ("map .one interface", "{{.MXI.one}}", "1"),
    ("$.I", "{{$.I}}", "17"),
    ("$.U.V", "{{$.U.V}}", "v"),
    ("declare in action", "{{$x := $.U.V}}{{$x}}", "v"),
    ("empty with slice", "{{.Empty3}}", "[7 8]"),
    ("empty with struct", "{{.Empty4}}", "{UinEmpty}"),
    ("empty with struct, field", "{{.Empty4.V}}", "UinEmpty"),
    (".Method0", "-{{.Method0}}-", "-M0-"),
    (".Method1(1234)", "-{{.Method1 1234}}-", "-1234-"),
    (".Method1(.I)", "-{{.Method1 .I}}-", "-17-"),
    (".Method2(3, .X)", "-{{.Method2 3 .X}}-", "-Method2: 3 x-"),
    (".Method2($x)", "{{if $x := .X}}-{{.Method2 .I $x}}{{end}}-", "-Method2: 17 x-"),
    (".Method3(nil constant)", "-{{.Method3 nil}}-", "-Method3: <nil>-"),
    (".Method3(nil value)", "-{{.Method3 .MXI.unset}}-", "-Method3: <nil>-"),
    ("method on var", "{{if $x := .}}-{{$x.Method2 .I $x.X}}{{end}}-", "-Method2: 17 x-"),
    ("method on chained var",
     "{{range .MSIone}}{{if $.U.TrueFalse $.True}}{{$.U.TrueFalse $.True}}{{else}}WRONG{{end}}"
     "{{end}}", "true"),
    ("chained method",
     "{{range .MSIone}}{{if $.GetU.TrueFalse $.True}}{{$.U.TrueFalse $.True}}{{else}}WRONG"
     "{{end}}{{end}}", "true"),
    (".BinaryFunc", "{{call .BinaryFunc `1` `2`}}", "[1=2]"),
    (".VariadicFunc0", "{{call .VariadicFunc}}", "<>"),
    (".VariadicFunc2", "{{call .VariadicFunc `he` `llo`}}", "<he+llo>"),
    ("if .BinaryFunc call", "{{ if .BinaryFunc}}{{call .BinaryFunc `1` `2`}}{{end}}", "[1=2]"),
    ("pipeline", "-{{.Method0 | .Method2 .I}}-", "-Method2: 17 M0-"),
    ("pipeline func", "-{{call .VariadicFunc `llo` | call .VariadicFunc `he` }}-",
     "-<he+<llo>>-"),
    ("parens in pipeline", "{{printf `%d %d %d` (1) (2 | add 3) (add 4 (add 5 6))}}",
     "1 5 15"),
    ("parens: $ in paren", "{{($).X}}", "x"),
    ("parens: $.GetU in paren", "{{($.GetU).V}}", "v"),
    ("parens: $ in paren in pipe", "{{($ | echo).X}}", "x"),
    ("parens: spaces and args", '{{(makemap "up" "down" "left" "right").left}}', "right"),
    ("if true", "{{if true}}TRUE{{end}}", "TRUE"),
    ("if false", "{{if false}}TRUE{{else}}FALSE{{end}}", "FALSE"),
    ("if 1", "{{if 1}}NON-ZERO{{else}}ZERO{{end}}", "NON-ZERO"),
    ("if 0", "{{if 0}}NON-ZERO{{else}}ZERO{{end}}", "ZERO"),
    ("if 1.5", "{{if 1.5}}NON-ZERO{{else}}ZERO{{end}}", "NON-ZERO"),
    ("if 0.0", "{{if .FloatZero}}NON-ZERO{{else}}ZERO{{end}}", "ZERO"),
    ("if emptystring", "{{if ``}}NON-EMPTY{{else}}EMPTY{{end}}", "EMPTY"),
    ("if string", "{{if `notempty`}}NON-EMPTY{{else}}EMPTY{{end}}", "NON-EMPTY"),
    ("if emptyslice", "{{if .SIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}", "EMPTY"),
    ("if slice", "{{if .SI}}NON-EMPTY{{else}}EMPTY{{end}}", "NON-EMPTY"),
    ("if emptymap", "{{if .MSIEmpty}}NON-EMPTY{{else}}EMPTY{{end}}", "EMPTY"),
    ("if map", "{{if .MSI}}NON-EMPTY{{else}}EMPTY{{end}}", "NON-EMPTY"),
    ("if map unset", "{{if .MXI.none}}NON-ZERO{{else}}ZERO{{end}}", "ZERO"),
    ("if map not unset", "{{if not .MXI.none}}ZERO{{else}}NON-ZERO{{end}}", "ZERO"),
    ("if $x with $y int", "{{if $x := true}}{{with $y := .I}}{{$x}},{{$y}}{{end}}{{end}}",
     "true,17"),
    ("if $x with $x int", "{{if $x := true}}{{with $x := .I}}{{$x}},{{end}}{{$x}}{{end}}",
     "17,true"),
    ("if else if", "{{if false}}FALSE{{else if true}}TRUE{{end}}", "TRUE"),
    ("if else chain", "{{if eq 1 3}}1{{else if eq 2 3}}2{{else if eq 3 3}}3{{end}}", "3"),
    ("print", '{{print "hello, print"}}', "hello, print"),
    ("print 123", "{{print 1 2 3}}", "1 2 3"),
    ("print nil", "{{print nil}}", "<nil>"),
    ("println", "{{println 1 2 3}}", "1 2 3\n"),
    ("printf int", '{{printf "%04x" 127}}', "007f"),
    ("printf float", '{{printf "%g" 3.5}}', "3.5"),
    ("printf complex", '{{printf "%g" 1+7i}}', "(1+7i)"),
    ("printf string", '{{printf "%s" "hello"}}', "hello"),
    ("printf function", '{{printf "%#q" zeroArgs}}', "`zeroArgs`"),
    ("printf field", '{{printf "%s" .U.V}}', "v"),
    ("printf method", '{{printf "%s" .Method0}}', "M0"),
    ("printf dot", '{{with .I}}{{printf "%d" .}}{{end}}', "17"),
    ("printf var", '{{with $x := .I}}{{printf "%d" $x}}{{end}}', "17"),
    ("printf lots", '{{printf "%d %s %g %s" 127 "hello" 7-3i .Method0}}',
     "127 hello (7-3i) M0"),
    ("html", '{{html "<script>alert(\\"XSS\\");</script>"}}',
     "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;"),
    ("html pipeline", '{{printf "<script>alert(\\"XSS\\");</script>" | html}}',
     "&lt;script&gt;alert(&#34;XSS&#34;);&lt;/script&gt;"),
    ("html field", "{{html .PS}}", "a string"),
    ("urlquery", '{{"http://www.example.org/"|urlquery}}', "http%3A%2F%2Fwww.example.org%2F"),
    ("not", "{{not true}} {{not false}}", "false true"),
    ("and", "{{and false 0}} {{and 1 0}} {{and 0 true}} {{and 1 1}}", "false 0 0 1"),
    ("or", "{{or 0 0}} {{or 1 0}} {{or 0 true}} {{or 1 1}}", "0 1 true 1"),
    ("boolean if", "{{if and true 1 `hi`}}TRUE{{else}}FALSE{{end}}", "TRUE"),
    ("boolean if not", "{{if and true 1 `hi` | not}}TRUE{{else}}FALSE{{end}}", "FALSE"),
    ("and short-circuits", "{{and 0 (index .SI 99)}}", "0"),
    ("or short-circuits", "{{or 1 (index .SI 99)}}", "1"),
    ("slice[0]", "{{index .SI 0}}", "3"),
    ("slice[1]", "{{index .SI 1}}", "4"),
    ("map[one]", "{{index .MSI `one`}}", "1"),
    ("map[two]", "{{index .MSI `two`}}", "2"),
    ("map[NO]", "{{index .MSI `XXX`}}", "0"),
    ("map[``]", "{{index .MSI ``}}", "0"),
    ("double index", "{{index .SMSI 1 `eleven`}}", "11"),
    ("slice", "{{len .SI}}", "3"),
    ("map len", "{{len .MSI }}", "3"),
    ("with true", "{{with true}}{{.}}{{end}}", "true"),
    ("with false", "{{with false}}{{.}}{{else}}FALSE{{end}}", "FALSE"),
    ("with 1", "{{with 1}}{{.}}{{else}}ZERO{{end}}", "1"),
    ("with 0", "{{with 0}}{{.}}{{else}}ZERO{{end}}", "ZERO"),
    ("with 1.5", "{{with 1.5}}{{.}}{{else}}ZERO{{end}}", "1.5"),
    ("with 1.5i", "{{with 1.5i}}{{.}}{{else}}ZERO{{end}}", "(0+1.5i)"),
    ("with emptystring", "{{with ``}}{{.}}{{else}}EMPTY{{end}}", "EMPTY"),
    ("with string", "{{with `notempty`}}{{.}}{{else}}EMPTY{{end}}", "notempty"),
    ("with emptyslice", "{{with .SIEmpty}}{{.}}{{else}}EMPTY{{end}}", "EMPTY"),
    ("with slice", "{{with .SI}}{{.}}{{else}}EMPTY{{end}}", "[3 4 5]"),
    ("with emptymap", "{{with .MSIEmpty}}{{.}}{{else}}EMPTY{{end}}", "EMPTY"),
    ("with map", "{{with .MSIone}}{{.}}{{else}}EMPTY{{end}}", "map[one:1]"),
    ("with empty interface, struct field", "{{with .Empty4}}{{.V}}{{end}}", "UinEmpty"),
    ("with $x int", "{{with $x := .I}}{{$x}}{{end}}", "17"),
    ("with $x struct.U.V", "{{with $x := $}}{{$x.U.V}}{{end}}", "v"),
    ("with variable and action", "{{with $x := $}}{{$y := $.U.V}}{{$y}}{{end}}", "v"),
    ("with else with", "{{with 0}}{{.}}{{else with .X}}{{.}}{{end}}", "x"),
    ("range []int", "{{range .SI}}-{{.}}-{{end}}", "-3--4--5-"),
    ("range empty no else", "{{range .SIEmpty}}-{{.}}-{{end}}", ""),
    ("range []int else", "{{range .SI}}-{{.}}-{{else}}EMPTY{{end}}", "-3--4--5-"),
    ("range empty else", "{{range .SIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", "EMPTY"),
    ("range []bool", "{{range .SB}}-{{.}}-{{end}}", "-true--false-"),
    ("range []int method", "{{range .SI | .MAdd .I}}-{{.}}-{{end}}", "-20--21--22-"),
    ("range map", "{{range .MSI}}-{{.}}-{{end}}", "-1--3--2-"),
    ("range empty map else", "{{range .MSIEmpty}}-{{.}}-{{else}}EMPTY{{end}}", "EMPTY"),
    ("range empty interface", "{{range .Empty3}}-{{.}}-{{else}}EMPTY{{end}}", "-7--8-"),
    ("range empty nil", "{{range .Empty0}}-{{.}}-{{end}}", ""),
    ("range $x SI", "{{range $x := .SI}}<{{$x}}>{{end}}", "<3><4><5>"),
    ("range $x $y SI", "{{range $x, $y := .SI}}<{{$x}}={{$y}}>{{end}}", "<0=3><1=4><2=5>"),
    ("range $x MSIone", "{{range $x := .MSIone}}<{{$x}}>{{end}}", "<1>"),
    ("range $x $y MSIone", "{{range $x, $y := .MSIone}}<{{$x}}={{$y}}>{{end}}", "<one=1>"),
    ("declare in range", "{{range $x := .SI}}<{{$foo:=$x}}{{$x}}>{{end}}", "<3><4><5>"),
    ("range count", "{{range $i, $x := count 5}}[{{$i}}]{{$x}}{{end}}",
     "[0]a[1]b[2]c[3]d[4]e"),
    ("range nil count", "{{range $i, $x := count 0}}{{else}}empty{{end}}", "empty"),
    ("range int", "{{range 3}}{{.}}{{end}}", "012"),
    ("range assign", "{{$i := 0}}{{$v := 0}}{{range $i, $v = .SI}}{{end}}{{$i}}={{$v}}", "2=5"),
    ("range break", "{{range .SI}}{{if eq . 4}}{{break}}{{end}}{{.}}{{end}}", "3"),
    ("range continue", "{{range .SI}}{{if eq . 4}}{{continue}}{{end}}{{.}}{{end}}", "35"),
    ("or as if true", '{{or .SI "slice is empty"}}', "[3 4 5]"),
    ("or as if false", '{{or .SIEmpty "slice is empty"}}', "slice is empty"),
    ("error method, no error", "{{.MyError false}}", "false"),
    ("bug0", "{{range .MSIone}}{{if $.Method1 .}}X{{end}}{{end}}", "X"),
    ("bug3", "{{with $}}{{.Method0}}{{end}}", "M0"),
    ("bug4", "{{if .Empty0}}non-nil{{else}}nil{{end}}", "nil"),
    ("bug10", "{{mapOfThree.three}}-{{(mapOfThree).three}}", "3-3"),
    ("bug13", "{{print (.GetU).V}}", "v"),
    ("bug16g", '{{"aaa" |twoArgs "bbb"}}', "twoArgs=bbbaaa"),
    ("bug16i", '{{"aaa"|oneArg}}', "oneArg=aaa"),
    ("bug16j", '{{1+2i|printf "%v"}}', "(1+2i)"),
    ("bug16k", '{{"aaa"|printf }}', "aaa"),
    ("ideal float", "{{1.0}} {{1e1}} {{0x10}} {{'a'}} {{-5}} {{1.5e-7}} {{017}}",
     "1 10 16 97 -5 1.5e-07 15"),
    ("assign", "{{$x := 1}}{{$x = 2}}{{$x}}", "2"),
    ("assign in scope", "{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ("slice builtin", '{{slice .SI 1}} {{slice .SI 1 2}} {{slice "hello" 1 3}}', "[4 5] [4] el"),
    ("len of string counts bytes", '{{len "héllo"}}', "6"),
    ("index string", '{{index "hi" 1}}', "105"),
    ("js", "{{js .}}", "It\\'d be nice."),
]


@pytest.mark.parametrize("name,template,expected", EXEC_CASES, ids=[c[0] for c in EXEC_CASES])
def test_exec_like_go(name: str, template: str, expected: str) -> None:
    data = "It'd be nice." if name == "js" else TVAL
    assert run(template, data) == expected


DOT_CASES = [
    (13, "<13>"), (15.1, "<15.1>"), (True, "<true>"), (16.2 - 17j, "<(16.2-17i)>"),
    ("hello", "<hello>"), ([-1, -2, -3], "<[-1 -2 -3]>"), ({"two": 22}, "<map[two:22]>"),
    (None, "<<nil>>"), (1e6, "<1e+06>"), (100000.0, "<100000>"), (1e21, "<1e+21>"),
    (0.0001, "<0.0001>"), (0.00001, "<1e-05>"), (-0.0, "<-0>"), (float("inf"), "<+Inf>"),
    ({"b": [1, None], "a": {"x": True}}, "<map[a:map[x:true] b:[1 <nil>]]>"),
]


@pytest.mark.parametrize("data,expected", DOT_CASES)
def test_dot_prints_like_fmt(data: Any, expected: str) -> None:
    assert render("<{{.}}>", data) == expected


# --- errors (exact messages) ---------------------------------------------------------------

EXEC_ERRORS = [
    ("{{.Nope}}", TVAL, 'template: :1:2: executing "" at <.Nope>: '
                        "can't evaluate field Nope in type T"),
    ("{{._unexported}}", TVAL, "can't evaluate field _unexported in type T"),
    ("{{.MSI.one 1}}", TVAL, "one is not a method but has arguments"),
    ("{{.X 1}}", TVAL, "X has arguments but cannot be invoked as function"),
    ("{{index .SI 10}}", TVAL, 'template: :1:2: executing "" at <index .SI 10>: '
                               "error calling index: index out of range: 10"),
    ("{{index .SI `hello`}}", TVAL, "cannot index slice/array with type string"),
    ("{{index .SI nil}}", TVAL, "cannot index slice/array with nil"),
    ("{{index .MSI 10}}", TVAL, "value has type int; should be string"),
    ("{{index nil 1}}", TVAL, "index of untyped nil"),
    ("{{len 3}}", TVAL, "error calling len: len of type int"),
    ("{{len .Empty0}}", TVAL, "error calling len: len of nil pointer"),
    ("{{len}}", TVAL, 'template: :1:2: executing "" at <len>: '
                      "wrong number of args for len: want 1 got 0"),
    ("{{.MyError true}}", TVAL, "error calling MyError: my error"),
    ("{{.Method1}}", TVAL, "wrong number of args for Method1: want 1 got 0"),
    ("{{3 2}}", TVAL, "can't give argument to non-function 3"),
    ("{{$x := 1}}{{$x 2}}", TVAL, "can't give argument to non-function $x"),
    ("{{$x := 1}}{{3 | $x}}", TVAL, "can't give argument to non-function $x"),
    ("{{nil}}", TVAL, 'template: :1:2: executing "" at <nil>: nil is not a command'),
    ("{{if nil}}TRUE{{end}}", TVAL, "nil is not a command"),
    ("{{(nil).True}}", TVAL, "nil is not a command"),
    ("{{$x := (1.0)}}{{$x.anything}}", TVAL, "can't evaluate field anything in type float64"),
    ("{{true|printf}}", TVAL, "wrong type for value; expected string; got bool"),
    ("{{1|printf}}", TVAL, "wrong type for value; expected string; got int"),
    ("{{'x'|printf}}", TVAL, "wrong type for value; expected string; got int"),
    ("{{.Empty0.X}}", TVAL, "nil pointer evaluating interface {}.X"),
    ("{{range .X}}{{end}}", TVAL, "range can't iterate over x"),
    ("{{range $i, $v := 3}}{{end}}", TVAL, "can't use 3 to iterate over more than one variable"),
    ("{{lower 5}}", TVAL, 'template: :1:8: executing "" at <5>: expected string; found 5'),
    ("{{.I | lower}}", TVAL, "at <lower>: wrong type for value; expected string; got int"),
    ("{{join .SI `,`}}", TVAL, "wrong type for value; expected []string; got []interface {}"),
    ("{{call .X}}", TVAL, "error calling call: non-function of type string"),
    ("{{call nil}}", TVAL, "error calling call: call of nil"),
    ("{{.Method0}}{{.Nope}}", TVAL, "executing"),
    ("x\n{{.U.Nope}}", TVAL, 'template: :2:4: executing "" at <.U.Nope>: '
                             "can't evaluate field Nope in type U"),
]


@pytest.mark.parametrize("template,data,message", EXEC_ERRORS)
def test_exec_errors_like_go(template: str, data: Any, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        run(template, data)
    assert message in str(info.value)


class _Row(gofmt.GoStruct):
    """A formatter context with a method, as docker's ContainerContext.Label."""
    METHODS = frozenset({"Label"})

    def Label(self, name: str) -> str:  # noqa: N802 - the template's method name
        return {"a": "b"}.get(name, "")


def test_methods_of_a_struct_row() -> None:
    row = _Row({"Names": "c1"}, "*formatter.ContainerContext")
    assert render('{{.Names}} {{.Label "a"}}|{{.Label "z"}}', row) == "c1 b|"
    with pytest.raises(TemplateError, match="wrong number of args for Label: want 1 got 0"):
        render("{{.Label}}", row)
    with pytest.raises(TemplateError, match="can't evaluate field Nope in type "
                       r"\*formatter.ContainerContext"):
        render("{{.Nope}}", row)


def test_exec_error_keeps_partial_output() -> None:
    with pytest.raises(TemplateError) as info:
        render("a{{.A}}b{{.A.B}}c", {"A": 1})
    assert info.value.partial == "a1b"


COMPARISONS = [
    ("eq true true", "true"), ("eq true false", "false"), ("eq 1+2i 1+2i", "true"),
    ("eq 1+2i 1+3i", "false"), ("eq 1.5 1.5", "true"), ("eq 1.5 2.5", "false"),
    ("eq 1 1", "true"), ("eq 1 2", "false"), ("eq `xy` `xy`", "true"),
    ("eq `xy` `xyz`", "false"), ("eq 3 4 5 6 3", "true"), ("eq 3 4 5 6 7", "false"),
    ("ne true true", "false"), ("ne true false", "true"), ("ne 1.5 2.5", "true"),
    ("ne `xy` `xy`", "false"), ("lt 1.5 1.5", "false"), ("lt 1.5 2.5", "true"),
    ("lt 1 1", "false"), ("lt 1 2", "true"), ("lt `xy` `xy`", "false"), ("lt `xy` `xyz`", "true"),
    ("le 1.5 1.5", "true"), ("le 1.5 2.5", "true"), ("le 2.5 1.5", "false"), ("le 1 1", "true"),
    ("le `xyz` `xy`", "false"), ("gt 1.5 1.5", "false"), ("gt 2.5 1.5", "true"),
    ("gt 1 2", "false"), ("gt `xyz` `xy`", "true"), ("ge 1.5 1.5", "true"),
    ("ge 1.5 2.5", "false"), ("ge 2 1", "true"), ("ge `xy` `xyz`", "false"),
    ("eq .Empty0 nil", "true"), ("eq .MSI.none nil", "true"), ("eq .X nil", "false"),
    # Go refuses int vs float64 ("incompatible types"); numbers compare here.
    ("eq 2 2.0", "true"), ("lt 1 1.5", "true"),
]


@pytest.mark.parametrize("expr,expected", COMPARISONS)
def test_comparisons_like_go(expr: str, expected: str) -> None:
    assert run("{{" + expr + "}}") == expected


@pytest.mark.parametrize("expr,message", [
    ("eq `xy` 1", "incompatible types for comparison"),
    ("lt true true", "invalid type for comparison"),
    ("lt 1+0i 1+0i", "invalid type for comparison"),
    ("eq .MSI .MSI", "non-comparable type"),
    ("eq .MSI .U", "non-comparable type"),
    ("lt .X nil", "invalid type for comparison"),
    ("eq 1", "missing argument for comparison"),
])
def test_comparison_errors(expr: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        run("{{" + expr + "}}")


# --- parsing -------------------------------------------------------------------------------

TRIM_CASES = [
    ("trim left", "x \r\n\t{{- 3}}", "x3"),
    ("trim right", "{{3 -}}\n\n\ty", "3y"),
    ("trim left and right", "x \r\n\t{{- 3 -}}\n\n\ty", "x3y"),
    ("trim with extra spaces", "x\n{{-  3   -}}\ny", "x3y"),
    ("comment", "a{{/* hi */}}b", "ab"),
    ("comment trim left", "x \r\n\t{{- /* hi */}}", "x"),
    ("comment trim right", "{{/* hi */ -}}\n\n\ty", "y"),
    ("comment trim left and right", "x \r\n\t{{- /* */ -}}\n\n\ty", "xy"),
    ("negative number is not a trim", "{{-3}}", "-3"),
    ("raw string", "{{`a\\n`}}", "a\\n"),
    ("escapes", '{{"\\t\\x41\\u00e9\\U0001F600\\101\\\\\\""}}', '\tAé😀A\\"'),
    ("utf-8 from byte escapes", '{{"\\xc3\\xa9"}}', "é"),
    ("multi-line action", "{{ printf\n  \"%d\"\n  3 }}", "3"),
]


@pytest.mark.parametrize("name,template,expected", TRIM_CASES, ids=[c[0] for c in TRIM_CASES])
def test_lexing_like_go(name: str, template: str, expected: str) -> None:
    assert render(template, None) == expected


PARSE_ERRORS = [
    ("{{.ID}", 'template: :1: unexpected "}" in operand'),
    ("{{ .ID }", 'template: :1: unexpected "}" in operand'),
    ("{{json .}", 'template: :1: unexpected "}" in operand'),
    ("hello{{range", "template: :1: unclosed action"),
    ("{{.ID", "template: :1: unclosed action"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{else}}", "template: :1: unexpected {{else}}"),
    ("{{if .X}}hello{{end}}{{else}}", "template: :1: unexpected {{else}}"),
    ("{{if .X}}1{{else}}2{{else}}3{{end}}", "template: :1: expected end; found {{else}}"),
    ("hello{{range .x}}", "template: :1: unexpected EOF"),
    ("hello{{range .x}}{{else}}", "template: :1: unexpected EOF"),
    ("hello{{undefined}}", 'template: :1: function "undefined" not defined'),
    ("{{$x}}", 'template: :1: undefined variable "$x"'),
    ("{{with $x := 4}}{{end}}{{$x}}", 'template: :1: undefined variable "$x"'),
    ("{{with $x.Y := 4}}{{end}}", 'template: :1: undefined variable "$x"'),
    ("{{printf 3, 4}}", 'template: :1: unexpected "," in operand'),
    ("{{with $v, $u := 3}}{{end}}", "template: :1: too many declarations in with"),
    ("{{range $u, $v, $w := 3}}{{end}}", "template: :1: too many declarations in range"),
    ("{{printf (printf .).}}", "template: :1: unexpected <.> in operand"),
    ("{{printf 3`x`}}", 'template: :1: unexpected "`x`" in operand'),
    ("{{if .X}}a{{else if .Y}}b{{end}}{{end}}", "template: :1: unexpected {{end}}"),
    ("{{range .}}{{end}} {{break}}", "template: :1: {{break}} outside {{range}}"),
    ("{{range .}}{{end}} {{continue}}", "template: :1: {{continue}} outside {{range}}"),
    ("{{range .}}{{else}}{{break}}{{end}}", "template: :1: {{break}} outside {{range}}"),
    ("{{}}", "template: :1: missing value for command"),
    ("{{if}}{{end}}", "template: :1: missing value for if"),
    ("{{.X | 3}}", "template: :1: non executable command in pipeline stage 2"),
    ('{{"abc".X}}', 'template: :1: unexpected . after term "\\"abc\\""'),
    ("{{/* x */ y}}", "template: :1: comment ends before closing delimiter"),
    ("{{/* x", "template: :1: unclosed comment"),
    ('{{"abc}}', "template: :1: unterminated quoted string"),
    ("{{`abc}}", "template: :1: unterminated raw quoted string"),
    ("{{'a}}", "template: :1: unterminated character constant"),
    ("{{3x}}", 'template: :1: bad number syntax: "3x"'),
    ("{{.X#}}", "template: :1: bad character U+0023 '#'"),
    ("{{(.X}}", "template: :1: unclosed left paren"),
    ("{{.X)}}", "template: :1: unexpected right paren"),
    ("{{x := 1}}", 'template: :1: function "x" not defined'),
    ("{{$x : 1}}", 'template: :1: undefined variable "$x"'),
    ("{{$x := 1}}{{$x : 1}}", "template: :1: expected :="),
    ("{{99999999999999999999}}", 'template: :1: integer overflow: "99999999999999999999"'),
    ('{{"\\q"}}', "template: :1: invalid syntax"),
    ("a\nb\n{{.X", "template: :3: unclosed action"),
    ("{{define \"x\"}}{{end}}", "template: :1: {{define}} is not supported"),
]


@pytest.mark.parametrize("template,message", PARSE_ERRORS)
def test_parse_errors_like_go(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile(template)
    assert str(info.value) == message


# --- Docker's functions (docker/cli templates/templates_test.go) ---------------------------

DOCKER_FUNC_CASES = [
    ('{{json .}}', {"b": [1, 2.0, None], "a": "<&>"}, '{"a":"<&>","b":[1,2,null]}'),
    ("{{json .}}", "x\u2028\x01", '"x\\u2028\\u0001"'),
    ("{{json .}}", [], "[]"),
    ('{{split . ","}}', "a,b,c", "[a b c]"),
    ('{{split . ""}}', "ab", "[a b]"),
    ('{{join . ", "}}', ["a", "b"], "a, b"),
    ("{{title .}}", "hello world-wide_web", "Hello World-Wide_web"),
    ("{{title .}}", "aBC dEF", "ABC DEF"),
    ("{{lower .}} {{upper .}}", "MiXeD ß", "mixed ß MIXED ß"),
    ("{{pad . 2 3}}|", "x", "  x   |"),
    ("{{pad . 2 3}}|", "", "|"),
    ("{{truncate . 3}}", "abcdef", "abc"),
    ("{{truncate . 10}}", "abc", "abc"),
    ("{{truncate . 2}}", "héllo", "h"),
    ("{{upper (join . \",\")}}", ["a", "b"], "A,B"),
]


@pytest.mark.parametrize("template,data,expected", DOCKER_FUNC_CASES)
def test_docker_functions(template: str, data: Any, expected: str) -> None:
    assert render(template, data) == expected


def test_docker_inspect_style_data() -> None:
    container = {
        "Id": "0123456789abcdef",
        "State": {"Status": "running", "Pid": 4242, "Health": None},
        "Config": {"Labels": {"com.example.app": "web"}, "Env": ["A=1", "B=2"]},
        "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}},
        "Mounts": [],
    }
    tmpl = compile(
        "{{.State.Status}} {{.State.Pid}} {{.State.Health}} "
        '{{index .Config.Labels "com.example.app"}}|{{index .Config.Labels "missing"}}| '
        "{{range .Config.Env}}{{.}};{{end}} "
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}}{{end}} "
        "{{len .Mounts}} {{json .Config.Labels}} {{.Nope}}")
    assert tmpl.execute(container) == (
        'running 4242 <nil> web|| A=1;B=2; bridge=172.17.0.2 0 {"com.example.app":"web"} '
        "<no value>")


def test_dataclass_rows_are_structs() -> None:
    @dataclass
    class Row:
        ID: str
        Size: int

        def Label(self, name: str) -> str:
            return {"a": "1"}.get(name, "")

    row = Row("abc", 10)
    assert render('{{.ID}} {{.Size}} {{.Label "a"}} {{.}} {{json .}}', row) == (
        'abc 10 1 {abc 10} {"ID":"abc","Size":10}')
    assert render('{{printf "%+v" .}}', row) == "{ID:abc Size:10}"


def test_compiled_template_is_reusable_and_funcs_can_be_overridden() -> None:
    tmpl = compile("{{upper .}}")
    assert isinstance(tmpl, Template)
    assert [tmpl.execute(x) for x in ("a", "b")] == ["A", "B"]
    assert tmpl.execute("a", funcs={"upper": lambda s: s + "!"}) == "a!"


def test_no_value_is_a_singleton_and_false() -> None:
    assert not NO_VALUE
    assert repr(NO_VALUE) == "<no value>"


def test_template_must_be_a_string() -> None:
    with pytest.raises(TemplateError, match="template must be a string"):
        compile(b"{{.}}")  # type: ignore[arg-type]


def test_defaultdict_rows_are_not_filled_in() -> None:
    from collections import defaultdict

    row: defaultdict[str, str] = defaultdict(str, {"A": "a"})
    assert render('{{.A}} {{.B}} {{index . "C"}}|', row) == "a <no value> |"
    assert dict(row) == {"A": "a"}
