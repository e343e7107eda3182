/* Start states both back ends use: the state INIT and Start-up IPIs give a vCPU, and a start state as
 * the monitor's snapshot shows a vCPU that never ran. */
#include "lib/string.h"
#include "arch/x86/cpu.h"
#include "vcpu/snapshot.h"
#include "vcpu/vcpu_state.h"

/* The state after INIT (SDM Vol. 3A, 9.1.1, Table 9-1): real mode, CS F000:FFF0 with base FFFF0000,
 * caches off (CD, NW), EDX = the processor signature. A Start-up IPI with vector V then starts the CPU
 * at V000:0000 in real mode (SDM Vol. 3A, 9.4.4): `sipi` < 0 for the INIT state itself. AMD's INIT
 * state is the same (APM Vol. 2, 14.1.3, Table 14-1). */
void vcpu_state_reset(struct vcpu_state *s, int sipi)
{
	struct seg_state data = { 0, 0, 0xffff, AR_DATA16 };

	memset(s, 0, sizeof(*s));
	s->cr0 = CR0_CD | CR0_NW | CR0_ET;
	s->rflags = 0x2;
	s->rdx = cpuid(1, 0).eax;
	s->cs = (struct seg_state){ 0xf000, 0xffff0000ull, 0xffff, AR_CODE16 };
	s->rip = 0xfff0;
	if (sipi >= 0) {
		s->cs = (struct seg_state){ (uint16_t)(sipi << 8), (uint64_t)sipi << 12, 0xffff, AR_CODE16 };
		s->rip = 0;
	}
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->ldtr = (struct seg_state){ 0, 0, 0xffff, AR_LDT };
	s->tr = (struct seg_state){ 0, 0, 0xffff, AR_TSS32_BUSY };
	s->gdtr_limit = s->idtr_limit = 0xffff;
}

/* A vCPU that never ran: the state it will start in (what vcpu_create was given). */
void vcpu_state_snapshot(struct vcpu_snapshot *s, const struct vcpu_state *st)
{
	const struct seg_state *segs[VCPU_NSEGS] = {
		[VCPU_ES] = &st->es, [VCPU_CS] = &st->cs, [VCPU_SS] = &st->ss, [VCPU_DS] = &st->ds,
		[VCPU_FS] = &st->fs, [VCPU_GS] = &st->gs, [VCPU_LDTR] = &st->ldtr, [VCPU_TR] = &st->tr,
	};

	s->rip = st->rip, s->rsp = st->rsp, s->rflags = st->rflags;
	s->cr0 = st->cr0, s->cr3 = st->cr3, s->cr4 = st->cr4, s->efer = st->efer;
	for (unsigned i = 0; i < VCPU_NSEGS; i++)
		s->seg[i] = vcpu_seg_of_ar(segs[i]->sel, segs[i]->base, segs[i]->limit, segs[i]->ar);
	s->gdtr_base = st->gdtr_base, s->gdtr_limit = st->gdtr_limit;
	s->idtr_base = st->idtr_base, s->idtr_limit = st->idtr_limit;
	s->rax = st->rax, s->rbx = st->rbx, s->rcx = st->rcx, s->rdx = st->rdx;
	s->rsi = st->rsi, s->rdi = st->rdi, s->rbp = st->rbp;
}
