/* libFuzzer harness of vdev/lapic.c: a stateful target, driven by a stream of operations a guest (and
 * the VMX layer around it) can cause on a group of three local APICs: MMIO reads and writes, RDMSR and
 * WRMSR, CR8, device interrupts, injection, the timer and the passage of TSC time, INIT.
 *
 * Input: a sequence of 12-byte operations, at most 512 of them:
 *   +0 u8 op: bits 3:0 the kind (below), bits 7:4 the APIC (mod 3)
 *   +1 u8 size selector   +2 u16 offset (MMIO: mod 4096) or MSR selector   +4 u64 value
 * Sizes and offsets are what the exit handlers can pass (lapic.h): MMIO size 1, 2, 4 or 8 and an
 * offset inside the page; CR8 values of 4 bits (the caller #GPs on the rest). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "vdev/lapic.h"
#include "tests/fuzz/fuzz.h"

#define N      3
#define OP_LEN 12
#define OPS    512

static uint32_t pages[N][1024] __attribute__((aligned(4096)));
static struct vlapic L[N];
static struct vlapic_group G;

static void kick(struct vlapic *t, bool fixed)
{
	(void)fixed;
	FUZZ_ASSERT(t >= L && t < L + N);
}

static void eoi_level(struct vlapic *l, uint8_t vector)
{
	FUZZ_ASSERT(l >= L && l < L + N);
	(void)vector;
}

/* MSR selector: the x2APIC range most of the time, else the other MSRs this model answers, else any. */
static uint32_t msr_of(uint16_t sel)
{
	switch (sel >> 12) {
	case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 9:
		return VLAPIC_MSR_X2APIC + (sel & 0xff);
	case 10: case 11:
		return VLAPIC_MSR_APIC_BASE;
	case 12: case 13:
		return VLAPIC_MSR_TSC_DEADLINE;
	default:
		return sel & 0xfff;   /* mostly not ours: -2 */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	struct fuzz_in in = { data, size, 0 };
	uint64_t now = 1000, v;
	int ret;

	memset(pages, 0, sizeof(pages));
	memset(&G, 0, sizeof(G));
	for (unsigned i = 0; i < N; i++) {
		vlapic_init(&L[i], &G, i, pages[i]);
		G.member[i] = &L[i];
	}
	G.count = N;
	G.phys_bits = 39;
	G.kick = kick;
	G.eoi_level = eoi_level;

	for (unsigned k = 0; k < OPS && !fuzz_done(&in); k++) {
		unsigned op = (unsigned)fuzz_take(&in, 1), sz = sizes[fuzz_take(&in, 1) & 3];
		uint16_t sel = (uint16_t)fuzz_take(&in, 2);
		uint64_t val = fuzz_take(&in, 8);
		struct vlapic *l = &L[(op >> 4) % N];
		int vec;

		switch (op & 15) {
		case 0:
			v = 0;
			ret = vlapic_mmio_read(l, sel & 0xfff, sz, &v, now);
			FUZZ_ASSERT(ret == 0 || ret == -1);
			FUZZ_ASSERT(ret || sz == 8 || v >> (8 * sz) == 0);
			break;
		case 1:
			ret = vlapic_mmio_write(l, sel & 0xfff, sz, val, now);
			FUZZ_ASSERT(ret == 0 || ret == -1);
			break;
		case 2:
			ret = vlapic_msr_read(l, msr_of(sel), &v, now);
			FUZZ_ASSERT(ret == 0 || ret == -1 || ret == -2);
			break;
		case 3:
			ret = vlapic_msr_write(l, msr_of(sel), val, now);
			FUZZ_ASSERT(ret == 0 || ret == -1 || ret == -2);
			break;
		case 4:
			vlapic_set_cr8(l, val & 0xf);
			FUZZ_ASSERT(vlapic_get_cr8(l) == (val & 0xf));
			break;
		case 5:
			FUZZ_ASSERT(vlapic_get_cr8(l) <= 0xf);
			break;
		case 6:
			vlapic_post(l, (uint8_t)val, val & 0x100);
			break;
		case 7:
			/* What the injection step before VM entry does. */
			vec = vlapic_pending_vector(l);
			FUZZ_ASSERT(vec == -1 || (vec >= 16 && vec <= 255));
			if (vec >= 0)
				vlapic_accept(l, vec);
			break;
		case 8:
			vlapic_timer_update(l, now);
			break;
		case 9:
			now += val & 0xffffffffffull;   /* up to ~2^40 TSC ticks: minutes of guest time */
			break;
		case 10:
			vlapic_reset_on_init(l);
			l->init_pending = false;
			break;
		case 11:
			(void)vlapic_next_deadline(l);
			break;
		case 12:
			/* The VMX layer consumes the events other APICs posted. */
			l->nmi_pending = 0;
			l->init_pending = false;
			l->sipi_vector = -1;
			break;
		case 13:
			(void)vlapic_x2apic(l);
			(void)vlapic_enabled(l);
			if (vlapic_mmio_active(l))
				FUZZ_ASSERT((vlapic_mmio_base(l) & 0xfff) == 0);
			break;
		default:
			/* The timer after a deadline: as the preemption timer would wake the vCPU. */
			v = vlapic_next_deadline(l);
			if (v > now)
				now = v;
			vlapic_timer_update(l, now);
			break;
		}
	}
	return 0;
}
