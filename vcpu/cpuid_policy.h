/* What CPUID tells a guest: an allow-list per leaf and register over the host's values (SDM Vol. 2A,
 * CPUID, Tables 3-8..3-10), as pure functions of the host's registers and the guest's configuration,
 * so that a host unit test sees every bit (tests/unit/test_cpuid.c). cpuid.c is the exit around it. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "arch/x86/cpu.h"
#include "tessera/hypercall.h"

/* The guest's leaves: basic 0..CPUID_MAX_BASIC (at least CPUID_MIN_BASIC, the TSC-frequency leaves,
 * whatever the host's), the hypervisor's HV_CPUID_BASE..HV_CPUID_TIMING, extended up to
 * CPUID_MAX_EXT. */
#define CPUID_MIN_BASIC 0x16u
#define CPUID_MAX_BASIC 0x1fu
#define CPUID_MAX_EXT   0x80000008u

struct cpuid_cfg {
	/* The host and what the VMX controls allow, settled once. */
	uint32_t host_max_basic;  /* CPUID.0:EAX of the host */
	uint32_t host_max_ext;    /* CPUID.80000000H:EAX of the host */
	uint64_t xcr0_allowed;    /* XCR0 bits XSETBV accepts (cr.c, vcpu_xcr0_allowed) */
	uint64_t tsc_khz;         /* the guest TSC's rate (leaves 0x15, 0x16, 0x40000010) */
	bool invpcid;             /* "enable INVPCID" is set: INVPCID does not #UD */
	bool rdtscp;              /* "enable RDTSCP" is set: RDTSCP and RDPID do not #UD */
	bool tsc_adjust;          /* IA32_TSC_ADJUST is emulated (msr.c, "use TSC offsetting") */
	uint32_t spec_7_edx;      /* leaf 7.0 EDX speculation-control bits whose MSRs arch/x86/spec.c
				   * gives guests (spec_guest_cpuid7_edx): they pass from the host */
	uint32_t spec_80000008_ebx; /* the same in Fn8000_0008_EBX, AMD's enumeration
				   * (spec_guest_cpuid80000008_ebx) */
	/* The vCPU that executes CPUID. */
	unsigned index, nvcpus;   /* its number (= initial APIC ID) and the guest's vCPU count */
	bool apic_enabled;        /* IA32_APIC_BASE.EN */
	uint64_t cr4;             /* the guest's CR4 (OSXSAVE, PKE are mirrored in CPUID) */
	bool pcid_emulated;       /* shadow paging: CR4.PCIDE is the guest's alone and its PCIDs key the
				   * shadow roots (vcpu/spt.c), so PCID is offered whatever the host has */
	bool no_pkeys;            /* shadow paging: the shadow's leaves carry no protection key (bits
				   * 62:59, SDM Vol. 3A, 4.6.2), so PKU and OSPKE read 0 whatever the host
				   * has, and CR4.PKE is refused as for a CPU without PKU (cr.c) */
};

/* The leaf whose data a guest's CPUID with EAX = `leaf` returns: `leaf` itself when it is within
 * one of the guest's ranges, else the highest basic leaf, as the CPU does (SDM Vol. 2A, CPUID: "If a
 * value entered for CPUID.EAX is higher than the maximum input value for basic or extended function
 * for that processor then the data for the highest basic information leaf is returned"; ECX keeps
 * its meaning there). */
uint32_t cpuid_guest_leaf(const struct cpuid_cfg *c, uint32_t leaf);

/* Does the policy read the host's CPUID for (`leaf`, any subleaf)? false for the leaves it makes up
 * whole (hypervisor, topology, TSC frequency), so the exit can skip the host's CPUID. */
bool cpuid_needs_host(const struct cpuid_cfg *c, uint32_t leaf);

/* The guest's registers for (`leaf`, `sub`), `leaf` as cpuid_guest_leaf returned it, from the host's
 * registers `host` for the same leaf and subleaf: allowed bits only, plus what is emulated whatever
 * the host has. */
struct cpuid_regs cpuid_guest(const struct cpuid_cfg *c, uint32_t leaf, uint32_t sub, struct cpuid_regs host);

/* The allow-list itself: the bits of (`leaf`, `sub`) that may pass from the host, as a mask per
 * register (all zero for a leaf not in the list). Computed fields (APIC IDs, counts, XCR0 masks)
 * come on top; the unit test compares against this. */
struct cpuid_regs cpuid_allowed(uint32_t leaf, uint32_t sub);

/* The speculation-control features that pass whatever the CPU (none: each names an MSR that exists
 * for guests only where the CPU has it). Those arch/x86/spec.c emulates for guests on this CPU come
 * through cpuid_cfg.spec_7_edx and spec_80000008_ebx instead. */
struct cpuid_regs cpuid_spec_bits(uint32_t leaf, uint32_t sub);

/* Four characters of a string constant as the little-endian register CPUID returns them in. */
#define SIG4(s, i) ((uint32_t)(uint8_t)(s)[i] | (uint32_t)(uint8_t)(s)[(i) + 1] << 8 | \
		    (uint32_t)(uint8_t)(s)[(i) + 2] << 16 | (uint32_t)(uint8_t)(s)[(i) + 3] << 24)

/* The hypervisor's leaves HV_CPUID_BASE..HV_CPUID_TIMING (0x40000000-0x4FFFFFFF is reserved for
 * hypervisors, SDM Vol. 2A, CPUID): the base leaf names us and the highest leaf we define, the timing
 * leaf gives the guest's TSC and local-APIC-timer rates in kHz (both the TSC's), those between read 0.
 * Inline: the exit answers them first, without the rest of the policy (`make bench` times it). */
static inline struct cpuid_regs cpuid_hv_leaf(uint64_t khz, uint32_t leaf)
{
	if (leaf == HV_CPUID_BASE)
		return (struct cpuid_regs){ HV_CPUID_TIMING, SIG4(HV_CPUID_SIGNATURE, 0),
					    SIG4(HV_CPUID_SIGNATURE, 4), SIG4(HV_CPUID_SIGNATURE, 8) };
	if (leaf == HV_CPUID_TIMING)
		return (struct cpuid_regs){ (uint32_t)khz, (uint32_t)khz, 0, 0 };
	return (struct cpuid_regs){ 0, 0, 0, 0 };
}

/* The CR4 bits a guest whose CPUID reads `l1` (leaf 1) and `l7` (leaf 7, subleaf 0) may set: each
 * bit whose feature that CPUID shows, and PCE, which has none. Any other is reserved for that guest:
 * a MOV to CR4 that sets it raises #GP(0) (SDM Vol. 2B, MOV--Move to/from Control Registers). */
uint64_t cpuid_cr4_allowed(struct cpuid_regs l1, struct cpuid_regs l7);
