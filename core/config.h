/* The hypervisor's own command-line options (the `multiboot2` line of grub.cfg). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct hv_config {
	char console[32];      /* console=com1,115200 (com1..com4 or a hex port, then the baud rate) */
	bool poweroff;         /* poweroff=1: power off when nothing is left to run, and on panic */
	uint64_t loglevel;     /* loglevel=0..3: errors, warnings, info (default), debug */
	uint64_t quantum_us;   /* quantum=: time slice of a vCPU, microseconds of TSC time */
	unsigned alloc;        /* alloc=eager|lazy|demand: default guest-memory policy */
	unsigned paging;       /* paging=ept|shadow: default memory virtualization (enum vm_paging) */
	uint64_t chunk;        /* chunk=2M|4K: default first-touch chunk size */
	unsigned selftest;     /* selftest=: fault on purpose to check the exception path (tests) */
	bool apicv;            /* apicv=0: emulate the local APIC even where the CPU could virtualize it */
	bool console_irq;      /* console_irq=0: poll the console UART even where its interrupt could be used */
	bool poison;           /* poison=1: freed pages are poisoned and checked when handed out again (pmm) */
	uint64_t input_hold_us; /* input_hold=US: the monitor holds a guest US longer with each typed byte (tests) */
};

extern struct hv_config config;
extern const char *const alloc_names[]; /* "eager", "lazy", "demand", NULL */
extern const char *const paging_names[]; /* "ept", "shadow", NULL: enum vm_paging's order */
enum selftest { SELFTEST_NONE, SELFTEST_UD, SELFTEST_NULL, SELFTEST_WRITE_CODE, SELFTEST_EXEC_DATA, SELFTEST_RING };
extern const char *const selftest_names[];

/* Parses the hypervisor's command line into `config`, reporting bad words (defaults stay). */
void config_parse(const char *cmdline);
