/*
 * The accesses of the mmu suite, in assembly so that a faulting access has one known place to
 * resume: the #PF handler (mmu_guest.cpp) sets the saved RIP to the resume address the caller
 * announced, whatever the instruction was.
 *
 *   op 0: read the quadword at va (returned in RAX)
 *   op 1: write `value` to the quadword at va
 *   op 2: fetch: jump to va, where `jmp *%rcx` (mmu_guest.hpp, kFetchCode) jumps back to RCX
 */
	.text
	.code64

/*
 * uint64_t mmu_kernel_access(uint64_t op, uint64_t va, uint64_t value, uint64_t rflags_or)
 * A supervisor access with the RFLAGS bits `rflags_or` (AC) set for its duration. Resumes at
 * mmu_kernel_resume.
 */
	.globl mmu_kernel_access, mmu_kernel_resume
	.type mmu_kernel_access, @function
mmu_kernel_access:
	movq %rcx, %r8
	pushfq
	orq %r8, (%rsp)
	popfq
	xorl %eax, %eax
	cmpl $1, %edi
	je 1f
	cmpl $2, %edi
	je 2f
	movq (%rsi), %rax
	jmp mmu_kernel_resume
1:	movq %rdx, (%rsi)
	jmp mmu_kernel_resume
2:	leaq mmu_kernel_resume(%rip), %rcx
	jmp *%rsi
mmu_kernel_resume:
	notq %r8
	pushfq
	andq %r8, (%rsp)
	popfq
	ret
	.size mmu_kernel_access, . - mmu_kernel_access

/*
 * uint64_t mmu_enter_user(uint64_t op, uint64_t va, uint64_t value, uint64_t rip, uint64_t rsp)
 * IRET to ring 3 at `rip` (the user stub's copy) with stack `rsp`; op, va and value stay in RDI,
 * RSI and RDX. The stub ends in INT 0x80, whose handler (on_return_from_user) resumes ring 0 at
 * mmu_user_return on the stack saved here. Callee-saved registers are untouched by the stub.
 */
	.globl mmu_enter_user, mmu_user_return, mmu_kernel_rsp
	.type mmu_enter_user, @function
mmu_enter_user:
	movq %rsp, mmu_kernel_rsp(%rip)
	pushq $0x2b		/* kUserData */
	pushq %r8
	pushq $2		/* RFLAGS: IF, AC clear */
	pushq $0x33		/* kUserCode */
	pushq %rcx
	iretq
mmu_user_return:
	ret
	.size mmu_enter_user, . - mmu_enter_user

/*
 * The ring-3 stub, position independent: the host copies mmu_user_stub .. mmu_user_stub_end to a
 * user page. A #PF resumes at its copy of mmu_user_stub_resume.
 */
	.globl mmu_user_stub, mmu_user_stub_resume, mmu_user_stub_end
mmu_user_stub:
	xorl %eax, %eax
	cmpl $1, %edi
	je 1f
	cmpl $2, %edi
	je 2f
	movq (%rsi), %rax
	jmp mmu_user_stub_resume
1:	movq %rdx, (%rsi)
	jmp mmu_user_stub_resume
2:	leaq mmu_user_stub_resume(%rip), %rcx
	jmp *%rsi
mmu_user_stub_resume:
	int $0x80
	ud2
mmu_user_stub_end:

	.data
	.balign 8
mmu_kernel_rsp:
	.quad 0

	.section .note.GNU-stack, "", @progbits
