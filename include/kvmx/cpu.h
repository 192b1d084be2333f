/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _KVMX_ARCH_X86_CPU_H
#define _KVMX_ARCH_X86_CPU_H

/* The host CPU maker, for messages that tell the user which module to load. */
const char *kvmx_host_vendor_name(void);

struct kvmx_vcpu;

/* CPUID for the guest, from its KVM_SET_CPUID2 table (arch-x86/cpu.c). */
void kvmx_emulate_cpuid(struct kvmx_vcpu *vcpu, bool cr4_osxsave);

#endif
