/*
 * ibench: interrupt path lengths, in TSC ticks (in Bochs with `clock: sync=none`, emulated
 * instructions). One measurement per boot, chosen by `test=`; `n=N` samples (200, at most 4096),
 * `apic=xapic|x2apic|both` (both) the APIC mode(s) to measure in.
 *
 *   test=timer  TSC-deadline timer (SDM Vol. 3A, 10.5.4.1), per APIC mode: the guest writes
 *               IA32_TSC_DEADLINE = D (`delta=T` ticks ahead, 30000), then spins with IF = 1 (the
 *               vCPU runs: the hypervisor's preemption timer brings the deadline) or sits in
 *               `sti; hlt` (the vCPU is blocked: the host's own timer wakes it). The handler's gate
 *               leads straight to an RDTSC (no stub before it), so
 *                 timer-spin-M / timer-halt-M  = t_handler - D: deadline to the handler's first
 *                                                instruction
 *                 eoi-M                        = fenced RDTSCs around the EOI (x2APIC WRMSR 0x80B,
 *                                                xAPIC MOV to 0xFEE000B0) in that handler, the
 *                                                vector still in service
 *                 arm-M                        = fenced RDTSCs around the WRMSR of IA32_TSC_DEADLINE
 *               and rdtsc-overhead (two fenced RDTSCs around nothing), to subtract from eoi/arm.
 *   test=ipi    two vCPUs (`vcpus=2` on the module line): vCPU 1 is started with INIT-SIPI-SIPI;
 *               vCPU 0 sends it a fixed IPI, whose handler sends one back at once. Per APIC mode,
 *               for each way of waiting (peer = vCPU 1 in `sti; hlt` or spinning with IF = 1;
 *               wait = vCPU 0 spinning or in `sti; hlt` for the answer):
 *                 ipi-M-peer-P-wait-W          = from just before the ICR write to the answer's
 *                                                handler on vCPU 0 (its first C statement)
 *               and tsc-per-1000-insns-peer-P: RDTSC around a 1000-instruction loop on vCPU 0
 *               while vCPU 1 halts or spins (with two emulated CPUs Bochs may count the TSC for
 *               both: this line says how to read the figures). At the end vCPU 1 is left spinning;
 *               `endpeer=halt` leaves it in HLT (before 6af6c72 the guest then never finished on
 *               two host CPUs: ending a guest did not wake its vCPUs blocked in HLT elsewhere).
 *   test=idle   `hz=N` (100) APIC timer interrupts, `ticks=N` (100), `timer=periodic|deadline`
 *               (periodic; deadline re-arms IA32_TSC_DEADLINE in the handler), in `apic=` mode
 *               (xapic; one mode only): the guest does nothing but `sti; hlt` between them. Prints
 *                 idle-M-TIMER ticks=N hz=H halts=K us=U
 *               The exits per tick are the hypervisor's business: its `exits:` line (tests/bench.py
 *               takes the difference of two runs with different tick counts).
 *
 * Figure lines: `ibench: WHAT min=T median=T n=N` (timer, ipi) then `ibench: done` and exit 0;
 * a sample that never completes prints `ibench: WHAT timed out ...` and exits 1. Usage errors exit
 * 3, no time source 4.
 */
#include "apic.h"
#include "intr.h"
#include "rt.h"
#include "smp.h"

#define MAX_SAMPLES 4096
#define VEC_TIMER 0x40
#define VEC_PING  0x50
#define VEC_PONG  0x51
#define VEC_KICK  0x52

static uint64_t samples[MAX_SAMPLES], samples2[MAX_SAMPLES], samples3[MAX_SAMPLES];
static uint32_t nsamples;

static void sort(uint64_t *s, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++) { /* insertion sort: n is small */
		uint64_t v = s[i];
		uint32_t j = i;
		for (; j > 0 && s[j - 1] > v; j--)
			s[j] = s[j - 1];
		s[j] = v;
	}
}

static void report(const char *what, const char *m, uint64_t *s, uint32_t n)
{
	sort(s, n);
	printf("ibench: %s%s%s min=%llu median=%llu n=%u\n", what, m ? "-" : "", m ? m : "", (unsigned long long)s[0],
	       (unsigned long long)s[n / 2], n);
}

static void rdtsc_overhead(uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		uint64_t t0 = tsc_begin(), t1 = tsc_end();
		samples[i] = t1 - t0;
	}
	sort(samples, n);
	printf("ibench: rdtsc-overhead min=%llu median=%llu\n", (unsigned long long)samples[0],
	       (unsigned long long)samples[n / 2]);
}

/* The EOI alone, the vector still in service: one instruction between the fenced reads. */
static inline uint64_t timed_eoi(void)
{
	uint64_t t0, t1;
	if (apic_x2) {
		t0 = tsc_begin();
		__asm__ volatile("wrmsr" : : "c"(MSR_X2APIC_BASE + (APIC_EOI >> 4)), "a"(0), "d"(0) : "memory");
		t1 = tsc_end();
	} else {
		volatile uint32_t *eoi = &apic_mmio[APIC_EOI / 4];
		t0 = tsc_begin();
		__asm__ volatile("movl %1, %0" : "=m"(*eoi) : "r"(0) : "memory");
		t1 = tsc_end();
	}
	return t1 - t0;
}

/* --- test=timer ------------------------------------------------------------------------------- */

/* The timer gate: RDTSC is the first instruction. EAX/EDX are not saved: interrupts are enabled only
 * inside the wait loops below, which declare both clobbered. */
volatile uint32_t ib_t_lo, ib_t_hi, ib_fired;
volatile uint64_t ib_eoi;
void ib_timer_c(void);
extern char ib_timer_stub[];
__asm__(".pushsection .text\n"
	".align 16\n"
	".global ib_timer_stub\n"
	"ib_timer_stub:\n"
	"\trdtsc\n"
	"\tmovl %eax, ib_t_lo\n"
	"\tmovl %edx, ib_t_hi\n"
	"\tpushal\n"
	"\tcld\n"
	"\tcall ib_timer_c\n"
	"\tpopal\n"
	"\tiretl\n"
	".popsection\n");

void ib_timer_c(void)
{
	ib_eoi = timed_eoi();
	ib_fired = 1;
}

/* Points IDT entry `vec` at `fn` (a 32-bit interrupt gate, as intr.c builds them). */
static void idt_set_gate(unsigned vec, void *fn)
{
	struct {
		uint16_t limit;
		uint32_t base;
	} __attribute__((packed)) idtr;
	uint32_t a = (uint32_t)(uintptr_t)fn;

	__asm__ volatile("sidt %0" : "=m"(idtr));
	volatile uint64_t *idt = (volatile uint64_t *)(uintptr_t)idtr.base;
	idt[vec] = (a & 0xffff) | ((uint64_t)SEL_CODE32 << 16) | (0x8eull << 40) | ((uint64_t)(a >> 16) << 48);
}

/* trace=1: the last sample of each timer series in xAPIC mode runs between two Bochs magic breakpoints
 * (XCHG BX, BX), for tests/trace.py: from before the deadline's WRMSR to after the handler. */
static bool trace_timer;

static inline void magic_break(bool on)
{
	if (on)
		__asm__ volatile("xchg %%bx, %%bx" : : : "memory");
}

static bool timer_samples(const char *m, bool halt, uint32_t n, uint64_t delta)
{
	const char *what = halt ? "timer-halt" : "timer-spin";
	bool traced = trace_timer && !apic_x2;

	apic_write(APIC_LVT_TIMER, LVT_TIMER_DEADLINE | VEC_TIMER);
	__asm__ volatile("mfence" : : : "memory"); /* LVT write before the deadline WRMSR (SDM 3A 10.5.4.1) */
	for (uint32_t i = 0; i <= n; i++) {       /* sample 0 warms up, unrecorded */
		ib_fired = 0;
		uint64_t d = rdtsc() + delta;
		magic_break(traced && i == n);
		uint64_t t0 = tsc_begin();
		wrmsr(MSR_TSC_DEADLINE, d);
		uint64_t t1 = tsc_end();
		uint64_t limit = d + 1000000000ull; /* 10 s at 100 MHz: far beyond any sane latency */
		if (halt) {
			__asm__ volatile("1:\tsti\n\thlt\n\tcli\n\tcmpl $0, %0\n\tje 1b"
					 : : "m"(ib_fired) : "eax", "edx", "memory");
		} else {
			/* Spin with IF = 1 on the flag, bounded by the TSC. */
			uint32_t lo = (uint32_t)limit, hi = (uint32_t)(limit >> 32);
			__asm__ volatile("sti\n"
					 "1:\tcmpl $0, %0\n\tjne 2f\n"
					 "\trdtsc\n\tcmpl %2, %%edx\n\tjb 1b\n\tja 2f\n\tcmpl %1, %%eax\n\tjb 1b\n"
					 "2:\tcli"
					 : : "m"(ib_fired), "r"(lo), "r"(hi) : "eax", "edx", "memory");
		}
		magic_break(traced && i == n);
		if (!ib_fired) {
			printf("ibench: %s-%s timed out: sample %u, deadline 0x%llx, tsc now 0x%llx, deadline msr 0x%llx\n",
			       what, m, i, (unsigned long long)d, (unsigned long long)rdtsc(),
			       (unsigned long long)rdmsr(MSR_TSC_DEADLINE));
			return false;
		}
		uint64_t th = ((uint64_t)ib_t_hi << 32) | ib_t_lo;
		if (i) {
			samples[i - 1] = th - d;
			samples2[i - 1] = ib_eoi;
			samples3[i - 1] = t1 - t0;
		}
	}
	report(what, m, samples, n);
	report(halt ? "eoi-halt" : "eoi", m, samples2, n);
	report(halt ? "arm-halt" : "arm", m, samples3, n);
	return true;
}

static int test_timer(uint32_t n, bool xapic, bool x2apic, uint64_t delta)
{
	if (!cpu_has_tsc_deadline()) {
		printf("ibench: no TSC-deadline mode (CPUID.1:ECX[24]=0)\n");
		return 1;
	}
	idt_set_gate(VEC_TIMER, ib_timer_stub);
	trace_timer = getarg_num("trace", 0);
	rdtsc_overhead(n);
	for (int pass = 0; pass < 2; pass++) {
		const char *m = pass ? "x2apic" : "xapic";
		if (pass == 0 && (!xapic || apic_x2))
			continue;
		if (pass == 1) {
			if (!x2apic)
				continue;
			if (!apic_x2 && !apic_enable_x2apic()) {
				printf("ibench: no x2APIC (CPUID.1:ECX[21]=0)\n");
				return 1;
			}
			apic_setup();
		}
		if (!timer_samples(m, false, n, delta) || !timer_samples(m, true, n, delta))
			return 1;
		wrmsr(MSR_TSC_DEADLINE, 0);
		apic_write(APIC_LVT_TIMER, LVT_MASKED);
	}
	if (trace_timer)
		printf("ibench: traced\n");
	return 0;
}

/* --- test=ipi --------------------------------------------------------------------------------- */

enum { PEER_HALT, PEER_SPIN };
static volatile uint32_t peer_mode = PEER_HALT, peer_up, peer_x2_want, peer_x2_done, peer_id;
static volatile uint32_t pings, pongs;
static volatile uint64_t t_pong;
static uint32_t bsp_id;
static bool end_peer_halt;

static void on_ping(struct irq_frame *f)
{
	(void)f;
	pings++;
	apic_send_ipi(bsp_id, VEC_PONG);
	apic_eoi();
}

static void on_pong(struct irq_frame *f)
{
	(void)f;
	t_pong = rdtsc();
	pongs++;
	apic_eoi();
}

static void on_kick(struct irq_frame *f)
{
	(void)f;
	apic_eoi();
}

static void ap_main(unsigned index, uint32_t id)
{
	if (index != 1)
		return;
	peer_id = id;
	apic_setup();
	peer_up = 1;
	sti();
	for (;;) {
		if (peer_x2_want && !peer_x2_done) {
			if (apic_enable_x2apic())
				apic_setup();
			peer_x2_done = 1;
		}
		if (peer_mode == PEER_HALT) {
			/* Look with IF = 0, then STI; HLT: an IPI after the look still wakes it. */
			cli();
			if (peer_mode == PEER_HALT && !(peer_x2_want && !peer_x2_done))
				sti_hlt();
			sti();
		} else {
			cpu_relax();
		}
	}
}

static bool wait_flag(volatile uint32_t *p, uint64_t us)
{
	uint64_t end = rdtsc() + us_to_tsc(us);
	while (!*p && rdtsc() < end)
		cpu_relax();
	return *p != 0;
}

static void pause_ticks(uint64_t t)
{
	uint64_t end = rdtsc() + t;
	while (rdtsc() < end)
		cpu_relax();
}

/* A loop of exactly 1000 instructions (500 x DEC; JNZ) between two fenced RDTSCs. */
static uint64_t loop_1000(void)
{
	uint32_t c = 500;
	uint64_t t0 = tsc_begin();
	__asm__ volatile("1:\tdecl %0\n\tjnz 1b" : "+r"(c));
	uint64_t t1 = tsc_end();
	return t1 - t0;
}

/* trace=1: the last sample with both vCPUs in HLT runs between two magic breakpoints (tests/trace.py);
 * trace=2: the last with both spinning; trace=3: vCPU 1 spinning, vCPU 0 in HLT. */
static uint32_t trace_ipi;

static bool ipi_samples(const char *m, uint32_t peer, bool wait_halt, uint32_t n, uint64_t gap)
{
	bool traced = (trace_ipi == 1 && peer == PEER_HALT && wait_halt) ||
		      (trace_ipi == 2 && peer == PEER_SPIN && !wait_halt) ||
		      (trace_ipi == 3 && peer == PEER_SPIN && wait_halt);
	char what[48];
	uint64_t dead = us_to_tsc(2000000); /* 2 s per round trip at most */

	peer_mode = peer;
	apic_send_ipi(peer_id, VEC_KICK); /* the peer looks at peer_mode again */
	pause_ticks(gap);
	for (uint32_t i = 0; i <= n; i++) { /* sample 0 warms up, unrecorded */
		uint32_t before = pongs;
		cli();
		magic_break(traced && i == n);
		uint64_t t0 = tsc_begin();
		apic_send_ipi(peer_id, VEC_PING);
		if (wait_halt) {
			uint64_t end = rdtsc() + dead;
			while (pongs == before && rdtsc() < end) {
				sti_hlt();
				cli();
			}
			sti();
		} else {
			sti();
			uint64_t end = rdtsc() + dead;
			while (pongs == before && rdtsc() < end)
				cpu_relax();
		}
		magic_break(traced && i == n);
		if (pongs == before) {
			printf("ibench: ipi-%s-peer-%s-wait-%s timed out: sample %u, pings %u pongs %u\n", m,
			       peer == PEER_HALT ? "halt" : "spin", wait_halt ? "halt" : "spin", i, pings, pongs);
			return false;
		}
		if (i)
			samples[i - 1] = t_pong - t0;
		pause_ticks(gap); /* the peer is back in HLT (or its loop) before the next ping */
	}
	{
		/* "ipi-M-peer-P-wait-W" */
		const char *parts[] = { "ipi-", m, "-peer-", peer == PEER_HALT ? "halt" : "spin", "-wait-",
					wait_halt ? "halt" : "spin" };
		char *p = what;
		for (unsigned k = 0; k < sizeof(parts) / sizeof(parts[0]); k++)
			for (const char *s = parts[k]; *s; s++)
				*p++ = *s;
		*p = 0;
	}
	report(what, NULL, samples, n);
	return true;
}

static void tsc_rate(uint32_t peer, uint32_t n, uint64_t gap)
{
	peer_mode = peer;
	apic_send_ipi(peer_id, VEC_KICK);
	pause_ticks(gap);
	for (uint32_t i = 0; i < n; i++)
		samples[i] = loop_1000();
	report(peer == PEER_HALT ? "tsc-per-1000-insns-peer-halt" : "tsc-per-1000-insns-peer-spin", NULL, samples, n);
}

static int test_ipi(uint32_t n, bool xapic, bool x2apic, uint64_t gap)
{
	if (apic_x2) {
		printf("ibench: ipi: the APIC is in x2APIC mode already (INIT-SIPI-SIPI is sent in xAPIC mode)\n");
		return 1;
	}
	trace_ipi = (uint32_t)getarg_num("trace", 0);
	irq_set_handler(VEC_PING, on_ping);
	irq_set_handler(VEC_PONG, on_pong);
	irq_set_handler(VEC_KICK, on_kick);
	bsp_id = apic_id();
	smp_prepare(ap_main);
	/* INIT-SIPI-SIPI to APIC ID bsp + 1 ... but the peer's ID is not known yet: send to all but self
	 * (the guest has 2 vCPUs). SDM 3A 8.4.4.1: INIT, 10 ms, SIPI, 200 us, SIPI, 200 us. */
	/* IF = 1 while vCPU 1 starts: with both vCPUs on one host CPU, vCPU 1 runs only when this one
	 * loses the CPU, and Bochs 2.7's SVM gives no INTR intercept (the hypervisor's time slice) to a
	 * guest with IF = 0 (docs/hardware.md). No interrupt comes before the handshake below. */
	sti();
	apic_send_ipi(0, ICR_INIT | ICR_ASSERT | ICR_ALL_BUT_SELF);
	udelay(10000);
	for (int k = 0; k < 2; k++) {
		apic_send_ipi(0, ICR_STARTUP | SMP_SIPI_VECTOR | ICR_ALL_BUT_SELF);
		udelay(200);
	}
	if (!wait_flag(&peer_up, 1000000)) {
		printf("ibench: ipi: vCPU 1 did not come up (arrived %u); the guest needs vcpus=2\n", smp_ap_arrived);
		return 1;
	}
	printf("ibench: ipi: bsp apic id %u, peer apic id %u\n", bsp_id, peer_id);
	sti();
	for (int pass = 0; pass < 2; pass++) {
		const char *m = pass ? "x2apic" : "xapic";
		if (pass == 0 && !xapic)
			continue;
		if (pass == 1) {
			if (!x2apic)
				continue;
			peer_x2_want = 1;
			apic_send_ipi(peer_id, VEC_KICK);
			if (!wait_flag(&peer_x2_done, 1000000) || !apic_enable_x2apic()) {
				printf("ibench: ipi: no x2APIC\n");
				return 1;
			}
			apic_setup();
			sti();
		}
		tsc_rate(PEER_HALT, n, gap);
		tsc_rate(PEER_SPIN, n, gap);
		for (uint32_t peer = PEER_HALT; peer <= PEER_SPIN; peer++)
			for (int w = 0; w < 2; w++)
				if (!ipi_samples(m, peer, w == 1, n, gap))
					return 1;
	}
	/* Leave vCPU 1 running, not blocked in HLT (`endpeer=halt`: blocked, which the hypervisor must
	 * end too; before 6af6c72 a guest ending on vCPU 0 did not wake it on its host CPU). */
	peer_mode = end_peer_halt ? PEER_HALT : PEER_SPIN;
	apic_send_ipi(peer_id, VEC_KICK);
	if (trace_ipi)
		printf("ibench: traced\n");
	return 0;
}

/* --- test=idle -------------------------------------------------------------------------------- */

static volatile uint32_t ticks;
static bool idle_deadline;
static uint64_t period_tsc, next_deadline;

static void on_tick(struct irq_frame *f)
{
	(void)f;
	ticks++;
	if (idle_deadline) {
		next_deadline += period_tsc;
		wrmsr(MSR_TSC_DEADLINE, next_deadline);
	}
	apic_eoi();
}

static int test_idle(uint32_t n, uint32_t hz, bool deadline, const char *m)
{
	if (deadline && !cpu_has_tsc_deadline()) {
		printf("ibench: no TSC-deadline mode (CPUID.1:ECX[24]=0)\n");
		return 1;
	}
	irq_set_handler(VEC_TIMER, on_tick);
	idle_deadline = deadline;
	period_tsc = udiv64((uint64_t)tsc_khz * 1000, hz, NULL);
	uint64_t t0 = rdtsc(), limit = t0 + period_tsc * (2ull * n + 100);
	uint32_t halts = 0;
	if (deadline) {
		apic_write(APIC_LVT_TIMER, LVT_TIMER_DEADLINE | VEC_TIMER);
		__asm__ volatile("mfence" : : : "memory");
		next_deadline = t0 + period_tsc;
		wrmsr(MSR_TSC_DEADLINE, next_deadline);
	} else {
		apic_write(APIC_TDCR, TDCR_DIV1);
		apic_write(APIC_LVT_TIMER, LVT_TIMER_PERIODIC | VEC_TIMER);
		apic_write(APIC_TMICT, (uint32_t)udiv64((uint64_t)apic_timer_khz * 1000, hz, NULL));
	}
	cli();
	while (ticks < n && rdtsc() < limit) {
		sti_hlt();
		cli();
		halts++;
	}
	/* Stop before anything else exits. */
	if (deadline)
		wrmsr(MSR_TSC_DEADLINE, 0);
	else
		apic_write(APIC_TMICT, 0);
	apic_write(APIC_LVT_TIMER, LVT_MASKED);
	uint64_t t1 = rdtsc();
	sti();
	printf("ibench: idle-%s-%s ticks=%u hz=%u halts=%u us=%llu\n", m, deadline ? "deadline" : "periodic", ticks, hz,
	       halts, (unsigned long long)tsc_to_us(t1 - t0));
	if (ticks < n) {
		printf("ibench: idle timed out: %u of %u ticks\n", ticks, n);
		return 1;
	}
	return 0;
}

int main(void)
{
	const char *test = getarg("test"), *apic = getarg("apic"), *timer = getarg("timer");
	uint64_t n = getarg_num("n", 200);
	bool xapic = !apic || !strcmp(apic, "both") || !strcmp(apic, "xapic");
	bool x2apic = !apic || !strcmp(apic, "both") || !strcmp(apic, "x2apic");
	int r;

	if (!test || (strcmp(test, "timer") && strcmp(test, "ipi") && strcmp(test, "idle")) || n < 1 ||
	    n > MAX_SAMPLES || !(xapic || x2apic) || (timer && strcmp(timer, "periodic") && strcmp(timer, "deadline"))) {
		printf("ibench: usage: test=timer|ipi|idle n=N (1..%u) apic=xapic|x2apic|both "
		       "[timer: delta=T] [ipi: gap=T] [idle: hz=N ticks=N timer=periodic|deadline]\n", MAX_SAMPLES);
		return 3;
	}
	nsamples = (uint32_t)n;
	intr_init();
	if (!apic_probe()) {
		printf("ibench: the local APIC is disabled\n");
		return 1;
	}
	if (!time_init())
		return 4;
	apic_setup();
	apic_timer_calibrate();
	printf("ibench: test=%s tsc %u kHz (%s), apic timer %u kHz\n", test, tsc_khz, tsc_source, apic_timer_khz);
	if (!strcmp(test, "timer")) {
		r = test_timer(nsamples, xapic, x2apic, getarg_num("delta", 30000));
	} else if (!strcmp(test, "ipi")) {
		const char *ep = getarg("endpeer");
		end_peer_halt = ep && !strcmp(ep, "halt");
		r = test_ipi(nsamples, xapic, x2apic, getarg_num("gap", 20000));
	} else {
		uint32_t hz = (uint32_t)getarg_num("hz", 100), ticks_n = (uint32_t)getarg_num("ticks", 100);
		if (!hz || hz > 100000 || !ticks_n || (xapic && x2apic && apic)) {
			printf("ibench: idle: hz=1..100000, ticks>0, apic=xapic or x2apic\n");
			return 3;
		}
		if (x2apic && !xapic) {
			if (!apic_x2 && !apic_enable_x2apic()) {
				printf("ibench: no x2APIC\n");
				return 1;
			}
			apic_setup();
		}
		r = test_idle(ticks_n, hz, timer && !strcmp(timer, "deadline"), apic_x2 ? "x2apic" : "xapic");
	}
	if (r)
		return r;
	printf("ibench: done\n");
	return 0;
}
