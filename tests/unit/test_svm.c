/* svm_caps_decide and svm_caps_describe (svm/caps.c): CPUID 0x80000001/0x8000000A and VM_CR as the CPU
 * models the scenarios run on report them (QEMU 7.2 TCG -cpu max / EPYC / qemu64, Bochs 2.7 ryzen and
 * phenom: /work/shared/PLATFORM.md), and the firmware cases of APM Vol. 2, 15.4. */
#include <string.h>
#include "svm/caps.h"
#include "tests/unit/unit.h"

#define NP    CPUID_8000000A_EDX_NP
#define NRIPS CPUID_8000000A_EDX_NRIPS
#define FLUSH CPUID_8000000A_EDX_FLUSHASID
#define SVML  CPUID_8000000A_EDX_SVML
#define DECO  CPUID_8000000A_EDX_DECODE

static struct svm_cpu amd(uint32_t edx, uint32_t nasid)
{
	return (struct svm_cpu){ .amd = true, .max_ext_leaf = 0x8000001f, .ext1_ecx = CPUID_80000001_ECX_SVM,
				 .a_eax = 1, .a_ebx = nasid, .a_edx = edx, .pat = 0x0007040600070406ull };
}

static const char *line(const struct svm_caps *c)
{
	static char buf[128];

	CHECK(svm_caps_describe(c, buf, sizeof(buf)) < sizeof(buf));
	return buf;
}

static void test_models(void)
{
	struct svm_caps c;
	const char *why = "untouched";
	struct svm_cpu cpu;

	/* QEMU TCG -cpu max/EPYC: NPT (and VGIF), none of NRIPS, flush by ASID, decode assists; 16 ASIDs
	 * (svm-probe-qemu-max, svm-probe-qemu-epyc). */
	cpu = amd(NP | (1u << 16), 16);
	CHECK(svm_caps_decide(&cpu, &c, &why));
	CHECK(c.present && c.npt && !c.nrip_save && !c.flush_by_asid && !c.decode_assists);
	CHECK_EQ(c.revision, 1);
	CHECK(!strcmp(line(&c), "NPT yes, ASIDs 16, nRIP save no, flush by ASID no, decode assists no"));

	/* Bochs ryzen: NPT, NRIP save, flush by ASID, no decode assists, 32768 ASIDs (svm-probe-bochs-ryzen). */
	cpu = amd(NP | NRIPS | FLUSH | CPUID_8000000A_EDX_VMCBCLEAN, 0x8000);
	CHECK(svm_caps_decide(&cpu, &c, &why));
	CHECK(c.vmcb_clean);
	CHECK(!strcmp(line(&c), "NPT yes, ASIDs 32768, nRIP save yes, flush by ASID yes, decode assists no"));
	cpu = amd(NP | NRIPS | FLUSH | DECO, 64);
	CHECK(svm_caps_decide(&cpu, &c, &why));
	CHECK(!strcmp(line(&c), "NPT yes, ASIDs 64, nRIP save yes, flush by ASID yes, decode assists yes"));

	/* qemu64: SVM without NPT. Usable: guests run on shadow paging (svm/spt.c). */
	why = NULL;
	cpu = amd(0, 16);
	CHECK(svm_caps_decide(&cpu, &c, &why));
	CHECK(c.present && !c.npt);
	CHECK(!strcmp(line(&c), "NPT no, ASIDs 16, nRIP save no, flush by ASID no, decode assists no"));

	/* No ASID besides the host's. */
	cpu = amd(NP, 1);
	CHECK(!svm_caps_decide(&cpu, &c, &why));
	CHECK(!strcmp(why, "no ASID for guests"));

	/* IA32_PAT: entries 0 and 3 must be WB and UC (npt/npt.h's memory types). Linux's value (entry 1
	 * WC) passes; entry 0 UC or entry 3 WB is refused. */
	cpu = amd(NP, 16);
	cpu.pat = 0x0007010600070106ull;
	CHECK(svm_caps_decide(&cpu, &c, &why));
	cpu.pat = 0x0007040600070400ull;
	CHECK(!svm_caps_decide(&cpu, &c, &why));
	CHECK(!strncmp(why, "IA32_PAT entry 0 is not WB or entry 3 not UC", 44));
	cpu.pat = 0x0007040606070406ull;
	CHECK(!svm_caps_decide(&cpu, &c, &why));
	CHECK(c.present && c.npt);
}

static void test_absent(void)
{
	struct svm_caps c;
	const char *why = NULL;
	struct svm_cpu cpu = amd(NP, 16);

	cpu.ext1_ecx = 0;                       /* AMD without SVM (qemu64,-svm; KVM without nested) */
	memset(&c, 0xa5, sizeof(c));
	CHECK(!svm_caps_decide(&cpu, &c, &why));
	CHECK(!c.present && !c.npt && c.nasid == 0);
	CHECK(why && !strncmp(why, "CPUID shows no SVM", 18));

	cpu = (struct svm_cpu){ .amd = false, .max_ext_leaf = 0x80000008 };   /* an Intel CPU */
	CHECK(!svm_caps_decide(&cpu, &c, &why));
	CHECK(!strcmp(why, "not an AMD CPU"));

	cpu = amd(NP, 16);                      /* the SVM bit without leaf 0x8000000A */
	cpu.max_ext_leaf = 0x80000008;
	CHECK(!svm_caps_decide(&cpu, &c, &why));
	CHECK(!c.present);
	CHECK(!strcmp(why, "CPUID has no leaf 0x8000000A (SVM features)"));

	cpu = amd(NP, 16);                      /* SVM bit but a max ext leaf below 0x80000001: ignored */
	cpu.max_ext_leaf = 0x80000000;
	CHECK(!svm_caps_decide(&cpu, &c, &why));
	CHECK(!c.present);
}

/* APM Vol. 2, 15.4: SVMDIS set: disabled; SVML tells whether a key could unlock it. */
static void test_firmware(void)
{
	struct svm_caps c;
	const char *why = NULL;
	struct svm_cpu cpu = amd(NP | NRIPS, 16);

	cpu.vm_cr = VM_CR_SVMDIS | VM_CR_LOCK;
	CHECK(!svm_caps_decide(&cpu, &c, &why));
	CHECK(!strcmp(why, "disabled in firmware (VM_CR.SVMDIS; enable SVM in setup)"));
	CHECK(c.present && c.npt);             /* what the CPU has is still known */
	cpu = amd(NP | NRIPS | SVML, 16);
	cpu.vm_cr = VM_CR_SVMDIS | VM_CR_LOCK;
	CHECK(!svm_caps_decide(&cpu, &c, &why));
	CHECK(strstr(why, "key") != NULL);
	cpu.vm_cr = VM_CR_LOCK;                 /* locked with SVM allowed: fine */
	CHECK(svm_caps_decide(&cpu, &c, &why));
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_models);
	RUN(test_absent);
	RUN(test_firmware);
	return unit_report(argv[0]);
}
