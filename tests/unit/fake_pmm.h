/* The test-facing side of tests/unit/fake_pmm.c: a pmm over fake memory with limits and accounting. */
#pragma once
#include <stdint.h>

void fake_pmm_init(uint64_t base, uint64_t size);
void fake_pmm_fini(void);
void fake_pmm_set_limit(uint64_t pages);     /* refuse allocations beyond this many pages in use */
uint64_t fake_pmm_outstanding(void);         /* pages allocated and not freed */
uint64_t fake_pmm_alloc_calls(void);
void fake_pmm_fill_free(int byte);           /* dirty every free page */
