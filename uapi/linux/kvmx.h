/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kvmx extensions to the KVM ioctl ABI.
 *
 * /dev/kvmx speaks the ABI of <linux/kvm.h> unchanged.  What kvmx adds lives
 * here, in number ranges that upstream KVM can never reach:
 *
 *  - Capabilities start at KVMX_CAP_BASE.  Upstream KVM numbers its
 *    capabilities densely from 0 and is in the low hundreds; the base leaves
 *    that space alone forever.
 *  - ioctls use their own type byte, KVMXIO, not KVM's KVMIO (0xAE), so no
 *    upstream KVM ioctl number can equal one of ours on a kvmx fd.  Numbers
 *    0x80-0xff of that type are kvmx's (0x00-0x1f are fsl_hypervisor's).
 *
 * Every extension is discoverable with KVM_CHECK_EXTENSION and off by
 * default.  docs/abi.md describes each one.
 */
#ifndef _UAPI_LINUX_KVMX_H
#define _UAPI_LINUX_KVMX_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define KVMXIO			0xAF
#define KVMX_IOCTL_NR_BASE	0x80

#define KVMX_CAP_BASE		0x4b580000	/* 'K' 'X' << 16 */

/*
 * KVMX_CAP_KVMX: answered only by kvmx.  KVM_CHECK_EXTENSION returns the kvmx
 * ABI revision (>= 1); in-tree KVM returns 0.  Lets a VMM or a test tell the
 * two apart without looking at the device path.
 */
#define KVMX_CAP_KVMX		(KVMX_CAP_BASE + 0)
#define KVMX_ABI_REVISION	1

/*
 * KVMX_CAP_MMU_MODE: which MMU translates a VM's guest addresses.
 *
 *  - KVM_CHECK_EXTENSION on /dev/kvmx: the modes this host offers, as a mask
 *    of KVMX_MMU_MODE_* (two-dimensional paging only when the CPU has
 *    NPT/EPT).
 *  - KVM_CHECK_EXTENSION on a VM fd: the VM's mode, one KVMX_MMU_MODE_*.
 *    New VMs take the module default (kvmx.tdp=).
 *  - KVM_ENABLE_CAP on a VM fd, args[0] = one KVMX_MMU_MODE_*, flags and
 *    args[1..3] zero: sets the VM's mode.  -EINVAL for an unknown mode or a
 *    nonzero field, -EOPNOTSUPP for a mode the host does not offer, -EBUSY
 *    once the VM has a vCPU.
 */
#define KVMX_CAP_MMU_MODE	(KVMX_CAP_BASE + 1)
#define KVMX_MMU_MODE_TDP	1U	/* NPT (AMD) or EPT (Intel) */
#define KVMX_MMU_MODE_SHADOW	2U	/* shadow page tables */

/*
 * KVMX_CAP_REAL_MODE: whether vCPUs run with CR0.PE clear (real mode).
 *
 *  - KVM_CHECK_EXTENSION on /dev/kvmx: the mask of KVMX_MMU_MODE_* in which
 *    they do (a subset of what KVMX_CAP_MMU_MODE reports there).
 *  - KVM_CHECK_EXTENSION on a VM fd: 1 if this VM's vCPUs do, else 0.
 *
 * Intel VMX runs real mode only as an "unrestricted guest", which needs
 * EPT; kvmx-intel's shadow-paging VMs therefore do not run it (in-tree KVM
 * emulates it there with virtual-8086 mode and its instruction emulator).
 * KVM_RUN of such a vCPU with CR0.PE clear - its reset state, or a guest
 * that cleared PE itself - exits with KVM_EXIT_FAIL_ENTRY and
 * hardware_entry_failure_reason 0x80000021 (VM-entry failure: invalid
 * guest state), what the hardware reports for that state, with nothing of
 * the vCPU's state changed.  Setting protected mode (KVM_SET_SREGS) makes
 * the vCPU runnable again.
 */
#define KVMX_CAP_REAL_MODE	(KVMX_CAP_BASE + 2)

#endif /* _UAPI_LINUX_KVMX_H */
