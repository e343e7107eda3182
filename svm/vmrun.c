/* The SVM back end's first VMRUN: enables SVM on one CPU and runs a guest of one instruction. */
#include "svm/vmrun.h"
#include "arch/x86/cpu.h"
#include "console/printk.h"
#include "ept/ept.h"
#include "gmem/gmem.h"
#include "lib/errno.h"
#include "lib/string.h"
#include "pmm/pmm.h"
#include "svm/caps.h"
#include "svm/vmcb.h"

/* The guest: at GPA 0x1000 in real mode, VMMCALL (0F 01 D9; APM Vol. 3, VMMCALL), then HLT should
 * the intercept ever not fire (HLT is intercepted too). */
#define GUEST_RIP 0x1000
static const uint8_t guest_code[] = { 0x0f, 0x01, 0xd9, 0xf4 };

/* PAT's value at reset (APM Vol. 2, 7.8.1): WB, WT, UC-, UC twice. A G_PAT with a reserved type
 * fails VMRUN's checks under nested paging (15.5.1). */
#define PAT_RESET 0x0007040600070406ull

/*
 * One VMRUN to the next #VMEXIT. GIF is cleared around it (CLGI/STGI, 15.17): no host interrupt or
 * NMI may arrive between VMRUN's host-state save and the guest, nor between #VMEXIT and this code
 * reading the VMCB. VMRUN takes the VMCB's physical address in RAX (15.5); #VMEXIT restores the host's
 * RAX, RSP, RIP, CR0/3/4, EFER, RFLAGS and CS/SS/DS/ES/GDTR/IDTR from the host save area (15.5.2)
 * and leaves every other general-purpose register as the guest had it: all clobbered. RBP is saved
 * by hand (the compiler may not list it as clobbered). FS, GS, TR, LDTR and the SYSCALL MSRs are not
 * switched without VMLOAD/VMSAVE: this guest neither has nor touches them.
 */
static void vmrun(uint64_t vmcb_pa)
{
	asm volatile("clgi\n\t"                  /* GIF = 0: nothing may interrupt the world switch */
		     "push %%rbp\n\t"            /* the guest may change RBP: keep the frame */
		     "vmrun %%rax\n\t"           /* the guest runs until its #VMEXIT */
		     "pop %%rbp\n\t"
		     "stgi"                      /* GIF = 1: pending host interrupts may come now */
		     : "+a"(vmcb_pa)
		     :
		     : "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
		       "r15", "memory", "cc");
}

static void real_mode_seg(struct vmcb_seg *s, uint16_t attrib)
{
	*s = (struct vmcb_seg){ .selector = 0, .attrib = attrib, .limit = 0xffff, .base = 0 };
}

/* The guest's VMCB: real mode, paging off, behind the nested page table at ncr3 (Tables B-1, B-2). */
static void vmcb_setup(struct vmcb *v, uint64_t ncr3)
{
	memset(v, 0, sizeof(*v));
	/* Intercepts (Table B-1): VMRUN (required: 15.5.1), VMMCALL (the guest's one instruction), and
	 * what would otherwise leave the guest running or reset the host: HLT, SHUTDOWN (triple fault). */
	v->ctl.intercept3 = VMCB_INTERCEPT_HLT | VMCB_INTERCEPT_SHUTDOWN;
	v->ctl.intercept4 = VMCB_INTERCEPT_VMRUN | VMCB_INTERCEPT_VMMCALL;
	/* IOPM_BASE_PA and MSRPM_BASE_PA stay 0: IOIO_PROT and MSR_PROT are not intercepted, so the
	 * CPU never reads the maps (15.10, 15.11). */
	v->ctl.asid = 1;                        /* ASID 0 is the host's; VMRUN refuses it (15.5.1, 15.16) */
	v->ctl.tlb_control = VMCB_TLB_FLUSH_ALL; /* a first run: no stale entries for ASID 1 (15.16.1) */
	v->ctl.np_ctl = VMCB_NP_ENABLE;         /* nested paging on, root in N_CR3 (15.25.3) */
	v->ctl.n_cr3 = ncr3;
	v->ctl.clean = 0;                       /* nothing cached: load every field (15.15) */

	/* State save area (Table B-2): the state a CPU has after INIT, but at 0:0x1000 (APM Vol. 2, 14.1.3,
	 * Table 14-1), with EFER.SVME, which VMRUN requires of the guest too (15.5.1). */
	real_mode_seg(&v->save.cs, VMCB_ATTR_CODE16);
	real_mode_seg(&v->save.ds, VMCB_ATTR_DATA16);
	real_mode_seg(&v->save.es, VMCB_ATTR_DATA16);
	real_mode_seg(&v->save.ss, VMCB_ATTR_DATA16);
	real_mode_seg(&v->save.fs, VMCB_ATTR_DATA16);
	real_mode_seg(&v->save.gs, VMCB_ATTR_DATA16);
	real_mode_seg(&v->save.ldtr, VMCB_ATTR_LDT);
	real_mode_seg(&v->save.tr, VMCB_ATTR_TSS16_BUSY);
	v->save.gdtr.limit = v->save.idtr.limit = 0xffff;
	v->save.cpl = 0;
	v->save.efer = EFER_SVME;
	v->save.cr0 = CR0_ET;                   /* PE = PG = 0; CD = NW = 0 (CD=0 with NW=1 is refused) */
	v->save.cr3 = 0;
	v->save.cr4 = 0;
	v->save.dr6 = 0xffff0ff0;               /* reset values (14.1.3); bits 63:32 must be 0 (15.5.1) */
	v->save.dr7 = 0x400;
	v->save.rflags = 2;                     /* bit 1 reads as 1; IF = 0 */
	v->save.rip = GUEST_RIP;
	v->save.rsp = 0x8000;
	v->save.rax = 0;
	v->save.g_pat = PAT_RESET;
}

static const char *exit_name(uint64_t code)
{
	switch (code) {
	case VMEXIT_VMMCALL:  return "VMMCALL";
	case VMEXIT_HLT:      return "HLT";
	case VMEXIT_SHUTDOWN: return "SHUTDOWN";
	case VMEXIT_NPF:      return "NPF";
	case VMEXIT_INVALID:  return "INVALID (the VMCB failed VMRUN's consistency checks)";
	default:              return "unexpected";
	}
}

int svm_first_vmrun(void)
{
	static struct gmem gm;
	uint64_t hsave, vmcb_pa, efer, rflags;
	struct vmcb *v;
	int err;

	/* Guest memory: 2 MiB, one 2 MiB NPT leaf (long-mode paging always has 2 MiB pages, 5.3.4). */
	err = gmem_create_format(&gm, EPT_FORMAT_NPT, GMEM_EAGER, SIZE_2M, SIZE_2M, EPT_PAGE_4K | EPT_PAGE_2M);
	if (err)
		return err;
	hsave = pmm_alloc_page();
	vmcb_pa = pmm_alloc_page();
	if (!hsave || !vmcb_pa || gmem_write(&gm, GUEST_RIP, guest_code, sizeof(guest_code))) {
		err = -ENOMEM;
		goto out;
	}
	v = phys_to_virt(vmcb_pa);
	vmcb_setup(v, ept_ncr3(&gm.ept));

	/* EFER.SVME before any SVM instruction (15.4); VM_HSAVE_PA: a 4 KiB-aligned page the CPU
	 * owns while SVM is on, for the host state VMRUN saves (15.30.4). */
	efer = rdmsr(MSR_EFER);
	wrmsr(MSR_EFER, efer | EFER_SVME);
	wrmsr(MSR_VM_HSAVE_PA, hsave);
	rflags = read_rflags();
	cli();                                  /* with GIF cleared anyway; restored below */
	vmrun(vmcb_pa);
	if (rflags & RFLAGS_IF)
		sti();
	wrmsr(MSR_VM_HSAVE_PA, 0);
	wrmsr(MSR_EFER, efer);                  /* SVM off again until the back end runs guests */

	if (svm_caps.nrip_save)
		pr_info("hv: svm: first VMRUN on cpu %u: #VMEXIT %s (0x%llx), guest rip 0x%llx, next rip 0x%llx\n",
			this_cpu_id(), exit_name(v->ctl.exit_code), (unsigned long long)v->ctl.exit_code,
			(unsigned long long)v->save.rip, (unsigned long long)v->ctl.next_rip);
	else
		pr_info("hv: svm: first VMRUN on cpu %u: #VMEXIT %s (0x%llx), guest rip 0x%llx\n",
			this_cpu_id(), exit_name(v->ctl.exit_code), (unsigned long long)v->ctl.exit_code,
			(unsigned long long)v->save.rip);
	err = v->ctl.exit_code == VMEXIT_VMMCALL ? 0 : -EIO;
out:
	if (vmcb_pa)
		pmm_free_page(vmcb_pa);
	if (hsave)
		pmm_free_page(hsave);
	gmem_destroy(&gm);
	return err;
}
