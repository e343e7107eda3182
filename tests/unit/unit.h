/* A minimal host unit-test harness: CHECK counts, a failing check prints its place and carries on. */
#pragma once
#include <stdio.h>
#include <stdlib.h>

extern int unit_checks, unit_failures;

#define CHECK(cond) do { \
	unit_checks++; \
	if (!(cond)) { \
		unit_failures++; \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
	} \
} while (0)

#define CHECK_EQ(a, b) do { \
	unsigned long long _a = (unsigned long long)(a), _b = (unsigned long long)(b); \
	unit_checks++; \
	if (_a != _b) { \
		unit_failures++; \
		fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (0x%llx != 0x%llx)\n", \
			__FILE__, __LINE__, #a, #b, _a, _b); \
	} \
} while (0)

/* Each test program runs its cases with RUN and ends main with `return unit_report(argv[0]);`. */
#define RUN(fn) do { fprintf(stderr, "  %s\n", #fn); fn(); } while (0)
int unit_report(const char *name);

/* Everything printk printed since the last unit_log_clear(), one string (see host_stubs.c). */
extern char unit_log[65536];
void unit_log_clear(void);

/* A fake physical memory for code that calls phys_to_virt: [base, base + size) maps onto a heap buffer. */
void fake_phys_init(unsigned long long base, unsigned long long size);
void fake_phys_fini(void);
