/* Freestanding string and memory helpers; gcc also emits calls to the mem* ones itself. */
#include <stdint.h>
#include "lib/string.h"

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;

	/* Whole aligned quadwords (clearing pages and partitions): rep stosq, an eighth of the
	 * iterations; emulators count each one. Otherwise rep stosb (fast with ERMSB on real CPUs). */
	if (!(((uintptr_t)dst | n) & 7)) {
		uint64_t q = 0x0101010101010101ull * (uint8_t)c;
		size_t words = n / 8;

		asm volatile("rep stosq" : "+D"(d), "+c"(words) : "a"(q) : "memory");
		return dst;
	}
	asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;
	asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (d <= s || d >= s + n)
		return memcpy(dst, src, n);
	while (n--)
		d[n] = s[n];
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

int strcmp(const char *a, const char *b)
{
	return strncmp(a, b, (size_t)-1);
}

char *strchr(const char *s, int c)
{
	for (;; s++) {
		if (*s == (char)c)
			return (char *)s;
		if (!*s)
			return NULL;
	}
}
