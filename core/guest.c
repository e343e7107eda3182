/* Guest creation from a GRUB module line, and guest end. A bad module line stops only that guest,
 * with a message naming the problem: "hv: guest NAME not started: REASON". */
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "console/printk.h"
#include "core/config.h"
#include "core/guest.h"
#include "core/loader.h"
#include "lib/cmdline.h"
#include "lib/errno.h"
#include "lib/format.h"
#include "lib/string.h"
#include "pmm/pmm.h"
#include "vmx/vmx.h"

struct guest guests[MAX_GUESTS];
unsigned nguests;
static unsigned live_guests;            /* created and not yet ended; the last to end sees 0 */
static unsigned vcpus_on_cpu[MAX_CPUS];

/* The module's file name without folders or extension ("/guests/hello.elf" -> "hello"): the
 * default guest name; "moduleN" when there is none. */
static void default_name(const char *path, unsigned idx, char *name, size_t size)
{
	const char *base = path, *end;
	size_t n;

	for (const char *p = path; *p && *p != ' '; p++)
		if (*p == '/')
			base = p + 1;
	for (end = base; *end && *end != ' ' && *end != '.'; end++)
		;
	n = (size_t)(end - base) < size - 1 ? (size_t)(end - base) : size - 1;
	memcpy(name, base, n);
	name[n] = 0;
	if (*path != '/' || !n)
		snformat(name, size, "module%u", idx);
}

static int write_guest(void *ctx, uint64_t gpa, const void *src, uint64_t len)
{
	return gmem_write(ctx, gpa, src, len);
}

static const char *page_size_name(uint64_t size)
{
	return size >= SIZE_1G ? "1G" : size >= SIZE_2M ? "2M" : "4K";
}

/* The CPU with the fewest vCPUs among `cpus`. */
static unsigned spread(uint64_t cpus)
{
	unsigned best = 0, n = MAX_CPUS + 1;

	for (unsigned c = 0; c < cpu_count && c < 64; c++)
		if ((cpus >> c & 1) && vcpus_on_cpu[c] < n)
			n = vcpus_on_cpu[(best = c)];
	return best;
}

#define not_started(g, ...) do { \
	char _why[160]; \
	snformat(_why, sizeof(_why), __VA_ARGS__); \
	pr_err("hv: guest %s not started: %s\n", (g)->vm.name, _why); \
} while (0)

/* The module line: "PATH word word ..." (GRUB puts the module's path first). Fills g's options and
 * its own words (g->args); false after reporting a problem. */
static bool parse_line(struct guest *g, const struct boot_module *mod, unsigned idx)
{
	const char *words = mod->cmdline;
	const struct opt_desc opts[] = {
		{ "name", OPT_STRING, g->vm.name, sizeof(g->vm.name), NULL, NULL },
		{ "mem", OPT_SIZE, &g->mem, 0, NULL, NULL },
		{ "cpu", OPT_UINT, &g->cpu, 0, NULL, NULL },
		{ "alloc", OPT_CHOICE, &g->alloc, 0, alloc_names, NULL },
		{ "chunk", OPT_SIZE, &g->chunk, 0, NULL, NULL },
	};
	char who[48];

	default_name(mod->cmdline, idx, g->vm.name, sizeof(g->vm.name));
	if (*words == '/')
		while (*words && *words != ' ')
			words++;
	snformat(who, sizeof(who), "module %u", idx);
	if (cmdline_parse(words, opts, sizeof(opts) / sizeof(opts[0]), who, g->args, sizeof(g->args))) {
		not_started(g, "bad option on its module line (see above)");
		return false;
	}
	/* The name appears in every line about the guest ("hv: guest NAME ...", "[NAME] text"):
	 * it must be one word that cannot be confused with the rest of those lines. */
	if (!g->vm.name[0] || strchr(g->vm.name, ' ') || strchr(g->vm.name, '\t') ||
	    strchr(g->vm.name, '[') || strchr(g->vm.name, ']')) {
		char bad_name[sizeof(g->vm.name)];

		memcpy(bad_name, g->vm.name, sizeof(bad_name));
		snformat(g->vm.name, sizeof(g->vm.name), "module%u", idx);
		not_started(g, "name='%s' must be one word without brackets", bad_name);
		return false;
	}
	return true;
}

/* Does the description fit this machine: a new name, a CPU that runs guests, sizes in range, the
 * memory there (eager and lazy reserve it all now)? false after reporting what does not. */
static bool check_fits(struct guest *g, unsigned idx, uint64_t cpus)
{
	for (unsigned i = 0; i < nguests; i++)
		if (!strcmp(guests[i].vm.name, g->vm.name)) {
			not_started(g, "duplicate name '%s' (module %u); give it name=", g->vm.name, idx);
			return false;
		}
	if (g->cpu != NO_CPU && (g->cpu >= cpu_count || !(cpus >> g->cpu & 1))) {
		not_started(g, "cpu=%lu is not a CPU that can run guests (online: 0..%u)", g->cpu, cpu_count - 1);
		return false;
	}
	if (g->chunk != SIZE_2M && g->chunk != PAGE_SIZE) {
		not_started(g, "chunk=%lu: the chunk size is 2M or 4K", g->chunk);
		return false;
	}
	if (g->mem < SIZE_2M || g->mem > (64ull << 30)) {
		not_started(g, "mem=%lu MiB: guest RAM is 2 MiB to 64 GiB", g->mem >> 20);
		return false;
	}
	g->mem = (g->mem + SIZE_2M - 1) & ~(SIZE_2M - 1);   /* rounded up to 2 MiB */
	if (g->alloc != GMEM_DEMAND && g->mem > pmm_free_bytes()) {
		not_started(g, "mem=%lu MiB is more than the %lu MiB of free memory", g->mem >> 20,
			    pmm_free_bytes() >> 20);
		return false;
	}
	return true;
}

/* The contract line "hv: guest NAME started: mem X MiB at HPA 0x..., cpu N, ept SIZE". */
static void report_started(const struct guest *g)
{
	const struct gmem *m = &g->vm.mem;
	uint64_t page = m->chunk;

	if (g->alloc == GMEM_EAGER)     /* the leaf that maps GPA 0: the largest the partition allows */
		ept_translate(&m->ept, 0, NULL, NULL, &page);
	if (g->alloc == GMEM_DEMAND)
		pr_info("hv: guest %s started: mem %lu MiB at HPA on demand, cpu %lu, ept %s, alloc demand\n",
			g->vm.name, g->mem >> 20, g->cpu, page_size_name(page));
	else
		pr_info("hv: guest %s started: mem %lu MiB at HPA 0x%lx, cpu %lu, ept %s%s\n", g->vm.name,
			g->mem >> 20, m->base, g->cpu, page_size_name(page),
			g->alloc == GMEM_LAZY ? ", alloc lazy" : "");
}

struct guest *guest_create(const struct boot_module *mod, unsigned idx, uint64_t cpus)
{
	const void *file = (const void *)mod->start;
	size_t file_size = mod->end - mod->start;
	struct guest_image img;
	char why[160], info[GUEST_INFO_MAX];
	size_t info_len;
	struct guest *g;
	int err;

	if (nguests == MAX_GUESTS) {
		pr_err("hv: module %u not started: more than %d guests\n", idx, MAX_GUESTS);
		return NULL;
	}
	g = &guests[nguests];
	memset(g, 0, sizeof(*g));
	g->t_create = rdtsc();
	g->mem = 32ull << 20;
	g->alloc = config.alloc;
	g->chunk = config.chunk;
	g->cpu = NO_CPU;
	if (!parse_line(g, mod, idx) || !check_fits(g, idx, cpus))
		return NULL;
	if (loader_check(file, file_size, g->mem, GUEST_LOW_RESERVED, &img, why, sizeof(why))) {
		not_started(g, "bad image: %s", why);
		return NULL;
	}
	info_len = mb2_build_info(info, sizeof(info), g->args, "tessera", g->mem);
	if (!info_len) {
		not_started(g, "its command line does not fit in its boot information");
		return NULL;
	}

	err = gmem_create(&g->vm.mem, g->alloc, g->mem, g->alloc == GMEM_EAGER ? SIZE_2M : g->chunk,
			  vmx_caps.ept_page_sizes);
	if (err) {
		not_started(g, "%s", err == -ENOMEM ? "out of memory for its RAM and EPT" : "cannot set up its RAM");
		return NULL;
	}
	if (loader_load(file, file_size, write_guest, &g->vm.mem) ||
	    gmem_write(&g->vm.mem, GUEST_INFO_GPA, info, info_len)) {
		not_started(g, "out of memory while loading its image");
		gmem_destroy(&g->vm.mem);
		return NULL;
	}
	if (g->cpu == NO_CPU)
		g->cpu = spread(cpus);
	g->vm.id = nguests + 1;
	g->vm.eptp = ept_pointer(&g->vm.mem.ept, false);
	if (vcpu_create(&g->vcpu, &g->vm, g->cpu, img.entry, GUEST_INFO_GPA)) {
		not_started(g, "out of memory for its vCPU");
		gmem_destroy(&g->vm.mem);
		return NULL;
	}
	g->nvcpus = 1;
	vcpus_on_cpu[g->cpu]++;
	nguests++;
	__atomic_add_fetch(&live_guests, 1, __ATOMIC_SEQ_CST);
	g->create_ticks = rdtsc() - g->t_create;

	report_started(g);
	pr_debug("hv: guest %s: entry 0x%lx, %s, command line '%s'\n", g->vm.name, img.entry,
		 img.elf64 ? "ELF64" : "ELF32", g->args);
	return g;
}

/* "12", or "0.16" when not a whole number of MiB. */
static void mib(char *buf, size_t size, uint64_t bytes)
{
	if (bytes % (1 << 20))
		snformat(buf, size, "%lu.%02lu", bytes >> 20, ((bytes & 0xfffff) * 100) >> 20);
	else
		snformat(buf, size, "%lu", bytes >> 20);
}

unsigned guest_end(struct guest *g, enum vcpu_action why)
{
	struct vcpu *v = &g->vcpu;
	char buf[512], touched[24];
	uint64_t tables = g->vm.mem.ept.tables;

	vuart_flush(&g->vm.uart, g->vm.name);
	if (why == VCPU_EXITED)
		pr_info("hv: guest %s exited code=%d\n", g->vm.name, v->exit_code);
	else
		pr_info("hv: guest %s stopped: %s\n", g->vm.name, v->stop_reason);
	vcpu_exit_summary(v, buf, sizeof(buf));
	pr_info("hv: guest %s exits: %s\n", g->vm.name, buf);
	mib(touched, sizeof(touched), gmem_touched_bytes(&g->vm.mem));
	pr_info("hv: guest %s memory: touched %s MiB of %lu MiB, %lu first-touch exits\n", g->vm.name,
		touched, g->mem >> 20, g->vm.mem.first_touch_exits);
	pr_info("hv: guest %s host memory: %lu KiB RAM + %lu KiB EPT tables\n", g->vm.name,
		gmem_touched_bytes(&g->vm.mem) >> 10, tables * 4);

	/* Cached EPT translations are tagged with the EPTP: drop them before the tables are reused
	 * (SDM Vol. 3C, 29.4.3.4), then give everything back. */
	vmx_invept(g->vm.eptp);
	vcpu_destroy(v);
	gmem_destroy(&g->vm.mem);
	return __atomic_sub_fetch(&live_guests, 1, __ATOMIC_SEQ_CST);
}
