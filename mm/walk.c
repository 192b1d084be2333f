// SPDX-License-Identifier: GPL-2.0
/*
 * A small guest page-table walker: guest-virtual (linear) to guest-physical
 * for reading instruction bytes and string operands.  Reads only, sets no
 * accessed bits, checks presence only: the hardware already ran the access
 * and took no guest #PF, so the translation is the one it used (barring a
 * concurrent change by another vCPU, where the caller's retry is harmless).
 */
#include <linux/mm.h>
#include <linux/kvm.h>
#include <asm/processor-flags.h>
#include <asm/msr-index.h>

#include <kvmx/kvmx_host.h>
#include <kvmx/walk.h>

#define GPTE_P		BIT_ULL(0)
#define GPTE_PS		BIT_ULL(7)
#define GPTE_ADDR	GENMASK_ULL(51, 12)

static int walk_read(struct kvmx_vm *vm, gpa_t gpa, void *v, int len)
{
	return kvmx_read_guest(vm, gpa, v, len);
}

/**
 * kvmx_gva_to_gpa - translate @gva through the guest's paging structures
 * @vm: the VM (srcu_read_lock(&vm->srcu) held by the caller)
 * @p: the guest's CR0, CR3, CR4 and EFER
 * @gva: linear address
 * @gpa: result
 *
 * Returns 0, or -EFAULT when a level is not present or not in a memslot.
 */
int kvmx_gva_to_gpa(struct kvmx_vm *vm, const struct kvmx_paging *p, u64 gva, gpa_t *gpa)
{
	int level, levels, shift;
	u64 table, e = 0;

	if (!(p->cr0 & X86_CR0_PG)) {
		*gpa = gva & 0xffffffffULL;
		if (p->efer & EFER_LMA)
			*gpa = gva;
		return 0;
	}

	if (!(p->cr4 & X86_CR4_PAE)) {
		/* Two levels of 32-bit entries; 4 MiB pages with CR4.PSE. */
		u32 e32;

		table = p->cr3 & 0xfffff000ULL;
		if (walk_read(vm, table + ((gva >> 22) & 0x3ff) * 4, &e32, 4) || !(e32 & 1))
			return -EFAULT;
		if ((e32 & GPTE_PS) && (p->cr4 & X86_CR4_PSE)) {
			*gpa = ((u64)(e32 & 0xffc00000) | ((u64)(e32 & 0x1fe000) << 19)) +
			       (gva & 0x3fffff);
			return 0;
		}
		table = e32 & 0xfffff000;
		if (walk_read(vm, table + ((gva >> 12) & 0x3ff) * 4, &e32, 4) || !(e32 & 1))
			return -EFAULT;
		*gpa = (e32 & 0xfffff000) + (gva & 0xfff);
		return 0;
	}

	if (!(p->efer & EFER_LMA)) {
		/* PAE: the PDPTE is picked by bits 31:30 from a 32-byte aligned CR3. */
		table = p->cr3 & 0xffffffe0ULL;
		if (walk_read(vm, table + ((gva >> 30) & 3) * 8, &e, 8) || !(e & GPTE_P))
			return -EFAULT;
		table = e & GPTE_ADDR;
		levels = 2;
	} else {
		table = p->cr3 & GPTE_ADDR;
		levels = (p->cr4 & X86_CR4_LA57) ? 5 : 4;
	}

	for (level = levels; level >= 1; level--) {
		shift = 12 + 9 * (level - 1);
		if (walk_read(vm, table + ((gva >> shift) & 0x1ff) * 8, &e, 8) || !(e & GPTE_P))
			return -EFAULT;
		if (level == 1 || (level <= 3 && (e & GPTE_PS))) {
			u64 mask = (1ULL << shift) - 1;

			*gpa = ((e & GPTE_ADDR) & ~mask) | (gva & mask);
			return 0;
		}
		table = e & GPTE_ADDR;
	}
	return -EFAULT;
}
EXPORT_SYMBOL_GPL(kvmx_gva_to_gpa);

/**
 * kvmx_read_guest_virt - copy @len bytes at linear address @gva
 * @vm: the VM (srcu read side held)
 * @p: the guest's paging state
 * @gva: linear address
 * @data: destination
 * @len: bytes
 *
 * Returns the number of bytes copied before the first untranslatable page.
 */
int kvmx_read_guest_virt(struct kvmx_vm *vm, const struct kvmx_paging *p, u64 gva,
			 void *data, int len)
{
	int done = 0;

	while (done < len) {
		int n = min_t(int, len - done, PAGE_SIZE - offset_in_page(gva + done));
		gpa_t gpa;

		if (kvmx_gva_to_gpa(vm, p, gva + done, &gpa) ||
		    walk_read(vm, gpa, data + done, n))
			break;
		done += n;
	}
	return done;
}
EXPORT_SYMBOL_GPL(kvmx_read_guest_virt);
