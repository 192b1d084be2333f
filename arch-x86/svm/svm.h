/* SPDX-License-Identifier: GPL-2.0 */
/* Private to kvmx-amd. */
#ifndef _KVMX_SVM_H
#define _KVMX_SVM_H

#include <asm/svm.h>

#include <kvmx/walk.h>

#include <kvmx/kvmx_host.h>
#include "../emulate/decode.h"
#include "../mmio.h"

/* Per-CPU SVM state; each CPU touches only its own, with preemption off. */
struct svm_cpu_data {
	bool enabled;
	u64 asid_generation;
	u32 max_asid;
	u32 next_asid;
	u32 min_asid;
	struct page *hsave_page;	/* MSR_VM_HSAVE_PA: VMRUN's host save area */
	struct page *host_vmcb_page;	/* host FS/GS/TR/LDTR/syscall MSRs via VMSAVE */
	struct vcpu_svm *last_vcpu;	/* for the IBPB on a vCPU switch */
};

struct vcpu_svm {
	struct kvmx_vcpu vcpu;		/* first: the core allocates us */
	struct vmcb *vmcb;
	u64 vmcb_pa;
	u64 host_vmcb_pa;		/* this CPU's host VMSAVE area, set at load */
	u64 asid_generation;
	int last_cpu;

	/*
	 * Control registers and EFER as the guest sees them; the VMCB holds
	 * what the hardware runs with (svm_sync_hw_cr()).  guest_cr3 is used
	 * with shadow paging only, where the VMCB's CR3 is the shadow root.
	 */
	u64 guest_cr0;
	u64 guest_cr3;
	u64 guest_cr4;
	u64 guest_efer;
	/* PAE paging: the PDPTEs last loaded from CR3 (svm_load_pdptes()). */
	u64 pdptes[4];
	bool pdptes_valid;

	u64 apic_base;
	u64 misc_enable;
	u64 tsc_offset;
	u32 sysenter_esp_hi;	/* guests with Intel CPUID only, see svm_set_msr() */
	u32 sysenter_eip_hi;
	bool nmi_masked;
	/* IRET intercepted at nmi_iret_rip; NMIs unblock once RIP moves on. */
	bool awaiting_iret;
	u64 nmi_iret_rip;
	bool vintr_requested;

	/* The MMIO/string I/O instruction waiting for userspace (arch-x86/mmio.c). */
	struct kvmx_emul emul;
};

static inline struct vcpu_svm *to_svm(struct kvmx_vcpu *vcpu)
{
	return container_of(vcpu, struct vcpu_svm, vcpu);
}

static inline void svm_set_intercept(struct vmcb *vmcb, u32 bit)
{
	__set_bit(bit, (unsigned long *)vmcb->control.intercepts);
}

static inline void svm_clr_intercept(struct vmcb *vmcb, u32 bit)
{
	__clear_bit(bit, (unsigned long *)vmcb->control.intercepts);
}

/* vmenter.S: one VMRUN with full guest GPR switch and VMLOAD/VMSAVE. */
void __kvmx_svm_vcpu_run(struct vcpu_svm *svm);

/* svm.c */
extern bool kvmx_svm_rebooting;
void svm_inject_exception(struct vcpu_svm *svm, u8 vector, bool has_error, u32 error);
void svm_set_vintr(struct vcpu_svm *svm, bool on);

void svm_reinit_vmcb(struct vcpu_svm *svm);
u64 svm_read_cr0(struct vcpu_svm *svm);
void svm_write_cr0(struct vcpu_svm *svm, u64 cr0);
u64 svm_read_cr4(struct vcpu_svm *svm);
void svm_write_cr4(struct vcpu_svm *svm, u64 cr4);
u64 svm_read_cr3(struct vcpu_svm *svm);
void svm_write_cr3(struct vcpu_svm *svm, u64 cr3);
u64 svm_read_efer(struct vcpu_svm *svm);
void svm_write_efer(struct vcpu_svm *svm, u64 efer);
int svm_get_msr(struct kvmx_vcpu *vcpu, u32 index, u64 *data, bool host);
int svm_set_msr(struct kvmx_vcpu *vcpu, u32 index, u64 data, bool host);

/* exits.c */
void svm_load_pdptes(struct vcpu_svm *svm);
struct kvmx_paging svm_paging(struct vcpu_svm *svm);
enum kvmx_cpu_mode svm_cpu_mode(struct vcpu_svm *svm);
int svm_decode_at_rip(struct vcpu_svm *svm, struct kvmx_insn *insn);
int svm_skip_instruction(struct vcpu_svm *svm);
int svm_emulation_failure(struct vcpu_svm *svm);
u64 svm_seg_base(struct vcpu_svm *svm, u8 seg);
/* What the common MMIO and string I/O emulation (arch-x86/mmio.c) needs of us. */
extern const struct kvmx_emul_ops svm_emul_ops;
int svm_handle_exit(struct vcpu_svm *svm);
int svm_complete_userspace_io(struct kvmx_vcpu *vcpu);

#endif /* _KVMX_SVM_H */
