/* Guests: created from GRUB modules, each one struct vm with its partition, EPT, devices and vCPUs;
 * ended and cleaned up, restarted by their policy or by the monitor. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "core/bootinfo.h"
#include "vcpu/vcpu.h"

#define MAX_GUESTS 16
#define GUEST_INFO_GPA 0x8000ull   /* where a guest finds its Multiboot2 information (EBX) */
#define GUEST_INFO_MAX 0x1000ull
#define GUEST_LOW_RESERVED (GUEST_INFO_GPA + GUEST_INFO_MAX) /* image segments must start above */

extern struct vm vms[MAX_GUESTS];
extern unsigned nvms;

/* Boot modules that are files for a guest (`for=NAME`) rather than guests: true if `mod` is one (it
 * is kept for the guest named, or reported as unusable). Call for every module before guest_create;
 * then guest_file_modules_check reports those no guest took. */
bool guest_file_module(const struct boot_module *mod, unsigned idx);
bool guest_is_file_module(const struct boot_module *mod);
void guest_file_modules_check(void);

/* Creates a guest from boot module `mod` (index `idx`): parses its command line, checks and loads
 * its image into a new partition, builds its boot information, its devices and its vCPUs, each
 * placed on a CPU from `cpus` (a bitmask of CPUs that can run guests) and added to that CPU's
 * scheduler. Reports what is wrong and returns NULL. */
struct vm *guest_create(const struct boot_module *mod, unsigned idx, uint64_t cpus);
/* vCPU `v`, whose guest is ending, leaves its CPU for good (on that CPU). The last vCPU of the
 * guest to leave reports how it ended and frees everything. Returns the number of guests still
 * live after that. */
unsigned guest_detach(struct vcpu *v);

/* What a guest does when it ends (module line on-exit=, on-crash=). */
enum end_policy { END_STOP, END_RESTART };
extern const char *const end_policy_names[]; /* "stop", "restart", NULL */

/* A guest's life as the monitor shows it. */
struct guest_life {
	bool live;                  /* its memory and vCPUs exist */
	bool ending;                /* live, and its vCPUs are leaving their CPUs */
	unsigned restarts;          /* restarts so far */
	unsigned on_exit, on_crash; /* enum end_policy */
	uint64_t restarts_max;      /* restarts= */
	const char *last_end;       /* "exited: code=N" or "stopped: REASON"; "" before its first end */
};
void guest_life(const struct vm *g, struct guest_life *life);
/* While held, a live guest's memory, EPT and vCPUs stay (its end and its rebuild wait): true and
 * held if it is live, false (not held) if it has ended. Keep it short; cross-CPU calls are fine
 * (whoever waits for it runs its CPU's calls meanwhile). */
bool guest_hold(struct vm *g);
void guest_release(struct vm *g);
/* The monitor: ends a live guest ("stopped: by the monitor"), then, with `restart`, builds it again
 * whatever its policy. 0, or -EBUSY when it has ended or is ending already. */
int guest_stop(struct vm *g, bool restart);
/* The monitor: builds an ended guest again from its module and schedules it. 0, -EBUSY (it is
 * live), or -ENOMEM (reported). */
int guest_start(struct vm *g);
