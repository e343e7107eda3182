/* VMX's side of a vCPU's life on its host CPU (the back end's table, vmx_backend; the neutral side:
 * vcpu/vcpu.c): its VMCS (controls, host state, the start state the loader chose or INIT/SIPI's), the
 * MSR bitmaps and VPIDs, APIC virtualization, switching the state VMX does not switch (debug
 * registers, syscall MSRs; the FPU by vcpu_fpu_save/restore) between vCPUs of one CPU, and the run
 * loop that enters the guest (its exits: vmx/exit.c). */
#include <stddef.h>
#include "arch/x86/apic.h"
#include "arch/x86/call.h"
#include "arch/x86/cpu.h"
#include "arch/x86/debugreg.h"
#include "arch/x86/gdt.h"
#include "arch/x86/percpu.h"
#include "arch/x86/spec.h"
#include "arch/x86/trap.h"
#include "console/printk.h"
#include "lib/errno.h"
#include "lib/format.h"
#include "lib/string.h"
#include "pmm/pmm.h"
#include "vcpu/backend.h"
#include "vcpu/guest.h"
#include "vmx/exit.h"
#include "vmx/spt.h"
#include "vmx/vcpu.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"

static uint64_t msr_bitmap;   /* one for all guests: which MSR accesses exit (SDM Vol. 3C, 25.6.9) */
/* The same, for vCPUs whose APIC is in x2APIC mode with APIC virtualization (x2apicv_bitmap). */
static uint64_t msr_bitmap_x2apicv;
/* The APIC-access page (SDM Vol. 3C, 30.4): guest accesses to the GPA that the EPT maps to it are
 * virtualized, never made to it. One for all guests; never read or written by anyone. */
static uint64_t apic_access_page;
/* VPIDs in use, bit n for VPID n (0 is the host's): a vCPU takes the lowest free one and gives it back,
 * its cached translations dropped, when it is destroyed, so restarts never run out of them. */
static uint64_t vpid_used[65536 / 64] = { 1 };
static spinlock_t vpid_lock;

static uint16_t vpid_alloc(void)
{
	uint16_t vpid = 0;

	spin_lock(&vpid_lock);
	for (unsigned i = 0; i < sizeof(vpid_used) / sizeof(vpid_used[0]) && !vpid; i++)
		if (~vpid_used[i]) {
			unsigned b = __builtin_ctzll(~vpid_used[i]);

			vpid_used[i] |= 1ull << b;
			vpid = (uint16_t)(i * 64 + b);
		}
	spin_unlock(&vpid_lock);
	return vpid;
}

static void vpid_free(uint16_t vpid)
{
	spin_lock(&vpid_lock);
	vpid_used[vpid / 64] &= ~(1ull << (vpid % 64));
	spin_unlock(&vpid_lock);
}
static bool have_tsc_aux;     /* IA32_TSC_AUX exists and RDTSCP runs in guests: switch it */
#define MSR_TSC_AUX 0xc0000103

/* vcpu_tsc_adjust_emulated (vcpu/guest.h) on VMX: "use TSC offsetting" (SDM Vol. 3C, 25.6.2). */
bool vmx_tsc_adjust_emulated(void)
{
	return vmx_caps.cpu & CPU_USE_TSC_OFFSETTING;
}


/* Lets the guest access one MSR without an exit (clears its read and write bits). */
static void msr_passthrough(uint8_t *bm, uint32_t msr)
{
	uint32_t base = msr >= 0xc0000000u ? 1024 : 0, bit = msr & 0x1fff;

	bm[base + bit / 8] &= ~(1u << (bit % 8));          /* read bitmap */
	bm[2048 + base + bit / 8] &= ~(1u << (bit % 8));   /* write bitmap */
}

/* Lets the guest read one MSR without an exit (clears its read bit only; MSRs below 0x2000). */
static void msr_read_passthrough(uint8_t *bm, uint32_t msr)
{
	bm[msr / 8] &= ~(1u << (msr % 8));
}

static void msr_write_passthrough(uint8_t *bm, uint32_t msr)
{
	bm[2048 + msr / 8] &= ~(1u << (msr % 8));
}

/*
 * The MSR bitmap of a vCPU in x2APIC mode with "virtualize x2APIC mode", APIC-register virtualization
 * and virtual-interrupt delivery (SDM Vol. 3C, 30.5). An x2APIC RDMSR that does not exit reads the
 * 8 bytes at offset (ECX & 0xff) << 4 of the virtual-APIC page, whatever the register (30.5): only
 * registers whose value the page holds pass, as the page's xAPIC layout stores them (11.12.1.2,
 * Table 11-6): ID (32-bit in x2APIC mode), version, TPR, PPR, LDR, SVR, ISR, TMR, IRR, ESR, the ICR
 * (one 64-bit register: lapic.c keeps its bits 63:32 at 0x304 too), the six LVTs, the initial count
 * and the divide configuration. Still exiting: the current count (the model computes it from the
 * TSC), and every MSR a real x2APIC answers with #GP (no such register, write-only EOI and self IPI,
 * DFR, ICR2, APR, RRD, the CMCI LVT this APIC does not have), which the page would answer with 0.
 * WRMSR passes for TPR (TPR virtualization, #GP on bits 63:8 by the CPU) and EOI (EOI virtualization,
 * #GP on a non-zero value; level-triggered vectors exit through the EOI-exit bitmap), 30.5 and 30.1.
 * The self IPI keeps exiting: its virtualization sets a VIRR bit behind the model (30.1.5), whose IRR
 * summary (lapic.c, irr_words) would miss it. Every other write (ICR, LVTs, timer, SVR, ESR) exits
 * as a WRMSR and is emulated, as without APIC virtualization.
 */
static void x2apicv_bitmap(uint8_t *bm)
{
	static const uint16_t readable[] = {
		VLAPIC_ID, VLAPIC_VER, VLAPIC_TPR, VLAPIC_PPR, VLAPIC_LDR, VLAPIC_SVR, VLAPIC_ESR, VLAPIC_ICR,
		VLAPIC_LVT_TIMER, VLAPIC_LVT_THERMAL, VLAPIC_LVT_PERF, VLAPIC_LVT_LINT0, VLAPIC_LVT_LINT1,
		VLAPIC_LVT_ERROR, VLAPIC_TMICT, VLAPIC_TDCR,
	};

	for (unsigned i = 0; i < sizeof(readable) / sizeof(readable[0]); i++)
		msr_read_passthrough(bm, VLAPIC_MSR(readable[i]));
	for (unsigned i = 0; i < 8; i++) {               /* the eight 32-bit words of each */
		msr_read_passthrough(bm, VLAPIC_MSR(VLAPIC_ISR) + i);
		msr_read_passthrough(bm, VLAPIC_MSR(VLAPIC_TMR) + i);
		msr_read_passthrough(bm, VLAPIC_MSR(VLAPIC_IRR) + i);
	}
	msr_write_passthrough(bm, VLAPIC_MSR(VLAPIC_TPR));
	msr_write_passthrough(bm, VLAPIC_MSR(VLAPIC_EOI));
}

static int vmx_global_init(void)
{
	uint8_t *bm;

	if (msr_bitmap)
		return 0;
	vcpu_slices_by_apic_timer = !vmx_caps.ptimer;      /* (vmx.c) */
	if (!(msr_bitmap = pmm_alloc_page()))
		return -ENOMEM;
	if (vmx_caps.apicv) {
		if (!(apic_access_page = pmm_alloc_page()))
			return -ENOMEM;
		memset(phys_to_virt(apic_access_page), 0, PAGE_SIZE);
	}
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
	/* IA32_TSC_AUX, what RDTSCP returns in ECX (Linux keeps its CPU number there): the guest's own,
	 * switched with the vCPU, where the CPU has it (CPUID.80000001H:EDX.RDTSCP[27]). */
	have_tsc_aux = cpu_has(0x80000001, 3, 27) && (vmx_caps.cpu2 & SEC_RDTSCP);
	if (have_tsc_aux)
		msr_passthrough(bm, MSR_TSC_AUX);
	if (vmx_caps.entry & ENTRY_LOAD_IA32_PAT)
		msr_passthrough(bm, MSR_IA32_PAT);
	/* The write-only command MSRs, where the CPU has them: a guest's IBPB or L1D flush is the CPU's
	 * to do (and its #GP on reserved bits); reads still exit, for msr.c's #GP (SDM Vol. 4). */
	if (spec_guest_pred_cmd(&spec))
		msr_write_passthrough(bm, MSR_IA32_PRED_CMD);
	if (spec.guest_cpuid7_edx & CPUID_7_0_EDX_L1D_FLUSH)
		msr_write_passthrough(bm, MSR_IA32_FLUSH_CMD);
	if (vmx_caps.x2apicv) {
		if (!(msr_bitmap_x2apicv = pmm_alloc_page()))
			return -ENOMEM;
		memcpy(phys_to_virt(msr_bitmap_x2apicv), bm, PAGE_SIZE);
		x2apicv_bitmap(phys_to_virt(msr_bitmap_x2apicv));
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
	vmcs_write(HOST_CS_SELECTOR, SEL_CODE64);
	vmcs_write(HOST_SS_SELECTOR, SEL_DATA);
	vmcs_write(HOST_DS_SELECTOR, SEL_DATA);
	vmcs_write(HOST_ES_SELECTOR, SEL_DATA);
	vmcs_write(HOST_FS_SELECTOR, 0);
	vmcs_write(HOST_GS_SELECTOR, 0);
	vmcs_write(HOST_TR_SELECTOR, SEL_TSS);
	vmcs_write(HOST_FS_BASE, 0);
	vmcs_write(HOST_GS_BASE, (uint64_t)pc);
	vmcs_write(HOST_TR_BASE, (uint64_t)&pc->tss);
	vmcs_write(HOST_GDTR_BASE, gdtr.base);
	vmcs_write(HOST_IDTR_BASE, idtr.base);
	vmcs_write(HOST_IA32_SYSENTER_CS, 0);
	vmcs_write(HOST_IA32_SYSENTER_ESP, 0);
	vmcs_write(HOST_IA32_SYSENTER_EIP, 0);
	if (vmx_caps.efer_ctls)
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

uint64_t vcpu_guest_cr0(void)
{
	uint64_t mask = vmcs_read(CR0_GUEST_HOST_MASK);

	return (vmcs_read(GUEST_CR0) & ~mask) | (vmcs_read(CR0_READ_SHADOW) & mask);
}

uint64_t vcpu_guest_cr4(void)
{
	uint64_t mask = vmcs_read(CR4_GUEST_HOST_MASK);

	return (vmcs_read(GUEST_CR4) & ~mask) | (vmcs_read(CR4_READ_SHADOW) & mask);
}

/* Writes a segment register's four VMCS fields: selector, then base/limit/access rights at fixed
 * distances in the encoding space (SDM Vol. 3D, B.1.2, B.3.3, B.4.3), ES first. */
static void write_seg(enum vmcs_field sel_field, const struct seg_state *s)
{
	unsigned n = (sel_field - GUEST_ES_SELECTOR) / 2;

	vmcs_write(sel_field, s->sel);
	vmcs_write(GUEST_ES_BASE + 2 * n, s->base);
	vmcs_write(GUEST_ES_LIMIT + 2 * n, s->limit);
	vmcs_write(GUEST_ES_AR_BYTES + 2 * n, s->ar);
}

/* Loads `s` into the current VMCS and v's registers: how a vCPU starts, and what INIT and SIPI do. */
static void apply_state(struct vcpu *v, const struct vcpu_state *s)
{
	uint32_t entry = vmcs_read32(VM_ENTRY_CONTROLS) & ~ENTRY_IA32E_MODE;

	write_seg(GUEST_ES_SELECTOR, &s->es);
	write_seg(GUEST_CS_SELECTOR, &s->cs);
	write_seg(GUEST_SS_SELECTOR, &s->ss);
	write_seg(GUEST_DS_SELECTOR, &s->ds);
	write_seg(GUEST_FS_SELECTOR, &s->fs);
	write_seg(GUEST_GS_SELECTOR, &s->gs);
	write_seg(GUEST_LDTR_SELECTOR, &s->ldtr);
	write_seg(GUEST_TR_SELECTOR, &s->tr);
	vmcs_write(GUEST_GDTR_BASE, s->gdtr_base);
	vmcs_write(GUEST_GDTR_LIMIT, s->gdtr_limit);
	vmcs_write(GUEST_IDTR_BASE, s->idtr_base);
	vmcs_write(GUEST_IDTR_LIMIT, s->idtr_limit);

	vmcs_write(CR0_GUEST_HOST_MASK, vmx_spt_on(v) ? vmx_spt_cr0_mask() : vcpu_cr0_mask());
	vmcs_write(CR0_READ_SHADOW, s->cr0);
	vmcs_write(GUEST_CR0, vmx_spt_on(v) ? vmx_spt_cr0_real(s->cr0) : vcpu_cr0_real(s->cr0));
	/* The bits the CPU would take but the guest's CPUID hides are the host's too: their MOV exits,
	 * for vcpu/cr.c's #GP (SDM Vol. 3C, 26.1.3: a MOV to CR4 exits when it would change a bit the
	 * mask owns from its read shadow). */
	vmcs_write(CR4_GUEST_HOST_MASK, (vmx_spt_on(v) ? vmx_spt_cr4_mask() : vcpu_cr4_mask()) |
					(vmx_caps.cr4_fixed1 & ~vcpu_cr4_allowed(v)));
	vmcs_write(CR4_READ_SHADOW, s->cr4);
	vmcs_write(GUEST_CR4, vmx_spt_on(v) ? vmx_spt_cr4_real(s->cr4, s->cr0) : vcpu_cr4_real(s->cr4));
	vmcs_write(GUEST_CR3, s->cr3);
	vmcs_write(GUEST_DR7, DR7_RESET);                  /* reset value (SDM Vol. 3B, 18.2.4) */
	vmcs_write(GUEST_RSP, s->rsp);
	vmcs_write(GUEST_RIP, s->rip);
	vmcs_write(GUEST_RFLAGS, s->rflags | 0x2);         /* bit 1 is always 1 */
	vmx_set_guest_efer(v, s->efer);
	vmcs_write(VM_ENTRY_CONTROLS, (s->efer & EFER_LMA) ? entry | ENTRY_IA32E_MODE : entry);
	vmx_set_pat(v, 0x0007040600070406ull);             /* the power-up PAT (SDM Vol. 3A, 13.12.4) */
	vmcs_write(GUEST_IA32_DEBUGCTL, 0);
	vmcs_write(GUEST_SYSENTER_CS, 0);
	vmcs_write(GUEST_SYSENTER_ESP, 0);
	vmcs_write(GUEST_SYSENTER_EIP, 0);
	vmcs_write(GUEST_INTERRUPTIBILITY_INFO, 0);
	vmcs_write(GUEST_ACTIVITY_STATE, 0);
	vmcs_write(GUEST_PENDING_DBG_EXCEPTIONS, 0);
	vmcs_write(VMCS_LINK_POINTER, ~0ull);              /* no shadow VMCS (SDM Vol. 3C, 27.3.1.5) */

	if (vmx_spt_on(v))
		vmx_spt_apply(v, s->cr3, s->efer);
	memset(&v->regs, 0, sizeof(v->regs));
	v->regs.rax = s->rax;
	v->regs.rbx = s->rbx;
	v->regs.rcx = s->rcx;
	v->regs.rdx = s->rdx;
	v->regs.rsi = s->rsi;
	v->regs.rdi = s->rdi;
	v->regs.rbp = s->rbp;
	vmx_of(v)->event.valid = false;
	memset(v->dr, 0, sizeof(v->dr));
	v->dr[4] = DR6_ACTIVE_LOW;                         /* DR6 reset value */
	v->xcr0 = 1;
}

uint64_t vmx_guest_efer(const struct vcpu *v)
{
	return vmx_of(v)->efer_msrs ? vmx_of(v)->efer_msrs[1] : vmcs_read(GUEST_IA32_EFER);
}

void vmx_set_guest_efer(struct vcpu *v, uint64_t efer)
{
	if (vmx_of(v)->efer_msrs)
		vmx_of(v)->efer_msrs[1] = efer;
	else
		vmcs_write(GUEST_IA32_EFER, efer);
}

/* The secondary controls of v without APIC virtualization: paging=shadow turns off "enable EPT", and
 * with it "unrestricted guest" (which needs it, SDM Vol. 3C, 27.2.1.1); "enable VPID" stays (vmx/spt.c
 * flushes what the shadow drops). */
static uint32_t sec_controls(const struct vcpu *v)
{
	if (vmx_spt_on(v))
		return vmx_caps.cpu2 & ~(SEC_ENABLE_EPT | SEC_UNRESTRICTED_GUEST);
	return vmx_caps.cpu2;
}

static void setup_controls(struct vcpu *v)
{
	vmcs_write(PIN_BASED_VM_EXEC_CONTROL, vmx_caps.pin);
	/* paging=shadow: MOV to/from CR3 and INVLPG exit (SDM Vol. 3C, 25.6.2, Table 25-6; with
	 * "enable INVPCID", INVLPG exiting makes INVPCID exit too, Table 25-7), and vmx.c checked the
	 * CPU allows them (vmx_caps.spt). */
	vmx_of(v)->cpu_ctls = vmx_caps.cpu;
	if (vmx_spt_on(v))
		vmx_of(v)->cpu_ctls |= CPU_CR3_LOAD_EXITING | CPU_CR3_STORE_EXITING | CPU_INVLPG_EXITING;
	vmcs_write(CPU_BASED_VM_EXEC_CONTROL, vmx_of(v)->cpu_ctls);
	vmcs_write(SECONDARY_VM_EXEC_CONTROL, sec_controls(v));
	vmcs_write(VM_EXIT_CONTROLS, vmx_caps.exit);
	vmcs_write(VM_ENTRY_CONTROLS, vmx_caps.entry);
	/* The guest handles its own exceptions, but for two that can be made to recur while they are
	 * delivered, with no instruction ever completing: #AC delivered on a misaligned stack at CPL 3,
	 * a #DB whose delivery meets a data breakpoint the guest set on its IDT or stack. Each is
	 * benign, so the CPU delivers the second serially (SDM Vol. 3A, 7.15, Interrupt 8, Table 7-5),
	 * and again, in microcode, forever: no VM exit, no preemption timer, no interrupt (CVE-2015-5307,
	 * CVE-2015-8104). Intercepted, each delivery is a VM exit, a scheduling point; the handler
	 * gives the exception back to the guest (exit.c, handle_exception_nmi). */
	/* paging=shadow: every #PF exits (bit 14, with PFEC mask = match = 0: SDM Vol. 3C, 25.6.3). */
	vmcs_write(EXCEPTION_BITMAP, (1u << VEC_DB) | (1u << VEC_AC) | (vmx_spt_on(v) ? 1u << VEC_PF : 0));
	vmcs_write(PAGE_FAULT_ERROR_CODE_MASK, 0);         /* (with bit 14 clear: no #PF exits at all) */
	vmcs_write(PAGE_FAULT_ERROR_CODE_MATCH, 0);
	vmcs_write(CR3_TARGET_COUNT, 0);
	vmcs_write(VM_EXIT_MSR_STORE_COUNT, 0);
	if (vmx_of(v)->efer_msrs) {
		/* No EFER controls (vmx.c): VM entry loads the guest's EFER from its MSR-load list after
		 * the guest state, whose EFER.LMA (and LME, with CR0.PG) it set from "IA-32e mode guest"
		 * (SDM Vol. 3C, 27.3.2.1, 27.4); VM exit sets LMA and LME from "host address-space size"
		 * (28.5.1) and then loads the host's EFER (NXE, SCE) from its list (28.6). Entries of 16
		 * bytes: the MSR's index, 32 reserved bits, its value (25.7.2, Table 25-14). The guest's
		 * EFER changes only through exits (WRMSR, CR0), so no exit MSR-store list. */
		vmx_of(v)->efer_msrs[0] = MSR_EFER;
		vmx_of(v)->efer_msrs[2] = MSR_EFER;
		vmx_of(v)->efer_msrs[3] = rdmsr(MSR_EFER);
		vmcs_write(VM_ENTRY_MSR_LOAD_ADDR, (uint64_t)vmx_of(v)->efer_msrs);   /* the host map is 1:1 */
		vmcs_write(VM_EXIT_MSR_LOAD_ADDR, (uint64_t)(vmx_of(v)->efer_msrs + 2));
		vmcs_write(VM_ENTRY_MSR_LOAD_COUNT, 1);
		vmcs_write(VM_EXIT_MSR_LOAD_COUNT, 1);
	} else {
		vmcs_write(VM_EXIT_MSR_LOAD_COUNT, 0);
		vmcs_write(VM_ENTRY_MSR_LOAD_COUNT, 0);
	}
	vmcs_write(VM_ENTRY_INTR_INFO_FIELD, 0);
	vmcs_write(MSR_BITMAP, msr_bitmap);
	if (!vmx_spt_on(v))
		vmcs_write(EPT_POINTER, v->vm->eptp);
	vmcs_write(TSC_OFFSET, v->tsc.offset);             /* 0 (the host TSC) until the guest writes it */
	if (vmx_caps.vpid)
		vmcs_write(VIRTUAL_PROCESSOR_ID, vmx_of(v)->vpid);
}

#define APICV_SEC (SEC_VIRT_APIC_ACCESSES | SEC_APIC_REG_VIRT | SEC_VIRT_INTR_DELIVERY)
/* x2APIC mode: "virtualize x2APIC mode" in place of "virtualize APIC accesses", which VM entry
 * refuses to see together (SDM Vol. 3C, 27.2.1.1). */
#define X2APICV_SEC (SEC_VIRT_X2APIC | SEC_APIC_REG_VIRT | SEC_VIRT_INTR_DELIVERY)

/* APIC virtualization on `v` (SDM Vol. 3C, 30.1-30.4): its register page becomes the virtual-APIC
 * page; reads of the APIC page come from it, EOI and TPR writes are done by the CPU, other writes
 * store and then exit (APIC write), and the CPU delivers the interrupt RVI names itself when the
 * guest can take it (virtual-interrupt delivery). CR8 accesses keep exiting (vlapic_set_cr8).
 * `sec`: APICV_SEC (xAPIC at its reset base) or X2APICV_SEC (x2APIC, through the MSR bitmap). */
static void apicv_on(struct vcpu *v, uint32_t sec)
{
	vmcs_write(VIRTUAL_APIC_PAGE_ADDR, (uint64_t)v->lapic.regs);   /* the host map is 1:1 */
	if (sec & SEC_VIRT_APIC_ACCESSES)
		vmcs_write(APIC_ACCESS_ADDR, apic_access_page);
	vmcs_write(TPR_THRESHOLD, 0);
	for (unsigned i = 0; i < 4; i++)
		vmcs_write(EOI_EXIT_BITMAP0 + 2 * i, 0);
	memset(vmx_of(v)->eoi_exit, 0, sizeof(vmx_of(v)->eoi_exit));
	vmcs_write(GUEST_INTR_STATUS, 0);
	vmcs_write(CPU_BASED_VM_EXEC_CONTROL, vmx_of(v)->cpu_ctls |= CPU_TPR_SHADOW);
	vmcs_write(SECONDARY_VM_EXEC_CONTROL, sec_controls(v) | sec);
	vmx_of(v)->apicv_x2 = sec & SEC_VIRT_X2APIC;
	if (vmx_of(v)->apicv_x2)
		vmcs_write(MSR_BITMAP, msr_bitmap_x2apicv);
	vmx_of(v)->apicv = true;
	vlapic_set_cpu_delivery(&v->lapic, true);   /* and the first entry syncs RVI, SVI, the bitmap */
}

void vcpu_apicv_off(struct vcpu *v)
{
	vmcs_write(SECONDARY_VM_EXEC_CONTROL, sec_controls(v));
	vmcs_write(CPU_BASED_VM_EXEC_CONTROL, vmx_of(v)->cpu_ctls &= ~CPU_TPR_SHADOW);
	if (vmx_of(v)->apicv_x2)
		vmcs_write(MSR_BITMAP, msr_bitmap);
	vmx_of(v)->apicv = vmx_of(v)->apicv_x2 = false;
	vlapic_set_cpu_delivery(&v->lapic, false);
}

static void invept_here(void *eptp)
{
	vmx_invept(*(uint64_t *)eptp);
}

void vcpu_apicv_inhibit(struct vcpu *v)
{
	struct vm *vm = v->vm;
	uint64_t done = 0;
	bool expected = false;

	if (!vm->apicv || !__atomic_compare_exchange_n(&vm->apicv_inhibited, &expected, true, false,
							__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return;
	gmem_unmap_device(&vm->mem, VLAPIC_BASE_DEFAULT);
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vcpu_work_post(&vm->vcpus[i].work, VCPU_WORK_APICV);
	/* Every CPU that may cache the mapping drops it before this vCPU goes on; the call's IPI also
	 * makes the guest's vCPUs there exit, and their next entry finds the guest inhibited. */
	for (unsigned i = 0; i < vm->nvcpus; i++) {
		unsigned c = vm->vcpus[i].cpu;

		if (!(done >> c & 1)) {
			done |= 1ull << c;
			cpu_call(c, invept_here, &vm->eptp, true);
		}
	}
	vcpu_apicv_off(v);
}

/* vcpu_apic_base_changed (vcpu/guest.h) on VMX: APIC virtualization follows the APIC's mode. Leaving
 * the xAPIC at its reset base inhibits the guest's xAPIC virtualization (vcpu_apicv_inhibit); an APIC
 * in x2APIC mode is virtualized through the MSR bitmap where the CPU offers "virtualize x2APIC mode"
 * (SDM Vol. 3C, 30.5), per vCPU, the APIC-access page not needed; leaving x2APIC mode (only to
 * disabled, SDM Vol. 3A, 11.12.5) turns it off. On v's CPU, its VMCS loaded. */
void vmx_apic_base_changed(struct vcpu *v)
{
	struct vlapic *l = &v->lapic;
	bool x2 = vlapic_x2apic(l);

	/* The APIC-access page covers an xAPIC at its reset base only. */
	if ((l->base & ~VLAPIC_BASE_BSP) != (VLAPIC_BASE_DEFAULT | VLAPIC_BASE_EN))
		vcpu_apicv_inhibit(v);
	if (x2 && vmx_caps.x2apicv && !vmx_of(v)->apicv_x2 && !vmx_spt_on(v)) {
		if (vmx_of(v)->apicv)                     /* the guest was inhibited by another vCPU meanwhile */
			vcpu_apicv_off(v);
		apicv_on(v, X2APICV_SEC);
	} else if (!x2 && vmx_of(v)->apicv_x2) {
		vcpu_apicv_off(v);               /* x2APIC -> disabled (11.12.5): emulated from now on */
	}
}

/* VMX's part of a new vCPU (vcpu/backend.h): its VMCS, VPID, EFER's MSR-load lists, the guest's
 * APIC-access page (vCPU 0) and shadow paging's state. */
static int vmx_vcpu_create(struct vcpu *v)
{
	struct vm *vm = v->vm;

	vm->eptp = ept_pointer(&vm->mem.ept, false);       /* the same for each of its vCPUs */
	vmx_of(v)->spec_entry = vcpu_spec_entry(0);
	if (!(vmx_of(v)->vmcs = pmm_alloc_page()))
		return -ENOMEM;
	if (vmx_spt_on(v))
		vmx_spt_init(v);
	/* The APIC-access page is found through the EPT here; paging=shadow emulates the APIC. */
	if (v->index == 0 && vmx_caps.apicv && vm->paging != VM_PAGING_SHADOW) {
		/* The guest's APIC page at its reset base leads to the APIC-access page. It lies in the
		 * hole below 4 GiB (gmem/layout.h), never in RAM: gmem refuses a RAM GPA (then the APIC
		 * stays emulated) and never takes this page, shared by every guest, for its own. */
		vm->apicv = !gmem_map_device(&vm->mem, VLAPIC_BASE_DEFAULT, apic_access_page, PAGE_SIZE,
					     EPT_READ | EPT_WRITE | (EPT_MT_UC << EPT_MT_SHIFT));
	}
	if (vmx_caps.vpid && !(vmx_of(v)->vpid = vpid_alloc())) {
		pmm_free_page(vmx_of(v)->vmcs);
		vmx_of(v)->vmcs = 0;
		return -ENOMEM;                  /* 65535 vCPUs at once: never with MAX_GUESTS x 16 */
	}
	vmx_of(v)->efer_msrs = NULL;
	if (!vmx_caps.efer_ctls) {               /* EFER's MSR-load lists (setup_controls) */
		uint64_t page = pmm_alloc_page();

		if (!page) {
			if (vmx_of(v)->vpid)
				vpid_free(vmx_of(v)->vpid);
			vmx_of(v)->vpid = 0;
			pmm_free_page(vmx_of(v)->vmcs);
			vmx_of(v)->vmcs = 0;
			return -ENOMEM;
		}
		vmx_of(v)->efer_msrs = phys_to_virt(page);
		memset(vmx_of(v)->efer_msrs, 0, 4 * sizeof(uint64_t));
	}
	/* SDM Vol. 3C, 24.2: the VMCS region starts with the revision identifier. */
	memset(phys_to_virt(vmx_of(v)->vmcs), 0, PAGE_SIZE);
	*(uint32_t *)phys_to_virt(vmx_of(v)->vmcs) = vmx_caps.revision;
	return 0;
}

/* First load, on the vCPU's own CPU: VMCLEAR makes the VMCS "clear" so that VMLAUNCH accepts it,
 * VMPTRLD makes it current, then every field is written (SDM Vol. 3C, 25.11.3). */
static void vcpu_setup(struct vcpu *v)
{
	if (!vmclear(vmx_of(v)->vmcs) || !vmptrld(vmx_of(v)->vmcs))
		panic("hv: VMCLEAR/VMPTRLD of a new VMCS failed for guest %s", v->vm->name);
	setup_controls(v);
	setup_host_state();
	apply_state(v, &v->start);
	if (v->vm->apicv && !v->vm->apicv_inhibited)
		apicv_on(v, APICV_SEC);
	v->ready = true;
}

/* DR0-3 and DR6 are not in the VMCS (DR7 is) and MOV DR does not exit: they are switched by hand. */
static void load_debug_regs(const struct vcpu *v)
{
	asm volatile("mov %0, %%dr0; mov %1, %%dr1; mov %2, %%dr2; mov %3, %%dr3; mov %4, %%dr6"
		     : : "r"(v->dr[0]), "r"(v->dr[1]), "r"(v->dr[2]), "r"(v->dr[3]), "r"(v->dr[4] | DR6_ACTIVE_LOW));
}

static void vmx_vcpu_load(struct vcpu *v)
{
	struct vcpu_cpu *pc = this_vcpu_cpu();
	struct vcpu *prev = pc->loaded;

	if (prev == v)
		return;
	if (prev) {
		vcpu_fpu_save(prev);
		prev->msr_kernel_gs = rdmsr(MSR_KERNEL_GS_BASE);
		prev->msr_star = rdmsr(MSR_STAR);
		prev->msr_lstar = rdmsr(MSR_LSTAR);
		prev->msr_cstar = rdmsr(MSR_CSTAR);
		prev->msr_sfmask = rdmsr(MSR_SFMASK);
		if (have_tsc_aux)
			prev->msr_tsc_aux = rdmsr(MSR_TSC_AUX);
		asm volatile("mov %%dr0, %0; mov %%dr1, %1; mov %%dr2, %2; mov %%dr3, %3; mov %%dr6, %4"
			     : "=r"(prev->dr[0]), "=r"(prev->dr[1]), "=r"(prev->dr[2]), "=r"(prev->dr[3]),
			       "=r"(prev->dr[4]));
	}
	pc->loaded = v;
	/* Another guest's vCPU ran here last: what it taught the branch predictors goes (spec.c). */
	if (pc->last_guest != v->vm->id && (spec.on & SPEC_IBPB))
		spec_ibpb();
	pc->last_guest = v->vm->id;
	if (!v->ready)
		vcpu_setup(v);
	else if (!vmptrld(vmx_of(v)->vmcs))
		panic("hv: VMPTRLD of vCPU %s/%u failed", v->vm->name, v->index);
	vcpu_fpu_restore(v);
	/* Where the CPU holds prev's value already (read just above) and v's is the same, no WRMSR: the
	 * syscall MSRs of one guest's vCPUs are most often equal, and a WRMSR of them costs far more on a
	 * CPU than the compare. */
#define LOAD_MSR(msr, field) do { if (!prev || prev->field != v->field) wrmsr(msr, v->field); } while (0)
	LOAD_MSR(MSR_KERNEL_GS_BASE, msr_kernel_gs);
	LOAD_MSR(MSR_STAR, msr_star);
	LOAD_MSR(MSR_LSTAR, msr_lstar);
	LOAD_MSR(MSR_CSTAR, msr_cstar);
	LOAD_MSR(MSR_SFMASK, msr_sfmask);
	if (have_tsc_aux)
		LOAD_MSR(MSR_TSC_AUX, msr_tsc_aux);
#undef LOAD_MSR
	load_debug_regs(v);
}

/* INIT and Start-up IPIs that arrived for `v` (SDM Vol. 3A, 9.4.4 and 11.6.1): INIT puts the vCPU in
 * the wait-for-SIPI state whatever it was doing; a SIPI starts a waiting vCPU in real mode at the
 * vector's page and is ignored otherwise. On v's CPU with its VMCS loaded. */
static void take_init_sipi(struct vcpu *v)
{
	struct vlapic *l = &v->lapic;
	int vector;

	if (__atomic_exchange_n(&l->init_pending, false, __ATOMIC_ACQ_REL)) {
		vcpu_state_reset(&v->start, -1);
		apply_state(v, &v->start);
		load_debug_regs(v);             /* v is loaded: its DR0-3/DR6 reset now, not at the next switch */
		vlapic_reset_on_init(l);
		/* A SIPI that came with it stays: senders wait between INIT and SIPI (SDM Vol. 3A,
		 * 9.4.4.1), Linux on recent CPUs only microseconds (init_udelay 0), so both may be here
		 * by the time this CPU looks; SIPIs to a running vCPU were dropped below on earlier runs. */
		v->state = VCPU_WAIT_SIPI;
		if (!vcpu_others_active(v))     /* e.g. an INIT it sent itself, alone in its guest */
			vm_stop(v, "INIT left vCPU %u waiting for a Start-up IPI that no other vCPU can send",
				v->index);
	}
	vector = __atomic_exchange_n(&l->sipi_vector, -1, __ATOMIC_ACQ_REL);
	if (vector >= 0 && v->state == VCPU_WAIT_SIPI) {
		vcpu_state_reset(&v->start, vector);
		apply_state(v, &v->start);
		v->state = VCPU_RUNNING;
	}
}

static enum vcpu_action vmx_vcpu_run(struct vcpu *v, uint64_t quantum_tsc)
{
	uint64_t now;
	int r;

	take_init_sipi(v);
	if (v->vm->ending)
		return VCPU_STOPPED;
	if (vmx_spt_on(v) && v->state == VCPU_RUNNING && (r = vmx_spt_run(v)) != HANDLED)
		return (enum vcpu_action)r;
	now = rdtsc();
	if (!vcpu_runnable(v, now) || v->state == VCPU_WAIT_SIPI)
		return VCPU_BLOCKED;
	v->state = VCPU_RUNNING;
	v->slice_end = now + quantum_tsc;
	v->wake_after = now + quantum_tsc / VCPU_WAKE_GRANULARITY;
	v->entry_due = 0;                   /* the preemption timer is set afresh */
	if ((r = vmx_prepare_entry(v, false)) != HANDLED)
		return (enum vcpu_action)r;
	if (vmx_enter(v, v->launched)) {
		/* VMLAUNCH/VMRESUME failed (every exit in between resumed from entry.asm). */
		uint32_t err = vmcs_read32(VM_INSTRUCTION_ERROR);

		spec_after_exit(v->spec_ctrl);   /* prepare_entry loaded the guest's IA32_SPEC_CTRL */

		vm_stop(v, "VM entry failed: VM-instruction error %u (%s)", err, vm_instruction_error_name(err));
		return VCPU_STOPPED;
	}
	v->launched = true;                  /* exits happened: VMRESUME from now on */
	if (!vmx_caps.ptimer)                /* the slice's APIC timer (exit.c): not for the next one */
		lapic_timer_arm(0);
	return v->action;
}

/* VMX's part of vcpu_leave: VMCLEAR, and this CPU's cached translations of the guest dropped. */
static void vmx_vcpu_leave(struct vcpu *v)
{
	vmclear(vmx_of(v)->vmcs);
	/* Cached EPT translations are tagged with the EPTP: drop this CPU's before the tables are
	 * reused (SDM Vol. 3C, 29.4.3.4). Each vCPU does it on its own CPU: together, every CPU the
	 * guest ran on. */
	vmx_invept(v->vm->eptp);
	if (vmx_of(v)->vpid) {                           /* its linear translations live on this CPU only */
		vmx_invvpid(vmx_of(v)->vpid);
		vpid_free(vmx_of(v)->vpid);
		vmx_of(v)->vpid = 0;
	}
}

static void vmx_vcpu_free(struct vcpu *v)
{
	pmm_free_page(vmx_of(v)->vmcs);
	shadow_destroy(&v->sh);              /* (paging=ept: nothing to free) */
	if (vmx_of(v)->efer_msrs)
		pmm_free_page((uint64_t)vmx_of(v)->efer_msrs);   /* the host map is 1:1 */
	vmx_of(v)->efer_msrs = NULL;
	vmx_of(v)->vmcs = 0;
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
		vcpu_guest_cr0(), vmcs_read(GUEST_CR3), vcpu_guest_cr4(),
		vmx_guest_efer(v), vmcs_read(GUEST_CS_SELECTOR), vmcs_read(GUEST_SS_SELECTOR),
		r->cr2, vmcs_read(EXIT_QUALIFICATION));
}

/* vmx_probe (vmx.c), the capabilities apicv= turns off, and the informative line. */
static bool vmx_backend_probe(bool apicv, struct vcpu_probe *p)
{
	char timer[24] = "none";

	if (!vmx_probe(&p->why))
		return false;
	if (!apicv)
		vmx_caps.apicv = vmx_caps.x2apicv = false;
	/* Without unrestricted guest every guest gets shadow paging (vmx/spt.c; paging=ept is refused). */
	p->paging_nested = vmx_caps.ug;
	p->paging_shadow = vmx_caps.spt;
	p->no_nested = !vmx_caps.ept;
	if (vmx_caps.ptimer)
		snformat(timer, sizeof(timer), "2^%u TSC", vmx_caps.preemption_shift);
	pr_info("hv: vmx: %s%s%s%s, VPID %s, preemption timer %s, %s, "
		"APIC virtualization %s, x2APIC virtualization %s\n",
		vmx_caps.ept ? "EPT pages" : "no EPT", vmx_caps.ept && (vmx_caps.ept_page_sizes & EPT_PAGE_1G) ? " 1G" : "",
		vmx_caps.ept && (vmx_caps.ept_page_sizes & EPT_PAGE_2M) ? " 2M" : "", vmx_caps.ept ? " 4K" : "",
		vmx_caps.vpid ? "on" : "off", vmx_caps.ptimer ? timer : "none (slices by the local APIC timer)",
		vmx_caps.ug ? "unrestricted guest" : "no unrestricted guest: paging=shadow for every guest",
		vmx_caps.apicv ? "on" : "off", vmx_caps.x2apicv ? "on" : "off");
	return true;
}

static unsigned vmx_ept_page_sizes(void)
{
	return vmx_caps.ept_page_sizes;
}

const struct vcpu_backend vmx_backend = {
	.vendor = VCPU_VMX, .name = "VMX", .map_format = EPT_FORMAT_EPT, .map_page_sizes = vmx_ept_page_sizes,
	.probe = vmx_backend_probe,
	.cpu_on = vmx_cpu_on, .cpu_state = vmx_cpu_state, .cpu_off = vmx_cpu_off,
	.global_init = vmx_global_init,
	.vcpu_create = vmx_vcpu_create, .vcpu_load = vmx_vcpu_load, .vcpu_run = vmx_vcpu_run,
	.vcpu_leave = vmx_vcpu_leave, .vcpu_free = vmx_vcpu_free, .vcpu_snapshot = vmx_vcpu_snapshot,
	.guest_report = vmx_rm_report,
};
