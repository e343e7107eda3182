; Entry of the 64-bit (ELF64) guests: from the Multiboot2 i386 hand-off (spec 3.3) into IA-32e mode
; with the guest's own page tables, following SDM Vol. 3A, 10.8.5 "Initializing IA-32e Mode":
; CR4.PAE, CR3 = PML4, IA32_EFER.LME, then CR0.PG, then a far jump into a 64-bit code segment.
; Under tessera this paging runs on top of EPT: guest-virtual -> guest-physical -> host-physical.
;
; The map is 1:1 over guest RAM with 2 MiB pages: PML4[0] -> PDPT[0..3] -> four PDs (one per GiB) of
; 2 MiB leaf entries (SDM 3A 4.5, Tables 4-15 ... 4-18). Only as many PD entries are made as cover
; RAM (the end of the highest available memory-map entry below 4 GiB) and the boot information.

%include "guests/rt/mb2.inc"

MB2_MAGIC    equ 0x36d76289
PTE_P        equ 1 << 0             ; present
PTE_W        equ 1 << 1             ; writable
PTE_PS       equ 1 << 7             ; in a PD entry: maps a 2 MiB page
CR4_PAE      equ 1 << 5
CR0_PG       equ 1 << 31
MSR_EFER     equ 0xC0000080
EFER_LME     equ 1 << 8             ; long mode enable; the CPU sets LMA once CR0.PG is set
SEL_CODE64   equ 0x08
SEL_DATA     equ 0x10

bits 32
section .text
global _start
extern rt_start, __bss_start, __bss_end, _end

_start:
	cli                             ; no IDT: nothing may interrupt us
	cld                             ; string ops below and C need DF = 0
	mov esi, eax                    ; the magic and the info address survive the bss clearing ...
	mov ebp, ebx
	mov edi, __bss_start            ; zero .bss (page tables, stack) rather than trust the loader
	mov ecx, __bss_end
	sub ecx, edi
	xor eax, eax
	rep stosb
	mov [boot_magic], esi           ; ... and then live here, for rt_start in 64-bit mode
	mov [boot_info], ebp
	mov esp, stack_top

	; Long mode present? CPUID.80000001H:EDX[29] (SDM Vol. 2A, CPUID). Otherwise exit code 4.
	mov eax, 0x80000000
	cpuid
	cmp eax, 0x80000001
	jb no_long_mode
	mov eax, 0x80000001
	cpuid
	bt edx, 29
	jnc no_long_mode

	call map_end                    ; eax = bytes to map from 0 (0 = all 4 GiB)
	call build_page_tables

	mov eax, pml4
	mov cr3, eax                    ; CR3 is read when paging turns on, so load it first
	mov eax, cr4
	or eax, CR4_PAE                 ; IA-32e paging uses the PAE entry format
	mov cr4, eax
	mov ecx, MSR_EFER
	rdmsr
	or eax, EFER_LME                ; arm long mode; paging on then activates it (LMA = 1)
	wrmsr
	mov eax, cr0
	or eax, CR0_PG                  ; paging on, PE is on already: now in compatibility mode
	mov cr0, eax
	lgdt [gdt_ptr]                  ; a GDT with a 64-bit code segment (L = 1) ...
	jmp SEL_CODE64:long_entry       ; ... which this far jump loads: now in 64-bit mode

no_long_mode:
	mov al, 4
	out 0xf4, al                    ; exit code 4 (port HV_PORT_DEBUG_EXIT)
.hang:
	hlt
	jmp .hang

; Returns in eax how much of the physical address space to map: the highest end of an available
; Multiboot2 memory-map entry (spec 3.6.8) below 4 GiB, at least the image and the boot information,
; or 0 (meaning all 4 GiB) if there is no usable map. Clobbers ebx, ecx, edx, edi.
map_end:
	xor eax, eax
	cmp dword [boot_magic], MB2_MAGIC
	jne .done                       ; not Multiboot2: map everything, C reports the bad magic
	mov ebx, [boot_info]
	add ebx, 8                      ; skip total_size and reserved: the first tag
.tag:
	cmp dword [ebx], 0              ; end tag
	je .found
	cmp dword [ebx], 6              ; memory map tag
	jne .next_tag
	mov edx, ebx
	add edx, [ebx + 4]              ; edx = end of this tag
	lea ecx, [ebx + 16]             ; entries follow type, size, entry_size, entry_version
.entry:
	cmp ecx, edx
	jae .next_tag
	cmp dword [ecx + 16], 1         ; type 1: available RAM
	jne .next_entry
	cmp dword [ecx + 4], 0          ; base at or above 4 GiB: out of reach, skip
	jne .next_entry
	mov edi, [ecx]
	add edi, [ecx + 8]              ; end = base + length ...
	jc .all                         ; ... reaching past 4 GiB: map everything
	cmp dword [ecx + 12], 0
	jne .all
	cmp edi, eax
	jbe .next_entry
	mov eax, edi                    ; a new highest end
.next_entry:
	add ecx, [ebx + 8]              ; entry_size (24 today; the spec lets it grow)
	jmp .entry
.next_tag:
	mov ecx, [ebx + 4]
	add ecx, 7                      ; tags are 8-byte aligned (spec 3.6.1)
	and ecx, ~7
	add ebx, ecx
	jmp .tag
.found:
	test eax, eax
	jz .done                        ; no memory map: map everything
	mov ecx, [boot_info]
	add ecx, [ecx]                  ; the boot information must stay reachable from C
	cmp ecx, eax
	jbe .image
	mov eax, ecx
.image:
	cmp eax, _end                   ; and so must the whole image (page tables, stack)
	jae .done
	mov eax, _end
.done:
	ret
.all:
	xor eax, eax
	ret

; Fills the PDs with 2 MiB identity entries covering [0, eax) (eax = 0: 4 GiB), links the 4 PDs
; into the PDPT and the PDPT into PML4[0]. The tables were zeroed with .bss.
build_page_tables:
	mov ecx, 2048                   ; 4 GiB / 2 MiB
	test eax, eax
	jz .fill
	mov ecx, eax
	add ecx, (1 << 21) - 1          ; round up to whole 2 MiB pages
	jc .all
	shr ecx, 21
	jmp .fill
.all:
	mov ecx, 2048
.fill:
	xor edx, edx                    ; edx = PD entry index = 2 MiB page number
.pde:
	mov eax, edx
	shl eax, 21                     ; physical address of the page (bits 31:21)
	or eax, PTE_P | PTE_W | PTE_PS
	mov [pd + edx * 8], eax         ; the high half stays 0: all below 4 GiB
	inc edx
	cmp edx, ecx
	jb .pde
	mov eax, pd + (PTE_P | PTE_W)
	mov ecx, 0
.pdpte:
	mov [pdpt + ecx * 8], eax       ; PDPT[i] -> PD i, each mapping 1 GiB
	add eax, 4096
	inc ecx
	cmp ecx, 4
	jb .pdpte
	mov dword [pml4], pdpt + (PTE_P | PTE_W) ; PML4[0] -> PDPT: the low 512 GiB
	ret

bits 64
long_entry:
	mov ax, SEL_DATA                ; data segments are ignored for addressing in 64-bit mode, but SS
	mov ds, ax                      ; must hold a valid selector or descriptor for the stack to work
	mov es, ax
	mov ss, ax
	xor eax, eax
	mov fs, ax
	mov gs, ax
	mov rsp, stack_top              ; 16-byte aligned: SysV wants rsp + 8 aligned at function entry
	mov edi, [boot_magic]           ; rt_start(magic, mbi): SysV arguments in RDI, RSI
	mov esi, [boot_info]
	call rt_start                   ; does not return (it exits)
.hang:
	hlt
	jmp .hang

section .rodata
align 8
; SDM 3A 3.4.5 descriptors: base 0, limit 4 GiB, present, DPL 0.
gdt:
	dq 0                            ; the null descriptor
	dq 0x00AF9A000000FFFF           ; 0x08: code, execute/read, L = 1 (64-bit), D = 0
	dq 0x00CF92000000FFFF           ; 0x10: data, read/write
gdt_end:
gdt_ptr:
	dw gdt_end - gdt - 1            ; limit
	dd gdt                          ; base: lgdt in 32-bit mode takes a 32-bit base

section .bss nobits alloc noexec write align=16
align 16
stack:	resb 16384
stack_top:
boot_magic: resd 1
boot_info:  resd 1

section .bss.pagetables nobits alloc noexec write align=4096
pml4:	resb 4096
pdpt:	resb 4096
pd:	resb 4 * 4096
