/* What the libFuzzer harnesses share: a contract check that stops the run where a parser broke its
 * documented promise (libFuzzer records the input as a crash, with the stack). */
#pragma once
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_ASSERT(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: contract violated: %s\n", __FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

/* A little-endian reader over the fuzzer's bytes: reads past the end give zeros, so every input is
 * some valid sequence of values and no harness indexes past `size`. */
struct fuzz_in {
	const unsigned char *p;
	size_t n, at;
};

static inline unsigned long long fuzz_take(struct fuzz_in *in, unsigned bytes)
{
	unsigned long long v = 0;

	for (unsigned i = 0; i < bytes; i++, in->at++)
		if (in->at < in->n)
			v |= (unsigned long long)in->p[in->at] << (8 * i);
	return v;
}

static inline int fuzz_done(const struct fuzz_in *in)
{
	return in->at >= in->n;
}
