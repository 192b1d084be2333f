/*
 * Exception stubs of legacy-mode guests: 32-bit protected mode (interrupt gates of the host-built
 * IDT, run at their link addresses with flat segments) and real mode (IVT entries; the host copies
 * these position-independent stubs below 1 MiB). Every stub reports to the host and never
 * returns: vector with a 4-byte OUT to KVMX_ASM_EXCEPTION_PORT, error code in EBX (0 when the CPU
 * pushes none), faulting IP in ECX, CR2 in ESI (0 in real mode).
 */
#include "kvmx/guest/asm.h"

	.text

/* 32-bit stubs, stub n at kvmx_guest_vectors32 + 16 * n, same shape as the 64-bit ones. */
	.code32
	.altmacro
	.macro kvmx_vector32 n
	.org kvmx_guest_vectors32 + 16 * \n
	.if ((\n == 8) || ((\n >= 10) && (\n <= 14)) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30))
	.else
	pushl $0
	.endif
	pushl $\n
	jmp kvmx_guest_exception32
	.endm

	.globl kvmx_guest_vectors32
	.type kvmx_guest_vectors32, @function
	.balign 16
kvmx_guest_vectors32:
	.set vec, 0
	.rept 256
	kvmx_vector32 %vec
	.set vec, vec + 1
	.endr
	.org kvmx_guest_vectors32 + 16 * 256
	.size kvmx_guest_vectors32, . - kvmx_guest_vectors32

kvmx_guest_exception32:
	popl %eax		/* vector */
	popl %ebx		/* error code */
	movl (%esp), %ecx	/* EIP of the interrupt frame */
	movl %cr2, %esi
	movw $KVMX_ASM_EXCEPTION_PORT, %dx
1:	outl %eax, %dx
	jmp 1b

/*
 * Real-mode stubs, 8 bytes each: stub n at kvmx_guest_vectors16 + 8 * n. Only relative jumps, so
 * the block runs wherever the host copies it.
 */
	.code16
	.macro kvmx_vector16 n
	.org kvmx_guest_vectors16 + 8 * \n
	pushw $\n
	jmp kvmx_guest_exception16
	.endm

	.globl kvmx_guest_vectors16
	.globl kvmx_guest_vectors16_end
	.balign 16
kvmx_guest_vectors16:
	.set vec, 0
	.rept 256
	kvmx_vector16 %vec
	.set vec, vec + 1
	.endr
	.org kvmx_guest_vectors16 + 8 * 256
kvmx_guest_exception16:
	popw %ax		/* vector */
	movzwl %ax, %eax
	popw %cx		/* IP of the interrupt frame */
	movzwl %cx, %ecx
	xorl %ebx, %ebx
	xorl %esi, %esi
	movw $KVMX_ASM_EXCEPTION_PORT, %dx
1:	outl %eax, %dx
	jmp 1b
kvmx_guest_vectors16_end:

	.code64
	.section .note.GNU-stack, "", @progbits
