/* Shadow paging on VMX (paging=shadow, issue 16): the VMCS side of vcpu/spt.c. The guest runs with
 * "enable EPT" off, on the tables of shadow/shadow.c (GVA -> HPA), with the guest's own CR0, CR3, CR4 and IA32_EFER shown to it and
 * the CPU's kept as the shadow needs them:
 *
 *   - no EPT, so no unrestricted guest (SDM Vol. 3C, 25.6.2, Table 25-7: "unrestricted guest" needs
 *     "enable EPT"; VM entry checks it, 27.2.1.1): CR0.PE and CR0.PG are 1 in the CPU whatever the
 *     guest set (IA32_VMX_CR0_FIXED0, SDM Vol. 3D, A.7). A guest with paging off runs on the
 *     shadow's paging-off root (GVA = GPA). Real mode (CR0.PE = 0) runs in virtual-8086 mode
 *     (vmx/realmode.c), with CR4.VME set; a guest that clears CR0.PE in protected mode is stopped.
 *   - CR0.PE, PG, WP and CR4.PAE, PSE, PGE, PCIDE, SMEP, SMAP, PKE are owned by the host through the
 *     guest/host masks; the guest reads its own values from the read shadows (25.6.6) and a MOV that
 *     would change one exits (26.1.3). The CPU runs with WP = 1 and PAE = 1 (shadow.h says why),
 *     PSE/PGE/PCIDE = 0 (shadow entries have no G bit, CR3 no PCID: each cached root stands for one
 *     guest CR3 and PCID), PKE = 0 (no protection keys in shadow leaves), SMEP/SMAP the guest's
 *     while its paging is on.
 *   - IA32_EFER: NXE always 1 (shadow leaves may carry XD); LME only with LMA, as VM entry requires
 *     with CR0.PG = 1 (27.3.1.1): a guest between setting LME and setting PG runs in PAE paging.
 *   - every #PF exits (exception bitmap bit 14 with PFEC mask = match = 0, 25.6.3; the exit leaves
 *     CR2 alone, the linear address is in the exit qualification, 28.1 and 28.2.1);
 *   - MOV to and from CR3 exit ("CR3-load exiting", "CR3-store exiting", 25.6.2, Table 25-6, with the
 *     CR3-target count 0, 26.1.3); INVLPG exits ("INVLPG exiting", Table 25-6), and so does INVPCID
 *     ("enable INVPCID" with "INVLPG exiting", Table 25-7);
 *   - the vCPU's VPID where the CPU has them, as with EPT: the guest's translations then survive VM
 *     exits and entries (SDM Vol. 3C, 29.1, 29.4.3.3), so whatever the shadow changes or drops that
 *     the CPU may have cached it says (shadow.h, enum shadow_flush), and vmx_spt_flush drops it with
 *     INVVPID before the next entry: one 4 KiB page by its address, anything else (a root switch
 *     among them: the VMCS's CR3 changes without a MOV to CR3) the VPID's every translation. Without
 *     VPIDs (Bochs's penryn) VM entries and exits flush the linear and combined mappings of VPID 0
 *     (29.4.3.3) and INVVPID is not used.
 */
#include "lib/errno.h"
#include "lib/string.h"
#include "vcpu/handler.h"
#include "vcpu/spt.h"
#include "vmx/exit.h"
#include "vmx/vmx.h"
#include "vmx/skip.h"
#include "vmx/spt.h"
#include "vmx/vmcs.h"

/* The CR0/CR4 bits the host decides for the shadow (beyond VMX's fixed bits, vcpu.c). */
#define SPT_CR0_OWN (CR0_PE | CR0_PG | CR0_WP)
/* CR4.PKE: the shadow's leaves have protection key 0 whatever the guest's entries hold (shadow.c), so
 * the CPU must never apply keys to them (SDM Vol. 3A, 4.6.2): PKU is hidden from the guest on shadow
 * paging (vcpu/cpuid_policy.c, no_pkeys) and the CPU's PKE stays 0. */
#define SPT_CR4_OWN (CR4_VME | CR4_PAE | GPT_CR4_PSE | CR4_PGE | CR4_PCIDE | GPT_CR4_SMEP | GPT_CR4_SMAP | CR4_PKE)

uint64_t vmx_spt_cr0_mask(void)
{
	return vcpu_cr0_mask() | SPT_CR0_OWN;
}

uint64_t vmx_spt_cr4_mask(void)
{
	return vcpu_cr4_mask() | SPT_CR4_OWN;
}

uint64_t vmx_spt_cr0_real(uint64_t guest)
{
	return (guest | vmx_caps.cr0_fixed0 | SPT_CR0_OWN) & vmx_caps.cr0_fixed1;
}

uint64_t vmx_spt_cr4_real(uint64_t guest, uint64_t guest_cr0)
{
	uint64_t cr4 = (guest & ~SPT_CR4_OWN) | CR4_PAE;

	if (guest_cr0 & CR0_PG)
		cr4 |= guest & (GPT_CR4_SMEP | GPT_CR4_SMAP);
	cr4 |= guest_cr0 & CR0_PE ? guest & CR4_VME : CR4_VME;   /* real mode runs in vm86 mode (realmode.c) */
	return (cr4 | vmx_caps.cr4_fixed0) & vmx_caps.cr4_fixed1;
}

uint64_t vmx_spt_efer_real(uint64_t guest)
{
	return (guest & ~EFER_LME) | (guest & EFER_LMA ? EFER_LME : 0) | EFER_NXE;
}

/* --- the VMCS side of vcpu/spt.c ---------------------------------------------------------------- */

/* The GPA map (vcpu_spt_map_gpa), and in virtual-8086 mode also the hypervisor's TSS, where the guest
 * cannot reach (vmx/realmode.c). */
static int map_gpa(void *arg, uint64_t gpa, uint64_t *hpa, uint64_t *size, unsigned *rights)
{
	struct vcpu *v = arg;

	if (__builtin_expect(vmx_of(v)->rm.vm86, 0) && vmx_rm_map(gpa, hpa, size, rights))
		return 0;
	return vcpu_spt_map_gpa(arg, gpa, hpa, size, rights);
}

void vmx_spt_init(struct vcpu *v)
{
	vcpu_spt_init(v);
	v->sh.map_gpa = map_gpa;
}

void vmx_spt_set_controls(struct vcpu *v)
{
	uint64_t cr0 = vcpu_guest_cr0();

	(void)v;
	vmcs_write(GUEST_CR0, vmx_spt_cr0_real(cr0));
	vmcs_write(GUEST_CR4, vmx_spt_cr4_real(vcpu_guest_cr4(), cr0));
}

/* Flushes nothing (a VM entry that loads CR3 does not, with a VPID, SDM Vol. 3C, 29.4.3.3): the
 * shadow's request that comes with every root switch does. */
void vmx_spt_set_root(struct vcpu *v, uint64_t root)
{
	(void)v;
	vmcs_write(GUEST_CR3, root);
}

/* What the shadow dropped (vcpu_spt_flush_dropped), from the vCPU's VPID; without VPIDs every VM entry
 * flushes anyway (see the top of this file). */
void vmx_spt_flush(struct vcpu *v, uint64_t gva)
{
	if (gva == ~0ull)
		vmx_invvpid(vmx_of(v)->vpid);
	else
		vmx_invvpid_addr(vmx_of(v)->vpid, gva);
}

int vmx_spt_run(struct vcpu *v)
{
	int err;

	if (!(vcpu_guest_cr0() & CR0_PE) && !vmx_of(v)->rm.vm86 && (err = vmx_rm_enter(v)) != HANDLED)
		return err;
	return vcpu_spt_run(v);
}

void vmx_spt_apply(struct vcpu *v, uint64_t cr3, uint64_t efer)
{
	vmx_rm_reset(v);
	vcpu_spt_apply(v, cr3, efer);
	vmx_set_guest_efer(v, vmx_spt_efer_real(efer));
}

void vmx_spt_controls_changed(struct vcpu *v)
{
	if (!vcpu_spt_stale(v))
		return;
	/* A MOV to CR0 that left protected mode (LMSW never clears PE, SDM Vol. 2A, LMSW): real mode from here
	 * on runs in vm86 mode as after a SIPI, or the guest stops with vmx_rm_enter's reason when its
	 * segments keep protected-mode caches vm86 mode cannot hold (SDM Vol. 3C, 27.3.1.2). */
	if (!(vcpu_guest_cr0() & CR0_PE) && !vmx_of(v)->rm.vm86 && vmx_rm_enter(v) != HANDLED)
		return;
	vcpu_spt_resync(v);
}
