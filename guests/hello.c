/*
 * hello: the smallest guest. Greets, reports what CPUID shows it (hypervisor bit, VMX bit, the
 * hypervisor's signature), what HC_GUEST_INFO says, and its command line; exits 0.
 * bytes=1: then every byte value 0x00-0xFF, 16 to a line, through the UART and through HC_PUTCHAR
 * (what the console shows of them: README, Security).
 */
#include "rt.h"
#include "tessera/hypercall.h"

int main(void)
{
	uint32_t r[4];
	char sig[13] = "none";

	printf("hello: Hello from a guest\n");
	cpuid(1, 0, r);
	unsigned hv = !!(r[2] & CPUID1_ECX_HYPERVISOR), vmx = !!(r[2] & CPUID1_ECX_VMX);
	/* Leaf 0x40000000 means something only with the hypervisor bit set; without it a CPU answers
	 * leaves past its maximum with the highest basic leaf's data (SDM Vol. 2A, CPUID). */
	if (hv) {
		cpuid(HV_CPUID_BASE, 0, r);
		memcpy(sig, &r[1], 4), memcpy(sig + 4, &r[2], 4), memcpy(sig + 8, &r[3], 4);
		sig[12] = 0;
		for (int i = 0; i < 12; i++)
			if (sig[i] && (sig[i] < ' ' || sig[i] > '~'))
				sig[i] = '?';
	}
	printf("hello: cpuid hypervisor bit=%u vmx=%u signature=%s\n", hv, vmx, sig);
	if (hv_present()) {
		struct hv_info info;
		long rc = hc_guest_info(&info);
		if (rc)
			printf("hello: HC_GUEST_INFO failed: %ld\n", rc);
		else
			printf("hello: guest id=%u ram=%u KiB cpu=%u\n", info.id, info.ram_kib, info.cpu);
	} else {
		printf("hello: no hypervisor, skipping hypercalls\n");
	}
	printf("hello: cmdline '%s'\n", cmdline);
	if (getarg_num("bytes", 0)) {
		for (int via_hc = 0; via_hc < 2; via_hc++)
			for (unsigned b = 0; b < 256; b++) {
				if (b % 16 == 0)
					printf("hello: %s %02x:", via_hc ? "hc" : "uart", b);
				if (via_hc) {
					unsigned long a = HC_PUTCHAR, bx = b;
					__asm__ volatile("vmcall" : "+a"(a), "+b"(bx) : : "rcx", "rdx", "memory");
				} else {
					putc((char)b);
				}
				if (b % 16 == 15)
					putc('\n');
			}
		printf("hello: bytes done\n");
	}
	return 0;
}
