/* Host unit tests of lib/format.c, the hypervisor's printf, checked against the C library's. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "lib/format.h"
#include "tests/unit/unit.h"

/* Formats with both and compares (the conversions format documents behave as C's). */
#define SAME(...) do { \
	char _sa[128], _sb[128]; \
	int _na = snformat(_sa, sizeof(_sa), __VA_ARGS__), _nb = snprintf(_sb, sizeof(_sb), __VA_ARGS__); \
	CHECK_EQ(_na, _nb); \
	CHECK(!strcmp(_sa, _sb)); \
	if (strcmp(_sa, _sb)) \
		fprintf(stderr, "  format gave %s, libc %s\n", _sa, _sb); \
} while (0)

static void test_conversions(void)
{
	SAME("plain text");
	SAME("%d %d %d", 0, -1, 2147483647);
	SAME("%d", (int)-2147483647 - 1);
	SAME("%u %x %X", 4294967295u, 0xdeadbeefu, 0xdeadbeefu);
	SAME("%lu %lx %ld", 18446744073709551615ul, 0x123456789abcdeful, -9223372036854775807l - 1);
	SAME("%llu %llx", 18446744073709551615ull, 0xfedcba9876543210ull);
	SAME("%zu", (size_t)12345);
	SAME("%s|%s", "abc", "");
	SAME("%c%c", 'x', 'y');
	SAME("100%%");
}

static void test_padding(void)
{
	SAME("[%5d][%-5d][%05d]", 42, 42, 42);
	SAME("[%5d][%05d]", -42, -42);
	SAME("[%016lx]", 0xabcul);
	SAME("[%8s][%-8s]", "ab", "ab");
	SAME("[%2s]", "longer than the width");
	SAME("[%*d]", 6, 7);
	SAME("[%04x]", 0xfu);
}

static void test_pointer_and_null(void)
{
	char buf[64];

	snformat(buf, sizeof(buf), "%p", (void *)0x1234);
	CHECK(!strcmp(buf, "0x1234"));
	const char *volatile null = NULL;       /* hidden from -Wformat-overflow */

	snformat(buf, sizeof(buf), "%s", null);
	CHECK(!strcmp(buf, "(null)"));
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat"
	snformat(buf, sizeof(buf), "%q");         /* unknown conversions are shown, not guessed */
#pragma GCC diagnostic pop
	CHECK(!strcmp(buf, "%q"));
}

static void test_truncation(void)
{
	char buf[8];

	memset(buf, 'x', sizeof(buf));
	CHECK_EQ(snformat(buf, sizeof(buf), "0123456789"), 10);  /* the length it wanted */
	CHECK(!strcmp(buf, "0123456"));                          /* cut, NUL-terminated */
	memset(buf, 'x', sizeof(buf));
	CHECK_EQ(snformat(buf, 1, "abc"), 3);
	CHECK_EQ(buf[0], 0);
	CHECK_EQ(buf[1], 'x');                                    /* nothing past size */
	CHECK_EQ(snformat(NULL, 0, "%d", 12345), 5);              /* size 0: only measures */
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_conversions);
	RUN(test_padding);
	RUN(test_pointer_and_null);
	RUN(test_truncation);
	return unit_report(argv[0]);
}
