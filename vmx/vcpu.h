/* A virtual machine as VMX sees it (struct vm: one per guest) and its virtual CPUs (struct vcpu). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "gmem/gmem.h"
#include "vmx/vmcs.h"
#include "vmx/vuart.h"

/* The guest registers the VMCS does not hold, saved and restored by vmx/entry.asm. The order is
 * the asm's: offsets are pinned by the _Static_asserts in vcpu.c (and VCPU_* in entry.asm). */
struct guest_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t cr2;
};

/* Per guest: what every vCPU of it shares. Embedded in the core's struct guest. */
struct vm {
	char name[32];
	unsigned id;                 /* 1, 2, ... in module order */
	struct gmem mem;             /* its RAM and EPT */
	uint64_t eptp;
	struct vuart uart;
	uint8_t ports_logged[8192];  /* one bit per I/O port: its first use was reported */
};

/* What the exit loop tells the scheduler when it stops running a vCPU. */
enum vcpu_action {
	VCPU_PREEMPTED,  /* the time slice ran out */
	VCPU_YIELD,      /* the guest gave up the CPU (HC_YIELD, or HLT with interrupts on) */
	VCPU_EXITED,     /* the guest ended itself: exit_code */
	VCPU_STOPPED,    /* the hypervisor stopped the guest: stop_reason */
};

struct vcpu {
	struct guest_regs regs;      /* must stay first: entry.asm addresses it through the vcpu */
	struct vm *vm;
	unsigned index;              /* vCPU number within its guest */
	unsigned cpu;                /* host CPU it runs on (pinned) */
	uint64_t vmcs;               /* physical address of its VMCS */
	bool ready;                  /* VMCS fields written (on its CPU, at first load) */
	bool launched;               /* VMLAUNCH done: the next entry is VMRESUME */
	uint64_t entry, info_gpa;    /* where it starts: RIP and EBX */
	uint16_t vpid;
	uint64_t xcr0;               /* XCR0 the guest set (XSETBV), switched with the vCPU */
	uint64_t msr_kernel_gs, msr_star, msr_lstar, msr_cstar, msr_sfmask; /* switched with the vCPU */
	uint64_t dr[5];              /* DR0-DR3, DR6: switched with the vCPU */
	uint64_t cr8;                /* the guest's task priority (CR8 accesses exit) */
	void *fpu;                   /* XSAVE/FXSAVE area: FPU/SSE/AVX state while not running */
	uint64_t slice_end;          /* TSC when the time slice ends */
	enum vcpu_action action;     /* why the last run ended */
	int exit_code;
	char stop_reason[160];
	uint32_t exits[EXIT_REASON_MAX + 1];
	struct vcpu *next;           /* run-queue link */
};

/* XCR0 bits a guest may set with XSETBV (and CPUID leaf 0xD reports). */
extern uint64_t vcpu_xcr0_allowed;

/* What all vCPUs share (the MSR bitmap); once, before the first vcpu_create. 0 or -ENOMEM. */
int vcpu_global_init(void);
/* Allocates a vCPU of `vm` for host CPU `cpu`, to start in the Multiboot2 i386 state at `entry`
 * with EBX = `info_gpa`. Any CPU may call it; the VMCS is filled in on `cpu` by the first
 * vcpu_load. 0 or -ENOMEM. */
int vcpu_create(struct vcpu *v, struct vm *vm, unsigned cpu, uint64_t entry, uint64_t info_gpa);
/* Makes `v` this CPU's current vCPU (VMPTRLD, and the state VMX does not switch), after `prev`. */
void vcpu_load(struct vcpu *v, struct vcpu *prev);
/* Runs `v` until the scheduler has something to do. Returns why. */
enum vcpu_action vcpu_run(struct vcpu *v, uint64_t quantum_tsc);
/* Arms the VMX-preemption timer of the current VMCS for `tsc_ticks` of TSC time. */
void vcpu_set_timer(uint64_t tsc_ticks);
/* Releases the VMCS and FPU area (VMCLEAR on this CPU first). */
void vcpu_destroy(struct vcpu *v);
/* One-line summary of exit counts: "total N, io 12, cpuid 3". */
void vcpu_exit_summary(const struct vcpu *v, char *buf, unsigned size);
/* Prints the registers and key VMCS fields (for stops and the future monitor's "dump"). */
void vcpu_dump(const struct vcpu *v);

/* entry.asm: enter the guest; returns 0 after a VM exit, 1 if VMLAUNCH/VMRESUME itself failed. */
int vmx_enter(struct vcpu *v, uint64_t launched);
void vmx_exit_stub(void);
