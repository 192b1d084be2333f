/* SPDX-License-Identifier: GPL-2.0 */
/* The guest page-table walker (mm/walk.c). */
#ifndef _KVMX_WALK_H
#define _KVMX_WALK_H

#include <linux/types.h>
#include <linux/kvm_types.h>

struct kvmx_vm;

/* The guest state a walk depends on. */
struct kvmx_paging {
	u64 cr0, cr3, cr4, efer;
};

int kvmx_gva_to_gpa(struct kvmx_vm *vm, const struct kvmx_paging *p, u64 gva, gpa_t *gpa);
int kvmx_read_guest_virt(struct kvmx_vm *vm, const struct kvmx_paging *p, u64 gva,
			 void *data, int len);

#endif /* _KVMX_WALK_H */
