; Exception and interrupt entry stubs: push a uniform frame (struct trap_frame, arch/x86/trap.h)
; and call trap_handler(frame). SDM Vol. 3A, 6.12.1 describes what the CPU pushed before us.

section .text
bits 64
extern trap_handler

; Vectors whose exceptions push an error code (SDM Vol. 3A, 6.15, Table 6-1 "Error Code" column).
%define HAS_ERROR(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

%macro STUB 1
trap_stub_%1:
%if HAS_ERROR(%1) == 0
	push 0                               ; no error code from the CPU: keep the frame uniform
%endif
	push %1                              ; vector
	jmp trap_common
%endmacro

%assign v 0
%rep 32
STUB v
%assign v v + 1
%endrep

global trap_stub_wakeup, trap_stub_spurious, trap_stub_console
trap_stub_wakeup:
	push 0
	push 0xf0                            ; VEC_WAKEUP (arch/x86/trap.h)
	jmp trap_common
trap_stub_console:
	push 0                               ; interrupts push no error code
	push 0x40                            ; VEC_CONSOLE (arch/x86/trap.h)
	jmp trap_common
trap_stub_spurious:
	iretq                                ; spurious interrupts need no EOI (SDM Vol. 3A, 11.9)

trap_common:
	; Save every general register in struct trap_frame order (rax at the lowest address).
	push r15
	push r14
	push r13
	push r12
	push r11
	push r10
	push r9
	push r8
	push rbp
	push rdi
	push rsi
	push rdx
	push rcx
	push rbx
	push rax
	mov rdi, rsp                         ; the frame is the argument
	mov rbx, rsp                         ; callee-saved: remember the frame across the call
	and rsp, -16                         ; the SysV ABI wants a 16-byte aligned stack at the call
	call trap_handler
	mov rsp, rbx
	pop rax
	pop rbx
	pop rcx
	pop rdx
	pop rsi
	pop rdi
	pop rbp
	pop r8
	pop r9
	pop r10
	pop r11
	pop r12
	pop r13
	pop r14
	pop r15
	add rsp, 16                          ; drop vector and error code
	iretq

section .rodata
global trap_stubs
align 8
trap_stubs:
%assign v 0
%rep 32
	dq trap_stub_ %+ v
%assign v v + 1
%endrep
