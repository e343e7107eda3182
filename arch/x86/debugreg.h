/* The debug status and control registers, DR6 and DR7. SDM Vol. 3B, 18.2.3 and 18.2.4. */
#pragma once
#include <stdint.h>

/* DR6: what caused the last #DB (SDM Vol. 3B, 18.2.3, Figure 18-1). The CPU sets B0-B3, BD, BS and
 * BT and never clears them (only B0-B3 may be cleared by later #DBs); BLD (bit 11) and RTM (bit 16)
 * are active low: 1 unless a bus-lock or RTM #DB cleared them. Bits 4-10 and 17-31 read as 1,
 * bit 12 as 0. */
#define DR6_B0_3          0x0000000fu  /* breakpoint conditions 0-3 met */
#define DR6_BLD           (1u << 11)   /* 0: a bus lock was detected (active low) */
#define DR6_BD            (1u << 13)   /* the next instruction accesses a debug register (DR7.GD) */
#define DR6_BS            (1u << 14)   /* single step (RFLAGS.TF) */
#define DR6_BT            (1u << 15)   /* task switch to a TSS with its T flag set */
#define DR6_RTM           (1u << 16)   /* 0: #DB or #BP inside an RTM region (active low) */
#define DR6_ACTIVE_LOW    0xffff0ff0u  /* the value with no condition reported: the reset value */

/* DR7 (SDM Vol. 3B, 18.2.4, Figure 18-1). */
#define DR7_GD            (1u << 13)   /* general detect: MOV DR raises #DB; cleared on entry to #DB */
#define DR7_RESET         0x400u       /* bit 10 reads as 1 */
#define DR7_ZEROS         0xd800u      /* bits 11, 12, 14 and 15 read as 0 */

/* DR6 after a #DB that reports `payload`, given DR6 before it. `payload` has the format of the
 * exit qualification of a #DB VM exit and of the pending-debug-exceptions field (SDM Vol. 3C,
 * 28.2.1, Table 28-1; 25.4.2): the DR6 bits the #DB sets, with BLD and RTM active high. The CPU
 * does not write DR6 when the #DB causes a VM exit (SDM Vol. 3C, 28.1), nor when VM entry injects
 * vector 1 (27.6.1.1): the hypervisor does it before giving the #DB to the guest. As the CPU:
 * B0-B3 reported afresh, BD, BS, BT kept until software clears them (18.2.3). */
static inline uint64_t dr6_after_db(uint64_t dr6, uint64_t payload)
{
	uint32_t set = (uint32_t)payload & (DR6_B0_3 | DR6_BD | DR6_BS | DR6_BT);
	uint32_t cleared = (uint32_t)payload & (DR6_BLD | DR6_RTM);

	return ((((uint32_t)dr6 & ~DR6_B0_3) | DR6_ACTIVE_LOW | set) & ~cleared & ~(1u << 12));
}
