/*
 * Assembly guests of the modes suite. 16-bit blobs (name_start .. name_end) are copied to the
 * start of the 16-bit segment and run at offset 0: labels inside them are used only through
 * relative jumps or as OFF(label). 32- and 64-bit code runs at its link address with flat
 * segments. Every guest reports with kvmx_sync (values in RBX, RCX, RSI, RDI, RBP) and ends in HLT.
 */
#include "kvmx/guest/asm.h"

#define SEL_CODE32	0x08
#define SEL_DATA32	0x10
#define SEL_CODE64	0x28

	.text

/*
 * Real mode: report CR0, CS and the bytes pushed by a near CALL (2: 16-bit operand size), then
 * write 0xbeef at DS:0x8000 and read the word at DS:0x8002 that the host put there.
 */
	.code16
	.globl modes_real_start, modes_real_end
modes_real_start:
	movl %cr0, %ebx
	movw %cs, %cx
	movzwl %cx, %ecx
	movl %esp, %esi
	call 1f
1:	subl %esp, %esi
	movw $0xbeef, 0x8000
	movzwl 0x8002, %edi
	kvmx_sync 1
	xorw %bx, %bx
	hlt
	divw %bx		/* after the HLT exit: #DE through the IVT (2 bytes: f7 f3) */
modes_real_end:

/* 16-bit protected mode: the same observations as in real mode. */
	.globl modes_prot16_start, modes_prot16_end
modes_prot16_start:
	movl %cr0, %ebx
	movw %cs, %cx
	movzwl %cx, %ecx
	movl %esp, %esi
	call 1f
1:	subl %esp, %esi
	movw $0xbeef, 0x8000
	movzwl 0x8002, %edi
	kvmx_sync 1
	xorw %bx, %bx
	hlt
	divw %bx		/* #DE through the 32-bit IDT */
modes_prot16_end:

/*
 * Report the 16-bit frame an interrupt or exception pushed (no error code): IP in EBX, CS in ECX,
 * FLAGS in ESI; FLAGS inside the handler in EDI and SP in EBP. SS:SP must be the frame.
 */
	.macro report_frame16 stage
	movw %sp, %bp
	movzwl 0(%bp), %ebx
	movzwl 2(%bp), %ecx
	movzwl 4(%bp), %esi
	pushfw
	popw %di
	movzwl %di, %edi
	movzwl %sp, %ebp
	kvmx_sync \stage
	.endm

/*
 * Real mode, INT n through the IVT: install a handler for vector 0x42 in the IVT at linear 0
 * (segment = CS, offset = the handler's offset in this blob), set IF, INT 0x42 (stage 1 in the
 * handler, which IRETs), then report FLAGS and SP after the return (stage 2).
 */
	.globl modes_int_real_start, modes_int_real_end, modes_int_real_ret
modes_int_real_start:
	xorw %ax, %ax
	movw %ax, %es
	movw $(modes_int_real_handler - modes_int_real_start), %es:4 * 0x42
	movw %cs, %es:4 * 0x42 + 2
	sti
	int $0x42
modes_int_real_ret:
	pushfw
	popw %bx
	movzwl %bx, %ebx
	movzwl %sp, %ecx
	kvmx_sync 2
	hlt
modes_int_real_handler:
	report_frame16 1
	iret
modes_int_real_end:

/*
 * 16-bit protected mode through 16-bit IDT gates (the host points IDTR at its own table):
 * INT 0x43 via a 16-bit interrupt gate (stage 1 in the handler, stage 2 after its IRET), INT 0x44
 * via a 16-bit trap gate (stages 3 and 4), then a #GP with an error code (a selector past the GDT
 * limit loaded into DS) via a 16-bit interrupt gate: error code in EBX, IP in ECX, CS in ESI,
 * FLAGS in EDI and SP in EBP (stage 5).
 */
	.globl modes_gate16_start, modes_gate16_end, modes_gate16_ret1, modes_gate16_ret2, modes_gate16_gp
	.globl modes_gate16_int_handler, modes_gate16_trap_handler, modes_gate16_gp_handler
modes_gate16_start:
	sti
	int $0x43
modes_gate16_ret1:
	pushfw
	popw %bx
	movzwl %bx, %ebx
	movzwl %sp, %ecx
	kvmx_sync 2
	int $0x44
modes_gate16_ret2:
	pushfw
	popw %bx
	movzwl %bx, %ebx
	movzwl %sp, %ecx
	kvmx_sync 4
	movw $0x7b, %ax		/* index 15, RPL 3: past the 8-entry GDT */
modes_gate16_gp:
	movw %ax, %ds
	hlt
modes_gate16_int_handler:
	report_frame16 1
	iret
modes_gate16_trap_handler:
	report_frame16 3
	iret
modes_gate16_gp_handler:
	movw %sp, %bp
	movzwl 0(%bp), %ebx
	movzwl 2(%bp), %ecx
	movzwl 4(%bp), %esi
	movzwl 6(%bp), %edi
	movzwl %sp, %ebp
	kvmx_sync 5
	hlt
modes_gate16_end:

/*
 * 32-bit protected mode, any paging: report CR0, CR4, CALL's push size, CS and CR3, then read
 * the dword at EDI (the host points it at a test word), report it, and read address 0 (page 0
 * is memory without paging, not present with it).
 */
	.code32
	.globl modes_prot32
modes_prot32:
	movl %edi, %ebp
	movl %cr0, %ebx
	movl %cr4, %ecx
	movl %esp, %esi
	call 1f
1:	subl %esp, %esi
	addl $4, %esp
	movw %cs, %di
	movzwl %di, %edi
	kvmx_sync 1
	movl %cr3, %ebx
	movl (%ebp), %ecx
	movl $0x5a5a5a5a, 4(%ebp)
	kvmx_sync 2
	.globl modes_prot32_null_read
modes_prot32_null_read:
	movl 0, %ebx
	kvmx_sync 3
	hlt

/*
 * 32-bit protected mode without paging: turn paging on with the CR3 in EDI and off again,
 * reporting CR0 each time.
 */
	.globl modes_toggle_paging
modes_toggle_paging:
	movl %edi, %cr3
	movl %cr0, %eax
	orl $0x80000000, %eax
	movl %eax, %cr0
	movl %cr0, %ebx
	kvmx_sync 1
	movl %cr0, %eax
	andl $0x7fffffff, %eax
	movl %eax, %cr0
	movl %cr0, %ebx
	kvmx_sync 2
	hlt

/*
 * 32-bit protected mode without paging: report CR0 (stage 1), clear CR0.PE and report CR0 again
 * (stage 2). Clearing PE reloads no segment: the 32-bit flat descriptors stay cached, so the code
 * after the MOV still runs as 32-bit code, now in real mode. modes_clear_pe_done is the
 * instruction after the MOV to CR0.
 */
	.globl modes_clear_pe, modes_clear_pe_done
modes_clear_pe:
	movl %cr0, %ebx
	kvmx_sync 1
	movl %cr0, %eax
	andl $~1, %eax			/* CR0.PE */
	movl %eax, %cr0
modes_clear_pe_done:
	movl %cr0, %ebx
	kvmx_sync 2
	hlt

/*
 * Real mode -> 32-bit protected mode -> long mode, done by the guest: the host preloads GDTR with
 * the legacy GDT and EDI with the CR3 of 4-level tables identity-mapping guest memory.
 */
	.code16
	.globl modes_switch_start, modes_switch_end
modes_switch_start:
	cli
	movl %cr0, %ebx
	kvmx_sync 1
	movl %cr0, %eax
	orl $1, %eax			/* CR0.PE */
	movl %eax, %cr0
	ljmpl $SEL_CODE32, $modes_switch32
modes_switch_end:

	.code32
modes_switch32:
	movw $SEL_DATA32, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movl %cr0, %ebx
	movw %cs, %cx
	movzwl %cx, %ecx
	kvmx_sync 2
	movl %edi, %cr3
	movl %cr4, %eax
	orl $0x20, %eax			/* CR4.PAE */
	movl %eax, %cr4
	movl $0xc0000080, %ecx		/* EFER.LME */
	rdmsr
	orl $0x100, %eax
	wrmsr
	movl %cr0, %eax
	orl $0x80000000, %eax		/* CR0.PG: IA-32e mode, compatibility mode until the far jump */
	movl %eax, %cr0
	movl $0xc0000080, %ecx
	rdmsr
	movl %eax, %ebx
	movw %cs, %cx
	movzwl %cx, %ecx
	kvmx_sync 3
	ljmpl $SEL_CODE64, $modes_switch64

	.code64
modes_switch64:
	movl $0xc0000080, %ecx
	rdmsr
	movl %eax, %ebx
	movw %cs, %cx
	movzwl %cx, %ecx
	movq %cr4, %rsi
	/* A 64-bit immediate and register survive only in 64-bit mode. */
	movabsq $0x123456789abcdef0, %rdi
	kvmx_sync 4
	hlt

	.section .note.GNU-stack, "", @progbits
