/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every vendor hook, listed once.
 *
 * KVMX_VENDOR_OP(): mandatory; the core refuses a backend that leaves it NULL.
 * KVMX_VENDOR_OP_VCPU(): what running vCPUs takes.  All or none: a backend
 * that fills vcpu_create must fill every one of them; a backend that leaves
 * vcpu_create NULL leaves them all NULL, and the core then offers VMs without
 * vCPUs (KVM_CAP_MAX_VCPUS reads 0).  That is how a backend is brought up in
 * steps without lying about what it can do.
 * KVMX_VENDOR_OP_OPTIONAL(): may be NULL; the core checks before calling it.
 *
 * Users define the three macros, include this file, and get them undefined
 * again.
 */
#if !defined(KVMX_VENDOR_OP) || !defined(KVMX_VENDOR_OP_OPTIONAL) || \
	!defined(KVMX_VENDOR_OP_VCPU)
#error "define KVMX_VENDOR_OP, KVMX_VENDOR_OP_VCPU and KVMX_VENDOR_OP_OPTIONAL before including"
#endif

/* Can this CPU run the backend at all?  Asked at registration. */
KVMX_VENDOR_OP(check_hardware)

/* Per-CPU virtualization on/off, driven by the core's VM count and CPU hotplug. */
KVMX_VENDOR_OP_VCPU(hardware_enable)
KVMX_VENDOR_OP_VCPU(hardware_disable)
KVMX_VENDOR_OP_OPTIONAL(emergency_disable)

/* Set up / tear down the vendor part of a VM (embedded in struct kvmx_vm). */
KVMX_VENDOR_OP(vm_init)
KVMX_VENDOR_OP_OPTIONAL(vm_destroy)

/* vCPU life cycle and scheduling. */
KVMX_VENDOR_OP_VCPU(vcpu_create)
KVMX_VENDOR_OP_VCPU(vcpu_free)
KVMX_VENDOR_OP_VCPU(vcpu_load)
KVMX_VENDOR_OP_VCPU(vcpu_put)
KVMX_VENDOR_OP_VCPU(vcpu_run)
KVMX_VENDOR_OP_VCPU(complete_userspace_io)

/* Register state. */
KVMX_VENDOR_OP_VCPU(get_regs)
KVMX_VENDOR_OP_VCPU(set_regs)
KVMX_VENDOR_OP_VCPU(get_sregs)
KVMX_VENDOR_OP_VCPU(set_sregs)
KVMX_VENDOR_OP_VCPU(get_msr)
KVMX_VENDOR_OP_VCPU(set_msr)
KVMX_VENDOR_OP_VCPU(get_events)
KVMX_VENDOR_OP_VCPU(set_events)
KVMX_VENDOR_OP_VCPU(interrupt_allowed)
KVMX_VENDOR_OP_VCPU(get_if_flag)

#undef KVMX_VENDOR_OP
#undef KVMX_VENDOR_OP_VCPU
#undef KVMX_VENDOR_OP_OPTIONAL
