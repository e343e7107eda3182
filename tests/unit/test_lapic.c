/* Host unit tests of vdev/lapic.c: four local APICs driven through MMIO, MSRs and a fake TSC. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "vdev/lapic.h"
#include "tests/unit/unit.h"

#define N       4           /* APICs in the group */
#define OUT     N           /* L[OUT]: an APIC outside the group */
#define VEC     0x40

static uint32_t pages[N + 1][1024] __attribute__((aligned(4096)));
static struct vlapic L[N + 1];
static struct vlapic_group G, OG;
static unsigned kicks[N + 1];
static unsigned eoi_calls;
static int eoi_vector;

static void kick_cb(struct vlapic *t, bool fixed)
{
	(void)fixed;
	kicks[t - L]++;
}

static void eoi_cb(struct vlapic *l, uint8_t vector)
{
	(void)l;
	eoi_calls++;
	eoi_vector = vector;
}

/* Four APICs in G (indexes 0..3), one outsider in its own group (index 4), all reset. */
static void setup(void)
{
	memset(pages, 0, sizeof(pages));
	memset(&G, 0, sizeof(G));
	memset(&OG, 0, sizeof(OG));
	memset(kicks, 0, sizeof(kicks));
	eoi_calls = 0;
	eoi_vector = -1;
	for (unsigned i = 0; i < N; i++) {
		vlapic_init(&L[i], &G, i, pages[i]);
		G.member[i] = &L[i];
	}
	G.count = N;
	G.kick = kick_cb;
	G.eoi_level = eoi_cb;
	OG.member[0] = &L[OUT];
	OG.count = 1;
	OG.kick = kick_cb;
	vlapic_init(&L[OUT], &OG, OUT, pages[OUT]);
}

static uint32_t mr(struct vlapic *l, uint32_t off)
{
	uint64_t v = 0xdeadbeef;

	CHECK_EQ(vlapic_mmio_read(l, off, 4, &v, 0), 0);
	return (uint32_t)v;
}

static void mw(struct vlapic *l, uint32_t off, uint32_t v)
{
	CHECK_EQ(vlapic_mmio_write(l, off, 4, v, 0), 0);
}

static void mwt(struct vlapic *l, uint32_t off, uint32_t v, uint64_t now)
{
	CHECK_EQ(vlapic_mmio_write(l, off, 4, v, now), 0);
}

static uint64_t rd(struct vlapic *l, uint32_t msr)
{
	uint64_t v = 0xdeadbeef;

	CHECK_EQ(vlapic_msr_read(l, msr, &v, 0), 0);
	return v;
}

static int wr(struct vlapic *l, uint32_t msr, uint64_t v)
{
	return vlapic_msr_write(l, msr, v, 0);
}

static bool bit(struct vlapic *l, uint32_t reg, unsigned v)
{
	return (l->regs[(reg + 0x10 * (v / 32)) / 4] >> (v % 32)) & 1;
}

static bool irr(struct vlapic *l, unsigned v) { return bit(l, VLAPIC_IRR, v); }
static bool isr(struct vlapic *l, unsigned v) { return bit(l, VLAPIC_ISR, v); }
static bool tmr(struct vlapic *l, unsigned v) { return bit(l, VLAPIC_TMR, v); }

static unsigned irr_count(struct vlapic *l)
{
	unsigned n = 0;

	for (unsigned v = 0; v < 256; v++)
		n += irr(l, v);
	return n;
}

/* Latches and returns the ESR (write, then read: 11.5.3). */
static uint32_t esr(struct vlapic *l)
{
	if (vlapic_x2apic(l)) {
		CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_ESR), 0), 0);
		return (uint32_t)rd(l, VLAPIC_MSR(VLAPIC_ESR));
	}
	mw(l, VLAPIC_ESR, 0);
	return mr(l, VLAPIC_ESR);
}

static void sw_enable(struct vlapic *l)
{
	if (vlapic_x2apic(l))
		CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_SVR), 0x1ff), 0);
	else
		mw(l, VLAPIC_SVR, 0x1ff);
}

static void all_enable(void)
{
	for (unsigned i = 0; i <= N; i++)
		sw_enable(&L[i]);
}

static void to_x2apic(struct vlapic *l)
{
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, l->base | VLAPIC_BASE_EXTD), 0);
	CHECK(vlapic_x2apic(l));
}

/* Clears what IPIs left behind: IRR, events, kick counts. */
static void clear_events(void)
{
	for (unsigned i = 0; i <= N; i++) {
		for (unsigned w = 0; w < 8; w++)
			L[i].regs[(VLAPIC_IRR + 0x10 * w) / 4] = 0;
		L[i].nmi_pending = 0;
		L[i].init_pending = false;
		L[i].sipi_vector = -1;
		kicks[i] = 0;
	}
}

/* Which APICs (bit i = L[i]) have IRR bit `v`; which have an NMI, INIT, SIPI; which were kicked. */
static unsigned got_irr(unsigned v)
{
	unsigned m = 0;

	for (unsigned i = 0; i <= N; i++)
		m |= (unsigned)irr(&L[i], v) << i;
	return m;
}

static unsigned got_nmi(void)
{
	unsigned m = 0;

	for (unsigned i = 0; i <= N; i++)
		m |= (L[i].nmi_pending != 0) << i;
	return m;
}

static unsigned got_init(void)
{
	unsigned m = 0;

	for (unsigned i = 0; i <= N; i++)
		m |= (unsigned)L[i].init_pending << i;
	return m;
}

static unsigned got_sipi(int vector)
{
	unsigned m = 0;

	for (unsigned i = 0; i <= N; i++)
		m |= (L[i].sipi_vector == vector) << i;
	return m;
}

static unsigned kicked(void)
{
	unsigned m = 0;

	for (unsigned i = 0; i <= N; i++) {
		CHECK(kicks[i] <= 1);
		m |= (kicks[i] != 0) << i;
	}
	return m;
}

/* xAPIC IPI from `from`: ICR2 then ICR. */
static void ipi(unsigned from, uint32_t icr, uint8_t dest)
{
	mw(&L[from], VLAPIC_ICR2, (uint32_t)dest << 24);
	mw(&L[from], VLAPIC_ICR, icr);
}

static void ipi_x2(unsigned from, uint32_t icr, uint32_t dest)
{
	CHECK_EQ(wr(&L[from], VLAPIC_MSR(VLAPIC_ICR), (uint64_t)dest << 32 | icr), 0);
}

/* ------------------------------------------------------------------------------------------------ */

static void test_reset(void)
{
	static const uint32_t lvts[] = { VLAPIC_LVT_TIMER, VLAPIC_LVT_THERMAL, VLAPIC_LVT_PERF,
					 VLAPIC_LVT_LINT0, VLAPIC_LVT_LINT1, VLAPIC_LVT_ERROR };

	setup();
	CHECK_EQ(L[0].base, 0xfee00000ull | VLAPIC_BASE_EN | VLAPIC_BASE_BSP);
	CHECK_EQ(L[1].base, 0xfee00000ull | VLAPIC_BASE_EN);
	CHECK_EQ(rd(&L[2], VLAPIC_MSR_APIC_BASE), 0xfee00900ull & ~0x100ull);
	CHECK(!vlapic_x2apic(&L[0]));
	CHECK(!vlapic_enabled(&L[0]));       /* SVR bit 8 clear after reset */
	CHECK(vlapic_mmio_active(&L[0]));
	CHECK_EQ(vlapic_mmio_base(&L[0]), 0xfee00000);
	for (unsigned i = 0; i < N; i++)
		CHECK_EQ(mr(&L[i], VLAPIC_ID), i << 24);
	CHECK_EQ(mr(&L[0], VLAPIC_VER), 0x00050014);
	CHECK_EQ(mr(&L[0], VLAPIC_TPR), 0);
	CHECK_EQ(mr(&L[0], VLAPIC_PPR), 0);
	CHECK_EQ(mr(&L[0], VLAPIC_LDR), 0);
	CHECK_EQ(mr(&L[0], VLAPIC_DFR), 0xffffffff);
	CHECK_EQ(mr(&L[0], VLAPIC_SVR), 0xff);
	CHECK_EQ(mr(&L[0], VLAPIC_ESR), 0);
	CHECK_EQ(mr(&L[0], VLAPIC_ICR), 0);
	CHECK_EQ(mr(&L[0], VLAPIC_ICR2), 0);
	CHECK_EQ(mr(&L[0], VLAPIC_TMICT), 0);
	CHECK_EQ(mr(&L[0], VLAPIC_TMCCT), 0);
	CHECK_EQ(mr(&L[0], VLAPIC_TDCR), 0);
	for (unsigned i = 0; i < 6; i++)
		CHECK_EQ(mr(&L[0], lvts[i]), VLAPIC_LVT_MASKED);
	for (unsigned w = 0; w < 8; w++) {
		CHECK_EQ(mr(&L[0], VLAPIC_ISR + 0x10 * w), 0);
		CHECK_EQ(mr(&L[0], VLAPIC_TMR + 0x10 * w), 0);
		CHECK_EQ(mr(&L[0], VLAPIC_IRR + 0x10 * w), 0);
	}
	CHECK_EQ(L[0].nmi_pending, 0);
	CHECK(!L[0].init_pending);
	CHECK_EQ(L[0].sipi_vector, -1);
	CHECK_EQ(L[0].last_level_eoi, -1);
	CHECK_EQ(vlapic_next_deadline(&L[0]), 0);
	CHECK_EQ(vlapic_pending_vector(&L[0]), -1);
	CHECK_EQ(vlapic_get_cr8(&L[0]), 0);
}

static void test_mmio_registers(void)
{
	uint64_t v;

	setup();
	/* ID: bits 31:24 writable in xAPIC mode. */
	mw(&L[1], VLAPIC_ID, 0xffffffff);
	CHECK_EQ(mr(&L[1], VLAPIC_ID), 0xff000000);
	mw(&L[1], VLAPIC_ID, 0x07000000);
	CHECK_EQ(mr(&L[1], VLAPIC_ID), 0x07000000);
	/* Read-only registers ignore writes. */
	mw(&L[0], VLAPIC_VER, 0x12345678);
	CHECK_EQ(mr(&L[0], VLAPIC_VER), VLAPIC_VERSION);
	mw(&L[0], VLAPIC_PPR, 0xff);
	CHECK_EQ(mr(&L[0], VLAPIC_PPR), 0);
	mw(&L[0], VLAPIC_IRR + 0x10, 0xffffffff);
	mw(&L[0], VLAPIC_ISR + 0x70, 0xffffffff);
	mw(&L[0], VLAPIC_TMR, 0xffffffff);
	CHECK_EQ(mr(&L[0], VLAPIC_IRR + 0x10), 0);
	CHECK_EQ(mr(&L[0], VLAPIC_ISR + 0x70), 0);
	CHECK_EQ(mr(&L[0], VLAPIC_TMR), 0);
	mw(&L[0], VLAPIC_TMCCT, 1234);
	CHECK_EQ(mr(&L[0], VLAPIC_TMCCT), 0);
	/* APR, RRD and the write-only EOI read 0. */
	CHECK_EQ(mr(&L[0], VLAPIC_APR), 0);
	CHECK_EQ(mr(&L[0], VLAPIC_RRD), 0);
	CHECK_EQ(mr(&L[0], VLAPIC_EOI), 0);
	mw(&L[0], VLAPIC_APR, 0xff);
	CHECK_EQ(mr(&L[0], VLAPIC_APR), 0);
	/* Writable registers keep their defined bits only. */
	mw(&L[0], VLAPIC_TPR, 0xffffffff);
	CHECK_EQ(mr(&L[0], VLAPIC_TPR), 0xff);
	CHECK_EQ(mr(&L[0], VLAPIC_PPR), 0xff);
	mw(&L[0], VLAPIC_TPR, 0);
	mw(&L[0], VLAPIC_LDR, 0xffffffff);
	CHECK_EQ(mr(&L[0], VLAPIC_LDR), 0xff000000);
	mw(&L[0], VLAPIC_DFR, 0);
	CHECK_EQ(mr(&L[0], VLAPIC_DFR), 0x0fffffff);
	mw(&L[0], VLAPIC_DFR, 0xffffffff);
	CHECK_EQ(mr(&L[0], VLAPIC_DFR), 0xffffffff);
	mw(&L[0], VLAPIC_SVR, 0xffffffff);
	CHECK_EQ(mr(&L[0], VLAPIC_SVR), 0x3ff);
	CHECK(vlapic_enabled(&L[0]));
	mw(&L[0], VLAPIC_ICR2, 0xffffffff);
	CHECK_EQ(mr(&L[0], VLAPIC_ICR2), 0xff000000);
	mw(&L[0], VLAPIC_LVT_TIMER, 0xffffffff & ~VLAPIC_TIMER_MODE);
	CHECK_EQ(mr(&L[0], VLAPIC_LVT_TIMER), 0x100ff);
	mw(&L[0], VLAPIC_LVT_THERMAL, 0xffffffff);
	CHECK_EQ(mr(&L[0], VLAPIC_LVT_THERMAL), 0x107ff);
	mw(&L[0], VLAPIC_LVT_PERF, 0x400);
	CHECK_EQ(mr(&L[0], VLAPIC_LVT_PERF), 0x400);
	mw(&L[0], VLAPIC_LVT_LINT0, 0xffffffff);
	CHECK_EQ(mr(&L[0], VLAPIC_LVT_LINT0), 0x1a7ff);
	mw(&L[0], VLAPIC_LVT_LINT1, 0x700);
	CHECK_EQ(mr(&L[0], VLAPIC_LVT_LINT1), 0x700);
	mw(&L[0], VLAPIC_LVT_ERROR, 0xffffffff);
	CHECK_EQ(mr(&L[0], VLAPIC_LVT_ERROR), 0x100ff);
	mw(&L[0], VLAPIC_TDCR, 0xffffffff);
	CHECK_EQ(mr(&L[0], VLAPIC_TDCR), 0xb);
	mw(&L[0], VLAPIC_TMICT, 0xffffffff);
	CHECK_EQ(mr(&L[0], VLAPIC_TMICT), 0xffffffff);
	mw(&L[0], VLAPIC_TMICT, 0);

	/* Partial reads return the bytes of the register. */
	CHECK_EQ(vlapic_mmio_read(&L[0], VLAPIC_VER, 1, &v, 0), 0);
	CHECK_EQ(v, 0x14);
	CHECK_EQ(vlapic_mmio_read(&L[0], VLAPIC_VER + 2, 1, &v, 0), 0);
	CHECK_EQ(v, 0x05);
	CHECK_EQ(vlapic_mmio_read(&L[0], VLAPIC_VER + 2, 2, &v, 0), 0);
	CHECK_EQ(v, 0x0005);
	CHECK_EQ(vlapic_mmio_read(&L[0], VLAPIC_VER + 3, 1, &v, 0), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(vlapic_mmio_read(&L[1], VLAPIC_ID + 3, 1, &v, 0), 0);
	CHECK_EQ(v, 7);
	/* Undefined accesses: -1. */
	CHECK_EQ(vlapic_mmio_read(&L[0], VLAPIC_VER + 1, 4, &v, 0), -1);   /* crosses the 32 bits */
	CHECK_EQ(vlapic_mmio_read(&L[0], VLAPIC_VER + 3, 2, &v, 0), -1);
	CHECK_EQ(vlapic_mmio_read(&L[0], VLAPIC_VER + 4, 4, &v, 0), -1);   /* padding */
	CHECK_EQ(vlapic_mmio_read(&L[0], VLAPIC_VER, 8, &v, 0), -1);       /* 64-bit MOV */
	CHECK_EQ(vlapic_mmio_read(&L[0], VLAPIC_VER, 3, &v, 0), -1);
	CHECK_EQ(vlapic_mmio_read(&L[0], 0x1000, 4, &v, 0), -1);
	CHECK_EQ(vlapic_mmio_write(&L[0], VLAPIC_TPR, 1, 0x20, 0), -1);    /* partial write */
	CHECK_EQ(vlapic_mmio_write(&L[0], VLAPIC_TPR, 2, 0x20, 0), -1);
	CHECK_EQ(vlapic_mmio_write(&L[0], VLAPIC_TPR, 8, 0x20, 0), -1);
	CHECK_EQ(vlapic_mmio_write(&L[0], VLAPIC_TPR + 4, 4, 0x20, 0), -1);
	CHECK_EQ(vlapic_mmio_write(&L[0], 0x1000, 4, 0x20, 0), -1);
	CHECK_EQ(mr(&L[0], VLAPIC_TPR), 0);

	/* Reserved registers read 0, ignore writes, report "illegal register address". */
	CHECK_EQ(esr(&L[0]), 0);
	CHECK_EQ(mr(&L[0], 0x010), 0);
	CHECK_EQ(esr(&L[0]), VLAPIC_ESR_REGISTER);
	CHECK_EQ(esr(&L[0]), 0);
	mw(&L[0], 0x3f0, 0x55);                 /* self IPI: x2APIC only */
	CHECK_EQ(esr(&L[0]), VLAPIC_ESR_REGISTER);
	CHECK(!irr(&L[0], 0x55));
	CHECK_EQ(mr(&L[0], VLAPIC_LVT_CMCI), 0); /* six LVTs: no CMCI entry */
	CHECK_EQ(esr(&L[0]), VLAPIC_ESR_REGISTER);
	CHECK_EQ(mr(&L[0], 0x800), 0);
	CHECK_EQ(esr(&L[0]), VLAPIC_ESR_REGISTER);
	/* The error LVT raises its vector when unmasked. */
	mw(&L[0], VLAPIC_LVT_ERROR, 0xfe);
	mr(&L[0], 0x3a0);
	CHECK(irr(&L[0], 0xfe));
	CHECK_EQ(esr(&L[0]), VLAPIC_ESR_REGISTER);
}

static void test_software_disable(void)
{
	setup();
	/* While software-disabled the LVTs stay masked. */
	mw(&L[0], VLAPIC_LVT_LINT0, 0x700);
	CHECK_EQ(mr(&L[0], VLAPIC_LVT_LINT0), 0x10700);
	sw_enable(&L[0]);
	CHECK(vlapic_enabled(&L[0]));
	mw(&L[0], VLAPIC_LVT_LINT0, 0x700);
	mw(&L[0], VLAPIC_LVT_TIMER, 0x30);
	mw(&L[0], VLAPIC_LVT_ERROR, 0x31);
	CHECK_EQ(mr(&L[0], VLAPIC_LVT_LINT0), 0x700);
	CHECK_EQ(mr(&L[0], VLAPIC_LVT_TIMER), 0x30);
	/* Clearing SVR bit 8 masks every LVT; the rest stays. */
	mw(&L[0], VLAPIC_SVR, 0xff);
	CHECK(!vlapic_enabled(&L[0]));
	CHECK_EQ(mr(&L[0], VLAPIC_LVT_LINT0), 0x10700);
	CHECK_EQ(mr(&L[0], VLAPIC_LVT_TIMER), 0x10030);
	CHECK_EQ(mr(&L[0], VLAPIC_LVT_ERROR), 0x10031);
	mw(&L[0], VLAPIC_LVT_TIMER, 0x30);
	CHECK_EQ(mr(&L[0], VLAPIC_LVT_TIMER), 0x10030);
	/* Fixed interrupts are dropped while disabled; re-enabling brings nothing back. */
	vlapic_post(&L[0], 0x80, false);
	CHECK(!irr(&L[0], 0x80));
	CHECK_EQ(kicks[0], 0);
	CHECK_EQ(vlapic_pending_vector(&L[0]), -1);
	sw_enable(&L[0]);
	CHECK_EQ(mr(&L[0], VLAPIC_LVT_TIMER), 0x10030); /* still masked until written */
	CHECK_EQ(vlapic_pending_vector(&L[0]), -1);
	vlapic_post(&L[0], 0x80, false);
	CHECK_EQ(kicks[0], 1);
	CHECK_EQ(vlapic_pending_vector(&L[0]), 0x80);
	/* IRR held while software-disabled is not offered (the APIC is not enabled). */
	mw(&L[0], VLAPIC_SVR, 0xff);
	CHECK_EQ(vlapic_pending_vector(&L[0]), -1);
}

static void test_priority(void)
{
	setup();
	sw_enable(&L[0]);
	struct vlapic *l = &L[0];

	vlapic_post(l, 0x30, false);
	CHECK(irr(l, 0x30));
	CHECK_EQ(kicks[0], 1);
	CHECK_EQ(vlapic_pending_vector(l), 0x30);
	vlapic_accept(l, 0x30);
	CHECK(!irr(l, 0x30));
	CHECK(isr(l, 0x30));
	CHECK_EQ(mr(l, VLAPIC_PPR), 0x30);
	CHECK_EQ(vlapic_pending_vector(l), -1);
	/* Same class as the one in service: waits. */
	vlapic_post(l, 0x3f, false);
	CHECK_EQ(vlapic_pending_vector(l), -1);
	/* Higher class nests. */
	vlapic_post(l, 0x50, false);
	CHECK_EQ(vlapic_pending_vector(l), 0x50);
	vlapic_accept(l, 0x50);
	CHECK_EQ(mr(l, VLAPIC_PPR), 0x50);
	CHECK(isr(l, 0x30) && isr(l, 0x50));
	CHECK_EQ(vlapic_pending_vector(l), -1);
	/* EOI retires the highest in-service vector first. */
	mw(l, VLAPIC_EOI, 0);
	CHECK(!isr(l, 0x50));
	CHECK(isr(l, 0x30));
	CHECK_EQ(mr(l, VLAPIC_PPR), 0x30);
	CHECK_EQ(vlapic_pending_vector(l), -1);
	mw(l, VLAPIC_EOI, 0x1234); /* xAPIC: any value */
	CHECK(!isr(l, 0x30));
	CHECK_EQ(mr(l, VLAPIC_PPR), 0);
	CHECK_EQ(vlapic_pending_vector(l), 0x3f);
	vlapic_accept(l, 0x3f);
	mw(l, VLAPIC_EOI, 0);
	mw(l, VLAPIC_EOI, 0); /* nothing in service: harmless */
	CHECK_EQ(mr(l, VLAPIC_PPR), 0);
	CHECK_EQ(eoi_calls, 0);

	/* TPR: a vector whose class is not above TPR's class waits. */
	mw(l, VLAPIC_TPR, 0x45);
	CHECK_EQ(mr(l, VLAPIC_PPR), 0x45);
	vlapic_post(l, 0x41, false);
	CHECK_EQ(vlapic_pending_vector(l), -1);
	vlapic_post(l, 0x4f, false);
	CHECK_EQ(vlapic_pending_vector(l), -1);
	vlapic_post(l, 0x51, false);
	CHECK_EQ(vlapic_pending_vector(l), 0x51);
	vlapic_accept(l, 0x51);
	CHECK_EQ(mr(l, VLAPIC_PPR), 0x50); /* ISRV class wins: sub-class 0 */
	CHECK_EQ(vlapic_pending_vector(l), -1);
	mw(l, VLAPIC_TPR, 0x62);
	CHECK_EQ(mr(l, VLAPIC_PPR), 0x62); /* TPR class wins: TPR as is */
	mw(l, VLAPIC_EOI, 0);
	mw(l, VLAPIC_TPR, 0x30);
	CHECK_EQ(mr(l, VLAPIC_PPR), 0x30);
	CHECK_EQ(vlapic_pending_vector(l), 0x4f); /* highest first */
	vlapic_accept(l, 0x4f);
	CHECK_EQ(vlapic_pending_vector(l), -1);
	mw(l, VLAPIC_EOI, 0);
	CHECK_EQ(vlapic_pending_vector(l), 0x41);
	vlapic_accept(l, 0x41);
	mw(l, VLAPIC_EOI, 0);

	/* CR8 is TPR[7:4]. */
	vlapic_set_cr8(l, 5);
	CHECK_EQ(mr(l, VLAPIC_TPR), 0x50);
	CHECK_EQ(mr(l, VLAPIC_PPR), 0x50);
	CHECK_EQ(vlapic_get_cr8(l), 5);
	mw(l, VLAPIC_TPR, 0x7f);
	CHECK_EQ(vlapic_get_cr8(l), 7);
	vlapic_set_cr8(l, 0xf);
	CHECK_EQ(mr(l, VLAPIC_TPR), 0xf0);
	vlapic_post(l, 0xf5, false);
	CHECK_EQ(vlapic_pending_vector(l), -1);
	vlapic_set_cr8(l, 0xe);
	CHECK_EQ(vlapic_pending_vector(l), 0xf5);
	vlapic_set_cr8(l, 0);
	CHECK_EQ(mr(l, VLAPIC_TPR), 0);
	vlapic_accept(l, 0xf5);
	mw(l, VLAPIC_EOI, 0);

	/* Level-triggered: TMR set, EOI reports it. Edge: TMR clear, no report. */
	vlapic_post(l, 0x61, true);
	CHECK(tmr(l, 0x61));
	vlapic_accept(l, 0x61);
	mw(l, VLAPIC_EOI, 0);
	CHECK_EQ(eoi_calls, 1);
	CHECK_EQ(eoi_vector, 0x61);
	CHECK_EQ(l->last_level_eoi, 0x61);
	vlapic_post(l, 0x61, false);
	CHECK(!tmr(l, 0x61));
	vlapic_accept(l, 0x61);
	mw(l, VLAPIC_EOI, 0);
	CHECK_EQ(eoi_calls, 1);

	/* Illegal vectors are not accepted: ESR "received illegal vector". */
	vlapic_post(l, 7, false);
	CHECK(!irr(l, 7));
	CHECK_EQ(esr(l), VLAPIC_ESR_RECV_VECTOR);
	mw(l, VLAPIC_LVT_ERROR, 0xee);
	vlapic_post(l, 15, false);
	CHECK(irr(l, 0xee));
	CHECK_EQ(esr(l), VLAPIC_ESR_RECV_VECTOR);
	CHECK_EQ(irr_count(l), 1);
	/* An illegal error vector itself cannot loop. */
	mw(l, VLAPIC_LVT_ERROR, 0x03);
	vlapic_post(l, 1, false);
	CHECK_EQ(esr(l), VLAPIC_ESR_RECV_VECTOR);
	CHECK_EQ(irr_count(l), 1);
	vlapic_accept(l, 0xee);
	mw(l, VLAPIC_EOI, 0);
	/* Accept ignores out-of-range vectors. */
	vlapic_accept(l, -1);
	vlapic_accept(l, 256);
	vlapic_accept(l, 5);
	CHECK_EQ(mr(l, VLAPIC_PPR), 0);
}

/* ------------------------------------------------------------------------------------------------ */

static void test_timer_oneshot(void)
{
	struct vlapic *l = &L[0];

	setup();
	sw_enable(l);
	mw(l, VLAPIC_TDCR, 0xb); /* divide by 1 */
	mw(l, VLAPIC_LVT_TIMER, VEC);
	mwt(l, VLAPIC_TMICT, 1000, 5000);
	CHECK_EQ(vlapic_next_deadline(l), 6000);
	CHECK_EQ(l->timer_period, 0);
	uint64_t v;
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_TMCCT, 4, &v, 5000), 0);
	CHECK_EQ(v, 1000);
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_TMCCT, 4, &v, 5500), 0);
	CHECK_EQ(v, 500);
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_TMCCT, 4, &v, 5999), 0);
	CHECK_EQ(v, 1);
	CHECK(!vlapic_timer_update(l, 5000));
	CHECK(!vlapic_timer_update(l, 5999));
	CHECK(!irr(l, VEC));
	CHECK(vlapic_timer_update(l, 6000));
	CHECK(irr(l, VEC));
	CHECK_EQ(vlapic_next_deadline(l), 0);
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_TMCCT, 4, &v, 6001), 0);
	CHECK_EQ(v, 0);
	CHECK(!vlapic_timer_update(l, 7000));
	CHECK(!vlapic_timer_update(l, 1000000));
	CHECK_EQ(mr(l, VLAPIC_TMICT), 1000); /* the initial count stays */

	/* Expired but not yet updated: current count reads 0, the update still fires. */
	l->regs[VLAPIC_IRR / 4 + 4 * 2] = 0;
	mwt(l, VLAPIC_TMICT, 10, 100);
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_TMCCT, 4, &v, 500), 0);
	CHECK_EQ(v, 0);
	CHECK(vlapic_timer_update(l, 500));
	CHECK(irr(l, VEC));

	/* Writing the initial count re-arms from now; 0 stops. */
	mwt(l, VLAPIC_TMICT, 100, 1000);
	mwt(l, VLAPIC_TMICT, 300, 1050);
	CHECK_EQ(vlapic_next_deadline(l), 1350);
	mwt(l, VLAPIC_TMICT, 0, 1100);
	CHECK_EQ(vlapic_next_deadline(l), 0);
	CHECK(!vlapic_timer_update(l, 2000));
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_TMCCT, 4, &v, 1200), 0);
	CHECK_EQ(v, 0);

	/* Masked: expires and disarms, but sets no IRR (returns true: it expired). */
	l->regs[VLAPIC_IRR / 4 + 4 * 2] = 0;
	mw(l, VLAPIC_LVT_TIMER, VEC | VLAPIC_LVT_MASKED);
	mwt(l, VLAPIC_TMICT, 10, 0);
	CHECK(vlapic_timer_update(l, 10));
	CHECK_EQ(irr_count(l), 0);
	CHECK_EQ(vlapic_next_deadline(l), 0);

	/* Software-disabled: the timer counts, its LVT is masked. */
	mw(l, VLAPIC_LVT_TIMER, VEC);
	mwt(l, VLAPIC_TMICT, 10, 0);
	mw(l, VLAPIC_SVR, 0xff);
	CHECK(vlapic_timer_update(l, 10));
	CHECK_EQ(irr_count(l), 0);

	/* An illegal timer vector: "received illegal vector", no IRR. */
	sw_enable(l);
	mw(l, VLAPIC_LVT_TIMER, 0x05);
	mwt(l, VLAPIC_TMICT, 10, 0);
	CHECK(vlapic_timer_update(l, 10));
	CHECK_EQ(irr_count(l), 0);
	CHECK_EQ(esr(l), VLAPIC_ESR_RECV_VECTOR);
}

static void test_timer_divide(void)
{
	static const struct { uint32_t tdcr, div; } cases[] = {
		{ 0x0, 2 }, { 0x1, 4 }, { 0x2, 8 }, { 0x3, 16 },
		{ 0x8, 32 }, { 0x9, 64 }, { 0xa, 128 }, { 0xb, 1 },
	};
	struct vlapic *l = &L[0];
	uint64_t v;

	setup();
	sw_enable(l);
	mw(l, VLAPIC_LVT_TIMER, VEC);
	/* Reset divide configuration 0: by 2. */
	mwt(l, VLAPIC_TMICT, 100, 0);
	CHECK_EQ(vlapic_next_deadline(l), 200);
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_TMCCT, 4, &v, 1), 0);
	CHECK_EQ(v, 100);  /* a count lasts two ticks: rounded up */
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_TMCCT, 4, &v, 2), 0);
	CHECK_EQ(v, 99);
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_TMCCT, 4, &v, 199), 0);
	CHECK_EQ(v, 1);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mw(l, VLAPIC_TDCR, cases[i].tdcr);
		CHECK_EQ(mr(l, VLAPIC_TDCR), cases[i].tdcr);
		mwt(l, VLAPIC_TMICT, 10, 1000);
		CHECK_EQ(vlapic_next_deadline(l), 1000 + 10 * cases[i].div);
		CHECK(!vlapic_timer_update(l, 1000 + 10 * cases[i].div - 1));
		CHECK(vlapic_timer_update(l, 1000 + 10 * cases[i].div));
	}
	/* Bit 2 is not part of the encoding. */
	mw(l, VLAPIC_TDCR, 0x4);
	CHECK_EQ(mr(l, VLAPIC_TDCR), 0);
	/* Changing the divider while counting keeps the counts left, at the new rate. */
	mw(l, VLAPIC_TDCR, 0xb);
	mwt(l, VLAPIC_TMICT, 100, 0);
	mwt(l, VLAPIC_TDCR, 0x1, 40);    /* 60 counts left, now 4 ticks each */
	CHECK_EQ(vlapic_next_deadline(l), 40 + 240);
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_TMCCT, 4, &v, 40), 0);
	CHECK_EQ(v, 60);
	CHECK(vlapic_timer_update(l, 280));
}

static void test_timer_periodic(void)
{
	struct vlapic *l = &L[0];
	uint64_t v;

	setup();
	sw_enable(l);
	mw(l, VLAPIC_TDCR, 0xb);
	mw(l, VLAPIC_LVT_TIMER, VEC | VLAPIC_TIMER_PERIODIC);
	mwt(l, VLAPIC_TMICT, 100, 0);
	CHECK_EQ(vlapic_next_deadline(l), 100);
	CHECK_EQ(l->timer_period, 100);
	CHECK(!vlapic_timer_update(l, 99));
	CHECK(vlapic_timer_update(l, 100));
	CHECK(irr(l, VEC));
	CHECK_EQ(vlapic_next_deadline(l), 200);
	CHECK(!vlapic_timer_update(l, 150));
	vlapic_accept(l, VEC);
	mw(l, VLAPIC_EOI, 0);
	CHECK(vlapic_timer_update(l, 200));
	CHECK(irr(l, VEC));
	CHECK_EQ(vlapic_next_deadline(l), 300);
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_TMCCT, 4, &v, 230), 0);
	CHECK_EQ(v, 70);
	/* Missed periods coalesce into one expiry, phase kept. */
	unsigned fired = 0;
	for (uint64_t now = 1050; now < 1100; now += 10)
		fired += vlapic_timer_update(l, now);
	CHECK_EQ(fired, 1);
	CHECK_EQ(vlapic_next_deadline(l), 1100);
	CHECK(vlapic_timer_update(l, 1100));
	CHECK_EQ(vlapic_next_deadline(l), 1200);
	/* A huge gap costs one step. */
	CHECK(vlapic_timer_update(l, 1000000000050ull));
	CHECK_EQ(vlapic_next_deadline(l), 1000000000100ull);
	/* Reading the count after missed periods: the count reloaded. */
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_TMCCT, 4, &v, 1000000000130ull), 0);
	CHECK_EQ(v, 70);
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_TMCCT, 4, &v, 1000000000200ull), 0);
	CHECK_EQ(v, 100);
	/* A 1-tick period does not make update loop. */
	mwt(l, VLAPIC_TMICT, 1, 0);
	CHECK(vlapic_timer_update(l, 1ull << 40));
	CHECK_EQ(vlapic_next_deadline(l), (1ull << 40) + 1);
	/* Changing the vector or the mask keeps it running; 0 stops. */
	mwt(l, VLAPIC_TMICT, 100, 0);
	mw(l, VLAPIC_LVT_TIMER, 0x41 | VLAPIC_TIMER_PERIODIC | VLAPIC_LVT_MASKED);
	CHECK_EQ(vlapic_next_deadline(l), 100);
	CHECK(vlapic_timer_update(l, 100));
	CHECK(!irr(l, 0x41));
	CHECK_EQ(vlapic_next_deadline(l), 200);
	mw(l, VLAPIC_LVT_TIMER, 0x41 | VLAPIC_TIMER_PERIODIC);
	CHECK(vlapic_timer_update(l, 200));
	CHECK(irr(l, 0x41));
	mwt(l, VLAPIC_TMICT, 0, 250);
	CHECK_EQ(vlapic_next_deadline(l), 0);
	CHECK(!vlapic_timer_update(l, 10000));
}

static void test_timer_tsc_deadline(void)
{
	struct vlapic *l = &L[0];
	uint64_t v;

	setup();
	sw_enable(l);
	/* Not in TSC-deadline mode: the MSR reads 0 and ignores writes. */
	CHECK_EQ(vlapic_msr_write(l, VLAPIC_MSR_TSC_DEADLINE, 5000, 0), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR_TSC_DEADLINE), 0);
	CHECK_EQ(vlapic_next_deadline(l), 0);

	mw(l, VLAPIC_LVT_TIMER, VEC | VLAPIC_TIMER_TSC);
	CHECK_EQ(mr(l, VLAPIC_LVT_TIMER), VEC | VLAPIC_TIMER_TSC);
	CHECK_EQ(vlapic_msr_write(l, VLAPIC_MSR_TSC_DEADLINE, 5000, 0), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR_TSC_DEADLINE), 5000);
	CHECK_EQ(vlapic_next_deadline(l), 5000);
	/* Initial-count writes are ignored, the current count reads 0. */
	mwt(l, VLAPIC_TMICT, 10, 0);
	CHECK_EQ(mr(l, VLAPIC_TMICT), 0);
	CHECK_EQ(vlapic_next_deadline(l), 5000);
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_TMCCT, 4, &v, 100), 0);
	CHECK_EQ(v, 0);
	CHECK(!vlapic_timer_update(l, 4999));
	CHECK(vlapic_timer_update(l, 5000));
	CHECK(irr(l, VEC));
	CHECK_EQ(rd(l, VLAPIC_MSR_TSC_DEADLINE), 0); /* disarmed and cleared */
	CHECK_EQ(vlapic_next_deadline(l), 0);
	CHECK(!vlapic_timer_update(l, 6000));
	/* A deadline in the past fires at the next update. */
	CHECK_EQ(vlapic_msr_write(l, VLAPIC_MSR_TSC_DEADLINE, 100, 1000), 0);
	CHECK(vlapic_timer_update(l, 1000));
	/* Writing 0 disarms. */
	CHECK_EQ(vlapic_msr_write(l, VLAPIC_MSR_TSC_DEADLINE, 9000, 0), 0);
	CHECK_EQ(vlapic_msr_write(l, VLAPIC_MSR_TSC_DEADLINE, 0, 0), 0);
	CHECK(!vlapic_timer_update(l, 10000));
	/* Masked: expires without IRR. */
	l->regs[VLAPIC_IRR / 4 + 4 * 2] = 0;
	mw(l, VLAPIC_LVT_TIMER, VEC | VLAPIC_TIMER_TSC | VLAPIC_LVT_MASKED);
	CHECK_EQ(vlapic_msr_write(l, VLAPIC_MSR_TSC_DEADLINE, 50, 0), 0);
	CHECK(vlapic_timer_update(l, 50));
	CHECK_EQ(irr_count(l), 0);
}

static void test_timer_mode_change(void)
{
	struct vlapic *l = &L[0];

	setup();
	sw_enable(l);
	mw(l, VLAPIC_TDCR, 0xb);
	/* one-shot -> periodic disarms */
	mw(l, VLAPIC_LVT_TIMER, VEC);
	mwt(l, VLAPIC_TMICT, 100, 0);
	CHECK_EQ(vlapic_next_deadline(l), 100);
	mw(l, VLAPIC_LVT_TIMER, VEC | VLAPIC_TIMER_PERIODIC);
	CHECK_EQ(vlapic_next_deadline(l), 0);
	CHECK(!vlapic_timer_update(l, 1000));
	CHECK_EQ(irr_count(l), 0);
	/* periodic -> one-shot disarms */
	mwt(l, VLAPIC_TMICT, 100, 0);
	CHECK_EQ(vlapic_next_deadline(l), 100);
	mw(l, VLAPIC_LVT_TIMER, VEC);
	CHECK_EQ(vlapic_next_deadline(l), 0);
	/* periodic -> TSC-deadline disarms */
	mw(l, VLAPIC_LVT_TIMER, VEC | VLAPIC_TIMER_PERIODIC);
	mwt(l, VLAPIC_TMICT, 100, 0);
	mw(l, VLAPIC_LVT_TIMER, VEC | VLAPIC_TIMER_TSC);
	CHECK_EQ(vlapic_next_deadline(l), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR_TSC_DEADLINE), 0);
	/* TSC-deadline -> one-shot disarms and the MSR reads 0 */
	CHECK_EQ(vlapic_msr_write(l, VLAPIC_MSR_TSC_DEADLINE, 500, 0), 0);
	mw(l, VLAPIC_LVT_TIMER, VEC);
	CHECK_EQ(vlapic_next_deadline(l), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR_TSC_DEADLINE), 0);
	CHECK(!vlapic_timer_update(l, 1000));
	/* The reserved mode 11b is ignored: the mode stays. */
	mwt(l, VLAPIC_TMICT, 100, 0);
	mw(l, VLAPIC_LVT_TIMER, 0x42 | VLAPIC_TIMER_MODE);
	CHECK_EQ(mr(l, VLAPIC_LVT_TIMER), 0x42);
	CHECK_EQ(vlapic_next_deadline(l), 100);
	CHECK(vlapic_timer_update(l, 100));
	CHECK(irr(l, 0x42));
	CHECK_EQ(irr_count(l), 1);
}

/* ------------------------------------------------------------------------------------------------ */

/* Fixed, physical: each ID 0..255 reaches exactly the member with that ID, never the outsider. */
static void test_ipi_xapic_physical(void)
{
	setup();
	all_enable();
	mw(&L[OUT], VLAPIC_ID, 2u << 24); /* the outsider shares an ID with L[2] */
	for (unsigned id = 0; id < 255; id++) {
		clear_events();
		ipi(1, VEC, (uint8_t)id);
		unsigned want = id < N ? 1u << id : 0;
		CHECK_EQ(got_irr(VEC), want);
		CHECK_EQ(kicked(), want);
	}
	/* 0xff: broadcast to every member, the sender too. */
	clear_events();
	ipi(1, VEC, 0xff);
	CHECK_EQ(got_irr(VEC), 0xf);
	CHECK_EQ(kicked(), 0xf);
	CHECK_EQ(irr_count(&L[OUT]), 0);
	/* A renumbered member is found by its new ID. */
	mw(&L[3], VLAPIC_ID, 0x20u << 24);
	clear_events();
	ipi(0, VEC, 3);
	CHECK_EQ(got_irr(VEC), 0);
	ipi(0, VEC, 0x20);
	CHECK_EQ(got_irr(VEC), 1u << 3);
	/* The ICR reads back, delivery status idle. */
	CHECK_EQ(mr(&L[0], VLAPIC_ICR), VEC);
	CHECK_EQ(mr(&L[0], VLAPIC_ICR2), 0x20000000);
	ipi(0, VEC | VLAPIC_ICR_STATUS | 0xfff00000, 0x20);
	CHECK_EQ(mr(&L[0], VLAPIC_ICR), VEC);
	/* The ICR's trigger mode is ignored but for INIT de-assert (SDM 3A 11.6.1): a "level" fixed IPI
	 * arrives edge-triggered, the target's TMR stays clear and its EOI is no level EOI. */
	clear_events();
	ipi(0, (VEC + 1) | VLAPIC_ICR_LEVEL | VLAPIC_ICR_ASSERT, 1);
	CHECK(irr(&L[1], VEC + 1));
	CHECK(!tmr(&L[1], VEC + 1));
	vlapic_accept(&L[1], VEC + 1);
	mw(&L[1], VLAPIC_EOI, 0);
	CHECK_EQ(eoi_calls, 0);
}

static void test_ipi_shorthands(void)
{
	setup();
	all_enable();
	clear_events();
	ipi(2, VEC | VLAPIC_ICR_SELF, 0);
	CHECK_EQ(got_irr(VEC), 1u << 2);
	CHECK_EQ(kicked(), 1u << 2);
	clear_events();
	ipi(2, VEC | VLAPIC_ICR_ALL, 0);
	CHECK_EQ(got_irr(VEC), 0xf);
	CHECK_EQ(kicked(), 0xf);
	clear_events();
	ipi(2, VEC | VLAPIC_ICR_OTHERS, 0);
	CHECK_EQ(got_irr(VEC), 0xf & ~(1u << 2));
	CHECK_EQ(kicked(), 0xf & ~(1u << 2));
	/* The destination field is ignored with a shorthand. */
	clear_events();
	ipi(2, VEC | VLAPIC_ICR_OTHERS, 2);
	CHECK_EQ(got_irr(VEC), 0xb);
	/* NMI to all others; self with a non-fixed mode is invalid: nothing. */
	clear_events();
	ipi(0, VLAPIC_ICR_NMI | VLAPIC_ICR_OTHERS, 0);
	CHECK_EQ(got_nmi(), 0xe);
	CHECK_EQ(kicked(), 0xe);
	clear_events();
	ipi(0, VLAPIC_ICR_NMI | VLAPIC_ICR_SELF, 0);
	CHECK_EQ(got_nmi(), 0);
	CHECK_EQ(kicked(), 0);
	/* INIT and SIPI to all others: the AP start-up sequence. */
	clear_events();
	ipi(0, VLAPIC_ICR_INIT | VLAPIC_ICR_ASSERT | VLAPIC_ICR_LEVEL | VLAPIC_ICR_OTHERS, 0);
	CHECK_EQ(got_init(), 0xe);
	ipi(0, VLAPIC_ICR_STARTUP | 0x9a | VLAPIC_ICR_OTHERS, 0);
	CHECK_EQ(got_sipi(0x9a), 0xe);
	CHECK_EQ(kicks[1], 2);
	/* A sender outside its own group's member list still reaches itself. */
	clear_events();
	mw(&L[OUT], VLAPIC_ICR, VEC | VLAPIC_ICR_ALL);
	CHECK_EQ(got_irr(VEC), 1u << OUT);
}

static void test_ipi_modes(void)
{
	setup();
	all_enable();
	/* NMI is a latch (SDM 3A 6.7.1): a second one while the first is pending merges with it, and
	 * its owner, told by the first, is not kicked again. */
	clear_events();
	ipi(0, VLAPIC_ICR_NMI, 3);
	ipi(1, VLAPIC_ICR_NMI, 3);
	CHECK_EQ(L[3].nmi_pending, 1);
	CHECK_EQ(got_nmi(), 1u << 3);
	CHECK_EQ(kicks[3], 1);
	CHECK_EQ(irr_count(&L[3]), 0);
	/* INIT assert; INIT level de-assert is a no-op (no event, no kick). */
	clear_events();
	ipi(0, VLAPIC_ICR_INIT | VLAPIC_ICR_LEVEL, 2);
	CHECK_EQ(got_init(), 0);
	CHECK_EQ(kicked(), 0);
	ipi(0, VLAPIC_ICR_INIT | VLAPIC_ICR_LEVEL | VLAPIC_ICR_ASSERT, 2);
	CHECK_EQ(got_init(), 1u << 2);
	CHECK_EQ(kicked(), 1u << 2);
	clear_events();
	ipi(0, VLAPIC_ICR_INIT, 1); /* edge INIT without the level bit: an INIT */
	CHECK_EQ(got_init(), 1u << 1);
	/* SIPI: the latest vector wins; vector 0 is a page number, not an illegal vector. */
	clear_events();
	ipi(0, VLAPIC_ICR_STARTUP | 0x10 | VLAPIC_ICR_ASSERT, 1);
	ipi(0, VLAPIC_ICR_STARTUP | 0x08 | VLAPIC_ICR_ASSERT, 1);
	CHECK_EQ(L[1].sipi_vector, 0x08);
	ipi(0, VLAPIC_ICR_STARTUP, 2);
	CHECK_EQ(L[2].sipi_vector, 0);
	CHECK_EQ(esr(&L[0]), 0);
	/* SMI and reserved modes: nothing happens. */
	clear_events();
	ipi(0, VLAPIC_ICR_SMI | VEC, 1);
	ipi(0, (3u << 8) | VEC, 1);
	ipi(0, (7u << 8) | VEC, 1);
	CHECK_EQ(got_irr(VEC), 0);
	CHECK_EQ(got_nmi() | got_init(), 0);
	CHECK_EQ(kicked(), 0);
	/* Fixed with an illegal vector: "send illegal vector" on the sender, nothing sent. */
	clear_events();
	ipi(0, 0x0f, 1);
	ipi(0, 0x00 | VLAPIC_ICR_ALL, 0);
	CHECK_EQ(kicked(), 0);
	CHECK_EQ(irr_count(&L[1]), 0);
	CHECK_EQ(esr(&L[0]), VLAPIC_ESR_SEND_VECTOR);
	CHECK_EQ(esr(&L[1]), 0);

	/* A software-disabled target drops fixed IPIs but takes NMI, INIT, SIPI. */
	mw(&L[3], VLAPIC_SVR, 0xff);
	clear_events();
	ipi(0, VEC, 3);
	CHECK_EQ(got_irr(VEC), 0);
	CHECK_EQ(kicked(), 0);
	ipi(0, VLAPIC_ICR_NMI, 3);
	ipi(0, VLAPIC_ICR_INIT | VLAPIC_ICR_ASSERT, 3);
	ipi(0, VLAPIC_ICR_STARTUP | 0x77, 3);
	CHECK_EQ(got_nmi(), 1u << 3);
	CHECK_EQ(got_init(), 1u << 3);
	CHECK_EQ(got_sipi(0x77), 1u << 3);
	/* A globally disabled target takes nothing. */
	CHECK_EQ(wr(&L[2], VLAPIC_MSR_APIC_BASE, 0xfee00000), 0);
	clear_events();
	ipi(0, VEC | VLAPIC_ICR_ALL, 0);
	ipi(0, VLAPIC_ICR_NMI | VLAPIC_ICR_ALL, 0);
	ipi(0, VLAPIC_ICR_INIT | VLAPIC_ICR_ASSERT, 2);
	ipi(0, VLAPIC_ICR_STARTUP | 0x77, 2);
	CHECK_EQ(got_irr(VEC), 0x3);
	CHECK_EQ(got_nmi(), 0xb);
	CHECK_EQ(got_init(), 0);
	CHECK_EQ(got_sipi(0x77), 0);
	CHECK_EQ(kicks[2], 0);
}

static void test_ipi_lowest(void)
{
	setup();
	all_enable();
	for (unsigned i = 0; i < N; i++)
		mw(&L[i], VLAPIC_TPR, 0x80);
	/* Lowest PPR among the matches wins. */
	mw(&L[2], VLAPIC_TPR, 0x10);
	clear_events();
	ipi(0, VLAPIC_ICR_LOWEST | VEC, 0xff);
	CHECK_EQ(got_irr(VEC), 1u << 2);
	CHECK_EQ(kicked(), 1u << 2);
	/* Only among the destination set: logical flat, members 1 and 3. */
	for (unsigned i = 0; i < N; i++)
		mw(&L[i], VLAPIC_LDR, (1u << i) << 24);
	mw(&L[3], VLAPIC_TPR, 0x20);
	clear_events();
	ipi(0, VLAPIC_ICR_LOWEST | VLAPIC_ICR_LOGICAL | VEC, 0x0a);
	CHECK_EQ(got_irr(VEC), 1u << 3);
	/* Ties: the lowest member. */
	mw(&L[3], VLAPIC_TPR, 0x80);
	clear_events();
	ipi(0, VLAPIC_ICR_LOWEST | VLAPIC_ICR_LOGICAL | VEC, 0x0a);
	CHECK_EQ(got_irr(VEC), 1u << 1);
	/* PPR counts, not only TPR: an interrupt in service raises it. */
	mw(&L[2], VLAPIC_TPR, 0);
	mw(&L[1], VLAPIC_TPR, 0x10);
	vlapic_post(&L[2], 0x90, false);
	vlapic_accept(&L[2], 0x90);
	clear_events();
	ipi(0, VLAPIC_ICR_LOWEST | VEC, 0xff);
	CHECK_EQ(got_irr(VEC), 1u << 1);
	/* Disabled APICs are not candidates. */
	mw(&L[1], VLAPIC_SVR, 0xff);
	clear_events();
	ipi(0, VLAPIC_ICR_LOWEST | VEC | VLAPIC_ICR_OTHERS, 0);
	CHECK_EQ(got_irr(VEC), 1u << 3);
	/* Illegal vector: send error. */
	clear_events();
	ipi(0, VLAPIC_ICR_LOWEST | 3, 0xff);
	CHECK_EQ(kicked(), 0);
	CHECK_EQ(esr(&L[0]), VLAPIC_ESR_SEND_VECTOR);
	/* No match: dropped. */
	clear_events();
	ipi(0, VLAPIC_ICR_LOWEST | VEC, 0x33);
	CHECK_EQ(kicked(), 0);
}

static void test_ipi_xapic_logical(void)
{
	setup();
	all_enable();
	/* Flat: LDR[31:24] & MDA != 0. */
	for (unsigned i = 0; i < N; i++)
		mw(&L[i], VLAPIC_LDR, (1u << i) << 24);
	mw(&L[OUT], VLAPIC_LDR, 0xffu << 24);
	clear_events();
	ipi(0, VEC | VLAPIC_ICR_LOGICAL, 0x06);
	CHECK_EQ(got_irr(VEC), 0x6);
	CHECK_EQ(kicked(), 0x6);
	clear_events();
	ipi(0, VEC | VLAPIC_ICR_LOGICAL, 0x01);
	CHECK_EQ(got_irr(VEC), 0x1);
	clear_events();
	ipi(0, VEC | VLAPIC_ICR_LOGICAL, 0xf0);
	CHECK_EQ(got_irr(VEC), 0);
	clear_events();
	ipi(0, VEC | VLAPIC_ICR_LOGICAL, 0xff);
	CHECK_EQ(got_irr(VEC), 0xf);
	clear_events();
	ipi(3, VLAPIC_ICR_NMI | VLAPIC_ICR_LOGICAL, 0x0c);
	CHECK_EQ(got_nmi(), 0xc);
	/* LDR 0 matches no logical destination (but broadcast). */
	mw(&L[1], VLAPIC_LDR, 0);
	clear_events();
	for (unsigned mda = 1; mda < 0xff; mda++)
		ipi(0, VEC | VLAPIC_ICR_LOGICAL, (uint8_t)mda);
	CHECK_EQ(got_irr(VEC), 0xd);
	CHECK(!irr(&L[1], VEC));

	/* Cluster: high nibble = cluster (0xf: all clusters), low nibbles ANDed. */
	static const uint8_t ldr[N] = { 0x11, 0x12, 0x21, 0x22 };
	for (unsigned i = 0; i < N; i++) {
		mw(&L[i], VLAPIC_DFR, 0x0fffffff);
		mw(&L[i], VLAPIC_LDR, (uint32_t)ldr[i] << 24);
	}
	static const struct { uint8_t mda; unsigned want; } cases[] = {
		{ 0x13, 0x3 }, { 0x11, 0x1 }, { 0x22, 0x8 }, { 0x23, 0xc },
		{ 0xf1, 0x5 }, { 0xf2, 0xa }, { 0x31, 0x0 }, { 0x10, 0x0 }, { 0xff, 0xf },
		{ 0x01, 0x0 },
	};
	for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		clear_events();
		ipi(0, VEC | VLAPIC_ICR_LOGICAL, cases[c].mda);
		CHECK_EQ(got_irr(VEC), cases[c].want);
		CHECK_EQ(kicked(), cases[c].want);
		clear_events();
		ipi(1, VLAPIC_ICR_INIT | VLAPIC_ICR_ASSERT | VLAPIC_ICR_LOGICAL, cases[c].mda);
		CHECK_EQ(got_init(), cases[c].want);
	}
	/* A reserved DFR model matches nothing. */
	mw(&L[0], VLAPIC_DFR, 0x5fffffff);
	clear_events();
	ipi(1, VEC | VLAPIC_ICR_LOGICAL, 0x11);
	CHECK_EQ(got_irr(VEC), 0);
}

/* ------------------------------------------------------------------------------------------------ */

static void test_ipi_x2apic(void)
{
	setup();
	for (unsigned i = 0; i <= N; i++)
		to_x2apic(&L[i]);
	all_enable();
	for (unsigned i = 0; i < N; i++) {
		CHECK_EQ(rd(&L[i], VLAPIC_MSR(VLAPIC_ID)), i);
		CHECK_EQ(rd(&L[i], VLAPIC_MSR(VLAPIC_LDR)), 1u << i);
	}
	/* Physical: 32-bit destinations, 0xffffffff broadcast, the outsider never reached. */
	for (uint32_t id = 0; id < 256; id++) {
		clear_events();
		ipi_x2(1, VEC, id);
		unsigned want = id < N ? 1u << id : 0;
		CHECK_EQ(got_irr(VEC), want);
		CHECK_EQ(kicked(), want);
	}
	clear_events();
	ipi_x2(1, VEC, 0x100);
	ipi_x2(1, VEC, 0x01000002);
	ipi_x2(1, VEC, 0xff);   /* not a broadcast in x2APIC mode */
	CHECK_EQ(got_irr(VEC), 0);
	clear_events();
	ipi_x2(1, VEC, 0xffffffff);
	CHECK_EQ(got_irr(VEC), 0xf);
	CHECK_EQ(kicked(), 0xf);
	CHECK_EQ(rd(&L[1], VLAPIC_MSR(VLAPIC_ICR)), 0xffffffff00000000ull | VEC);
	/* Logical cluster: dest[31:16] cluster, [15:0] bitmap; 0xffffffff broadcast too. */
	clear_events();
	ipi_x2(0, VEC | VLAPIC_ICR_LOGICAL, 0x0000000a);
	CHECK_EQ(got_irr(VEC), 0xa);
	CHECK_EQ(kicked(), 0xa);
	clear_events();
	ipi_x2(0, VEC | VLAPIC_ICR_LOGICAL, 0x0001000f);
	CHECK_EQ(got_irr(VEC), 0);
	clear_events();
	ipi_x2(0, VEC | VLAPIC_ICR_LOGICAL, 0xffffffff);
	CHECK_EQ(got_irr(VEC), 0xf);
	/* NMI, INIT, SIPI, shorthands. */
	clear_events();
	ipi_x2(0, VLAPIC_ICR_NMI | VLAPIC_ICR_LOGICAL, 0x6);
	CHECK_EQ(got_nmi(), 0x6);
	clear_events();
	ipi_x2(0, VLAPIC_ICR_INIT | VLAPIC_ICR_ASSERT, 3);
	ipi_x2(0, VLAPIC_ICR_INIT | VLAPIC_ICR_LEVEL, 2); /* de-assert */
	CHECK_EQ(got_init(), 0x8);
	ipi_x2(0, VLAPIC_ICR_STARTUP | 0x9f, 3);
	CHECK_EQ(got_sipi(0x9f), 0x8);
	CHECK_EQ(kicks[3], 2);
	clear_events();
	ipi_x2(3, VEC | VLAPIC_ICR_OTHERS, 0);
	CHECK_EQ(got_irr(VEC), 0x7);
	clear_events();
	ipi_x2(3, VEC | VLAPIC_ICR_ALL, 0);
	CHECK_EQ(got_irr(VEC), 0xf);
	clear_events();
	ipi_x2(3, VEC | VLAPIC_ICR_SELF, 0x1);
	CHECK_EQ(got_irr(VEC), 0x8);
	/* Lowest priority does not exist for x2APIC IPIs: "redirectable IPI" error, nothing sent. */
	clear_events();
	ipi_x2(0, VLAPIC_ICR_LOWEST | VEC, 0xffffffff);
	ipi_x2(0, VLAPIC_ICR_LOWEST | 2, 1);
	CHECK_EQ(kicked(), 0);
	CHECK_EQ(esr(&L[0]), VLAPIC_ESR_REDIRECTABLE);
	/* Self IPI register: fixed, edge, to self. */
	clear_events();
	CHECK_EQ(wr(&L[2], VLAPIC_MSR(VLAPIC_SELF_IPI), 0x55), 0);
	CHECK_EQ(got_irr(0x55), 1u << 2);
	CHECK(!tmr(&L[2], 0x55));
	CHECK_EQ(kicked(), 1u << 2);
	CHECK_EQ(wr(&L[2], VLAPIC_MSR(VLAPIC_SELF_IPI), 0x155), -1);
	CHECK_EQ(wr(&L[2], VLAPIC_MSR(VLAPIC_SELF_IPI), 0x5), 0);
	CHECK_EQ(esr(&L[2]), VLAPIC_ESR_SEND_VECTOR);
	/* ICR bit 12 is ignored; reserved bits #GP. */
	clear_events();
	CHECK_EQ(wr(&L[0], VLAPIC_MSR(VLAPIC_ICR), 1ull << 32 | VLAPIC_ICR_STATUS | VEC), 0);
	CHECK_EQ(got_irr(VEC), 0x2);
	CHECK_EQ(wr(&L[0], VLAPIC_MSR(VLAPIC_ICR), 1ull << 32 | 1u << 13 | VEC), -1);
	CHECK_EQ(wr(&L[0], VLAPIC_MSR(VLAPIC_ICR), 1ull << 32 | 1u << 16 | VEC), -1);
	CHECK_EQ(wr(&L[0], VLAPIC_MSR(VLAPIC_ICR), 1ull << 32 | 1u << 20 | VEC), -1);

	/* x2APIC cluster IDs of a larger guest: LDR = (ID >> 4) << 16 | 1 << (ID & 15). */
	static uint32_t page[1024];
	struct vlapic big;
	vlapic_init(&big, NULL, 20, page);
	to_x2apic(&big);
	CHECK_EQ(rd(&big, VLAPIC_MSR(VLAPIC_ID)), 20);
	CHECK_EQ(rd(&big, VLAPIC_MSR(VLAPIC_LDR)), 0x00010010);
	sw_enable(&big);
	/* Without a group, only itself. */
	CHECK_EQ(wr(&big, VLAPIC_MSR(VLAPIC_ICR), 0xffffffff00000000ull | VEC), 0);
	CHECK(irr(&big, VEC));
	CHECK_EQ(got_irr(VEC), 0x2);

	/* Mixed: an xAPIC member is still addressed physically by its 8-bit ID. */
	setup();
	all_enable();
	to_x2apic(&L[0]);
	clear_events();
	ipi_x2(0, VEC, 2);
	CHECK_EQ(got_irr(VEC), 0x4);
}

/* ------------------------------------------------------------------------------------------------ */

static void test_x2apic_msrs(void)
{
	struct vlapic *l = &L[1];
	uint64_t v;

	setup();
	/* x2APIC MSRs #GP outside x2APIC mode. */
	CHECK_EQ(vlapic_msr_read(l, VLAPIC_MSR(VLAPIC_ID), &v, 0), -1);
	CHECK_EQ(vlapic_msr_write(l, VLAPIC_MSR(VLAPIC_TPR), 0, 0), -1);
	CHECK_EQ(vlapic_msr_read(l, 0x8ff, &v, 0), -1);
	/* Not ours. */
	CHECK_EQ(vlapic_msr_read(l, 0x7ff, &v, 0), -2);
	CHECK_EQ(vlapic_msr_read(l, 0x900, &v, 0), -2);
	CHECK_EQ(vlapic_msr_write(l, 0x10, 0, 0), -2);
	CHECK_EQ(vlapic_msr_write(l, 0x1c, 0, 0), -2);

	to_x2apic(l);
	CHECK(!vlapic_mmio_active(l));
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_ID, 4, &v, 0), -1);
	CHECK_EQ(vlapic_mmio_write(l, VLAPIC_TPR, 4, 0, 0), -1);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_ID)), 1);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_VER)), VLAPIC_VERSION);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_LDR)), 2);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_SVR)), 0xff);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_LVT_LINT0)), VLAPIC_LVT_MASKED);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_IRR)), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_ISR + 0x70)), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_TMR + 0x30)), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_TMCCT)), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_TDCR)), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_PPR)), 0);
	/* Write-only, absent and reserved registers: #GP on read. */
	static const uint32_t no_read[] = {
		VLAPIC_MSR(VLAPIC_EOI), VLAPIC_MSR(VLAPIC_SELF_IPI), VLAPIC_MSR(VLAPIC_APR),
		VLAPIC_MSR(VLAPIC_RRD), VLAPIC_MSR(VLAPIC_DFR), VLAPIC_MSR(VLAPIC_ICR2),
		VLAPIC_MSR(VLAPIC_LVT_CMCI), 0x800, 0x801, 0x804, 0x807, 0x829, 0x82e, 0x83a,
		0x83d, 0x840, 0x8ff,
	};
	for (unsigned i = 0; i < sizeof(no_read) / sizeof(no_read[0]); i++)
		CHECK_EQ(vlapic_msr_read(l, no_read[i], &v, 0), -1);
	/* Read-only, absent and reserved registers: #GP on write. */
	static const uint32_t no_write[] = {
		VLAPIC_MSR(VLAPIC_ID), VLAPIC_MSR(VLAPIC_VER), VLAPIC_MSR(VLAPIC_PPR),
		VLAPIC_MSR(VLAPIC_LDR), VLAPIC_MSR(VLAPIC_ISR), VLAPIC_MSR(VLAPIC_TMR + 0x10),
		VLAPIC_MSR(VLAPIC_IRR + 0x70), VLAPIC_MSR(VLAPIC_TMCCT), VLAPIC_MSR(VLAPIC_APR),
		VLAPIC_MSR(VLAPIC_RRD), VLAPIC_MSR(VLAPIC_DFR), VLAPIC_MSR(VLAPIC_ICR2),
		VLAPIC_MSR(VLAPIC_LVT_CMCI), 0x800, 0x801, 0x840, 0x8ff,
	};
	for (unsigned i = 0; i < sizeof(no_write) / sizeof(no_write[0]); i++)
		CHECK_EQ(vlapic_msr_write(l, no_write[i], 0, 0), -1);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_ID)), 1);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_LDR)), 2);
	/* Reserved bits #GP (11.12.1.3), including bits 63:32 of 32-bit registers. */
	static const struct { uint32_t off; uint64_t val; } bad[] = {
		{ VLAPIC_TPR, 0x100 }, { VLAPIC_TPR, 1ull << 32 }, { VLAPIC_SVR, 1u << 12 },
		{ VLAPIC_SVR, 0x400 }, { VLAPIC_LVT_TIMER, 1u << 8 }, { VLAPIC_LVT_TIMER, 1u << 19 },
		{ VLAPIC_LVT_ERROR, 0x400 }, { VLAPIC_LVT_THERMAL, 1u << 13 },
		{ VLAPIC_LVT_LINT0, 1u << 17 }, { VLAPIC_TDCR, 0x4 }, { VLAPIC_TDCR, 0x10 },
		{ VLAPIC_TMICT, 1ull << 32 }, { VLAPIC_EOI, 1 }, { VLAPIC_ESR, 1 },
		{ VLAPIC_SELF_IPI, 0x100 },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(wr(l, VLAPIC_MSR(bad[i].off), bad[i].val), -1);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_TPR)), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_SVR)), 0xff);
	/* Valid writes. */
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_SVR), 0x3ff), 0);
	CHECK(vlapic_enabled(l));
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_TPR), 0x20), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_PPR)), 0x20);
	CHECK_EQ(vlapic_get_cr8(l), 2);
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_TPR), 0), 0);
	/* LVT read-only bits written back as read are accepted. */
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_LVT_LINT0), 0x700 | VLAPIC_LVT_REMOTE_IRR | VLAPIC_LVT_STATUS), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_LVT_LINT0)), 0x700);
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_LVT_TIMER), VLAPIC_TIMER_TSC | 0xec), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_LVT_TIMER)), VLAPIC_TIMER_TSC | 0xec);
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_LVT_ERROR), 0xfe), 0);
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_LVT_PERF), 0x400), 0);
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_LVT_THERMAL), 0x10000 | 0xfa), 0);
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_TDCR), 0xb), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_TDCR)), 0xb);
	/* Timer through MSRs. */
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_LVT_TIMER), 0xec), 0);
	CHECK_EQ(vlapic_msr_write(l, VLAPIC_MSR(VLAPIC_TMICT), 500, 1000), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_TMICT)), 500);
	CHECK_EQ(vlapic_msr_read(l, VLAPIC_MSR(VLAPIC_TMCCT), &v, 1100), 0);
	CHECK_EQ(v, 400);
	CHECK(vlapic_timer_update(l, 1500));
	CHECK(irr(l, 0xec));
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_IRR + 0x70)), 1u << (0xec - 0xe0));
	/* EOI: only 0. */
	vlapic_accept(l, 0xec);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_ISR + 0x70)), 1u << (0xec - 0xe0));
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_EOI), 0xec), -1);
	CHECK(isr(l, 0xec));
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_EOI), 0), 0);
	CHECK(!isr(l, 0xec));
	/* ESR: errors appear only after a write latches them. */
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_SELF_IPI), 0x2), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_ESR)), 0);
	CHECK(irr(l, 0xfe)); /* the error LVT fired */
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_ESR), 0), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_ESR)), VLAPIC_ESR_SEND_VECTOR);
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_ESR), 0), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_ESR)), 0);
	/* TSC-deadline in x2APIC mode. */
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_LVT_TIMER), VLAPIC_TIMER_TSC | 0xed), 0);
	CHECK_EQ(wr(l, VLAPIC_MSR_TSC_DEADLINE, 7777), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR_TSC_DEADLINE), 7777);
	CHECK(vlapic_timer_update(l, 8000));
	CHECK(irr(l, 0xed));
	CHECK_EQ(rd(l, VLAPIC_MSR_TSC_DEADLINE), 0);
}

static void test_apic_base(void)
{
	const uint64_t A = 0xfee00000, EN = VLAPIC_BASE_EN, X = VLAPIC_BASE_EXTD;
	struct vlapic *l = &L[1];

	setup();
	/* From xAPIC. */
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A | X), -1);          /* invalid state */
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A | EN), 0);          /* xAPIC -> xAPIC */
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A | EN | X), 0);      /* xAPIC -> x2APIC */
	CHECK(vlapic_x2apic(l));
	/* From x2APIC. */
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A | EN), -1);         /* x2APIC -> xAPIC */
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A | X), -1);
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A | EN | X), 0);      /* x2APIC -> x2APIC */
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, 0xfed00000 | EN | X), 0); /* base moves, mode stays */
	CHECK_EQ(l->base, 0xfed00000 | EN | X);
	CHECK(vlapic_x2apic(l));
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A), 0);               /* x2APIC -> disabled */
	CHECK(!vlapic_x2apic(l));
	CHECK(!vlapic_mmio_active(l));
	/* From disabled. */
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A | EN | X), -1);     /* disabled -> x2APIC */
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A | X), -1);
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, 0xfec00000), 0);      /* disabled -> disabled */
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A | EN), 0);          /* disabled -> xAPIC */
	CHECK(vlapic_mmio_active(l));
	CHECK_EQ(l->base, A | EN);
	/* xAPIC -> disabled -> xAPIC -> x2APIC. */
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A), 0);
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A | EN), 0);
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A | EN | X), 0);
	CHECK_EQ(rd(l, VLAPIC_MSR_APIC_BASE), A | EN | X);

	/* Reserved bits: 7:0, 9, and MAXPHYADDR and up. */
	setup();
	for (unsigned b = 0; b < 64; b++) {
		if (b == 8 || b == 10 || b == 11 || (b >= 12 && b < 36))
			continue;
		CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A | EN | 1ull << b), -1);
	}
	CHECK_EQ(l->base, A | EN);
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, (1ull << 35) | EN), 0);
	CHECK_EQ(vlapic_mmio_base(l), 1ull << 35);
	G.phys_bits = 39;
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, (1ull << 38) | EN), 0);
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, (1ull << 39) | EN), -1);
	G.phys_bits = 0;

	/* Relocation: the MMIO page moves; the caller decodes offsets against the new base. */
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, 0xfec01000 | EN), 0);
	CHECK_EQ(vlapic_mmio_base(l), 0xfec01000);
	CHECK_EQ(mr(l, VLAPIC_ID), 1u << 24);

	/* BSP is read-only. */
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A | EN | VLAPIC_BASE_BSP), 0);
	CHECK_EQ(l->base, A | EN);
	CHECK_EQ(wr(&L[0], VLAPIC_MSR_APIC_BASE, A | EN), 0);
	CHECK_EQ(L[0].base, A | EN | VLAPIC_BASE_BSP);
	CHECK_EQ(wr(&L[0], VLAPIC_MSR_APIC_BASE, A), 0);
	CHECK_EQ(L[0].base, A | VLAPIC_BASE_BSP);
	CHECK_EQ(wr(&L[0], VLAPIC_MSR_APIC_BASE, A | EN), 0);

	/* Global disable resets the APIC; re-enabling starts from the power-up state. */
	sw_enable(l);
	mw(l, VLAPIC_ID, 9u << 24);
	mw(l, VLAPIC_TPR, 0x30);
	mw(l, VLAPIC_LDR, 0x5u << 24);
	mw(l, VLAPIC_DFR, 0);
	mw(l, VLAPIC_LVT_TIMER, VEC);
	mw(l, VLAPIC_TMICT, 100);
	vlapic_post(l, 0x99, false);
	vlapic_accept(l, 0x99);
	vlapic_post(l, 0x98, false);
	mr(l, 0x10); /* an error pending */
	CHECK(vlapic_next_deadline(l) != 0);
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A), 0);
	CHECK(!vlapic_enabled(l));
	uint64_t v;
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_ID, 4, &v, 0), -1); /* the page does not decode */
	CHECK_EQ(vlapic_pending_vector(l), -1);
	CHECK_EQ(vlapic_next_deadline(l), 0);
	CHECK(!vlapic_timer_update(l, 1000));
	CHECK_EQ(vlapic_msr_read(l, VLAPIC_MSR(VLAPIC_ID), &v, 0), -1);
	vlapic_post(l, 0x97, false);
	CHECK(!irr(l, 0x97));
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A | EN), 0);
	CHECK_EQ(mr(l, VLAPIC_ID), 1u << 24);
	CHECK_EQ(mr(l, VLAPIC_TPR), 0);
	CHECK_EQ(mr(l, VLAPIC_PPR), 0);
	CHECK_EQ(mr(l, VLAPIC_LDR), 0);
	CHECK_EQ(mr(l, VLAPIC_DFR), 0xffffffff);
	CHECK_EQ(mr(l, VLAPIC_SVR), 0xff);
	CHECK_EQ(mr(l, VLAPIC_LVT_TIMER), VLAPIC_LVT_MASKED);
	CHECK_EQ(mr(l, VLAPIC_TMICT), 0);
	CHECK(!isr(l, 0x99));
	CHECK_EQ(irr_count(l), 0);
	CHECK_EQ(esr(l), 0);
	sw_enable(l);
	vlapic_post(l, 0x97, false);
	CHECK_EQ(vlapic_pending_vector(l), 0x97);

	/* The same from x2APIC mode: back to xAPIC ID format. */
	to_x2apic(l);
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_TPR), 0x40), 0);
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A), 0);
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, A | EN), 0);
	CHECK_EQ(mr(l, VLAPIC_ID), 1u << 24);
	CHECK_EQ(mr(l, VLAPIC_TPR), 0);
	CHECK_EQ(mr(l, VLAPIC_LDR), 0);
	/* The xAPIC -> x2APIC transition replaces a written xAPIC ID with the x2APIC ID. */
	mw(l, VLAPIC_ID, 0x33u << 24);
	mw(l, VLAPIC_TPR, 0x50);
	to_x2apic(l);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_ID)), 1);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_TPR)), 0x50); /* the rest is kept */
}

static void test_reset_on_init(void)
{
	struct vlapic *l = &L[2];

	setup();
	sw_enable(l);
	mw(l, VLAPIC_ID, 0x12u << 24);
	mw(l, VLAPIC_TPR, 0x30);
	mw(l, VLAPIC_LDR, 0x4u << 24);
	mw(l, VLAPIC_LVT_TIMER, VEC);
	mw(l, VLAPIC_TMICT, 100);
	mw(l, VLAPIC_TDCR, 0xb);
	vlapic_post(l, 0x80, false);
	CHECK_EQ(wr(l, VLAPIC_MSR_APIC_BASE, 0xfec00000 | VLAPIC_BASE_EN), 0);
	vlapic_reset_on_init(l);
	CHECK_EQ(l->base, 0xfec00000 | VLAPIC_BASE_EN);
	CHECK_EQ(mr(l, VLAPIC_ID), 0x12u << 24);
	CHECK_EQ(mr(l, VLAPIC_TPR), 0);
	CHECK_EQ(mr(l, VLAPIC_LDR), 0);
	CHECK_EQ(mr(l, VLAPIC_SVR), 0xff);
	CHECK_EQ(mr(l, VLAPIC_TDCR), 0);
	CHECK_EQ(mr(l, VLAPIC_LVT_TIMER), VLAPIC_LVT_MASKED);
	CHECK_EQ(vlapic_next_deadline(l), 0);
	CHECK_EQ(irr_count(l), 0);
	CHECK_EQ(mr(l, VLAPIC_VER), VLAPIC_VERSION);
	/* In x2APIC mode INIT keeps the mode, the ID and the derived LDR. */
	to_x2apic(l);
	CHECK_EQ(wr(l, VLAPIC_MSR(VLAPIC_SVR), 0x1ff), 0);
	vlapic_reset_on_init(l);
	CHECK(vlapic_x2apic(l));
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_ID)), 2);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_LDR)), 4);
	CHECK_EQ(rd(l, VLAPIC_MSR(VLAPIC_SVR)), 0xff);
}

/* --- IRR/ISR summaries and dirty bits (APIC virtualization) ------------------------------------- */

static uint32_t rng = 1;

static uint32_t rnd(void) /* xorshift32 */
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* Word i of the page's 256-bit register at `reg`. */
static uint32_t *page_word(struct vlapic *l, uint32_t reg, unsigned i)
{
	return &l->regs[(reg + 0x10 * i) / 4];
}

/* The highest vector in a plain 256-bit bitmap, or -1: the reference the summaries must agree with. */
static int ref_highest(const uint32_t w[8])
{
	for (int n = 7; n >= 0; n--)
		if (w[n])
			return n * 32 + 31 - __builtin_clz(w[n]);
	return -1;
}

static uint32_t ref_ppr(const uint32_t isr_bits[8], uint32_t tpr)
{
	int v = ref_highest(isr_bits);
	uint32_t cls = v < 0 ? 0 : (uint32_t)v & 0xf0;

	return (tpr & 0xf0) >= cls ? tpr : cls;
}

static void ref_set(uint32_t w[8], unsigned v, bool on)
{
	if (on)
		w[v >> 5] |= 1u << (v & 31);
	else
		w[v >> 5] &= ~(1u << (v & 31));
}

/* A random vector 16..255, each 32-vector word equally likely (so every word empties and refills). */
static unsigned rnd_vector(void)
{
	unsigned v = (rnd() % 8) * 32 + rnd() % 32;

	return v < 16 ? v + 16 : v;
}

/* A random vector set in `w`, or -1. */
static int rnd_member(const uint32_t w[8])
{
	unsigned start = rnd() % 256;

	for (unsigned k = 0; k < 256; k++) {
		unsigned v = (start + k) % 256;

		if (w[v >> 5] >> (v & 31) & 1)
			return (int)v;
	}
	return -1;
}

/*
 * The model agrees with the reference: IRR and ISR words as the reference has them, the highest of
 * each and PPR computed from the full bitmaps, and the summaries a superset of the non-empty words
 * (ISR's only while the model delivers). Returns false on the first disagreement (reported).
 */
static bool agrees(struct vlapic *l, const uint32_t mirr[8], const uint32_t misr[8], uint32_t tpr,
		   bool check_ppr, unsigned step)
{
	int before = unit_failures;

	for (unsigned i = 0; i < 8; i++) {
		CHECK_EQ(*page_word(l, VLAPIC_IRR, i), mirr[i]);
		CHECK_EQ(*page_word(l, VLAPIC_ISR, i), misr[i]);
		if (mirr[i])
			CHECK(l->irr_words >> i & 1);
		if (misr[i] && !l->cpu_delivers)
			CHECK(l->isr_words >> i & 1);
	}
	CHECK_EQ(vlapic_highest_irr(l), ref_highest(mirr));
	CHECK_EQ(vlapic_highest_isr(l), ref_highest(misr));
	if (check_ppr)
		CHECK_EQ(mr(l, VLAPIC_PPR), ref_ppr(misr, tpr));
	if (unit_failures != before) {
		fprintf(stderr, "  ... at step %u (irr_words 0x%x isr_words 0x%x cpu_delivers %d)\n", step,
			l->irr_words, l->isr_words, l->cpu_delivers);
		return false;
	}
	return true;
}

/*
 * Random posts (vlapic_post and vlapic_deliver), injections (the highest pending, and arbitrary IRR
 * vectors), EOIs and TPR/CR8 changes against a plain 256-bit IRR and ISR kept here: the pending vector,
 * the highest IRR and ISR, and PPR always equal what the full bitmaps give, so a summary word that
 * misses a vector (or a scan that trusts a stale one) shows.
 */
static void test_summary_model(void)
{
	struct vlapic *l = &L[0];
	uint32_t mirr[8] = { 0 }, misr[8] = { 0 }, tpr = 0;
	unsigned step;

	setup();
	sw_enable(l);
	rng = 0x2545f491;
	for (step = 0; step < 20000; step++) {
		unsigned op = rnd() % 10, v;
		int p, h;

		switch (op) {
		case 0: case 1: case 2:                        /* a device or IPI posts */
			v = rnd_vector();
			if (rnd() & 1)
				vlapic_post(l, (uint8_t)v, rnd() & 1);
			else
				vlapic_deliver(&G, 0, false, 0, (uint8_t)v, rnd() & 1);
			ref_set(mirr, v, true);
			break;
		case 3: case 4:                                /* the injection step */
			h = ref_highest(mirr);
			p = vlapic_pending_vector(l);
			CHECK_EQ(p, h >= 0 && ((uint32_t)h & 0xf0) > (ref_ppr(misr, tpr) & 0xf0) ? h : -1);
			if (p >= 0) {
				vlapic_accept(l, p);
				ref_set(mirr, (unsigned)p, false);
				ref_set(misr, (unsigned)p, true);
			}
			break;
		case 5:                                        /* any IRR vector taken: empties inner words */
			if ((p = rnd_member(mirr)) >= 0) {
				vlapic_accept(l, p);
				ref_set(mirr, (unsigned)p, false);
				ref_set(misr, (unsigned)p, true);
			}
			break;
		case 6: case 7:                                /* EOI */
			mw(l, VLAPIC_EOI, 0);
			if ((h = ref_highest(misr)) >= 0)
				ref_set(misr, (unsigned)h, false);
			break;
		case 8:                                        /* TPR through MMIO or CR8 */
			if (rnd() & 1) {
				tpr = rnd() & 0xff;
				mw(l, VLAPIC_TPR, tpr);
			} else {
				tpr = (rnd() & 0xf) << 4;
				vlapic_set_cr8(l, tpr >> 4);
			}
			break;
		default:                                       /* only the checks below */
			break;
		}
		if (!agrees(l, mirr, misr, tpr, true, step))
			break;
	}
	CHECK_EQ(step, 20000);
}

/*
 * Every software change of IRR, ISR, TMR and the registers marks its dirty bit; vlapic_take_dirty
 * returns the bits and clears them; reads, and an edge post over a clear TMR bit, mark nothing.
 */
static void test_dirty_bits(void)
{
	struct vlapic *l = &L[0];
	uint64_t val;

	setup();
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_ALL);   /* reset */
	CHECK_EQ(vlapic_take_dirty(l), 0);
	sw_enable(l);
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_REGS);
	CHECK_EQ(vlapic_take_dirty(l), 0);
	/* Nothing changes: reads and scans. */
	(void)mr(l, VLAPIC_PPR);
	(void)mr(l, VLAPIC_IRR + 0x20);
	CHECK_EQ(vlapic_pending_vector(l), -1);
	CHECK_EQ(vlapic_highest_irr(l), -1);
	CHECK_EQ(vlapic_highest_isr(l), -1);
	CHECK_EQ(vlapic_get_cr8(l), 0);
	CHECK_EQ(vlapic_take_dirty(l), 0);

	/* Edge post, TMR already clear: IRR only. */
	vlapic_post(l, 0x41, false);
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_IRR);
	CHECK_EQ(vlapic_take_dirty(l), 0);
	/* Level post: IRR and TMR. */
	vlapic_post(l, 0x92, true);
	CHECK(tmr(l, 0x92));
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_IRR | VLAPIC_DIRTY_TMR);
	CHECK_EQ(vlapic_take_dirty(l), 0);
	/* Edge over a set TMR bit: the TMR bit clears, marked. */
	vlapic_post(l, 0x92, false);
	CHECK(!tmr(l, 0x92));
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_IRR | VLAPIC_DIRTY_TMR);
	/* From an I/O APIC message, level. */
	vlapic_deliver(&G, 0, false, 0, 0xc3, true);
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_IRR | VLAPIC_DIRTY_TMR);
	CHECK_EQ(vlapic_take_dirty(&L[1]), VLAPIC_DIRTY_ALL);  /* its reset only: not addressed */
	CHECK_EQ(vlapic_take_dirty(&L[1]), 0);
	/* Injection: IRR -> ISR. */
	CHECK_EQ(vlapic_pending_vector(l), 0xc3);
	CHECK_EQ(vlapic_take_dirty(l), 0);
	vlapic_accept(l, 0xc3);
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_IRR | VLAPIC_DIRTY_ISR);
	CHECK_EQ(vlapic_take_dirty(l), 0);
	/* An invalid vector to accept changes nothing. */
	vlapic_accept(l, 5);
	CHECK_EQ(vlapic_take_dirty(l), 0);
	/* EOI: ISR (TMR stays) and the register write. */
	mw(l, VLAPIC_EOI, 0);
	CHECK(!isr(l, 0xc3));
	CHECK(tmr(l, 0xc3));
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_ISR | VLAPIC_DIRTY_REGS);
	/* EOI with nothing in service: only the write. */
	mw(l, VLAPIC_EOI, 0);
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_REGS);
	/* TPR through MMIO: a register. */
	mw(l, VLAPIC_TPR, 0x20);
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_REGS);
	mw(l, VLAPIC_TPR, 0);
	(void)vlapic_take_dirty(l);
	/* The timer fires into IRR. */
	mwt(l, VLAPIC_LVT_TIMER, 0x61, 0);
	mwt(l, VLAPIC_TMICT, 10, 0);
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_REGS);
	CHECK(vlapic_timer_update(l, 1000));
	CHECK(irr(l, 0x61));
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_IRR);
	/* An error raises the error LVT vector into IRR. */
	mw(l, VLAPIC_LVT_ERROR, 0x71);
	(void)vlapic_take_dirty(l);
	CHECK_EQ(vlapic_mmio_write(l, 0x2e0, 4, 1, 0), 0);   /* reserved register */
	CHECK(irr(l, 0x71));
	CHECK_EQ(vlapic_take_dirty(l) & VLAPIC_DIRTY_IRR, VLAPIC_DIRTY_IRR);
	/* A self IPI through the ICR: IRR only (an ICR write changes nothing else of its own). */
	mw(l, VLAPIC_ICR, VLAPIC_ICR_SELF | 0x51);
	CHECK(irr(l, 0x51));
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_IRR);
	CHECK_EQ(vlapic_mmio_read(l, VLAPIC_ISR, 4, &val, 0), 0);
	CHECK_EQ(vlapic_take_dirty(l), 0);
	/* A software-disabled APIC drops the post: nothing changed. */
	mw(l, VLAPIC_SVR, 0xff);
	(void)vlapic_take_dirty(l);
	vlapic_post(l, 0x55, false);
	CHECK(!irr(l, 0x55));
	CHECK_EQ(vlapic_take_dirty(l), 0);
	/* Who delivers, and INIT: everything. */
	vlapic_set_cpu_delivery(l, true);
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_ALL);
	vlapic_set_cpu_delivery(l, false);
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_ALL);
	vlapic_reset_on_init(l);
	CHECK_EQ(vlapic_take_dirty(l), VLAPIC_DIRTY_ALL);
	CHECK_EQ(vlapic_take_dirty(l), 0);
}

/* The test plays the CPU's virtual-interrupt delivery: IRR -> ISR in the page, PPR as 30.1.3 has it. */
static void cpu_deliver(struct vlapic *l, unsigned v)
{
	*page_word(l, VLAPIC_IRR, v >> 5) &= ~(1u << (v & 31));
	*page_word(l, VLAPIC_ISR, v >> 5) |= 1u << (v & 31);
	l->regs[VLAPIC_PPR / 4] = v & 0xf0;
}

/* ... and its EOI virtualization (30.1.4): the highest ISR vector retires. */
static void cpu_eoi(struct vlapic *l, unsigned v, const uint32_t misr[8])
{
	*page_word(l, VLAPIC_ISR, v >> 5) &= ~(1u << (v & 31));
	l->regs[VLAPIC_PPR / 4] = ref_ppr(misr, l->regs[VLAPIC_TPR / 4]);
}

/*
 * While the CPU delivers, it moves vectors from IRR to ISR and retires them in the page behind the
 * model: ISR scans must read every word then, and when the model delivers again its ISR summary is
 * full, so the vectors the CPU left in service are found.
 */
static void test_cpu_delivery(void)
{
	struct vlapic *l = &L[0];
	uint32_t mirr[8] = { 0 }, misr[8] = { 0 };
	bool on = true;
	unsigned step;

	setup();
	sw_enable(l);
	vlapic_set_cpu_delivery(l, true);
	CHECK(l->cpu_delivers);
	vlapic_post(l, 0x31, false);
	vlapic_post(l, 0xa5, false);
	CHECK_EQ(vlapic_highest_irr(l), 0xa5);
	cpu_deliver(l, 0xa5);
	CHECK(!(l->isr_words >> 5 & 1));              /* the model never set 0xa5 in ISR ... */
	CHECK_EQ(vlapic_highest_isr(l), 0xa5);        /* ... yet finds it */
	CHECK_EQ(vlapic_highest_irr(l), 0x31);        /* word 5 of IRR emptied behind the summary */
	cpu_deliver(l, 0x31);
	CHECK_EQ(vlapic_highest_irr(l), -1);
	CHECK_EQ(vlapic_highest_isr(l), 0xa5);
	misr[0x31 >> 5] = 1u << (0x31 & 31);
	cpu_eoi(l, 0xa5, misr);
	CHECK_EQ(vlapic_highest_isr(l), 0x31);
	*page_word(l, VLAPIC_ISR, 7) |= 1u << 0;      /* 0xe0 in service, put there by the CPU */
	misr[7] = 1;
	l->regs[VLAPIC_PPR / 4] = 0xe0;
	CHECK_EQ(vlapic_highest_isr(l), 0xe0);
	/* The model delivers again: the ISR summary covers every word. */
	vlapic_set_cpu_delivery(l, false);
	CHECK(!l->cpu_delivers);
	CHECK_EQ(l->isr_words, 0xff);
	CHECK_EQ(vlapic_highest_isr(l), 0xe0);
	vlapic_post(l, 0x45, false);
	CHECK_EQ(vlapic_pending_vector(l), -1);       /* 0xe0 in service blocks it */
	mw(l, VLAPIC_EOI, 0);
	CHECK(!isr(l, 0xe0));
	CHECK(isr(l, 0x31));
	CHECK_EQ(mr(l, VLAPIC_PPR), 0x30);
	CHECK_EQ(vlapic_highest_isr(l), 0x31);
	CHECK_EQ(vlapic_pending_vector(l), 0x45);
	mw(l, VLAPIC_EOI, 0);
	CHECK_EQ(mr(l, VLAPIC_PPR), 0);
	CHECK_EQ(vlapic_highest_isr(l), -1);
	CHECK_EQ(l->isr_words & 0x81, 0);             /* the empty words left the summary */

	/* Random: software posts; the CPU (while on) or the model (while off) delivers and retires;
	 * now and then the deliverer changes. */
	setup();
	sw_enable(l);
	vlapic_set_cpu_delivery(l, true);
	memset(mirr, 0, sizeof(mirr));
	memset(misr, 0, sizeof(misr));
	rng = 0x9e3779b9;
	for (step = 0; step < 20000; step++) {
		unsigned op = rnd() % 9, v;
		int h;

		switch (op) {
		case 0: case 1: case 2:
			v = rnd_vector();
			vlapic_post(l, (uint8_t)v, false);
			ref_set(mirr, v, true);
			break;
		case 3: case 4:                                /* deliver the highest if it beats PPR */
			h = ref_highest(mirr);
			if (h < 0 || ((uint32_t)h & 0xf0) <= (ref_ppr(misr, 0) & 0xf0))
				break;
			if (on) {
				cpu_deliver(l, (unsigned)h);
			} else {
				CHECK_EQ(vlapic_pending_vector(l), h);
				vlapic_accept(l, h);
			}
			ref_set(mirr, (unsigned)h, false);
			ref_set(misr, (unsigned)h, true);
			break;
		case 5: case 6:                                /* EOI */
			if ((h = ref_highest(misr)) >= 0)
				ref_set(misr, (unsigned)h, false);
			if (on && h >= 0)
				cpu_eoi(l, (unsigned)h, misr);
			else if (!on)
				mw(l, VLAPIC_EOI, 0);
			break;
		case 7:
			on = !on;
			vlapic_set_cpu_delivery(l, on);
			if (!on)
				CHECK_EQ(l->isr_words, 0xff);
			break;
		default:
			break;
		}
		if (!agrees(l, mirr, misr, 0, true, step))
			break;
	}
	CHECK_EQ(step, 20000);
	vlapic_set_cpu_delivery(l, false);
}

/*
 * Two threads post vectors to one APIC while the owner takes them (pending, accept, EOI), as
 * devices and IPIs on other CPUs do: every posted vector is delivered exactly once, none is left
 * behind a summary word dropped while it was being set (lapic.c, drop_word).
 */
#define RACE_ROUNDS 2000

static struct vlapic race_l;
static struct vlapic_group race_g;     /* no kick: posts come from several threads */
static uint32_t race_page[1024] __attribute__((aligned(4096)));
static unsigned race_done;

/* Thread t posts each vector 16..255 of its parity once, the two threads in different orders. */
static void *race_poster(void *arg)
{
	uintptr_t t = (uintptr_t)arg;
	unsigned stride = 2 * (unsigned)(arg ? 37 : 53), v = 16 + (unsigned)t;

	for (unsigned n = 0; n < 120; n++) {
		vlapic_post(&race_l, (uint8_t)v, false);
		v = 16 + (v - 16 + stride) % 240;             /* 240 / 2 = 120 of each parity, all visited */
	}
	__atomic_fetch_add(&race_done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_concurrent_posts(void)
{
	unsigned taken[256], bad = 0;

	memset(race_page, 0, sizeof(race_page));
	memset(&race_g, 0, sizeof(race_g));
	race_g.member[0] = &race_l;
	race_g.count = 1;
	vlapic_init(&race_l, &race_g, 0, race_page);
	sw_enable(&race_l);
	for (unsigned round = 0; round < RACE_ROUNDS && !bad; round++) {
		pthread_t th[2];
		bool finished;
		int v;

		memset(taken, 0, sizeof(taken));
		__atomic_store_n(&race_done, 0, __ATOMIC_SEQ_CST);
		for (uintptr_t t = 0; t < 2; t++)
			CHECK_EQ(pthread_create(&th[t], NULL, race_poster, (void *)t), 0);
		do {   /* read "finished" first: a vector posted before it was read is then found */
			finished = __atomic_load_n(&race_done, __ATOMIC_SEQ_CST) == 2;
			while ((v = vlapic_pending_vector(&race_l)) >= 0) {
				vlapic_accept(&race_l, v);
				taken[v]++;
				mw(&race_l, VLAPIC_EOI, 0);
			}
		} while (!finished);
		for (unsigned t = 0; t < 2; t++)
			pthread_join(th[t], NULL);
		for (unsigned i = 16; i < 256; i++)
			if (taken[i] != 1) {
				fprintf(stderr, "  round %u: vector 0x%x taken %u times, IRR bit %d, irr_words 0x%x\n",
					round, i, taken[i], irr(&race_l, i), race_l.irr_words);
				bad++;
			}
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(irr_count(&race_l), 0);
	CHECK_EQ(vlapic_highest_isr(&race_l), -1);
}

/*
 * A kick tells the target's CPU that something is new: a vector that was not pending, a trigger mode
 * that changed (the EOI-exit bitmap follows TMR), an INIT when none waits, every NMI and SIPI. The
 * same vector posted again before its owner took it merges with the pending one (one IRR bit per
 * vector, SDM 3A 11.8.4): no kick, whoever posts it (a device, an IPI, the I/O APIC).
 */
static void test_kick_merges(void)
{
	setup();
	all_enable();
	vlapic_post(&L[1], VEC, false);
	CHECK_EQ(kicks[1], 1);
	vlapic_post(&L[1], VEC, false);                        /* pending: merges */
	ipi(0, VLAPIC_ICR_FIXED | VEC, 1);                     /* the same by IPI */
	vlapic_deliver(&G, 1, false, 0, VEC, false);          /* and by the I/O APIC */
	CHECK_EQ(kicks[1], 1);
	CHECK(irr(&L[1], VEC));
	vlapic_post(&L[1], VEC + 1, false);                    /* another vector: new */
	CHECK_EQ(kicks[1], 2);
	vlapic_post(&L[1], VEC, true);                         /* level now: TMR changes */
	CHECK_EQ(kicks[1], 3);
	CHECK(tmr(&L[1], VEC));
	vlapic_post(&L[1], VEC, true);
	CHECK_EQ(kicks[1], 3);
	vlapic_post(&L[1], VEC, false);                        /* edge again: TMR changes */
	CHECK_EQ(kicks[1], 4);
	CHECK(!tmr(&L[1], VEC));
	/* Taken (IRR -> ISR): the next one is a new request, even while the first is in service. */
	CHECK_EQ(vlapic_pending_vector(&L[1]), VEC + 1);
	vlapic_accept(&L[1], VEC + 1);
	CHECK_EQ(vlapic_pending_vector(&L[1]), -1);            /* VEC: the class in service (11.8.3.1) */
	vlapic_post(&L[1], VEC + 1, false);
	CHECK_EQ(kicks[1], 5);
	mw(&L[1], VLAPIC_EOI, 0);
	/* INIT and NMI wait once (an NMI is a latch, SDM 3A 6.7.1); a SIPI replaces the vector, and
	 * kicks only when none was pending. */
	ipi(0, VLAPIC_ICR_INIT | VLAPIC_ICR_ASSERT, 2);
	ipi(0, VLAPIC_ICR_INIT | VLAPIC_ICR_ASSERT, 2);
	CHECK_EQ(kicks[2], 1);
	ipi(0, VLAPIC_ICR_STARTUP | 0x10, 2);
	ipi(0, VLAPIC_ICR_STARTUP | 0x11, 2);
	CHECK_EQ(kicks[2], 2);
	CHECK_EQ(L[2].sipi_vector, 0x11);
	ipi(0, VLAPIC_ICR_NMI, 3);
	ipi(0, VLAPIC_ICR_NMI, 3);
	CHECK_EQ(kicks[3], 1);
	CHECK_EQ(L[3].nmi_pending, 1);
	/* A flood: 1000 IPIs of one vector to a target that does not take it cost one kick. */
	for (unsigned i = 0; i < 1000; i++)
		ipi(0, VLAPIC_ICR_FIXED | 0x90, 3);
	CHECK_EQ(kicks[3], 2);
}

/*
 * Floods of the messages that used to kick every time (a kick is a physical IPI to the target's host
 * CPU, which another guest may share): each costs one kick while its target does not take it.
 */
static void test_kick_floods(void)
{
	setup();
	all_enable();
	/* NMIs: a latch (SDM 3A 6.7.1). Once taken (the injection step clears it), the next is new. */
	for (unsigned i = 0; i < 1000; i++)
		ipi(0, VLAPIC_ICR_NMI, 1);
	CHECK_EQ(L[1].nmi_pending, 1);
	CHECK_EQ(kicks[1], 1);
	__atomic_store_n(&L[1].nmi_pending, 0, __ATOMIC_SEQ_CST);
	ipi(0, VLAPIC_ICR_NMI, 1);
	CHECK_EQ(L[1].nmi_pending, 1);
	CHECK_EQ(kicks[1], 2);
	/* SIPIs: the latest vector is kept, the first one kicks; once taken (exchanged to -1), the
	 * next kicks again. */
	for (unsigned i = 0; i < 1000; i++)
		ipi(0, VLAPIC_ICR_STARTUP | (i & 0xff), 2);
	CHECK_EQ(L[2].sipi_vector, 999 & 0xff);
	CHECK_EQ(kicks[2], 1);
	CHECK_EQ(__atomic_exchange_n(&L[2].sipi_vector, -1, __ATOMIC_SEQ_CST), 999 & 0xff);
	ipi(0, VLAPIC_ICR_STARTUP | 0x9a, 2);
	CHECK_EQ(kicks[2], 2);
	/* Fixed IPIs of one vector, the ICR's trigger mode alternating: IPIs are edge (SDM 3A 11.6.1),
	 * so TMR never flips, and it all merges into one request. */
	vlapic_take_dirty(&L[3]);                              /* the reset's */
	for (unsigned i = 0; i < 1000; i++)
		ipi(0, VLAPIC_ICR_FIXED | VLAPIC_ICR_ASSERT | (i & 1 ? VLAPIC_ICR_LEVEL : 0) | 0x90, 3);
	CHECK_EQ(kicks[3], 1);
	CHECK(irr(&L[3], 0x90));
	CHECK(!tmr(&L[3], 0x90));
	CHECK_EQ(vlapic_take_dirty(&L[3]) & VLAPIC_DIRTY_TMR, 0);
	/* The same through the self shorthand. */
	for (unsigned i = 0; i < 1000; i++)
		ipi(0, VLAPIC_ICR_SELF | VLAPIC_ICR_ASSERT | (i & 1 ? VLAPIC_ICR_LEVEL : 0) | 0x91, 0);
	CHECK_EQ(kicks[0], 1);
	CHECK(!tmr(&L[0], 0x91));
	/* Illegal vectors from the I/O APIC path: "received illegal vector", the error LVT's vector
	 * requested once; then nothing new, no kick, until the owner takes it. */
	mw(&L[1], VLAPIC_LVT_ERROR, 0xe0);
	kicks[1] = 0;
	for (unsigned i = 0; i < 1000; i++)
		vlapic_deliver(&G, 1, false, 0, 5, i & 1);
	CHECK_EQ(kicks[1], 1);
	CHECK(irr(&L[1], 0xe0));
	CHECK_EQ(esr(&L[1]), VLAPIC_ESR_RECV_VECTOR);
	vlapic_accept(&L[1], 0xe0);
	vlapic_deliver(&G, 1, false, 0, 5, false);
	CHECK_EQ(kicks[1], 2);
	/* With the error LVT masked, an illegal vector records the error and requests nothing: no kick. */
	mw(&L[1], VLAPIC_LVT_ERROR, VLAPIC_LVT_MASKED | 0xe0);
	for (unsigned i = 0; i < 1000; i++)
		vlapic_post(&L[1], 3, false);
	CHECK_EQ(kicks[1], 2);
	CHECK_EQ(esr(&L[1]), VLAPIC_ESR_RECV_VECTOR);
}

/*
 * The lifetime rule of vdev/lapic.h: four members, each a thread (a vCPU on its own CPU), send IPIs
 * to the others and raise I/O APIC messages at them until told to stop, then leave (vlapic_leave);
 * they are told at staggered times, so members still running post to members that have left. Only
 * the one vlapic_leave calls the last frees the pages, all of them, as core/guest.c does. Under
 * ASan, any post that reached a page after it was freed is a heap-use-after-free: none may.
 */
#define LIFE_N      4
#define LIFE_ROUNDS 200

static struct vlapic life_l[LIFE_N];
static struct vlapic_group life_g;
static uint32_t *life_pages[LIFE_N];
static unsigned life_stop[LIFE_N], life_last, life_posts;

static void *life_member(void *arg)
{
	unsigned self = (unsigned)(uintptr_t)arg, n = 0;
	struct vlapic *l = &life_l[self];

	while (!__atomic_load_n(&life_stop[self], __ATOMIC_ACQUIRE) || n < 16) {
		unsigned to = (self + 1 + n % (LIFE_N - 1)) % LIFE_N;
		int v;

		/* An IPI by the ICR (the sender's own page, the target's ID and IRR), an I/O APIC
		 * message (every member's ID), a device's post (the target's IRR). */
		vlapic_mmio_write(l, VLAPIC_ICR2, 4, (uint64_t)to << 24, 0);
		vlapic_mmio_write(l, VLAPIC_ICR, 4, VLAPIC_ICR_FIXED | (0x40 + n % 64), 0);
		vlapic_deliver(&life_g, to, false, 0, (uint8_t)(0x80 + n % 64), false);
		vlapic_post(&life_l[to], (uint8_t)(0xc0 + n % 32), false);
		while ((v = vlapic_pending_vector(l)) >= 0) {   /* the owner takes what came */
			vlapic_accept(l, v);
			vlapic_mmio_write(l, VLAPIC_EOI, 4, 0, 0);
		}
		n++;
	}
	__atomic_fetch_add(&life_posts, n, __ATOMIC_RELAXED);
	if (vlapic_leave(l)) {
		__atomic_fetch_add(&life_last, 1, __ATOMIC_SEQ_CST);
		for (unsigned i = 0; i < LIFE_N; i++) {
			free(life_pages[i]);
			life_l[i].regs = NULL;
		}
	}
	return NULL;
}

static void test_member_leaves(void)
{
	unsigned bad = 0;

	for (unsigned round = 0; round < LIFE_ROUNDS; round++) {
		pthread_t th[LIFE_N];

		memset(&life_g, 0, sizeof(life_g));
		memset(life_l, 0, sizeof(life_l));
		life_last = 0;
		for (unsigned i = 0; i < LIFE_N; i++) {
			life_pages[i] = aligned_alloc(4096, 4096);
			memset(life_pages[i], 0, 4096);
			life_stop[i] = 0;
			vlapic_init(&life_l[i], &life_g, i, life_pages[i]);
			vlapic_join(&life_g, &life_l[i]);
			vlapic_mmio_write(&life_l[i], VLAPIC_SVR, 4, 0x1ff, 0);
		}
		CHECK_EQ(life_g.attached, LIFE_N);
		CHECK_EQ(life_g.count, LIFE_N);
		for (uintptr_t i = 0; i < LIFE_N; i++)
			CHECK_EQ(pthread_create(&th[i], NULL, life_member, (void *)i), 0);
		/* Member `round % N` leaves first, while the others post to it; then one by one. */
		for (unsigned k = 0; k < LIFE_N; k++) {
			__atomic_store_n(&life_stop[(round + k) % LIFE_N], 1, __ATOMIC_RELEASE);
			for (volatile unsigned spin = 0; spin < 20000; spin++)
				;
		}
		for (unsigned i = 0; i < LIFE_N; i++)
			pthread_join(th[i], NULL);
		bad += life_last != 1;
	}
	CHECK_EQ(bad, 0);                  /* exactly one member was told it was the last, each round */
	/* Each member posts at least 16 times before it honours its stop, however the host schedules the
	 * threads: on a busy host (two busy loops beside) every member did exactly 16. */
	CHECK(life_posts >= LIFE_ROUNDS * LIFE_N * 16);
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_reset);
	RUN(test_mmio_registers);
	RUN(test_software_disable);
	RUN(test_priority);
	RUN(test_timer_oneshot);
	RUN(test_timer_divide);
	RUN(test_timer_periodic);
	RUN(test_timer_tsc_deadline);
	RUN(test_timer_mode_change);
	RUN(test_ipi_xapic_physical);
	RUN(test_ipi_shorthands);
	RUN(test_ipi_modes);
	RUN(test_ipi_lowest);
	RUN(test_ipi_xapic_logical);
	RUN(test_ipi_x2apic);
	RUN(test_x2apic_msrs);
	RUN(test_apic_base);
	RUN(test_reset_on_init);
	RUN(test_summary_model);
	RUN(test_dirty_bits);
	RUN(test_cpu_delivery);
	RUN(test_concurrent_posts);
	RUN(test_kick_merges);
	RUN(test_kick_floods);
	RUN(test_member_leaves);
	return unit_report(argv[0]);
}
