/* Which neutral exit kind each VMX basic exit reason counts as, and the reasons' names. */
#include "vmx/exit_kind.h"

_Static_assert(VCPU_EXIT_KINDS <= 256, "vmx_exit_kinds[] holds a kind in a byte");

#define K(reason, kind) [reason] = kind
/* Every reason UNEXPECTED first, then the handled ones over it: the overriding is the point. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
/* SDM Vol. 3D, Appendix C, Table C-1. The order of the kinds follows the reasons' (exit_kind.h). */
const uint8_t vmx_exit_kinds[EXIT_REASON_MAX + 1] = {
	[0 ... EXIT_REASON_MAX] = VCPU_EXIT_UNEXPECTED,
	K(EXIT_EXCEPTION_NMI, VCPU_EXIT_EXCEPTION),
	K(EXIT_EXTERNAL_INTERRUPT, VCPU_EXIT_EXTINT),
	K(EXIT_TRIPLE_FAULT, VCPU_EXIT_TRIPLE_FAULT),
	K(EXIT_INTERRUPT_WINDOW, VCPU_EXIT_INTR_WINDOW),
	K(EXIT_NMI_WINDOW, VCPU_EXIT_NMI_WINDOW),
	K(EXIT_TASK_SWITCH, VCPU_EXIT_TASK_SWITCH),
	K(EXIT_CPUID, VCPU_EXIT_CPUID),
	K(EXIT_GETSEC, VCPU_EXIT_GETSEC),
	K(EXIT_HLT, VCPU_EXIT_HLT),
	K(EXIT_INVD, VCPU_EXIT_INVD),
	K(EXIT_INVLPG, VCPU_EXIT_INVLPG),
	K(EXIT_RDPMC, VCPU_EXIT_RDPMC),
	K(EXIT_VMCALL, VCPU_EXIT_VMCALL),
	K(EXIT_VMCLEAR, VCPU_EXIT_VMCLEAR),
	K(EXIT_VMLAUNCH, VCPU_EXIT_VMLAUNCH),
	K(EXIT_VMPTRLD, VCPU_EXIT_VMPTRLD),
	K(EXIT_VMPTRST, VCPU_EXIT_VMPTRST),
	K(EXIT_VMREAD, VCPU_EXIT_VMREAD),
	K(EXIT_VMRESUME, VCPU_EXIT_VMRESUME),
	K(EXIT_VMWRITE, VCPU_EXIT_VMWRITE),
	K(EXIT_VMOFF, VCPU_EXIT_VMXOFF),
	K(EXIT_VMON, VCPU_EXIT_VMXON),
	K(EXIT_CR_ACCESS, VCPU_EXIT_CR),
	K(EXIT_IO_INSTRUCTION, VCPU_EXIT_IO),
	K(EXIT_MSR_READ, VCPU_EXIT_RDMSR),
	K(EXIT_MSR_WRITE, VCPU_EXIT_WRMSR),
	K(EXIT_MWAIT, VCPU_EXIT_MWAIT),
	K(EXIT_MONITOR, VCPU_EXIT_MONITOR),
	K(EXIT_APIC_ACCESS, VCPU_EXIT_APIC_ACCESS),
	K(EXIT_EOI_INDUCED, VCPU_EXIT_EOI),
	K(EXIT_EPT_VIOLATION, VCPU_EXIT_NPF),
	K(EXIT_EPT_MISCONFIG, VCPU_EXIT_NPT_MISCONFIG),
	K(EXIT_INVEPT, VCPU_EXIT_INVEPT),
	K(EXIT_PREEMPTION_TIMER, VCPU_EXIT_PREEMPTION),
	K(EXIT_INVVPID, VCPU_EXIT_INVVPID),
	K(EXIT_WBINVD, VCPU_EXIT_WBINVD),
	K(EXIT_XSETBV, VCPU_EXIT_XSETBV),
	K(EXIT_APIC_WRITE, VCPU_EXIT_APIC_WRITE),
	K(EXIT_INVPCID, VCPU_EXIT_INVPCID),
	K(EXIT_VMFUNC, VCPU_EXIT_VMFUNC),
};
#pragma GCC diagnostic pop
#undef K

const char *exit_reason_name(unsigned r)
{
	static const char *const names[EXIT_REASON_MAX + 1] = {
		[EXIT_EXCEPTION_NMI] = "exception or NMI", [EXIT_EXTERNAL_INTERRUPT] = "external interrupt",
		[EXIT_TRIPLE_FAULT] = "triple fault", [EXIT_INIT] = "INIT", [EXIT_SIPI] = "SIPI",
		[EXIT_INTERRUPT_WINDOW] = "interrupt window", [EXIT_NMI_WINDOW] = "NMI window",
		[EXIT_TASK_SWITCH] = "task switch", [EXIT_CPUID] = "cpuid", [EXIT_GETSEC] = "getsec",
		[EXIT_HLT] = "hlt", [EXIT_INVD] = "invd", [EXIT_INVLPG] = "invlpg", [EXIT_RDPMC] = "rdpmc",
		[EXIT_RDTSC] = "rdtsc", [EXIT_RSM] = "rsm", [EXIT_VMCALL] = "vmcall",
		[EXIT_VMCLEAR] = "vmclear", [EXIT_VMLAUNCH] = "vmlaunch", [EXIT_VMPTRLD] = "vmptrld",
		[EXIT_VMPTRST] = "vmptrst", [EXIT_VMREAD] = "vmread", [EXIT_VMRESUME] = "vmresume",
		[EXIT_VMWRITE] = "vmwrite", [EXIT_VMOFF] = "vmxoff", [EXIT_VMON] = "vmxon",
		[EXIT_CR_ACCESS] = "cr", [EXIT_DR_ACCESS] = "dr", [EXIT_IO_INSTRUCTION] = "io",
		[EXIT_MSR_READ] = "rdmsr", [EXIT_MSR_WRITE] = "wrmsr",
		[EXIT_INVALID_GUEST_STATE] = "invalid guest state", [EXIT_MSR_LOADING] = "MSR loading",
		[EXIT_MWAIT] = "mwait", [EXIT_MONITOR_TRAP_FLAG] = "monitor trap flag",
		[EXIT_MONITOR] = "monitor", [EXIT_PAUSE] = "pause", [EXIT_MACHINE_CHECK] = "machine check",
		[EXIT_TPR_BELOW_THRESHOLD] = "TPR below threshold", [EXIT_APIC_ACCESS] = "APIC access", [EXIT_EOI_INDUCED] = "EOI induced",
		[EXIT_GDTR_IDTR] = "gdtr/idtr", [EXIT_LDTR_TR] = "ldtr/tr",
		[EXIT_EPT_VIOLATION] = "ept-violation", [EXIT_EPT_MISCONFIG] = "ept-misconfig",
		[EXIT_INVEPT] = "invept", [EXIT_RDTSCP] = "rdtscp", [EXIT_PREEMPTION_TIMER] = "preemption",
		[EXIT_INVVPID] = "invvpid", [EXIT_WBINVD] = "wbinvd", [EXIT_XSETBV] = "xsetbv", [EXIT_APIC_WRITE] = "APIC write",
		[EXIT_RDRAND] = "rdrand", [EXIT_INVPCID] = "invpcid", [EXIT_VMFUNC] = "vmfunc",
		[EXIT_RDSEED] = "rdseed", [EXIT_XSAVES] = "xsaves", [EXIT_XRSTORS] = "xrstors",
	};

	return r <= EXIT_REASON_MAX && names[r] ? names[r] : "unknown";
}
