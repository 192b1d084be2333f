#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Generate golden-lengths.txt: instruction lengths from GNU objdump.

An independent length oracle for the decoder.  Candidates cover every opcode
of the one-byte, 0F, 0F38 and 0F3A maps, 3DNow!, VEX, EVEX and XOP, under
random legacy prefixes, REX (last, or ignored because a legacy prefix
follows it) and random ModRM/SIB bytes, in 16-, 32- and 64-bit code.  Each
candidate sits at the start of a 32-byte slot padded with NOPs (0x90), so
displacements and immediates read as 0x90 bytes and objdump resynchronises
at every slot.  A slot is kept when objdump decodes its first instruction
(prefix-only lines such as "rex.W" fold into the instruction that follows).

Run once and commit the output (deterministic; needs only binutils):
  arch-x86/emulate/tests/gen_golden.py > arch-x86/emulate/tests/golden-lengths.txt
"""
import random
import re
import subprocess
import sys
import tempfile

SLOT = 32
LEGACY = [0x66, 0x67, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65]
PREFIX_BYTES = set(LEGACY) | {0xF0, 0x0F}
PREFIX_WORDS = re.compile(
    r'^((rex(\.[WRXB]+)?|data16|data32|addr16|addr32|[c-gs]s|lock|rep[nz]*e?'
    r'|repz|repnz|bnd|notrack|xacquire|xrelease)\s*)+$')
OBJDUMP_ARCH = {16: ['-m', 'i8086'], 32: ['-m', 'i386'],
                64: ['-m', 'i386:x86-64'],
                '64i': ['-m', 'i386:x86-64', '-M', 'intel64']}
SIZE_WORDS = re.compile(r'data16|data32|addr16|addr32')


def prefixes(rng, bits):
    out = [rng.choice(LEGACY) for _ in range(rng.choice([0, 0, 0, 1, 1, 2, 3]))]
    if bits == 64 and rng.random() < 0.5:
        rex = 0x40 | rng.randrange(16)
        # Mostly last (effective); sometimes before a legacy prefix (ignored).
        pos = len(out) if rng.random() < 0.8 else rng.randrange(len(out) + 1)
        out.insert(pos, rex)
    return out


def rnd(rng, n):
    return [rng.randrange(256) for _ in range(n)]


def vex_payload(rng, bits, kind):
    """First payload byte(s) of C5/C4/62/8F; outside 64-bit the top two bits
    must be set or the byte is LES/LDS/BOUND/POP's ModRM."""
    top = 0xC0 if bits != 64 else rng.choice([0x00, 0x40, 0x80, 0xC0, 0xE0])
    if kind == 0xC5:
        return [top | rng.randrange(0x40)]
    if kind == 0xC4:
        return [top | (rng.randrange(8) << 5 & 0x20) | rng.choice([1, 2, 3]),
                rng.randrange(256)]
    if kind == 0x8F:
        return [top | (rng.randrange(2) << 5) | rng.choice([8, 9, 10]),
                rng.randrange(256)]
    # EVEX: P0 bit 3 clear, map 1/2/3/5/6; P1 bit 2 set.
    return [top | (rng.randrange(4) << 4) | rng.choice([1, 2, 3, 5, 6]),
            rng.randrange(256) | 0x04, rng.randrange(256)]


def objdump_misleads(c, bits):
    """Candidates objdump's lengths are wrong for: encodings current CPUs
    raise #UD for (the 486's MOV to/from test registers, 0F 24 and 0F 26;
    VEX/EVEX/XOP after a 66, F2, F3 or REX prefix) and FWAIT, which the
    CPU runs as its own instruction but objdump prints as part of the
    x87 instruction after it."""
    rex = bits not in (16, 32)
    i = 0
    while c[i] in LEGACY or (rex and 0x40 <= c[i] <= 0x4F):
        i += 1
    pre, op = c[:i], c[i:]
    if op[:2] in ([0x0F, 0x24], [0x0F, 0x26]):
        return True
    if op[0] == 0x9B:
        return True     # not #UD: FWAIT, which objdump fuses with x87 ops
    if op[0] in (0xC4, 0xC5, 0x62):
        vex = rex or op[1] >= 0xC0
    else:
        vex = op[0] == 0x8F and (op[1] & 0x1F) >= 8
    return vex and any(p in (0x66, 0xF2, 0xF3) or 0x40 <= p <= 0x4F
                       for p in pre)


def candidates(rng, bits):
    if bits == '64i':
        # Intel's 64-bit mode ignores 66 on near branches.
        for op in [0xE8, 0xE9, 0xC2, 0xC3, 0xEB, 0xE3, 0x68]:
            for _ in range(12):
                yield prefixes(rng, 64) + [op] + rnd(rng, 3)
        for op in range(0x80, 0x90):
            for _ in range(6):
                yield prefixes(rng, 64) + [0x0F, op] + rnd(rng, 3)
        return
    for op in range(256):
        if op in PREFIX_BYTES or (bits == 64 and 0x40 <= op <= 0x4F):
            continue
        for _ in range(6):
            yield prefixes(rng, bits) + [op] + rnd(rng, 3)
    for esc in ([0x0F], [0x0F, 0x38], [0x0F, 0x3A]):
        for op in range(256):
            if esc == [0x0F] and op in (0x38, 0x3A):
                continue
            for _ in range(4 if len(esc) == 1 else 2):
                yield prefixes(rng, bits) + esc + [op] + rnd(rng, 3)
    for _ in range(48):
        yield prefixes(rng, bits) + [0x0F, 0x0F] + rnd(rng, 2) + [0xB4]
    for kind in (0xC5, 0xC4, 0x62, 0x8F):
        for op in range(256):
            pre = [rng.choice([0x67, 0x2E, 0x65])] if rng.random() < 0.2 else []
            yield pre + [kind] + vex_payload(rng, bits, kind) + [op] + rnd(rng, 3)


def objdump_lengths(blob, bits):
    with tempfile.NamedTemporaryFile(suffix='.bin') as f:
        f.write(blob)
        f.flush()
        out = subprocess.run(
            ['objdump', '-D', '-b', 'binary', *OBJDUMP_ARCH[bits],
             '--insn-width=16', f.name],
            check=True, capture_output=True, text=True).stdout
    lines = {}
    for line in out.splitlines():
        m = re.match(r'^\s*([0-9a-f]+):\t((?:[0-9a-f]{2} )+)\s*\t?(.*)$', line)
        if m:
            lines[int(m.group(1), 16)] = (len(m.group(2).split()), m.group(3))
    return lines


def main():
    rng = random.Random(20261122)
    print('# Generated by gen_golden.py from GNU objdump; do not edit.')
    print('# <bits> <instruction bytes>: objdump decodes exactly these bytes '
          'as one instruction.')
    for bits in (16, 32, 64, '64i'):
        cands = [c for c in candidates(rng, bits) if not objdump_misleads(c, bits)]
        blob = bytearray()
        for c in cands:
            blob += bytes(c) + b'\x90' * (SLOT - len(c))
        lines = objdump_lengths(bytes(blob), bits)
        for i, c in enumerate(cands):
            addr, length = i * SLOT, 0
            folded = ''
            while addr in lines:
                n, text = lines[addr]
                length += n
                addr += n
                if not PREFIX_WORDS.match(text.strip()):
                    break
                folded += text
            else:
                continue
            # objdump splits at an ignored REX and then drops the size
            # prefixes before it, which the CPU still honours.
            if SIZE_WORDS.search(folded):
                continue
            if '(bad)' in text or length > 15 or length == 0:
                continue
            print(bits, bytes((c + [0x90] * 16)[:length]).hex())


if __name__ == '__main__':
    sys.exit(main())
