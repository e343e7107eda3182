/* The test-facing side of tests/unit/fake_pmm.c: a pmm over fake memory with limits and accounting. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

void fake_pmm_init(uint64_t base, uint64_t size);
/* A fake memory larger than what the test will touch (a guest of 5 GiB): nothing is poisoned, so only
 * what is written takes host memory. */
void fake_pmm_init_sparse(uint64_t base, uint64_t size);
void fake_pmm_fini(void);
void fake_pmm_set_limit(uint64_t pages);     /* refuse allocations beyond this many pages in use */
uint64_t fake_pmm_outstanding(void);         /* pages allocated and not freed */
uint64_t fake_pmm_alloc_calls(void);
void fake_pmm_fill_free(int byte);           /* dirty every free page */
/* pmm_alloc_page hands out the highest free page, as the real next-fit allocator does once its hint
 * has passed 4 GiB on a large host (pmm_alloc_page_below still searches from the bottom). */
void fake_pmm_set_top_down(bool on);
