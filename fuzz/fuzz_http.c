/* fuzz_http.c: libFuzzer harness: response head, framing, chunked body. */
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

static bool
is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void
check_span(struct tk_span sp, size_t len)
{
	CHECK(sp.off <= len && sp.len <= len - sp.off);
}

/* An exact-size heap copy, so that ASan sees any read past the end. */
static char *
dup(const char *p, size_t n)
{
	char *c = malloc(n ? n : 1);

	CHECK(c != NULL);
	memcpy(c, p, n);
	return c;
}

static void
check_head(const char *buf, size_t len)
{
	struct tk_http_header rh[TK_HTTP_MAX_HEADERS], ph[TK_HTTP_MAX_HEADERS];
	struct tk_http_response r = { .headers = rh,
				      .max_headers = TK_HTTP_MAX_HEADERS };
	struct tk_http_response p = { .headers = ph,
				      .max_headers = TK_HTTP_MAX_HEADERS };
	enum tk_http_body kind;
	uint64_t length;
	ssize_t rc, prc;
	size_t i, j, vlen, cut;
	const char *v;
	char *copy;

	rc = tk_http_parse_response(buf, len, 0, &r);
	CHECK(rc == 0 || rc == TK_EHTTP || rc == TK_ETOOBIG ||
	      (rc > 0 && (size_t)rc <= len));

	/*
	 * A prefix tells the same story or "incomplete": errors are found at
	 * the first bad byte, and a complete head ends where it ends.
	 */
	cut = len ? (unsigned char)buf[0] * 131u % (len + 1) : 0;
	copy = dup(buf, cut);
	prc = tk_http_parse_response(copy, cut, 0, &p);
	free(copy);
	if (rc > 0)
		CHECK(cut >= (size_t)rc ? prc == rc : prc == 0);
	else
		CHECK(prc == 0 || prc == rc);
	/*
	 * Read as a stream, the prefix first and then everything with
	 * last_len: the same head, or still "incomplete" when the prefix
	 * already was and the rest adds no end of head.
	 */
	if (prc == 0) {
		prc = tk_http_parse_response(buf, len, cut, &p);
		CHECK(prc == rc || (prc == 0 && rc <= 0));
		if (prc > 0)
			CHECK(p.nheaders == r.nheaders && p.status == r.status);
	}

	if (rc <= 0)
		return;
	CHECK(r.minor_version >= 0 && r.minor_version <= 9);
	CHECK(r.status >= 100 && r.status <= 999);
	CHECK(r.nheaders <= TK_HTTP_MAX_HEADERS);
	check_span(r.reason, (size_t)rc);
	for (i = 0; i < r.nheaders; i++) {
		const struct tk_http_header *h = &r.headers[i];

		check_span(h->name, (size_t)rc);
		check_span(h->value, (size_t)rc);
		CHECK(h->name.len > 0);
		for (j = 0; j < h->name.len; j++)
			CHECK(is_tchar((unsigned char)buf[h->name.off + j]));
		CHECK(buf[h->name.off + h->name.len] == ':');
		for (j = 0; j < h->value.len; j++) {
			unsigned char c = (unsigned char)buf[h->value.off + j];

			CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
		}
		if (h->value.len > 0) {
			CHECK(buf[h->value.off] != ' ' &&
			      buf[h->value.off] != '\t');
			CHECK(buf[h->value.off + h->value.len - 1] != ' ' &&
			      buf[h->value.off + h->value.len - 1] != '\t');
		}
	}

	v = tk_http_header_find(buf, &r, "content-length", &vlen);
	if (v != NULL)
		CHECK(v >= buf && (size_t)(v - buf) + vlen <= (size_t)rc);
	(void)tk_http_header_find(buf, &r, "Transfer-Encoding", &vlen);

	for (i = 0; i < 2; i++) {
		int frc = tk_http_body_framing(buf, &r, i == 1, &kind, &length);

		CHECK(frc == 0 || frc == TK_EHTTP);
		if (frc == 0 && i == 1)
			CHECK(kind == TK_HTTP_BODY_NONE);
		if (frc == 0 && kind != TK_HTTP_BODY_LENGTH)
			CHECK(length == 0);
	}
}

static bool
is_text(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#define LINE_MAX_ 4096

/*
 * A second, one-shot chunked decoder written from RFC 9112 section 7.1
 * with the rules tk_chunked_decode() documents (bare LF, BWS before the
 * extensions, 63-bit sizes, lines of at most 4096 bytes, no obs-fold in
 * trailers), to catch what splitting cannot: a bug that is the same at
 * every split.  Returns TK_CHUNK_DONE (with *end), TK_CHUNK_MORE or
 * TK_EHTTP; the data goes to body.
 */
static int
ref_decode(const char *in, size_t len, char *body, size_t *bodylen, size_t *end)
{
	size_t p = 0, q, n;
	uint64_t size;
	int x;

	*bodylen = 0;
	for (;;) {
		size = 0;
		for (q = p;
		     p < len && (x = hex_value((unsigned char)in[p])) >= 0;
		     p++) {
			if (size > (uint64_t)INT64_MAX >> 4 ||
			    p - q >= LINE_MAX_)
				return TK_EHTTP;
			size = size << 4 | (uint64_t)x;
		}
		if (p == len)
			return TK_CHUNK_MORE;
		if (p == q)
			return TK_EHTTP;
		for (; p < len && (in[p] == ' ' || in[p] == '\t'); p++)
			if (p - q >= LINE_MAX_)
				return TK_EHTTP;
		if (p < len && in[p] == ';') {
			for (; p < len && in[p] != '\r' && in[p] != '\n'; p++)
				if (p - q >= LINE_MAX_ ||
				    !is_text((unsigned char)in[p]))
					return TK_EHTTP;
		}
		if (p == len)
			return TK_CHUNK_MORE;
		if (in[p] == '\r' && ++p == len)
			return TK_CHUNK_MORE;
		if (in[p++] != '\n')
			return TK_EHTTP;
		if (size == 0)
			break;

		n = len - p < size ? len - p : (size_t)size;
		memcpy(body + *bodylen, in + p, n);
		*bodylen += n;
		p += n;
		if (n < size || p == len)
			return TK_CHUNK_MORE;
		if (in[p] == '\r' && ++p == len)
			return TK_CHUNK_MORE;
		if (in[p++] != '\n')
			return TK_EHTTP;
	}

	for (;;) {
		if (p == len)
			return TK_CHUNK_MORE;
		if (in[p] != '\r' && in[p] != '\n') {
			if (!is_tchar((unsigned char)in[p]))
				return TK_EHTTP;
			for (q = p; p < len && in[p] != '\r' && in[p] != '\n';
			     p++)
				if (p - q >= LINE_MAX_ ||
				    !is_text((unsigned char)in[p]))
					return TK_EHTTP;
			if (p == len)
				return TK_CHUNK_MORE;
			if (in[p] == '\r' && ++p == len)
				return TK_CHUNK_MORE;
			if (in[p++] != '\n')
				return TK_EHTTP;
			continue;
		}
		if (in[p] == '\r' && ++p == len)
			return TK_CHUNK_MORE;
		if (in[p++] != '\n')
			return TK_EHTTP;
		*end = p;
		return TK_CHUNK_DONE;
	}
}

struct decoded {
	int rc;		/* final: TK_CHUNK_MORE, TK_CHUNK_DONE or TK_EHTTP */
	size_t end;	/* input offset where decoding stopped */
	size_t bodylen; /* data bytes, copied to body */
};

/*
 * Decode in[0..len) handed over in pieces of `step` bytes (0: one piece),
 * each piece an exact-size copy.
 */
static void
decode(const char *in, size_t len, size_t step, char *body, struct decoded *out)
{
	struct tk_chunked d;
	size_t at = 0, n, off, used, doff, dlen;
	int rc = TK_CHUNK_MORE;
	char *piece;

	tk_chunked_init(&d);
	out->bodylen = 0;
	while (at < len && rc != TK_CHUNK_DONE && rc != TK_EHTTP) {
		n = step == 0 || len - at < step ? len - at : step;
		piece = dup(in + at, n);
		for (off = 0;;) {
			rc = tk_chunked_decode(&d, piece + off, n - off, &used,
					       &doff, &dlen);
			CHECK(used <= n - off);
			if (rc == TK_CHUNK_DATA) {
				CHECK(dlen > 0 && doff + dlen == used);
				memcpy(body + out->bodylen, piece + off + doff,
				       dlen);
				out->bodylen += dlen;
				off += used;
				continue;
			}
			CHECK(dlen == 0);
			off += used;
			if (rc == TK_CHUNK_MORE)
				CHECK(off == n);
			break;
		}
		free(piece);
		at += off;
		CHECK(rc == TK_CHUNK_MORE || rc == TK_CHUNK_DONE ||
		      rc == TK_EHTTP);
	}
	out->rc = rc;
	out->end = at;
	/* Both ends are sticky. */
	if (rc == TK_CHUNK_DONE || rc == TK_EHTTP) {
		size_t used2, doff2, dlen2;

		CHECK(tk_chunked_decode(&d, "0\r\n\r\n", 5, &used2, &doff2,
					&dlen2) == rc);
		CHECK(used2 == 0 || rc == TK_EHTTP);
	}
}

static void
check_chunked(const char *in, size_t len, unsigned split)
{
	struct decoded a, b, c;
	char *ba, *bb, *bc, *br;
	size_t rlen, rend = 0;
	int rrc;

	ba = malloc(len + 1);
	bb = malloc(len + 1);
	bc = malloc(len + 1);
	br = malloc(len + 1);
	CHECK(ba != NULL && bb != NULL && bc != NULL && br != NULL);
	decode(in, len, 0, ba, &a);
	decode(in, len, 1, bb, &b);
	decode(in, len, split, bc, &c);
	CHECK(a.bodylen <= len);
	/* Errors stop at different offsets depending on the pieces. */
	CHECK(a.rc == b.rc && a.rc == c.rc);
	if (a.rc == TK_CHUNK_DONE)
		CHECK(a.end == b.end && a.end == c.end);
	if (a.rc != TK_EHTTP) {
		CHECK(a.bodylen == b.bodylen && a.bodylen == c.bodylen);
		CHECK(memcmp(ba, bb, a.bodylen) == 0);
		CHECK(memcmp(ba, bc, a.bodylen) == 0);
	}

	/* And the same as the reference, data included up to any error. */
	rrc = ref_decode(in, len, br, &rlen, &rend);
	CHECK(rrc == a.rc);
	CHECK(rlen == a.bodylen && memcmp(br, ba, rlen) == 0);
	if (rrc == TK_CHUNK_DONE)
		CHECK(rend == a.end);
	free(ba);
	free(bb);
	free(bc);
	free(br);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	ssize_t rc;
	struct tk_http_header hdrs[TK_HTTP_MAX_HEADERS];
	struct tk_http_response r = { .headers = hdrs,
				      .max_headers = TK_HTTP_MAX_HEADERS };
	unsigned split;

	check_head(in, size);

	/*
	 * The body after a complete head, or, to reach the decoder with any
	 * input at all, everything when there is no head.
	 */
	rc = tk_http_parse_response(in, size, 0, &r);
	split = size ? 1u + data[size - 1] % 17u : 1u;
	if (rc > 0)
		check_chunked(in + rc, size - (size_t)rc, split);
	else
		check_chunked(in, size, split);
	return 0;
}
