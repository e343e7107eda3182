/* printk: formatted, levelled log lines, each prefixed with the id of the CPU that printed it. */
#pragma once
#include <stdarg.h>
#include <stddef.h>

/* Levels, most severe first; lines above the console's level (loglevel=) are dropped. */
enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/*
 * Formats as printf: %s %c %d %i %u %x %X %p %%, with the flags '0' and '-', a field width, and the
 * length modifiers l, ll, z. One call is one line or several whole lines: text is buffered per call
 * and written under the console lock, so lines from different CPUs never interleave.
 */
__attribute__((format(printf, 2, 3))) void printk(int level, const char *fmt, ...);
void vprintk(int level, const char *fmt, va_list ap);

#define pr_err(...)   printk(LOG_ERR, __VA_ARGS__)
#define pr_warn(...)  printk(LOG_WARN, __VA_ARGS__)
#define pr_info(...)  printk(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) printk(LOG_DEBUG, __VA_ARGS__)

/* Prints the message and stops every CPU (powering off if asked): only for broken invariants. */
__attribute__((noreturn, format(printf, 1, 2))) void panic(const char *fmt, ...);
