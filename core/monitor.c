/* The monitor: the serial console's input, the console focus, and the shell (hv>) that shows and
 * steers the guests.
 *
 * Each typed byte goes to the focus: the guest that has it (its virtual 16550's receive FIFO) or the
 * monitor's line editor. Ctrl-] (MONITOR_ESCAPE) makes the next byte a console key:
 *
 *   m       the monitor               1..9    guest 1..9, in module order
 *   n, p    next / previous focus (the monitor, then each guest, round)
 *   Ctrl-]  a literal Ctrl-] for the focused guest          ?, h   these keys
 *
 * The focused place's unfinished line is the console's tail (console_set_tail): the monitor's prompt
 * and what is typed after it, or the focused guest's prompt and its echo of what is typed; printk's
 * lines go above it. The prompt appears with the first key the monitor gets, so a console nobody
 * types on prints exactly what it printed before there was input.
 *
 * Everything here runs on the boot CPU in its scheduler loop (monitor_poll), between time slices:
 * commands may take locks, print, and ask other CPUs for what only they can read (a VMCS is current
 * on its vCPU's CPU only: cpu_call). Answers are printed whatever loglevel= says. */
#include <stdarg.h>
#include "arch/x86/apic.h"
#include "arch/x86/call.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "arch/x86/power.h"
#include "arch/x86/time.h"
#include "console/console.h"
#include "console/printk.h"
#include "core/config.h"
#include "core/guest.h"
#include "core/hv.h"
#include "core/monitor.h"
#include "ept/ept.h"
#include "gmem/gmem.h"
#include "lib/cmdline.h"
#include "lib/errno.h"
#include "lib/format.h"
#include "lib/string.h"
#include "pmm/pmm.h"
#include "vcpu/exit_kind.h"
#include "vcpu/seg.h"
#include "vcpu/snapshot.h"
#include "shadow/gpt.h"
#include "vcpu/vcpu.h"

#define LINE_MAX 120              /* a command line; more is refused whole */
#define MAX_ARGS 6

static int focus = -1;            /* vms[] index of the guest with the focus; -1: the monitor */
static bool escape;               /* Ctrl-] came: the next byte is a console key */
static unsigned key_seq;          /* a terminal's key sequence being skipped: 1 after ESC, 2 in ESC [ */
static bool last_cr;              /* the previous byte was CR (CR LF is one Enter) */
static bool prompt_on;            /* the monitor has had a key: its prompt shows */
static char line[LINE_MAX + 1];
static unsigned line_len, line_over;  /* the line, and bytes beyond LINE_MAX typed into it */
static int told_not_running = -1; /* the guest whose "not running" was said (once per focus) */
/* How long a command waited, in TSC ticks, for the `console` command: quiet_at is the last time
 * nothing typed was waiting (so the line's first key came after it; or when its interrupt woke the
 * halted CPU: monitor_key_came), line_from that time for the line being typed (0: none yet),
 * last_wait the last command's time from there to the end of its answer (its lines in the console's
 * ring, not yet on the wire). */
static uint64_t quiet_at, line_from, last_wait;

/* One answer line, indented under the "hv> command" line that asked. */
static __attribute__((format(printf, 1, 2))) void say(const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	format(text, sizeof(text), fmt, ap);
	va_end(ap);
	printk(LOG_ERR, "  %s\n", text);
}

/* --- focus and tail ----------------------------------------------------------------------------------- */

static void draw_prompt(void)
{
	char t[LINE_MAX + 8];

	if (focus >= 0 || !prompt_on)
		return;
	memcpy(t, "hv> ", 4);
	memcpy(t + 4, line, line_len);
	console_set_tail(t, 4 + line_len);
}

/* The focused guest's UART shows its unfinished line (vuart_set_live), only while the guest is held:
 * a guest being rebuilt on another CPU has its UART cleared (core/guest.c, reset_runtime), and its
 * rebuild sets it live itself if it has the focus then (monitor_guest_built). */
static void set_live(int f, bool live)
{
	if (f >= 0 && guest_hold(&vms[f])) {
		vuart_set_live(&vms[f].uart, live);
		guest_release(&vms[f]);
	}
}

static void set_focus(int f)
{
	set_live(focus, false);
	if (f < 0)
		printk(LOG_ERR, "hv: console: focus on the monitor (hv>); 'help' lists its commands\n");
	else
		printk(LOG_ERR, "hv: console: focus on guest %s (%u); Ctrl-] m for the monitor\n",
		       vms[f].name, f + 1);
	focus = f;                      /* before the hold: a rebuild after it sees the focus */
	told_not_running = -1;
	if (f < 0) {
		prompt_on = true;
		console_set_tail(NULL, 0);
		draw_prompt();
	} else {
		set_live(f, true);
	}
}

void monitor_guest_built(struct vm *g)
{
	if (focus == (int)(g - vms))
		vuart_set_live(&g->uart, true);
}

void monitor_banner(void)
{
	printk(LOG_ERR, "hv: console: keys go to the monitor (hv>, 'help'); Ctrl-] then 1-9 or n/p picks a "
	       "guest, m the monitor, ? the keys\n");
}

static void key_help(void)
{
	printk(LOG_ERR, "hv: console keys: Ctrl-] then: m monitor, 1-%u guest by number, n/p next/previous, "
	       "Ctrl-] a literal Ctrl-] for the guest, ? this help\n", nvms ? (nvms < 9 ? nvms : 9) : 1);
}

static void to_guest(uint8_t c);

/* The byte after Ctrl-]. */
static void console_key(uint8_t c)
{
	int n = (int)nvms;

	if (c == 'm' || c == 'M') {
		set_focus(-1);
	} else if (c >= '1' && c <= '9') {
		if (c - '1' < n)
			set_focus(c - '1');
		else
			printk(LOG_ERR, "hv: console: no guest %c (%s%u guests)\n", c, n ? "1.." : "", n);
	} else if (c == 'n' || c == 'N' || c == 'p' || c == 'P') {
		int step = c == 'n' || c == 'N' ? 1 : n;     /* + n = - 1 modulo n + 1 */

		set_focus((focus + 1 + step) % (n + 1) - 1);  /* -1 (monitor), 0, ..., n - 1, round */
	} else if (c == MONITOR_ESCAPE && focus >= 0) {
		to_guest(c);
	} else {
		key_help();
	}
}

/* A byte for the focused guest; a guest that has ended or is ending gets nothing, and the user is
 * told once. The guest is held while the byte goes in: its UART raises IRQ 4, which reaches its
 * vCPUs' APIC pages, and none of that may be freed or cleared for a rebuild meanwhile. */
static void to_guest(uint8_t c)
{
	struct vm *g = &vms[focus];
	struct guest_life life;

	if (guest_hold(g)) {
		bool ending = g->ending;

		/* input_hold= (tests): the window between the look and the byte, widened so that the guest's
		 * end lands in it (lifetime-input-while-ending); held, the end waits for it. */
		if (config.input_hold_us)
			udelay(config.input_hold_us);
		if (!ending)
			vuart_receive(&g->uart, &c, 1);
		guest_release(g);
		if (!ending)
			return;
	}
	guest_life(g, &life);
	if (told_not_running != focus) {
		told_not_running = focus;
		printk(LOG_ERR, "hv: console: guest %s is not running (%s); Ctrl-] m, then 'start %s'\n", g->name,
		       life.ending ? "ending" : life.last_end, g->name);
	}
}

/* --- the line editor ---------------------------------------------------------------------------------- */

static void run_line(char *text);

/* Returns true when the key ran a command. */
static bool editor_key(uint8_t c)
{
	bool cr = last_cr;

	last_cr = c == '\r';
	prompt_on = true;
	/* Terminal key sequences (arrows, function keys: ESC [ ... final, ESC O x) are not ours. */
	if (key_seq == 1) {
		key_seq = c == '[' || c == 'O' ? 2 : 0;
		return false;
	}
	if (key_seq == 2) {
		if (c >= 0x40 && c <= 0x7e)
			key_seq = 0;
		return false;
	}
	switch (c) {
	case 0x1b:                              /* ESC */
		key_seq = 1;
		return false;
	case '\n':
		if (cr)
			return false;                   /* CR LF: the LF is the same Enter */
		/* fall through */
	case '\r':
		line[line_len] = 0;
		console_set_tail(NULL, 0);
		printk(LOG_ERR, "hv> %s\n", line);
		if (line_over)
			say("error: the line is longer than %u characters (%u more); nothing done", LINE_MAX,
			    line_over);
		else
			run_line(line);
		last_wait = rdtsc() - line_from;
		line_len = line_over = 0;
		line_from = 0;
		draw_prompt();
		return true;
	case 0x7f: case 0x08:                   /* DEL, backspace */
		if (line_over)
			line_over--;
		else if (line_len)
			line_len--;
		break;
	case 0x15: case 0x03:                   /* Ctrl-U, Ctrl-C: forget the line */
		line_len = line_over = 0;
		line_from = 0;
		break;
	case 0x17:                              /* Ctrl-W: the last word */
		while (line_len && line[line_len - 1] == ' ')
			line_len--;
		while (line_len && line[line_len - 1] != ' ')
			line_len--;
		line_over = 0;
		break;
	case 0x0c:                              /* Ctrl-L: draw the line again */
		console_set_tail(NULL, 0);
		break;
	default:
		if (c < 0x20 || c > 0x7e)
			return false;                   /* other control bytes, 8-bit bytes: ignored */
		if (line_len < LINE_MAX)
			line[line_len++] = (char)c;
		else
			line_over++;
		break;
	}
	if (focus < 0)
		draw_prompt();
	return false;
}

/* Returns true when the byte made the monitor do something that took time (a command, a switch). */
static bool input_byte(uint8_t c)
{
	if (escape) {
		escape = false;
		console_key(c);
		return true;
	}
	if (c == MONITOR_ESCAPE) {
		escape = true;
		return false;
	}
	if (focus < 0) {
		if (!line_from)
			line_from = quiet_at;
		return editor_key(c);
	}
	to_guest(c);
	return false;
}

bool monitor_poll(void)
{
	/* Once a byte came, the next of a burst (a pasted line) is a character time away: wait up to
	 * three (260 us at 115200 baud) so a line goes in at once, not one byte per time slice. One
	 * command per call, and at most 256 bytes: the vCPUs of this CPU get their turn between (a
	 * pasted script, or a flood of bytes, must not starve them). */
	uint64_t gap = us_to_tsc(260), until = 0, now = rdtsc();

	if (console_rx_quiet()) {
		quiet_at = now;
		return false;
	}
	for (unsigned n = 0; n < 256;) {
		int c = console_getc();

		if (c < 0) {
			if (!until || rdtsc() >= until)
				return false;
			if (console_input_by_irq())
				irq_window();   /* the next byte comes in by its interrupt */
			else
				cpu_relax();
			continue;
		}
		n++;
		if (input_byte((uint8_t)c))
			return true;
		until = rdtsc() + gap;
	}
	return true;
}

void monitor_key_came(uint64_t tsc)
{
	if (tsc > quiet_at)
		quiet_at = tsc;
}

void monitor_idle(void)
{
	bool by_irq = console_input_by_irq();

	lapic_timer_init();
	for (;;) {
		while (monitor_poll())
			;
		if (!by_irq)
			lapic_timer_arm(rdtsc() + us_to_tsc(MONITOR_POLL_US));
		sti_hlt();              /* until a key (by interrupt), or the time to poll */
		if (!by_irq)
			lapic_timer_arm(0);
	}
}

/* --- arguments ---------------------------------------------------------------------------------------- */

static bool number(const char *s, uint64_t *v)
{
	if (!parse_uint(s, strlen(s), v))
		return true;
	say("error: '%s' is not a number (decimal, or hex with 0x)", s);
	return false;
}

/* A guest by name or by number (1, 2, ... in module order). */
static struct vm *find_guest(const char *s)
{
	char names[200];
	unsigned n = 0;
	uint64_t id;

	for (unsigned i = 0; i < nvms; i++)
		if (!strcmp(vms[i].name, s))
			return &vms[i];
	if (!parse_uint(s, strlen(s), &id) && id >= 1 && id <= nvms)
		return &vms[id - 1];
	names[0] = 0;
	for (unsigned i = 0; i < nvms && n < sizeof(names) - 40; i++)
		n += snformat(names + n, sizeof(names) - n, "%s%s", i ? ", " : "", vms[i].name);
	say("error: no guest '%s' (%s%s)", s, nvms ? "guests: " : "no guests", names);
	return NULL;
}

static bool find_vcpu(struct vm *g, const char *s, struct vcpu **v)
{
	uint64_t i = 0;

	if (s && !number(s, &i))
		return false;
	if (i >= g->nvcpus) {
		if (g->nvcpus == 1)
			say("error: guest %s has one vCPU (0); no vCPU %lu", g->name, i);
		else
			say("error: guest %s has vCPUs 0..%u; no vCPU %lu", g->name, g->nvcpus - 1, i);
		return false;
	}
	*v = &g->vcpus[i];
	return true;
}

/* A live guest's state in a word: running, halted (every vCPU waits), ending. */
static const char *live_state(const struct vm *g)
{
	if (g->ending)
		return "ending";
	for (unsigned i = 0; i < g->nvcpus; i++)
		if (g->vcpus[i].state == VCPU_RUNNING)
			return "running";
	return "halted";
}

static void state_of(const struct vm *g, char *buf, size_t size)
{
	struct guest_life life;

	guest_life(g, &life);
	if (life.live)
		snformat(buf, size, "%s", live_state(g));
	else
		snformat(buf, size, "%s", life.last_end[0] ? life.last_end : "not started");
}

/* --- a vCPU's state, read on its CPU ------------------------------------------------------------------ */

/* v's state, read on its CPU. The guest is held on return (guest_release), unless false: it is not
 * running (said). Held, it cannot be freed or rebuilt meanwhile. */
static bool snapshot(struct vm *g, struct vcpu *v, struct vcpu_snapshot *s)
{
	struct guest_life life;

	if (!guest_hold(g)) {
		guest_life(g, &life);
		say("error: guest %s is not running (%s)", g->name, life.last_end[0] ? life.last_end : "not started");
		return false;
	}
	vcpu_snapshot(v, s);
	if (s->status == VCPU_SNAP_GONE) {
		guest_release(g);
		say("error: guest %s vCPU %u has just left its CPU (the guest is ending)", g->name, v->index);
		return false;
	}
	return true;
}

/* --- the commands ------------------------------------------------------------------------------------- */

static void cmd_help(int argc, char **argv);

static void cmd_guests(int argc, char **argv)
{
	(void)argc, (void)argv;
	if (!nvms) {
		say("no guests");
		return;
	}
	say("%-3s %-12s %-10s %-8s %-8s %-7s %-9s %-9s %s", "id", "name", "vcpus@cpu", "mem", "touched", "alloc",
	    "exits", "restarts", "state");
	for (unsigned i = 0; i < nvms; i++) {
		struct vm *g = &vms[i];
		struct guest_life life;
		char cpus[48], mem[16], touched[24], restarts[24], state[200];
		uint64_t exits = 0;
		unsigned n = 0;

		guest_life(g, &life);
		for (unsigned k = 0; k < g->nvcpus; k++) {
			n += snformat(cpus + n, sizeof(cpus) - n, k ? ",%u" : "%u", g->vcpus[k].cpu);
			exits += vcpu_exit_total(&g->vcpus[k].exits);
		}
		if (guest_hold(g)) {
			snformat(touched, sizeof(touched), "%luM", gmem_touched_bytes(&g->mem) >> 20);
			guest_release(g);
		} else {
			snformat(touched, sizeof(touched), "-");
		}
		if (life.on_exit == END_RESTART || life.on_crash == END_RESTART)
			snformat(restarts, sizeof(restarts), "%u (max %lu)", life.restarts, life.restarts_max);
		else
			snformat(restarts, sizeof(restarts), "%u", life.restarts);
		state_of(g, state, sizeof(state));
		snformat(mem, sizeof(mem), "%luM", g->mem_size >> 20);
		say("%-3u %-12s %u@%-8s %-8s %-8s %-7s %-9lu %-9s %s", g->id, g->name, g->nvcpus, cpus,
		    mem, touched, alloc_names[g->alloc], exits, restarts, state);
	}
}

/* "ar" shows a segment's attributes as the descriptor holds them (its bits 55:40, SDM Vol. 3A, 3.4.5,
 * Figure 3-8; the limit's bits 19:16 in 11:8 shown as 0) and 0x10000 for an unusable register. */
static uint32_t seg_ar(const struct vcpu_seg *sg)
{
	return sg->attr | (sg->unusable ? 0x10000u : 0);
}

static void print_regs(const struct vcpu_snapshot *s)
{
	static const char *const seg_names[VCPU_NSEGS] = { "es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr" };
	static const char *const activity[] = { "running", "halted (HLT)", "waiting for a Start-up IPI" };
	static const char *const event_types[] = {
		[VCPU_EVENT_EXTINT] = "external interrupt", [VCPU_EVENT_NMI] = "NMI",
		[VCPU_EVENT_EXCEPTION] = "exception", [VCPU_EVENT_SOFT_INT] = "software interrupt",
		[VCPU_EVENT_PRIV_SOFT_EXC] = "INT1", [VCPU_EVENT_SOFT_EXC] = "software exception",
		[VCPU_EVENT_OTHER] = "other event",
	};
	const struct vcpu_pending_event *e = &s->event;

	say("rip %016lx rsp %016lx rflags %016lx", s->rip, s->rsp, s->rflags);
	say("rax %016lx rbx %016lx rcx %016lx rdx %016lx", s->rax, s->rbx, s->rcx, s->rdx);
	say("rsi %016lx rdi %016lx rbp %016lx r8  %016lx", s->rsi, s->rdi, s->rbp, s->r8);
	say("r9  %016lx r10 %016lx r11 %016lx r12 %016lx", s->r9, s->r10, s->r11, s->r12);
	say("r13 %016lx r14 %016lx r15 %016lx cr2 %016lx", s->r13, s->r14, s->r15, s->cr2);
	say("cr0 %016lx cr3 %016lx cr4 %016lx efer %016lx", s->cr0, s->cr3, s->cr4, s->efer);
	for (unsigned i = 0; i < VCPU_NSEGS; i += 2)
		say("%-4s %04x base %016lx limit %08x ar %05x   %-4s %04x base %016lx limit %08x ar %05x",
		    seg_names[i], s->seg[i].sel, s->seg[i].base, s->seg[i].limit, seg_ar(&s->seg[i]),
		    seg_names[i + 1], s->seg[i + 1].sel, s->seg[i + 1].base, s->seg[i + 1].limit,
		    seg_ar(&s->seg[i + 1]));
	say("gdtr base %016lx limit %04x   idtr base %016lx limit %04x", s->gdtr_base, s->gdtr_limit,
	    s->idtr_base, s->idtr_limit);
	if (s->status == VCPU_SNAP_START) {
		say("state: not run yet (the registers it will start with)");
		return;
	}
	say("state: %s%s; blocking:%s%s%s%s", activity[s->activity < 3 ? s->activity : 0],
	    s->activity == VCPU_HALTED ? (s->halted_if ? ", interrupts on" : ", interrupts off") : "",
	    s->blocking ? "" : " none", s->blocking & VCPU_BLOCK_STI ? " STI" : "",
	    s->blocking & VCPU_BLOCK_MOV_SS ? " MOV-SS" : "", s->blocking & VCPU_BLOCK_NMI ? " NMI" : "");
	if (e->valid && e->has_error_code)
		say("pending: %s, vector %u, error code 0x%x, to inject at the next entry",
		    event_types[e->type], e->vector, e->error_code);
	else if (e->valid)
		say("pending: %s, vector %u, to inject at the next entry", event_types[e->type], e->vector);
	else
		say("pending: no exception or event to inject");
	if (s->irq >= 0)
		say("pending: interrupt vector 0x%x in its local APIC; NMIs %u", (unsigned)s->irq, s->nmi);
	else
		say("pending: no interrupt in its local APIC; NMIs %u", s->nmi);
}

static void cmd_regs(int argc, char **argv)
{
	struct vm *g = find_guest(argv[1]);
	struct vcpu *v;
	struct vcpu_snapshot s;

	if (!g || !find_vcpu(g, argc > 2 ? argv[2] : NULL, &v) || !snapshot(g, v, &s))
		return;
	guest_release(g);
	say("guest %s vCPU %u on cpu %u:", g->name, v->index, v->cpu);
	print_regs(&s);
}

static const char *const ept_level_names[5] = { "", "PTE", "PDE", "PDPTE", "PML4E" };

/* The guest's RAM as "0..0xffffff", or with the hole below 4 GiB "0..0xbfffffff, 0x100000000..0x17fffffff"
 * (gmem_layout). */
static void ram_ranges(const struct vm *g, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < g->mem.nram && n < len; i++)
		n += snformat(buf + n, len - n, "%s0x%lx..0x%lx", i ? ", " : "", g->mem.ram[i].base,
			      g->mem.ram[i].base + g->mem.ram[i].len - 1);
	if (g->mem.nram == 1 || !g->mem.nram)
		snformat(buf, len, "0..0x%lx", g->mem_size - 1);
}

/* Shows g's EPT walk for `gpa` (ept_walk), one line per entry read; the guest is held. *hpa and true
 * if it maps. */
static bool ept_walk_print(struct vm *g, uint64_t gpa, uint64_t *hpa)
{
	static const char *const types[8] = { "UC", "WC", "2?", "3?", "WT", "WP", "WB", "7?" };
	struct ept_walk w;
	char ram[64];

	ept_walk(&g->mem.ept, gpa, &w);
	if (!w.nsteps) {
		if (gpa >> 48)
			say("GPA 0x%lx: beyond the 48 bits a 4-level EPT walk translates: not mapped", gpa);
		else
			say("GPA 0x%lx: not mapped: the guest has no EPT (no memory now)", gpa);
		return false;
	}
	for (unsigned i = 0; i < w.nsteps; i++) {
		const struct ept_walk_step *st = &w.steps[i];
		uint64_t e = st->entry;
		char perm[4] = { e & EPT_READ ? 'r' : '-', e & EPT_WRITE ? 'w' : '-', e & EPT_EXEC ? 'x' : '-', 0 };

		if (w.stop_level == st->level)
			say("EPT %-5s [%3u] at HPA 0x%lx = 0x%016lx  not present", ept_level_names[st->level],
			    st->index, st->table + st->index * 8, e);
		else if (w.mapped && i == w.nsteps - 1)
			say("EPT %-5s [%3u] at HPA 0x%lx = 0x%016lx  %s page %s %s%s", ept_level_names[st->level],
			    st->index, st->table + st->index * 8, e, w.page_size >= SIZE_1G ? "1G" :
			    w.page_size >= SIZE_2M ? "2M" : "4K", perm, types[(e >> EPT_MT_SHIFT) & 7],
			    e & EPT_IGNORE_PAT ? " ignore-PAT" : "");
		else
			say("EPT %-5s [%3u] at HPA 0x%lx = 0x%016lx  %s -> table at HPA 0x%lx",
			    ept_level_names[st->level], st->index, st->table + st->index * 8, e, perm,
			    (uint64_t)(e & EPT_ADDR_MASK));
	}
	if (w.mapped) {
		*hpa = w.hpa;
		say("GPA 0x%lx -> HPA 0x%lx", gpa, w.hpa);
		return true;
	}
	ram_ranges(g, ram, sizeof(ram));
	if (gmem_is_ram(&g->mem, gpa, 1))
		say("GPA 0x%lx: not mapped yet: guest RAM (%s), backed on its first touch (alloc %s)", gpa,
		    ram, alloc_names[g->alloc]);
	else
		say("GPA 0x%lx: not mapped: outside the guest's RAM (%s)", gpa, ram);
	return false;
}

static void cmd_ept(int argc, char **argv)
{
	struct vm *g = find_guest(argv[1]);
	uint64_t gpa, hpa;
	char ram[64];

	(void)argc;
	if (!g || !number(argv[2], &gpa))
		return;
	if (!guest_hold(g)) {
		say("error: guest %s is not running: it has no EPT", g->name);
		return;
	}
	ram_ranges(g, ram, sizeof(ram));
	say("guest %s: EPT root at HPA 0x%lx, RAM %s, alloc %s", g->name, g->mem.ept.root, ram,
	    alloc_names[g->alloc]);
	ept_walk_print(g, gpa, &hpa);
	guest_release(g);
}

/* The guest's own page walk reads its tables through the EPT, without backing anything (a monitor
 * read is not a guest touch): a table in a chunk not mapped yet reads as "not RAM". */
static int monitor_read_gpa(void *arg, uint64_t gpa, void *dst, unsigned len)
{
	struct vm *g = arg;
	uint64_t hpa;

	if ((gpa & 0xfff) + len > 0x1000 || !gmem_is_ram(&g->mem, gpa, len) ||
	    !ept_translate(&g->mem.ept, gpa, &hpa, NULL, NULL))
		return -1;
	memcpy(dst, phys_to_virt(hpa), len);
	return 0;
}

/* The shadow leaf for a GVA, looked up on the vCPU's own CPU (cpu_call): only that CPU changes the
 * vCPU's shadow tables, and never while it takes the call (between exits, interrupts off), so the
 * walk cannot follow a table freed and reused meanwhile, holding guest-controlled bytes, through the
 * host's 1:1 map. The guest is held: its vCPUs' memory stays. */
struct shadow_peek {
	struct vcpu *v;
	uint64_t gva, entry;
	unsigned level;
	bool found;
};

static void shadow_peek_here(void *arg)
{
	struct shadow_peek *p = arg;

	p->found = !__atomic_load_n(&p->v->left, __ATOMIC_ACQUIRE) &&
		   shadow_lookup(&p->v->sh, p->gva, &p->entry, &p->level);
}

static void cmd_gva(int argc, char **argv)
{
	static const char *const faults[] = { "", "not present", "reserved bit set", "access not allowed",
					      "a paging structure outside guest RAM", "5-level paging is not supported",
					      "not canonical" };
	struct vm *g = find_guest(argv[1]);
	struct vcpu *v;
	struct vcpu_snapshot s;
	struct gpt_ctx c;
	struct gpt_result r;
	uint64_t gva, hpa;
	bool pae, lm;

	(void)argc;
	if (!g || !find_vcpu(g, argv[2], &v) || !number(argv[3], &gva) || !snapshot(g, v, &s))
		return;
	memset(&c, 0, sizeof(c));
	c.cr0 = s.cr0, c.cr3 = s.cr3, c.cr4 = s.cr4, c.efer = s.efer;
	memcpy(c.pdpte, s.pdpte, sizeof(c.pdpte));
	c.phys_bits = cpu_phys_bits();
	c.cpl = SEG_ATTR_DPL(s.seg[VCPU_SS].attr);     /* CPL = SS.DPL (SDM Vol. 3A, 5.5) */
	c.read_gpa = monitor_read_gpa;
	c.arg = g;
	pae = s.cr4 & GPT_CR4_PAE;
	lm = s.efer & GPT_EFER_LMA;
	say("guest %s vCPU %u: GVA 0x%lx, %s, CR3 0x%lx", g->name, v->index, gva,
	    !(s.cr0 & GPT_CR0_PG) ? "paging off" : lm ? "4-level paging" : pae ? "PAE paging" : "32-bit paging",
	    s.cr3);
	gpt_walk(&c, gva, false, false, false, &r);
	for (unsigned i = 0; i < r.nsteps; i++) {
		const struct gpt_step *st = &r.steps[i];
		unsigned bits = pae || lm ? 9 : 10, shift = 12 + bits * (st->level - 1);
		unsigned idx = (unsigned)(gva >> shift) & ((1u << bits) - 1);
		unsigned esize = pae || lm ? 8 : 4;

		if (pae && !lm && st->level == 3)
			say("guest %-5s [%u] (from the CPU) = 0x%016lx", "PDPTE", idx & 3, st->entry);
		else if (esize == 4)
			say("guest %-5s [%3u] at GPA 0x%lx = 0x%08lx", ept_level_names[st->level], idx,
			    st->table_gpa + idx * esize, st->entry);
		else
			say("guest %-5s [%3u] at GPA 0x%lx = 0x%016lx", ept_level_names[st->level], idx,
			    st->table_gpa + idx * esize, st->entry);
	}
	if (r.fault) {
		say("GVA 0x%lx: the guest's walk stops: %s%s", gva, r.fault <= 6 ? faults[r.fault] : "?",
		    r.fault == GPT_BAD_GPA ? "" : " (the guest would take a fault)");
		guest_release(g);
		return;
	}
	say("GVA 0x%lx -> GPA 0x%lx (%s page, %s, %s%s)", gva, r.gpa,
	    !r.page_size ? "no" : r.page_size >= SIZE_1G ? "1G" : r.page_size >= (4ull << 20) ? "4M" :
	    r.page_size >= SIZE_2M ? "2M" : "4K", r.writable ? "writable" : "read-only",
	    r.user ? "user" : "supervisor", r.nx ? ", no-execute" : "");
	if (g->paging == VM_PAGING_SHADOW) {
		struct shadow_peek p = { .v = v, .gva = gva };
		uint64_t e;
		unsigned level;

		/* The shadow entry the CPU walks for it (its current root: a snapshot of a cache, read
		 * on the vCPU's CPU between its exits, vmx/spt.c). */
		cpu_call(v->cpu, shadow_peek_here, &p, true);
		e = p.entry, level = p.level;
		if (p.found) {
			uint64_t off = level == 2 ? SIZE_2M - 1 : 0xfff;

			say("shadow %s leaf = 0x%016lx (HPA 0x%lx, %s%s)", level == 2 ? "2M" : "4K", e,
			    (uint64_t)((e & 0x000ffffffffff000ull & ~off) | (gva & off)),
			    e & 2 ? "writable" : "read-only", e & 4 ? ", user" : "");
		}
		else
			say("shadow: no entry for GVA 0x%lx yet (filled at the guest's next access)", gva);
	}
	if (ept_walk_print(g, r.gpa, &hpa)) {
		uint32_t val = 0;

		if ((hpa & 0xfff) <= 0xffc)
			memcpy(&val, phys_to_virt(hpa), 4);
		say("GVA 0x%lx -> GPA 0x%lx -> HPA 0x%lx, holds 0x%08x (32 bits)", gva, r.gpa, hpa, val);
	}
	guest_release(g);
}

static void cmd_mem(int argc, char **argv)
{
	uint64_t ram = 0, tables = 0;

	(void)argc, (void)argv;
	say("host memory: usable %lu MiB, free %lu MiB (%lu KiB)", pmm_usable_bytes() >> 20,
	    pmm_free_bytes() >> 20, pmm_free_bytes() >> 10);
	if (nvms)
		say("%-12s %-8s %-7s %-6s %-12s %-10s %s", "guest", "RAM", "alloc", "chunk", "host RAM", "EPT tables",
		    "partition");
	for (unsigned i = 0; i < nvms; i++) {
		struct vm *g = &vms[i];

		if (!guest_hold(g)) {
			char sz[16];

			snformat(sz, sizeof(sz), "%luM", g->mem_size >> 20);
			say("%-12s %-8s %-7s %-6s %s", g->name, sz, alloc_names[g->alloc], "-",
			    "none: not running");
			continue;
		}
		{
			uint64_t t = gmem_touched_bytes(&g->mem), n = g->mem.ept.tables;
			char sz[16], host[24], tab[24], part[48];

			snformat(sz, sizeof(sz), "%luM", g->mem_size >> 20);
			snformat(host, sizeof(host), "%lu KiB", t >> 10);
			snformat(tab, sizeof(tab), "%lu KiB", n * 4);
			if (g->alloc == GMEM_DEMAND)
				snformat(part, sizeof(part), "none (chunks from free memory)");
			else
				snformat(part, sizeof(part), "0x%lx-0x%lx", g->mem.base,
					 (uint64_t)(g->mem.base + g->mem_size - 1));
			say("%-12s %-8s %-7s %-6s %-12s %-10s %s", g->name, sz, alloc_names[g->alloc],
			    g->mem.chunk >= SIZE_2M ? "2M" : "4K", host, tab, part);
			if (g->paging == VM_PAGING_SHADOW) {
				uint64_t sh = 0;

				for (unsigned v = 0; v < g->nvcpus; v++)
					sh += shadow_bytes(&g->vcpus[v].sh);
				say("%-12s shadow tables %lu KiB (paging=shadow)", "", sh >> 10);
			}
			ram += t;
			tables += n;
		}
		guest_release(g);
	}
	if (nvms)
		say("guests hold %lu KiB of RAM and %lu KiB of EPT tables", ram >> 10, tables * 4);
}

static void cmd_exits(int argc, char **argv)
{
	struct vm *g = find_guest(argv[1]);
	struct vcpu_exit_counts exits = { 0 };
	char buf[512];

	(void)argc;
	if (!g)
		return;
	for (unsigned i = 0; i < g->nvcpus; i++)
		vcpu_exit_counts_add(&exits, &g->vcpus[i].exits);
	vcpu_exit_summary(&exits, buf, sizeof(buf));
	say("guest %s exits: %s", g->name, buf);
	/* When: two answers a while apart give exits per second (the Linux benchmark's idle shell). */
	say("at TSC %lu (%lu kHz)", rdtsc(), tsc_khz);
	for (unsigned i = 0; g->nvcpus > 1 && i < g->nvcpus; i++) {
		vcpu_exit_summary(&g->vcpus[i].exits, buf, sizeof(buf));
		say("vCPU %u (cpu %u): %s", i, g->vcpus[i].cpu, buf);
	}
}

static void cmd_stop(int argc, char **argv)
{
	struct vm *g = find_guest(argv[1]);
	bool restart = !strcmp(argv[0], "restart");
	struct guest_life life;

	(void)argc;
	if (!g)
		return;
	guest_life(g, &life);
	if (!life.live && restart) {
		say("guest %s is not running (%s): starting it", g->name, life.last_end);
		guest_start(g);
		return;
	}
	if (guest_stop(g, restart)) {
		say("error: guest %s is %s", g->name, life.live ? "already ending" : "not running");
		return;
	}
	say("%s guest %s", restart ? "restarting" : "stopping", g->name);
}

static void cmd_start(int argc, char **argv)
{
	struct vm *g = find_guest(argv[1]);
	int err;

	(void)argc;
	if (!g)
		return;
	err = guest_start(g);
	if (err == -EBUSY)
		say("error: guest %s is running ('restart %s' starts it again)", g->name, g->name);
}

static void cmd_log(int argc, char **argv)
{
	static const char *const names[] = { "errors", "warnings", "info", "debug" };
	uint64_t level;

	if (argc < 2) {
		say("loglevel %d (%s); 'log 0'..'log 3' sets it", console_loglevel, names[console_loglevel & 3]);
		return;
	}
	if (!number(argv[1], &level))
		return;
	if (level > 3) {
		say("error: loglevel %lu: 0 errors, 1 warnings, 2 info, 3 debug", level);
		return;
	}
	console_loglevel = (int)level;
	say("loglevel %lu (%s)", level, names[level]);
}

static void cmd_focus(int argc, char **argv)
{
	struct vm *g;

	(void)argc;
	if (!strcmp(argv[1], "monitor")) {
		set_focus(-1);
		return;
	}
	if ((g = find_guest(argv[1])))
		set_focus((int)(g - vms));
}

static void cmd_poweroff(int argc, char **argv)
{
	(void)argc, (void)argv;
	printk(LOG_ERR, "hv: powering off (monitor)\n");
	console_flush();
	power_off();
}

static void cmd_console(int argc, char **argv)
{
	struct uart_rx_stats st;
	struct console_out_stats out;

	(void)argc, (void)argv;
	uart_rx_stats(&st);
	say("input by %s: %lu interrupts, %lu bytes by interrupt, %lu bytes polled, %lu dropped",
	    console_input_by_irq() ? "interrupt" : "polling", st.interrupts, st.irq_bytes, st.polled_bytes,
	    st.dropped);
	console_out_stats(&out);
	say("output: %lu bytes through the ring, at most %lu waiting at once, %lu waits for a full ring",
	    out.bytes, out.most, out.waits);
	/* The figure the monitor's own promise is about: a key reaches it within 100 ms (README). */
	if (tsc_khz)
		say("last command: answered at most %lu us after its first key", last_wait * 1000 / tsc_khz);
	if (focus < 0)
		say("focus: the monitor");
	else
		say("focus: guest %s (%d)", vms[focus].name, focus + 1);
}

static void cmd_reboot(int argc, char **argv)
{
	(void)argc, (void)argv;
	printk(LOG_ERR, "hv: rebooting (monitor)\n");
	console_flush();
	hv_reboot();
}

struct command {
	const char *name, *args, *help;
	int min_args, max_args;                         /* words after the command */
	void (*fn)(int argc, char **argv);
};

static const struct command commands[] = {
	{ "help", "", "this list", 0, 0, cmd_help },
	{ "guests", "", "every guest: vCPUs and their CPUs, memory, exits, restarts, state", 0, 0, cmd_guests },
	{ "regs", "NAME [VCPU]", "registers, control registers, segments, pending events", 1, 2, cmd_regs },
	{ "ept", "NAME GPA", "the EPT walk of a guest-physical address, level by level", 2, 2, cmd_ept },
	{ "gva", "NAME VCPU GVA", "the guest's page walk (GVA -> GPA), then the EPT walk (GPA -> HPA)", 3, 3,
	  cmd_gva },
	{ "mem", "", "host memory: free, per guest, EPT tables", 0, 0, cmd_mem },
	{ "exits", "NAME", "VM exits by reason", 1, 1, cmd_exits },
	{ "stop", "NAME", "end a guest (its memory is freed)", 1, 1, cmd_stop },
	{ "start", "NAME", "start a guest that ended, from its module: cleared memory, image loaded again",
	  1, 1, cmd_start },
	{ "restart", "NAME", "stop, then start", 1, 1, cmd_stop },
	{ "focus", "NAME|monitor", "give the console to a guest (as Ctrl-] N does)", 1, 1, cmd_focus },
	{ "console", "", "console input and output, the last command's time, the focus", 0, 0, cmd_console },
	{ "log", "[LEVEL]", "console log level: 0 errors, 1 warnings, 2 info, 3 debug", 0, 1, cmd_log },
	{ "poweroff", "", "power the machine off", 0, 0, cmd_poweroff },
	{ "reboot", "", "reset the machine", 0, 0, cmd_reboot },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void cmd_help(int argc, char **argv)
{
	(void)argc, (void)argv;
	for (unsigned i = 0; i < NCOMMANDS; i++) {
		char name[32];

		snformat(name, sizeof(name), "%s %s", commands[i].name, commands[i].args);
		say("%-22s %s", name, commands[i].help);
	}
	say("names may be given as numbers (1 = the first guest); addresses in decimal or 0x hex");
}

static void run_line(char *text)
{
	char *argv[MAX_ARGS + 1];
	int argc = 0;

	for (char *p = text; *p;) {
		while (*p == ' ' || *p == '\t')
			*p++ = 0;
		if (!*p)
			break;
		if (argc == MAX_ARGS + 1) {
			say("error: too many words (a command takes at most %d)", MAX_ARGS);
			return;
		}
		argv[argc++] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
	}
	if (!argc)
		return;
	for (unsigned i = 0; i < NCOMMANDS; i++) {
		const struct command *c = &commands[i];

		if (strcmp(argv[0], c->name))
			continue;
		if (argc - 1 < c->min_args || argc - 1 > c->max_args) {
			say("error: usage: %s %s", c->name, c->args);
			return;
		}
		c->fn(argc, argv);
		return;
	}
	say("error: unknown command '%s' ('help' lists them)", argv[0]);
}
