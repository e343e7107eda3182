/* The VMCB: one guest's control area and state save area for VMRUN. AMD APM Vol. 2, Appendix B,
 * Table B-1 (control area, offsets 000h..3FFh) and Table B-2 (state save area, from offset 400h).
 * Touched only under svm/ (tests/check_deps.py). */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Intercept vector 3, control offset 00Ch (Table B-1). */
#define VMCB_INTERCEPT_INTR      (1u << 0)   /* physical INTR */
#define VMCB_INTERCEPT_NMI       (1u << 1)
#define VMCB_INTERCEPT_INIT      (1u << 3)
#define VMCB_INTERCEPT_VINTR     (1u << 4)   /* the guest can take the virtual interrupt V_IRQ (15.21.4) */
#define VMCB_INTERCEPT_RDPMC     (1u << 15)  /* RDPMC (15.9) */
#define VMCB_INTERCEPT_IRET      (1u << 20)  /* IRET, before it runs (15.9) */
#define VMCB_INTERCEPT_CPUID     (1u << 18)
#define VMCB_INTERCEPT_INVD      (1u << 22)
#define VMCB_INTERCEPT_HLT       (1u << 24)
#define VMCB_INTERCEPT_INVLPG    (1u << 25)  /* paging=shadow (svm/spt.c) */
#define VMCB_INTERCEPT_INVLPGA   (1u << 26)
#define VMCB_INTERCEPT_IOIO      (1u << 27)  /* IN/OUT/INS/OUTS checked against the IOPM (15.10) */
#define VMCB_INTERCEPT_MSR       (1u << 28)  /* RDMSR/WRMSR checked against the MSRPM (15.11) */
#define VMCB_INTERCEPT_TASK_SW   (1u << 29)
#define VMCB_INTERCEPT_SHUTDOWN  (1u << 31)  /* a triple fault ends in #VMEXIT, not a reset of the host */
/* Intercept vector 4, control offset 010h (Table B-1). */
#define VMCB_INTERCEPT_VMRUN     (1u << 0)   /* must be set, else VMRUN fails its checks (15.5.1) */
#define VMCB_INTERCEPT_VMMCALL   (1u << 1)
#define VMCB_INTERCEPT_VMLOAD    (1u << 2)
#define VMCB_INTERCEPT_VMSAVE    (1u << 3)
#define VMCB_INTERCEPT_STGI      (1u << 4)
#define VMCB_INTERCEPT_CLGI      (1u << 5)
#define VMCB_INTERCEPT_SKINIT    (1u << 6)
#define VMCB_INTERCEPT_WBINVD    (1u << 9)   /* WBINVD, and WBNOINVD (F3 0F 09) with it */
#define VMCB_INTERCEPT_MONITOR   (1u << 10)  /* MONITOR */
#define VMCB_INTERCEPT_MWAIT     (1u << 11)  /* MWAIT, unconditionally */
#define VMCB_INTERCEPT_MWAIT_ARM (1u << 12)  /* MWAIT only if the monitor hardware is armed */
#define VMCB_INTERCEPT_XSETBV    (1u << 13)
/* Intercept vector 5, control offset 014h (Table B-1). */
#define VMCB_INTERCEPT_INVPCID   (1u << 2)
/* CR intercepts, control offset 000h: bits 15:0 reads of CR0-15, bits 31:16 writes (Table B-1). */
#define VMCB_INTERCEPT_CR_READ(n)  (1u << (n))
#define VMCB_INTERCEPT_CR_WRITE(n) (1u << (16 + (n)))
/* EXITINFO1 of a CR access with decode assists: bit 63 valid, bits 3:0 the GPR (15.8.1). */
#define CR_EXIT_GPR_VALID        (1ull << 63)
/* Intercept of exceptions, control offset 008h: bit n for vector n (15.12). */
#define VMCB_INTERCEPT_DB        (1u << 1)
#define VMCB_INTERCEPT_UD        (1u << 6)
#define VMCB_INTERCEPT_GP        (1u << 13)  /* paging=shadow where the CPU has no PCID (svm/spt.c) */
#define VMCB_INTERCEPT_PF        (1u << 14)  /* paging=shadow (svm/spt.c) */
#define VMCB_INTERCEPT_AC        (1u << 17)

/* VINTR control, INT_CTL at control offset 060h (Table B-1; 15.21). */
#define VMCB_V_IRQ               (1ull << 8)  /* a virtual interrupt is pending */
#define VMCB_V_INTR_PRIO_SHIFT   16           /* bits 19:16, its priority against V_TPR */
#define VMCB_V_IGN_TPR           (1ull << 20) /* ... or ignore V_TPR */
#define VMCB_V_INTR_MASKING      (1ull << 24) /* guest RFLAGS.IF masks virtual interrupts only; the host's
					       * RFLAGS.IF at VMRUN masks physical ones (15.21.1) */
/* INTERRUPT_SHADOW, control offset 068h bit 0: the guest is in an STI or MOV SS shadow (15.21.5). */
#define VMCB_INT_SHADOW          (1ull << 0)

/* EVENTINJ (control offset 0A8h) and EXITINTINFO (088h): one event, the same format (15.20). */
#define VMCB_EVT_VALID           (1ull << 31)
#define VMCB_EVT_ERR_VALID       (1ull << 11)
#define VMCB_EVT_TYPE_INTR       (0ull << 8)
#define VMCB_EVT_TYPE_NMI        (2ull << 8)
#define VMCB_EVT_TYPE_EXC        (3ull << 8)
#define VMCB_EVT_TYPE_SOFT       (4ull << 8)   /* INTn */
#define VMCB_EVT_TYPE_MASK       (7ull << 8)

/* EXITINFO1 of IOIO (15.10.2, Figure 15-2). */
#define IOIO_IN                  (1ull << 0)
#define IOIO_STR                 (1ull << 2)
#define IOIO_REP                 (1ull << 3)
#define IOIO_SZ_SHIFT            4            /* bits 6:4: SZ8, SZ16, SZ32, one-hot */
/* EXITINFO1 of NPF: a #PF error code (15.25.6). */
#define NPF_P                    (1ull << 0)  /* the nested entry was present: a permission fault */
#define NPF_W                    (1ull << 1)
#define NPF_ID                   (1ull << 4)  /* an instruction fetch */
#define NPF_GUEST_TABLE          (1ull << 33) /* during the walk of the guest's page tables (15.25.6) */

/* TLB_CONTROL, control offset 05Ch (15.16.1): 1 flushes every ASID's entries on VMRUN (every SVM
 * CPU has it; 3 and 7, this ASID only, need CPUID Fn8000_000A_EDX.FlushByAsid). */
#define VMCB_TLB_FLUSH_NONE      0
#define VMCB_TLB_FLUSH_ALL       1
#define VMCB_TLB_FLUSH_ASID      3
/* Control offset 090h bit 0: NP_ENABLE, nested paging with N_CR3 at 0B0h (15.25.3). */
#define VMCB_NP_ENABLE           (1ull << 0)

/* EXITCODE values, control offset 070h. APM Vol. 2, Appendix C, Table C-1. */
#define VMEXIT_CR0_READ          0x000       /* 000h + CR number */
#define VMEXIT_CR3_READ          0x003
#define VMEXIT_CR4_READ          0x004
#define VMEXIT_CR8_READ          0x008
#define VMEXIT_CR0_WRITE         0x010       /* 010h + CR number */
#define VMEXIT_CR3_WRITE         0x013
#define VMEXIT_CR4_WRITE         0x014
#define VMEXIT_CR8_WRITE         0x018
#define VMEXIT_EXCP_DB           0x041       /* 040h + vector */
#define VMEXIT_EXCP_UD           0x046
#define VMEXIT_EXCP_GP           0x04d
#define VMEXIT_EXCP_PF           0x04e
#define VMEXIT_EXCP_AC           0x051
#define VMEXIT_INTR              0x060
#define VMEXIT_NMI               0x061
#define VMEXIT_INIT              0x063
#define VMEXIT_VINTR             0x064
#define VMEXIT_RDPMC             0x06f
#define VMEXIT_IRET              0x074
#define VMEXIT_CPUID             0x072
#define VMEXIT_INVD              0x076
#define VMEXIT_HLT               0x078
#define VMEXIT_INVLPG            0x079
#define VMEXIT_INVLPGA           0x07a
#define VMEXIT_IOIO              0x07b
#define VMEXIT_MSR               0x07c
#define VMEXIT_TASK_SWITCH       0x07d
#define VMEXIT_SHUTDOWN          0x07f
#define VMEXIT_VMRUN             0x080
#define VMEXIT_VMMCALL           0x081
#define VMEXIT_VMLOAD            0x082
#define VMEXIT_VMSAVE            0x083
#define VMEXIT_STGI              0x084
#define VMEXIT_CLGI              0x085
#define VMEXIT_SKINIT            0x086
#define VMEXIT_WBINVD            0x089       /* WBINVD or WBNOINVD */
#define VMEXIT_MONITOR           0x08a
#define VMEXIT_MWAIT             0x08b
#define VMEXIT_MWAIT_CONDITIONAL 0x08c
#define VMEXIT_XSETBV            0x08d
#define VMEXIT_INVPCID           0x0a2
#define VMEXIT_NPF               0x400
#define VMEXIT_INVALID           (~0ull)     /* -1: the VMCB failed VMRUN's consistency checks */

/* EFER.SVME, bit 12: SVM instructions allowed (APM Vol. 2, 3.1.7 and 15.4). */
#define EFER_SVME                (1ull << 12)
/* VM_HSAVE_PA MSR: where VMRUN saves the host's state (15.30.4). */
#define MSR_VM_HSAVE_PA          0xc0010117u

/*
 * A segment in the state save area (Table B-2). The attribute is the descriptor's attribute bits
 * packed: bits 7:0 = descriptor bits 47:40 (type, S, DPL, P), bits 11:8 = descriptor bits 55:52
 * (AVL, L, D/B, G).
 */
struct vmcb_seg {
	uint16_t selector;
	uint16_t attrib;
	uint32_t limit;
	uint64_t base;
};
_Static_assert(sizeof(struct vmcb_seg) == 16, "APM Vol. 2, Table B-2");

struct vmcb_control {
	uint32_t intercept_cr;       /* 000h: bits 15:0 reads of CR0-15, 31:16 writes */
	uint32_t intercept_dr;       /* 004h */
	uint32_t intercept_exc;      /* 008h: one bit per exception vector */
	uint32_t intercept3;         /* 00Ch: VMCB_INTERCEPT_INTR ... SHUTDOWN */
	uint32_t intercept4;         /* 010h: VMCB_INTERCEPT_VMRUN ... */
	uint32_t intercept5;         /* 014h */
	uint8_t  rsvd0[0x03c - 0x018];
	uint16_t pause_filter_thresh;/* 03Ch */
	uint16_t pause_filter_count; /* 03Eh */
	uint64_t iopm_base_pa;       /* 040h */
	uint64_t msrpm_base_pa;      /* 048h */
	uint64_t tsc_offset;         /* 050h */
	uint32_t asid;               /* 058h: guest ASID, never 0 (15.5.1) */
	uint8_t  tlb_control;        /* 05Ch */
	uint8_t  rsvd1[3];
	uint64_t int_ctl;            /* 060h: V_TPR, V_IRQ, V_INTR_MASKING ... */
	uint64_t int_state;          /* 068h: interrupt shadow */
	uint64_t exit_code;          /* 070h */
	uint64_t exit_info1;         /* 078h */
	uint64_t exit_info2;         /* 080h */
	uint64_t exit_int_info;      /* 088h */
	uint64_t np_ctl;             /* 090h: VMCB_NP_ENABLE */
	uint64_t avic_apic_bar;      /* 098h */
	uint64_t ghcb_pa;            /* 0A0h */
	uint64_t event_inj;          /* 0A8h */
	uint64_t n_cr3;              /* 0B0h: nested page table root (15.25.3) */
	uint64_t virt_ext;           /* 0B8h: LBR virtualization, VMLOAD/VMSAVE virtualization */
	uint32_t clean;              /* 0C0h: VMCB clean bits (15.15) */
	uint32_t rsvd2;
	uint64_t next_rip;           /* 0C8h: nRIP, with nRIP save (15.7.1) */
	uint8_t  insn_len;           /* 0D0h: bytes fetched, with decode assists (15.8.4) */
	uint8_t  insn_bytes[15];     /* 0D1h */
	uint8_t  rsvd3[0x400 - 0x0e0];
};

struct vmcb_save {
	struct vmcb_seg es, cs, ss, ds, fs, gs, gdtr, ldtr, idtr, tr; /* 000h..09Fh (from 400h) */
	uint8_t  rsvd0[0x0cb - 0x0a0];
	uint8_t  cpl;                /* 0CBh */
	uint32_t rsvd1;
	uint64_t efer;               /* 0D0h: must have SVME (15.5.1) */
	uint8_t  rsvd2[0x148 - 0x0d8];
	uint64_t cr4;                /* 148h */
	uint64_t cr3;                /* 150h */
	uint64_t cr0;                /* 158h */
	uint64_t dr7;                /* 160h */
	uint64_t dr6;                /* 168h */
	uint64_t rflags;             /* 170h */
	uint64_t rip;                /* 178h */
	uint8_t  rsvd3[0x1d8 - 0x180];
	uint64_t rsp;                /* 1D8h */
	uint8_t  rsvd4[0x1f8 - 0x1e0];
	uint64_t rax;                /* 1F8h */
	uint64_t star, lstar, cstar, sfmask, kernel_gs_base; /* 200h..220h (VMLOAD/VMSAVE) */
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;    /* 228h..238h */
	uint64_t cr2;                /* 240h */
	uint8_t  rsvd5[0x268 - 0x248];
	uint64_t g_pat;              /* 268h: the guest's PAT under nested paging (15.25.8) */
	uint8_t  rsvd6[0xc00 - 0x270];
};

struct vmcb {
	struct vmcb_control ctl;
	struct vmcb_save save;
};

_Static_assert(offsetof(struct vmcb_control, pause_filter_thresh) == 0x03c, "APM Vol. 2, Table B-1");
_Static_assert(offsetof(struct vmcb_control, asid) == 0x058, "APM Vol. 2, Table B-1");
_Static_assert(offsetof(struct vmcb_control, int_ctl) == 0x060, "APM Vol. 2, Table B-1");
_Static_assert(offsetof(struct vmcb_control, exit_code) == 0x070, "APM Vol. 2, Table B-1");
_Static_assert(offsetof(struct vmcb_control, np_ctl) == 0x090, "APM Vol. 2, Table B-1");
_Static_assert(offsetof(struct vmcb_control, event_inj) == 0x0a8, "APM Vol. 2, Table B-1");
_Static_assert(offsetof(struct vmcb_control, n_cr3) == 0x0b0, "APM Vol. 2, Table B-1");
_Static_assert(offsetof(struct vmcb_control, clean) == 0x0c0, "APM Vol. 2, Table B-1");
_Static_assert(offsetof(struct vmcb_control, next_rip) == 0x0c8, "APM Vol. 2, Table B-1");
_Static_assert(offsetof(struct vmcb_control, insn_bytes) == 0x0d1, "APM Vol. 2, Table B-1");
_Static_assert(sizeof(struct vmcb_control) == 0x400, "APM Vol. 2, Table B-1");
_Static_assert(offsetof(struct vmcb_save, tr) == 0x090, "APM Vol. 2, Table B-2");
_Static_assert(offsetof(struct vmcb_save, cpl) == 0x0cb, "APM Vol. 2, Table B-2");
_Static_assert(offsetof(struct vmcb_save, efer) == 0x0d0, "APM Vol. 2, Table B-2");
_Static_assert(offsetof(struct vmcb_save, cr4) == 0x148, "APM Vol. 2, Table B-2");
_Static_assert(offsetof(struct vmcb_save, rflags) == 0x170, "APM Vol. 2, Table B-2");
_Static_assert(offsetof(struct vmcb_save, rip) == 0x178, "APM Vol. 2, Table B-2");
_Static_assert(offsetof(struct vmcb_save, rsp) == 0x1d8, "APM Vol. 2, Table B-2");
_Static_assert(offsetof(struct vmcb_save, rax) == 0x1f8, "APM Vol. 2, Table B-2");
_Static_assert(offsetof(struct vmcb_save, cr2) == 0x240, "APM Vol. 2, Table B-2");
_Static_assert(offsetof(struct vmcb_save, g_pat) == 0x268, "APM Vol. 2, Table B-2");
_Static_assert(sizeof(struct vmcb) == 4096, "the VMCB is one 4 KiB page (15.5.1)");
