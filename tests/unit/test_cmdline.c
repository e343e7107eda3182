/* Host tests of the command-line parser: every option type, sizes, overflow, quoting, unknown words. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "console/printk.h"
#include "lib/cmdline.h"
#include "lib/errno.h"
#include "tests/unit/unit.h"

static const char *const modes[] = { "auto", "serial", "vga", NULL };

/* One table of every type, reset to known defaults before each parse. */
static uint64_t cpus, mem;
static bool debug, quiet;
static char name[8];
static unsigned int mode;
static bool seen_cpus, seen_mem, seen_name;

static const struct opt_desc opts[] = {
	{ .key = "cpus", .type = OPT_UINT, .dst = &cpus, .seen = &seen_cpus },
	{ .key = "mem", .type = OPT_SIZE, .dst = &mem, .seen = &seen_mem },
	{ .key = "debug", .type = OPT_BOOL, .dst = &debug },
	{ .key = "quiet", .type = OPT_BOOL, .dst = &quiet },
	{ .key = "name", .type = OPT_STRING, .dst = name, .dst_size = sizeof(name), .seen = &seen_name },
	{ .key = "console", .type = OPT_CHOICE, .dst = &mode, .choices = modes },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

/* The parser's reports go into the unit log (tests/unit/host_stubs.c), where the tests read them. */
static void log_report(const char *line)
{
	printk(LOG_WARN, "%s", line);
}

static void defaults(void)
{
	cpus = 7;
	mem = 99;
	debug = false;
	quiet = true;
	strcpy(name, "dflt");
	mode = 0;
	seen_cpus = seen_mem = seen_name = false;
	unit_log_clear();
}

static int parse(const char *line)
{
	defaults();
	return cmdline_parse(line, opts, NOPTS, "test", NULL, 0);
}

static void test_parse_uint(void)
{
	uint64_t v = 5;

	CHECK_EQ(parse_uint("0", 1, &v), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(parse_uint("12345", 5, &v), 0);
	CHECK_EQ(v, 12345);
	CHECK_EQ(parse_uint("123456", 3, &v), 0); /* only len characters count */
	CHECK_EQ(v, 123);
	CHECK_EQ(parse_uint("0x1fF", 5, &v), 0);
	CHECK_EQ(v, 0x1ff);
	CHECK_EQ(parse_uint("0XAB", 4, &v), 0);
	CHECK_EQ(v, 0xab);
	CHECK_EQ(parse_uint("18446744073709551615", 20, &v), 0);
	CHECK_EQ(v, UINT64_MAX);
	CHECK_EQ(parse_uint("0xffffffffffffffff", 18, &v), 0);
	CHECK_EQ(v, UINT64_MAX);
	v = 5;
	CHECK_EQ(parse_uint("18446744073709551616", 20, &v), -ERANGE);
	CHECK_EQ(parse_uint("99999999999999999999", 20, &v), -ERANGE);
	CHECK_EQ(parse_uint("0x10000000000000000", 19, &v), -ERANGE);
	CHECK_EQ(parse_uint("", 0, &v), -EINVAL);
	CHECK_EQ(parse_uint("0x", 2, &v), -EINVAL);
	CHECK_EQ(parse_uint("12a", 3, &v), -EINVAL);
	CHECK_EQ(parse_uint("ff", 2, &v), -EINVAL); /* hex needs 0x */
	CHECK_EQ(parse_uint("-1", 2, &v), -EINVAL);
	CHECK_EQ(parse_uint(" 1", 2, &v), -EINVAL);
	CHECK_EQ(v, 5); /* untouched on every error */
}

static void test_parse_size(void)
{
	uint64_t v = 5;

	CHECK_EQ(parse_size("4096", 4, &v), 0);
	CHECK_EQ(v, 4096);
	CHECK_EQ(parse_size("4K", 2, &v), 0);
	CHECK_EQ(v, 4096);
	CHECK_EQ(parse_size("4k", 2, &v), 0);
	CHECK_EQ(v, 4096);
	CHECK_EQ(parse_size("64M", 3, &v), 0);
	CHECK_EQ(v, 64ull << 20);
	CHECK_EQ(parse_size("64m", 3, &v), 0);
	CHECK_EQ(v, 64ull << 20);
	CHECK_EQ(parse_size("1G", 2, &v), 0);
	CHECK_EQ(v, 1ull << 30);
	CHECK_EQ(parse_size("3g", 2, &v), 0);
	CHECK_EQ(v, 3ull << 30);
	CHECK_EQ(parse_size("0x10M", 5, &v), 0);
	CHECK_EQ(v, 16ull << 20);
	CHECK_EQ(parse_size("0", 1, &v), 0);
	CHECK_EQ(v, 0);
	/* 2^34 G = 2^64: one past the top. 2^34 - 1 G fits. */
	CHECK_EQ(parse_size("17179869183G", 12, &v), 0);
	CHECK_EQ(v, 17179869183ull << 30);
	v = 5;
	CHECK_EQ(parse_size("17179869184G", 12, &v), -ERANGE);
	CHECK_EQ(parse_size("17592186044416M", 15, &v), -ERANGE);
	CHECK_EQ(parse_size("18014398509481984K", 18, &v), -ERANGE);
	CHECK_EQ(parse_size("99999999999999999999", 20, &v), -ERANGE);
	CHECK_EQ(parse_size("", 0, &v), -EINVAL);
	CHECK_EQ(parse_size("M", 1, &v), -EINVAL);
	CHECK_EQ(parse_size("64Q", 3, &v), -EINVAL);
	CHECK_EQ(parse_size("64MB", 4, &v), -EINVAL);
	CHECK_EQ(parse_size("64KM", 4, &v), -EINVAL);
	CHECK_EQ(parse_size("1.5G", 4, &v), -EINVAL);
	CHECK_EQ(v, 5);
}

static void test_all_types(void)
{
	CHECK_EQ(parse("cpus=4 mem=64M debug=yes quiet=off name=hello console=vga"), 0);
	CHECK_EQ(cpus, 4);
	CHECK_EQ(mem, 64ull << 20);
	CHECK(debug);
	CHECK(!quiet);
	CHECK(strcmp(name, "hello") == 0);
	CHECK_EQ(mode, 2);
	CHECK(seen_cpus && seen_mem && seen_name);
	CHECK_EQ(unit_log[0], 0);

	/* Nothing given: every default stays, nothing is seen. */
	CHECK_EQ(parse(""), 0);
	CHECK_EQ(cpus, 7);
	CHECK_EQ(mem, 99);
	CHECK(strcmp(name, "dflt") == 0);
	CHECK(!seen_cpus && !seen_mem && !seen_name);
	CHECK_EQ(parse("   \t  "), 0);
	CHECK_EQ(cpus, 7);

	/* Tabs and runs of spaces separate words; the last of a repeated key wins. */
	CHECK_EQ(parse("\tcpus=0x10 \t  mem=4096  cpus=3\t"), 0);
	CHECK_EQ(cpus, 3);
	CHECK_EQ(mem, 4096);
	CHECK_EQ(parse("console=auto"), 0);
	CHECK_EQ(mode, 0);
	CHECK_EQ(parse("console=serial"), 0);
	CHECK_EQ(mode, 1);
}

static void test_bools(void)
{
	static const char *const yes[] = { "debug", "debug=1", "debug=yes", "debug=on", "debug=true",
					   "debug=YES", "debug=True" };
	static const char *const no[] = { "quiet=0", "quiet=no", "quiet=off", "quiet=false", "quiet=OFF" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		CHECK_EQ(parse(yes[i]), 0);
		CHECK(debug);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		CHECK_EQ(parse(no[i]), 0);
		CHECK(!quiet);
	}
	CHECK_EQ(parse("quiet=maybe"), 1);
	CHECK(quiet);
	CHECK(strstr(unit_log, "hv: test: bad value for quiet: 'maybe' (") != NULL);
	CHECK_EQ(parse("quiet=2"), 1);
	CHECK(quiet);
	CHECK_EQ(parse("quiet="), 1);
	CHECK(quiet);
	CHECK_EQ(parse("quiet=yess"), 1);
	CHECK(quiet);
	CHECK_EQ(parse("quiet=ye"), 1);
	CHECK(quiet);
}

static void test_malformed(void)
{
	CHECK_EQ(parse("cpus=4x mem=64Q name=toolongname console=cga cpus"), 5);
	CHECK_EQ(cpus, 7);
	CHECK_EQ(mem, 99);
	CHECK(strcmp(name, "dflt") == 0);
	CHECK_EQ(mode, 0);
	CHECK(!seen_cpus && !seen_mem && !seen_name);
	CHECK(strstr(unit_log, "hv: test: bad value for cpus: '4x' (") != NULL);
	CHECK(strstr(unit_log, "hv: test: bad value for mem: '64Q' (") != NULL);
	CHECK(strstr(unit_log, "hv: test: bad value for name: 'toolongname' (") != NULL);
	CHECK(strstr(unit_log, "hv: test: bad value for console: 'cga' (expected one of auto|serial|vga)") != NULL);
	/* A bare key of a non-bool type has no value. */
	CHECK(strstr(unit_log, "hv: test: bad value for cpus: '' (missing value)") != NULL);

	/* Overflow is reported, not wrapped. */
	CHECK_EQ(parse("cpus=18446744073709551616 mem=17179869184G"), 2);
	CHECK_EQ(cpus, 7);
	CHECK_EQ(mem, 99);
	CHECK(strstr(unit_log, "bad value for cpus: '18446744073709551616' (too large)") != NULL);

	/* Empty values: only a string may be empty. */
	CHECK_EQ(parse("cpus= mem="), 2);
	CHECK_EQ(parse("name="), 0);
	CHECK_EQ(name[0], 0);
	CHECK(seen_name);

	/* The longest string that fits (7 + NUL) is taken; one more is refused. */
	CHECK_EQ(parse("name=1234567"), 0);
	CHECK(strcmp(name, "1234567") == 0);
	CHECK_EQ(parse("name=12345678"), 1);
	CHECK(strcmp(name, "dflt") == 0);

	/* One bad word does not spoil its neighbours. */
	CHECK_EQ(parse("cpus=2 mem=lots debug"), 1);
	CHECK_EQ(cpus, 2);
	CHECK_EQ(mem, 99);
	CHECK(debug);
	/* A choice is exact: no prefixes, no case folding. */
	CHECK_EQ(parse("console=vg"), 1);
	CHECK_EQ(parse("console=VGA"), 1);
	CHECK_EQ(parse("console=vgaa"), 1);
	CHECK_EQ(mode, 0);
}

static void test_unknown(void)
{
	CHECK_EQ(parse("cpus=2 frobnicate=7 verbose mem=1G"), 2);
	CHECK_EQ(cpus, 2);
	CHECK_EQ(mem, 1ull << 30);
	CHECK(strstr(unit_log, "hv: test: unknown option 'frobnicate=7'") != NULL);
	CHECK(strstr(unit_log, "hv: test: unknown option 'verbose'") != NULL);
	/* Keys match whole: a prefix or an extension of a key is another key. */
	CHECK_EQ(parse("cpu=2 cpuss=3 =4"), 3);
	CHECK_EQ(cpus, 7);
	CHECK(strstr(unit_log, "unknown option 'cpu=2'") != NULL);
	CHECK(strstr(unit_log, "unknown option '=4'") != NULL);
	/* Messages name the line's owner. */
	defaults();
	CHECK_EQ(cmdline_parse("zzz", opts, NOPTS, "guest hello", NULL, 0), 1);
	CHECK(strstr(unit_log, "hv: guest hello: unknown option 'zzz'") != NULL);
	/* No options at all: every word is unknown. */
	defaults();
	CHECK_EQ(cmdline_parse("a b", NULL, 0, "x", NULL, 0), 2);
	CHECK_EQ(cmdline_parse(NULL, opts, NOPTS, "x", NULL, 0), 0);
}

static void test_rest(void)
{
	char rest[32], small[12];

	memset(rest, 'X', sizeof(rest));
	defaults();
	CHECK_EQ(cmdline_parse("cpus=2 foo=bar baz mem=4K \"q x\" k=\"a b\"", opts, NOPTS, "guest", rest,
			       sizeof(rest)), 0);
	CHECK(strcmp(rest, "foo=bar baz \"q x\" k=\"a b\"") == 0);
	CHECK_EQ(cpus, 2);
	CHECK_EQ(mem, 4096);
	CHECK_EQ(unit_log[0], 0); /* passed on, not reported */

	/* Nothing unknown: rest is the empty string, not left as it was. */
	memset(rest, 'X', sizeof(rest));
	defaults();
	CHECK_EQ(cmdline_parse("cpus=2", opts, NOPTS, "guest", rest, sizeof(rest)), 0);
	CHECK_EQ(rest[0], 0);

	/* A malformed known key is reported, not passed on. */
	defaults();
	CHECK_EQ(cmdline_parse("cpus=x a", opts, NOPTS, "guest", rest, sizeof(rest)), 1);
	CHECK(strcmp(rest, "a") == 0);

	/* Truncation keeps whole words and stays terminated; a word that does not fit is reported. */
	memset(small, 'X', sizeof(small));
	defaults();
	CHECK_EQ(cmdline_parse("abcd efgh ijkl mn", opts, NOPTS, "guest", small, sizeof(small)), 2);
	CHECK(strcmp(small, "abcd efgh") == 0);
	CHECK(strstr(unit_log, "'ijkl'") != NULL);
	CHECK(strstr(unit_log, "'mn'") != NULL);
	/* Exactly full: 11 characters and the NUL. */
	defaults();
	CHECK_EQ(cmdline_parse("abcde fghij", opts, NOPTS, "guest", small, sizeof(small)), 0);
	CHECK(strcmp(small, "abcde fghij") == 0);
	defaults();
	CHECK_EQ(cmdline_parse("abcde fghijk", opts, NOPTS, "guest", small, sizeof(small)), 1);
	CHECK(strcmp(small, "abcde") == 0);
}

static void test_quoting(void)
{
	CHECK_EQ(parse("name=\"a b\" cpus=3"), 0);
	CHECK(strcmp(name, "a b") == 0);
	CHECK_EQ(cpus, 3);
	CHECK_EQ(parse("name=\"\""), 0);
	CHECK_EQ(name[0], 0);
	CHECK_EQ(parse("name=\"x\ty\""), 0);
	CHECK(strcmp(name, "x\ty") == 0);
	/* Quotes around any value are removed. */
	CHECK_EQ(parse("cpus=\"12\" mem=\"2M\" debug=\"on\" console=\"vga\""), 0);
	CHECK_EQ(cpus, 12);
	CHECK_EQ(mem, 2ull << 20);
	CHECK(debug);
	CHECK_EQ(mode, 2);
	/* The quotes do not count against the buffer: 7 characters fit. */
	CHECK_EQ(parse("name=\"1234567\""), 0);
	CHECK(strcmp(name, "1234567") == 0);

	/* Unbalanced: the rest of the line is one word, the value is refused. */
	CHECK_EQ(parse("name=\"a b cpus=3"), 1);
	CHECK(strcmp(name, "dflt") == 0);
	CHECK_EQ(cpus, 7);
	CHECK(strstr(unit_log, "bad value for name: '\"a b cpus=3' (") != NULL);
	CHECK_EQ(parse("name=\""), 1);
	CHECK_EQ(parse("name=a\"b\""), 1);
	CHECK_EQ(parse("name=\"a\"b"), 1);
	CHECK_EQ(parse("name=\"a\"\"b\""), 1);
	CHECK(strcmp(name, "dflt") == 0);
	/* An equals sign inside the value is part of it. */
	CHECK_EQ(parse("name=a=b"), 0);
	CHECK(strcmp(name, "a=b") == 0);
}

static void test_long_text_in_message(void)
{
	char line[300];

	/* The offending text is quoted bounded, so a huge word neither overflows nor vanishes. */
	memset(line, 'z', sizeof(line) - 1);
	line[sizeof(line) - 1] = 0;
	CHECK_EQ(parse(line), 1);
	CHECK(strstr(unit_log, "unknown option 'zzzzzzzzzz") != NULL);
	CHECK(strstr(unit_log, "...'") != NULL);
	CHECK(strlen(unit_log) < 200);
}

static void test_no_listener(void)
{
	/* Without cmdline_report nothing is printed, and the problems are still counted. */
	cmdline_report = NULL;
	CHECK_EQ(parse("cpus=x bogus mem=1M"), 2);
	CHECK_EQ(mem, 1u << 20);
	CHECK_EQ(unit_log[0], 0);
	cmdline_report = log_report;
	CHECK_EQ(parse("cpus=x"), 1);
	CHECK(strstr(unit_log, "hv: test: bad value for cpus: 'x' (not a number)\n") != NULL);
}

int main(int argc, char **argv)
{
	(void)argc;
	cmdline_report = log_report;
	RUN(test_parse_uint);
	RUN(test_parse_size);
	RUN(test_all_types);
	RUN(test_bools);
	RUN(test_malformed);
	RUN(test_unknown);
	RUN(test_rest);
	RUN(test_quoting);
	RUN(test_long_text_in_message);
	RUN(test_no_listener);
	return unit_report(argv[0]);
}
