/* A vCPU's state as the guest sees it, in vendor-neutral form, read on any CPU: what the monitor
 * shows (`regs`) and walks (`gva`). vcpu/snapshot.c fills it, the back end
 * what is in its VMCS or VMCB (vmx/snapshot.c, svm/snapshot.c); nothing
 * above it reads the VMCS or a VMCB. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vcpu/seg.h"

/* Where a vCPU is in its life. SDM Vol. 3A, 9.1 and 9.4 (INIT, wait-for-SIPI), and HLT. */
enum vcpu_activity {
	VCPU_RUNNING,    /* runnable */
	VCPU_HALTED,     /* after HLT: runs again when an interrupt (IF=1), NMI or INIT is due */
	VCPU_WAIT_SIPI,  /* an application processor before its Start-up IPI, or after INIT */
};

/* An event waiting to be delivered at the next VM entry: an exception a handler raised, or an event
 * a VM exit interrupted. Types as SDM Vol. 3C, 25.8.3 (Table 25-17) and AMD APM Vol. 2, 15.20 (EVENTINJ)
 * name them. */
enum vcpu_event_type {
	VCPU_EVENT_EXTINT,           /* external (maskable) interrupt */
	VCPU_EVENT_NMI,
	VCPU_EVENT_EXCEPTION,        /* hardware exception (#DE, #PF, ...) */
	VCPU_EVENT_SOFT_INT,         /* INT n */
	VCPU_EVENT_PRIV_SOFT_EXC,    /* INT1 (ICEBP) */
	VCPU_EVENT_SOFT_EXC,         /* INT3, INTO */
	VCPU_EVENT_OTHER,
};

struct vcpu_pending_event {
	bool valid;
	uint8_t vector;
	enum vcpu_event_type type;
	bool has_error_code;
	uint32_t error_code;
};

/* What blocks event delivery for one instruction or until IRET (SDM Vol. 3A, 6.8.3 (STI, MOV SS),
 * 6.7.1 (NMI handling)). */
#define VCPU_BLOCK_STI    (1u << 0)  /* after STI */
#define VCPU_BLOCK_MOV_SS (1u << 1)  /* after MOV SS or POP SS */
#define VCPU_BLOCK_NMI    (1u << 2)  /* in an NMI handler, until its IRET */

enum vcpu_snapshot_status {
	VCPU_SNAP_LIVE,              /* its state now (between two of its exits) */
	VCPU_SNAP_START,             /* it never ran: the state it will start in */
	VCPU_SNAP_GONE,              /* it has left its CPU for good (its guest is ending): nothing read */
};

struct vcpu_snapshot {
	enum vcpu_snapshot_status status;
	enum vcpu_activity activity; /* and for halted: were interrupts on (RFLAGS.IF) at the HLT */
	bool halted_if;
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
	/* The control registers as the guest reads them (MOV from CR0/CR4 included: bits the
	 * hypervisor owns show the guest's value, not the CPU's). */
	uint64_t cr0, cr2, cr3, cr4, efer;
	uint64_t pdpte[4];           /* PAE paging: the PDPTEs loaded with CR3 (SDM Vol. 3A, 4.4.1) */
	struct vcpu_seg seg[VCPU_NSEGS];
	uint64_t gdtr_base, idtr_base;
	uint32_t gdtr_limit, idtr_limit;
	unsigned blocking;           /* VCPU_BLOCK_* (live only) */
	struct vcpu_pending_event event;
	int irq;                     /* the interrupt its local APIC would deliver next, -1 none */
	uint32_t nmi;                /* NMIs waiting */
};

struct vcpu;

/* Reads v's state on v's own CPU (a cross-CPU call when that is another: a VMCS is current on one
 * CPU only), waiting for the answer; s->status says what was read. The caller keeps v's guest from
 * being freed meanwhile (guest_hold). */
void vcpu_snapshot(struct vcpu *v, struct vcpu_snapshot *s);
