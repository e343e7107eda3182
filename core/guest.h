/* Guests: created from GRUB modules, each with its partition, EPT and vCPU; ended and cleaned up. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "core/bootinfo.h"
#include "vmx/vcpu.h"

#define MAX_GUESTS 16
#define GUEST_INFO_GPA 0x8000ull   /* where a guest finds its Multiboot2 information (EBX) */
#define GUEST_INFO_MAX 0x1000ull
#define GUEST_LOW_RESERVED (GUEST_INFO_GPA + GUEST_INFO_MAX) /* image segments must start above */

struct guest {
	struct vm vm;                  /* name, id, RAM/EPT, virtual UART */
	struct vcpu vcpu;              /* one vCPU each for now; an array when SMP guests come */
	unsigned nvcpus;
	uint64_t mem;                  /* mem=: RAM in bytes */
	unsigned alloc;                /* alloc=: enum gmem_mode */
	uint64_t chunk;                /* chunk=: first-touch chunk size */
	uint64_t cpu;                  /* cpu=: host CPU; NO_CPU = spread */
	char args[256];                /* the guest's own words: its command line */
	uint64_t t_create;             /* TSC when the hypervisor decided to start it */
	uint64_t create_ticks;         /* TSC ticks guest_create took (without printing) */
};
#define NO_CPU (~0ull)

extern struct guest guests[MAX_GUESTS];
extern unsigned nguests;

/* Creates a guest from boot module `mod` (index `idx`): parses its command line, checks and loads
 * its image into a new partition, builds its boot information and places its vCPU on a CPU from
 * `cpus` (a bitmask of CPUs that can run guests). Reports what is wrong and returns NULL. */
struct guest *guest_create(const struct boot_module *mod, unsigned idx, uint64_t cpus);
/* The guest's vCPU ended (exited or stopped): report, release everything. Returns the number of
 * guests still live. Runs on the vCPU's CPU. */
unsigned guest_end(struct guest *g, enum vcpu_action why);
