/* VMX operation: what this CPU model offers, turning VMX on per CPU, and the VMX instructions. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* VMX capability MSRs. SDM Vol. 3D, Appendix A. */
#define MSR_IA32_VMX_BASIC            0x480
#define MSR_IA32_VMX_PINBASED_CTLS    0x481
#define MSR_IA32_VMX_PROCBASED_CTLS   0x482
#define MSR_IA32_VMX_EXIT_CTLS        0x483
#define MSR_IA32_VMX_ENTRY_CTLS       0x484
#define MSR_IA32_VMX_MISC             0x485
#define MSR_IA32_VMX_CR0_FIXED0       0x486
#define MSR_IA32_VMX_CR0_FIXED1       0x487
#define MSR_IA32_VMX_CR4_FIXED0       0x488
#define MSR_IA32_VMX_CR4_FIXED1       0x489
#define MSR_IA32_VMX_PROCBASED_CTLS2  0x48b
#define MSR_IA32_VMX_EPT_VPID_CAP     0x48c
#define MSR_IA32_VMX_TRUE_PINBASED_CTLS  0x48d
#define MSR_IA32_VMX_TRUE_PROCBASED_CTLS 0x48e
#define MSR_IA32_VMX_TRUE_EXIT_CTLS   0x48f
#define MSR_IA32_VMX_TRUE_ENTRY_CTLS  0x490

#define VMX_BASIC_TRUE_CTLS   (1ull << 55) /* the TRUE_* MSRs exist (SDM Vol. 3D, A.1) */

/* IA32_VMX_EPT_VPID_CAP bits. SDM Vol. 3D, A.10. */
#define EPT_CAP_WALK4        (1ull << 6)   /* page-walk length 4 */
#define EPT_CAP_WB           (1ull << 14)  /* write-back paging structures */
#define EPT_CAP_2M           (1ull << 16)
#define EPT_CAP_1G           (1ull << 17)
#define EPT_CAP_INVEPT       (1ull << 20)
#define EPT_CAP_AD           (1ull << 21)
#define EPT_CAP_INVEPT_SINGLE (1ull << 25)
#define EPT_CAP_INVEPT_ALL   (1ull << 26)
#define VPID_CAP_INVVPID     (1ull << 32)
#define VPID_CAP_INDIVIDUAL  (1ull << 40)
#define VPID_CAP_SINGLE      (1ull << 41)

/* The controls this hypervisor runs guests with, settled once from the capability MSRs. */
struct vmx_caps {
	uint32_t revision;                /* VMCS revision identifier (IA32_VMX_BASIC[30:0]) */
	uint32_t pin, cpu, cpu2, exit, entry;
	uint64_t cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
	uint64_t ept_vpid;                /* IA32_VMX_EPT_VPID_CAP */
	unsigned ept_page_sizes;          /* enum ept_page_size */
	unsigned preemption_shift;        /* the timer ticks once every 2^shift TSC ticks (A.6) */
	bool vpid, save_timer, ept_ad;
	bool intr_window, nmi_window;     /* interrupt- and NMI-window exiting offered */
	bool apicv;                       /* APIC virtualization offered (and not turned off: apicv=0) */
	bool x2apicv;                     /* ... and "virtualize x2APIC mode" too (x2APIC guests) */
	bool ug;                          /* unrestricted guest: paging=ept possible (guests start with paging
					   * off); without it every guest runs with paging=shadow */
	bool spt;                         /* paging=shadow possible: CR3-load/store and INVLPG exiting can
					   * be 1, and the CPU has XD for EFER.NXE (vmx/spt.c) */
	bool efer_ctls;                   /* "load IA32_EFER" on entry and exit, "save" on exit; without them
					   * (penryn) the MSR-load lists switch EFER (vmx/vcpu.c) */
	bool ept;                         /* EPT offered: without it (Bochs's penryn) paging=shadow only */
	bool ptimer;                      /* the VMX-preemption timer ends slices; without it (penryn) the
					   * host's local APIC timer and external-interrupt exiting do */
};

extern struct vmx_caps vmx_caps;

/* Checks that this CPU can run guests as we need (VMX; EPT with unrestricted guest, or shadow
 * paging's controls; ...) and settles vmx_caps. false and a reason ("AMD CPU", "disabled in firmware", ...) when it cannot. */
bool vmx_probe(const char **why);
/* VMXON on this CPU (after vmx_probe succeeded on the boot CPU); the result in vmx_cpu_state. */
void vmx_cpu_on(void);
/* What vmx_cpu_on did on CPU `cpu` (any CPU may ask): 0 not yet tried, 1 VMX on, -1 it failed. */
int vmx_cpu_state(unsigned cpu);
/* VMXOFF on this CPU, if it is in VMX operation: before a reset that reaches the CPU as INIT, which
 * VMX root operation blocks (SDM Vol. 3C, 24.8). */
void vmx_cpu_off(void);

static inline bool vmptrld(uint64_t vmcs)
{
	bool fail;

	asm volatile("vmptrld %1; setna %0" : "=qm"(fail) : "m"(vmcs) : "cc", "memory");
	return !fail;
}

static inline bool vmclear(uint64_t vmcs)
{
	bool fail;

	asm volatile("vmclear %1; setna %0" : "=qm"(fail) : "m"(vmcs) : "cc", "memory");
	return !fail;
}

/* INVEPT single-context: drop this CPU's cached translations for one EPT. SDM Vol. 3C, 29.4.3.1. */
void vmx_invept(uint64_t eptp);
/* INVVPID single-context (all-context where that is missing): drop this CPU's cached linear
 * translations tagged with `vpid`. SDM Vol. 3C, 29.4.3.3. No-op without VPIDs. */
void vmx_invvpid(uint16_t vpid);
/* INVVPID individual-address: the translations of the page holding canonical linear address `gva`
 * tagged with `vpid` (vmx_invvpid where the type is missing). SDM Vol. 3C, 31.3. No-op without VPIDs. */
void vmx_invvpid_addr(uint16_t vpid, uint64_t gva);
