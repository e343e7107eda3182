/* Spinlocks: a ticket-free test-and-test-and-set lock, enough for a handful of CPUs. */
#pragma once
#include <stdbool.h>

typedef struct { volatile int locked; } spinlock_t;
#define SPINLOCK_INIT { 0 }

static inline void spin_lock(spinlock_t *l)
{
	while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED))
			asm volatile("pause"); /* SDM Vol. 2B PAUSE: spin-wait hint, frees the core's pipeline */
}

static inline bool spin_trylock(spinlock_t *l)
{
	return !__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE);
}

static inline void spin_unlock(spinlock_t *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}
