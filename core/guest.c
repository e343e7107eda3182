/* Guest creation from a GRUB module line, guest end, and guest restart. A bad module line stops only
 * that guest, with a message naming the problem: "hv: guest NAME not started: REASON".
 *
 * A guest's life: created (live) -> ending (one vCPU claimed the end: vm->ending) -> each vCPU
 * detaches on its own CPU -> the last one reports the end and frees its memory, then either rebuilds
 * it from its boot module (restart: on-exit=/on-crash=restart, or the monitor) and it is live again,
 * or the guest has ended (until the monitor starts it again). "hv: all guests finished" comes when
 * no guest is live: a restarting guest is live.
 *
 * Who may touch a guest's runtime state (struct vm from `mem` on, its vCPUs' memory), and until when:
 *  - its vCPUs, each on its own CPU, from build until it leaves (guest_detach): its own VMCS and state,
 *    and, through the devices and the local APIC group, its siblings' APIC pages (vdev/lapic.h,
 *    "Lifetime");
 *  - a vCPU that left touches nothing more, but its memory stays: only the last vCPU to leave frees the
 *    vCPUs' memory (vcpu_free) and the guest's, when no sibling can post to anything any more;
 *  - the monitor, on the boot CPU, only while it holds the guest (guest_hold: the lock below, taken by
 *    the freeing and the rebuild), and only if it is live; it may then post to the guest's devices
 *    (typed input), read its vCPUs through cross-CPU calls and ask it to stop;
 *  - other CPUs only kick (vcpu_kick reads v->cpu, which the core never changes).
 * struct vm itself is never freed (vms[] is static); its runtime part is cleared (reset_runtime) only
 * under the lock, after the last vCPU left. */
#include "arch/x86/call.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "console/printk.h"
#include "core/config.h"
#include "core/guest.h"
#include "core/hv.h"
#include "core/monitor.h"
#include "lib/cmdline.h"
#include "lib/errno.h"
#include "lib/format.h"
#include "lib/string.h"
#include "pmm/pmm.h"
#include "arch/x86/time.h"
#include "loader/acpi.h"
#include "loader/loader.h"
#include "vdev/debug_exit.h"
#include "vdev/fw_cfg.h"
#include "vdev/reset.h"
#include "vcpu/exit.h"

struct vm vms[MAX_GUESTS];
unsigned nvms;
static unsigned live_guests;            /* created and not yet ended; the last to end sees 0 */

const char *const end_policy_names[] = { "stop", "restart", NULL };

/* What the core keeps per guest beside struct vm (vms[i] <-> ctls[i]): where its image comes from,
 * for restarts; where its vCPUs go; its restart policy and its life so far. */
struct guest_ctl {
	const struct boot_module *mod;      /* its GRUB module: reserved memory, never freed */
	unsigned idx;                       /* module index */
	unsigned cpu_of[VM_MAX_VCPUS];      /* host CPU of each vCPU */
	unsigned on_exit, on_crash;         /* enum end_policy */
	uint64_t restarts_max;              /* restarts=: automatic restarts allowed */
	unsigned restarts;                  /* restarts so far, whatever asked for them */
	unsigned auto_restarts;             /* those the policy made (counted against restarts_max) */
	volatile bool live;                 /* its memory and vCPUs exist (running or ending) */
	volatile bool monitor_stop;         /* the monitor stopped it: no automatic restart */
	volatile bool monitor_restart;      /* the monitor asked for a restart, whatever the policy */
	char last_end[192];                 /* how it last ended: "exited: code=0", "stopped: ..." */
	struct loader_file extra[LOADER_MAX_FILES]; /* files handed to it by `for=NAME` module lines */
	unsigned nextra;
	spinlock_t lock;                    /* held while its memory and vCPUs are freed or rebuilt, and
					     * by the monitor while it reads them (guest_hold) */
};
static struct guest_ctl ctls[MAX_GUESTS];

/* What a module line says besides what struct vm keeps. */
struct guest_opts {
	char cpus[64];                      /* cpu=A,B,...: host CPUs of vCPU 0, 1, ...; "" = spread */
	uint64_t vcpus;                     /* vcpus=N */
	unsigned on_exit, on_crash;         /* on-exit=, on-crash=: stop|restart */
	uint64_t restarts;                  /* restarts=N */
};

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

/* The CPU with the fewest vCPUs among `cpus`, counting `extra` vCPUs about to go on each CPU. */
static unsigned spread(uint64_t cpus, const unsigned *extra)
{
	unsigned best = 0, n = ~0u;

	for (unsigned c = 0; c < cpu_count && c < 64; c++)
		if ((cpus >> c & 1) && vcpu_cpu[c].nvcpus + extra[c] < n)
			n = vcpu_cpu[(best = c)].nvcpus + extra[c];
	return best;
}

#define not_started(vm, ...) do { \
	char _why[160]; \
	snformat(_why, sizeof(_why), __VA_ARGS__); \
	pr_err("hv: guest %s not started: %s\n", (vm)->name, _why); \
} while (0)

/* The module line: "PATH word word ..." (GRUB puts the module's path first). Fills g's options and
 * its own words (g->args); false after reporting a problem. */
static bool parse_line(struct vm *g, struct guest_opts *o, const struct boot_module *mod, unsigned idx)
{
	const char *words = mod->cmdline;
	const struct opt_desc opts[] = {
		{ "name", OPT_STRING, g->name, sizeof(g->name), NULL, NULL },
		{ "mem", OPT_SIZE, &g->mem_size, 0, NULL, NULL },
		{ "cpu", OPT_STRING, o->cpus, sizeof(o->cpus), NULL, NULL },
		{ "vcpus", OPT_UINT, &o->vcpus, 0, NULL, NULL },
		{ "alloc", OPT_CHOICE, &g->alloc, 0, alloc_names, NULL },
		{ "chunk", OPT_SIZE, &g->chunk, 0, NULL, NULL },
		{ "paging", OPT_CHOICE, &g->paging, 0, paging_names, NULL },
		{ "on-exit", OPT_CHOICE, &o->on_exit, 0, end_policy_names, NULL },
		{ "on-crash", OPT_CHOICE, &o->on_crash, 0, end_policy_names, NULL },
		{ "restarts", OPT_UINT, &o->restarts, 0, NULL, NULL },
	};
	char who[48];

	default_name(mod->cmdline, idx, g->name, sizeof(g->name));
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
	if (!g->name[0] || strchr(g->name, ' ') || strchr(g->name, '\t') ||
	    strchr(g->name, '[') || strchr(g->name, ']')) {
		char bad_name[sizeof(g->name)];

		memcpy(bad_name, g->name, sizeof(bad_name));
		snformat(g->name, sizeof(g->name), "module%u", idx);
		not_started(g, "name='%s' must be one word without brackets", bad_name);
		return false;
	}
	return true;
}

/* cpu=A,B,...: vCPU i goes on the i-th CPU listed; vCPUs past the list are spread over the CPUs
 * with the fewest vCPUs. false after reporting a malformed list or a CPU that cannot run guests. */
static bool place_vcpus(struct vm *g, const struct guest_opts *o, uint64_t cpus, unsigned *cpu_of)
{
	unsigned extra[MAX_CPUS] = { 0 }, i = 0;
	const char *p = o->cpus;

	while (*p) {
		uint64_t c = 0;
		const char *digits = p;

		while (*p >= '0' && *p <= '9' && c < 1000)
			c = c * 10 + (uint64_t)(*p++ - '0');
		if (p == digits || (*p && *p != ',') || i == g->nvcpus) {
			not_started(g, "cpu=%s: one CPU number per vCPU (vcpus=%u), separated by commas", o->cpus,
				    g->nvcpus);
			return false;
		}
		if (c >= cpu_count || !(cpus >> c & 1)) {
			not_started(g, "cpu=%lu is not a CPU that can run guests (online: 0..%u)", c, cpu_count - 1);
			return false;
		}
		extra[c]++;
		cpu_of[i++] = c;
		if (*p == ',')
			p++;
	}
	for (; i < g->nvcpus; i++)
		extra[cpu_of[i] = spread(cpus, extra)]++;
	for (unsigned c = 0; c < cpu_count; c++)
		if (vcpu_cpu[c].nvcpus + extra[c] > CPU_MAX_VCPUS) {
			not_started(g, "cpu %u would run more than %u vCPUs", c, CPU_MAX_VCPUS);
			return false;
		}
	return true;
}

/* Does the description fit this machine: a new name, CPUs that run guests, sizes in range, the
 * memory there (eager and lazy reserve it all now)? false after reporting what does not. */
static bool check_fits(struct vm *g, const struct guest_opts *o, unsigned idx, uint64_t cpus,
		       unsigned *cpu_of)
{
	for (unsigned i = 0; i < nvms; i++)
		if (!strcmp(vms[i].name, g->name)) {
			not_started(g, "duplicate name '%s' (module %u); give it name=", g->name, idx);
			return false;
		}
	if (o->vcpus < 1 || o->vcpus > VM_MAX_VCPUS) {
		not_started(g, "vcpus=%lu: a guest has 1 to %u vCPUs", o->vcpus, VM_MAX_VCPUS);
		return false;
	}
	g->nvcpus = o->vcpus;
	if (!place_vcpus(g, o, cpus, cpu_of))
		return false;
	if (g->chunk != SIZE_2M && g->chunk != PAGE_SIZE) {
		not_started(g, "chunk=%lu: the chunk size is 2M or 4K", g->chunk);
		return false;
	}
	if (g->mem_size < SIZE_2M || g->mem_size > (64ull << 30)) {
		not_started(g, "mem=%lu MiB: guest RAM is 2 MiB to 64 GiB", g->mem_size >> 20);
		return false;
	}
	g->mem_size = (g->mem_size + SIZE_2M - 1) & ~(SIZE_2M - 1);   /* rounded up to 2 MiB */
	if (g->paging == VM_PAGING_EPT && !hv_paging_ept_ok) {
		if (hv_paging_no_ept && vcpu_vendor == VCPU_SVM)
			not_started(g, "paging=ept: the CPU has no nested paging (AMD APM Vol. 2, 15.25); "
				    "paging=shadow runs guests");
		else if (hv_paging_no_ept)
			not_started(g, "paging=ept: the CPU has no EPT (SDM Vol. 3C, 25.6.2, Table 25-7); "
				    "paging=shadow runs guests");
		else
			not_started(g, "paging=ept: the CPU has no unrestricted guest, which guests starting with "
				    "paging off need with EPT (SDM Vol. 3C, 25.6.2); paging=shadow runs them");
		return false;
	}
	if (g->paging == VM_PAGING_SHADOW && !hv_paging_shadow_ok) {
		not_started(g, "paging=shadow: the CPU lacks what it needs (VMX: CR3-load and INVLPG exiting and "
			    "XD, vmx/spt.c; SVM: XD, svm/spt.c)");
		return false;
	}
	if (g->alloc != GMEM_DEMAND && g->mem_size > pmm_free_bytes()) {
		not_started(g, "mem=%lu MiB is more than the %lu MiB of free memory", g->mem_size >> 20,
			    pmm_free_bytes() >> 20);
		return false;
	}
	return true;
}

/* The contract line "hv: guest NAME started: mem X MiB at HPA 0x..., cpu N, ept SIZE" ("shadow" in
 * place of "ept SIZE" with paging=shadow); with several vCPUs "cpu A,B,..." lists the host CPU of
 * each vCPU in order. */
static void report_started(const struct vm *g)
{
	const struct gmem *m = &g->mem;
	uint64_t page = m->chunk;
	char cpus[4 * VM_MAX_VCPUS], paging[16];
	unsigned n = 0;

	for (unsigned i = 0; i < g->nvcpus; i++)
		n += snformat(cpus + n, sizeof(cpus) - n, i ? ",%u" : "%u", g->vcpus[i].cpu);
	if (g->alloc == GMEM_EAGER)     /* the leaf that maps GPA 0: the largest the partition allows */
		ept_translate(&m->ept, 0, NULL, NULL, &page);
	if (g->paging == VM_PAGING_SHADOW)
		snformat(paging, sizeof(paging), "shadow");
	else
		snformat(paging, sizeof(paging), "ept %s", page_size_name(page));
	if (g->alloc == GMEM_DEMAND)
		pr_info("hv: guest %s started: mem %lu MiB at HPA on demand, cpu %s, %s, alloc demand\n",
			g->name, g->mem_size >> 20, cpus, paging);
	else
		pr_info("hv: guest %s started: mem %lu MiB at HPA 0x%lx, cpu %s, %s%s\n", g->name,
			g->mem_size >> 20, m->base, cpus, paging, g->alloc == GMEM_LAZY ? ", alloc lazy" : "");
}

/* A device deadline moved sooner by another vCPU: vCPU 0, which keeps the device timers, looks. */
static void kick_timer_keeper(void *vm)
{
	vcpu_kick(&((struct vm *)vm)->vcpus[0]);
}

/* Its PC: the UART, the 8259A pair, the PIT, the I/O APIC, the RTC (the host's time), the ACPI PM1
 * registers and PM timer and the reset register its FADT names, the sleep port of tessera's own
 * guests (vdev/reset.h), fw_cfg, the debug-exit port; the local APICs come with the vCPUs. */
static int create_devices(struct vm *g)
{
	int err;

	vdev_bus_init(&g->bus, g->name, &g->lapics);
	vdev_bus_on_timers_moved(&g->bus, kick_timer_keeper, g);
	g->lapics.phys_bits = cpu_phys_bits();
	if ((err = vuart_init(&g->uart, &g->bus, g->name)) || (err = debug_exit_init(&g->bus)) ||
	    (err = vpc_init(&g->pc, &g->bus, &g->lapics, tsc_khz, g->mem_size, host_epoch_seconds(),
			    ACPI_PM_BASE, ACPI_S5_SLP_TYP, vcpu_pic_intr_changed, g)) ||
	    (err = vreset_init(&g->reset, &g->bus, ACPI_PM_PORT_DEFAULT, ACPI_S5_SLP_TYP)) ||
	    (err = fw_cfg_init(&g->fw_cfg, &g->bus, g->mem_size, g->nvcpus)))
		return err;
	g->uart.irq = vpc_irq_line(&g->pc, PC_IRQ_COM1);   /* COM1 on IRQ 4, as on a PC */
	return 0;
}

/* Its ACPI tables in the BIOS area, where kernels look for the RSDP (ACPI 6.3, 5.2.5.1): the
 * platform create_devices built. 0, or -ENOMEM. */
static int write_acpi(struct vm *g, uint8_t rsdp[ACPI_RSDP_LEN])
{
	static uint8_t buf[ACPI_TABLES_MAX];   /* guests may be (re)built on several CPUs at once */
	static spinlock_t lock;
	struct acpi_config c = { g->nvcpus, true, true, true, ACPI_PM_BASE };
	size_t len;
	int err = -ENOMEM;

	spin_lock(&lock);
	memset(buf, 0, sizeof(buf));
	len = acpi_build(buf, sizeof(buf), ACPI_RSDP_AREA_START, &c, &g->rsdp_gpa);
	if (len) {
		memcpy(rsdp, buf + (g->rsdp_gpa - ACPI_RSDP_AREA_START), ACPI_RSDP_LEN);
		err = gmem_write(&g->mem, ACPI_RSDP_AREA_START, buf, len);
	}
	spin_unlock(&lock);
	return err;
}

/* Module lines that hand their file to a guest (`for=NAME`) instead of being one: the initrd of a
 * Linux guest, the modules of a Multiboot one, in module order. */
#define MAX_FILE_MODULES 32
static struct file_module {
	const struct boot_module *mod;
	unsigned idx;
	char owner[32];
	bool taken;
} file_modules[MAX_FILE_MODULES];
static unsigned nfile_modules;

bool guest_file_module(const struct boot_module *mod, unsigned idx)
{
	const char *w = mod->cmdline, *end;
	struct file_module *f;
	size_t n;

	for (;; w++) {                          /* the word that starts with for= */
		if (!*w)
			return false;
		if ((w == mod->cmdline || w[-1] == ' ') && w[0] == 'f' && w[1] == 'o' && w[2] == 'r' && w[3] == '=')
			break;
	}
	for (end = w + 4; *end && *end != ' '; end++)
		;
	n = (size_t)(end - w - 4);
	if (nfile_modules == MAX_FILE_MODULES || !n || n >= sizeof(f->owner)) {
		pr_err("hv: module %u not used: %s\n", idx, !n || n >= sizeof(f->owner) ?
		       "for= needs the name of a guest" : "more than 32 for= modules");
		return true;
	}
	f = &file_modules[nfile_modules++];
	f->mod = mod;
	f->idx = idx;
	memcpy(f->owner, w + 4, n);
	f->owner[n] = 0;
	return true;
}

bool guest_is_file_module(const struct boot_module *mod)
{
	for (unsigned i = 0; i < nfile_modules; i++)
		if (file_modules[i].mod == mod)
			return true;
	return false;
}

void guest_file_modules_check(void)
{
	for (unsigned i = 0; i < nfile_modules; i++)
		if (!file_modules[i].taken)
			pr_err("hv: module %u not used: for=%s names no guest\n", file_modules[i].idx,
			       file_modules[i].owner);
}

/* Collects the for=NAME files of guest g into c. false after reporting too many. */
static bool collect_files(struct vm *g, struct guest_ctl *c)
{
	for (unsigned i = 0; i < nfile_modules; i++) {
		struct file_module *f = &file_modules[i];
		const char *line = f->mod->cmdline;

		if (strcmp(f->owner, g->name))
			continue;
		if (c->nextra == LOADER_MAX_FILES) {
			not_started(g, "more than %u files handed to it by for=%s", LOADER_MAX_FILES, g->name);
			return false;
		}
		if (*line == '/')                     /* GRUB puts the file's path first */
			while (*line && *line != ' ')
				line++;
		while (*line == ' ')
			line++;
		c->extra[c->nextra++] = (struct loader_file){ (const void *)f->mod->start,
							      f->mod->end - f->mod->start, line };
		f->taken = true;
	}
	return true;
}

/* Frees what vcpu_create allocated for vCPUs 0..n-1 of a guest that never ran. */
static void destroy_vcpus(struct vm *g, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		vcpu_leave(&g->vcpus[i]);
		vcpu_free(&g->vcpus[i]);
	}
}

#define build_failed(vm, verb, ...) do { \
	char _why[160]; \
	snformat(_why, sizeof(_why), __VA_ARGS__); \
	pr_err("hv: guest %s %s: %s\n", (vm)->name, verb, _why); \
} while (0)

/* Everything of a guest that its module line does not say: memory, devices, vCPUs. Before a rebuild
 * the old ones are gone (guest_detach): clear them to what a new guest starts with. The module-line
 * part of struct vm comes first (vcpu/vcpu.h) and is kept. */
static void reset_runtime(struct vm *g)
{
	size_t keep = __builtin_offsetof(struct vm, mem);

	_Static_assert(__builtin_offsetof(struct vm, create_ticks) < __builtin_offsetof(struct vm, mem),
		       "struct vm: the module-line part comes before the runtime part");
	memset((char *)g + keep, 0, sizeof(*g) - keep);
}

/* Builds the guest that g's module line and c describe: checks and loads its image into a new
 * partition, builds its boot information, its devices and its vCPUs (not yet scheduled). On failure
 * reports "hv: guest NAME <verb>: REASON", frees what it took and returns false. */
static bool build(struct vm *g, struct guest_ctl *c, const char *verb)
{
	uint8_t rsdp[ACPI_RSDP_LEN];
	struct vcpu_state start;
	char why[160];
	struct loader_job job = {
		.file = (const void *)c->mod->start, .size = c->mod->end - c->mod->start,
		.cmdline = g->args, .ram = g->mem_size, .extra = c->extra, .nextra = c->nextra,
		.start = &start, .why = why, .whylen = sizeof(why),
	};
	int err;

	g->t_create = rdtsc();
	/* The image says its boot protocol (Linux, Multiboot2, Multiboot1): checked whole before any
	 * memory is taken (no write function: nothing written). */
	if (loader_load_guest(&job)) {
		build_failed(g, verb, "bad image: %s", why);
		return false;
	}
	if (create_devices(g)) {
		build_failed(g, verb, "cannot register its devices");
		return false;
	}

	/* Its nested map in the back end's format: EPT (VMX) or NPT (SVM: ept/ept.h). */
	err = gmem_create_format(&g->mem, vcpu_backend->map_format, g->alloc, g->mem_size,
				 g->alloc == GMEM_EAGER ? SIZE_2M : g->chunk, vcpu_backend->map_page_sizes());
	if (err) {
		build_failed(g, verb, "%s", err == -ENOMEM ? "out of memory for its RAM and EPT" :
			     "cannot set up its RAM");
		return false;
	}
	job.rsdp_gpa = g->rsdp_gpa;
	job.rsdp = rsdp;
	job.rsdp_len = sizeof(rsdp);
	job.write = write_guest;
	job.ctx = &g->mem;
	if (write_acpi(g, rsdp) || (err = loader_load_guest(&job))) {
		build_failed(g, verb, "out of memory while loading its image");
		gmem_destroy(&g->mem);
		return false;
	}
	for (unsigned i = 0; i < g->nvcpus; i++)
		if (vcpu_create(g, i, c->cpu_of[i], i == 0 ? &start : NULL)) {
			build_failed(g, verb, "out of memory for its vCPUs");
			destroy_vcpus(g, i);
			gmem_destroy(&g->mem);
			return false;
		}
	g->create_ticks = rdtsc() - g->t_create;
	monitor_guest_built(g);
	pr_debug("hv: guest %s: %s, entry 0x%lx, command line '%s'\n", g->name, why, start.rip, g->args);
	return true;
}

struct vm *guest_create(const struct boot_module *mod, unsigned idx, uint64_t cpus)
{
	struct guest_opts opts = { "", 1, END_STOP, END_STOP, 10 };
	struct guest_ctl *c;
	struct vm *g;

	if (nvms == MAX_GUESTS) {
		pr_err("hv: module %u not started: more than %d guests\n", idx, MAX_GUESTS);
		return NULL;
	}
	g = &vms[nvms];
	c = &ctls[nvms];
	memset(g, 0, sizeof(*g));
	memset(c, 0, sizeof(*c));
	g->mem_size = 32ull << 20;
	g->alloc = config.alloc;
	g->chunk = config.chunk;
	g->paging = config.paging;
	if (!parse_line(g, &opts, mod, idx) || !check_fits(g, &opts, idx, cpus, c->cpu_of) ||
	    !collect_files(g, c))
		return NULL;
	c->mod = mod;
	c->idx = idx;
	c->on_exit = opts.on_exit;
	c->on_crash = opts.on_crash;
	c->restarts_max = opts.restarts;
	g->id = nvms + 1;
	if (!build(g, c, "not started"))
		return NULL;
	c->live = true;
	nvms++;
	__atomic_add_fetch(&live_guests, 1, __ATOMIC_SEQ_CST);
	report_started(g);
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

/* The contract lines of a guest that ended, its exits summed over its vCPUs (and per vCPU where it
 * has several), its memory. */
static void report_end(struct vm *g)
{
	struct vcpu_exit_counts exits = { 0 };
	char buf[512], touched[24];

	vuart_flush(&g->uart);
	if (g->end_why == VCPU_EXITED)
		pr_info("hv: guest %s exited code=%d\n", g->name, g->exit_code);
	else
		pr_info("hv: guest %s stopped: %s\n", g->name, g->stop_reason);
	for (unsigned i = 0; i < g->nvcpus; i++)
		vcpu_exit_counts_add(&exits, &g->vcpus[i].exits);
	vcpu_exit_summary(&exits, buf, sizeof(buf));
	pr_info("hv: guest %s exits: %s\n", g->name, buf);
	for (unsigned i = 0; g->nvcpus > 1 && i < g->nvcpus; i++) {
		vcpu_exit_summary(&g->vcpus[i].exits, buf, sizeof(buf));
		pr_info("hv: guest %s vcpu %u (cpu %u) exits: %s\n", g->name, i, g->vcpus[i].cpu, buf);
	}
	mib(touched, sizeof(touched), gmem_touched_bytes(&g->mem));
	pr_info("hv: guest %s memory: touched %s MiB of %lu MiB, %lu first-touch exits\n", g->name,
		touched, g->mem_size >> 20, g->mem.first_touch_exits);
	pr_info("hv: guest %s host memory: %lu KiB RAM + %lu KiB EPT tables\n", g->name,
		gmem_touched_bytes(&g->mem) >> 10, g->mem.ept.tables * 4);
	if (g->paging == VM_PAGING_SHADOW) {
		struct shadow_stats st = { 0 };
		uint64_t peak = 0;

		for (unsigned i = 0; i < g->nvcpus; i++) {
			const struct shadow *sh = &g->vcpus[i].sh;

			st.fills += sh->stats.fills;
			st.injects += sh->stats.injects;
			st.gpa_faults += sh->stats.gpa_faults;
			st.invlpgs += sh->stats.invlpgs;
			st.cr3_hits += sh->stats.cr3_hits;
			st.cr3_misses += sh->stats.cr3_misses;
			st.evictions += sh->stats.evictions;
			peak += sh->peak_pages;
		}
		pr_info("hv: guest %s shadow: %lu fills, %lu #PF injected, %lu GPA faults, CR3 %lu hits / %lu misses / "
			"%lu evictions, %lu INVLPG, at most %lu KiB of shadow tables\n", g->name, st.fills, st.injects,
			st.gpa_faults, st.cr3_hits, st.cr3_misses, st.evictions, st.invlpgs, peak * 4);
	}
	if (vcpu_backend->guest_report)
		vcpu_backend->guest_report(g);
	if (g->bus.print.dropped_lines)
		pr_info("hv: guest %s output: %lu lines (%lu bytes) dropped over its limit\n", g->name,
			g->bus.print.dropped_lines, g->bus.print.dropped_bytes);
}

static struct guest_ctl *ctl_of(const struct vm *g)
{
	return &ctls[g - vms];
}

/* The monitor may hold the lock while it waits for a cross-CPU call to this CPU (guest_hold, then
 * cpu_call to read a VMCS): wait for it running this CPU's calls, as cpu_call does. */
static void ctl_lock(struct guest_ctl *c)
{
	while (!spin_trylock(&c->lock)) {
		cpu_calls_run();
		cpu_relax();
	}
}

/* Should the guest that just ended come back? The monitor's restart always; the monitor's stop
 * never; else its on-exit= or on-crash= policy (crash: any "stopped:" end), at most restarts= times. */
static bool want_restart(const struct vm *g, struct guest_ctl *c)
{
	unsigned policy = g->end_why == VCPU_EXITED ? c->on_exit : c->on_crash;

	if (c->monitor_restart)
		return true;
	if (c->monitor_stop || policy != END_RESTART)
		return false;
	if (c->auto_restarts >= c->restarts_max) {
		pr_info("hv: guest %s not restarted: its %lu restarts (restarts=) are used up\n", g->name,
			c->restarts_max);
		return false;
	}
	return true;
}

/* The last vCPU of an ended guest left: its memory goes back to the allocator, then it is either
 * rebuilt and scheduled again (a restart) or over. true if it lives on. */
static bool end_or_restart(struct vm *g)
{
	struct guest_ctl *c = ctl_of(g);
	bool by_monitor = c->monitor_restart, restart;

	if (g->end_why == VCPU_EXITED)
		snformat(c->last_end, sizeof(c->last_end), "exited: code=%d", g->exit_code);
	else
		snformat(c->last_end, sizeof(c->last_end), "stopped: %s", g->stop_reason);
	restart = want_restart(g, c);
	c->monitor_stop = c->monitor_restart = false;
	ctl_lock(c);
	for (unsigned i = 0; i < g->nvcpus; i++)
		vcpu_free(&g->vcpus[i]);
	gmem_destroy(&g->mem);
	c->live = false;
	if (restart) {
		reset_runtime(g);
		restart = build(g, c, "not restarted");
	}
	if (restart) {
		c->restarts++;
		if (!by_monitor)
			c->auto_restarts++;
		c->live = true;
	}
	spin_unlock(&c->lock);
	if (!restart)
		return false;
	pr_info("hv: guest %s restarted (%u): %s\n", g->name, c->restarts,
		by_monitor ? "asked by the monitor" : c->last_end);
	report_started(g);
	hv_schedule(g);
	return true;
}

unsigned guest_detach(struct vcpu *v)
{
	struct vm *g = v->vm;

	/* VMCLEAR and INVEPT here: this CPU keeps no VMCS and no cached translation of the guest.
	 * Its memory stays: siblings still running may post to its APIC page. */
	if (!vcpu_leave(v))
		return __atomic_load_n(&live_guests, __ATOMIC_ACQUIRE);
	/* The last vCPU to leave: every CPU it ran on has dropped the EPT's translations and no vCPU
	 * of the guest runs any more, so the vCPUs' memory, the EPT tables and the RAM can go back to
	 * the allocator (end_or_restart, under the lock the monitor holds the guest with). */
	report_end(g);
	if (end_or_restart(g))
		return __atomic_load_n(&live_guests, __ATOMIC_ACQUIRE);
	return __atomic_sub_fetch(&live_guests, 1, __ATOMIC_SEQ_CST);
}

/* --- for the monitor ---------------------------------------------------------------------------------- */

void guest_life(const struct vm *g, struct guest_life *life)
{
	const struct guest_ctl *c = ctl_of(g);

	life->live = c->live;
	life->ending = c->live && g->ending;
	life->restarts = c->restarts;
	life->on_exit = c->on_exit;
	life->on_crash = c->on_crash;
	life->restarts_max = c->restarts_max;
	life->last_end = c->last_end;
}

bool guest_hold(struct vm *g)
{
	struct guest_ctl *c = ctl_of(g);

	spin_lock(&c->lock);
	if (c->live)
		return true;
	spin_unlock(&c->lock);
	return false;
}

void guest_release(struct vm *g)
{
	spin_unlock(&ctl_of(g)->lock);
}

int guest_stop(struct vm *g, bool restart)
{
	struct guest_ctl *c = ctl_of(g);

	/* Held: the guest cannot end and be rebuilt between the look and the stop (which would stop
	 * the new one, or write into it while reset_runtime clears it). */
	if (!guest_hold(g))
		return -EBUSY;
	if (g->ending) {
		guest_release(g);
		return -EBUSY;
	}
	if (restart)
		__atomic_store_n(&c->monitor_restart, true, __ATOMIC_RELEASE);
	else
		__atomic_store_n(&c->monitor_stop, true, __ATOMIC_RELEASE);
	vm_stop(&g->vcpus[0], restart ? "by the monitor, to restart" : "by the monitor");
	guest_release(g);
	return 0;
}

int guest_start(struct vm *g)
{
	struct guest_ctl *c = ctl_of(g);

	if (c->live)
		return -EBUSY;
	ctl_lock(c);
	reset_runtime(g);
	if (!build(g, c, "not started")) {
		spin_unlock(&c->lock);
		return -ENOMEM;
	}
	c->auto_restarts = 0;               /* the operator gives it its restarts= again */
	c->live = true;
	spin_unlock(&c->lock);
	__atomic_add_fetch(&live_guests, 1, __ATOMIC_SEQ_CST);
	report_started(g);
	hv_schedule(g);
	return 0;
}
