/* The vendor interface of the neutral vCPU logic on VMX (vcpu/guest.h: vmx_NAME for each vcpu_NAME):
 * the guest state in the current VMCS, in neutral formats; and each exit the neutral handlers take,
 * read from the VMCS into a struct vcpu_exit (vcpu/exit.h). */
#include "arch/x86/debugreg.h"
#include "arch/x86/trap.h"
#include "vcpu/guest.h"
#include "vcpu/handler.h"
#include "vmx/exit.h"
#include "vmx/vmx.h"
#include "vmx/neutral.h"
#include "vmx/skip.h"
#include "vmx/spt.h"
#include "vmx/vmcs.h"

/* The rest of finishing an instruction (skip_bytes, vmx/skip.h): blocking by STI or MOV SS covered
 * only that instruction, with RFLAGS.TF a single-step #DB is due after it, and RF is clear. */
void vmx_finish_rest(void)
{
	uint64_t block = vmcs_read(GUEST_INTERRUPTIBILITY_INFO), rflags = vmcs_read(GUEST_RFLAGS);

	if (block & 3)
		vmcs_write(GUEST_INTERRUPTIBILITY_INFO, block & ~3ull);
	if (rflags & RFLAGS_TF)
		vmcs_write(GUEST_PENDING_DBG_EXCEPTIONS, vmcs_read(GUEST_PENDING_DBG_EXCEPTIONS) | DR6_BS);
	if (rflags & RFLAGS_RF)
		vmcs_write(GUEST_RFLAGS, rflags & ~RFLAGS_RF);
}

void vmx_skip(struct vcpu *v, unsigned len)
{
	(void)v;
	skip_bytes(vmcs_read(GUEST_RIP), len);
}

/* The guest's view (the CR0 read shadow; RFLAGS as vmx_get_rflags gives it) and CS's access rights. */
enum cpu_mode vmx_get_mode(struct vcpu *v)
{
	unsigned cs = vmx_get_seg(v, VCPU_CS).attr;

	return cpu_mode_of(vmx_get_cr0(v) & CR0_PE, vmx_get_rflags(v) & RFLAGS_VM, vmx_get_efer(v) & EFER_LMA,
			   cs & SEG_ATTR_L, cs & SEG_ATTR_DB);
}

bool vmx_event_queued(struct vcpu *v)
{
	return vmx_of(v)->event.valid;
}

void vmx_finish_instruction(struct vcpu *v)
{
	(void)v;
	vmx_finish_rest();
}

/* RSP is in the VMCS (SDM Vol. 3C, 25.4.1), the others where the exit stub saved them. */
static uint64_t *gpr_slot(struct vcpu *v, unsigned n)
{
	struct guest_regs *r = &v->regs;
	uint64_t *regs[16] = { &r->rax, &r->rcx, &r->rdx, &r->rbx, NULL, &r->rbp, &r->rsi,
			       &r->rdi, &r->r8, &r->r9, &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15 };
	return regs[n & 15];
}

uint64_t vmx_get_gpr(struct vcpu *v, unsigned n)
{
	return (n & 15) == 4 ? vmcs_read(GUEST_RSP) : *gpr_slot(v, n);
}

void vmx_set_gpr(struct vcpu *v, unsigned n, uint64_t val)
{
	if ((n & 15) == 4)
		vmcs_write(GUEST_RSP, val);
	else
		*gpr_slot(v, n) = val;
}

uint64_t vmx_get_rip(struct vcpu *v)
{
	(void)v;
	return vmcs_read(GUEST_RIP);
}

uint64_t vmx_get_rflags(struct vcpu *v)
{
	(void)v;
	return vmcs_read(GUEST_RFLAGS);
}

void vmx_set_rflags(struct vcpu *v, uint64_t rflags)
{
	(void)v;
	vmcs_write(GUEST_RFLAGS, rflags);
}

uint64_t vmx_get_cr0(struct vcpu *v)
{
	(void)v;
	return vcpu_guest_cr0();
}

/* With paging=shadow the VMCS holds the shadow root: the guest's CR3 is kept in v (vmx/spt.c). */
uint64_t vmx_get_cr3(struct vcpu *v)
{
	return vmx_spt_on(v) ? v->gcr3 : vmcs_read(GUEST_CR3);
}

uint64_t vmx_get_cr4(struct vcpu *v)
{
	(void)v;
	return vcpu_guest_cr4();
}

uint64_t vmx_get_efer(struct vcpu *v)
{
	return vmx_spt_on(v) ? v->gefer : vmx_guest_efer(v);
}

/* The guest's value in the read shadow, the CPU's (VMX's fixed bits applied) in the guest field
 * (SDM Vol. 3C, 25.6.6). */
void vmx_set_cr0(struct vcpu *v, uint64_t cr0)
{
	vmcs_write(CR0_READ_SHADOW, cr0);
	if (vmx_spt_on(v)) {
		vmcs_write(GUEST_CR0, vmx_spt_cr0_real(cr0));
		vmx_spt_controls_changed(v);
		return;
	}
	vmcs_write(GUEST_CR0, vcpu_cr0_real(cr0));
}

void vmx_set_cr4(struct vcpu *v, uint64_t cr4)
{
	vmcs_write(CR4_READ_SHADOW, cr4);
	if (vmx_spt_on(v)) {
		vmcs_write(GUEST_CR4, vmx_spt_cr4_real(cr4, vcpu_guest_cr0()));
		vmx_spt_controls_changed(v);
		return;
	}
	vmcs_write(GUEST_CR4, vcpu_cr4_real(cr4));
}

/* Both copies: the exit stub's fast path resumes with the CPU's CR2 as it is (the host takes no
 * page faults), vmx_enter loads the saved one. */
void vmx_set_cr2(struct vcpu *v, uint64_t cr2)
{
	v->regs.cr2 = cr2;
	asm volatile("mov %0, %%cr2" : : "r"(cr2) : "memory");
}

/* The "IA-32e mode guest" entry control must equal EFER.LMA at VM entry (SDM Vol. 3C, 27.3.1.1). */
void vmx_set_efer(struct vcpu *v, uint64_t efer)
{
	uint64_t guest = efer;

	if (vmx_spt_on(v))
		efer = vmx_spt_efer_real(efer);
	if ((efer ^ vmx_guest_efer(v)) & EFER_LMA) {
		uint32_t entry = vmcs_read32(VM_ENTRY_CONTROLS);

		vmcs_write(VM_ENTRY_CONTROLS, efer & EFER_LMA ? entry | ENTRY_IA32E_MODE : entry & ~ENTRY_IA32E_MODE);
	}
	vmx_set_guest_efer(v, efer);
	if (vmx_spt_on(v)) {
		bool nxe = (guest ^ v->gefer) & EFER_NXE;

		v->gefer = guest;
		if (nxe)             /* LMA changes come with CR0.PG's (cr.c): re-rooted there */
			vmx_spt_controls_changed(v);
	}
}

uint64_t vmx_cr4_settable(void)
{
	return vmx_caps.cr4_fixed1;
}

unsigned vmx_offers(void)
{
	return (vmx_caps.cpu2 & SEC_INVPCID ? VCPU_OFFERS_INVPCID : 0) |
	       (vmx_caps.cpu2 & SEC_RDTSCP ? VCPU_OFFERS_RDTSCP : 0);
}

bool vmx_pdptes_at_mov(void)
{
	return true;
}

/* With EPT the PDPTEs come from the VMCS on entry (SDM Vol. 3C, 27.3.2.4); without, from CR3, which
 * is the shadow's: the guest's are those the shadow loaded (shadow_cr3_write). */
uint64_t vmx_get_pdpte(struct vcpu *v, unsigned i)
{
	if (vmx_spt_on(v))
		return v->sh.g.pdpte[i & 3];
	return vmcs_read(GUEST_PDPTE0 + 2 * (i & 3));
}

/* On shadow paging nothing to write: the shadow loads the guest's PDPTEs itself, and the VMCS fields
 * exist only on a CPU that can enable EPT (SDM Vol. 3D, B.2.3): Bochs's penryn fails the VMWRITE
 * (VM-instruction error 12, unsupported VMCS component). */
void vmx_set_pdptes(struct vcpu *v, const uint64_t pdpte[4])
{
	if (vmx_spt_on(v))
		return;
	for (unsigned i = 0; i < 4; i++)
		vmcs_write(GUEST_PDPTE0 + 2 * i, pdpte[i]);
}

/* The guest's IA32_PAT: the VMCS field, which VM entry loads, where the CPU has the PAT controls
 * (vmx/vmx.c); else the field does not exist (SDM Vol. 3D, B.2.3) and the value is kept in struct
 * vmx_vcpu for the guest to read back: without EPT its memory types are then those the host's PAT
 * gives its shadow entries' PAT, PCD, PWT bits (as with KVM's shadow MMU, which ignores the guest's PAT). */
uint64_t vmx_get_pat(struct vcpu *v)
{
	if (!(vmx_caps.entry & ENTRY_LOAD_IA32_PAT))
		return vmx_of(v)->pat;
	return vmcs_read(GUEST_IA32_PAT);
}

void vmx_set_pat(struct vcpu *v, uint64_t pat)
{
	if (!(vmx_caps.entry & ENTRY_LOAD_IA32_PAT))
		vmx_of(v)->pat = pat;
	else
		vmcs_write(GUEST_IA32_PAT, pat);
}

void vmx_set_tsc_offset(struct vcpu *v, uint64_t offset)
{
	(void)v;
	vmcs_write(TSC_OFFSET, offset);
}

/* The segment fields sit at fixed distances in the encoding space, ES first, in the sreg order of
 * enum vcpu_seg_reg (SDM Vol. 3D, B.1.2, B.3.3, B.4.3). */
struct vcpu_seg vmx_get_seg(struct vcpu *v, enum vcpu_seg_reg r)
{
	(void)v;
	return vcpu_seg_of_ar(vmcs_read16(GUEST_ES_SELECTOR + 2 * r), vmcs_read(GUEST_ES_BASE + 2 * r),
			      vmcs_read32(GUEST_ES_LIMIT + 2 * r), vmcs_read32(GUEST_ES_AR_BYTES + 2 * r));
}

unsigned vmx_get_cpl(struct vcpu *v)
{
	(void)v;
	return (vmcs_read32(GUEST_SS_AR_BYTES) >> 5) & 3;   /* CPL = SS.DPL (SDM Vol. 3A, 5.5) */
}

/* vmx_queue_exception (vmx/skip.h), out of line for the neutral handlers. */
void vmx_inject_exception(struct vcpu *v, unsigned vector, bool has_code, uint32_t code)
{
	vmx_queue_exception(v, vector, has_code, code);
}

/* --- the exits the neutral handlers take, from the VMCS ---------------------------------------- */

/* Control-register accesses: exit qualification, SDM Vol. 3C, 28.2.1, Table 28-3 (bits 3:0 the
 * register, 5:4 the access type in enum vcpu_cr_access's order, 11:8 the general register, 31:16
 * LMSW's source). */
_Static_assert(VCPU_CR_WRITE == 0 && VCPU_CR_READ == 1 && VCPU_CR_CLTS == 2 && VCPU_CR_LMSW == 3,
	       "SDM Vol. 3C, Table 28-3: access type 0 MOV to CR, 1 MOV from CR, 2 CLTS, 3 LMSW");
int vmx_exit_cr(struct vcpu *v)
{
	uint64_t q = vmcs_read(EXIT_QUALIFICATION);
	struct vcpu_exit e = { .kind = VCPU_EXIT_CR, .len = vmcs_read32(VM_EXIT_INSTRUCTION_LEN),
			       .cr = { q & 15, (q >> 4) & 3, (q >> 8) & 15, 0, q >> 16 } };

	if ((q & 15) == 3 && vmx_spt_on(v))    /* CR3-load/store exiting: paging=shadow only */
		return vmx_retire(vcpu_spt_cr3(v, (q >> 4) & 3, (q >> 8) & 15));
	return vmx_retire(vcpu_handle_cr(v, &e));
}

/* EPT violations: exit qualification, SDM Vol. 3C, 28.2.1, Table 28-7 (bits 2:0 the access, read,
 * write, fetch; bits 5:3 what the entry allowed: VCPU_MEM_*'s bits; bit 7 the guest-linear address
 * is valid, and then bit 8 says the access was to that address's translation, not to a paging
 * structure; both clear for a PDPTE load), and the guest-physical address (28.2.5). An access that
 * delivered an event has the event in the IDT-vectoring information (28.2.4), saved by now. */
_Static_assert(VCPU_MEM_READ == 1 && VCPU_MEM_WRITE == 2 && VCPU_MEM_FETCH == 4 && VCPU_MEM_READABLE == 8 &&
	       VCPU_MEM_WRITABLE == 16 && VCPU_MEM_EXECUTABLE == 32, "SDM Vol. 3C, Table 28-7, bits 5:0");
#define EPT_QUAL_LINEAR      (1u << 7)
#define EPT_QUAL_TRANSLATION (1u << 8)
int vmx_exit_npf(struct vcpu *v)
{
	uint64_t q = vmcs_read(EXIT_QUALIFICATION);
	unsigned acc = q & 0x3f;
	struct vcpu_exit e = { .gpa = vmcs_read(GUEST_PHYSICAL_ADDRESS), .kind = VCPU_EXIT_NPF };

	if ((q & (EPT_QUAL_LINEAR | EPT_QUAL_TRANSLATION)) != (EPT_QUAL_LINEAR | EPT_QUAL_TRANSLATION) ||
	    vmx_of(v)->event.valid)
		acc |= VCPU_MEM_IMPLICIT;
	e.mem.access = (uint8_t)acc;
	return vmx_retire(vcpu_handle_npf(v, &e));
}

/* APIC-access exits: exit qualification, SDM Vol. 3C, 28.2.1, Table 28-6 (bits 11:0 the offset,
 * 15:12 the access type: 0 a linear read, 1 a linear write, others a fetch or event delivery). */
int vmx_exit_apic_access(struct vcpu *v)
{
	uint64_t q = vmcs_read(EXIT_QUALIFICATION);
	unsigned type = (q >> 12) & 0xf;
	struct vcpu_exit e = { .gpa = q & 0xfff, .kind = VCPU_EXIT_APIC_ACCESS,
			       .mem = { type == 0 ? VCPU_MEM_READ : type == 1 ? VCPU_MEM_WRITE : 0 } };

	return vmx_retire(vcpu_handle_apic_access(v, &e));
}

/* APIC-write exits are trap-like: the value is in the virtual-APIC page already, RIP past the
 * instruction (SDM Vol. 3C, 30.4.3.3); the qualification is the register's offset. */
int vmx_exit_apic_write(struct vcpu *v)
{
	vlapic_trapped_write(&v->lapic, vmcs_read(EXIT_QUALIFICATION) & 0xfff, rdtsc());
	return HANDLED;
}

/* INS/OUTS: the I/O qualification `q` (SDM Vol. 3C, 28.2.1, Table 28-5: bits 2:0 size - 1, bit 3
 * IN, bit 4 string, bit 5 REP, bits 31:16 the port) and, when the CPU fills it for INS/OUTS
 * (IA32_VMX_BASIC[54], SDM Vol. 3D, A.1), the instruction-information field (28.2.5, Table 28-8:
 * bits 9:7 address size, bits 17:15 segment, OUTS only). */
int vmx_exit_string_io(struct vcpu *v, uint64_t q)
{
	static int info_valid = -1;
	struct vcpu_exit e = { .kind = VCPU_EXIT_IO, .len = vmcs_read32(VM_EXIT_INSTRUCTION_LEN),
			       .io = { q >> 16, (q & 7) + 1,
				       VCPU_IO_STRING | (q & (1 << 3) ? VCPU_IO_IN : 0) | (q & (1 << 5) ? VCPU_IO_REP : 0),
				       VCPU_IO_NOOPS, VCPU_IO_NOOPS } };

	if (info_valid < 0)
		info_valid = (rdmsr(MSR_IA32_VMX_BASIC) >> 54) & 1;
	if (info_valid) {
		uint32_t info = vmcs_read32(VMX_INSTRUCTION_INFO);

		e.io.asz = (info >> 7) & 7;
		/* Bits 17:15 are undefined for INS (Table 28-8): INS always writes through ES. */
		e.io.seg = q & (1 << 3) ? 0 : (info >> 15) & 7;
	}
	return vmx_retire(vcpu_handle_string_io(v, &e));
}

int vmx_exit_hlt(struct vcpu *v)
{
	struct vcpu_exit e = { .kind = VCPU_EXIT_HLT, .len = vmcs_read32(VM_EXIT_INSTRUCTION_LEN) };

	return vmx_retire(vcpu_handle_hlt(v, &e));
}
