/* Hypercalls (vdev/hypercall.h): the calls of include/tessera/hypercall.h. */
#include "tessera/hypercall.h"
#include "vdev/hypercall.h"

enum hc_result hypercall(const struct hc_caller *c, struct hc_regs *r)
{
	switch (r->rax & 0xffffffff) {
	case HC_EXIT:
		return HC_DO_EXIT;
	case HC_YIELD:
		r->rax = 0;
		return HC_DO_YIELD;
	case HC_GUEST_INFO:
		r->rax = 0;
		r->rbx = c->vm_id;
		r->rcx = c->ram_bytes >> 10;
		r->rdx = c->host_cpu;
		return HC_DONE;
	case HC_PUTCHAR:
		vuart_putc(c->uart, (uint8_t)r->rbx);   /* the low byte, as vdev/uart.h filters it */
		r->rax = 0;
		return HC_DONE;
	default:
		r->rax = (uint64_t)(int64_t)HC_ERR_NOSYS;
		return HC_DONE;
	}
}
