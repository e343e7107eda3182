/* The virtual 8254 PIT: three counters clocked at 1.193182 MHz from the guest's TSC, channel 0's
 * output on IRQ 0, channel 2's gate and output in port 0x61. */

/*
 * Emulates, after the Intel 82C54 datasheet (order no. 231244) and the PC/AT wiring (counter clock
 * 14.31818 MHz / 12; gates 0 and 1 tied high, gate 2 in port 0x61 bit 0; OUT0 on IRQ 0, OUT2 read
 * in port 0x61 bit 5):
 *  - the control word (SC, RW, M, BCD): a control word resets the counter's logic, OUT goes to its
 *    initial state (low in mode 0, high in the others) and counting waits for a count;
 *  - count writes and reads with RW = LSB only, MSB only, LSB then MSB (each with its flip-flop);
 *    a count of 0 is the largest (65536, or 10000 in BCD);
 *  - the counter latch command (RW = 00) and the read-back command (SC = 11: count and/or status of
 *    any counters; status = OUT, NULL COUNT, RW, M, BCD; a latched status is read before a latched
 *    count; a second latch before the first is read is ignored);
 *  - modes 0 (interrupt on terminal count), 1 (hardware retriggerable one-shot), 2 (rate
 *    generator), 3 (square wave), 4 (software strobe), 5 (hardware strobe), with the gate as the
 *    datasheet's table "Gate Pin Operations Summary" says: low suspends counting in modes 0, 2, 3,
 *    4 (and forces OUT high in 2 and 3), a rising edge (re)starts modes 1, 2, 3, 5;
 *  - BCD counting (0-9999) on the same time base;
 *  - channel 0's OUT drives IRQ 0: the line is pulsed (irq_pulse) at each rising edge of OUT (mode
 *    0: once, at terminal count; mode 2: each period, when the count reloads; mode 3: each period,
 *    at the start of the high half; modes 1, 4, 5: once) rather than held at OUT's level: the PIC
 *    and the I/O APIC take IRQ 0 edge-triggered, so only the rising edge matters;
 *  - channel 1 counts like the others, its output wired to nothing (on the PC it requested DRAM
 *    refresh); port 0x61 bit 4 toggles every 15.085 us of guest time (18 PIT ticks: the BIOS's
 *    refresh rate) and, so that a guest spinning on it always sees it change, also on every read
 *    that finds the time unchanged;
 *  - port 0x61: bits 0-3 read back as written (bit 0 gate 2, bit 1 speaker data, 2-3 parity and
 *    I/O channel check enables, no effect), bit 4 refresh, bit 5 OUT2, bits 6-7 (parity and I/O
 *    channel check errors) read 0.
 *
 * Time: a counter's state is a function of the guest TSC (`now`): the PIT tick count is
 * floor(now * 1193182 / (tsc_khz * 1000)), computed without overflow by splitting `now` into whole
 * seconds and a remainder. Nothing runs per tick.
 *
 * Channel 0's interrupts come from one device timer whose deadline is the TSC of OUT0's next rising
 * edge. When it fires late, after several edges passed (a short period, count 1-10, or a host that
 * did not run the guest for a while), IRQ 0 is pulsed once and the next deadline is the first edge
 * after `now`: a real PIT would have interrupted for each, a guest counting ticks to keep time
 * loses the difference (Linux keeps time with the TSC or reads the count and copes; counted in
 * `lost`). So the host does at most one IRQ and one deadline computation per timer callback,
 * whatever the guest programs.
 *
 * Not emulated or simplified: a new count written in modes 2 and 3 while counting takes effect
 * at once (the datasheet: at the end of the current period); in modes 1 and 5 it stops the current
 * one-shot until the next trigger; the one-clock delay between a count write and its load into the
 * counting element is not modelled (NULL COUNT clears at once, except in modes 1 and 5 until the
 * trigger); count readings in mode 3 follow the datasheet's even-count sequence (odd counts read
 * as N-1, N-3, ...); the speaker makes no sound; port 0x61's NMI sources never assert.
 *
 * Concurrency: none inside. Port accesses and the timer callback must be serialized by the caller
 * (the device bus lock, under which vdev_timers_update runs the timer).
 */
#include "lib/string.h"
#include "vdev/pit.h"

#define CW_SC(v)      (((v) >> 6) & 3)     /* select counter; 3 = read-back */
#define CW_RW(v)      (((v) >> 4) & 3)     /* 0 = counter latch command */
#define CW_MODE(v)    (((v) >> 1) & 7)
#define CW_BCD        0x01
#define RB_NOCOUNT    0x20                 /* read-back: do not latch the count */
#define RB_NOSTATUS   0x10                 /* read-back: do not latch the status */
#define ST_OUT        0x80                 /* status: OUT pin */
#define ST_NULL       0x40                 /* status: null count */
#define RW_LSB        1
#define RW_MSB        2
#define RW_BOTH       3
#define REFRESH_TICKS 18                   /* DRAM refresh period in PIT ticks (15.085 us) */

/* --- time ------------------------------------------------------------------------------------- */

static uint64_t tsc_hz(const struct vpit *p)
{
	return p->tsc_khz * 1000;
}

/* PIT ticks at guest TSC `tsc`: floor(tsc * VPIT_HZ / hz), without a 128-bit product. */
static uint64_t ticks_at(const struct vpit *p, uint64_t tsc)
{
	uint64_t hz = tsc_hz(p);

	return tsc / hz * VPIT_HZ + tsc % hz * VPIT_HZ / hz;
}

/* The first guest TSC value at which ticks_at() reaches `ticks`: ceil(ticks * hz / VPIT_HZ). */
static uint64_t tsc_at(const struct vpit *p, uint64_t ticks)
{
	uint64_t hz = tsc_hz(p);

	return ticks / VPIT_HZ * hz + (ticks % VPIT_HZ * hz + VPIT_HZ - 1) / VPIT_HZ;
}

/* Accesses and timer callbacks may come from vCPUs whose TSC reads differ slightly: time never goes
 * back for the device. */
static uint64_t note_time(struct vpit *p, uint64_t now)
{
	if (now > p->last_now)
		p->last_now = now;
	return p->last_now;
}

/* --- one counter, as a function of its elapsed ticks ------------------------------------------ */

static uint32_t modulus(const struct vpit_channel *c)
{
	return c->bcd ? 10000 : 65536;
}

/* Ticks counted since the count was loaded (or the trigger) at PIT time `t`. */
static uint64_t elapsed(const struct vpit_channel *c, uint64_t t)
{
	return c->held + (c->running && t > c->start ? t - c->start : 0);
}

/* The counting element's value after `e` ticks. */
static uint32_t count_at(const struct vpit_channel *c, uint64_t e)
{
	uint32_t n = c->reload, m = modulus(c);
	uint64_t ph, half;

	if (!c->loaded)
		return 0;
	if (!c->armed)
		return n % m;
	switch (c->mode) {
	case 2:
		return (n - e % n) % m;
	case 3:
		ph = e % n;
		half = (n + 1) / 2;
		if (ph >= half)
			ph -= half;
		return ((n & ~1u) - 2 * ph) % m;
	default:                                   /* 0, 1, 4, 5: down to 0, then wrap */
		return (n + m - e % m) % m;
	}
}

/* OUT after `e` ticks. */
static bool out_at(const struct vpit_channel *c, uint64_t e)
{
	uint32_t n = c->reload;

	if (!c->loaded)
		return c->mode != 0;
	if (!c->armed)
		return true;                       /* modes 1, 5 before their trigger */
	switch (c->mode) {
	case 0:
	case 1:
		return e >= n;
	case 2:
		return !c->gate || n == 1 || e % n != n - 1;
	case 3:
		return !c->gate || e % n < (n + 1) / 2;
	default:                                   /* 4, 5: low for one tick at terminal count */
		return e != n;
	}
}

/* Rising edges of OUT within the first `e` ticks. */
static uint64_t edges_at(const struct vpit_channel *c, uint64_t e)
{
	uint32_t n = c->reload;

	if (!c->loaded || !c->armed)
		return 0;
	switch (c->mode) {
	case 0:
	case 1:
		return e >= n;
	case 2:
	case 3:
		return e / n;
	default:
		return e >= (uint64_t)n + 1;
	}
}

/* Elapsed ticks at rising edge number `k` (1, 2, ...), or 0 if there is none. */
static uint64_t edge_time(const struct vpit_channel *c, uint64_t k)
{
	uint32_t n = c->reload;

	switch (c->mode) {
	case 0:
	case 1:
		return k == 1 ? n : 0;
	case 2:
	case 3:
		return k * n;
	default:
		return k == 1 ? (uint64_t)n + 1 : 0;
	}
}

static uint16_t to_bcd(uint32_t v)
{
	return (v / 1000 % 10) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | v % 10;
}

static uint32_t from_bcd(uint16_t v)
{
	return (v >> 12 & 15) * 1000 + (v >> 8 & 15) * 100 + (v >> 4 & 15) * 10 + (v & 15);
}

/* The value a read of the count gives at PIT time `t`. */
static uint16_t read_value(const struct vpit_channel *c, uint64_t t)
{
	uint32_t v = count_at(c, elapsed(c, t));

	return c->bcd ? to_bcd(v) : (uint16_t)v;
}

static void load(struct vpit_channel *c, uint32_t raw, uint64_t t)
{
	uint32_t n = c->bcd ? from_bcd(raw) : raw;

	c->reload = n ? n : modulus(c);
	c->loaded = true;
	c->edges = 0;
	c->held = 0;
	c->start = t;
	c->armed = c->mode != 1 && c->mode != 5;   /* those wait for a gate trigger */
	c->running = c->armed && (c->gate || c->mode == 1 || c->mode == 5);
}

static void set_gate(struct vpit_channel *c, bool gate, uint64_t t)
{
	if (gate == c->gate)
		return;
	if (!gate) {
		if (c->running && c->mode != 1 && c->mode != 5) {
			c->held = elapsed(c, t);       /* modes 0, 2, 3, 4: counting suspended */
			c->running = false;
		}
	} else if (c->mode == 0 || c->mode == 4) {
		if (c->armed) {
			c->start = t;                  /* counting resumes where it stopped */
			c->running = true;
		}
	} else if (c->loaded) {
		c->armed = c->running = true;          /* modes 1, 2, 3, 5: (re)trigger, reload */
		c->start = t;
		c->held = 0;
		c->edges = 0;
	}
	c->gate = gate;
}

static void control_word(struct vpit_channel *c, uint8_t v)
{
	c->mode = CW_MODE(v) > 5 ? CW_MODE(v) - 4 : CW_MODE(v);
	c->rw = CW_RW(v);
	c->bcd = v & CW_BCD;
	c->loaded = c->armed = c->running = false;
	c->held = 0;
	c->edges = 0;
	c->wflip = c->rflip = false;
	c->count_latched = c->status_latched = false;
}

static void latch_count(struct vpit_channel *c, uint64_t t)
{
	if (c->count_latched)
		return;                                /* the first latch holds until read */
	c->latch = read_value(c, t);
	c->count_latched = true;
	c->rflip = false;
}

static void latch_status(struct vpit_channel *c, uint64_t t)
{
	bool null = !c->loaded || !c->armed;

	if (c->status_latched)
		return;
	c->status = (out_at(c, elapsed(c, t)) ? ST_OUT : 0) | (null ? ST_NULL : 0) | c->rw << 4 |
		    c->mode << 1 | (c->bcd ? CW_BCD : 0);
	c->status_latched = true;
}

static uint8_t count_read(struct vpit_channel *c, uint64_t t)
{
	uint16_t v;
	bool msb;

	if (c->status_latched) {
		c->status_latched = false;
		return c->status;
	}
	v = c->count_latched ? c->latch : read_value(c, t);
	msb = c->rw == RW_MSB || (c->rw == RW_BOTH && c->rflip);
	if (c->rw == RW_BOTH)
		c->rflip = !c->rflip;
	if (c->count_latched && !(c->rw == RW_BOTH && c->rflip))
		c->count_latched = false;              /* all of the latched count was read */
	return msb ? v >> 8 : v & 0xff;
}

static void count_write(struct vpit_channel *c, uint8_t v, uint64_t t)
{
	switch (c->rw) {
	case RW_LSB:
		load(c, v, t);
		break;
	case RW_MSB:
		load(c, (uint32_t)v << 8, t);
		break;
	default:
		if (!c->wflip) {
			c->wlsb = v;
			c->wflip = true;
			if (c->mode == 0)
				c->loaded = c->armed = c->running = false; /* first byte: OUT low, stop */
		} else {
			c->wflip = false;
			load(c, c->wlsb | (uint32_t)v << 8, t);
		}
		break;
	}
}

/* --- channel 0's interrupt -------------------------------------------------------------------- */

/* IRQ 0 for OUT0's rising edges up to `now`: one pulse however many passed. */
static void ch0_catch_up(struct vpit *p, uint64_t now)
{
	struct vpit_channel *c = &p->ch[0];
	uint64_t e = edges_at(c, elapsed(c, ticks_at(p, now)));

	if (e > c->edges) {
		p->lost += e - c->edges - 1;
		c->edges = e;
		irq_pulse(&p->irq0);
	}
}

/* The timer's deadline: the TSC of OUT0's next rising edge, or none. */
static void ch0_arm(struct vpit *p)
{
	struct vpit_channel *c = &p->ch[0];
	uint64_t e = c->running ? edge_time(c, c->edges + 1) : 0, d;

	if (!e)
		d = 0;
	else if (e <= c->held)
		d = p->last_now ? p->last_now : 1;
	else if (!(d = tsc_at(p, c->start + (e - c->held))))
		d = 1;
	vdev_timer_set(&p->timer, d);
}

static void pit_fire(void *dev, uint64_t now)
{
	struct vpit *p = dev;

	now = note_time(p, now);
	ch0_catch_up(p, now);
	ch0_arm(p);
}

/* --- ports ------------------------------------------------------------------------------------- */

static uint8_t port61_read(struct vpit *p, uint64_t now)
{
	uint64_t t = ticks_at(p, now);
	struct vpit_channel *c2 = &p->ch[2];
	uint8_t v = p->port61 & VPIT_61_WBITS;

	if (now == p->refresh_now)
		p->refresh_flip ^= 1;                  /* no time passed since the last read */
	p->refresh_now = now;
	if (((t / REFRESH_TICKS) ^ p->refresh_flip) & 1)
		v |= VPIT_61_REFRESH;
	if (out_at(c2, elapsed(c2, t)))
		v |= VPIT_61_OUT2;
	return v;
}

static uint8_t port_byte(struct vpit *p, uint16_t port, bool write, uint8_t v, uint64_t now)
{
	uint64_t t = ticks_at(p, now);

	if (port == VPIT_PORT61) {
		if (!write)
			return port61_read(p, now);
		p->port61 = v & VPIT_61_WBITS;
		set_gate(&p->ch[2], v & VPIT_61_GATE2, t);
		return 0;
	}
	if (port < VPIT_BASE + 3) {
		struct vpit_channel *c = &p->ch[port - VPIT_BASE];

		if (!write)
			return count_read(c, t);
		if (port == VPIT_BASE)
			ch0_catch_up(p, now);          /* edges before the new count still count */
		count_write(c, v, t);
		return 0;
	}
	if (!write)
		return 0xff;                           /* the control word register is write-only */
	if (CW_SC(v) == 3) {                           /* read-back */
		for (unsigned i = 0; i < 3; i++) {
			if (!(v & (2u << i)))
				continue;
			if (!(v & RB_NOSTATUS))
				latch_status(&p->ch[i], t);
			if (!(v & RB_NOCOUNT))
				latch_count(&p->ch[i], t);
		}
	} else if (CW_RW(v) == 0) {
		latch_count(&p->ch[CW_SC(v)], t);
	} else {
		if (CW_SC(v) == 0)
			ch0_catch_up(p, now);
		control_word(&p->ch[CW_SC(v)], v);
	}
	return 0;
}

enum vdev_result vpit_io(struct vpit *p, struct vdev_access *a, uint64_t now)
{
	uint64_t r = 0;

	now = note_time(p, now);
	/* A word access is byte cycles on the ISA bus: this port, then the next. */
	for (unsigned i = 0; i < a->size; i++) {
		uint16_t port = a->addr + i;
		bool ours = (port >= VPIT_BASE && port < VPIT_BASE + 4) || port == VPIT_PORT61;
		uint8_t b = ours ? port_byte(p, port, a->write, a->value >> (8 * i), now) : 0xff;

		r |= (uint64_t)b << (8 * i);
	}
	if (!a->write)
		a->value = r;
	ch0_arm(p);
	return VDEV_DONE;
}

static enum vdev_result pit_access(void *dev, struct vdev_access *a)
{
	struct vpit *p = dev;

	return vpit_io(p, a, p->clock ? p->clock(p->clock_ctx) : p->last_now);
}

void vpit_init(struct vpit *p, uint64_t tsc_khz, struct irq_line irq0)
{
	memset(p, 0, sizeof(*p));
	if (tsc_khz < 1000 || tsc_khz > 1000000000)
		tsc_khz = 1000000;                     /* outside 1 MHz..1 THz: 1 GHz, not an overflow */
	p->tsc_khz = tsc_khz;
	p->irq0 = irq0;
	p->timer.fire = pit_fire;
	p->timer.dev = p;
	for (unsigned i = 0; i < 3; i++) {
		p->ch[i].rw = RW_BOTH;
		p->ch[i].gate = i != 2;                /* gates 0 and 1 are tied high on the PC */
	}
}

void vpit_set_clock(struct vpit *p, uint64_t (*clock)(void *ctx), void *ctx)
{
	p->clock = clock;
	p->clock_ctx = ctx;
}

int vpit_register(struct vpit *p, struct vdev_bus *bus)
{
	int err;

	if ((err = vdev_add_pio(bus, VPIT_BASE, 4, pit_access, p, "pit")) ||
	    (err = vdev_add_pio(bus, VPIT_PORT61, 1, pit_access, p, "port61")))
		return err;
	return vdev_add_timer(bus, &p->timer);
}
