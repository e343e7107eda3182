/* The device interface: each guest's table of emulated port and MMIO regions, and the one place
 * where an access nobody claimed gets what an empty PC bus gives.
 *
 * vmx/ decodes an I/O or MMIO exit into a struct vdev_access and hands it here; a device model
 * registered its range at guest creation and answers it. Devices never touch the VMCS: they change
 * their own state and raise interrupts through the local APICs (vdev/lapic.h). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "arch/x86/spinlock.h"

struct vlapic_group;

struct vdev_access {
	uint64_t addr;        /* port, or guest-physical address */
	unsigned size;        /* 1, 2, 4 (8 for MMIO) */
	bool write;
	uint64_t value;       /* written value, or where a read's result goes */
	unsigned vcpu;        /* which vCPU of the guest made it */
};

enum vdev_result {
	VDEV_DONE,            /* emulated */
	VDEV_UNCLAIMED,       /* no device there (MMIO only: ports answer as an empty bus) */
	VDEV_GUEST_EXIT,      /* the guest asked to end (debug-exit port): value is its exit code */
	VDEV_BAD_ACCESS,      /* the device cannot take this access (size, alignment): stop the guest, bus->why */
	VDEV_GUEST_RESET,     /* the guest reset its machine (bus->why says how): it ends, reported as a reset */
};

typedef enum vdev_result (*vdev_handler)(void *dev, struct vdev_access *a);

struct vdev_region {
	uint64_t base, len;
	vdev_handler handler;
	void *dev;
	const char *name;
};

/*
 * What one guest can make the hypervisor print: its UART's lines (and HC_PUTCHAR's) and the
 * hypervisor's lines about what it did (an unclaimed port's first use). A token bucket in TSC time:
 * VDEV_PRINT_RATE bytes a second, half of what the console's 115200-baud wire carries (11,520 bytes/s),
 * so one guest printing without pause leaves the other half to the hypervisor and the other guests;
 * VDEV_PRINT_BURST at once, 1.4 s of the wire, more than a kernel's boot banner (Debian's Linux with
 * `quiet` prints about 1 KiB; without, its 25-30 KiB come over seconds of emulated time). Over it,
 * whole lines are dropped and counted; the first drop is said once (hv: guest NAME: output over its
 * limit ...), the count when the guest ends. The lines that say what happened to a guest (started,
 * exited, stopped, exits...) are the hypervisor's and never count.
 * The focused guest's unfinished line (its UART's tail, console_set_tail) comes out of the same
 * budget: every byte the guest writes may change it, and a change other than growth (a backspace, a
 * line of the same length) erases and redraws the whole tail, so 'x', '' in a loop would fill the
 * console ring that every printk on every CPU waits for. Its cost is only known once drawn: a tail
 * may be drawn while the budget is above 0 (vdev_may_draw), and what it put on the wire is charged
 * after (vdev_drew), which may leave the budget in debt by about one tail (the UART's lock keeps
 * its tails one at a time). Until the debt is paid no line prints (a line needs its whole size) and
 * no tail changes; a tail not drawn is never counted as a dropped line, and shows as it is by then
 * at the next change the budget allows.
 */
#define VDEV_PRINT_RATE  5760
#define VDEV_PRINT_BURST 16384
struct vdev_print_limit {
	spinlock_t lock;                           /* any vCPU of the guest */
	int64_t tokens;                            /* bytes it may print now; below 0, a tail's debt */
	uint64_t last;                             /* TSC when counted */
	uint64_t dropped_lines, dropped_bytes;
	bool said;
};
/* The TSC and its rate, for the limit (set by the core; NULL: no limit, as in host tests that leave it). */
extern uint64_t (*vdev_clock)(void);
extern uint64_t vdev_clock_hz;

#define VDEV_MAX_REGIONS 16
#define VDEV_MAX_TIMERS 8

/* A device's timer (PIT channel 0, RTC periodic interrupt, UART transmit pacing...): `fire` runs
 * once `deadline` (guest TSC) has passed; it may set a new deadline (0 = none). Devices keep their
 * time in guest TSC ticks. Timers run on the CPU of the guest's vCPU 0, under the bus lock. */
struct vdev_timer {
	uint64_t deadline;           /* written by vdev_timer_set (which tells the keeper) */
	void (*fire)(void *dev, uint64_t now);
	void *dev;
	struct vdev_bus *bus;        /* vdev_add_timer */
};

struct vdev_bus {
	const char *owner;                         /* the guest's name, for the log */
	spinlock_t lock;                           /* one device access, timer or line change at a time
						      (vCPUs on several CPUs share the devices); the
						      local APICs are not behind it */
	struct vdev_region pio[VDEV_MAX_REGIONS], mmio[VDEV_MAX_REGIONS];
	unsigned npio, nmmio;
	struct vlapic_group *lapics;               /* per-vCPU xAPIC pages, wherever each vCPU put its base */
	struct vdev_timer *timers[VDEV_MAX_TIMERS];
	unsigned ntimers;
	volatile bool timers_changed;              /* a timer has a new deadline (vdev_timer_set) */
	uint32_t *keeper_work;                     /* the keeper's work word, told with keeper_bit (below) */
	uint32_t keeper_bit;
	bool keeping;                              /* the keeper is in vdev_timers_update (under the lock) */
	uint64_t timers_next;                      /* the earliest deadline the timer keeper took (0 none) */
	void (*timers_moved)(void *arg);           /* another vCPU moved a deadline before it */
	void *timers_arg;
	uint8_t ports_logged[65536 / 8];           /* an unclaimed port's first use was reported */
	struct vdev_print_limit print;             /* what the guest can make the hypervisor print */
	char why[120];                             /* VDEV_BAD_ACCESS: what was wrong */
};

void vdev_bus_init(struct vdev_bus *bus, const char *owner, struct vlapic_group *lapics);
/* Registers [base, base+len) for `handler`. 0, or -ENOSPC / -EEXIST (overlap). */
int vdev_add_pio(struct vdev_bus *bus, uint64_t base, uint64_t len, vdev_handler handler, void *dev,
		 const char *name);
int vdev_add_mmio(struct vdev_bus *bus, uint64_t base, uint64_t len, vdev_handler handler, void *dev,
		  const char *name);
/* The device timers are kept by one vCPU (vCPU 0: vdev_timers_update at its exits and wake-ups).
 * When an access by another vCPU moves a deadline before the one the keeper last took, fn(arg) lets
 * the keeper know (it may be running or halted until its old deadline). */
void vdev_bus_on_timers_moved(struct vdev_bus *bus, void (*fn)(void *arg), void *arg);
/* The keeper's "work before entry" word (vcpu/work.h; a plain word here: vdev/ sits below vcpu/):
 * every new deadline sets `bit` there, so the keeper's next VM entry takes it in, and an exit that
 * moved no deadline (most device accesses) costs the keeper nothing. */
void vdev_bus_set_keeper(struct vdev_bus *bus, uint32_t *work, uint32_t bit);
/* Registers a device timer (its deadline may change at any time under the bus lock). 0 or -ENOSPC. */
int vdev_add_timer(struct vdev_bus *bus, struct vdev_timer *t);
/* A device's timer gets `deadline` (0 = none), under the bus lock: if that is new, bus->timers_changed
 * and the keeper's work bit say so (the flag before the bit: whoever sees the bit sees the flag). */
void vdev_timer_set(struct vdev_timer *t, uint64_t deadline);
/* Fires every device timer whose deadline is at or before `now` (under the bus lock); returns the
 * earliest deadline left (0 = none). Until it is due or bus->timers_changed says a deadline moved,
 * the caller may keep that deadline instead of calling again. */
uint64_t vdev_timers_update(struct vdev_bus *bus, uint64_t now);

/* Whether a line of `bytes` that the guest caused may be printed now; if not, it is counted as dropped
 * (the first drop is said). */
bool vdev_may_print(struct vdev_bus *bus, unsigned bytes);
/* Whether the guest's tail may be drawn now (budget above 0); never counted as dropped. */
bool vdev_may_draw(struct vdev_bus *bus);
/* A tail drawn put `bytes` on the wire: charged to the budget, which may go into debt. */
void vdev_drew(struct vdev_bus *bus, size_t bytes);

/* Port I/O: the device's answer, or for an unclaimed port what an empty ISA bus gives (reads all
 * ones, writes vanish; the first use of each port reported once, within the guest's print limit).
 * Never VDEV_UNCLAIMED. */
enum vdev_result vdev_pio(struct vdev_bus *bus, struct vdev_access *a);
/* MMIO at a guest-physical address that is not RAM: the vCPU's own local APIC page first (SDM Vol.
 * 3A, 11.4.1: each CPU's APIC answers at its own base), then the registered regions. */
enum vdev_result vdev_mmio(struct vdev_bus *bus, struct vdev_access *a, uint64_t now);
