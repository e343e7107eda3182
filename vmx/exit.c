/* VM-exit handlers. One switch on the basic exit reason (SDM Vol. 3D, Appendix C) calls one
 * handle_<reason>(); each returns HANDLED (resume), or an action for the scheduler. A guest's
 * misbehaviour stops that guest, never the hypervisor. */
#include "arch/x86/cpu.h"
#include "arch/x86/gdt.h"
#include "arch/x86/percpu.h"
#include "arch/x86/time.h"
#include "arch/x86/trap.h"
#include "console/printk.h"
#include "lib/errno.h"
#include "lib/format.h"
#include "lib/string.h"
#include "tessera/hypercall.h"
#include "vdev/hypercall.h"
#include "vmx/decode.h"
#include "vmx/exit.h"
#include "vmx/gpt.h"
#include "vmx/vmx.h"

#define RFLAGS_DF (1ull << 10)   /* string instructions count down (SDM Vol. 1, 3.4.3.2) */
#define CR4_SMXE  (1ull << 14)   /* GETSEC enabled (SDM Vol. 3A, 2.5); reserved with SMX hidden */

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

/* Queues a hardware exception for the next entry (SDM Vol. 3C, 27.6), in the vCPU: whether an
 * exception is pending is the vCPU's to know, never read back from the VM-entry interruption-
 * information field, whose stale contents a VM exit leaves behind with only the valid bit cleared
 * (SDM Vol. 3C, 28.2: a VM exit clears bit 31 of that field and nothing else). In real mode (CR0.PE = 0, possible with
 * unrestricted guest) exceptions push no error code, and VM entry insists on that (SDM Vol. 3C,
 * 27.2.1.3). */
static void inject_exception(struct vcpu *v, unsigned vector, bool has_code, uint32_t code)
{
	if (!(vmcs_read(GUEST_CR0) & CR0_PE))
		has_code = false;
	v->event = (struct vcpu_event){ true,
		INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | (has_code ? INTR_INFO_DELIVER_CODE : 0) | vector,
		code, 0 };
}
#define inject_gp(v) inject_exception(v, 13, true, 0)

/* The guest's CR2, for a #PF the hypervisor injects: CR2 is not in the VMCS (SDM Vol. 3C, 25.4.1).
 * Both copies: the exit stub's fast path resumes with the CPU's CR2 as it is (the host takes no
 * page faults), vmx_enter loads the saved one. */
static void set_guest_cr2(struct vcpu *v, uint64_t cr2)
{
	v->regs.cr2 = cr2;
	asm volatile("mov %0, %%cr2" : : "r"(cr2) : "memory");
}
#define inject_ud(v) inject_exception(v, 6, false, 0)

/* The guest ends once, whichever vCPU ends it first: that one's reason is reported. */
static bool claim_end(struct vm *vm, enum vcpu_action why)
{
	int expected = 0;

	if (!__atomic_compare_exchange_n(&vm->ending, &expected, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return false;
	vm->end_why = why;
	/* Its other vCPUs may be halted or running on other CPUs: make each CPU look (cpu_loop). */
	for (unsigned i = 0; i < vm->nvcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	return true;
}

int vm_stop(struct vcpu *v, const char *fmt, ...)
{
	va_list ap;

	if (claim_end(v->vm, VCPU_STOPPED)) {
		va_start(ap, fmt);
		format(v->vm->stop_reason, sizeof(v->vm->stop_reason), fmt, ap);
		va_end(ap);
	}
	return VCPU_STOPPED;
}

int vm_exit(struct vcpu *v, int code)
{
	if (claim_end(v->vm, VCPU_EXITED))
		v->vm->exit_code = code;
	return VCPU_EXITED;
}
#define stop vm_stop
#define end_guest vm_exit

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

/* An exit during event delivery (an EPT violation on the guest's IDT or stack, first touched; an
 * external interrupt or a task switch while delivering) must not lose the event: deliver it again on
 * the next entry (SDM Vol. 3C, 28.2.4 "Information for VM Exits During Event Delivery", and 29.2.1).
 * Any exit kind: taken at the top of the dispatcher. */
static __attribute__((noinline)) void save_vectoring(struct vcpu *v, uint32_t info)
{
	v->event = (struct vcpu_event){ true, info & ~(1u << 12),  /* bit 12 is undefined here */
		info & INTR_INFO_DELIVER_CODE ? vmcs_read32(IDT_VECTORING_ERROR_CODE) : 0,
		vmcs_read32(VM_EXIT_INSTRUCTION_LEN) };
}

/* Host time spent for the guest (a UART line, clearing a chunk) counts against its slice: the
 * preemption timer counts only guest time (SDM Vol. 3C, 26.5.1), so make the next entry set it
 * afresh from the TSC. */
static __attribute__((noinline)) int slice_left(struct vcpu *v)
{
	if (rdtsc() >= v->slice_end)
		return VCPU_PREEMPTED;
	v->armed_deadline = ~0ull;
	return HANDLED;
}

/* Four characters of a string constant as the little-endian register CPUID returns them in. */
#define SIG4(s, i) ((uint32_t)(uint8_t)(s)[i] | (uint32_t)(uint8_t)(s)[(i) + 1] << 8 | \
		    (uint32_t)(uint8_t)(s)[(i) + 2] << 16 | (uint32_t)(uint8_t)(s)[(i) + 3] << 24)

/* --- CPUID ------------------------------------------------------------------------------------ */

/* The host's highest basic CPUID leaf (leaf 0 EAX), read once. */
static uint32_t host_max_basic;

static __attribute__((noinline)) int handle_cpuid(struct vcpu *v)
{
	uint32_t leaf = v->regs.rax, sub = v->regs.rcx;
	struct cpuid_regs r;

	if (leaf >= HV_CPUID_BASE && leaf < 0x50000000u) {
		/* Our own range (0x40000000-0x4FFFFFFF is reserved for hypervisors, SDM Vol. 2A CPUID):
		 * the base leaf names us, nothing beyond it is defined yet. Answered first and without
		 * the host's CPUID: `make bench` times this path. */
		bool base = leaf == HV_CPUID_BASE;

		v->regs.rax = base ? HV_CPUID_TIMING : 0;
		v->regs.rbx = base ? SIG4(HV_CPUID_SIGNATURE, 0) : 0;
		v->regs.rcx = base ? SIG4(HV_CPUID_SIGNATURE, 4) : 0;
		v->regs.rdx = base ? SIG4(HV_CPUID_SIGNATURE, 8) : 0;
		if (leaf == HV_CPUID_TIMING) {
			/* The guest's clocks: TSC and local APIC timer input, both the host TSC's rate. */
			v->regs.rax = tsc_khz;
			v->regs.rbx = tsc_khz;
		}
		skip_instruction();
		return HANDLED;
	}
	if (!host_max_basic)
		host_max_basic = cpuid(0, 0).eax;
	r = cpuid(leaf, sub);
	if (leaf > host_max_basic && leaf <= 0x16)
		r = (struct cpuid_regs){ 0, 0, 0, 0 };   /* leaves added below, not the host's last one */
	switch (leaf) {
	case 0:
		if (r.eax < 0x16)
			r.eax = 0x16;                  /* the time leaves below exist for every guest */
		break;
	case 0x15:
		/* TSC and core crystal clock (SDM Vol. 2A, CPUID leaf 15H): TSC = ECX * EBX / EAX Hz. The
		 * guest's local APIC timer counts TSC ticks (vdev/lapic.c), so the "crystal" is the TSC
		 * itself, ratio 1: a kernel then knows both clocks without calibrating them (Linux:
		 * native_calibrate_tsc, lapic_timer_period). Unknown (ECX = 0) past 4.29 GHz. */
		r.eax = r.ebx = 1;
		r.ecx = tsc_khz * 1000 <= 0xffffffffull ? (uint32_t)(tsc_khz * 1000) : 0;
		r.edx = 0;
		break;
	case 0x16:
		/* Processor base/maximum/bus frequencies in MHz (leaf 16H): the TSC's rate for all three. */
		r.eax = r.ebx = r.ecx = (uint32_t)(tsc_khz / 1000);
		r.edx = 0;
		break;
	case 1:
		/* OSXSAVE mirrors the guest's own CR4, not the host's (SDM Vol. 2A, CPUID, Table 3-10). */
		r.ecx = (r.ecx & ~(1u << 27)) | (vmcs_read(GUEST_CR4) & CR4_OSXSAVE ? 1u << 27 : 0);
		r.ecx &= ~(1u << 5);   /* VMX: not offered to guests (no nested virtualization) */
		r.ecx &= ~(1u << 3);   /* MONITOR/MWAIT: they exit and are not emulated */
		r.ecx &= ~(1u << 6);   /* SMX: GETSEC exits and is not emulated (CR4.SMXE refused) */
		r.ecx |= 1u << 21;     /* x2APIC: the virtual local APIC has it (vdev/lapic.c) */
		r.ecx |= 1u << 24;     /* TSC-deadline timer mode, likewise */
		r.ecx |= 1u << 31;     /* hypervisor present */
		r.edx |= 1u << 9;      /* APIC: on-chip, as long as IA32_APIC_BASE.EN (SDM Vol. 2A, CPUID) */
		if (!(v->lapic.base & VLAPIC_BASE_EN))
			r.edx &= ~(1u << 9);
		/* Initial APIC ID = vCPU number; logical processors in the package = the guest's vCPUs. */
		r.ebx = (r.ebx & 0x0000ffff) | (v->index << 24) | ((v->vm->nvcpus & 0xff) << 16);
		r.edx = v->vm->nvcpus > 1 ? r.edx | (1u << 28) : r.edx & ~(1u << 28);  /* HTT */
		break;
	case 0xb:
	case 0x1f:
		/* Extended topology (SDM Vol. 2A, CPUID leaf 0BH): EDX is the x2APIC ID, which must be the
		 * vCPU's, never the host CPU's; one level of `nvcpus` logical processors. */
		if (sub == 0) {
			unsigned shift = 0;

			while ((1u << shift) < v->vm->nvcpus)
				shift++;
			r.eax = shift;
			r.ebx = v->vm->nvcpus;
			r.ecx = (1u << 8) | sub;     /* level type 1: SMT */
		} else {
			r.eax = r.ebx = 0;
			r.ecx = sub;                 /* level type 0: invalid, the end of the list */
		}
		r.edx = v->index;
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
	{
		struct hc_caller c = { v->vm->id, v->vm->mem.size, v->cpu, &v->vm->uart };
		struct hc_regs r = { nr, v->regs.rbx, v->regs.rcx, v->regs.rdx };
		enum hc_result res = hypercall(&c, &r);

		v->regs.rax = r.rax;
		v->regs.rbx = r.rbx;
		v->regs.rcx = r.rcx;
		v->regs.rdx = r.rdx;
		return res == HC_DO_EXIT ? end_guest(v, (int)r.rbx) : res == HC_DO_YIELD ? VCPU_YIELD : HANDLED;
	}
}

/* --- I/O ---------------------------------------------------------------------------------------- */

static int handle_string_io(struct vcpu *v, uint64_t q);

static __attribute__((noinline)) int handle_io(struct vcpu *v)
{
	/* Exit qualification for I/O instructions. SDM Vol. 3C, 28.2.1, Table 28-5. */
	uint64_t q = vmcs_read(EXIT_QUALIFICATION);
	unsigned size = (q & 7) + 1;
	bool in = q & (1 << 3), string = q & (1 << 4);
	uint16_t port = q >> 16;
	uint32_t mask = size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
	struct vdev_access a = { port, size, !in, v->regs.rax & mask, v->index };
	uint32_t val;
	enum vdev_result r;

	if (string)
		return handle_string_io(v, q);
	skip_instruction();
	if ((r = vdev_pio(&v->vm->bus, &a)) == VDEV_GUEST_EXIT)
		return end_guest(v, (int)a.value);
	if (r == VDEV_GUEST_RESET)
		return stop(v, "%s", v->vm->bus.why);
	if (r == VDEV_BAD_ACCESS)
		return stop(v, "%s port 0x%x: %s, rip 0x%lx", in ? "IN from" : "OUT to", port, v->vm->bus.why,
			    vmcs_read(GUEST_RIP) - vmcs_read(VM_EXIT_INSTRUCTION_LEN));
	val = a.value;
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

	switch (vlapic_msr_read(&v->lapic, msr, &val, rdtsc())) {
	case 0:
		goto done;
	case -1:
		inject_gp(v);          /* the APIC's own #GP cases (SDM Vol. 3A, 11.12.1.2) */
		return HANDLED;
	default:                       /* not an APIC MSR */
		break;
	}
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
		inject_gp(v);           /* SDM Vol. 2B, RDMSR: #GP for a reserved or unimplemented MSR */
		return HANDLED;
	}
done:
	v->regs.rax = (uint32_t)val;
	v->regs.rdx = val >> 32;
	skip_instruction();
	return HANDLED;
}

static __attribute__((noinline)) int handle_wrmsr(struct vcpu *v)
{
	uint32_t msr = v->regs.rcx;
	uint64_t val = (v->regs.rdx << 32) | (uint32_t)v->regs.rax;

	switch (vlapic_msr_write(&v->lapic, msr, val, rdtsc())) {
	case 0:
		/* APIC virtualization covers an xAPIC at its reset base only. */
		if (msr == VLAPIC_MSR_APIC_BASE && v->apicv &&
		    (v->lapic.base & ~VLAPIC_BASE_BSP) != (VLAPIC_BASE_DEFAULT | VLAPIC_BASE_EN))
			vcpu_apicv_inhibit(v);
		skip_instruction();
		return HANDLED;
	case -1:
		inject_gp(v);
		return HANDLED;
	default:
		break;
	}
	switch (msr) {
	case MSR_EFER: {
		/* LMA is the CPU's to set (on CR0.PG, handle_cr); SCE, LME, NXE are the guest's. */
		uint64_t lma = vmcs_read(GUEST_IA32_EFER) & EFER_LMA;

		/* SDM Vol. 2B, WRMSR, and Vol. 3A, 10.8.5: reserved bits, NXE without NX, and changing LME
		 * with paging on raise #GP (VM entry would refuse the result otherwise, 27.3.1.1). */
		if ((val & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)) ||
		    ((val & EFER_NXE) && !cpu_has(CPU_NX)) ||
		    (((val ^ vmcs_read(GUEST_IA32_EFER)) & EFER_LME) && (vmcs_read(CR0_READ_SHADOW) & CR0_PG))) {
			inject_gp(v);
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
				inject_gp(v);
				return HANDLED;
			}
		}
		vmcs_write(GUEST_IA32_PAT, val);
		break;
	case 0x10: case 0x8b: case 0x2ff: case MSR_IA32_MISC_ENABLE:
		break;                 /* accepted and ignored */
	default:
		inject_gp(v);
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
	 * NW without CD, clearing PG with CR4.PCIDE set or in 64-bit mode (IA-32e mode is left from
	 * compatibility mode only, SDM Vol. 3A, 10.8.5.4), entering IA-32e mode from a 64-bit code segment.
	 * Letting any through would only make the next VM entry fail. */
	if (((val & CR0_PG) && !(val & CR0_PE)) || ((val & CR0_NW) && !(val & CR0_CD)) ||
	    (pg_off && (vmcs_read(GUEST_CR4) & CR4_PCIDE)) ||
	    (pg_off && (efer & EFER_LMA) && (vmcs_read(GUEST_CS_AR_BYTES) & (1u << 13))) || /* 64-bit mode */
	    (pg_on && (efer & EFER_LME) && (vmcs_read(GUEST_CS_AR_BYTES) & (1u << 13)))) {
		inject_gp(v);
		return HANDLED;
	}
	/* IA-32e mode is entered and left through CR0.PG with EFER.LME set (SDM Vol. 3A, 10.8.5). */
	if (pg_on && (efer & EFER_LME)) {
		if (!(vmcs_read(GUEST_CR4) & CR4_PAE)) {
			inject_gp(v);
			return HANDLED;
		}
		vmcs_write(GUEST_IA32_EFER, efer | EFER_LMA);
		vmcs_write(VM_ENTRY_CONTROLS, entry | ENTRY_IA32E_MODE);
	} else if (pg_off && (efer & EFER_LMA)) {
		vmcs_write(GUEST_IA32_EFER, efer & ~EFER_LMA);
		vmcs_write(VM_ENTRY_CONTROLS, entry & ~ENTRY_IA32E_MODE);
	} else if (pg_on && (vmcs_read(GUEST_CR4) & CR4_PAE)) {
		if (!load_pdptes(v, vmcs_read(GUEST_CR3))) {
			inject_gp(v);   /* unreadable or reserved PDPTEs: the MOV to CR0 faults */
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

	if (cr == 8 && type <= 1) {        /* the virtual APIC's TPR, never the real APIC's */
		if (type == 1) {
			set_gpr(v, (q >> 8) & 15, vlapic_get_cr8(&v->lapic));
		} else if (val & ~0xfull) {
			inject_gp(v);           /* SDM Vol. 3A, 2.5: CR8 bits 63:4 are reserved */
			return HANDLED;
		} else {
			vlapic_set_cr8(&v->lapic, val);
		}
		r = HANDLED;
	} else if (type == 0 && cr == 0) {
		if (!guest_long_mode())
			val &= 0xffffffff;
		r = guest_write_cr0(v, val);
	} else if (type == 0 && cr == 4) {
		/* No nested VMX; no SMX (hidden in CPUID, so SMXE is reserved); no bit the CPU lacks; PAE stays on in IA-32e mode (SDM Vol. 3A, 2.5). */
		if (!guest_long_mode())
			val &= 0xffffffff;
		if ((val & CR4_VMXE) || (val & CR4_SMXE) || (val & ~vmx_caps.cr4_fixed1) ||
		    (guest_long_mode() && !(val & CR4_PAE)) ||
		    ((val & CR4_PCIDE) && !guest_long_mode())) {
			inject_gp(v);
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
	if (r == HANDLED && !v->event.valid)     /* a faulting MOV does not complete */
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
		inject_gp(v);
		return HANDLED;
	}
	asm volatile("xsetbv" : : "c"(0), "a"((uint32_t)val), "d"((uint32_t)(val >> 32)));
	v->xcr0 = val;
	skip_instruction();
	return HANDLED;
}

/* --- memory ------------------------------------------------------------------------------------- */

static int read_gpa(void *arg, uint64_t gpa, void *dst, unsigned len)
{
	return gmem_read(arg, gpa, dst, len) ? -1 : 0;
}

/* The guest's paging state, for walking its page tables (vmx/gpt.c). */
static void gpt_context(struct vcpu *v, struct gpt_ctx *c)
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

/* The code-segment size the instruction at RIP was fetched with (SDM Vol. 3A, 3.4.5: CS.L and CS.D). */
static enum cpu_mode guest_mode(void)
{
	uint32_t cs = vmcs_read32(GUEST_CS_AR_BYTES);

	if (!(vmcs_read(GUEST_CR0) & CR0_PE) || (vmcs_read(GUEST_RFLAGS) & (1u << 17)))
		return MODE_REAL;                       /* real or virtual-8086 mode */
	if ((vmcs_read(GUEST_IA32_EFER) & EFER_LMA) && (cs & (1u << 13)))
		return MODE_LONG64;
	return cs & (1u << 14) ? MODE_PROT32 : MODE_PROT16;
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
static __attribute__((noinline)) int handle_mmio(struct vcpu *v, uint64_t gpa)
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
	gpt_context(v, &ctx);
	/* Up to 15 bytes, or as many as the code's page has if the next one is not mapped. */
	if (gpt_read(&ctx, linear, insn, n, true, &res)) {
		n = 0x1000 - (linear & 0xfff);
		if (n >= sizeof(insn) || gpt_read(&ctx, linear, insn, n, true, &res))
			return stop(v, "cannot fetch the instruction at rip 0x%lx that accessed MMIO at GPA 0x%lx",
				    rip, gpa);
	}
	if (decode_mmio(insn, n, mode, &m))
		return stop(v, "MMIO at GPA 0x%lx by an instruction not emulated (bytes %02x %02x %02x %02x), "
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
	vmcs_write(GUEST_RIP, rip + m.len);
	if ((vmcs_read(GUEST_INTERRUPTIBILITY_INFO) & 3) | (vmcs_read(GUEST_RFLAGS) & RFLAGS_TF))
		finish_instruction_slow();
	return HANDLED;
failed:
	if (r == VDEV_UNCLAIMED)
		return VDEV_UNCLAIMED;
	return stop(v, "MMIO %s at GPA 0x%lx: %s, rip 0x%lx", a.write ? "write" : "read", gpa, v->vm->bus.why, rip);
}

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
		return slice_left(v);
	case GMEM_PRESENT:
		if (!(q & 0x38)) {      /* it was not mapped when we faulted: another vCPU mapped it */
			return HANDLED;
		}
		return stop(v, "EPT violation %s at GPA 0x%lx (page permissions %s%s%s), rip 0x%lx", kind, gpa,
			    q & 8 ? "r" : "-", q & 16 ? "w" : "-", q & 32 ? "x" : "-", vmcs_read(GUEST_RIP));
	case GMEM_NOMEM:
		return stop(v, "out of memory at GPA 0x%lx", gpa);
	case GMEM_OUTSIDE:
	default:
		if (!(q & 4)) {          /* a data access outside RAM: a device's, if one claims it */
			int r = handle_mmio(v, gpa);

			if (r != VDEV_UNCLAIMED)
				return r;
		}
		return stop(v, "EPT violation %s at GPA 0x%lx, rip 0x%lx", kind, gpa, vmcs_read(GUEST_RIP));
	}
}

/* --- string I/O: INS and OUTS ------------------------------------------------------------------- */

/*
 * INS and OUTS, with or without REP, emulated element by element as the CPU executes them (SDM Vol.
 * 2B, INS/INSB/INSW/INSD, OUTS/OUTSB/OUTSW/OUTSD, REP/REPE/REPZ/REPNE/REPNZ):
 *
 *   element address   INS: ES:rDI (no override)   OUTS: DS:rSI, or the override's segment
 *   after each        rDI/rSI += size (RFLAGS.DF = 0) or -= size (DF = 1); with REP, rCX -= 1
 *   address size      16: SI, DI, CX   32: ESI, EDI, ECX   64: RSI, RDI, RCX (SDM Vol. 2A, 3.3.7)
 *
 * Each element is one access to the port's device (vdev_pio) and one guest-linear access translated
 * through the guest's own page tables (gpt_walk: a write for INS, a user access at CPL 3), so an
 * element that crosses pages and a page that is not present behave as on the CPU: the #PF is taken
 * with CR2 the faulting address and with RCX/RSI/RDI saying which elements were done (REP is
 * interruptible between iterations, SDM Vol. 2B REP: "the registers are updated ... so the
 * instruction can be resumed"). An address outside guest RAM stops the guest.
 *
 * Simplified: the segment's limit and type are not checked (only an unusable segment outside real
 * and 64-bit mode raises #GP(0)), 16-bit offsets that wrap inside an element are not split, alignment
 * checking is ignored, and data breakpoints (DR0-DR3) do not fire on these emulated accesses.
 */

/* Elements of a REP INS/OUTS done per exit. The rest re-executes: RIP stays at the instruction, so
 * the host CPU is never held long, and a pending interrupt may come in between, as on the CPU. */
#define STRIO_BATCH 256
#define STRIO_NEXT  (-2)   /* strio_translate: translated, go on */

/* Address size (0: 16-bit, 1: 32-bit, 2: 64-bit) and segment (0 ES, 1 CS, 2 SS, 3 DS, 4 FS, 5 GS)
 * of the INS/OUTS that exited: from the VM-exit instruction-information field (SDM Vol. 3C, 28.2.5,
 * Table 28-8: bits 9:7 address size, bits 17:15 segment, OUTS only) when the CPU fills it for
 * INS/OUTS (IA32_VMX_BASIC[54], SDM Vol. 3D, A.1); otherwise from the instruction's prefixes (67
 * address size, 26 2E 36 3E 64 65 segment; SDM Vol. 2A, 2.1.1). false: the instruction is unreadable. */
static bool strio_operands(struct vcpu *v, enum cpu_mode mode, unsigned *asz, unsigned *seg)
{
	static int info_valid = -1;
	uint64_t rip = vmcs_read(GUEST_RIP), linear;
	unsigned len = vmcs_read32(VM_EXIT_INSTRUCTION_LEN);
	uint8_t insn[DECODE_MAX_LEN];
	struct gpt_ctx ctx;
	bool a67 = false;

	if (info_valid < 0)
		info_valid = (rdmsr(MSR_IA32_VMX_BASIC) >> 54) & 1;
	if (info_valid) {
		uint32_t info = vmcs_read32(VMX_INSTRUCTION_INFO);

		*asz = (info >> 7) & 7;
		*seg = (info >> 15) & 7;
		return *asz <= 2 && *seg <= 5;
	}
	linear = mode == MODE_LONG64 ? rip : (vmcs_read(GUEST_CS_BASE) + rip) & 0xffffffffull;
	gpt_context(v, &ctx);
	if (len < 1 || len > sizeof(insn) || gpt_read(&ctx, linear, insn, len, true, NULL))
		return false;
	*seg = 3;
	for (unsigned i = 0; i + 1 < len; i++) {   /* all but the opcode (6C-6F) are prefixes */
		switch (insn[i]) {
		case 0x26: *seg = 0; break;
		case 0x2e: *seg = 1; break;
		case 0x36: *seg = 2; break;
		case 0x3e: *seg = 3; break;
		case 0x64: *seg = 4; break;
		case 0x65: *seg = 5; break;
		case 0x67: a67 = true; break;
		default: break;                    /* 66 (operand size: in the qualification), F2/F3, REX */
		}
	}
	if (mode == MODE_LONG64)
		*asz = a67 ? 1 : 2;
	else
		*asz = (mode == MODE_PROT32) ^ a67;
	return true;
}

/* A 16-, 32- or 64-bit address register after adding `d`: only its low 16 bits change with a 16-bit
 * address size, a 32-bit result clears bits 63:32 (SDM Vol. 1, 3.4.1.1). */
static uint64_t addr_add(uint64_t reg, int64_t d, uint64_t amask)
{
	if (amask == 0xffff)
		return (reg & ~0xffffull) | ((reg + d) & 0xffff);
	return amask == 0xffffffffull ? (uint32_t)(reg + d) : reg + d;
}

/* One element's guest-physical bytes: [la, la+size) split where it crosses a 4 KiB page. */
struct strio_span {
	uint64_t gpa[2];
	unsigned len[2];
};

/* Translates the element at guest-linear `la` for a read (OUTS) or a write (INS), both of its pages
 * before any byte moves. STRIO_NEXT, or the fault the CPU would take injected (HANDLED), or the
 * guest stopped. */
static int strio_translate(struct vcpu *v, const struct gpt_ctx *c, uint64_t la, unsigned size, bool write,
			   bool wrap32, unsigned seg, struct strio_span *sp)
{
	unsigned first = 0x1000 - (la & 0xfff);

	sp->len[0] = size < first ? size : first;
	sp->len[1] = size - sp->len[0];
	for (unsigned i = 0; i < 2 && sp->len[i]; i++) {
		uint64_t a = i ? la + sp->len[0] : la;
		struct gpt_result r;

		if (wrap32)
			a &= 0xffffffffull;
		switch (gpt_walk(c, a, write, c->cpl == 3, false, &r)) {
		case GPT_OK:
			sp->gpa[i] = r.gpa;
			break;
		case GPT_NOT_PRESENT:
		case GPT_RESERVED:
		case GPT_PERM:             /* #PF: CR2 = the linear address that faulted (SDM Vol. 3A, 4.7) */
			set_guest_cr2(v, a);
			inject_exception(v, 14, true, r.pf_error);
			return HANDLED;
		case GPT_NONCANONICAL:     /* #SS(0) through SS, else #GP(0) (SDM Vol. 3A, 3.3.7.1) */
			inject_exception(v, seg == 2 ? 12 : 13, true, 0);
			return HANDLED;
		case GPT_BAD_GPA:
			return stop(v, "string I/O: a page table for guest-linear 0x%lx is at GPA 0x%lx, outside "
				    "guest RAM, rip 0x%lx", a, r.gpa, vmcs_read(GUEST_RIP));
		default:
			return stop(v, "string I/O: guest-linear 0x%lx under 5-level paging (not supported), rip 0x%lx",
				    a, vmcs_read(GUEST_RIP));
		}
	}
	return STRIO_NEXT;
}

/* Moves one element between guest memory and `val` (little-endian). 0, or the guest stopped. */
static int strio_copy(struct vcpu *v, const struct strio_span *sp, uint32_t *val, bool to_guest, uint16_t port)
{
	for (unsigned i = 0; i < 2 && sp->len[i]; i++) {
		uint8_t *p = (uint8_t *)val + (i ? sp->len[0] : 0);
		int err = to_guest ? gmem_write(&v->vm->mem, sp->gpa[i], p, sp->len[i])
				   : gmem_read(&v->vm->mem, sp->gpa[i], p, sp->len[i]);

		if (err == -ENOMEM)
			return stop(v, "out of memory at GPA 0x%lx", sp->gpa[i]);
		if (err)
			return stop(v, "%s at port 0x%x: its buffer at GPA 0x%lx is outside guest RAM, rip 0x%lx",
				    to_guest ? "INS" : "OUTS", port, sp->gpa[i], vmcs_read(GUEST_RIP));
	}
	return 0;
}

static __attribute__((noinline)) int handle_string_io(struct vcpu *v, uint64_t q)
{
	/* Exit qualification: SDM Vol. 3C, 28.2.1, Table 28-5: bits 2:0 size - 1, bit 3 IN, bit 4
	 * string, bit 5 REP, bits 31:16 the port (bit 6, an immediate port, is never set for INS/OUTS). */
	unsigned size = (q & 7) + 1, asz, seg, batch;
	bool in = q & (1 << 3), rep = q & (1 << 5);
	uint16_t port = q >> 16;
	uint64_t rflags = vmcs_read(GUEST_RFLAGS), amask, base, count, done;
	int64_t step = rflags & RFLAGS_DF ? -(int64_t)size : (int64_t)size;
	uint64_t *addr = in ? &v->regs.rdi : &v->regs.rsi;
	enum cpu_mode mode = guest_mode();
	struct gpt_ctx ctx;
	int r;

	if (!strio_operands(v, mode, &asz, &seg))
		return stop(v, "cannot read the %s instruction at rip 0x%lx", in ? "INS" : "OUTS", vmcs_read(GUEST_RIP));
	if (in)
		seg = 0;                   /* INS writes through ES, whatever the prefixes say */
	amask = asz == 2 ? ~0ull : asz == 1 ? 0xffffffffull : 0xffffull;
	count = rep ? v->regs.rcx & amask : 1;
	if (mode != MODE_REAL && mode != MODE_LONG64 && (vmcs_read32(GUEST_ES_AR_BYTES + 2 * seg) & (1u << 16))) {
		inject_gp(v);              /* a null segment (SDM Vol. 2B, INS/OUTS: #GP(0)) */
		return HANDLED;
	}
	/* In 64-bit mode only FS and GS have a base (SDM Vol. 3A, 3.4.4). */
	base = mode == MODE_LONG64 && seg < 4 ? 0 : vmcs_read(GUEST_ES_BASE + 2 * seg);
	gpt_context(v, &ctx);
	/* With RFLAGS.TF a single-step trap follows each iteration (SDM Vol. 3B, 18.3.1.4): one per exit. */
	batch = rflags & RFLAGS_TF ? 1 : STRIO_BATCH;
	for (done = 0; done < count && done < batch; done++) {
		uint64_t la = base + (*addr & amask);
		struct vdev_access a = { port, size, !in, 0, v->index };
		struct strio_span sp;
		enum vdev_result res;
		uint32_t val = 0;

		if (mode != MODE_LONG64)
			la &= 0xffffffffull;
		if ((r = strio_translate(v, &ctx, la, size, in, mode != MODE_LONG64, seg, &sp)) != STRIO_NEXT)
			return r;          /* RIP stays: the fault comes from this instruction */
		if (!in && (r = strio_copy(v, &sp, &val, false, port)))
			return r;
		a.value = val;
		res = vdev_pio(&v->vm->bus, &a);
		if (res == VDEV_GUEST_EXIT)
			return end_guest(v, (int)a.value);
		if (res == VDEV_GUEST_RESET)
			return stop(v, "%s", v->vm->bus.why);
		if (res == VDEV_BAD_ACCESS)
			return stop(v, "%s at port 0x%x: %s, rip 0x%lx", in ? "INS" : "OUTS", port, v->vm->bus.why,
				    vmcs_read(GUEST_RIP));
		val = a.value;
		if (in && (r = strio_copy(v, &sp, &val, true, port)))
			return r;
		*addr = addr_add(*addr, step, amask);
		if (rep)
			v->regs.rcx = addr_add(v->regs.rcx, -1, amask);
	}
	if (done == count)
		skip_instruction();        /* all done (REP with rCX = 0 does nothing) */
	else if (done && ((vmcs_read(GUEST_INTERRUPTIBILITY_INFO) & 3) | (rflags & RFLAGS_TF)))
		finish_instruction_slow(); /* an iteration boundary: STI/MOV-SS blocking ends, TF traps */
	/* Host time for the guest's devices counts against its slice, as for IN and OUT. */
	return slice_left(v);
}

/* --- the rest ----------------------------------------------------------------------------------- */

/* HLT: the vCPU leaves its CPU until an event it accepts is due (SDM Vol. 2A, HLT: an enabled
 * interrupt, NMI, INIT or SMI resumes it; the interrupt's handler returns after the HLT). */
static __attribute__((noinline)) int handle_hlt(struct vcpu *v)
{
	skip_instruction();
	v->halted_if = vmcs_read(GUEST_RFLAGS) & RFLAGS_IF;
	if (!v->halted_if && !__atomic_load_n(&v->lapic.nmi_pending, __ATOMIC_ACQUIRE) && !vcpu_others_active(v))
		return stop(v, "halted with interrupts disabled (HLT, IF=0), rip 0x%lx",
			    vmcs_read(GUEST_RIP) - vmcs_read(VM_EXIT_INSTRUCTION_LEN));
	v->state = VCPU_HALTED;
	if (v->event.valid || vcpu_runnable(v, rdtsc())) {
		v->state = VCPU_RUNNING;    /* already due: HLT ends at once */
		return HANDLED;
	}
	return VCPU_BLOCKED;
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
		asm volatile("mov %%rsp, %%rax; pushq $%c0; pushq %%rax; pushfq; pushq $%c1;"
			     "leaq 1f(%%rip), %%rax; pushq %%rax; iretq; 1:" : : "i"(SEL_DATA), "i"(SEL_CODE64)
			     : "rax", "memory");
		return HANDLED;
	}
	return stop(v, "exception %u (exit interruption info 0x%x), rip 0x%lx", info & 0xff, info,
		    vmcs_read(GUEST_RIP));
}

static __attribute__((noinline)) int handle_external_interrupt(void)
{
	/* "Acknowledge interrupt on exit" is off: the interrupt is still pending at the local APIC.
	 * Open the window for one instruction so the host IDT takes it (a wake-up IPI: cross-CPU calls
	 * run in its handler). If other vCPUs share this CPU, one of them may have just become runnable
	 * (an IPI for it), or the interrupt was a key for the monitor (input_waiting): let the scheduler
	 * look. */
	struct percpu *pc = this_cpu();

	sti();
	asm volatile("nop");
	cli();
	return pc->nvcpus > 1 || pc->input_waiting ? VCPU_PREEMPTED : HANDLED;
}

/* Hardware task switches (CALL or JMP to a TSS or task gate, IRET with NT = 1, an interrupt or
 * exception through a task gate in the IDT) always exit (SDM Vol. 3C, 26.4.2) and are not emulated:
 * the guest is stopped, naming the source and the new task's TSS selector (exit qualification: SDM
 * Vol. 3C, 28.2.1, Table 28-2: bits 15:0 the selector, bits 31:30 the source). Only a guest in
 * legacy protected mode can cause one: in IA-32e mode the same instructions raise #GP and a task
 * gate in the IDT cannot exist (SDM Vol. 3A, 8.7 "Task Management in 64-bit Mode"). */
static __attribute__((noinline)) int handle_task_switch(struct vcpu *v)
{
	uint64_t q = vmcs_read(EXIT_QUALIFICATION);
	unsigned sel = q & 0xffff, source = (q >> 30) & 3;
	uint32_t vectoring = vmcs_read32(IDT_VECTORING_INFO_FIELD);
	static const char *const how[3] = { "CALL to", "IRET with NT=1 to", "JMP to" };

	if (source == 3 && (vectoring & INTR_INFO_VALID))
		return stop(v, "hardware task switch (vector %u through a task gate in the IDT to TSS selector 0x%x) "
			    "is not supported, rip 0x%lx", vectoring & 0xff, sel, vmcs_read(GUEST_RIP));
	if (source == 3)
		return stop(v, "hardware task switch (a task gate in the IDT to TSS selector 0x%x) is not supported, "
			    "rip 0x%lx", sel, vmcs_read(GUEST_RIP));
	return stop(v, "hardware task switch (%s TSS selector 0x%x) is not supported, rip 0x%lx", how[source], sel,
		    vmcs_read(GUEST_RIP));
}

/* INVLPG and INVPCID exit only where "INVLPG exiting" is a control the CPU cannot clear (vmx.c
 * clears it where allowed; SDM Vol. 3D, A.3.2), and then the CPU invalidated nothing. Dropping all
 * of the guest's linear translations does what either asks and more, which a processor may always
 * do (SDM Vol. 3A, 4.10.4.1). Without VPIDs every VM entry already did (SDM Vol. 3C, 29.4.3.3). */
static void flush_guest_tlb(struct vcpu *v)
{
	vmx_invvpid(v->vpid);
}

static __attribute__((noinline)) int handle_invlpg(struct vcpu *v)
{
	flush_guest_tlb(v);
	skip_instruction();
	return HANDLED;
}

static __attribute__((noinline)) int handle_invpcid(struct vcpu *v)
{
	/* The type is in the register of instruction-information bits 31:28 (SDM Vol. 3C, 28.2.5,
	 * Table 28-14); types above 3 raise #GP(0) (SDM Vol. 2B, INVPCID). The descriptor's own #GP
	 * cases (a PCID with CR4.PCIDE = 0, a non-canonical address) are not checked. */
	uint64_t type = get_gpr(v, vmcs_read32(VMX_INSTRUCTION_INFO) >> 28);

	if (guest_mode() != MODE_LONG64)
		type &= 0xffffffff;
	if (type > 3) {
		inject_gp(v);
		return HANDLED;
	}
	flush_guest_tlb(v);
	skip_instruction();
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

/* Exits no guest can cause: each needs a control tessera does not set (the README's table of exit
 * reasons says which). Reaching this is a hypervisor bug; the guest is stopped, the host goes on. */
static __attribute__((noinline)) int handle_unknown(struct vcpu *v, unsigned basic)
{
	vcpu_dump(v);
	return stop(v, "unexpected VM exit %u (%s: tessera enables no control that causes it), qualification 0x%lx, "
		    "rip 0x%lx", basic, exit_reason_name(basic), vmcs_read(EXIT_QUALIFICATION), vmcs_read(GUEST_RIP));
}

static __attribute__((noinline)) int handle_triple_fault(struct vcpu *v)
{
	vcpu_dump(v);
	return stop(v, "triple fault, rip 0x%lx", vmcs_read(GUEST_RIP));
}

/* --- the injection step ------------------------------------------------------------------------- */

/* Writes the event to deliver into the VM-entry fields (SDM Vol. 3C, 25.8.3). */
static void write_event(const struct vcpu_event *e)
{
	vmcs_write(VM_ENTRY_INTR_INFO_FIELD, e->info);
	if (e->info & INTR_INFO_DELIVER_CODE)
		vmcs_write(VM_ENTRY_EXCEPTION_ERROR_CODE, e->error_code);
	vmcs_write(VM_ENTRY_INSTRUCTION_LEN, e->insn_len);
}

/* Delivers at most one event per entry, in the priority order of SDM Vol. 3A, 7.9 (Table 7-2): an
 * exception or an event a VM exit interrupted first, then NMI, then a maskable interrupt. What cannot
 * be delivered now asks for the exit that says when it can (SDM Vol. 3C, 26.7.5 and 26.7.6):
 *  - an NMI waits for no blocking by STI, MOV SS or NMI (with virtual NMIs the CPU tracks the NMI
 *    blocking the guest's IRET ends; VM entry refuses an NMI under MOV-SS blocking, 27.3.1.5);
 *  - an interrupt waits for RFLAGS.IF = 1 and no STI or MOV-SS blocking (27.3.1.5); the local APIC
 *    has already decided it beats the guest's task and processor priority (vlapic_pending_vector). */
static inline __attribute__((always_inline)) int inject_events(struct vcpu *v)
{
	struct vlapic *l = &v->lapic;
	uint32_t want = v->cpu_ctls & ~(CPU_INTR_WINDOW_EXITING | CPU_NMI_WINDOW_EXITING);
	bool nmi = __atomic_load_n(&l->nmi_pending, __ATOMIC_ACQUIRE) != 0;
	/* With virtual-interrupt delivery the CPU injects the APIC's interrupts itself (apicv_sync). */
	int vector = v->apicv ? -1 : vlapic_pending_vector(l);

	if (v->event.valid) {
		write_event(&v->event);
		v->event.valid = false;
	} else if (!nmi && v->index == 0 && vlapic_extint_enabled(l) && vpc_extint_pending(&v->vm->pc)) {
		/* The 8259A's interrupt through vCPU 0's LINT0 (ExtINT): the INTA cycle gives the vector
		 * when the guest can take an interrupt (SDM Vol. 3A, 11.5.1; the PIC's priority, not
		 * the APIC's, decides). */
		uint32_t block = vmcs_read32(GUEST_INTERRUPTIBILITY_INFO);

		if (!(block & (BLOCKING_BY_STI | BLOCKING_BY_MOV_SS)) && (vmcs_read(GUEST_RFLAGS) & RFLAGS_IF))
			vmcs_write(VM_ENTRY_INTR_INFO_FIELD, INTR_INFO_VALID | INTR_TYPE_EXT_INTR |
				   (uint32_t)vpc_extint_ack(&v->vm->pc));
		if (vpc_extint_pending(&v->vm->pc))
			want |= CPU_INTR_WINDOW_EXITING;
	} else if (nmi || vector >= 0) {
		uint32_t block = vmcs_read32(GUEST_INTERRUPTIBILITY_INFO);

		if (nmi && !(block & (BLOCKING_BY_STI | BLOCKING_BY_MOV_SS | BLOCKING_BY_NMI))) {
			__atomic_fetch_sub(&l->nmi_pending, 1, __ATOMIC_ACQ_REL);
			vmcs_write(VM_ENTRY_INTR_INFO_FIELD, INTR_INFO_VALID | INTR_TYPE_NMI | 2);
			nmi = __atomic_load_n(&l->nmi_pending, __ATOMIC_ACQUIRE) != 0;
		} else if (!nmi && !(block & (BLOCKING_BY_STI | BLOCKING_BY_MOV_SS)) &&
			   (vmcs_read(GUEST_RFLAGS) & RFLAGS_IF)) {
			vlapic_accept(l, vector);
			vmcs_write(VM_ENTRY_INTR_INFO_FIELD, INTR_INFO_VALID | INTR_TYPE_EXT_INTR | vector);
			/* Nothing else can be pending now: the vector was the highest in IRR and is in
			 * service, so PPR's class is at least its own (SDM Vol. 3A, 11.8.3.1) and every
			 * vector left in IRR is at or below it. One posted meanwhile by another CPU
			 * comes with a kick, whose exit brings it here again. */
			vector = -1;
		}
	}
	if (nmi && vmx_caps.nmi_window)
		want |= CPU_NMI_WINDOW_EXITING;
	if (vector >= 0)
		want |= CPU_INTR_WINDOW_EXITING;
	if (want != v->cpu_ctls)
		vmcs_write(CPU_BASED_VM_EXEC_CONTROL, v->cpu_ctls = want);
	return HANDLED;
}

/* With APIC virtualization: tell the CPU which vector waits (RVI) and which is in service (SVI) in
 * the guest-interrupt status (SDM Vol. 3C, 30.1.1 and 30.2: it evaluates them at VM entry and
 * delivers when the guest can take it); level-triggered vectors exit on their EOI (the EOI-exit
 * bitmap, 30.1.4), so their source hears of it. Only after software changed the page: the CPU keeps
 * RVI and SVI in step with its own changes (virtual-interrupt delivery and EOI virtualization set
 * them from the page's IRR and ISR, 30.2.2 and 30.1.4), and the guest-interrupt status is guest
 * state that a VM exit saves (25.4.2). */
static inline __attribute__((always_inline)) void apicv_sync(struct vcpu *v)
{
	struct vlapic *l = &v->lapic;
	uint32_t dirty;
	int irr, isr;

	if (v->vm->apicv_inhibited) {
		vcpu_apicv_off(v);
		return;
	}
	if (!(dirty = vlapic_take_dirty(l)))
		return;
	if (dirty & (VLAPIC_DIRTY_IRR | VLAPIC_DIRTY_ISR)) {
		uint32_t status = vmcs_read32(GUEST_INTR_STATUS);

		if (dirty & VLAPIC_DIRTY_IRR) {
			irr = vlapic_highest_irr(l);
			status = (status & 0xff00) | (irr > 0 ? (unsigned)irr : 0);
		}
		if (dirty & VLAPIC_DIRTY_ISR) {
			isr = vlapic_highest_isr(l);
			status = (status & 0xff) | (isr > 0 ? (unsigned)isr << 8 : 0);
		}
		vmcs_write(GUEST_INTR_STATUS, status);
	}
	for (unsigned i = 0; (dirty & VLAPIC_DIRTY_TMR) && i < 8; i++) {
		uint32_t tmr = vlapic_tmr_word(l, i);

		if (tmr != v->eoi_exit[i]) {
			v->eoi_exit[i] = tmr;
			vmcs_write(EOI_EXIT_BITMAP0 + 2 * (i / 2),
				   (uint64_t)v->eoi_exit[i & ~1u] | (uint64_t)v->eoi_exit[i | 1] << 32);
		}
	}
	if (dirty & VLAPIC_DIRTY_REGS)
		vlapic_save_old(l);
}

/* The VMX-preemption timer, for `tsc_ticks` of TSC time: it counts down once every 2^shift TSC ticks
 * (SDM Vol. 3D, A.6); its field is 32 bits, and 0 would exit before the first guest instruction. */
static inline __attribute__((always_inline)) void set_preemption_timer(uint64_t tsc_ticks)
{
	uint64_t t = tsc_ticks >> vmx_caps.preemption_shift;

	vmcs_write(VMX_PREEMPTION_TIMER_VALUE, t > 0xffffffffull ? 0xffffffffull : t ? t : 1);
}

/* Inlined into the exit dispatcher: the fewer instructions between the preemption timer's TSC read
 * and VM entry, the closer to its deadline an APIC-timer interrupt comes (see below). */
static inline __attribute__((always_inline)) int prepare_entry(struct vcpu *v, bool resuming)
{
	struct vlapic *l = &v->lapic;
	uint64_t now = rdtsc(), deadline, target;

	/* Not this vCPU's turn any more: its guest is ending, or an INIT came (vcpu_run takes it). */
	if (v->vm->ending || __atomic_load_n(&l->init_pending, __ATOMIC_ACQUIRE))
		return VCPU_PREEMPTED;
	vlapic_timer_update(l, now);
	/* vCPU 0 keeps the guest's device time: fire the PIT, the RTC when one is due or changed. */
	vcpu_device_timers(v, now);
	if (v->apicv)
		apicv_sync(v);
	inject_events(v);
	/* The preemption timer ends the slice or brings the APIC timer's or a device's deadline,
	 * whichever is first (a deadline already past fires at the entry's first instruction boundary,
	 * 26.5.1). */
	target = v->slice_end;
	if ((deadline = vlapic_next_deadline(l)) && deadline < target)
		target = deadline;
	if (v->index == 0 && v->dev_deadline && v->dev_deadline < target)
		target = v->dev_deadline;
	if (!vmx_caps.save_timer || target != v->armed_deadline) {
		/* The timer counts guest time only (SDM Vol. 3C, 26.5.1): it starts at VM entry, so
		 * the time left is taken as late as the host path allows, or every instruction the
		 * host ran since `now` would make the interrupt that much later. */
		now = rdtsc();
		/* A slice that ended while exits were handled ends here; a new one always runs the
		 * guest at least an instruction, however long the host took to get here. */
		if (resuming && now >= v->slice_end)
			return VCPU_PREEMPTED;
		set_preemption_timer(target > now ? target - now : 0);
		v->armed_deadline = target;
	}
	return HANDLED;
}

int vmx_prepare_entry(struct vcpu *v, bool resuming)
{
	return prepare_entry(v, resuming);
}

/* APIC virtualization exits (SDM Vol. 3C, 30.4 and 30.1.4). An APIC access the CPU does not
 * virtualize (a read of the current count or PPR, a write to a read-only register...) is fault-like:
 * it is emulated like any local-APIC MMIO, decoding the instruction. An APIC write is trap-like: the
 * value is in the page already, RIP past the instruction. An EOI-induced exit: the CPU retired the
 * vector, its source must hear of it. */
static __attribute__((noinline)) int handle_apic_access(struct vcpu *v)
{
	uint64_t q = vmcs_read(EXIT_QUALIFICATION), gpa = vlapic_mmio_base(&v->lapic) + (q & 0xfff);
	unsigned type = (q >> 12) & 0xf;      /* Table 28-6: 0 linear read, 1 linear write, 3 during delivery */
	int r;

	if (type > 1)
		return stop(v, "local APIC access of type %u at offset 0x%lx (an instruction fetch or event "
			    "delivery through the APIC page), rip 0x%lx", type, q & 0xfff, vmcs_read(GUEST_RIP));
	r = handle_mmio(v, gpa);
	return r == VDEV_UNCLAIMED ? stop(v, "local APIC access at GPA 0x%lx not emulated, rip 0x%lx", gpa,
					    vmcs_read(GUEST_RIP)) : r;
}

static __attribute__((noinline)) int handle_apic_write(struct vcpu *v)
{
	vlapic_trapped_write(&v->lapic, vmcs_read(EXIT_QUALIFICATION) & 0xfff, rdtsc());
	return HANDLED;
}

/* The preemption timer: the slice ended, or an APIC-timer deadline came (the injection step fires it). */
static __attribute__((noinline)) int handle_preemption_timer(struct vcpu *v)
{
	v->armed_deadline = ~0ull;
	return rdtsc() >= v->slice_end ? VCPU_PREEMPTED : HANDLED;
}

int vmx_exit_dispatch(struct vcpu *v)
{
	uint32_t reason = vmcs_read32(VM_EXIT_REASON);
	unsigned basic = reason & 0xffff;
	uint32_t vectoring = vmcs_read32(IDT_VECTORING_INFO_FIELD);
	int r;

	if (__builtin_expect(vectoring & INTR_INFO_VALID, 0))
		save_vectoring(v, vectoring);

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
	case EXIT_PREEMPTION_TIMER:   r = handle_preemption_timer(v); break;
	case EXIT_APIC_ACCESS:        r = handle_apic_access(v); break;
	case EXIT_APIC_WRITE:         r = handle_apic_write(v); break;
	case EXIT_EOI_INDUCED:
		vlapic_virtual_eoi(&v->lapic, vmcs_read(EXIT_QUALIFICATION) & 0xff);
		r = HANDLED;
		break;
	case EXIT_INTERRUPT_WINDOW:      /* the guest can take the interrupt now: the injection step delivers it */
	case EXIT_NMI_WINDOW:
		r = HANDLED;
		break;
	case EXIT_EXCEPTION_NMI:      r = handle_exception_nmi(v); break;
	case EXIT_EXTERNAL_INTERRUPT: r = handle_external_interrupt(); break;
	case EXIT_TRIPLE_FAULT:       r = handle_triple_fault(v); break;
	case EXIT_WBINVD:                /* caches are shared with other guests: a no-op for guests */
		skip_instruction();
		r = HANDLED;
		break;
	case EXIT_RDPMC:                 /* no performance counters for guests (CPUID leaf 0xA is empty) */
		inject_gp(v);
		r = HANDLED;
		break;
	case EXIT_INVD:                  /* as WBINVD: the caches are the host's (SDM Vol. 2A, INVD) */
		skip_instruction();
		r = HANDLED;
		break;
	case EXIT_TASK_SWITCH:        r = handle_task_switch(v); break;
	case EXIT_INVLPG:             r = handle_invlpg(v); break;
	case EXIT_INVPCID:            r = handle_invpcid(v); break;
	case EXIT_EPT_MISCONFIG:
		r = stop(v, "EPT misconfiguration at GPA 0x%lx (a hypervisor bug)",
			 vmcs_read(GUEST_PHYSICAL_ADDRESS));
		break;
	case EXIT_VMCLEAR: case EXIT_VMLAUNCH: case EXIT_VMPTRLD: case EXIT_VMPTRST:
	case EXIT_VMREAD: case EXIT_VMRESUME: case EXIT_VMWRITE: case EXIT_VMOFF: case EXIT_VMON:
	case EXIT_INVEPT: case EXIT_INVVPID: case EXIT_MWAIT: case EXIT_MONITOR: case EXIT_GETSEC:
	case EXIT_VMFUNC: case EXIT_SEAMCALL: case EXIT_TDCALL:
		/* No nested VMX, no MONITOR/MWAIT, no SMX (CPUID hides them), no VM functions, no TDX:
		 * what a CPU without them does (SDM Vol. 2, each instruction's #UD conditions). */
		inject_ud(v);
		r = HANDLED;
		break;
	case EXIT_REASON_MAX + 1:
		r = handle_entry_failure(v, reason);
		break;
	default:
		r = handle_unknown(v, basic);
		break;
	}
	if (__builtin_expect(r == HANDLED, 1) && (r = prepare_entry(v, true)) == HANDLED)
		return 0;
	v->action = (enum vcpu_action)r;
	return 1;
}
