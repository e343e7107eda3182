/*
 * specctl: the speculation-control MSRs as a guest sees them (arch/x86/spec.c, vcpu/msr.c), enumerated
 * by Intel's CPUID.(EAX=7,ECX=0):EDX or AMD's CPUID Fn8000_0008_EBX (IBPB 12, IBRS 14, STIBP 15, SSBD
 * 24, for the same MSRs and bits; AMD APM Vol. 3, Appendix E). `expect=on|off`: IBPB is enumerated
 * or not. Each MSR does what its bits say and nothing more: IA32_SPEC_CTRL (where any of its bits is
 * enumerated) reads and writes without #GP and keeps the value this guest wrote across `rounds=`
 * yields (run two guests with different `value=` on one CPU: the other's vCPU runs in between), #GP
 * on a bit CPUID does not enumerate; IA32_PRED_CMD (with IBPB) takes an IBPB, #GPs on a read and on
 * a reserved bit; IA32_FLUSH_CMD likewise (with L1D_FLUSH); IA32_ARCH_CAPABILITIES reads and #GPs on
 * a write; IA32_CORE_CAPABILITIES and AMD's VIRT_SSBD and hint bits are not enumerated. What is not
 * enumerated #GPs (SDM Vol. 4, Table 2-2; Vol. 2B RDMSR/WRMSR: #GP for an MSR the CPU does not have).
 * One line per check, ` ok`/` FAIL`, then `specctl: N checks, F failed` (exit 0 if F = 0).
 */
#include "intr.h"
#include "rt.h"

#define SPEC_CTRL  0x48
#define PRED_CMD   0x49
#define ARCH_CAPS  0x10a
#define FLUSH_CMD  0x10b
#define EDX_IBRS_IBPB (1u << 26)
#define EDX_STIBP     (1u << 27)
#define EDX_L1D_FLUSH (1u << 28)
#define EDX_ARCH_CAPS (1u << 29)
#define EDX_CORE_CAPS (1u << 30)
#define EDX_SSBD      (1u << 31)
#define X8_IBPB       (1u << 12)  /* CPUID Fn8000_0008_EBX */
#define X8_IBRS       (1u << 14)
#define X8_STIBP      (1u << 15)
#define X8_SSBD       (1u << 24)
#define X8_HIDDEN     (0xeu << 16 | 1u << 25)  /* STIBP always on, IBRS preferred/same mode, VIRT_SSBD */

static volatile unsigned gp_count;

/* #GP: counted, and the faulting RDMSR/WRMSR (two bytes, 0F 32 / 0F 30) skipped. */
static void on_gp(struct irq_frame *f)
{
	gp_count++;
	f->eip += 2;
}

/* RDMSR: whether it raised #GP; *v its value otherwise. */
static bool rd_gp(uint32_t msr, uint64_t *v)
{
	unsigned before = gp_count;
	uint32_t lo = 0, hi = 0;

	__asm__ volatile("rdmsr" : "+a"(lo), "+d"(hi) : "c"(msr) : "memory");
	*v = ((uint64_t)hi << 32) | lo;
	return gp_count != before;
}

static bool wr_gp(uint32_t msr, uint64_t v)
{
	unsigned before = gp_count;

	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
	return gp_count != before;
}

int main(void)
{
	const char *want = getarg("expect");
	uint64_t value = getarg_num("value", 1), rounds = getarg_num("rounds", 4), v = 0, bits = 0, last = 0;
	uint32_t r[4], edx = 0, x8 = 0;
	bool ibpb, gp;

	intr_init();
	irq_set_handler(13, on_gp);
	cpuid(0, 0, r);
	if (r[0] >= 7) {
		cpuid(7, 0, r);
		edx = r[3];
	}
	cpuid(0x80000000u, 0, r);
	if (r[0] >= 0x80000008u) {
		cpuid(0x80000008u, 0, r);
		x8 = r[1];
	}
	ibpb = (edx & EDX_IBRS_IBPB) || (x8 & X8_IBPB);
	printf("specctl: cpuid 7.0 edx 0x%x, 80000008 ebx 0x%x\n", edx, x8);
	if (want)
		check(ibpb == !strcmp(want, "on"), "specctl: IBPB enumerated %u, expected %s", ibpb, want);
	check(!(edx & EDX_CORE_CAPS), "specctl: CORE_CAPABILITIES not enumerated");
	check(!(x8 & X8_HIDDEN), "specctl: STIBP always on, IBRS hints, VIRT_SSBD not enumerated");

	/* IA32_SPEC_CTRL's bits, by either vendor's enumeration. */
	bits = ((edx & EDX_IBRS_IBPB) || (x8 & X8_IBRS) ? 1 : 0) | ((edx & EDX_STIBP) || (x8 & X8_STIBP) ? 2 : 0) |
	       ((edx & EDX_SSBD) || (x8 & X8_SSBD) ? 4 : 0);
	if (!bits) {
		check(rd_gp(SPEC_CTRL, &v), "specctl: rdmsr SPEC_CTRL #GP");
		check(wr_gp(SPEC_CTRL, 0), "specctl: wrmsr SPEC_CTRL #GP");
	} else {
		uint64_t low = bits & -bits;   /* the bit toggled between rounds (IBRS where there is one) */

		value &= bits;
		/* Each read before its check: check's arguments would be evaluated in any order. */
		gp = rd_gp(SPEC_CTRL, &v);
		check(!gp && v == 0, "specctl: rdmsr SPEC_CTRL 0x%x%08x at reset", (uint32_t)(v >> 32), (uint32_t)v);
		for (uint64_t i = 0; i < rounds; i++) {
			uint64_t mine = i & 1 ? value : value ^ low;

			last = mine;
			check(!wr_gp(SPEC_CTRL, mine), "specctl: round %u wrmsr SPEC_CTRL 0x%x", (unsigned)i,
			      (unsigned)mine);
			hc_yield();
			gp = rd_gp(SPEC_CTRL, &v);
			check(!gp && v == mine, "specctl: round %u rdmsr SPEC_CTRL 0x%x after a yield (want 0x%x)",
			      (unsigned)i, (unsigned)v, (unsigned)mine);
		}
		check(wr_gp(SPEC_CTRL, 8) && wr_gp(SPEC_CTRL, 1ull << 32),
		      "specctl: wrmsr SPEC_CTRL reserved bits #GP");
		gp = rd_gp(SPEC_CTRL, &v);
		check(!gp && v == last, "specctl: SPEC_CTRL 0x%x unchanged by the refused writes", (unsigned)v);
		for (unsigned b = 1; b <= 4; b <<= 1)
			if (!(bits & b))
				check(wr_gp(SPEC_CTRL, b), "specctl: wrmsr SPEC_CTRL 0x%x #GP (not enumerated)", b);
		check(!wr_gp(SPEC_CTRL, 0), "specctl: wrmsr SPEC_CTRL 0");
	}

	if (ibpb) {
		check(!wr_gp(PRED_CMD, 1), "specctl: wrmsr PRED_CMD IBPB");
		check(wr_gp(PRED_CMD, 2), "specctl: wrmsr PRED_CMD reserved bit #GP");
		check(rd_gp(PRED_CMD, &v), "specctl: rdmsr PRED_CMD #GP (write-only)");
	} else {
		check(wr_gp(PRED_CMD, 1), "specctl: wrmsr PRED_CMD #GP");
	}
	if (edx & EDX_L1D_FLUSH) {
		check(!wr_gp(FLUSH_CMD, 1), "specctl: wrmsr FLUSH_CMD L1D flush");
		check(wr_gp(FLUSH_CMD, 2), "specctl: wrmsr FLUSH_CMD reserved bit #GP");
		check(rd_gp(FLUSH_CMD, &v), "specctl: rdmsr FLUSH_CMD #GP (write-only)");
	} else {
		check(wr_gp(FLUSH_CMD, 1), "specctl: wrmsr FLUSH_CMD #GP without L1D_FLUSH");
	}
	if (edx & EDX_ARCH_CAPS) {
		gp = rd_gp(ARCH_CAPS, &v);
		check(!gp, "specctl: rdmsr ARCH_CAPABILITIES 0x%x%08x", (uint32_t)(v >> 32), (uint32_t)v);
		check(wr_gp(ARCH_CAPS, v), "specctl: wrmsr ARCH_CAPABILITIES #GP (read-only)");
	} else {
		check(rd_gp(ARCH_CAPS, &v), "specctl: rdmsr ARCH_CAPABILITIES #GP");
	}
	printf("specctl: %d checks, %d failed\n", check_count, check_failed);
	return check_failed != 0;
}
