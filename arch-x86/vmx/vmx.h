/* SPDX-License-Identifier: GPL-2.0 */
/* Private to kvmx-intel. */
#ifndef _KVMX_VMX_H
#define _KVMX_VMX_H

#include <linux/list.h>
#include <asm/vmx.h>
#include <asm/asm.h>

#include <kvmx/kvmx_host.h>
#include <kvmx/walk.h>

#include "../emulate/decode.h"
#include "../mmio.h"

/* A VMCS region (SDM: "Format of the VMCS Region"); the rest is the CPU's. */
struct vmcs {
	u32 revision_id;	/* bit 31: shadow VMCS, never set here */
	u32 abort;
	char data[];
};

/* What the capability MSRs let us use, computed once at load. */
struct vmx_config {
	u32 revision_id;
	u32 pin;
	u32 proc;
	u32 proc2;
	u32 exit;
	u32 entry;
	u64 ept_vpid_cap;
	bool ept;		/* EPT and unrestricted guest: VMs may use TDP */
	u64 cr0_fixed0, cr0_fixed1;
	u64 cr4_fixed0, cr4_fixed1;
	bool vpid;
	bool ept_ad;
	bool invept_single;	/* else INVEPT all-context */
	u64 host_efer, host_pat;
	u64 host_sysenter_cs, host_sysenter_eip;	/* SYSENTER_ESP is per CPU */
	u64 host_star, host_lstar, host_sfmask;
};

extern struct vmx_config vmx_cfg;

/*
 * Per-CPU VMX state; each CPU touches only its own with interrupts off,
 * except that another CPU may VMCLEAR from it through an IPI (which runs
 * here, too).
 */
struct vmx_cpu_data {
	bool enabled;
	struct vmcs *vmxon_region;
	struct vmcs *current_vmcs;	/* the VMPTRLD'd VMCS, or NULL */
	struct list_head loaded;	/* vcpu_vmx.loaded_link of VMCSs active here */
	struct vcpu_vmx *last_vcpu;	/* for the IBPB on a vCPU switch */
};

/*
 * MSRs the CPU switches itself through the VM-entry MSR-load and VM-exit
 * MSR-store lists (guest values, one array for both) and the VM-exit
 * MSR-load list (host values, refreshed before each entry).
 */
enum vmx_autoload_msr {
	VMX_MSR_STAR,
	VMX_MSR_LSTAR,
	VMX_MSR_SFMASK,
	VMX_MSR_KERNEL_GS_BASE,
	VMX_NR_AUTOLOAD
};

struct vcpu_vmx {
	struct kvmx_vcpu vcpu;		/* first: the core allocates us */
	struct vmcs *vmcs;
	/* The CPU on which @vmcs is active (VMPTRLD'd or not yet VMCLEARed), or -1. */
	int loaded_cpu;
	struct list_head loaded_link;
	/* VMRESUME, not VMLAUNCH: the VMCS is launched on @loaded_cpu. */
	bool launched;
	/* VM-entry failed with VMfail: nothing of the guest ran. */
	bool fail;
	u16 vpid;
	/* Drop guest TLB entries (INVEPT) before the next entry. */
	bool flush_pending;

	/* Host values written to the VMCS, to skip VMWRITEs that change nothing. */
	unsigned long host_cr3, host_cr4, host_rsp;
	/* The entering task's FS base, read at each load (HOST_FS_BASE). */
	unsigned long host_fs_base;
	u64 host_debugctl;

	/* The guest's view of CR0/CR4 (the read shadows), its CR2 and CR8 (TPR). */
	unsigned long cr0, cr4, cr2;
	u8 cr8;
	/* The guest's EFER; GUEST_IA32_EFER is what the CPU runs with (vmx_set_efer()). */
	u64 efer;
	/*
	 * Shadow paging only: the guest's CR3 (GUEST_CR3 holds the shadow
	 * root) and, for PAE paging, the PDPTEs it loaded with it.  With EPT
	 * the guest owns CR3 and the VMCS holds both.
	 */
	unsigned long cr3;
	u64 pdptes[4];
	bool pdptes_valid;

	/* Guest state kept in software. */
	u64 cstar;
	u64 apic_base;
	u64 misc_enable;

	/* The event to inject at the next entry (VM-entry interruption info), or 0. */
	u32 event_inj;
	u32 event_inj_err;
	u32 event_inj_len;

	/* Exit information, read once right after each exit. */
	u32 exit_reason;
	unsigned long exit_qual;
	u32 exit_intr_info;
	u32 idt_vectoring_info;

	struct vmx_msr_entry *guest_msrs;	/* VMX_NR_AUTOLOAD, one page with host_msrs */
	struct vmx_msr_entry *host_msrs;

	/* The MMIO or string I/O instruction waiting for userspace. */
	struct kvmx_emul emul;
};

static inline struct vcpu_vmx *to_vmx(struct kvmx_vcpu *vcpu)
{
	return container_of(vcpu, struct vcpu_vmx, vcpu);
}

/* Set before an emergency reboot turns VMX off: VMX instructions may fault then. */
extern bool kvmx_vmx_rebooting;

void vmx_insn_fault(const char *insn, unsigned long field);

/*
 * VMREAD and VMWRITE on the current VMCS.  VMfail (an unsupported field) is
 * a kvmx bug, reported once; a fault means VMX is off (emergency reboot).
 */
static __always_inline unsigned long vmcs_readl(unsigned long field)
{
	unsigned long value;
	bool fault = false;

	asm volatile("1: vmread %[field], %[value]\n\t"
		     "jmp 3f\n\t"
		     "2: xor %k[value], %k[value]\n\t"
		     "movb $1, %[fault]\n\t"
		     "3:\n\t"
		     _ASM_EXTABLE(1b, 2b)
		     : [value] "=r" (value), [fault] "+qm" (fault)
		     : [field] "r" (field)
		     : "cc");
	if (unlikely(fault))
		vmx_insn_fault("vmread", field);
	return value;
}

static __always_inline u16 vmcs_read16(unsigned long field)
{
	return vmcs_readl(field);
}

static __always_inline u32 vmcs_read32(unsigned long field)
{
	return vmcs_readl(field);
}

static __always_inline u64 vmcs_read64(unsigned long field)
{
	return vmcs_readl(field);
}

static __always_inline void vmcs_writel(unsigned long field, unsigned long value)
{
	bool fault = false, failed;

	asm volatile("1: vmwrite %[value], %[field]\n\t"
		     "setna %[failed]\n\t"
		     "jmp 3f\n\t"
		     "2: movb $1, %[fault]\n\t"
		     "movb $0, %[failed]\n\t"
		     "3:\n\t"
		     _ASM_EXTABLE(1b, 2b)
		     : [failed] "=qm" (failed), [fault] "+qm" (fault)
		     : [field] "r" (field), [value] "rm" (value)
		     : "cc");
	if (unlikely(fault || failed))
		vmx_insn_fault(fault ? "vmwrite" : "vmwrite (VMfail)", field);
}

static __always_inline void vmcs_write16(unsigned long field, u16 value)
{
	vmcs_writel(field, value);
}

static __always_inline void vmcs_write32(unsigned long field, u32 value)
{
	vmcs_writel(field, value);
}

static __always_inline void vmcs_write64(unsigned long field, u64 value)
{
	vmcs_writel(field, value);
}

static inline void vmcs_set_bits(unsigned long field, u32 mask)
{
	vmcs_write32(field, vmcs_read32(field) | mask);
}

static inline void vmcs_clear_bits(unsigned long field, u32 mask)
{
	vmcs_write32(field, vmcs_read32(field) & ~mask);
}

/* vmenter.S: one VMLAUNCH/VMRESUME with the full guest GPR switch. */
bool __kvmx_vmx_vcpu_run(struct vcpu_vmx *vmx, bool launched);
/* vmenter.S: where the VM exit lands (the VMCS's HOST_RIP). */
extern char __kvmx_vmx_vmexit[];

/* vmx.c: make the VMCS current for a hook that runs outside KVM_RUN. */
void vmx_get_vmcs(struct vcpu_vmx *vmx);
void vmx_put_vmcs(struct vcpu_vmx *vmx);

/* state.c: guest state and the register hooks */
void vmx_reset_vcpu(struct vcpu_vmx *vmx);
void vmx_inject_exception(struct vcpu_vmx *vmx, u8 vector, bool has_error, u32 error);
void vmx_inject_events(struct vcpu_vmx *vmx);
void vmx_complete_interrupts(struct vcpu_vmx *vmx);
int vmx_get_msr(struct kvmx_vcpu *vcpu, u32 index, u64 *data, bool host);
int vmx_set_msr(struct kvmx_vcpu *vcpu, u32 index, u64 data, bool host);
enum kvmx_cpu_mode vmx_cpu_mode(struct kvmx_vcpu *vcpu);
void vmx_get_paging(struct kvmx_vcpu *vcpu, struct kvmx_paging *p);
int vmx_set_cr0(struct vcpu_vmx *vmx, unsigned long cr0);
int vmx_set_cr4(struct vcpu_vmx *vmx, unsigned long cr4);
int vmx_set_cr3(struct vcpu_vmx *vmx, unsigned long cr3);
unsigned long vmx_read_cr3(struct vcpu_vmx *vmx);
extern const struct kvmx_emul_ops vmx_emul_ops;

void vmx_get_regs(struct kvmx_vcpu *vcpu, struct kvm_regs *regs);
void vmx_set_regs(struct kvmx_vcpu *vcpu, const struct kvm_regs *regs);
void vmx_get_sregs(struct kvmx_vcpu *vcpu, struct kvm_sregs *sregs);
int vmx_set_sregs(struct kvmx_vcpu *vcpu, const struct kvm_sregs *sregs);
int vmx_get_msr_hook(struct kvmx_vcpu *vcpu, u32 index, u64 *data, bool host);
int vmx_set_msr_hook(struct kvmx_vcpu *vcpu, u32 index, u64 data, bool host);
void vmx_get_events(struct kvmx_vcpu *vcpu, struct kvm_vcpu_events *ev);
int vmx_set_events(struct kvmx_vcpu *vcpu, const struct kvm_vcpu_events *ev);
bool vmx_interrupt_allowed_hook(struct kvmx_vcpu *vcpu);
bool vmx_get_if_flag(struct kvmx_vcpu *vcpu);
int vmx_complete_userspace_io(struct kvmx_vcpu *vcpu);

/* exits.c */
void vmx_dump_vmcs(struct vcpu_vmx *vmx);
void vmx_handle_exit_irqoff(struct vcpu_vmx *vmx);
int vmx_handle_exit(struct vcpu_vmx *vmx);

#endif /* _KVMX_VMX_H */
