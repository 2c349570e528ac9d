/* test_line.c: tk_line_parse(), alone and at every split of its input. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guard.h"
#include "tcpkit.h"

/* tk_line_parse() on a guarded copy of s (a literal). */
static ssize_t
parse(const char *s, size_t len, size_t max, size_t *line_len)
{
	struct guard g;
	ssize_t r;

	guard_init(&g, len);
	r = tk_line_parse(guard_put(&g, s, len), len, max, line_len);
	guard_free(&g);
	return r;
}

#define PARSE(lit, max, ll) parse(lit, sizeof(lit) - 1, max, ll)

Test(line, lf_and_crlf)
{
	size_t ll = 99;

	cr_assert_eq(PARSE("abc\n", 10, &ll), 4);
	cr_assert_eq(ll, 3);
	cr_assert_eq(PARSE("abc\r\n", 10, &ll), 5);
	cr_assert_eq(ll, 3);
	cr_assert_eq(PARSE("\n", 10, &ll), 1);
	cr_assert_eq(ll, 0);
	cr_assert_eq(PARSE("\r\n", 10, &ll), 2);
	cr_assert_eq(ll, 0);
	/* Only the first line is taken. */
	cr_assert_eq(PARSE("a\nb\n", 10, &ll), 2);
	cr_assert_eq(ll, 1);
}

Test(line, cr_inside_a_line_is_content)
{
	size_t ll = 99;

	cr_assert_eq(PARSE("a\rb\n", 10, &ll), 4);
	cr_assert_eq(ll, 3);
	/* Only the '\r' right before '\n' is stripped. */
	cr_assert_eq(PARSE("a\r\r\n", 10, &ll), 4);
	cr_assert_eq(ll, 2);
}

Test(line, incomplete)
{
	size_t ll = 99;

	cr_assert_eq(PARSE("", 10, &ll), 0);
	cr_assert_eq(PARSE("abc", 10, &ll), 0);
	cr_assert_eq(PARSE("abc\r", 10, &ll), 0);
	cr_assert_eq(ll, 99, "line_len untouched when nothing is returned");
}

Test(line, exactly_max)
{
	size_t ll = 99;

	cr_assert_eq(PARSE("abc", 3, &ll), 0);
	cr_assert_eq(PARSE("abc\r", 3, &ll), 0);
	cr_assert_eq(PARSE("abc\n", 3, &ll), 4);
	cr_assert_eq(ll, 3);
	cr_assert_eq(PARSE("abc\r\n", 3, &ll), 5);
	cr_assert_eq(ll, 3);
	cr_assert_eq(PARSE("abc\r\nmore", 3, &ll), 5);
	cr_assert_eq(ll, 3);
}

Test(line, too_long)
{
	size_t ll = 99;

	cr_assert_eq(PARSE("abcd", 3, &ll), TK_ELINETOOLONG);
	cr_assert_eq(PARSE("abcd\n", 3, &ll), TK_ELINETOOLONG);
	cr_assert_eq(PARSE("abcd\r\n", 3, &ll), TK_ELINETOOLONG);
	/* A '\r' at index max not followed by '\n' is content: too long. */
	cr_assert_eq(PARSE("abc\rx", 3, &ll), TK_ELINETOOLONG);
	cr_assert_eq(PARSE("abc\r\r\n", 3, &ll), TK_ELINETOOLONG);
	cr_assert_eq(PARSE("abc\r\r", 3, &ll), TK_ELINETOOLONG);
	cr_assert_eq(ll, 99);
}

Test(line, max_zero)
{
	size_t ll = 99;

	cr_assert_eq(PARSE("", 0, &ll), 0);
	cr_assert_eq(PARSE("\r", 0, &ll), 0);
	cr_assert_eq(PARSE("\n", 0, &ll), 1);
	cr_assert_eq(ll, 0);
	cr_assert_eq(PARSE("\r\n", 0, &ll), 2);
	cr_assert_eq(ll, 0);
	cr_assert_eq(PARSE("x", 0, &ll), TK_ELINETOOLONG);
	cr_assert_eq(PARSE("x\n", 0, &ll), TK_ELINETOOLONG);
	cr_assert_eq(PARSE("\rx", 0, &ll), TK_ELINETOOLONG);
	cr_assert_eq(PARSE("\r\r\n", 0, &ll), TK_ELINETOOLONG);
}

Test(line, max_huge_does_not_wrap)
{
	size_t ll = 99;

	cr_assert_eq(PARSE("abc", SIZE_MAX, &ll), 0);
	cr_assert_eq(PARSE("abc\r\n", SIZE_MAX, &ll), 5);
	cr_assert_eq(ll, 3);
	cr_assert_eq(PARSE("abc\n", SIZE_MAX - 1, &ll), 4);
	cr_assert_eq(ll, 3);
}

/*
 * The header promises to read only data[0..min(len, max + 2)): with only
 * max + 2 readable bytes before the guard page, a larger len must not
 * fault.  (len overstates the buffer on purpose; the contract allows it.)
 */
Test(line, reads_at_most_max_plus_two)
{
	struct guard g;
	const char *p;
	size_t ll;

	guard_init(&g, 16);
	p = guard_put(&g, "abcdefgh\r\r", 10);
	cr_assert_eq(tk_line_parse(p, 1000, 8, &ll), TK_ELINETOOLONG);
	p = guard_put(&g, "abcdefghi", 9);
	cr_assert_eq(tk_line_parse(p, 1000, 8, &ll), TK_ELINETOOLONG);
	p = guard_put(&g, "abcdefgh\r\n", 10);
	cr_assert_eq(tk_line_parse(p, 1000, 8, &ll), 10);
	cr_assert_eq(ll, 8);
	p = guard_put(&g, "\r\n", 2);
	cr_assert_eq(tk_line_parse(p, 1000, 0, &ll), 2);
	guard_free(&g);
}

Test(line, long_line_without_terminator)
{
	static char big[10000];
	size_t ll;

	memset(big, 'x', sizeof(big));
	cr_assert_eq(parse(big, sizeof(big), 4096, &ll), TK_ELINETOOLONG);
	cr_assert_eq(parse(big, 4096, 4096, &ll), 0);
	big[4096] = '\n';
	cr_assert_eq(parse(big, sizeof(big), 4096, &ll), 4097);
	cr_assert_eq(ll, 4096);
	big[4096] = 'x';
}

/*
 * The accumulator a caller would write: append what arrives, take every
 * complete line, keep the rest.  Records the lines and the first error.
 */
#define MAXLINES 32

struct run {
	char acc[512];
	size_t acclen;
	size_t max;
	size_t nlines;
	char lines[MAXLINES][64];
	size_t lens[MAXLINES];
	ssize_t err;
	struct guard g;
};

static void
run_init(struct run *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
	guard_init(&r->g, sizeof(r->acc));
}

static void
run_feed(struct run *r, const char *p, size_t n)
{
	const char *d;
	size_t ll;
	ssize_t c;

	if (r->err != 0)
		return;
	cr_assert(r->acclen + n <= sizeof(r->acc));
	memcpy(r->acc + r->acclen, p, n);
	r->acclen += n;
	for (;;) {
		d = guard_put(&r->g, r->acc, r->acclen);
		c = tk_line_parse(d, r->acclen, r->max, &ll);
		if (c < 0) {
			r->err = c;
			return;
		}
		if (c == 0)
			return;
		cr_assert((size_t)c <= r->acclen);
		cr_assert(ll < (size_t)c && ll <= r->max);
		cr_assert(r->nlines < MAXLINES);
		cr_assert(ll < sizeof(r->lines[0]));
		memcpy(r->lines[r->nlines], d, ll);
		r->lens[r->nlines++] = ll;
		memmove(r->acc, r->acc + c, r->acclen - (size_t)c);
		r->acclen -= (size_t)c;
	}
}

static void
run_same(const struct run *a, const struct run *b, size_t split)
{
	size_t i;

	cr_assert_eq(a->nlines, b->nlines, "split at %zu: %zu lines, not %zu",
		     split, b->nlines, a->nlines);
	for (i = 0; i < a->nlines; i++) {
		cr_assert_eq(a->lens[i], b->lens[i], "split at %zu, line %zu",
			     split, i);
		cr_assert(memcmp(a->lines[i], b->lines[i], a->lens[i]) == 0,
			  "split at %zu, line %zu", split, i);
	}
	cr_assert_eq(a->err, b->err, "split at %zu", split);
	/* After an error the rest of the input is not even appended. */
	if (a->err == 0) {
		cr_assert_eq(a->acclen, b->acclen, "split at %zu", split);
		cr_assert(memcmp(a->acc, b->acc, a->acclen) == 0);
	}
}

/* Run input whole, split in two at every offset, and byte by byte. */
static void
check_splits(const char *in, size_t len, size_t max, struct run *whole)
{
	struct run *r = malloc(sizeof(*r));
	size_t i;

	cr_assert(r != NULL);
	run_init(whole, max);
	run_feed(whole, in, len);
	for (i = 0; i <= len; i++) {
		run_init(r, max);
		run_feed(r, in, i);
		run_feed(r, in + i, len - i);
		run_same(whole, r, i);
		guard_free(&r->g);
	}
	run_init(r, max);
	for (i = 0; i < len; i++)
		run_feed(r, in + i, 1);
	run_same(whole, r, len);
	guard_free(&r->g);
	free(r);
}

static void
expect_line(const struct run *r, size_t i, const char *want)
{
	cr_assert(i < r->nlines);
	cr_assert_eq(r->lens[i], strlen(want), "line %zu", i);
	cr_assert(memcmp(r->lines[i], want, r->lens[i]) == 0, "line %zu", i);
}

Test(line, every_split_point)
{
	static const char in[] = "hello\n"
				 "\r\n"
				 "\n"
				 "12345678\r\n" /* exactly max, CRLF */
				 "abcdefgh\n"	/* exactly max, LF */
				 "a\rb\n"
				 "1234567\r\r\n" /* '\r' content at max - 1 */
				 "last\r\n"
				 "tail\r";
	struct run *whole = malloc(sizeof(*whole));

	cr_assert(whole != NULL);
	check_splits(in, sizeof(in) - 1, 8, whole);
	cr_assert_eq(whole->nlines, 8);
	cr_assert_eq(whole->err, 0);
	expect_line(whole, 0, "hello");
	expect_line(whole, 1, "");
	expect_line(whole, 2, "");
	expect_line(whole, 3, "12345678");
	expect_line(whole, 4, "abcdefgh");
	expect_line(whole, 5, "a\rb");
	expect_line(whole, 6, "1234567\r");
	expect_line(whole, 7, "last");
	cr_assert_eq(whole->acclen, 5, "the unterminated tail is kept");
	guard_free(&whole->g);
	free(whole);
}

Test(line, every_split_point_with_overlong_line)
{
	static const char in[] = "ok\r\n"
				 "\n"
				 "123456789\r\n" /* max + 1 */
				 "never\n";
	struct run *whole = malloc(sizeof(*whole));

	cr_assert(whole != NULL);
	check_splits(in, sizeof(in) - 1, 8, whole);
	cr_assert_eq(whole->nlines, 2);
	expect_line(whole, 0, "ok");
	expect_line(whole, 1, "");
	cr_assert_eq(whole->err, TK_ELINETOOLONG);
	guard_free(&whole->g);
	free(whole);
}

Test(line, every_split_point_cr_at_boundary)
{
	static const char in[] = "12345678\r" /* '\r' at max, then not '\n' */
				 "x\n";
	struct run *whole = malloc(sizeof(*whole));

	cr_assert(whole != NULL);
	check_splits(in, sizeof(in) - 1, 8, whole);
	cr_assert_eq(whole->nlines, 0);
	cr_assert_eq(whole->err, TK_ELINETOOLONG);
	guard_free(&whole->g);
	free(whole);
}

Test(line, every_split_point_max_zero)
{
	static const char in[] = "\n\r\n\r\n\nx\n";
	struct run *whole = malloc(sizeof(*whole));

	cr_assert(whole != NULL);
	check_splits(in, sizeof(in) - 1, 0, whole);
	cr_assert_eq(whole->nlines, 4);
	cr_assert_eq(whole->err, TK_ELINETOOLONG);
	guard_free(&whole->g);
	free(whole);
}
