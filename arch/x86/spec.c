/* Speculative-execution mitigations between guests: which ones this CPU needs, decided from what it
 * reports (CPUID leaf 7 and Fn8000_0008, IA32_ARCH_CAPABILITIES), never from its model number; and the
 * host's part of applying them. The entry/exit paths (vmx/entry.asm, vmx/exit.c, svm/vcpu.c) and
 * vcpu_load do the rest. */
#include <stddef.h>
#include "arch/x86/spec.h"
#include "lib/format.h"
#ifndef HOST_TEST
#include "arch/x86/cpu.h"
#include "arch/x86/gdt.h"
#include "console/printk.h"
#endif

/*
 * The choice. Each rule names the vulnerability, how the CPU says it is affected, and the remedy.
 *
 * L1TF (Intel's "Deep Dive: L1 Terminal Fault"): a guest's terminal page fault reads the L1D whatever
 * the EPT says, so data another guest or the hypervisor left in this core's L1D leaks. Affected: an
 * Intel CPU without ARCH_CAPABILITIES.RDCL_NO. Remedy: IA32_FLUSH_CMD.L1D_FLUSH before VM entry,
 * unless SKIP_L1DFL_VMENTRY says the CPU needs none. Policy: on every VM entry, as Xen does. KVM's
 * default ("cond") flushes only after exits whose handling may have brought others' data into the
 * L1D; here one CPU handles the exits of every guest pinned to it and reaches all their state, and
 * no exit path has been audited for what it touches, so no exit is assumed clean.
 *
 * MDS, TAA, RFDS (Intel's "Deep Dive: Microarchitectural Data Sampling"; "TSX Asynchronous Abort";
 * "Register File Data Sampling"): store/fill/load buffers (register files) hold others' data that a
 * guest may sample. Affected: no MDS_NO; or TSX (CPUID.7.0:EBX.RTM) without TAA_NO; or RFDS_CLEAR.
 * Remedy: VERW with a writable data segment's selector before VM entry, which overwrites them on a
 * CPU that reports MD_CLEAR (or RFDS_CLEAR). Not needed when the L1D is flushed on every entry: on
 * such CPUs the L1D_FLUSH command overwrites the same buffers (MDS deep dive, "VMM" section).
 *
 * Spectre v2, branch target injection (Intel's "Speculative Execution Side Channel Mitigations"):
 * - guest -> hypervisor: the hypervisor is built with retpolines (Makefile), whatever the CPU: no
 *   indirect branch of its own predicts from the BTB; with enhanced IBRS (ARCH_CAPABILITIES.IBRS_ALL)
 *   IA32_SPEC_CTRL.IBRS is also kept set in the hypervisor, where VMX root operation is a more
 *   privileged predictor mode than any guest's.
 * - guest -> guest: a guest can train the predictors another guest then uses on the same core; eIBRS
 *   does not separate two guests (same predictor mode). Remedy: IBPB (IA32_PRED_CMD) when a CPU goes
 *   from one guest's vCPU to another guest's (vcpu_load). Needs CPUID.7.0:EDX.IBRS_IBPB (Intel) or
 *   CPUID Fn8000_0008_EBX.IBPB (AMD, which leaves the leaf-7 bit clear: "Software Techniques for
 *   Managing Speculation on AMD Processors"; the same MSR and bit, IA32_PRED_CMD[0]).
 * - return stack buffer: after a VM exit, RETs may predict from entries the guest left. Remedy: 32
 *   calls overwrite the RSB after every exit. Under eIBRS the guest's entries are not used by the
 *   host, except the one of its last CALL on CPUs without PBRSB_NO: one CALL before the first RET
 *   covers that (Intel's "Post-barrier Return Stack Buffer Predictions"); with PBRSB_NO nothing is
 *   needed. Linux chooses the same (spectre_v2_determine_rsb_fill_type_at_vmexit).
 *
 * Guests get the controls the CPU has: IA32_SPEC_CTRL (the bits CPUID enumerates), IA32_PRED_CMD,
 * IA32_FLUSH_CMD, and a read of IA32_ARCH_CAPABILITIES filtered to ARCH_CAP_GUEST_BITS, so that a
 * kernel protects itself as on this CPU and learns what it is not affected by. Each is offered by the
 * vendor's own CPUID bit as the host has it (leaf 7 EDX, Fn8000_0008_EBX), since that is where a
 * kernel for that vendor looks.
 */
void spec_choose(const struct spec_cpu *cpu, struct spec_policy *p)
{
	uint32_t edx = cpu->cpuid7_edx, x8 = cpu->cpuid80000008_ebx;
	uint64_t caps = edx & CPUID_7_0_EDX_ARCH_CAPS ? cpu->arch_caps : 0;
	bool l1tf = cpu->intel && !(caps & ARCH_CAP_RDCL_NO) && !(caps & ARCH_CAP_SKIP_L1DFL_VMENTRY);
	bool mds = cpu->intel && (!(caps & ARCH_CAP_MDS_NO) ||
				  ((cpu->cpuid7_ebx & CPUID_7_0_EBX_RTM) && !(caps & ARCH_CAP_TAA_NO)) ||
				  (caps & ARCH_CAP_RFDS_CLEAR));
	bool eibrs = (edx & CPUID_7_0_EDX_IBRS_IBPB) && (caps & ARCH_CAP_IBRS_ALL);

	*p = (struct spec_policy){ 0 };
	if (l1tf) {
		if (edx & CPUID_7_0_EDX_L1D_FLUSH)
			p->on |= SPEC_L1D_FLUSH;
		else
			p->open |= SPEC_OPEN_L1TF;
	}
	if (mds && !(p->on & SPEC_L1D_FLUSH)) {
		if ((edx & CPUID_7_0_EDX_MD_CLEAR) || (caps & ARCH_CAP_RFDS_CLEAR))
			p->on |= SPEC_VERW;
		else
			p->open |= SPEC_OPEN_MDS;
	}
	if ((edx & CPUID_7_0_EDX_IBRS_IBPB) || (x8 & CPUID_80000008_EBX_IBPB))
		p->on |= SPEC_IBPB;
	else
		p->open |= SPEC_OPEN_IBPB;
	if (eibrs) {
		p->on |= SPEC_EIBRS;
		p->host_spec_ctrl = SPEC_CTRL_IBRS;
	}
	if (!eibrs)
		p->on |= SPEC_RSB_FILL;
	else if (!(caps & ARCH_CAP_PBRSB_NO))
		p->on |= SPEC_RSB_CALL;

	/* IA32_SPEC_CTRL exists if any of its bits is enumerated (SDM Vol. 4, Table 2-2), by either
	 * vendor's bit: on AMD, IBRS, STIBP and SSBD are Fn8000_0008_EBX bits 14, 15 and 24 for the same
	 * bits 0, 1 and 2 of MSR 48h (an IBPB-only AMD CPU has no IA32_SPEC_CTRL). */
	if ((edx & CPUID_7_0_EDX_IBRS_IBPB) || (x8 & CPUID_80000008_EBX_IBRS))
		p->guest_spec_ctrl_bits |= SPEC_CTRL_IBRS;
	if ((edx & CPUID_7_0_EDX_STIBP) || (x8 & CPUID_80000008_EBX_STIBP))
		p->guest_spec_ctrl_bits |= SPEC_CTRL_STIBP;
	if ((edx & CPUID_7_0_EDX_SSBD) || (x8 & CPUID_80000008_EBX_SSBD))
		p->guest_spec_ctrl_bits |= SPEC_CTRL_SSBD;
	/* Not IA32_CORE_CAPABILITIES (its MSR is not emulated). */
	p->guest_cpuid7_edx = edx & (CPUID_7_0_EDX_IBRS_IBPB | CPUID_7_0_EDX_STIBP | CPUID_7_0_EDX_L1D_FLUSH |
				     CPUID_7_0_EDX_ARCH_CAPS | CPUID_7_0_EDX_SSBD);
	p->guest_cpuid80000008_ebx = x8 & CPUID_80000008_EBX_SPEC_MSRS;
	p->guest_arch_caps = caps & ARCH_CAP_GUEST_BITS;
}

/* Appends ", text" (or "text" first in its group) when `cond`; `*first` tracks the group. */
static unsigned item(char *buf, unsigned size, unsigned n, bool cond, bool *first, const char *text)
{
	if (!cond || n >= size)
		return n;
	n += (unsigned)snformat(buf + n, size - n, "%s%s", *first ? "" : ", ", text);
	*first = false;
	return n < size ? n : size - 1;
}

static unsigned group(char *buf, unsigned size, unsigned n, const char *title)
{
	if (n >= size)
		return n;
	n += (unsigned)snformat(buf + n, size - n, "%s%s: ", n ? "; " : "", title);
	return n < size ? n : size - 1;
}

unsigned spec_describe(const struct spec_cpu *cpu, const struct spec_policy *p, char *buf, unsigned size)
{
	uint64_t caps = cpu->cpuid7_edx & CPUID_7_0_EDX_ARCH_CAPS ? cpu->arch_caps : 0;
	bool first = true;
	unsigned n = 0;

	buf[0] = 0;
	n = group(buf, size, n, "on");
	n = item(buf, size, n, p->on & SPEC_L1D_FLUSH, &first, "L1D flush on VM entry");
	n = item(buf, size, n, p->on & SPEC_VERW, &first, "VERW on VM entry");
	n = item(buf, size, n, p->on & SPEC_IBPB, &first, "IBPB on guest switch");
	n = item(buf, size, n, p->on & SPEC_RSB_FILL, &first, "RSB fill on VM exit");
	n = item(buf, size, n, p->on & SPEC_RSB_CALL, &first, "RSB CALL on VM exit (PBRSB)");
	n = item(buf, size, n, p->on & SPEC_EIBRS, &first, "eIBRS");
	n = item(buf, size, n, true, &first, "retpolines");
	first = true;
	n = group(buf, size, n, "not needed");
	n = item(buf, size, n, !cpu->intel, &first, "L1D flush and VERW (not Intel)");
	n = item(buf, size, n, cpu->intel && !(p->on & SPEC_L1D_FLUSH) && !(p->open & SPEC_OPEN_L1TF),
		 &first, caps & ARCH_CAP_RDCL_NO ? "L1D flush (RDCL_NO)" : "L1D flush (SKIP_L1DFL_VMENTRY)");
	n = item(buf, size, n, cpu->intel && !(p->on & (SPEC_VERW | SPEC_L1D_FLUSH)) && !(p->open & SPEC_OPEN_MDS),
		 &first, "VERW (MDS_NO, TAA_NO)");
	n = item(buf, size, n, !(p->on & (SPEC_RSB_FILL | SPEC_RSB_CALL)), &first, "RSB fill (eIBRS, PBRSB_NO)");
	n = item(buf, size, n, first, &first, "none");
	if (p->open) {
		first = true;
		n = group(buf, size, n, "OPEN");
		n = item(buf, size, n, p->open & SPEC_OPEN_L1TF, &first, "L1TF (no L1D_FLUSH)");
		n = item(buf, size, n, p->open & SPEC_OPEN_MDS, &first, "MDS (no MD_CLEAR)");
		n = item(buf, size, n, p->open & SPEC_OPEN_IBPB, &first, "guest-to-guest BTI (no IBPB)");
	}
	first = true;
	n = group(buf, size, n, "guests get");
	n = item(buf, size, n, p->guest_spec_ctrl_bits, &first, "SPEC_CTRL");
	n = item(buf, size, n, spec_guest_pred_cmd(p), &first, "PRED_CMD");
	n = item(buf, size, n, p->guest_cpuid7_edx & CPUID_7_0_EDX_L1D_FLUSH, &first, "FLUSH_CMD");
	n = item(buf, size, n, p->guest_cpuid7_edx & CPUID_7_0_EDX_ARCH_CAPS, &first, "ARCH_CAPABILITIES");
	n = item(buf, size, n, first, &first, "none");
	return n;
}

#ifndef HOST_TEST
struct spec_policy spec;
uint8_t spec_rsb_rounds, spec_verw_on_entry;
/* VERW's operand: a valid writable data segment, the only kind whose VERW clears the buffers on
 * MD_CLEAR CPUs (MDS deep dive, "Software sequences"). */
const uint16_t spec_verw_sel = SEL_DATA;

void spec_init(void)
{
	struct spec_cpu cpu = { .intel = cpu_is_intel() };
	char line[400];

	if (cpuid(0, 0).eax >= 7) {
		struct cpuid_regs r = cpuid(7, 0);

		cpu.cpuid7_ebx = r.ebx;
		cpu.cpuid7_edx = r.edx;
	}
	if (cpuid(0x80000000u, 0).eax >= 0x80000008u)
		cpu.cpuid80000008_ebx = cpuid(0x80000008u, 0).ebx;
	if (cpu.cpuid7_edx & CPUID_7_0_EDX_ARCH_CAPS)
		cpu.arch_caps = rdmsr(MSR_IA32_ARCH_CAPABILITIES);
	spec_choose(&cpu, &spec);
	spec_rsb_rounds = spec.on & SPEC_RSB_FILL ? 16 : spec.on & SPEC_RSB_CALL ? 1 : 0;
	spec_verw_on_entry = !!(spec.on & SPEC_VERW);
	spec_describe(&cpu, &spec, line, sizeof(line));
	pr_info("hv: spec: %s\n", line);
}

void spec_cpu_on(void)
{
	if (spec.guest_spec_ctrl_bits)
		wrmsr(MSR_IA32_SPEC_CTRL, spec.host_spec_ctrl);
}

uint32_t spec_guest_cpuid7_edx(void)
{
	return spec.guest_cpuid7_edx;
}

uint32_t spec_guest_cpuid80000008_ebx(void)
{
	return spec.guest_cpuid80000008_ebx;
}
#endif
