/* Cross-CPU calls: one CPU asks another to run a function there and kicks it with the wake-up IPI. */
#pragma once
#include <stdbool.h>

/*
 * Runs fn(arg) on CPU `cpu`: at once if that is this CPU, else queued there and the CPU kicked with
 * the wake-up IPI (VEC_WAKEUP), which wakes it from HLT and, if it is running a guest, forces a VM
 * exit (external-interrupt exiting) after which the host takes the IPI. The call runs in that CPU's
 * interrupt handler, with interrupts off, between two guest instructions of whatever vCPU runs there:
 * it must be short and must not wait for another CPU. With `wait`, returns once fn has returned
 * (running this CPU's own queue meanwhile, so two CPUs calling each other cannot deadlock).
 */
void cpu_call(unsigned cpu, void (*fn)(void *arg), void *arg, bool wait);
/* Only the kick: the CPU re-examines its vCPUs (an event was posted to one of them). */
void cpu_kick(unsigned cpu);
/* Runs the calls queued for this CPU (from the wake-up interrupt handler). */
void cpu_calls_run(void);
