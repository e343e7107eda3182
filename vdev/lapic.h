/* The virtual local APIC of each vCPU: registers, priority, timer, IPIs. SDM Vol. 3A, chapter 11. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/*
 * Register offsets in the 4 KiB APIC page (SDM 3A, 11.4.1, Table 11-1). Each register is 32 bits at
 * the start of a 16-byte slot. In x2APIC mode the same register is MSR 0x800 + offset / 16 (11.12.1.2,
 * Table 11-6); the page keeps the same layout there (the layout of a VMX virtual-APIC page).
 */
#define VLAPIC_ID          0x020 /* local APIC ID: xAPIC bits 31:24, x2APIC all 32 bits (read-only) */
#define VLAPIC_VER         0x030 /* version: bits 7:0 version, 23:16 max LVT entry (read-only) */
#define VLAPIC_TPR         0x080 /* task priority: bits 7:4 class, 3:0 sub-class */
#define VLAPIC_APR         0x090 /* arbitration priority (xAPIC only; reads 0 here) */
#define VLAPIC_PPR         0x0a0 /* processor priority (read-only, 11.8.3.1) */
#define VLAPIC_EOI         0x0b0 /* end of interrupt (write-only) */
#define VLAPIC_RRD         0x0c0 /* remote read (xAPIC only; reads 0 here) */
#define VLAPIC_LDR         0x0d0 /* logical destination: xAPIC bits 31:24; x2APIC derived, read-only */
#define VLAPIC_DFR         0x0e0 /* destination format (xAPIC only): 31:28 1111b flat, 0000b cluster */
#define VLAPIC_SVR         0x0f0 /* spurious-interrupt vector: 7:0 vector, 8 software enable, 9 focus off */
#define VLAPIC_ISR         0x100 /* in-service: 256 bits in eight registers 0x100..0x170 */
#define VLAPIC_TMR         0x180 /* trigger mode (1 = level) of accepted vectors: 0x180..0x1f0 */
#define VLAPIC_IRR         0x200 /* interrupt request: 0x200..0x270 */
#define VLAPIC_ESR         0x280 /* error status (11.5.3) */
#define VLAPIC_LVT_CMCI    0x2f0 /* LVT corrected machine check: not present here (6 LVT entries) */
#define VLAPIC_ICR         0x300 /* interrupt command, bits 31:0 (writing it sends the IPI) */
#define VLAPIC_ICR2        0x310 /* interrupt command, bits 63:32: the destination */
#define VLAPIC_LVT_TIMER   0x320 /* LVT entries (11.5.1, Figure 11-8) */
#define VLAPIC_LVT_THERMAL 0x330
#define VLAPIC_LVT_PERF    0x340
#define VLAPIC_LVT_LINT0   0x350
#define VLAPIC_LVT_LINT1   0x360
#define VLAPIC_LVT_ERROR   0x370
#define VLAPIC_TMICT       0x380 /* timer initial count */
#define VLAPIC_TMCCT       0x390 /* timer current count (read-only) */
#define VLAPIC_TDCR        0x3e0 /* timer divide configuration: bits 3,1:0 (Figure 11-10) */
#define VLAPIC_SELF_IPI    0x3f0 /* self IPI (x2APIC only, write-only, 11.12.11) */

/* MSRs this model answers. */
#define VLAPIC_MSR_APIC_BASE    0x1b   /* IA32_APIC_BASE (11.4.4, Figure 11-5) */
#define VLAPIC_MSR_TSC_DEADLINE 0x6e0  /* IA32_TSC_DEADLINE (11.5.4.1) */
#define VLAPIC_MSR_X2APIC       0x800  /* first x2APIC register MSR; the range ends at 0x8ff */
#define VLAPIC_MSR(offset)      (VLAPIC_MSR_X2APIC + ((offset) >> 4))

/* IA32_APIC_BASE bits (Figure 11-5). */
#define VLAPIC_BASE_BSP      (1ull << 8)   /* this processor is the bootstrap processor (read-only) */
#define VLAPIC_BASE_EXTD     (1ull << 10)  /* x2APIC mode */
#define VLAPIC_BASE_EN       (1ull << 11)  /* APIC global enable */
#define VLAPIC_BASE_DEFAULT  0xfee00000ull /* base address after reset */

#define VLAPIC_VERSION       0x00050014u   /* integrated APIC version 0x14, max LVT entry 5 (six LVTs) */

#define VLAPIC_SVR_ENABLE    (1u << 8)     /* APIC software enable (11.4.7.2) */
#define VLAPIC_SVR_FOCUS_OFF (1u << 9)     /* focus processor checking disabled (stored, no effect) */

/* LVT entry bits (Figure 11-8). */
#define VLAPIC_LVT_VECTOR      0xffu
#define VLAPIC_LVT_DM          (7u << 8)    /* delivery mode (not in timer and error entries) */
#define VLAPIC_LVT_STATUS      (1u << 12)   /* delivery status: always 0 here */
#define VLAPIC_LVT_POLARITY    (1u << 13)   /* LINT0/1: input pin polarity */
#define VLAPIC_LVT_REMOTE_IRR  (1u << 14)   /* LINT0/1: remote IRR (read-only) */
#define VLAPIC_LVT_LEVEL       (1u << 15)   /* LINT0/1: level-triggered */
#define VLAPIC_LVT_MASKED      (1u << 16)   /* interrupt masked */
#define VLAPIC_TIMER_MODE      (3u << 17)   /* timer mode, bits 18:17 */
#define VLAPIC_TIMER_ONESHOT   (0u << 17)
#define VLAPIC_TIMER_PERIODIC  (1u << 17)
#define VLAPIC_TIMER_TSC       (2u << 17)   /* TSC-deadline (11.5.4.1) */

/* ICR bits (11.6.1, Figure 11-12; in x2APIC mode, 11.12.9, the destination is bits 63:32). */
#define VLAPIC_ICR_VECTOR    0xffu
#define VLAPIC_ICR_FIXED     (0u << 8)     /* delivery mode, bits 10:8 */
#define VLAPIC_ICR_LOWEST    (1u << 8)     /* lowest priority (xAPIC only) */
#define VLAPIC_ICR_SMI       (2u << 8)
#define VLAPIC_ICR_NMI       (4u << 8)
#define VLAPIC_ICR_INIT      (5u << 8)
#define VLAPIC_ICR_STARTUP   (6u << 8)
#define VLAPIC_ICR_DM        (7u << 8)
#define VLAPIC_ICR_LOGICAL   (1u << 11)    /* destination mode: logical */
#define VLAPIC_ICR_STATUS    (1u << 12)    /* delivery status (xAPIC): always idle here */
#define VLAPIC_ICR_ASSERT    (1u << 14)    /* level: assert (0 with LEVEL set and INIT = de-assert) */
#define VLAPIC_ICR_LEVEL     (1u << 15)    /* trigger mode: level */
#define VLAPIC_ICR_SELF      (1u << 18)    /* destination shorthand, bits 19:18: self */
#define VLAPIC_ICR_ALL       (2u << 18)    /* all including self */
#define VLAPIC_ICR_OTHERS    (3u << 18)    /* all excluding self */
#define VLAPIC_ICR_SHORTHAND (3u << 18)

/* ESR bits (11.5.3, Figure 11-9). */
#define VLAPIC_ESR_REDIRECTABLE (1u << 4)  /* lowest-priority IPI sent where unsupported (x2APIC) */
#define VLAPIC_ESR_SEND_VECTOR  (1u << 5)  /* sent an illegal vector (0..15) */
#define VLAPIC_ESR_RECV_VECTOR  (1u << 6)  /* received an illegal vector */
#define VLAPIC_ESR_REGISTER     (1u << 7)  /* accessed a reserved register */

#define VLAPIC_MAX 16 /* local APICs in one guest (vCPUs) */

struct vlapic;

/*
 * The local APICs of one guest: IPIs reach only these. Members join with vlapic_join.
 *
 * Lifetime. Any CPU running one of the guest's vCPUs reaches every member's register page without a
 * lock: the IPIs it sends, the interrupts its device accesses raise through the I/O APIC (one REP OUTS
 * to the UART raises IRQ 4 up to 128 times in one exit), the PIC's and the timers'; the monitor too,
 * holding the guest, when it types into the guest's UART. So a member's page must outlive every vCPU
 * of the group, not only its own: when a vCPU leaves its CPU for good its member calls vlapic_leave
 * and stays a member, its page in place, taking posts nobody will read; the last member to leave is
 * told so, and only then, with no vCPU of the group left to post, may the pages be freed (by the
 * caller, for every member at once). The group and its members are reset only after that.
 */
struct vlapic_group {
	struct vlapic *member[VLAPIC_MAX];
	unsigned count;
	unsigned attached;  /* members that joined and have not left (vlapic_join, vlapic_leave) */
	unsigned phys_bits; /* the guest's MAXPHYADDR (CPUID 0x80000008 EAX[7:0]) for APIC_BASE; 0 = 36 */
	/* Called after an event was posted to `target`, from any CPU, so the owner of the target vCPU
	 * notices it (it may kick another host CPU): `fixed` for a fixed interrupt (an IRR or TMR bit,
	 * which the target's dirty word shows too), else an NMI, INIT or Start-up IPI. May be NULL. */
	void (*kick)(struct vlapic *target, bool fixed);
	/* Called on the owner's CPU when an EOI retires a level-triggered vector (TMR bit set), so an
	 * I/O APIC model can clear its remote IRR. May be NULL. */
	void (*eoi_level)(struct vlapic *l, uint8_t vector);
};

struct vlapic {
	uint32_t *regs;          /* 4 KiB page, xAPIC register layout (SDM 3A Table 11-1), the same layout as
	                            a VMX virtual-APIC page (so hardware APIC virtualization can use it later) */
	struct vlapic_group *group;
	unsigned index;          /* vCPU number = initial APIC ID */
	uint64_t base;           /* IA32_APIC_BASE value */
	uint64_t timer_deadline; /* TSC value at which the timer fires next; 0 = not armed. In TSC-deadline
	                            mode this is also the IA32_TSC_DEADLINE value */
	uint64_t timer_period;   /* periodic mode: TSC ticks per period */
	uint32_t timer_divide;   /* TSC ticks per timer count (1..128, from TDCR) */
	uint32_t esr_pending;    /* errors seen since the last ESR write (other CPUs may set bits: atomic) */
	int last_level_eoi;      /* vector of the latest EOI of a level-triggered interrupt; -1 none */
	uint32_t old_lvt_timer, old_tmict; /* their values at the last VM entry (APIC-write exits) */
	/* The 32-vector words of IRR and ISR that may hold a vector (bit i: word i), a superset kept
	 * for fast scans (lapic.c, vec_highest); ISR's only while the model itself delivers. */
	uint32_t irr_words, isr_words;
	bool cpu_delivers;       /* APIC virtualization: the CPU moves vectors from IRR to ISR itself */
	uint32_t dirty;          /* VLAPIC_DIRTY_*: what software changed since vlapic_take_dirty (atomic) */
	/* Events the VMX layer consumes before VM entry; written by any CPU with atomics. */
	uint32_t nmi_pending;    /* 1 = an NMI is pending: a latch, not a count (SDM 3A 6.7.1: NMIs merge
	                            while one is pending); the injection step clears it as it injects */
	bool init_pending;
	int sipi_vector;         /* -1 none, else the vector of the latest Start-up IPI */
};

/* Makes l (initialized) member l->index of g, counted in g->attached. Before its vCPU first runs. */
void vlapic_join(struct vlapic_group *g, struct vlapic *l);
/* l's vCPU left its CPU for good (after its last post). l stays a member, its page in place, for the
 * others still posting; true for the last member to leave: no member posts any more, every member's
 * page may go. Any CPU. */
bool vlapic_leave(struct vlapic *l);

/* Power-up/reset state (SDM 11.4.7.1): base 0xFEE00000 | EN | (BSP if index == 0), ID = index,
 * version VLAPIC_VERSION, SVR 0xFF (software-disabled), DFR all ones, LVTs masked, everything else 0.
 * `regs` is a caller-provided 4 KiB page. */
void vlapic_init(struct vlapic *l, struct vlapic_group *g, unsigned index, uint32_t *regs);
/* INIT (SDM 11.4.7.3): like reset but keeps the base MSR (and x2APIC mode) and the APIC ID. The
 * event fields are the VMX layer's to clear. */
void vlapic_reset_on_init(struct vlapic *l);

bool vlapic_x2apic(const struct vlapic *l);
bool vlapic_enabled(const struct vlapic *l);       /* globally (base EN) and software (SVR bit 8) */
bool vlapic_mmio_active(const struct vlapic *l);   /* xAPIC mode: the MMIO page decodes (EN, not EXTD) */
uint64_t vlapic_mmio_base(const struct vlapic *l); /* base & ~0xfff, only meaningful in xAPIC mode */

/*
 * xAPIC MMIO access at `offset` (0..0xfff) of the page, `size` 1, 2, 4 or 8; `now` = current guest TSC.
 * Reads of 1, 2 or 4 bytes inside the 32 bits of one register return those bytes. Writes must be
 * 4 bytes at a 16-byte-aligned offset (SDM 11.4.1). Anything else (wider, crossing a register's 32
 * bits, the padding of a slot, partial writes) is undefined in the SDM: -1, and the caller stops the
 * guest with that reason. -1 as well when the page does not decode (x2APIC mode, globally disabled).
 * Reserved registers read 0, ignore writes and set ESR "illegal register address"; writes to
 * read-only registers are ignored. Returns 0 or -1.
 */
int vlapic_mmio_read(struct vlapic *l, uint32_t offset, unsigned size, uint64_t *val, uint64_t now);
int vlapic_mmio_write(struct vlapic *l, uint32_t offset, unsigned size, uint64_t val, uint64_t now);

/*
 * RDMSR/WRMSR of IA32_APIC_BASE, IA32_TSC_DEADLINE and x2APIC MSRs 0x800-0x8ff. Returns 0; -1 when the
 * CPU raises #GP (x2APIC MSRs outside x2APIC mode, nonexistent register, read of write-only EOI/self-IPI,
 * write of a read-only register, reserved bits set (11.12.1.3), non-zero EOI/ESR write, invalid
 * APIC_BASE transition (11.12.5, Figure 11-27), base bits at or above MAXPHYADDR); -2 when `msr` is not
 * ours. IA32_TSC_DEADLINE is always accessible: it reads 0 and ignores writes unless the timer is in
 * TSC-deadline mode. Global disable (EN 1 -> 0) puts the APIC in its power-up state (11.4.3).
 */
int vlapic_msr_read(struct vlapic *l, uint32_t msr, uint64_t *val, uint64_t now);
int vlapic_msr_write(struct vlapic *l, uint32_t msr, uint64_t val, uint64_t now);

/* CR8 is TPR[7:4] (SDM 11.8.6); the caller #GPs on CR8 bits 63:4. */
uint64_t vlapic_get_cr8(const struct vlapic *l);
void vlapic_set_cr8(struct vlapic *l, uint64_t cr8);

/* Post a fixed interrupt from a device or IPI (level: sets the TMR bit, else clears it). Any CPU:
 * atomic on IRR; then kicks, only if that changed IRR or TMR (a vector already pending with the same
 * trigger mode merges with it: its owner knows already). Dropped while the APIC is disabled; a vector
 * below 16 sets ESR "received illegal vector" instead. The same rule for IPIs and vlapic_deliver:
 * a kick only when something becomes pending that was not: a vector, an INIT, an NMI (a latch) or a
 * Start-up IPI (the latest vector is kept, the first one kicks). */
void vlapic_post(struct vlapic *l, uint8_t vector, bool level);
/*
 * Delivers a message from an I/O APIC (or MSI) to the APICs of `g` that `dest` addresses: physical
 * (APIC ID) or logical (flat, cluster, x2APIC cluster as each target's LDR and DFR say); 0xff (or
 * 0xffffffff) is a broadcast. `delivery_mode` is the 3-bit field of an I/O APIC redirection entry (=
 * ICR bits 10:8): 0 fixed, 1 lowest priority (the enabled match with the lowest PPR), 4 NMI, 5 INIT;
 * 2 SMI, 3, 6 and 7 ExtINT are dropped (ExtINT: the 8259A reaches vCPU 0 through LINT0, see lapic.c).
 * `level`: level-triggered (fixed and lowest priority set the TMR bit, so the EOI calls eoi_level).
 */
void vlapic_deliver(struct vlapic_group *g, uint32_t dest, bool logical, unsigned delivery_mode,
		    uint8_t vector, bool level);
/* The vector to inject now: highest IRR whose priority class beats PPR's (SDM 11.8.3.1), APIC
 * enabled; -1 if none. */
int vlapic_pending_vector(struct vlapic *l);
/* The CPU takes `vector` (at VM entry injection): IRR -> ISR, PPR updated (SDM 11.8.4). */
void vlapic_accept(struct vlapic *l, int vector);

/*
 * Timer: call with the current TSC whenever time may have passed (before VM entry, on timer exits).
 * If the deadline has passed it expires: sets the IRR bit of the LVT timer vector unless masked;
 * one-shot and TSC-deadline disarm (the latter clears IA32_TSC_DEADLINE); periodic fires once however
 * many periods were missed and re-arms at the first period boundary after `now`. Returns true if the
 * timer expired (masked or not).
 */
bool vlapic_timer_update(struct vlapic *l, uint64_t now);
static inline uint64_t vlapic_next_deadline(const struct vlapic *l) /* 0 = none */
{
	return l->timer_deadline;
}

/*
 * With the CPU's APIC virtualization (SDM Vol. 3C, chapter 30) the register page above is the vCPU's
 * virtual-APIC page: the CPU itself moves vectors from IRR to ISR (virtual-interrupt delivery), retires
 * them on EOI and keeps PPR, so the model only has to know about the writes that exit.
 */
int vlapic_highest_irr(struct vlapic *l);       /* -1 if none: for RVI */
int vlapic_highest_isr(struct vlapic *l);       /* -1 if none: for SVI */

/* TMR bits 32i..32i+31: the EOI-exit bitmap. */
static inline uint32_t vlapic_tmr_word(const struct vlapic *l, unsigned i)
{
	return __atomic_load_n(&l->regs[(VLAPIC_TMR >> 2) + 4 * i], __ATOMIC_RELAXED);
}

/*
 * What software (this model, on any CPU) changed in the register page since the last call, which
 * returns it and starts afresh: VLAPIC_DIRTY_* bits. The VMX entry path reads the word before every
 * entry: anything in it (a register written, a vector set or cleared by the model) sends that entry
 * the long way (vcpu/work.h). IA32_TSC_DEADLINE is not counted: every WRMSR exit goes the long way
 * (vmx/exit.c), which arms the preemption timer for a new deadline. The CPU's own changes under APIC virtualization
 * (delivering a vector, retiring one) are not counted: it keeps its RVI and SVI in step with them
 * itself (SDM Vol. 3C, 30.2).
 */
#define VLAPIC_DIRTY_IRR  (1u << 0)   /* a vector set or cleared in IRR */
#define VLAPIC_DIRTY_ISR  (1u << 1)   /* ... in ISR */
#define VLAPIC_DIRTY_TMR  (1u << 2)   /* ... in TMR */
#define VLAPIC_DIRTY_REGS (1u << 3)   /* a register written (vlapic_save_old), TPR by CR8 included */
#define VLAPIC_DIRTY_ALL  0xfu        /* reset, or a change of who delivers */
static inline uint32_t vlapic_take_dirty(struct vlapic *l)
{
	return __atomic_load_n(&l->dirty, __ATOMIC_RELAXED) ? __atomic_exchange_n(&l->dirty, 0, __ATOMIC_ACQ_REL) : 0;
}
/* The CPU moves vectors from IRR to ISR itself (virtual-interrupt delivery) from now on, or no more. */
void vlapic_set_cpu_delivery(struct vlapic *l, bool on);
/* Remembers the registers whose write depends on their old value (for APIC-write exits), once the
 * page changed (vlapic_take_dirty). */
void vlapic_save_old(struct vlapic *l);
/* An APIC-write VM exit at `offset`: the CPU stored the value; do what writing it does (30.4.3.3). */
void vlapic_trapped_write(struct vlapic *l, uint32_t offset, uint64_t now);
/* An EOI-induced VM exit for `vector` (the CPU retired it already). */
void vlapic_virtual_eoi(struct vlapic *l, uint8_t vector);

/* Does this APIC pass an 8259A interrupt (ExtINT) to its CPU: LINT0 unmasked in ExtINT mode, or the
 * APIC globally disabled (its LINT0 pin is then the CPU's INTR)? The vector comes from the PIC.
 * Inline: the injection step asks before every entry of vCPU 0. */
static inline bool vlapic_extint_enabled(const struct vlapic *l)
{
	uint32_t lint0 = __atomic_load_n(&l->regs[VLAPIC_LVT_LINT0 >> 2], __ATOMIC_RELAXED);

	/* A globally disabled APIC passes LINT0 straight to the CPU as INTR (11.4.3); an enabled one
	 * takes the 8259's interrupt through LINT0 programmed for ExtINT (11.5.1, "virtual wire"). */
	if (!(__atomic_load_n(&l->base, __ATOMIC_RELAXED) & VLAPIC_BASE_EN))
		return true;
	return !(lint0 & VLAPIC_LVT_MASKED) && (lint0 & VLAPIC_LVT_DM) == (7u << 8);
}
