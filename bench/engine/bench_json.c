/* bench_json.c: a strict, bounded JSON reader for bench's own documents
 * (bench merge): a flat array of nodes, no copies of the text. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_json.h"

struct parser {
	const char *start, *p, *end;
	struct bj_doc *d;
	size_t cap;
	int depth;
	char *why;
	size_t whylen;
};

/* The error, placed by line and column (in bytes) of at. */
static int
fail(struct parser *ps, const char *at, const char *what)
{
	size_t line = 1, col = 1;

	for (const char *q = ps->start; q < at && q < ps->end; q++) {
		if (*q == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	if (ps->whylen > 0)
		snprintf(ps->why, ps->whylen, "line %zu, column %zu: %s", line,
			 col, what);
	return -EINVAL;
}

static void
skip_space(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
				   *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int
add_node(struct parser *ps, enum bj_type type, const char *text, size_t *at)
{
	struct bj_doc *d = ps->d;

	if (d->n == ps->cap) {
		size_t cap = ps->cap ? 2 * ps->cap : 64;
		struct bj_node *nodes;

		if (d->n >= BJ_MAX_NODES)
			return fail(ps, text, "too many values");
		if (cap > BJ_MAX_NODES)
			cap = BJ_MAX_NODES;
		nodes = realloc(d->nodes, cap * sizeof(*nodes));
		if (nodes == NULL)
			return -ENOMEM;
		d->nodes = nodes;
		ps->cap = cap;
	}
	*at = d->n++;
	d->nodes[*at] = (struct bj_node){ .type = type, .text = text };
	return 0;
}

static int
hex4(const char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		int c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* The length of the UTF-8 character at p (a byte >= 0x80), or 0. */
static size_t
utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	/* No overlong forms, surrogates or values past U+10FFFF. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* A \u escape at p (past the backslash): its length (6 or 12), or 0. */
static size_t
unicode_escape(const char *p, const char *end)
{
	int u, v;

	if (end - p < 5 || (u = hex4(p + 1)) < 0)
		return 0;
	if (u >= 0xdc00 && u <= 0xdfff)
		return 0;
	if (u < 0xd800 || u > 0xdbff)
		return 5;
	if (end - p < 11 || p[5] != '\\' || p[6] != 'u' ||
	    (v = hex4(p + 7)) < 0 || v < 0xdc00 || v > 0xdfff)
		return 0;
	return 11;
}

static int
string(struct parser *ps, size_t *at)
{
	const char *open = ps->p++;
	size_t n;
	int err;

	if ((err = add_node(ps, BJ_STRING, ps->p, at)) < 0)
		return err;
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p;

		if (c < 0x20)
			return fail(ps, ps->p, "control character in a string");
		if (c == '\\') {
			ps->p++;
			if (ps->p == ps->end)
				break;
			if (*ps->p == 'u') {
				if ((n = unicode_escape(ps->p, ps->end)) == 0)
					return fail(ps, ps->p - 1,
						    "bad \\u escape");
				ps->p += n;
			} else if (strchr("\"\\/bfnrt", *ps->p) == NULL ||
				   *ps->p == '\0') {
				return fail(ps, ps->p - 1, "bad escape");
			} else {
				ps->p++;
			}
		} else if (c >= 0x80) {
			n = utf8_len((const unsigned char *)ps->p,
				     (const unsigned char *)ps->end);
			if (n == 0)
				return fail(ps, ps->p, "invalid UTF-8");
			ps->p += n;
		} else {
			ps->p++;
		}
	}
	if (ps->p == ps->end)
		return fail(ps, open, "unterminated string");
	ps->d->nodes[*at].len = (uint32_t)(ps->p - ps->d->nodes[*at].text);
	ps->p++;
	return 0;
}

static bool
digit(struct parser *ps)
{
	return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9';
}

static int
number(struct parser *ps, size_t *at)
{
	const char *begin = ps->p;
	int err;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (!digit(ps))
		return fail(ps, begin, "expected a value");
	if (*ps->p++ == '0' && digit(ps))
		return fail(ps, begin, "leading zero in a number");
	while (digit(ps))
		ps->p++;
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (!digit(ps))
			return fail(ps, ps->p, "expected a digit");
		while (digit(ps))
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (!digit(ps))
			return fail(ps, ps->p, "expected a digit");
		while (digit(ps))
			ps->p++;
	}
	if ((err = add_node(ps, BJ_NUMBER, begin, at)) < 0)
		return err;
	ps->d->nodes[*at].len = (uint32_t)(ps->p - begin);
	return 0;
}

static int value(struct parser *ps);

/* Past the opening bracket: elements (or members) up to close. */
static int
container(struct parser *ps, size_t at, bool object)
{
	char close = object ? '}' : ']';
	size_t keys[BJ_MAX_MEMBERS], key;
	uint32_t count = 0;
	int err;

	if (++ps->depth > BJ_MAX_DEPTH)
		return fail(ps, ps->p - 1, "nested too deep");
	skip_space(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		goto done;
	}
	for (;;) {
		skip_space(ps);
		if (object) {
			if (count == BJ_MAX_MEMBERS)
				return fail(ps, ps->p, "too many members");
			if (ps->p == ps->end || *ps->p != '"')
				return fail(ps, ps->p, "expected a key");
			if ((err = string(ps, &key)) < 0)
				return err;
			ps->d->nodes[key].end = (uint32_t)ps->d->n;
			for (uint32_t i = 0; i < count; i++) {
				const struct bj_node
					*a = &ps->d->nodes[keys[i]],
					*b = &ps->d->nodes[key];

				if (a->len == b->len &&
				    memcmp(a->text, b->text, a->len) == 0)
					return fail(ps, b->text - 1,
						    "duplicate key");
			}
			keys[count] = key;
			skip_space(ps);
			if (ps->p == ps->end || *ps->p != ':')
				return fail(ps, ps->p, "expected ':'");
			ps->p++;
		}
		if ((err = value(ps)) < 0)
			return err;
		count++;
		skip_space(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			break;
		}
		return fail(ps, ps->p,
			    object ? "expected ',' or '}'"
				   : "expected ',' or ']'");
	}
done:
	ps->depth--;
	ps->d->nodes[at].count = count;
	return 0;
}

static bool
word(struct parser *ps, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0)
		return false;
	ps->p += n;
	return true;
}

static int
value(struct parser *ps)
{
	const char *begin;
	size_t at;
	int err = 0;

	skip_space(ps);
	begin = ps->p;
	if (ps->p == ps->end)
		return fail(ps, ps->p, "unexpected end of input");
	switch (*ps->p) {
	case '{':
	case '[':
		if ((err = add_node(ps, *ps->p == '{' ? BJ_OBJECT : BJ_ARRAY,
				    begin, &at)) < 0)
			return err;
		ps->p++;
		err = container(ps, at, *begin == '{');
		break;
	case '"':
		err = string(ps, &at);
		break;
	case 't':
	case 'f':
	case 'n':
		if (!word(ps, "true") && !word(ps, "false") &&
		    !word(ps, "null"))
			return fail(ps, begin, "expected a value");
		err = add_node(ps,
			       *begin == 't'   ? BJ_TRUE
			       : *begin == 'f' ? BJ_FALSE
					       : BJ_NULL,
			       begin, &at);
		break;
	default:
		err = number(ps, &at);
		break;
	}
	if (err < 0)
		return err;
	ps->d->nodes[at].end = (uint32_t)ps->d->n;
	return 0;
}

int
bj_parse(const char *text, size_t len, struct bj_doc *d, char *why,
	 size_t whylen)
{
	struct parser ps = {
		.start = text,
		.p = text,
		.end = text + len,
		.d = d,
		.why = why,
		.whylen = whylen,
	};
	int err;

	memset(d, 0, sizeof(*d));
	if (len > BJ_MAX_INPUT)
		err = fail(&ps, text, "larger than 64 MiB");
	else if ((err = value(&ps)) == 0) {
		skip_space(&ps);
		if (ps.p != ps.end)
			err = fail(&ps, ps.p, "text after the document");
	}
	if (err == -ENOMEM && whylen > 0)
		snprintf(why, whylen, "%s", strerror(ENOMEM));
	if (err < 0)
		bj_free(d);
	return err;
}

void
bj_free(struct bj_doc *d)
{
	free(d->nodes);
	d->nodes = NULL;
	d->n = 0;
}

bool
bj_is(const struct bj_doc *d, size_t i, const char *s)
{
	const struct bj_node *nd = &d->nodes[i];

	return nd->type == BJ_STRING && nd->len == strlen(s) &&
	       memcmp(nd->text, s, nd->len) == 0;
}

size_t
bj_get(const struct bj_doc *d, size_t obj, const char *key)
{
	size_t i;

	if (obj >= d->n || d->nodes[obj].type != BJ_OBJECT)
		return 0;
	i = obj + 1;
	for (uint32_t k = 0; k < d->nodes[obj].count; k++) {
		if (bj_is(d, i, key))
			return i + 1;
		i = d->nodes[i + 1].end;
	}
	return 0;
}

bool
bj_fixed(const struct bj_doc *d, size_t i, unsigned digits, uint64_t *v)
{
	const struct bj_node *nd;
	uint64_t x = 0;
	unsigned frac = 0;
	bool point = false;

	if (i == 0 || i >= d->n || d->nodes[i].type != BJ_NUMBER)
		return false;
	nd = &d->nodes[i];
	for (uint32_t k = 0; k < nd->len; k++) {
		char c = nd->text[k];

		if (c == '.' && !point) {
			point = true;
			continue;
		}
		if (c < '0' || c > '9' || (point && ++frac > digits))
			return false;
		if (x > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
			return false;
		x = x * 10 + (uint64_t)(c - '0');
	}
	for (; frac < digits; frac++) {
		if (x > UINT64_MAX / 10)
			return false;
		x *= 10;
	}
	*v = x;
	return true;
}

bool
bj_u64(const struct bj_doc *d, size_t i, uint64_t *v)
{
	return bj_fixed(d, i, 0, v);
}

bool
bj_double(const struct bj_doc *d, size_t i, double *v)
{
	char buf[64];

	if (i == 0 || i >= d->n || d->nodes[i].type != BJ_NUMBER ||
	    d->nodes[i].len >= sizeof(buf))
		return false;
	memcpy(buf, d->nodes[i].text, d->nodes[i].len);
	buf[d->nodes[i].len] = '\0';
	*v = strtod(buf, NULL);
	return isfinite(*v);
}

/* Code point u as UTF-8 into out; its length. */
static size_t
utf8_put(unsigned u, char *out)
{
	if (u < 0x80) {
		out[0] = (char)u;
		return 1;
	}
	if (u < 0x800) {
		out[0] = (char)(0xc0 | u >> 6);
		out[1] = (char)(0x80 | (u & 0x3f));
		return 2;
	}
	if (u < 0x10000) {
		out[0] = (char)(0xe0 | u >> 12);
		out[1] = (char)(0x80 | ((u >> 6) & 0x3f));
		out[2] = (char)(0x80 | (u & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | u >> 18);
	out[1] = (char)(0x80 | ((u >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((u >> 6) & 0x3f));
	out[3] = (char)(0x80 | (u & 0x3f));
	return 4;
}

bool
bj_string(const struct bj_doc *d, size_t i, char *buf, size_t cap)
{
	const struct bj_node *nd;
	const char *p, *end;
	size_t n = 0, len;
	char ch[4];

	buf[0] = '\0';
	if (i == 0 || i >= d->n || d->nodes[i].type != BJ_STRING)
		return false;
	nd = &d->nodes[i];
	end = nd->text + nd->len;
	for (p = nd->text; p < end;) {
		unsigned u;

		if (*p != '\\') {
			/* A UTF-8 character is copied whole, or not at all. */
			len = (unsigned char)*p < 0x80
				      ? 1
				      : utf8_len((const unsigned char *)p,
						 (const unsigned char *)end);
			memcpy(ch, p, len);
			p += len;
		} else if (p[1] == 'u') {
			u = (unsigned)hex4(p + 2);
			if (u >= 0xd800 && u <= 0xdbff) {
				u = 0x10000 + ((u - 0xd800) << 10) +
				    ((unsigned)hex4(p + 8) - 0xdc00);
				p += 6;
			}
			p += 6;
			if (u == 0)
				return false;
			len = utf8_put(u, ch);
		} else {
			static const char from[] = "\"\\/bfnrt",
					  to[] = "\"\\/\b\f\n\r\t";

			ch[0] = to[strchr(from, p[1]) - from];
			len = 1;
			p += 2;
		}
		if (n + len >= cap)
			break;
		memcpy(buf + n, ch, len);
		n += len;
	}
	buf[n] = '\0';
	return true;
}
