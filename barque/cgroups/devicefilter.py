"""Compile device rules into a BPF_PROG_TYPE_CGROUP_DEVICE program (runc's devicefilter).

The program sees struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;} in R1,
where access_type is (access << 16) | device type, and returns 1 to allow, 0 to deny.
It is a chain of blocks, one per exception from the emulator; each block either matches
and returns, or jumps to the next; the last block returns the default.
"""

from __future__ import annotations

import struct

from barque.cgroups.base import CgroupError
from barque.cgroups.devices import ACCESS_ALL, DeviceRule, emulate

LICENSE = "Apache"
DEV_BLOCK, DEV_CHAR = 1, 2  # BPF_DEVCG_DEV_*
_DEV_TYPES = {"b": DEV_BLOCK, "c": DEV_CHAR}

# Opcodes (class | op | source) of the few instructions used.
LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
AND32_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
RSH32_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K
MOV32_K = 0xB4  # BPF_ALU | BPF_MOV | BPF_K
MOV32_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K
JNE_X = 0x5D  # BPF_JMP | BPF_JNE | BPF_X
EXIT = 0x95  # BPF_JMP | BPF_EXIT

NEXT = None  # jump offset placeholder: "to the next block"

Insn = tuple  # (code, dst, src, off, imm)

# R2 = device type, R3 = requested access, R4 = major, R5 = minor.
_PROLOGUE: list[Insn] = [
    (LDX_MEM_W, 2, 1, 0, 0),
    (AND32_K, 2, 0, 0, 0xFFFF),
    (LDX_MEM_W, 3, 1, 0, 0),
    (RSH32_K, 3, 0, 0, 16),
    (LDX_MEM_W, 4, 1, 4, 0),
    (LDX_MEM_W, 5, 1, 8, 0),
]


def _verdict(allow: bool) -> list[Insn]:
    return [(MOV32_K, 0, 0, 0, int(allow)), (EXIT, 0, 0, 0, 0)]


def _block(rule: DeviceRule) -> list[Insn]:
    if rule.type not in _DEV_TYPES:
        raise CgroupError(f"internal error: device filter got wildcard rule {rule!r}")
    block: list[Insn] = [(JNE_K, 2, 0, NEXT, _DEV_TYPES[rule.type])]
    if rule.access != ACCESS_ALL:
        # Every requested access bit must be in the rule: (R3 & access) == R3; R1 is scratch.
        block += [(MOV32_X, 1, 3, 0, 0), (AND32_K, 1, 0, 0, rule.access), (JNE_X, 1, 3, NEXT, 0)]
    if rule.major >= 0:
        block.append((JNE_K, 4, 0, NEXT, rule.major))
    if rule.minor >= 0:
        block.append((JNE_K, 5, 0, NEXT, rule.minor))
    block += _verdict(rule.allow)
    # A NEXT jump lands just past the block's last instruction.
    return [
        (c, d, s, len(block) - i - 1 if o is NEXT else o, imm)
        for i, (c, d, s, o, imm) in enumerate(block)
    ]


def _imm32(value: int) -> int:
    # Major/minor are u32; the instruction field is s32, compared as runc does (int32 cast).
    return value - 2**32 if value >= 2**31 else value


def encode(insns: list[Insn]) -> bytes:
    """struct bpf_insn {u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm;} (little endian)."""
    return b"".join(
        struct.pack("<BBhi", code, (src << 4) | dst, off, _imm32(imm))
        for code, dst, src, off, imm in insns
    )


def instructions(rules: list[DeviceRule]) -> list[Insn]:
    emulator = emulate(rules)
    insns = list(_PROLOGUE)
    for rule in emulator.rules():
        insns += _block(rule)
    return insns + _verdict(emulator.default_allow)


def compile_rules(rules: list[DeviceRule]) -> bytes:
    return encode(instructions(rules))
