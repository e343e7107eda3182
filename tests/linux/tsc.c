/* tsc: prints "[WORDS ]tsc=<decimal>\n" with the time-stamp counter read by RDTSC (SDM Vol. 2B,
 * RDTSC), for the initramfs's /init: the Linux benchmark's marker (tests/bench.py). Busybox cannot
 * read the TSC. A static x86-64 Linux program with no C library: _start, write(2), exit(2).
 * It returns once the line has left the UART (tcdrain: ioctl TCSBRK 1), so a `poweroff -f` after
 * it cannot cut the line off (on a 16550 at 115200 baud a line takes milliseconds to go out).
 * In Bochs with `clock: sync=none` one TSC tick is one emulated instruction, counted from power-on;
 * a tessera guest's TSC is the host's (TSC offset 0), so bare and guest figures compare.
 *
 *     gcc -static -nostdlib -ffreestanding -fno-pie -no-pie -O2 -o tsc tsc.c
 *     tsc linux: init        ->  linux: init tsc=123456789
 */

#define SYS_write 1
#define SYS_ioctl 16
#define SYS_exit  60
#define TCSBRK    0x5409        /* with argument 1: wait until the output is sent (tcdrain) */

static long syscall3(long nr, long a, long b, long c)
{
	long ret;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}

static unsigned long rdtsc(void)
{
	unsigned int lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (unsigned long)hi << 32 | lo;
}

/* The kernel enters with RSP at argc, then argv[] (x86-64 psABI, 3.4.1): hand that to tsc_main. */
__asm__(".globl _start\n"
	"_start:\n"
	"	mov %rsp, %rdi\n"       /* the initial stack: argc, argv[0], ... */
	"	and $-16, %rsp\n"       /* the ABI's call alignment */
	"	call tsc_main\n"
	"	ud2\n");                /* tsc_main exits */

void tsc_main(long *sp) __attribute__((noreturn, used));

void tsc_main(long *sp)
{
	unsigned long t = rdtsc();      /* first: nothing before it but the exec */
	char buf[256], digits[24];
	long argc = sp[0], n = 0;
	char **argv = (char **)(sp + 1);
	int d = 0;

	/* The words, then "tsc=" and at most 20 digits and a newline: 48 bytes kept for those. */
	for (long i = 1; i < argc && n < (long)sizeof(buf) - 48; i++) {
		for (const char *s = argv[i]; *s && n < (long)sizeof(buf) - 48; s++)
			buf[n++] = *s;
		buf[n++] = ' ';
	}
	for (const char *s = "tsc="; *s; s++)
		buf[n++] = *s;
	do {
		digits[d++] = (char)('0' + t % 10);
		t /= 10;
	} while (t);
	while (d)
		buf[n++] = digits[--d];
	buf[n++] = '\n';
	syscall3(SYS_write, 1, (long)buf, n);
	syscall3(SYS_ioctl, 1, TCSBRK, 1);
	syscall3(SYS_exit, 0, 0, 0);
	for (;;)
		;
}
