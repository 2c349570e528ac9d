/* fuzz_line.c: libFuzzer harness for tk_line_parse(), checked two ways. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* assert() vanishes under NDEBUG (release builds); this never does. */
#define CHECK(x)                                                               \
	do {                                                                   \
		if (!(x)) {                                                    \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #x);                                 \
			abort();                                               \
		}                                                              \
	} while (0)

/*
 * An obviously right answer to compare with: look at the whole buffer.  A
 * '\n' ends a line of n bytes (n <= max, or too long); without one, the
 * line may still fit only while we hold at most max bytes, or max + 1
 * ending in the '\r' of a "\r\n" to come.
 */
static ssize_t
reference(const char *d, size_t len, size_t max, size_t *line_len)
{
	const char *nl = memchr(d, '\n', len);
	size_t n;

	if (nl == NULL) {
		if (len <= max || (len == max + 1 && d[max] == '\r'))
			return 0;
		return TK_ELINETOOLONG;
	}
	n = (size_t)(nl - d);
	if (n > 0 && d[n - 1] == '\r')
		n--;
	if (n > max)
		return TK_ELINETOOLONG;
	*line_len = n;
	return nl - d + 1;
}

/*
 * Take every line of in[0..len) through an accumulator fed in two pieces
 * (split at `split`); store the lines' lengths in out.  Returns how many,
 * with the final status (0 or an error) in *status.
 */
static size_t
run(const char *in, size_t len, size_t split, size_t max, size_t *out,
    ssize_t *status)
{
	size_t have = 0, start = 0, n = 0, ll, pieces[2] = { split, len };
	ssize_t c;
	int i;

	*status = 0;
	for (i = 0; i < 2; i++) {
		have = pieces[i];
		for (;;) {
			/* An exact-size copy: ASan sees any overread. */
			char *buf = malloc(have - start + 1);

			CHECK(buf != NULL);
			memcpy(buf, in + start, have - start);
			c = tk_line_parse(buf, have - start, max, &ll);
			free(buf);
			if (c < 0) {
				CHECK(c == TK_ELINETOOLONG);
				*status = c;
				return n;
			}
			if (c == 0)
				break;
			CHECK((size_t)c <= have - start);
			CHECK(ll <= max && ll < (size_t)c);
			CHECK(in[start + (size_t)c - 1] == '\n');
			out[n++] = ll;
			start += (size_t)c;
		}
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in;
	size_t len, max, split, off, ll, rll, n1, n2, i;
	size_t *a, *b;
	ssize_t c, r, s1, s2;

	if (size < 2)
		return 0;
	/* First byte: max (small, to reach the limits; 255: unlimited). */
	max = data[0] == 255 ? SIZE_MAX : data[0] % 40;
	split = data[1];
	in = (const char *)data + 2;
	len = size - 2;
	split = len ? split % (len + 1) : 0;

	/* Line by line over the whole input, against the reference. */
	for (off = 0;;) {
		ll = rll = (size_t)-1;
		c = tk_line_parse(in + off, len - off, max, &ll);
		r = reference(in + off, len - off, max, &rll);
		CHECK(c == r);
		if (c <= 0)
			break;
		CHECK(ll == rll);
		off += (size_t)c;
		CHECK(off <= len);
	}

	/* Two pieces give the same lines as one. */
	a = malloc((len + 1) * sizeof(*a));
	b = malloc((len + 1) * sizeof(*b));
	CHECK(a != NULL && b != NULL);
	n1 = run(in, len, len, max, a, &s1);
	n2 = run(in, len, split, max, b, &s2);
	CHECK(n1 == n2 && s1 == s2);
	for (i = 0; i < n1; i++)
		CHECK(a[i] == b[i]);
	free(a);
	free(b);
	return 0;
}
