/* The virtual 8254 PIT of a PC at ports 0x40-0x43, with port 0x61 (NMI status and control: channel
 * 2's gate and output, the speaker and refresh bits). Intel 82C54 datasheet; what is and is not
 * emulated is listed at the top of vdev/pit.c. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vdev/irq.h"
#include "vdev/vdev.h"

#define VPIT_BASE    0x40        /* counters 0-2 at 0x40-0x42, control word at 0x43 */
#define VPIT_PORT61  0x61        /* NMI status and control (PC/AT "port B") */
#define VPIT_HZ      1193182u    /* the PC's counter clock: 14.31818 MHz / 12 */

/* Port 0x61 bits. */
#define VPIT_61_GATE2    0x01    /* channel 2 gate (R/W) */
#define VPIT_61_SPKR     0x02    /* speaker data enable (R/W) */
#define VPIT_61_WBITS    0x0f    /* bits a write sets (2, 3: parity and I/O check enables) */
#define VPIT_61_REFRESH  0x10    /* toggles every 15.085 us (each DRAM refresh request) */
#define VPIT_61_OUT2     0x20    /* channel 2 output */

/* One counter. Counting time is kept in PIT ticks; `elapsed` ticks since the count was loaded are
 * held + (now_ticks - start) while it runs. */
struct vpit_channel {
	uint8_t mode;            /* 0-5 (control word bits 3:1; 6 and 7 read as 2 and 3) */
	uint8_t rw;              /* access: 1 LSB, 2 MSB, 3 LSB then MSB */
	bool bcd;                /* count in BCD (0-9999) */
	bool gate;
	bool loaded;             /* a count was written since the control word */
	bool armed;              /* counting from `reload` (modes 1, 5: triggered by the gate) */
	bool running;            /* time advances its count (armed and not stopped by the gate) */
	uint32_t reload;         /* N: 1..65536 (a written 0 is the largest count) */
	uint64_t start, held;
	uint64_t edges;          /* rising edges of OUT already reported (channel 0's IRQ) */
	uint8_t wlsb;            /* LSB waiting for its MSB */
	bool wflip;              /* the next count write is the MSB */
	bool rflip;              /* the next count read is the MSB */
	bool count_latched, status_latched;
	uint16_t latch;          /* the latched count */
	uint8_t status;          /* the latched status byte */
};

struct vpit {
	struct vpit_channel ch[3];
	uint64_t tsc_khz;        /* guest TSC frequency: the time base */
	struct irq_line irq0;    /* channel 0's OUT: pulsed on each rising edge */
	struct vdev_timer timer; /* deadline: channel 0's next rising edge */
	uint8_t port61;          /* the VPIT_61_WBITS written */
	uint64_t lost;           /* channel 0 edges coalesced into one IRQ (informative) */
	/* The time for port accesses, which carry none: guest TSC ticks. */
	uint64_t (*clock)(void *ctx);
	void *clock_ctx;
	uint64_t last_now;       /* the latest time seen (for accesses when no clock was set) */
	uint64_t refresh_now;    /* time of the last port 0x61 read */
	uint8_t refresh_flip;    /* extra refresh toggles, one per read that found no time passed */
};

/* Resets it: no counts written (channels idle, channel 0's output low until programmed), gate 2 off.
 * `tsc_khz`: the guest TSC frequency (outside 1000..10^9, e.g. 0, taken as 1 GHz). Port accesses
 * and the timer must be serialized by the caller (the bus lock). */
void vpit_init(struct vpit *p, uint64_t tsc_khz, struct irq_line irq0);
/* The time source of port accesses (the access record has no time): returns guest TSC ticks, e.g.
 * RDTSC while the guest's TSC is the host's. Without one, accesses see the time of the last timer
 * callback or vpit_io call. */
void vpit_set_clock(struct vpit *p, uint64_t (*clock)(void *ctx), void *ctx);
/* Registers ports 0x40-0x43 and 0x61 and channel 0's timer on `bus`. 0 or a negative error. */
int vpit_register(struct vpit *p, struct vdev_bus *bus);
/* One port access at guest TSC time `now` (what the registered handler does with the clock). */
enum vdev_result vpit_io(struct vpit *p, struct vdev_access *a, uint64_t now);
