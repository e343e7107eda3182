/* The SVM back end: SVM on every CPU, one VMCB per vCPU, the run loop around VMRUN and the #VMEXIT
 * dispatcher. AMD APM Vol. 2, chapter 15 (section numbers below are that chapter's); the VMCB layout
 * is svm/vmcb.h (Appendix B), exit codes Appendix C.
 *
 * The exits go to the vendor-neutral handlers where the seam has them (CPUID, RDMSR/WRMSR, MOV to
 * CR4, XSETBV, HLT, nested page faults with first touch and MMIO, INS/OUTS: vcpu/'s cpuid, msr, cr,
 * mmio, strio and insn files, over svm/guest.c's accessors); here: port I/O, hypercalls (VMMCALL, and VMCALL,
 * which #UDs on AMD and is recognised in the #UD intercept), INIT/SIPI, interrupts from the emulated
 * local APIC and PIC (EVENTINJ, the VINTR window), the time slice (the host's local APIC timer with
 * the INTR intercept: SVM has no preemption timer), task switches and triple faults (the guest is
 * stopped with the reason), DR0-3 switched between the vCPUs of one CPU, NMI blocking up to the NMI
 * handler's IRET (the IRET intercept, NMI_* below), RDPMC #GP, the guest's IA32_SPEC_CTRL around
 * VMRUN, the single-step trap after an instruction the hypervisor completes (skip, svm/guest.c); with
 * paging=shadow (or without NPT) the shadow's #PF, CR and INVLPG intercepts (svm/spt.c). */
#include <stddef.h>
#include "arch/x86/cpu.h"
#include "arch/x86/apic.h"
#include "arch/x86/debugreg.h"
#include "arch/x86/percpu.h"
#include "arch/x86/spec.h"
#include "arch/x86/time.h"
#include "arch/x86/trap.h"
#include "console/printk.h"
#include "lib/errno.h"
#include "lib/string.h"
#include "pmm/pmm.h"
#include "svm/caps.h"
#include "svm/spt.h"
#include "svm/svm.h"
#include "svm/vmcb.h"
#include "tessera/hypercall.h"
#include "vdev/hypercall.h"
#include "vcpu/cpuid_policy.h"
#include "vcpu/decode.h"
#include "vcpu/exit.h"
#include "vcpu/handler.h"
#include "shadow/gpt.h"

#define VEC_UD 6
#define VEC_GP 13

/* NMI blocking (struct svm_vcpu's nmi_block, svm/svm.h), which the VMCB does not hold without virtual NMIs
 * (CPUID Fn8000_000A_EDX[25], offered by neither QEMU 7.2 nor Bochs 2.7): delivering an NMI blocks
 * further NMIs until the next IRET completes (APM Vol. 2, 8.2.3; SDM Vol. 3A, 6.7.1), but EVENTINJ
 * delivers an NMI whatever the guest's state (15.20), so the hypervisor keeps the blocking, as KVM did
 * before vNMI: the IRET intercept (15.9) comes before the IRET runs; the IRET has completed once the
 * guest's RIP is elsewhere at an exit, and with an NMI waiting that exit is made to come at once by
 * single-stepping the IRET (RFLAGS.TF and the #DB intercept: the trap follows the instruction that
 * began with TF = 1, APM Vol. 2, 13.1.4; IRET loads the guest's own TF). */
/* (NMI_BLOCKED, NMI_IRET, NMI_STEP, NMI_GUEST_TF: svm/svm.h, which svm/guest.c reads too.) */
#define PAT_RESET 0x0007040600070406ull   /* PAT at reset (APM Vol. 2, 7.8.1) */

/* --- per CPU ---------------------------------------------------------------------------------------- */

static volatile int cpu_state[MAX_CPUS];
static uint64_t hsave_pa[MAX_CPUS];      /* VM_HSAVE_PA: VMRUN's host save area (15.30.4) */
static uint64_t host_vmsave_pa[MAX_CPUS]; /* the host's FS, GS, TR, LDTR, KernelGSbase, STAR... (15.5.2) */

static void svm_cpu_on(void)
{
	unsigned c = this_cpu_id();

	/* The PAT entries the nested tables' memory types select (npt/npt.h), as svm_probe checked on
	 * CPU 0: a CPU whose firmware set them otherwise runs no guests (APM Vol. 2, 7.8, 15.25.8). */
	if (PAT_ENTRY(rdmsr(MSR_IA32_PAT), 0) != PAT_TYPE_WB || PAT_ENTRY(rdmsr(MSR_IA32_PAT), 3) != PAT_TYPE_UC)
		goto fail;
	if (!hsave_pa[c] && !(hsave_pa[c] = pmm_alloc_page()))
		goto fail;
	if (!host_vmsave_pa[c] && !(host_vmsave_pa[c] = pmm_alloc_page()))
		goto fail;
	memset(phys_to_virt(host_vmsave_pa[c]), 0, PAGE_SIZE);
	/* XSETBV needs CR4.OSXSAVE (each guest's XCR0 is switched, svm_vcpu_load); FXSAVE saves the XMM
	 * registers only with CR4.OSFXSR (SDM Vol. 2A, FXSAVE; APM Vol. 2, 3.1.3), as vmx_cpu_on sets. */
	write_cr4(read_cr4() | CR4_OSFXSR | (cpu_has(CPU_XSAVE) ? CR4_OSXSAVE : 0));
	/* EFER.SVME before any SVM instruction (15.4); VM_HSAVE_PA a 4 KiB-aligned page (15.30.4). */
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
	wrmsr(MSR_VM_HSAVE_PA, hsave_pa[c]);
	/* VMRUN does not switch FS, GS, TR, LDTR (their hidden parts), KernelGSbase, STAR, LSTAR, CSTAR,
	 * SFMASK and SYSENTER_CS/ESP/EIP; VMLOAD and VMSAVE do (15.5.2). The host's, as they are now
	 * (GS base = this CPU's percpu block, TR = its TSS), are saved once and reloaded after every
	 * #VMEXIT (svm_enter). */
	asm volatile("vmsave %%rax" : : "a"(host_vmsave_pa[c]) : "memory");
	__atomic_store_n(&cpu_state[c], 1, __ATOMIC_RELEASE);
	return;
fail:
	__atomic_store_n(&cpu_state[c], -1, __ATOMIC_RELEASE);
}

static int svm_cpu_state(unsigned cpu)
{
	return __atomic_load_n(&cpu_state[cpu], __ATOMIC_ACQUIRE);
}

static void svm_cpu_off(void)
{
	/* GIF back to 1 and SVM off: an INIT is then an INIT (15.17: GIF=0 holds INIT pending). */
	if (rdmsr(MSR_EFER) & EFER_SVME) {
		asm volatile("stgi");
		wrmsr(MSR_VM_HSAVE_PA, 0);
		wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~EFER_SVME);
	}
}

/* --- shared: IOPM, MSRPM, ASIDs --------------------------------------------------------------------- */

static uint64_t iopm_pa;     /* 12 KiB, every bit set: every port access exits (15.10.1) */
static uint64_t msrpm_pa;    /* 8 KiB: two bits per MSR, read then write (15.11) */

/* The MSRPM's offset and bit pair of an MSR: three 2 KiB ranges, 0-1FFFh at 0, C0000000h-C0001FFFh
 * at 800h, C0010000h-C0011FFFh at 1000h (15.11, Table 15-8). -1 for an MSR outside them (always
 * intercepted). */
static long msrpm_bit(uint32_t msr)
{
	if (msr <= 0x1fff)
		return (long)msr * 2;
	if (msr - 0xc0000000u <= 0x1fff)
		return 0x800 * 8 + (long)(msr - 0xc0000000u) * 2;
	if (msr - 0xc0010000u <= 0x1fff)
		return 0x1000 * 8 + (long)(msr - 0xc0010000u) * 2;
	return -1;
}

static void msr_passthrough(uint8_t *pm, uint32_t msr)
{
	long b = msrpm_bit(msr);

	pm[b / 8] &= ~(3u << (b % 8));          /* read and write bits */
}

static void msr_write_passthrough(uint8_t *pm, uint32_t msr)
{
	long b = msrpm_bit(msr);

	pm[b / 8] &= ~(2u << (b % 8));          /* the write bit: the pair's higher one */
}

static int svm_global_init(void)
{
	uint8_t *pm;

	if (msrpm_pa)
		return 0;
	vcpu_slices_by_apic_timer = true;        /* SVM has no preemption timer */
	/* The IOPM is 12 KiB, the MSRPM 8 KiB, each physically contiguous and 4 KiB aligned
	 * (15.10.1, 15.11). */
	if (pmm_alloc_pages(3, PAGE_SIZE, &iopm_pa))
		return -ENOMEM;
	if (pmm_alloc_pages(2, PAGE_SIZE, &msrpm_pa)) {
		pmm_free_pages(iopm_pa, 3);
		iopm_pa = 0;
		return -ENOMEM;
	}
	memset(phys_to_virt(iopm_pa), 0xff, 3 * PAGE_SIZE);
	pm = phys_to_virt(msrpm_pa);
	memset(pm, 0xff, 2 * PAGE_SIZE);
	/* What VMLOAD/VMSAVE switch with the guest (15.5.2), as the VMX side lets them pass. */
	msr_passthrough(pm, MSR_FS_BASE);
	msr_passthrough(pm, MSR_GS_BASE);
	msr_passthrough(pm, MSR_KERNEL_GS_BASE);
	msr_passthrough(pm, MSR_STAR);
	msr_passthrough(pm, MSR_LSTAR);
	msr_passthrough(pm, MSR_CSTAR);
	msr_passthrough(pm, MSR_SFMASK);
	msr_passthrough(pm, MSR_IA32_SYSENTER_CS);
	msr_passthrough(pm, MSR_IA32_SYSENTER_ESP);
	msr_passthrough(pm, MSR_IA32_SYSENTER_EIP);
	/* IA32_PRED_CMD where guests are offered IBPB (arch/x86/spec.c; on AMD by CPUID
	 * Fn8000_0008_EBX[12]): a guest's IBPB is the CPU's to do, and its #GP on reserved bits, as
	 * vmx/vcpu.c lets it pass; reads still exit, for msr.c's #GP (write-only MSR). */
	if (spec_guest_pred_cmd(&spec))
		msr_write_passthrough(pm, MSR_IA32_PRED_CMD);
	return 0;
}

unsigned svm_npt_page_sizes(void)
{
	/* Nested paging uses long-mode page tables, which always have 2 MiB pages and have 1 GiB pages
	 * where CPUID Fn8000_0001_EDX.Page1GB (bit 26) says so (APM Vol. 2, 5.3.4, 5.3.5; 15.25.3). */
	return EPT_PAGE_4K | EPT_PAGE_2M | (cpu_has(0x80000001, 3, 26) ? EPT_PAGE_1G : 0);
}

/* ASIDs in use, bit n for ASID n; 0 is the host's (15.16). A vCPU takes the lowest free one at its
 * first load and flushes it then: a reused ASID may still tag an old guest's translations. */
static uint64_t asid_used[32768 / 64] = { 1 };
static spinlock_t asid_lock;

static uint16_t asid_alloc(void)
{
	uint32_t n = svm_caps.nasid < 32768 ? svm_caps.nasid : 32768;
	uint16_t asid = 0;

	spin_lock(&asid_lock);
	for (uint32_t a = 1; a < n && !asid; a++)
		if (!(asid_used[a / 64] >> (a % 64) & 1)) {
			asid_used[a / 64] |= 1ull << (a % 64);
			asid = (uint16_t)a;
		}
	spin_unlock(&asid_lock);
	return asid;
}

static void asid_free(uint16_t asid)
{
	spin_lock(&asid_lock);
	asid_used[asid / 64] &= ~(1ull << (asid % 64));
	spin_unlock(&asid_lock);
}

/* --- the VMCB --------------------------------------------------------------------------------------- */


/* A segment from VMX's access-rights layout (vcpu/vcpu_state.h) to the VMCB's 12-bit attribute
 * (Table B-2: bits 7:0 descriptor bits 47:40, bits 11:8 descriptor bits 55:52). Unusable: P = 0. */
static void seg_to_vmcb(struct vmcb_seg *d, const struct seg_state *s)
{
	d->selector = s->sel;
	d->base = s->base;
	d->limit = s->limit;
	d->attrib = (s->ar & AR_UNUSABLE) ? 0 : (uint16_t)((s->ar & 0xff) | ((s->ar >> 4) & 0xf00));
}

static void vmcb_setup(struct vcpu *v, const struct vcpu_state *s)
{
	struct vmcb *b = vmcb_of(v);

	memset(b, 0, sizeof(*b));
	/* Intercepts (Table B-1, offsets 008h-010h), what the VMX side intercepts: physical INTR (the
	 * slice, kicks, cross-CPU calls) and NMI, INIT (15.13), RDPMC, CPUID, INVD, HLT, INVLPGA, I/O through
	 * the IOPM, MSRs through the MSRPM, task switches, shutdown (a triple fault: 15.14.3), every SVM
	 * instruction (VMRUN's bit is required: 15.5.1), WBINVD and WBNOINVD (the caches are shared
	 * with other guests), MONITOR and MWAIT armed or not (CPUID hides them: #UD, as on VMX), XSETBV;
	 * #UD, where the guest's VMCALL (Intel's hypercall instruction, #UD on AMD) is recognised; and
	 * #AC and #DB, given straight back: a guest can make either deliver into itself for ever (an
	 * #AC handler on a misaligned CPL-3 stack, a data breakpoint on the #DB handler's stack), benign
	 * exceptions that never become #DF, with no exit and no interrupt taken (CVE-2015-5307,
	 * CVE-2015-8104): each delivery is now an exit, where the slice can end. */
	b->ctl.intercept_exc = VMCB_INTERCEPT_UD | VMCB_INTERCEPT_AC | VMCB_INTERCEPT_DB;
	b->ctl.intercept_cr = VMCB_INTERCEPT_CR_WRITE(0) | VMCB_INTERCEPT_CR_WRITE(4) | VMCB_INTERCEPT_CR_WRITE(8) | VMCB_INTERCEPT_CR_READ(8);
	b->ctl.intercept3 = VMCB_INTERCEPT_INTR | VMCB_INTERCEPT_NMI | VMCB_INTERCEPT_INIT | VMCB_INTERCEPT_RDPMC |
			    VMCB_INTERCEPT_CPUID |
			    VMCB_INTERCEPT_INVD | VMCB_INTERCEPT_HLT | VMCB_INTERCEPT_INVLPGA | VMCB_INTERCEPT_IOIO |
			    VMCB_INTERCEPT_MSR | VMCB_INTERCEPT_TASK_SW | VMCB_INTERCEPT_SHUTDOWN;
	b->ctl.intercept4 = VMCB_INTERCEPT_VMRUN | VMCB_INTERCEPT_VMMCALL | VMCB_INTERCEPT_VMLOAD |
			    VMCB_INTERCEPT_VMSAVE | VMCB_INTERCEPT_STGI | VMCB_INTERCEPT_CLGI | VMCB_INTERCEPT_SKINIT |
			    VMCB_INTERCEPT_WBINVD | VMCB_INTERCEPT_MONITOR | VMCB_INTERCEPT_MWAIT |
			    VMCB_INTERCEPT_MWAIT_ARM | VMCB_INTERCEPT_XSETBV;
	svm_of(v)->nmi_block = 0;                       /* INIT clears NMI blocking (SDM Vol. 3A, 9.1.1) */
	b->ctl.iopm_base_pa = iopm_pa;
	b->ctl.msrpm_base_pa = msrpm_pa;
	b->ctl.tsc_offset = v->tsc.offset;      /* guest TSC = host TSC + offset (15.5.1) */
	b->ctl.asid = svm_of(v)->asid;
	/* V_INTR_MASKING: the guest's IF masks only virtual interrupts; physical ones exit (INTR) whatever
	 * the guest's IF, so a guest spinning with IF = 0 still loses its CPU at the slice's end. */
	b->ctl.int_ctl = VMCB_V_INTR_MASKING;
	b->ctl.np_ctl = VMCB_NP_ENABLE;         /* nested paging, root in N_CR3 (15.25.3) */
	b->ctl.n_cr3 = ept_ncr3(&v->vm->mem.ept);
	b->ctl.clean = 0;                       /* nothing cached: every field is loaded (15.15) */

	seg_to_vmcb(&b->save.es, &s->es);
	seg_to_vmcb(&b->save.cs, &s->cs);
	seg_to_vmcb(&b->save.ss, &s->ss);
	seg_to_vmcb(&b->save.ds, &s->ds);
	seg_to_vmcb(&b->save.fs, &s->fs);
	seg_to_vmcb(&b->save.gs, &s->gs);
	seg_to_vmcb(&b->save.ldtr, &s->ldtr);
	seg_to_vmcb(&b->save.tr, &s->tr);
	b->save.gdtr.base = s->gdtr_base;
	b->save.gdtr.limit = s->gdtr_limit;
	b->save.idtr.base = s->idtr_base;
	b->save.idtr.limit = s->idtr_limit;
	b->save.cpl = (s->cr0 & CR0_PE) ? (s->ss.ar >> 5) & 3 : 0;   /* CPL = SS.DPL (15.5.1) */
	b->save.efer = s->efer | EFER_SVME;     /* VMRUN requires the guest's SVME too (15.5.1) */
	b->save.cr0 = s->cr0;
	b->save.cr3 = s->cr3;
	b->save.cr4 = s->cr4;
	b->save.dr6 = 0xffff0ff0;               /* reset values (APM Vol. 2, 14.1.3) */
	b->save.dr7 = 0x400;
	b->save.rflags = s->rflags | 2;
	b->save.rip = s->rip;
	b->save.rsp = s->rsp;
	b->save.rax = s->rax;
	b->save.g_pat = PAT_RESET;              /* the guest's PAT under nested paging (15.25.8) */

	memset(&v->regs, 0, sizeof(v->regs));
	v->regs.rax = s->rax;
	v->regs.rbx = s->rbx;
	v->regs.rcx = s->rcx;
	v->regs.rdx = s->rdx;
	v->regs.rsi = s->rsi;
	v->regs.rdi = s->rdi;
	v->regs.rbp = s->rbp;
	v->xcr0 = 1;
	if (vcpu_spt_on(v))
		svm_spt_setup(v, s);             /* no nested paging: the shadow's root, svm/spt.c */
}

/* --- loading a vCPU: the FPU (vcpu_fpu_save/restore, vcpu/vcpu.c), which VMRUN does not switch either - */

static void svm_vcpu_load(struct vcpu *v)
{
	struct vcpu_cpu *pc = this_vcpu_cpu();
	struct vcpu *prev = pc->loaded;

	if (prev == v)
		return;
	if (prev) {
		vcpu_fpu_save(prev);
		/* DR0-3 are not in the VMCB (DR6 and DR7 are, Table B-2): switched by hand between the
		 * vCPUs of one CPU, as vmx/vcpu.c does. */
		asm volatile("mov %%dr0, %0; mov %%dr1, %1; mov %%dr2, %2; mov %%dr3, %3"
			     : "=r"(prev->dr[0]), "=r"(prev->dr[1]), "=r"(prev->dr[2]), "=r"(prev->dr[3]));
	}
	pc->loaded = v;
	if (pc->last_guest != v->vm->id && (spec.on & SPEC_IBPB))
		spec_ibpb();
	pc->last_guest = v->vm->id;
	if (!v->ready) {
		svm_of(v)->asid = asid_alloc();          /* 0 if none is left: svm_vcpu_run stops the guest */
		vmcb_setup(v, &v->start);
		v->ready = true;
	}
	vcpu_fpu_restore(v);
	asm volatile("mov %0, %%dr0; mov %1, %%dr1; mov %2, %%dr2; mov %3, %%dr3"
		     : : "r"(v->dr[0]), "r"(v->dr[1]), "r"(v->dr[2]), "r"(v->dr[3]));
}

/* --- entering the guest ----------------------------------------------------------------------------- */

/*
 * svm_enter(regs, vmcb_pa, host_vmsave_pa): the world switch, with GIF = 0 (the caller's CLGI) and
 * the host's RFLAGS.IF = 1, which with V_INTR_MASKING lets physical interrupts reach the guest as
 * INTR intercepts (15.21.1, 15.17). VMRUN loads and #VMEXIT saves RAX, RSP, RIP, RFLAGS, CR0/2/3/4,
 * EFER, the segment registers CS/SS/DS/ES, GDTR, IDTR, DR6/7 through the VMCB (15.5.1), and #VMEXIT
 * restores the host's from VM_HSAVE_PA (15.6); every other general register stays as the guest had
 * it: loaded from and saved to struct guest_regs here (offsets: vcpu/vcpu.c's _Static_asserts). VMLOAD/VMSAVE switch the
 * rest (15.5.2): the guest's from its VMCB before VMRUN, back after, then the host's from its area.
 * Until that last VMLOAD the GS base is the guest's: nothing here touches per-CPU data.
 */
void svm_enter(struct guest_regs *r, uint64_t vmcb_pa, uint64_t host_pa);
asm(".text\n"
    ".global svm_enter\n"
    "svm_enter:\n\t"
    "push %rbx\n\t"
    "push %rbp\n\t"
    "push %r12\n\t"
    "push %r13\n\t"
    "push %r14\n\t"
    "push %r15\n\t"
    "push %rdi\n\t"                  /* the guest's registers, for after the exit */
    "push %rdx\n\t"                  /* the host's VMSAVE area */
    "mov %rsi, %rax\n\t"             /* VMLOAD, VMRUN, VMSAVE: the VMCB's physical address in RAX */
    "mov 8(%rdi), %rbx\n\t"
    "mov 16(%rdi), %rcx\n\t"
    "mov 24(%rdi), %rdx\n\t"
    "mov 32(%rdi), %rsi\n\t"
    "mov 48(%rdi), %rbp\n\t"
    "mov 56(%rdi), %r8\n\t"
    "mov 64(%rdi), %r9\n\t"
    "mov 72(%rdi), %r10\n\t"
    "mov 80(%rdi), %r11\n\t"
    "mov 88(%rdi), %r12\n\t"
    "mov 96(%rdi), %r13\n\t"
    "mov 104(%rdi), %r14\n\t"
    "mov 112(%rdi), %r15\n\t"
    "mov 40(%rdi), %rdi\n\t"         /* last: it held the pointer */
    "vmload %rax\n\t"                /* the guest's FS, GS, TR, LDTR, syscall MSRs */
    "vmrun %rax\n\t"                 /* until the #VMEXIT; then RAX, RSP are the host's again */
    "vmsave %rax\n\t"
    "push %rdi\n\t"                  /* the guest's RDI; the regs pointer is at 16(%rsp) */
    "mov 16(%rsp), %rdi\n\t"
    "mov %rbx, 8(%rdi)\n\t"
    "mov %rcx, 16(%rdi)\n\t"
    "mov %rdx, 24(%rdi)\n\t"
    "mov %rsi, 32(%rdi)\n\t"
    "mov %rbp, 48(%rdi)\n\t"
    "mov %r8, 56(%rdi)\n\t"
    "mov %r9, 64(%rdi)\n\t"
    "mov %r10, 72(%rdi)\n\t"
    "mov %r11, 80(%rdi)\n\t"
    "mov %r12, 88(%rdi)\n\t"
    "mov %r13, 96(%rdi)\n\t"
    "mov %r14, 104(%rdi)\n\t"
    "mov %r15, 112(%rdi)\n\t"
    "pop %rax\n\t"
    "mov %rax, 40(%rdi)\n\t"
    /* The return stack buffer holds the guest's entries: overwritten before the first RET, as
     * vmx/entry.asm does after a VM exit (spec_rsb_rounds rounds of two CALLs whose return
     * addresses are INT3 speculation traps, then the stack back; AMD, "Software Techniques for
     * Managing Speculation on AMD Processors", return stack; Linux arch/x86/kvm/svm/vmenter.S,
     * FILL_RETURN_BUFFER at VM exit). */
    "movzbl spec_rsb_rounds(%rip), %ecx\n\t"
    "test %ecx, %ecx\n\t"
    "jz 3f\n"
    "1:\n\t"
    "call 2f\n\t"
    "int3\n"
    "2:\n\t"
    "call 4f\n\t"
    "int3\n"
    "4:\n\t"
    "add $16, %rsp\n\t"             /* drop the two return addresses */
    "dec %ecx\n\t"
    "jnz 1b\n\t"
    "lfence\n"                       /* no speculation past a mispredicted loop end */
    "3:\n\t"
    "pop %rax\n\t"                   /* the host's VMSAVE area */
    "vmload %rax\n\t"                /* the host's GS base (per-CPU data), TR, ... again */
    "pop %rdi\n\t"
    "pop %r15\n\t"
    "pop %r14\n\t"
    "pop %r13\n\t"
    "pop %r12\n\t"
    "pop %rbp\n\t"
    "pop %rbx\n\t"
    "ret\n");

/* --- exit helpers ----------------------------------------------------------------------------------- */


/* Past the instruction that exited: nRIP where the CPU saves it (15.7.1), else its length; then
 * finished as the CPU would (svm/guest.c): the STI or MOV SS shadow ends (15.21.5), RF is clear, and
 * with RFLAGS.TF the single-step trap follows. */
static void skip(struct vcpu *v, unsigned len)
{
	struct vmcb *b = vmcb_of(v);

	b->save.rip = svm_caps.nrip_save && b->ctl.next_rip ? b->ctl.next_rip : b->save.rip + len;
	svm_finish(v, b);
}

/* A neutral handler's result (vcpu/exit.h): RETIRED moves past the instruction (nRIP, or `len`). */
static int retire(struct vcpu *v, int r, unsigned len)
{
	if (r != RETIRED)
		return r;
	skip(v, len);
	return HANDLED;
}

/* The guest's linear address of its RIP (the CS base is 0 in 64-bit mode, SDM Vol. 3A, 3.4.4). */
static uint64_t rip_linear(struct vcpu *v)
{
	const struct vmcb *b = vmcb_of(v);

	return guest_mode(v) == MODE_LONG64 ? b->save.rip : (b->save.cs.base + b->save.rip) & 0xffffffffull;
}

/* Up to `n` bytes of the instruction at the guest's RIP, through its page tables. Bytes read. */
unsigned svm_fetch_insn(struct vcpu *v, uint8_t *insn, unsigned n)
{
	struct gpt_ctx c;
	struct gpt_result res;
	uint64_t linear = rip_linear(v);

	/* The guest's paging mode, its PAE PDPTEs as svm_get_pdpte gives them (svm/guest.c). */
	vcpu_gpt_context(v, &c);
	if (!gpt_read(&c, linear, insn, n, true, &res))
		return n;
	/* The next page may be absent: what this page holds, never more than asked (another vCPU can
	 * change the tables between the two reads). */
	if (0x1000 - (linear & 0xfff) < n)
		n = 0x1000 - (linear & 0xfff);
	return !gpt_read(&c, linear, insn, n, true, &res) ? n : 0;
}

/* The length of the WBINVD or WBNOINVD at RIP for a CPU without nRIP save (skip takes nRIP where
 * there is one): its prefixes (WBNOINVD's F3, any other the CPU ignores) and 0F 09; 2 if the bytes
 * cannot be read, the instruction's length without prefixes. */
static unsigned wbinvd_len(struct vcpu *v)
{
	uint8_t insn[DECODE_MAX_LEN];
	struct insn_prefixes p;
	unsigned n;

	if (svm_caps.nrip_save && vmcb_of(v)->ctl.next_rip)
		return 0;                        /* unused: skip takes nRIP */
	n = svm_fetch_insn(v, insn, sizeof(insn));
	if (n && decode_prefixes(insn, n, guest_mode(v), &p) && p.len + 2 <= n && insn[p.len] == 0x0f &&
	    insn[p.len + 1] == 0x09)
		return p.len + 2;
	return 2;
}

/* --- the exits -------------------------------------------------------------------------------------- */

/* The hypercall ABI of include/tessera/hypercall.h, from VMMCALL or VMCALL (both 3 bytes). */
static int hypercall_exit(struct vcpu *v)
{
	struct hc_caller c = { v->vm->id, v->vm->mem.size, v->cpu, &v->vm->uart };
	struct hc_regs r = { v->regs.rax & 0xffffffff, v->regs.rbx, v->regs.rcx, v->regs.rdx };
	enum hc_result res;

	skip(v, 3);
	if (vmcb_of(v)->save.cpl) {
		v->regs.rax = (uint64_t)(int64_t)HC_ERR_PERM;
		return HANDLED;
	}
	res = hypercall(&c, &r);
	v->regs.rax = r.rax;
	v->regs.rbx = r.rbx;
	v->regs.rcx = r.rcx;
	v->regs.rdx = r.rdx;
	return res == HC_DO_EXIT ? vm_end(v, (int)r.rbx) : res == HC_DO_YIELD ? VCPU_YIELD : HANDLED;
}

/* An instruction breakpoint on the guest's next instruction that RF does not suppress: enabled
 * (DR7.Ln or Gn), of an execution (R/Wn = 00), at its linear address (SDM Vol. 3B, 18.2.4, 18.3.1.1).
 * DR0-DR3 are the guest's in the registers: VMRUN does not switch them (vcpu_load loads them). */
static bool insn_breakpoint_due(struct vcpu *v)
{
	const struct vmcb *b = vmcb_of(v);
	uint64_t dr[4], dr7 = b->save.dr7, linear = rip_linear(v);

	if (b->save.rflags & RFLAGS_RF)
		return false;
	asm volatile("mov %%dr0, %0; mov %%dr1, %1; mov %%dr2, %2; mov %%dr3, %3"
		     : "=r"(dr[0]), "=r"(dr[1]), "=r"(dr[2]), "=r"(dr[3]));
	for (unsigned n = 0; n < 4; n++)
		if (((dr7 >> 2 * n) & 3) && !((dr7 >> (16 + 4 * n)) & 3) && dr[n] == linear)
			return true;
	return false;
}

/*
 * The #DB the intercept took, given back to the guest. General detect (DR7.GD: a MOV to or from a
 * debug register raises #DB before it runs) is a fault, so the image the delivery pushes has RF = 1
 * (SDM Vol. 3B, 18.2.4, Table 18-2; 18.3.1.1); every other #DB that reaches here is a trap, or an
 * instruction breakpoint, which pushes RF as it was. VMX's exit qualification says which (vmx/exit.c,
 * reflect_db); SVM's intercept does not: the CPU has updated the VMCB's DR6 and DR7 before it (KVM's
 * svm.c relies on the same), and DR6.BD is sticky (18.2.3). So it is general detect when all hold:
 *   - the #DB is at a MOV DR (0F 21, 0F 23) at CPL 0 outside virtual-8086 mode: elsewhere the MOV
 *     is a #GP (SDM Vol. 2B, MOV to/from debug registers);
 *   - general detect was armed or reported: DR7.GD (which the CPU clears before the intercept, and
 *     Bochs 2.7 leaves) or DR6.BD (which the CPU sets, and Bochs 2.7 does not);
 *   - nothing before it in priority explains the #DB (SDM Vol. 3A, 7.9, Table 7-2): no instruction
 *     breakpoint on the MOV, and no single-step trap of the instruction before. DR6 says the latter
 *     where the CPU wrote it: BD without BS is general detect alone, whatever RFLAGS.TF (a guest
 *     single-stepping onto the MOV takes its trap first, then this fault with TF still set). Where
 *     DR6 shows neither (Bochs), RFLAGS.TF = 1 counts as a single step.
 * What it takes for general detect wrongly: a data-breakpoint or INT1 trap of the instruction before a
 * MOV DR while GD is armed under Bochs, or while DR6.BD is still set from an earlier general detect the
 * guest left in DR6. The #DB gets the BD that the CPU reports with it.
 */
static void reflect_db(struct vcpu *v)
{
	struct vmcb *b = vmcb_of(v);
	uint64_t dr6 = b->save.dr6;
	bool stepped = (dr6 & (DR6_BD | DR6_BS)) == DR6_BD ? false :
		       (dr6 & DR6_BS) || (b->save.rflags & RFLAGS_TF);
	uint8_t insn[15];
	struct insn_prefixes p;
	unsigned n;

	if (!b->save.cpl && !(b->save.rflags & RFLAGS_VM) && !stepped &&
	    ((b->save.dr7 & DR7_GD) || (dr6 & DR6_BD)) && !insn_breakpoint_due(v) &&
	    (n = svm_fetch_insn(v, insn, sizeof(insn))) && decode_prefixes(insn, n, guest_mode(v), &p) &&
	    p.len + 2 <= n && insn[p.len] == 0x0f && (insn[p.len + 1] == 0x21 || insn[p.len + 1] == 0x23)) {
		b->save.dr6 |= DR6_BD;
		b->save.rflags |= RFLAGS_RF;
	}
	svm_inject_exception(v, VEC_DB, false, 0);
}

/* #UD: the guest's VMCALL (0F 01 C1) is the hypercall on VMX; on AMD it raises #UD (APM Vol. 3,
 * VMMCALL), so the same guest binaries make their hypercalls here. Any other #UD goes back. */
static int handle_ud(struct vcpu *v, enum vcpu_exit_kind *k)
{
	uint8_t insn[3];

	if (svm_fetch_insn(v, insn, 3) == 3 && insn[0] == 0x0f && insn[1] == 0x01 && insn[2] == 0xc1) {
		*k = VCPU_EXIT_VMCALL;
		vmcb_of(v)->ctl.next_rip = 0;    /* an exception: nRIP is not the instruction's end */
		return hypercall_exit(v);
	}
	svm_inject_exception(v, VEC_UD, false, 0);
	return HANDLED;
}

static int handle_io(struct vcpu *v)
{
	/* EXITINFO1 (15.10.2, Figure 15-2): bit 0 IN, bit 2 string, bits 6:4 size one-hot, bits 31:16
	 * the port; EXITINFO2: the RIP of the next instruction. */
	struct vmcb *b = vmcb_of(v);
	uint64_t info = b->ctl.exit_info1;
	unsigned size = info & (1u << 4) ? 1 : info & (1u << 5) ? 2 : 4;
	bool in = info & IOIO_IN;
	uint16_t port = info >> 16;
	uint32_t mask = size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
	struct vdev_access a = { port, size, !in, v->regs.rax & mask, v->index };
	uint64_t rip = b->save.rip;
	enum vdev_result r;

	if (info & IOIO_STR) {
		/* INS/OUTS for the neutral handler (vcpu/strio.c): with decode assists bits 9:7 the
		 * address size one-hot (A16, A32, A64) and bits 12:10 the segment (15.10.2, 15.8);
		 * without, the handler decodes the prefixes (it needs both or neither). EXITINFO2 is
		 * the next RIP: the length. */
		struct vcpu_exit e = { .kind = VCPU_EXIT_IO, .len = (uint8_t)(b->ctl.exit_info2 - rip),
				       .io = { port, (uint8_t)size,
					       (uint8_t)((in ? VCPU_IO_IN : 0) | VCPU_IO_STRING |
							 (info & IOIO_REP ? VCPU_IO_REP : 0)),
					       (uint8_t)(!svm_caps.decode_assists ? VCPU_IO_NOOPS :
							 info & (1u << 7) ? 0 : info & (1u << 8) ? 1 : 2),
					       (uint8_t)(svm_caps.decode_assists ? (info >> 10) & 7 : VCPU_IO_NOOPS) } };

		return vcpu_handle_string_io(v, &e);
	}
	b->save.rip = b->ctl.exit_info2;
	svm_finish(v, b);
	if ((r = vdev_pio(&v->vm->bus, &a)) == VDEV_GUEST_EXIT)
		return vm_end(v, (int)a.value);
	if (r == VDEV_GUEST_RESET)
		return vm_stop(v, "%s", v->vm->bus.why);
	if (r == VDEV_BAD_ACCESS)
		return vm_stop(v, "%s port 0x%x: %s, rip 0x%lx", in ? "IN from" : "OUT to", port, v->vm->bus.why, rip);
	if (in)
		v->regs.rax = size == 4 ? a.value : (v->regs.rax & ~(uint64_t)mask) | (a.value & mask);
	return HANDLED;              /* the slice's end: svm_vcpu_run's entry_due */
}

/* MOV to or from a control register (#VMEXIT CRn read 0x00+n, write 0x10+n, 15.9), for the neutral
 * handler (vcpu/cr.c). Intercepted: CR0 writes, with CLTS and LMSW (the CPU lets a guest clear CR0.PG
 * in 64-bit mode under QEMU 7.2, and entering or leaving long mode sets EFER.LMA: vcpu/cr.c's rules),
 * CR4 writes (QEMU 7.2's software SVM lets a guest's MOV CR4 set bits
 * the CPU lacks, VMXE among them, which an AMD CPU #GPs, APM Vol. 2, 3.1.3, and VMRUN then refuses the
 * VMCB: svm_cr4_settable gives the #GP instead), and CR8 both ways (the TPR is the emulated local
 * APIC's, vlapic_get_cr8). The general register: EXITINFO1 with decode assists (15.8.1), else
 * decoded: 0F 20 /r (read) or 0F 22 /r (write), the CR in ModRM.reg (REX.R, or a LOCK prefix in
 * 32-bit code, adds 8: APM Vol. 3, MOV CRn), the register in ModRM.rm (REX.B adds 8). */
static int handle_cr(struct vcpu *v, unsigned cr, bool write)
{
	struct vmcb *b = vmcb_of(v);
	struct vcpu_exit e = { .kind = VCPU_EXIT_CR,
			       .cr = { (uint8_t)cr, write ? VCPU_CR_WRITE : VCPU_CR_READ, 0, 0, 0 } };
	uint8_t insn[15];
	struct insn_prefixes p;
	unsigned n, i;

	if (b->ctl.exit_info1 & CR_EXIT_GPR_VALID) {
		e.cr.gpr = b->ctl.exit_info1 & 15;
		n = 3;
	} else {
		n = svm_fetch_insn(v, insn, sizeof(insn));
		i = decode_prefixes(insn, n, guest_mode(v), &p) ? p.len : n;
		if (cr == 0 && write && i + 2 <= n && insn[i] == 0x0f && insn[i + 1] == 0x06) {
			e.cr.access = VCPU_CR_CLTS;      /* the CR0 write intercept takes CLTS too */
			e.len = (uint8_t)(i + 2);
			return retire(v, vcpu_handle_cr(v, &e), i + 2);
		}
		if (cr == 0 && write && i + 3 <= n && insn[i] == 0x0f && insn[i + 1] == 0x01 &&
		    ((insn[i + 2] >> 3) & 7) == 6) {
			if ((insn[i + 2] >> 6) != 3)     /* LMSW from memory: not decoded here */
				return vm_stop(v, "LMSW from memory is not emulated on SVM yet, rip 0x%lx", b->save.rip);
			e.cr.access = VCPU_CR_LMSW;      /* ... and LMSW */
			e.cr.lmsw = (uint16_t)svm_get_gpr(v, (insn[i + 2] & 7) | (p.rex & 1 ? 8 : 0));
			e.len = (uint8_t)(i + 3);
			return retire(v, vcpu_handle_cr(v, &e), i + 3);
		}
		if (cr == 0 && !write && i + 3 <= n && insn[i] == 0x0f && insn[i + 1] == 0x01 &&
		    ((insn[i + 2] >> 3) & 7) == 4) {
			unsigned len = 0;                /* ... and the CR0 read intercept SMSW: svm/spt.c */
			int r = svm_spt_exit_smsw(v, &len);   /* (before len is read) */

			return retire(v, r, len);
		}
		if (i + 3 > n || insn[i] != 0x0f || insn[i + 1] != (write ? 0x22 : 0x20) ||
		    (((insn[i + 2] >> 3) & 7) | (p.rex & 4 ? 8 : 0) | (p.lock ? 8 : 0)) != cr)
			return vm_stop(v, "CR%u %s by an instruction not decoded (bytes %02x %02x %02x), rip 0x%lx", cr,
				       write ? "write" : "read", n > 0 ? insn[0] : 0, n > 1 ? insn[1] : 0,
				       n > 2 ? insn[2] : 0, b->save.rip);
		e.cr.gpr = (insn[i + 2] & 7) | (p.rex & 1 ? 8 : 0);
		n = i + 3;
	}
	e.len = n;
	if (cr == 3)                             /* paging=shadow only: the guest's own CR3, svm/spt.c */
		return retire(v, vcpu_spt_cr3(v, e.cr.access, e.cr.gpr), n);
	return retire(v, vcpu_handle_cr(v, &e), n);
}

/* #GP, intercepted for shadow paging where the CPU has no PCID (svm/spt.c says why): a MOV to CR4
 * (0F 22 /4, no LOCK: LOCK MOV CR0 is CR8's) at CPL 0 faulted on the CPU's check of the value, which
 * comes before the CR4 write intercept (15.9, Table 15-7), and is handled as that intercept
 * (vcpu/cr.c raises the #GP itself if the guest's CR4 may not take the value). At CPL > 0 the #GP
 * is the guest's in any case. Anything else goes back with its error code (EXITINFO1, 15.12). */
static int handle_gp(struct vcpu *v)
{
	struct vmcb *b = vmcb_of(v);
	uint8_t insn[15];
	unsigned n = svm_fetch_insn(v, insn, sizeof(insn)), i;
	struct insn_prefixes p;

	i = decode_prefixes(insn, n, guest_mode(v), &p) ? p.len : n;
	if (!b->save.cpl && !p.lock && !(p.rex & 4) && i + 3 <= n && insn[i] == 0x0f && insn[i + 1] == 0x22 &&
	    ((insn[i + 2] >> 3) & 7) == 4)   /* CR4: not CR12 (REX.R), not CR12 by LOCK */
		return handle_cr(v, 4, true);
	svm_inject_exception(v, VEC_GP, true, (uint32_t)b->ctl.exit_info1);
	return HANDLED;
}

/* HLT (1 byte, F4) for the neutral handler (vcpu/insn.c). */
static int handle_hlt(struct vcpu *v)
{
	struct vmcb *b = vmcb_of(v);
	struct vcpu_exit e = { .kind = VCPU_EXIT_HLT,
			       .len = svm_caps.nrip_save && b->ctl.next_rip ? b->ctl.next_rip - b->save.rip : 1 };

	return vcpu_handle_hlt(v, &e);
}

/* #VMEXIT NPF (15.25.6) for the neutral handler (vcpu/mmio.c): EXITINFO1 a #PF error code for the
 * nested walk (bit 0 P: the entry was present, 1 a write, 4 a fetch), EXITINFO2 the GPA. A present
 * entry allowed what the access was not (a permission fault). First touch maps the chunk (gmem), a
 * GPA outside RAM is a device's (the decoder) or stops the guest. */
static int handle_npf(struct vcpu *v)
{
	struct vmcb *b = vmcb_of(v);
	uint64_t err = b->ctl.exit_info1;
	unsigned acc = err & NPF_ID ? VCPU_MEM_FETCH : err & NPF_W ? VCPU_MEM_WRITE : VCPU_MEM_READ;
	struct vcpu_exit e = { .gpa = b->ctl.exit_info2, .kind = VCPU_EXIT_NPF };

	if (err & NPF_P)
		acc |= VCPU_MEM_READABLE | (err & NPF_W ? 0 : VCPU_MEM_WRITABLE) | (err & NPF_ID ? 0 : VCPU_MEM_EXECUTABLE);
	if ((err & NPF_GUEST_TABLE) || (b->ctl.exit_int_info & VMCB_EVT_VALID))
		acc |= VCPU_MEM_IMPLICIT;
	e.mem.access = (uint8_t)acc;
	return vcpu_handle_npf(v, &e);
}

/* Hardware task switches are not emulated: the guest is stopped with the VMX side's words. EXITINFO1
 * holds the new TSS's selector, EXITINFO2 bit 36 an IRET, bit 38 a far JMP as the cause (15.14.1,
 * "Task Switch Intercept"); neither is a CALL, or an event through a task gate (then EXITINTINFO holds
 * the event). */
static int handle_task_switch(struct vcpu *v)
{
	struct vmcb *b = vmcb_of(v);
	unsigned sel = b->ctl.exit_info1 & 0xffff;
	uint64_t info2 = b->ctl.exit_info2, evt = b->ctl.exit_int_info;

	if (evt & VMCB_EVT_VALID)
		return vm_stop(v, "hardware task switch (vector %u through a task gate in the IDT to TSS selector "
			       "0x%x) is not supported, rip 0x%lx", (unsigned)(evt & 0xff), sel, b->save.rip);
	return vm_stop(v, "hardware task switch (%s TSS selector 0x%x) is not supported, rip 0x%lx",
		       info2 & (1ull << 36) ? "IRET with NT=1 to" : info2 & (1ull << 38) ? "JMP to" : "CALL to", sel,
		       b->save.rip);
}

/* A physical interrupt (INTR intercept): still pending at the local APIC, taken here with a window of
 * one instruction (a kick, a cross-CPU call, a key, or the slice timer). */
static int handle_intr(struct vcpu *v, enum vcpu_exit_kind *k)
{
	unsigned cpu = this_cpu_id();
	uint64_t now;

	irq_window();
	now = rdtsc();
	if (now >= v->armed_deadline) {
		*k = VCPU_EXIT_PREEMPTION;       /* the timer this file armed: the slice or a deadline */
		v->armed_deadline = ~0ull;       /* it fired: re-armed at the next entry */
	}
	if (now >= v->slice_end)
		return VCPU_PREEMPTED;
	return percpu[cpu].input_waiting || (vcpu_cpu[cpu].nvcpus > 1 && vcpu_others_want_cpu(v)) ?
	       VCPU_PREEMPTED : HANDLED;
}

/* MSRs only AMD CPUs have, which the neutral handler (vcpu/msr.c, which #GPs what it does not know)
 * leaves out: HWCR in APM Vol. 2, Appendix A, Table A-1, NB_CFG in the processor's own manual; the
 * bits Linux looks at are documented in the family 17h PPR (order no. 54945):
 *  - HWCR (C001_0015h): bit 24 TscFreqSel is read-only 1 from family 10h on ("1=The TSC increments
 *    at the P0 frequency"). Linux reads it (bsp_init_amd) and without it says '[Firmware Bug]: TSC
 *    doesn't count with P0 frequency!'.
 *  - NB_CFG (C001_001Fh): bit 46 EnableCf8ExtCfg lets CF8h address the extended PCI configuration
 *    space. Linux reads it and sets the bit if clear (arch/x86/pci/amd_bus.c, amd_bus_cpu_online);
 *    it reads set here, which changes nothing: the guest has no PCI configuration space at all.
 * Writes are taken and dropped: the other bits are the CPU's and the northbridge's configuration,
 * none of them the guest's to change. 1 when handled (RAX/RDX set for a read), 0 for the neutral
 * handler. */
#define MSR_AMD_HWCR               0xc0010015u
#define MSR_AMD_NB_CFG             0xc001001fu
#define HWCR_TSC_FREQ_SEL          (1ull << 24)
#define NB_CFG_ENABLE_CF8_EXT_CFG  (1ull << 46)

static int amd_msr(struct vcpu *v, bool write)
{
	uint64_t val;

	switch ((uint32_t)v->regs.rcx) {
	case MSR_AMD_HWCR:   val = HWCR_TSC_FREQ_SEL; break;
	case MSR_AMD_NB_CFG: val = NB_CFG_ENABLE_CF8_EXT_CFG; break;
	default:             return 0;
	}
	if (!write) {
		v->regs.rax = (uint32_t)val;
		v->regs.rdx = val >> 32;
	}
	return 1;
}

/* An event a guest's instruction raised: INT n (TYPE 4), or INT3's #BP and INTO's #OF, which
 * EXITINTINFO gives as exceptions (TYPE 3, vectors 3 and 4; APM Vol. 2, 15.20). Nothing else raises
 * vectors 3 and 4, and the hypervisor injects neither. */
static bool soft_event(uint64_t evt)
{
	uint64_t type = evt & VMCB_EVT_TYPE_MASK;
	unsigned vector = evt & 0xff;

	return type == VMCB_EVT_TYPE_SOFT || (type == VMCB_EVT_TYPE_EXC && (vector == 3 || vector == 4));
}

/*
 * After a nested page fault or a shadow #PF, the exits an event's delivery meets (a stack page not
 * yet backed, a shadow fill): a software event (INT n, INT3, INTO) is not injected again. RIP is
 * still the instruction (15.7.2), which EVENTINJ would push as the return address, so the handler's
 * IRET would run the instruction a second time. The instruction runs again instead and delivers its
 * event once, as KVM retried them before it re-injected with nRIP as the return address (the retry
 * shows only to an instruction breakpoint on the INT, which matches again). The event stayed queued
 * while the exit was handled (the shadow's stop of a delivery's push it cannot redo sees it), and
 * one the handler raised in its place stays.
 */
static void drop_soft_event(struct vmcb *b)
{
	uint64_t evt = b->ctl.exit_int_info;

	if (__builtin_expect(evt & VMCB_EVT_VALID, 0) && soft_event(evt) && b->ctl.event_inj == evt)
		b->ctl.event_inj = 0;
}

/* Handles the #VMEXIT; *kind says what it was (counted here). */
static int dispatch(struct vcpu *v, enum vcpu_exit_kind *kind)
{
	struct vmcb *b = vmcb_of(v);
	uint64_t code = b->ctl.exit_code;
	enum vcpu_exit_kind k = VCPU_EXIT_UNEXPECTED;
	int r;

	/* An event whose delivery the exit interrupted goes in again (EXITINTINFO, 15.7.2), and the
	 * handler sees it queued (svm_event_queued: the shadow stops a delivery's push it cannot
	 * redo, vcpu/spt.c); one it raises instead replaces it. A software event is taken back out
	 * after the exits a delivery meets (drop_soft_event). */
	if (b->ctl.exit_int_info & VMCB_EVT_VALID)
		b->ctl.event_inj = b->ctl.exit_int_info;
	if ((svm_of(v)->nmi_block & NMI_IRET) && b->save.rip != svm_of(v)->nmi_iret_rip && code != VMEXIT_EXCP_DB)
		svm_of(v)->nmi_block = 0;                /* the NMI handler's IRET completed: NMIs unblocked */
	/* CPUID, the most frequent exit of a booting Linux, and port I/O, before the switch's binary
	 * search (it took 14 instructions to reach CPUID; I/O's round trip is 13 shorter this way). */
	if (code == VMEXIT_CPUID) {
		vcpu_exit_count(&v->exits, VCPU_EXIT_CPUID);
		*kind = VCPU_EXIT_CPUID;
		return retire(v, vcpu_handle_cpuid(v), 2);          /* 0F A2 */
	}
	if (code == VMEXIT_IOIO) {
		vcpu_exit_count(&v->exits, VCPU_EXIT_IO);
		*kind = VCPU_EXIT_IO;
		return handle_io(v);
	}
	switch (code) {
	case VMEXIT_INTR:
		k = VCPU_EXIT_EXTINT;
		r = handle_intr(v, &k);
		break;
	case VMEXIT_NMI:
		k = VCPU_EXIT_EXCEPTION;         /* the host's NMI, taken after STGI */
		r = HANDLED;
		break;
	case VMEXIT_INIT:
		k = VCPU_EXIT_EXTINT;
		r = VCPU_PREEMPTED;              /* the host's INIT (a reset): the scheduler looks */
		break;
	case VMEXIT_VINTR:
		k = VCPU_EXIT_INTR_WINDOW;       /* the guest can take an interrupt: the next entry injects */
		b->ctl.int_ctl &= ~(VMCB_V_IRQ | VMCB_V_IGN_TPR | (0xfull << VMCB_V_INTR_PRIO_SHIFT));
		b->ctl.intercept3 &= ~VMCB_INTERCEPT_VINTR;
		r = HANDLED;
		break;
	case VMEXIT_HLT:
		k = VCPU_EXIT_HLT;
		r = handle_hlt(v);
		break;
	case VMEXIT_MSR:
		/* EXITINFO1: 0 RDMSR, 1 WRMSR (15.11); both 2 bytes (0F 32, 0F 30). An APIC register the
		 * guest reads shows a timer that expired meanwhile, whether or not the host timer's
		 * INTR intercept came (Bochs 2.7 gives none to a guest with RFLAGS.IF = 0). */
		vlapic_timer_update(&v->lapic, rdtsc());
		k = b->ctl.exit_info1 & 1 ? VCPU_EXIT_WRMSR : VCPU_EXIT_RDMSR;
		r = retire(v, amd_msr(v, b->ctl.exit_info1 & 1) ? RETIRED :
			   b->ctl.exit_info1 & 1 ? vcpu_handle_wrmsr(v) : vcpu_handle_rdmsr(v), 2);
		break;
	case VMEXIT_VMMCALL:
		k = VCPU_EXIT_VMCALL;
		r = hypercall_exit(v);
		break;
	case VMEXIT_EXCP_UD:
		k = VCPU_EXIT_EXCEPTION;
		r = handle_ud(v, &k);
		break;
	case VMEXIT_EXCP_AC:             /* #AC(0): a fault, RF set in the pushed image */
		k = VCPU_EXIT_EXCEPTION;
		svm_inject_exception(v, VEC_AC, true, 0);
		r = HANDLED;
		break;
	case VMEXIT_EXCP_DB:
		/* The intercept comes after the #DB's own updates of DR6 and DR7 in the VMCB, which is
		 * what KVM's db_interception relies on too: delivering it completes the exception. The
		 * single step over an NMI handler's IRET (NMI_STEP) is the hypervisor's own: dropped,
		 * with its DR6.BS, unless the guest stepped too or a breakpoint matched as well. */
		k = VCPU_EXIT_EXCEPTION;
		if (svm_of(v)->nmi_block & NMI_STEP) {
			bool own = (svm_of(v)->nmi_block & NMI_GUEST_TF) || (b->save.dr6 & 0xf);

			if (b->save.rip != svm_of(v)->nmi_iret_rip)
				svm_of(v)->nmi_block = 0;
			svm_of(v)->nmi_block &= (uint8_t)~(NMI_STEP | NMI_GUEST_TF);
			if (!own) {
				b->save.dr6 &= ~DR6_BS;
				r = HANDLED;
				break;
			}
		}
		reflect_db(v);
		r = HANDLED;
		break;
	case VMEXIT_IRET:
		/* The NMI handler's IRET, before it runs: NMIs stay blocked until it has (NMI_IRET). */
		k = VCPU_EXIT_NMI_WINDOW;
		b->ctl.intercept3 &= ~VMCB_INTERCEPT_IRET;
		svm_of(v)->nmi_block = NMI_BLOCKED | NMI_IRET;
		svm_of(v)->nmi_iret_rip = b->save.rip;
		r = HANDLED;
		break;
	case VMEXIT_NPF:
		k = VCPU_EXIT_NPF;
		vlapic_timer_update(&v->lapic, rdtsc());   /* as for MSRs: an xAPIC read sees the timer now */
		r = handle_npf(v);
		drop_soft_event(b);
		break;
	case VMEXIT_CR0_WRITE: case VMEXIT_CR4_WRITE: case VMEXIT_CR8_WRITE: case VMEXIT_CR8_READ:
	case VMEXIT_CR0_READ: case VMEXIT_CR3_READ: case VMEXIT_CR4_READ: case VMEXIT_CR3_WRITE:   /* shadow */
		k = VCPU_EXIT_CR;
		r = handle_cr(v, code & 15, code & 0x10);
		break;
	case VMEXIT_EXCP_GP:                     /* paging=shadow without the CPU's PCID: svm/spt.c */
		k = VCPU_EXIT_EXCEPTION;
		r = handle_gp(v);
		break;
	case VMEXIT_EXCP_PF:                     /* paging=shadow: svm/spt.c */
		k = VCPU_EXIT_EXCEPTION;
		vlapic_timer_update(&v->lapic, rdtsc());   /* as for NPF: an xAPIC read sees the timer now */
		r = svm_spt_exit_pf(v);
		drop_soft_event(b);
		break;
	case VMEXIT_INVLPG: {                    /* paging=shadow */
		unsigned len = 0;

		k = VCPU_EXIT_INVLPG;
		r = svm_spt_exit_invlpg(v, &len);
		r = retire(v, r, len);
		break;
	}
	case VMEXIT_INVPCID:                     /* paging=shadow: not offered (svm_offers), #UD */
		k = VCPU_EXIT_INVPCID;
		svm_inject_exception(v, VEC_UD, false, 0);
		r = HANDLED;
		break;
	case VMEXIT_XSETBV:
		k = VCPU_EXIT_XSETBV;
		r = retire(v, vcpu_handle_xsetbv(v), 3);                 /* 0F 01 D1 */
		break;
	case VMEXIT_RDPMC:
		/* The performance counters are the host's, not switched with the guest: none for guests,
		 * as on VMX (CPUID Fn8000_0001_ECX.PerfCtrExtCore and leaf 0xA hide them), and RDPMC #GPs
		 * as for a counter that does not exist (APM Vol. 3, RDPMC). Intercepted RDPMC has already
		 * passed its CPL/CR4.PCE check (15.9: intercepts come after the simple exceptions). */
		k = VCPU_EXIT_RDPMC;
		svm_inject_exception(v, VEC_GP, true, 0);
		r = HANDLED;
		break;
	case VMEXIT_INVD:
		k = VCPU_EXIT_INVD;              /* nothing to write back that the guest could lose */
		skip(v, 2);                      /* 0F 08 */
		r = HANDLED;
		break;
	case VMEXIT_WBINVD:
		/* WBINVD, or WBNOINVD (F3 0F 09), which the same intercept takes (Table B-1, vector 4 bit
		 * 9; Table C-1, 089h): the caches are shared with other guests, so a no-op for guests, as
		 * on VMX (vmx/exit.c). Intercepted, it has passed its CPL check (15.9). */
		k = VCPU_EXIT_WBINVD;
		skip(v, wbinvd_len(v));
		r = HANDLED;
		break;
	case VMEXIT_MONITOR: case VMEXIT_MWAIT: case VMEXIT_MWAIT_CONDITIONAL:
		/* CPUID hides MONITOR/MWAIT (vcpu/cpuid_policy.c): #UD, as a CPU without them and as on
		 * VMX; run, MWAIT would idle the host's CPU on the guest's behalf. */
		k = code == VMEXIT_MONITOR ? VCPU_EXIT_MONITOR : VCPU_EXIT_MWAIT;
		svm_inject_exception(v, VEC_UD, false, 0);
		r = HANDLED;
		break;
	case VMEXIT_VMRUN: case VMEXIT_VMLOAD: case VMEXIT_VMSAVE: case VMEXIT_STGI: case VMEXIT_CLGI:
	case VMEXIT_SKINIT: case VMEXIT_INVLPGA:
		/* No nested SVM: the guest's CPUID shows none, and the instructions #UD (15.4: as with
		 * EFER.SVME = 0, which is what the guest sees). */
		k = VCPU_EXIT_EXCEPTION;
		svm_inject_exception(v, VEC_UD, false, 0);
		r = HANDLED;
		break;
	case VMEXIT_TASK_SWITCH:
		k = VCPU_EXIT_TASK_SWITCH;
		r = handle_task_switch(v);
		break;
	case VMEXIT_SHUTDOWN:
		k = VCPU_EXIT_TRIPLE_FAULT;
		r = vm_stop(v, "triple fault, rip 0x%lx", b->save.rip);
		break;
	case VMEXIT_INVALID:
	case 0xffffffffull:                      /* QEMU's software SVM writes -1 as 32 bits */
		r = vm_stop(v, "VMRUN failed: the VMCB failed its consistency checks (#VMEXIT INVALID)");
		break;
	default:
		r = vm_stop(v, "unexpected #VMEXIT 0x%lx (exit info 0x%lx, 0x%lx), rip 0x%lx", code,
			    b->ctl.exit_info1, b->ctl.exit_info2, b->save.rip);
		break;
	}
	vcpu_exit_count(&v->exits, k);
	*kind = k;
	return r;
}

/* --- the injection step and the run loop ------------------------------------------------------------ */

/* At most one event per VMRUN, through EVENTINJ (15.20), in the priority order of the VMX side: an
 * event already there (an exception a handler raised, or one an exit interrupted), then NMI, then the
 * 8259A's interrupt or the local APIC's. An interrupt the guest cannot take now (RFLAGS.IF = 0 or an
 * interrupt shadow, 15.21.5) asks for the VINTR intercept: V_IRQ with the highest priority and TPR
 * ignored makes the CPU exit as soon as the guest could take it (15.21.4). */
static void inject_events(struct vcpu *v)
{
	struct vmcb *b = vmcb_of(v);
	struct vlapic *l = &v->lapic;
	bool can = (b->save.rflags & RFLAGS_IF) && !(b->ctl.int_state & VMCB_INT_SHADOW);
	bool want_window = false;
	int vector;

	if (b->ctl.event_inj & VMCB_EVT_VALID)
		return;
	if (__atomic_load_n(&l->nmi_pending, __ATOMIC_ACQUIRE)) {
		if (!svm_of(v)->nmi_block && !(b->ctl.int_state & VMCB_INT_SHADOW)) {
			__atomic_store_n(&l->nmi_pending, 0, __ATOMIC_RELEASE); /* a latch: taken */
			b->ctl.event_inj = 2 | VMCB_EVT_TYPE_NMI | VMCB_EVT_VALID;
			svm_of(v)->nmi_block = NMI_BLOCKED;
			b->ctl.intercept3 |= VMCB_INTERCEPT_IRET;
			return;
		}
		/* Blocked at the handler's IRET: the NMI window opens after it, one step away. */
		if ((svm_of(v)->nmi_block & (NMI_IRET | NMI_STEP)) == NMI_IRET && b->save.rip == svm_of(v)->nmi_iret_rip) {
			svm_of(v)->nmi_block |= NMI_STEP | (b->save.rflags & RFLAGS_TF ? NMI_GUEST_TF : 0);
			b->save.rflags |= RFLAGS_TF;
			return;
		}
	}
	if (v->index == 0 && vlapic_extint_enabled(l) && vpc_extint_pending(&v->vm->pc)) {
		if (can)
			b->ctl.event_inj = (uint64_t)vpc_extint_ack(&v->vm->pc) | VMCB_EVT_TYPE_INTR | VMCB_EVT_VALID;
		want_window = !can;
	} else if ((vector = vlapic_pending_vector(l)) >= 0) {
		if (can) {
			vlapic_accept(l, vector);
			b->ctl.event_inj = (uint64_t)vector | VMCB_EVT_TYPE_INTR | VMCB_EVT_VALID;
		}
		want_window = !can;
	}
	if (want_window) {
		b->ctl.int_ctl |= VMCB_V_IRQ | VMCB_V_IGN_TPR | (0xfull << VMCB_V_INTR_PRIO_SHIFT);
		b->ctl.intercept3 |= VMCB_INTERCEPT_VINTR;
	}
}

/* The exits that emulate an instruction, after which nothing the entry looks at has most often
 * changed (vmx/exit.c's `quick` exits, with VMMCALL): see svm_vcpu_run. */
#define QUICK_KINDS (1ull << VCPU_EXIT_CPUID | 1ull << VCPU_EXIT_VMCALL | 1ull << VCPU_EXIT_IO | \
		     1ull << VCPU_EXIT_RDMSR | 1ull << VCPU_EXIT_CR | 1ull << VCPU_EXIT_XSETBV | 1ull << VCPU_EXIT_NPF)
_Static_assert(VCPU_EXIT_KINDS <= 64, "QUICK_KINDS is a 64-bit mask");

/* Everything before VMRUN, the long way: the guest's end and INIT, the slice, the timers, the
 * events to inject, and the host's APIC timer for the earliest of the slice's end and the guest's
 * deadlines, which is also when the next entry must come this way again (entry_due). */
static int prepare_entry(struct vcpu *v, bool resuming, uint64_t now)
{
	struct vlapic *l = &v->lapic;
	uint64_t target, deadline;

	if (v->vm->ending || __atomic_load_n(&l->init_pending, __ATOMIC_ACQUIRE) ||
	    (resuming && now >= v->slice_end))
		return VCPU_PREEMPTED;
	/* The work word (vcpu/work.h) and the local APIC's dirty word are taken, then everything is
	 * looked at: what changes after this sets them again for the next entry. Taken, the work bits
	 * do not tell a sibling on this CPU that v was kicked. */
	vcpu_work_take(&v->work);
	vlapic_take_dirty(l);
	vlapic_timer_update(l, now);
	vcpu_device_timers(v, now);
	inject_events(v);
	/* No preemption timer on SVM: the host's local APIC timer ends the slice or brings the guest's
	 * next timer deadline, and its interrupt exits the guest through the INTR intercept. */
	target = v->slice_end;
	if ((deadline = vlapic_next_deadline(l)) && deadline < target)
		target = deadline;
	if (v->index == 0 && v->dev_deadline && v->dev_deadline < target)
		target = v->dev_deadline;
	if (target != v->armed_deadline) {
		lapic_timer_arm(target);
		v->armed_deadline = target;
	}
	v->entry_due = target;
	return HANDLED;
}

/* A new start for v's VMCB (INIT, SIPI): every field rewritten, its ASID's translations dropped. */
static void restart(struct vcpu *v, int sipi)
{
	vcpu_state_reset(&v->start, sipi);
	vmcb_setup(v, &v->start);
	svm_flush_asid(v);
}

/* INIT and Start-up IPIs that arrived for `v`, as the VMX side takes them (vmx/vcpu.c): INIT puts the
 * vCPU in wait-for-SIPI whatever it did; a SIPI starts a waiting vCPU at the vector's page. */
static void take_init_sipi(struct vcpu *v)
{
	struct vlapic *l = &v->lapic;
	int vector;

	if (__atomic_exchange_n(&l->init_pending, false, __ATOMIC_ACQ_REL)) {
		restart(v, -1);
		vlapic_reset_on_init(l);
		v->state = VCPU_WAIT_SIPI;
		if (!vcpu_others_active(v))
			vm_stop(v, "INIT left vCPU %u waiting for a Start-up IPI that no other vCPU can send",
				v->index);
	}
	vector = __atomic_exchange_n(&l->sipi_vector, -1, __ATOMIC_ACQ_REL);
	if (vector >= 0 && v->state == VCPU_WAIT_SIPI) {
		restart(v, vector);
		v->state = VCPU_RUNNING;
	}
}

static enum vcpu_action svm_vcpu_run(struct vcpu *v, uint64_t quantum_tsc)
{
	struct vmcb *b = vmcb_of(v);
	unsigned cpu = this_cpu_id();
	uint64_t now;
	int r;

	take_init_sipi(v);
	if (v->vm->ending)
		return VCPU_STOPPED;
	if (!svm_of(v)->asid) {
		vm_stop(v, "no free ASID for vCPU %u (the CPU has %u)", v->index, svm_caps.nasid);
		return VCPU_STOPPED;
	}
	now = rdtsc();
	if (!vcpu_runnable(v, now) || v->state == VCPU_WAIT_SIPI)
		return VCPU_BLOCKED;
	v->state = VCPU_RUNNING;
	if (vcpu_spt_on(v) && (r = vcpu_spt_run(v)) != HANDLED)     /* the root after a (re)start */
		return (enum vcpu_action)r;
	v->slice_end = now + quantum_tsc;
	v->wake_after = now + quantum_tsc / VCPU_WAKE_GRANULARITY;
	v->armed_deadline = ~0ull;
	r = prepare_entry(v, false, now);
	while (r == HANDLED) {
		enum vcpu_exit_kind k;

		/* TLB_CONTROL (15.16.1): the first VMRUN of a vCPU flushes its ASID, which an earlier
		 * guest may have used (only this ASID where the CPU can, FlushByAsid; else every ASID). */
		if (!v->launched)
			svm_flush_asid(v);
		b->save.rax = v->regs.rax;
		b->save.cr2 = v->regs.cr2;
		/* IA32_SPEC_CTRL is not in the VMCB (without the V_SPEC_CTRL extension) and VMRUN does not
		 * switch it (15.5.1 lists what it does): the guest's value is written in the GIF = 0
		 * window before VMRUN and the host's back right after #VMEXIT, only when the two differ
		 * (spec_before_entry/spec_after_exit, as vmx/vcpu.c; Linux's svm/vmenter.S does the
		 * same). */
		asm volatile("clgi" ::: "memory");        /* GIF = 0 holds everything */
		spec_before_entry(v->spec_ctrl);
		/* VMRUN loads the guest's CR2 from the VMCB (15.5.1), but Bochs 2.7's does not
		 * (SvmEnterLoadCheckGuestState reads the field and never loads it): the guest ran with
		 * the CR2 the CPU had, so a #PF injected by shadow paging showed its handler CR2 = 0
		 * (ptswitch and Linux on ryzen with paging=shadow), and guests sharing a CPU saw each
		 * other's. The CPU's CR2 is made the guest's first; on hardware VMRUN loads the same. */
		{
			uint64_t cr2;

			asm volatile("mov %%cr2, %0" : "=r"(cr2));
			if (cr2 != v->regs.cr2)
				asm volatile("mov %0, %%cr2" : : "r"(v->regs.cr2) : "memory");
		}
		asm volatile("sti" ::: "memory");         /* IF = 1 for the guest: physical INTR exits */
		svm_enter(&v->regs, svm_of(v)->vmcb, host_vmsave_pa[cpu]);
		spec_after_exit(v->spec_ctrl);            /* before anything else of the host's runs */
		asm volatile("cli; stgi" ::: "memory");   /* pending interrupts wait for the host's IF */
		v->launched = true;
		b->ctl.tlb_control = VMCB_TLB_FLUSH_NONE;
		v->regs.rax = b->save.rax;
		v->regs.cr2 = b->save.cr2;
		b->ctl.event_inj = 0;            /* delivered, or back in EXITINTINFO */
		r = dispatch(v, &k);
		/* An exit that emulated an instruction has most often changed nothing prepare_entry
		 * looks at: no bit in the work word (every producer sets one: vcpu/work.h), nothing the
		 * local APIC model changed, and the host's APIC timer, armed for the earliest of the
		 * slice's end and the deadlines (entry_due), has not come. Then VMRUN at once, as on
		 * VMX (vmx/exit.c, vmx_exit_dispatch). An event a handler gave (EVENTINJ) or a window
		 * asked for (the VINTR intercept) is in the VMCB already. */
		if (r == HANDLED) {
			now = rdtsc();
			if (!((QUICK_KINDS >> k) & 1) ||
			    !vcpu_work_none(vcpu_work_peek(&v->work), __atomic_load_n(&v->lapic.dirty, __ATOMIC_RELAXED),
					    now, v->entry_due))
				r = prepare_entry(v, true, now);
		}
	}
	lapic_timer_arm(0);
	v->armed_deadline = ~0ull;
	v->action = (enum vcpu_action)r;
	return v->action;
}

/* svm_probe (caps.c) and the informative line, printed whenever the CPU reports SVM. No AVIC: the
 * APIC is always emulated, whatever apicv= says. */
static bool svm_backend_probe(bool apicv, struct vcpu_probe *p)
{
	bool ok = svm_probe(&p->why);
	char line[128];

	(void)apicv;
	if (svm_caps.present) {
		svm_caps_describe(&svm_caps, line, sizeof(line));
		pr_info("hv: svm: %s\n", line);
	}
	/* Without NPT every guest runs on shadow paging (svm/spt.c), which needs XD (EFER.NXE: shadow
	 * leaves carry it, shadow/shadow.h): CPUID Fn8000_0001_EDX[20]. */
	p->paging_nested = svm_caps.npt;
	p->paging_shadow = cpu_has(0x80000001, 3, 20);
	p->no_nested = !svm_caps.npt;
	if (ok && !svm_caps.npt && !p->paging_shadow) {
		p->why = "no nested paging, and no XD for shadow paging";
		ok = false;
	}
	return ok;
}

/* SVM's part of a new vCPU (vcpu/backend.h): its VMCB page, filled at its first load (vmcb_setup). */
static int svm_vcpu_create(struct vcpu *v)
{
	if (!(svm_of(v)->vmcb = pmm_alloc_page()))
		return -ENOMEM;
	memset(phys_to_virt(svm_of(v)->vmcb), 0, PAGE_SIZE);
	if (vcpu_spt_on(v))
		vcpu_spt_init(v);
	return 0;
}

/* SVM's part of vcpu_leave: its ASID goes back. The translations it tags stay cached on this CPU
 * until the ASID's next user flushes them: every vCPU's first VMRUN flushes its ASID on its own CPU,
 * the only one it ever runs on (svm_vcpu_run), so no stale entry is ever used (15.16). */
static void svm_vcpu_leave(struct vcpu *v)
{
	if (svm_of(v)->asid) {
		asid_free(svm_of(v)->asid);
		svm_of(v)->asid = 0;
	}
}

static void svm_vcpu_free(struct vcpu *v)
{
	pmm_free_page(svm_of(v)->vmcb);
	shadow_destroy(&v->sh);              /* (nested paging: nothing to free) */
	svm_of(v)->vmcb = 0;
}

const struct vcpu_backend svm_backend = {
	.vendor = VCPU_SVM, .name = "SVM", .map_format = EPT_FORMAT_NPT, .map_page_sizes = svm_npt_page_sizes,
	.probe = svm_backend_probe,
	.cpu_on = svm_cpu_on, .cpu_state = svm_cpu_state, .cpu_off = svm_cpu_off,
	.global_init = svm_global_init,
	.vcpu_create = svm_vcpu_create, .vcpu_load = svm_vcpu_load, .vcpu_run = svm_vcpu_run,
	.vcpu_leave = svm_vcpu_leave, .vcpu_free = svm_vcpu_free, .vcpu_snapshot = svm_vcpu_snapshot,
};
