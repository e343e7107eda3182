/* VMX capabilities and VMXON: every control is chosen through the capability MSRs, never assumed. */
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "console/printk.h"
#include "ept/ept.h"
#include "lib/errno.h"
#include "lib/string.h"
#include "pmm/pmm.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"

struct vmx_caps vmx_caps;
/* VMX operation of each CPU. */
static struct {
	uint64_t vmxon_region;       /* allocated at its first VMXON, kept for the next */
	volatile int state;          /* 0 not yet tried (or left: vmx_cpu_off), 1 VMX on, -1 VMXON failed */
} vmx_cpu[MAX_CPUS];

/*
 * A control MSR says, per bit, what may be 0 (low half: a 1 there means "must be 1") and what may be
 * 1 (high half). SDM Vol. 3D, A.3-A.5. We ask for `want`, get what is allowed of it plus what is
 * forced; `need` must all be allowed or the CPU is unfit.
 */
static bool pick_controls(uint32_t msr, uint32_t want, uint32_t need, uint32_t *out)
{
	uint64_t cap = rdmsr(msr);
	uint32_t must = (uint32_t)cap, may = (uint32_t)(cap >> 32);

	*out = (want & may) | must;
	return (need & may) == need;
}

bool vmx_probe(const char **why)
{
	struct vmx_caps *c = &vmx_caps;
	uint64_t basic, fc;
	bool true_ctls;

	if (!cpu_has(CPU_VMX)) {
		if (!cpu_is_intel())
			*why = "not an Intel CPU";
		else if (cpu_has(CPU_HV))
			*why = "CPUID shows no VMX: running under a hypervisor without nested VMX";
		else
			*why = "CPUID shows no VMX on this CPU";
		return false;
	}
	/* SDM Vol. 3C, 24.7: VMXON outside SMX needs FEATURE_CONTROL bits 0 and 2. */
	fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
	if (!(fc & FEATURE_CONTROL_LOCKED)) {
		wrmsr(MSR_IA32_FEATURE_CONTROL, fc | FEATURE_CONTROL_LOCKED | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
	} else if (!(fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX)) {
		*why = "disabled in firmware (IA32_FEATURE_CONTROL locked with VMX off; enable VT-x in setup)";
		return false;
	}

	basic = rdmsr(MSR_IA32_VMX_BASIC);
	c->revision = basic & 0x7fffffff;
	true_ctls = basic & VMX_BASIC_TRUE_CTLS;
	if (((basic >> 50) & 0xf) != 6) {
		*why = "the VMCS cannot be write-back memory (IA32_VMX_BASIC[53:50])";
		return false;
	}

	/* External-interrupt and NMI exiting are needed (the host's interrupts, its slices without the
	 * preemption timer); the VMX-preemption timer (SDM Vol. 3C, 25.6.1, Table 25-5, bit 6) is used
	 * where offered, else the host's local APIC timer ends slices (exit.c). */
	if (!pick_controls(true_ctls ? MSR_IA32_VMX_TRUE_PINBASED_CTLS : MSR_IA32_VMX_PINBASED_CTLS,
			   PIN_EXTINT_EXITING | PIN_NMI_EXITING | PIN_PREEMPTION_TIMER | PIN_VIRTUAL_NMIS,
			   PIN_EXTINT_EXITING | PIN_NMI_EXITING, &c->pin)) {
		*why = "no external-interrupt or NMI exiting";
		return false;
	}
	c->ptimer = c->pin & PIN_PREEMPTION_TIMER;
	if (!pick_controls(true_ctls ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS,
			   CPU_HLT_EXITING | CPU_UNCOND_IO_EXITING | CPU_USE_MSR_BITMAPS |
			   CPU_SECONDARY_CONTROLS | CPU_MWAIT_EXITING | CPU_MONITOR_EXITING | CPU_RDPMC_EXITING |
			   CPU_CR8_LOAD_EXITING | CPU_CR8_STORE_EXITING | CPU_INTR_WINDOW_EXITING |
			   CPU_NMI_WINDOW_EXITING | CPU_USE_TSC_OFFSETTING,
			   /* CR8 exits: MOV CR8 would otherwise reach the real local APIC's TPR (SDM Vol. 3C,
			    * 26.3) and could block the host's own interrupts. */
			   CPU_HLT_EXITING | CPU_UNCOND_IO_EXITING | CPU_USE_MSR_BITMAPS | CPU_SECONDARY_CONTROLS |
			   CPU_CR8_LOAD_EXITING | CPU_CR8_STORE_EXITING,
			   &c->cpu)) {
		*why = "no secondary processor-based controls, MSR bitmaps or CR8 exiting";
		return false;
	}
	/* With EPT and unrestricted guest, CR3 accesses need not exit: drop those where allowed. */
	c->cpu &= ~((CPU_CR3_LOAD_EXITING | CPU_CR3_STORE_EXITING) & ~(uint32_t)rdmsr(
			  true_ctls ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS));
	c->cpu &= ~(CPU_INVLPG_EXITING & ~(uint32_t)rdmsr(
			  true_ctls ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS));
	/* Shadow paging (vmx/spt.c) sets them again per guest: allowed-1 settings, SDM Vol. 3D, A.3.2. */
	c->spt = ((rdmsr(true_ctls ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS) >> 32) &
		  (CPU_CR3_LOAD_EXITING | CPU_CR3_STORE_EXITING | CPU_INVLPG_EXITING)) ==
		 (CPU_CR3_LOAD_EXITING | CPU_CR3_STORE_EXITING | CPU_INVLPG_EXITING) && cpu_has(CPU_NX);

	/* EPT where offered (SDM Vol. 3C, 25.6.2, Table 25-7, bit 1); without it every guest runs on
	 * shadow paging, and unrestricted guest, which needs EPT (27.2.1.1), is off too. */
	pick_controls(MSR_IA32_VMX_PROCBASED_CTLS2,
		      SEC_ENABLE_EPT | SEC_UNRESTRICTED_GUEST | SEC_ENABLE_VPID | SEC_RDTSCP |
		      SEC_INVPCID | SEC_WBINVD_EXITING, 0, &c->cpu2);
	c->ept = c->cpu2 & SEC_ENABLE_EPT;
	if (!c->ept)
		c->cpu2 &= ~SEC_UNRESTRICTED_GUEST;
	if (!c->ept && !c->spt) {
		*why = "no EPT, and no shadow paging (CR3-load and INVLPG exiting, XD) either";
		return false;
	}
	/* Without unrestricted guest, guests start with paging off only on shadow paging's identity root
	 * (vmx/spt.c). */
	c->ug = c->cpu2 & SEC_UNRESTRICTED_GUEST;
	if (!c->ug && !c->spt) {
		*why = "no unrestricted guest (guests start with paging off, which needs it or shadow paging)";
		return false;
	}
	/* IA32_EFER is switched by the VM-entry/exit controls where offered (SDM Vol. 3C, 25.7.1, Table
	 * 25-13, bits 20-21; 25.8.1, Table 25-15, bit 15), else by the MSR-load lists (25.7.2, 25.8.2):
	 * Bochs's penryn has no EFER controls. */
	if (!pick_controls(true_ctls ? MSR_IA32_VMX_TRUE_EXIT_CTLS : MSR_IA32_VMX_EXIT_CTLS,
			   EXIT_HOST_ADDR_SPACE_SIZE | EXIT_SAVE_IA32_EFER | EXIT_LOAD_IA32_EFER |
			   EXIT_SAVE_IA32_PAT | EXIT_LOAD_IA32_PAT | EXIT_SAVE_PREEMPTION_TIMER |
			   EXIT_SAVE_DEBUG_CONTROLS,
			   EXIT_HOST_ADDR_SPACE_SIZE, &c->exit)) {
		*why = "no VM exit to a 64-bit host";
		return false;
	}
	pick_controls(true_ctls ? MSR_IA32_VMX_TRUE_ENTRY_CTLS : MSR_IA32_VMX_ENTRY_CTLS,
		      ENTRY_LOAD_IA32_EFER | ENTRY_LOAD_IA32_PAT | ENTRY_LOAD_DEBUG_CONTROLS, 0, &c->entry);
	c->efer_ctls = (c->exit & EXIT_SAVE_IA32_EFER) && (c->exit & EXIT_LOAD_IA32_EFER) &&
		       (c->entry & ENTRY_LOAD_IA32_EFER);
	if (!c->efer_ctls) {
		c->exit &= ~(EXIT_SAVE_IA32_EFER | EXIT_LOAD_IA32_EFER);
		c->entry &= ~ENTRY_LOAD_IA32_EFER;
	}
	c->entry &= ~ENTRY_IA32E_MODE; /* set per guest, when it enters long mode */
	/* PAT is switched only if both directions are: otherwise one guest's PAT would leak. */
	if (!(c->exit & EXIT_SAVE_IA32_PAT) || !(c->exit & EXIT_LOAD_IA32_PAT) || !(c->entry & ENTRY_LOAD_IA32_PAT)) {
		c->exit &= ~(EXIT_SAVE_IA32_PAT | EXIT_LOAD_IA32_PAT);
		c->entry &= ~ENTRY_LOAD_IA32_PAT;
	}
	/* "Save VMX-preemption timer value" (SDM Vol. 3C, 25.7.1, Table 25-13, bit 22) only with the timer. */
	if (!c->ptimer)
		c->exit &= ~EXIT_SAVE_PREEMPTION_TIMER;
	c->save_timer = c->exit & EXIT_SAVE_PREEMPTION_TIMER;
	/* APIC virtualization (SDM Vol. 3C, chapter 30): used when the CPU offers all of the TPR shadow,
	 * virtualized APIC accesses, APIC-register virtualization and virtual-interrupt delivery; turned
	 * on per vCPU (vcpu.c), so not part of the default controls. */
	c->apicv = (rdmsr(true_ctls ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS) >> 32 &
		    CPU_TPR_SHADOW) &&
		   ((rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2) >> 32) & (SEC_VIRT_APIC_ACCESSES | SEC_APIC_REG_VIRT |
		    SEC_VIRT_INTR_DELIVERY)) == (SEC_VIRT_APIC_ACCESSES | SEC_APIC_REG_VIRT | SEC_VIRT_INTR_DELIVERY);
	/* The same for an APIC in x2APIC mode, whose registers are MSRs: "virtualize x2APIC mode"
	 * (25.6.2, Table 25-7, bit 4) in place of the APIC-access page (30.5). */
	c->x2apicv = c->apicv && ((rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2) >> 32) & SEC_VIRT_X2APIC);
	/* The window exits are switched on only while an event waits (exit.c): off by default. NMI-
	 * window exiting exists only with virtual NMIs (SDM Vol. 3C, 27.2.1.1). */
	c->intr_window = c->cpu & CPU_INTR_WINDOW_EXITING;
	c->nmi_window = (c->cpu & CPU_NMI_WINDOW_EXITING) && (c->pin & PIN_VIRTUAL_NMIS);
	c->cpu &= ~(CPU_INTR_WINDOW_EXITING | CPU_NMI_WINDOW_EXITING);
	if (!c->intr_window) {
		*why = "no interrupt-window exiting";
		return false;
	}

	/* IA32_VMX_EPT_VPID_CAP exists only if "enable EPT" or "enable VPID" may be 1 (SDM Vol. 3D,
	 * A.10): Bochs's penryn faults on it. */
	c->ept_vpid = c->cpu2 & (SEC_ENABLE_EPT | SEC_ENABLE_VPID) ? rdmsr(MSR_IA32_VMX_EPT_VPID_CAP) : 0;
	if (c->ept && (!(c->ept_vpid & EPT_CAP_WALK4) || !(c->ept_vpid & EPT_CAP_WB) ||
		       !(c->ept_vpid & EPT_CAP_INVEPT) || !(c->ept_vpid & (EPT_CAP_INVEPT_SINGLE | EPT_CAP_INVEPT_ALL)))) {
		/* EPT unusable (no 4-level walks, write-back paging structures or INVEPT): shadow paging. */
		c->cpu2 &= ~(SEC_ENABLE_EPT | SEC_UNRESTRICTED_GUEST);
		c->ept = c->ug = false;
		if (!c->spt) {
			*why = "EPT without 4-level walks, write-back paging structures or INVEPT, and no shadow paging";
			return false;
		}
	}
	/* Without EPT the tables in EPT format are walked by software only (gmem_lookup, for shadow
	 * paging): 2 MiB blocks as on lynnfield, for 2 MiB chunks. */
	c->ept_page_sizes = !c->ept ? EPT_PAGE_4K | EPT_PAGE_2M :
			    EPT_PAGE_4K | (c->ept_vpid & EPT_CAP_2M ? EPT_PAGE_2M : 0) |
			    (c->ept_vpid & EPT_CAP_1G ? EPT_PAGE_1G : 0);
	c->ept_ad = c->ept && (c->ept_vpid & EPT_CAP_AD);
	/* VPIDs are reused after an INVVPID (vcpu.c): only use them if it exists. Without them VM entries
	 * and exits flush the guest's linear translations (SDM Vol. 3C, 29.1). */
	c->vpid = (c->cpu2 & SEC_ENABLE_VPID) && (c->ept_vpid & VPID_CAP_INVVPID);
	if (!c->vpid)
		c->cpu2 &= ~SEC_ENABLE_VPID;
	c->preemption_shift = rdmsr(MSR_IA32_VMX_MISC) & 0x1f;
	c->cr0_fixed0 = rdmsr(MSR_IA32_VMX_CR0_FIXED0);
	c->cr0_fixed1 = rdmsr(MSR_IA32_VMX_CR0_FIXED1);
	c->cr4_fixed0 = rdmsr(MSR_IA32_VMX_CR4_FIXED0);
	c->cr4_fixed1 = rdmsr(MSR_IA32_VMX_CR4_FIXED1);
	return true;
}

static int vmxon(unsigned cpu)
{
	uint64_t region = vmx_cpu[cpu].vmxon_region, fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
	uint64_t cr0 = read_cr0(), cr4 = read_cr4();
	bool fail;

	/* FEATURE_CONTROL is per core on some CPUs: lock it here too if firmware left it open. */
	if (!(fc & FEATURE_CONTROL_LOCKED))
		wrmsr(MSR_IA32_FEATURE_CONTROL, fc | FEATURE_CONTROL_LOCKED | FEATURE_CONTROL_VMX_OUTSIDE_SMX);
	else if (!(fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX))
		return -ENODEV;
	if (!region) {
		if (!(region = pmm_alloc_page()))
			return -ENOMEM;
		vmx_cpu[cpu].vmxon_region = region;
	}
	/* SDM Vol. 3C, 24.11.5: the VMXON region starts with the VMCS revision identifier. */
	memset(phys_to_virt(region), 0, PAGE_SIZE);
	*(uint32_t *)phys_to_virt(region) = vmx_caps.revision;

	/* SDM Vol. 3C, 24.8: CR0 and CR4 must satisfy the VMX fixed bits in VMX operation. */
	cr0 = (cr0 | vmx_caps.cr0_fixed0) & vmx_caps.cr0_fixed1;
	cr4 = (cr4 | vmx_caps.cr4_fixed0 | CR4_VMXE) & vmx_caps.cr4_fixed1;
	/* XSETBV needs CR4.OSXSAVE (the host switches each guest's XCR0, vcpu.c); FXSAVE saves the
	 * XMM registers only with CR4.OSFXSR (SDM Vol. 2A, FXSAVE). */
	if (cpu_has(CPU_XSAVE))
		cr4 |= CR4_OSXSAVE;
	cr4 |= CR4_OSFXSR;
	write_cr0(cr0);
	write_cr4(cr4);
	asm volatile("vmxon %1; setna %0" : "=qm"(fail) : "m"(region) : "cc", "memory");
	return fail ? -EBUSY : 0;
}

void vmx_cpu_on(void)
{
	unsigned cpu = this_cpu_id();

	vmx_cpu[cpu].state = vmxon(cpu) ? -1 : 1;
}

int vmx_cpu_state(unsigned cpu)
{
	return vmx_cpu[cpu].state;
}

void vmx_cpu_off(void)
{
	/* SDM Vol. 3C, 24.7: VMXOFF leaves VMX operation (a current VMCS may stay behind: nothing uses
	 * it again); then CR4.VMXE may be cleared. VMXOFF outside VMX operation is #UD: checked. */
	unsigned cpu = this_cpu_id();

	if (vmx_cpu[cpu].state != 1)
		return;
	asm volatile("vmxoff" : : : "cc", "memory");
	write_cr4(read_cr4() & ~CR4_VMXE);
	vmx_cpu[cpu].state = 0;
}

void vmcs_read_failed(enum vmcs_field f, void *caller)
{
	uint64_t err = 0;

	if (f != VM_INSTRUCTION_ERROR)
		err = vmcs_read(VM_INSTRUCTION_ERROR);
	pr_err("hv: vmread 0x%x failed (VM-instruction error %lu) from %p\n", f, err, caller);
}

void vmcs_write_failed(enum vmcs_field f, uint64_t v, void *caller)
{
	pr_err("hv: vmwrite 0x%x = 0x%lx failed (VM-instruction error %lu) from %p\n", f, v,
	       vmcs_read(VM_INSTRUCTION_ERROR), caller);
}

void vmx_invept(uint64_t eptp)
{
	/* INVEPT descriptor: EPTP, then 64 reserved bits (SDM Vol. 3C, 31.3, INVEPT). Type 1 =
	 * single-context, type 2 = all contexts (used when single-context is missing). */
	struct { uint64_t eptp, zero; } desc = { eptp, 0 };
	uint64_t type = vmx_caps.ept_vpid & EPT_CAP_INVEPT_SINGLE ? 1 : 2;

	if (!vmx_caps.ept)          /* no EPT, no INVEPT (#UD, SDM Vol. 2B, INVEPT): nothing cached */
		return;
	asm volatile("invept %0, %1" : : "m"(desc), "r"(type) : "cc", "memory");
}

/* INVVPID of `type` (SDM Vol. 3C, 31.3, INVVPID): 0 individual-address (VMfail for a non-canonical
 * `gva`, which the callers never give: shadow.h), 1 single-context, 2 all contexts except VPID 0. The
 * descriptor: VPID in bits 15:0, then the linear address (used by type 0 only). No-op without VPIDs. */
static void invvpid(uint64_t type, uint16_t vpid, uint64_t gva)
{
	struct { uint64_t vpid, gva; } desc = { vpid, gva };

	if (vmx_caps.vpid)
		asm volatile("invvpid %0, %1" : : "m"(desc), "r"(type) : "cc", "memory");
}

void vmx_invvpid(uint16_t vpid)
{
	invvpid(vmx_caps.ept_vpid & VPID_CAP_SINGLE ? 1 : 2, vpid, 0);
}

void vmx_invvpid_addr(uint16_t vpid, uint64_t gva)
{
	if (vmx_caps.ept_vpid & VPID_CAP_INDIVIDUAL)
		invvpid(0, vpid, gva);
	else
		vmx_invvpid(vpid);
}

/* VM-instruction error numbers. SDM Vol. 3C, 31.4, Table 31-1. */
const char *vm_instruction_error_name(unsigned e)
{
	switch (e) {
	case 3: return "VMCLEAR with VMXON pointer";
	case 4: return "VMLAUNCH with non-clear VMCS";
	case 5: return "VMRESUME with non-launched VMCS";
	case 7: return "VM entry with invalid control field(s)";
	case 8: return "VM entry with invalid host-state field(s)";
	case 9: return "VMPTRLD with invalid physical address";
	case 11: return "VMPTRLD with incorrect VMCS revision identifier";
	case 12: return "VMREAD/VMWRITE unsupported VMCS component";
	case 13: return "VMWRITE to read-only VMCS component";
	case 26: return "VM entry with events blocked by MOV SS";
	default: return "see SDM Vol. 3C, Table 31-1";
	}
}
