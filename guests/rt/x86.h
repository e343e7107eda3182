/*
 * The few x86 instructions the guests need, as static inline helpers that build for 32- and 64-bit
 * mode alike (the guests are ELF32, memcheck is ELF64).
 */
#pragma once

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* CPUID (SDM Vol. 2A, CPUID): r[0..3] = EAX, EBX, ECX, EDX. Always exits under VMX (SDM 3C, 26.1.2). */
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

#define CPUID1_ECX_VMX        (1u << 5)  /* VMX supported */
#define CPUID1_ECX_HYPERVISOR (1u << 31) /* reserved on hardware, set by hypervisors */

/*
 * RDTSC with LFENCE on both sides of the start read and before the end read: SDM Vol. 2B, RDTSC:
 * "LFENCE immediately before RDTSC" waits for earlier instructions, "immediately after" keeps later
 * ones from starting early. The measured instruction then runs between the two reads only.
 */
static inline uint64_t tsc_begin(void)
{
	uint32_t lo, hi;
	__asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t tsc_end(void)
{
	uint32_t lo, hi;
	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline unsigned long read_cr0(void)
{
	unsigned long v;
	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

static inline unsigned long read_cr3(void)
{
	unsigned long v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

/* A delay the compiler cannot drop and that causes no VM exit: only register arithmetic. */
static inline void spin_loops(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		__asm__ volatile("" : : : "memory");
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

/* A plain RDTSC, for timestamps in handlers and wait loops (no fences: not measuring one insn). */
static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
}

/* Interrupt flag helpers. `sti; hlt` back to back: STI's one-instruction interrupt shadow (SDM 2B,
 * STI) means an interrupt already pending is taken only after HLT begins, so it wakes the HLT. */
static inline void sti(void) { __asm__ volatile("sti" : : : "memory"); }
static inline void cli(void) { __asm__ volatile("cli" : : : "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" : : : "memory"); }
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" : : : "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" : : : "memory"); }

#define EFLAGS_IF (1u << 9)

static inline unsigned long irq_save(void)
{
	unsigned long f;
	__asm__ volatile("pushf; pop %0; cli" : "=r"(f) : : "memory");
	return f;
}

static inline void irq_restore(unsigned long f)
{
	if (f & EFLAGS_IF)
		sti();
}

/* A test-and-set spinlock: XCHG with memory is locked by the CPU (SDM 3A, 8.1.2.1). Spins on a
 * plain read while taken, so waiting CPUs do not bounce the cache line. */
typedef struct {
	volatile uint32_t locked;
} spinlock_t;

static inline void spin_lock(spinlock_t *l)
{
	while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
		while (l->locked)
			cpu_relax();
}

static inline void spin_unlock(spinlock_t *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}
