/* A back end: the hardware extension guests run on (vmx/: Intel VMX, svm/: AMD SVM), as core/ and the
 * neutral vCPU code (vcpu/vcpu.c) call it. Each back end fills one table (vmx_backend, svm_backend);
 * core/hv.c chooses one at probe time (vcpu_backend_choose). These are cold paths (a CPU turned on,
 * a vCPU created, loaded, run for a slice, left): an indirect call each. The guest accessors the exit
 * handlers call (vcpu/guest.h) dispatch by an inline test of vcpu_vendor instead: the host's
 * retpolines make indirect calls expensive there. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "ept/ept.h"

struct vcpu;
struct vcpu_snapshot;
struct vm;
enum vcpu_action;

enum vcpu_vendor { VCPU_VMX, VCPU_SVM };

/* What a probe settled that core/ acts on. */
struct vcpu_probe {
	const char *why;             /* when guests cannot run: why ("AMD CPU", "disabled in firmware"...) */
	bool paging_nested;          /* paging=ept (a nested map: EPT, NPT) is possible */
	bool paging_shadow;          /* paging=shadow is possible (VMX: shadow paging's controls; SVM: XD) */
	bool no_nested;              /* the CPU has no nested paging at all */
};

struct vcpu_backend {
	enum vcpu_vendor vendor;
	const char *name;            /* "VMX", "SVM": in console lines */
	/* A guest's nested map: its format (EPT, NPT: ept/ept.h) and the leaf sizes (EPT_PAGE_*) the CPU
	 * offers, for gmem_create_format. */
	enum ept_format map_format;
	unsigned (*map_page_sizes)(void);
	/* On the boot CPU, first: can guests run on this CPU's extension? Settles its capabilities (with
	 * APIC virtualization only if `apicv`, the hypervisor's apicv=), prints its informative line
	 * (`hv: vmx: ...`, `hv: svm: ...`) and fills *p; false (p->why) when they cannot. */
	bool (*probe)(bool apicv, struct vcpu_probe *p);
	/* On the calling CPU: turn the extension on (the result in cpu_state), off (before a reset). */
	void (*cpu_on)(void);
	int (*cpu_state)(unsigned cpu);      /* 0 not yet, 1 on, -1 failed */
	void (*cpu_off)(void);
	/* What all vCPUs share (bitmaps); once, after the CPUs are on, before the first vCPU. 0 or
	 * -ENOMEM. */
	int (*global_init)(void);
	/* The back end's part of a new vCPU (vcpu_create filled the neutral part): its VMCS or VMCB
	 * page, its tags. Any CPU. 0 or -ENOMEM, with nothing of its own left allocated. */
	int (*vcpu_create)(struct vcpu *v);
	/* Makes `v` this CPU's current vCPU (the state the extension does not switch included). */
	void (*vcpu_load)(struct vcpu *v);
	/* Runs `v` until the scheduler has something to do; returns why (enum vcpu_action). */
	enum vcpu_action (*vcpu_run)(struct vcpu *v, uint64_t quantum_tsc);
	/* vcpu_leave and vcpu_free's back-end halves (vcpu/vcpu.h). */
	void (*vcpu_leave)(struct vcpu *v);
	void (*vcpu_free)(struct vcpu *v);
	/* What a snapshot (vcpu/snapshot.h) reads from the VMCS or VMCB of a `v` that ran: on v's CPU,
	 * v not in the guest (vcpu/snapshot.c calls it there). False if it could not be read. */
	bool (*vcpu_snapshot)(struct vcpu *v, struct vcpu_snapshot *s);
	/* The back end's own informative lines about a guest that ended, after the contract lines
	 * (VMX: what real mode cost in virtual-8086 mode, vmx/realmode.c); NULL: none. */
	void (*guest_report)(const struct vm *g);
};

/* The back end guests run on, and its vendor (read on every accessor call): set once at probe time. */
extern const struct vcpu_backend *vcpu_backend;
extern enum vcpu_vendor vcpu_vendor;

static inline void vcpu_backend_choose(const struct vcpu_backend *b)
{
	vcpu_backend = b;
	vcpu_vendor = b->vendor;
}
