/* What the host does with an exception (report everything, stop the system) and with its interrupts. */
#include "arch/x86/apic.h"
#include "arch/x86/call.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "arch/x86/trap.h"
#include "console/console.h"
#include "console/printk.h"

volatile int system_stopping;

static const char *const exception_names[32] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow", "#BR bound range",
	"#UD invalid opcode", "#NM device not available", "#DF double fault", "coprocessor overrun",
	"#TS invalid TSS", "#NP segment not present", "#SS stack fault", "#GP general protection",
	"#PF page fault", "reserved 15", "#MF x87 error", "#AC alignment check", "#MC machine check",
	"#XM SIMD error", "#VE virtualization exception", "#CP control protection",
	"reserved 22", "reserved 23", "reserved 24", "reserved 25", "reserved 26", "reserved 27",
	"#HV hypervisor injection", "#VC VMM communication", "#SX security exception", "reserved 31",
};

static __attribute__((noreturn)) void park(void)
{
	for (;;) {
		cli();
		hlt();
	}
}

void trap_handler(struct trap_frame *f)
{
	if (f->vector == VEC_WAKEUP) {
		lapic_eoi();
		cpu_calls_run();     /* work other CPUs queued here (arch/x86/call.c) */
		return;
	}
	if (f->vector == VEC_CONSOLE) {
		/* The UART's line drops once its receive FIFO is read empty; then the EOI (an edge-triggered
		 * pin needs no more; a level-triggered one gets its EOI broadcast, SDM Vol. 3A, 11.8.5). */
		uart_rx_interrupt();
		this_cpu()->input_waiting = true;
		if (!this_cpu()->input_at)
			this_cpu()->input_at = rdtsc();
		lapic_eoi();
		return;
	}
	if (f->vector == VEC_NMI) {
		if (system_stopping)
			park(); /* panic() on another CPU asked every CPU to stop */
		printk(LOG_WARN, "hv: NMI (not a stop request), ignored\n");
		return;
	}

	/* An exception in the hypervisor itself is a bug in it: say everything, then stop. */
	panic("hv: exception %s (vector %lu) error code 0x%lx\n"
	      "  rip %016lx cs %04lx rflags %016lx rsp %016lx ss %04lx cr2 %016lx\n"
	      "  rax %016lx rbx %016lx rcx %016lx rdx %016lx\n"
	      "  rsi %016lx rdi %016lx rbp %016lx r8  %016lx\n"
	      "  r9  %016lx r10 %016lx r11 %016lx r12 %016lx\n"
	      "  r13 %016lx r14 %016lx r15 %016lx cr3 %016lx",
	      f->vector < 32 ? exception_names[f->vector] : "interrupt", f->vector, f->error_code,
	      f->rip, f->cs, f->rflags, f->rsp, f->ss, read_cr2(),
	      f->rax, f->rbx, f->rcx, f->rdx, f->rsi, f->rdi, f->rbp, f->r8,
	      f->r9, f->r10, f->r11, f->r12, f->r13, f->r14, f->r15, read_cr3());
}
