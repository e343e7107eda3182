/* A VM exit in vendor-neutral form, and what a neutral exit handler returns. The back end reads its
 * own exit record (VMX: the exit reason, qualification and instruction-information fields, SDM Vol.
 * 3C, 28.2; SVM: EXITCODE and EXITINFO1/2, AMD APM Vol. 2, 15.7 and 15.10) into a struct vcpu_exit,
 * calls the neutral handler of its kind, and acts on the result. */
#pragma once
#include <stdint.h>

/* A handler's results besides an action for the scheduler (enum vcpu_action, >= 0):
 *   HANDLED  resume the guest as it is (RIP where the handler left it: at the instruction when it
 *            faulted or must run again, past it when the handler moved it there itself);
 *   RETIRED  the handler emulated the instruction: the back end moves RIP past it (the exit's
 *            instruction length, or its own decoder's) and finishes it (STI/MOV-SS blocking, TF,
 *            RF: vcpu_skip), then resumes the guest. */
#define HANDLED (-1)
#define RETIRED (-3)

/* struct vcpu_exit.cr.access: the kind of control-register access (SDM Vol. 3C, Table 28-3 names
 * them; SVM's CR-read/write intercepts and the decoder give the same). */
enum vcpu_cr_access { VCPU_CR_WRITE, VCPU_CR_READ, VCPU_CR_CLTS, VCPU_CR_LMSW };

/* struct vcpu_exit.io.flags */
#define VCPU_IO_IN     (1u << 0)   /* IN/INS (else OUT/OUTS) */
#define VCPU_IO_STRING (1u << 1)   /* INS/OUTS */
#define VCPU_IO_REP    (1u << 2)   /* with a REP prefix */
#define VCPU_IO_NOOPS  0xffu       /* io.asz, io.seg: not given by the exit (decode the prefixes) */

/* struct vcpu_exit.mem.access: a second-level fault's access and what the entry allowed (VMX: SDM Vol.
 * 3C, Table 28-7, bits 0-5; SVM: the NPF error code, AMD APM Vol. 2, 15.25.6). For an APIC access,
 * only VCPU_MEM_READ or VCPU_MEM_WRITE, or 0 for any other access (a fetch, event delivery). */
#define VCPU_MEM_READ      (1u << 0)
#define VCPU_MEM_WRITE     (1u << 1)
#define VCPU_MEM_FETCH     (1u << 2)
#define VCPU_MEM_READABLE  (1u << 3)   /* the entry allowed reads */
#define VCPU_MEM_WRITABLE  (1u << 4)   /* ... writes */
#define VCPU_MEM_EXECUTABLE (1u << 5)  /* ... fetches */
#define VCPU_MEM_MAPPED    (VCPU_MEM_READABLE | VCPU_MEM_WRITABLE | VCPU_MEM_EXECUTABLE)
/* Not the instruction's own operand: the access of an event's delivery (its stack pushes, its IDT
 * gate), or the CPU's walk of the guest's paging structures (VMX: IDT-vectoring information valid,
 * or exit-qualification bit 7 or 8 clear, SDM Vol. 3C, 28.2.1, Table 28-7, and 28.2.4; SVM:
 * EXITINTINFO valid or EXITINFO1 bit 33, AMD APM Vol. 2, 15.7.2 and 15.25.6). */
#define VCPU_MEM_IMPLICIT  (1u << 6)

struct vcpu_exit {
	uint64_t gpa;                /* NPF: the guest-physical address; APIC access: its offset in the page */
	uint8_t kind;                /* enum vcpu_exit_kind (vcpu/exit_kind.h) */
	uint8_t len;                 /* the instruction's length, 0 when the exit does not give it */
	union {
		struct {
			uint8_t cr;          /* CRn */
			uint8_t access;      /* enum vcpu_cr_access */
			uint8_t gpr;         /* MOV: the general register, numbered as in ModRM (0 RAX .. 15 R15) */
			uint8_t pad;
			uint16_t lmsw;       /* LMSW: its source operand */
		} cr;
		struct {
			uint16_t port;
			uint8_t size;        /* 1, 2 or 4 bytes */
			uint8_t flags;       /* VCPU_IO_* */
			uint8_t asz;         /* INS/OUTS: address size 0 (16-bit), 1 (32), 2 (64), or VCPU_IO_NOOPS */
			uint8_t seg;         /* OUTS: the segment (enum vcpu_seg_reg), or VCPU_IO_NOOPS */
		} io;
		struct {
			uint8_t access;      /* VCPU_MEM_* */
		} mem;
	};
};
_Static_assert(sizeof(struct vcpu_exit) == 16, "a small record, passed by pointer");

struct vcpu;

/* The neutral handlers (vcpu/cpuid.c, msr.c, cr.c, mmio.c, strio.c, insn.c): HANDLED, RETIRED, or an
 * action. */
int vcpu_handle_cpuid(struct vcpu *v);
int vcpu_handle_rdmsr(struct vcpu *v);
int vcpu_handle_wrmsr(struct vcpu *v);
int vcpu_handle_cr(struct vcpu *v, const struct vcpu_exit *e);        /* MOV to/from CRn, CLTS, LMSW */
int vcpu_handle_xsetbv(struct vcpu *v);
int vcpu_handle_npf(struct vcpu *v, const struct vcpu_exit *e);       /* EPT violation, NPF */
int vcpu_emulate_store(struct vcpu *v, uint64_t gva, uint64_t gpa);   /* shadow paging's SHADOW_EMULATE */
int vcpu_handle_apic_access(struct vcpu *v, const struct vcpu_exit *e);
int vcpu_handle_string_io(struct vcpu *v, const struct vcpu_exit *e); /* INS, OUTS */
int vcpu_handle_hlt(struct vcpu *v, const struct vcpu_exit *e);

/* End v's guest, whichever vCPU calls them: the first end sets the reason (later ones are ignored);
 * every vCPU of the guest then leaves its CPU. vm_stop: the hypervisor stops the guest, for the
 * reason `fmt` (vm->stop_reason), and returns VCPU_STOPPED. vm_end: the guest ended itself (the debug
 * exit port, the exit hypercall) with `code` (vm->exit_code), and returns VCPU_EXITED. Not to be
 * confused with a VM exit, the CPU's event. */
__attribute__((format(printf, 2, 3))) int vm_stop(struct vcpu *v, const char *fmt, ...);
int vm_end(struct vcpu *v, int code);
