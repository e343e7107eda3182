/* VM-exit handlers. One switch on the basic exit reason (SDM Vol. 3D, Appendix C) calls one
 * handle_<reason>(); each returns HANDLED (resume), or an action for the scheduler. A guest's
 * misbehaviour stops that guest, never the hypervisor. */
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "arch/x86/trap.h"
#include "console/printk.h"
#include "lib/format.h"
#include "lib/string.h"
#include "tessera/hypercall.h"
#include "vmx/exit.h"
#include "vmx/vmx.h"

#define HANDLED (-1)  /* resume the guest */

/* The handlers are kept out of line: the dispatcher then stays a short path for the frequent exits
 * (CPUID, I/O, VMCALL), which is what `make bench` measures. */

/* Moves RIP past the instruction that exited (its length: SDM Vol. 3C, 28.2.5), finishing it as
 * the CPU would: blocking by STI or MOV SS covered only that instruction (SDM Vol. 3C, 25.4.2,
 * Table 25-3), and with RFLAGS.TF set a single-step #DB is due after it, which VM entry delivers
 * from the BS bit of the pending debug exceptions (SDM Vol. 3C, 25.4.2 and 27.7.3). */
static __attribute__((noinline)) void finish_instruction_slow(void)
{
	uint64_t block = vmcs_read(GUEST_INTERRUPTIBILITY_INFO);

	if (block & 3)
		vmcs_write(GUEST_INTERRUPTIBILITY_INFO, block & ~3ull);
	if (vmcs_read(GUEST_RFLAGS) & RFLAGS_TF)
		vmcs_write(GUEST_PENDING_DBG_EXCEPTIONS, vmcs_read(GUEST_PENDING_DBG_EXCEPTIONS) | (1u << 14));
}

static inline __attribute__((always_inline)) void skip_instruction(void)
{
	vmcs_write(GUEST_RIP, vmcs_read(GUEST_RIP) + vmcs_read(VM_EXIT_INSTRUCTION_LEN));
	if (__builtin_expect((vmcs_read(GUEST_INTERRUPTIBILITY_INFO) & 3) | (vmcs_read(GUEST_RFLAGS) & RFLAGS_TF), 0))
		finish_instruction_slow();
}

/* Queues a hardware exception for the next entry (SDM Vol. 3C, 27.6). In real mode (CR0.PE = 0,
 * possible with unrestricted guest) exceptions push no error code, and VM entry insists on that
 * (SDM Vol. 3C, 27.2.1.3). */
static void inject_exception(unsigned vector, bool has_code, uint32_t code)
{
	if (!(vmcs_read(GUEST_CR0) & CR0_PE))
		has_code = false;
	vmcs_write(VM_ENTRY_INTR_INFO_FIELD,
		   INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | (has_code ? INTR_INFO_DELIVER_CODE : 0) | vector);
	if (has_code)
		vmcs_write(VM_ENTRY_EXCEPTION_ERROR_CODE, code);
}
#define inject_gp() inject_exception(13, true, 0)

__attribute__((format(printf, 2, 3)))
static int stop(struct vcpu *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	format(v->stop_reason, sizeof(v->stop_reason), fmt, ap);
	va_end(ap);
	return VCPU_STOPPED;
}

static int end_guest(struct vcpu *v, int code)
{
	v->exit_code = code;
	return VCPU_EXITED;
}

/* The general registers numbered as in exit qualifications (SDM Vol. 3C, Table 28-3): 0 RAX, 1 RCX,
 * 2 RDX, 3 RBX, 4 RSP (in the VMCS, not in struct guest_regs), 5 RBP, 6 RSI, 7 RDI, 8-15 R8-R15. */
static uint64_t *gpr_slot(struct vcpu *v, unsigned n)
{
	struct guest_regs *r = &v->regs;
	uint64_t *regs[16] = { &r->rax, &r->rcx, &r->rdx, &r->rbx, NULL, &r->rbp, &r->rsi,
			       &r->rdi, &r->r8, &r->r9, &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15 };
	return regs[n & 15];
}

static uint64_t get_gpr(struct vcpu *v, unsigned n)
{
	return (n & 15) == 4 ? vmcs_read(GUEST_RSP) : *gpr_slot(v, n);
}

static void set_gpr(struct vcpu *v, unsigned n, uint64_t val)
{
	if ((n & 15) == 4)
		vmcs_write(GUEST_RSP, val);
	else
		*gpr_slot(v, n) = val;
}

static bool guest_long_mode(void)
{
	return vmcs_read(GUEST_IA32_EFER) & EFER_LMA;
}

/* An exit during event delivery (an EPT violation on the guest's IDT or stack, first touched) must
 * not lose the event: deliver it again on the next entry (SDM Vol. 3C, 28.2.4 and 29.2.1). */
static __attribute__((noinline)) void reinject_event(void)
{
	uint32_t info = vmcs_read32(IDT_VECTORING_INFO_FIELD);

	if (!(info & INTR_INFO_VALID))
		return;
	vmcs_write(VM_ENTRY_INTR_INFO_FIELD, info & ~(1u << 12)); /* bit 12 is undefined in this field */
	if (info & INTR_INFO_DELIVER_CODE)
		vmcs_write(VM_ENTRY_EXCEPTION_ERROR_CODE, vmcs_read(IDT_VECTORING_ERROR_CODE));
	vmcs_write(VM_ENTRY_INSTRUCTION_LEN, vmcs_read(VM_EXIT_INSTRUCTION_LEN));
}

/* The time left in the slice: without "save VMX-preemption timer value" each entry restarts the
 * timer from the VMCS, and with it host time is not counted (SDM Vol. 3C, 26.5.1). */
static __attribute__((noinline)) int slice_left(struct vcpu *v)
{
	uint64_t now = rdtsc();

	if (now >= v->slice_end)
		return VCPU_PREEMPTED;
	vcpu_set_timer(v->slice_end - now);
	return HANDLED;
}

/* Four characters of a string constant as the little-endian register CPUID returns them in. */
#define SIG4(s, i) ((uint32_t)(uint8_t)(s)[i] | (uint32_t)(uint8_t)(s)[(i) + 1] << 8 | \
		    (uint32_t)(uint8_t)(s)[(i) + 2] << 16 | (uint32_t)(uint8_t)(s)[(i) + 3] << 24)

/* --- CPUID ------------------------------------------------------------------------------------ */

static __attribute__((noinline)) int handle_cpuid(struct vcpu *v)
{
	uint32_t leaf = v->regs.rax, sub = v->regs.rcx;
	struct cpuid_regs r;

	if (leaf >= HV_CPUID_BASE && leaf < 0x50000000u) {
		/* Our own range (0x40000000-0x4FFFFFFF is reserved for hypervisors, SDM Vol. 2A CPUID):
		 * the base leaf names us, nothing beyond it is defined yet. Answered first and without
		 * the host's CPUID: `make bench` times this path. */
		bool base = leaf == HV_CPUID_BASE;

		v->regs.rax = base ? HV_CPUID_BASE + 1 : 0;
		v->regs.rbx = base ? SIG4(HV_CPUID_SIGNATURE, 0) : 0;
		v->regs.rcx = base ? SIG4(HV_CPUID_SIGNATURE, 4) : 0;
		v->regs.rdx = base ? SIG4(HV_CPUID_SIGNATURE, 8) : 0;
		skip_instruction();
		return HANDLED;
	}
	r = cpuid(leaf, sub);
	switch (leaf) {
	case 1:
		/* OSXSAVE mirrors the guest's own CR4, not the host's (SDM Vol. 2A, CPUID, Table 3-10). */
		r.ecx = (r.ecx & ~(1u << 27)) | (vmcs_read(GUEST_CR4) & CR4_OSXSAVE ? 1u << 27 : 0);
		r.ecx &= ~(1u << 5);   /* VMX: not offered to guests (no nested virtualization) */
		r.ecx &= ~(1u << 3);   /* MONITOR/MWAIT: they exit and are not emulated */
		r.ecx &= ~(1u << 21);  /* x2APIC: there is no virtual local APIC yet */
		r.ecx |= 1u << 31;     /* hypervisor present */
		r.edx &= ~(1u << 9);   /* APIC: none yet */
		r.ebx = (r.ebx & 0x00ffffff) | (v->index << 24); /* initial APIC id = vCPU number */
		break;
	case 7:
		if (sub == 0) {
			if (!(vmx_caps.cpu2 & SEC_INVPCID))
				r.ebx &= ~(1u << 10);  /* INVPCID would #UD without the control */
			r.ecx &= ~(1u << 5);       /* WAITPKG: needs a control we do not set */
			r.ecx = (r.ecx & ~(1u << 4)) | (vmcs_read(GUEST_CR4) & (1ull << 22) ? 1u << 4 : 0); /* OSPKE */
			r.edx &= ~((1u << 22) | (1u << 24) | (1u << 25)); /* AMX: its state is not switched */
		}
		break;
	case 0xa:
		r.eax = r.ebx = r.ecx = r.edx = 0; /* no performance monitoring for guests */
		break;
	case 0xd:
		if (sub == 0) {                    /* the XCR0 bits a guest may set (vcpu.c) */
			r.eax &= (uint32_t)vcpu_xcr0_allowed;
			r.edx &= (uint32_t)(vcpu_xcr0_allowed >> 32);
		} else if (sub == 1) {
			r.eax &= ~(1u << 3);       /* XSAVES/XRSTORS: not enabled, they would #UD */
		} else if (sub < 64 && !(vcpu_xcr0_allowed >> sub & 1) && sub != 1) {
			r.eax = r.ebx = r.ecx = r.edx = 0; /* a component the guest cannot enable */
		}
		break;
	case 0x80000001:
		if (!(vmx_caps.cpu2 & SEC_RDTSCP))
			r.edx &= ~(1u << 27);      /* RDTSCP would #UD */
		break;
	default:
		break;
	}
	v->regs.rax = r.eax;
	v->regs.rbx = r.ebx;
	v->regs.rcx = r.ecx;
	v->regs.rdx = r.edx;
	skip_instruction();
	return HANDLED;
}

/* --- VMCALL: the hypercall ABI of include/tessera/hypercall.h ------------------------------------ */

static __attribute__((noinline)) int handle_vmcall(struct vcpu *v)
{
	uint64_t nr = v->regs.rax & 0xffffffff;

	skip_instruction();
	if ((vmcs_read(GUEST_SS_AR_BYTES) >> 5) & 3) {   /* CPL = SS.DPL (SDM Vol. 3A, 5.5) */
		v->regs.rax = (uint64_t)(int64_t)HC_ERR_PERM;
		return HANDLED;
	}
	switch (nr) {
	case HC_EXIT:
		return end_guest(v, (int)v->regs.rbx);
	case HC_YIELD:
		v->regs.rax = 0;
		return VCPU_YIELD;
	case HC_GUEST_INFO:
		v->regs.rax = 0;
		v->regs.rbx = v->vm->id;
		v->regs.rcx = v->vm->mem.size >> 10;
		v->regs.rdx = v->cpu;
		return HANDLED;
	case HC_PUTCHAR:
		vuart_putc(&v->vm->uart, v->vm->name, (char)v->regs.rbx);
		v->regs.rax = 0;
		return HANDLED;
	default:
		v->regs.rax = (uint64_t)(int64_t)HC_ERR_NOSYS;
		return HANDLED;
	}
}

/* --- I/O ---------------------------------------------------------------------------------------- */

static __attribute__((noinline)) int handle_io(struct vcpu *v)
{
	/* Exit qualification for I/O instructions. SDM Vol. 3C, 28.2.1, Table 28-5. */
	uint64_t q = vmcs_read(EXIT_QUALIFICATION);
	unsigned size = (q & 7) + 1;
	bool in = q & (1 << 3), string = q & (1 << 4);
	uint16_t port = q >> 16;
	uint32_t mask = size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
	uint32_t val = v->regs.rax & mask;
	struct vm *vm = v->vm;

	if (string)
		return stop(v, "string I/O (INS/OUTS) at port 0x%x is not supported, rip 0x%lx", port,
			    vmcs_read(GUEST_RIP));
	skip_instruction();
	if (port >= VUART_BASE && port < VUART_BASE + 8) {
		vuart_io(&vm->uart, vm->name, port, in, &val);
	} else if (port == HV_PORT_DEBUG_EXIT && !in) {
		return end_guest(v, (int)val);
	} else {
		/* Nothing there: reads float high, writes vanish, as on an empty ISA bus. */
		if (!(vm->ports_logged[port / 8] & (1 << (port % 8)))) {
			vm->ports_logged[port / 8] |= 1 << (port % 8);
			pr_info("hv: guest %s: %s port 0x%x (no device; %s), reported once\n", vm->name,
				in ? "read from" : "write to", port, in ? "reads as all ones" : "ignored");
		}
		val = mask;
	}
	if (in)                        /* a 32-bit IN zero-extends into RAX, as any 32-bit write does */
		v->regs.rax = size == 4 ? val : (v->regs.rax & ~(uint64_t)mask) | (val & mask);
	/* The preemption timer counts only guest time, and a UART line keeps the host busy for 87 us
	 * a character on the guest's behalf: charge I/O exits to the guest's slice, or a guest that
	 * prints all the time would hold its CPU. */
	return slice_left(v);
}

/* --- MSRs --------------------------------------------------------------------------------------- */

static __attribute__((noinline)) int handle_rdmsr(struct vcpu *v)
{
	uint32_t msr = v->regs.rcx;
	uint64_t val;

	switch (msr) {
	case MSR_EFER:                 val = vmcs_read(GUEST_IA32_EFER); break;
	case MSR_IA32_PAT:             val = vmcs_read(GUEST_IA32_PAT); break;
	case MSR_IA32_FEATURE_CONTROL: val = FEATURE_CONTROL_LOCKED; break; /* locked, VMX off */
	case MSR_IA32_MISC_ENABLE:     val = 1; break;                       /* fast strings */
	case 0x10:                     val = rdtsc(); break;                 /* IA32_TSC */
	case 0x8b:                     val = 0; break;                       /* IA32_BIOS_SIGN_ID */
	case 0xfe:                     val = 0; break;                       /* IA32_MTRRCAP: no MTRRs */
	case 0x2ff:                    val = 6; break;                       /* MTRR_DEF_TYPE: WB, off */
	default:
		inject_gp();           /* SDM Vol. 2B, RDMSR: #GP for a reserved or unimplemented MSR */
		return HANDLED;
	}
	v->regs.rax = (uint32_t)val;
	v->regs.rdx = val >> 32;
	skip_instruction();
	return HANDLED;
}

static __attribute__((noinline)) int handle_wrmsr(struct vcpu *v)
{
	uint32_t msr = v->regs.rcx;
	uint64_t val = (v->regs.rdx << 32) | (uint32_t)v->regs.rax;

	switch (msr) {
	case MSR_EFER: {
		/* LMA is the CPU's to set (on CR0.PG, handle_cr); SCE, LME, NXE are the guest's. */
		uint64_t lma = vmcs_read(GUEST_IA32_EFER) & EFER_LMA;

		/* SDM Vol. 2B, WRMSR, and Vol. 3A, 10.8.5: reserved bits, NXE without NX, and changing LME
		 * with paging on raise #GP (VM entry would refuse the result otherwise, 27.3.1.1). */
		if ((val & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)) ||
		    ((val & EFER_NXE) && !cpu_has(CPU_NX)) ||
		    (((val ^ vmcs_read(GUEST_IA32_EFER)) & EFER_LME) && (vmcs_read(CR0_READ_SHADOW) & CR0_PG))) {
			inject_gp();
			return HANDLED;
		}
		vmcs_write(GUEST_IA32_EFER, (val & ~EFER_LMA) | lma);
		break;
	}
	case MSR_IA32_PAT:
		/* Each byte a memory type: 0, 1, 4, 5, 6 or 7 (SDM Vol. 3A, 13.12.2); else #GP. */
		for (unsigned i = 0; i < 8; i++) {
			unsigned t = (val >> (8 * i)) & 0xff;

			if (t == 2 || t == 3 || t > 7) {
				inject_gp();
				return HANDLED;
			}
		}
		vmcs_write(GUEST_IA32_PAT, val);
		break;
	case 0x10: case 0x8b: case 0x2ff: case MSR_IA32_MISC_ENABLE:
		break;                 /* accepted and ignored */
	default:
		inject_gp();
		return HANDLED;
	}
	skip_instruction();
	return HANDLED;
}

/* --- control registers -------------------------------------------------------------------------- */

/* Loads the four PAE PDPTEs from guest memory into the VMCS, as MOV to CR0 would have (SDM Vol. 3A,
 * 4.4.1; with EPT they come from the VMCS on entry, SDM Vol. 3C, 27.3.2.4). */
static __attribute__((noinline)) bool load_pdptes(struct vcpu *v, uint64_t cr3)
{
	uint64_t pdpte[4];

	if (gmem_read(&v->vm->mem, cr3 & 0xffffffe0, pdpte, sizeof(pdpte)))
		return false;
	/* A present PDPTE with reserved bits (2:1, 8:5, and above the physical-address width) is a #GP
	 * for the MOV that loads it (SDM Vol. 3A, 4.4.1, Table 4-8); VM entry would refuse it. */
	for (unsigned i = 0; i < 4; i++)
		if ((pdpte[i] & 1) && (pdpte[i] & (0x1e6ull | ~((1ull << cpu_phys_bits()) - 1))))
			return false;
	for (unsigned i = 0; i < 4; i++)
		vmcs_write(GUEST_PDPTE0 + 2 * i, pdpte[i]);
	return true;
}

static __attribute__((noinline)) int guest_write_cr0(struct vcpu *v, uint64_t val)
{
	uint64_t old = vmcs_read(CR0_READ_SHADOW), efer = vmcs_read(GUEST_IA32_EFER);
	uint32_t entry = vmcs_read32(VM_ENTRY_CONTROLS);
	bool pg_on = (val & CR0_PG) && !(old & CR0_PG), pg_off = !(val & CR0_PG) && (old & CR0_PG);

	/* MOV to CR0 raises #GP for (SDM Vol. 2B, MOV--Move to/from Control Registers): PG without PE,
	 * NW without CD, clearing PG with CR4.PCIDE set, entering IA-32e mode from a 64-bit code segment.
	 * Letting any through would only make the next VM entry fail. */
	if (((val & CR0_PG) && !(val & CR0_PE)) || ((val & CR0_NW) && !(val & CR0_CD)) ||
	    (pg_off && (vmcs_read(GUEST_CR4) & CR4_PCIDE)) ||
	    (pg_on && (efer & EFER_LME) && (vmcs_read(GUEST_CS_AR_BYTES) & (1u << 13)))) {
		inject_gp();
		return HANDLED;
	}
	/* IA-32e mode is entered and left through CR0.PG with EFER.LME set (SDM Vol. 3A, 10.8.5). */
	if (pg_on && (efer & EFER_LME)) {
		if (!(vmcs_read(GUEST_CR4) & CR4_PAE)) {
			inject_gp();
			return HANDLED;
		}
		vmcs_write(GUEST_IA32_EFER, efer | EFER_LMA);
		vmcs_write(VM_ENTRY_CONTROLS, entry | ENTRY_IA32E_MODE);
	} else if (pg_off && (efer & EFER_LMA)) {
		vmcs_write(GUEST_IA32_EFER, efer & ~EFER_LMA);
		vmcs_write(VM_ENTRY_CONTROLS, entry & ~ENTRY_IA32E_MODE);
	} else if (pg_on && (vmcs_read(GUEST_CR4) & CR4_PAE)) {
		if (!load_pdptes(v, vmcs_read(GUEST_CR3))) {
			inject_gp();   /* unreadable or reserved PDPTEs: the MOV to CR0 faults */
			return HANDLED;
		}
	}
	vmcs_write(CR0_READ_SHADOW, val);
	vmcs_write(GUEST_CR0, vcpu_cr0_real(val));
	return HANDLED;
}

static __attribute__((noinline)) int handle_cr(struct vcpu *v)
{
	/* Exit qualification for control-register accesses. SDM Vol. 3C, 28.2.1, Table 28-3. */
	uint64_t q = vmcs_read(EXIT_QUALIFICATION);
	unsigned cr = q & 15, type = (q >> 4) & 3;
	uint64_t val = get_gpr(v, (q >> 8) & 15);
	int r;

	if (cr == 8 && type <= 1) {        /* the guest's own TPR, never the real APIC's */
		if (type == 1) {
			set_gpr(v, (q >> 8) & 15, v->cr8);
		} else if (val & ~0xfull) {
			inject_gp();           /* SDM Vol. 3A, 2.5: CR8 bits 63:4 are reserved */
			return HANDLED;
		} else {
			v->cr8 = val;
		}
		r = HANDLED;
	} else if (type == 0 && cr == 0) {
		if (!guest_long_mode())
			val &= 0xffffffff;
		r = guest_write_cr0(v, val);
	} else if (type == 0 && cr == 4) {
		/* No nested VMX; no bit the CPU lacks; PAE stays on in IA-32e mode (SDM Vol. 3A, 2.5). */
		if (!guest_long_mode())
			val &= 0xffffffff;
		if ((val & CR4_VMXE) || (val & ~vmx_caps.cr4_fixed1) ||
		    (guest_long_mode() && !(val & CR4_PAE)) ||
		    ((val & CR4_PCIDE) && !guest_long_mode())) {
			inject_gp();
			return HANDLED;
		}
		vmcs_write(CR4_READ_SHADOW, val);
		vmcs_write(GUEST_CR4, vcpu_cr4_real(val));
		r = HANDLED;
	} else if (type == 3) {        /* LMSW: only PE, MP, EM, TS; it cannot clear PE */
		uint64_t old = vmcs_read(CR0_READ_SHADOW), src = (q >> 16) & 0xf;

		r = guest_write_cr0(v, (old & ~0xeull) | (src & 0xe) | ((old | src) & 1));
	} else {
		return stop(v, "unexpected control-register access (qualification 0x%lx), rip 0x%lx", q,
			    vmcs_read(GUEST_RIP));
	}
	if (r == HANDLED && !vmcs_read32(VM_ENTRY_INTR_INFO_FIELD))
		skip_instruction();
	return r;
}

/* Is `x` an XCR0 value XSETBV accepts? SDM Vol. 1, 13.3 and Vol. 2C, XSETBV: x87 always on; no bit
 * outside what guests may use; AVX needs SSE; MPX's two bits together; AVX-512's three together and
 * with AVX; AMX's two together. A value the CPU refuses would #GP in the host. */
static bool xcr0_valid(uint64_t x)
{
	uint64_t avx512 = 7ull << 5, mpx = 3ull << 3, amx = 3ull << 17;

	return (x & 1) && !(x & ~vcpu_xcr0_allowed) && (!(x & 4) || (x & 2)) &&
	       ((x & mpx) == 0 || (x & mpx) == mpx) &&
	       ((x & avx512) == 0 || ((x & avx512) == avx512 && (x & 6) == 6)) &&
	       ((x & amx) == 0 || (x & amx) == amx);
}

static __attribute__((noinline)) int handle_xsetbv(struct vcpu *v)
{
	uint64_t val = (v->regs.rdx << 32) | (uint32_t)v->regs.rax;

	if ((uint32_t)v->regs.rcx != 0 || !xcr0_valid(val) || !(vmcs_read(GUEST_CR4) & CR4_OSXSAVE)) {
		inject_gp();
		return HANDLED;
	}
	asm volatile("xsetbv" : : "c"(0), "a"((uint32_t)val), "d"((uint32_t)(val >> 32)));
	v->xcr0 = val;
	skip_instruction();
	return HANDLED;
}

/* --- memory ------------------------------------------------------------------------------------- */

static __attribute__((noinline)) int handle_ept_violation(struct vcpu *v)
{
	/* Exit qualification for EPT violations. SDM Vol. 3C, 28.2.1, Table 28-7: bits 0-2 the access
	 * (read, write, fetch), bits 3-5 what the entry allowed. */
	uint64_t q = vmcs_read(EXIT_QUALIFICATION), gpa = vmcs_read(GUEST_PHYSICAL_ADDRESS);
	const char *kind = q & 4 ? "fetch" : q & 2 ? "write" : "read";

	switch (gmem_touch(&v->vm->mem, gpa, true)) {
	case GMEM_MAPPED:
		/* First touch: retry the access, now mapped, and the event it interrupted, if any.
		 * Clearing the chunk was host time spent for the guest: charge it to its slice. */
		reinject_event();
		return slice_left(v);
	case GMEM_PRESENT:
		if (!(q & 0x38)) {      /* it was not mapped when we faulted: another vCPU mapped it */
			reinject_event();
			return HANDLED;
		}
		return stop(v, "EPT violation %s at GPA 0x%lx (page permissions %s%s%s), rip 0x%lx", kind, gpa,
			    q & 8 ? "r" : "-", q & 16 ? "w" : "-", q & 32 ? "x" : "-", vmcs_read(GUEST_RIP));
	case GMEM_NOMEM:
		return stop(v, "out of memory at GPA 0x%lx", gpa);
	case GMEM_OUTSIDE:
	default:
		return stop(v, "EPT violation %s at GPA 0x%lx, rip 0x%lx", kind, gpa, vmcs_read(GUEST_RIP));
	}
}

/* --- the rest ----------------------------------------------------------------------------------- */

static __attribute__((noinline)) int handle_hlt(struct vcpu *v)
{
	skip_instruction();
	/* No interrupt source is virtualized yet: with IF=0 nothing can ever wake the vCPU. With IF=1
	 * the HLT gives up the CPU, and the vCPU runs again on its next turn, as if a timer woke it. */
	if (!(vmcs_read(GUEST_RFLAGS) & RFLAGS_IF))
		return stop(v, "halted with interrupts disabled (HLT, IF=0), rip 0x%lx",
			    vmcs_read(GUEST_RIP) - vmcs_read(VM_EXIT_INSTRUCTION_LEN));
	return VCPU_YIELD;
}

static __attribute__((noinline)) int handle_exception_nmi(struct vcpu *v)
{
	uint32_t info = vmcs_read32(VM_EXIT_INTR_INFO);

	if ((info & 0x700) == INTR_TYPE_NMI) {
		if (system_stopping)       /* panic() on another CPU: stop here too */
			for (;;)
				asm volatile("cli; hlt");
		/* An NMI for the host; nothing else uses them. The exit left NMIs blocked (SDM Vol. 3C,
		 * 28.1): an IRET to the next instruction lifts that, as the NMI handler's IRET would. */
		asm volatile("mov %%rsp, %%rax; pushq $0x10; pushq %%rax; pushfq; pushq $0x08;"
			     "leaq 1f(%%rip), %%rax; pushq %%rax; iretq; 1:" : : : "rax", "memory");
		return HANDLED;
	}
	return stop(v, "exception %u (exit interruption info 0x%x), rip 0x%lx", info & 0xff, info,
		    vmcs_read(GUEST_RIP));
}

static __attribute__((noinline)) int handle_external_interrupt(void)
{
	/* "Acknowledge interrupt on exit" is off: the interrupt is still pending at the local APIC.
	 * Open the window for one instruction so the host IDT takes it (a wake-up IPI). */
	sti();
	asm volatile("nop");
	cli();
	return HANDLED;
}

static __attribute__((noinline)) int handle_entry_failure(struct vcpu *v, uint32_t reason)
{
	unsigned basic = reason & 0xffff;

	vcpu_dump(v);
	/* SDM Vol. 3C, 27.8: exit qualification 2 = PDPTE load failed, 3 = NMI injection, 4 = link. */
	return stop(v, "VM entry failed: %s (exit reason %u, qualification %lu)", exit_reason_name(basic),
		    basic, vmcs_read(EXIT_QUALIFICATION));
}

static __attribute__((noinline)) int handle_unknown(struct vcpu *v, unsigned basic)
{
	vcpu_dump(v);
	return stop(v, "unhandled exit %u (%s), qualification 0x%lx, rip 0x%lx", basic, exit_reason_name(basic),
		    vmcs_read(EXIT_QUALIFICATION), vmcs_read(GUEST_RIP));
}

static __attribute__((noinline)) int handle_triple_fault(struct vcpu *v)
{
	vcpu_dump(v);
	return stop(v, "triple fault, rip 0x%lx", vmcs_read(GUEST_RIP));
}

int vmx_exit_dispatch(struct vcpu *v)
{
	uint32_t reason = vmcs_read32(VM_EXIT_REASON);
	unsigned basic = reason & 0xffff;
	int r;

	if (__builtin_expect(reason & EXIT_REASON_ENTRY_FAILURE, 0))
		basic = EXIT_REASON_MAX + 1;     /* not counted, handled below */
	else if (basic <= EXIT_REASON_MAX)
		v->exits[basic]++;

	switch (basic) {
	case EXIT_CPUID:              r = handle_cpuid(v); break;
	case EXIT_VMCALL:             r = handle_vmcall(v); break;
	case EXIT_IO_INSTRUCTION:     r = handle_io(v); break;
	case EXIT_MSR_READ:           r = handle_rdmsr(v); break;
	case EXIT_MSR_WRITE:          r = handle_wrmsr(v); break;
	case EXIT_CR_ACCESS:          r = handle_cr(v); break;
	case EXIT_XSETBV:             r = handle_xsetbv(v); break;
	case EXIT_EPT_VIOLATION:      r = handle_ept_violation(v); break;
	case EXIT_HLT:                r = handle_hlt(v); break;
	case EXIT_PREEMPTION_TIMER:   r = VCPU_PREEMPTED; break;
	case EXIT_EXCEPTION_NMI:      r = handle_exception_nmi(v); break;
	case EXIT_EXTERNAL_INTERRUPT: r = handle_external_interrupt(); break;
	case EXIT_TRIPLE_FAULT:       r = handle_triple_fault(v); break;
	case EXIT_WBINVD:                /* caches are shared with other guests: a no-op for guests */
		skip_instruction();
		r = HANDLED;
		break;
	case EXIT_RDPMC:                 /* no performance counters for guests (CPUID leaf 0xA is empty) */
		inject_gp();
		r = HANDLED;
		break;
	case EXIT_EPT_MISCONFIG:
		r = stop(v, "EPT misconfiguration at GPA 0x%lx (a hypervisor bug)",
			 vmcs_read(GUEST_PHYSICAL_ADDRESS));
		break;
	case EXIT_VMCLEAR: case EXIT_VMLAUNCH: case EXIT_VMPTRLD: case EXIT_VMPTRST:
	case EXIT_VMREAD: case EXIT_VMRESUME: case EXIT_VMWRITE: case EXIT_VMOFF: case EXIT_VMON:
	case EXIT_INVEPT: case EXIT_INVVPID: case EXIT_MWAIT: case EXIT_MONITOR:
		inject_exception(6, false, 0);   /* #UD: no nested VMX, no MONITOR/MWAIT (CPUID hides them) */
		r = HANDLED;
		break;
	case EXIT_REASON_MAX + 1:
		r = handle_entry_failure(v, reason);
		break;
	default:
		r = handle_unknown(v, basic);
		break;
	}
	if (__builtin_expect(r == HANDLED, 1) && (vmx_caps.save_timer || (r = slice_left(v)) == HANDLED))
		return 0;
	v->action = (enum vcpu_action)r;
	return 1;
}
