/* http.c: pure HTTP/1.1 response parsers: head, body framing, chunked. */
#include <string.h>

#include "tcpkit.h"

/* Longest chunk-size line (with extensions) or trailer line we accept. */
#define CHUNK_LINE_MAX 4096
/* Chunk sizes must fit in 63 bits: anything bigger is an attack or a bug. */
#define CHUNK_SIZE_MAX ((uint64_t)INT64_MAX)

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_ws(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* tchar, RFC 9110 section 5.6.2. */
static bool
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/*
 * Field values and reason phrases: HTAB, SP, VCHAR and obs-text.  NUL, CR
 * alone, DEL and the other controls are refused: they are how one message
 * is smuggled inside another.
 */
static bool
is_text(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static unsigned char
to_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool
span_equal_ci(const char *s, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lit[i] == '\0' || to_lower((unsigned char)s[i]) !=
					      to_lower((unsigned char)lit[i]))
			return false;
	return lit[n] == '\0';
}

/*
 * The parser walks buf with *pos and gives up with "incomplete" (0) the
 * moment it needs a byte it was not given; anything wrong in the bytes it
 * did see is reported at once, so a peer that is not speaking HTTP is
 * caught early instead of filling the caller's buffer.
 */
#define NEED(pos, len)                                                         \
	do {                                                                   \
		if ((pos) >= (len))                                            \
			return 0;                                              \
	} while (0)

/* Line end at *pos: "\r\n" or "\n".  1 past it, 0 incomplete, or error. */
static int
parse_eol(const char *buf, size_t len, size_t *pos)
{
	NEED(*pos, len);
	if (buf[*pos] == '\r') {
		(*pos)++;
		NEED(*pos, len);
	}
	if (buf[*pos] != '\n')
		return TK_EHTTP;
	(*pos)++;
	return 1;
}

/* "HTTP/1.x SP 3DIGIT [SP reason] CRLF", the reason possibly empty. */
static int
parse_status_line(const char *buf, size_t len, size_t *pos,
		  struct tk_http_response *r)
{
	static const char proto[] = "HTTP/1.";
	size_t p = *pos, i;
	int rc;

	for (i = 0; proto[i] != '\0'; i++, p++) {
		NEED(p, len);
		if (buf[p] != proto[i])
			return TK_EHTTP;
	}
	NEED(p, len);
	if (!is_digit((unsigned char)buf[p]))
		return TK_EHTTP;
	r->minor_version = buf[p++] - '0';
	NEED(p, len);
	if (buf[p++] != ' ')
		return TK_EHTTP;

	r->status = 0;
	for (i = 0; i < 3; i++, p++) {
		NEED(p, len);
		if (!is_digit((unsigned char)buf[p]) ||
		    (i == 0 && buf[p] == '0'))
			return TK_EHTTP;
		r->status = r->status * 10 + (buf[p] - '0');
	}

	NEED(p, len);
	r->reason.off = p;
	r->reason.len = 0;
	if (buf[p] == ' ') {
		r->reason.off = ++p;
		while (p < len && is_text((unsigned char)buf[p]))
			p++;
		NEED(p, len);
		r->reason.len = p - r->reason.off;
	}
	if ((rc = parse_eol(buf, len, &p)) <= 0)
		return rc;
	*pos = p;
	return 1;
}

/*
 * One "name: value" line, or the empty line that ends the head (2).  White
 * space before the colon and obs-fold continuation lines are refused: RFC
 * 9112 section 5 would let a user agent repair them, but both are obsolete
 * and are exactly what request smuggling is built from.
 */
static int
parse_header_line(const char *buf, size_t len, size_t *pos,
		  struct tk_http_response *r)
{
	struct tk_http_header *h;
	size_t p = *pos, name, colon, vstart, vend;
	int rc;

	NEED(p, len);
	if (buf[p] == '\r' || buf[p] == '\n') {
		if ((rc = parse_eol(buf, len, &p)) <= 0)
			return rc;
		*pos = p;
		return 2;
	}
	if (is_ws((unsigned char)buf[p]))
		return TK_EHTTP;
	if (r->nheaders >= r->max_headers)
		return TK_ETOOBIG;

	name = p;
	while (p < len && is_tchar((unsigned char)buf[p]))
		p++;
	NEED(p, len);
	if (p == name || buf[p] != ':')
		return TK_EHTTP;
	colon = p++;

	while (p < len && is_ws((unsigned char)buf[p]))
		p++;
	vstart = vend = p;
	for (; p < len && buf[p] != '\r' && buf[p] != '\n'; p++) {
		if (!is_text((unsigned char)buf[p]))
			return TK_EHTTP;
		if (!is_ws((unsigned char)buf[p]))
			vend = p + 1;
	}
	if ((rc = parse_eol(buf, len, &p)) <= 0)
		return rc;

	h = &r->headers[r->nheaders++];
	h->name.off = name;
	h->name.len = colon - name;
	h->value.off = vstart;
	h->value.len = vend - vstart;
	*pos = p;
	return 1;
}

/*
 * Whether buf[from..len) holds the empty line that ends a head: a '\n'
 * followed by "\n" or "\r\n".
 */
static bool
has_end_of_head(const char *buf, size_t len, size_t from)
{
	const char *p = buf + from, *end = buf + len;

	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (end - p > 1 && p[1] == '\n')
			return true;
		if (end - p > 2 && p[1] == '\r' && p[2] == '\n')
			return true;
		p++;
	}
	return false;
}

ssize_t
tk_http_parse_response(const char *buf, size_t len, size_t last_len,
		       struct tk_http_response *r)
{
	size_t pos = 0;
	int rc;

	/*
	 * The previous call saw no end of head in buf[0..last_len): one can
	 * only start in its last 2 bytes ("\n\r" or "\n" waiting for the
	 * rest).
	 */
	if (last_len > 0 && last_len <= len &&
	    !has_end_of_head(buf, len, last_len < 2 ? 0 : last_len - 2))
		return 0;
	r->nheaders = 0;
	if ((rc = parse_status_line(buf, len, &pos, r)) <= 0)
		return rc;
	while ((rc = parse_header_line(buf, len, &pos, r)) == 1)
		continue;
	if (rc <= 0)
		return rc;
	return (ssize_t)pos;
}

const char *
tk_http_header_find(const char *buf, const struct tk_http_response *r,
		    const char *name, size_t *vlen)
{
	const struct tk_http_header *h;
	size_t i;

	for (i = 0; i < r->nheaders; i++) {
		h = &r->headers[i];
		if (span_equal_ci(buf + h->name.off, h->name.len, name)) {
			if (vlen != NULL)
				*vlen = h->value.len;
			return buf + h->value.off;
		}
	}
	if (vlen != NULL)
		*vlen = 0;
	return NULL;
}

/*
 * Walk the elements of a comma-separated list value (RFC 9110 section
 * 5.6.1): each call yields the next element, trimmed of OWS, possibly
 * empty.  false at the end of the value.
 */
struct list_iter {
	const char *s;
	size_t len;
	size_t pos;
	bool done;
};

static bool
list_next(struct list_iter *it, const char **elem, size_t *elen)
{
	size_t start, end;

	if (it->done)
		return false;
	start = it->pos;
	while (it->pos < it->len && it->s[it->pos] != ',')
		it->pos++;
	end = it->pos;
	if (it->pos == it->len)
		it->done = true;
	else
		it->pos++;
	while (start < end && is_ws((unsigned char)it->s[start]))
		start++;
	while (end > start && is_ws((unsigned char)it->s[end - 1]))
		end--;
	*elem = it->s + start;
	*elen = end - start;
	return true;
}

/*
 * Transfer codings we know by name: the HTTP registry, and "identity",
 * obsolete but harmless (no coding at all).
 */
static bool
is_known_coding(const char *s, size_t n)
{
	static const char *const known[] = { "chunked",	 "gzip",
					     "x-gzip",	 "deflate",
					     "compress", "x-compress",
					     "identity" };
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (span_equal_ci(s, n, known[i]))
			return true;
	return false;
}

/*
 * Every Transfer-Encoding field, as one list.  *chunked is true when the
 * final coding is chunked.  Unknown or malformed codings, "chunked" twice
 * or an empty list are errors.
 */
static int
transfer_codings(const char *buf, const struct tk_http_response *r,
		 bool *chunked)
{
	const struct tk_http_header *h;
	struct list_iter it;
	const char *e;
	size_t i, n, tok, p, nchunked = 0, ncodings = 0;

	*chunked = false;
	for (i = 0; i < r->nheaders; i++) {
		h = &r->headers[i];
		if (!span_equal_ci(buf + h->name.off, h->name.len,
				   "transfer-encoding"))
			continue;
		it = (struct list_iter){ buf + h->value.off, h->value.len, 0,
					 false };
		while (list_next(&it, &e, &n)) {
			if (n == 0)
				continue;
			/* Parameters (";name=value") do not change the name. */
			for (tok = 0;
			     tok < n && is_tchar((unsigned char)e[tok]); tok++)
				continue;
			for (p = tok; p < n && is_ws((unsigned char)e[p]); p++)
				continue;
			if (p < n && e[p] != ';')
				return TK_EHTTP;
			if (!is_known_coding(e, tok))
				return TK_EHTTP;
			*chunked = span_equal_ci(e, tok, "chunked");
			if (*chunked && tok != n)
				return TK_EHTTP;
			nchunked += *chunked;
			ncodings++;
		}
	}
	if (ncodings == 0 || nchunked > 1)
		return TK_EHTTP;
	return 0;
}

/*
 * Every Content-Length field and every element of each must be the same
 * decimal number (RFC 9110 section 8.6).  1 with *length set, 0 if there
 * is none, or TK_EHTTP.
 */
static int
content_length(const char *buf, const struct tk_http_response *r,
	       uint64_t *length)
{
	const struct tk_http_header *h;
	struct list_iter it;
	const char *e;
	uint64_t v;
	size_t i, j, n;
	unsigned dig;
	bool seen = false;

	for (i = 0; i < r->nheaders; i++) {
		h = &r->headers[i];
		if (!span_equal_ci(buf + h->name.off, h->name.len,
				   "content-length"))
			continue;
		it = (struct list_iter){ buf + h->value.off, h->value.len, 0,
					 false };
		while (list_next(&it, &e, &n)) {
			if (n == 0)
				return TK_EHTTP;
			v = 0;
			for (j = 0; j < n; j++) {
				if (!is_digit((unsigned char)e[j]))
					return TK_EHTTP;
				dig = (unsigned)(e[j] - '0');
				if (v > (UINT64_MAX - dig) / 10)
					return TK_EHTTP;
				v = v * 10 + dig;
			}
			if (seen && v != *length)
				return TK_EHTTP;
			*length = v;
			seen = true;
		}
	}
	return seen;
}

int
tk_http_body_framing(const char *buf, const struct tk_http_response *r,
		     bool head_request, enum tk_http_body *kind,
		     uint64_t *length)
{
	bool has_te = false, has_cl = false, chunked;
	uint64_t n = 0;
	size_t i;
	int rc;

	*length = 0;
	if (head_request || r->status / 100 == 1 || r->status == 204 ||
	    r->status == 304) {
		*kind = TK_HTTP_BODY_NONE;
		return 0;
	}

	for (i = 0; i < r->nheaders; i++) {
		if (span_equal_ci(buf + r->headers[i].name.off,
				  r->headers[i].name.len, "transfer-encoding"))
			has_te = true;
		else if (span_equal_ci(buf + r->headers[i].name.off,
				       r->headers[i].name.len,
				       "content-length"))
			has_cl = true;
	}
	/*
	 * RFC 9112 section 6.3 lets Transfer-Encoding override
	 * Content-Length but says both "ought to be handled as an error":
	 * two framings in one message are how responses are split, so the
	 * body is not guessed at.
	 */
	if (has_te && has_cl)
		return TK_EHTTP;
	if (has_te) {
		/*
		 * In HTTP/1.0 Transfer-Encoding is faulty framing (RFC 9112
		 * section 6.1): the only safe reading is to the end of the
		 * connection.
		 */
		if ((rc = transfer_codings(buf, r, &chunked)) < 0)
			return rc;
		*kind = chunked && r->minor_version > 0 ? TK_HTTP_BODY_CHUNKED
							: TK_HTTP_BODY_CLOSE;
		return 0;
	}

	if ((rc = content_length(buf, r, &n)) < 0)
		return rc;
	if (rc > 0) {
		*kind = TK_HTTP_BODY_LENGTH;
		*length = n;
		return 0;
	}
	*kind = TK_HTTP_BODY_CLOSE;
	return 0;
}

/*
 * The chunked decoder is a byte-at-a-time state machine, so the input may
 * be split anywhere: inside the hex size, between CR and LF, in a trailer.
 * Data is handed out as spans of the input, never copied.
 */
enum {
	CS_SIZE = 0,	/* hex digits of chunk-size (linelen: bytes so far) */
	CS_SIZE_WS,	/* white space after the size, before ';' or CRLF */
	CS_EXT,		/* chunk extensions: skipped */
	CS_SIZE_LF,	/* CR seen at the end of the size line */
	CS_DATA,	/* remaining bytes of chunk data */
	CS_DATA_END,	/* CRLF after the data */
	CS_DATA_LF,	/* CR seen after the data */
	CS_TRAILER_BOL, /* start of a trailer line, or of the final CRLF */
	CS_TRAILER,	/* inside a trailer field line */
	CS_TRAILER_LF,	/* CR seen at the end of a trailer line */
	CS_END_LF,	/* CR seen on the final empty line */
	CS_DONE,
	CS_ERROR,
};

void
tk_chunked_init(struct tk_chunked *d)
{
	d->state = CS_SIZE;
	d->remaining = 0;
	d->linelen = 0;
}

static int
hex_value(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	c = to_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The size line ended: data follows, or the trailer after "0". */
static void
size_line_done(struct tk_chunked *d)
{
	d->linelen = 0;
	d->state = d->remaining > 0 ? CS_DATA : CS_TRAILER_BOL;
}

/* One byte of anything but data.  0, or TK_EHTTP. */
static int
chunked_byte(struct tk_chunked *d, unsigned char c)
{
	int x;

	switch (d->state) {
	case CS_SIZE:
		if ((x = hex_value(c)) >= 0) {
			if (d->remaining > CHUNK_SIZE_MAX >> 4)
				return TK_EHTTP;
			d->remaining = d->remaining << 4 | (uint64_t)x;
			break;
		}
		if (d->linelen == 0)
			return TK_EHTTP; /* no digits at all */
		d->state = CS_SIZE_WS;
		return chunked_byte(d, c);
	case CS_SIZE_WS:
		if (c == '\r') {
			d->state = CS_SIZE_LF;
			return 0;
		}
		if (c == '\n') {
			size_line_done(d);
			return 0;
		}
		if (c == ';')
			d->state = CS_EXT;
		else if (!is_ws(c))
			return TK_EHTTP;
		break;
	case CS_EXT:
		/* Not interpreted, but no controls: see is_text(). */
		if (c == '\r') {
			d->state = CS_SIZE_LF;
			return 0;
		}
		if (c == '\n') {
			size_line_done(d);
			return 0;
		}
		if (!is_text(c))
			return TK_EHTTP;
		break;
	case CS_SIZE_LF:
		if (c != '\n')
			return TK_EHTTP;
		size_line_done(d);
		return 0;
	case CS_DATA_END:
		if (c == '\r')
			d->state = CS_DATA_LF;
		else if (c == '\n')
			d->state = CS_SIZE;
		else
			return TK_EHTTP;
		return 0;
	case CS_DATA_LF:
		if (c != '\n')
			return TK_EHTTP;
		d->state = CS_SIZE;
		return 0;
	case CS_TRAILER_BOL:
		if (c == '\r') {
			d->state = CS_END_LF;
		} else if (c == '\n') {
			d->state = CS_DONE;
		} else if (is_tchar(c)) {
			/* A field line; obs-fold (leading SP) is refused. */
			d->state = CS_TRAILER;
			d->linelen = 1;
		} else {
			return TK_EHTTP;
		}
		return 0;
	case CS_TRAILER:
		if (c == '\r') {
			d->state = CS_TRAILER_LF;
			return 0;
		}
		if (c == '\n') {
			d->state = CS_TRAILER_BOL;
			return 0;
		}
		if (!is_text(c))
			return TK_EHTTP;
		break;
	case CS_TRAILER_LF:
		if (c != '\n')
			return TK_EHTTP;
		d->state = CS_TRAILER_BOL;
		return 0;
	case CS_END_LF:
		if (c != '\n')
			return TK_EHTTP;
		d->state = CS_DONE;
		return 0;
	default:
		return TK_EHTTP;
	}
	/* One more byte of a size or trailer line (CR/LF aside): bound it. */
	if (++d->linelen > CHUNK_LINE_MAX)
		return TK_EHTTP;
	return 0;
}

int
tk_chunked_decode(struct tk_chunked *d, const char *in, size_t len,
		  size_t *consumed, size_t *data_off, size_t *data_len)
{
	size_t pos = 0, n;

	*consumed = 0;
	*data_off = 0;
	*data_len = 0;
	while (pos < len && d->state != CS_DONE && d->state != CS_ERROR) {
		if (d->state == CS_DATA) {
			n = len - pos;
			if (n > d->remaining)
				n = (size_t)d->remaining;
			d->remaining -= n;
			if (d->remaining == 0)
				d->state = CS_DATA_END;
			*data_off = pos;
			*data_len = n;
			*consumed = pos + n;
			return TK_CHUNK_DATA;
		}
		if (chunked_byte(d, (unsigned char)in[pos]) < 0) {
			d->state = CS_ERROR;
			break;
		}
		pos++;
	}
	*consumed = pos;
	if (d->state == CS_ERROR)
		return TK_EHTTP;
	return d->state == CS_DONE ? TK_CHUNK_DONE : TK_CHUNK_MORE;
}
