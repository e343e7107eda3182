/*
 * The guest runtime: console, Multiboot2 boot information, arguments, hypercalls and exit.
 * Every guest is `int main(void)`; the entry stub (entry32.asm or entry64.asm) calls rt_start, which
 * parses the boot information, runs main and exits with its return value.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x86.h"

/* Linker symbols (guest.ld): the image spans [__image_start, _end), bss and page tables included. */
extern char __image_start[], _end[];

/* Console: the 16550 at 0x3F8. */
void putc(char c);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One verdict line: the formatted text, then " ok" or " FAIL"; counted in check_count and
 * check_failed. Returns ok. */
bool check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern int check_count, check_failed;

/* Exit with `code` through port 0xF4 (HV_PORT_DEBUG_EXIT, QEMU isa-debug-exit). */
__attribute__((noreturn)) void exit(int code);

/* Usable RAM from the Multiboot2 (or Multiboot1) memory map, clipped to [1 MiB, 4 GiB), in ascending order. */
struct ram_region {
	uint64_t base, end;
};
#define RAM_MAX_REGIONS 16
extern struct ram_region ram[RAM_MAX_REGIONS];
extern int ram_count;
uint64_t ram_end(void);

/* The boot information block itself: [mbi_base, mbi_end). Guests may overwrite it: rt copied it.
 * boot_magic and boot_info are EAX and EBX as the loader left them: 0x36d76289 (Multiboot2) or
 * 0x2badb002 (Multiboot1, the guests built with guests/rt/mb1.inc), and the block's address. */
extern uint64_t mbi_base, mbi_end;
extern uint32_t boot_magic, boot_info;

/* The command line: `cmdline` as given; getarg("key") the value of the word `key=value`, or NULL. */
extern const char *cmdline;
const char *getarg(const char *key);
bool parse_num(const char *s, uint64_t *out);
uint64_t getarg_num(const char *key, uint64_t def);

/* The tessera hypervisor (include/tessera/hypercall.h). */
struct hv_info {
	uint32_t id, ram_kib, cpu;
};
bool hv_present(void);
long hc_guest_info(struct hv_info *info);
long hc_yield(void);

/* lib.c */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int strcmp(const char *a, const char *b);
size_t strlen(const char *s);
uint64_t udiv64(uint64_t n, uint32_t d, uint32_t *rem);

static inline uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}
