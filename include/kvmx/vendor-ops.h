/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every vendor hook, listed once.  KVMX_VENDOR_OP() is mandatory: the core
 * refuses to register a backend that leaves it NULL.  KVMX_VENDOR_OP_OPTIONAL()
 * may be NULL and the core checks before calling it.
 *
 * Users define the two macros, include this file, and get them undefined again.
 */
#if !defined(KVMX_VENDOR_OP) || !defined(KVMX_VENDOR_OP_OPTIONAL)
#error "define KVMX_VENDOR_OP and KVMX_VENDOR_OP_OPTIONAL before including"
#endif

/* Set up / tear down the vendor part of a VM (embedded in struct kvmx_vm). */
KVMX_VENDOR_OP(vm_init)
KVMX_VENDOR_OP_OPTIONAL(vm_destroy)

#undef KVMX_VENDOR_OP
#undef KVMX_VENDOR_OP_OPTIONAL
