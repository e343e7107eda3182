/* A virtual machine (struct vm: one per guest, owned by the core) and its virtual CPUs (struct vcpu). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "arch/x86/spec.h"
#include "arch/x86/spinlock.h"
#include "gmem/gmem.h"
#include "shadow/shadow.h"
#include "vdev/fw_cfg.h"
#include "vdev/hypercall.h"
#include "vdev/lapic.h"
#include "vdev/pc.h"
#include "vdev/reset.h"
#include "vdev/uart.h"
#include "vdev/vdev.h"
#include "vcpu/backend.h"
#include "vcpu/cpuid_cache.h"
#include "vcpu/exit_kind.h"
#include "vcpu/snapshot.h"
#include "vcpu/work.h"
#include "vcpu/vcpu_state.h"
#include "vcpu/tsc.h"

#define VM_MAX_VCPUS VLAPIC_MAX

/* The guest registers neither the VMCS nor the VMCB holds, saved and restored by vmx/entry.asm and
 * svm_enter (svm/vcpu.c). The order is the asm's: offsets are pinned by the _Static_asserts in
 * vcpu/vcpu.c (and G_* in vmx/entry.asm). */
struct guest_regs {
	union {
		struct { uint64_t rax, rbx, rcx, rdx; };
		struct hc_regs hc;   /* the same four, as a hypercall reads and writes them */
	};
	uint64_t rsi, rdi, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t cr2;
};

/* The saved registers into a snapshot (vcpu/snapshot.h): both back ends keep them here. */
static inline void guest_regs_snapshot(struct vcpu_snapshot *s, const struct guest_regs *r)
{
	s->rax = r->rax, s->rbx = r->rbx, s->rcx = r->rcx, s->rdx = r->rdx;
	s->rsi = r->rsi, s->rdi = r->rdi, s->rbp = r->rbp;
	s->r8 = r->r8, s->r9 = r->r9, s->r10 = r->r10, s->r11 = r->r11;
	s->r12 = r->r12, s->r13 = r->r13, s->r14 = r->r14, s->r15 = r->r15;
	s->cr2 = r->cr2;
}

/* What the exit loop tells the scheduler when it stops running a vCPU. */
enum vcpu_action {
	VCPU_PREEMPTED,  /* the time slice ran out, or the host has work (a cross-CPU call, a new event) */
	VCPU_YIELD,      /* the guest gave up the CPU (HC_YIELD) */
	VCPU_BLOCKED,    /* it cannot run until an event comes: HLT, or waiting for INIT/SIPI */
	VCPU_EXITED,     /* the guest ended itself: vm->exit_code */
	VCPU_STOPPED,    /* the hypervisor stopped the guest: vm->stop_reason */
};

struct vm;

/* How a guest's memory is virtualized (paging= on its module line). */
enum vm_paging { VM_PAGING_EPT, VM_PAGING_SHADOW };

#define VCPU_BACKEND_BYTES 160

struct vcpu {
	struct guest_regs regs;      /* must stay first: entry.asm addresses it through the vcpu */
	struct vm *vm;
	unsigned index;              /* vCPU number within its guest = initial APIC ID */
	unsigned cpu;                /* host CPU it runs on (pinned) */
	bool ready;                  /* VMCS (VMCB) fields written (on its CPU, at first load) */
	bool launched;               /* entered once (VMX: VMLAUNCH done, the next entry is VMRESUME) */
	volatile enum vcpu_activity state;
	uint32_t work;               /* VCPU_WORK_*: what its next entry must look at (vcpu/work.h) */
	volatile bool left;          /* it left its CPU for good (vcpu_leave); its memory stays until vcpu_free */
	bool halted_if;              /* VCPU_HALTED: RFLAGS.IF at the HLT (only then interrupts wake it) */
	struct vcpu_state start;     /* how it starts (vCPU 0: the boot protocol; others: wait for SIPI) */
	struct vlapic lapic;
	uint64_t armed_deadline;     /* TSC the slice's timer is armed for (VMX: the preemption timer; SVM and
				        VMX without it: the host's APIC timer): the earliest of the slice's
				        end and the timer deadlines (VMX: 0, SVM: ~0 = to be armed afresh) */
	uint64_t entry_due;          /* TSC from which an entry looks at everything again (armed_deadline, or
				        sooner: VCPU_REARM_PARTS); 0 = the next entry does */
	uint64_t dev_deadline;       /* vCPU 0: the next device-timer deadline (PIT, RTC), 0 none */
	uint64_t xcr0;               /* XCR0 the guest set (XSETBV), switched with the vCPU */
	struct vtsc tsc;             /* its TSC offset and IA32_TSC_ADJUST (msr.c); kept across INIT */
	uint64_t msr_kernel_gs, msr_star, msr_lstar, msr_cstar, msr_sfmask, msr_tsc_aux; /* switched */
	uint64_t spec_ctrl;          /* its IA32_SPEC_CTRL as it wrote it (vcpu/msr.c; loaded: vcpu_spec_ctrl) */
	uint64_t dr[5];              /* DR0-DR3, DR6: switched with the vCPU */
	void *fpu;                   /* XSAVE/FXSAVE area: FPU/SSE/AVX state while not running */
	uint64_t slice_end;          /* TSC when the time slice ends */
	uint64_t wake_after;         /* TSC before which a woken sibling does not take its CPU (VCPU_WAKE_GRANULARITY) */
	enum vcpu_action action;     /* why the last run ended */
	struct vcpu_exit_counts exits; /* by kind (vcpu/exit_kind.h) */
	/* paging=shadow (vcpu/spt.c): the CPU walks `sh`'s tables; the guest's own CR3 and IA32_EFER are
	 * these (the VMCS or VMCB holds the shadow root and EFER.NXE forced on). */
	struct shadow sh;
	uint64_t gcr3, gefer;
	uint64_t sh_synced;          /* the guest paging controls the current root was chosen for */
	struct vcpu_cpuid_cache cpuid; /* the CPUID answers that stay (vcpu/cpuid_cache.h) */
	uint64_t cr4_allowed;        /* vcpu_cr4_allowed, once known (else 0) */
	/* The back end's own part, which only it reads and writes, in its own layout: VMX's struct
	 * vmx_vcpu (vmx/vcpu.h, vmx_of), SVM's struct svm_vcpu (svm/svm.h, svm_of). Sized here so
	 * struct vm holds its vCPUs inline; each part checks that it fits. */
	_Alignas(8) unsigned char be[VCPU_BACKEND_BYTES];
};


/* Per guest: what its vCPUs share. The core fills the configuration part from the module line. */
struct vm {
	char name[32];
	unsigned id;                 /* 1, 2, ... in module order */
	/* The module line (core/guest.c). */
	uint64_t mem_size;           /* mem=: RAM in bytes */
	unsigned alloc;              /* alloc=: enum gmem_mode */
	uint64_t chunk;              /* chunk=: first-touch chunk size */
	unsigned paging;             /* paging=: enum vm_paging */
	unsigned nvcpus;             /* vcpus= */
	char args[256];              /* the guest's own words: its command line */
	uint64_t t_create;           /* TSC when the hypervisor decided to start it */
	uint64_t create_ticks;       /* TSC ticks its creation took (without printing) */

	struct gmem mem;             /* its RAM and EPT */
	uint64_t eptp;
	struct vdev_bus bus;         /* its devices' ports and MMIO ranges */
	struct vuart uart;
	struct vreset reset;         /* 8042, port 0x92, 0xCF9, ACPI sleep: resets and power-off */
	struct fw_cfg fw_cfg;        /* QEMU's fw_cfg: CPU count and RAM size */
	struct vpc pc;               /* PIC, PIT, I/O APIC, RTC: the PC around the vCPUs */
	uint64_t rsdp_gpa;           /* its ACPI tables' RSDP (core/guest.c) */
	struct vlapic_group lapics;  /* its vCPUs' local APICs: IPIs stay among these */
	bool apicv;                  /* its vCPUs use the CPU's APIC virtualization (xAPIC at 0xFEE00000) */
	volatile bool apicv_inhibited; /* ... no more: a vCPU left that configuration (vcpu_apicv_inhibit) */

	/* How it ends: the first vCPU (or the monitor) to end it claims the end, writes the reason, then
	 * sets `ending` (vcpu.c, claim_end); each vCPU then leaves its CPU (VMCLEAR, INVEPT there), and
	 * the last to leave reports and frees (core/guest.c). */
	volatile int ending;
	int end_claimed;                 /* the end's claim (vcpu.c, claim_end), before `ending` says so */
	enum vcpu_action end_why;
	int exit_code;
	char stop_reason[160];

	struct vcpu vcpus[VM_MAX_VCPUS];
};

/* What the vCPU layer keeps per host CPU, vcpu_cpu[CPU id]: the vCPU loaded there, and the vCPUs pinned there.
 * Those are the scheduler's run list (core/hv.c adds, removes and picks), here because the exit path
 * reads it too (vcpu_others_want_cpu). */
#define CPU_MAX_VCPUS 32
struct vcpu_cpu {
	struct vcpu *loaded;         /* whose VMCS (VMCB) and guest state are current here (vcpu_load) */
	unsigned last_guest;         /* id of the guest whose vCPU was loaded last (vcpu_load: IBPB) */
	spinlock_t lock;             /* guards vcpus[] and nvcpus against creation on another CPU */
	struct vcpu *vcpus[CPU_MAX_VCPUS];
	unsigned nvcpus;             /* written under lock with release order: readable without it */
} __attribute__((aligned(64)));      /* a cache line of its own: CPUs write theirs at every switch */
extern struct vcpu_cpu vcpu_cpu[MAX_CPUS];

static inline struct vcpu_cpu *this_vcpu_cpu(void)
{
	return &vcpu_cpu[this_cpu_id()];
}

/* Does the back end end slices with the host's local APIC timer (SVM; VMX without the preemption
 * timer)? Then an APIC register read fires a guest timer that expired meanwhile first (vcpu/msr.c).
 * Set by the back end's global_init. */
extern bool vcpu_slices_by_apic_timer;
/* XCR0 bits a guest may set with XSETBV (and CPUID leaf 0xD reports). */
extern uint64_t vcpu_xcr0_allowed;

/* The CR4 bits `v`'s CPUID lets it set (vcpu/cpuid.c, cpuid_cr4_allowed): vcpu/cr.c refuses the
 * others with #GP, and VMX owns them in CR4's guest/host mask so that a MOV setting one exits. */
uint64_t vcpu_cr4_allowed(struct vcpu *v);

/* What all vCPUs share (the FPU area's size, the back end's bitmaps: vcpu_backend->global_init);
 * once, before the first vcpu_create (which calls it too). 0 or -ENOMEM. */
int vcpu_global_init(void);
/* Sets up vCPU `index` of `vm` for host CPU `cpu`, to start in `start` (vCPU 0) or to wait for a
 * Start-up IPI (start == NULL). Any CPU may call it; the VMCS (VMCB) is filled in on `cpu` by
 * the first vcpu_load. 0 or -ENOMEM. */
int vcpu_create(struct vm *vm, unsigned index, unsigned cpu, const struct vcpu_state *start);
/* A vCPU's FPU/SSE/AVX state out of and into the CPU (both back ends: neither VM entry switches it). */
void vcpu_fpu_save(struct vcpu *v);
void vcpu_fpu_restore(struct vcpu *v);
/* Makes `v` this CPU's current vCPU (the back end's vcpu_load: VMPTRLD or the VMCB, and the state
 * the extension does not switch). */
static inline void vcpu_load(struct vcpu *v)
{
	vcpu_backend->vcpu_load(v);
}
/* Runs `v` until the scheduler has something to do. Returns why. */
static inline enum vcpu_action vcpu_run(struct vcpu *v, uint64_t quantum_tsc)
{
	return vcpu_backend->vcpu_run(v, quantum_tsc);
}
/* May `v` run now? For halted and waiting vCPUs: has an event come that wakes it (SDM Vol. 3A, 9.4
 * and HLT)? Also fires APIC timers that expired while it slept. On v's own CPU. */
bool vcpu_runnable(struct vcpu *v, uint64_t now);
/* The scheduler's pick: vcpu_runnable, and a halted vCPU that may run has left its HLT (the entry
 * delivers what woke it), so that the run's own look finds it running. On v's own CPU. */
bool vcpu_wakes(struct vcpu *v, uint64_t now);
/* The TSC deadline of the next timer event of a sleeping `v`, 0 if none. */
uint64_t vcpu_next_deadline(const struct vcpu *v);

/* Is another vCPU of v's guest running, or halted so that an interrupt wakes it? (Only such a one
 * could still send v an NMI, INIT or Start-up IPI.) */
bool vcpu_others_active(const struct vcpu *v);

/* The PIC's INTR output changed (the PC platform's callback; `vm` is the struct vm). */
void vcpu_pic_intr_changed(void *vm);

/* vCPU 0 keeps the guest's device time: fires the PIT's and RTC's timers when one is due, or when a
 * device moved a deadline (vdev_timer_set; VCPU_WORK_DEVICES told the entry path), and keeps the next
 * deadline. */
static inline void vcpu_device_timers(struct vcpu *v, uint64_t now)
{
	if (v->index == 0 && v->vm->bus.ntimers &&
	    ((v->dev_deadline && now >= v->dev_deadline) || v->vm->bus.timers_changed))
		v->dev_deadline = vdev_timers_update(&v->vm->bus, now);
}


/* Lets the host CPU of `v` know an event was posted to it (from any CPU): sets VCPU_WORK_EVENT in its
 * work word (vcpu/work.h: after the event, before the IPI) and sends the wake-up IPI (none to this CPU: its scheduler looks anyway). Callers kick only for something
 * new (lapic.c merges a vector already pending). */
void vcpu_kick(struct vcpu *v);
/* Called at an external-interrupt exit of `v` (a kick, a cross-CPU call, a key): is there a reason
 * for the scheduler to look now, other than v's own (its slice: the preemption timer; its guest's
 * end: the entry path)? Yes if another vCPU of this CPU was kicked and is new (never ran: a guest
 * placed here) or must leave (its guest is ending); and if one was kicked awake (it was halted or
 * waiting for its Start-up IPI and now can run) once v has run 1/VCPU_WAKE_GRANULARITY of its slice;
 * before that, v's slice is cut to end then instead. A kick that changed nothing for anyone else on
 * this CPU does not cost v its slice, and however often a guest wakes its own vCPU on v's CPU (an
 * IPI per microsecond to a vCPU that halts after each), v gives the CPU up at most once per
 * 1/VCPU_WAKE_GRANULARITY of a slice, as Linux's scheduler bounds wake-up preemption with its
 * wake-up granularity. On v's CPU. */
#define VCPU_WAKE_GRANULARITY 8
bool vcpu_others_want_cpu(struct vcpu *v);

/*
 * A vCPU's memory (VMCS, APIC page, FPU area) and the vCPU's other CPUs.
 * Siblings reach v's APIC page from their own CPUs at any time while they run (IPIs, device interrupts
 * routed by the I/O APIC, see vdev/lapic.h "Lifetime"), and the monitor reads v through cross-CPU
 * calls while it holds the guest: so leaving and freeing are two steps.
 * vcpu_leave: `v` leaves its CPU for good, on that CPU: the back end's part (VMX: VMCLEAR, this
 * CPU's cached EPT and VPID translations of the guest dropped, its VPID given back; SVM: its ASID
 * given back), v->left set (a monitor call finds it gone). Its memory stays: true if it was the last vCPU of its guest to leave (every
 * CPU of the guest has done the same, and none can post any more).
 * vcpu_free: gives back v's VMCS (VMCB), APIC page and FPU area. Only after the last vcpu_leave of its guest
 * (or for a guest whose vCPUs never ran), while the guest is held against the monitor (core/guest.c).
 */
bool vcpu_leave(struct vcpu *v);
void vcpu_free(struct vcpu *v);
