/*
 * Guest runtime in assembly: exception stubs and the return trampoline of guest entry functions.
 * Runs inside the VM in 64-bit mode.
 */
	.text
	.code64

/*
 * One 16-byte stub per vector, stub n at kvmx_guest_vectors + 16 * n (the host builds the IDT
 * from that rule; .org fails the build if a stub outgrows its slot). Each pushes a dummy error
 * code where the CPU pushes none, then the vector, so every frame has the same shape.
 */
	.altmacro
	.macro kvmx_vector n
	.org kvmx_guest_vectors + 16 * \n
	.if ((\n == 8) || ((\n >= 10) && (\n <= 14)) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30))
	.else
	pushq $0
	.endif
	pushq $\n
	jmp kvmx_guest_exception_entry
	.endm

	.globl kvmx_guest_vectors
	.type kvmx_guest_vectors, @function
	.balign 16
kvmx_guest_vectors:
	.set vec, 0
	.rept 256
	kvmx_vector %vec
	.set vec, vec + 1
	.endr
	.org kvmx_guest_vectors + 16 * 256
	.size kvmx_guest_vectors, . - kvmx_guest_vectors

/* Save the GPRs in the order of struct ExceptionFrame (abi.h), call the C++ dispatcher. */
kvmx_guest_exception_entry:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	/* 22 quadwords below the 16-byte aligned interrupt frame: aligned for the call. */
	movq %rsp, %rdi
	cld
	call kvmx_guest_exception
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp		/* vector and error code */
	iretq

/* The host pushes this as the return address of the guest entry function. */
	.globl kvmx_guest_return
	.type kvmx_guest_return, @function
kvmx_guest_return:
	andq $-16, %rsp
	call kvmx_guest_returned
1:	hlt
	jmp 1b
	.size kvmx_guest_return, . - kvmx_guest_return

	.section .note.GNU-stack, "", @progbits
