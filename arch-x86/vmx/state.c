// SPDX-License-Identifier: GPL-2.0
/*
 * Guest state of a VMX vCPU: reset, registers, segments, control registers,
 * MSRs, and events (injection, windows, KVM_GET/SET_VCPU_EVENTS).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <asm/cpufeature.h>
#include <asm/msr.h>
#include <asm/processor-flags.h>
#include <asm/apicdef.h>
#include <asm/traps.h>

#include <kvmx/kvmx_host.h>

#include "vmx.h"

/* Reset values of DR7 and the PAT (SDM reset state table). */
#define VMX_DR7_RESET		0x400ULL
#define VMX_PAT_RESET		0x0007040600070406ULL

/* The access-rights bit <asm/vmx.h> does not name (SDM: "Guest Register State"). */
#define VMX_AR_AVL_MASK		BIT(12)

struct vmx_seg_fields {
	u32 selector, base, limit, ar;
};

#define VMX_SEG_FIELDS(seg) {						\
	GUEST_##seg##_SELECTOR, GUEST_##seg##_BASE,			\
	GUEST_##seg##_LIMIT, GUEST_##seg##_AR_BYTES }

enum { VMX_ES, VMX_CS, VMX_SS, VMX_DS, VMX_FS, VMX_GS, VMX_TR, VMX_LDTR };

/* Indexed like enum kvmx_seg for ES..GS, then TR and LDTR. */
static const struct vmx_seg_fields vmx_segs[] = {
	[VMX_ES] = VMX_SEG_FIELDS(ES),
	[VMX_CS] = VMX_SEG_FIELDS(CS),
	[VMX_SS] = VMX_SEG_FIELDS(SS),
	[VMX_DS] = VMX_SEG_FIELDS(DS),
	[VMX_FS] = VMX_SEG_FIELDS(FS),
	[VMX_GS] = VMX_SEG_FIELDS(GS),
	[VMX_TR] = VMX_SEG_FIELDS(TR),
	[VMX_LDTR] = VMX_SEG_FIELDS(LDTR),
};

static void vmx_seg_setup(int seg, u16 selector, u64 base, u32 ar)
{
	const struct vmx_seg_fields *f = &vmx_segs[seg];

	vmcs_write16(f->selector, selector);
	vmcs_writel(f->base, base);
	vmcs_write32(f->limit, 0xffff);
	vmcs_write32(f->ar, ar);
}

/* The guest's CR0: the read shadow, with TS from the CPU since the guest owns it. */
static unsigned long vmx_read_cr0(struct vcpu_vmx *vmx)
{
	return (vmx->cr0 & ~X86_CR0_TS) | (vmcs_readl(GUEST_CR0) & X86_CR0_TS);
}

/*
 * Control registers and EFER.  The guest's view lives in struct vcpu_vmx
 * (CR0 and CR4 also in the read shadows, CR3 in the VMCS with EPT), what
 * the CPU runs with in the VMCS; the vmx_hw_*() helpers derive the second.
 *
 * With EPT (unrestricted guest), the CPU runs the guest's CR0 without CD/NW
 * (EPT gives the memory type) plus the fixed-1 bits other than PE and PG
 * (SDM: "VMX-Fixed Bits in CR0"), its CR4 plus the fixed-1 bits (VMXE),
 * and its EFER.
 *
 * With shadow paging (mm/shadow.c), as on SVM: the CPU always pages, with
 * CR0.PG and CR0.WP (read-only shadow entries hold against the guest
 * kernel), CR0.PE (no unrestricted guest without EPT: real mode does not
 * run, vmx_vcpu_run()), 64-bit entries (CR4.PAE) and EFER.NX, through the
 * shadow root in GUEST_CR3.  A guest with paging off runs on an identity
 * map, with SMEP/SMAP/PKE off and EFER.LME kept from the CPU until its long
 * mode is active.  Every CR0/CR4 write, CR3 access, INVLPG and #PF exits.
 */
static unsigned long vmx_hw_cr0(struct vcpu_vmx *vmx, unsigned long cr0)
{
	unsigned long hw = cr0 & ~(X86_CR0_NW | X86_CR0_CD);

	if (kvmx_vm_shadow(vmx->vcpu.vm))
		hw |= vmx_cfg.cr0_fixed0 | X86_CR0_PE | X86_CR0_PG | X86_CR0_WP;
	else
		hw |= vmx_cfg.cr0_fixed0 & ~(X86_CR0_PE | X86_CR0_PG);
	return hw & vmx_cfg.cr0_fixed1;
}

static unsigned long vmx_hw_cr4(struct vcpu_vmx *vmx)
{
	unsigned long hw = vmx->cr4 | vmx_cfg.cr4_fixed0;

	if (kvmx_vm_shadow(vmx->vcpu.vm)) {
		if (!(vmx->cr0 & X86_CR0_PG))
			hw &= ~(X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_PKE);
		hw |= X86_CR4_PAE;
	}
	return hw & vmx_cfg.cr4_fixed1;
}

/*
 * Write the guest's EFER.  With shadow paging the CPU always has NX (the
 * #PF error code then tells a fetch from a read, and shadow leaves may use
 * XD) and LME only once LMA is set: it pages even when the guest does not.
 */
static void vmx_set_efer(struct vcpu_vmx *vmx, u64 efer)
{
	u64 hw = efer;

	vmx->efer = efer;
	if (kvmx_vm_shadow(vmx->vcpu.vm)) {
		hw |= EFER_NX;
		if (!(efer & EFER_LMA))
			hw &= ~EFER_LME;
	}
	vmcs_write64(GUEST_IA32_EFER, hw);
	if (efer & EFER_LMA)
		vmcs_set_bits(VM_ENTRY_CONTROLS, VM_ENTRY_IA32E_MODE);
	else
		vmcs_clear_bits(VM_ENTRY_CONTROLS, VM_ENTRY_IA32E_MODE);
}

/* The guest's CR3: its own with EPT, what it last loaded with shadow paging. */
unsigned long vmx_read_cr3(struct vcpu_vmx *vmx)
{
	return kvmx_vm_shadow(vmx->vcpu.vm) ? vmx->cr3 : vmcs_readl(GUEST_CR3);
}

/* Set the guest's CR3; with shadow paging the next entry loads the matching root. */
static void vmx_write_cr3(struct vcpu_vmx *vmx, unsigned long cr3)
{
	if (kvmx_vm_shadow(vmx->vcpu.vm))
		vmx->cr3 = cr3;
	else
		vmcs_writel(GUEST_CR3, cr3);
}

/* PAE paging as the guest's CR0/CR4/EFER configure it (not IA-32e paging). */
static bool vmx_pae_paging(struct vcpu_vmx *vmx)
{
	return (vmx->cr0 & X86_CR0_PG) && (vmx->cr4 & X86_CR4_PAE) && !(vmx->efer & EFER_LMA);
}

/*
 * PAE paging takes its PDPTEs from CR3 when CR3 is loaded or the paging
 * mode changes (SDM: "Loading Page-Directory-Pointer-Table Entries").  With
 * EPT the CPU does it on a guest MOV to CR3 and takes them from the VMCS
 * at entry, so a paging-mode change kvmx emulates must load them there.
 * With shadow paging they are kvmx's registers, for the walker and the
 * shadow MMU; a set with reserved bits keeps the last good one, as on SVM.
 */
static void vmx_load_pdptrs(struct vcpu_vmx *vmx)
{
	struct kvmx_vm *vm = vmx->vcpu.vm;
	struct kvmx_paging p;
	u64 pdpte[4] = {};
	int idx, r;

	if (!vmx_pae_paging(vmx))
		return;
	idx = srcu_read_lock(&vm->srcu);
	if (kvmx_vm_shadow(vm)) {
		vmx_get_paging(&vmx->vcpu, &p);
		r = kvmx_guest_load_pdptes(vm, &p, pdpte);
		srcu_read_unlock(&vm->srcu, idx);
		if (!r) {
			memcpy(vmx->pdptes, pdpte, sizeof(pdpte));
			vmx->pdptes_valid = true;
		}
		return;
	}
	/* The entry checks them (SDM: "Checks on Guest Page-Directory-Pointer-Table Entries"). */
	if (kvmx_read_guest(vm, vmx_read_cr3(vmx) & 0xffffffe0UL, pdpte, sizeof(pdpte)))
		memset(pdpte, 0, sizeof(pdpte));
	srcu_read_unlock(&vm->srcu, idx);
	vmcs_write64(GUEST_PDPTR0, pdpte[0]);
	vmcs_write64(GUEST_PDPTR1, pdpte[1]);
	vmcs_write64(GUEST_PDPTR2, pdpte[2]);
	vmcs_write64(GUEST_PDPTR3, pdpte[3]);
}

/*
 * Write CR0 as the guest sees it (vmx_hw_cr0() gives the CPU's).  Entering
 * or leaving long mode follows EFER.LME as on hardware.
 */
static void __vmx_set_cr0(struct vcpu_vmx *vmx, unsigned long cr0)
{
	u64 efer = vmx->efer;

	if ((efer & EFER_LME) && !(vmx->cr0 & X86_CR0_PG) && (cr0 & X86_CR0_PG)) {
		u32 tr_ar = vmcs_read32(GUEST_TR_AR_BYTES);

		/*
		 * An IA-32e guest needs a busy 64-bit TSS in TR to enter (SDM:
		 * "Checks on Guest Segment Registers"); real CPUs look at TR
		 * only on a task switch.  As KVM's enter_lmode(), fix the type.
		 */
		if ((tr_ar & VMX_AR_TYPE_MASK) != VMX_AR_TYPE_BUSY_64_TSS)
			vmcs_write32(GUEST_TR_AR_BYTES, (tr_ar & ~VMX_AR_TYPE_MASK) |
				     VMX_AR_TYPE_BUSY_64_TSS);
		vmx_set_efer(vmx, efer | EFER_LMA);
	} else if ((efer & EFER_LMA) && !(cr0 & X86_CR0_PG)) {
		vmx_set_efer(vmx, efer & ~EFER_LMA);
	}
	vmcs_writel(GUEST_CR0, vmx_hw_cr0(vmx, cr0));
	vmcs_writel(CR0_READ_SHADOW, cr0);
	vmx->cr0 = cr0;
	/* Shadow paging: the CPU's CR4 follows CR0.PG. */
	vmcs_writel(GUEST_CR4, vmx_hw_cr4(vmx));
}

/*
 * CR4 bits a guest may not set: those kvmx or the guest's CPUID do not
 * offer (as kvmx-amd), and those VMX operation does not allow.
 */
static u64 vmx_cr4_reserved(struct vcpu_vmx *vmx)
{
	return kvmx_cr4_reserved_bits(&vmx->vcpu) | ~vmx_cfg.cr4_fixed1;
}

static void __vmx_set_cr4(struct vcpu_vmx *vmx, unsigned long cr4)
{
	vmx->cr4 = cr4;
	vmcs_writel(GUEST_CR4, vmx_hw_cr4(vmx));
	vmcs_writel(CR4_READ_SHADOW, cr4);
}

/* A guest MOV to CR0 (or LMSW).  Returns 0, or 1 for #GP, as KVM's kvm_set_cr0(). */
int vmx_set_cr0(struct vcpu_vmx *vmx, unsigned long cr0)
{
	unsigned long old = vmx_read_cr0(vmx);
	u64 efer = vmx->efer;

	cr0 |= X86_CR0_ET;
	if (cr0 >> 32)
		return 1;
	if ((cr0 & X86_CR0_NW) && !(cr0 & X86_CR0_CD))
		return 1;
	if ((cr0 & X86_CR0_PG) && !(cr0 & X86_CR0_PE))
		return 1;
	if (!(old & X86_CR0_PG) && (cr0 & X86_CR0_PG) && (efer & EFER_LME)) {
		if (!(vmx->cr4 & X86_CR4_PAE))
			return 1;
		/* Long mode is entered with CS.L clear (SDM: "Initializing IA-32e Mode"). */
		if (vmcs_read32(GUEST_CS_AR_BYTES) & VMX_AR_L_MASK)
			return 1;
	}
	__vmx_set_cr0(vmx, cr0);
	if ((old ^ cr0) & (X86_CR0_PG | X86_CR0_WP | X86_CR0_PE)) {
		vmx_load_pdptrs(vmx);
		vmx->flush_pending = true;
	}
	return 0;
}

/* A guest MOV to CR4.  Returns 0, or 1 for #GP, as KVM's kvm_set_cr4(). */
int vmx_set_cr4(struct vcpu_vmx *vmx, unsigned long cr4)
{
	unsigned long old = vmx->cr4;

	if (cr4 & vmx_cr4_reserved(vmx))
		return 1;
	if ((vmx->efer & EFER_LMA) && !(cr4 & X86_CR4_PAE))
		return 1;
	__vmx_set_cr4(vmx, cr4);
	if ((old ^ cr4) & (X86_CR4_PGE | X86_CR4_PAE | X86_CR4_PSE | X86_CR4_SMEP |
			   X86_CR4_SMAP)) {
		vmx_load_pdptrs(vmx);
		vmx->flush_pending = true;
	}
	return 0;
}

/*
 * A guest MOV to CR3 (it exits with shadow paging only).  Bits above
 * MAXPHYADDR are reserved in long mode; PCID is not offered, so every load
 * flushes the guest's TLB, which a VM entry without VPID does anyway (SDM:
 * "VPID and the TLB").  The next entry loads the new address space's shadow
 * root.  Returns 0, or 1 for #GP.
 */
int vmx_set_cr3(struct vcpu_vmx *vmx, unsigned long cr3)
{
	struct kvmx_paging p;

	vmx_get_paging(&vmx->vcpu, &p);
	if ((vmx->efer & EFER_LMA) && (cr3 >> p.maxphyaddr))
		return 1;
	vmx_write_cr3(vmx, cr3);
	vmx_load_pdptrs(vmx);
	vmx->flush_pending = true;
	return 0;
}

/* Architectural reset state (SDM: "Initialization Overview"), as KVM's vmx_vcpu_reset(). */
void vmx_reset_vcpu(struct vcpu_vmx *vmx)
{
	struct kvmx_vcpu *vcpu = &vmx->vcpu;

	vmx_seg_setup(VMX_ES, 0, 0, 0x93);
	vmx_seg_setup(VMX_CS, 0xf000, 0xffff0000, 0x9b);
	vmx_seg_setup(VMX_SS, 0, 0, 0x93);
	vmx_seg_setup(VMX_DS, 0, 0, 0x93);
	vmx_seg_setup(VMX_FS, 0, 0, 0x93);
	vmx_seg_setup(VMX_GS, 0, 0, 0x93);
	vmx_seg_setup(VMX_LDTR, 0, 0, 0x82);
	vmx_seg_setup(VMX_TR, 0, 0, 0x8b);
	vmcs_writel(GUEST_GDTR_BASE, 0);
	vmcs_write32(GUEST_GDTR_LIMIT, 0xffff);
	vmcs_writel(GUEST_IDTR_BASE, 0);
	vmcs_write32(GUEST_IDTR_LIMIT, 0xffff);

	vmcs_writel(GUEST_RIP, 0xfff0);
	vmcs_writel(GUEST_RFLAGS, X86_EFLAGS_FIXED);
	vmx_write_cr3(vmx, 0);
	vmx_set_efer(vmx, 0);
	vmx->cr0 = 0;
	__vmx_set_cr0(vmx, X86_CR0_NW | X86_CR0_CD | X86_CR0_ET);
	__vmx_set_cr4(vmx, 0);
	vmx->pdptes_valid = false;
	kvmx_shadow_reset(vcpu);
	vmx->cr2 = 0;
	vmx->cr8 = 0;
	vmcs_writel(GUEST_DR7, VMX_DR7_RESET);
	vmcs_write64(GUEST_IA32_DEBUGCTL, 0);
	vmcs_write64(GUEST_IA32_PAT, VMX_PAT_RESET);
	vmcs_write32(GUEST_SYSENTER_CS, 0);
	vmcs_writel(GUEST_SYSENTER_ESP, 0);
	vmcs_writel(GUEST_SYSENTER_EIP, 0);
	vmcs_write32(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
	vmcs_write32(GUEST_INTERRUPTIBILITY_INFO, 0);
	vmcs_writel(GUEST_PENDING_DBG_EXCEPTIONS, 0);
	vmcs_write64(TSC_OFFSET, 0);
	vmx->event_inj = 0;

	memset(vcpu->regs, 0, sizeof(vcpu->regs));
	vcpu->regs[KVMX_RDX] = 0x600;	/* family 6, as KVM's reset */
	vmx->apic_base = APIC_DEFAULT_PHYS_BASE | MSR_IA32_APICBASE_ENABLE |
			 (vcpu->vcpu_id == 0 ? MSR_IA32_APICBASE_BSP : 0);
}

static void vmx_get_seg(int seg, struct kvm_segment *v)
{
	const struct vmx_seg_fields *f = &vmx_segs[seg];
	u32 ar = vmcs_read32(f->ar);

	v->base = vmcs_readl(f->base);
	v->limit = vmcs_read32(f->limit);
	v->selector = vmcs_read16(f->selector);
	v->unusable = !!(ar & VMX_AR_UNUSABLE_MASK);
	v->type = ar & VMX_AR_TYPE_MASK;
	v->s = !!(ar & VMX_AR_S_MASK);
	v->dpl = (ar >> VMX_AR_DPL_SHIFT) & 3;
	/* As KVM: an unusable segment reads back not present. */
	v->present = !v->unusable;
	v->avl = !!(ar & VMX_AR_AVL_MASK);
	v->l = !!(ar & VMX_AR_L_MASK);
	v->db = !!(ar & VMX_AR_DB_MASK);
	v->g = !!(ar & VMX_AR_G_MASK);
	v->padding = 0;
}

static void vmx_set_seg(int seg, const struct kvm_segment *v)
{
	const struct vmx_seg_fields *f = &vmx_segs[seg];
	u32 ar;

	vmcs_writel(f->base, v->base);
	vmcs_write32(f->limit, v->limit);
	vmcs_write16(f->selector, v->selector);
	if (v->unusable || !v->present) {
		ar = VMX_AR_UNUSABLE_MASK;
	} else {
		/* As KVM with unrestricted guest: the accessed bit is set but in LDTR. */
		ar = (v->type & VMX_AR_TYPE_MASK) | (seg != VMX_LDTR ? 1 : 0);
		ar |= (v->s & 1) ? VMX_AR_S_MASK : 0;
		ar |= (v->dpl & 3) << VMX_AR_DPL_SHIFT;
		ar |= VMX_AR_P_MASK;
		ar |= (v->avl & 1) ? VMX_AR_AVL_MASK : 0;
		ar |= (v->l & 1) ? VMX_AR_L_MASK : 0;
		ar |= (v->db & 1) ? VMX_AR_DB_MASK : 0;
		ar |= (v->g & 1) ? VMX_AR_G_MASK : 0;
	}
	vmcs_write32(f->ar, ar);
}

void vmx_get_regs(struct kvmx_vcpu *vcpu, struct kvm_regs *r)
{
	struct vcpu_vmx *vmx = to_vmx(vcpu);
	unsigned long *g = vcpu->regs;

	vmx_get_vmcs(vmx);
	r->rax = g[KVMX_RAX]; r->rbx = g[KVMX_RBX]; r->rcx = g[KVMX_RCX]; r->rdx = g[KVMX_RDX];
	r->rsi = g[KVMX_RSI]; r->rdi = g[KVMX_RDI]; r->rsp = g[KVMX_RSP]; r->rbp = g[KVMX_RBP];
	r->r8 = g[KVMX_R8]; r->r9 = g[KVMX_R9]; r->r10 = g[KVMX_R10]; r->r11 = g[KVMX_R11];
	r->r12 = g[KVMX_R12]; r->r13 = g[KVMX_R13]; r->r14 = g[KVMX_R14]; r->r15 = g[KVMX_R15];
	r->rip = vmcs_readl(GUEST_RIP);
	r->rflags = vmcs_readl(GUEST_RFLAGS);
	vmx_put_vmcs(vmx);
}

void vmx_set_regs(struct kvmx_vcpu *vcpu, const struct kvm_regs *r)
{
	struct vcpu_vmx *vmx = to_vmx(vcpu);
	unsigned long *g = vcpu->regs;

	vmx_get_vmcs(vmx);
	g[KVMX_RAX] = r->rax; g[KVMX_RBX] = r->rbx; g[KVMX_RCX] = r->rcx; g[KVMX_RDX] = r->rdx;
	g[KVMX_RSI] = r->rsi; g[KVMX_RDI] = r->rdi; g[KVMX_RSP] = r->rsp; g[KVMX_RBP] = r->rbp;
	g[KVMX_R8] = r->r8; g[KVMX_R9] = r->r9; g[KVMX_R10] = r->r10; g[KVMX_R11] = r->r11;
	g[KVMX_R12] = r->r12; g[KVMX_R13] = r->r13; g[KVMX_R14] = r->r14; g[KVMX_R15] = r->r15;
	vmcs_writel(GUEST_RIP, r->rip);
	/* As KVM: the fixed bit 1 is always set. */
	vmcs_writel(GUEST_RFLAGS, r->rflags | X86_EFLAGS_FIXED);
	vmx_put_vmcs(vmx);
	/* A new RIP abandons any instruction waiting for userspace. */
	vcpu->io.active = false;
}

void vmx_get_sregs(struct kvmx_vcpu *vcpu, struct kvm_sregs *sr)
{
	struct vcpu_vmx *vmx = to_vmx(vcpu);

	vmx_get_vmcs(vmx);
	vmx_get_seg(VMX_CS, &sr->cs);
	vmx_get_seg(VMX_DS, &sr->ds);
	vmx_get_seg(VMX_ES, &sr->es);
	vmx_get_seg(VMX_FS, &sr->fs);
	vmx_get_seg(VMX_GS, &sr->gs);
	vmx_get_seg(VMX_SS, &sr->ss);
	vmx_get_seg(VMX_TR, &sr->tr);
	vmx_get_seg(VMX_LDTR, &sr->ldt);
	sr->gdt.base = vmcs_readl(GUEST_GDTR_BASE);
	sr->gdt.limit = vmcs_read32(GUEST_GDTR_LIMIT);
	sr->idt.base = vmcs_readl(GUEST_IDTR_BASE);
	sr->idt.limit = vmcs_read32(GUEST_IDTR_LIMIT);
	sr->cr0 = vmx_read_cr0(vmx);
	sr->cr2 = vmx->cr2;
	sr->cr3 = vmx_read_cr3(vmx);
	sr->cr4 = vmx->cr4;
	sr->cr8 = vmx->cr8;
	sr->efer = vmx->efer;
	sr->apic_base = vmx->apic_base;
	memset(sr->interrupt_bitmap, 0, sizeof(sr->interrupt_bitmap));
	if (vcpu->irq_pending)
		__set_bit(vcpu->irq_vector, (unsigned long *)sr->interrupt_bitmap);
	vmx_put_vmcs(vmx);
}

int vmx_set_sregs(struct kvmx_vcpu *vcpu, const struct kvm_sregs *sr)
{
	struct vcpu_vmx *vmx = to_vmx(vcpu);
	int irq;

	if (!kvmx_sregs_valid(vcpu, sr, vmx_cr4_reserved(vmx), vmx->apic_base))
		return -EINVAL;

	vmx_get_vmcs(vmx);
	vmx_set_seg(VMX_CS, &sr->cs);
	vmx_set_seg(VMX_DS, &sr->ds);
	vmx_set_seg(VMX_ES, &sr->es);
	vmx_set_seg(VMX_FS, &sr->fs);
	vmx_set_seg(VMX_GS, &sr->gs);
	vmx_set_seg(VMX_SS, &sr->ss);
	vmx_set_seg(VMX_TR, &sr->tr);
	vmx_set_seg(VMX_LDTR, &sr->ldt);
	vmcs_writel(GUEST_GDTR_BASE, sr->gdt.base);
	vmcs_write32(GUEST_GDTR_LIMIT, sr->gdt.limit);
	vmcs_writel(GUEST_IDTR_BASE, sr->idt.base);
	vmcs_write32(GUEST_IDTR_LIMIT, sr->idt.limit);
	vmx->cr2 = sr->cr2;
	vmx_write_cr3(vmx, sr->cr3);
	vmx_set_efer(vmx, sr->efer);
	/* EFER.LMA came with the rest: no long-mode transition to derive. */
	vmx->cr0 = sr->cr0;
	__vmx_set_cr0(vmx, sr->cr0);
	__vmx_set_cr4(vmx, sr->cr4);
	vmx->cr8 = sr->cr8 & 0xf;
	vmx->apic_base = sr->apic_base;
	/* New paging state: shadow roots are looked up afresh (mm/shadow.c). */
	kvmx_shadow_reset(vcpu);
	vmx->pdptes_valid = false;
	vmx_load_pdptrs(vmx);
	vmx->flush_pending = true;
	vmx_put_vmcs(vmx);

	irq = find_first_bit((const unsigned long *)sr->interrupt_bitmap, 256);
	if (irq < 256) {
		vcpu->irq_pending = true;
		vcpu->irq_vector = irq;
	}
	return 0;
}

int vmx_get_msr(struct kvmx_vcpu *vcpu, u32 index, u64 *data, bool host)
{
	struct vcpu_vmx *vmx = to_vmx(vcpu);

	switch (index) {
	case MSR_EFER:
		*data = vmx->efer;
		break;
	case MSR_STAR:
		*data = vmx->guest_msrs[VMX_MSR_STAR].value;
		break;
	case MSR_LSTAR:
		*data = vmx->guest_msrs[VMX_MSR_LSTAR].value;
		break;
	case MSR_CSTAR:
		*data = vmx->cstar;
		break;
	case MSR_SYSCALL_MASK:
		*data = vmx->guest_msrs[VMX_MSR_SFMASK].value;
		break;
	case MSR_KERNEL_GS_BASE:
		*data = vmx->guest_msrs[VMX_MSR_KERNEL_GS_BASE].value;
		break;
	case MSR_FS_BASE:
		*data = vmcs_readl(GUEST_FS_BASE);
		break;
	case MSR_GS_BASE:
		*data = vmcs_readl(GUEST_GS_BASE);
		break;
	case MSR_IA32_SYSENTER_CS:
		*data = vmcs_read32(GUEST_SYSENTER_CS);
		break;
	case MSR_IA32_SYSENTER_ESP:
		*data = vmcs_readl(GUEST_SYSENTER_ESP);
		break;
	case MSR_IA32_SYSENTER_EIP:
		*data = vmcs_readl(GUEST_SYSENTER_EIP);
		break;
	case MSR_IA32_TSC:
		*data = rdtsc() + vmcs_read64(TSC_OFFSET);
		break;
	case MSR_IA32_CR_PAT:
		*data = vmcs_read64(GUEST_IA32_PAT);
		break;
	case MSR_IA32_APICBASE:
		*data = vmx->apic_base;
		break;
	case MSR_IA32_MISC_ENABLE:
		*data = vmx->misc_enable;
		break;
	default:
		return 1;
	}
	return 0;
}

int vmx_set_msr(struct kvmx_vcpu *vcpu, u32 index, u64 data, bool host)
{
	struct vcpu_vmx *vmx = to_vmx(vcpu);
	u64 efer;

	switch (index) {
	case MSR_EFER:
		if (data & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NX | EFER_FFXSR))
			return 1;
		efer = vmx->efer;
		/*
		 * A guest may not flip LME while paging is on.  LMA is the CPU's,
		 * for the VMM too (as KVM's set_efer()): only KVM_SET_SREGS sets
		 * it, with the CR0.PG and CR4.PAE it needs.  With shadow paging an
		 * LMA without them would make the CPU walk the legacy root as a
		 * PML4.
		 */
		if (!host && (vmx->cr0 & X86_CR0_PG) && ((data ^ efer) & EFER_LME))
			return 1;
		data = (data & ~EFER_LMA) | (efer & EFER_LMA);
		vmx_set_efer(vmx, data);
		break;
	case MSR_STAR:
		vmx->guest_msrs[VMX_MSR_STAR].value = data;
		break;
	case MSR_LSTAR:
	case MSR_CSTAR:
	case MSR_KERNEL_GS_BASE:
	case MSR_FS_BASE:
	case MSR_GS_BASE:
		if (!__is_canonical_address(data, 48))
			return 1;
		if (index == MSR_LSTAR)
			vmx->guest_msrs[VMX_MSR_LSTAR].value = data;
		else if (index == MSR_CSTAR)
			vmx->cstar = data;
		else if (index == MSR_KERNEL_GS_BASE)
			vmx->guest_msrs[VMX_MSR_KERNEL_GS_BASE].value = data;
		else if (index == MSR_FS_BASE)
			vmcs_writel(GUEST_FS_BASE, data);
		else
			vmcs_writel(GUEST_GS_BASE, data);
		break;
	case MSR_SYSCALL_MASK:
		/* Only the low half exists: a VM-entry MSR load with more fails. */
		vmx->guest_msrs[VMX_MSR_SFMASK].value = (u32)data;
		break;
	case MSR_IA32_SYSENTER_CS:
		vmcs_write32(GUEST_SYSENTER_CS, data);
		break;
	case MSR_IA32_SYSENTER_ESP:
	case MSR_IA32_SYSENTER_EIP:
		if (!__is_canonical_address(data, 48))
			return 1;
		vmcs_writel(index == MSR_IA32_SYSENTER_ESP ? GUEST_SYSENTER_ESP :
			    GUEST_SYSENTER_EIP, data);
		break;
	case MSR_IA32_TSC:
		vmcs_write64(TSC_OFFSET, data - rdtsc());
		break;
	case MSR_IA32_CR_PAT:
		if (!kvmx_pat_valid(data))
			return 1;
		vmcs_write64(GUEST_IA32_PAT, data);
		break;
	case MSR_IA32_APICBASE:
		if (!kvmx_apic_base_valid(vcpu, vmx->apic_base, data, host))
			return 1;
		vmx->apic_base = data;
		break;
	case MSR_IA32_MISC_ENABLE:
		vmx->misc_enable = data;
		break;
	default:
		return 1;
	}
	return 0;
}

int vmx_get_msr_hook(struct kvmx_vcpu *vcpu, u32 index, u64 *data, bool host)
{
	int r;

	vmx_get_vmcs(to_vmx(vcpu));
	r = vmx_get_msr(vcpu, index, data, host);
	vmx_put_vmcs(to_vmx(vcpu));
	return r;
}

int vmx_set_msr_hook(struct kvmx_vcpu *vcpu, u32 index, u64 data, bool host)
{
	int r;

	vmx_get_vmcs(to_vmx(vcpu));
	r = vmx_set_msr(vcpu, index, data, host);
	vmx_put_vmcs(to_vmx(vcpu));
	return r;
}

void vmx_inject_exception(struct vcpu_vmx *vmx, u8 vector, bool has_error, u32 error)
{
	vmx->event_inj = vector | INTR_TYPE_HARD_EXCEPTION | INTR_INFO_VALID_MASK |
			 (has_error ? INTR_INFO_DELIVER_CODE_MASK : 0);
	vmx->event_inj_err = error;
	vmx->event_inj_len = 0;
}

static bool vmx_interrupt_allowed(struct vcpu_vmx *vmx)
{
	return (vmcs_readl(GUEST_RFLAGS) & X86_EFLAGS_IF) &&
	       !(vmcs_read32(GUEST_INTERRUPTIBILITY_INFO) &
		 (GUEST_INTR_STATE_STI | GUEST_INTR_STATE_MOV_SS)) &&
	       !(vmx->event_inj & INTR_INFO_VALID_MASK);
}

bool vmx_interrupt_allowed_hook(struct kvmx_vcpu *vcpu)
{
	struct vcpu_vmx *vmx = to_vmx(vcpu);
	bool r;

	vmx_get_vmcs(vmx);
	r = vmx_interrupt_allowed(vmx);
	vmx_put_vmcs(vmx);
	return r;
}

bool vmx_get_if_flag(struct kvmx_vcpu *vcpu)
{
	struct vcpu_vmx *vmx = to_vmx(vcpu);
	bool r;

	vmx_get_vmcs(vmx);
	r = !!(vmcs_readl(GUEST_RFLAGS) & X86_EFLAGS_IF);
	vmx_put_vmcs(vmx);
	return r;
}

/*
 * Queue NMIs and the KVM_INTERRUPT vector, or ask for an NMI or interrupt
 * window to do so (SDM: "NMI-Window Exiting", "Interrupt-Window Exiting").
 * Virtual NMIs make the CPU track NMI blocking until the guest's IRET.
 */
void vmx_inject_events(struct vcpu_vmx *vmx)
{
	struct kvmx_vcpu *vcpu = &vmx->vcpu;
	u32 intr = vmcs_read32(GUEST_INTERRUPTIBILITY_INFO);
	u32 proc = vmcs_read32(CPU_BASED_VM_EXEC_CONTROL);
	u32 want = proc & ~(CPU_BASED_INTR_WINDOW_EXITING | CPU_BASED_NMI_WINDOW_EXITING);
	bool irq_window = READ_ONCE(vcpu->run->request_interrupt_window);

	if (vcpu->nmi_pending && !(vmx->event_inj & INTR_INFO_VALID_MASK) &&
	    !(intr & (GUEST_INTR_STATE_NMI | GUEST_INTR_STATE_MOV_SS | GUEST_INTR_STATE_STI))) {
		vmx->event_inj = NMI_VECTOR | INTR_TYPE_NMI_INTR | INTR_INFO_VALID_MASK;
		vcpu->nmi_pending = false;
	}
	if (vcpu->nmi_pending)
		want |= CPU_BASED_NMI_WINDOW_EXITING;
	if (vcpu->irq_pending && vmx_interrupt_allowed(vmx)) {
		vmx->event_inj = vcpu->irq_vector | INTR_TYPE_EXT_INTR | INTR_INFO_VALID_MASK;
		vcpu->irq_pending = false;
	}
	if ((vcpu->irq_pending || irq_window) && !vmx_interrupt_allowed(vmx))
		want |= CPU_BASED_INTR_WINDOW_EXITING;
	if (want != proc)
		vmcs_write32(CPU_BASED_VM_EXEC_CONTROL, want);
	/* Real mode delivers no error codes; the CPU refuses an entry that has one. */
	if (!(vmx->cr0 & X86_CR0_PE))
		vmx->event_inj &= ~INTR_INFO_DELIVER_CODE_MASK;
}

/*
 * An event whose delivery the exit cut short (e.g. an EPT violation on the
 * IDT or the stack) is injected again (SDM: "Information for VM Exits
 * During Event Delivery").  Software interrupts and INT3/INTO re-execute
 * from RIP instead.
 */
void vmx_complete_interrupts(struct vcpu_vmx *vmx)
{
	u32 info = vmx->idt_vectoring_info;

	if (!(info & VECTORING_INFO_VALID_MASK))
		return;
	switch (info & VECTORING_INFO_TYPE_MASK) {
	case INTR_TYPE_NMI_INTR:
		/* The NMI was not delivered: the guest is not blocking NMIs yet. */
		vmcs_clear_bits(GUEST_INTERRUPTIBILITY_INFO, GUEST_INTR_STATE_NMI);
		fallthrough;
	case INTR_TYPE_EXT_INTR:
	case INTR_TYPE_HARD_EXCEPTION:
		vmx->event_inj = info & (INTR_INFO_VECTOR_MASK | INTR_INFO_INTR_TYPE_MASK |
					 INTR_INFO_DELIVER_CODE_MASK | INTR_INFO_VALID_MASK);
		vmx->event_inj_err = vmcs_read32(IDT_VECTORING_ERROR_CODE);
		vmx->event_inj_len = 0;
		break;
	default:
		break;
	}
}

void vmx_get_events(struct kvmx_vcpu *vcpu, struct kvm_vcpu_events *ev)
{
	struct vcpu_vmx *vmx = to_vmx(vcpu);
	u32 inj = vmx->event_inj, type = inj & INTR_INFO_INTR_TYPE_MASK;
	bool valid = inj & INTR_INFO_VALID_MASK;
	u32 intr;

	vmx_get_vmcs(vmx);
	intr = vmcs_read32(GUEST_INTERRUPTIBILITY_INFO);
	vmx_put_vmcs(vmx);

	if (valid && type == INTR_TYPE_HARD_EXCEPTION) {
		ev->exception.injected = 1;
		ev->exception.nr = inj & INTR_INFO_VECTOR_MASK;
		ev->exception.has_error_code = !!(inj & INTR_INFO_DELIVER_CODE_MASK);
		ev->exception.error_code = vmx->event_inj_err;
	}
	if (valid && type == INTR_TYPE_EXT_INTR) {
		ev->interrupt.injected = 1;
		ev->interrupt.nr = inj & INTR_INFO_VECTOR_MASK;
	}
	ev->interrupt.shadow = ((intr & GUEST_INTR_STATE_STI) ? KVM_X86_SHADOW_INT_STI : 0) |
			       ((intr & GUEST_INTR_STATE_MOV_SS) ? KVM_X86_SHADOW_INT_MOV_SS : 0);
	ev->nmi.injected = valid && type == INTR_TYPE_NMI_INTR;
	ev->nmi.pending = vcpu->nmi_pending;
	ev->nmi.masked = !!(intr & GUEST_INTR_STATE_NMI);
	ev->sipi_vector = 0;
	ev->flags = KVM_VCPUEVENT_VALID_SHADOW;
}

int vmx_set_events(struct kvmx_vcpu *vcpu, const struct kvm_vcpu_events *ev)
{
	struct vcpu_vmx *vmx = to_vmx(vcpu);
	u32 intr;

	/* The flags KVM accepts on x86, less those kvmx does not offer. */
	if (ev->flags & ~(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
			  KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM))
		return -EINVAL;
	if (ev->flags & KVM_VCPUEVENT_VALID_SMM)
		return -EINVAL;
	if (ev->exception.injected && (ev->exception.nr > 31 || ev->exception.nr == NMI_VECTOR))
		return -EINVAL;

	vmx->event_inj = 0;
	vmx->event_inj_len = 0;
	if (ev->exception.injected)
		vmx->event_inj = ev->exception.nr | INTR_TYPE_HARD_EXCEPTION |
				 INTR_INFO_VALID_MASK |
				 (ev->exception.has_error_code ? INTR_INFO_DELIVER_CODE_MASK : 0);
	else if (ev->interrupt.injected)
		vmx->event_inj = ev->interrupt.nr | INTR_TYPE_EXT_INTR | INTR_INFO_VALID_MASK;
	else if (ev->nmi.injected)
		vmx->event_inj = NMI_VECTOR | INTR_TYPE_NMI_INTR | INTR_INFO_VALID_MASK;
	vmx->event_inj_err = ev->exception.error_code;

	vmx_get_vmcs(vmx);
	intr = vmcs_read32(GUEST_INTERRUPTIBILITY_INFO);
	if (ev->flags & KVM_VCPUEVENT_VALID_SHADOW) {
		intr &= ~(GUEST_INTR_STATE_STI | GUEST_INTR_STATE_MOV_SS);
		if (ev->interrupt.shadow & KVM_X86_SHADOW_INT_STI)
			intr |= GUEST_INTR_STATE_STI;
		if (ev->interrupt.shadow & KVM_X86_SHADOW_INT_MOV_SS)
			intr |= GUEST_INTR_STATE_MOV_SS;
	}
	if (ev->nmi.masked)
		intr |= GUEST_INTR_STATE_NMI;
	else
		intr &= ~GUEST_INTR_STATE_NMI;
	vmcs_write32(GUEST_INTERRUPTIBILITY_INFO, intr);
	vmx_put_vmcs(vmx);

	if (ev->flags & KVM_VCPUEVENT_VALID_NMI_PENDING)
		vcpu->nmi_pending = ev->nmi.pending;
	return 0;
}

/* What the common MMIO and string I/O emulation needs of the guest. */
static u64 vmx_emul_get_rip(struct kvmx_vcpu *vcpu)
{
	return vmcs_readl(GUEST_RIP);
}

static void vmx_emul_set_rip(struct kvmx_vcpu *vcpu, u64 rip)
{
	vmcs_writel(GUEST_RIP, rip);
	vmcs_clear_bits(GUEST_INTERRUPTIBILITY_INFO,
			GUEST_INTR_STATE_STI | GUEST_INTR_STATE_MOV_SS);
}

static u64 vmx_emul_get_rflags(struct kvmx_vcpu *vcpu)
{
	return vmcs_readl(GUEST_RFLAGS);
}

static void vmx_emul_set_rflags(struct kvmx_vcpu *vcpu, u64 rflags)
{
	vmcs_writel(GUEST_RFLAGS, rflags);
}

static u64 vmx_emul_seg_base(struct kvmx_vcpu *vcpu, u8 seg)
{
	return vmcs_readl(vmx_segs[seg <= KVMX_SEG_GS ? seg : KVMX_SEG_DS].base);
}

void vmx_get_paging(struct kvmx_vcpu *vcpu, struct kvmx_paging *p)
{
	struct vcpu_vmx *vmx = to_vmx(vcpu);

	memset(p, 0, sizeof(*p));
	p->cr0 = vmx_read_cr0(vmx);
	p->cr3 = vmx_read_cr3(vmx);
	p->cr4 = vmx->cr4;
	p->efer = vmx->efer;
	p->rflags = vmcs_readl(GUEST_RFLAGS);
	p->cpl = (vmcs_read32(GUEST_SS_AR_BYTES) >> VMX_AR_DPL_SHIFT) & 3;
	kvmx_paging_model(vcpu, p);
	if (!vmx_pae_paging(vmx))
		return;
	if (kvmx_vm_shadow(vcpu->vm)) {
		/* The registers kvmx loaded with the guest's last CR3 load. */
		if (vmx->pdptes_valid) {
			memcpy(p->pdptes, vmx->pdptes, sizeof(p->pdptes));
			p->pdptes_valid = true;
		}
	} else {
		p->pdptes[0] = vmcs_read64(GUEST_PDPTR0);
		p->pdptes[1] = vmcs_read64(GUEST_PDPTR1);
		p->pdptes[2] = vmcs_read64(GUEST_PDPTR2);
		p->pdptes[3] = vmcs_read64(GUEST_PDPTR3);
		p->pdptes_valid = true;
	}
}

enum kvmx_cpu_mode vmx_cpu_mode(struct kvmx_vcpu *vcpu)
{
	struct vcpu_vmx *vmx = to_vmx(vcpu);
	u32 cs_ar = vmcs_read32(GUEST_CS_AR_BYTES);

	return kvmx_decode_mode(vmx->cr0 & X86_CR0_PE, vmcs_readl(GUEST_RFLAGS) & X86_EFLAGS_VM,
				vmx->efer & EFER_LMA, cs_ar & VMX_AR_L_MASK,
				cs_ar & VMX_AR_DB_MASK);
}

static int vmx_emul_failure(struct kvmx_vcpu *vcpu)
{
	u64 data[2] = { to_vmx(vcpu)->exit_reason, vmcs_readl(GUEST_RIP) };

	kvmx_internal_error(vcpu, KVM_INTERNAL_ERROR_EMULATION, 2, data);
	return 0;
}

const struct kvmx_emul_ops vmx_emul_ops = {
	.get_rip = vmx_emul_get_rip,
	.set_rip = vmx_emul_set_rip,
	.get_rflags = vmx_emul_get_rflags,
	.set_rflags = vmx_emul_set_rflags,
	.seg_base = vmx_emul_seg_base,
	.get_paging = vmx_get_paging,
	.cpu_mode = vmx_cpu_mode,
	.emulation_failure = vmx_emul_failure,
};

int vmx_complete_userspace_io(struct kvmx_vcpu *vcpu)
{
	return kvmx_emul_complete_userspace_io(vcpu, &to_vmx(vcpu)->emul);
}
