/* What a VM exit was, in the hypervisor's own words: the vendor-neutral exit kind. Each back end
 * maps its exit codes to these (vmx/exit_kind.c: VMX basic exit reasons), the count is kept per kind
 * (vcpu_exit_count), and the console contract's `exits:` lines print the kinds' names. */
#pragma once
#include <stdint.h>

/*
 * The kinds, in the order the `exits:` lines list them. The names are the contract's words (docs/
 * console.md) and stay as they are whatever the back end: an AMD nested page fault (#NPF) or a
 * shadow-paging fault the hypervisor takes counts as "ept-violation" (the guest touched memory its
 * second-level translation does not allow), the SVM VMMCALL as "vmcall", a VMX-preemption timer or an
 * SVM timer interrupt the scheduler arms as "preemption". The order is VMX's basic exit reason order
 * (SDM Vol. 3D, Table C-1), which the lines have always used.
 */
enum vcpu_exit_kind {
	VCPU_EXIT_EXCEPTION,         /* "exception or NMI": an intercepted exception, or a host NMI */
	VCPU_EXIT_EXTINT,            /* "external interrupt": the host's, taken with the guest paused */
	VCPU_EXIT_TRIPLE_FAULT,      /* "triple fault" (shutdown) */
	VCPU_EXIT_INTR_WINDOW,       /* "interrupt window": the guest can take an interrupt now */
	VCPU_EXIT_NMI_WINDOW,        /* "NMI window" */
	VCPU_EXIT_TASK_SWITCH,       /* "task switch" */
	VCPU_EXIT_CPUID,             /* "cpuid" */
	VCPU_EXIT_GETSEC,            /* "getsec" */
	VCPU_EXIT_HLT,               /* "hlt" */
	VCPU_EXIT_INVD,              /* "invd" */
	VCPU_EXIT_INVLPG,            /* "invlpg" */
	VCPU_EXIT_RDPMC,             /* "rdpmc" */
	VCPU_EXIT_VMCALL,            /* "vmcall": the hypercall instruction */
	VCPU_EXIT_VMCLEAR,           /* "vmclear" ... "vmxon": VMX instructions, all #UD for a guest */
	VCPU_EXIT_VMLAUNCH,
	VCPU_EXIT_VMPTRLD,
	VCPU_EXIT_VMPTRST,
	VCPU_EXIT_VMREAD,
	VCPU_EXIT_VMRESUME,
	VCPU_EXIT_VMWRITE,
	VCPU_EXIT_VMXOFF,
	VCPU_EXIT_VMXON,
	VCPU_EXIT_CR,                /* "cr": a control-register access */
	VCPU_EXIT_IO,                /* "io": IN, OUT, INS, OUTS */
	VCPU_EXIT_RDMSR,             /* "rdmsr" */
	VCPU_EXIT_WRMSR,             /* "wrmsr" */
	VCPU_EXIT_MWAIT,             /* "mwait" */
	VCPU_EXIT_MONITOR,           /* "monitor" */
	VCPU_EXIT_APIC_ACCESS,       /* "APIC access": APIC virtualization could not complete an access */
	VCPU_EXIT_EOI,               /* "EOI induced": a virtualized EOI of a level-triggered vector */
	VCPU_EXIT_NPF,               /* "ept-violation": a second-level (EPT, NPT, shadow) page fault */
	VCPU_EXIT_NPT_MISCONFIG,     /* "ept-misconfig": a second-level table the CPU refuses (a bug) */
	VCPU_EXIT_INVEPT,            /* "invept" */
	VCPU_EXIT_PREEMPTION,        /* "preemption": the timer that ends a slice or brings a deadline */
	VCPU_EXIT_INVVPID,           /* "invvpid" */
	VCPU_EXIT_WBINVD,            /* "wbinvd" */
	VCPU_EXIT_XSETBV,            /* "xsetbv" */
	VCPU_EXIT_APIC_WRITE,        /* "APIC write": a trap-like write to the virtual APIC page */
	VCPU_EXIT_INVPCID,           /* "invpcid" */
	VCPU_EXIT_VMFUNC,            /* "vmfunc" */
	VCPU_EXIT_UNEXPECTED,        /* "unexpected": an exit no control tessera sets can cause (the
				      * guest is stopped with the back end's own name for it) */
	VCPU_EXIT_KINDS
};

/* The contract's name of a kind ("cpuid", "io", "ept-violation"...). */
const char *vcpu_exit_kind_name(enum vcpu_exit_kind k);

/* A vCPU's VM exits, one count per kind. */
struct vcpu_exit_counts {
	uint32_t n[VCPU_EXIT_KINDS];
};

/* The one place an exit is counted (the back end's dispatcher calls it with the kind it mapped). */
static inline __attribute__((always_inline)) void vcpu_exit_count(struct vcpu_exit_counts *c,
								   enum vcpu_exit_kind k)
{
	c->n[k]++;
}

/* Adds `from` into `to` (a guest's counts, summed over its vCPUs). */
void vcpu_exit_counts_add(struct vcpu_exit_counts *to, const struct vcpu_exit_counts *from);
/* All exits counted. */
uint64_t vcpu_exit_total(const struct vcpu_exit_counts *c);
/* The contract's summary: "total N, cpuid 3, io 12" (kinds with a count, in kind order). */
void vcpu_exit_summary(const struct vcpu_exit_counts *c, char *buf, unsigned size);
