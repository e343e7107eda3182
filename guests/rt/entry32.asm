; Entry of the 32-bit guests: from the Multiboot2 i386 hand-off (spec 3.3) straight into C.
; The loader leaves protected mode with flat segments and paging off, which is all 32-bit C needs;
; only a stack is missing (spec 3.3: "ESP ... the OS image must create its own stack").
; Assembled with -DMULTIBOOT1 it carries a Multiboot1 header instead (mb1.inc; the hand-off is the
; same machine state, Multiboot 0.6.96 3.2), for the Multiboot1 guests; rt_start tells them apart.

%ifdef MULTIBOOT1
%include "guests/rt/mb1.inc"
%else
%include "guests/rt/mb2.inc"
%endif

bits 32
section .text
global _start
extern rt_start, __bss_start, __bss_end

_start:
	cli                             ; the machine state has IF = 0 already; there is no IDT either way
	cld                             ; C assumes DF = 0 (SysV ABI); the spec does not promise it
	mov esi, eax                    ; keep the magic and ...
	mov ebp, ebx                    ; ... the boot information address across the bss clearing
	mov edi, __bss_start            ; zero .bss ourselves rather than trust every loader to
	mov ecx, __bss_end
	sub ecx, edi
	xor eax, eax
	rep stosb
	mov esp, stack_top              ; our own stack, in .bss
	sub esp, 8                      ; GCC keeps 16-byte stack alignment at calls: 8 + two 4-byte args
	push ebp                        ; rt_start(magic, mbi): cdecl arguments right to left
	push esi
	call rt_start                   ; does not return (it exits); halt if it ever does
.hang:
	hlt
	jmp .hang

section .bss nobits alloc noexec write align=16
align 16
stack:	resb 16384
stack_top:
