/* test_http_chunked.c: the chunked transfer-coding decoder, whole and at
 * every split point. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guard.h"
#include "tcpkit.h"

/*
 * The chunked decoder.  A run feeds pieces of a message and collects the
 * data, the outcome and what follows the message.
 */
struct crun {
	struct tk_chunked d;
	char body[8192];
	size_t bodylen;
	int rc; /* TK_CHUNK_DONE, TK_EHTTP, or TK_CHUNK_MORE */
	char rest[256];
	size_t restlen;
};

static void
crun_init(struct crun *r)
{
	memset(r, 0, sizeof(*r));
	tk_chunked_init(&r->d);
	r->rc = TK_CHUNK_MORE;
}

static void
crun_feed(struct crun *r, const char *p, size_t n)
{
	struct guard g;
	const char *in;
	size_t off = 0, used, doff, dlen;
	int rc;

	guard_init(&g, n);
	in = guard_put(&g, p, n);
	while (r->rc == TK_CHUNK_MORE || r->rc == TK_CHUNK_DATA) {
		rc = tk_chunked_decode(&r->d, in + off, n - off, &used, &doff,
				       &dlen);
		cr_assert_leq(used, n - off);
		if (rc == TK_CHUNK_DATA) {
			cr_assert_gt(dlen, 0);
			cr_assert_eq(doff + dlen, used);
			cr_assert_leq(r->bodylen + dlen, sizeof(r->body));
			memcpy(r->body + r->bodylen, in + off + doff, dlen);
			r->bodylen += dlen;
			off += used;
			r->rc = rc;
			continue;
		}
		cr_assert_eq(dlen, 0);
		off += used;
		r->rc = rc;
		if (rc == TK_CHUNK_MORE) {
			cr_assert_eq(off, n);
			break;
		}
	}
	/* Bytes after the end of the message stay with the caller. */
	if (r->rc == TK_CHUNK_DONE) {
		cr_assert_leq(r->restlen + n - off, sizeof(r->rest));
		memcpy(r->rest + r->restlen, in + off, n - off);
		r->restlen += n - off;
	}
	guard_free(&g);
}

static void
crun_same(const struct crun *a, const struct crun *b, const char *how,
	  size_t at)
{
	cr_assert_eq(a->rc, b->rc, "%s %zu: rc %d, not %d", how, at, b->rc,
		     a->rc);
	cr_assert_eq(a->bodylen, b->bodylen, "%s %zu", how, at);
	cr_assert(memcmp(a->body, b->body, a->bodylen) == 0, "%s %zu", how, at);
	if (a->rc == TK_CHUNK_DONE) {
		cr_assert_eq(a->restlen, b->restlen, "%s %zu", how, at);
		cr_assert(memcmp(a->rest, b->rest, a->restlen) == 0);
	}
}

/* Decode whole, split in two at every offset, in three, byte by byte. */
static void
check_chunked(const char *in, size_t len, struct crun *whole)
{
	struct crun *r = malloc(sizeof(*r));
	size_t i, j;

	cr_assert(r != NULL);
	crun_init(whole);
	crun_feed(whole, in, len);
	for (i = 0; i <= len; i++) {
		crun_init(r);
		crun_feed(r, in, i);
		crun_feed(r, in + i, len - i);
		crun_same(whole, r, "split at", i);
	}
	for (i = 0; i <= len; i += 3) {
		for (j = i; j <= len; j += 5) {
			crun_init(r);
			crun_feed(r, in, i);
			crun_feed(r, in + i, j - i);
			crun_feed(r, in + j, len - j);
			crun_same(whole, r, "three-way split at", i);
		}
	}
	crun_init(r);
	for (i = 0; i < len; i++)
		crun_feed(r, in + i, 1);
	crun_same(whole, r, "byte by byte", len);
	free(r);
}

static void
expect_body(const struct crun *r, const char *want)
{
	cr_assert_eq(r->bodylen, strlen(want));
	cr_assert(memcmp(r->body, want, r->bodylen) == 0, "body \"%.*s\"",
		  (int)r->bodylen, r->body);
}

#define CHECK_CHUNKED(lit, whole) check_chunked(lit, sizeof(lit) - 1, whole)

Test(http_chunked, every_split_point)
{
	static const char in[] = "4\r\nWiki\r\n"
				 "5;name=value;x\r\npedia\r\n"
				 "E\r\n in\r\n\r\nchunks.\r\n"
				 "00000000001 \t; ext\r\n!\r\n"
				 "0\r\n"
				 "X-Trailer: 1\r\n"
				 "Another:\tvalue\r\n"
				 "\r\n"
				 "HTTP/1.1 200 OK\r\n";
	struct crun *whole = malloc(sizeof(*whole));

	cr_assert(whole != NULL);
	CHECK_CHUNKED(in, whole);
	cr_assert_eq(whole->rc, TK_CHUNK_DONE);
	expect_body(whole, "Wikipedia in\r\n\r\nchunks.!");
	cr_assert_eq(whole->restlen, 17);
	cr_assert(memcmp(whole->rest, "HTTP/1.1 200 OK\r\n", 17) == 0);
	free(whole);
}

Test(http_chunked, every_split_point_bare_lf)
{
	static const char in[] = "a\n0123456789\n"
				 "A;x\nabcdefghij\r\n"
				 "0\n"
				 "T: t\n"
				 "\n"
				 "x";
	struct crun *whole = malloc(sizeof(*whole));

	cr_assert(whole != NULL);
	CHECK_CHUNKED(in, whole);
	cr_assert_eq(whole->rc, TK_CHUNK_DONE);
	expect_body(whole, "0123456789abcdefghij");
	cr_assert_eq(whole->restlen, 1);
	free(whole);
}

Test(http_chunked, every_split_point_error)
{
	static const char in[] = "3\r\nabc\r\n2\r\nxyz\r\n0\r\n\r\n";
	struct crun *whole = malloc(sizeof(*whole));

	cr_assert(whole != NULL);
	CHECK_CHUNKED(in, whole);
	cr_assert_eq(whole->rc, TK_EHTTP);
	expect_body(whole, "abcxy");
	free(whole);
}

Test(http_chunked, empty_body)
{
	struct crun *whole = malloc(sizeof(*whole));

	cr_assert(whole != NULL);
	CHECK_CHUNKED("0\r\n\r\n", whole);
	cr_assert_eq(whole->rc, TK_CHUNK_DONE);
	cr_assert_eq(whole->bodylen, 0);
	cr_assert_eq(whole->restlen, 0);
	free(whole);
}

Test(http_chunked, incomplete_is_more)
{
	struct crun r;

	crun_init(&r);
	crun_feed(&r, "5\r\nab", 5);
	cr_assert_eq(r.rc, TK_CHUNK_MORE);
	expect_body(&r, "ab");
	crun_feed(&r, "cde\r", 4);
	cr_assert_eq(r.rc, TK_CHUNK_MORE);
	expect_body(&r, "abcde");
	crun_init(&r);
	crun_feed(&r, "0\r\n", 3);
	cr_assert_eq(r.rc, TK_CHUNK_MORE);
	crun_feed(&r, "T: x\r\n", 6);
	cr_assert_eq(r.rc, TK_CHUNK_MORE);
}

/* Returns the outcome of decoding text in one piece. */
static int
chunked_rc(const char *text, size_t len)
{
	struct crun *r = malloc(sizeof(*r));
	int rc;

	cr_assert(r != NULL);
	crun_init(r);
	crun_feed(r, text, len);
	rc = r->rc;
	free(r);
	return rc;
}

#define CRC(lit) chunked_rc(lit, sizeof(lit) - 1)

Test(http_chunked, size_malformed)
{
	cr_assert_eq(CRC("\r\n"), TK_EHTTP, "empty size");
	cr_assert_eq(CRC("\n"), TK_EHTTP);
	cr_assert_eq(CRC(";ext\r\n"), TK_EHTTP);
	cr_assert_eq(CRC(" 1\r\nx\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("x\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("-1\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("+1\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("0x10\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("1 2\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("1g\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("1\rx"), TK_EHTTP, "CR not followed by LF");
	cr_assert_eq(CRC("1;a\rb\n"), TK_EHTTP);
	cr_assert_eq(CRC("1;a\x01\r\n"), TK_EHTTP, "control in extension");
	cr_assert_eq(chunked_rc("1;a\0\r\n", 6), TK_EHTTP, "NUL in extension");
}

Test(http_chunked, size_overflow)
{
	/* 2^63 - 1 is the largest size; 2^63 and 2^64 overflow. */
	cr_assert_eq(CRC("7fffffffffffffff\r\n"), TK_CHUNK_MORE);
	cr_assert_eq(CRC("07FFFFFFFFFFFFFFF\r\n"), TK_CHUNK_MORE);
	cr_assert_eq(CRC("8000000000000000\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("10000000000000000\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("ffffffffffffffffffffffff"), TK_EHTTP, "early");
}

Test(http_chunked, data_not_followed_by_crlf)
{
	cr_assert_eq(CRC("4\r\nWikiX\r\n0\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("4\r\nWiki\rX\n0\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("4\r\nWiki\r\r\n0\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("4\r\nWiki \r\n0\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("4\r\nWi\r\n0\r\n\r\n"), TK_EHTTP, "short chunk");
	/* With bare LF allowed, this one is "Wik\r" then LF: fine. */
	cr_assert_eq(CRC("4\r\nWik\r\n0\r\n\r\n"), TK_CHUNK_DONE);
}

Test(http_chunked, trailer_malformed)
{
	cr_assert_eq(CRC("0\r\n folded\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("0\r\nA: b\r\n\tfolded\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("0\r\nA: b\x01\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("0\r\nA: b\rc\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(CRC("0\r\n\rX"), TK_EHTTP);
	cr_assert_eq(CRC("0\r\n:\r\n\r\n"), TK_EHTTP);
}

Test(http_chunked, line_length_bound)
{
	static char buf[6000];
	size_t n;

	/* A size line of 4096 bytes passes; one more byte does not. */
	memset(buf, '0', 4095);
	buf[4095] = '1';
	memcpy(buf + 4096, "\r\nx\r\n0\r\n\r\n", 10);
	cr_assert_eq(chunked_rc(buf, 4106), TK_CHUNK_DONE);
	memset(buf, '0', 4096);
	buf[4096] = '1';
	memcpy(buf + 4097, "\r\nx\r\n0\r\n\r\n", 10);
	cr_assert_eq(chunked_rc(buf, 4107), TK_EHTTP);

	/* The same bound for extensions, without a line end in sight. */
	memcpy(buf, "1;", 2);
	memset(buf + 2, 'e', sizeof(buf) - 2);
	cr_assert_eq(chunked_rc(buf, 4096), TK_CHUNK_MORE);
	cr_assert_eq(chunked_rc(buf, 4097), TK_EHTTP);

	/* And for trailer lines. */
	memcpy(buf, "0\r\n", 3);
	memset(buf + 3, 'T', 4096);
	n = 3 + 4096;
	memcpy(buf + n, "\r\n\r\n", 4);
	cr_assert_eq(chunked_rc(buf, n + 4), TK_CHUNK_DONE);
	buf[n] = 'T';
	memcpy(buf + n + 1, "\r\n\r\n", 4);
	cr_assert_eq(chunked_rc(buf, n + 5), TK_EHTTP);
}

Test(http_chunked, sticky_end_and_error)
{
	struct tk_chunked d;
	size_t used, off, len;

	tk_chunked_init(&d);
	cr_assert_eq(
		tk_chunked_decode(&d, "0\r\n\r\nabc", 8, &used, &off, &len),
		TK_CHUNK_DONE);
	cr_assert_eq(used, 5);
	cr_assert_eq(tk_chunked_decode(&d, "abc", 3, &used, &off, &len),
		     TK_CHUNK_DONE);
	cr_assert_eq(used, 0);

	tk_chunked_init(&d);
	cr_assert_eq(tk_chunked_decode(&d, "z", 1, &used, &off, &len),
		     TK_EHTTP);
	cr_assert_eq(tk_chunked_decode(&d, "0\r\n\r\n", 5, &used, &off, &len),
		     TK_EHTTP);

	tk_chunked_init(&d);
	cr_assert_eq(tk_chunked_decode(&d, "", 0, &used, &off, &len),
		     TK_CHUNK_MORE);
	cr_assert_eq(used, 0);
}

Test(http_chunked, large_chunk_spans_calls)
{
	struct tk_chunked d;
	size_t used, off, len, total = 0, i;
	char block[1000];
	int rc;

	memset(block, 'z', sizeof(block));
	tk_chunked_init(&d);
	cr_assert_eq(tk_chunked_decode(&d, "2710\r\n", 6, &used, &off, &len),
		     TK_CHUNK_MORE);
	for (i = 0; i < 10; i++) {
		rc = tk_chunked_decode(&d, block, sizeof(block), &used, &off,
				       &len);
		cr_assert_eq(rc, TK_CHUNK_DATA);
		cr_assert_eq(off, 0);
		cr_assert_eq(len, sizeof(block));
		cr_assert_eq(used, sizeof(block));
		total += len;
	}
	cr_assert_eq(total, 10000);
	cr_assert_eq(d.remaining, 0);
	cr_assert_eq(
		tk_chunked_decode(&d, "\r\n0\r\n\r\n", 7, &used, &off, &len),
		TK_CHUNK_DONE);
}
