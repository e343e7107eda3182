/* AMD SVM capabilities: reads CPUID and VM_CR and decides whether guests can run on SVM here. */
#include "svm/caps.h"
#include "lib/format.h"
#ifndef HOST_TEST
#include "arch/x86/cpu.h"
#endif

struct svm_caps svm_caps;

bool svm_caps_decide(const struct svm_cpu *cpu, struct svm_caps *caps, const char **why)
{
	*caps = (struct svm_caps){ 0 };
	if (!(cpu->max_ext_leaf >= 0x80000001u && (cpu->ext1_ecx & CPUID_80000001_ECX_SVM))) {
		*why = cpu->amd ? "CPUID shows no SVM on this CPU (or no nested SVM under this hypervisor)"
				: "not an AMD CPU";
		return false;
	}
	if (cpu->max_ext_leaf < CPUID_8000000A) {
		*why = "CPUID has no leaf 0x8000000A (SVM features)";
		return false;
	}
	caps->present = true;
	caps->revision = cpu->a_eax & 0xff;
	caps->nasid = cpu->a_ebx;
	caps->npt = cpu->a_edx & CPUID_8000000A_EDX_NP;
	caps->nrip_save = cpu->a_edx & CPUID_8000000A_EDX_NRIPS;
	caps->flush_by_asid = cpu->a_edx & CPUID_8000000A_EDX_FLUSHASID;
	caps->decode_assists = cpu->a_edx & CPUID_8000000A_EDX_DECODE;
	caps->vmcb_clean = cpu->a_edx & CPUID_8000000A_EDX_VMCBCLEAN;

	/* APM Vol. 2, 15.4: with VM_CR.SVMDIS set, EFER.SVME cannot be set; SVML says whether the
	 * firmware left a key to unlock it (15.31) or locked it for good. */
	if (cpu->vm_cr & VM_CR_SVMDIS) {
		*why = (cpu->a_edx & CPUID_8000000A_EDX_SVML)
			? "disabled in firmware (VM_CR.SVMDIS, unlockable only with the firmware's key; enable SVM in setup)"
			: "disabled in firmware (VM_CR.SVMDIS; enable SVM in setup)";
		return false;
	}
	/* Without nested paging guests run on shadow page tables (svm/spt.c). */
	/* ASID 0 is the host's; a guest needs another one (15.16). */
	if (caps->nasid < 2) {
		*why = "no ASID for guests";
		return false;
	}
	/* Under nested paging the host's PAT gives a nested leaf its memory type, through its PWT/PCD
	 * bits (APM Vol. 2, 15.25.8; PAT 7.8). npt/npt.h means WB by entry 0 and UC by entry 3, the reset
	 * values (7.8.1, Table 7-10), which the hypervisor does not write: firmware that changed them
	 * would have guest RAM mapped uncached, or device memory cached. */
	if (PAT_ENTRY(cpu->pat, 0) != PAT_TYPE_WB || PAT_ENTRY(cpu->pat, 3) != PAT_TYPE_UC) {
		*why = "IA32_PAT entry 0 is not WB or entry 3 not UC (nested page tables take their memory types "
		       "from them, APM Vol. 2, 7.8, 15.25.8)";
		return false;
	}
	return true;
}

unsigned svm_caps_describe(const struct svm_caps *caps, char *buf, unsigned size)
{
	return (unsigned)snformat(buf, size, "NPT %s, ASIDs %u, nRIP save %s, flush by ASID %s, decode assists %s",
				  caps->npt ? "yes" : "no", (unsigned)caps->nasid, caps->nrip_save ? "yes" : "no",
				  caps->flush_by_asid ? "yes" : "no", caps->decode_assists ? "yes" : "no");
}

#ifndef HOST_TEST
bool svm_probe(const char **why)
{
	struct svm_cpu cpu = { 0 };
	struct cpuid_regs r = cpuid(0, 0);

	/* "AuthenticAMD" (EBX, EDX, ECX) or Hygon's "HygonGenuine", which has AMD's SVM. */
	cpu.amd = (r.ebx == 0x68747541 && r.edx == 0x69746e65 && r.ecx == 0x444d4163) ||
		  (r.ebx == 0x6f677948 && r.edx == 0x6e65476e && r.ecx == 0x656e6975);
	cpu.max_ext_leaf = cpuid(0x80000000u, 0).eax;
	if (cpu.max_ext_leaf >= 0x80000001u)
		cpu.ext1_ecx = cpuid(0x80000001u, 0).ecx;
	if ((cpu.ext1_ecx & CPUID_80000001_ECX_SVM) && cpu.max_ext_leaf >= CPUID_8000000A) {
		r = cpuid(CPUID_8000000A, 0);
		cpu.a_eax = r.eax;
		cpu.a_ebx = r.ebx;
		cpu.a_edx = r.edx;
		cpu.vm_cr = rdmsr(MSR_VM_CR);   /* exists where SVM does (15.30.1) */
		cpu.pat = rdmsr(MSR_IA32_PAT);  /* every CPU with SVM has PAT (CPUID Fn0000_0001_EDX.PAT) */
	}
	return svm_caps_decide(&cpu, &svm_caps, why);
}
#endif
