/* A vCPU's VMCS: creation in the Multiboot2 i386 start state, switching between vCPUs on one CPU,
 * and the run loop that enters the guest and dispatches its exits (vmx/exit.c). */
#include <stddef.h>
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "console/printk.h"
#include "lib/errno.h"
#include "lib/format.h"
#include "lib/string.h"
#include "pmm/pmm.h"
#include "vmx/exit.h"
#include "vmx/vcpu.h"
#include "vmx/vmx.h"

/* entry.asm's view of struct guest_regs. */
_Static_assert(offsetof(struct vcpu, regs) == 0, "entry.asm: regs first");
_Static_assert(offsetof(struct guest_regs, rax) == 0, "entry.asm G_RAX");
_Static_assert(offsetof(struct guest_regs, rbx) == 8, "entry.asm G_RBX");
_Static_assert(offsetof(struct guest_regs, rbp) == 48, "entry.asm G_RBP");
_Static_assert(offsetof(struct guest_regs, r8) == 56, "entry.asm G_R8");
_Static_assert(offsetof(struct guest_regs, r15) == 112, "entry.asm G_R15");
_Static_assert(offsetof(struct guest_regs, cr2) == 120, "entry.asm G_CR2");


static uint64_t msr_bitmap;   /* one for all guests: which MSR accesses exit (SDM Vol. 3C, 25.6.9) */
static uint16_t next_vpid = 1;
static bool have_xsave;
static unsigned fpu_pages;     /* size of a vCPU's XSAVE/FXSAVE area, in pages */
/* XCR0 bits a guest may set: what the CPU supports, less AMX tile state (bits 17-18), whose 8 KiB
 * would make every vCPU's save area three pages for state no test guest uses. */
uint64_t vcpu_xcr0_allowed = 1;
#define XCR0_AMX (3ull << 17)

static inline void xsetbv(uint32_t idx, uint64_t v)
{
	asm volatile("xsetbv" : : "c"(idx), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}


/* Lets the guest access one MSR without an exit (clears its read and write bits). */
static void msr_passthrough(uint8_t *bm, uint32_t msr)
{
	uint32_t base = msr >= 0xc0000000u ? 1024 : 0, bit = msr & 0x1fff;

	bm[base + bit / 8] &= ~(1u << (bit % 8));          /* read bitmap */
	bm[2048 + base + bit / 8] &= ~(1u << (bit % 8));   /* write bitmap */
}

int vcpu_global_init(void)
{
	uint8_t *bm;

	if (msr_bitmap)
		return 0;
	if (!(msr_bitmap = pmm_alloc_page()))
		return -ENOMEM;
	bm = phys_to_virt(msr_bitmap);
	memset(bm, 0xff, PAGE_SIZE);                        /* every MSR exits ... */
	/* ... but those whose guest value lives in the VMCS (saved and loaded by VM exits and
	 * entries), or that the host never uses and vcpu_load switches (syscall MSRs). */
	msr_passthrough(bm, MSR_FS_BASE);
	msr_passthrough(bm, MSR_GS_BASE);
	msr_passthrough(bm, MSR_IA32_SYSENTER_CS);
	msr_passthrough(bm, MSR_IA32_SYSENTER_ESP);
	msr_passthrough(bm, MSR_IA32_SYSENTER_EIP);
	msr_passthrough(bm, MSR_KERNEL_GS_BASE);
	msr_passthrough(bm, MSR_STAR);
	msr_passthrough(bm, MSR_LSTAR);
	msr_passthrough(bm, MSR_CSTAR);
	msr_passthrough(bm, MSR_SFMASK);
	if (vmx_caps.entry & ENTRY_LOAD_IA32_PAT)
		msr_passthrough(bm, MSR_IA32_PAT);
	have_xsave = cpu_has(CPU_XSAVE);
	fpu_pages = 1;                                      /* FXSAVE: 512 bytes */
	if (have_xsave) {
		struct cpuid_regs r = cpuid(0xd, 0);

		/* CPUID.(EAX=0DH,ECX=0): EDX:EAX the XCR0 bits supported; EBX the XSAVE area size for the
		 * XCR0 now loaded (SDM Vol. 1, 13.2): load the guests' mask to learn their area's size. */
		vcpu_xcr0_allowed = (((uint64_t)r.edx << 32) | r.eax) & ~XCR0_AMX;
		xsetbv(0, vcpu_xcr0_allowed);
		fpu_pages = (cpuid(0xd, 0).ebx + PAGE_SIZE - 1) / PAGE_SIZE;
		xsetbv(0, 1);
	}
	return 0;
}

static void setup_host_state(void)
{
	struct percpu *pc = this_cpu();
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) gdtr, idtr;

	asm volatile("sgdt %0" : "=m"(gdtr));
	asm volatile("sidt %0" : "=m"(idtr));
	/* SDM Vol. 3C, 25.5: host state loaded on every VM exit. */
	vmcs_write(HOST_CR0, read_cr0());
	vmcs_write(HOST_CR3, read_cr3());
	vmcs_write(HOST_CR4, read_cr4());
	vmcs_write(HOST_CS_SELECTOR, 0x08);
	vmcs_write(HOST_SS_SELECTOR, 0x10);
	vmcs_write(HOST_DS_SELECTOR, 0x10);
	vmcs_write(HOST_ES_SELECTOR, 0x10);
	vmcs_write(HOST_FS_SELECTOR, 0);
	vmcs_write(HOST_GS_SELECTOR, 0);
	vmcs_write(HOST_TR_SELECTOR, 0x20);
	vmcs_write(HOST_FS_BASE, 0);
	vmcs_write(HOST_GS_BASE, (uint64_t)pc);
	vmcs_write(HOST_TR_BASE, (uint64_t)&pc->tss);
	vmcs_write(HOST_GDTR_BASE, gdtr.base);
	vmcs_write(HOST_IDTR_BASE, idtr.base);
	vmcs_write(HOST_IA32_SYSENTER_CS, 0);
	vmcs_write(HOST_IA32_SYSENTER_ESP, 0);
	vmcs_write(HOST_IA32_SYSENTER_EIP, 0);
	vmcs_write(HOST_IA32_EFER, rdmsr(MSR_EFER));
	if (vmx_caps.exit & EXIT_LOAD_IA32_PAT)
		vmcs_write(HOST_IA32_PAT, rdmsr(MSR_IA32_PAT));
	vmcs_write(HOST_RIP, (uint64_t)vmx_exit_stub);
}

/* The bits of CR0/CR4 the guest may not own: VMX's fixed bits (SDM Vol. 3D, A.7-A.8), and CR0.PG,
 * whose changes decide IA-32e mode (exit.c). Unrestricted guest frees PE and PG (SDM Vol. 3C 27.3.1.1). */
uint64_t vcpu_cr0_mask(void)
{
	uint64_t fixed0 = vmx_caps.cr0_fixed0 & ~(CR0_PE | CR0_PG);

	return fixed0 | (~vmx_caps.cr0_fixed1 & 0xffffffffull) | CR0_PG;
}

uint64_t vcpu_cr4_mask(void)
{
	return vmx_caps.cr4_fixed0 | (~vmx_caps.cr4_fixed1 & 0xffffffffull);
}

uint64_t vcpu_cr0_real(uint64_t guest)
{
	return (guest | (vmx_caps.cr0_fixed0 & ~(CR0_PE | CR0_PG))) & vmx_caps.cr0_fixed1;
}

uint64_t vcpu_cr4_real(uint64_t guest)
{
	return (guest | vmx_caps.cr4_fixed0) & vmx_caps.cr4_fixed1;
}

/* Multiboot2 i386 machine state (Multiboot2 spec 3.3): 32-bit protected mode, flat 4 GiB segments,
 * paging off, interrupts off, EAX = magic, EBX = the information block. */
static void setup_guest_state(struct vcpu *v, uint64_t entry, uint64_t info_gpa)
{
	static const enum vmcs_field data_segs[] = { GUEST_DS_SELECTOR, GUEST_ES_SELECTOR,
						     GUEST_SS_SELECTOR, GUEST_FS_SELECTOR, GUEST_GS_SELECTOR };
	uint64_t cr0 = CR0_PE | CR0_ET;

	/* Segment fields: selector, then base/limit/access rights at fixed distances in the
	 * encoding space (SDM Vol. 3D, B.1.2, B.3.3, B.4.3). Access rights: SDM Vol. 3C, 25.4.1. */
	for (unsigned i = 0; i < 5; i++) {
		enum vmcs_field sel = data_segs[i];
		unsigned n = (sel - GUEST_ES_SELECTOR) / 2;

		vmcs_write(sel, 0x10);
		vmcs_write(GUEST_ES_BASE + 2 * n, 0);
		vmcs_write(GUEST_ES_LIMIT + 2 * n, 0xffffffff);
		vmcs_write(GUEST_ES_AR_BYTES + 2 * n, 0xc093); /* data RW accessed, S, P, D/B, G */
	}
	vmcs_write(GUEST_CS_SELECTOR, 0x08);
	vmcs_write(GUEST_CS_BASE, 0);
	vmcs_write(GUEST_CS_LIMIT, 0xffffffff);
	vmcs_write(GUEST_CS_AR_BYTES, 0xc09b);             /* code RX accessed, S, P, D, G */
	vmcs_write(GUEST_LDTR_SELECTOR, 0);
	vmcs_write(GUEST_LDTR_AR_BYTES, 0x10000);          /* unusable */
	vmcs_write(GUEST_TR_SELECTOR, 0);
	vmcs_write(GUEST_TR_BASE, 0);
	vmcs_write(GUEST_TR_LIMIT, 0xff);
	vmcs_write(GUEST_TR_AR_BYTES, 0x8b);               /* busy 32-bit TSS: entry checks want one */
	vmcs_write(GUEST_GDTR_BASE, 0);
	vmcs_write(GUEST_GDTR_LIMIT, 0);
	vmcs_write(GUEST_IDTR_BASE, 0);
	vmcs_write(GUEST_IDTR_LIMIT, 0);

	vmcs_write(CR0_GUEST_HOST_MASK, vcpu_cr0_mask());
	vmcs_write(CR0_READ_SHADOW, cr0);
	vmcs_write(GUEST_CR0, vcpu_cr0_real(cr0));
	vmcs_write(CR4_GUEST_HOST_MASK, vcpu_cr4_mask());
	vmcs_write(CR4_READ_SHADOW, 0);
	vmcs_write(GUEST_CR4, vcpu_cr4_real(0));
	vmcs_write(GUEST_CR3, 0);
	vmcs_write(GUEST_DR7, 0x400);
	vmcs_write(GUEST_RSP, 0);
	vmcs_write(GUEST_RIP, entry);
	vmcs_write(GUEST_RFLAGS, 0x2);                     /* bit 1 is always 1; IF = 0 */
	vmcs_write(GUEST_IA32_EFER, 0);
	if (vmx_caps.entry & ENTRY_LOAD_IA32_PAT)
		vmcs_write(GUEST_IA32_PAT, 0x0007040600070406ull); /* the power-up PAT (SDM Vol. 3A, 13.12.4) */
	vmcs_write(GUEST_IA32_DEBUGCTL, 0);
	vmcs_write(GUEST_SYSENTER_CS, 0);
	vmcs_write(GUEST_SYSENTER_ESP, 0);
	vmcs_write(GUEST_SYSENTER_EIP, 0);
	vmcs_write(GUEST_INTERRUPTIBILITY_INFO, 0);
	vmcs_write(GUEST_ACTIVITY_STATE, 0);
	vmcs_write(GUEST_PENDING_DBG_EXCEPTIONS, 0);
	vmcs_write(VMCS_LINK_POINTER, ~0ull);              /* no shadow VMCS (SDM Vol. 3C, 27.3.1.5) */

	memset(&v->regs, 0, sizeof(v->regs));
	v->regs.rax = 0x36d76289;                          /* Multiboot2 boot loader magic */
	v->regs.rbx = info_gpa;
}

static void setup_controls(struct vcpu *v)
{
	vmcs_write(PIN_BASED_VM_EXEC_CONTROL, vmx_caps.pin);
	vmcs_write(CPU_BASED_VM_EXEC_CONTROL, vmx_caps.cpu);
	vmcs_write(SECONDARY_VM_EXEC_CONTROL, vmx_caps.cpu2);
	vmcs_write(VM_EXIT_CONTROLS, vmx_caps.exit);
	vmcs_write(VM_ENTRY_CONTROLS, vmx_caps.entry);
	vmcs_write(EXCEPTION_BITMAP, 0);                   /* the guest handles its own exceptions */
	vmcs_write(PAGE_FAULT_ERROR_CODE_MASK, 0);         /* (with bit 14 clear: no #PF exits at all) */
	vmcs_write(PAGE_FAULT_ERROR_CODE_MATCH, 0);
	vmcs_write(CR3_TARGET_COUNT, 0);
	vmcs_write(VM_EXIT_MSR_STORE_COUNT, 0);
	vmcs_write(VM_EXIT_MSR_LOAD_COUNT, 0);
	vmcs_write(VM_ENTRY_MSR_LOAD_COUNT, 0);
	vmcs_write(VM_ENTRY_INTR_INFO_FIELD, 0);
	vmcs_write(MSR_BITMAP, msr_bitmap);
	vmcs_write(EPT_POINTER, v->vm->eptp);
	vmcs_write(TSC_OFFSET, 0);                         /* guests see the host TSC (benchmarks) */
	if (vmx_caps.vpid)
		vmcs_write(VIRTUAL_PROCESSOR_ID, v->vpid);
}

int vcpu_create(struct vcpu *v, struct vm *vm, unsigned cpu, uint64_t entry, uint64_t info_gpa)
{
	uint64_t fpu;
	int err;

	if ((err = vcpu_global_init()))
		return err;
	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->cpu = cpu;
	v->entry = entry;
	v->info_gpa = info_gpa;
	v->xcr0 = 1;                                       /* x87 only, the reset value */
	if (!(v->vmcs = pmm_alloc_page()))
		return -ENOMEM;
	if (pmm_alloc_pages(fpu_pages, PAGE_SIZE, &fpu)) {
		pmm_free_page(v->vmcs);
		return -ENOMEM;
	}
	v->fpu = phys_to_virt(fpu);
	memset(v->fpu, 0, fpu_pages * PAGE_SIZE);           /* XSTATE_BV = 0: every component at reset */
	*(uint32_t *)((char *)v->fpu + 24) = 0x1f80;      /* MXCSR reset value (FXSAVE layout, Vol. 1 10.5.1) */
	*(uint16_t *)v->fpu = 0x37f;                       /* x87 FCW reset value */
	if (vmx_caps.vpid)
		v->vpid = __atomic_fetch_add(&next_vpid, 1, __ATOMIC_RELAXED);
	/* SDM Vol. 3C, 24.2: the VMCS region starts with the revision identifier. */
	memset(phys_to_virt(v->vmcs), 0, PAGE_SIZE);
	*(uint32_t *)phys_to_virt(v->vmcs) = vmx_caps.revision;
	return 0;
}

/* First load, on the vCPU's own CPU: VMCLEAR makes the VMCS "clear" so that VMLAUNCH accepts it,
 * VMPTRLD makes it current, then every field is written (SDM Vol. 3C, 25.11.3). */
static void vcpu_setup(struct vcpu *v)
{
	if (!vmclear(v->vmcs) || !vmptrld(v->vmcs))
		panic("hv: VMCLEAR/VMPTRLD of a new VMCS failed for guest %s", v->vm->name);
	setup_controls(v);
	setup_host_state();
	setup_guest_state(v, v->entry, v->info_gpa);
	v->ready = true;
}

/* FPU/SSE/AVX state is not switched by VMX: save one vCPU's, restore the next one's. XSAVE saves
 * only components enabled in XCR0 (SDM Vol. 1, 13.7): load the full guest mask around it, or the SSE
 * state of a guest that never set XCR0 would be lost. */
static void fpu_save(struct vcpu *v)
{
	if (have_xsave) {
		xsetbv(0, vcpu_xcr0_allowed);
		asm volatile("xsave64 (%0)" : : "r"(v->fpu), "a"((uint32_t)vcpu_xcr0_allowed),
			     "d"((uint32_t)(vcpu_xcr0_allowed >> 32)) : "memory");
	} else {
		asm volatile("fxsave64 (%0)" : : "r"(v->fpu) : "memory");
	}
}

static void fpu_restore(struct vcpu *v)
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

void vcpu_load(struct vcpu *v, struct vcpu *prev)
{
	if (prev == v)
		return;
	if (prev) {
		fpu_save(prev);
		prev->msr_kernel_gs = rdmsr(MSR_KERNEL_GS_BASE);
		prev->msr_star = rdmsr(MSR_STAR);
		prev->msr_lstar = rdmsr(MSR_LSTAR);
		prev->msr_cstar = rdmsr(MSR_CSTAR);
		prev->msr_sfmask = rdmsr(MSR_SFMASK);
		asm volatile("mov %%dr0, %0; mov %%dr1, %1; mov %%dr2, %2; mov %%dr3, %3; mov %%dr6, %4"
			     : "=r"(prev->dr[0]), "=r"(prev->dr[1]), "=r"(prev->dr[2]), "=r"(prev->dr[3]),
			       "=r"(prev->dr[4]));
	}
	if (!v->ready)
		vcpu_setup(v);
	else if (!vmptrld(v->vmcs))
		panic("hv: VMPTRLD of vCPU %s/%u failed", v->vm->name, v->index);
	fpu_restore(v);
	wrmsr(MSR_KERNEL_GS_BASE, v->msr_kernel_gs);
	wrmsr(MSR_STAR, v->msr_star);
	wrmsr(MSR_LSTAR, v->msr_lstar);
	wrmsr(MSR_CSTAR, v->msr_cstar);
	wrmsr(MSR_SFMASK, v->msr_sfmask);
	/* DR0-3 and DR6 are not in the VMCS (DR7 is) and MOV DR does not exit: switch them too. */
	asm volatile("mov %0, %%dr0; mov %1, %%dr1; mov %2, %%dr2; mov %3, %%dr3; mov %4, %%dr6"
		     : : "r"(v->dr[0]), "r"(v->dr[1]), "r"(v->dr[2]), "r"(v->dr[3]), "r"(v->dr[4] | 0xffff0ff0ull));
}

void vcpu_set_timer(uint64_t tsc_ticks)
{
	/* The timer counts down once every 2^shift TSC ticks (SDM Vol. 3D, A.6); its field is 32 bits,
	 * and 0 would exit before the first guest instruction. */
	uint64_t t = tsc_ticks >> vmx_caps.preemption_shift;

	vmcs_write(VMX_PREEMPTION_TIMER_VALUE, t > 0xffffffffull ? 0xffffffffull : t ? t : 1);
}

enum vcpu_action vcpu_run(struct vcpu *v, uint64_t quantum_tsc)
{
	v->slice_end = rdtsc() + quantum_tsc;
	vcpu_set_timer(quantum_tsc);
	if (vmx_enter(v, v->launched)) {
		/* VMLAUNCH/VMRESUME failed (every exit in between resumed from entry.asm). */
		uint32_t err = vmcs_read32(VM_INSTRUCTION_ERROR);

		snformat(v->stop_reason, sizeof(v->stop_reason),
			 "VM entry failed: VM-instruction error %u (%s)", err, vm_instruction_error_name(err));
		return VCPU_STOPPED;
	}
	v->launched = true;                  /* exits happened: VMRESUME from now on */
	return v->action;
}

void vcpu_destroy(struct vcpu *v)
{
	vmclear(v->vmcs);
	pmm_free_page(v->vmcs);
	pmm_free_pages((uint64_t)v->fpu, fpu_pages);
	v->vmcs = 0;
	v->fpu = NULL;
}

void vcpu_exit_summary(const struct vcpu *v, char *buf, unsigned size)
{
	uint64_t total = 0;
	unsigned n;

	for (unsigned r = 0; r <= EXIT_REASON_MAX; r++)
		total += v->exits[r];
	n = snformat(buf, size, "total %lu", total);

	for (unsigned r = 0; r <= EXIT_REASON_MAX && n < size; r++)
		if (v->exits[r])
			n += snformat(buf + n, size - n, ", %s %u", exit_reason_name(r), v->exits[r]);
}

void vcpu_dump(const struct vcpu *v)
{
	const struct guest_regs *r = &v->regs;

	pr_info("hv: guest %s vcpu %u: rip %016lx rsp %016lx rflags %016lx\n"
		"  rax %016lx rbx %016lx rcx %016lx rdx %016lx\n"
		"  rsi %016lx rdi %016lx rbp %016lx r8  %016lx\n"
		"  cr0 %016lx cr3 %016lx cr4 %016lx efer %016lx\n"
		"  cs %04lx ss %04lx cr2 %016lx exit qualification %016lx\n",
		v->vm->name, v->index, vmcs_read(GUEST_RIP), vmcs_read(GUEST_RSP), vmcs_read(GUEST_RFLAGS),
		r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rbp, r->r8,
		vmcs_read(CR0_READ_SHADOW), vmcs_read(GUEST_CR3), vmcs_read(CR4_READ_SHADOW),
		vmcs_read(GUEST_IA32_EFER), vmcs_read(GUEST_CS_SELECTOR), vmcs_read(GUEST_SS_SELECTOR),
		r->cr2, vmcs_read(EXIT_QUALIFICATION));
}
