/* The tessera hypercall ABI (include/tessera/hypercall.h) as a device: what each call does. */
#pragma once
#include <stdint.h>
#include "tessera/hypercall.h"
#include "vdev/uart.h"

/* The registers a hypercall reads and writes (EAX/RAX = number, results in EAX..EDX). */
struct hc_regs { uint64_t rax, rbx, rcx, rdx; };

/* What the guest calling it is. */
struct hc_caller {
	unsigned vm_id;
	uint64_t ram_bytes;
	unsigned host_cpu;
	struct vuart *uart;
};

enum hc_result {
	HC_DONE,          /* answered in the registers; resume the guest */
	HC_DO_YIELD,      /* HC_YIELD: give up the CPU */
	HC_DO_EXIT,       /* HC_EXIT: end the guest with the code in rbx */
};

/* Carries out one call (the caller checked CPL 0). */
enum hc_result hypercall(const struct hc_caller *c, struct hc_regs *r);

/* The same, inline, for the VMCALL exit: the compiler then builds only what the call made uses
 * (HC_GUEST_INFO reads the caller, HC_PUTCHAR its UART) and writes back only what it changed. */
static inline __attribute__((always_inline)) enum hc_result hypercall_inline(const struct hc_caller *c,
									     struct hc_regs *r)
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
