/* The hypervisor's command line: one table of options, parsed by the shared parser (lib/cmdline.c). */
#include "core/config.h"
#include "lib/cmdline.h"

const char *const alloc_names[] = { "eager", "lazy", "demand", NULL };
const char *const paging_names[] = { "ept", "shadow", NULL };
const char *const selftest_names[] = { "none", "ud", "null", "write-code", "exec-data", "ring", NULL };

struct hv_config config = {
	.console = "com1,115200",
	.loglevel = 2,
	.quantum_us = 2000,
	.chunk = 2ull << 20,
	.apicv = true,
	.console_irq = true,
};

void config_parse(const char *cmdline)
{
	const struct opt_desc opts[] = {
		{ "console", OPT_STRING, config.console, sizeof(config.console), NULL, NULL },
		{ "poweroff", OPT_BOOL, &config.poweroff, 0, NULL, NULL },
		{ "loglevel", OPT_UINT, &config.loglevel, 0, NULL, NULL },
		{ "quantum", OPT_UINT, &config.quantum_us, 0, NULL, NULL },
		{ "alloc", OPT_CHOICE, &config.alloc, 0, alloc_names, NULL },
		{ "chunk", OPT_SIZE, &config.chunk, 0, NULL, NULL },
		{ "paging", OPT_CHOICE, &config.paging, 0, paging_names, NULL },
		{ "selftest", OPT_CHOICE, &config.selftest, 0, selftest_names, NULL },
		{ "apicv", OPT_BOOL, &config.apicv, 0, NULL, NULL },
		{ "console_irq", OPT_BOOL, &config.console_irq, 0, NULL, NULL },
		{ "poison", OPT_BOOL, &config.poison, 0, NULL, NULL },
		{ "input_hold", OPT_UINT, &config.input_hold_us, 0, NULL, NULL },
	};

	cmdline_parse(cmdline, opts, sizeof(opts) / sizeof(opts[0]), "hypervisor", NULL, 0);
}
