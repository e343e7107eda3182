/* A vCPU's CPUID answers, remembered: the leaves whose answer depends on nothing the guest can change
 * (the policy of vcpu/cpuid_policy.c over the host's leaves, the vCPU's number and the guest's vCPU
 * count, all fixed for the vCPU's life, its CPU pinned), so that a CPUID exit for one of them is a
 * look-up. Filled by the neutral handler (vcpu_handle_cpuid), read by each back end's exit path before
 * it calls that handler. Leaves whose answer follows guest state are never kept, so nothing can go
 * stale: 1 (ECX.OSXSAVE mirrors CR4.OSXSAVE, EDX.APIC mirrors IA32_APIC_BASE.EN: SDM Vol. 2A, CPUID,
 * Table 3-10 and 3-11), 7 (ECX.OSPKE mirrors CR4.PKE) and 0xD (EBX: the XSAVE area's size for the
 * XCR0 loaded when the host's CPUID ran). Direct-mapped, VCPU_CPUID_SLOTS slots; a miss is only
 * slower. */
#pragma once
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#define VCPU_CPUID_SLOTS 16

struct vcpu_cpuid_entry {
	uint32_t leaf, sub;          /* EAX and ECX as the guest gave them */
	uint32_t eax, ebx, ecx, edx;
	uint64_t pad;                /* 32 bytes: the slot's address is a shift */
};

struct vcpu_cpuid_cache {
	struct vcpu_cpuid_entry e[VCPU_CPUID_SLOTS];
};

/* The slot of `leaf`: the basic leaves 0-15 each their own, the hypervisor's (0x4000000x) and the
 * extended ones (0x8000000x) spread over the others. */
static inline unsigned vcpu_cpuid_slot(uint32_t leaf)
{
	return (leaf ^ (leaf >> 28)) & (VCPU_CPUID_SLOTS - 1);
}

/* Empty: each slot holds a leaf that belongs to another slot, which no look-up can match. */
static inline void vcpu_cpuid_cache_init(struct vcpu_cpuid_cache *c)
{
	for (unsigned i = 0; i < VCPU_CPUID_SLOTS; i++)
		c->e[i] = (struct vcpu_cpuid_entry){ i ^ 1, 0, 0, 0, 0, 0, 0 };
}

/* The answer to CPUID (`leaf`, `sub`) when it is kept, else NULL. */
static inline const struct vcpu_cpuid_entry *vcpu_cpuid_lookup(const struct vcpu_cpuid_cache *c, uint32_t leaf,
								 uint32_t sub)
{
	const struct vcpu_cpuid_entry *e = &c->e[vcpu_cpuid_slot(leaf)];

	return e->leaf == leaf && e->sub == sub ? e : NULL;
}

/* Does the answer for the guest's leaf `data_leaf` (the leaf whose data CPUID returns: cpuid_guest_leaf)
 * stay the same for the vCPU's life? */
static inline bool vcpu_cpuid_keepable(uint32_t data_leaf)
{
	return data_leaf != 1 && data_leaf != 7 && data_leaf != 0xd;
}

static inline void vcpu_cpuid_keep(struct vcpu_cpuid_cache *c, uint32_t leaf, uint32_t sub, uint32_t eax,
				   uint32_t ebx, uint32_t ecx, uint32_t edx)
{
	c->e[vcpu_cpuid_slot(leaf)] = (struct vcpu_cpuid_entry){ leaf, sub, eax, ebx, ecx, edx, 0 };
}
