/* VMCS field encodings, control bits and exit reasons, and the checked VMREAD/VMWRITE accessors.
 * Encodings: SDM Vol. 3D, Appendix B; controls: SDM Vol. 3C, 25.6-25.8; exit reasons: Appendix C. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

enum vmcs_field {
	/* 16-bit control, guest and host fields (B.1) */
	VIRTUAL_PROCESSOR_ID     = 0x0000,
	GUEST_ES_SELECTOR        = 0x0800,
	GUEST_CS_SELECTOR        = 0x0802,
	GUEST_SS_SELECTOR        = 0x0804,
	GUEST_DS_SELECTOR        = 0x0806,
	GUEST_FS_SELECTOR        = 0x0808,
	GUEST_GS_SELECTOR        = 0x080a,
	GUEST_LDTR_SELECTOR      = 0x080c,
	GUEST_TR_SELECTOR        = 0x080e,
	GUEST_INTR_STATUS        = 0x0810,   /* virtual-interrupt delivery: RVI (bits 7:0), SVI (15:8) */
	HOST_ES_SELECTOR         = 0x0c00,
	HOST_CS_SELECTOR         = 0x0c02,
	HOST_SS_SELECTOR         = 0x0c04,
	HOST_DS_SELECTOR         = 0x0c06,
	HOST_FS_SELECTOR         = 0x0c08,
	HOST_GS_SELECTOR         = 0x0c0a,
	HOST_TR_SELECTOR         = 0x0c0c,
	/* 64-bit control fields (B.2.1) */
	IO_BITMAP_A              = 0x2000,
	IO_BITMAP_B              = 0x2002,
	MSR_BITMAP               = 0x2004,
	VM_EXIT_MSR_STORE_ADDR   = 0x2006,
	VM_EXIT_MSR_LOAD_ADDR    = 0x2008,
	VM_ENTRY_MSR_LOAD_ADDR   = 0x200a,
	TSC_OFFSET               = 0x2010,
	VIRTUAL_APIC_PAGE_ADDR   = 0x2012,
	APIC_ACCESS_ADDR         = 0x2014,
	EOI_EXIT_BITMAP0         = 0x201c,   /* ... 1, 2, 3 follow at +2 each: vectors 0-63, ..., 192-255 */
	EPT_POINTER              = 0x201a,
	/* 64-bit read-only data field (B.2.2) */
	GUEST_PHYSICAL_ADDRESS   = 0x2400,
	/* 64-bit guest state fields (B.2.3) */
	VMCS_LINK_POINTER        = 0x2800,
	GUEST_IA32_DEBUGCTL      = 0x2802,
	GUEST_IA32_PAT           = 0x2804,
	GUEST_IA32_EFER          = 0x2806,
	GUEST_PDPTE0             = 0x280a,
	GUEST_PDPTE1             = 0x280c,
	GUEST_PDPTE2             = 0x280e,
	GUEST_PDPTE3             = 0x2810,
	/* 64-bit host state fields (B.2.4) */
	HOST_IA32_PAT            = 0x2c00,
	HOST_IA32_EFER           = 0x2c02,
	/* 32-bit control fields (B.3.1) */
	PIN_BASED_VM_EXEC_CONTROL = 0x4000,
	CPU_BASED_VM_EXEC_CONTROL = 0x4002,
	EXCEPTION_BITMAP         = 0x4004,
	PAGE_FAULT_ERROR_CODE_MASK = 0x4006,
	PAGE_FAULT_ERROR_CODE_MATCH = 0x4008,
	CR3_TARGET_COUNT         = 0x400a,
	VM_EXIT_CONTROLS         = 0x400c,
	VM_EXIT_MSR_STORE_COUNT  = 0x400e,
	VM_EXIT_MSR_LOAD_COUNT   = 0x4010,
	VM_ENTRY_CONTROLS        = 0x4012,
	VM_ENTRY_MSR_LOAD_COUNT  = 0x4014,
	VM_ENTRY_INTR_INFO_FIELD = 0x4016,
	VM_ENTRY_EXCEPTION_ERROR_CODE = 0x4018,
	VM_ENTRY_INSTRUCTION_LEN = 0x401a,
	SECONDARY_VM_EXEC_CONTROL = 0x401e,
	TPR_THRESHOLD            = 0x401c,
	/* 32-bit read-only data fields (B.3.2) */
	VM_INSTRUCTION_ERROR     = 0x4400,
	VM_EXIT_REASON           = 0x4402,
	VM_EXIT_INTR_INFO        = 0x4404,
	VM_EXIT_INTR_ERROR_CODE  = 0x4406,
	IDT_VECTORING_INFO_FIELD = 0x4408,
	IDT_VECTORING_ERROR_CODE = 0x440a,
	VM_EXIT_INSTRUCTION_LEN  = 0x440c,
	VMX_INSTRUCTION_INFO     = 0x440e,
	/* 32-bit guest state fields (B.3.3) */
	GUEST_ES_LIMIT           = 0x4800,
	GUEST_CS_LIMIT           = 0x4802,
	GUEST_SS_LIMIT           = 0x4804,
	GUEST_DS_LIMIT           = 0x4806,
	GUEST_FS_LIMIT           = 0x4808,
	GUEST_GS_LIMIT           = 0x480a,
	GUEST_LDTR_LIMIT         = 0x480c,
	GUEST_TR_LIMIT           = 0x480e,
	GUEST_GDTR_LIMIT         = 0x4810,
	GUEST_IDTR_LIMIT         = 0x4812,
	GUEST_ES_AR_BYTES        = 0x4814,
	GUEST_CS_AR_BYTES        = 0x4816,
	GUEST_SS_AR_BYTES        = 0x4818,
	GUEST_DS_AR_BYTES        = 0x481a,
	GUEST_FS_AR_BYTES        = 0x481c,
	GUEST_GS_AR_BYTES        = 0x481e,
	GUEST_LDTR_AR_BYTES      = 0x4820,
	GUEST_TR_AR_BYTES        = 0x4822,
	GUEST_INTERRUPTIBILITY_INFO = 0x4824,
	GUEST_ACTIVITY_STATE     = 0x4826,
	GUEST_SYSENTER_CS        = 0x482a,
	VMX_PREEMPTION_TIMER_VALUE = 0x482e,
	/* 32-bit host state field (B.3.4) */
	HOST_IA32_SYSENTER_CS    = 0x4c00,
	/* natural-width control fields (B.4.1) */
	CR0_GUEST_HOST_MASK      = 0x6000,
	CR4_GUEST_HOST_MASK      = 0x6002,
	CR0_READ_SHADOW          = 0x6004,
	CR4_READ_SHADOW          = 0x6006,
	/* natural-width read-only data fields (B.4.2) */
	EXIT_QUALIFICATION       = 0x6400,
	GUEST_LINEAR_ADDRESS     = 0x640a,
	/* natural-width guest state fields (B.4.3) */
	GUEST_CR0                = 0x6800,
	GUEST_CR3                = 0x6802,
	GUEST_CR4                = 0x6804,
	GUEST_ES_BASE            = 0x6806,
	GUEST_CS_BASE            = 0x6808,
	GUEST_SS_BASE            = 0x680a,
	GUEST_DS_BASE            = 0x680c,
	GUEST_FS_BASE            = 0x680e,
	GUEST_GS_BASE            = 0x6810,
	GUEST_LDTR_BASE          = 0x6812,
	GUEST_TR_BASE            = 0x6814,
	GUEST_GDTR_BASE          = 0x6816,
	GUEST_IDTR_BASE          = 0x6818,
	GUEST_DR7                = 0x681a,
	GUEST_RSP                = 0x681c,
	GUEST_RIP                = 0x681e,
	GUEST_RFLAGS             = 0x6820,
	GUEST_PENDING_DBG_EXCEPTIONS = 0x6822,
	GUEST_SYSENTER_ESP       = 0x6824,
	GUEST_SYSENTER_EIP       = 0x6826,
	/* natural-width host state fields (B.4.4) */
	HOST_CR0                 = 0x6c00,
	HOST_CR3                 = 0x6c02,
	HOST_CR4                 = 0x6c04,
	HOST_FS_BASE             = 0x6c06,
	HOST_GS_BASE             = 0x6c08,
	HOST_TR_BASE             = 0x6c0a,
	HOST_GDTR_BASE           = 0x6c0c,
	HOST_IDTR_BASE           = 0x6c0e,
	HOST_IA32_SYSENTER_ESP   = 0x6c10,
	HOST_IA32_SYSENTER_EIP   = 0x6c12,
	HOST_RSP                 = 0x6c14,
	HOST_RIP                 = 0x6c16,
};

/* Pin-based controls. SDM Vol. 3C, 25.6.1, Table 25-5. */
#define PIN_EXTINT_EXITING       (1u << 0)   /* external interrupts cause exits */
#define PIN_NMI_EXITING          (1u << 3)   /* NMIs cause exits (panic() stops CPUs with NMIs) */
#define PIN_VIRTUAL_NMIS         (1u << 5)   /* the CPU tracks the guest's NMI blocking (IRET ends it) */
#define PIN_PREEMPTION_TIMER     (1u << 6)   /* VMX-preemption timer: the time slice */

/* Primary processor-based controls. SDM Vol. 3C, 25.6.2, Table 25-6. */
#define CPU_INTR_WINDOW_EXITING  (1u << 2)   /* exit as soon as the guest can take an interrupt */
#define CPU_USE_TSC_OFFSETTING   (1u << 3)   /* RDTSC, RDTSCP, RDMSR of the TSC add TSC_OFFSET (26.3) */
#define CPU_HLT_EXITING          (1u << 7)
#define CPU_INVLPG_EXITING       (1u << 9)
#define CPU_MWAIT_EXITING        (1u << 10)
#define CPU_RDPMC_EXITING        (1u << 11)
#define CPU_CR3_LOAD_EXITING     (1u << 15)
#define CPU_CR3_STORE_EXITING    (1u << 16)
#define CPU_CR8_LOAD_EXITING     (1u << 19)
#define CPU_CR8_STORE_EXITING    (1u << 20)
#define CPU_TPR_SHADOW           (1u << 21)  /* a virtual-APIC page: CR8 and TPR accesses go there */
#define CPU_NMI_WINDOW_EXITING   (1u << 22)  /* exit as soon as the guest can take an NMI */
#define CPU_MOV_DR_EXITING       (1u << 23)
#define CPU_UNCOND_IO_EXITING    (1u << 24)  /* every IN/OUT exits */
#define CPU_USE_MSR_BITMAPS      (1u << 28)
#define CPU_MONITOR_EXITING      (1u << 29)
#define CPU_SECONDARY_CONTROLS   (1u << 31)

/* Secondary processor-based controls. SDM Vol. 3C, 25.6.2, Table 25-7. */
#define SEC_VIRT_APIC_ACCESSES   (1u << 0)   /* accesses to the APIC-access page are virtualized */
#define SEC_ENABLE_EPT           (1u << 1)
#define SEC_RDTSCP               (1u << 3)
#define SEC_VIRT_X2APIC          (1u << 4)   /* virtualize x2APIC mode: MSRs 0x800-0x8ff (30.5) */
#define SEC_ENABLE_VPID          (1u << 5)
#define SEC_WBINVD_EXITING       (1u << 6)
#define SEC_UNRESTRICTED_GUEST   (1u << 7)
#define SEC_APIC_REG_VIRT        (1u << 8)   /* APIC-register virtualization: reads from the page */
#define SEC_VIRT_INTR_DELIVERY   (1u << 9)   /* virtual-interrupt delivery: RVI/SVI, EOI virtualization */
#define SEC_INVPCID              (1u << 12)
#define SEC_XSAVES               (1u << 20)

/* VM-exit controls. SDM Vol. 3C, 25.7.1, Table 25-13. */
#define EXIT_SAVE_DEBUG_CONTROLS (1u << 2)   /* save the guest's DR7 and IA32_DEBUGCTL */
#define EXIT_HOST_ADDR_SPACE_SIZE (1u << 9)  /* return to 64-bit mode */
#define EXIT_SAVE_IA32_PAT       (1u << 18)
#define EXIT_LOAD_IA32_PAT       (1u << 19)
#define EXIT_SAVE_IA32_EFER      (1u << 20)
#define EXIT_LOAD_IA32_EFER      (1u << 21)
#define EXIT_SAVE_PREEMPTION_TIMER (1u << 22)

/* VM-entry controls. SDM Vol. 3C, 25.8.1, Table 25-15. */
#define ENTRY_LOAD_DEBUG_CONTROLS (1u << 2)  /* load the guest's DR7 and IA32_DEBUGCTL */
#define ENTRY_IA32E_MODE         (1u << 9)   /* the guest is in IA-32e mode after entry */
#define ENTRY_LOAD_IA32_PAT      (1u << 14)
#define ENTRY_LOAD_IA32_EFER     (1u << 15)

/* Basic exit reasons. SDM Vol. 3D, Appendix C, Table C-1. */
enum exit_reason {
	EXIT_EXCEPTION_NMI = 0,
	EXIT_EXTERNAL_INTERRUPT = 1,
	EXIT_TRIPLE_FAULT = 2,
	EXIT_INIT = 3,
	EXIT_SIPI = 4,
	EXIT_INTERRUPT_WINDOW = 7,
	EXIT_NMI_WINDOW = 8,
	EXIT_TASK_SWITCH = 9,
	EXIT_CPUID = 10,
	EXIT_GETSEC = 11,
	EXIT_HLT = 12,
	EXIT_INVD = 13,
	EXIT_INVLPG = 14,
	EXIT_RDPMC = 15,
	EXIT_RDTSC = 16,
	EXIT_RSM = 17,
	EXIT_VMCALL = 18,
	EXIT_VMCLEAR = 19,
	EXIT_VMLAUNCH = 20,
	EXIT_VMPTRLD = 21,
	EXIT_VMPTRST = 22,
	EXIT_VMREAD = 23,
	EXIT_VMRESUME = 24,
	EXIT_VMWRITE = 25,
	EXIT_VMOFF = 26,
	EXIT_VMON = 27,
	EXIT_CR_ACCESS = 28,
	EXIT_DR_ACCESS = 29,
	EXIT_IO_INSTRUCTION = 30,
	EXIT_MSR_READ = 31,
	EXIT_MSR_WRITE = 32,
	EXIT_INVALID_GUEST_STATE = 33,
	EXIT_MSR_LOADING = 34,
	EXIT_MWAIT = 36,
	EXIT_MONITOR_TRAP_FLAG = 37,
	EXIT_MONITOR = 39,
	EXIT_PAUSE = 40,
	EXIT_MACHINE_CHECK = 41,
	EXIT_TPR_BELOW_THRESHOLD = 43,
	EXIT_APIC_ACCESS = 44,
	EXIT_EOI_INDUCED = 45,
	EXIT_GDTR_IDTR = 46,
	EXIT_LDTR_TR = 47,
	EXIT_EPT_VIOLATION = 48,
	EXIT_EPT_MISCONFIG = 49,
	EXIT_INVEPT = 50,
	EXIT_RDTSCP = 51,
	EXIT_PREEMPTION_TIMER = 52,
	EXIT_INVVPID = 53,
	EXIT_WBINVD = 54,
	EXIT_XSETBV = 55,
	EXIT_APIC_WRITE = 56,
	EXIT_RDRAND = 57,
	EXIT_INVPCID = 58,
	EXIT_VMFUNC = 59,
	EXIT_RDSEED = 61,
	EXIT_XSAVES = 63,
	EXIT_XRSTORS = 64,
	EXIT_REASON_MAX = 70,
	/* Past EXIT_REASON_MAX (not counted per reason): on CPUs with Intel TDX these two exit
	 * unconditionally in VMX non-root operation (SDM Vol. 3D, Table C-1). */
	EXIT_SEAMCALL = 76,
	EXIT_TDCALL = 77,
};
#define EXIT_REASON_ENTRY_FAILURE (1u << 31) /* bit 31 of the exit reason: VM entry failed */

/* VM-entry interruption-information field. SDM Vol. 3C, 25.8.3, Table 25-17. */
#define INTR_INFO_VALID          (1u << 31)
#define INTR_INFO_DELIVER_CODE   (1u << 11)
#define INTR_TYPE_HW_EXCEPTION   (3u << 8)
#define INTR_TYPE_EXT_INTR       (0u << 8)
#define INTR_TYPE_NMI            (2u << 8)
#define INTR_TYPE_PRIV_SW_EXCEPTION (5u << 8)  /* INT1 (ICEBP) */
#define INTR_TYPE_MASK           (7u << 8)

/* Guest interruptibility state. SDM Vol. 3C, 25.4.2, Table 25-3. */
#define BLOCKING_BY_STI          (1u << 0)
#define BLOCKING_BY_MOV_SS       (1u << 1)
#define BLOCKING_BY_NMI          (1u << 3)

/* Checked accessors: VMREAD/VMWRITE set CF or ZF on failure (SDM Vol. 3C, 31.2, "Conventions");
 * the slow path reports the field, VM_INSTRUCTION_ERROR and the caller. A failing VMREAD/VMWRITE is
 * a hypervisor bug, not the guest's doing. Inline: they sit on every exit's path. */
void vmcs_read_failed(enum vmcs_field f, void *caller);
void vmcs_write_failed(enum vmcs_field f, uint64_t v, void *caller);

static inline __attribute__((always_inline)) uint64_t vmcs_read(enum vmcs_field f)
{
	uint64_t v;

	/* One conditional jump on the failure flags (CF or ZF: "not above"). */
	asm goto("vmread %1, %0; jna %l[failed]" : "=r"(v) : "r"((uint64_t)f) : "cc" : failed);
	return v;
failed:
	vmcs_read_failed(f, __builtin_return_address(0));
	return 0;
}

static inline __attribute__((always_inline)) void vmcs_write(enum vmcs_field f, uint64_t v)
{
	asm goto("vmwrite %1, %0; jna %l[failed]" : : "r"((uint64_t)f), "rm"(v) : "cc" : failed);
	return;
failed:
	vmcs_write_failed(f, v, __builtin_return_address(0));
}
#define vmcs_read64 vmcs_read
#define vmcs_read32(f) ((uint32_t)vmcs_read(f))
#define vmcs_read16(f) ((uint16_t)vmcs_read(f))

const char *vm_instruction_error_name(unsigned err);
