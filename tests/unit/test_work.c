/* Host unit tests of the "work before entry" word (vcpu/work.h) and its producers below vmx/: device
 * timers (vdev_timer_set tells the keeper), the local APIC's kicks (fixed interrupts apart from NMI,
 * INIT, SIPI) and its dirty word; and, with threads, that a bit posted from another CPU after the event
 * is never lost to the consumer's take. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "vcpu/work.h"
#include "vdev/lapic.h"
#include "vdev/vdev.h"
#include "tests/unit/unit.h"

/* --- the word ------------------------------------------------------------------------------------ */

static void test_bits(void)
{
	uint32_t w = 0;

	CHECK_EQ(vcpu_work_peek(&w), 0);
	vcpu_work_post(&w, VCPU_WORK_IRQ);
	vcpu_work_post(&w, VCPU_WORK_DEVICES);
	CHECK_EQ(vcpu_work_peek(&w), VCPU_WORK_IRQ | VCPU_WORK_DEVICES);
	/* The scheduler takes the kick bits of a vCPU that does not run, and only those. */
	CHECK_EQ(vcpu_work_take_bits(&w, VCPU_WORK_KICKED), VCPU_WORK_IRQ);
	CHECK_EQ(vcpu_work_take_bits(&w, VCPU_WORK_KICKED), 0);
	CHECK_EQ(vcpu_work_peek(&w), VCPU_WORK_DEVICES);
	/* The owner takes everything, the word starts afresh. */
	vcpu_work_post(&w, VCPU_WORK_EVENT);
	CHECK_EQ(vcpu_work_take(&w), VCPU_WORK_DEVICES | VCPU_WORK_EVENT);
	CHECK_EQ(vcpu_work_peek(&w), 0);
	CHECK_EQ(vcpu_work_take(&w), 0);
}

/* The entry path's question: straight to the guest only with nothing anywhere and no deadline due. */
static void test_none(void)
{
	CHECK(vcpu_work_none(0, 0, 100, 101));
	CHECK(!vcpu_work_none(0, 0, 101, 101));        /* the deadline is due */
	CHECK(!vcpu_work_none(0, 0, 100, 0));          /* not armed: look */
	CHECK(!vcpu_work_none(VCPU_WORK_IRQ, 0, 100, 101));
	CHECK(!vcpu_work_none(0, VLAPIC_DIRTY_REGS, 100, 101));
	CHECK(!vcpu_work_none(VCPU_WORK_ENTRY, 0, 100, 101));   /* an exception to deliver */
	CHECK(vcpu_work_none(0, 0, 0, ~0ull));
}

/* --- device timers: the keeper is told of a new deadline, and only of that -------------------------- */

static struct vdev_bus bus;
static struct vdev_timer timer;
static uint32_t keeper;
static uint64_t next_deadline;
static unsigned fired;

static void timer_fire(void *dev, uint64_t now)
{
	(void)dev;
	fired++;
	vdev_timer_set(&timer, now + 1000);     /* periodic: re-arms itself */
}

/* Port 0x10 writes set the timer's deadline to the value written; 0x14 moves nothing. */
static enum vdev_result dev_access(void *dev, struct vdev_access *a)
{
	(void)dev;
	if (a->write && a->addr == 0x10)
		vdev_timer_set(&timer, a->value);
	return VDEV_DONE;
}

static void out(uint16_t port, uint32_t v)
{
	struct vdev_access a = { .addr = port, .size = 4, .write = true, .value = v };

	CHECK_EQ(vdev_pio(&bus, &a), VDEV_DONE);
}

static void test_device_timers(void)
{
	memset(&bus, 0, sizeof(bus));
	memset(&timer, 0, sizeof(timer));
	keeper = 0;
	fired = 0;
	vdev_bus_init(&bus, "t", NULL);
	timer.fire = timer_fire;
	vdev_timer_set(&timer, 500);            /* before it is registered: nobody to tell yet */
	CHECK_EQ(timer.deadline, 500);
	CHECK_EQ(vdev_add_timer(&bus, &timer), 0);
	CHECK(bus.timers_changed);              /* the first update takes it in */
	vdev_bus_set_keeper(&bus, &keeper, VCPU_WORK_DEVICES);
	CHECK_EQ(vdev_add_pio(&bus, 0x10, 8, dev_access, NULL, "dev"), 0);
	CHECK_EQ(vdev_timers_update(&bus, 0), 500);
	CHECK(!bus.timers_changed);
	CHECK_EQ(keeper, 0);
	/* An access that moves no deadline tells nobody (the I/O exit goes straight back). */
	out(0x14, 1);
	out(0x10, 500);                          /* the same deadline again */
	CHECK_EQ(keeper, 0);
	CHECK(!bus.timers_changed);
	/* A new deadline: the flag, and the keeper's bit. */
	out(0x10, 700);
	CHECK_EQ(keeper, VCPU_WORK_DEVICES);
	CHECK(bus.timers_changed);
	CHECK_EQ(vcpu_work_take(&keeper), VCPU_WORK_DEVICES);
	next_deadline = vdev_timers_update(&bus, 600);
	CHECK_EQ(next_deadline, 700);
	/* A timer that fires and re-arms under the keeper's own update tells nobody: the keeper takes
	 * its new deadline from that update. */
	next_deadline = vdev_timers_update(&bus, 700);
	CHECK_EQ(fired, 1);
	CHECK_EQ(next_deadline, 1700);
	CHECK_EQ(keeper, 0);
	CHECK(!bus.timers_changed);
}

/* --- the local APIC: which kicks, which dirty bits ----------------------------------------------- */

#define N 2
static uint32_t pages[N][1024] __attribute__((aligned(4096)));
static struct vlapic L[N];
static struct vlapic_group G;
static uint32_t work[N];

/* What vcpu/vcpu.c's lapic_kick does, without the IPI. */
static void kick_cb(struct vlapic *t, bool fixed)
{
	vcpu_work_post(&work[t - L], fixed ? VCPU_WORK_IRQ : VCPU_WORK_EVENT);
}

static void apic_setup(void)
{
	memset(&G, 0, sizeof(G));
	memset(work, 0, sizeof(work));
	for (unsigned i = 0; i < N; i++) {
		vlapic_init(&L[i], &G, i, pages[i]);
		vlapic_join(&G, &L[i]);
		CHECK_EQ(vlapic_mmio_write(&L[i], VLAPIC_SVR, 4, VLAPIC_SVR_ENABLE | 0xff, 0), 0);
		(void)vlapic_take_dirty(&L[i]);
	}
	G.kick = kick_cb;
}

static void test_apic_kicks(void)
{
	apic_setup();
	/* vCPU 0 sends a fixed IPI to vCPU 1: vCPU 1's IRQ bit and IRR dirty; vCPU 0's own entry has
	 * nothing to look at (an ICR write changes nothing it injects). */
	CHECK_EQ(vlapic_mmio_write(&L[0], VLAPIC_ICR2, 4, 1u << 24, 0), 0);
	(void)vlapic_take_dirty(&L[0]);          /* the destination: a register like the others */
	CHECK_EQ(vlapic_mmio_write(&L[0], VLAPIC_ICR, 4, 0x40, 0), 0);
	CHECK_EQ(work[1], VCPU_WORK_IRQ);
	CHECK_EQ(vlapic_take_dirty(&L[1]), VLAPIC_DIRTY_IRR);
	CHECK_EQ(work[0], 0);
	CHECK_EQ(vlapic_take_dirty(&L[0]), 0);
	/* The same vector again, still pending: merged, no kick. */
	vcpu_work_take(&work[1]);
	CHECK_EQ(vlapic_mmio_write(&L[0], VLAPIC_ICR, 4, 0x40, 0), 0);
	CHECK_EQ(work[1], 0);
	/* An NMI is an event: the entry looks at NMIs too. */
	CHECK_EQ(vlapic_mmio_write(&L[0], VLAPIC_ICR, 4, VLAPIC_ICR_NMI, 0), 0);
	CHECK_EQ(work[1], VCPU_WORK_EVENT);
	vcpu_work_take(&work[1]);
	/* INIT likewise, once while one is pending. */
	CHECK_EQ(vlapic_mmio_write(&L[0], VLAPIC_ICR, 4, VLAPIC_ICR_INIT | VLAPIC_ICR_ASSERT, 0), 0);
	CHECK_EQ(work[1], VCPU_WORK_EVENT);
	/* A device's fixed interrupt through vlapic_post. */
	vlapic_post(&L[0], 0x51, false);
	CHECK_EQ(work[0], VCPU_WORK_IRQ);
	CHECK_EQ(vlapic_take_dirty(&L[0]), VLAPIC_DIRTY_IRR);
	/* A TPR change through CR8 may let a pending vector through: the entry looks (REGS). */
	vlapic_set_cr8(&L[0], 3);
	CHECK_EQ(vlapic_take_dirty(&L[0]), VLAPIC_DIRTY_REGS);
}

/* --- another CPU posts while the owner takes: no event is left without its bit ------------------- */

#define PRODUCERS 3
#define POSTS 20000
static uint32_t cword;
static unsigned events;          /* what the producers post, each before its bit */
static int producers_done;

static void *producer(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < POSTS; i++) {
		__atomic_fetch_add(&events, 1, __ATOMIC_RELAXED);
		vcpu_work_post(&cword, VCPU_WORK_IRQ);
	}
	__atomic_fetch_add(&producers_done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_concurrent(void)
{
	pthread_t t[PRODUCERS];
	unsigned seen = 0, takes = 0;

	for (unsigned i = 0; i < PRODUCERS; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, producer, NULL), 0);
	/* The owner's entries: a peek, and when it says yes, the take, then the events. Every event
	 * seen after a take was posted before a bit that take (or a later one) returned. */
	while (__atomic_load_n(&producers_done, __ATOMIC_SEQ_CST) < PRODUCERS || vcpu_work_peek(&cword)) {
		if (vcpu_work_peek(&cword) && vcpu_work_take(&cword)) {
			unsigned now = __atomic_load_n(&events, __ATOMIC_RELAXED);

			CHECK(now >= seen);
			seen = now;
			takes++;
		}
	}
	for (unsigned i = 0; i < PRODUCERS; i++)
		pthread_join(t[i], NULL);
	/* After the last take nothing was posted without its bit: all were seen. */
	CHECK_EQ(seen, PRODUCERS * POSTS);
	CHECK_EQ(vcpu_work_peek(&cword), 0);
	CHECK(takes > 0);
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_bits);
	RUN(test_none);
	RUN(test_device_timers);
	RUN(test_apic_kicks);
	RUN(test_concurrent);
	return unit_report(argv[0]);
}
