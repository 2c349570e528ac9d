/* bench_json.h: a small, strict and bounded JSON reader, for the documents
 * `tcpkit bench --json` writes and `tcpkit bench merge` reads back. */
#ifndef TK_BENCH_JSON_H
#define TK_BENCH_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds: anything larger is refused, never read in part. */
#define BJ_MAX_INPUT   (64u * 1024 * 1024)
#define BJ_MAX_NODES   (4u * 1024 * 1024)
#define BJ_MAX_DEPTH   16
#define BJ_MAX_MEMBERS 256 /* per object: the format's have far fewer */

enum bj_type {
	BJ_NULL,
	BJ_FALSE,
	BJ_TRUE,
	BJ_NUMBER,
	BJ_STRING,
	BJ_ARRAY,
	BJ_OBJECT,
};

/*
 * The document is a flat array of nodes in the order of the text.  An
 * array's elements follow it; an object's members follow it as a key (a
 * string node) then its value.  end is the index just past a node and
 * all it holds: the next sibling's.
 */
struct bj_node {
	enum bj_type type;
	uint32_t count; /* array: elements; object: members */
	uint32_t end;
	const char *text; /* number: its text; string: between the quotes */
	uint32_t len;	  /* of text (a string's escapes as written) */
};

struct bj_doc {
	struct bj_node *nodes; /* nodes[0] is the top value */
	size_t n;
};

/*
 * Parse text[0..len) (RFC 8259, and nothing more: no comments, trailing
 * commas, NaN, leading zeros, control characters in strings, invalid
 * UTF-8 or lone surrogates, duplicate keys; at most BJ_MAX_DEPTH deep).
 * The nodes point into text, which must outlive d.  0, -EINVAL with why
 * ("line 3, column 7: expected ':'") or -ENOMEM.
 */
int bj_parse(const char *text, size_t len, struct bj_doc *d, char *why,
	     size_t whylen);
void bj_free(struct bj_doc *d);

/* The value of member key of object node obj, or 0 (none, or no object). */
size_t bj_get(const struct bj_doc *d, size_t obj, const char *key);
/* Node i as a whole number 0..UINT64_MAX (no sign, fraction or exponent). */
bool bj_u64(const struct bj_doc *d, size_t i, uint64_t *v);
/*
 * Node i, a number without sign or exponent and at most digits decimals,
 * times 10^digits, exactly: "1.5" with 6 digits is 1500000.
 */
bool bj_fixed(const struct bj_doc *d, size_t i, unsigned digits, uint64_t *v);
bool bj_double(const struct bj_doc *d, size_t i, double *v);
/*
 * String node i decoded into buf (cap > 0, always terminated, cut at a
 * character's boundary if too long).  false if i is no string or holds a
 * NUL.
 */
bool bj_string(const struct bj_doc *d, size_t i, char *buf, size_t cap);
/* Whether string node i is exactly s (no escapes in it). */
bool bj_is(const struct bj_doc *d, size_t i, const char *s);

#endif /* TK_BENCH_JSON_H */
