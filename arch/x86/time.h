/* Time: the TSC, calibrated once against the PIT, for delays and time slices. */
#pragma once
#include <stdint.h>

extern uint64_t tsc_khz; /* TSC ticks per millisecond */

void time_init(void);
void udelay(uint64_t us);
static inline uint64_t us_to_tsc(uint64_t us) { return us * tsc_khz / 1000; }
/* The host's wall-clock time from its CMOS RTC, in seconds since 1970-01-01 UTC (0 if unreadable). */
uint64_t host_epoch_seconds(void);
