/*
 * The kvmx-demo guest: starts in real mode at 0:0x8000, enters 32-bit protected mode, builds its
 * own page tables (one 2 MiB identity page), enables long mode, then prints through port I/O,
 * fills and sums memory, does an MMIO write and read, and halts. Each mode prints a piece of the
 * greeting, so the console shows how far the guest got. Layout constants: demo_guest.h.
 *
 * The blob runs at LOAD, not where it is linked: absolute addresses are written as ABS(label).
 */
#define LOAD		0x8000
#define ABS(x)		((x) - demo_guest_start + LOAD)
#define PML4		0x1000
#define PDPT		0x2000
#define PD		0x3000
#define STACK_TOP	0x7000
#define CONSOLE		0xe9
#define REPORT		0xea
#define MMIO		0x1ff000
#define PATTERN		0x40000
#define PATTERN_WORDS	2048

	.section .rodata
	.globl demo_guest_start
	.globl demo_guest_end

demo_guest_start:
	.code16
	cli
	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw $STACK_TOP, %sp
	cld
	movw $ABS(msg16), %si
	movw $(msg16_end - msg16), %cx
	movw $CONSOLE, %dx
	rep outsb

	lgdtl ABS(gdt_pointer)
	movl %cr0, %eax
	orl $1, %eax			/* CR0.PE */
	movl %eax, %cr0
	ljmpl $0x08, $ABS(start32)

	.code32
start32:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movl $STACK_TOP, %esp
	movl $ABS(msg32), %esi
	movl $(msg32_end - msg32), %ecx
	movw $CONSOLE, %dx
	rep outsb

	/* Page tables: PML4[0] -> PDPT, PDPT[0] -> PD, PD[0] maps 0-2 MiB with a large page. */
	movl $PML4, %edi
	movl $(3 * 4096 / 4), %ecx
	xorl %eax, %eax
	rep stosl
	movl $(PDPT | 3), PML4
	movl $(PD | 3), PDPT
	movl $0x83, PD			/* present, writable, 2 MiB */
	movl $PML4, %eax
	movl %eax, %cr3
	movl %cr4, %eax
	orl $0x20, %eax			/* CR4.PAE */
	movl %eax, %cr4
	movl $0xc0000080, %ecx		/* EFER */
	rdmsr
	orl $0x100, %eax		/* EFER.LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000000, %eax		/* CR0.PG: long mode becomes active */
	movl %eax, %cr0
	ljmpl $0x18, $ABS(start64)

	.code64
start64:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movq $STACK_TOP, %rsp
	movq $ABS(msg64), %rsi
	movq $(msg64_end - msg64), %rcx
	movw $CONSOLE, %dx
	rep outsb

	/* Fill 16 KiB with i * 0x0101010101010101, then sum it back and report the sum. */
	movq $PATTERN, %rdi
	movq $PATTERN_WORDS, %rcx
	xorq %rax, %rax
	movabsq $0x0101010101010101, %r8
1:	movq %rax, (%rdi)
	addq %r8, %rax
	addq $8, %rdi
	loop 1b
	movq $PATTERN, %rsi
	movq $PATTERN_WORDS, %rcx
	xorq %rdx, %rdx
2:	addq (%rsi), %rdx
	addq $8, %rsi
	loop 2b
	movq %rdx, %rax
	movw $REPORT, %dx
	outl %eax, %dx			/* low half */
	shrq $32, %rax
	outl %eax, %dx			/* high half */

	/* MMIO: write a value, read one back, report what was read. */
	movl $0xfeedc0de, MMIO
	movl MMIO, %eax
	outl %eax, %dx

3:	hlt
	jmp 3b

	.balign 8
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: 32-bit code, flat */
	.quad 0x00cf92000000ffff	/* 0x10: data, flat */
	.quad 0x00af9a000000ffff	/* 0x18: 64-bit code */
gdt_end:
gdt_pointer:
	.word gdt_end - gdt - 1
	.long ABS(gdt)

msg16:	.ascii "real mode -> "
msg16_end:
msg32:	.ascii "protected mode -> "
msg32_end:
msg64:	.ascii "long mode: hello from the kvmx-demo guest\n"
msg64_end:
demo_guest_end:

	.section .note.GNU-stack, "", @progbits
