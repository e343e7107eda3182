/* The virtual MC146818 real-time clock and CMOS memory of a PC at ports 0x70/0x71. Motorola MC146818A
 * datasheet; what is and is not emulated is listed at the top of vdev/rtc.c. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vdev/irq.h"
#include "vdev/vdev.h"

#define VRTC_PORT_INDEX 0x70     /* write: bit 7 NMI mask (1 = NMIs off), bits 6:0 register index */
#define VRTC_PORT_DATA  0x71     /* the selected register */
#define VRTC_IRQ        8        /* ISA IRQ of the RTC */

/* Registers (datasheet Figure 3, "Address map"). */
#define VRTC_SECONDS       0x00
#define VRTC_SECONDS_ALARM 0x01
#define VRTC_MINUTES       0x02
#define VRTC_MINUTES_ALARM 0x03
#define VRTC_HOURS         0x04  /* 12-hour mode: bit 7 PM */
#define VRTC_HOURS_ALARM   0x05
#define VRTC_DAY_OF_WEEK   0x06  /* 1 = Sunday */
#define VRTC_DAY_OF_MONTH  0x07
#define VRTC_MONTH         0x08
#define VRTC_YEAR          0x09  /* 0-99 */
#define VRTC_REG_A         0x0a
#define VRTC_REG_B         0x0b
#define VRTC_REG_C         0x0c
#define VRTC_REG_D         0x0d
#define VRTC_CENTURY       0x32  /* PC convention (ACPI FADT CENTURY field), same format as the year */

#define VRTC_A_UIP   0x80  /* update in progress (read-only) */
#define VRTC_A_DV    0x70  /* divider: 010 = 32.768 kHz time base, running */
#define VRTC_A_RS    0x0f  /* rate select of the periodic interrupt */
#define VRTC_B_SET   0x80  /* updates inhibited: the time may be set */
#define VRTC_B_PIE   0x40  /* periodic interrupt enable */
#define VRTC_B_AIE   0x20  /* alarm interrupt enable */
#define VRTC_B_UIE   0x10  /* update-ended interrupt enable */
#define VRTC_B_SQWE  0x08  /* square-wave enable (stored only) */
#define VRTC_B_DM    0x04  /* data mode: 1 binary, 0 BCD */
#define VRTC_B_24H   0x02  /* 1: 24-hour mode, 0: 12-hour mode */
#define VRTC_B_DSE   0x01  /* daylight saving enable (stored only) */
#define VRTC_C_IRQF  0x80  /* IRQF = PF & PIE | AF & AIE | UF & UIE: the IRQ output is asserted */
#define VRTC_C_PF    0x40  /* periodic flag */
#define VRTC_C_AF    0x20  /* alarm flag */
#define VRTC_C_UF    0x10  /* update-ended flag */
#define VRTC_D_VRT   0x80  /* valid RAM and time */

#define VRTC_CLOCK_HZ 32768u /* the time base: the divider chain counts these */

/* The caller serializes every call (one lock per guest platform: the device bus lock). */
struct vrtc {
	uint8_t index;           /* bits 6:0 of the last index write */
	bool nmi_masked;         /* bit 7 of the last index write */
	uint8_t cmos[128];       /* alarms (1, 3, 5), A, B and memory 0x0E-0x7F as stored; the time
	                            registers and the century live in `offset` (or `set_regs` while SET) */
	uint8_t flags;           /* register C's PF, AF, UF */
	bool irq_level;          /* what the IRQ line was last told */
	uint8_t set_regs[10];    /* the time registers as the guest reads and writes them while SET = 1 */
	uint8_t set_century;

	/* Time: guest seconds = epoch + whole host seconds since base_tsc + offset. */
	uint64_t epoch;          /* seconds since 1970-01-01 00:00 UTC at base_tsc */
	uint64_t base_tsc;       /* the guest TSC at that instant: divider-chain clock 0 */
	uint64_t tsc_hz;         /* guest TSC frequency */
	int64_t offset;          /* seconds the guest moved its clock by */
	uint64_t last_clock;     /* divider-chain clock up to which flags have been accounted */

	struct irq_line irq;     /* IRQ 8 */
	struct vdev_timer timer; /* next periodic, update-ended or alarm event while one can raise IRQF */
	/* The guest's TSC now, for port accesses (the platform sets it: RDTSC); NULL: the time of the
	 * latest timer run. */
	uint64_t (*clock)(void *ctx);
	void *clock_ctx;
};

/* The power-on state as a PC BIOS leaves it: A = 0x26 (32.768 kHz, 1024 Hz rate), B = 0x02 (24 h,
 * BCD, no interrupts), C = 0, D = VRT, index 0 with NMIs enabled, memory zero but for the size bytes
 * of a guest with `ram_bytes` of RAM (0x15-0x18, 0x30-0x31, 0x34-0x35) and their checksum. The time
 * is `epoch_seconds` (UTC) at guest TSC `now_tsc` and runs with the TSC at `tsc_khz`. */
void vrtc_init(struct vrtc *r, uint64_t epoch_seconds, uint64_t now_tsc, uint64_t tsc_khz, uint64_t ram_bytes,
	       struct irq_line irq8);
/* The guest TSC source for port accesses (as vpit_set_clock): the platform passes its RDTSC. */
void vrtc_set_clock(struct vrtc *r, uint64_t (*clock)(void *ctx), void *ctx);
/* Claims ports 0x70-0x71 and adds the device timer on `bus`. 0 or a negative error. */
int vrtc_register(struct vrtc *r, struct vdev_bus *bus);
/* A port access at guest TSC `now` (the registered handler calls it with r->clock's time). */
enum vdev_result vrtc_access(struct vrtc *r, struct vdev_access *a, uint64_t now);
/* Brings flags and the IRQ line up to `now` and re-arms the timer (the timer's `fire`). */
void vrtc_update(struct vrtc *r, uint64_t now);
/* Bit 7 of the latest index-port write: the guest wants NMIs masked (the VMX layer may honour it). */
bool vrtc_nmi_masked(const struct vrtc *r);
/* The guest's current time in seconds since the epoch (UTC as the host gave it, plus its changes). */
int64_t vrtc_seconds(const struct vrtc *r, uint64_t now);
