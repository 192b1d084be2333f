/* SPDX-License-Identifier: GPL-2.0 */
/* Declarations private to kvmx.ko. */
#ifndef _KVMX_CORE_H
#define _KVMX_CORE_H

#include <kvmx/kvmx_host.h>

/*
 * The registered backend.  Written under kvmx_vendor_lock by register and
 * unregister only.  Every file kvmx hands out (/dev/kvmx, VM fds) holds a
 * reference on the backend's module, so any code running on behalf of such a
 * file may read it without the lock: it cannot change underneath.
 */
extern const struct kvmx_vendor_ops *kvmx_vendor;

/* Module default for the VM's MMU mode (two-dimensional paging or shadow). */
extern bool kvmx_tdp_default;

long kvmx_check_extension(struct kvmx_vm *vm, long cap);
int kvmx_create_vm(unsigned long type);
void kvmx_vm_set_owner(struct module *owner);

#endif /* _KVMX_CORE_H */
