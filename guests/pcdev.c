/*
 * pcdev: the PC devices every tessera guest has besides its UART, checked from inside.
 *   do=fwcfg   QEMU fw_cfg at 0x510/0x511: the signature "QEMU", the CPU count and the RAM size a
 *              `qemu -kernel` test kernel reads; prints `pcdev: fw_cfg signature QEMU cpus N ram M MiB`
 *              and exits 0 if they match what the Multiboot2 memory map and `cpus=` say, else 1.
 *   do=kbd     8042 command 0xFE (pulse reset)        -> the hypervisor stops it: reset requested
 *   do=port92  port 0x92 bit 0 (fast reset)           -> likewise
 *   do=cf9     port 0xCF9 bit 2 (reset control)       -> likewise
 * After a reset request nothing may run: `pcdev: still running after the reset` and exit 1 if it does.
 */
#include "rt.h"

static uint8_t fw_cfg_read8(void)
{
	return inb(0x511);
}

static void fw_cfg_select(uint16_t key)
{
	__asm__ volatile("outw %0, %1" : : "a"(key), "Nd"((uint16_t)0x510));
}

static uint64_t fw_cfg_item(uint16_t key, unsigned len)
{
	uint64_t v = 0;

	fw_cfg_select(key);
	for (unsigned i = 0; i < len; i++)
		v |= (uint64_t)fw_cfg_read8() << (8 * i);
	return v;
}

int main(void)
{
	const char *what = getarg("do");
	char sig[5] = { 0 };

	if (!what) {
		printf("pcdev: usage: do=fwcfg|kbd|port92|cf9\n");
		return 3;
	}
	if (!strcmp(what, "fwcfg")) {
		uint64_t cpus, ramsize, want_cpus = getarg_num("cpus", 1);

		fw_cfg_select(0);
		for (int i = 0; i < 4; i++)
			sig[i] = (char)fw_cfg_read8();
		cpus = fw_cfg_item(5, 2);
		ramsize = fw_cfg_item(3, 8);
		printf("pcdev: fw_cfg signature %s cpus %u ram %u MiB (memory map says %u MiB)\n", sig,
		       (unsigned)cpus, (unsigned)(ramsize >> 20), (unsigned)(ram_end() >> 20));
		return strcmp(sig, "QEMU") || cpus != want_cpus || ramsize != ram_end();
	}
	if (!strcmp(what, "kbd"))
		outb(0x64, 0xfe);
	else if (!strcmp(what, "port92"))
		outb(0x92, inb(0x92) | 1);
	else if (!strcmp(what, "cf9"))
		outb(0xcf9, 0x06);
	else
		return 3;
	printf("pcdev: still running after the reset\n");
	return 1;
}
