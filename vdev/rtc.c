/* The virtual CMOS real-time clock: one guest's MC146818 time of day, its interrupts and CMOS memory. */

/*
 * Emulates the Motorola MC146818A RTC as a PC wires it (index port 0x70, data port 0x71, IRQ 8):
 *  - the index register: bits 6:0 select one of 128 bytes; bit 7 is the PC's NMI mask, stored and
 *    reported (vrtc_nmi_masked); reading port 0x70 gives 0xFF (the port is write-only on a PC);
 *  - the time and calendar registers 0-9 and the PC's century byte 0x32, read from a host time source
 *    (seconds since the epoch at a guest TSC value, advancing with the TSC), in BCD or binary
 *    (register B DM) and 24- or 12-hour format (B 24/12; PM is bit 7 of the hours); the day of week
 *    (1 = Sunday) follows from the date;
 *  - the alarm registers 1, 3, 5 with "don't care" values 0xC0-0xFF (datasheet "Alarm"), compared with
 *    the time bytes in the current format at each update;
 *  - register A: UIP (bit 7) is 1 during the last 244 us (8 periods of 32.768 kHz) before each update,
 *    computed from the time, never while SET; DV stored; RS selects the periodic rate (datasheet
 *    Table 5: 256 and 128 Hz for 1 and 2, 32768 >> (RS - 1) Hz for 3-15, none for 0);
 *  - register B: SET inhibits updates (and clears UIE); PIE, AIE, UIE enable the interrupts; DM, 24/12;
 *  - register C: PF, AF, UF are set by time whatever the enables; IRQF = PF.PIE + AF.AIE + UF.UIE drives
 *    IRQ 8 (raised while IRQF is 1: an edge-triggered controller sees one edge per read of C);
 *    reading C returns and clears them all;
 *  - register D: VRT = 1 (a good battery); read-only;
 *  - the 114 bytes of CMOS memory 0x0E-0x7F, with the PC BIOS's memory-size bytes for the guest's RAM
 *    (0x15-0x16 base memory 640 KiB; 0x17-0x18 and 0x30-0x31 extended memory from 1 MiB, in KiB, at
 *    most 63 MiB; 0x34-0x35 memory above 16 MiB up to the hole below 4 GiB in 64 KiB units, at most
 *    0xFFFF; 0x5b-0x5d memory from 4 GiB in 64 KiB units, QEMU's and SeaBIOS's bytes) and their AT checksum
 *    (0x2E-0x2F over 0x10-0x2D). The guest may write every byte (the checksum is not kept up to date).
 * Defined here where a model must choose:
 *  - time is kept as one offset in seconds from the host's time: writing a time register (while SET
 *    is 1: when SET is cleared; while SET is 0: at once) makes the registers' time the new guest time,
 *    counting on from the phase of the current second (the divider chain is not reset). Out-of-range
 *    values are clamped (seconds and minutes to 59, hours to 23, day to 1-31, month to 1-12, year
 *    and century to 99) and a day past the month's end rolls into the next month; the day-of-week
 *    register is recomputed from the date. Values written while SET read back as written until SET
 *    is cleared, and are decoded in the format (DM, 24/12) register B had while they were written;
 *  - the update happens at the start of each second, so UF and the alarm comparison fall there; the
 *    periodic edges are multiples of the period on the same 32.768 kHz divider chain;
 *  - a device timer runs only while an enabled event could raise IRQF and IRQF is 0: at most one
 *    interrupt is outstanding until the guest reads C (as on the chip), and missed periods or seconds
 *    set their flag once (coalesced, as a PIT's missed ticks). The alarm check over missed seconds
 *    walks at most one day, a minute at a time: bounded work.
 * Not emulated: the square-wave output (SQWE stored), daylight saving (DSE stored; the host time is
 * UTC), divider reset and oscillator control through DV (stored), the 128 further bytes at ports
 * 0x72/0x73, the RTC's 1984 us update cycle length (registers read the old time through UIP).
 *
 * Concurrency: none here; the caller serializes (one lock per guest platform).
 */
#include <stddef.h>
#include "gmem/layout.h"
#include "lib/string.h"
#include "vdev/rtc.h"

#define SECONDS_PER_DAY 86400
#define UIP_CLOCKS 8                        /* 8 / 32768 s = 244 us */
#define CMOS_CHECKSUM_HI 0x2e
#define KIB 1024ull
#define MIB (1024 * KIB)

/* --- time base ---------------------------------------------------------------------------------- */

/* The divider chain's count of 32.768 kHz periods at guest TSC `now`: clock 0 is base_tsc, the start
 * of second `epoch`. Split into seconds and a remainder so nothing overflows in 64 bits. */
static uint64_t clocks(const struct vrtc *r, uint64_t now)
{
	uint64_t t, s, rem;

	if (now <= r->base_tsc)
		return 0;
	t = now - r->base_tsc;
	s = t / r->tsc_hz;
	rem = t % r->tsc_hz;
	return s * VRTC_CLOCK_HZ + rem * VRTC_CLOCK_HZ / r->tsc_hz;
}

/* The first guest TSC value at which clocks() reaches `k` (tsc_hz > 32768, so the ceiling is exact). */
static uint64_t tsc_of_clock(const struct vrtc *r, uint64_t k)
{
	uint64_t s = k / VRTC_CLOCK_HZ, rr = k % VRTC_CLOCK_HZ;

	return r->base_tsc + s * r->tsc_hz + (rr * r->tsc_hz + VRTC_CLOCK_HZ - 1) / VRTC_CLOCK_HZ;
}

/* The guest's time, in seconds since the epoch, during host second `s` (whole seconds since base). */
static int64_t guest_second(const struct vrtc *r, uint64_t s)
{
	return (int64_t)(r->epoch + s) + r->offset;
}

int64_t vrtc_seconds(const struct vrtc *r, uint64_t now)
{
	return guest_second(r, clocks(r, now) / VRTC_CLOCK_HZ);
}

/* --- calendar (proleptic Gregorian; H. Hinnant's days_from_civil and civil_from_days) ------------- */

struct rtc_tm {
	unsigned sec, min, hour, wday, mday, mon, year; /* wday 1 = Sunday; year 0-9999 */
};

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = floor_div(y, 400);
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void to_tm(int64_t t, struct rtc_tm *tm)
{
	int64_t days = floor_div(t, SECONDS_PER_DAY), sod = t - days * SECONDS_PER_DAY;
	int64_t z = days + 719468, era = floor_div(z, 146097), doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
	int64_t y = yoe + era * 400;

	tm->sec = (unsigned)(sod % 60);
	tm->min = (unsigned)(sod / 60 % 60);
	tm->hour = (unsigned)(sod / 3600);
	tm->mday = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	tm->mon = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	y += tm->mon <= 2;
	tm->year = y < 0 ? 0 : y > 9999 ? 9999 : (unsigned)y;
	tm->wday = (unsigned)((days % 7 + 7 + 4) % 7) + 1;   /* 1970-01-01 was a Thursday (5) */
}

/* --- register formats --------------------------------------------------------------------------- */

static uint8_t enc(uint8_t b_reg, unsigned v)
{
	return b_reg & VRTC_B_DM ? (uint8_t)v : (uint8_t)((v / 10) << 4 | v % 10);
}

static unsigned dec(uint8_t b_reg, uint8_t v)
{
	return b_reg & VRTC_B_DM ? v : (v >> 4) * 10u + (v & 15);
}

static uint8_t enc_hour(uint8_t b_reg, unsigned h)
{
	if (b_reg & VRTC_B_24H)
		return enc(b_reg, h);
	return enc(b_reg, h % 12 ? h % 12 : 12) | (h >= 12 ? 0x80 : 0);
}

static unsigned dec_hour(uint8_t b_reg, uint8_t v)
{
	if (b_reg & VRTC_B_24H)
		return dec(b_reg, v);
	return dec(b_reg, v & 0x7f) % 12 + (v & 0x80 ? 12 : 0);
}

static unsigned clamp(unsigned v, unsigned lo, unsigned hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* The time registers 0-9 (alarm slots unused) and the century for guest time `t`, in format `b_reg`. */
static void time_regs(int64_t t, uint8_t b_reg, uint8_t regs[10], uint8_t *century)
{
	struct rtc_tm tm;

	to_tm(t, &tm);
	memset(regs, 0, 10);
	regs[VRTC_SECONDS] = enc(b_reg, tm.sec);
	regs[VRTC_MINUTES] = enc(b_reg, tm.min);
	regs[VRTC_HOURS] = enc_hour(b_reg, tm.hour);
	regs[VRTC_DAY_OF_WEEK] = enc(b_reg, tm.wday);
	regs[VRTC_DAY_OF_MONTH] = enc(b_reg, tm.mday);
	regs[VRTC_MONTH] = enc(b_reg, tm.mon);
	regs[VRTC_YEAR] = enc(b_reg, tm.year % 100);
	*century = enc(b_reg, tm.year / 100);
}

/* Makes the time in `regs`/`century` (format `b_reg`) the guest's time now. */
static void commit_time(struct vrtc *r, const uint8_t regs[10], uint8_t century, uint8_t b_reg, uint64_t now)
{
	unsigned sec = clamp(dec(b_reg, regs[VRTC_SECONDS]), 0, 59);
	unsigned min = clamp(dec(b_reg, regs[VRTC_MINUTES]), 0, 59);
	unsigned hour = clamp(dec_hour(b_reg, regs[VRTC_HOURS]), 0, 23);
	unsigned mday = clamp(dec(b_reg, regs[VRTC_DAY_OF_MONTH]), 1, 31);
	unsigned mon = clamp(dec(b_reg, regs[VRTC_MONTH]), 1, 12);
	unsigned year = clamp(dec(b_reg, regs[VRTC_YEAR]), 0, 99) + 100 * clamp(dec(b_reg, century), 0, 99);
	int64_t t = days_from_civil(year, mon, 1) + (mday - 1);

	t = t * SECONDS_PER_DAY + hour * 3600 + min * 60 + sec;
	r->offset = t - (int64_t)(r->epoch + clocks(r, now) / VRTC_CLOCK_HZ);
}

/* --- events ------------------------------------------------------------------------------------- */

/* The periodic interrupt's period in 32.768 kHz clocks for rate select `rs` (Table 5); 0 = none. */
static uint64_t period_clocks(unsigned rs)
{
	if (!rs)
		return 0;
	return rs <= 2 ? 1ull << (rs + 6) : 1ull << (rs - 1);
}

static bool dont_care(uint8_t alarm)
{
	return (alarm & 0xc0) == 0xc0;
}

/*
 * Whether the alarm matches any second from guest time g0 to g1 (inclusive). Only the time of day
 * matters, so at most the last day is walked, one minute of matching hours and minutes at a time.
 */
static bool alarm_hit(const struct vrtc *r, int64_t g0, int64_t g1)
{
	uint8_t b = r->cmos[VRTC_REG_B];
	uint8_t as = r->cmos[VRTC_SECONDS_ALARM], am = r->cmos[VRTC_MINUTES_ALARM];
	uint8_t ah = r->cmos[VRTC_HOURS_ALARM];
	unsigned want_sec = dec(b, as);

	if (g1 - g0 >= SECONDS_PER_DAY)
		g0 = g1 - (SECONDS_PER_DAY - 1);
	for (int64_t t = g0; t <= g1;) {
		int64_t sod = t - floor_div(t, SECONDS_PER_DAY) * SECONDS_PER_DAY;
		unsigned s0 = (unsigned)(sod % 60), s1 = s0 + (g1 - t < 59 - s0 ? (unsigned)(g1 - t) : 59 - s0);
		unsigned h = (unsigned)(sod / 3600), m = (unsigned)(sod / 60 % 60);

		if ((dont_care(ah) || ah == enc_hour(b, h)) && (dont_care(am) || am == enc(b, m))) {
			if (dont_care(as))
				return true;
			if (want_sec <= 59 && enc(b, want_sec) == as && want_sec >= s0 && want_sec <= s1)
				return true;
		}
		t += s1 - s0 + 1;
	}
	return false;
}

static bool irqf(const struct vrtc *r)
{
	uint8_t b = r->cmos[VRTC_REG_B];

	return ((r->flags & VRTC_C_PF) && (b & VRTC_B_PIE)) || ((r->flags & VRTC_C_AF) && (b & VRTC_B_AIE)) ||
	       ((r->flags & VRTC_C_UF) && (b & VRTC_B_UIE));
}

/* IRQ 8 follows IRQF; only a change reaches the line. */
static void update_irq(struct vrtc *r)
{
	bool level = irqf(r);

	if (level == r->irq_level)
		return;
	r->irq_level = level;
	if (level)
		irq_raise(&r->irq);
	else
		irq_lower(&r->irq);
}

/* Sets the flags of every event since the last call (each once, however many were missed). */
static void advance(struct vrtc *r, uint64_t now)
{
	uint64_t c = clocks(r, now), last = r->last_clock;
	uint64_t period = period_clocks(r->cmos[VRTC_REG_A] & VRTC_A_RS);
	uint64_t s0 = last / VRTC_CLOCK_HZ, s1 = c / VRTC_CLOCK_HZ;

	if (c <= last)
		return;
	if (period && c / period > last / period)
		r->flags |= VRTC_C_PF;
	if (s1 > s0 && !(r->cmos[VRTC_REG_B] & VRTC_B_SET)) {
		r->flags |= VRTC_C_UF;
		if (alarm_hit(r, guest_second(r, s0 + 1), guest_second(r, s1)))
			r->flags |= VRTC_C_AF;
	}
	r->last_clock = c;
	update_irq(r);
}

/* The timer runs to the next event that can raise IRQF, while IRQF is 0. */
static void rearm(struct vrtc *r, uint64_t now)
{
	uint8_t b = r->cmos[VRTC_REG_B];
	uint64_t c = clocks(r, now), period = period_clocks(r->cmos[VRTC_REG_A] & VRTC_A_RS), next = 0;

	if (!r->irq_level) {
		if ((b & VRTC_B_PIE) && period)
			next = (c / period + 1) * period;
		if ((b & (VRTC_B_UIE | VRTC_B_AIE)) && !(b & VRTC_B_SET)) {
			uint64_t k = (c / VRTC_CLOCK_HZ + 1) * VRTC_CLOCK_HZ;

			if (!next || k < next)
				next = k;
		}
	}
	vdev_timer_set(&r->timer, next ? tsc_of_clock(r, next) : 0);
}

void vrtc_update(struct vrtc *r, uint64_t now)
{
	advance(r, now);
	rearm(r, now);
}

static void timer_fire(void *dev, uint64_t now)
{
	vrtc_update(dev, now);
}

/* --- registers ---------------------------------------------------------------------------------- */

static bool is_time_reg(unsigned reg)
{
	return (reg <= VRTC_YEAR && !(reg & 1 && reg < VRTC_DAY_OF_WEEK)) || reg == VRTC_CENTURY;
}

static uint8_t read_reg(struct vrtc *r, unsigned reg, uint64_t now)
{
	uint8_t b = r->cmos[VRTC_REG_B], regs[10], century, v;

	if (is_time_reg(reg)) {
		if (b & VRTC_B_SET)
			return reg == VRTC_CENTURY ? r->set_century : r->set_regs[reg];
		time_regs(vrtc_seconds(r, now), b, regs, &century);
		return reg == VRTC_CENTURY ? century : regs[reg];
	}
	switch (reg) {
	case VRTC_REG_A:
		v = r->cmos[VRTC_REG_A] & ~VRTC_A_UIP;
		if (!(b & VRTC_B_SET) && clocks(r, now) % VRTC_CLOCK_HZ >= VRTC_CLOCK_HZ - UIP_CLOCKS)
			v |= VRTC_A_UIP;
		return v;
	case VRTC_REG_C:
		v = r->flags | (irqf(r) ? VRTC_C_IRQF : 0);
		r->flags = 0;
		update_irq(r);
		return v;
	case VRTC_REG_D:
		return VRTC_D_VRT;
	}
	return r->cmos[reg];
}

static void write_reg(struct vrtc *r, unsigned reg, uint8_t v, uint64_t now)
{
	uint8_t b = r->cmos[VRTC_REG_B], regs[10], century;

	if (is_time_reg(reg)) {
		if (b & VRTC_B_SET) {
			if (reg == VRTC_CENTURY)
				r->set_century = v;
			else
				r->set_regs[reg] = v;
			return;
		}
		time_regs(vrtc_seconds(r, now), b, regs, &century);
		if (reg == VRTC_CENTURY)
			century = v;
		else
			regs[reg] = v;
		commit_time(r, regs, century, b, now);
		return;
	}
	switch (reg) {
	case VRTC_REG_A:
		r->cmos[reg] = v & ~VRTC_A_UIP;
		return;
	case VRTC_REG_B:
		if (v & VRTC_B_SET)
			v &= ~VRTC_B_UIE;                        /* SET clears UIE (datasheet, register B) */
		if ((v & VRTC_B_SET) && !(b & VRTC_B_SET)) {
			time_regs(vrtc_seconds(r, now), v, r->set_regs, &r->set_century);
		} else if (!(v & VRTC_B_SET) && (b & VRTC_B_SET)) {
			commit_time(r, r->set_regs, r->set_century, b, now);
		}
		r->cmos[reg] = v;
		update_irq(r);
		return;
	case VRTC_REG_C:
	case VRTC_REG_D:
		return;                                          /* read-only */
	}
	r->cmos[reg] = v;
}

enum vdev_result vrtc_access(struct vrtc *r, struct vdev_access *a, uint64_t now)
{
	uint64_t out = 0;

	/* A wider access is that many byte accesses to consecutive ports, as the ISA bus splits it. */
	for (unsigned i = 0; i < a->size && i < 8; i++) {
		uint64_t port = a->addr + i;
		uint8_t byte = (uint8_t)(a->value >> (8 * i)), v = 0xff;

		if (port == VRTC_PORT_INDEX) {
			if (a->write) {
				r->index = byte & 0x7f;
				r->nmi_masked = byte & 0x80;
			}
		} else if (port == VRTC_PORT_DATA) {
			advance(r, now);
			if (a->write)
				write_reg(r, r->index, byte, now);
			else
				v = read_reg(r, r->index, now);
			rearm(r, now);
		}
		out |= (uint64_t)v << (8 * i);
	}
	if (!a->write)
		a->value = out;
	return VDEV_DONE;
}

static enum vdev_result rtc_pio(void *dev, struct vdev_access *a)
{
	struct vrtc *r = dev;

	return vrtc_access(r, a, r->clock ? r->clock(r->clock_ctx) : tsc_of_clock(r, r->last_clock));
}

void vrtc_set_clock(struct vrtc *r, uint64_t (*clock)(void *ctx), void *ctx)
{
	r->clock = clock;
	r->clock_ctx = ctx;
}

bool vrtc_nmi_masked(const struct vrtc *r)
{
	return r->nmi_masked;
}

/* --- set-up ------------------------------------------------------------------------------------- */

static void put16(uint8_t *cmos, unsigned at, uint64_t v)
{
	cmos[at] = (uint8_t)v;
	cmos[at + 1] = (uint8_t)(v >> 8);
}

void vrtc_init(struct vrtc *r, uint64_t epoch_seconds, uint64_t now_tsc, uint64_t tsc_khz, uint64_t ram_bytes,
	       struct irq_line irq8)
{
	uint64_t ext = 0, high = 0, above4g;
	unsigned sum = 0;

	memset(r, 0, sizeof(*r));
	r->epoch = epoch_seconds;
	r->base_tsc = now_tsc;
	/* The chain needs more than 32768 TSC ticks a second; a missing frequency counts as 1 GHz. */
	r->tsc_hz = tsc_khz > VRTC_CLOCK_HZ / 1000 ? tsc_khz * 1000 : 1000000000ull;
	r->irq = irq8;
	r->timer.fire = timer_fire;
	r->timer.dev = r;
	r->cmos[VRTC_REG_A] = 0x26;                       /* DV = 010 (32.768 kHz), RS = 0110 (1024 Hz) */
	r->cmos[VRTC_REG_B] = VRTC_B_24H;

	/* The PC BIOS's memory-size bytes (IBM AT technical reference, CMOS RAM map). */
	put16(r->cmos, 0x15, 640);                        /* base memory, KiB */
	if (ram_bytes > MIB)
		ext = (ram_bytes - MIB < 63 * MIB ? ram_bytes - MIB : 63 * MIB) / KIB;
	put16(r->cmos, 0x17, ext);                        /* extended memory, KiB (as POST found it) */
	put16(r->cmos, 0x30, ext);                        /* the same, as the BIOS reports it */
	/* Above 16 MiB up to the hole below 4 GiB (gmem/layout.h), then from 4 GiB: SeaBIOS reads
	 * 0x5b-0x5d as RAM above 4 GiB in 64 KiB units, as QEMU writes it. */
	if (gmem_low_end(ram_bytes) > 16 * MIB)
		high = (gmem_low_end(ram_bytes) - 16 * MIB) / (64 * KIB);
	put16(r->cmos, 0x34, high > 0xffff ? 0xffff : high); /* above 16 MiB, 64 KiB units */
	above4g = (ram_bytes - gmem_low_end(ram_bytes)) / (64 * KIB);
	put16(r->cmos, 0x5b, above4g);
	r->cmos[0x5d] = (uint8_t)(above4g >> 16);
	for (unsigned i = 0x10; i < CMOS_CHECKSUM_HI; i++)
		sum += r->cmos[i];
	r->cmos[CMOS_CHECKSUM_HI] = (uint8_t)(sum >> 8);   /* big endian, unlike the size words */
	r->cmos[CMOS_CHECKSUM_HI + 1] = (uint8_t)sum;
}

int vrtc_register(struct vrtc *r, struct vdev_bus *bus)
{
	int err = vdev_add_pio(bus, VRTC_PORT_INDEX, 2, rtc_pio, r, "rtc");

	return err ? err : vdev_add_timer(bus, &r->timer);
}
