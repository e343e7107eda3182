/* The only home of the instructions C cannot say: CPUID, MSRs, control registers, port I/O, TSC. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* Control-register bits. SDM Vol. 3A, 2.5 (Figure 2-7). */
#define CR0_PE   (1ull << 0)   /* protection enable */
#define CR0_MP   (1ull << 1)
#define CR0_TS   (1ull << 3)   /* task switched */
#define CR0_ET   (1ull << 4)
#define CR0_NE   (1ull << 5)   /* native x87 error reporting */
#define CR0_WP   (1ull << 16)  /* write protect: ring 0 honours read-only pages */
#define CR0_NW   (1ull << 29)
#define CR0_CD   (1ull << 30)
#define CR0_PG   (1ull << 31)  /* paging */
#define CR4_VME  (1ull << 0)   /* virtual-8086 mode extensions (SDM Vol. 3A, 20.3) */
#define CR4_DE   (1ull << 3)   /* debugging extensions: DR4/DR5 are not DR6/DR7 (SDM Vol. 3B, 18.2.2) */
#define CR4_PAE  (1ull << 5)
#define CR4_PGE  (1ull << 7)
#define CR4_OSFXSR (1ull << 9)
#define CR4_VMXE (1ull << 13)  /* VMX enable (SDM Vol. 3C, 24.7) */
#define CR4_PCIDE (1ull << 17) /* process-context identifiers (IA-32e mode only) */
#define CR4_OSXSAVE (1ull << 18)
#define CR4_PKE  (1ull << 22)  /* protection keys for user-mode pages */

/* Architectural MSRs. SDM Vol. 4, Table 2-2. */
#define MSR_IA32_APIC_BASE       0x1b
#define MSR_IA32_FEATURE_CONTROL 0x3a
#define FEATURE_CONTROL_LOCKED          (1ull << 0)  /* IA32_FEATURE_CONTROL bits, SDM Vol. 3C, 24.7 */
#define FEATURE_CONTROL_VMX_OUTSIDE_SMX (1ull << 2)
#define MSR_IA32_SYSENTER_CS     0x174
#define MSR_IA32_SYSENTER_ESP    0x175
#define MSR_IA32_SYSENTER_EIP    0x176
#define MSR_IA32_PAT             0x277
#define MSR_IA32_MISC_ENABLE     0x1a0
#define MSR_EFER                 0xc0000080
#define MSR_STAR                 0xc0000081
#define MSR_LSTAR                0xc0000082
#define MSR_CSTAR                0xc0000083
#define MSR_SFMASK               0xc0000084
#define MSR_FS_BASE              0xc0000100
#define MSR_GS_BASE              0xc0000101
#define MSR_KERNEL_GS_BASE       0xc0000102

#define EFER_SCE (1ull << 0)   /* SYSCALL enable */
#define EFER_LME (1ull << 8)   /* long mode enable */
#define EFER_LMA (1ull << 10)  /* long mode active */
#define EFER_NXE (1ull << 11)  /* execute-disable enable */

#define RFLAGS_TF (1ull << 8)
#define RFLAGS_IF (1ull << 9)
#define RFLAGS_IOPL (3ull << 12) /* I/O privilege level */
#define RFLAGS_RF (1ull << 16)  /* resume: instruction breakpoints ignored for one instruction */
#define RFLAGS_VM (1ull << 17)  /* virtual-8086 mode */
#define RFLAGS_AC (1ull << 18)  /* alignment check */

struct cpuid_regs { uint32_t eax, ebx, ecx, edx; };

static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t subleaf)
{
	struct cpuid_regs r;

	asm volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
	return r;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t val)
{
	asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)val), "d"((uint32_t)(val >> 32)) : "memory");
}

#define DEFINE_CR(n) \
	static inline uint64_t read_cr##n(void) \
	{ uint64_t v; asm volatile("mov %%cr" #n ", %0" : "=r"(v)); return v; } \
	static inline void write_cr##n(uint64_t v) \
	{ asm volatile("mov %0, %%cr" #n : : "r"(v) : "memory"); }
DEFINE_CR(0)
DEFINE_CR(2)
DEFINE_CR(3)
DEFINE_CR(4)
#undef DEFINE_CR

static inline uint64_t read_rflags(void)
{
	uint64_t f;

	asm volatile("pushfq; pop %0" : "=r"(f));
	return f;
}

static inline void outb(uint16_t port, uint8_t v) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { asm volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { asm volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_relax(void) { asm volatile("pause" ::: "memory"); }
static inline void cli(void) { asm volatile("cli" ::: "memory"); }
static inline void sti(void) { asm volatile("sti" ::: "memory"); }
/* STI's one-instruction interrupt shadow (SDM Vol. 2B, STI) makes "sti; hlt" free of the lost-wake-up race. */
static inline void sti_hlt(void) { asm volatile("sti; hlt; cli" ::: "memory"); }
/* Lets interrupts pending at the local APIC in, then closes again: STI's shadow covers the NOP, after
 * which they are taken (SDM Vol. 2B, STI). */
static inline void irq_window(void) { asm volatile("sti; nop; cli" ::: "memory"); }
static inline void hlt(void) { asm volatile("hlt" ::: "memory"); }
static inline void invlpg(uint64_t va) { asm volatile("invlpg (%0)" : : "r"(va) : "memory"); }

static inline bool cpu_has(uint32_t leaf, int reg, int bit)
{
	struct cpuid_regs r = cpuid(leaf, 0);
	uint32_t v = reg == 0 ? r.eax : reg == 1 ? r.ebx : reg == 2 ? r.ecx : r.edx;

	return (cpuid(leaf & 0x80000000u, 0).eax >= leaf) && ((v >> bit) & 1);
}
/* Feature bits used here: (leaf, register 0..3 = EAX..EDX, bit). SDM Vol. 2A, CPUID, Tables 3-8..3-10. */
#define CPU_VMX      0x1, 2, 5          /* CPUID.1:ECX.VMX[5] */
#define CPU_X2APIC   0x1, 2, 21
#define CPU_XSAVE    0x1, 2, 26
#define CPU_HV       0x1, 2, 31         /* hypervisor present (reserved for that use by convention) */
#define CPU_APIC     0x1, 3, 9
#define CPU_NX       0x80000001, 3, 20  /* execute-disable */
#define CPU_PDPE1GB  0x80000001, 3, 26  /* 1 GiB pages */
#define CPU_LM       0x80000001, 3, 29

/*
 * The same and more feature bits as masks of the register CPUID returns them in, for code that edits
 * what a guest sees: CPUID_<leaf>[_<subleaf>]_<register>_<name>. SDM Vol. 2A, CPUID, Tables 3-8..3-10,
 * and Vol. 1, 13.2 (leaf 0xD).
 */
#define CPUID_1_ECX_MONITOR       (1u << 3)   /* MONITOR/MWAIT */
#define CPUID_1_ECX_VMX           (1u << 5)   /* virtual machine extensions */
#define CPUID_1_ECX_X2APIC        (1u << 21)
#define CPUID_1_ECX_TSC_DEADLINE  (1u << 24)  /* local APIC timer TSC-deadline mode */
#define CPUID_1_ECX_XSAVE         (1u << 26)  /* XSAVE/XRSTOR, XSETBV/XGETBV, XCR0 */
#define CPUID_1_ECX_OSXSAVE       (1u << 27)  /* mirrors CR4.OSXSAVE */
#define CPUID_1_ECX_HYPERVISOR    (1u << 31)  /* hypervisor present (reserved for that use) */
#define CPUID_1_EDX_APIC          (1u << 9)   /* an on-chip local APIC */
#define CPUID_7_0_EBX_INVPCID     (1u << 10)
#define CPUID_7_0_ECX_OSPKE       (1u << 4)   /* mirrors CR4.PKE */
#define CPUID_7_0_ECX_WAITPKG     (1u << 5)   /* TPAUSE, UMONITOR, UMWAIT */
#define CPUID_7_0_EDX_AMX_BF16    (1u << 22)
#define CPUID_7_0_EDX_AMX_TILE    (1u << 24)
#define CPUID_7_0_EDX_AMX_INT8    (1u << 25)
#define CPUID_D_1_EAX_XSAVES      (1u << 3)   /* XSAVES/XRSTORS and IA32_XSS */
#define CPUID_80000001_EDX_NX     (1u << 20)  /* execute-disable */
#define CPUID_80000001_EDX_PDPE1GB (1u << 26) /* 1 GiB pages */
#define CPUID_80000001_EDX_RDTSCP (1u << 27)
#define CPUID_80000001_EDX_LM     (1u << 29)  /* long mode */

/* A cpu_has triple's bit as a mask: the two spellings of one bit cannot drift apart. */
#define CPU_BIT_MASK(triple) CPU_BIT_MASK_(triple)
#define CPU_BIT_MASK_(leaf, reg, bit) (1u << (bit))
_Static_assert(CPU_BIT_MASK(CPU_VMX) == CPUID_1_ECX_VMX, "CPUID.1:ECX.VMX[5]");
_Static_assert(CPU_BIT_MASK(CPU_X2APIC) == CPUID_1_ECX_X2APIC, "CPUID.1:ECX.x2APIC[21]");
_Static_assert(CPU_BIT_MASK(CPU_XSAVE) == CPUID_1_ECX_XSAVE, "CPUID.1:ECX.XSAVE[26]");
_Static_assert(CPU_BIT_MASK(CPU_HV) == CPUID_1_ECX_HYPERVISOR, "CPUID.1:ECX[31]");
_Static_assert(CPU_BIT_MASK(CPU_APIC) == CPUID_1_EDX_APIC, "CPUID.1:EDX.APIC[9]");
_Static_assert(CPU_BIT_MASK(CPU_NX) == CPUID_80000001_EDX_NX, "CPUID.80000001H:EDX.NX[20]");
_Static_assert(CPU_BIT_MASK(CPU_PDPE1GB) == CPUID_80000001_EDX_PDPE1GB, "CPUID.80000001H:EDX[26]");
_Static_assert(CPU_BIT_MASK(CPU_LM) == CPUID_80000001_EDX_LM, "CPUID.80000001H:EDX.LM[29]");

/* The vendor string of CPUID leaf 0 (EBX, EDX, ECX) says "GenuineIntel". */
static inline bool cpu_is_intel(void)
{
	struct cpuid_regs r = cpuid(0, 0);

	return r.ebx == 0x756e6547 && r.edx == 0x49656e69 && r.ecx == 0x6c65746e;
}

/* Physical-address width in bits: CPUID.80000008H:EAX[7:0], 36 when the leaf is missing. */
static inline unsigned cpu_phys_bits(void)
{
	return cpuid(0x80000000u, 0).eax >= 0x80000008u ? cpuid(0x80000008u, 0).eax & 0xff : 36;
}

/* Which CPU are we? The per-CPU block's first word is its index (arch/x86/percpu.h); GS points at it. */
static inline unsigned this_cpu_id(void)
{
	unsigned id;

	asm volatile("movl %%gs:0, %0" : "=r"(id));
	return id;
}
