/* Memory exits: EPT violations (first touch of a lazy guest's RAM, or an access outside it), the
 * MMIO instruction fetched through the guest's page tables, decoded (vmx/decode.c) and handed to the
 * device at that address (vdev_mmio), and the APIC-virtualization exits of the local APIC page. */
#include "lib/string.h"
#include "vmx/handler.h"

static int read_gpa(void *arg, uint64_t gpa, void *dst, unsigned len)
{
	return gmem_read(arg, gpa, dst, len) ? -1 : 0;
}

void vmx_gpt_context(struct vcpu *v, struct gpt_ctx *c)
{
	memset(c, 0, sizeof(*c));
	c->cr0 = vcpu_guest_cr0();
	c->cr3 = vmcs_read(GUEST_CR3);
	c->cr4 = vcpu_guest_cr4();
	c->efer = vmcs_read(GUEST_IA32_EFER);
	for (unsigned i = 0; i < 4; i++)
		c->pdpte[i] = vmcs_read(GUEST_PDPTE0 + 2 * i);
	c->phys_bits = cpu_phys_bits();
	c->cpl = (vmcs_read(GUEST_SS_AR_BYTES) >> 5) & 3;   /* CPL = SS.DPL (SDM Vol. 3A, 5.5) */
	c->read_gpa = read_gpa;
	c->arg = &v->vm->mem;
}

/* Writes a value loaded by an emulated MOV into its register, as the CPU would: 8- and 16-bit loads
 * keep the rest of the register, 32-bit ones clear bits 63:32 (SDM Vol. 1, 3.4.1.1). */
static void load_register(struct vcpu *v, const struct mmio_insn *m, uint64_t val)
{
	uint64_t old = get_gpr(v, m->reg);
	unsigned size = m->dst_size ? m->dst_size : m->size;

	if (m->sign_extend)
		val = m->size == 1 ? (uint64_t)(int64_t)(int8_t)val : (uint64_t)(int64_t)(int16_t)val;
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
	set_gpr(v, m->reg, val);
}

/* A data access to a guest-physical address outside RAM: fetch and decode the instruction (an EPT
 * violation gives no instruction length or operands, SDM Vol. 3C, 28.2.5), let the device model at
 * that address answer, finish the instruction. VDEV_UNCLAIMED when no device is there. */
static int handle_mmio(struct vcpu *v, uint64_t gpa)
{
	uint64_t rip = vmcs_read(GUEST_RIP), linear;
	enum cpu_mode mode = guest_mode();
	struct vdev_access a = { gpa, 0, false, 0, v->index };
	struct gpt_result res;
	struct gpt_ctx ctx;
	struct mmio_insn m;
	uint8_t insn[15];
	unsigned n = sizeof(insn);
	enum vdev_result r;

	linear = mode == MODE_LONG64 ? rip : (vmcs_read(GUEST_CS_BASE) + rip) & 0xffffffffull;
	vmx_gpt_context(v, &ctx);
	/* Up to 15 bytes, or as many as the code's page has if the next one is not mapped. */
	if (gpt_read(&ctx, linear, insn, n, true, &res)) {
		n = 0x1000 - (linear & 0xfff);
		if (n >= sizeof(insn) || gpt_read(&ctx, linear, insn, n, true, &res))
			return vm_stop(v, "cannot fetch the instruction at rip 0x%lx that accessed MMIO at GPA 0x%lx",
				       rip, gpa);
	}
	if (decode_mmio(insn, n, mode, &m))
		return vm_stop(v, "MMIO at GPA 0x%lx by an instruction not emulated (bytes %02x %02x %02x %02x), "
			       "rip 0x%lx", gpa, insn[0], insn[1], insn[2], insn[3], rip);
	a.size = m.size;
	if (m.write || m.xchg) {
		uint64_t val = m.reg < 0 ? m.imm : get_gpr(v, m.reg) >> (m.high8 ? 8 : 0);

		a.write = true;
		a.value = m.size == 8 ? val : val & ((1ull << (8 * m.size)) - 1);
		if (m.xchg) {
			struct vdev_access rd = { gpa, m.size, false, 0, v->index };

			if ((r = vdev_mmio(&v->vm->bus, &rd, rdtsc())) != VDEV_DONE)
				goto failed;
			load_register(v, &m, rd.value);
		}
	}
	if ((r = vdev_mmio(&v->vm->bus, &a, rdtsc())) != VDEV_DONE)
		goto failed;
	if (!a.write)
		load_register(v, &m, a.value);
	skip_bytes(rip, m.len);
	return HANDLED;
failed:
	if (r == VDEV_UNCLAIMED)
		return VDEV_UNCLAIMED;
	return vm_stop(v, "MMIO %s at GPA 0x%lx: %s, rip 0x%lx", a.write ? "write" : "read", gpa, v->vm->bus.why, rip);
}

int vmx_handle_ept_violation(struct vcpu *v)
{
	/* Exit qualification for EPT violations. SDM Vol. 3C, 28.2.1, Table 28-7: bits 0-2 the access
	 * (read, write, fetch), bits 3-5 what the entry allowed. */
	uint64_t q = vmcs_read(EXIT_QUALIFICATION), gpa = vmcs_read(GUEST_PHYSICAL_ADDRESS);
	const char *kind = q & 4 ? "fetch" : q & 2 ? "write" : "read";

	switch (gmem_touch(&v->vm->mem, gpa, true)) {
	case GMEM_MAPPED:
		/* First touch: retry the access, now mapped, and the event it interrupted, if any.
		 * Clearing the chunk was host time spent for the guest: charge it to its slice. */
		return vmx_slice_left(v);
	case GMEM_PRESENT:
		if (!(q & 0x38)) {      /* it was not mapped when we faulted: another vCPU mapped it */
			return HANDLED;
		}
		return vm_stop(v, "EPT violation %s at GPA 0x%lx (page permissions %s%s%s), rip 0x%lx", kind, gpa,
			       q & 8 ? "r" : "-", q & 16 ? "w" : "-", q & 32 ? "x" : "-", vmcs_read(GUEST_RIP));
	case GMEM_NOMEM:
		return vm_stop(v, "out of memory at GPA 0x%lx", gpa);
	case GMEM_OUTSIDE:
	default:
		if (!(q & 4)) {          /* a data access outside RAM: a device's, if one claims it */
			int r = handle_mmio(v, gpa);

			if (r != VDEV_UNCLAIMED)
				return r;
		}
		return vm_stop(v, "EPT violation %s at GPA 0x%lx, rip 0x%lx", kind, gpa, vmcs_read(GUEST_RIP));
	}
}


/* APIC virtualization exits (SDM Vol. 3C, 30.4 and 30.1.4). An APIC access the CPU does not
 * virtualize (a read of the current count or PPR, a write to a read-only register...) is fault-like:
 * it is emulated like any local-APIC MMIO, decoding the instruction. An APIC write is trap-like: the
 * value is in the page already, RIP past the instruction. (The EOI-induced exit is the dispatcher's,
 * exit.c: it is on the timer-interrupt path.) */
int vmx_handle_apic_access(struct vcpu *v)
{
	uint64_t q = vmcs_read(EXIT_QUALIFICATION), gpa = vlapic_mmio_base(&v->lapic) + (q & 0xfff);
	unsigned type = (q >> 12) & 0xf;      /* Table 28-6: 0 linear read, 1 linear write, 3 during delivery */
	int r;

	if (type > 1)
		return vm_stop(v, "local APIC access of type %u at offset 0x%lx (an instruction fetch or event "
			       "delivery through the APIC page), rip 0x%lx", type, q & 0xfff, vmcs_read(GUEST_RIP));
	r = handle_mmio(v, gpa);
	return r == VDEV_UNCLAIMED ? vm_stop(v, "local APIC access at GPA 0x%lx not emulated, rip 0x%lx", gpa,
					       vmcs_read(GUEST_RIP)) : r;
}

int vmx_handle_apic_write(struct vcpu *v)
{
	vlapic_trapped_write(&v->lapic, vmcs_read(EXIT_QUALIFICATION) & 0xfff, rdtsc());
	return HANDLED;
}
