; The Multiboot2 header and the boot CPU's path from GRUB's 32-bit hand-off to 64-bit C (kmain).
;
; GRUB leaves us in the Multiboot2 i386 machine state (Multiboot2 spec 3.3): protected mode, paging
; off, flat segments, EAX = magic, EBX = physical address of the boot information. We check both the
; magic and that the CPU has long mode, build a temporary 1:1 map of the first 4 GiB with 2 MiB pages,
; and switch to IA-32e mode as SDM Vol. 3A, 10.8.5 ("Initializing IA-32e Mode") lays out. C later
; replaces these tables with the real host map (arch/x86/paging.c).

%include "boot/defs.inc"

section .multiboot2
align 8
mb2_header:
	dd MB2_HEADER_MAGIC                    ; magic (spec 3.1.1)
	dd 0                                 ; architecture 0: i386 protected mode
	dd mb2_header_end - mb2_header       ; header length
	dd -(MB2_HEADER_MAGIC + 0 + (mb2_header_end - mb2_header)) ; checksum: the four fields sum to 0
	; end tag (type 0, flags 0, size 8)
	dw 0, 0
	dd 8
mb2_header_end:

section .text.boot
bits 32
global _start
_start:
	cli
	cld
	mov esp, boot_stack_top              ; a stack of our own: GRUB's is not promised (spec 3.3)
	mov esi, eax                         ; keep magic and info pointer across the checks
	mov edi, ebx

	cmp esi, MB2_BOOTLOADER_MAGIC        ; Multiboot2 boot loader magic (spec 3.3)
	jne .no_multiboot

	; Long mode needs CPUID leaf 0x80000001 EDX bit 29 (SDM Vol. 2A, CPUID).
	mov eax, 0x80000000
	cpuid
	cmp eax, 0x80000001
	jb .no_long_mode
	mov eax, 0x80000001
	cpuid
	test edx, 1 << 29
	jz .no_long_mode

	; Temporary page tables: PML4[0] -> PDPT, PDPT[0..3] -> four PDs of 2 MiB pages = 0..4 GiB 1:1.
	mov eax, boot_pdpt
	or eax, PTE_P | PTE_W
	mov [boot_pml4], eax
	mov ecx, 0
.fill_pdpt:
	mov eax, ecx
	shl eax, 12
	add eax, boot_pd
	or eax, PTE_P | PTE_W
	mov [boot_pdpt + ecx * 8], eax
	inc ecx
	cmp ecx, 4
	jb .fill_pdpt
	mov ecx, 0                           ; 2048 PDEs, PDE i maps i * 2 MiB
.fill_pd:
	mov eax, ecx
	shl eax, 21
	or eax, PTE_P | PTE_W | PTE_PS
	mov [boot_pd + ecx * 8], eax
	mov eax, ecx
	shr eax, 11                          ; high half of the address: i * 2 MiB >> 32
	mov [boot_pd + ecx * 8 + 4], eax
	inc ecx
	cmp ecx, 2048
	jb .fill_pd

	; SDM Vol. 3A 10.8.5: CR4.PAE, then CR3, then EFER.LME, then CR0.PG activates IA-32e mode.
	mov eax, cr4
	or eax, CR4_PAE
	mov cr4, eax
	mov eax, boot_pml4
	mov cr3, eax
	mov ecx, MSR_EFER
	rdmsr
	or eax, EFER_LME
	wrmsr
	mov eax, cr0
	or eax, CR0_PG | CR0_PE
	mov cr0, eax
	lgdt [boot_gdt_desc]
	jmp SEL_CODE64:.long_mode            ; loads the 64-bit code segment: now in 64-bit mode

.no_multiboot:
	mov esi, msg_no_multiboot
	jmp early_fail
.no_long_mode:
	mov esi, msg_no_long_mode
	jmp early_fail

bits 64
.long_mode:
	mov ax, SEL_DATA
	mov ds, ax
	mov es, ax
	mov ss, ax
	xor eax, eax
	mov fs, ax
	mov gs, ax
	mov rsp, boot_stack_top
	mov edi, edi                         ; first C argument: the Multiboot2 information (zero-extended)
	extern kmain
	call kmain
.hang:
	cli
	hlt
	jmp .hang

; early_fail: print the NUL-terminated string at ESI on COM1 and the VGA text screen, then halt.
; Only for the checks above: nothing else is set up yet, so it polls the UART with a fixed divisor.
bits 32
early_fail:
	mov dx, 0x3f8 + 3                    ; LCR: DLAB=1 to set the divisor
	mov al, 0x80
	out dx, al
	mov dx, 0x3f8                        ; divisor 1 = 115200 baud
	mov al, 1
	out dx, al
	inc dx
	xor al, al
	out dx, al
	mov dx, 0x3f8 + 3                    ; 8 data bits, no parity, 1 stop bit, DLAB=0
	mov al, 0x03
	out dx, al
	mov edi, 0xb8000                     ; VGA text memory (colour adapter)
.next:
	lodsb
	test al, al
	jz .halt
	mov ah, al
	mov dx, 0x3f8 + 5                    ; LSR: wait for THR empty (bit 5) or the byte is lost
.wait:
	in al, dx
	test al, 0x20
	jz .wait
	mov al, ah
	mov dx, 0x3f8
	out dx, al
	cmp al, 10
	je .next
	mov [edi], al
	mov byte [edi + 1], 0x4f             ; white on red
	add edi, 2
	jmp .next
.halt:
	cli
	hlt
	jmp .halt

section .rodata
msg_no_multiboot: db "hv: error: not started by a Multiboot2 boot loader (bad magic in EAX); halting", 13, 10, 0
msg_no_long_mode: db "hv: error: this CPU has no 64-bit long mode; tessera needs an x86-64 CPU; halting", 13, 10, 0

align 16
global boot_gdt
boot_gdt:                                ; null, 64-bit code, data, 32-bit code (defs.inc)
	GDT_ENTRIES
boot_gdt_end:
boot_gdt_desc:
	dw boot_gdt_end - boot_gdt - 1
	dq boot_gdt

section .bss
align 4096
global boot_pml4
boot_pml4:  resb 4096
boot_pdpt:  resb 4096
boot_pd:    resb 4 * 4096
boot_stack: resb 16384
boot_stack_top:
