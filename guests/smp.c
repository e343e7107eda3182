/*
 * smp: brings up the other CPUs the way a PC OS does (SDM Vol. 3A, 8.4.4.1 "Typical BSP
 * Initialization Sequence"): INIT, 10 ms, STARTUP, 200 us, STARTUP, 200 us, all timed with the TSC.
 * The APs start in real mode at the trampoline (0x7000, SIPI vector 0x07), enter protected mode and
 * report `smp: cpu APICID up`. Then, all in xAPIC mode:
 *   - fixed IPI ping-pong between every ordered pair of CPUs (the sender waits for the pong);
 *   - an NMI IPI to each AP (its NMI handler counts it);
 *   - a self IPI (shorthand self) on every CPU;
 *   - an all-excluding-self broadcast from the BSP: every AP once, the BSP never;
 *   - logical destination, flat model (DFR all ones, LDR bit = CPU index): one IPI to the group
 *     of all APs, then one to each AP alone;
 *   - a counter incremented 100000 times by every CPU under a spinlock (XCHG): exactly N*100000.
 * Arguments: `cpus=N` (4) how many CPUs there must be; `start=broadcast` (default: INIT and SIPI to
 * all excluding self) or `start=each` (to APIC IDs 0..N-1 but its own, one by one); `count=N`
 * (100000) increments per CPU; `nolock=1` leaves the lock out (the counter check should then fail);
 * `realmode=1` starts the APs at 0600:0000 (SIPI vector 0x06) in a real-mode test first: each takes
 * an INT3 and a #UD (UD2) through handlers it put in the IVT, and an INT 21h, after writing DR0 and
 * reading it and DR7 back and an INVLPG (privileged: virtual-8086 mode refuses them, tessera's
 * emulates them), then goes on to the usual trampoline (two more checks: every AP took each event
 * once, and every AP's debug registers read right); `realmode=2` does the same after an RDPMC (real
 * mode runs it at CPL 0; under tessera's virtual-8086 mode it is not emulated).
 * `nmiself=1` adds: the BSP's NMI handler sends the BSP a second NMI, which must wait for the
 * handler's IRET (NMIs are blocked until then, SDM Vol. 3A, 6.7.1; APM Vol. 2, 8.2.3): never
 * nested, and taken after it.
 * One line per check ending in "ok" or "FAIL", then `smp: all checks passed` (exit 0) or
 * `smp: F of N checks failed` (exit 1). Usage errors exit 3.
 */
#include "apic.h"
#include "intr.h"
#include "rt.h"
#include "smp.h"

#define VEC_PING    0x50
#define VEC_PONG    0x51
#define VEC_KICK    0x52 /* wakes an AP from HLT to look at its command */
#define VEC_SELF    0x53
#define VEC_BCAST   0x54
#define VEC_LOGICAL 0x55

enum { CMD_NONE, CMD_PING, CMD_SELF, CMD_COUNT };

struct cpu {
	volatile uint32_t apic_id, up;
	volatile uint32_t cmd, arg, result; /* cmd goes back to CMD_NONE when done */
	volatile uint32_t ping_from;
	volatile uint32_t pings, pongs, nmis, selfs, bcasts, logicals;
} __attribute__((aligned(64)));

static struct cpu cpus[SMP_MAX_CPUS];
static volatile uint8_t index_of[256]; /* APIC ID -> CPU index + 1 */
static volatile uint32_t cpus_up = 1;
static spinlock_t count_lock;
static volatile uint32_t counter;
static uint32_t count_per_cpu;
static bool no_lock; /* nolock=1: shows that the counter check catches a missing lock */

/*
 * realmode=1: real mode at CS = 0x0600, IP = 0 before the usual trampoline (SDM Vol. 2A, INT n and
 * IRET in real-address mode; Vol. 3A, 20.1.4: the IVT at 0). Every AP runs it, concurrently: a stack
 * of 64 bytes each from a LOCK XADD, the IVT entries written with the same values by all. The
 * counters are the BSP's to read at RM_TEST + their offset.
 */
#define RM_TEST 0x6000u
extern char rm_test_start[], rm_test_end[], rm_test_bad[], rm_cnt_bp[], rm_cnt_ud[], rm_cnt_21[], rm_cnt_dr[],
	rm_next[];
__asm__(".pushsection .text\n"
	".code16\n"
	".align 16\n"
	"rm_test_start:\n"
	"\tcli\n"
	"\txorw %ax, %ax\n"
	"\tmovw %ax, %ds\n"
	"\tmovw %ax, %ss\n"
	"\tmovw $1, %ax\n"
	"\tlock xaddw %ax, %cs:(rm_next - rm_test_start)\n"
	"\tshlw $6, %ax\n"
	"\taddw $0x6440, %ax\n"      /* SP: 0x6440 + 64 * n, below 0x6800 for 16 CPUs */
	"\tmovw %ax, %sp\n"
	"\tmovw $(rm_h_bp - rm_test_start), (3 * 4)\n"
	"\tmovw $0x0600, (3 * 4 + 2)\n"
	"\tmovw $(rm_h_ud - rm_test_start), (6 * 4)\n"
	"\tmovw $0x0600, (6 * 4 + 2)\n"
	"\tmovw $(rm_h_21 - rm_test_start), (0x21 * 4)\n"
	"\tmovw $0x0600, (0x21 * 4 + 2)\n"
	"\tcmpb $0, %cs:(rm_test_bad - rm_test_start)\n"
	"\tje 1f\n"
	"\trdpmc\n"
	"1:\tmovl $0x12345678, %eax\n"  /* DR0 written and read back, DR7 at its reset value, INVLPG */
	"\tmovl %eax, %dr0\n"
	"\tmovl %dr0, %ecx\n"
	"\tcmpl %eax, %ecx\n"
	"\tjne 2f\n"
	"\tmovl %dr7, %ecx\n"
	"\tcmpl $0x400, %ecx\n"
	"\tjne 2f\n"
	"\tinvlpg (%bx)\n"
	"\tlock incw %cs:(rm_cnt_dr - rm_test_start)\n"
	"2:\tint3\n"
	"\tud2\n"
	"\tint $0x21\n"
	"\tljmp $0x0700, $0\n"        /* the usual trampoline (SMP_TRAMPOLINE) */
	"rm_h_bp:\n"
	"\tlock incw %cs:(rm_cnt_bp - rm_test_start)\n"
	"\tiret\n"
	"rm_h_ud:\n"                   /* a fault: the pushed IP is the UD2's, 2 bytes */
	"\tpushw %bp\n"
	"\tmovw %sp, %bp\n"
	"\taddw $2, 2(%bp)\n"
	"\tpopw %bp\n"
	"\tlock incw %cs:(rm_cnt_ud - rm_test_start)\n"
	"\tiret\n"
	"rm_h_21:\n"
	"\tlock incw %cs:(rm_cnt_21 - rm_test_start)\n"
	"\tiret\n"
	".align 2\n"
	"rm_next: .word 0\n"
	"rm_cnt_bp: .word 0\n"
	"rm_cnt_ud: .word 0\n"
	"rm_cnt_21: .word 0\n"
	"rm_cnt_dr: .word 0\n"
	"rm_test_bad: .byte 0\n"
	"rm_test_end:\n"
	".code32\n"
	".popsection\n");

static volatile uint16_t *rm_word(const char *label)
{
	return (volatile uint16_t *)(uintptr_t)(RM_TEST + (uint32_t)(label - rm_test_start));
}

static struct cpu *me(void)
{
	return &cpus[index_of[apic_id() & 0xff] - 1];
}

static void on_ping(struct irq_frame *f)
{
	struct cpu *c = me();
	(void)f;
	c->pings++;
	apic_send_ipi(cpus[c->ping_from].apic_id, VEC_PONG);
	apic_eoi();
}

#define COUNTING_HANDLER(name, field)                 \
	static void name(struct irq_frame *f)         \
	{                                             \
		(void)f;                              \
		__atomic_fetch_add(&me()->field, 1, __ATOMIC_RELAXED); \
		apic_eoi();                           \
	}
COUNTING_HANDLER(on_pong, pongs)
COUNTING_HANDLER(on_self, selfs)
COUNTING_HANDLER(on_bcast, bcasts)
COUNTING_HANDLER(on_logical, logicals)

static void on_kick(struct irq_frame *f)
{
	(void)f;
	apic_eoi();
}

static volatile uint32_t nmi_depth, nmi_nested, nmi_chain;   /* nmiself=1: the BSP's NMIs */

/* NMIs take no EOI (SDM 3A, 10.8.5) and must not print (the console lock). */
static void on_nmi(struct irq_frame *f)
{
	(void)f;
	if (__atomic_add_fetch(&nmi_depth, 1, __ATOMIC_RELAXED) > 1)
		nmi_nested++;
	__atomic_fetch_add(&me()->nmis, 1, __ATOMIC_RELAXED);
	if (nmi_chain == 1) {            /* the first of the BSP's: post the second from inside */
		nmi_chain = 2;
		apic_send_ipi(apic_id(), ICR_NMI);
	}
	__atomic_sub_fetch(&nmi_depth, 1, __ATOMIC_RELAXED);
}

static bool wait_change(volatile uint32_t *p, uint32_t old, uint64_t us)
{
	uint64_t end = rdtsc() + us_to_tsc(us);
	while (*p == old && rdtsc() < end)
		cpu_relax();
	return *p != old;
}

/* Runs one command on the calling CPU; returns 1 for success. */
static uint32_t run_cmd(unsigned self, uint32_t cmd, uint32_t arg)
{
	struct cpu *c = &cpus[self];
	uint32_t before;

	switch (cmd) {
	case CMD_PING:
		before = c->pongs;
		cpus[arg].ping_from = self;
		apic_send_ipi(cpus[arg].apic_id, VEC_PING);
		return wait_change(&c->pongs, before, 200000);
	case CMD_SELF:
		before = c->selfs;
		apic_send_ipi(0, ICR_SELF | VEC_SELF);
		return wait_change(&c->selfs, before, 100000);
	case CMD_COUNT:
		for (uint32_t i = 0; i < count_per_cpu; i++) {
			if (!no_lock)
				spin_lock(&count_lock);
			counter = counter + 1; /* a plain read and write: only the lock keeps it exact */
			if (!no_lock)
				spin_unlock(&count_lock);
		}
		return 1;
	}
	return 0;
}

static void ap_main(unsigned index, uint32_t id)
{
	struct cpu *c;

	if (index >= SMP_MAX_CPUS || id > 0xff)
		return;
	c = &cpus[index];
	c->apic_id = id;
	index_of[id] = (uint8_t)(index + 1);
	apic_setup();
	if (index < 8) {
		apic_write(APIC_DFR, 0xffffffffu); /* flat model */
		apic_write(APIC_LDR, (1u << index) << 24);
	}
	printf("smp: cpu %u up\n", id);
	c->up = 1;
	__atomic_fetch_add(&cpus_up, 1, __ATOMIC_ACQ_REL);
	for (;;) {
		/* Look at the command with IF = 0, then STI; HLT: a kick after the look still wakes us. */
		cli();
		while (c->cmd == CMD_NONE) {
			sti_hlt();
			cli();
		}
		sti();
		c->result = run_cmd(index, c->cmd, c->arg);
		__atomic_store_n(&c->cmd, CMD_NONE, __ATOMIC_RELEASE);
	}
}

/* Gives CPU `i` a command (the BSP runs its own) and waits up to `us` for the result. */
static uint32_t run_on(unsigned i, uint32_t cmd, uint32_t arg, uint64_t us)
{
	struct cpu *c = &cpus[i];

	if (i == 0)
		return run_cmd(0, cmd, arg);
	c->arg = arg, c->result = 0;
	__atomic_store_n(&c->cmd, cmd, __ATOMIC_RELEASE);
	apic_send_ipi(c->apic_id, VEC_KICK);
	if (!wait_change(&c->cmd, cmd, us)) {
		printf("smp: cpu %u did not finish command %u in %u ms\n", c->apic_id, cmd, (uint32_t)udiv64(us, 1000, NULL));
		return 0;
	}
	return c->result;
}

static void start_aps(bool broadcast, unsigned want, uint32_t bsp_id, uint32_t vector)
{
	uint32_t sipi = ICR_STARTUP | vector;

	/* INIT (level assert, edge), 10 ms, then STARTUP twice with 200 us after each. */
	uint64_t t0 = rdtsc();
	for (uint32_t id = 0; id < (broadcast ? 1 : want); id++)
		if (broadcast || id != bsp_id)
			apic_send_ipi(id, broadcast ? ICR_INIT | ICR_ASSERT | ICR_ALL_BUT_SELF : ICR_INIT | ICR_ASSERT);
	udelay(10000);
	for (int n = 0; n < 2; n++) {
		for (uint32_t id = 0; id < (broadcast ? 1 : want); id++)
			if (broadcast || id != bsp_id)
				apic_send_ipi(id, broadcast ? sipi | ICR_ALL_BUT_SELF : sipi);
		udelay(200);
	}
	uint64_t sent = rdtsc();
	/* Up to a second for all; then 100 ms more, in which more than expected would show. */
	uint64_t end = sent + us_to_tsc(1000000);
	while (cpus_up < want && rdtsc() < end)
		cpu_relax();
	udelay(100000);
	printf("smp: INIT-SIPI-SIPI (%s) took %u us, %u cpus up %u ms after\n", broadcast ? "broadcast" : "each",
	       (uint32_t)tsc_to_us(sent - t0), cpus_up, (uint32_t)udiv64(tsc_to_us(rdtsc() - sent), 1000, NULL));
}

int main(void)
{
	unsigned want = (unsigned)getarg_num("cpus", 4);
	const char *start = getarg("start");
	bool broadcast = !start || !strcmp(start, "broadcast");
	unsigned realmode = (unsigned)getarg_num("realmode", 0);

	count_per_cpu = (uint32_t)getarg_num("count", 100000);
	no_lock = getarg_num("nolock", 0) != 0;
	bool nmi_self = getarg_num("nmiself", 0) != 0;
	if (want < 1 || want > SMP_MAX_CPUS || (start && !broadcast && strcmp(start, "each"))) {
		printf("smp: usage: cpus=N (1..%u) start=broadcast|each count=N\n", SMP_MAX_CPUS);
		return 3;
	}
	intr_init();
	irq_set_handler(VEC_NMI, on_nmi);
	irq_set_handler(VEC_PING, on_ping);
	irq_set_handler(VEC_PONG, on_pong);
	irq_set_handler(VEC_KICK, on_kick);
	irq_set_handler(VEC_SELF, on_self);
	irq_set_handler(VEC_BCAST, on_bcast);
	irq_set_handler(VEC_LOGICAL, on_logical);
	if (!apic_probe() || apic_x2) {
		printf("smp: the local APIC is %s\n", apic_x2 ? "in x2APIC mode" : "disabled");
		return 1;
	}
	if (!time_init())
		return 4;
	apic_setup();
	apic_write(APIC_DFR, 0xffffffffu);
	apic_write(APIC_LDR, 1u << 24);
	uint32_t bsp_id = apic_id();
	cpus[0].apic_id = bsp_id, cpus[0].up = 1;
	index_of[bsp_id & 0xff] = 1;
	printf("smp: bsp apic id %u, tsc %u kHz (%s), want %u cpus\n", bsp_id, tsc_khz, tsc_source, want);
	sti();

	smp_prepare(ap_main);
	if (realmode) {
		volatile uint8_t *dst = (volatile uint8_t *)(uintptr_t)RM_TEST;

		for (const char *p = rm_test_start; p < rm_test_end; p++)
			*dst++ = (uint8_t)*p;
		*(volatile uint8_t *)rm_word(rm_test_bad) = realmode == 2;
	}
	start_aps(broadcast, want, bsp_id, realmode ? RM_TEST >> 12 : SMP_SIPI_VECTOR);
	if (realmode)
		check(*rm_word(rm_cnt_bp) == want - 1 && *rm_word(rm_cnt_ud) == want - 1 && *rm_word(rm_cnt_21) == want - 1,
		      "smp: real mode: int3 %u, ud2 %u, int 21h %u in %u aps (want %u each)", *rm_word(rm_cnt_bp),
		      *rm_word(rm_cnt_ud), *rm_word(rm_cnt_21), want - 1, want - 1);
	if (realmode)
		check(*rm_word(rm_cnt_dr) == want - 1, "smp: real mode: MOV DR0 and DR7, INVLPG right in %u aps (want %u)",
		      *rm_word(rm_cnt_dr), want - 1);
	unsigned n = cpus_up;
	if (n > SMP_MAX_CPUS)
		n = SMP_MAX_CPUS;
	check(cpus_up == want && smp_ap_arrived == want - 1, "smp: cpus up %u (want %u), aps arrived %u", cpus_up, want,
	      smp_ap_arrived);
	for (unsigned i = 1; i < n; i++)
		if (!cpus[i].up) {
			printf("smp: cpu index %u arrived but did not report; stopping\n", i);
			return 1;
		}

	/* Ping-pong between every ordered pair. */
	unsigned pairs = 0, good = 0;
	for (unsigned a = 0; a < n; a++)
		for (unsigned b = 0; b < n; b++) {
			if (a == b)
				continue;
			pairs++;
			if (run_on(a, CMD_PING, b, 1000000))
				good++;
			else
				printf("smp: ipi cpu %u -> cpu %u -> back: no pong\n", cpus[a].apic_id, cpus[b].apic_id);
		}
	uint32_t pings = 0, pongs = 0;
	for (unsigned i = 0; i < n; i++)
		pings += cpus[i].pings, pongs += cpus[i].pongs;
	check(good == pairs && pings == pairs && pongs == pairs,
	      "smp: ipi ping-pong %u of %u ordered pairs, pings %u pongs %u (want %u each)", good, pairs, pings, pongs,
	      pairs);

	/* NMI to each AP. */
	uint32_t nmis = 0;
	for (unsigned i = 1; i < n; i++) {
		uint32_t before = cpus[i].nmis;
		apic_send_ipi(cpus[i].apic_id, ICR_NMI);
		if (wait_change(&cpus[i].nmis, before, 200000))
			nmis++;
		else
			printf("smp: nmi to cpu %u not taken\n", cpus[i].apic_id);
	}
	udelay(1000);
	uint32_t total = 0;
	for (unsigned i = 0; i < n; i++)
		total += cpus[i].nmis;
	check(nmis == n - 1 && total == n - 1 && cpus[0].nmis == 0, "smp: nmi ipi to %u aps, taken %u, bsp %u (want %u, 0)",
	      n - 1, total, cpus[0].nmis, n - 1);

	if (nmi_self) {
		uint32_t before = cpus[0].nmis;

		nmi_chain = 1;
		apic_send_ipi(apic_id(), ICR_NMI);
		bool both = wait_change(&cpus[0].nmis, before, 200000) &&
			    (cpus[0].nmis - before == 2 || wait_change(&cpus[0].nmis, before + 1, 200000));
		check(both && cpus[0].nmis - before == 2 && nmi_nested == 0,
		      "smp: nmi posted inside the nmi handler: taken %u of 2, nested %u (want 0)",
		      cpus[0].nmis - before, nmi_nested);
		cpus[0].nmis = before;   /* the BSP's count for the checks below */
	}

	/* Self IPI on every CPU. */
	uint32_t selfs = 0;
	for (unsigned i = 0; i < n; i++)
		selfs += run_on(i, CMD_SELF, 0, 1000000);
	check(selfs == n, "smp: self ipi on %u cpus, %u arrived (want %u)", n, selfs, n);

	/* All excluding self, from the BSP. */
	apic_send_ipi(0, ICR_ALL_BUT_SELF | VEC_BCAST);
	uint32_t bc = 0;
	uint64_t end = rdtsc() + us_to_tsc(200000);
	do {
		bc = 0;
		for (unsigned i = 1; i < n; i++)
			bc += cpus[i].bcasts;
	} while (bc < n - 1 && rdtsc() < end);
	udelay(10000);
	bc = 0;
	for (unsigned i = 1; i < n; i++)
		bc += cpus[i].bcasts == 1;
	check(bc == n - 1 && cpus[0].bcasts == 0, "smp: all-but-self ipi reached %u of %u aps once, bsp %u times (want 0)",
	      bc, n - 1, cpus[0].bcasts);

	/* Logical destination, flat model: the group of all APs, then each AP alone (first 8 CPUs). Each
	 * IPI is waited for (up to a second: under QEMU the guest's time is the host's, and a busy host
	 * may run an AP late) before the next to the same AP, which would otherwise merge with it in
	 * IRR; then 10 ms more, in which a duplicate would show. */
	unsigned ln = n < 8 ? n : 8;
	uint32_t group = ((1u << ln) - 1) & ~1u;
	if (ln > 1) {
		apic_send_ipi(group, ICR_LOGICAL | VEC_LOGICAL);
		for (unsigned i = 1; i < ln; i++)
			wait_change(&cpus[i].logicals, 0, 1000000);
		for (unsigned i = 1; i < ln; i++) {
			uint32_t before = cpus[i].logicals;

			apic_send_ipi(1u << i, ICR_LOGICAL | VEC_LOGICAL);
			wait_change(&cpus[i].logicals, before, 1000000);
		}
		udelay(10000);
	}
	uint32_t lgood = 0;
	for (unsigned i = 1; i < ln; i++)
		lgood += cpus[i].logicals == 2;
	check(lgood == ln - 1 && cpus[0].logicals == 0,
	      "smp: logical flat ipi to group 0x%x then each: %u of %u aps got 2, bsp got %u (want 0)", group, lgood,
	      ln - 1, cpus[0].logicals);

	/* The shared counter: every CPU at once. */
	uint64_t t0 = rdtsc();
	for (unsigned i = 1; i < n; i++) {
		cpus[i].arg = 0;
		__atomic_store_n(&cpus[i].cmd, CMD_COUNT, __ATOMIC_RELEASE);
		apic_send_ipi(cpus[i].apic_id, VEC_KICK);
	}
	run_cmd(0, CMD_COUNT, 0);
	end = rdtsc() + us_to_tsc(60000000);
	for (unsigned i = 1; i < n; i++)
		while (cpus[i].cmd != CMD_NONE && rdtsc() < end)
			cpu_relax();
	uint32_t want_count = n * count_per_cpu;
	if (counter == want_count)
		check(true, "smp: counter %u = %u*%u exact in %u ms", counter, n, count_per_cpu,
		      (uint32_t)udiv64(tsc_to_us(rdtsc() - t0), 1000, NULL));
	else
		check(false, "smp: counter %u != %u*%u, %d lost", counter, n, count_per_cpu, (int)(want_count - counter));

	if (check_failed) {
		printf("smp: %d of %d checks failed\n", check_failed, check_count);
		return 1;
	}
	printf("smp: all checks passed\n");
	return 0;
}
