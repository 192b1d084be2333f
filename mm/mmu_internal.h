/* SPDX-License-Identifier: GPL-2.0 */
/* Shared by the two MMU modes of kvmx.ko: mm/npt.c and mm/shadow.c. */
#ifndef _KVMX_MMU_INTERNAL_H
#define _KVMX_MMU_INTERNAL_H

#include <kvmx/kvmx_host.h>

/*
 * The host page behind @hva, with a reference the caller drops once its
 * mapping is installed (or abandoned).  @write: the guest access was a
 * write.  *@writable: in, whether a writable mapping is wanted at all; out,
 * whether the page may be mapped writable.  Returns 0 or -errno.
 */
int kvmx_mmu_get_host_page(unsigned long hva, bool write, bool *writable,
			   struct page **page);
/* The retry test of the notifier protocol (mm/npt.c); under mmu.lock. */
bool kvmx_mmu_invalidated(struct kvmx_vm *vm, unsigned long seq, unsigned long hva);

/* Shadow-mode halves of the MMU entry points (mm/shadow.c); under mmu.lock. */
int kvmx_shadow_init(struct kvmx_vm *vm);
void kvmx_shadow_destroy(struct kvmx_vm *vm);
bool kvmx_shadow_zap_leaves(struct kvmx_vm *vm, gfn_t start, gfn_t end, bool wp);
/* Not under mmu.lock: takes it, and flushes the vCPUs' TLBs. */
void kvmx_shadow_zap_all(struct kvmx_vm *vm);

#endif /* _KVMX_MMU_INTERNAL_H */
