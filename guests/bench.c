/*
 * bench: the cost of a round trip to the hypervisor, in TSC ticks, for `n=N` samples each (default
 * 200, at most 4096): an empty measurement (rdtsc overhead), CPUID leaf 0x40000000, VMCALL
 * HC_GUEST_INFO, and an I/O-port exit (IN from the UART scratch register 0x3FF); on an AMD CPU also
 * VMMCALL HC_GUEST_INFO, AMD's hypercall instruction (VMCALL #UDs there, APM Vol. 3, VMCALL/VMMCALL,
 * and the hypervisor takes it in its #UD intercept: both are measured). Each sample is the
 * raw difference of two fenced RDTSC reads around one instruction (rt/x86.h); nothing subtracted.
 * Prints min and median per kind. `trace=1`: then one more sample of each kind between two Bochs magic
 * breakpoints (XCHG BX, BX), for tests/trace.py to trace instruction by instruction.
 */
#include "rt.h"
#include "tessera/hypercall.h"

#define MAX_SAMPLES 4096
#define UART_SCR 0x3FF

static uint64_t samples[MAX_SAMPLES];

enum kind { K_NONE, K_CPUID, K_VMCALL, K_VMMCALL, K_PIO };

static uint64_t sample(enum kind k)
{
	uint64_t t0, t1;
	switch (k) {
	case K_CPUID: {
		uint32_t a = HV_CPUID_BASE, b, c = 0, d;
		t0 = tsc_begin();
		__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
		t1 = tsc_end();
		break;
	}
	case K_VMCALL: {
		unsigned long a = HC_GUEST_INFO, b = 0, c = 0, d;
		t0 = tsc_begin();
		__asm__ volatile("vmcall" : "+a"(a), "+b"(b), "+c"(c), "=d"(d) : : "memory");
		t1 = tsc_end();
		break;
	}
	case K_VMMCALL: {
		unsigned long a = HC_GUEST_INFO, b = 0, c = 0, d;
		t0 = tsc_begin();
		__asm__ volatile("vmmcall" : "+a"(a), "+b"(b), "+c"(c), "=d"(d) : : "memory");
		t1 = tsc_end();
		break;
	}
	case K_PIO: {
		uint8_t v;
		t0 = tsc_begin();
		__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"((uint16_t)UART_SCR));
		t1 = tsc_end();
		break;
	}
	default:
		t0 = tsc_begin();
		t1 = tsc_end();
		break;
	}
	return t1 - t0;
}

static void measure(enum kind k, const char *name, uint32_t n, bool with_n)
{
	sample(k); /* warm up caches and the exit path once, unrecorded */
	for (uint32_t i = 0; i < n; i++)
		samples[i] = sample(k);
	/* Insertion sort: n is small, and sorted samples give min and median directly. */
	for (uint32_t i = 1; i < n; i++) {
		uint64_t v = samples[i];
		uint32_t j = i;
		for (; j > 0 && samples[j - 1] > v; j--)
			samples[j] = samples[j - 1];
		samples[j] = v;
	}
	printf("bench: %s min=%llu median=%llu", name, (unsigned long long)samples[0],
	       (unsigned long long)samples[n / 2]);
	if (with_n)
		printf(" n=%u", n);
	printf("\n");
}

/* CPUID leaf 0's vendor string is "AuthenticAMD" (EBX, EDX, ECX: "Auth" "enti" "cAMD"). */
static bool amd_cpu(void)
{
	uint32_t r[4];

	cpuid(0, 0, r);
	return r[1] == 0x68747541 && r[3] == 0x69746e65 && r[2] == 0x444d4163;
}

int main(void)
{
	uint64_t n = getarg_num("n", 200);
	bool amd = amd_cpu();

	if (n < 1 || n > MAX_SAMPLES) {
		printf("bench: n must be 1..%u\n", MAX_SAMPLES);
		return 3;
	}
	measure(K_NONE, "rdtsc-overhead", (uint32_t)n, false);
	measure(K_CPUID, "cpuid", (uint32_t)n, true);
	if (hv_present()) {
		measure(K_VMCALL, "vmcall", (uint32_t)n, true);
		if (amd)
			measure(K_VMMCALL, "vmmcall", (uint32_t)n, true);
	} else
		printf("bench: no hypervisor, skipping vmcall\n");
	measure(K_PIO, "pio", (uint32_t)n, true);
	if (getarg_num("trace", 0)) {
		static const enum kind kinds[] = { K_CPUID, K_VMCALL, K_PIO };

		for (unsigned i = 0; i < 3; i++) {
			__asm__ volatile("xchg %%bx, %%bx" : : : "memory");   /* Bochs: magic breakpoint */
			sample(kinds[i]);
			__asm__ volatile("xchg %%bx, %%bx" : : : "memory");
		}
		printf("bench: traced\n");
	}
	return 0;
}
