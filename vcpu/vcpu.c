/* A vCPU's life apart from its back end: creating and freeing it (its APIC page and FPU area; the back
 * end adds its VMCS or VMCB: vcpu/backend.h), the FPU switch neither VMX nor SVM does, kicks and
 * wake-ups, the scheduler's questions (runnable, deadlines, who wants the CPU), and ending a guest. */
#include <stdarg.h>
#include "arch/x86/call.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "lib/errno.h"
#include "lib/format.h"
#include "lib/string.h"
#include "pmm/pmm.h"
#include "vcpu/backend.h"
#include "vcpu/exit.h"
#include "vcpu/vcpu.h"

/* entry.asm's (vmx/) and svm_enter's (svm/vcpu.c) view of struct guest_regs: both address the
 * registers through the vCPU pointer, regs first (G_* in vmx/entry.asm). */
_Static_assert(__builtin_offsetof(struct vcpu, regs) == 0, "entry.asm: regs first");
_Static_assert(__builtin_offsetof(struct guest_regs, rax) == 0, "entry.asm G_RAX");
_Static_assert(__builtin_offsetof(struct guest_regs, rbx) == 8, "entry.asm G_RBX");
_Static_assert(__builtin_offsetof(struct guest_regs, rbp) == 48, "entry.asm G_RBP");
_Static_assert(__builtin_offsetof(struct guest_regs, r8) == 56, "entry.asm G_R8");
_Static_assert(__builtin_offsetof(struct guest_regs, r15) == 112, "entry.asm G_R15");
_Static_assert(__builtin_offsetof(struct guest_regs, cr2) == 120, "entry.asm G_CR2");

const struct vcpu_backend *vcpu_backend;
enum vcpu_vendor vcpu_vendor;
bool vcpu_slices_by_apic_timer;

struct vcpu_cpu vcpu_cpu[MAX_CPUS];

/* --- the FPU ------------------------------------------------------------------------------------- */

static bool have_xsave;
static unsigned fpu_pages;     /* size of a vCPU's XSAVE/FXSAVE area, in pages */
/* XCR0 bits a guest may set: what the CPU supports, less AMX tile state (bits 17-18), whose 8 KiB
 * would make every vCPU's save area three pages for state no test guest uses, and less MPX's
 * BNDREGS/BNDCSR (bits 3-4): CPUID hides MPX (its IA32_BNDCFGS is not emulated), and a CPU without
 * MPX refuses those XCR0 bits (SDM Vol. 1, 13.3). */
uint64_t vcpu_xcr0_allowed = 1;
#define XCR0_AMX (3ull << 17)
#define XCR0_MPX (3ull << 3)

static inline void xsetbv(uint32_t idx, uint64_t v)
{
	asm volatile("xsetbv" : : "c"(idx), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

/* The FPU area's size and the XCR0 bits guests may set (CPUID leaf 0xD). */
static void fpu_init(void)
{
	have_xsave = cpu_has(CPU_XSAVE);
	fpu_pages = 1;                                      /* FXSAVE: 512 bytes */
	if (have_xsave) {
		struct cpuid_regs r = cpuid(0xd, 0);

		/* CPUID.(EAX=0DH,ECX=0): EDX:EAX the XCR0 bits supported; EBX the XSAVE area size for the
		 * XCR0 now loaded (SDM Vol. 1, 13.2): load the guests' mask to learn their area's size. */
		vcpu_xcr0_allowed = (((uint64_t)r.edx << 32) | r.eax) & ~(XCR0_AMX | XCR0_MPX);
		xsetbv(0, vcpu_xcr0_allowed);
		fpu_pages = (cpuid(0xd, 0).ebx + PAGE_SIZE - 1) / PAGE_SIZE;
		xsetbv(0, 1);
	}
}

int vcpu_global_init(void)
{
	static bool done;

	if (!done) {
		fpu_init();
		done = true;
	}
	return vcpu_backend->global_init();
}

/* FPU/SSE/AVX state is not switched by VMX (nor by SVM's VMRUN, which uses these too): save one vCPU's, restore the next one's. XSAVE saves
 * only components enabled in XCR0 (SDM Vol. 1, 13.7): load the full guest mask around it, or the SSE
 * state of a guest that never set XCR0 would be lost. */
void vcpu_fpu_save(struct vcpu *v)
{
	if (have_xsave) {
		xsetbv(0, vcpu_xcr0_allowed);
		asm volatile("xsave64 (%0)" : : "r"(v->fpu), "a"((uint32_t)vcpu_xcr0_allowed),
			     "d"((uint32_t)(vcpu_xcr0_allowed >> 32)) : "memory");
	} else {
		asm volatile("fxsave64 (%0)" : : "r"(v->fpu) : "memory");
	}
}

void vcpu_fpu_restore(struct vcpu *v)
{
	if (have_xsave) {
		xsetbv(0, vcpu_xcr0_allowed);            /* restore every component the area holds */
		asm volatile("xrstor64 (%0)" : : "r"(v->fpu), "a"((uint32_t)vcpu_xcr0_allowed),
			     "d"((uint32_t)(vcpu_xcr0_allowed >> 32)) : "memory");
		xsetbv(0, v->xcr0);
	} else {
		asm volatile("fxrstor64 (%0)" : : "r"(v->fpu) : "memory");
	}
}

/* --- kicks, creation and freeing ----------------------------------------------------------------- */

/* The bit before the IPI: the exit the IPI causes finds it (its entry path, or vcpu_others_want_cpu
 * for a vCPU that waits its turn there). vcpu/work.h: the ordering. */
static inline __attribute__((always_inline)) void kick_with(struct vcpu *v, uint32_t bit)
{
	vcpu_work_post(&v->work, bit);
	cpu_kick(v->cpu);
}

static struct vcpu *vcpu_of(struct vlapic *l)
{
	return (struct vcpu *)((char *)l - __builtin_offsetof(struct vcpu, lapic));
}

/* The local APIC group calls this when it posted an event to one of the guest's APICs. */
_Static_assert(VCPU_WORK_IRQ == VCPU_WORK_EVENT + 1, "lapic_kick: EVENT + fixed");
static void lapic_kick(struct vlapic *l, bool fixed)
{
	kick_with(vcpu_of(l), VCPU_WORK_EVENT + fixed);
}

/* ... and this when an EOI retired a level-triggered vector: the I/O APIC's remote IRR. */
static void lapic_eoi_level(struct vlapic *l, uint8_t vector)
{
	vpc_eoi(&vcpu_of(l)->vm->pc, vector);
}

/* The PIC's INTR output changed: vCPU 0, whose LINT0 it reaches, takes a look. */
void vcpu_pic_intr_changed(void *vm)
{
	vcpu_kick(&((struct vm *)vm)->vcpus[0]);
}

void vcpu_kick(struct vcpu *v)
{
	kick_with(v, VCPU_WORK_EVENT);
}

/* The 8259A's interrupt reaches vCPU 0 (its LINT0 in ExtINT mode). */
static bool extint_due(struct vcpu *v)
{
	return v->index == 0 && vlapic_extint_enabled(&v->lapic) && vpc_extint_pending(&v->vm->pc);
}

bool vcpu_runnable(struct vcpu *v, uint64_t now)
{
	struct vlapic *l = &v->lapic;

	vlapic_timer_update(l, now);
	vcpu_device_timers(v, now);
	if (__atomic_load_n(&l->init_pending, __ATOMIC_ACQUIRE))
		return true;
	switch (v->state) {
	case VCPU_RUNNING:
		return true;
	case VCPU_WAIT_SIPI:
		return __atomic_load_n(&l->sipi_vector, __ATOMIC_ACQUIRE) >= 0;
	case VCPU_HALTED:
		/* HLT ends on an NMI, or on an interrupt the guest accepts (IF=1, above its priority). */
		return __atomic_load_n(&l->nmi_pending, __ATOMIC_ACQUIRE) ||
		       (v->halted_if && (vlapic_pending_vector(l) >= 0 || extint_due(v)));
	}
	return true;
}

bool vcpu_wakes(struct vcpu *v, uint64_t now)
{
	if (!vcpu_runnable(v, now))
		return false;
	if (v->state == VCPU_HALTED)
		v->state = VCPU_RUNNING;
	return true;
}

uint64_t vcpu_next_deadline(const struct vcpu *v)
{
	uint64_t a = v->state == VCPU_HALTED ? vlapic_next_deadline(&v->lapic) : 0, b = v->dev_deadline;

	/* Device timers are vCPU 0's to run whatever its state: even waiting, its CPU wakes for them. */
	return !a ? b : !b ? a : a < b ? a : b;
}

bool vcpu_others_want_cpu(struct vcpu *v)
{
	struct vcpu_cpu *pc = this_vcpu_cpu();
	unsigned n = __atomic_load_n(&pc->nvcpus, __ATOMIC_ACQUIRE);
	uint64_t now = rdtsc();

	for (unsigned i = 0; i < n; i++) {
		struct vcpu *o = pc->vcpus[i];

		/* Taking the bit before looking: a kick after this look comes with its own IPI. (o's own
		 * first entry looks at everything whatever its word holds: vcpu_run.) */
		if (o == v || !vcpu_work_take_bits(&o->work, VCPU_WORK_KICKED))
			continue;
		if (o->vm->ending || !o->ready)
			return true;
		/* A runnable one waits for its turn as before the kick: the kick is not its turn. */
		if (o->state == VCPU_RUNNING || !vcpu_runnable(o, now))
			continue;
		if (now >= v->wake_after)
			return true;
		if (v->wake_after < v->slice_end) {
			v->slice_end = v->wake_after;   /* the preemption timer ends v's slice then */
			v->entry_due = 0;               /* armed afresh at this entry */
		}
	}
	return false;
}

bool vcpu_others_active(const struct vcpu *v)
{
	for (unsigned i = 0; i < v->vm->nvcpus; i++) {
		const struct vcpu *o = &v->vm->vcpus[i];

		if (o != v && (o->state == VCPU_RUNNING || (o->state == VCPU_HALTED && o->halted_if)))
			return true;
	}
	return false;
}

/* The neutral part; the back end's (vcpu_backend->vcpu_create) last, so that nothing of it is left to
 * undo when it fails. */
int vcpu_create(struct vm *vm, unsigned index, unsigned cpu, const struct vcpu_state *start)
{
	struct vcpu *v = &vm->vcpus[index];
	uint64_t fpu, apic_page;
	int err;

	if ((err = vcpu_global_init()))
		return err;
	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->index = index;
	v->cpu = cpu;
	v->xcr0 = 1;                                       /* x87 only, the reset value */
	vcpu_cpuid_cache_init(&v->cpuid);
	if (start) {
		v->start = *start;
		v->state = VCPU_RUNNING;
	} else {
		vcpu_state_reset(&v->start, -1);
		v->state = VCPU_WAIT_SIPI;
	}
	if (!(apic_page = pmm_alloc_page()))
		return -ENOMEM;
	if (pmm_alloc_pages(fpu_pages, PAGE_SIZE, &fpu)) {
		pmm_free_page(apic_page);
		return -ENOMEM;
	}
	v->fpu = phys_to_virt(fpu);
	memset(v->fpu, 0, fpu_pages * PAGE_SIZE);           /* XSTATE_BV = 0: every component at reset */
	*(uint32_t *)((char *)v->fpu + 24) = 0x1f80;      /* MXCSR reset value (FXSAVE layout, Vol. 1 10.5.1) */
	*(uint16_t *)v->fpu = 0x37f;                       /* x87 FCW reset value */
	memset(phys_to_virt(apic_page), 0, PAGE_SIZE);
	vm->lapics.kick = lapic_kick;
	vm->lapics.eoi_level = lapic_eoi_level;
	vlapic_init(&v->lapic, &vm->lapics, index, phys_to_virt(apic_page));
	vlapic_join(&vm->lapics, &v->lapic);
	if (index == 0)                  /* it keeps the device timers: a new deadline is its work */
		vdev_bus_set_keeper(&vm->bus, &v->work, VCPU_WORK_DEVICES);
	if (index == 0) {
		/* What a PC's firmware leaves the boot CPU's APIC in (the MP spec's "virtual wire" mode,
		 * 3.6.2.2): software-enabled, the 8259A through LINT0 (ExtINT), NMI on LINT1. A kernel
		 * that only programs the PIC, as built for `qemu -kernel`, gets its interrupts. */
		vlapic_mmio_write(&v->lapic, VLAPIC_SVR, 4, VLAPIC_SVR_ENABLE | 0xff, 0);
		vlapic_mmio_write(&v->lapic, VLAPIC_LVT_LINT0, 4, 7u << 8, 0);
		vlapic_mmio_write(&v->lapic, VLAPIC_LVT_LINT1, 4, 4u << 8, 0);
	}
	if ((err = vcpu_backend->vcpu_create(v))) {
		pmm_free_page(apic_page);
		pmm_free_pages(fpu, fpu_pages);
		return err;
	}
	return 0;
}

bool vcpu_leave(struct vcpu *v)
{
	struct vcpu_cpu *pc = this_vcpu_cpu();

	vcpu_backend->vcpu_leave(v);
	if (pc->loaded == v)
		pc->loaded = NULL;               /* its FPU state is not wanted any more */
	__atomic_store_n(&v->left, true, __ATOMIC_RELEASE);
	/* Its APIC stays a member of the guest's group, posted to by the vCPUs still running. */
	return vlapic_leave(&v->lapic);
}

void vcpu_free(struct vcpu *v)
{
	vcpu_backend->vcpu_free(v);
	pmm_free_page((uint64_t)v->lapic.regs);  /* the host map is 1:1 */
	pmm_free_pages((uint64_t)v->fpu, fpu_pages);
	v->lapic.regs = NULL;
	v->fpu = NULL;
}

/* --- a guest's end ------------------------------------------------------------------------------ */

/* The guest ends once, whichever vCPU (or the monitor, guest_stop) ends it first: that one's reason
 * is reported. The claim is a word of its own, so that the reason is written before `ending` tells
 * the other CPUs: the vCPU that leaves last, on any CPU, reports it (core/guest.c, report_end). */
static bool claim_end(struct vm *vm, enum vcpu_action why)
{
	int expected = 0;

	if (!__atomic_compare_exchange_n(&vm->end_claimed, &expected, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		/* Another claimed it and is writing its reason (a few hundred instructions, waiting
		 * for nobody): once it is published the caller's vCPU leaves rather than runs on. */
		while (!__atomic_load_n(&vm->ending, __ATOMIC_ACQUIRE))
			cpu_relax();
		return false;
	}
	vm->end_why = why;
	return true;
}

/* The claim's reason is written: the end is published, and each CPU with one of its vCPUs, halted
 * or running, is made to look (cpu_loop). */
static void publish_end(struct vm *vm)
{
	__atomic_store_n(&vm->ending, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
}

int vm_stop(struct vcpu *v, const char *fmt, ...)
{
	va_list ap;

	if (claim_end(v->vm, VCPU_STOPPED)) {
		va_start(ap, fmt);
		format(v->vm->stop_reason, sizeof(v->vm->stop_reason), fmt, ap);
		va_end(ap);
		publish_end(v->vm);
	}
	return VCPU_STOPPED;
}

int vm_end(struct vcpu *v, int code)
{
	if (claim_end(v->vm, VCPU_EXITED)) {
		v->vm->exit_code = code;
		publish_end(v->vm);
	}
	return VCPU_EXITED;
}
