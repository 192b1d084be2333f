/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Instructions finished with userspace's help, common to both backends:
 * MMIO loads and stores, and string port I/O (arch-x86/mmio.c).  A backend
 * reaches its guest state through struct kvmx_emul_ops and keeps one
 * struct kvmx_emul per vCPU.
 */
#ifndef _KVMX_X86_MMIO_H
#define _KVMX_X86_MMIO_H

#include <kvmx/kvmx_host.h>
#include <kvmx/walk.h>

#include "emulate/decode.h"

struct kvmx_emul_ops {
	u64 (*get_rip)(struct kvmx_vcpu *vcpu);
	/* Retire the instruction: RIP moves to @rip, the STI/MOV SS shadow ends. */
	void (*set_rip)(struct kvmx_vcpu *vcpu, u64 rip);
	u64 (*get_rflags)(struct kvmx_vcpu *vcpu);
	void (*set_rflags)(struct kvmx_vcpu *vcpu, u64 rflags);
	/* The base of segment @seg (enum kvmx_seg). */
	u64 (*seg_base)(struct kvmx_vcpu *vcpu, u8 seg);
	void (*get_paging)(struct kvmx_vcpu *vcpu, struct kvmx_paging *p);
	enum kvmx_cpu_mode (*cpu_mode)(struct kvmx_vcpu *vcpu);
	/*
	 * Report that the instruction cannot be finished, as the vendor's KVM
	 * does; returns what an exit handler returns.
	 */
	int (*emulation_failure)(struct kvmx_vcpu *vcpu);
};

/* What the data of an MMIO read exit completes, in kvmx_complete_userspace_io(). */
enum kvmx_mmio_stage {
	KVMX_MMIO_LOAD,		/* MOV/MOVZX/MOVSX/LODS into a register */
	KVMX_MMIO_MOVS,		/* MOVS from MMIO: store to ES:rDI */
	KVMX_MMIO_XCHG,		/* swap with a register, then write the old value */
	KVMX_MMIO_ALU,		/* operate, then write back unless CMP/TEST */
};

/*
 * The MMIO instruction waiting for userspace (vcpu->io.mmio): what its read
 * completes into, and the guest-physical address it reads.
 */
struct kvmx_emul {
	const struct kvmx_emul_ops *ops;
	struct kvmx_insn insn;
	u8 stage;		/* enum kvmx_mmio_stage */
	gpa_t gpa;
};

int kvmx_emul_decode_at_rip(struct kvmx_vcpu *vcpu, struct kvmx_emul *em,
			    struct kvmx_insn *insn);
int kvmx_emulate_mmio(struct kvmx_vcpu *vcpu, struct kvmx_emul *em, gpa_t gpa);
int kvmx_emulate_pt_write(struct kvmx_vcpu *vcpu, struct kvmx_emul *em, gpa_t gpa);
int kvmx_emulate_string_io(struct kvmx_vcpu *vcpu, struct kvmx_emul *em, bool in,
			   u16 port, int size);
int kvmx_emul_complete_userspace_io(struct kvmx_vcpu *vcpu, struct kvmx_emul *em);

#endif /* _KVMX_X86_MMIO_H */
