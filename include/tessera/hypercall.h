/*
 * The tessera hypercall ABI, shared by the hypervisor and its guests.
 *
 * A guest calls with VMCALL (SDM Vol. 2B; it exits to the hypervisor, SDM Vol. 3C, 26.1.2) in 32- or
 * 64-bit mode: EAX/RAX = call number, EBX/RBX and ECX/RCX = arguments. The result comes back in
 * EAX/RAX (0 or a negative error), further results in EBX/ECX/EDX. VMCALL from CPL > 0 fails with -1.
 */
#pragma once

#define HC_EXIT        1 /* end this guest; EBX = exit code (as writing it to port 0xF4)   */
#define HC_YIELD       2 /* give the CPU to the next runnable vCPU on it; returns 0          */
#define HC_GUEST_INFO  3 /* returns EBX = guest id, ECX = RAM in KiB, EDX = host CPU number    */
#define HC_PUTCHAR     4 /* writes the byte in BL to the guest's console line (as its UART)  */

#define HC_ERR_NOSYS   (-38) /* unknown call number */
#define HC_ERR_PERM    (-1)  /* not allowed from this privilege level */

/* CPUID leaf 0x40000000: EAX = highest hypervisor leaf, EBX:ECX:EDX = the signature below. */
#define HV_CPUID_BASE      0x40000000u
#define HV_CPUID_SIGNATURE "TesseraHV\0\0\0"
/* CPUID leaf 0x40000010 (the convention of VMware and ACRN): EAX = TSC frequency in kHz, EBX = the
 * local APIC timer's input clock in kHz (the same: the APIC timer counts TSC ticks / divider). */
#define HV_CPUID_TIMING    0x40000010u

/* Port I/O a guest sees (besides its virtual 16550 at 0x3F8..0x3FF). */
#define HV_PORT_DEBUG_EXIT 0xF4 /* write V: the guest ends with exit code V (as QEMU isa-debug-exit) */
