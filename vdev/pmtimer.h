/* The ACPI fixed hardware of a guest's PC: the PM1a event and control blocks and the power management
 * timer, in one block of ports that the FADT names (PM1a_EVT_BLK, PM1a_CNT_BLK, PM_TMR_BLK). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vdev/irq.h"
#include "vdev/vdev.h"

/*
 * The block at `base` (ACPI 6.3, 4.8.4 "Fixed Hardware Registers"; any access of 1, 2 or 4 bytes
 * inside it, little-endian, as on a chipset's ACPI I/O space):
 *
 *   base + 0  PM1a_STS  16 bits, write 1 to clear   15      14..11  10..8  5..1  0
 *                                                   WAK_STS  -       -      -     TMR_STS
 *   base + 2  PM1a_EN   16 bits, read/write: TMR_EN 0, GBL_EN 5, PWRBTN_EN 8, SLPBTN_EN 9, RTC_EN 10,
 *                       PCIEXP_WAKE_DIS 14 (kept: an OS checks they read back; only TMR_EN has a source)
 *   base + 4  PM1a_CNT  16 bits: SCI_EN 0 (reads 1: ACPI mode always, no SMI_CMD), BM_RLD 1,
 *                       GBL_RLS 2 (write-only, no firmware to tell), SLP_TYP 12:10, SLP_EN 13
 *                       (write-only): SLP_EN with SLP_TYP = s5_typ powers the guest off; another
 *                       sleep type returns at once with WAK_STS set, as if woken
 *   base + 6  reserved (reads 0)
 *   base + 8  PM_TMR    32 bits read-only: 3.579545 MHz from the guest TSC (FADT TMR_VAL_EXT)
 *
 * The SCI (ISA IRQ `sci`, level) is asserted while TMR_STS and TMR_EN are both set: TMR_STS sets
 * when the timer's bit 31 changes (every 2^31 ticks, 10 minutes).
 */
#define VPM_BLOCK_LEN  12
#define VPM_EVT        0              /* PM1a_EVT_BLK: base + 0, PM1_EVT_LEN 4 */
#define VPM_CNT        4              /* PM1a_CNT_BLK: base + 4, PM1_CNT_LEN 2 */
#define VPM_TMR        8              /* PM_TMR_BLK:   base + 8, PM_TMR_LEN 4 */
#define VPM_TMR_HZ     3579545u       /* ACPI 6.3, 4.8.2.1: the PM timer's frequency */

#define VPM_TMR_STS    (1u << 0)
#define VPM_WAK_STS    (1u << 15)
#define VPM_EN_BITS    0x4721u        /* TMR_EN, GBL_EN, PWRBTN_EN, SLPBTN_EN, RTC_EN, PCIEXP_WAKE_DIS */
#define VPM_SCI_EN     (1u << 0)
#define VPM_CNT_RW     0x1c02u        /* BM_RLD, SLP_TYP */
#define VPM_GBL_RLS    (1u << 2)
#define VPM_SLP_TYP(v) (((v) >> 10) & 7)
#define VPM_SLP_EN     (1u << 13)

struct vpm {
	uint16_t base;
	uint8_t s5_typ;              /* the SLP_TYP value \_S5 gives (the DSDT's) */
	uint16_t sts, en, cnt;       /* WAK_STS; the enables; BM_RLD and SLP_TYP as written */
	uint64_t tmr_epoch;          /* timer ticks >> 31 when TMR_STS was last cleared */
	uint64_t tsc_khz;
	struct irq_line sci;
	bool sci_level;
	struct vdev_timer timer;     /* with TMR_EN: the timer's next bit-31 change */
	uint64_t (*clock)(void *ctx);
	void *clock_ctx;
	uint64_t last_now;           /* time never goes back for the device (vCPUs' TSC reads differ) */
};

/* Resets it (status clear, enables off, SCI_EN set) for ports at `base`, SCI on `sci`, the timer
 * counting from the guest TSC `tsc_khz` (outside 1000..10^9 taken as 1 GHz) read by clock(ctx). */
void vpm_init(struct vpm *p, uint16_t base, uint8_t s5_typ, uint64_t tsc_khz, struct irq_line sci,
	      uint64_t (*clock)(void *ctx), void *ctx);
/* Registers the port block and the timer. 0 or a negative error. */
int vpm_register(struct vpm *p, struct vdev_bus *bus);
/* One access at guest TSC time `now` (what the registered handler does with the clock).
 * VDEV_GUEST_EXIT with value 0 when the guest enters S5. */
enum vdev_result vpm_io(struct vpm *p, struct vdev_access *a, uint64_t now);
/* The PM timer's count at guest TSC `now` (all 32 bits). */
uint32_t vpm_timer_at(const struct vpm *p, uint64_t now);
