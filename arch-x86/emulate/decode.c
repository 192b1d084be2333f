// SPDX-License-Identifier: GPL-2.0
/*
 * x86 instruction decoder: lengths for every valid encoding, meaning for the
 * forms MMIO emulation handles.  Facts from the Intel SDM ("Instruction
 * Format", "Opcode Map") and the AMD APM ("Instruction Encoding").
 *
 * Pure logic: builds in the kernel and in userspace (include/kvmx/shim.h).
 */
#include "operand.h"

/*
 * Per-opcode table entries: how many immediate bytes follow, whether a ModRM
 * byte does, and where the opcode does not exist.
 */
enum imm_kind {
	IMM_NONE,
	IMM_8,
	IMM_16,
	IMM_32,
	IMM_Z,		/* 16 or 32 bits by operand size */
	IMM_V,		/* 16, 32 or 64 bits by operand size (MOV r, imm) */
	IMM_MOFFS,	/* address-size offset */
	IMM_ENTER,	/* iw, ib */
	IMM_FAR,	/* ptr16:16 or ptr16:32 */
	IMM_REL8,
	IMM_RELZ,	/* near branch displacement */
	IMM_GRP3,	/* F6/F7: TEST /0 /1 take an immediate */
	IMM_EXTRQ,	/* 0F 78: ib, ib with a 66 or F2 prefix (AMD SSE4a) */
};

#define IMM_MASK	0x0f
#define MODRM		0x10
#define INV64		0x20	/* #UD in 64-bit mode */
#define BAD		0x40	/* #UD in every mode */

#define M		MODRM
#define MI8		(MODRM | IMM_8)
#define MIZ		(MODRM | IMM_Z)

static const u8 map_legacy[256] = {
	[0x00 ... 0x03] = M, [0x04] = IMM_8, [0x05] = IMM_Z,
	[0x06 ... 0x07] = INV64,
	[0x08 ... 0x0b] = M, [0x0c] = IMM_8, [0x0d] = IMM_Z, [0x0e] = INV64,
	[0x10 ... 0x13] = M, [0x14] = IMM_8, [0x15] = IMM_Z,
	[0x16 ... 0x17] = INV64,
	[0x18 ... 0x1b] = M, [0x1c] = IMM_8, [0x1d] = IMM_Z,
	[0x1e ... 0x1f] = INV64,
	[0x20 ... 0x23] = M, [0x24] = IMM_8, [0x25] = IMM_Z, [0x27] = INV64,
	[0x28 ... 0x2b] = M, [0x2c] = IMM_8, [0x2d] = IMM_Z, [0x2f] = INV64,
	[0x30 ... 0x33] = M, [0x34] = IMM_8, [0x35] = IMM_Z, [0x37] = INV64,
	[0x38 ... 0x3b] = M, [0x3c] = IMM_8, [0x3d] = IMM_Z, [0x3f] = INV64,
	[0x60 ... 0x61] = INV64, [0x62] = M | INV64, [0x63] = M,
	[0x68] = IMM_Z, [0x69] = MIZ, [0x6a] = IMM_8, [0x6b] = MI8,
	[0x70 ... 0x7f] = IMM_REL8,
	[0x80] = MI8, [0x81] = MIZ, [0x82] = MI8 | INV64, [0x83] = MI8,
	[0x84 ... 0x8f] = M,
	[0x9a] = IMM_FAR | INV64,
	[0xa0 ... 0xa3] = IMM_MOFFS, [0xa8] = IMM_8, [0xa9] = IMM_Z,
	[0xb0 ... 0xb7] = IMM_8, [0xb8 ... 0xbf] = IMM_V,
	[0xc0 ... 0xc1] = MI8, [0xc2] = IMM_16, [0xc4 ... 0xc5] = M | INV64,
	[0xc6] = MI8, [0xc7] = MIZ, [0xc8] = IMM_ENTER, [0xca] = IMM_16,
	[0xcd] = IMM_8, [0xce] = INV64,
	[0xd0 ... 0xd3] = M, [0xd4 ... 0xd5] = IMM_8 | INV64, [0xd6] = INV64,
	[0xd8 ... 0xdf] = M,
	[0xe0 ... 0xe3] = IMM_REL8, [0xe4 ... 0xe7] = IMM_8,
	[0xe8 ... 0xe9] = IMM_RELZ, [0xea] = IMM_FAR | INV64, [0xeb] = IMM_REL8,
	[0xf6 ... 0xf7] = M | IMM_GRP3, [0xfe ... 0xff] = M,
};

static const u8 map_0f[256] = {
	[0x00 ... 0x03] = M, [0x04] = BAD, [0x0a] = BAD, [0x0c] = BAD,
	[0x0d] = M, [0x0f] = MI8,
	[0x10 ... 0x1f] = M,
	/* MOV CRn/DRn always take a register operand; see decode_modrm(). */
	[0x20 ... 0x23] = M, [0x24 ... 0x27] = BAD,
	[0x28 ... 0x2f] = M,
	[0x36] = BAD, [0x38 ... 0x3f] = BAD,	/* 38 and 3A are escapes */
	[0x40 ... 0x6f] = M, [0x70 ... 0x73] = MI8, [0x74 ... 0x76] = M,
	[0x78] = M | IMM_EXTRQ, [0x79] = M, [0x7a ... 0x7b] = BAD,
	[0x7c ... 0x7f] = M,
	[0x80 ... 0x8f] = IMM_RELZ,
	[0x90 ... 0x9f] = M,
	[0xa3] = M, [0xa4] = MI8, [0xa5] = M, [0xa6 ... 0xa7] = M,
	[0xab] = M, [0xac] = MI8, [0xad ... 0xaf] = M,
	[0xb0 ... 0xb9] = M, [0xba] = MI8, [0xbb ... 0xbf] = M,
	[0xc0 ... 0xc1] = M, [0xc2] = MI8, [0xc3] = M, [0xc4 ... 0xc6] = MI8,
	[0xc7] = M,
	[0xd0 ... 0xff] = M,
};

/* Decoder state: the bytes and how far we have read. */
struct dctx {
	const u8 *bytes;
	unsigned int n;
	unsigned int pos;
	enum kvmx_cpu_mode mode;
	unsigned int flags;
	struct kvmx_insn *insn;
	u8 seg_pfx;		/* last segment override prefix, or 0 */
	u8 last_rep;		/* last of F2/F3, or 0 */
	u8 vex_pp;		/* VEX/EVEX/XOP implied prefix: 0, 66, F3, F2 */
};

static int need(struct dctx *c, unsigned int count)
{
	if (c->pos + count > KVMX_INSN_MAX_LEN)
		return -E2BIG;
	if (c->pos + count > c->n)
		return -ENODATA;
	return 0;
}

static int fetch(struct dctx *c, u8 *byte)
{
	int err = need(c, 1);

	if (err)
		return err;
	*byte = c->bytes[c->pos++];
	return 0;
}

/* Fetch @count little-endian bytes, sign-extended from their width. */
static int fetch_signed(struct dctx *c, unsigned int count, s64 *val)
{
	u64 v = 0;
	unsigned int i;
	int err = need(c, count);

	if (err)
		return err;
	*val = 0;
	if (!count)
		return 0;
	for (i = 0; i < count; i++)
		v |= (u64)c->bytes[c->pos + i] << (8 * i);
	c->pos += count;
	if (count < 8 && (v & (1ULL << (8 * count - 1))))
		v |= ~0ULL << (8 * count);
	*val = (s64)v;
	return 0;
}

static bool is_64(const struct dctx *c)
{
	return c->mode == KVMX_MODE_LONG64;
}

static u8 rex_bit(const struct dctx *c, u8 bit)
{
	return (c->insn->rex & bit) ? 8 : 0;
}

#define REX_W	0x08
#define REX_R	0x04
#define REX_X	0x02
#define REX_B	0x01

/* Legacy prefixes, in any order and number, then REX if it comes last. */
static int decode_prefixes(struct dctx *c, u8 *opcode)
{
	struct kvmx_insn *insn = c->insn;
	u8 b;
	int err;

	for (;;) {
		err = fetch(c, &b);
		if (err)
			return err;
		switch (b) {
		case 0x26: case 0x2e: case 0x36: case 0x3e:
		case 0x64: case 0x65:
			c->seg_pfx = b;
			insn->prefixes |= KVMX_PFX_SEG;
			break;
		case 0x66:
			insn->prefixes |= KVMX_PFX_OPSIZE;
			break;
		case 0x67:
			insn->prefixes |= KVMX_PFX_ADSIZE;
			break;
		case 0xf0:
			insn->prefixes |= KVMX_PFX_LOCK;
			break;
		case 0xf2:
			insn->prefixes |= KVMX_PFX_REPNE;
			c->last_rep = b;
			break;
		case 0xf3:
			insn->prefixes |= KVMX_PFX_REPE;
			c->last_rep = b;
			break;
		default:
			if (is_64(c) && (b & 0xf0) == 0x40) {
				/* Counts only right before the opcode. */
				insn->rex = b;
				continue;
			}
			*opcode = b;
			return 0;
		}
		/* A legacy prefix after REX makes the REX ignored. */
		insn->rex = 0;
	}
}

/*
 * VEX (C4/C5), EVEX (62) and XOP (8F).  Outside 64-bit mode C4/C5/62 are
 * VEX/EVEX only when the next byte would be a register-form ModRM of
 * LES/LDS/BOUND, and 8F is XOP when its map field is at least 8; real and
 * virtual-8086 mode know none of them.
 */
static int vex_kind(struct dctx *c, u8 b, u8 *kind)
{
	u8 next;
	int err;

	*kind = 0;
	if (c->mode == KVMX_MODE_REAL ||
	    (b != 0xc4 && b != 0xc5 && b != 0x62 && b != 0x8f))
		return 0;
	/* Both readings consume the next byte, so peeking is safe. */
	err = need(c, 1);
	if (err)
		return err;
	next = c->bytes[c->pos];
	if (b == 0x8f) {
		if ((next & 0x1f) >= 8)
			*kind = KVMX_MAP_XOP;
		return 0;
	}
	if (is_64(c) || (next & 0xc0) == 0xc0)
		*kind = b == 0x62 ? KVMX_MAP_EVEX : KVMX_MAP_VEX;
	return 0;
}

static int decode_vex(struct dctx *c, u8 b, u8 kind, u8 *entry)
{
	static const u8 pp_prefix[4] = { 0, 0x66, 0xf3, 0xf2 };
	struct kvmx_insn *insn = c->insn;
	u8 p[3], nbytes, rxb, w, map, op;
	unsigned int i;
	int err;

	if (insn->rex || (insn->prefixes & (KVMX_PFX_OPSIZE | KVMX_PFX_LOCK |
					    KVMX_PFX_REPNE | KVMX_PFX_REPE)))
		return -EINVAL;
	nbytes = kind == KVMX_MAP_EVEX ? 3 : (b == 0xc5 ? 1 : 2);
	for (i = 0; i < nbytes; i++) {
		err = fetch(c, &p[i]);
		if (err)
			return err;
	}
	if (b == 0xc5) {
		rxb = (~p[0] >> 5) & 0x4;
		w = 0;
		map = 1;
		c->vex_pp = pp_prefix[p[0] & 3];
	} else {
		rxb = (~p[0] >> 5) & 0x7;
		w = p[1] >> 7;
		map = p[0] & (kind == KVMX_MAP_EVEX ? 0x07 : 0x1f);
		c->vex_pp = pp_prefix[p[1] & 3];
	}
	insn->rex = 0x40 | (w ? REX_W : 0) | rxb;
	insn->map = kind;
	insn->vex_map = map;

	err = fetch(c, &op);
	if (err)
		return err;
	insn->opcode = op;

	switch (kind) {
	case KVMX_MAP_VEX:
		if (map < 1 || map > 3)
			return -EINVAL;
		break;
	case KVMX_MAP_EVEX:
		/* Maps 4 and 7 are APX, not decoded here. */
		if (map != 1 && map != 2 && map != 3 && map != 5 && map != 6)
			return -EINVAL;
		if (!(p[1] & 0x04))
			return -EINVAL;
		break;
	default:	/* XOP */
		if (map < 8 || map > 10)
			return -EINVAL;
		/* Map 8 takes an imm8, map 10 (BEXTR, LWPINS) an imm32. */
		*entry = MODRM | (map == 8 ? IMM_8 : (map == 10 ? IMM_32 : 0));
		return 0;
	}

	/* VZEROUPPER/VZEROALL are the only VEX opcodes without ModRM. */
	if (kind == KVMX_MAP_VEX && map == 1 && op == 0x77) {
		*entry = IMM_NONE;
		return 0;
	}
	*entry = MODRM;
	if (map == 3 ||
	    (map == 1 && ((op >= 0x70 && op <= 0x73) ||
			  (op >= 0xc4 && op <= 0xc6) || op == 0xc2)))
		*entry |= IMM_8;
	return 0;
}

/* Opcode bytes: returns the table entry for the opcode found. */
static int decode_opcode(struct dctx *c, u8 b, u8 *entry)
{
	struct kvmx_insn *insn = c->insn;
	u8 kind, op;
	int err;

	err = vex_kind(c, b, &kind);
	if (err)
		return err;
	if (kind)
		return decode_vex(c, b, kind, entry);

	if (b != 0x0f) {
		insn->map = KVMX_MAP_LEGACY;
		insn->opcode = b;
		*entry = map_legacy[b];
		return 0;
	}

	err = fetch(c, &op);
	if (err)
		return err;
	if (op == 0x38 || op == 0x3a) {
		insn->map = op == 0x38 ? KVMX_MAP_0F38 : KVMX_MAP_0F3A;
		err = fetch(c, &insn->opcode);
		if (err)
			return err;
		*entry = op == 0x38 ? MODRM : MI8;
		return 0;
	}
	insn->map = op == 0x0f ? KVMX_MAP_3DNOW : KVMX_MAP_0F;
	insn->opcode = op;
	*entry = map_0f[op];
	/* POPCNT needs F3; without it 0F B8 is IA-64's JMPE. */
	if (op == 0xb8 && c->last_rep != 0xf3)
		return -EINVAL;
	return 0;
}

static void set_sizes(struct dctx *c)
{
	struct kvmx_insn *insn = c->insn;
	bool opsize = insn->prefixes & KVMX_PFX_OPSIZE;
	bool adsize = insn->prefixes & KVMX_PFX_ADSIZE;

	switch (c->mode) {
	case KVMX_MODE_LONG64:
		insn->op_size = (insn->rex & REX_W) ? 8 : (opsize ? 2 : 4);
		insn->addr_size = adsize ? 4 : 8;
		break;
	case KVMX_MODE_PROT32:
		insn->op_size = opsize ? 2 : 4;
		insn->addr_size = adsize ? 2 : 4;
		break;
	default:
		insn->op_size = opsize ? 4 : 2;
		insn->addr_size = adsize ? 4 : 2;
		break;
	}
}

/* ModRM, SIB and displacement. */
static int decode_modrm(struct dctx *c)
{
	static const u8 base16[8] = { 3, 3, 5, 5, 6, 7, 5, 3 };
	static const u8 index16[8] = { 6, 7, 6, 7, KVMX_REG_NONE,
				       KVMX_REG_NONE, KVMX_REG_NONE,
				       KVMX_REG_NONE };
	struct kvmx_insn *insn = c->insn;
	struct kvmx_insn_ea *ea = &insn->ea;
	u8 mod, rm, disp_size = 0;
	int err;

	err = fetch(c, &insn->modrm);
	if (err)
		return err;
	insn->has_modrm = true;
	mod = insn->modrm >> 6;
	rm = insn->modrm & 7;

	/* MOV to/from CRn/DRn ignores mod: the operand is a register. */
	if (insn->map == KVMX_MAP_0F && insn->opcode >= 0x20 &&
	    insn->opcode <= 0x23)
		return 0;
	if (mod == 3)
		return 0;
	insn->has_mem = true;
	ea->scale = 1;
	ea->base = KVMX_REG_NONE;
	ea->index = KVMX_REG_NONE;

	if (insn->addr_size == 2) {
		if (mod == 0 && rm == 6) {
			disp_size = 2;
		} else {
			ea->base = base16[rm];
			ea->index = index16[rm];
			disp_size = mod == 1 ? 1 : (mod == 2 ? 2 : 0);
		}
		if (ea->base == 5)
			insn->seg = KVMX_SEG_SS;
		return fetch_signed(c, disp_size, &ea->disp);
	}

	if (rm == 4) {
		u8 sib_base, sib_index;

		err = fetch(c, &insn->sib);
		if (err)
			return err;
		insn->has_sib = true;
		sib_base = insn->sib & 7;
		sib_index = ((insn->sib >> 3) & 7) | rex_bit(c, REX_X);
		ea->scale = 1 << (insn->sib >> 6);
		if (sib_index != 4)
			ea->index = sib_index;
		if (mod == 0 && sib_base == 5)
			disp_size = 4;
		else
			ea->base = sib_base | rex_bit(c, REX_B);
	} else if (mod == 0 && rm == 5) {
		/* In 64-bit mode this is RIP- (or EIP-) relative. */
		disp_size = 4;
		ea->rip_relative = is_64(c);
	} else {
		ea->base = rm | rex_bit(c, REX_B);
	}
	if (mod == 1)
		disp_size = 1;
	else if (mod == 2)
		disp_size = 4;
	if (ea->base == 4 || ea->base == 5)
		insn->seg = KVMX_SEG_SS;
	return fetch_signed(c, disp_size, &ea->disp);
}

static unsigned int imm_bytes(struct dctx *c, u8 kind)
{
	struct kvmx_insn *insn = c->insn;
	unsigned int z = insn->op_size == 2 ? 2 : 4;

	switch (kind) {
	case IMM_8:
	case IMM_REL8:
		return 1;
	case IMM_16:
		return 2;
	case IMM_32:
		return 4;
	case IMM_Z:
		return z;
	case IMM_V:
		return insn->op_size;
	case IMM_MOFFS:
		return insn->addr_size;
	case IMM_ENTER:
		return 3;
	case IMM_FAR:
		return 2 + z;
	case IMM_RELZ:
		/* Intel ignores 66 on 64-bit mode near branches. */
		if (is_64(c) && (c->flags & KVMX_DECODE_INTEL))
			return 4;
		return z;
	case IMM_GRP3:
		if ((insn->modrm & 0x38) > 0x08)
			return 0;
		return insn->opcode == 0xf6 ? 1 : z;
	case IMM_EXTRQ:
		if (c->last_rep == 0xf2 ||
		    (insn->prefixes & KVMX_PFX_OPSIZE))
			return 2;
		return 0;
	default:
		return 0;
	}
}

/* Group opcodes whose ModRM.reg selects an undefined instruction. */
static bool modrm_ok(const struct kvmx_insn *insn)
{
	u8 reg = (insn->modrm >> 3) & 7;

	/* VIA PadLock (0F A6, 0F A7) exists only in register form. */
	if (insn->map == KVMX_MAP_0F)
		return (insn->opcode != 0xa6 && insn->opcode != 0xa7) ||
		       !insn->has_mem;
	if (insn->map != KVMX_MAP_LEGACY)
		return true;
	switch (insn->opcode) {
	case 0x62:	/* BOUND, LES, LDS: memory only (else EVEX/VEX) */
	case 0xc4:
	case 0xc5:
		return insn->has_mem;
	case 0x8f:	/* POP r/m (XOP was taken before) */
		return reg == 0;
	case 0xc6:	/* MOV r/m, imm; XABORT */
	case 0xc7:	/* MOV r/m, imm; XBEGIN */
		return reg == 0 || insn->modrm == 0xf8;
	case 0xfe:	/* INC, DEC */
		return reg <= 1;
	case 0xff:
		return reg != 7;
	}
	return true;
}

/* LOCK is allowed only on these read-modify-write forms, with memory. */
static bool lock_ok(const struct kvmx_insn *insn)
{
	u8 op = insn->opcode, reg = (insn->modrm >> 3) & 7;

	if (insn->map == KVMX_MAP_0F && (op == 0x20 || op == 0x22))
		return true;	/* AMD: LOCK MOV CR0 is MOV CR8 */
	if (!insn->has_mem)
		return false;
	if (insn->map == KVMX_MAP_LEGACY) {
		if (op < 0x38 && (op & 0x07) <= 1)
			return true;	/* ADD, OR, ADC, SBB, AND, SUB, XOR */
		switch (op) {
		case 0x80 ... 0x83:
			return reg != 7;
		case 0x86 ... 0x87:
			return true;
		case 0xf6 ... 0xf7:
			return reg == 2 || reg == 3;
		case 0xfe ... 0xff:
			return reg <= 1;
		}
		return false;
	}
	if (insn->map != KVMX_MAP_0F)
		return false;
	switch (op) {
	case 0xab: case 0xb3: case 0xbb:	/* BTS, BTR, BTC */
	case 0xb0: case 0xb1: case 0xc0: case 0xc1:	/* CMPXCHG, XADD */
		return true;
	case 0xba:
		return reg >= 5;
	case 0xc7:
		return reg == 1;		/* CMPXCHG8B/16B */
	}
	return false;
}

/* Register operand from ModRM.reg (or an implied one) at @size bytes. */
static void set_reg(struct dctx *c, u8 reg, u8 size)
{
	struct kvmx_insn *insn = c->insn;

	insn->reg_size = size;
	if (size == 1 && !insn->rex && reg >= 4 && reg <= 7) {
		insn->reg = reg - 4;
		insn->reg_high8 = true;
	} else {
		insn->reg = reg;
	}
}

static void set_modrm_reg(struct dctx *c, u8 size)
{
	set_reg(c, ((c->insn->modrm >> 3) & 7) | rex_bit(c, REX_R), size);
}

static void mov(struct dctx *c, u8 access, u8 mem_size, u8 reg_size, u8 ext)
{
	struct kvmx_insn *insn = c->insn;

	insn->op = KVMX_OP_MOV;
	insn->access = access;
	insn->mem_size = mem_size;
	insn->ext = ext;
	set_modrm_reg(c, reg_size);
}

static void alu(struct dctx *c, u8 alu_op, u8 size, bool dst_mem)
{
	struct kvmx_insn *insn = c->insn;

	insn->op = KVMX_OP_ALU;
	insn->alu = alu_op;
	insn->mem_size = size;
	insn->dst_mem = dst_mem;
	insn->access = KVMX_ACCESS_READ;
	if (dst_mem && alu_op != KVMX_ALU_CMP && alu_op != KVMX_ALU_TEST)
		insn->access |= KVMX_ACCESS_WRITE;
	if (!insn->has_imm)
		set_modrm_reg(c, size);
}

static void string_op(struct dctx *c, u8 op, u8 size)
{
	struct kvmx_insn *insn = c->insn;

	insn->op = op;
	insn->mem_size = size;
	insn->has_mem = true;
	insn->ea.scale = 1;
	insn->ea.index = KVMX_REG_NONE;
	if (c->last_rep)
		insn->rep = c->last_rep == 0xf3 ? KVMX_REP_REPE
						 : KVMX_REP_REPNE;
	if (op == KVMX_OP_STOS) {
		/* The destination ES:rDI takes no override. */
		insn->ea.base = 7;
		insn->seg = KVMX_SEG_ES;
		insn->seg_override = false;
		insn->access = KVMX_ACCESS_WRITE;
		set_reg(c, 0, size);
		return;
	}
	insn->ea.base = 6;
	if (op == KVMX_OP_MOVS) {
		insn->access = KVMX_ACCESS_READ | KVMX_ACCESS_WRITE;
		return;
	}
	insn->access = KVMX_ACCESS_READ;
	set_reg(c, 0, size);
}

/* The MMIO-capable forms of the one-byte map. */
static void semantics_legacy(struct dctx *c)
{
	struct kvmx_insn *insn = c->insn;
	u8 op = insn->opcode, reg = (insn->modrm >> 3) & 7;
	u8 size = (op & 1) ? insn->op_size : 1;

	switch (op) {
	case 0xa0 ... 0xa3:
		insn->op = KVMX_OP_MOV;
		insn->has_mem = true;
		insn->access = (op & 2) ? KVMX_ACCESS_WRITE : KVMX_ACCESS_READ;
		insn->mem_size = size;
		insn->ea.base = KVMX_REG_NONE;
		insn->ea.index = KVMX_REG_NONE;
		insn->ea.scale = 1;
		set_reg(c, 0, size);
		return;
	case 0xa4 ... 0xa5:
		string_op(c, KVMX_OP_MOVS, size);
		return;
	case 0xaa ... 0xab:
		string_op(c, KVMX_OP_STOS, size);
		return;
	case 0xac ... 0xad:
		string_op(c, KVMX_OP_LODS, size);
		return;
	}
	if (!insn->has_mem)
		return;

	switch (op) {
	case 0x00 ... 0x3f:
		if ((op & 7) <= 3)
			alu(c, op >> 3, size, !(op & 2));
		return;
	case 0x63:
		if (!is_64(c))
			return;		/* ARPL */
		if (insn->op_size == 8)
			mov(c, KVMX_ACCESS_READ, 4, 8, KVMX_EXT_SIGN);
		else
			mov(c, KVMX_ACCESS_READ, insn->op_size, insn->op_size,
			    KVMX_EXT_NONE);
		return;
	case 0x80 ... 0x83:
		if (op == 0x82 && is_64(c))
			return;
		insn->has_imm = true;
		alu(c, reg, (op & 1) ? insn->op_size : 1, true);
		return;
	case 0x84 ... 0x85:
		alu(c, KVMX_ALU_TEST, size, true);
		return;
	case 0x86 ... 0x87:
		insn->op = KVMX_OP_XCHG;
		insn->access = KVMX_ACCESS_READ | KVMX_ACCESS_WRITE;
		insn->mem_size = size;
		set_modrm_reg(c, size);
		return;
	case 0x88 ... 0x8b:
		mov(c, (op & 2) ? KVMX_ACCESS_READ : KVMX_ACCESS_WRITE,
		    size, size, KVMX_EXT_NONE);
		return;
	case 0xc6 ... 0xc7:
		if (reg != 0)
			return;
		insn->op = KVMX_OP_MOV;
		insn->access = KVMX_ACCESS_WRITE;
		insn->mem_size = size;
		insn->has_imm = true;
		return;
	case 0xf6 ... 0xf7:
		if (reg > 1)
			return;
		insn->has_imm = true;
		alu(c, KVMX_ALU_TEST, size, true);
		return;
	}
}

static int semantics_0f(struct dctx *c)
{
	struct kvmx_insn *insn = c->insn;
	u8 op = insn->opcode;

	if (!insn->has_mem)
		return 0;
	switch (op) {
	case 0xb6: case 0xb7: case 0xbe: case 0xbf:
		mov(c, KVMX_ACCESS_READ, (op & 1) ? 2 : 1, insn->op_size,
		    (op & 8) ? KVMX_EXT_SIGN : KVMX_EXT_ZERO);
		break;
	case 0xc3:
		/* MOVNTI has no 16-bit form. */
		if (insn->prefixes & KVMX_PFX_OPSIZE)
			return -EINVAL;
		mov(c, KVMX_ACCESS_WRITE, insn->op_size, insn->op_size,
		    KVMX_EXT_NONE);
		break;
	}
	return 0;
}

static void semantics_0f38(struct dctx *c)
{
	struct kvmx_insn *insn = c->insn;

	/* MOVBE; with F2 these are CRC32, with F3 undefined. */
	if (!insn->has_mem || c->last_rep ||
	    (insn->opcode != 0xf0 && insn->opcode != 0xf1))
		return;
	mov(c, (insn->opcode & 1) ? KVMX_ACCESS_WRITE : KVMX_ACCESS_READ,
	    insn->op_size, insn->op_size, KVMX_EXT_NONE);
	insn->bswap = true;
}

static void set_segment(struct dctx *c)
{
	struct kvmx_insn *insn = c->insn;
	u8 seg;

	switch (c->seg_pfx) {
	case 0x26:
		seg = KVMX_SEG_ES;
		break;
	case 0x2e:
		seg = KVMX_SEG_CS;
		break;
	case 0x36:
		seg = KVMX_SEG_SS;
		break;
	case 0x3e:
		seg = KVMX_SEG_DS;
		break;
	case 0x64:
		seg = KVMX_SEG_FS;
		break;
	case 0x65:
		seg = KVMX_SEG_GS;
		break;
	default:
		return;
	}
	/* 64-bit mode ignores ES, CS, SS and DS overrides. */
	if (is_64(c) && seg < KVMX_SEG_FS)
		return;
	insn->seg = seg;
	insn->seg_override = true;
}

int kvmx_decode(const u8 *bytes, unsigned int n, enum kvmx_cpu_mode mode,
		unsigned int flags, struct kvmx_insn *insn)
{
	struct dctx c = {
		.bytes = bytes,
		.n = n,
		.mode = mode,
		.flags = flags,
		.insn = insn,
	};
	unsigned int nimm;
	u8 b, entry;
	s64 imm = 0;
	int err;

	memset(insn, 0, sizeof(*insn));
	insn->mode = mode;
	insn->reg = KVMX_REG_NONE;
	insn->seg = KVMX_SEG_DS;
	insn->ea.base = KVMX_REG_NONE;
	insn->ea.index = KVMX_REG_NONE;
	if (mode > KVMX_MODE_LONG64)
		return -EINVAL;

	err = decode_prefixes(&c, &b);
	if (err)
		return err;
	err = decode_opcode(&c, b, &entry);
	if (err)
		return err;
	if ((entry & BAD) || ((entry & INV64) && is_64(&c)))
		return -EINVAL;
	if (insn->map >= KVMX_MAP_VEX)
		insn->prefixes |= c.vex_pp == 0x66 ? KVMX_PFX_OPSIZE : 0;
	set_sizes(&c);

	if (entry & MODRM) {
		err = decode_modrm(&c);
		if (err)
			return err;
		if (!modrm_ok(insn))
			return -EINVAL;
	}
	if (insn->prefixes & KVMX_PFX_LOCK) {
		if (!lock_ok(insn))
			return -EINVAL;
		insn->lock = true;
	}

	nimm = imm_bytes(&c, entry & IMM_MASK);
	if (insn->map == KVMX_MAP_3DNOW) {
		/* The 3DNow! opcode is the trailing byte: keep it there. */
		err = fetch(&c, &insn->opcode);
		nimm = 0;
	} else if ((entry & IMM_MASK) == IMM_MOFFS) {
		/* The offset is unsigned: keep it zero-extended. */
		err = fetch_signed(&c, nimm, &insn->ea.disp);
		if (!err && nimm < 8)
			insn->ea.disp &= (s64)((1ULL << (8 * nimm)) - 1);
	} else {
		/* ENTER's iw, ib reads as one 24-bit value. */
		err = fetch_signed(&c, nimm, &imm);
		insn->imm = (u64)imm;
	}
	if (err)
		return err;
	insn->imm_size = nimm;
	insn->len = c.pos;

	set_segment(&c);
	switch (insn->map) {
	case KVMX_MAP_LEGACY:
		semantics_legacy(&c);
		break;
	case KVMX_MAP_0F:
		err = semantics_0f(&c);
		break;
	case KVMX_MAP_0F38:
		semantics_0f38(&c);
		break;
	}
	return err;
}
