/* What the hypervisor's logic files call around them, for host unit tests: printk, panic, phys_to_virt. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "console/printk.h"
#include "pmm/pmm.h"
#include "tests/unit/unit.h"

int unit_checks, unit_failures;
char unit_log[65536];
static size_t unit_log_len;

void unit_log_clear(void)
{
	unit_log_len = 0;
	unit_log[0] = 0;
}

void vprintk(int level, const char *fmt, va_list ap)
{
	(void)level;
	if (unit_log_len < sizeof(unit_log) - 1) {
		int n = vsnprintf(unit_log + unit_log_len, sizeof(unit_log) - unit_log_len, fmt, ap);
		if (n > 0)
			unit_log_len += (size_t)n;
		if (unit_log_len >= sizeof(unit_log))
			unit_log_len = sizeof(unit_log) - 1;
	}
}

void printk(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintk(level, fmt, ap);
	va_end(ap);
}

void panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "panic: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	abort();
}

static unsigned long long fake_base, fake_size;
static unsigned char *fake_mem;

void fake_phys_init(unsigned long long base, unsigned long long size)
{
	fake_base = base;
	fake_size = size;
	/* Anonymous memory, zero and backed only where written: a fake of several GiB (a 5 GiB guest)
	 * costs what the test touches. (calloc under ASan would clear shadow for all of it.) */
	fake_mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (fake_mem == MAP_FAILED)
		abort();
}

void fake_phys_fini(void)
{
	munmap(fake_mem, fake_size);
	fake_mem = NULL;
}

void *phys_to_virt(uint64_t phys)
{
	if (phys < fake_base || phys >= fake_base + fake_size) {
		fprintf(stderr, "phys_to_virt(0x%llx): outside the fake memory\n", (unsigned long long)phys);
		abort();
	}
	return fake_mem + (phys - fake_base);
}

int unit_report(const char *name)
{
	printf("unit %s: %d checks, %d failed\n", name, unit_checks, unit_failures);
	return unit_failures ? 1 : 0;
}
