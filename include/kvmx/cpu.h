/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _KVMX_ARCH_X86_CPU_H
#define _KVMX_ARCH_X86_CPU_H

/* The host CPU maker, for messages that tell the user which module to load. */
const char *kvmx_host_vendor_name(void);

#endif
