/* The RDMSR and WRMSR exits: the MSRs a kernel needs (SDM Vol. 2B RDMSR, Vol. 2D WRMSR; Vol. 4),
 * the local APIC's through its model (vdev/lapic.c), the TSC and IA32_TSC_ADJUST over the TSC offset
 * the back end gives the CPU (vcpu/tsc.h, vcpu_set_tsc_offset), the speculation controls the CPU has
 * (arch/x86/spec.c); any other raises #GP. Vendor-neutral: over vcpu/guest.h. */
#include "arch/x86/spec.h"
#include "vcpu/handler.h"
#include "vcpu/tsc.h"

/* The guest's TSC moved (WRMSR of the TSC or IA32_TSC_ADJUST): the CPU adds the new offset to RDTSC,
 * and an armed TSC deadline, which the APIC model keeps in host ticks, is due at another host time
 * (it fires when the guest's TSC reaches it, SDM Vol. 3A, 11.5.4.1: a jump past it fires it). */
static void tsc_moved(struct vcpu *v, uint64_t now)
{
	uint64_t armed;

	vcpu_set_tsc_offset(v, v->tsc.offset);
	if (!vlapic_msr_read(&v->lapic, VLAPIC_MSR_TSC_DEADLINE, &armed, now) && armed)
		vlapic_msr_write(&v->lapic, VLAPIC_MSR_TSC_DEADLINE,
				 vtsc_deadline_to_host(&v->tsc, now, v->tsc.deadline), now);
}

int vcpu_handle_rdmsr(struct vcpu *v)
{
	uint32_t msr = v->regs.rcx;
	uint64_t val, now = rdtsc();

	switch (vlapic_msr_read(&v->lapic, msr, &val, now)) {
	case 0:
		/* Without VMX's preemption timer (vmx.c), and on SVM, the APIC timer's deadline exits by
		 * the host's APIC timer, which Bochs 2.7 does not give a guest entered with RFLAGS.IF = 0
		 * (core/hv.c, LONE_SLICE_US): an APIC register read shows a timer that expired meanwhile. */
		if (__builtin_expect(vcpu_slices_by_apic_timer, 0) && vlapic_timer_update(&v->lapic, now))
			vlapic_msr_read(&v->lapic, msr, &val, now);
		if (msr == VLAPIC_MSR_TSC_DEADLINE && val)
			val = v->tsc.deadline;      /* armed: the guest's value, not the host's */
		goto done;
	case -1:
		inject_gp(v);          /* the APIC's own #GP cases (SDM Vol. 3A, 11.12.1.2) */
		return HANDLED;
	default:                       /* not an APIC MSR */
		break;
	}
	switch (msr) {
	case MSR_EFER:                 val = vcpu_get_efer(v); break;
	case MSR_IA32_PAT:             val = vcpu_get_pat(v); break;
	case MSR_IA32_FEATURE_CONTROL: val = FEATURE_CONTROL_LOCKED; break; /* locked, VMX off */
	case MSR_IA32_MISC_ENABLE:     val = 1; break;                       /* fast strings */
	case MSR_IA32_TIME_STAMP_COUNTER: val = vtsc_guest(&v->tsc, now); break;
	case MSR_IA32_TSC_ADJUST:
		if (!vcpu_tsc_adjust_emulated()) {
			inject_gp(v);   /* CPUID.7.0:EBX[1] is 0 then */
			return HANDLED;
		}
		val = v->tsc.adjust;
		break;
	case 0x8b:                     val = 0; break;                       /* IA32_BIOS_SIGN_ID */
	case 0xfe:                     val = 0; break;                       /* IA32_MTRRCAP: no MTRRs */
	case 0x2ff:                    val = 6; break;                       /* MTRR_DEF_TYPE: WB, off */
	case MSR_IA32_SPEC_CTRL:       /* the guest's own value, where the CPU has the MSR (spec.c) */
		if (!spec.guest_spec_ctrl_bits)
			goto gp;
		val = v->spec_ctrl;
		break;
	case MSR_IA32_ARCH_CAPABILITIES: /* the host's, filtered (ARCH_CAP_GUEST_BITS) */
		if (!(spec.guest_cpuid7_edx & CPUID_7_0_EDX_ARCH_CAPS))
			goto gp;
		val = spec.guest_arch_caps;
		break;
	default:                       /* IA32_PRED_CMD and IA32_FLUSH_CMD too: write-only (Vol. 4) */
	gp:
		inject_gp(v);           /* SDM Vol. 2B, RDMSR: #GP for a reserved or unimplemented MSR */
		return HANDLED;
	}
done:
	v->regs.rax = (uint32_t)val;
	v->regs.rdx = val >> 32;
	return RETIRED;
}

int vcpu_handle_wrmsr(struct vcpu *v)
{
	uint32_t msr = v->regs.rcx;
	uint64_t val = (v->regs.rdx << 32) | (uint32_t)v->regs.rax, now = rdtsc();

	if (msr == VLAPIC_MSR_TSC_DEADLINE) {
		v->tsc.deadline = val;               /* read back as written; the model counts host ticks */
		val = vtsc_deadline_to_host(&v->tsc, now, val);
	}
	switch (vlapic_msr_write(&v->lapic, msr, val, now)) {
	case 0:
		if (msr == VLAPIC_MSR_APIC_BASE)
			vcpu_apic_base_changed(v);
		return RETIRED;
	case -1:
		inject_gp(v);
		return HANDLED;
	default:
		break;
	}
	switch (msr) {
	case MSR_EFER: {
		/* LMA is the CPU's to set (on CR0.PG, handle_cr); SCE, LME, NXE are the guest's. */
		uint64_t efer = vcpu_get_efer(v), lma = efer & EFER_LMA;

		/* SDM Vol. 2B, WRMSR, and Vol. 3A, 10.8.5: reserved bits, NXE without NX, and changing LME
		 * with paging on raise #GP (VM entry would refuse the result otherwise, 27.3.1.1). */
		if ((val & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)) ||
		    ((val & EFER_NXE) && !cpu_has(CPU_NX)) ||
		    (((val ^ efer) & EFER_LME) && (vcpu_get_cr0(v) & CR0_PG))) {
			inject_gp(v);
			return HANDLED;
		}
		vcpu_set_efer(v, (val & ~EFER_LMA) | lma);
		break;
	}
	case MSR_IA32_PAT:
		/* Each byte a memory type: 0, 1, 4, 5, 6 or 7 (SDM Vol. 3A, 13.12.2); else #GP. */
		for (unsigned i = 0; i < 8; i++) {
			unsigned t = (val >> (8 * i)) & 0xff;

			if (t == 2 || t == 3 || t > 7) {
				inject_gp(v);
				return HANDLED;
			}
		}
		vcpu_set_pat(v, val);
		break;
	case MSR_IA32_TIME_STAMP_COUNTER:
		/* Without "use TSC offsetting" the guest's TSC is the host's and cannot move: ignored. */
		if (vcpu_tsc_adjust_emulated()) {
			vtsc_write_tsc(&v->tsc, now, val);
			tsc_moved(v, now);
		}
		break;
	case MSR_IA32_TSC_ADJUST:
		if (!vcpu_tsc_adjust_emulated()) {
			inject_gp(v);
			return HANDLED;
		}
		vtsc_write_adjust(&v->tsc, val);
		tsc_moved(v, now);
		break;
	case 0x8b: case 0x2ff: case MSR_IA32_MISC_ENABLE:
		break;                 /* accepted and ignored */
	case MSR_IA32_SPEC_CTRL:
		/* #GP for a bit the CPU does not enumerate (SDM Vol. 4, Table 2-2), as on hardware; the
		 * value is loaded into the CPU before each VM entry (spec_before_entry). */
		if (val & ~spec.guest_spec_ctrl_bits || !spec.guest_spec_ctrl_bits) {
			inject_gp(v);
			return HANDLED;
		}
		v->spec_ctrl = val;
		break;
	default:
		inject_gp(v);
		return HANDLED;
	}
	return RETIRED;
}
