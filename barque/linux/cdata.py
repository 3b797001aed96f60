"""The part of ctypes that barque/linux uses, built straight on its C core (_ctypes).

`import ctypes` costs ~3 ms (it defines dozens of classes and loaders at import), against
~0.5 ms for _ctypes, and every container start pays it: barque-runtime's critical path is
benchmarked against runc. The definitions below are ctypes' own for Linux (LP64 and ILP32
alike): same _type_ codes, the same CDLL behaviour for calls with use_errno. mypy sees the
real ctypes names.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: see barque/linux/libc.py
if TYPE_CHECKING:
    from ctypes import (
        CDLL,
        POINTER,
        Array,
        Structure,
        addressof,
        byref,
        c_char,
        c_char_p,
        c_int,
        c_int32,
        c_long,
        c_short,
        c_uint,
        c_uint8,
        c_uint16,
        c_uint32,
        c_uint64,
        c_ulong,
        c_ushort,
        c_void_p,
        create_string_buffer,
        get_errno,
        sizeof,
    )
else:
    from _ctypes import (
        FUNCFLAG_CDECL,
        FUNCFLAG_USE_ERRNO,
        POINTER,
        Array,
        CFuncPtr,
        Structure,
        _SimpleCData,
        addressof,
        byref,
        dlopen,
        get_errno,
        sizeof,
    )

    class c_char(_SimpleCData):
        _type_ = "c"

    class c_char_p(_SimpleCData):
        _type_ = "z"

    class c_void_p(_SimpleCData):
        _type_ = "P"

    class c_short(_SimpleCData):
        _type_ = "h"

    class c_ushort(_SimpleCData):
        _type_ = "H"

    class c_int(_SimpleCData):
        _type_ = "i"

    class c_uint(_SimpleCData):
        _type_ = "I"

    class c_long(_SimpleCData):
        _type_ = "l"

    class c_ulong(_SimpleCData):
        _type_ = "L"

    class c_ubyte(_SimpleCData):
        _type_ = "B"

    class c_ulonglong(_SimpleCData):
        _type_ = "Q"

    # Fixed widths as ctypes defines them on Linux: int and short are 32 and 16 bits.
    c_int32 = c_int
    c_uint8 = c_ubyte
    c_uint16 = c_ushort
    c_uint32 = c_uint
    c_uint64 = c_ulong if sizeof(c_ulong) == 8 else c_ulonglong

    def create_string_buffer(init: bytes | int, size: int | None = None) -> Array:
        if isinstance(init, bytes):
            buf = (c_char * (len(init) + 1 if size is None else size))()
            buf.value = init
            return buf
        return (c_char * init)()

    class CDLL:
        """A loaded shared object whose attributes are its C functions returning int."""

        def __init__(self, name: str | None, mode: int = 0, use_errno: bool = False) -> None:
            flags = FUNCFLAG_CDECL | (FUNCFLAG_USE_ERRNO if use_errno else 0)

            class _FuncPtr(CFuncPtr):
                _flags_ = flags
                _restype_ = c_int

            self._name = name
            self._FuncPtr = _FuncPtr
            self._handle = dlopen(name, mode)

        def __getattr__(self, name: str) -> CFuncPtr:
            if name.startswith("__") and name.endswith("__"):
                raise AttributeError(name)
            func = self._FuncPtr((name, self))
            func.__name__ = name
            setattr(self, name, func)
            return func

__all__ = ["CDLL", "POINTER", "Array", "Structure", "addressof", "byref", "c_char", "c_char_p",
           "c_int", "c_int32", "c_long", "c_short", "c_uint", "c_uint8", "c_uint16", "c_uint32",
           "c_uint64", "c_ulong", "c_ushort", "c_void_p",
           "create_string_buffer", "get_errno", "sizeof"]
