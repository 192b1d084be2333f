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

/* Per-CPU virtualization on/off, driven by the core's VM count and CPU hotplug. */
KVMX_VENDOR_OP(hardware_enable)
KVMX_VENDOR_OP(hardware_disable)

/* Set up / tear down the vendor part of a VM (embedded in struct kvmx_vm). */
KVMX_VENDOR_OP(vm_init)
KVMX_VENDOR_OP_OPTIONAL(vm_destroy)

/* vCPU life cycle and scheduling. */
KVMX_VENDOR_OP(vcpu_create)
KVMX_VENDOR_OP(vcpu_free)
KVMX_VENDOR_OP(vcpu_load)
KVMX_VENDOR_OP(vcpu_put)
KVMX_VENDOR_OP(vcpu_run)
KVMX_VENDOR_OP(complete_userspace_io)

/* Register state. */
KVMX_VENDOR_OP(get_regs)
KVMX_VENDOR_OP(set_regs)
KVMX_VENDOR_OP(get_sregs)
KVMX_VENDOR_OP(set_sregs)
KVMX_VENDOR_OP(get_msr)
KVMX_VENDOR_OP(set_msr)
KVMX_VENDOR_OP(get_events)
KVMX_VENDOR_OP(set_events)
KVMX_VENDOR_OP(interrupt_allowed)
KVMX_VENDOR_OP(get_if_flag)

#undef KVMX_VENDOR_OP
#undef KVMX_VENDOR_OP_OPTIONAL
