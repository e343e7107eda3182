/* Shadow paging on VMX (paging=shadow, issue 16): the guest runs with "enable EPT" off, on the tables
 * of shadow/shadow.c (GVA -> HPA), with the guest's own CR0, CR3, CR4 and IA32_EFER shown to it and
 * the CPU's kept as the shadow needs them:
 *
 *   - no EPT, so no unrestricted guest (SDM Vol. 3C, 25.6.2, Table 25-7: "unrestricted guest" needs
 *     "enable EPT"; VM entry checks it, 27.2.1.1): CR0.PE and CR0.PG are 1 in the CPU whatever the
 *     guest set (IA32_VMX_CR0_FIXED0, SDM Vol. 3D, A.7). A guest with paging off runs on the
 *     shadow's paging-off root (GVA = GPA). Real mode (CR0.PE = 0) runs in virtual-8086 mode
 *     (vmx/realmode.c), with CR4.VME set; a guest that clears CR0.PE in protected mode is stopped.
 *   - CR0.PE, PG, WP and CR4.PAE, PSE, PGE, PCIDE, SMEP, SMAP are owned by the host through the
 *     guest/host masks; the guest reads its own values from the read shadows (25.6.6) and a MOV that
 *     would change one exits (26.1.3). The CPU runs with WP = 1 and PAE = 1 (shadow.h says why),
 *     PSE/PGE/PCIDE = 0 (shadow entries have no G bit, CR3 no PCID: each cached root stands for one
 *     guest CR3 and PCID), SMEP/SMAP the guest's while its paging is on.
 *   - IA32_EFER: NXE always 1 (shadow leaves may carry XD); LME only with LMA, as VM entry requires
 *     with CR0.PG = 1 (27.3.1.1): a guest between setting LME and setting PG runs in PAE paging.
 *   - every #PF exits (exception bitmap bit 14 with PFEC mask = match = 0, 25.6.3; the exit leaves
 *     CR2 alone, the linear address is in the exit qualification, 28.1 and 28.2.1);
 *   - MOV to and from CR3 exit ("CR3-load exiting", "CR3-store exiting", 25.6.2, Table 25-6, with the
 *     CR3-target count 0, 26.1.3); INVLPG exits ("INVLPG exiting", Table 25-6), and so does INVPCID
 *     ("enable INVPCID" with "INVLPG exiting", Table 25-7);
 *   - no VPID: VM entries and exits then flush the linear and combined mappings of VPID 0 (SDM Vol.
 *     3C, 29.4.3.3, 29.4.3.4), so a shadow entry changed while the guest is out needs no INVVPID.
 */
#include "lib/errno.h"
#include "lib/string.h"
#include "vcpu/handler.h"
#include "vmx/exit.h"
#include "vmx/vmx.h"
#include "vmx/skip.h"
#include "vmx/spt.h"
#include "vmx/vmcs.h"

/* The CR0/CR4 bits the host decides for the shadow (beyond VMX's fixed bits, vcpu.c). */
#define SPT_CR0_OWN (CR0_PE | CR0_PG | CR0_WP)
#define SPT_CR4_OWN (CR4_VME | CR4_PAE | GPT_CR4_PSE | CR4_PGE | CR4_PCIDE | GPT_CR4_SMEP | GPT_CR4_SMAP)
/* The guest's paging controls a change of which re-roots the shadow (shadow_cr3_write: they flush
 * the TLB too, SDM Vol. 3A, 4.10.4.1). */
#define SPT_EFER_OWN (EFER_LMA | EFER_NXE)

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

/* --- the shadow's view of the guest ------------------------------------------------------------ */

static int read_gpa(void *arg, uint64_t gpa, void *dst, unsigned len)
{
	return gmem_read(arg, gpa, dst, len) ? -1 : 0;
}

/* A/D updates: a locked compare-exchange on guest memory, as the CPU's (SDM Vol. 3A, 4.8). */
static int cmpxchg_gpa(void *arg, uint64_t gpa, uint64_t old, uint64_t val, unsigned len)
{
	void *p = gmem_hva(arg, gpa, len);

	if (!p)
		return -1;
	if (len == 4) {
		uint32_t o = (uint32_t)old;

		return __atomic_compare_exchange_n((uint32_t *)p, &o, (uint32_t)val, false, __ATOMIC_SEQ_CST,
						   __ATOMIC_SEQ_CST) ? 0 : 1;
	}
	return __atomic_compare_exchange_n((uint64_t *)p, &old, val, false, __ATOMIC_SEQ_CST,
					   __ATOMIC_SEQ_CST) ? 0 : 1;
}

/* The GPA map: RAM only, as backed now. Everything else (the local APIC, the I/O APIC, the hole) is
 * refused, so that an access there faults and reaches the device models (vmx_spt_page_fault). In
 * virtual-8086 mode also the hypervisor's TSS, where the guest cannot reach (vmx/realmode.c). */
static int map_gpa(void *arg, uint64_t gpa, uint64_t *hpa, uint64_t *size, unsigned *rights)
{
	struct vcpu *v = arg;

	if (__builtin_expect(vmx_of(v)->rm.vm86, 0) && vmx_rm_map(gpa, hpa, size, rights))
		return 0;
	if (gmem_lookup(&v->vm->mem, gpa, hpa, size))
		return -1;
	*rights = SHADOW_MAP_W | SHADOW_MAP_X;
	return 0;
}

void vmx_spt_init(struct vcpu *v)
{
	struct shadow *s = &v->sh;

	s->g.read_gpa = read_gpa;
	s->g.cmpxchg_gpa = cmpxchg_gpa;
	s->g.arg = &v->vm->mem;
	s->g.phys_bits = cpu_phys_bits();
	s->map_gpa = map_gpa;
	s->map_arg = v;
	shadow_init(s);
	/* A bound on what one vCPU's shadows may take from the host's pages: a guest with aliasing
	 * tables could otherwise make a new table page on every fault until the allocator is empty for
	 * every guest. 4 MiB plus one page per 512 guest pages (Linux with 128 MiB uses 91 pages); at
	 * the bound the builder drops the other cached roots first, then the current one's tables. */
	s->limit_pages = 1024 + v->vm->mem_size / (512 * 4096);
}

static uint64_t paging_key(struct vcpu *v)
{
	return (vcpu_guest_cr0() & SPT_CR0_OWN) | (vcpu_guest_cr4() & SPT_CR4_OWN) << 32 |
	       (v->gefer & SPT_EFER_OWN) << 40;
}

/* Takes the guest's paging controls into the shadow and the CPU: the real CR0/CR4, and the root for
 * the guest's CR3 in its paging mode. 0, or shadow_cr3_write's error. */
static int sync(struct vcpu *v)
{
	struct shadow *s = &v->sh;
	uint64_t cr0 = vcpu_guest_cr0(), cr4 = vcpu_guest_cr4(), root;
	int err;

	s->g.cr0 = cr0;
	s->g.cr4 = cr4;
	s->g.efer = v->gefer;
	vmcs_write(GUEST_CR0, vmx_spt_cr0_real(cr0));
	vmcs_write(GUEST_CR4, vmx_spt_cr4_real(cr4, cr0));
	shadow_mark_stale(s);   /* these writes flush every PCID, global entries too (SDM Vol. 3A, 4.10.4.1) */
	if ((err = shadow_cr3_write(s, v->gcr3, &root)))
		return err;
	vmcs_write(GUEST_CR3, root);
	v->sh_synced = paging_key(v);
	return 0;
}

static int sync_failed(struct vcpu *v, int err, const char *what)
{
	if (err == -ENOMEM)
		return vm_stop(v, "out of memory for shadow page tables (%s), rip 0x%lx", what, vmcs_read(GUEST_RIP));
	if (err == -EINVAL && (v->gefer & EFER_LMA))
		return vm_stop(v, "5-level paging is not supported with paging=shadow (%s)", what);
	return vm_stop(v, "%s with PAE PDPTEs at GPA 0x%lx %s, rip 0x%lx", what, v->gcr3 & 0xffffffe0,
		       err == -EINVAL ? "having reserved bits set" : "outside RAM", vmcs_read(GUEST_RIP));
}

int vmx_spt_run(struct vcpu *v)
{
	int err;

	if (!(vcpu_guest_cr0() & CR0_PE) && !vmx_of(v)->rm.vm86 && (err = vmx_rm_enter(v)) != HANDLED)
		return err;
	if (v->sh_synced == ~0ull && (err = sync(v)))
		return sync_failed(v, err, "start");
	return HANDLED;
}

void vmx_spt_apply(struct vcpu *v, uint64_t cr3, uint64_t efer)
{
	vmx_rm_reset(v);
	v->gcr3 = cr3;
	v->gefer = efer;
	vmx_set_guest_efer(v, vmx_spt_efer_real(efer));
	v->sh_synced = ~0ull;                /* vmx_spt_run builds the root before the next entry */
}

void vmx_spt_controls_changed(struct vcpu *v)
{
	int err;

	if (v->sh_synced == ~0ull || paging_key(v) == v->sh_synced)
		return;
	/* A MOV to CR0 that left protected mode (LMSW never clears PE, SDM Vol. 2A, LMSW): real mode from here
	 * on runs in vm86 mode as after a SIPI, or the guest stops with vmx_rm_enter's reason when its
	 * segments keep protected-mode caches vm86 mode cannot hold (SDM Vol. 3C, 27.3.1.2). */
	if (!(vcpu_guest_cr0() & CR0_PE) && !vmx_of(v)->rm.vm86 && vmx_rm_enter(v) != HANDLED)
		return;
	if ((err = sync(v)))
		sync_failed(v, err, "a paging-control write");
}

/* --- exits -------------------------------------------------------------------------------------- */

int vmx_spt_cr3(struct vcpu *v, unsigned access, unsigned gpr)
{
	struct shadow *s = &v->sh;
	uint64_t val, root;
	bool keep = false;
	int err;

	if (access == VCPU_CR_READ) {          /* MOV from CR3: the guest's own (SDM Vol. 2B, MOV) */
		vcpu_set_gpr(v, gpr, v->gcr3);
		return RETIRED;
	}
	val = vcpu_get_gpr(v, gpr);
	if (!(v->gefer & EFER_LMA))
		val &= 0xffffffff;
	/* MOV to CR3 with PCIDE: bit 63 asks to keep the PCID's translations and is not stored (SDM Vol.
	 * 2B, MOV; Vol. 3A, 4.10.4.1): the PCID's cached root is then taken without revalidation
	 * (shadow_cr3_load_keep). Linux's page-table isolation writes CR3 so on every kernel entry and
	 * exit. Bits from MAXPHYADDR up (but 63) are reserved: #GP(0). */
	if (vcpu_guest_cr4() & CR4_PCIDE) {
		keep = val >> 63;
		val &= ~(1ull << 63);
	}
	if (val & ~((1ull << cpu_phys_bits()) - 1)) {
		vcpu_inject_exception(v, VEC_GP, true, 0);
		return HANDLED;
	}
	s->g.cr0 = vcpu_guest_cr0();
	s->g.cr4 = vcpu_guest_cr4();
	s->g.efer = v->gefer;
	err = keep ? shadow_cr3_load_keep(s, val, &root) : shadow_cr3_write(s, val, &root);
	if (err == -EINVAL && !(v->gefer & EFER_LMA)) {
		vcpu_inject_exception(v, VEC_GP, true, 0);   /* reserved PDPTE bits (SDM Vol. 3A, 4.4.1) */
		return HANDLED;
	}
	if (err)
		return sync_failed(v, err, "MOV to CR3");
	v->gcr3 = val;
	vmcs_write(GUEST_CR3, root);
	return RETIRED;
}

int vmx_spt_invlpg(struct vcpu *v, uint64_t gva)
{
	shadow_invlpg(&v->sh, gva);
	return RETIRED;
}

void vmx_spt_invpcid(struct vcpu *v, unsigned type, unsigned pcid, uint64_t gva)
{
	shadow_invpcid(&v->sh, type, pcid, gva);
}

/* A #PF in the shadow (SDM Vol. 3C, 28.2.1: the exit qualification is the linear address; the error
 * code is the exit's, 28.2.2). A #PF met while another event was delivered (the saved vectoring
 * event, exit.c): a shadow fill re-enters and the event is delivered again; the guest's own #PF on a
 * #PF's delivery is a #DF (SDM Vol. 3A, 7.15, Table 7-5), on any other event the #PF is delivered in
 * its place (a hardware interrupt so met is lost: the guest's IDT or stack unmapped in its own
 * tables is a guest that is broken anyway). */
int vmx_spt_page_fault(struct vcpu *v, uint64_t gva, uint32_t error)
{
	struct shadow *s = &v->sh;
	struct shadow_fault f;
	struct vcpu_exit e = { .kind = VCPU_EXIT_NPF };

	s->g.cpl = vcpu_get_cpl(v);
	s->g.rflags = vmcs_read(GUEST_RFLAGS);
	switch (shadow_page_fault(s, gva, error, &f)) {
	case SHADOW_FILLED:
	case SHADOW_RETRY:
		return HANDLED;
	case SHADOW_INJECT:
		if (vmx_of(v)->event.valid && (vmx_of(v)->event.info & (INTR_TYPE_MASK | 0xff)) == (INTR_TYPE_HW_EXCEPTION | VEC_PF)) {
			vcpu_inject_exception(v, VEC_DF, true, 0);
			return HANDLED;
		}
		vcpu_set_cr2(v, f.cr2);
		vcpu_inject_exception(v, VEC_PF, true, f.pf_error);
		return HANDLED;
	case SHADOW_GPA:
		/* Not backed yet (first touch), or not RAM (MMIO): as an EPT violation at that GPA. */
		e.gpa = f.gpa;
		e.mem.access = error & GPT_PF_ID ? VCPU_MEM_FETCH : error & GPT_PF_W ? VCPU_MEM_WRITE : VCPU_MEM_READ;
		return vcpu_handle_npf(v, &e);
	case SHADOW_TABLE_GPA:
		return vm_stop(v, "a paging structure of the guest at GPA 0x%lx is not in RAM (linear address 0x%lx), "
			       "rip 0x%lx", f.gpa, gva, vmcs_read(GUEST_RIP));
	case SHADOW_NOMEM:
		return vm_stop(v, "out of memory for shadow page tables at linear address 0x%lx, rip 0x%lx", gva,
			       vmcs_read(GUEST_RIP));
	default:
		return vm_stop(v, "a paging mode shadow paging does not support (5-level), rip 0x%lx",
			       vmcs_read(GUEST_RIP));
	}
}
