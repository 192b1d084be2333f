/* SPDX-License-Identifier: GPL-2.0 */
/*
 * x86 instruction decoder for MMIO emulation and instruction skipping.
 *
 * Pure logic (include/kvmx/shim.h): the same file builds into kvmx.ko and
 * into the userspace unit tests and fuzz target.
 *
 * kvmx_decode() always yields the exact length of a valid instruction, in
 * every operating mode, for every opcode map (legacy, 0F, 0F38, 0F3A, 3DNow!,
 * VEX, EVEX, XOP): a CPU without next-RIP save makes the hypervisor skip
 * intercepted instructions itself.  For the forms MMIO emulation handles it
 * also yields their meaning (struct kvmx_insn); any other valid instruction
 * decodes as KVMX_OP_UNSUPPORTED, which the caller reports as an emulation
 * failure, as KVM does.
 */
#ifndef _KVMX_EMULATE_DECODE_H
#define _KVMX_EMULATE_DECODE_H

#include <kvmx/shim.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Architectural limit: a longer instruction raises #GP. */
#define KVMX_INSN_MAX_LEN	15

/* No register operand, base or index. */
#define KVMX_REG_NONE		0xff

enum kvmx_cpu_mode {
	KVMX_MODE_REAL,		/* real and virtual-8086 mode: 16-bit, no VEX */
	KVMX_MODE_PROT16,	/* protected or compatibility mode, CS.D = 0 */
	KVMX_MODE_PROT32,	/* protected or compatibility mode, CS.D = 1 */
	KVMX_MODE_LONG64,	/* 64-bit mode: EFER.LMA = 1 and CS.L = 1 */
};

/* Flags for kvmx_decode(). */
enum {
	/*
	 * Decode 66-prefixed near branches in 64-bit mode as Intel CPUs do
	 * (the prefix is ignored, rel32); AMD CPUs take rel16.
	 */
	KVMX_DECODE_INTEL = 1 << 0,
};

enum kvmx_insn_op {
	KVMX_OP_UNSUPPORTED,	/* valid, length only: not emulated */
	KVMX_OP_MOV,		/* load into or store from reg, or store imm */
	KVMX_OP_MOVS,		/* seg:rSI -> ES:rDI */
	KVMX_OP_STOS,		/* rAX -> ES:rDI */
	KVMX_OP_LODS,		/* seg:rSI -> rAX */
	KVMX_OP_XCHG,		/* swap reg and memory */
	KVMX_OP_ALU,		/* see enum kvmx_alu_op */
};

/* Values 0-7 are the ModRM.reg encoding of group 1 (opcodes 80-83). */
enum kvmx_alu_op {
	KVMX_ALU_ADD,
	KVMX_ALU_OR,
	KVMX_ALU_ADC,
	KVMX_ALU_SBB,
	KVMX_ALU_AND,
	KVMX_ALU_SUB,
	KVMX_ALU_XOR,
	KVMX_ALU_CMP,
	KVMX_ALU_TEST,
};

enum kvmx_opcode_map {
	KVMX_MAP_LEGACY,	/* one-byte opcodes */
	KVMX_MAP_0F,
	KVMX_MAP_0F38,
	KVMX_MAP_0F3A,
	KVMX_MAP_3DNOW,		/* 0F 0F: opcode is the trailing byte */
	KVMX_MAP_VEX,		/* map number in vex_map */
	KVMX_MAP_EVEX,
	KVMX_MAP_XOP,
};

/* Segment registers in their ModRM/prefix encoding order. */
enum kvmx_seg {
	KVMX_SEG_ES,
	KVMX_SEG_CS,
	KVMX_SEG_SS,
	KVMX_SEG_DS,
	KVMX_SEG_FS,
	KVMX_SEG_GS,
};

enum kvmx_ext {
	KVMX_EXT_NONE,
	KVMX_EXT_ZERO,		/* MOVZX */
	KVMX_EXT_SIGN,		/* MOVSX, MOVSXD */
};

enum kvmx_rep {
	KVMX_REP_NONE,
	KVMX_REP_REPE,		/* F3; MOVS/STOS/LODS repeat with either */
	KVMX_REP_REPNE,		/* F2 */
};

/* Memory access directions, as a mask in kvmx_insn.access. */
#define KVMX_ACCESS_READ	0x1
#define KVMX_ACCESS_WRITE	0x2

/* Legacy prefixes seen, in kvmx_insn.prefixes. */
#define KVMX_PFX_OPSIZE		0x01	/* 66 */
#define KVMX_PFX_ADSIZE		0x02	/* 67 */
#define KVMX_PFX_LOCK		0x04	/* F0 */
#define KVMX_PFX_REPNE		0x08	/* F2 */
#define KVMX_PFX_REPE		0x10	/* F3 */
#define KVMX_PFX_SEG		0x20	/* any segment override */

/*
 * Effective address of the memory operand, before segmentation:
 *   disp + base + index * scale (+ next RIP if rip_relative)
 * truncated to the address size.  Moffs forms have only disp (the offset,
 * zero-extended); string forms have base rSI (MOVS/LODS) or rDI (STOS).
 */
struct kvmx_insn_ea {
	u8 base;		/* GPR 0-15 or KVMX_REG_NONE */
	u8 index;		/* GPR 0-15 or KVMX_REG_NONE */
	u8 scale;		/* 1, 2, 4, 8 */
	bool rip_relative;
	s64 disp;
};

struct kvmx_insn {
	u8 len;			/* total length in bytes, 1-15 */
	u8 mode;		/* enum kvmx_cpu_mode decoded for */
	u8 op;			/* enum kvmx_insn_op */
	u8 alu;			/* enum kvmx_alu_op, for KVMX_OP_ALU */
	u8 map;			/* enum kvmx_opcode_map */
	u8 vex_map;		/* VEX/EVEX/XOP map field */
	u8 opcode;		/* the opcode byte within its map */
	u8 prefixes;		/* KVMX_PFX_* */
	u8 rex;			/* effective REX byte (0 if none or ignored) */
	u8 op_size;		/* operand size: 1, 2, 4, 8 */
	u8 addr_size;		/* address size: 2, 4, 8 */

	bool has_modrm;
	u8 modrm;
	bool has_sib;
	u8 sib;

	/* The memory operand. */
	bool has_mem;		/* false for register-only forms */
	u8 access;		/* KVMX_ACCESS_*, for supported ops */
	u8 mem_size;		/* bytes accessed: 1, 2, 4, 8 */
	u8 seg;			/* enum kvmx_seg, defaults applied */
	bool seg_override;	/* seg came from a prefix */
	struct kvmx_insn_ea ea;

	/* The register operand, for supported ops. */
	u8 reg;			/* GPR 0-15 or KVMX_REG_NONE */
	bool reg_high8;		/* reg 0-3 means AH, CH, DH, BH */
	u8 reg_size;		/* width of reg as an operand (a load's dest) */
	u8 ext;			/* enum kvmx_ext: mem_size -> reg_size */
	bool bswap;		/* MOVBE */
	bool dst_mem;		/* ALU: the memory operand is the destination */

	/* The immediate, sign-extended (moffs: see ea.disp). */
	bool has_imm;		/* an operand of a supported op */
	u8 imm_size;		/* encoded bytes (any instruction) */
	u64 imm;

	u8 rep;			/* enum kvmx_rep, for string ops */
	bool lock;
};

/*
 * The decoding mode for a vCPU's state (CR0.PE, RFLAGS.VM, EFER.LMA,
 * CS.L, CS.D).
 */
static inline enum kvmx_cpu_mode kvmx_decode_mode(bool cr0_pe,
						  bool rflags_vm,
						  bool efer_lma, bool cs_l,
						  bool cs_d)
{
	if (!cr0_pe || rflags_vm)
		return KVMX_MODE_REAL;
	if (efer_lma && cs_l)
		return KVMX_MODE_LONG64;
	return cs_d ? KVMX_MODE_PROT32 : KVMX_MODE_PROT16;
}

/*
 * Decode the instruction at @bytes, of which @n are available.  Reads no
 * byte past the instruction's end (nor past @n).  Returns 0, or
 *   -ENODATA  the instruction continues past @n: fetch more and retry
 *   -E2BIG    it would be longer than 15 bytes (#GP)
 *   -EINVAL   an invalid encoding (#UD: undefined opcode, LOCK where not
 *             allowed, VEX after a 66/F2/F3/REX prefix, ...)
 * On error *@insn holds nothing useful.
 */
int kvmx_decode(const u8 *bytes, unsigned int n, enum kvmx_cpu_mode mode,
		unsigned int flags, struct kvmx_insn *insn);

#ifdef __cplusplus
}
#endif

#endif /* _KVMX_EMULATE_DECODE_H */
