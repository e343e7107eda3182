/* The tessera hypercall ABI (include/tessera/hypercall.h) as a device: what each call does. */
#pragma once
#include <stdint.h>
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
