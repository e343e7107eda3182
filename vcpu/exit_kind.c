/* The vendor-neutral exit kinds' names and the summary the console contract prints (exit_kind.h). */
#include "lib/format.h"
#include "vcpu/exit_kind.h"

const char *vcpu_exit_kind_name(enum vcpu_exit_kind k)
{
	static const char *const names[VCPU_EXIT_KINDS] = {
		[VCPU_EXIT_EXCEPTION] = "exception or NMI", [VCPU_EXIT_EXTINT] = "external interrupt",
		[VCPU_EXIT_TRIPLE_FAULT] = "triple fault", [VCPU_EXIT_INTR_WINDOW] = "interrupt window",
		[VCPU_EXIT_NMI_WINDOW] = "NMI window", [VCPU_EXIT_TASK_SWITCH] = "task switch",
		[VCPU_EXIT_CPUID] = "cpuid", [VCPU_EXIT_GETSEC] = "getsec", [VCPU_EXIT_HLT] = "hlt",
		[VCPU_EXIT_INVD] = "invd", [VCPU_EXIT_INVLPG] = "invlpg", [VCPU_EXIT_RDPMC] = "rdpmc",
		[VCPU_EXIT_VMCALL] = "vmcall", [VCPU_EXIT_VMCLEAR] = "vmclear", [VCPU_EXIT_VMLAUNCH] = "vmlaunch",
		[VCPU_EXIT_VMPTRLD] = "vmptrld", [VCPU_EXIT_VMPTRST] = "vmptrst", [VCPU_EXIT_VMREAD] = "vmread",
		[VCPU_EXIT_VMRESUME] = "vmresume", [VCPU_EXIT_VMWRITE] = "vmwrite", [VCPU_EXIT_VMXOFF] = "vmxoff",
		[VCPU_EXIT_VMXON] = "vmxon", [VCPU_EXIT_CR] = "cr", [VCPU_EXIT_IO] = "io",
		[VCPU_EXIT_RDMSR] = "rdmsr", [VCPU_EXIT_WRMSR] = "wrmsr", [VCPU_EXIT_MWAIT] = "mwait",
		[VCPU_EXIT_MONITOR] = "monitor", [VCPU_EXIT_APIC_ACCESS] = "APIC access",
		[VCPU_EXIT_EOI] = "EOI induced", [VCPU_EXIT_NPF] = "ept-violation",
		[VCPU_EXIT_NPT_MISCONFIG] = "ept-misconfig", [VCPU_EXIT_INVEPT] = "invept",
		[VCPU_EXIT_PREEMPTION] = "preemption", [VCPU_EXIT_INVVPID] = "invvpid",
		[VCPU_EXIT_WBINVD] = "wbinvd", [VCPU_EXIT_XSETBV] = "xsetbv", [VCPU_EXIT_APIC_WRITE] = "APIC write",
		[VCPU_EXIT_INVPCID] = "invpcid", [VCPU_EXIT_VMFUNC] = "vmfunc",
		[VCPU_EXIT_UNEXPECTED] = "unexpected",
	};

	return (unsigned)k < VCPU_EXIT_KINDS && names[k] ? names[k] : "unknown";
}

void vcpu_exit_counts_add(struct vcpu_exit_counts *to, const struct vcpu_exit_counts *from)
{
	for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++)
		to->n[k] += from->n[k];
}

uint64_t vcpu_exit_total(const struct vcpu_exit_counts *c)
{
	uint64_t total = 0;

	for (unsigned k = 0; k < VCPU_EXIT_KINDS; k++)
		total += c->n[k];
	return total;
}

void vcpu_exit_summary(const struct vcpu_exit_counts *c, char *buf, unsigned size)
{
	unsigned n = snformat(buf, size, "total %lu", vcpu_exit_total(c));

	for (unsigned k = 0; k < VCPU_EXIT_KINDS && n < size; k++)
		if (c->n[k])
			n += snformat(buf + n, size - n, ", %s %u", vcpu_exit_kind_name(k), c->n[k]);
}
