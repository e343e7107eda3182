/* One parser for every command line: the hypervisor's own and each guest module's. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A command line is words separated by spaces or tabs; a word is `key=value` or a bare `key`.
 * Values may be quoted with double quotes to hold spaces ("name=my guest" is not supported; key="a b" is).
 */
enum opt_type {
	OPT_UINT,   /* decimal, or hex with 0x: uint64_t */
	OPT_SIZE,   /* bytes with an optional K/M/G suffix (binary, case-insensitive): uint64_t */
	OPT_BOOL,   /* 1/0, yes/no, on/off, true/false; a bare key means true: bool */
	OPT_STRING, /* copied, NUL-terminated, into a char[dst_size] */
	OPT_CHOICE, /* one of `choices` (NULL-terminated list): the index, as unsigned int */
};

struct opt_desc {
	const char *key;
	enum opt_type type;
	void *dst;                  /* where the value goes; untouched when the value is malformed */
	size_t dst_size;            /* OPT_STRING only: size of the buffer */
	const char *const *choices; /* OPT_CHOICE only */
	bool *seen;                 /* optional: set true when the key appears with a valid value */
};

/*
 * Where cmdline_parse reports each problem: one whole line ("hv: WHO: ...\n") handed to this function.
 * lib/ prints nothing itself (it is below console/, docs/design.md, "Layout"): the hypervisor points this
 * at its console (core/main.c), a host test at its log. NULL: problems are only counted.
 */
extern void (*cmdline_report)(const char *line);

/*
 * Parses `line` against `opts`. A malformed value is reported (through cmdline_report, naming the key
 * and the offending text) and the default kept. A key not in `opts` is reported as unknown, unless `rest` is
 * given: then the unknown words are appended to `rest` (space-separated, NUL-terminated, truncated to
 * rest_size), which is how a guest's own words are passed on to it.
 * `who` names the line's owner in messages, e.g. "hypervisor" or "guest hello".
 * Returns the number of problems reported (0 when the line was clean).
 */
int cmdline_parse(const char *line, const struct opt_desc *opts, size_t nopts, const char *who,
		  char *rest, size_t rest_size);

/* Helpers, also used on their own: 0 on success, -EINVAL when malformed, -ERANGE on overflow. */
int parse_uint(const char *s, size_t len, uint64_t *out);
int parse_size(const char *s, size_t len, uint64_t *out);
