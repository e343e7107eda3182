/* Hypercalls (vdev/hypercall.h): the calls of include/tessera/hypercall.h. */
#include "tessera/hypercall.h"
#include "vdev/hypercall.h"

enum hc_result hypercall(const struct hc_caller *c, struct hc_regs *r)
{
	return hypercall_inline(c, r);
}
