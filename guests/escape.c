/*
 * escape: tries one access the hypervisor must stop: `probe=ADDR access=read|write|exec` (ADDR in
 * hex, below 4 GiB; paging is off, so it is the guest-physical address). If the access comes back,
 * EPT did not stop it: the guest says so and exits 1. Usage errors exit 3.
 */
#include "rt.h"

int main(void)
{
	const char *p = getarg("probe"), *kind = getarg("access");
	uint64_t addr = 0;

	if (p && !(p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))) {
		/* ADDR is hex with or without 0x: parse it as 0x<ADDR>. */
		static char hex[32] = "0x";
		size_t n = strlen(p);
		if (n > sizeof(hex) - 3)
			n = sizeof(hex) - 3;
		memcpy(hex + 2, p, n);
		hex[n + 2] = 0;
		p = hex;
	}
	if (!p || !kind || !parse_num(p, &addr) ||
	    (strcmp(kind, "read") && strcmp(kind, "write") && strcmp(kind, "exec"))) {
		printf("escape: usage: probe=ADDR access=read|write|exec\n");
		return 3;
	}
	if (addr >> 32) {
		printf("escape: probe 0x%llx is beyond 4 GiB\n", (unsigned long long)addr);
		return 3;
	}
	printf("escape: probing GPA 0x%llx access=%s\n", (unsigned long long)addr, kind);

	uintptr_t a = (uintptr_t)addr;
	if (!strcmp(kind, "read")) {
		uint32_t v = *(volatile uint32_t *)a;
		__asm__ volatile("" : : "r"(v)); /* the load must happen */
	} else if (!strcmp(kind, "write")) {
		*(volatile uint32_t *)a = 0x45534321; /* "!CSE" */
	} else {
		/* A call, so that if the code there happens to return, we see it. */
		__asm__ volatile("call *%0" : : "r"(a) : "memory", "cc");
	}
	printf("escape: not stopped, access returned\n");
	return 1;
}
