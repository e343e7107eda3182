; The protected-mode part of a synthetic bzImage (tests/lib/bzimage.py puts a setup header before it).
; Entered as Documentation/arch/x86/boot.rst, "32-bit Boot Protocol", says: protected mode, paging off,
; flat __BOOT_CS/__BOOT_DS, at code32_start (0x100000), ESI = the boot_params ("zero page").
; It checks what a loader must have written there (zero-page.rst offsets), prints
; `bz: boot_params ok, e820 N entries, cmdline '...'` on COM1 and ends with port 0xF4 = 0, or prints
; `bz: boot_params FAIL (...)` and ends with 1. No stack is needed: no call, no push.
bits 32
org 0x100000

ZERO_PAGE   equ 0x7000                  ; where the loader put boot_params (tessera: loader/loader.h)
COM1        equ 0x3f8

start:
	cld
	mov ebp, esi                        ; ESI: boot_params (boot.rst, 32-bit protocol)
	mov edi, msg_esi
	cmp ebp, ZERO_PAGE
	jne fail
	mov edi, msg_hdrs
	cmp dword [ebp + 0x202], 0x53726448 ; "HdrS" copied with the setup header
	jne fail
	mov edi, msg_loader
	cmp byte [ebp + 0x210], 0xff        ; type_of_loader: 0xFF, a loader without an assigned id
	jne fail
	mov edi, msg_e820
	movzx ecx, byte [ebp + 0x1e8]       ; e820_entries
	cmp ecx, 3                          ; low RAM, the BIOS hole, RAM from 1 MiB
	jne fail
	cmp dword [ebp + 0x2d0 + 2 * 20 + 0], 0x100000  ; third entry: addr 1 MiB (low half) ...
	jne fail
	cmp dword [ebp + 0x2d0 + 2 * 20 + 16], 1        ; ... type 1, usable RAM
	jne fail
	mov dx, COM1
	mov esi, msg_ok
	mov ebx, .ok1
	jmp puts
.ok1:	mov esi, [ebp + 0x228]              ; cmd_line_ptr
	mov ebx, .ok2
	jmp puts
.ok2:	mov esi, msg_end
	mov ebx, .ok3
	jmp puts
.ok3:	mov al, 0
	out 0xf4, al                        ; isa-debug-exit: the guest ends with code 0
	hlt

fail:	mov dx, COM1
	mov esi, msg_fail
	mov ebx, .f1
	jmp puts
.f1:	mov esi, edi                        ; which check failed
	mov ebx, .f2
	jmp puts
.f2:	mov al, 1
	out 0xf4, al
	hlt

; Writes the NUL-terminated string at ESI to port DX, then jumps to EBX (no stack).
puts:	lodsb
	test al, al
	jz .done
	out dx, al                          ; the virtual 16550's THR is always ready
	jmp puts
.done:	jmp ebx

msg_ok:     db "bz: boot_params ok, e820 3 entries, cmdline '", 0
msg_end:    db "'", 10, 0
msg_fail:   db "bz: boot_params FAIL (", 0
msg_esi:    db "ESI is not 0x7000)", 10, 0
msg_hdrs:   db "no HdrS at 0x202)", 10, 0
msg_loader: db "type_of_loader is not 0xff)", 10, 0
msg_e820:   db "e820 map is not 3 entries with RAM from 1 MiB)", 10, 0
