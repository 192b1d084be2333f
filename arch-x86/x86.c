// SPDX-License-Identifier: GPL-2.0
/*
 * x86 state the core owns: the CPUID table of a vCPU, the CPUID and MSR lists
 * of the system fd, KVM_GET/SET_MSRS framing and XCR0.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/kvm.h>
#include <asm/cpufeature.h>
#include <asm/fpu/xcr.h>
#include <asm/msr-index.h>
#include <asm/processor.h>

#include <kvmx/walk.h>

#include "../kmod/core.h"
#include "emulate/decode.h"

/* The decoder is pure C shared with userspace tests; the backends call it here. */
EXPORT_SYMBOL_GPL(kvmx_decode);

/* As KVM's MAX_IO_MSRS: the largest KVM_GET/SET_MSRS batch. */
#define KVMX_MAX_IO_MSRS	256

/*
 * XCR0 bits a guest may enable: x87, SSE and AVX, where the host has them.
 * Larger state (AVX-512, AMX, PKRU) is not offered yet.
 */
u64 kvmx_supported_xcr0(void)
{
	if (!boot_cpu_has(X86_FEATURE_XSAVE))
		return 0;
	return xgetbv(XCR_XFEATURE_ENABLED_MASK) &
	       (XFEATURE_MASK_FP | XFEATURE_MASK_SSE | XFEATURE_MASK_YMM);
}

/* The XCR0 bits the guest's CPUID leaf 0xD advertises, as KVM computes it. */
static u64 kvmx_guest_supported_xcr0(struct kvmx_vcpu *vcpu)
{
	const struct kvm_cpuid_entry2 *e = kvmx_find_cpuid_entry(vcpu, 0xd, 0);

	if (!e)
		return XFEATURE_MASK_FP;
	return (e->eax | ((u64)e->edx << 32)) & kvmx_supported_xcr0();
}

/* The checks of KVM's __kvm_set_xcr() for XCR0. */
int kvmx_set_xcr0(struct kvmx_vcpu *vcpu, u64 xcr0)
{
	u64 valid = kvmx_guest_supported_xcr0(vcpu) | XFEATURE_MASK_FP;

	if (!(xcr0 & XFEATURE_MASK_FP))
		return 1;
	if ((xcr0 & XFEATURE_MASK_YMM) && !(xcr0 & XFEATURE_MASK_SSE))
		return 1;
	if (xcr0 & ~valid)
		return 1;
	vcpu->xcr0 = xcr0;
	return 0;
}
EXPORT_SYMBOL_GPL(kvmx_set_xcr0);

const struct kvm_cpuid_entry2 *kvmx_find_cpuid_entry(struct kvmx_vcpu *vcpu,
						     u32 function, u32 index)
{
	int i;

	for (i = 0; i < vcpu->cpuid_nent; i++) {
		const struct kvm_cpuid_entry2 *e = &vcpu->cpuid_entries[i];

		if (e->function != function)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != index)
			continue;
		return e;
	}
	return NULL;
}
EXPORT_SYMBOL_GPL(kvmx_find_cpuid_entry);

/* Feature bits per register that a guest can use as they are on the host. */
#define F(x) BIT(X86_FEATURE_##x & 31)

static void kvmx_cpuid_leaf(struct kvm_cpuid_entry2 *e, u32 function, u32 index)
{
	u32 eax, ebx, ecx, edx;

	cpuid_count(function, index, &eax, &ebx, &ecx, &edx);
	e->function = function;
	e->index = index;
	e->eax = eax;
	e->ebx = ebx;
	e->ecx = ecx;
	e->edx = edx;

	switch (function) {
	case 0:
		e->eax = min(eax, 0xdU);
		break;
	case 1:
		e->ecx &= F(XMM3) | F(PCLMULQDQ) | F(SSSE3) | F(FMA) | F(CX16) |
			  F(XMM4_1) | F(XMM4_2) | F(MOVBE) | F(POPCNT) | F(AES) |
			  F(XSAVE) | F(AVX) | F(F16C) | F(RDRAND);
		e->ecx |= F(HYPERVISOR);
		e->edx &= F(FPU) | F(VME) | F(DE) | F(PSE) | F(TSC) | F(MSR) |
			  F(PAE) | F(CX8) | F(SEP) | F(PGE) | F(CMOV) | F(PAT) |
			  F(PSE36) | F(CLFLUSH) | F(MMX) | F(FXSR) | F(XMM) | F(XMM2);
		/* One logical CPU per package; no APIC ID to report. */
		e->ebx &= 0xffff;
		break;
	case 7:
		e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		if (index) {
			e->eax = 0;
			e->ebx = 0;
			e->ecx = 0;
			e->edx = 0;
			break;
		}
		e->eax = 0;
		e->ebx &= F(FSGSBASE) | F(BMI1) | F(AVX2) | F(SMEP) | F(BMI2) |
			  F(ERMS) | F(SMAP) | F(ADX) | F(RDSEED) | F(CLFLUSHOPT) |
			  F(SHA_NI);
		e->ecx = 0;
		e->edx = 0;
		break;
	case 0xd:
		e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		if (index == 0) {
			u64 xcr0 = kvmx_supported_xcr0();

			e->eax = (u32)xcr0;
			e->edx = xcr0 >> 32;
			/* ECX: the size XCR0's features need at most. */
			e->ecx = (xcr0 & XFEATURE_MASK_YMM) ? 832 : 576;
			e->ebx = e->ecx;
		} else if (index == 1) {
			e->eax &= F(XSAVEOPT);
			e->ebx = 0;
			e->ecx = 0;
			e->edx = 0;
		}
		break;
	case 0x80000000:
		e->eax = min(eax, 0x80000008U);
		break;
	case 0x80000001:
		e->ecx &= F(LAHF_LM) | F(ABM) | F(SSE4A) | F(3DNOWPREFETCH) | F(MISALIGNSSE);
		e->edx &= F(SYSCALL) | F(NX) | F(GBPAGES) | F(LM) | F(FPU) | F(VME) |
			  F(DE) | F(PSE) | F(TSC) | F(MSR) | F(PAE) | F(CX8) |
			  F(PGE) | F(CMOV) | F(PAT) | F(PSE36) | F(MMX) | F(FXSR);
		break;
	case 0x80000008:
		e->ebx = 0;
		e->ecx = 0;
		e->edx = 0;
		break;
	default:
		break;
	}
}

#undef F

static const u32 kvmx_cpuid_leaves[][2] = {
	{ 0, 0 }, { 1, 0 }, { 7, 0 }, { 0xd, 0 }, { 0xd, 1 }, { 0xd, 2 },
	{ 0x80000000, 0 }, { 0x80000001, 0 }, { 0x80000002, 0 }, { 0x80000003, 0 },
	{ 0x80000004, 0 }, { 0x80000005, 0 }, { 0x80000006, 0 }, { 0x80000008, 0 },
};

/* KVM_GET_SUPPORTED_CPUID, with KVM's -E2BIG rules. */
long kvmx_dev_get_supported_cpuid(struct kvm_cpuid2 __user *ucpuid)
{
	struct kvm_cpuid_entry2 *entries;
	struct kvm_cpuid2 cpuid;
	u32 i, n = 0, max_basic, max_ext;
	long r;

	if (copy_from_user(&cpuid, ucpuid, sizeof(cpuid)))
		return -EFAULT;
	if (cpuid.nent < 1)
		return -E2BIG;
	if (cpuid.nent > KVMX_MAX_CPUID_ENTRIES)
		cpuid.nent = KVMX_MAX_CPUID_ENTRIES;

	entries = kcalloc(ARRAY_SIZE(kvmx_cpuid_leaves), sizeof(*entries), GFP_KERNEL);
	if (!entries)
		return -ENOMEM;
	max_basic = min(cpuid_eax(0), 0xdU);
	max_ext = min(cpuid_eax(0x80000000), 0x80000008U);
	for (i = 0; i < ARRAY_SIZE(kvmx_cpuid_leaves); i++) {
		u32 f = kvmx_cpuid_leaves[i][0];

		if (f < 0x80000000 ? f > max_basic : f > max_ext)
			continue;
		if (f == 0xd && !boot_cpu_has(X86_FEATURE_XSAVE))
			continue;
		if (f == 0xd && kvmx_cpuid_leaves[i][1] == 2 &&
		    !(kvmx_supported_xcr0() & XFEATURE_MASK_YMM))
			continue;
		kvmx_cpuid_leaf(&entries[n++], f, kvmx_cpuid_leaves[i][1]);
	}

	r = -E2BIG;
	if (n > cpuid.nent)
		goto out;
	r = -EFAULT;
	cpuid.nent = n;
	if (copy_to_user(ucpuid, &cpuid, sizeof(cpuid)) ||
	    copy_to_user(ucpuid->entries, entries, n * sizeof(*entries)))
		goto out;
	r = 0;
out:
	kfree(entries);
	return r;
}

/* MSRs KVM_GET/SET_MSRS handle (KVM_GET_MSR_INDEX_LIST). */
static const u32 kvmx_msrs[] = {
	MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
	MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK, MSR_KERNEL_GS_BASE,
	MSR_FS_BASE, MSR_GS_BASE, MSR_EFER, MSR_IA32_TSC, MSR_IA32_CR_PAT,
	MSR_IA32_APICBASE, MSR_IA32_MISC_ENABLE,
};

/* Feature MSRs readable on the system fd (KVM_GET_MSR_FEATURE_INDEX_LIST). */
static const u32 kvmx_feature_msrs[] = {
	MSR_IA32_UCODE_REV,
};

static long kvmx_copy_msr_list(struct kvm_msr_list __user *ulist, const u32 *list, u32 nr)
{
	struct kvm_msr_list hdr;
	u32 n;

	if (copy_from_user(&hdr, ulist, sizeof(hdr)))
		return -EFAULT;
	n = hdr.nmsrs;
	hdr.nmsrs = nr;
	if (copy_to_user(ulist, &hdr, sizeof(hdr)))
		return -EFAULT;
	if (n < nr)
		return -E2BIG;
	if (copy_to_user(ulist->indices, list, nr * sizeof(u32)))
		return -EFAULT;
	return 0;
}

long kvmx_dev_get_msr_index_list(struct kvm_msr_list __user *ulist, bool features)
{
	if (features)
		return kvmx_copy_msr_list(ulist, kvmx_feature_msrs,
					  ARRAY_SIZE(kvmx_feature_msrs));
	return kvmx_copy_msr_list(ulist, kvmx_msrs, ARRAY_SIZE(kvmx_msrs));
}

/* KVM_GET_MSRS on the system fd: feature MSRs only. */
long kvmx_dev_get_feature_msrs(struct kvm_msrs __user *umsrs)
{
	struct kvm_msr_entry *entries;
	struct kvm_msrs msrs;
	long r;
	u32 i;

	if (copy_from_user(&msrs, umsrs, sizeof(msrs)))
		return -EFAULT;
	if (msrs.nmsrs >= KVMX_MAX_IO_MSRS)
		return -E2BIG;
	entries = memdup_user(umsrs->entries, msrs.nmsrs * sizeof(*entries));
	if (IS_ERR(entries))
		return PTR_ERR(entries);
	for (i = 0; i < msrs.nmsrs; i++) {
		if (entries[i].index != MSR_IA32_UCODE_REV)
			break;
		if (rdmsrl_safe(MSR_IA32_UCODE_REV, &entries[i].data))
			break;
	}
	r = i;
	if (copy_to_user(umsrs->entries, entries, msrs.nmsrs * sizeof(*entries)))
		r = -EFAULT;
	kfree(entries);
	return r;
}

/* KVM_GET_MSRS / KVM_SET_MSRS on a vCPU: the number done, stopping at the first failure. */
long kvmx_vcpu_msrs(struct kvmx_vcpu *vcpu, struct kvm_msrs __user *umsrs, bool set)
{
	struct kvm_msr_entry *entries;
	struct kvm_msrs msrs;
	long r;
	u32 i;

	lockdep_assert_held(&vcpu->mutex);
	if (copy_from_user(&msrs, umsrs, sizeof(msrs)))
		return -EFAULT;
	if (msrs.nmsrs >= KVMX_MAX_IO_MSRS)
		return -E2BIG;
	entries = memdup_user(umsrs->entries, msrs.nmsrs * sizeof(*entries));
	if (IS_ERR(entries))
		return PTR_ERR(entries);
	for (i = 0; i < msrs.nmsrs; i++) {
		if (set ? kvmx_vendor->set_msr(vcpu, entries[i].index, entries[i].data, true)
			: kvmx_vendor->get_msr(vcpu, entries[i].index, &entries[i].data, true))
			break;
	}
	r = i;
	if (!set && copy_to_user(umsrs->entries, entries, msrs.nmsrs * sizeof(*entries)))
		r = -EFAULT;
	kfree(entries);
	return r;
}

/* Bits the CPU derives from its state (KVM's __kvm_update_cpuid_runtime()). */
static void kvmx_cpuid_runtime_mask(const struct kvm_cpuid_entry2 *e, u32 *ebx,
				    u32 *ecx, u32 *edx)
{
	*ebx = e->ebx;
	*ecx = e->ecx;
	*edx = e->edx;
	if (e->function == 1) {
		*ecx &= ~BIT(X86_FEATURE_OSXSAVE & 31);
		*edx &= ~BIT(X86_FEATURE_APIC & 31);
	} else if (e->function == 7 && e->index == 0) {
		*ecx &= ~BIT(X86_FEATURE_OSPKE & 31);
	} else if (e->function == 0xd && (e->index == 0 || e->index == 1)) {
		*ebx = 0;	/* the XSAVE size of the current XCR0/XSS */
	}
}

/*
 * Once a vCPU has run, KVM takes KVM_SET_CPUID2 only when it changes
 * nothing (kvm_cpuid_check_equal()): the guest may already have acted on
 * what it read.  Bits the CPU keeps in step with its state are not compared.
 */
static bool kvmx_cpuid_equal(struct kvmx_vcpu *vcpu, const struct kvm_cpuid_entry2 *e2,
			     int nent)
{
	int i;

	if (nent != vcpu->cpuid_nent)
		return false;
	for (i = 0; i < nent; i++) {
		const struct kvm_cpuid_entry2 *a = &vcpu->cpuid_entries[i], *b = &e2[i];
		u32 abx, acx, adx, bbx, bcx, bdx;

		kvmx_cpuid_runtime_mask(a, &abx, &acx, &adx);
		kvmx_cpuid_runtime_mask(b, &bbx, &bcx, &bdx);
		if (a->function != b->function || a->index != b->index ||
		    a->flags != b->flags || a->eax != b->eax ||
		    abx != bbx || acx != bcx || adx != bdx)
			return false;
	}
	return true;
}

/* Does the guest's CPUID table have feature @bit (X86_FEATURE_*) in @leaf.@reg? */
static bool kvmx_guest_has(struct kvmx_vcpu *vcpu, u32 leaf, int reg, int bit)
{
	const struct kvm_cpuid_entry2 *e = kvmx_find_cpuid_entry(vcpu, leaf, 0);
	u32 val;

	if (!e)
		return false;
	val = reg == CPUID_EBX ? e->ebx : reg == CPUID_ECX ? e->ecx : e->edx;
	return val & BIT(bit & 31);
}

/*
 * CR4 bits a guest may not set (KVM's cr4_reserved_bits and
 * cr4_guest_rsvd_bits): bits no CPU has, bits for features kvmx does not
 * offer, and, once KVM_SET_CPUID2 was called, bits for features the guest's
 * CPUID does not list.
 */
u64 kvmx_cr4_reserved_bits(struct kvmx_vcpu *vcpu)
{
	static const struct {
		u64 cr4;
		u32 leaf;
		int reg, feature;
	} deps[] = {
		{ X86_CR4_OSXSAVE, 1, CPUID_ECX, X86_FEATURE_XSAVE },
		{ X86_CR4_SMEP, 7, CPUID_EBX, X86_FEATURE_SMEP },
		{ X86_CR4_SMAP, 7, CPUID_EBX, X86_FEATURE_SMAP },
		{ X86_CR4_FSGSBASE, 7, CPUID_EBX, X86_FEATURE_FSGSBASE },
	};
	u64 rsvd = ~(u64)(X86_CR4_VME | X86_CR4_PVI | X86_CR4_TSD | X86_CR4_DE |
			  X86_CR4_PSE | X86_CR4_PAE | X86_CR4_MCE | X86_CR4_PGE |
			  X86_CR4_PCE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT |
			  X86_CR4_OSXSAVE | X86_CR4_SMEP | X86_CR4_SMAP |
			  X86_CR4_FSGSBASE);
	int i;

	/* Not offered: PCID, PKU, LA57, UMIP, VMX (see kvmx_cpuid_leaf()). */
	for (i = 0; i < ARRAY_SIZE(deps); i++) {
		if (!boot_cpu_has(deps[i].feature) ||
		    (vcpu->cpuid_set &&
		     !kvmx_guest_has(vcpu, deps[i].leaf, deps[i].reg, deps[i].feature)))
			rsvd |= deps[i].cr4;
	}
	return rsvd;
}
EXPORT_SYMBOL_GPL(kvmx_cr4_reserved_bits);

/* MAXPHYADDR of the guest's CPUID, 36 without leaf 0x80000008 (KVM's cpuid_maxphyaddr()). */
static int kvmx_guest_maxphyaddr(struct kvmx_vcpu *vcpu)
{
	const struct kvm_cpuid_entry2 *e = kvmx_find_cpuid_entry(vcpu, 0x80000000, 0);

	if (!e || e->eax < 0x80000008)
		return 36;
	e = kvmx_find_cpuid_entry(vcpu, 0x80000008, 0);
	return e ? e->eax & 0xff : 36;
}

/* "AuthenticAMD" in CPUID leaf 0's EBX. */
#define KVMX_AMD_EBX	0x68747541

/*
 * What the guest's CPUID says about its paging, for the walker: MAXPHYADDR
 * (36 without leaf 0x80000008, as KVM), 1 GiB pages, PSE-36, and AMD's
 * reserved bit 8 of PML4Es.
 */
void kvmx_paging_model(struct kvmx_vcpu *vcpu, struct kvmx_paging *p)
{
	const struct kvm_cpuid_entry2 *e;

	p->maxphyaddr = kvmx_guest_maxphyaddr(vcpu) ?: 36;
	e = kvmx_find_cpuid_entry(vcpu, 0x80000001, 0);
	if (!e || !(e->edx & BIT(X86_FEATURE_GBPAGES & 31)))
		p->model |= KVMX_MODEL_NO_GBPAGES;
	e = kvmx_find_cpuid_entry(vcpu, 1, 0);
	if (!e || !(e->edx & BIT(X86_FEATURE_PSE36 & 31)))
		p->model |= KVMX_MODEL_NO_PSE36;
	e = kvmx_find_cpuid_entry(vcpu, 0, 0);
	if (e && e->ebx == KVMX_AMD_EBX)
		p->model |= KVMX_MODEL_AMD;
}
EXPORT_SYMBOL_GPL(kvmx_paging_model);

/*
 * Whether @pat may go into IA32_PAT: every entry one of the memory types
 * UC (0), WC (1), WT (4), WP (5), WB (6) or UC- (7) (SDM: "PAT").
 */
bool kvmx_pat_valid(u64 pat)
{
	int i;

	for (i = 0; i < 8; i++) {
		u8 t = (pat >> (8 * i)) & 0xff;

		if (t != 0 && t != 1 && t != 4 && t != 5 && t != 6 && t != 7)
			return false;
	}
	return true;
}
EXPORT_SYMBOL_GPL(kvmx_pat_valid);

/*
 * Whether @data may go into IA32_APIC_BASE (KVM's kvm_set_apic_base()):
 * no reserved or beyond-MAXPHYADDR bits, x2APIC only if the guest's CPUID
 * has it, never x2APIC without the global enable; a guest write may not go
 * from x2APIC back to xAPIC, nor from disabled straight to x2APIC.
 */
bool kvmx_apic_base_valid(struct kvmx_vcpu *vcpu, u64 old, u64 data, bool host)
{
	const u64 en = MSR_IA32_APICBASE_ENABLE, extd = X2APIC_ENABLE;
	u64 rsvd = GENMASK_ULL(63, kvmx_guest_maxphyaddr(vcpu)) | 0x2ff;

	if (!kvmx_guest_has(vcpu, 1, CPUID_ECX, X86_FEATURE_X2APIC))
		rsvd |= extd;
	if ((data & rsvd) || (data & (en | extd)) == extd)
		return false;
	if (host)
		return true;
	if ((old & (en | extd)) == (en | extd) && (data & (en | extd)) == en)
		return false;
	return (old & en) || !(data & extd);
}
EXPORT_SYMBOL_GPL(kvmx_apic_base_valid);

/**
 * kvmx_sregs_valid - may KVM_SET_SREGS load @sr
 * @vcpu: the vCPU
 * @sr: what userspace asks for
 * @cr4_reserved: CR4 bits the vCPU cannot take: kvmx_cr4_reserved_bits() and
 *	whatever the vendor's hardware adds
 * @apic_base: the vCPU's IA32_APIC_BASE now
 *
 * The checks of KVM's kvm_is_valid_sregs(), kvm_is_valid_cr4() and
 * kvm_set_apic_base() that apply to what kvmx offers; the caller fails
 * with -EINVAL when this is false.
 */
bool kvmx_sregs_valid(struct kvmx_vcpu *vcpu, const struct kvm_sregs *sr, u64 cr4_reserved,
		      u64 apic_base)
{
	if ((sr->efer & EFER_LME) && (sr->cr0 & X86_CR0_PG)) {
		if (!(sr->cr4 & X86_CR4_PAE) || !(sr->efer & EFER_LMA))
			return false;
	} else if ((sr->efer & EFER_LMA) || sr->cs.l) {
		return false;
	}
	if ((sr->cr0 & X86_CR0_PG) && !(sr->cr0 & X86_CR0_PE))
		return false;
	if ((sr->cr0 & X86_CR0_NW) && !(sr->cr0 & X86_CR0_CD))
		return false;
	if (sr->cr0 >> 32 || sr->cr4 >> 32)
		return false;
	if (sr->cr4 & cr4_reserved)
		return false;
	if (sr->efer & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NX | EFER_FFXSR))
		return false;
	return kvmx_apic_base_valid(vcpu, apic_base, sr->apic_base, true);
}
EXPORT_SYMBOL_GPL(kvmx_sregs_valid);

/* The checks of KVM's kvm_check_cpuid() that apply to what kvmx offers. */
static int kvmx_check_cpuid(const struct kvm_cpuid_entry2 *e2, int nent)
{
	int i;

	for (i = 0; i < nent; i++) {
		u32 vaddr_bits = (e2[i].eax >> 8) & 0xff;

		if (e2[i].function == 0x80000008 && vaddr_bits != 0 &&
		    vaddr_bits != 48 && vaddr_bits != 57)
			return -EINVAL;
	}
	return 0;
}

long kvmx_vcpu_set_cpuid2(struct kvmx_vcpu *vcpu, struct kvm_cpuid2 __user *ucpuid)
{
	struct kvm_cpuid_entry2 *entries = NULL;
	struct kvm_cpuid2 cpuid;
	long r;

	lockdep_assert_held(&vcpu->mutex);
	if (copy_from_user(&cpuid, ucpuid, sizeof(cpuid)))
		return -EFAULT;
	if (cpuid.nent > KVMX_MAX_CPUID_ENTRIES)
		return -E2BIG;
	if (cpuid.nent) {
		entries = memdup_user(ucpuid->entries, cpuid.nent * sizeof(*entries));
		if (IS_ERR(entries))
			return PTR_ERR(entries);
	}
	if (vcpu->has_run) {
		r = kvmx_cpuid_equal(vcpu, entries, cpuid.nent) ? 0 : -EINVAL;
		kfree(entries);
		return r;
	}
	r = kvmx_check_cpuid(entries, cpuid.nent);
	if (r) {
		kfree(entries);
		return r;
	}
	kfree(vcpu->cpuid_entries);
	vcpu->cpuid_set = true;
	vcpu->cpuid_entries = entries;
	vcpu->cpuid_nent = cpuid.nent;
	return 0;
}

long kvmx_vcpu_get_cpuid2(struct kvmx_vcpu *vcpu, struct kvm_cpuid2 __user *ucpuid)
{
	struct kvm_cpuid2 cpuid;

	lockdep_assert_held(&vcpu->mutex);
	if (copy_from_user(&cpuid, ucpuid, sizeof(cpuid)))
		return -EFAULT;
	if (cpuid.nent < vcpu->cpuid_nent)
		return -E2BIG;
	if (copy_to_user(ucpuid->entries, vcpu->cpuid_entries,
			 vcpu->cpuid_nent * sizeof(*vcpu->cpuid_entries)))
		return -EFAULT;
	cpuid.nent = vcpu->cpuid_nent;
	if (copy_to_user(ucpuid, &cpuid, sizeof(cpuid)))
		return -EFAULT;
	return 0;
}
