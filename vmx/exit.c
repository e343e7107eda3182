/* VM-exit dispatch: one switch on the basic exit reason (SDM Vol. 3D, Appendix C) calls one
 * handle_<reason>(); each returns HANDLED (resume), or an action for the scheduler. A guest's
 * misbehaviour stops that guest, never the hypervisor. Here: the dispatcher, the injection step before
 * every VM entry, and the small handlers. The vendor-neutral handlers (vcpu/exit.h), by subject in
 * their own files under vcpu/: CPUID (cpuid.c), MSRs (msr.c), control registers and XSETBV (cr.c), EPT
 * violations, MMIO and APIC accesses (mmio.c), string I/O (strio.c), HLT (insn.c); guest.c reads
 * their exits' operands from the VMCS. */
#include "arch/x86/apic.h"
#include "arch/x86/cpu.h"
#include "arch/x86/debugreg.h"
#include "arch/x86/gdt.h"
#include "arch/x86/percpu.h"
#include "arch/x86/spec.h"
#include "arch/x86/time.h"
#include "arch/x86/trap.h"
#include "console/printk.h"
#include "lib/errno.h"
#include "lib/format.h"
#include "lib/string.h"
#include "tessera/hypercall.h"
#include "vdev/hypercall.h"
#include "vmx/exit_kind.h"
#include "vcpu/handler.h"
#include "vmx/exit.h"
#include "vmx/vmx.h"
#include "vmx/skip.h"
#include "vmx/spt.h"
#include "vmx/vmcs.h"

/* The frequent exits that emulate an instruction (CPUID's kept answers, VMCALL, IN/OUT) are handled
 * inline in the dispatcher, what `make bench` measures; the others are kept out of line, so that they
 * do not weigh on that path. */

/* An exit during event delivery (an EPT violation on the guest's IDT or stack, first touched; an
 * external interrupt or a task switch while delivering) must not lose the event: deliver it again on
 * the next entry (SDM Vol. 3C, 28.2.4 "Information for VM Exits During Event Delivery", and 29.2.1).
 * Any exit kind: taken at the top of the dispatcher. */
static __attribute__((noinline)) void save_vectoring(struct vcpu *v, uint32_t info)
{
	vmx_of(v)->event = (struct vmx_event){ true, info & ~(1u << 12),  /* bit 12 is undefined here */
		info & INTR_INFO_DELIVER_CODE ? vmcs_read32(IDT_VECTORING_ERROR_CODE) : 0,
		vmcs_read32(VM_EXIT_INSTRUCTION_LEN) };
	vcpu_work_post(&v->work, VCPU_WORK_ENTRY);     /* the entry goes the long way (vcpu/work.h) */
}

/* An I/O exit's host time (a UART line keeps the host busy 87 us a character) counts against the
 * slice without a charge of its own: the entry path's TSC check ends the slice at the first exit after
 * its end, and the preemption timer, which counts guest time only, is armed afresh at least every
 * 1/VCPU_REARM_PARTS of the slice (prepare_entry_slow), so the host time it missed stretches a slice
 * by at most that much. (It was one RDTSC and one timer write at every I/O exit.) */
int vmx_slice_left(struct vcpu *v)
{
	(void)v;
	return HANDLED;
}

/* --- CPUID ------------------------------------------------------------------------------------- */

/* The answers that stay (vcpu/cpuid_cache.h) without a call; the others from the neutral handler,
 * which keeps what it may. */
static inline __attribute__((always_inline)) int exit_cpuid(struct vcpu *v)
{
	const struct vcpu_cpuid_entry *e = vcpu_cpuid_lookup(&v->cpuid, v->regs.rax, v->regs.rcx);

	if (__builtin_expect(e != NULL, 1)) {
		v->regs.rax = e->eax;
		v->regs.rbx = e->ebx;
		v->regs.rcx = e->ecx;
		v->regs.rdx = e->edx;
		return RETIRED;
	}
	return vcpu_handle_cpuid(v);
}

/* --- VMCALL: the hypercall ABI of include/tessera/hypercall.h ------------------------------------ */

/* Inline in the dispatcher, the call itself too (hypercall_inline), on the registers where the exit
 * stub saved them (guest_regs.hc): the caller's description is built only for the calls that read
 * it, and only the registers a call changes are written. */
static inline __attribute__((always_inline)) int handle_vmcall(struct vcpu *v)
{
	skip_instruction();
	if ((vmcs_read(GUEST_SS_AR_BYTES) >> 5) & 3) {   /* CPL = SS.DPL (SDM Vol. 3A, 5.5) */
		v->regs.rax = (uint64_t)(int64_t)HC_ERR_PERM;
		return HANDLED;
	}
	{
		struct hc_caller c = { v->vm->id, v->vm->mem.size, v->cpu, &v->vm->uart };
		enum hc_result res = hypercall_inline(&c, &v->regs.hc);

		return res == HC_DO_EXIT ? vm_end(v, (int)v->regs.rbx) : res == HC_DO_YIELD ? VCPU_YIELD : HANDLED;
	}
}

/* --- I/O ---------------------------------------------------------------------------------------- */

static inline __attribute__((always_inline)) int handle_io(struct vcpu *v)
{
	/* Exit qualification for I/O instructions. SDM Vol. 3C, 28.2.1, Table 28-5. */
	uint64_t q = vmcs_read(EXIT_QUALIFICATION);
	unsigned size = (q & 7) + 1;
	bool in = q & (1 << 3), string = q & (1 << 4);
	uint16_t port = q >> 16;
	/* The operand's bits by size - 1 (0, 1, 3: the only sizes, Table 28-5). */
	static const uint32_t masks[8] = { 0xff, 0xffff, 0, 0xffffffffu, 0, 0, 0, 0 };
	uint32_t mask = masks[q & 7];
	struct vdev_access a = { port, size, !in, v->regs.rax & mask, v->index };
	uint32_t val;
	enum vdev_result r;

	if (string)
		return vmx_exit_string_io(v, q);
	skip_instruction();
	if (__builtin_expect((r = vdev_pio(&v->vm->bus, &a)) != VDEV_DONE, 0)) {
		if (r == VDEV_GUEST_EXIT)
			return vm_end(v, (int)a.value);
		if (r == VDEV_GUEST_RESET)
			return vm_stop(v, "%s", v->vm->bus.why);
		if (r == VDEV_BAD_ACCESS)
			return vm_stop(v, "%s port 0x%x: %s, rip 0x%lx", in ? "IN from" : "OUT to", port,
				    v->vm->bus.why, vmcs_read(GUEST_RIP) - vmcs_read(VM_EXIT_INSTRUCTION_LEN));
	}
	val = a.value;
	if (in)                        /* a 32-bit IN zero-extends into RAX, as any 32-bit write does */
		v->regs.rax = size == 4 ? val : (v->regs.rax & ~(uint64_t)mask) | (val & mask);
	/* The preemption timer counts only guest time, and a UART line keeps the host busy for 87 us
	 * a character on the guest's behalf: charge I/O exits to the guest's slice, or a guest that
	 * prints all the time would hold its CPU. */
	return vmx_slice_left(v);
}

/* --- the rest ----------------------------------------------------------------------------------- */

/* A #DB the exception bitmap intercepted (vcpu.c), given back to the guest as the CPU would have
 * delivered it. The exit qualification holds the DR6 bits the #DB reports (SDM Vol. 3C, 28.2.1,
 * Table 28-1), but neither the exit (28.1) nor the injection (27.6.1.1) writes DR6 or DR7: the
 * guest's DR6 is live in the register while its vCPU is loaded (vcpu_load), and delivery clears
 * DR7.GD so that the handler may use the debug registers (SDM Vol. 3B, 18.2.4). (IA32_DEBUGCTL,
 * whose LBR and BTF a #DB clears too, stays 0: guests cannot write it.) RFLAGS is already the image
 * the delivery would push (28.3.3): RF as it was, but for general detect (below).
 * INT1 (ICEBP) exits as itself, a privileged software exception (28.2.2): injected as one, with
 * its length, it delivers as the instruction would, past it and leaving DR6 alone. */
static __attribute__((noinline)) int reflect_db(struct vcpu *v, uint32_t info)
{
	uint64_t dr6, q = vmcs_read(EXIT_QUALIFICATION);
	uint32_t block;

	if ((info & INTR_TYPE_MASK) == INTR_TYPE_PRIV_SW_EXCEPTION) {
		vmx_of(v)->event = (struct vmx_event){ true, INTR_INFO_VALID | INTR_TYPE_PRIV_SW_EXCEPTION | VEC_DB, 0,
			vmcs_read32(VM_EXIT_INSTRUCTION_LEN) };
		vcpu_work_post(&v->work, VCPU_WORK_ENTRY);
		return HANDLED;
	}
	asm volatile("mov %%dr6, %0" : "=r"(dr6));
	asm volatile("mov %0, %%dr6" : : "r"(dr6_after_db(dr6, q)));
	vmcs_write(GUEST_DR7, vmcs_read(GUEST_DR7) & ~(uint64_t)DR7_GD);
	/* General detect is a fault (SDM Vol. 3B, 18.2.4 and Table 18-2): RF = 1 pushed (18.3.1.1).
	 * The CPU saved it so already (28.3.3); Bochs 2.7 saves and pushes RF = 0 for every #DB. */
	if (q & DR6_BD)
		vmcs_write(GUEST_RFLAGS, vmcs_read(GUEST_RFLAGS) | RFLAGS_RF);
	/* A #DB exit leaves BS out of the pending debug exceptions, but VM entry wants it there when
	 * RFLAGS.TF = 1 under blocking by STI or MOV SS (SDM Vol. 3C, 27.3.1.5); an injected
	 * hardware exception discards it (27.7.3). KVM does the same. */
	block = vmcs_read32(GUEST_INTERRUPTIBILITY_INFO);
	if ((vmcs_read(GUEST_RFLAGS) & RFLAGS_TF) && (block & (BLOCKING_BY_STI | BLOCKING_BY_MOV_SS)))
		vmcs_write(GUEST_PENDING_DBG_EXCEPTIONS, vmcs_read(GUEST_PENDING_DBG_EXCEPTIONS) | DR6_BS);
	vmx_queue_exception(v, VEC_DB, false, 0);
	return HANDLED;
}

/* NMIs exit (they are the host's); #DB and #AC exit because the exception bitmap asks (vcpu.c) and
 * go back to the guest. If one came while an event was being delivered (a #AC pushing the frame of
 * the last #AC on a misaligned stack), that event was saved for re-injection (save_vectoring) and
 * is dropped here: #DB and #AC are benign, so the CPU delivers them serially, the first event
 * undelivered (SDM Vol. 3A, 7.15, Interrupt 8, Table 7-5); a fault or a software interrupt comes
 * back when its instruction runs again. The exit that follows every delivery is what keeps a guest
 * that loops this way from holding its CPU: each returns through the slice check. */
static __attribute__((noinline)) int handle_exception_nmi(struct vcpu *v)
{
	uint32_t info = vmcs_read32(VM_EXIT_INTR_INFO);

	if ((info & 0xff) == VEC_AC && (info & INTR_TYPE_MASK) == INTR_TYPE_HW_EXCEPTION) {
		vmx_queue_exception(v, VEC_AC, true, 0);      /* #AC(0) (SDM Vol. 3A, 7.15, Interrupt 17) */
		return HANDLED;
	}
	if ((info & 0xff) == VEC_DB)
		return reflect_db(v, info);
	if ((info & 0xff) == VEC_PF && (info & INTR_TYPE_MASK) == INTR_TYPE_HW_EXCEPTION && vmx_spt_on(v)) {
		/* A local-APIC MMIO read (a shadow GPA fault) shows a timer that expired meanwhile where
		 * the host's APIC timer brings the deadline: see vcpu_handle_rdmsr (msr.c). */
		if (__builtin_expect(!vmx_caps.ptimer, 0))
			vlapic_timer_update(&v->lapic, rdtsc());
		/* The saved vectoring event, a hardware exception whose delivery met the #PF: the guest's
		 * own #PF then becomes a #DF (after a #PF) or a shutdown (after a #DF). */
		return vcpu_spt_page_fault(v, vmcs_read(EXIT_QUALIFICATION), vmcs_read32(VM_EXIT_INTR_ERROR_CODE),
					   vmx_of(v)->event.valid && (vmx_of(v)->event.info & INTR_TYPE_MASK) ==
					   INTR_TYPE_HW_EXCEPTION ? (int)(vmx_of(v)->event.info & 0xff) : -1);
	}
	if ((info & INTR_TYPE_MASK) == INTR_TYPE_NMI) {
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
	if (vmx_of(v)->rm.vm86)                 /* every exception exits in virtual-8086 mode (vmx/realmode.c) */
		return vmx_rm_exception(v, info);
	return vm_stop(v, "exception %u (exit interruption info 0x%x), rip 0x%lx", info & 0xff, info,
		    vmcs_read(GUEST_RIP));
}

static __attribute__((noinline)) int handle_external_interrupt(struct vcpu *v)
{
	/* "Acknowledge interrupt on exit" is off: the interrupt is still pending at the local APIC.
	 * Open the window for one instruction so the host IDT takes it (a wake-up IPI: cross-CPU calls
	 * run in its handler). The scheduler looks only for a reason: a key for the monitor
	 * (input_waiting), or another vCPU of this CPU that is new, whose guest is ending, or that the
	 * kick made runnable, v having run its share (vcpu_others_want_cpu). A kick for v itself is
	 * taken by the injection step; one that changed nothing (a vector already pending at a vCPU that
	 * waits its turn) leaves v its slice, so a guest flooding its own vCPU with IPIs cannot drag the
	 * other guests of that CPU through a reschedule per IPI. */
	unsigned cpu = this_cpu_id();

	sti();
	asm volatile("nop");
	cli();
	/* Without the preemption timer the host's APIC timer brought the slice's end or a deadline
	 * (prepare_entry_slow): counted as the preemption exit it stands for; the entry path re-arms. */
	if (__builtin_expect(!vmx_caps.ptimer, 0) && rdtsc() >= v->armed_deadline) {
		v->exits.n[VCPU_EXIT_EXTINT]--;
		vcpu_exit_count(&v->exits, VCPU_EXIT_PREEMPTION);
		v->armed_deadline = ~0ull;
		v->entry_due = 0;
	}
	return percpu[cpu].input_waiting || (vcpu_cpu[cpu].nvcpus > 1 && vcpu_others_want_cpu(v)) ?
	       VCPU_PREEMPTED : HANDLED;
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
		return vm_stop(v, "hardware task switch (vector %u through a task gate in the IDT to TSS selector 0x%x) "
			    "is not supported, rip 0x%lx", vectoring & 0xff, sel, vmcs_read(GUEST_RIP));
	if (source == 3)
		return vm_stop(v, "hardware task switch (a task gate in the IDT to TSS selector 0x%x) is not supported, "
			    "rip 0x%lx", sel, vmcs_read(GUEST_RIP));
	return vm_stop(v, "hardware task switch (%s TSS selector 0x%x) is not supported, rip 0x%lx", how[source], sel,
		    vmcs_read(GUEST_RIP));
}

/* INVLPG and INVPCID exit only where "INVLPG exiting" is a control the CPU cannot clear (vmx.c
 * clears it where allowed; SDM Vol. 3D, A.3.2), and then the CPU invalidated nothing. Dropping all
 * of the guest's linear translations does what either asks and more, which a processor may always
 * do (SDM Vol. 3A, 4.10.4.1). Without VPIDs every VM entry already did (SDM Vol. 3C, 29.4.3.3). */
static void flush_guest_tlb(struct vcpu *v)
{
	vmx_invvpid(vmx_of(v)->vpid);
}

static __attribute__((noinline)) int handle_invlpg(struct vcpu *v)
{
	/* paging=shadow: the exit qualification is the linear address (SDM Vol. 3C, 28.2.1). */
	if (vmx_spt_on(v))
		return vmx_retire(vcpu_spt_invlpg(v, vmcs_read(EXIT_QUALIFICATION)));
	flush_guest_tlb(v);
	skip_instruction();
	return HANDLED;
}

/* The linear address of an INVEPT/INVPCID/INVVPID-format memory operand: the instruction-information
 * field gives scaling (bits 1:0), address size (9:7), segment (17:15), index and base registers with
 * their invalid bits (21:18, 22, 26:23, 27) (SDM Vol. 3C, 28.2.5, Table 28-14); the exit qualification
 * is the displacement, sign-extended (28.2.1). The offset wraps at the address size; in 64-bit mode
 * only FS and GS add a base (SDM Vol. 3A, 3.4.4), elsewhere the linear address wraps at 4 GiB. */
static uint64_t insn_mem_operand(struct vcpu *v, uint32_t info, enum cpu_mode mode)
{
	unsigned asz = (info >> 7) & 7, seg = (info >> 15) & 7;
	uint64_t ea = vmcs_read(EXIT_QUALIFICATION), la;

	if (!(info & (1u << 22)))
		ea += vcpu_get_gpr(v, (info >> 18) & 15) << (info & 3);
	if (!(info & (1u << 27)))
		ea += vcpu_get_gpr(v, (info >> 23) & 15);
	ea &= asz == 2 ? ~0ull : asz == 1 ? 0xffffffffull : 0xffffull;
	la = mode == MODE_LONG64 && seg < VCPU_FS ? ea : ea + vcpu_get_seg(v, seg).base;
	return mode == MODE_LONG64 ? la : la & 0xffffffffull;
}

static __attribute__((noinline)) int handle_invpcid(struct vcpu *v)
{
	/* The type is in the register of instruction-information bits 31:28 (SDM Vol. 3C, 28.2.5,
	 * Table 28-14); types above 3 raise #GP(0), and so does a descriptor with bits 63:12 set, a
	 * PCID other than 0 with CR4.PCIDE = 0 (types 0 and 1) or a non-canonical address (type 0: bits
	 * 63:47 equal, SDM Vol. 3A, 3.3.7.1; 5-level paging is not offered)
	 * (SDM Vol. 2B, INVPCID). The descriptor is read as a data access at the guest's CPL, which
	 * may #PF. Segment limits are not checked. */
	uint32_t info = vmcs_read32(VMX_INSTRUCTION_INFO);
	enum cpu_mode mode = guest_mode(v);
	uint64_t type = vcpu_get_gpr(v, info >> 28), desc[2], la = insn_mem_operand(v, info, mode);
	unsigned pcid;
	struct gpt_ctx ctx;
	struct gpt_result r;
	int err;

	if (mode != MODE_LONG64)
		type &= 0xffffffff;
	if (type > 3) {
		vmx_queue_exception(v, VEC_GP, true, 0);
		return HANDLED;
	}
	vcpu_gpt_context(v, &ctx);
	err = gpt_read(&ctx, la, desc, sizeof(desc), false, &r);
	if (err == GPT_NOT_PRESENT || err == GPT_RESERVED || err == GPT_PERM) {
		vcpu_set_cr2(v, r.gva);
		vmx_inject_exception(v, VEC_PF, true, r.pf_error);
		return HANDLED;
	}
	if (err == GPT_NONCANONICAL) {     /* #SS(0) through SS, else #GP(0) (SDM Vol. 3A, 3.3.7.1) */
		vmx_inject_exception(v, ((info >> 15) & 7) == VCPU_SS ? VEC_SS : VEC_GP, true, 0);
		return HANDLED;
	}
	if (err)
		return vm_stop(v, "INVPCID: its descriptor at guest-linear 0x%lx is not in guest RAM, rip 0x%lx",
			       la, vmcs_read(GUEST_RIP));
	pcid = desc[0] & 0xfff;
	if ((desc[0] >> 12) || (type <= 1 && pcid && !(vcpu_get_cr4(v) & CR4_PCIDE)) ||
	    (type == 0 && (uint64_t)((int64_t)(desc[1] << 16) >> 16) != desc[1])) {
		vmx_inject_exception(v, VEC_GP, true, 0);
		return HANDLED;
	}
	if (vmx_spt_on(v))
		vcpu_spt_invpcid(v, type, pcid, desc[1]);
	flush_guest_tlb(v);
	skip_instruction();
	return HANDLED;
}

static __attribute__((noinline)) int handle_entry_failure(struct vcpu *v, uint32_t reason)
{
	unsigned basic = reason & 0xffff;

	vcpu_dump(v);
	/* SDM Vol. 3C, 27.8: exit qualification 2 = PDPTE load failed, 3 = NMI injection, 4 = link. */
	return vm_stop(v, "VM entry failed: %s (exit reason %u, qualification %lu)", exit_reason_name(basic),
		    basic, vmcs_read(EXIT_QUALIFICATION));
}

/* Exits no guest can cause: each needs a control tessera does not set (docs/exits.md, the table of
 * exit reasons, says which). Reaching this is a hypervisor bug; the guest is stopped, the host goes on. */
static __attribute__((noinline)) int handle_unknown(struct vcpu *v, unsigned basic)
{
	vcpu_dump(v);
	return vm_stop(v, "unexpected VM exit %u (%s: tessera enables no control that causes it), qualification 0x%lx, "
		    "rip 0x%lx", basic, exit_reason_name(basic), vmcs_read(EXIT_QUALIFICATION), vmcs_read(GUEST_RIP));
}

static __attribute__((noinline)) int handle_triple_fault(struct vcpu *v)
{
	vcpu_dump(v);
	return vm_stop(v, "triple fault, rip 0x%lx", vmcs_read(GUEST_RIP));
}

/* --- the injection step ------------------------------------------------------------------------- */

/* spec_before_entry and spec_after_exit (arch/x86/spec.h) with the comparison of the guest's
 * IA32_SPEC_CTRL against the host's made once, where it changes, not at every exit, and the L1D
 * flush's test in the same byte (vmx_of(v)->spec_entry, vcpu_spec_entry). */
static inline __attribute__((always_inline)) void entry_spec(const struct vcpu *v)
{
	if (__builtin_expect(vmx_of(v)->spec_entry != 0, 0)) {
		if (vmx_of(v)->spec_entry & VCPU_SPEC_SWAP)
			wrmsr(MSR_IA32_SPEC_CTRL, spec_ctrl_in_guest(v->spec_ctrl));
		if (vmx_of(v)->spec_entry & VCPU_SPEC_L1D)
			wrmsr(MSR_IA32_FLUSH_CMD, FLUSH_CMD_L1D);
	}
}

static inline __attribute__((always_inline)) void exit_spec(const struct vcpu *v)
{
	if (__builtin_expect(vmx_of(v)->spec_entry & VCPU_SPEC_SWAP, 0))
		wrmsr(MSR_IA32_SPEC_CTRL, spec.host_spec_ctrl);
}

/* Has VM entry deliver the event `info` (SDM Vol. 3C, 25.8.3), or, in virtual-8086 mode, which would
 * deliver it through the protected-mode IDT, delivers it through the real-mode IVT (vmx/realmode.c). */
static inline __attribute__((always_inline)) void entry_event(struct vcpu *v, uint32_t info, uint32_t len)
{
	if (__builtin_expect(vmx_of(v)->rm.vm86, 0))
		vmx_rm_deliver(v, info, len);
	else
		vmcs_write(VM_ENTRY_INTR_INFO_FIELD, info);
}

/* Writes the event to deliver into the VM-entry fields (SDM Vol. 3C, 25.8.3). */
static void write_event(struct vcpu *v, const struct vmx_event *e)
{
	if (__builtin_expect(vmx_of(v)->rm.vm86, 0)) {
		vmx_rm_deliver(v, e->info, e->insn_len);
		return;
	}
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
 *    has already decided it beats the guest's task and processor priority (vlapic_pending_vector).
 * `full`: NMIs and the 8259A's line are looked at too. Only a kick (VCPU_WORK_EVENT), a window exit,
 * a register write (LINT0, the APIC's enable) or a window still asked for can change what they
 * give; the rest of the time (the APIC timer firing, an exception to deliver) neither is pending
 * (one that was pending left a window asked for, or VCPU_WORK_ENTRY set, below). */
static inline __attribute__((always_inline)) void deliver_event(struct vcpu *v)
{
	write_event(v, &vmx_of(v)->event);
	vmx_of(v)->event.valid = false;
	/* What waits behind it (an NMI, the 8259A's interrupt, the APIC's) is looked at next entry. */
	vcpu_work_post(&v->work, VCPU_WORK_ENTRY);
}

/*
 * With virtual-interrupt delivery: is a vector requested (RVI not 0) of a guest that cannot take it
 * now (RFLAGS.IF = 0)? Then the entry asks for an interrupt window rather than have the CPU evaluate
 * RVI: with interrupt-window exiting set, neither VM entry nor EOI, TPR or self-IPI virtualization
 * recognizes a pending virtual interrupt (SDM Vol. 3C, 30.2.1), and once the guest sets IF the window
 * exit brings it here again, where the entry without the window recognizes and delivers it at that
 * same instruction boundary (30.2.2): what the guest sees is unchanged, for one exit more.
 *
 * The reason is Bochs 2.7 (to its current source), which otherwise delivers the vector to the guest
 * with IF = 0 when a host interrupt (a wake-up IPI) arrives: external-interrupt exiting unmasks host
 * interrupts whatever the guest's IF once the guest has run CLI, and the handler of a host interrupt
 * in the guest (event.cc, InterruptAcknowledge) delivers a pending virtual interrupt, masked or not,
 * in place of the external-interrupt exit. A Linux timer interrupt so delivered inside a section with
 * interrupts disabled deadlocked on a lock that section held (docs/hardware.md; docs/tests.md, the
 * hang of linux-2vcpus). A vector the CPU itself makes request while the guest runs on with IF = 0
 * (a virtualized EOI uncovering a lower one, an x2APIC self IPI) is beyond an entry's reach: under
 * Bochs that case stays open.
 */
static inline __attribute__((always_inline)) bool apicv_hold(void)
{
	return (vmcs_read16(GUEST_INTR_STATUS) & 0xff) && !(vmcs_read(GUEST_RFLAGS) & RFLAGS_IF);
}

static inline __attribute__((always_inline)) int inject_events(struct vcpu *v, bool full)
{
	struct vlapic *l = &v->lapic;
	uint32_t want;
	bool nmi;
	int vector;

	/* Not full: no window was asked for (nothing waited), no NMI or 8259A news. With APIC
	 * virtualization the CPU delivers the APIC's vectors (apicv_sync): only an exception, and the
	 * window a requested vector waits for while the guest's IF is 0 (apicv_hold). */
	if (!full && vmx_of(v)->apicv) {
		if (__builtin_expect(vmx_of(v)->event.valid, 0))
			deliver_event(v);
		if (__builtin_expect(apicv_hold(), 0))
			vmcs_write(CPU_BASED_VM_EXEC_CONTROL, vmx_of(v)->cpu_ctls |= CPU_INTR_WINDOW_EXITING);
		return HANDLED;
	}
	want = vmx_of(v)->cpu_ctls & ~(CPU_INTR_WINDOW_EXITING | CPU_NMI_WINDOW_EXITING);
	nmi = full && __atomic_load_n(&l->nmi_pending, __ATOMIC_ACQUIRE) != 0;
	/* With virtual-interrupt delivery the CPU injects the APIC's interrupts itself (apicv_sync). */
	vector = vmx_of(v)->apicv ? -1 : vlapic_pending_vector(l);

	if (vmx_of(v)->event.valid) {
		deliver_event(v);
	} else if (full && !nmi && v->index == 0 && vlapic_extint_enabled(l) && vpc_extint_pending(&v->vm->pc)) {
		/* The 8259A's interrupt through vCPU 0's LINT0 (ExtINT): the INTA cycle gives the vector
		 * when the guest can take an interrupt (SDM Vol. 3A, 11.5.1; the PIC's priority, not
		 * the APIC's, decides). */
		uint32_t block = vmcs_read32(GUEST_INTERRUPTIBILITY_INFO);

		if (!(block & (BLOCKING_BY_STI | BLOCKING_BY_MOV_SS)) && (vmcs_read(GUEST_RFLAGS) & RFLAGS_IF))
			entry_event(v, INTR_INFO_VALID | INTR_TYPE_EXT_INTR | (uint32_t)vpc_extint_ack(&v->vm->pc), 0);
		if (vpc_extint_pending(&v->vm->pc))
			want |= CPU_INTR_WINDOW_EXITING;
	} else if (nmi || vector >= 0) {
		uint32_t block = vmcs_read32(GUEST_INTERRUPTIBILITY_INFO);

		if (nmi && !(block & (BLOCKING_BY_STI | BLOCKING_BY_MOV_SS | BLOCKING_BY_NMI))) {
			/* The pending NMI is a latch (vdev/lapic.h): this injection takes it; one posted
			 * from here on sets it again and waits for the NMI window. */
			__atomic_store_n(&l->nmi_pending, 0, __ATOMIC_RELEASE);
			entry_event(v, INTR_INFO_VALID | INTR_TYPE_NMI | 2, 0);
			nmi = __atomic_load_n(&l->nmi_pending, __ATOMIC_ACQUIRE) != 0;
		} else if (!nmi && !(block & (BLOCKING_BY_STI | BLOCKING_BY_MOV_SS)) &&
			   (vmcs_read(GUEST_RFLAGS) & RFLAGS_IF)) {
			vlapic_accept(l, vector);
			entry_event(v, INTR_INFO_VALID | INTR_TYPE_EXT_INTR | vector, 0);
			/* Nothing else can be pending now: the vector was the highest in IRR and is in
			 * service, so PPR's class is at least its own (SDM Vol. 3A, 11.8.3.1) and every
			 * vector left in IRR is at or below it. One posted meanwhile by another CPU
			 * comes with a kick, whose exit brings it here again. */
			vector = -1;
		}
	}
	if (nmi && vmx_caps.nmi_window)
		want |= CPU_NMI_WINDOW_EXITING;
	else if (nmi)                    /* no window exit to say when: look again at every entry */
		vcpu_work_post(&v->work, VCPU_WORK_ENTRY);
	if (vector >= 0 || (vmx_of(v)->apicv && apicv_hold()))
		want |= CPU_INTR_WINDOW_EXITING;
	if (want != vmx_of(v)->cpu_ctls)
		vmcs_write(CPU_BASED_VM_EXEC_CONTROL, vmx_of(v)->cpu_ctls = want);
	return HANDLED;
}

/* With APIC virtualization: tell the CPU which vector waits (RVI) and which is in service (SVI) in
 * the guest-interrupt status (SDM Vol. 3C, 30.1.1 and 30.2: it evaluates them at VM entry and
 * delivers when the guest can take it); level-triggered vectors exit on their EOI (the EOI-exit
 * bitmap, 30.1.4), so their source hears of it. Only after software changed the page: the CPU keeps
 * RVI and SVI in step with its own changes (virtual-interrupt delivery and EOI virtualization set
 * them from the page's IRR and ISR, 30.2.2 and 30.1.4), and the guest-interrupt status is guest
 * state that a VM exit saves (25.4.2). */
static inline __attribute__((always_inline)) void apicv_sync(struct vcpu *v, uint32_t work, uint32_t dirty)
{
	struct vlapic *l = &v->lapic;
	int irr, isr;

	if (__builtin_expect(work & VCPU_WORK_APICV, 0) && v->vm->apicv_inhibited && !vmx_of(v)->apicv_x2) {
		vcpu_apicv_off(v);
		return;
	}
	if (!dirty)
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

		if (tmr != vmx_of(v)->eoi_exit[i]) {
			vmx_of(v)->eoi_exit[i] = tmr;
			vmcs_write(EOI_EXIT_BITMAP0 + 2 * (i / 2),
				   (uint64_t)vmx_of(v)->eoi_exit[i & ~1u] | (uint64_t)vmx_of(v)->eoi_exit[i | 1] << 32);
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

/* The long way to VM entry: something may have changed (vcpu/work.h says what). Inlined into the
 * exit dispatcher: the fewer instructions between the preemption timer's TSC read and VM entry, the
 * closer to its deadline an APIC-timer interrupt comes (see below). */
static inline __attribute__((always_inline)) int prepare_entry_slow(struct vcpu *v, bool resuming, uint64_t now)
{
	struct vlapic *l = &v->lapic;
	uint32_t work, dirty;
	uint64_t deadline, target;
	bool full;

	/* A run's first entry most often has bits to take (the kick that woke it): no peek first. */
	work = resuming ? vcpu_work_peek(&v->work) : 1;
	if (work)
		work = vcpu_work_take(&v->work);
	if (resuming) {
		/* Not this vCPU's turn any more: its guest is ending or an INIT came (vcpu_run takes
		 * it; both come with a kick), or its slice ended while exits were handled (a new slice,
		 * from vcpu_run, always runs the guest at least an instruction, however long the host
		 * took to get here). Before anything is injected: an event written into the VM-entry
		 * fields now would be overwritten by the injection step of the entry that really comes
		 * (an interrupt accepted into ISR, or the 8259A's acknowledged, never delivered). The
		 * bits taken are not lost: a run's first entry looks at every event. */
		if (__builtin_expect(work & VCPU_WORK_EVENT, 0) &&
		    (v->vm->ending || __atomic_load_n(&l->init_pending, __ATOMIC_ACQUIRE)))
			return VCPU_PREEMPTED;
		if (now >= v->slice_end)
			return VCPU_PREEMPTED;
		/* The APIC timer, and vCPU 0's device timers (the PIT, the RTC) when one is due or
		 * moved. */
		vlapic_timer_update(l, now);
		if ((work & VCPU_WORK_DEVICES) || (v->dev_deadline && now >= v->dev_deadline)) {
			vcpu_device_timers(v, now);
			/* What they raised (the 8259A's line: a kick) is for this entry. */
			work |= vcpu_work_take(&v->work);
		}
	} else {
		/* A run's first entry, right after vcpu_run looked at the guest's end and INIT, and
		 * its vcpu_runnable ran the timers: one that comes now comes with a kick, whose IPI
		 * makes the guest exit at once. It looks at every event. */
		work |= VCPU_WORK_ENTRY;
	}
	dirty = vlapic_take_dirty(l);
	if (vmx_of(v)->apicv)
		apicv_sync(v, work, dirty);
	full = (work & (VCPU_WORK_EVENT | VCPU_WORK_ENTRY)) || (dirty & VLAPIC_DIRTY_REGS) ||
	       (vmx_of(v)->cpu_ctls & (CPU_INTR_WINDOW_EXITING | CPU_NMI_WINDOW_EXITING));
	inject_events(v, full);
	/* The preemption timer ends the slice or brings the APIC timer's or a device's deadline,
	 * whichever is first (a deadline already past fires at the entry's first instruction boundary,
	 * 26.5.1). */
	target = v->slice_end;
	if ((deadline = vlapic_next_deadline(l)) && deadline < target)
		target = deadline;
	if (v->index == 0 && v->dev_deadline && v->dev_deadline < target)
		target = v->dev_deadline;
	if (target != v->armed_deadline || now >= v->entry_due) {
		/* The timer counts guest time only (SDM Vol. 3C, 26.5.1): it starts at VM entry, so
		 * the time left is taken as late as the host path allows, or every instruction the
		 * host ran since `now` would make the interrupt that much later. The exits' host
		 * time it does not count is taken in once a quarter of the slice left has passed
		 * (entry_due, VCPU_REARM_SHIFT; now < slice_end here). Without "save VMX-preemption
		 * timer value" (SDM Vol. 3C, 25.7.1) each entry starts it from the field afresh:
		 * entry_due is `now` there, and every entry comes here. */
		uint64_t rearm = now + (((v->slice_end - now) >> VCPU_REARM_SHIFT) & -(uint64_t)vmx_caps.save_timer);

		v->armed_deadline = target;
		if (__builtin_expect(!vmx_caps.ptimer, 0)) {
			/* No preemption timer (Bochs's penryn): the host's local APIC timer, which counts
			 * real time, host exits included, so it needs no re-arming until the target moves
			 * or it fired; its interrupt exits the guest (external-interrupt exiting, SDM Vol.
			 * 3C, 25.6.1, Table 25-5, bit 0; 26.2), as on SVM (svm/vcpu.c). */
			v->entry_due = target;
			lapic_timer_arm(target);
		} else {
			v->entry_due = rearm < target ? rearm : target;
			now = rdtsc();
			set_preemption_timer(target > now ? target - now : 0);
		}
	}
	entry_spec(v);
	return HANDLED;
}

int vmx_prepare_entry(struct vcpu *v, bool resuming)
{
	return prepare_entry_slow(v, resuming, rdtsc());
}

/* The preemption timer: the slice ended, or an APIC-timer deadline came (the injection step fires it). */
static __attribute__((noinline)) int handle_preemption_timer(struct vcpu *v)
{
	v->entry_due = 0;               /* the entry path fires what is due, ends the slice, re-arms */
	return HANDLED;
}

int vmx_exit_dispatch(struct vcpu *v)
{
	uint32_t reason, vectoring;
	unsigned basic;
	bool quick = false;              /* the exit may go straight back (below) */
	int r;

	exit_spec(v);                        /* first: the hypervisor's IA32_SPEC_CTRL (eIBRS) */
	reason = vmcs_read32(VM_EXIT_REASON);
	basic = reason & 0xffff;

	/* CPUID and VMCALL first, before the switch's binary search (where they took 10 and 16
	 * instructions): CPUID is the most frequent exit of a booting Linux. One bit test for both (bit
	 * `basic` mod 64 of a mask; no other reason up to EXIT_REASON_MAX lands on theirs), then the
	 * whole reason, so that a failed entry (bit 31) is never taken for one. Neither can come during
	 * event delivery (they are instructions the guest executed; the IDT-vectoring information is
	 * valid only for exits during delivery through the IDT, SDM Vol. 3C, 28.2.4), so they need not
	 * read it, and each is counted with its kind known. */
	_Static_assert(EXIT_REASON_MAX < 64 + EXIT_CPUID && EXIT_REASON_MAX < 64 + EXIT_VMCALL, "no alias");
	if (((1ull << EXIT_CPUID | 1ull << EXIT_VMCALL) >> (basic & 63)) & 1) {
		if (reason == EXIT_CPUID) {
			vcpu_exit_count(&v->exits, VCPU_EXIT_CPUID);
			r = vmx_retire(exit_cpuid(v));
			quick = true;
			goto handled;
		}
		if (reason == EXIT_VMCALL) {
			vcpu_exit_count(&v->exits, VCPU_EXIT_VMCALL);
			r = handle_vmcall(v);
			quick = true;
			goto handled;
		}
	}
	vectoring = vmcs_read32(IDT_VECTORING_INFO_FIELD);

	/* Both rare flags are bit 31 (SDM Vol. 3C, 25.9.1 and 25.9.3): one test for the two. */
	_Static_assert(INTR_INFO_VALID == 1u << 31 && EXIT_REASON_ENTRY_FAILURE == 1u << 31, "bit 31 of both");
	if (__builtin_expect((int32_t)(vectoring | reason) < 0, 0)) {
		if (vectoring & INTR_INFO_VALID)
			save_vectoring(v, vectoring);
		if (reason & EXIT_REASON_ENTRY_FAILURE)
			basic = EXIT_REASON_MAX + 1;     /* not counted, handled below */
	}
	/* The empty asm hides from the compiler that `basic` is neither CPUID nor VMCALL in the switch:
	 * with those cases gone it shapes the search otherwise (the preemption timer's exit took 12
	 * instructions more; I/O's 12 more with __builtin_expect). */
	if (__builtin_expect(basic <= EXIT_REASON_MAX, 1))
		vcpu_exit_count(&v->exits, vmx_exit_kinds[basic]);
	asm("" : "+r"(basic));
	switch (basic) {                 /* (its CPUID and VMCALL cases: for the search's shape, and the
					    reasons with more than the basic reason's bits) */
	case EXIT_CPUID:              r = vmx_retire(exit_cpuid(v)); quick = true; break;
	case EXIT_VMCALL:             r = handle_vmcall(v); quick = true; break;
	case EXIT_IO_INSTRUCTION:     r = handle_io(v); quick = true; break;
	case EXIT_MSR_READ:           r = vmx_retire(vcpu_handle_rdmsr(v)); quick = true; break;
	case EXIT_MSR_WRITE:
		r = vmx_retire(vcpu_handle_wrmsr(v));
		/* IA32_SPEC_CTRL may have changed (WRMSR leaves ECX as it was): whether entries and
		 * exits switch it. */
		if (__builtin_expect((uint32_t)v->regs.rcx == MSR_IA32_SPEC_CTRL, 0))
			vmx_of(v)->spec_entry = vcpu_spec_entry(v->spec_ctrl);
		break;
	case EXIT_CR_ACCESS:          r = vmx_exit_cr(v); quick = true; break;
	case EXIT_XSETBV:             r = vmx_retire(vcpu_handle_xsetbv(v)); quick = true; break;
	case EXIT_EPT_VIOLATION:      r = vmx_exit_npf(v); quick = true; break;
	case EXIT_HLT:                r = vmx_exit_hlt(v); break;
	case EXIT_PREEMPTION_TIMER:   r = handle_preemption_timer(v); break;
	case EXIT_APIC_ACCESS:        r = vmx_exit_apic_access(v); break;
	case EXIT_APIC_WRITE:         r = vmx_exit_apic_write(v); break;
	case EXIT_EOI_INDUCED:
		vlapic_virtual_eoi(&v->lapic, vmcs_read(EXIT_QUALIFICATION) & 0xff);
		r = HANDLED;
		break;
	case EXIT_INTERRUPT_WINDOW:      /* the guest can take the interrupt now: the injection step delivers it */
	case EXIT_NMI_WINDOW:            /* (the window asked for sends the entry the long way) */
		r = HANDLED;
		break;
	case EXIT_EXCEPTION_NMI:      r = handle_exception_nmi(v); break;
	case EXIT_EXTERNAL_INTERRUPT: r = handle_external_interrupt(v); break;
	case EXIT_TRIPLE_FAULT:       r = handle_triple_fault(v); break;
	case EXIT_WBINVD:                /* caches are shared with other guests: a no-op for guests */
		skip_instruction();
		r = HANDLED;
		break;
	case EXIT_RDPMC:                 /* no performance counters for guests (CPUID leaf 0xA is empty) */
		vmx_queue_exception(v, VEC_GP, true, 0);
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
		r = vm_stop(v, "EPT misconfiguration at GPA 0x%lx (a hypervisor bug)",
			 vmcs_read(GUEST_PHYSICAL_ADDRESS));
		break;
	case EXIT_VMCLEAR: case EXIT_VMLAUNCH: case EXIT_VMPTRLD: case EXIT_VMPTRST:
	case EXIT_VMREAD: case EXIT_VMRESUME: case EXIT_VMWRITE: case EXIT_VMOFF: case EXIT_VMON:
	case EXIT_INVEPT: case EXIT_INVVPID: case EXIT_MWAIT: case EXIT_MONITOR: case EXIT_GETSEC:
	case EXIT_VMFUNC: case EXIT_SEAMCALL: case EXIT_TDCALL:
		/* No nested VMX, no MONITOR/MWAIT, no SMX (CPUID hides them), no VM functions, no TDX:
		 * what a CPU without them does (SDM Vol. 2, each instruction's #UD conditions). */
		vmx_queue_exception(v, VEC_UD, false, 0);
		r = HANDLED;
		break;
	case EXIT_REASON_MAX + 1:
		r = handle_entry_failure(v, reason);
		break;
	default:
		r = handle_unknown(v, basic);
		break;
	}
handled:
	/* Before VM entry. An exit that emulated an instruction (a CPUID, an I/O access that moved no
	 * device deadline, a hypercall) has most often changed nothing the injection step looks at: no
	 * bit in the work word, nothing the local APIC model changed, no exception to deliver, no
	 * deadline due (one TSC read against the earliest deadline, which the preemption timer is
	 * armed for and goes on counting from where the exit stopped it: "save VMX-preemption timer
	 * value", SDM Vol. 3C, 25.7.1). Then it goes straight back to the guest. The exits that are
	 * about events (the preemption timer, windows, APIC writes and EOIs, HLT, a host interrupt or
	 * a kick, a WRMSR: most are of the APIC's timer or ICR) go the long way without asking; a WRMSR
	 * of IA32_TSC_DEADLINE relies on it (the model marks no page change for it). */
	if (__builtin_expect(r == HANDLED, 1)) {
		uint64_t now = rdtsc();

		if (quick && vcpu_work_none(vcpu_work_peek(&v->work), __atomic_load_n(&v->lapic.dirty, __ATOMIC_RELAXED),
					    now, v->entry_due)) {
			entry_spec(v);
			return 0;
		}
		if ((r = prepare_entry_slow(v, true, now)) == HANDLED)
			return 0;
	}
	v->action = (enum vcpu_action)r;
	return 1;
}
