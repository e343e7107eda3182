/* Memory exits: second-level page faults (EPT violations, NPFs: first touch of a lazy guest's RAM,
 * or an access outside it), the MMIO instruction fetched through the guest's page tables, decoded
 * (vcpu/decode.c) and handed to the device at that address (vdev_mmio), and the APIC accesses APIC
 * virtualization leaves to software. Vendor-neutral: over vcpu/guest.h. */
#include "lib/string.h"
#include "vcpu/handler.h"

int vcpu_gpa_read(void *arg, uint64_t gpa, void *dst, unsigned len)
{
	return gmem_read(arg, gpa, dst, len) ? -1 : 0;
}

/* A/D updates (GPT_ACC_SET_AD): a locked compare-exchange on guest memory, as the CPU's (SDM Vol. 3A,
 * 4.8). 0 replaced, 1 the entry held something else, -1 not RAM (struct gpt_ctx). */
int vcpu_gpa_cmpxchg(void *arg, uint64_t gpa, uint64_t old, uint64_t val, unsigned len)
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

void vcpu_gpt_context(struct vcpu *v, struct gpt_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->cr0 = vcpu_get_cr0(v);
	c->cr3 = vcpu_get_cr3(v);
	c->cr4 = vcpu_get_cr4(v);
	c->efer = vcpu_get_efer(v);
	if ((c->cr0 & GPT_CR0_PG) && (c->cr4 & GPT_CR4_PAE) && !(c->efer & GPT_EFER_LMA))
		for (unsigned i = 0; i < 4; i++)         /* PAE paging's only (SDM Vol. 3A, 4.4.1) */
			c->pdpte[i] = vcpu_get_pdpte(v, i);
	c->phys_bits = cpu_phys_bits();
	c->cpl = vcpu_get_cpl(v);
	c->read_gpa = vcpu_gpa_read;
	c->cmpxchg_gpa = vcpu_gpa_cmpxchg;
	c->arg = &v->vm->mem;
}

/* Writes a value loaded by an emulated MOV into its register, as the CPU would: 8- and 16-bit loads
 * keep the rest of the register, 32-bit ones clear bits 63:32 (SDM Vol. 1, 3.4.1.1). MOVSX and
 * MOVSXD sign-extend from the source's size, 1, 2 or 4 bytes (SDM Vol. 2B, MOVSX/MOVSXD). */
static void load_register(struct vcpu *v, const struct mmio_insn *m, uint64_t val)
{
	uint64_t old = vcpu_get_gpr(v, m->reg);
	unsigned size = m->dst_size ? m->dst_size : m->size;

	if (m->sign_extend)
		val = m->size == 1 ? (uint64_t)(int64_t)(int8_t)val :
		      m->size == 2 ? (uint64_t)(int64_t)(int16_t)val : (uint64_t)(int64_t)(int32_t)val;
	switch (size) {
	case 1:
		val = m->high8 ? (old & ~0xff00ull) | ((val & 0xff) << 8) : (old & ~0xffull) | (val & 0xff);
		break;
	case 2:
		val = (old & ~0xffffull) | (val & 0xffff);
		break;
	case 4:
		val &= 0xffffffffull;
		break;
	default:
		break;
	}
	vcpu_set_gpr(v, m->reg, val);
}

/* The operand of an emulated instruction in guest RAM (vcpu_emulate_store): a store, or XCHG's
 * exchange, locked as the instruction is whatever its prefixes (SDM Vol. 2B, XCHG), so that another
 * vCPU's write to the same bytes is not lost between a read and a write. The old value in a->value. */
static int ram_access(struct vcpu *v, struct vdev_access *a, bool xchg)
{
	void *p = gmem_hva(&v->vm->mem, a->addr, a->size);
	uint64_t val = a->value;

	if (!p)
		return -1;
	if (!xchg) {
		memcpy(p, &val, a->size);                /* little-endian: the low bytes */
		return 0;
	}
	switch (a->size) {
	case 1: val = __atomic_exchange_n((uint8_t *)p, (uint8_t)val, __ATOMIC_SEQ_CST); break;
	case 2: val = __atomic_exchange_n((uint16_t *)p, (uint16_t)val, __ATOMIC_SEQ_CST); break;
	case 4: val = __atomic_exchange_n((uint32_t *)p, (uint32_t)val, __ATOMIC_SEQ_CST); break;
	default: val = __atomic_exchange_n((uint64_t *)p, val, __ATOMIC_SEQ_CST); break;
	}
	a->value = val;
	return 0;
}

/* The linear address of the decoded memory operand (vcpu/decode.h): its offset truncated to the
 * address size, plus its segment's base, of which 64-bit mode keeps only FS's and GS's (SDM Vol. 3A,
 * 3.4.4; 3.7.4; Vol. 2A, 2.2.1.6 for RIP-relative). */
static uint64_t operand_linear(struct vcpu *v, const struct mmio_insn *m, enum cpu_mode mode,
			       uint64_t next_rip)
{
	uint64_t off = m->disp, lin;

	if (m->rip_rel)
		off += next_rip;
	if (m->base >= 0)
		off += vcpu_get_gpr(v, (unsigned)m->base);
	if (m->index >= 0)
		off += vcpu_get_gpr(v, (unsigned)m->index) * m->scale;
	if (m->asz < 8)
		off &= (1ull << (8 * m->asz)) - 1;
	lin = off;
	if (mode != MODE_LONG64 || m->seg == VCPU_FS || m->seg == VCPU_GS)
		lin += vcpu_get_seg(v, (enum vcpu_seg_reg)m->seg).base;
	return mode == MODE_LONG64 ? lin : lin & 0xffffffffull;
}

/* The data access at a guest-physical address that exited (an EPT violation gives no instruction
 * length or operands, SDM Vol. 3C, 28.2.5; nor does an NPF without decode assists, AMD APM Vol. 2,
 * 15.8.4, nor a #PF): fetch the instruction through the guest's page tables, decode it
 * (vcpu/decode.c: the MOV family and XCHG), perform its access against the device model at that
 * address (MMIO) or, `ram`, guest RAM at the linear address `gva` (whose page the caller translated
 * to `gpa`), finish the instruction. VDEV_UNCLAIMED when no device is there. `what` names the access
 * in the stop messages. */
static int emulate_access(struct vcpu *v, uint64_t gpa, uint64_t gva, bool ram, const char *what)
{
	uint64_t rip = vcpu_get_rip(v), linear;
	enum cpu_mode mode = guest_mode(v);
	struct vdev_access a = { gpa, 0, false, 0, v->index };
	struct gpt_result res;
	struct gpt_ctx ctx;
	struct mmio_insn m;
	uint8_t insn[15];
	unsigned n = sizeof(insn);
	enum vdev_result r;

	linear = mode == MODE_LONG64 ? rip : (vcpu_get_seg(v, VCPU_CS).base + rip) & 0xffffffffull;
	vcpu_gpt_context(v, &ctx);
	/* Up to 15 bytes, or as many as the code's page has if the next one is not mapped. */
	if (gpt_read(&ctx, linear, insn, n, true, &res)) {
		n = 0x1000 - (linear & 0xfff);
		if (n >= sizeof(insn) || gpt_read(&ctx, linear, insn, n, true, &res))
			return vm_stop(v, "cannot fetch the instruction at rip 0x%lx that accessed %s at GPA 0x%lx",
				       rip, what, gpa);
	}
	if (decode_mmio(insn, n, mode, &m) || (ram && !m.write && !m.xchg))
		return vm_stop(v, "%s at GPA 0x%lx by an instruction not emulated (bytes %02x %02x %02x %02x), "
			       "rip 0x%lx", what, gpa, insn[0], insn[1], insn[2], insn[3], rip);
	/* The faulting address must be where the operand begins, and the operand within the page: a
	 * store split across two pages faults with CR2 on the second page's first byte (its part on the
	 * first page was allowed), and the other page may translate anywhere. A guest's rarity: stopped. */
	if (ram && operand_linear(v, &m, mode, rip + m.len) != gva)
		return vm_stop(v, "%s at linear 0x%lx by an instruction whose operand begins at 0x%lx, not "
			       "emulated, rip 0x%lx", what, gva, operand_linear(v, &m, mode, rip + m.len), rip);
	if (ram && (gpa & 0xfff) + m.size > 0x1000)
		return vm_stop(v, "%s at GPA 0x%lx: %u bytes across the page's end, not emulated, rip 0x%lx", what,
			       gpa, m.size, rip);
	a.size = m.size;
	if (m.write || m.xchg) {
		uint64_t val = m.reg < 0 ? m.imm : vcpu_get_gpr(v, m.reg) >> (m.high8 ? 8 : 0);

		a.write = true;
		a.value = m.size == 8 ? val : val & ((1ull << (8 * m.size)) - 1);
	}
	if (ram) {                               /* a store or XCHG (checked above): no load */
		if (ram_access(v, &a, m.xchg))
			return vm_stop(v, "%s at GPA 0x%lx: not in RAM, rip 0x%lx", what, gpa, rip);
		if (m.xchg)
			load_register(v, &m, a.value);
		vcpu_skip(v, m.len);
		return HANDLED;
	}
	if (m.xchg) {
		struct vdev_access rd = { gpa, m.size, false, 0, v->index };

		if ((r = vdev_mmio(&v->vm->bus, &rd, rdtsc())) != VDEV_DONE)
			goto failed;
		load_register(v, &m, rd.value);
	}
	if ((r = vdev_mmio(&v->vm->bus, &a, rdtsc())) != VDEV_DONE)
		goto failed;
	if (!a.write)
		load_register(v, &m, a.value);
	vcpu_skip(v, m.len);      /* RF too: 1 after an EPT violation (SDM Vol. 3C, 28.3.3) */
	return HANDLED;
failed:
	if (r == VDEV_UNCLAIMED)
		return VDEV_UNCLAIMED;
	return vm_stop(v, "%s %s at GPA 0x%lx: %s, rip 0x%lx", what, a.write ? "write" : "read", gpa,
		       v->vm->bus.why, rip);
}

static int handle_mmio(struct vcpu *v, uint64_t gpa)
{
	return emulate_access(v, gpa, 0, false, "MMIO");
}

/* A store shadow paging does not map (SHADOW_EMULATE, vcpu/spt.c): the guest's CR0.WP = 0 lets a
 * supervisor write with RFLAGS.AC = 1 into a read-only user page under CR4.SMAP (SDM Vol. 3A, 4.6.1),
 * which the CPU, running the guest with WP = 1, faults at `gva`. The store is done here, at `gpa`, as
 * the CPU would have done it; the page stays read-only for the CPU, so the supervisor accesses SMAP
 * faults keep faulting. An instruction the decoder does not know, or a store across a page's end,
 * stops the guest with its reason. */
int vcpu_emulate_store(struct vcpu *v, uint64_t gva, uint64_t gpa)
{
	return emulate_access(v, gpa, gva, true, "a store with CR0.WP=0 into a read-only user page under SMAP");
}

int vcpu_handle_npf(struct vcpu *v, const struct vcpu_exit *e)
{
	unsigned q = e->mem.access;
	uint64_t gpa = e->gpa;
	const char *kind = q & VCPU_MEM_FETCH ? "fetch" : q & VCPU_MEM_WRITE ? "write" : "read";

	switch (gmem_touch(&v->vm->mem, gpa, true)) {
	case GMEM_MAPPED:
		/* First touch: retry the access, now mapped, and the event it interrupted, if any.
		 * Clearing the chunk was host time spent for the guest: charge it to its slice. */
		return vcpu_slice_left(v);
	case GMEM_PRESENT:
		if (!(q & VCPU_MEM_MAPPED)) {   /* it was not mapped when we faulted: another vCPU mapped it */
			return HANDLED;
		}
		return vm_stop(v, "EPT violation %s at GPA 0x%lx (page permissions %s%s%s), rip 0x%lx", kind, gpa,
			       q & VCPU_MEM_READABLE ? "r" : "-", q & VCPU_MEM_WRITABLE ? "w" : "-",
			       q & VCPU_MEM_EXECUTABLE ? "x" : "-", vcpu_get_rip(v));
	case GMEM_NOMEM:
		return vm_stop(v, "out of memory at GPA 0x%lx", gpa);
	case GMEM_OUTSIDE:
	default:
		/* An event's delivery or the CPU's page walk into a device: the instruction at RIP did not
		 * make that access, so emulating it would be wrong; the CPU's own access is not emulated. */
		if (q & VCPU_MEM_IMPLICIT)
			return vm_stop(v, "EPT violation %s at GPA 0x%lx outside RAM by an event's delivery or a walk "
				       "of the guest's page tables (not emulated), rip 0x%lx", kind, gpa, vcpu_get_rip(v));
		if (!(q & VCPU_MEM_FETCH)) {   /* a data access outside RAM: a device's, if one claims it */
			int r = handle_mmio(v, gpa);

			if (r != VDEV_UNCLAIMED)
				return r;
		}
		return vm_stop(v, "EPT violation %s at GPA 0x%lx, rip 0x%lx", kind, gpa, vcpu_get_rip(v));
	}
}

/* An APIC access APIC virtualization does not complete (SDM Vol. 3C, 30.4: a read of the current
 * count or PPR, a write to a read-only register...) is fault-like: it is emulated like any local-APIC
 * MMIO, decoding the instruction. (The trap-like APIC write and the EOI-induced exit are VMX's own:
 * vmx/guest.c and the dispatcher, vmx/exit.c.) */
int vcpu_handle_apic_access(struct vcpu *v, const struct vcpu_exit *e)
{
	uint64_t gpa = vlapic_mmio_base(&v->lapic) + (e->gpa & 0xfff);
	int r;

	if (!(e->mem.access & (VCPU_MEM_READ | VCPU_MEM_WRITE)))
		return vm_stop(v, "local APIC access at offset 0x%lx other than a data read or write (an "
			       "instruction fetch or event delivery through the APIC page), rip 0x%lx",
			       e->gpa & 0xfff, vcpu_get_rip(v));
	r = handle_mmio(v, gpa);
	return r == VDEV_UNCLAIMED ? vm_stop(v, "local APIC access at GPA 0x%lx not emulated, rip 0x%lx", gpa,
					       vcpu_get_rip(v)) : r;
}
