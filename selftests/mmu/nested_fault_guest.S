/*
 * The instructions of the nested-fault tests that raise the first exception, at labels the host
 * compares with the saved RIP. Every handler that does not retry the instruction resumes at
 * nested_fault_resume.
 *
 * void nested_fault_raise(uint64_t op, uint64_t va)   op: NestedFaultOp (nested_fault.hpp)
 */
	.text
	.code64

	.globl nested_fault_raise
	.globl nested_fault_ud2, nested_fault_div, nested_fault_read, nested_fault_resume
	.type nested_fault_raise, @function
nested_fault_raise:
	cmpl $1, %edi
	je 1f
	cmpl $2, %edi
	je 2f
nested_fault_ud2:
	ud2
	jmp nested_fault_resume
1:	xorl %ecx, %ecx
	movl $1, %eax
	xorl %edx, %edx
nested_fault_div:
	divl %ecx
	jmp nested_fault_resume
2:
nested_fault_read:
	movq (%rsi), %rax
nested_fault_resume:
	ret
	.size nested_fault_raise, . - nested_fault_raise

	.section .note.GNU-stack, "", @progbits
