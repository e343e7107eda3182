/* The device table of one guest (vdev/vdev.h): registration, dispatch, and the empty bus. */
#include "console/printk.h"
#include "lib/errno.h"
#include "lib/format.h"
#include "lib/string.h"
#include "vdev/lapic.h"
#include "vdev/vdev.h"

uint64_t (*vdev_clock)(void);
uint64_t vdev_clock_hz;

void vdev_bus_init(struct vdev_bus *bus, const char *owner, struct vlapic_group *lapics)
{
	memset(bus, 0, sizeof(*bus));
	bus->owner = owner;
	bus->lapics = lapics;
	bus->print.tokens = VDEV_PRINT_BURST;
	bus->print.last = vdev_clock ? vdev_clock() : 0;
}

/* The bytes earned since the last count, up to the burst (lock held). A silence longer than the
 * burst takes to earn (2.8 s) counts as 4 s: the bucket is full either way, and the product below
 * cannot wrap (it would after 12 days at 3 GHz). */
static void earn(struct vdev_print_limit *p)
{
	uint64_t now = vdev_clock(), d = now > p->last ? now - p->last : 0, add;

	if (d > 4 * vdev_clock_hz) {
		d = 4 * vdev_clock_hz;
		p->last = now - d;
	}
	add = d * VDEV_PRINT_RATE / vdev_clock_hz;
	if (add) {      /* the ticks of whole bytes only: the rest counts towards the next */
		p->last += add * vdev_clock_hz / VDEV_PRINT_RATE;
		/* tokens <= VDEV_PRINT_BURST always; from a debt it takes longer to fill */
		p->tokens = add >= (uint64_t)(VDEV_PRINT_BURST - p->tokens) ? VDEV_PRINT_BURST
									   : p->tokens + (int64_t)add;
	}
}

bool vdev_may_print(struct vdev_bus *bus, unsigned bytes)
{
	struct vdev_print_limit *p = &bus->print;
	bool ok, say = false;

	if (!vdev_clock || !vdev_clock_hz)
		return true;
	spin_lock(&p->lock);
	earn(p);
	ok = p->tokens >= (int64_t)bytes;
	if (ok) {
		p->tokens -= bytes;
	} else {
		p->dropped_lines++;
		p->dropped_bytes += bytes;
		say = !p->said;
		p->said = true;
	}
	spin_unlock(&p->lock);
	if (say)
		pr_info("hv: guest %s: output over its limit (%u bytes/s after %u at once): lines dropped, "
			"counted when it ends\n", bus->owner, VDEV_PRINT_RATE, VDEV_PRINT_BURST);
	return ok;
}

bool vdev_may_draw(struct vdev_bus *bus)
{
	struct vdev_print_limit *p = &bus->print;
	bool ok;

	if (!vdev_clock || !vdev_clock_hz)
		return true;
	spin_lock(&p->lock);
	earn(p);
	ok = p->tokens > 0;
	spin_unlock(&p->lock);
	return ok;
}

void vdev_drew(struct vdev_bus *bus, size_t bytes)
{
	struct vdev_print_limit *p = &bus->print;

	if (!vdev_clock || !vdev_clock_hz || !bytes)
		return;
	spin_lock(&p->lock);
	p->tokens -= (int64_t)bytes;      /* a tail is a few hundred bytes at most: no overflow */
	spin_unlock(&p->lock);
}

static int add(struct vdev_region *r, unsigned *n, uint64_t base, uint64_t len, vdev_handler handler,
	       void *dev, const char *name)
{
	if (*n == VDEV_MAX_REGIONS)
		return -ENOSPC;
	for (unsigned i = 0; i < *n; i++)
		if (base < r[i].base + r[i].len && r[i].base < base + len)
			return -EEXIST;
	r[(*n)++] = (struct vdev_region){ base, len, handler, dev, name };
	return 0;
}

int vdev_add_pio(struct vdev_bus *bus, uint64_t base, uint64_t len, vdev_handler handler, void *dev,
		 const char *name)
{
	return add(bus->pio, &bus->npio, base, len, handler, dev, name);
}

int vdev_add_mmio(struct vdev_bus *bus, uint64_t base, uint64_t len, vdev_handler handler, void *dev,
		  const char *name)
{
	return add(bus->mmio, &bus->nmmio, base, len, handler, dev, name);
}

static inline __attribute__((always_inline)) const struct vdev_region *find(const struct vdev_region *r, unsigned n,
									      const struct vdev_access *a)
{
	for (unsigned i = 0; i < n; i++)
		if (a->addr >= r[i].base && a->addr + a->size <= r[i].base + r[i].len)
			return &r[i];
	return NULL;
}

void vdev_bus_on_timers_moved(struct vdev_bus *bus, void (*fn)(void *arg), void *arg)
{
	bus->timers_moved = fn;
	bus->timers_arg = arg;
}

/* One access to a device, under the bus lock; its timer may have moved (vdev_timer_set told the
 * keeper, vCPU 0, which looks at its next exit); an access by another vCPU that brought a deadline
 * forward tells it now. */
static inline __attribute__((always_inline)) enum vdev_result call(struct vdev_bus *bus, const struct vdev_region *r,
								     struct vdev_access *a)
{
	enum vdev_result res;
	bool sooner = false;

	spin_lock(&bus->lock);
	res = r->handler(r->dev, a);
	for (unsigned i = 0; a->vcpu && bus->timers_moved && i < bus->ntimers; i++) {
		uint64_t d = bus->timers[i]->deadline;

		if (d && (!bus->timers_next || d < bus->timers_next)) {
			bus->timers_next = d;        /* told once: the keeper recomputes it anyway */
			sooner = true;
		}
	}
	spin_unlock(&bus->lock);
	if (sooner)
		bus->timers_moved(bus->timers_arg);
	return res;
}

enum vdev_result vdev_pio(struct vdev_bus *bus, struct vdev_access *a)
{
	const struct vdev_region *r = find(bus->pio, bus->npio, a);
	uint16_t port = a->addr;

	if (r)
		return call(bus, r, a);
	/* Nothing there: reads float high, writes vanish, as on an empty ISA bus. */
	if (!(bus->ports_logged[port / 8] & (1 << (port % 8)))) {
		bus->ports_logged[port / 8] |= 1 << (port % 8);
		if (vdev_may_print(bus, 80))                 /* about the line's length */
			pr_info("hv: guest %s: %s port 0x%x (no device; %s), reported once\n", bus->owner,
			a->write ? "write to" : "read from", port, a->write ? "ignored" : "reads as all ones");
	}
	if (!a->write)
		a->value = a->size == 4 ? 0xffffffffu : (1u << (a->size * 8)) - 1;
	return VDEV_DONE;
}

enum vdev_result vdev_mmio(struct vdev_bus *bus, struct vdev_access *a, uint64_t now)
{
	struct vlapic *l = bus->lapics && a->vcpu < bus->lapics->count ? bus->lapics->member[a->vcpu] : NULL;
	const struct vdev_region *r;

	if (l && vlapic_mmio_active(l) && a->addr >= vlapic_mmio_base(l) &&
	    a->addr < vlapic_mmio_base(l) + 0x1000) {
		uint32_t off = a->addr - vlapic_mmio_base(l);
		int err = a->write ? vlapic_mmio_write(l, off, a->size, a->value, now)
				   : vlapic_mmio_read(l, off, a->size, &a->value, now);

		if (!err)
			return VDEV_DONE;
		snformat(bus->why, sizeof(bus->why), "local APIC %s of %u bytes at offset 0x%x is not supported",
			 a->write ? "write" : "read", a->size, off);
		return VDEV_BAD_ACCESS;
	}
	if ((r = find(bus->mmio, bus->nmmio, a)))
		return call(bus, r, a);
	return VDEV_UNCLAIMED;
}

void vdev_bus_set_keeper(struct vdev_bus *bus, uint32_t *work, uint32_t bit)
{
	bus->keeper_bit = bit;
	__atomic_store_n(&bus->keeper_work, work, __ATOMIC_RELEASE);
}

static void timers_changed(struct vdev_bus *bus)
{
	uint32_t *w = __atomic_load_n(&bus->keeper_work, __ATOMIC_ACQUIRE);

	if (bus->keeping)                  /* a timer the keeper fires re-arms: it takes that in now */
		return;
	bus->timers_changed = true;
	if (w)                             /* vcpu/work.h: the flag, then the bit with a locked OR */
		__atomic_fetch_or(w, bus->keeper_bit, __ATOMIC_SEQ_CST);
}

int vdev_add_timer(struct vdev_bus *bus, struct vdev_timer *t)
{
	if (bus->ntimers == VDEV_MAX_TIMERS)
		return -ENOSPC;
	t->bus = bus;
	bus->timers[bus->ntimers++] = t;
	timers_changed(bus);          /* the first vdev_timers_update takes its deadline in */
	return 0;
}

void vdev_timer_set(struct vdev_timer *t, uint64_t deadline)
{
	if (deadline == t->deadline)
		return;
	t->deadline = deadline;
	if (t->bus)                   /* not before vdev_add_timer: that one tells */
		timers_changed(t->bus);
}

uint64_t vdev_timers_update(struct vdev_bus *bus, uint64_t now)
{
	uint64_t next = 0;

	if (!bus->ntimers)
		return 0;
	spin_lock(&bus->lock);
	bus->keeping = true;
	for (unsigned i = 0; i < bus->ntimers; i++) {
		struct vdev_timer *t = bus->timers[i];

		if (t->deadline && t->deadline <= now)
			t->fire(t->dev, now);        /* it re-arms itself (a new deadline) or not (0) */
		if (t->deadline && (!next || t->deadline < next))
			next = t->deadline;
	}
	bus->timers_next = next;
	bus->keeping = false;
	bus->timers_changed = false;
	spin_unlock(&bus->lock);
	return next;
}
