/* libFuzzer harness of lib/cmdline.c: a command line from grub.cfg (the hypervisor's own, and a guest
 * module's), parsed against the project's real option tables: core/config.c's, and a copy of the
 * module table in core/guest.c parse_line (a static function of a file that needs the whole
 * hypervisor; keep the two in step). Also the number and size helpers on unterminated bytes. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/config.h"
#include "lib/cmdline.h"
#include "tests/fuzz/fuzz.h"

/* cmdline.h: each report is one NUL-terminated line of at most 511 characters ending in a newline. */
static void report(const char *line)
{
	size_t n = strnlen(line, 512);

	FUZZ_ASSERT(n > 0 && n < 512 && line[n - 1] == '\n');
}

/* The module line's table, as core/guest.c parse_line builds it (struct vm and guest_opts fields). */
static void parse_module_line(const char *line)
{
	char name[32] = "hello", cpus[64] = "", args[256];
	uint64_t mem = 32ull << 20, vcpus = 1, chunk = 2ull << 20;
	unsigned alloc = 0;
	const struct opt_desc opts[] = {
		{ "name", OPT_STRING, name, sizeof(name), NULL, NULL },
		{ "mem", OPT_SIZE, &mem, 0, NULL, NULL },
		{ "cpu", OPT_STRING, cpus, sizeof(cpus), NULL, NULL },
		{ "vcpus", OPT_UINT, &vcpus, 0, NULL, NULL },
		{ "alloc", OPT_CHOICE, &alloc, 0, alloc_names, NULL },
		{ "chunk", OPT_SIZE, &chunk, 0, NULL, NULL },
	};

	memset(args, 0x5a, sizeof(args));
	cmdline_parse(line, opts, sizeof(opts) / sizeof(opts[0]), "module 0", args, sizeof(args));
	FUZZ_ASSERT(strnlen(name, sizeof(name)) < sizeof(name));
	FUZZ_ASSERT(strnlen(cpus, sizeof(cpus)) < sizeof(cpus));
	FUZZ_ASSERT(strnlen(args, sizeof(args)) < sizeof(args));
	FUZZ_ASSERT(alloc < 3);

	/* Without a rest buffer every unknown word is a problem instead. */
	cmdline_parse(line, opts, sizeof(opts) / sizeof(opts[0]), "module 0", NULL, 0);
	/* A one-byte rest buffer holds only the terminator. */
	cmdline_parse(line, opts, sizeof(opts) / sizeof(opts[0]), "module 0", args, 1);
	FUZZ_ASSERT(args[0] == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct hv_config defaults = { .console = "com1,115200", .loglevel = 2,
						   .quantum_us = 2000, .chunk = 2ull << 20 };
	char *line = malloc(size + 1), *raw = malloc(size ? size : 1);
	uint64_t v;

	FUZZ_ASSERT(line && raw);
	memcpy(line, data, size);
	line[size] = 0;            /* the line ends at the first NUL, as GRUB's strings do */
	cmdline_report = report;

	config = defaults;
	config_parse(line);
	FUZZ_ASSERT(strnlen(config.console, sizeof(config.console)) < sizeof(config.console));
	FUZZ_ASSERT(config.alloc < 3 && config.selftest <= SELFTEST_RING);
	parse_module_line(line);

	/* The helpers take (pointer, length): an exact-size copy, so a read past len is an ASan report. */
	memcpy(raw, data, size);
	if (parse_uint((const char *)raw, size, &v) == 0)
		FUZZ_ASSERT(size > 0);
	parse_size((const char *)raw, size, &v);

	free(line);
	free(raw);
	return 0;
}
