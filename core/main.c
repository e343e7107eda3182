/* kmain: the boot CPU's path from the boot stub to a running system, in the order things depend on. */
#include "arch/x86/acpi.h"
#include "arch/x86/apic.h"
#include "arch/x86/cpu.h"
#include "arch/x86/irq.h"
#include "arch/x86/paging.h"
#include "arch/x86/percpu.h"
#include "arch/x86/pic.h"
#include "arch/x86/power.h"
#include "arch/x86/smp.h"
#include "arch/x86/time.h"
#include "console/console.h"
#include "console/printk.h"
#include "core/bootinfo.h"
#include "core/config.h"
#include "core/hv.h"
#include "core/main.h"
#include "lib/cmdline.h"
#include "lib/string.h"
#include "pmm/pmm.h"

void kmain(uint64_t mbi_phys);

extern char __image_start[], __image_end[];

static struct bootinfo bootinfo;

static __attribute__((noreturn)) void finish(void)
{
	console_flush();
	if (config.poweroff)
		power_off();
	halt_forever();
}

void hv_shutdown(void)
{
	pr_info("hv: %s\n", config.poweroff ? "powering off" : "halting (poweroff=1 powers off instead)");
	finish();
}

/* What the command-line parser finds wrong (lib/cmdline.h) is a warning on the console. */
static void cmdline_warn(const char *line)
{
	pr_warn("%s", line);
}

static void setup_console(const struct bootinfo *bi)
{
	uint16_t port = 0x3f8;
	uint32_t baud = 115200;

	if (console_parse(config.console, &port, &baud))
		pr_warn("hv: console=%s not understood (want com1..com4 or 0xPORT, then ,BAUD); "
			"keeping com1,115200\n", config.console);
	else if (port != 0x3f8 || baud != 115200)
		uart_init(port, baud);

	/* Under a BIOS, GRUB leaves VGA text mode (an EGA-text framebuffer tag, or none at all). */
	if (!bi->efi && (!bi->has_framebuffer || bi->fb.type == 2))
		console_enable_screen();
	else if (bi->has_framebuffer)
		pr_info("hv: screen: %ux%u graphics framebuffer at 0x%lx has no text renderer here; "
			"the console is the serial port only\n", bi->fb.width, bi->fb.height, bi->fb.addr);
	else
		pr_info("hv: screen: none reported by the boot loader; the console is the serial port only\n");
}

/* A free page below 1 MiB for the AP trampoline: the SIPI vector can only name such a page. */
static bool page_in_use(const struct bootinfo *bi, uint64_t page)
{
	if (page < bi->mbi_end && bi->mbi_start < page + PAGE_SIZE)
		return true;                    /* the Multiboot2 information, still to be read */
	for (size_t i = 0; i < bi->nmodules; i++)
		if (page < bi->modules[i].end && bi->modules[i].start < page + PAGE_SIZE)
			return true;            /* a guest image, still to be loaded */
	return page < (uint64_t)__image_end && (uint64_t)__image_start < page + PAGE_SIZE;
}

static uint64_t pick_trampoline(const struct bootinfo *bi)
{
	for (uint64_t page = TRAMPOLINE_DEFAULT; page < 0x9f000; page += PAGE_SIZE) {
		if (page_in_use(bi, page))
			continue;
		for (size_t i = 0; i < bi->nregions; i++) {
			const struct mem_region *r = &bi->regions[i];

			if (r->type == MEM_USABLE && r->base <= page && r->len >= PAGE_SIZE &&
			    r->base + r->len - PAGE_SIZE >= page)
				return page;
		}
	}
	return 0;
}

/* For paging_init: is [base, base + len) all usable RAM in the boot loader's memory map? */
static bool boot_ram(uint64_t base, uint64_t len)
{
	return pmm_range_usable(bootinfo.regions, bootinfo.nregions, base, len);
}

static uint64_t alloc_ap_stack(void)
{
	uint64_t phys;

	if (pmm_alloc_pages(HOST_STACK_SIZE / PAGE_SIZE, PAGE_SIZE, &phys))
		return 0;
	return phys + HOST_STACK_SIZE;
}

static void setup_memory(const struct bootinfo *bi, uint64_t tramp, uint64_t mapped_top)
{
	struct mem_region reserved[BOOTINFO_MAX_MODULES + 4];
	size_t nres = 0;
	uint64_t usable;

	/* Memory the host map does not reach (its table pool ran out) cannot be handed out. */
	reserved[nres++] = (struct mem_region){ mapped_top, (1ull << 52) - mapped_top, MEM_RESERVED };
	reserved[nres++] = (struct mem_region){ (uint64_t)__image_start,
						(uint64_t)__image_end - (uint64_t)__image_start, MEM_RESERVED };
	reserved[nres++] = (struct mem_region){ bi->mbi_start, bi->mbi_end - bi->mbi_start, MEM_RESERVED };
	if (tramp)
		reserved[nres++] = (struct mem_region){ tramp, PAGE_SIZE, MEM_RESERVED };
	for (size_t i = 0; i < bi->nmodules; i++)
		reserved[nres++] = (struct mem_region){ bi->modules[i].start,
							bi->modules[i].end - bi->modules[i].start, MEM_RESERVED };
	if (pmm_init(bi->regions, bi->nregions, reserved, nres))
		panic("hv: no usable memory in the boot loader's memory map");
	pmm_set_poison(config.poison);
	usable = pmm_usable_bytes();
	pr_info("hv: memory usable %lu MiB, free %lu MiB\n", usable >> 20, pmm_free_bytes() >> 20);
}

/*
 * selftest=: fault on purpose, once everything is up, so that tests see the exception path work and
 * the host map's protections hold: an invalid opcode, a NULL dereference (page 0 is not mapped), a
 * write to the hypervisor's code (read-only), a jump into its data (non-executable); and (ring) that a
 * panic writes out what the console's output ring still holds, then its own lines: 3000 lines (120 KB,
 * twice the ring: its producer waits when it is full) printed as while guests run, then UD2.
 */
static void selftest(void)
{
	static uint8_t data_byte[16] __attribute__((aligned(16))) = { 0xc3 }; /* RET, were it executable */
	volatile uint8_t *code = (volatile uint8_t *)(uintptr_t)kmain;

	switch (config.selftest) {
	case SELFTEST_UD:
		pr_info("hv: selftest: executing UD2\n");
		asm volatile("ud2");
		break;
	case SELFTEST_NULL:
		pr_info("hv: selftest: reading address 0\n");
		(void)*(volatile uint64_t *)0;
		break;
	case SELFTEST_WRITE_CODE:
		pr_info("hv: selftest: writing to the hypervisor's code at %p\n", (void *)code);
		*code = 0x90;
		break;
	case SELFTEST_RING:
		console_start_async();
		for (unsigned i = 1; i <= 3000; i++)
			pr_info("hv: selftest: ring line %u of 3000\n", i);
		asm volatile("ud2");
		break;
	case SELFTEST_EXEC_DATA:
		pr_info("hv: selftest: calling into the hypervisor's data at %p\n", (void *)data_byte);
		((void (*)(void))(uintptr_t)data_byte)();
		break;
	}
	pr_err("hv: selftest: the fault did not happen\n");
}

void kmain(uint64_t mbi_phys)
{
	struct bootinfo *bi = &bootinfo;
	uint64_t top = 0, tramp, mapped;

	percpu[0].id = 0;
	cpu_init_tables(&percpu[0]);
	uart_init(0x3f8, 115200);
	pr_info("hv: tessera hypervisor starting\n");

	if (bootinfo_parse((const void *)mbi_phys, mbi_phys, bi))
		pr_err("hv: the Multiboot2 information is malformed; using what could be read\n");
	cmdline_report = cmdline_warn;
	config_parse(bi->cmdline);
	console_loglevel = (int)config.loglevel;
	panic_action = finish;
	setup_console(bi);
	pr_info("hv: loader '%s', %s boot, command line '%s'\n", bi->loader_name, bi->efi ? "UEFI" : "BIOS",
		bi->cmdline);
	pr_info("hv: hypervisor image at 0x%lx-0x%lx\n", (uint64_t)__image_start, (uint64_t)__image_end);

	for (size_t i = 0; i < bi->nregions; i++) {
		const struct mem_region *r = &bi->regions[i];

		uint64_t end = r->len > (1ull << 52) - r->base ? 1ull << 52 : r->base + r->len; /* no wrap */

		pr_debug("hv: mmap 0x%016lx-0x%016lx type %u\n", r->base, r->base + r->len - 1, r->type);
		if (r->type == MEM_USABLE && r->base < (1ull << 52) && end > top)
			top = end;
	}
	if (bi->efi_mmap_entries)
		pr_info("hv: EFI memory map: %lu descriptors\n", bi->efi_mmap_entries);

	pic_disable();
	tramp = pick_trampoline(bi);
	mapped = paging_init(top, tramp, boot_ram);
	time_init();
	acpi_init(bi->rsdp, bi->rsdp_revision, mapped);
	lapic_init();
	irq_console_init(config.console_irq);
	setup_memory(bi, tramp, mapped);

	if (!tramp)
		pr_warn("hv: smp: no free page below 1 MiB for the start-up trampoline; boot CPU only\n");
	else
		smp_boot(tramp, alloc_ap_stack, hv_ap_main);
	pr_info("hv: cpus online %u/%u\n", cpu_count, cpu_present);
	if (config.selftest)
		selftest();

	hv_start(bi);   /* VMX and the guests (core/hv.c); returns when there is nothing to run */
	hv_shutdown();
}
