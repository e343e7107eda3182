/* Guests: created from GRUB modules, each one struct vm with its partition, EPT, devices and vCPUs;
 * ended and cleaned up. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "core/bootinfo.h"
#include "vmx/vcpu.h"

#define MAX_GUESTS 16
#define GUEST_INFO_GPA 0x8000ull   /* where a guest finds its Multiboot2 information (EBX) */
#define GUEST_INFO_MAX 0x1000ull
#define GUEST_LOW_RESERVED (GUEST_INFO_GPA + GUEST_INFO_MAX) /* image segments must start above */

extern struct vm vms[MAX_GUESTS];
extern unsigned nvms;

/* Creates a guest from boot module `mod` (index `idx`): parses its command line, checks and loads
 * its image into a new partition, builds its boot information, its devices and its vCPUs, each
 * placed on a CPU from `cpus` (a bitmask of CPUs that can run guests) and added to that CPU's
 * scheduler. Reports what is wrong and returns NULL. */
struct vm *guest_create(const struct boot_module *mod, unsigned idx, uint64_t cpus);
/* vCPU `v`, whose guest is ending, leaves its CPU for good (on that CPU). The last vCPU of the
 * guest to leave reports how it ended and frees everything. Returns the number of guests still
 * live after that. */
unsigned guest_detach(struct vcpu *v);
