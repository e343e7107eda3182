/* The CPUID exit: what a guest sees of the processor (SDM Vol. 2A, CPUID): the host's leaves with
 * what it cannot use hidden, the hypervisor leaves 0x40000000+, its own APIC ID and topology, the
 * TSC and APIC-timer frequencies. */
#include "arch/x86/spec.h"
#include "arch/x86/time.h"
#include "tessera/hypercall.h"
#include "vmx/handler.h"

/* Four characters of a string constant as the little-endian register CPUID returns them in. */
#define SIG4(s, i) ((uint32_t)(uint8_t)(s)[i] | (uint32_t)(uint8_t)(s)[(i) + 1] << 8 | \
		    (uint32_t)(uint8_t)(s)[(i) + 2] << 16 | (uint32_t)(uint8_t)(s)[(i) + 3] << 24)

/* The host's highest basic CPUID leaf (leaf 0 EAX), read once. */
static uint32_t host_max_basic;

int vmx_handle_cpuid(struct vcpu *v)
{
	uint32_t leaf = v->regs.rax, sub = v->regs.rcx;
	struct cpuid_regs r;

	if (leaf >= HV_CPUID_BASE && leaf < 0x50000000u) {
		/* Our own range (0x40000000-0x4FFFFFFF is reserved for hypervisors, SDM Vol. 2A CPUID):
		 * the base leaf names us, nothing beyond it is defined yet. Answered first and without
		 * the host's CPUID: `make bench` times this path. */
		bool base = leaf == HV_CPUID_BASE;

		v->regs.rax = base ? HV_CPUID_TIMING : 0;
		v->regs.rbx = base ? SIG4(HV_CPUID_SIGNATURE, 0) : 0;
		v->regs.rcx = base ? SIG4(HV_CPUID_SIGNATURE, 4) : 0;
		v->regs.rdx = base ? SIG4(HV_CPUID_SIGNATURE, 8) : 0;
		if (leaf == HV_CPUID_TIMING) {
			/* The guest's clocks: TSC and local APIC timer input, both the host TSC's rate. */
			v->regs.rax = tsc_khz;
			v->regs.rbx = tsc_khz;
		}
		skip_instruction();
		return HANDLED;
	}
	if (!host_max_basic)
		host_max_basic = cpuid(0, 0).eax;
	r = cpuid(leaf, sub);
	if (leaf > host_max_basic && leaf <= 0x16)
		r = (struct cpuid_regs){ 0, 0, 0, 0 };   /* leaves added below, not the host's last one */
	switch (leaf) {
	case 0:
		if (r.eax < 0x16)
			r.eax = 0x16;                  /* the time leaves below exist for every guest */
		break;
	case 0x15:
		/* TSC and core crystal clock (SDM Vol. 2A, CPUID leaf 15H): TSC = ECX * EBX / EAX Hz. The
		 * guest's local APIC timer counts TSC ticks (vdev/lapic.c), so the "crystal" is the TSC
		 * itself, ratio 1: a kernel then knows both clocks without calibrating them (Linux:
		 * native_calibrate_tsc, lapic_timer_period). Unknown (ECX = 0) past 4.29 GHz. */
		r.eax = r.ebx = 1;
		r.ecx = tsc_khz * 1000 <= 0xffffffffull ? (uint32_t)(tsc_khz * 1000) : 0;
		r.edx = 0;
		break;
	case 0x16:
		/* Processor base/maximum/bus frequencies in MHz (leaf 16H): the TSC's rate for all three. */
		r.eax = r.ebx = r.ecx = (uint32_t)(tsc_khz / 1000);
		r.edx = 0;
		break;
	case 1:
		/* OSXSAVE mirrors the guest's own CR4, not the host's (SDM Vol. 2A, CPUID, Table 3-10). */
		r.ecx = (r.ecx & ~(1u << 27)) | (vmcs_read(GUEST_CR4) & CR4_OSXSAVE ? 1u << 27 : 0);
		r.ecx &= ~(1u << 5);   /* VMX: not offered to guests (no nested virtualization) */
		r.ecx &= ~(1u << 3);   /* MONITOR/MWAIT: they exit and are not emulated */
		r.ecx &= ~(1u << 6);   /* SMX: GETSEC exits and is not emulated (CR4.SMXE refused) */
		/* Features whose MSRs are not emulated (msr.c would raise #GP on a kernel that saw the bit
		 * and used them, SDM Vol. 2A, CPUID, Table 3-10/3-11): debug store, enhanced SpeedStep,
		 * thermal monitors, the perfmon capabilities MSR, direct cache access, machine check. A CPU
		 * without them is a valid CPU; Linux then leaves IA32_THERM_INTERRUPT, MCG_CAP... alone. */
		r.ecx &= ~((1u << 2) | (1u << 4) | (1u << 7) | (1u << 8) | (1u << 15) | (1u << 18));
		r.edx &= ~((1u << 7) | (1u << 14) | (1u << 21) | (1u << 22) | (1u << 29));
		r.ecx |= 1u << 21;     /* x2APIC: the virtual local APIC has it (vdev/lapic.c) */
		r.ecx |= 1u << 24;     /* TSC-deadline timer mode, likewise */
		r.ecx |= 1u << 31;     /* hypervisor present */
		r.edx |= 1u << 9;      /* APIC: on-chip, as long as IA32_APIC_BASE.EN (SDM Vol. 2A, CPUID) */
		if (!(v->lapic.base & VLAPIC_BASE_EN))
			r.edx &= ~(1u << 9);
		/* Initial APIC ID = vCPU number; logical processors in the package = the guest's vCPUs. */
		r.ebx = (r.ebx & 0x0000ffff) | (v->index << 24) | ((v->vm->nvcpus & 0xff) << 16);
		r.edx = v->vm->nvcpus > 1 ? r.edx | (1u << 28) : r.edx & ~(1u << 28);  /* HTT */
		break;
	case 0xb:
	case 0x1f:
		/* Extended topology (SDM Vol. 2A, CPUID leaf 0BH): EDX is the x2APIC ID, which must be the
		 * vCPU's, never the host CPU's; one level of `nvcpus` logical processors. */
		if (sub == 0) {
			unsigned shift = 0;

			while ((1u << shift) < v->vm->nvcpus)
				shift++;
			r.eax = shift;
			r.ebx = v->vm->nvcpus;
			r.ecx = (1u << 8) | sub;     /* level type 1: SMT */
		} else {
			r.eax = r.ebx = 0;
			r.ecx = sub;                 /* level type 0: invalid, the end of the list */
		}
		r.edx = v->index;
		break;
	case 7:
		if (sub == 0) {
			if (!(vmx_caps.cpu2 & SEC_INVPCID))
				r.ebx &= ~(1u << 10);  /* INVPCID would #UD without the control */
			r.ecx &= ~(1u << 5);       /* WAITPKG: needs a control we do not set */
			r.ecx = (r.ecx & ~(1u << 4)) | (vmcs_read(GUEST_CR4) & (1ull << 22) ? 1u << 4 : 0); /* OSPKE */
			r.edx &= ~((1u << 22) | (1u << 24) | (1u << 25)); /* AMX: its state is not switched */
			/* MSRs of these are not emulated (SDM Vol. 2A, CPUID leaf 07H; Vol. 4, 2.1): TSC_ADJUST
			 * (IA32_TSC_ADJUST, read by Linux at every idle entry), SGX, MPX (IA32_BNDCFGS), Intel PT,
			 * CET (IA32_U_CET/S_CET). */
			r.ebx &= ~((1u << 1) | (1u << 2) | (1u << 14) | (1u << 25));
			r.ecx &= ~(1u << 7);
			r.edx &= ~(1u << 20);
			/* The speculation controls (bits 26-31: IA32_SPEC_CTRL, PRED_CMD, FLUSH_CMD,
			 * ARCH_CAPABILITIES, CORE_CAPABILITIES): those spec.c gives guests, no others. */
			r.edx &= ~CPUID_7_0_EDX_SPEC_MSRS | spec_guest_cpuid7_edx();
			if (!(vmx_caps.cpu2 & SEC_RDTSCP))
				r.ecx &= ~(1u << 22);  /* RDPID #UDs without "enable RDTSCP" (SDM Vol. 3C, 26.3) */
		} else if (sub == 1) {
			r.eax &= ~(1u << 17);      /* FRED: its MSRs and state are not switched */
		} else if (sub == 2) {
			r.edx = 0;                 /* PSFD, IPRED/RRSBA/BHI_CTRL...: more IA32_SPEC_CTRL bits */
		}
		break;
	case 6:
		/* Thermal and power management (SDM Vol. 2A, CPUID leaf 06H): none of its MSRs (APERF/MPERF,
		 * HWP, energy bias, thermal status) exist for a guest, so only ARAT (EAX bit 2: the APIC
		 * timer runs in every C-state) stays, which is true of the virtual local APIC: its timer is
		 * the guest TSC whatever the vCPU does. Without this, Linux reads APERF/MPERF each tick. */
		r.eax &= 1u << 2;
		r.ebx = r.ecx = r.edx = 0;
		break;
	case 0xa:
		r.eax = r.ebx = r.ecx = r.edx = 0; /* no performance monitoring for guests */
		break;
	case 0xd:
		if (sub == 0) {                    /* the XCR0 bits a guest may set (vcpu.c) */
			r.eax &= (uint32_t)vcpu_xcr0_allowed;
			r.edx &= (uint32_t)(vcpu_xcr0_allowed >> 32);
		} else if (sub == 1) {
			r.eax &= ~(1u << 3);       /* XSAVES/XRSTORS: not enabled, they would #UD */
		} else if (sub < 64 && !(vcpu_xcr0_allowed >> sub & 1) && sub != 1) {
			r.eax = r.ebx = r.ecx = r.edx = 0; /* a component the guest cannot enable */
		}
		break;
	case 0x80000001:
		if (!(vmx_caps.cpu2 & SEC_RDTSCP))
			r.edx &= ~(1u << 27);      /* RDTSCP would #UD */
		break;
	default:
		break;
	}
	v->regs.rax = r.eax;
	v->regs.rbx = r.ebx;
	v->regs.rcx = r.ecx;
	v->regs.rdx = r.edx;
	skip_instruction();
	return HANDLED;
}
