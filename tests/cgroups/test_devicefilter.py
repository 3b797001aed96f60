"""The device rule emulator and the eBPF device filter, run in a small BPF interpreter.

The interpreter executes the encoded bytes (the ones the kernel would load), so these tests
check the encoding and jump offsets as well as the rule logic, without root or cgroup v2.
"""

from __future__ import annotations

import struct

import pytest

from barque.cgroups import CgroupError, devicefilter
from barque.cgroups.devices import Emulator, check_v1, emulate, parse_rules

R, W, M = 2, 4, 1  # BPF_DEVCG_ACC_READ, _WRITE, _MKNOD
CHAR, BLOCK = devicefilter.DEV_CHAR, devicefilter.DEV_BLOCK


def run(program: bytes, dev_type: int, major: int, minor: int, access: int) -> int:
    """Execute `program` on struct bpf_cgroup_dev_ctx; the value of R0 at exit."""
    ctx = struct.pack("<III", (access << 16) | dev_type, major, minor)
    regs = [0] * 11
    pc = 0
    insns = [struct.unpack_from("<BBhi", program, i) for i in range(0, len(program), 8)]
    for _steps in range(10_000):
        code, regbits, off, imm = insns[pc]
        dst, src = regbits & 0xF, regbits >> 4
        pc += 1
        if code == devicefilter.LDX_MEM_W:
            assert src == 1, "only the context is readable"
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == devicefilter.AND32_K:
            regs[dst] = regs[dst] & imm & 0xFFFFFFFF
        elif code == devicefilter.RSH32_K:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == devicefilter.MOV32_K:
            regs[dst] = imm & 0xFFFFFFFF
        elif code == devicefilter.MOV32_X:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == devicefilter.JNE_K:
            pc += off if regs[dst] != imm else 0
        elif code == devicefilter.JNE_X:
            pc += off if regs[dst] != regs[src] else 0
        elif code == devicefilter.EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("program does not terminate")


def compile_(entries: list[dict]) -> bytes:
    return devicefilter.compile_rules(parse_rules(entries))


DENY_ALL = {"allow": False, "access": "rwm"}


def test_deny_all_allow_dev_null() -> None:
    dev_null = {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    prog = compile_([DENY_ALL, dev_null])
    assert run(prog, CHAR, 1, 3, R | W) == 1
    assert run(prog, CHAR, 1, 3, M) == 1
    assert run(prog, CHAR, 1, 5, R) == 0  # /dev/zero
    assert run(prog, BLOCK, 1, 3, R) == 0  # same numbers, other type


def test_partial_access_and_wildcards() -> None:
    prog = compile_(
        [
            DENY_ALL,
            {"allow": True, "type": "c", "major": 136, "access": "rw"},  # any pts, no mknod
            {"allow": True, "type": "b", "minor": 0, "access": "r"},
        ]
    )
    assert run(prog, CHAR, 136, 7, R | W) == 1
    assert run(prog, CHAR, 136, 7, M) == 0
    assert run(prog, CHAR, 137, 7, R) == 0
    assert run(prog, BLOCK, 8, 0, R) == 1
    assert run(prog, BLOCK, 8, 0, W) == 0
    assert run(prog, BLOCK, 8, 1, R) == 0


def test_allow_all_then_deny_exceptions() -> None:
    prog = compile_(
        [
            {"allow": True, "access": "rwm"},
            {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"},
        ]
    )
    assert run(prog, CHAR, 1, 5, W) == 0
    assert run(prog, CHAR, 1, 5, R) == 1
    assert run(prog, BLOCK, 8, 0, R | W | M) == 1


def test_empty_rule_list_denies_everything() -> None:
    prog = compile_([])
    assert run(prog, CHAR, 1, 3, R) == 0
    assert len(prog) == 8 * 8  # the 6-instruction prologue and "return 0"


def test_later_rules_override_earlier_ones() -> None:
    rule = {"type": "c", "major": 1, "minor": 3, "access": "rwm"}
    prog = compile_([DENY_ALL, {**rule, "allow": True}, {**rule, "allow": False}])
    assert run(prog, CHAR, 1, 3, R) == 0
    emulator = emulate(
        parse_rules(
            [
                DENY_ALL,
                {**rule, "allow": True, "access": "rw"},
                {**rule, "allow": True, "access": "m"},
            ]
        )
    )
    assert [r.cgroup_string() for r in emulator.rules()] == ["c 1:3 rwm"]


def test_emulator_refuses_to_punch_holes_in_wildcards() -> None:
    emulator = Emulator()
    rules = parse_rules(
        [
            {"allow": True, "type": "c", "major": 136, "access": "rwm"},
            {"allow": False, "type": "c", "major": 136, "minor": 1, "access": "r"},
        ]
    )
    emulator.apply(rules[0])
    with pytest.raises(CgroupError, match="punch a hole"):
        emulator.apply(rules[1])


def test_big_major_is_encoded_as_runc_does() -> None:
    prog = compile_(
        [DENY_ALL, {"allow": True, "type": "c", "major": 2**31 + 5, "minor": 0, "access": "rwm"}]
    )
    assert struct.pack("<i", -(2**31) + 5) in prog  # the s32 field holds the u32 major


@pytest.mark.parametrize(
    "entry,words",
    [
        ({"allow": True, "type": "x", "access": "r"}, 'invalid cgroup device type "x"'),
        ({"allow": True, "type": "c", "access": ""}, "device access at 0 field cannot be empty"),
        ({"allow": True, "type": "c", "major": -2, "access": "r"}, r"devices\[0\]"),
    ],
)
def test_invalid_rules_are_refused(entry: dict, words: str) -> None:
    """In runc 1.1's words (specconv's, and its v1 check for an access with no rwm letter)."""
    with pytest.raises(CgroupError, match=words):
        parse_rules([entry])


def test_a_rule_without_access_letters() -> None:
    """runc's v2 (the emulator) ignores it; its v1 fails writing it, in these words."""
    rules = parse_rules([DENY_ALL, {"allow": True, "type": "c", "major": 4, "access": "x"}])
    assert emulate(rules).rules() == []
    with pytest.raises(CgroupError, match="doesn't precisely match target"):
        check_v1(rules)


def test_access_strings_read_as_runc() -> None:
    """The letters of "rwm" in any order or number; anything else ignored."""
    entries = [{"allow": True, "type": "c", "major": 4, "minor": 64, "access": a}
               for a in ("wr", "rrw", "rwx", "r w", "mx")]
    assert [r.cgroup_string() for r in parse_rules(entries)] == [
        "c 4:64 rw", "c 4:64 rw", "c 4:64 rw", "c 4:64 rw", "c 4:64 m"]


def test_v1_rule_strings() -> None:
    rules = parse_rules([DENY_ALL, {"allow": True, "type": "c", "major": 5, "access": "mr"}])
    assert [r.cgroup_string() for r in rules] == ["a *:* rwm", "c 5:* rm"]
