; VM entry and exit: the only place guest general registers move between the CPU and struct
; guest_regs (vcpu/vcpu.h). vmx_enter is called like a C function; the CPU "returns" from it through
; vmx_exit_stub, where HOST_RIP points, on the stack whose top vmx_enter wrote into HOST_RSP.
; SDM Vol. 3C, 28.5 (VM exits load host RSP/RIP from the VMCS) and 27.1-27.3 (VM entry).

; struct guest_regs offsets, pinned by _Static_assert in vcpu/vcpu.c.
%define G_RAX 0
%define G_RBX 8
%define G_RCX 16
%define G_RDX 24
%define G_RSI 32
%define G_RDI 40
%define G_RBP 48
%define G_R8  56
%define G_R9  64
%define G_R10 72
%define G_R11 80
%define G_R12 88
%define G_R13 96
%define G_R14 104
%define G_R15 112
%define G_CR2 120
%define HOST_RSP 0x6c14                  ; VMCS field encoding (SDM Vol. 3D, B.4.4)

section .text
bits 64
global vmx_enter, vmx_exit_stub
extern vmx_exit_dispatch
extern spec_rsb_rounds, spec_verw_on_entry, spec_verw_sel   ; arch/x86/spec.c decides

; int vmx_enter(struct vcpu *v /* rdi: regs first */, uint64_t launched /* rsi */)
; Returns 0 when an exit handler asked the scheduler to take over, 1 when VMLAUNCH/VMRESUME failed.
; Exits the handlers resolve never come back here: vmx_exit_stub resumes the guest directly.
vmx_enter:
	push rbp                             ; the SysV callee-saved registers: the guest clobbers them
	push rbx
	push r12
	push r13
	push r14
	push r15
	push rdi                             ; the vcpu, found at [rsp] again after each exit
	mov rax, HOST_RSP
	vmwrite rax, rsp                     ; every exit lands on this very stack frame (16-byte aligned)
	mov rax, rdi
	mov rbx, [rax + G_CR2]               ; CR2 is not in the VMCS: the guest's own, by hand
	mov cr2, rbx
	test rsi, rsi
	jnz .resume
	call load_guest_regs
	vmlaunch
	jmp .failed                          ; still here: VMfailInvalid or VMfailValid
.resume:
	call load_guest_regs
	vmresume
.failed:
	mov eax, 1
.leave:
	pop rdi
	pop r15
	pop r14
	pop r13
	pop r12
	pop rbx
	pop rbp
	ret

; Loads every guest register from the vcpu in RAX, RAX itself last; flags are not kept (VMLAUNCH and
; VMRESUME read none). First, where spec.c asks for it, VERW with a writable data selector overwrites
; the CPU's store, fill and load buffers (MDS): the hypervisor's last loads of others' data are done.
load_guest_regs:
	cmp byte [rel spec_verw_on_entry], 0
	je .no_verw
	verw [rel spec_verw_sel]             ; MD_CLEAR: clears the buffers (the ZF it sets is not used)
.no_verw:
	mov rbx, [rax + G_RBX]
	mov rcx, [rax + G_RCX]
	mov rdx, [rax + G_RDX]
	mov rsi, [rax + G_RSI]
	mov rdi, [rax + G_RDI]
	mov rbp, [rax + G_RBP]
	mov r8,  [rax + G_R8]
	mov r9,  [rax + G_R9]
	mov r10, [rax + G_R10]
	mov r11, [rax + G_R11]
	mov r12, [rax + G_R12]
	mov r13, [rax + G_R13]
	mov r14, [rax + G_R14]
	mov r15, [rax + G_R15]
	mov rax, [rax + G_RAX]
	ret

vmx_exit_stub:
	push rax                             ; the guest's RAX, while RAX finds the vcpu
	mov rax, [rsp + 8]
	pop qword [rax + G_RAX]
	mov [rax + G_RBX], rbx
	mov [rax + G_RCX], rcx
	mov [rax + G_RDX], rdx
	mov [rax + G_RSI], rsi
	mov [rax + G_RDI], rdi
	mov [rax + G_RBP], rbp
	mov [rax + G_R8],  r8
	mov [rax + G_R9],  r9
	mov [rax + G_R10], r10
	mov [rax + G_R11], r11
	mov [rax + G_R12], r12
	mov [rax + G_R13], r13
	mov [rax + G_R14], r14
	mov [rax + G_R15], r15
	mov rbx, cr2                         ; a guest #PF may have changed it since entry
	mov [rax + G_CR2], rbx
	movzx ecx, byte [rel spec_rsb_rounds]
	test ecx, ecx
	jz .no_rsb_fill
	; Overwrite the return stack buffer before the first RET: its entries are the guest's, which
	; host RETs would otherwise speculate to (spec.c). Rounds of two CALLs (16: all 32 entries; 1:
	; eIBRS with PBRSB, where only the guest's last CALL is a danger), each CALL's return address an
	; INT3 no RET ever reaches (a speculation trap), then the stack back where it was (Intel
	; "Retpoline" white paper, RSB stuffing; Linux __FILL_RETURN_BUFFER).
.rsb_loop:
	call .rsb_1
	int3
.rsb_1:
	call .rsb_2
	int3
.rsb_2:
	add rsp, 16                          ; drop the two return addresses
	dec ecx
	jnz .rsb_loop
	lfence                               ; no speculation past a mispredicted loop end
.no_rsb_fill:
	mov rdi, rax
	call vmx_exit_dispatch               ; 0: resume the guest; else the scheduler takes over
	test eax, eax
	jnz .to_scheduler
	mov rax, [rsp]
	call load_guest_regs
	vmresume
	mov eax, 1                           ; VMRESUME failed: report it as vmx_enter would
	jmp vmx_enter.leave
.to_scheduler:
	xor eax, eax                         ; 0: an exit the scheduler must act on
	jmp vmx_enter.leave
