/*
 * The report channel of assembly guests, usable from .S files and C++ alike.
 *
 * An assembly guest reports a stage by writing its number with a 4-byte OUT to KVMX_ASM_SYNC_PORT
 * (the kvmx_sync macro); the host reads the values from RBX, RCX, RSI, RDI and RBP with
 * KVM_GET_REGS, so one macro works in 16-, 32- and 64-bit code. The legacy exception stubs
 * (guest/legacy.S) write the vector to KVMX_ASM_EXCEPTION_PORT with the error code in EBX, the
 * faulting IP in ECX and CR2 in ESI. GuestVm::run() turns both into a HostUcall.
 */
#pragma once

#define KVMX_ASM_SYNC_PORT 0x7e4
#define KVMX_ASM_EXCEPTION_PORT 0x7e2

#ifdef __ASSEMBLER__
/* Report stage `stage`; clobbers EAX and EDX. */
.macro kvmx_sync stage
	movl $\stage, %eax
	movw $KVMX_ASM_SYNC_PORT, %dx
	outl %eax, %dx
.endm
#endif
