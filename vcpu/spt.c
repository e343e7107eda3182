/* Shadow paging's vendor-neutral half (paging=shadow, issue 16): the guest's own CR3 and IA32_EFER
 * (v->gcr3, v->gefer: the CPU runs on the shadow root with EFER.NXE forced on), which root the shadow
 * runs for the guest's paging controls, and what a MOV to CR3, INVLPG, INVPCID and #PF mean for it.
 * The back ends (vmx/spt.c, svm/spt.c) bring the exits here and load what is decided through the
 * vendor interface (vcpu_spt_set_controls, vcpu_spt_set_root, vcpu_spt_flush: vcpu/guest.h). */
#include "lib/errno.h"
#include "vcpu/backend.h"
#include "vcpu/handler.h"
#include "vcpu/snapshot.h"
#include "vcpu/spt.h"

/* The guest's paging controls a change of which re-roots the shadow (shadow_cr3_write: writes of
 * them flush the TLB too, SDM Vol. 3A, 4.10.4.1; AMD APM Vol. 2, 5.5.3). */
#define SPT_CR0_KEY (CR0_PE | CR0_PG | CR0_WP)
#define SPT_CR4_KEY (CR4_PAE | GPT_CR4_PSE | CR4_PGE | CR4_PCIDE | GPT_CR4_SMEP | GPT_CR4_SMAP)
#define SPT_EFER_KEY (EFER_LMA | EFER_NXE)

/* --- the shadow's view of the guest ------------------------------------------------------------ */

/* The GPA map: RAM only, as backed now. Everything else (the local APIC, the I/O APIC, the hole) is
 * refused, so that an access there faults and reaches the device models (vcpu_spt_page_fault). */
int vcpu_spt_map_gpa(void *arg, uint64_t gpa, uint64_t *hpa, uint64_t *size, unsigned *rights)
{
	struct vcpu *v = arg;

	if (gmem_lookup(&v->vm->mem, gpa, hpa, size))
		return -1;
	*rights = SHADOW_MAP_W | SHADOW_MAP_X;
	return 0;
}

void vcpu_spt_init(struct vcpu *v)
{
	struct shadow *s = &v->sh;

	s->g.read_gpa = vcpu_gpa_read;
	s->g.cmpxchg_gpa = vcpu_gpa_cmpxchg;    /* A/D updates, locked as the CPU's (vcpu/mmio.c) */
	s->g.arg = &v->vm->mem;
	s->g.phys_bits = cpu_phys_bits();
	s->map_gpa = vcpu_spt_map_gpa;
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
	return (vcpu_get_cr0(v) & SPT_CR0_KEY) | (vcpu_get_cr4(v) & SPT_CR4_KEY) << 32 |
	       (v->gefer & SPT_EFER_KEY) << 40;
}

/* The guest's paging state into the shadow's walker (shadow_cr3_write reads it). */
static void take_controls(struct vcpu *v)
{
	struct shadow *s = &v->sh;

	s->g.cr0 = vcpu_get_cr0(v);
	s->g.cr4 = vcpu_get_cr4(v);
	s->g.efer = v->gefer;
}

void vcpu_spt_flush_dropped(struct vcpu *v)
{
	uint64_t gva;

	switch (shadow_take_flush(&v->sh, &gva)) {
	case SHADOW_FLUSH_PAGE:
		vcpu_spt_flush(v, gva);
		break;
	case SHADOW_FLUSH_ALL:
		vcpu_spt_flush(v, ~0ull);
		break;
	default:
		break;
	}
}

/* Takes the guest's paging controls into the shadow and the CPU: the real CR0/CR4, and the root for
 * the guest's CR3 in its paging mode. 0, or shadow_cr3_write's error. */
static int sync(struct vcpu *v)
{
	uint64_t root;
	int err;

	take_controls(v);
	vcpu_spt_set_controls(v);
	shadow_mark_stale(&v->sh);   /* these writes flush every PCID, global entries too (SDM Vol. 3A, 4.10.4.1) */
	err = shadow_cr3_write(&v->sh, v->gcr3, &root);
	vcpu_spt_flush_dropped(v);
	if (err)
		return err;
	vcpu_spt_set_root(v, root);
	v->sh_synced = paging_key(v);
	return 0;
}

static int sync_failed(struct vcpu *v, int err, const char *what)
{
	if (err == -ENOMEM)
		return vm_stop(v, "out of memory for shadow page tables (%s), rip 0x%lx", what, vcpu_get_rip(v));
	if (err == -EINVAL && (v->gefer & EFER_LMA))
		return vm_stop(v, "5-level paging is not supported with paging=shadow (%s)", what);
	return vm_stop(v, "%s with PAE PDPTEs at GPA 0x%lx %s, rip 0x%lx", what, v->gcr3 & 0xffffffe0,
		       err == -EINVAL ? "having reserved bits set" : "outside RAM", vcpu_get_rip(v));
}

int vcpu_spt_run(struct vcpu *v)
{
	int err;

	if (v->sh_synced == ~0ull && (err = sync(v)))
		return sync_failed(v, err, "start");
	return HANDLED;
}

void vcpu_spt_apply(struct vcpu *v, uint64_t cr3, uint64_t efer)
{
	v->gcr3 = cr3;
	v->gefer = efer;
	v->sh_synced = ~0ull;                /* vcpu_spt_run builds the root before the next entry */
}

bool vcpu_spt_stale(const struct vcpu *v)
{
	return v->sh_synced != ~0ull && paging_key((struct vcpu *)v) != v->sh_synced;
}

void vcpu_spt_resync(struct vcpu *v)
{
	int err;

	if ((err = sync(v)))
		sync_failed(v, err, "a paging-control write");
}

void vcpu_spt_controls_changed(struct vcpu *v)
{
	if (vcpu_spt_stale(v))
		vcpu_spt_resync(v);
}

/* --- exits -------------------------------------------------------------------------------------- */

int vcpu_spt_cr3(struct vcpu *v, unsigned access, unsigned gpr)
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
	if (vcpu_get_cr4(v) & CR4_PCIDE) {
		keep = val >> 63;
		val &= ~(1ull << 63);
	}
	if (val & ~((1ull << cpu_phys_bits()) - 1)) {
		vcpu_inject_exception(v, VEC_GP, true, 0);
		return HANDLED;
	}
	take_controls(v);
	err = keep ? shadow_cr3_load_keep(s, val, &root) : shadow_cr3_write(s, val, &root);
	vcpu_spt_flush_dropped(v);
	if (err == -EINVAL && !(v->gefer & EFER_LMA)) {
		vcpu_inject_exception(v, VEC_GP, true, 0);   /* reserved PDPTE bits (SDM Vol. 3A, 4.4.1) */
		return HANDLED;
	}
	if (err)
		return sync_failed(v, err, "MOV to CR3");
	v->gcr3 = val;
	vcpu_spt_set_root(v, root);
	return RETIRED;
}

int vcpu_spt_invlpg(struct vcpu *v, uint64_t gva)
{
	shadow_invlpg(&v->sh, gva);
	vcpu_spt_flush_dropped(v);
	return RETIRED;
}

void vcpu_spt_invpcid(struct vcpu *v, unsigned type, unsigned pcid, uint64_t gva)
{
	shadow_invpcid(&v->sh, type, pcid, gva);
	vcpu_spt_flush_dropped(v);
}

/* Does `gva` lie in a table the CPU reaches by implicit supervisor accesses: the GDT, the LDT, the IDT
 * or the TSS (SDM Vol. 3A, 4.6)? Read from the back end's snapshot: a rare path. */
static bool in_system_table(struct vcpu *v, uint64_t gva)
{
	struct vcpu_snapshot s = { 0 };
	const struct vcpu_seg *ldt = &s.seg[VCPU_LDTR], *tss = &s.seg[VCPU_TR];

	if (!vcpu_backend->vcpu_snapshot(v, &s))
		return false;
	return gva - s.gdtr_base <= s.gdtr_limit || gva - s.idtr_base <= s.idtr_limit ||
	       (!ldt->unusable && gva - ldt->base <= ldt->limit) || (!tss->unusable && gva - tss->base <= tss->limit);
}

/* A #PF in the shadow. One met while another event was delivered (the back end re-delivers that
 * event at the next entry): a shadow fill re-enters and the event is delivered again; the guest's own
 * #PF on a #PF's delivery is a #DF (SDM Vol. 3A, 7.15, Table 7-5), on a #DF's a shutdown, which stops
 * the guest as a triple fault does (7.15, Interrupt 8: "the processor enters shutdown mode"), on any
 * other event the #PF is delivered in its place (Table 7-5 handles a contributory exception and a
 * #PF serially; a hardware interrupt so met is lost: the guest's IDT or stack unmapped in its own
 * tables is a guest that is broken anyway). A fill of a present shadow entry (P = 1 in the
 * error code: the write that sets the guest's D bit, a CR0.WP=0 copy) widens it; the fault itself
 * dropped what the CPU had cached for that address (SDM Vol. 3A, 4.10.4.1), and the shadow's request
 * (vcpu_spt_flush_dropped) makes sure. A fill that reclaimed tables at the bound dropped entries of
 * the current root: the request is then everything. */
int vcpu_spt_page_fault(struct vcpu *v, uint64_t gva, uint32_t error, int delivering)
{
	struct shadow *s = &v->sh;
	struct shadow_fault f;
	struct vcpu_exit e = { .kind = VCPU_EXIT_NPF };
	enum shadow_pf r;

	s->g.cpl = vcpu_get_cpl(v);
	s->g.rflags = vcpu_get_rflags(v);
	r = shadow_page_fault(s, gva, error, &f);
	vcpu_spt_flush_dropped(v);
	switch (r) {
	case SHADOW_FILLED:
	case SHADOW_RETRY:
		return HANDLED;
	case SHADOW_EMULATE:
		/* An implicit write (a descriptor's accessed or busy flag, a TSS on a task switch) that
		 * the error code showed as explicit: SMAP faults it whatever RFLAGS.AC (SDM Vol. 3A,
		 * 4.6.1), so the guest's #PF, present, write, supervisor (4.7). */
		if (in_system_table(v, f.cr2)) {
			f.pf_error = GPT_PF_P | GPT_PF_W;
			goto inject;
		}
		/* An instruction's store (vcpu/mmio.c decodes it); not an event delivery's push, which
		 * nothing here can redo (the back end has that event queued again). */
		if (delivering >= 0 || vcpu_event_queued(v))
			return vm_stop(v, "an event's delivery stored into the read-only user page at linear 0x%lx "
				       "(CR0.WP=0, CR4.SMAP): not emulated, rip 0x%lx", f.cr2, vcpu_get_rip(v));
		return vcpu_emulate_store(v, f.cr2, f.gpa);
	case SHADOW_INJECT:
	inject:
		if (delivering == VEC_DF)
			return vm_stop(v, "triple fault, rip 0x%lx", vcpu_get_rip(v));
		if (delivering == VEC_PF) {
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
		if (delivering >= 0 || vcpu_event_queued(v))
			e.mem.access |= VCPU_MEM_IMPLICIT;
		return vcpu_handle_npf(v, &e);
	case SHADOW_TABLE_GPA:
		return vm_stop(v, "a paging structure of the guest at GPA 0x%lx is not in RAM (linear address 0x%lx), "
			       "rip 0x%lx", f.gpa, gva, vcpu_get_rip(v));
	case SHADOW_NOMEM:
		return vm_stop(v, "out of memory for shadow page tables at linear address 0x%lx, rip 0x%lx", gva,
			       vcpu_get_rip(v));
	default:
		return vm_stop(v, "a paging mode shadow paging does not support (5-level), rip 0x%lx", vcpu_get_rip(v));
	}
}
