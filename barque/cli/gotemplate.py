"""Go's text/template, as Docker's `--format` uses it: the public API and the executor.

`render("{{.Name}}", data)` gives what `docker ... --format '{{.Name}}'` prints for the same
data. The lexer and parser (gotemplate_parse), the functions (gotemplate_funcs) and this
executor follow Go's text/template (lex.go, parse.go, exec.go, funcs.go) closely, so output
and error messages match Go's, e.g. `template: :1: unexpected "}" in operand` or
`template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in type Row`.

Data model: dicts are Go maps (a missing key gives `<no value>`, or with
`missingkey="error"` Go's "map has no entry for key"), gofmt.GoStruct dicts are structs
(a missing key: "can't evaluate field X in type T"), lists and tuples are
slices, None is a nil value (prints `<nil>`), str/int/float/bool are Go's basic kinds, and
any other object is a struct whose public attributes are fields and whose methods are
methods (`{{.Label "x"}}` calls obj.Label("x")).
Docker's template functions (json, split, join, title, lower, upper, pad, truncate) are
built in. {{define}}, {{template}} and {{block}} are not supported (Docker never uses them).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

from barque.cli import gofmt
from barque.cli.gotemplate_funcs import (
    BUILTINS,
    DOCKER_FUNCS,
    HEADER_FUNCS,
    NO_VALUE,
    CallError,
    Func,
    check_arity,
    truth,
)
from barque.cli.gotemplate_parse import (
    Action,
    Bool,
    Chain,
    Command,
    Control,
    Dot,
    Field,
    Identifier,
    Keyword,
    List,
    Nil,
    Node,
    Number,
    Pipe,
    String,
    TemplateError,
    Text,
    Variable,
    parse,
)

__all__ = ["HEADER_FUNCS", "NO_VALUE", "Template", "TemplateError", "compile", "render", "truth"]

_MISSING: Any = object()  # exec.go's missingVal: "no value piped into this command"


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_NOT_STRUCTS = (str, bytes, bytearray, int, float, complex, bool, list, tuple, set,
                frozenset, type)


def _is_method(value: Any, receiver: Any) -> bool:
    return inspect.ismethod(value) or (inspect.isbuiltin(value)
                                       and getattr(value, "__self__", None) is receiver)


class _State:
    """exec.go's state: the output so far, the variable stack and the current node."""

    def __init__(self, tmpl: Template, funcs: Mapping[str, Any], missingkey: str) -> None:
        self.tmpl = tmpl
        self.funcs = funcs
        self.missing_is_error = missingkey == "error"
        self.out: list[str] = []
        self.vars: list[list[Any]] = []
        self.node: Node | None = None

    def errorf(self, message: str) -> NoReturn:
        name = gofmt.quote(self.tmpl.name)
        if self.node is None:
            raise TemplateError(f"template: {self.tmpl.name}: {message}")
        location = self.tmpl.location(self.node.pos)
        raise TemplateError(f"template: {location}: executing {name} at <{self.node}>: "
                            f"{message}")

    # variables
    def var_value(self, name: str) -> Any:
        for entry in reversed(self.vars):
            if entry[0] == name:
                return entry[1]
        self.errorf(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        for entry in reversed(self.vars):
            if entry[0] == name:
                entry[1] = value
                return
        self.errorf(f"undefined variable: {name}")

    # walking
    def walk(self, dot: Any, node: Node) -> None:
        self.node = node
        if isinstance(node, Text):
            self.out.append(node.text)
        elif isinstance(node, Action):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.print_value(node, value)
        elif isinstance(node, List):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, Control):
            if node.kind == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_or_with(dot, node)
        elif isinstance(node, Keyword):
            raise _Break() if node.word == "break" else _Continue()

    def walk_if_or_with(self, dot: Any, node: Control) -> None:
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if truth(value):
                self.walk(value if node.kind == "with" else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, node: Control) -> None:
        self.node = node
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if not self.range_items(node, value, len(self.vars)) and node.else_body is not None:
                self.walk(dot, node.else_body)
        except _Break:
            pass
        finally:
            del self.vars[mark:]

    def range_items(self, node: Control, value: Any, mark: int) -> bool:
        """Run the body once per element; False when there was nothing to iterate."""
        items: Iterator[tuple[Any, Any]]
        if value is None or value is NO_VALUE:
            return False  # a nil slice or map ranges like an empty one
        if isinstance(value, Mapping):
            items = iter(gofmt.sorted_items(value))
        elif isinstance(value, (list, tuple)):
            items = iter(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            if len(node.pipe.decl) > 1:
                self.errorf(f"can't use {value} to iterate over more than one variable")
            items = ((NO_VALUE, i) for i in range(value))
        else:
            self.errorf(f"range can't iterate over {gofmt.sprint_value(value)}")
        ran = False
        for index, elem in items:
            ran = True
            self.range_iteration(node, index, elem, mark)
        return ran

    def range_iteration(self, node: Control, index: Any, elem: Any, mark: int) -> None:
        decl = node.pipe.decl
        if node.pipe.is_assign:
            if len(decl) > 1:
                self.set_var(decl[0].idents[0], index)
                self.set_var(decl[1].idents[0], elem)
            elif decl:
                self.set_var(decl[0].idents[0], elem)
        else:
            if decl:
                self.vars[mark - 1][1] = elem
            if len(decl) > 1:
                self.vars[mark - 2][1] = index
        try:
            self.walk(elem, node.body)
        except _Continue:
            pass
        finally:
            del self.vars[mark:]

    def print_value(self, node: Node, value: Any) -> None:
        self.node = node
        if value is NO_VALUE:
            self.out.append("<no value>")
        elif inspect.isroutine(value) or isinstance(value, type):
            self.errorf(f"can't print {node} of type func")
        else:
            self.out.append(gofmt.sprint_value(value))

    # evaluation
    def eval_pipeline(self, dot: Any, pipe: Pipe) -> Any:
        self.node = pipe
        value = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.idents[0], value)
            else:
                self.vars.append([var.idents[0], value])
        return value

    def not_a_function(self, args: list[Node], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: Command, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, Field):
            return self.eval_field_node(dot, first, cmd.args, final)
        if isinstance(first, Chain):
            return self.eval_chain_node(dot, first, cmd.args, final)
        if isinstance(first, Identifier):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, Pipe):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, Variable):
            return self.eval_variable_node(dot, first, cmd.args, final)
        self.node = first
        self.not_a_function(cmd.args, final)
        if isinstance(first, Bool):
            return first.value
        if isinstance(first, Dot):
            return dot
        if isinstance(first, Nil):
            self.errorf("nil is not a command")
        if isinstance(first, Number):
            return self.ideal_constant(first)
        if isinstance(first, String):
            return first.text
        self.errorf(f"can't evaluate command {gofmt.quote(str(first))}")

    def ideal_constant(self, node: Number) -> Any:
        self.node = node
        text = node.text
        if node.complex_value is not None:
            return node.complex_value
        is_hex_int = text.lstrip("+-")[:2] in ("0x", "0X") and not any(c in text for c in "pP")
        if (node.float_value is not None and not is_hex_int and not text.startswith("'")
                and any(c in text for c in ".eEpP")):
            return node.float_value
        if node.int_value is not None:
            return node.int_value
        self.errorf(f"{text} overflows int")

    def eval_field_node(self, dot: Any, node: Field, args: list[Node] | None,
                        final: Any) -> Any:
        self.node = node
        return self.eval_field_chain(dot, dot, node, node.idents, args, final)

    def eval_chain_node(self, dot: Any, chain: Chain, args: list[Node] | None,
                        final: Any) -> Any:
        self.node = chain
        if isinstance(chain.node, Nil):
            self.errorf(f"indirection through explicit nil in {chain}")
        receiver = self.eval_arg(dot, "value", chain.node)
        return self.eval_field_chain(dot, receiver, chain, chain.fields, args, final)

    def eval_variable_node(self, dot: Any, node: Variable, args: list[Node] | None,
                           final: Any) -> Any:
        self.node = node
        value = self.var_value(node.idents[0])
        if len(node.idents) == 1:
            self.not_a_function(args or [node], final)
            return value
        return self.eval_field_chain(dot, value, node, node.idents[1:], args, final)

    def eval_field_chain(self, dot: Any, receiver: Any, node: Node, idents: list[str],
                         args: list[Node] | None, final: Any) -> Any:
        for name in idents[:-1]:
            receiver = self.eval_field(dot, name, node, None, _MISSING, receiver)
        return self.eval_field(dot, idents[-1], node, args, final, receiver)

    def eval_field(self, dot: Any, name: str, node: Node, args: list[Node] | None,
                   final: Any, receiver: Any) -> Any:
        if receiver is NO_VALUE:
            return NO_VALUE
        if receiver is None:
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        has_args = (args is not None and len(args) > 1) or final is not _MISSING
        if isinstance(receiver, gofmt.GoStruct) and name in type(receiver).METHODS:
            return self.eval_call(dot, getattr(receiver, name), node, name, args, final)
        if isinstance(receiver, Mapping):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            # A membership test first, so a defaultdict row is never filled in.
            if name in receiver:
                return receiver[name]
            if isinstance(receiver, gofmt.GoStruct):
                if name in receiver.optional:
                    return receiver.optional[name]
                self.errorf(f"can't evaluate field {name} in type {receiver.go_name}")
            if self.missing_is_error:
                self.errorf(f"map has no entry for key {gofmt.quote(name)}")
            return NO_VALUE
        if not isinstance(receiver, _NOT_STRUCTS) and not name.startswith("_"):
            try:
                value = getattr(receiver, name, _MISSING)
            except Exception as e:  # a property that failed: Go's method error
                self.errorf(f"error calling {name}: {e}")
            if value is not _MISSING:
                if _is_method(value, receiver):
                    return self.eval_call(dot, value, node, name, args, final)
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return value
        self.errorf(f"can't evaluate field {name} in type {gofmt.go_type(receiver)}")

    def lookup_function(self, name: str) -> Any:
        for table in (self.funcs, self.tmpl.funcs, DOCKER_FUNCS, BUILTINS):
            if name in table:
                return table[name]
        self.errorf(f"{gofmt.quote(name)} is not a defined function")

    def eval_function(self, dot: Any, node: Identifier, cmd: Node,
                      args: list[Node] | None, final: Any) -> Any:
        self.node = node
        return self.eval_call(dot, self.lookup_function(node.name), cmd, node.name, args, final)

    def eval_call(self, dot: Any, fn: Any, node: Node, name: str, args: list[Node] | None,
                  final: Any) -> Any:
        spec = fn if isinstance(fn, Func) else Func(fn, (), "any")
        argv_nodes = list(args[1:]) if args else []
        count = len(argv_nodes) + (final is not _MISSING)
        fixed = len(spec.params)
        if spec.variadic is not None:
            if count < fixed:
                self.errorf(f"wrong number of args for {name}: want at least {fixed} got "
                            f"{len(argv_nodes)}")
        elif count != fixed:
            self.errorf(f"wrong number of args for {name}: want {fixed} got {count}")
        if not isinstance(fn, Func):
            try:
                check_arity(fn, count, name)
            except CallError as e:
                self.errorf(str(e))
        if fn is BUILTINS["and"] or fn is BUILTINS["or"]:
            return self.eval_and_or(dot, name == "or", argv_nodes, final)
        types = list(spec.params) + [spec.variadic or "any"] * count
        argv = [self.eval_arg(dot, types[i], n) for i, n in enumerate(argv_nodes)]
        if final is not _MISSING:
            argv.append(self.validate(final, types[len(argv_nodes)]))
        try:
            return spec.impl(*argv)
        except TemplateError:
            raise
        except Exception as e:
            self.node = node
            self.errorf(f"error calling {name}: {e}")

    def eval_and_or(self, dot: Any, is_or: bool, argv_nodes: list[Node], final: Any) -> Any:
        """and/or stop at the first false/true argument and return it (Go 1.18+)."""
        value: Any = NO_VALUE
        for arg in argv_nodes:
            value = self.eval_arg(dot, "value", arg)
            if truth(value) == is_or:
                return value
        if final is not _MISSING:
            value = final
        return value

    def validate(self, value: Any, typ: str) -> Any:
        """validateType: check a computed value against a function's parameter type."""
        if typ == "value":
            return value
        if value is NO_VALUE or value is None:
            if typ in ("any", "[]string"):
                return None
            self.errorf(f"invalid value; expected {typ}")
        ok = {
            "any": True,
            "string": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "[]string": isinstance(value, (list, tuple))
            and all(isinstance(v, str) for v in value),
        }[typ]
        if not ok:
            self.errorf(f"wrong type for value; expected {typ}; got {gofmt.go_type(value)}")
        return list(value) if typ == "[]string" else value

    def eval_arg(self, dot: Any, typ: str, node: Node) -> Any:
        self.node = node
        if isinstance(node, Dot):
            return self.validate(dot, typ)
        if isinstance(node, Nil):
            if typ == "value":
                return NO_VALUE
            if typ in ("any", "[]string"):
                return None
            self.errorf(f"cannot assign nil to {typ}")
        if isinstance(node, Field):
            return self.validate(self.eval_field_node(dot, node, [node], _MISSING), typ)
        if isinstance(node, Variable):
            return self.validate(self.eval_variable_node(dot, node, None, _MISSING), typ)
        if isinstance(node, Pipe):
            return self.validate(self.eval_pipeline(dot, node), typ)
        if isinstance(node, Identifier):
            return self.validate(self.eval_function(dot, node, node, None, _MISSING), typ)
        if isinstance(node, Chain):
            return self.validate(self.eval_chain_node(dot, node, None, _MISSING), typ)
        return self.eval_literal(typ, node)

    def eval_literal(self, typ: str, node: Node) -> Any:
        if typ in ("any", "value"):
            if isinstance(node, Bool):
                return node.value
            if isinstance(node, Number):
                return self.ideal_constant(node)
            if isinstance(node, String):
                return node.text
        elif typ == "string" and isinstance(node, String):
            return node.text
        elif typ == "int" and isinstance(node, Number) and node.int_value is not None:
            return node.int_value
        elif typ == "bool" and isinstance(node, Bool):
            return node.value
        expected = {"int": "integer"}.get(typ, typ)
        if typ in ("string", "int", "bool"):
            self.errorf(f"expected {expected}; found {node}")
        self.errorf(f"can't handle {node} for arg of type {typ}")


class Template:
    """A parsed template; execute() may be called any number of times."""

    def __init__(self, text: str, name: str = "", funcs: Mapping[str, Any] | None = None
                 ) -> None:
        self.text = text
        self.name = name
        self.funcs: dict[str, Any] = dict(funcs or {})
        known = self.funcs.keys() | DOCKER_FUNCS.keys() | BUILTINS.keys()
        self.root = parse(name, text, lambda n: n in known)

    def location(self, pos: int) -> str:
        """name:line:col of a byte offset, as ErrorContext in parse.go reports it."""
        before = self.text[:pos].encode("utf-8", "surrogateescape")
        newline = before.rfind(b"\n")
        col = len(before) if newline < 0 else len(before) - newline - 1
        line = before.count(b"\n") + 1
        return f"{self.name}:{line}:{col}"

    def execute(self, data: Any, funcs: Mapping[str, Any] | None = None,
                missingkey: str = "default") -> str:
        """Apply the template to data. funcs override functions by name for this run;
        missingkey is Go's option: "default" (<no value>) or "error"."""
        state = _State(self, funcs or {}, missingkey)
        state.vars.append(["$", data])
        try:
            state.walk(data, self.root)
        except TemplateError as e:
            raise TemplateError(str(e), "".join(state.out)) from None
        except RecursionError:
            raise TemplateError(f"template: {self.name}: data nested too deeply",
                                "".join(state.out)) from None
        return "".join(state.out)


def compile(template: str, name: str = "", funcs: Mapping[str, Any] | None = None
            ) -> Template:
    """Parse a template (Go's template.New(name).Funcs(docker's).Parse(template)).

    funcs adds Python callables as template functions."""
    if not isinstance(template, str):
        raise TemplateError(f"template: {name}: template must be a string, "
                            f"not {type(template).__name__}")
    return Template(template, name, funcs)


def render(template: str, data: Any) -> str:
    """Parse and execute in one go: what `--format TEMPLATE` prints for data."""
    return compile(template).execute(data)
