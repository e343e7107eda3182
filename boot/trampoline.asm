; The application processors' way from the start-up IPI to 64-bit C (smp_ap_entry).
;
; A SIPI starts an AP in real mode at CS:IP = (vector << 8):0000, i.e. at physical address
; vector << 12 (SDM Vol. 3A 9.4.4.1 and 11.6.1, "Start-up IPI"). smp.c copies the bytes between
; trampoline_start and trampoline_end to a free page below 1 MiB and fills in the tr_* variables
; (all addressed relative to that page, so the code runs wherever it is copied). Only one AP runs
; it at a time: the boot CPU waits for each before starting the next.

%include "boot/defs.inc"

section .rodata
bits 16
global trampoline_start, trampoline_end
global tr_gdt_desc, tr_far32, tr_far64, tr_cr3, tr_efer, tr_stack, tr_entry, tr_arg
trampoline_start:
	cli
	cld
	mov ax, cs                           ; CS = page >> 4: address our data relative to it
	mov ds, ax
	xor ebx, ebx
	mov bx, ax
	shl ebx, 4                           ; EBX = physical address of this page, kept to 64-bit mode
	o32 lgdt [tr_gdt_desc - trampoline_start]  ; o32: take all 32 bits of the GDT base
	mov eax, cr0
	or eax, CR0_PE
	mov cr0, eax
	jmp far dword [tr_far32 - trampoline_start] ; to tr32 in the 32-bit code segment

bits 32
tr32:
	mov ax, SEL_DATA
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov eax, cr4                         ; SDM Vol. 3A 10.8.5, as the boot CPU did in entry.asm
	or eax, CR4_PAE
	mov cr4, eax
	mov eax, [ebx + tr_cr3 - trampoline_start] ; the host PML4, below 4 GiB
	mov cr3, eax
	mov ecx, MSR_EFER
	rdmsr
	or eax, [ebx + tr_efer - trampoline_start] ; LME, and NXE if the host map uses XD bits
	wrmsr
	; A known CR0, not bits ORed into what INIT left: CD and NW may still be set from power-up
	; (SDM Vol. 3A, 10.1, Table 10-1), which would leave this CPU running uncached.
	mov eax, CR0_PG | CR0_PE | (1 << 16) | (1 << 5) | (1 << 4) ; paging, WP, NE, ET
	mov cr0, eax
	jmp far [ebx + tr_far64 - trampoline_start] ; into the 64-bit code segment

bits 64
tr64:
	mov ax, SEL_DATA
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov rsp, [rbx + tr_stack - trampoline_start] ; this AP's own stack
	mov rdi, [rbx + tr_arg - trampoline_start]   ; its per-CPU data, first C argument
	mov rax, [rbx + tr_entry - trampoline_start]
	push 0                                       ; a zero return address ends backtraces
	jmp rax

align 8
tr_gdt:                                  ; its own copy, in the page it runs from (defs.inc)
	GDT_ENTRIES
tr_gdt_end:
tr_gdt_desc:
	dw tr_gdt_end - tr_gdt - 1
	dd 0                                 ; base: page + (tr_gdt - trampoline_start), set by smp.c
align 8
tr_far32:  dd 0                          ; offset: page + (tr32 - trampoline_start), set by smp.c
	   dw SEL_CODE32
align 8
tr_far64:  dd 0                          ; offset: page + (tr64 - trampoline_start)
	   dw SEL_CODE64
align 8
tr_cr3:    dq 0
tr_efer:   dq 0
tr_stack:  dq 0
tr_entry:  dq 0
tr_arg:    dq 0
global tr_gdt, tr32, tr64
trampoline_end:
