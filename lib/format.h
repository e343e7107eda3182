/* vsnprintf for the freestanding hypervisor: the subset printk documents (console/printk.h). */
#pragma once
#include <stdarg.h>
#include <stddef.h>

/* As C's vsnprintf: writes at most size-1 characters and a NUL; returns the length it wanted. */
int format(char *buf, size_t size, const char *fmt, va_list ap);
__attribute__((format(printf, 3, 4))) int snformat(char *buf, size_t size, const char *fmt, ...);
