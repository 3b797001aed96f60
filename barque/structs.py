"""A light `@dataclass` for the modules every `barque run` loads.

The standard library's decorator writes each class's methods as source text and compiles it
(exec), and importing `dataclasses` brings in `inspect` (with `ast`, `dis`, `tokenize`): ~20 of
them cost every command ~15-20 ms of CPU before any work. This one builds the same methods from
closures: no source, no compile, no `inspect`.

It does what those modules use, as `dataclasses` does: `@dataclass` and
`@dataclass(frozen=True)`, fields with defaults or `field(default=..., default_factory=...)`,
__init__ (positional or keyword), __repr__, __eq__, __hash__ (generated when frozen, else None)
and frozen instances' FrozenInstanceError (an AttributeError). Methods the class defines itself
are kept. Type checkers see the standard decorator (the names below, under TYPE_CHECKING), so
mypy checks these classes exactly as dataclasses. `fields_of` lists a class's fields for code
that walks a struct's fields (cli/gofmt).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from dataclasses import dataclass as dataclass
    from dataclasses import field as field
    from typing import Any

FIELDS_ATTR = "__struct_fields__"

_MISSING: Any = object()


class FrozenInstanceError(AttributeError):
    """Assigning to a field of a frozen instance (as dataclasses.FrozenInstanceError)."""


class _Field:
    __slots__ = ("name", "default", "default_factory")

    def __init__(self, default: Any = _MISSING, default_factory: Any = _MISSING) -> None:
        if default is not _MISSING and default_factory is not _MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory


def fields_of(obj: object) -> tuple[str, ...] | None:
    """The field names of a struct instance, in order; None for anything else."""
    if isinstance(obj, type):
        return None
    return getattr(type(obj), FIELDS_ATTR, None)


def _is_classvar(annotation: object) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _collect(cls: type) -> list[_Field]:
    found: dict[str, _Field] = {}
    for base in reversed(cls.__mro__[1:]):
        for f in base.__dict__.get("__struct_field_specs__", ()):
            found[f.name] = f
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, _MISSING)
        spec = value if isinstance(value, _Field) else _Field(default=value)
        spec.name = name
        if spec.default is not _MISSING and type(spec.default).__hash__ is None:
            raise ValueError(f"mutable default {type(spec.default)} for field {name} is not "
                             "allowed: use default_factory")
        if isinstance(value, _Field):
            if spec.default is _MISSING:
                delattr(cls, name)  # as dataclasses: no class attribute for a factory field
            else:
                setattr(cls, name, spec.default)
        found[name] = spec
    specs = list(found.values())
    seen_default = False
    for spec in specs:
        has_default = spec.default is not _MISSING or spec.default_factory is not _MISSING
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {spec.name!r} follows default argument")
        seen_default = seen_default or has_default
    return specs


def _make_init(cls: type, specs: list[_Field], frozen: bool) -> Any:
    names = tuple(s.name for s in specs)
    known = frozenset(names)
    set_attr = object.__setattr__
    post_init = getattr(cls, "__post_init__", None) is not None

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"__init__() takes {len(names) + 1} positional arguments but "
                            f"{len(args) + 1} were given")
        for key in kwargs:
            if key not in known:
                raise TypeError(f"__init__() got an unexpected keyword argument {key!r}")
        for i, spec in enumerate(specs):
            name = spec.name
            if i < len(args):
                if name in kwargs:
                    raise TypeError(f"__init__() got multiple values for argument {name!r}")
                value = args[i]
            elif name in kwargs:
                value = kwargs[name]
            elif spec.default is not _MISSING:
                value = spec.default
            elif spec.default_factory is not _MISSING:
                value = spec.default_factory()
            else:
                raise TypeError(f"__init__() missing 1 required positional argument: {name!r}")
            set_attr(self, name, value)
        if post_init:
            self.__post_init__()

    return __init__


def _make_methods(cls: type, names: tuple[str, ...], frozen: bool) -> dict[str, Any]:
    def values(self: Any) -> tuple[Any, ...]:
        return tuple(getattr(self, n) for n in names)

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    methods: dict[str, Any] = {"__repr__": __repr__, "__eq__": __eq__}
    explicit_hash = "__hash__" in cls.__dict__ and not (
        cls.__dict__["__hash__"] is None and "__eq__" in cls.__dict__)
    if not explicit_hash:
        methods["__hash__"] = (lambda self: hash(values(self))) if frozen else None
    if frozen:
        def __setattr__(self: Any, name: str, value: Any) -> None:
            if type(self) is cls or name in names:
                raise FrozenInstanceError(f"cannot assign to field {name!r}")
            object.__setattr__(self, name, value)

        def __delattr__(self: Any, name: str) -> None:
            if type(self) is cls or name in names:
                raise FrozenInstanceError(f"cannot delete field {name!r}")
            object.__delattr__(self, name)

        methods.update(__setattr__=__setattr__, __delattr__=__delattr__)
    return methods


def _process(cls: type, frozen: bool) -> type:
    specs = _collect(cls)
    names = tuple(s.name for s in specs)
    methods = {"__init__": _make_init(cls, specs, frozen),
               **_make_methods(cls, names, frozen)}
    for name, method in methods.items():
        if name == "__hash__" or name not in cls.__dict__:
            if method is not None:
                method.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, method)
    extra = {"__struct_field_specs__": tuple(specs), FIELDS_ATTR: names, "__match_args__": names}
    for name, value in extra.items():
        setattr(cls, name, value)
    return cls


if not TYPE_CHECKING:
    def field(*, default: Any = _MISSING, default_factory: Any = _MISSING) -> Any:
        return _Field(default, default_factory)

    def dataclass(cls: type | None = None, /, *, frozen: bool = False) -> Any:
        def wrap(c: type) -> type:
            return _process(c, frozen)

        return wrap if cls is None else wrap(cls)
