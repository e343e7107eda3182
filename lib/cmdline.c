/* The command-line parser: words, key=value options, numbers and sizes, for the hypervisor and guests. */
#include "lib/cmdline.h"
#include "lib/errno.h"
#include "lib/format.h"
#include "lib/string.h"

void (*cmdline_report)(const char *line);

/* One problem, as one line ("hv: WHO: ...\n"), to whoever listens (cmdline.h). */
__attribute__((format(printf, 1, 2))) static void report(const char *fmt, ...)
{
	char line[512];  /* a short `who`; key and text quoted to 64 each; the reason up to 128 */
	va_list ap;

	if (!cmdline_report)
		return;
	va_start(ap, fmt);
	format(line, sizeof(line), fmt, ap);
	va_end(ap);
	cmdline_report(line);
}

/* format has no precision (%.*s), so quoted text is copied into a bounded buffer first. */
#define QUOTE_MAX 64

static void quote(char *buf, const char *s, size_t len)
{
	if (len < QUOTE_MAX) {
		memcpy(buf, s, len);
		buf[len] = 0;
	} else {
		memcpy(buf, s, QUOTE_MAX - 4);
		memcpy(buf + QUOTE_MAX - 4, "...", 4);
	}
}

/* lib/string.h has no memchr: the first `c` in s[0..len), or NULL. */
static const char *find_char(const char *s, size_t len, char c)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] == c)
			return s + i;
	return NULL;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Does s[0..len) equal the NUL-terminated word w, ignoring ASCII case? */
static bool word_is(const char *s, size_t len, const char *w)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!w[i] || lower(s[i]) != lower(w[i]))
			return false;
	return w[len] == 0;
}

int parse_uint(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0, base = 10, d;
	size_t i = 0;

	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == len)
		return -EINVAL;
	for (; i < len; i++) {
		char c = lower(s[i]);

		if (c >= '0' && c <= '9')
			d = (uint64_t)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (uint64_t)(c - 'a' + 10);
		else
			return -EINVAL;
		if (v > (UINT64_MAX - d) / base)
			return -ERANGE;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

int parse_size(const char *s, size_t len, uint64_t *out)
{
	unsigned shift = 0;
	uint64_t v;
	int ret;

	/* The suffixes are binary (K = 2^10) and never hex digits, so "0x10M" is unambiguous. */
	if (len > 0) {
		switch (lower(s[len - 1])) {
		case 'k': shift = 10; break;
		case 'm': shift = 20; break;
		case 'g': shift = 30; break;
		}
		if (shift)
			len--;
	}
	ret = parse_uint(s, len, &v);
	if (ret < 0)
		return ret;
	if (v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

static int parse_bool(const char *s, size_t len, bool *out)
{
	static const char *const yes[] = { "1", "yes", "on", "true" };
	static const char *const no[] = { "0", "no", "off", "false" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (word_is(s, len, yes[i])) {
			*out = true;
			return 0;
		}
		if (word_is(s, len, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* "expected one of a|b|c", truncated to fit. */
static void choices_text(char *buf, size_t size, const char *const *choices)
{
	size_t n = 0, i, l;

	buf[0] = 0;
	for (i = 0; choices && choices[i]; i++) {
		l = strlen(choices[i]);
		if (n + l + 2 > size)
			break;
		if (i)
			buf[n++] = '|';
		memcpy(buf + n, choices[i], l);
		n += l;
		buf[n] = 0;
	}
}

/*
 * Stores the value `v`/`vlen` (quotes already removed; v == NULL for a bare key) into the option.
 * Returns NULL on success, or why the value is refused; the destination is untouched then.
 */
static const char *set_option(const struct opt_desc *o, const char *v, size_t vlen, char *why, size_t wsize)
{
	uint64_t u;
	bool b;
	size_t i;
	int ret;

	if (!v && o->type != OPT_BOOL)
		return "missing value";
	switch (o->type) {
	case OPT_UINT:
	case OPT_SIZE:
		ret = o->type == OPT_UINT ? parse_uint(v, vlen, &u) : parse_size(v, vlen, &u);
		if (ret == -ERANGE)
			return "too large";
		if (ret < 0)
			return o->type == OPT_UINT ? "not a number"
						   : "not a size (number with optional K, M or G)";
		if (o->dst)
			*(uint64_t *)o->dst = u;
		return NULL;
	case OPT_BOOL:
		b = true;
		if (v && parse_bool(v, vlen, &b) < 0)
			return "not a boolean (yes/no, on/off, true/false, 1/0)";
		if (o->dst)
			*(bool *)o->dst = b;
		return NULL;
	case OPT_STRING:
		if (vlen >= o->dst_size)
			return "too long";
		if (o->dst) {
			memcpy(o->dst, v, vlen);
			((char *)o->dst)[vlen] = 0;
		}
		return NULL;
	case OPT_CHOICE:
		for (i = 0; o->choices && o->choices[i]; i++)
			if (strlen(o->choices[i]) == vlen && memcmp(o->choices[i], v, vlen) == 0) {
				if (o->dst)
					*(unsigned int *)o->dst = (unsigned int)i;
				return NULL;
			}
		memcpy(why, "expected one of ", 17);
		choices_text(why + 16, wsize - 16, o->choices);
		return why;
	}
	return "option of unknown type";
}

/* Appends word w/len to rest, space-separated. False when it does not fit (nothing is appended then). */
static bool append_rest(char *rest, size_t rest_size, const char *w, size_t len)
{
	size_t n = strlen(rest), sep = n ? 1 : 0;

	if (n + sep + len + 1 > rest_size)
		return false;
	if (sep)
		rest[n++] = ' ';
	memcpy(rest + n, w, len);
	rest[n + len] = 0;
	return true;
}

/*
 * One word, [w, w + len): `key`, `key=value` or `key="value"`. Returns the number of problems (0 or 1).
 */
static int parse_word(const char *w, size_t len, const struct opt_desc *opts, size_t nopts, const char *who,
		      char *rest, size_t rest_size)
{
	char text[QUOTE_MAX], key[QUOTE_MAX], whybuf[128];
	const char *eq, *v = NULL, *why;
	size_t klen = len, vlen = 0, i;

	eq = find_char(w, len, '=');
	if (eq) {
		klen = (size_t)(eq - w);
		v = eq + 1;
		vlen = len - klen - 1;
	}
	for (i = 0; i < nopts; i++)
		if (strlen(opts[i].key) == klen && memcmp(opts[i].key, w, klen) == 0)
			break;
	if (i == nopts) {
		if (rest && append_rest(rest, rest_size, w, len))
			return 0;
		quote(text, w, len);
		if (rest)
			report("hv: %s: no room to pass on '%s'\n", who, text);
		else
			report("hv: %s: unknown option '%s'\n", who, text);
		return 1;
	}

	why = NULL;
	if (v && vlen > 0 && v[0] == '"') {
		/* The word splitter kept the quotes; a well-formed value is exactly one quoted string. */
		if (vlen < 2 || v[vlen - 1] != '"' || find_char(v + 1, vlen - 2, '"'))
			why = "unbalanced quotes";
		v++;
		vlen = vlen >= 2 ? vlen - 2 : 0;
	} else if (v && find_char(v, vlen, '"')) {
		why = "unbalanced quotes";
	}
	if (!why)
		why = set_option(&opts[i], v, vlen, whybuf, sizeof(whybuf));
	if (!why) {
		if (opts[i].seen)
			*opts[i].seen = true;
		return 0;
	}
	quote(key, w, klen);
	quote(text, eq ? eq + 1 : "", eq ? len - klen - 1 : 0);
	report("hv: %s: bad value for %s: '%s' (%s)\n", who, key, text, why);
	return 1;
}

int cmdline_parse(const char *line, const struct opt_desc *opts, size_t nopts, const char *who,
		  char *rest, size_t rest_size)
{
	const char *w;
	bool in_quotes;
	int problems = 0;

	if (rest && rest_size == 0)
		rest = NULL;
	if (rest)
		rest[0] = 0;
	if (!who)
		who = "?";
	if (!line)
		return 0;
	for (;;) {
		while (is_space(*line))
			line++;
		if (!*line)
			break;
		/* A word runs to the next space or tab outside double quotes. */
		w = line;
		in_quotes = false;
		while (*line && (in_quotes || !is_space(*line))) {
			if (*line == '"')
				in_quotes = !in_quotes;
			line++;
		}
		problems += parse_word(w, (size_t)(line - w), opts, nopts, who, rest, rest_size);
	}
	return problems;
}
