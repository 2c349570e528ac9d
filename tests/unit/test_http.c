/* test_http.c: response heads and body framing (the chunked decoder:
 * test_http_chunked.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guard.h"
#include "tcpkit.h"

/* A parsed head: the guarded copy stays alive for the spans. */
struct head {
	struct guard g;
	const char *buf;
	size_t len;
	ssize_t rc;
	struct tk_http_response r;
	struct tk_http_header hdrs[TK_HTTP_MAX_HEADERS];
};

static void
head_parse(struct head *h, const char *text, size_t len)
{
	guard_init(&h->g, len);
	h->buf = guard_put(&h->g, text, len);
	h->len = len;
	h->r.headers = h->hdrs;
	h->r.max_headers = TK_HTTP_MAX_HEADERS;
	h->rc = tk_http_parse_response(h->buf, len, 0, &h->r);
}

static void
head_free(struct head *h)
{
	guard_free(&h->g);
}

static ssize_t
parse_rc(const char *text)
{
	struct head h;
	ssize_t rc;

	head_parse(&h, text, strlen(text));
	rc = h.rc;
	head_free(&h);
	return rc;
}

static void
expect_span(const struct head *h, struct tk_span sp, const char *want)
{
	cr_assert_leq(sp.off + sp.len, h->len, "span outside the buffer");
	cr_assert_eq(sp.len, strlen(want), "\"%.*s\" is not \"%s\"",
		     (int)sp.len, h->buf + sp.off, want);
	cr_assert(memcmp(h->buf + sp.off, want, sp.len) == 0,
		  "\"%.*s\" is not \"%s\"", (int)sp.len, h->buf + sp.off, want);
}

static void
expect_header(const struct head *h, size_t i, const char *name,
	      const char *value)
{
	cr_assert_lt(i, h->r.nheaders);
	expect_span(h, h->r.headers[i].name, name);
	expect_span(h, h->r.headers[i].value, value);
}

static const char full_head[] = "HTTP/1.1 200 OK\r\n"
				"Content-Type: text/plain\r\n"
				"Content-Length:  5 \r\n"
				"X-Empty:\r\n"
				"X-Spaces: \t a  b \t\r\n"
				"X-Obs-Text: caf\xc3\xa9\r\n"
				"X!#$%&'*+-.^_`|~09: x\r\n"
				"\r\n";

Test(http_head, full)
{
	static const char text[] = "HTTP/1.1 200 OK\r\n"
				   "Content-Type: text/plain\r\n"
				   "Content-Length:  5 \r\n"
				   "X-Empty:\r\n"
				   "X-Spaces: \t a  b \t\r\n"
				   "X-Obs-Text: caf\xc3\xa9\r\n"
				   "X!#$%&'*+-.^_`|~09: x\r\n"
				   "\r\n"
				   "hello";
	struct head h;

	head_parse(&h, text, sizeof(text) - 1);
	cr_assert_eq(h.rc, (ssize_t)sizeof(text) - 1 - 5);
	cr_assert_eq(h.r.minor_version, 1);
	cr_assert_eq(h.r.status, 200);
	expect_span(&h, h.r.reason, "OK");
	cr_assert_eq(h.r.nheaders, 6);
	expect_header(&h, 0, "Content-Type", "text/plain");
	expect_header(&h, 1, "Content-Length", "5");
	expect_header(&h, 2, "X-Empty", "");
	expect_header(&h, 3, "X-Spaces", "a  b");
	expect_header(&h, 4, "X-Obs-Text", "caf\xc3\xa9");
	expect_header(&h, 5, "X!#$%&'*+-.^_`|~09", "x");
	head_free(&h);
}

Test(http_head, bare_lf_and_http10)
{
	static const char text[] = "HTTP/1.0 404 Not Found\n"
				   "A: b\n"
				   "C: d\r\n"
				   "\n";
	struct head h;

	head_parse(&h, text, sizeof(text) - 1);
	cr_assert_eq(h.rc, (ssize_t)sizeof(text) - 1);
	cr_assert_eq(h.r.minor_version, 0);
	cr_assert_eq(h.r.status, 404);
	expect_span(&h, h.r.reason, "Not Found");
	cr_assert_eq(h.r.nheaders, 2);
	expect_header(&h, 0, "A", "b");
	expect_header(&h, 1, "C", "d");
	head_free(&h);
}

Test(http_head, empty_reason)
{
	struct head h;

	head_parse(&h, "HTTP/1.1 200\r\n\r\n", 16);
	cr_assert_eq(h.rc, 16);
	cr_assert_eq(h.r.status, 200);
	expect_span(&h, h.r.reason, "");
	cr_assert_eq(h.r.nheaders, 0);
	head_free(&h);

	head_parse(&h, "HTTP/1.1 204 \r\n\r\n", 17);
	cr_assert_eq(h.rc, 17);
	cr_assert_eq(h.r.status, 204);
	expect_span(&h, h.r.reason, "");
	head_free(&h);

	head_parse(&h, "HTTP/1.1 999 \t\xff\n\n", 17);
	cr_assert_eq(h.rc, 17);
	cr_assert_eq(h.r.status, 999);
	expect_span(&h, h.r.reason, "\t\xff");
	head_free(&h);
}

Test(http_head, every_prefix_is_incomplete)
{
	struct head h;
	size_t i, n = sizeof(full_head) - 1;

	for (i = 0; i < n; i++) {
		head_parse(&h, full_head, i);
		cr_assert_eq(h.rc, 0, "prefix of %zu bytes gave %zd", i, h.rc);
		head_free(&h);
	}
	head_parse(&h, full_head, n);
	cr_assert_eq(h.rc, (ssize_t)n);
	head_free(&h);
}

Test(http_head, every_prefix_bare_lf)
{
	static const char text[] = "HTTP/1.1 301 Moved\nLocation: /x\n\n";
	struct head h;
	size_t i, n = sizeof(text) - 1;

	for (i = 0; i < n; i++) {
		head_parse(&h, text, i);
		cr_assert_eq(h.rc, 0, "prefix of %zu bytes gave %zd", i, h.rc);
		head_free(&h);
	}
	head_parse(&h, text, n);
	cr_assert_eq(h.rc, (ssize_t)n);
	head_free(&h);
}

Test(http_head, status_line_malformed)
{
	cr_assert_eq(parse_rc("HTTP/2 200 OK\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/2.0 200 OK\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.10 200 OK\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("http/1.1 200 OK\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.x 200 OK\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 20 OK\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 2000 OK\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 099 OK\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 2x0 OK\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1  200 OK\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1\t200 OK\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200\tOK\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc(" HTTP/1.1 200 OK\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("\r\nHTTP/1.1 200 OK\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\rX\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 O\x01K\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 O\x7fK\r\n\r\n"), TK_EHTTP);
}

Test(http_head, reason_with_nul)
{
	static const char text[] = "HTTP/1.1 200 O\0K\r\n\r\n";
	struct head h;

	head_parse(&h, text, sizeof(text) - 1);
	cr_assert_eq(h.rc, TK_EHTTP);
	head_free(&h);
}

/* Errors are reported as soon as the offending byte is seen. */
Test(http_head, early_errors)
{
	cr_assert_eq(parse_rc("SSH-2.0-OpenSSH"), TK_EHTTP);
	cr_assert_eq(parse_rc("H"), 0);
	cr_assert_eq(parse_rc("HTTP/1.1 2"), 0);
	cr_assert_eq(parse_rc("HTTP/1.1 2x"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\nBad Name"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\nA: \x01"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\n "), TK_EHTTP);
}

Test(http_head, header_malformed)
{
	/* White space before the colon. */
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\nName : v\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\nName\t: v\r\n\r\n"),
		     TK_EHTTP);
	/* obs-fold, also on the first header line. */
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n"),
		     TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\nA: b\r\n\tc\r\n\r\n"),
		     TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\n A: b\r\n\r\n"), TK_EHTTP);
	/* No name, no colon, bad name characters. */
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\n: v\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\nName\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\nNa(me: v\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\nNa/me: v\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\n\xc3\xa9: v\r\n\r\n"),
		     TK_EHTTP);
	/* Controls in values: bare CR, DEL, ESC; CR not before LF. */
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\nA: b\x7f\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\nA: b\x1b\r\n\r\n"), TK_EHTTP);
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\nA: b\r\r\n\r\n"), TK_EHTTP);
	/* The final empty line must be one. */
	cr_assert_eq(parse_rc("HTTP/1.1 200 OK\r\nA: b\r\n\rX"), TK_EHTTP);
}

Test(http_head, nul_in_value)
{
	static const char text[] = "HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n";
	struct head h;

	head_parse(&h, text, sizeof(text) - 1);
	cr_assert_eq(h.rc, TK_EHTTP);
	head_free(&h);
}

/* A head with n headers "H<i>: <i>". */
static size_t
many_headers(char *buf, size_t size, size_t n)
{
	size_t len, i;

	len = (size_t)snprintf(buf, size, "HTTP/1.1 200 OK\r\n");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, size - len, "H%zu: %zu\r\n",
					i, i);
	len += (size_t)snprintf(buf + len, size - len, "\r\n");
	cr_assert_lt(len, size);
	return len;
}

Test(http_head, header_limit)
{
	static char buf[8192];
	struct head h;
	size_t len, i;
	bool seen;

	len = many_headers(buf, sizeof(buf), TK_HTTP_MAX_HEADERS);
	head_parse(&h, buf, len);
	cr_assert_eq(h.rc, (ssize_t)len);
	cr_assert_eq(h.r.nheaders, TK_HTTP_MAX_HEADERS);
	expect_header(&h, TK_HTTP_MAX_HEADERS - 1, "H99", "99");
	head_free(&h);

	len = many_headers(buf, sizeof(buf), TK_HTTP_MAX_HEADERS + 1);
	head_parse(&h, buf, len);
	cr_assert_eq(h.rc, TK_ETOOBIG);
	head_free(&h);

	/* Once an error, always that error as more bytes arrive. */
	for (i = 0, seen = false; i <= len; i++) {
		head_parse(&h, buf, i);
		if (seen)
			cr_assert_eq(h.rc, TK_ETOOBIG, "prefix %zu", i);
		else
			cr_assert(h.rc == 0 || h.rc == TK_ETOOBIG,
				  "prefix %zu: %zd", i, h.rc);
		seen = h.rc == TK_ETOOBIG;
		head_free(&h);
	}
	cr_assert(seen);
}

/* The array is the caller's: its size is the limit. */
Test(http_head, caller_sized_array)
{
	static const char text[] = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
	struct tk_http_header two[2], one[1];
	struct tk_http_response r = { .headers = two, .max_headers = 2 };

	cr_assert_eq(tk_http_parse_response(text, strlen(text), 0, &r),
		     (ssize_t)strlen(text));
	cr_assert_eq(r.nheaders, 2);
	r.headers = one;
	r.max_headers = 1;
	cr_assert_eq(tk_http_parse_response(text, strlen(text), 0, &r),
		     TK_ETOOBIG);
}

/*
 * Fed byte by byte with last_len, a head is found where the whole parse
 * finds it, and the bytes before its end are not parsed again: a
 * malformed line after the first read is only reported once the head is
 * complete.
 */
Test(http_head, last_len_streaming)
{
	static const char text[] = "HTTP/1.1 200 OK\r\nA: 1\nB: 2\r\n\r\n";
	static const char bad[] = "HTTP/1.1 200 OK\r\n\001bad\r\n";
	struct tk_http_header hdrs[4];
	struct tk_http_response r = { .headers = hdrs, .max_headers = 4 };
	size_t len = strlen(text), i, last = 0;
	ssize_t rc = 0;

	for (i = 1; i <= len; i++) {
		rc = tk_http_parse_response(text, i, last, &r);
		if (rc != 0)
			break;
		last = i;
	}
	cr_assert_eq(rc, (ssize_t)len);
	cr_assert_eq(i, len);
	cr_assert_eq(r.nheaders, 2);

	/* The first call parses: the error is found at once. */
	cr_assert_eq(tk_http_parse_response(bad, strlen(bad), 0, &r), TK_EHTTP);
	/* A later call without an end of head does not look again. */
	cr_assert_eq(tk_http_parse_response(bad, strlen(bad), 17, &r), 0);
	/* "\n" then "\r\n" split across reads still ends the head. */
	cr_assert_eq(tk_http_parse_response("HTTP/1.1 204 \n\r\n", 16, 15, &r),
		     16);
}

Test(http_head, header_find)
{
	static const char text[] = "HTTP/1.1 200 OK\r\n"
				   "Set-Cookie: a=1\r\n"
				   "content-LENGTH: 42\r\n"
				   "Set-Cookie: b=2\r\n"
				   "X-Empty: \r\n"
				   "\r\n";
	struct head h;
	const char *v;
	size_t vlen = 99;

	head_parse(&h, text, sizeof(text) - 1);
	cr_assert_gt(h.rc, 0);
	v = tk_http_header_find(h.buf, &h.r, "Content-Length", &vlen);
	cr_assert(v != NULL);
	cr_assert_eq(vlen, 2);
	cr_assert(memcmp(v, "42", 2) == 0);
	v = tk_http_header_find(h.buf, &h.r, "set-cookie", &vlen);
	cr_assert(v != NULL && vlen == 3 && memcmp(v, "a=1", 3) == 0,
		  "the first of several");
	v = tk_http_header_find(h.buf, &h.r, "x-empty", &vlen);
	cr_assert(v != NULL);
	cr_assert_eq(vlen, 0);
	cr_assert_null(tk_http_header_find(h.buf, &h.r, "Content", &vlen));
	cr_assert_eq(vlen, 0);
	cr_assert_null(
		tk_http_header_find(h.buf, &h.r, "Content-Length2", &vlen));
	cr_assert_null(tk_http_header_find(h.buf, &h.r, "", &vlen));
	cr_assert_not_null(
		tk_http_header_find(h.buf, &h.r, "SET-COOKIE", NULL));
	head_free(&h);
}

/*
 * Body framing.  frame() parses "HTTP/1.<minor> <status> X\r\n" + headers
 * + "\r\n" and returns tk_http_body_framing()'s result.
 */
static int
frame(int minor, int status, const char *headers, bool head_request,
      enum tk_http_body *kind, uint64_t *length)
{
	char text[1024];
	struct head h;
	int rc, n;

	n = snprintf(text, sizeof(text), "HTTP/1.%d %d X\r\n%s\r\n", minor,
		     status, headers);
	cr_assert(n > 0 && (size_t)n < sizeof(text));
	head_parse(&h, text, (size_t)n);
	cr_assert_eq(h.rc, n, "head \"%s\" not parsed", text);
	*kind = (enum tk_http_body) - 1;
	*length = 12345;
	rc = tk_http_body_framing(h.buf, &h.r, head_request, kind, length);
	head_free(&h);
	return rc;
}

static void
expect_kind(int status, const char *headers, enum tk_http_body want)
{
	enum tk_http_body kind;
	uint64_t len;

	cr_assert_eq(frame(1, status, headers, false, &kind, &len), 0, "%d %s",
		     status, headers);
	cr_assert_eq(kind, want, "%d %s: kind %d", status, headers, kind);
}

static void
expect_length(const char *headers, uint64_t want)
{
	enum tk_http_body kind;
	uint64_t len;

	cr_assert_eq(frame(1, 200, headers, false, &kind, &len), 0, "%s",
		     headers);
	cr_assert_eq(kind, TK_HTTP_BODY_LENGTH, "%s", headers);
	cr_assert_eq(len, want, "%s: %llu", headers, (unsigned long long)len);
}

static void
expect_bad(const char *headers)
{
	enum tk_http_body kind;
	uint64_t len;

	cr_assert_eq(frame(1, 200, headers, false, &kind, &len), TK_EHTTP,
		     "%s accepted", headers);
}

Test(http_framing, no_body)
{
	enum tk_http_body kind;
	uint64_t len;

	expect_kind(100, "", TK_HTTP_BODY_NONE);
	expect_kind(101, "Content-Length: 5\r\n", TK_HTTP_BODY_NONE);
	expect_kind(199, "", TK_HTTP_BODY_NONE);
	expect_kind(204, "Content-Length: 5\r\n", TK_HTTP_BODY_NONE);
	expect_kind(304, "Transfer-Encoding: chunked\r\n", TK_HTTP_BODY_NONE);
	/* Even with a bad Content-Length: no body is read at all. */
	expect_kind(304, "Content-Length: x\r\n", TK_HTTP_BODY_NONE);
	cr_assert_eq(frame(1, 200, "Content-Length: 5\r\n", true, &kind, &len),
		     0);
	cr_assert_eq(kind, TK_HTTP_BODY_NONE);
	cr_assert_eq(frame(1, 200, "Transfer-Encoding: chunked\r\n", true,
			   &kind, &len),
		     0);
	cr_assert_eq(kind, TK_HTTP_BODY_NONE);
	/* Other 2xx and 3xx have bodies. */
	expect_kind(200, "", TK_HTTP_BODY_CLOSE);
	expect_kind(205, "", TK_HTTP_BODY_CLOSE);
	expect_kind(301, "Content-Length: 0\r\n", TK_HTTP_BODY_LENGTH);
}

Test(http_framing, chunked)
{
	expect_kind(200, "Transfer-Encoding: chunked\r\n",
		    TK_HTTP_BODY_CHUNKED);
	expect_kind(200, "transfer-encoding: Chunked\r\n",
		    TK_HTTP_BODY_CHUNKED);
	expect_kind(200, "Transfer-Encoding: gzip, chunked\r\n",
		    TK_HTTP_BODY_CHUNKED);
	expect_kind(200, "Transfer-Encoding: gzip,chunked\r\n",
		    TK_HTTP_BODY_CHUNKED);
	expect_kind(200, "Transfer-Encoding: , gzip ,, chunked ,\r\n",
		    TK_HTTP_BODY_CHUNKED);
	expect_kind(200, "Transfer-Encoding: gzip;level=1, chunked\r\n",
		    TK_HTTP_BODY_CHUNKED);
	/* Several fields form one list. */
	expect_kind(200,
		    "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
		    TK_HTTP_BODY_CHUNKED);
}

/* RFC 9112 section 6.3: both framings in one response is an error. */
Test(http_framing, content_length_and_transfer_encoding)
{
	enum tk_http_body kind;
	uint64_t len;

	expect_bad("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n");
	expect_bad("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n");
	expect_bad("Content-Length: x\r\nTransfer-Encoding: chunked\r\n");
	expect_bad("transfer-encoding: gzip\r\ncontent-length: 3\r\n");
	expect_bad("Transfer-Encoding: identity\r\nContent-Length: 3\r\n");
	cr_assert_eq(frame(0, 200,
			   "Transfer-Encoding: chunked\r\n"
			   "Content-Length: 5\r\n",
			   false, &kind, &len),
		     TK_EHTTP);
	/* Responses without a body are not read, so not refused either. */
	expect_kind(304, "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
		    TK_HTTP_BODY_NONE);
}

Test(http_framing, not_chunked_last)
{
	expect_kind(200, "Transfer-Encoding: gzip\r\n", TK_HTTP_BODY_CLOSE);
	expect_kind(200, "Transfer-Encoding: chunked, gzip\r\n",
		    TK_HTTP_BODY_CLOSE);
	expect_kind(200,
		    "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
		    TK_HTTP_BODY_CLOSE);
	expect_kind(200, "Transfer-Encoding: identity\r\n", TK_HTTP_BODY_CLOSE);
}

Test(http_framing, transfer_encoding_in_http10)
{
	enum tk_http_body kind;
	uint64_t len;

	/* Faulty framing (RFC 9112 section 6.1): read to the close. */
	cr_assert_eq(frame(0, 200, "Transfer-Encoding: chunked\r\n", false,
			   &kind, &len),
		     0);
	cr_assert_eq(kind, TK_HTTP_BODY_CLOSE);
	cr_assert_eq(frame(0, 200, "Content-Length: 5\r\n", false, &kind, &len),
		     0);
	cr_assert_eq(kind, TK_HTTP_BODY_LENGTH);
	cr_assert_eq(len, 5);
}

Test(http_framing, transfer_encoding_malformed)
{
	expect_bad("Transfer-Encoding: foo\r\n");
	expect_bad("Transfer-Encoding: foo, chunked\r\n");
	expect_bad("Transfer-Encoding: chunked, chunked\r\n");
	expect_bad(
		"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n");
	expect_bad("Transfer-Encoding:\r\n");
	expect_bad("Transfer-Encoding: ,\r\n");
	expect_bad("Transfer-Encoding: chunked;x=1\r\n");
	expect_bad("Transfer-Encoding: gzip chunked\r\n");
	expect_bad("Transfer-Encoding: \"chunked\"\r\n");
	expect_bad("Transfer-Encoding: chunkedx\r\n");
}

Test(http_framing, content_length)
{
	expect_length("Content-Length: 0\r\n", 0);
	expect_length("Content-Length: 5\r\n", 5);
	expect_length("content-length: 007\r\n", 7);
	expect_length("Content-Length: 5\r\nContent-Length: 5\r\n", 5);
	expect_length("Content-Length: 5, 5\r\n", 5);
	expect_length("Content-Length: 5,5 , 05\r\n", 5);
	expect_length("Content-Length: 18446744073709551615\r\n", UINT64_MAX);
}

Test(http_framing, content_length_malformed)
{
	expect_bad("Content-Length:\r\n");
	expect_bad("Content-Length: \r\n");
	expect_bad("Content-Length: -1\r\n");
	expect_bad("Content-Length: +5\r\n");
	expect_bad("Content-Length: 5a\r\n");
	expect_bad("Content-Length: 0x5\r\n");
	expect_bad("Content-Length: 5 5\r\n");
	expect_bad("Content-Length: 5.0\r\n");
	expect_bad("Content-Length: 5,\r\n");
	expect_bad("Content-Length: ,5\r\n");
	expect_bad("Content-Length: 5, 6\r\n");
	expect_bad("Content-Length: 5\r\nContent-Length: 6\r\n");
	expect_bad("Content-Length: 5\r\nContent-Length:\r\n");
	expect_bad("Content-Length: 18446744073709551616\r\n");
	expect_bad("Content-Length: 99999999999999999999999999\r\n");
}

Test(http_framing, until_close)
{
	expect_kind(200, "", TK_HTTP_BODY_CLOSE);
	expect_kind(200, "Content-Type: text/plain\r\n", TK_HTTP_BODY_CLOSE);
	expect_kind(500, "Content-Lengthx: 5\r\n", TK_HTTP_BODY_CLOSE);
}
