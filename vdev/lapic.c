/* The virtual local APIC: one vCPU's APIC registers, priority, timer and the IPIs within its guest. */

/*
 * Emulates, after Intel SDM Vol. 3A, chapter 11:
 *  - the xAPIC MMIO registers (11.4.1, Table 11-1) and the x2APIC MSRs (11.12.1.2, Table 11-6), both
 *    over one register page laid out as a VMX virtual-APIC page;
 *  - IA32_APIC_BASE (11.4.4): relocation, the xAPIC/x2APIC/disabled transitions of 11.12.5
 *    (Figure 11-27), global disable (11.4.3) and software disable (11.4.7.2);
 *  - six LVT entries (11.5.1): timer, thermal, performance counter, LINT0, LINT1, error; version
 *    0x14 with max LVT entry 5, so no CMCI entry;
 *  - the timer in one-shot, periodic (11.5.4) and TSC-deadline (11.5.4.1) modes, counting at the TSC
 *    frequency divided by the divide configuration: the hypervisor reports the TSC frequency as the
 *    APIC timer ("core crystal") frequency to guests in CPUID;
 *  - the error status register (11.5.3) and the error LVT;
 *  - IRR/ISR/TMR, TPR/PPR, EOI (11.8) and CR8 (11.8.6);
 *  - IPIs through the ICR (11.6, 11.12.9) and the x2APIC self-IPI register (11.12.11): fixed, lowest
 *    priority (xAPIC), NMI, INIT, Start-up; shorthands; physical, xAPIC flat and cluster, x2APIC
 *    cluster destinations (11.6.2, 11.12.10). IPIs reach only the local APICs of the same guest.
 *  - messages from the guest's I/O APIC (vlapic_deliver): fixed, lowest priority, NMI, INIT, with the
 *    same destination matching as IPIs; ExtINT messages are dropped (the PIC drives LINT0 instead).
 * Not emulated: SMI IPIs (dropped: no SMM); the arbitration priority (APR reads 0: lowest-priority
 * arbitration uses PPR); remote read (RRD reads 0); focus processor checking; EOI-broadcast
 * suppression; spurious interrupts (they come from hardware races this model does not have); the
 * delivery status bits (always idle); sources of thermal, performance, CMCI and LINT interrupts (the
 * entries are registers only, until a PIC model drives LINT0).
 *
 * Concurrency: other CPUs post interrupts and events to this APIC and read its ID, LDR, DFR, SVR, PPR
 * and base to route IPIs, while its owner runs it. Every register word is read and written with
 * relaxed atomics (plain moves on x86), IRR/TMR bits and the event fields with atomic read-modify-
 * writes; everything else is touched only on the owner's CPU.
 */
#include <stddef.h>
#include "vdev/lapic.h"

#define PAGE_WORDS   1024
#define PHYS_BITS_DEFAULT 36 /* MAXPHYADDR when CPUID does not report it (SDM 3A, 4.1.4) */

/* Bits software may write in xAPIC mode; x2APIC WRMSR of anything else is #GP (11.12.1.3). */
#define TPR_BITS     0xffu
#define SVR_BITS     (0xffu | VLAPIC_SVR_ENABLE | VLAPIC_SVR_FOCUS_OFF)
#define XAPIC_ID_BITS 0xff000000u  /* ID[31:24]; LDR[31:24] and ICR2[31:24] likewise */
#define DFR_ONES     0x0fffffffu   /* DFR bits 27:0 are reserved and read as ones */
#define TDCR_BITS    0xbu
#define ICR_BITS     (VLAPIC_ICR_VECTOR | VLAPIC_ICR_DM | VLAPIC_ICR_LOGICAL | VLAPIC_ICR_ASSERT | \
		      VLAPIC_ICR_LEVEL | VLAPIC_ICR_SHORTHAND)
#define LVT_TIMER_BITS (VLAPIC_LVT_VECTOR | VLAPIC_LVT_MASKED | VLAPIC_TIMER_MODE)
#define LVT_DM_BITS    (VLAPIC_LVT_VECTOR | VLAPIC_LVT_DM | VLAPIC_LVT_MASKED) /* thermal, perf */
#define LVT_LINT_BITS  (LVT_DM_BITS | VLAPIC_LVT_POLARITY | VLAPIC_LVT_LEVEL)
#define LVT_ERROR_BITS (VLAPIC_LVT_VECTOR | VLAPIC_LVT_MASKED)
/* Read-only bits a guest may write back as read (no #GP in x2APIC mode, ignored). */
#define LVT_RO_BITS    (VLAPIC_LVT_STATUS | VLAPIC_LVT_REMOTE_IRR)

/* In x2APIC mode the ICR is one 64-bit register (11.12.9): its bits 63:32 are kept at 0x304 as well,
 * where a RDMSR of 0x830 that APIC virtualization does not exit on reads them (SDM Vol. 3C, 30.5:
 * the 8 bytes at 0x300 of the virtual-APIC page). The same as ICR2 at 0x310 while in x2APIC mode. */
#define ICR_HI_X2    (VLAPIC_ICR + 4)

static const uint32_t lvt_regs[] = {
	VLAPIC_LVT_TIMER, VLAPIC_LVT_THERMAL, VLAPIC_LVT_PERF,
	VLAPIC_LVT_LINT0, VLAPIC_LVT_LINT1, VLAPIC_LVT_ERROR,
};

/* --- register page ------------------------------------------------------------------------------ */

static uint32_t *slot(const struct vlapic *l, uint32_t off)
{
	return &l->regs[off >> 2];
}

static uint32_t get(const struct vlapic *l, uint32_t off)
{
	return __atomic_load_n(slot(l, off), __ATOMIC_RELAXED);
}

static void put(struct vlapic *l, uint32_t off, uint32_t v)
{
	__atomic_store_n(slot(l, off), v, __ATOMIC_RELAXED);
}

/*
 * ISR, TMR and IRR are 256-bit registers: vector v is bit v % 32 of the 32-bit register at
 * reg + 0x10 * (v / 32) (Figure 11-20).
 */
static uint32_t *vec_word(const struct vlapic *l, uint32_t reg, unsigned v)
{
	return slot(l, reg + 0x10 * (v >> 5));
}

/*
 * Which 32-vector words of IRR and ISR may hold a bit (bit i: word i; l->irr_words, l->isr_words): a
 * superset, so a scan for the highest vector reads only those words, not all eight. A word gets its
 * bit when one of its vectors is set (after the vector, so a scan that finds the bit finds the
 * vector); only a scan that finds the word empty drops it. With APIC virtualization the CPU moves
 * vectors from IRR to ISR itself: ISR scans then read every word (l->cpu_delivers).
 */
static inline __attribute__((always_inline)) uint32_t *words_of(struct vlapic *l, uint32_t reg)
{
	return reg == VLAPIC_IRR ? &l->irr_words : reg == VLAPIC_ISR ? &l->isr_words : NULL;
}

/* Tells the VMX layer what software changed in the page (vlapic_take_dirty). */
static inline __attribute__((always_inline)) void mark(struct vlapic *l, uint32_t what)
{
	__atomic_fetch_or(&l->dirty, what, __ATOMIC_SEQ_CST);
}

/* The dirty bit of IRR, ISR or TMR. */
static inline __attribute__((always_inline)) uint32_t dirty_bit(uint32_t reg)
{
	return reg == VLAPIC_IRR ? VLAPIC_DIRTY_IRR : reg == VLAPIC_ISR ? VLAPIC_DIRTY_ISR : VLAPIC_DIRTY_TMR;
}

/* Sets vector v in IRR, ISR or TMR; true if it was clear (the register changed). */
static inline __attribute__((always_inline)) bool vec_set(struct vlapic *l, uint32_t reg, unsigned v)
{
	uint32_t *words = words_of(l, reg);
	bool was_set = __atomic_fetch_or(vec_word(l, reg, v), 1u << (v & 31), __ATOMIC_SEQ_CST) & (1u << (v & 31));

	if (words)
		__atomic_fetch_or(words, 1u << (v >> 5), __ATOMIC_SEQ_CST);
	mark(l, dirty_bit(reg));
	return !was_set;
}

/* The summary a scan of `reg` may trust (vec_highest), or NULL: read every word. */
static inline __attribute__((always_inline)) uint32_t *summary_of(struct vlapic *l, uint32_t reg)
{
	return reg == VLAPIC_ISR && l->cpu_delivers ? NULL : words_of(l, reg);
}

/*
 * Word i, summarized in `words`, was seen empty: drops its summary bit, then looks once more, for a
 * vector another CPU set meanwhile (it sets the summary bit after the vector: either this load sees
 * the vector and the bit goes back, or that CPU's summary bit comes after the drop). Returns the word.
 */
static inline __attribute__((always_inline)) uint32_t drop_word(uint32_t *words, unsigned i, uint32_t *w)
{
	uint32_t val;

	__atomic_fetch_and(words, ~(1u << i), __ATOMIC_SEQ_CST);
	if ((val = __atomic_load_n(w, __ATOMIC_SEQ_CST)))
		__atomic_fetch_or(words, 1u << i, __ATOMIC_SEQ_CST);
	return val;
}

static inline __attribute__((always_inline)) void vec_clear(struct vlapic *l, uint32_t reg, unsigned v)
{
	uint32_t *w = vec_word(l, reg, v), *words = summary_of(l, reg);

	/* The last vector of its word: the word leaves the summary now rather than at the next scan. */
	if (!__atomic_and_fetch(w, ~(1u << (v & 31)), __ATOMIC_SEQ_CST) && words)
		drop_word(words, v >> 5, w);
	mark(l, dirty_bit(reg));
}

static bool vec_test(const struct vlapic *l, uint32_t reg, unsigned v)
{
	return __atomic_load_n(vec_word(l, reg, v), __ATOMIC_SEQ_CST) & (1u << (v & 31));
}

/* The highest vector set in a 256-bit register, or -1. Inlined: `reg` is a constant at each call. */
static inline __attribute__((always_inline)) int vec_highest(struct vlapic *l, uint32_t reg)
{
	uint32_t *words = summary_of(l, reg);
	uint32_t sum, *w, val;
	unsigned i;

	if (!words) {
		for (int n = 7; n >= 0; n--)
			if ((val = __atomic_load_n(slot(l, reg + 0x10 * (unsigned)n), __ATOMIC_SEQ_CST)))
				return n * 32 + 31 - __builtin_clz(val);
		return -1;
	}
	for (sum = __atomic_load_n(words, __ATOMIC_SEQ_CST); sum; sum &= ~(1u << i)) {
		i = 31 - (unsigned)__builtin_clz(sum);
		w = slot(l, reg + 0x10 * i);
		if ((val = __atomic_load_n(w, __ATOMIC_SEQ_CST)) || (val = drop_word(words, i, w)))
			return (int)(i * 32 + 31 - (unsigned)__builtin_clz(val));
	}
	return -1;
}

static uint64_t base_of(const struct vlapic *l)
{
	return __atomic_load_n(&l->base, __ATOMIC_RELAXED);
}

bool vlapic_x2apic(const struct vlapic *l)
{
	/* EXTD without EN is the invalid state of Figure 11-27, which a write never reaches. */
	return base_of(l) & VLAPIC_BASE_EXTD;
}

static bool hw_enabled(const struct vlapic *l)
{
	return base_of(l) & VLAPIC_BASE_EN;
}

bool vlapic_enabled(const struct vlapic *l)
{
	return hw_enabled(l) && (get(l, VLAPIC_SVR) & VLAPIC_SVR_ENABLE);
}

bool vlapic_mmio_active(const struct vlapic *l)
{
	return hw_enabled(l) && !vlapic_x2apic(l);
}

uint64_t vlapic_mmio_base(const struct vlapic *l)
{
	return base_of(l) & ~0xfffull;
}

/* The x2APIC logical ID (11.12.10.2): cluster ID[19:4] in bits 31:16, bit ID[3:0] of bits 15:0. */
static uint32_t x2apic_ldr(uint32_t id)
{
	return ((id >> 4) << 16) | (1u << (id & 15));
}

static void kick(struct vlapic *t, bool fixed)
{
	if (t->group && t->group->kick)
		t->group->kick(t, fixed);
}

/* --- priority (11.8.3.1) ------------------------------------------------------------------------ */

/* PPR = TPR if TPR[7:4] >= ISRV[7:4], else ISRV[7:4] with sub-class 0 (ISRV: highest in-service). */
static void update_ppr(struct vlapic *l)
{
	uint32_t tpr = get(l, VLAPIC_TPR);
	int isrv = vec_highest(l, VLAPIC_ISR);
	uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;

	put(l, VLAPIC_PPR, (tpr & 0xf0) >= isr_class ? tpr : isr_class);
}

/* --- errors (11.5.3) ---------------------------------------------------------------------------- */

/*
 * Records errors for the next ESR write to latch, and raises the error LVT interrupt. Its vector goes
 * straight into IRR: an illegal error vector only adds "received illegal vector", so an error can
 * never raise another error. Returns whether that changed IRR or TMR, as receive_fixed does: an
 * error vector already pending merges with the request there (11.8.4), so repeated errors cost the
 * owner no more kicks than one.
 */
static bool raise_error(struct vlapic *l, uint32_t bits)
{
	uint32_t lvt = get(l, VLAPIC_LVT_ERROR), v = lvt & VLAPIC_LVT_VECTOR;
	bool changed = false;

	if (!(lvt & VLAPIC_LVT_MASKED) && v < 16)
		bits |= VLAPIC_ESR_RECV_VECTOR;
	__atomic_fetch_or(&l->esr_pending, bits, __ATOMIC_SEQ_CST);
	if (!(lvt & VLAPIC_LVT_MASKED) && v >= 16 && vlapic_enabled(l)) {
		if (vec_test(l, VLAPIC_TMR, v)) {
			vec_clear(l, VLAPIC_TMR, v);
			changed = true;
		}
		changed |= vec_set(l, VLAPIC_IRR, v);
	}
	return changed;
}

/* --- interrupt acceptance ----------------------------------------------------------------------- */

/*
 * A fixed interrupt arrives (from the LVT, a device or an IPI): into IRR, with TMR saying its trigger
 * mode (11.8.4). A disabled APIC drops it (11.4.7.2). Vectors 0..15 are illegal (11.5.2). Returns
 * whether anything changed that the owner must notice: the vector newly requested, or its trigger mode
 * changed (the EOI-exit bitmap follows TMR). A vector already in IRR with the same trigger mode merges
 * with the request there (one IRR bit per vector, 11.8.4): the owner was told when it was set, and has
 * not taken it since, so nothing is new and no kick is needed (a guest posting the same vector in a
 * loop costs its target's CPU one exit, not one per post).
 */
static bool receive_fixed(struct vlapic *l, unsigned vector, bool level)
{
	bool changed = false;

	if (!vlapic_enabled(l))
		return false;
	if (vector < 16)
		return raise_error(l, VLAPIC_ESR_RECV_VECTOR);
	if (level) {
		changed = vec_set(l, VLAPIC_TMR, vector);
	} else if (vec_test(l, VLAPIC_TMR, vector)) {   /* most interrupts are edge: no write, TMR unchanged */
		vec_clear(l, VLAPIC_TMR, vector);
		changed = true;
	}
	return vec_set(l, VLAPIC_IRR, vector) || changed;
}

void vlapic_post(struct vlapic *l, uint8_t vector, bool level)
{
	if (receive_fixed(l, vector, level))
		kick(l, true);
}

int vlapic_pending_vector(struct vlapic *l)
{
	int v;

	if (!vlapic_enabled(l))
		return -1;
	v = vec_highest(l, VLAPIC_IRR);
	if (v < 0 || ((uint32_t)v & 0xf0) <= (get(l, VLAPIC_PPR) & 0xf0))
		return -1;
	return v;
}

void vlapic_accept(struct vlapic *l, int vector)
{
	if (vector < 16 || vector > 255)
		return;
	vec_clear(l, VLAPIC_IRR, (unsigned)vector);
	vec_set(l, VLAPIC_ISR, (unsigned)vector);
	update_ppr(l);
}

/* EOI retires the highest in-service vector (11.8.5), whatever value was written (xAPIC). */
static void eoi(struct vlapic *l)
{
	int v = vec_highest(l, VLAPIC_ISR);

	if (v < 0)
		return;
	vec_clear(l, VLAPIC_ISR, (unsigned)v);
	update_ppr(l);
	if (vec_test(l, VLAPIC_TMR, (unsigned)v)) {
		l->last_level_eoi = v;
		if (l->group && l->group->eoi_level)
			l->group->eoi_level(l, (uint8_t)v);
	}
}

uint64_t vlapic_get_cr8(const struct vlapic *l)
{
	return (get(l, VLAPIC_TPR) >> 4) & 0xf;
}

void vlapic_set_cr8(struct vlapic *l, uint64_t cr8)
{
	/* MOV to CR8 writes TPR[7:4] and clears TPR[3:0] (11.8.6.1). */
	put(l, VLAPIC_TPR, (uint32_t)(cr8 & 0xf) << 4);
	update_ppr(l);
	mark(l, VLAPIC_DIRTY_REGS);   /* a lower priority may let a pending vector through */
}

/* --- timer (11.5.4) ----------------------------------------------------------------------------- */

static uint32_t timer_mode(const struct vlapic *l)
{
	return get(l, VLAPIC_LVT_TIMER) & VLAPIC_TIMER_MODE;
}

/* TDCR bits 3,1:0 (Figure 11-10): 000b divides by 2, 001b by 4, ... 110b by 128, 111b by 1. */
static uint32_t tdcr_divide(uint32_t tdcr)
{
	uint32_t v = (tdcr & 3) | ((tdcr >> 1) & 4);

	return 1u << ((v + 1) & 7);
}

static void timer_stop(struct vlapic *l)
{
	l->timer_deadline = 0;
	l->timer_period = 0;
}

/* now + ticks, saturated so a deadline never wraps to 0 ("not armed") or into the past. */
static uint64_t after(uint64_t now, uint64_t ticks)
{
	uint64_t d = now + ticks;

	return d < now ? UINT64_MAX : d;
}

/* An initial-count write (re)starts the count from TMICT; 0 stops the timer. */
static void timer_start(struct vlapic *l, uint64_t now)
{
	uint64_t ticks = (uint64_t)get(l, VLAPIC_TMICT) * l->timer_divide;

	if (!ticks) {
		timer_stop(l);
		return;
	}
	l->timer_deadline = after(now, ticks);
	l->timer_period = timer_mode(l) == VLAPIC_TIMER_PERIODIC ? ticks : 0;
}

/* The current count: timer counts left, rounded up (a count lasts `divide` TSC ticks). */
static uint32_t timer_current(const struct vlapic *l, uint64_t now)
{
	uint64_t left;

	if (!l->timer_deadline || timer_mode(l) == VLAPIC_TIMER_TSC)
		return 0;
	if (now < l->timer_deadline)
		left = l->timer_deadline - now;
	else if (l->timer_period)  /* periods passed without an update: the count reloaded */
		left = l->timer_period - (now - l->timer_deadline) % l->timer_period;
	else
		return 0;
	return (uint32_t)((left + l->timer_divide - 1) / l->timer_divide);
}

/* A new divide value changes the rate of the running count: the counts left stay, their length changes. */
static void write_tdcr(struct vlapic *l, uint32_t v, uint64_t now)
{
	uint32_t left = timer_current(l, now);

	put(l, VLAPIC_TDCR, v & TDCR_BITS);
	l->timer_divide = tdcr_divide(v);
	if (l->timer_deadline && timer_mode(l) != VLAPIC_TIMER_TSC) {
		l->timer_deadline = after(now, (uint64_t)left * l->timer_divide);
		if (l->timer_period)
			l->timer_period = (uint64_t)get(l, VLAPIC_TMICT) * l->timer_divide;
	}
}

bool vlapic_timer_update(struct vlapic *l, uint64_t now)
{
	uint64_t d = l->timer_deadline;
	uint32_t lvt;

	if (!d || now < d)
		return false;
	lvt = get(l, VLAPIC_LVT_TIMER);
	if (l->timer_period && (lvt & VLAPIC_TIMER_MODE) == VLAPIC_TIMER_PERIODIC) {
		/* Coalesce missed periods into this one interrupt; keep the phase. */
		uint64_t missed = (now - d) / l->timer_period;

		l->timer_deadline = after(d, (missed + 1) * l->timer_period);
	} else {
		timer_stop(l);
	}
	if (!(lvt & VLAPIC_LVT_MASKED))
		receive_fixed(l, lvt & VLAPIC_LVT_VECTOR, false);
	return true;
}


/* --- reset -------------------------------------------------------------------------------------- */

/* The power-up state (11.4.7.1) with APIC ID register value `id`. */
static void reset_regs(struct vlapic *l, uint32_t id)
{
	/* Other CPUs match IPI destinations against ID and DFR while this runs (an INIT that arrives
	 * with its Start-up IPIs right behind it): never let them see those zeroed on the way. */
	for (unsigned i = 0; i < PAGE_WORDS; i++)
		if (i != VLAPIC_ID / 4 && i != VLAPIC_DFR / 4)
			__atomic_store_n(&l->regs[i], 0, __ATOMIC_RELAXED);
	put(l, VLAPIC_ID, id);
	put(l, VLAPIC_VER, VLAPIC_VERSION);
	put(l, VLAPIC_DFR, 0xffffffffu);
	put(l, VLAPIC_SVR, 0xff);
	for (unsigned i = 0; i < sizeof(lvt_regs) / sizeof(lvt_regs[0]); i++)
		put(l, lvt_regs[i], VLAPIC_LVT_MASKED);
	if (vlapic_x2apic(l))
		put(l, VLAPIC_LDR, x2apic_ldr(id));
	timer_stop(l);
	l->timer_divide = tdcr_divide(0);
	__atomic_store_n(&l->esr_pending, 0, __ATOMIC_SEQ_CST);
	/* ISR is the owner's alone: empty now. IRR keeps its summary, a superset still (another CPU
	 * may be posting a vector right now). */
	l->isr_words = 0;
	mark(l, VLAPIC_DIRTY_ALL);
	update_ppr(l);
}

void vlapic_init(struct vlapic *l, struct vlapic_group *g, unsigned index, uint32_t *regs)
{
	l->regs = regs;
	l->group = g;
	l->index = index;
	l->base = VLAPIC_BASE_DEFAULT | VLAPIC_BASE_EN | (index == 0 ? VLAPIC_BASE_BSP : 0);
	l->last_level_eoi = -1;
	l->irr_words = 0;
	l->cpu_delivers = false;
	l->nmi_pending = 0;
	l->init_pending = false;
	l->sipi_vector = -1;
	reset_regs(l, index << 24);
}

void vlapic_join(struct vlapic_group *g, struct vlapic *l)
{
	g->member[l->index] = l;
	if (g->count <= l->index)
		g->count = l->index + 1;
	__atomic_add_fetch(&g->attached, 1, __ATOMIC_SEQ_CST);
}

bool vlapic_leave(struct vlapic *l)
{
	/* Release: this member's last posts come before the count says it left; acquire: the last
	 * sees every other member's. */
	return __atomic_sub_fetch(&l->group->attached, 1, __ATOMIC_ACQ_REL) == 0;
}

void vlapic_reset_on_init(struct vlapic *l)
{
	reset_regs(l, get(l, VLAPIC_ID));
}

/* --- IPIs (11.6, 11.12.9) ----------------------------------------------------------------------- */

/* The APIC ID physical destinations compare with: 8 bits in xAPIC, 32 in x2APIC. */
static uint32_t dest_id(const struct vlapic *t)
{
	uint32_t id = get(t, VLAPIC_ID);

	return vlapic_x2apic(t) ? id : id >> 24;
}

/*
 * Whether `t` is addressed by `dest` (11.6.2). `bcast` (0xff for an xAPIC-format message, 0xffffffff
 * for an x2APIC one) is a broadcast in both destination modes (11.12.9). A target matches with its own
 * registers: xAPIC flat (DFR 1111b) ANDs the MDA with LDR[31:24]; cluster (DFR 0000b) needs the
 * cluster nibble equal (or 0xf) and a common bit in the low nibble; x2APIC (11.12.10) needs dest[31:16]
 * equal to the cluster and a common bit in dest[15:0].
 */
static bool match_dest(const struct vlapic *t, uint32_t dest, bool logical, uint32_t bcast)
{
	uint32_t ldr, mda, model;

	if (dest == bcast)
		return true;
	if (!logical)
		return dest == dest_id(t);
	ldr = get(t, VLAPIC_LDR);
	if (vlapic_x2apic(t))
		return (dest >> 16) == (ldr >> 16) && (dest & ldr & 0xffff);
	if (dest > 0xff)
		return false;
	mda = dest;
	ldr >>= 24;
	model = get(t, VLAPIC_DFR) >> 28;
	if (model == 0xf)
		return (mda & ldr) != 0;
	if (model == 0)
		return ((mda >> 4) == 0xf || (mda >> 4) == (ldr >> 4)) && (mda & ldr & 0xf);
	return false; /* other models are reserved */
}

/*
 * Delivers one IPI message to `t`. A software-disabled APIC still takes NMI, INIT and Start-up
 * (11.4.7.2); a globally disabled one is no APIC at all (11.4.3) and takes nothing.
 *
 * The owner is kicked only when something becomes pending that was not (a kick is a physical IPI to
 * the owner's host CPU, which other guests may share: a guest must not be able to send them without
 * bound). An NMI is a latch, not a count: the CPU blocks NMIs from one's delivery to the next IRET
 * rather than stacking them up (SDM Vol. 3A, 6.7.1, "Handling Multiple NMIs"), and holds at most one
 * pending meanwhile; further NMIs merge with the pending one. An INIT likewise. A Start-up IPI
 * replaces the vector of one still pending (the owner takes the latest), but only the first needs
 * telling.
 */
static void deliver(struct vlapic *t, uint32_t mode, unsigned vector, bool level)
{
	if (!hw_enabled(t))
		return;
	switch (mode) {
	case VLAPIC_ICR_FIXED:
	case VLAPIC_ICR_LOWEST:
		if (receive_fixed(t, vector, level))
			kick(t, true);
		return;
	case VLAPIC_ICR_NMI:
		if (__atomic_exchange_n(&t->nmi_pending, 1, __ATOMIC_SEQ_CST))
			return;              /* one pending already: this one merges, the owner was told */
		break;
	case VLAPIC_ICR_INIT:
		if (__atomic_exchange_n(&t->init_pending, true, __ATOMIC_SEQ_CST))
			return;              /* one pending already: the owner was told (merges, as above) */
		break;
	case VLAPIC_ICR_STARTUP:
		if (__atomic_exchange_n(&t->sipi_vector, (int)vector, __ATOMIC_SEQ_CST) != -1)
			return;              /* one pending already: the owner was told, takes the latest */
		break;
	default:
		return;
	}
	kick(t, false);
}

/*
 * Delivers a message of `mode` (an ICR delivery mode) to the members of `g` that `dest`/`logical`
 * address (`bcast`: the broadcast destination, see match_dest), or with shorthand `sh` (ICR bits 19:18,
 * relative to `self`). The candidates are the group's members, plus `self` should it not be one:
 * nothing leaves the guest. Lowest priority picks one enabled match with the lowest PPR, the lowest
 * member on a tie (the arbitration priority is not modelled).
 */
static void route(struct vlapic_group *g, struct vlapic *self, uint32_t mode, unsigned vector, bool level,
		  uint32_t dest, bool logical, uint32_t bcast, uint32_t sh)
{
	struct vlapic *best = NULL, *t;
	bool self_in = false;
	unsigned n = g ? g->count : 0;

	/* The members in order, then `self` if it is none: each once, without a list built first. */
	for (unsigned i = 0; i <= n && i <= VLAPIC_MAX; i++) {
		if (i < n && i < VLAPIC_MAX) {
			if (!(t = g->member[i]))
				continue;
			self_in |= t == self;
		} else if (!(t = self) || self_in) {
			break;
		}
		if (sh == VLAPIC_ICR_OTHERS && t == self)
			continue;
		if (!sh && !match_dest(t, dest, logical, bcast))
			continue;
		if (mode != VLAPIC_ICR_LOWEST)
			deliver(t, mode, vector, level);
		else if (vlapic_enabled(t) && (!best || get(t, VLAPIC_PPR) < get(best, VLAPIC_PPR)))
			best = t;
	}
	if (best)
		deliver(best, mode, vector, level);
}

/*
 * Sends the IPI `icr` (bits 31:0 of the ICR) to `dest` (ICR2[31:24] in xAPIC, bits 63:32 in x2APIC).
 */
static void send_ipi(struct vlapic *l, uint32_t icr, uint32_t dest)
{
	uint32_t mode = icr & VLAPIC_ICR_DM, sh = icr & VLAPIC_ICR_SHORTHAND;
	unsigned vector = icr & VLAPIC_ICR_VECTOR;
	bool logical = icr & VLAPIC_ICR_LOGICAL;
	bool x2 = vlapic_x2apic(l);
	/* IPIs are edge-triggered: the ICR's trigger mode (bit 15) matters only for INIT level
	 * de-assert, below, and is ignored for every other delivery mode (11.6.1, "Trigger Mode"; always
	 * 0 on Pentium 4 and later). Honouring it would set the target's TMR, so that the target's EOI
	 * of an IPI vector reached the I/O APIC (eoi_level) as a level EOI, and alternating it would
	 * flip TMR and kick on every IPI. */
	const bool level = false;

	switch (mode) {
	case VLAPIC_ICR_LOWEST:
		/* x2APIC has no lowest-priority IPIs: the "redirectable IPI" error, nothing sent (11.12.9). */
		if (x2) {
			raise_error(l, VLAPIC_ESR_REDIRECTABLE);
			return;
		}
		/* fall through */
	case VLAPIC_ICR_FIXED:
		if (vector < 16) {
			raise_error(l, VLAPIC_ESR_SEND_VECTOR);
			return;
		}
		break;
	case VLAPIC_ICR_INIT:
		/* INIT level de-assert only resynchronises arbitration IDs (11.6.1): nothing to do. */
		if ((icr & VLAPIC_ICR_LEVEL) && !(icr & VLAPIC_ICR_ASSERT))
			return;
		break;
	case VLAPIC_ICR_NMI:
	case VLAPIC_ICR_STARTUP:
		break;
	default:
		return; /* SMI (no SMM here), reserved modes 011b and 111b */
	}

	/* The self shorthand is valid with fixed delivery only (11.6.1, valid ICR combinations). */
	if (sh == VLAPIC_ICR_SELF) {
		if (mode == VLAPIC_ICR_FIXED)
			deliver(l, mode, vector, level);
		return;
	}
	route(l->group, l, mode, vector, level, dest, logical, x2 ? 0xffffffffu : 0xffu, sh);
}

/*
 * A message from outside the local APICs (the I/O APIC's redirection entries, 82093AA datasheet 3.2.4;
 * later MSIs): `delivery_mode` is the 3-bit field of the entry (the ICR's bits 10:8, SDM 11.6.1).
 * Fixed, lowest priority, NMI and INIT are delivered as an IPI of that mode would be (a vector below
 * 16 sets "received illegal vector" in each receiver). SMI (010b) is dropped: no SMM. ExtINT (111b)
 * is dropped as well: the vector of an ExtINT comes from the 8259A's INTA cycle, and on this platform
 * the PIC's INTR reaches vCPU 0 through LINT0 (virtual wire, MP spec 3.6.2.2), where the VMX layer
 * asks the PIC for it, never through an I/O APIC pin. Start-up (110b) and 011b are reserved in an
 * I/O APIC entry: dropped.
 */
void vlapic_deliver(struct vlapic_group *g, uint32_t dest, bool logical, unsigned delivery_mode,
		    uint8_t vector, bool level)
{
	uint32_t mode = (delivery_mode & 7) << 8;

	switch (mode) {
	case VLAPIC_ICR_FIXED:
	case VLAPIC_ICR_LOWEST:
		break;
	case VLAPIC_ICR_NMI:
	case VLAPIC_ICR_INIT:
		level = false; /* always edge (82093AA 3.2.4, trigger mode) */
		break;
	default:
		return;
	}
	if (dest == 0xffffffffu)
		dest = 0xff;
	route(g, NULL, mode, vector, level, dest, logical, 0xff, 0);
}

/* --- register access ---------------------------------------------------------------------------- */

/* The value of the register at 16-byte-aligned `off`; false if there is none (reserved). */
static bool read_reg(const struct vlapic *l, uint32_t off, uint64_t now, uint32_t *val)
{
	switch (off) {
	case VLAPIC_ID: case VLAPIC_VER: case VLAPIC_TPR: case VLAPIC_PPR:
	case VLAPIC_LDR: case VLAPIC_DFR: case VLAPIC_SVR: case VLAPIC_ESR:
	case VLAPIC_ICR: case VLAPIC_ICR2: case VLAPIC_TMICT: case VLAPIC_TDCR:
	case VLAPIC_LVT_TIMER: case VLAPIC_LVT_THERMAL: case VLAPIC_LVT_PERF:
	case VLAPIC_LVT_LINT0: case VLAPIC_LVT_LINT1: case VLAPIC_LVT_ERROR:
		*val = get(l, off);
		return true;
	case VLAPIC_APR:
	case VLAPIC_RRD:
	case VLAPIC_EOI: /* write-only: reads 0 in xAPIC mode */
		*val = 0;
		return true;
	case VLAPIC_TMCCT:
		*val = timer_current(l, now);
		return true;
	}
	if (off >= VLAPIC_ISR && off < VLAPIC_ESR) { /* ISR, TMR, IRR */
		*val = get(l, off);
		return true;
	}
	return false;
}

/* An LVT write: a software-disabled APIC keeps every entry masked (11.4.7.2). */
static void write_lvt(struct vlapic *l, uint32_t off, uint32_t v)
{
	if (!(get(l, VLAPIC_SVR) & VLAPIC_SVR_ENABLE))
		v |= VLAPIC_LVT_MASKED;
	put(l, off, v);
}

/* A write that changes the timer mode disarms the timer (11.5.4.1); mode 11b is reserved: ignored. */
static void write_lvt_timer(struct vlapic *l, uint32_t v)
{
	uint32_t old = timer_mode(l);

	v &= LVT_TIMER_BITS;
	if ((v & VLAPIC_TIMER_MODE) == VLAPIC_TIMER_MODE)
		v = (v & ~VLAPIC_TIMER_MODE) | old;
	write_lvt(l, VLAPIC_LVT_TIMER, v);
	if ((v & VLAPIC_TIMER_MODE) != old)
		timer_stop(l);
}

/* Software enable and disable (11.4.7.2): disabling masks every LVT entry. */
static void write_svr(struct vlapic *l, uint32_t v)
{
	put(l, VLAPIC_SVR, v & SVR_BITS);
	if (!(v & VLAPIC_SVR_ENABLE))
		for (unsigned i = 0; i < sizeof(lvt_regs) / sizeof(lvt_regs[0]); i++)
			put(l, lvt_regs[i], get(l, lvt_regs[i]) | VLAPIC_LVT_MASKED);
}

/*
 * Writes the register at 16-byte-aligned `off` with xAPIC semantics: reserved bits dropped, read-only
 * registers unchanged. x2APIC callers have checked the register and its reserved bits already.
 * Returns false if there is no register there.
 */
static bool write_reg(struct vlapic *l, uint32_t off, uint32_t v, uint64_t now)
{
	/* First the ICR, the write that exits most under APIC virtualization (an APIC-write exit):
	 * it sends an IPI and changes nothing this APIC's owner injects (a self IPI marks IRR), so it
	 * marks no register change. */
	if (off == VLAPIC_ICR) {
		put(l, off, v & ICR_BITS);
		send_ipi(l, v, get(l, VLAPIC_ICR2) >> 24);
		return true;
	}
	mark(l, VLAPIC_DIRTY_REGS);   /* e.g. the LVT timer and TMICT that vlapic_save_old keeps, TPR, LINT0 */
	switch (off) {
	case VLAPIC_ID:
		/* Writable in xAPIC mode, as on the processors that allow it; IPIs then use the new ID. */
		put(l, off, v & XAPIC_ID_BITS);
		return true;
	case VLAPIC_VER: case VLAPIC_APR: case VLAPIC_PPR: case VLAPIC_RRD: case VLAPIC_TMCCT:
		return true;
	case VLAPIC_TPR:
		put(l, off, v & TPR_BITS);
		update_ppr(l);
		return true;
	case VLAPIC_EOI:
		eoi(l);
		return true;
	case VLAPIC_LDR:
		put(l, off, v & XAPIC_ID_BITS);
		return true;
	case VLAPIC_DFR:
		put(l, off, v | DFR_ONES);
		return true;
	case VLAPIC_SVR:
		write_svr(l, v);
		return true;
	case VLAPIC_ESR:
		/* The write latches the errors seen since the previous one into the readable ESR. */
		put(l, off, __atomic_exchange_n(&l->esr_pending, 0, __ATOMIC_SEQ_CST));
		return true;
	case VLAPIC_ICR2:
		put(l, off, v & XAPIC_ID_BITS);
		return true;
	case VLAPIC_LVT_TIMER:
		write_lvt_timer(l, v);
		return true;
	case VLAPIC_LVT_THERMAL:
	case VLAPIC_LVT_PERF:
		write_lvt(l, off, v & LVT_DM_BITS);
		return true;
	case VLAPIC_LVT_LINT0:
	case VLAPIC_LVT_LINT1:
		write_lvt(l, off, v & LVT_LINT_BITS);
		return true;
	case VLAPIC_LVT_ERROR:
		write_lvt(l, off, v & LVT_ERROR_BITS);
		return true;
	case VLAPIC_TMICT:
		/* TSC-deadline mode ignores initial-count writes (11.5.4.1). */
		if (timer_mode(l) != VLAPIC_TIMER_TSC) {
			put(l, off, v);
			timer_start(l, now);
		}
		return true;
	case VLAPIC_TDCR:
		write_tdcr(l, v, now);
		return true;
	}
	return off >= VLAPIC_ISR && off < VLAPIC_ESR; /* ISR, TMR, IRR: read-only */
}

int vlapic_mmio_read(struct vlapic *l, uint32_t offset, unsigned size, uint64_t *val, uint64_t now)
{
	uint32_t in = offset & 0xf, v;

	if (!vlapic_mmio_active(l) || offset > 0xfff)
		return -1;
	if ((size != 1 && size != 2 && size != 4) || in + size > 4)
		return -1;
	if (!read_reg(l, offset & ~0xfu, now, &v)) {
		raise_error(l, VLAPIC_ESR_REGISTER);
		v = 0;
	}
	v >>= 8 * in;
	*val = size == 4 ? v : v & ((1u << (8 * size)) - 1);
	return 0;
}

int vlapic_mmio_write(struct vlapic *l, uint32_t offset, unsigned size, uint64_t val, uint64_t now)
{
	if (!vlapic_mmio_active(l) || offset > 0xfff || size != 4 || (offset & 0xf))
		return -1;
	if (!write_reg(l, offset, (uint32_t)val, now))
		raise_error(l, VLAPIC_ESR_REGISTER);
	return 0;
}

/* --- MSRs --------------------------------------------------------------------------------------- */

/*
 * IA32_APIC_BASE writes. The states of Figure 11-27 are disabled (EN=0, EXTD=0), xAPIC (1, 0) and
 * x2APIC (1, 1); EN=0 with EXTD=1 is invalid. #GP for that, for x2APIC -> xAPIC and for
 * disabled -> x2APIC. BSP is read-only here: its bit in the written value is ignored.
 */
static int write_base(struct vlapic *l, uint64_t val)
{
	unsigned bits = l->group && l->group->phys_bits ? l->group->phys_bits : PHYS_BITS_DEFAULT;
	uint64_t old = l->base, addr_bits, ok;
	bool en = val & VLAPIC_BASE_EN, x2 = val & VLAPIC_BASE_EXTD;
	bool was_en = old & VLAPIC_BASE_EN, was_x2 = old & VLAPIC_BASE_EXTD;

	if (bits > 52)
		bits = 52;
	addr_bits = ((1ull << bits) - 1) & ~0xfffull;
	ok = addr_bits | VLAPIC_BASE_BSP | VLAPIC_BASE_EXTD | VLAPIC_BASE_EN;
	if (val & ~ok)
		return -1;
	if (x2 && !en)
		return -1;
	if (was_x2 && en && !x2)
		return -1;
	if (!was_en && x2)
		return -1;
	__atomic_store_n(&l->base, (val & ~VLAPIC_BASE_BSP) | (old & VLAPIC_BASE_BSP), __ATOMIC_SEQ_CST);
	if (was_en && !en) {
		/* Global disable: the power-up state, kept until re-enabled (11.4.3). */
		reset_regs(l, l->index << 24);
	} else if (!was_x2 && x2) {
		/* Entering x2APIC mode: the 32-bit ID and the derived LDR (11.12.5.1). */
		put(l, VLAPIC_ID, l->index);
		put(l, VLAPIC_LDR, x2apic_ldr(l->index));
		put(l, ICR_HI_X2, get(l, VLAPIC_ICR2));
	}
	return 0;
}

/*
 * For each x2APIC register a WRMSR may write, the bits it may set (11.12.1.3; read-only bits of an
 * LVT or the ICR delivery status may be written back as read); 0 = no such writable register.
 */
static uint64_t x2apic_write_bits(uint32_t off)
{
	switch (off) {
	case VLAPIC_TPR:         return TPR_BITS;
	case VLAPIC_SVR:         return SVR_BITS;
	case VLAPIC_EOI:         return ~0ull; /* any value reaches the zero check */
	case VLAPIC_ESR:         return ~0ull;
	case VLAPIC_ICR:         return 0xffffffff00000000ull | ICR_BITS | VLAPIC_ICR_STATUS;
	case VLAPIC_LVT_TIMER:   return LVT_TIMER_BITS | LVT_RO_BITS;
	case VLAPIC_LVT_THERMAL:
	case VLAPIC_LVT_PERF:    return LVT_DM_BITS | LVT_RO_BITS;
	case VLAPIC_LVT_LINT0:
	case VLAPIC_LVT_LINT1:   return LVT_LINT_BITS | LVT_RO_BITS;
	case VLAPIC_LVT_ERROR:   return LVT_ERROR_BITS | LVT_RO_BITS;
	case VLAPIC_TMICT:       return 0xffffffffu;
	case VLAPIC_TDCR:        return TDCR_BITS;
	case VLAPIC_SELF_IPI:    return VLAPIC_ICR_VECTOR;
	}
	return 0;
}

int vlapic_msr_read(struct vlapic *l, uint32_t msr, uint64_t *val, uint64_t now)
{
	uint32_t off, v;

	if (msr == VLAPIC_MSR_APIC_BASE) {
		*val = l->base;
		return 0;
	}
	if (msr == VLAPIC_MSR_TSC_DEADLINE) {
		*val = timer_mode(l) == VLAPIC_TIMER_TSC ? l->timer_deadline : 0;
		return 0;
	}
	if (msr < VLAPIC_MSR_X2APIC || msr > VLAPIC_MSR_X2APIC + 0xff)
		return -2;
	if (!vlapic_x2apic(l))
		return -1;
	off = (msr - VLAPIC_MSR_X2APIC) << 4;
	switch (off) {
	case VLAPIC_APR: case VLAPIC_EOI: case VLAPIC_RRD: case VLAPIC_DFR: case VLAPIC_ICR2:
		return -1; /* not in x2APIC mode, or write-only (the self-IPI register is not in read_reg) */
	case VLAPIC_ICR:
		*val = get(l, VLAPIC_ICR) | (uint64_t)get(l, VLAPIC_ICR2) << 32;
		return 0;
	}
	if (!read_reg(l, off, now, &v))
		return -1;
	*val = v;
	return 0;
}

int vlapic_msr_write(struct vlapic *l, uint32_t msr, uint64_t val, uint64_t now)
{
	uint32_t off;
	uint64_t ok;

	if (msr == VLAPIC_MSR_APIC_BASE)
		return write_base(l, val);
	if (msr == VLAPIC_MSR_TSC_DEADLINE) {
		/* Non-zero arms, zero disarms; other timer modes ignore the write (11.5.4.1). */
		if (timer_mode(l) == VLAPIC_TIMER_TSC) {
			l->timer_deadline = val;
			l->timer_period = 0;
		}
		return 0;
	}
	if (msr < VLAPIC_MSR_X2APIC || msr > VLAPIC_MSR_X2APIC + 0xff)
		return -2;
	if (!vlapic_x2apic(l))
		return -1;
	if (msr == VLAPIC_MSR(VLAPIC_EOI)) {
		/* First, as the most frequent write (one per interrupt); the same as below. */
		if (val)
			return -1; /* only 0 may be written (Table 11-6) */
		eoi(l);
		return 0;
	}
	off = (msr - VLAPIC_MSR_X2APIC) << 4;
	ok = x2apic_write_bits(off);
	if (!ok || (val & ~ok))
		return -1;
	switch (off) {
	case VLAPIC_EOI:
	case VLAPIC_ESR:
		if (val)
			return -1; /* only 0 may be written (Table 11-6) */
		break;
	case VLAPIC_ICR:
		/* One 64-bit write sends; bit 12 is ignored (11.12.9). */
		put(l, VLAPIC_ICR, (uint32_t)val & ICR_BITS);
		put(l, VLAPIC_ICR2, (uint32_t)(val >> 32));
		put(l, ICR_HI_X2, (uint32_t)(val >> 32));
		send_ipi(l, (uint32_t)val, (uint32_t)(val >> 32));
		return 0;
	case VLAPIC_SELF_IPI:
		/* A fixed, edge-triggered IPI to this APIC (11.12.11). */
		send_ipi(l, (uint32_t)val | VLAPIC_ICR_SELF, 0);
		return 0;
	}
	write_reg(l, off, (uint32_t)val, now);
	return 0;
}

/* --- with the CPU's APIC virtualization (SDM Vol. 3C, chapter 30) ------------------------------- */

int vlapic_highest_irr(struct vlapic *l)
{
	return vec_highest(l, VLAPIC_IRR);
}

int vlapic_highest_isr(struct vlapic *l)
{
	return vec_highest(l, VLAPIC_ISR);
}

void vlapic_set_cpu_delivery(struct vlapic *l, bool on)
{
	l->cpu_delivers = on;
	if (!on)
		l->isr_words = 0xff;   /* whatever the CPU put in ISR: every word may hold a vector */
	mark(l, VLAPIC_DIRTY_ALL);
}

void vlapic_save_old(struct vlapic *l)
{
	l->old_lvt_timer = get(l, VLAPIC_LVT_TIMER);
	l->old_tmict = get(l, VLAPIC_TMICT);
}

/*
 * After an APIC-write VM exit the CPU has already stored the guest's value in the page (30.4.3.2);
 * what the register's write does may depend on what it held before (a timer-mode change disarms the
 * timer; TSC-deadline mode ignores initial counts): put those back, then write it as the guest did.
 */
void vlapic_trapped_write(struct vlapic *l, uint32_t offset, uint64_t now)
{
	uint32_t off = offset & 0xff0, v = get(l, off);

	if (off == VLAPIC_LVT_TIMER)
		put(l, off, l->old_lvt_timer);
	else if (off == VLAPIC_TMICT)
		put(l, off, l->old_tmict);
	write_reg(l, off, v, now);
	vlapic_save_old(l);
}

void vlapic_virtual_eoi(struct vlapic *l, uint8_t vector)
{
	/* The CPU retired the vector itself (EOI virtualization, 30.1.4) and exited because its bit is
	 * set in the EOI-exit bitmap: a level-triggered interrupt, whose source learns of the EOI. */
	l->last_level_eoi = vector;
	if (l->group && l->group->eoi_level)
		l->group->eoi_level(l, vector);
}
