/* fuzz_benchjson.c: libFuzzer harness for bench merge's JSON reader and its
 * reading of a bench document (bench/engine/bench_json.c, bench_doc.c). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_doc.h"
#include "bench_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "check failed: %s\n", what);
		abort();
	}
}

/* A failure's reason: one line, placed by line and column. */
static void
check_why(int err, const char *why)
{
	check(err == -EINVAL || err == -ENOMEM, "only the documented codes");
	check(why[0] != '\0', "a reason");
	check(strchr(why, '\n') == NULL, "a one-line reason");
}

/*
 * Node i and what it holds lie inside the text and the array; an
 * array's or object's count is the number of children walked to its end.
 * Returns the index past i.
 */
static size_t
walk(const struct bj_doc *d, size_t i, const char *text, size_t len)
{
	const struct bj_node *nd = &d->nodes[i];
	size_t k, n = 0;
	char buf[8];

	check(nd->end > i && nd->end <= d->n, "end inside the array");
	check(nd->text >= text && nd->text + nd->len <= text + len,
	      "text inside the input");
	if (nd->type == BJ_STRING) {
		/* Decoding stays in a small buffer and ends with a NUL. */
		memset(buf, 'x', sizeof(buf));
		if (bj_string(d, i, buf, sizeof(buf)))
			check(memchr(buf, '\0', sizeof(buf)) != NULL,
			      "a string is terminated");
	}
	if (nd->type != BJ_ARRAY && nd->type != BJ_OBJECT) {
		check(nd->end == i + 1, "a scalar holds nothing");
		return i + 1;
	}
	for (k = i + 1; k < nd->end; n++) {
		if (nd->type == BJ_OBJECT) {
			check(d->nodes[k].type == BJ_STRING, "a key first");
			k = walk(d, k, text, len);
			check(k < nd->end, "a value after the key");
		}
		k = walk(d, k, text, len);
	}
	check(k == nd->end, "children end where the container does");
	check(n == nd->count, "count is the children walked");
	return k;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct bench_opts o;
	struct bench_result r;
	struct bj_doc d;
	char why[256] = "";
	uint64_t total = 0;
	int err;

	err = bj_parse(text, size, &d, why, sizeof(why));
	if (err < 0) {
		check_why(err, why);
		check(d.nodes == NULL, "nothing kept on failure");
	} else {
		check(d.n > 0, "a value");
		check(walk(&d, 0, text, size) == d.n, "one top value");
		bj_free(&d);
	}
	why[0] = '\0';
	err = bench_doc_read(text, size, &o, &r, why, sizeof(why));
	if (err < 0) {
		check_why(err, why);
		check(r.rows == NULL, "no rows kept on failure");
		return 0;
	}
	/* A document read is a histogram whose buckets hold its count. */
	for (size_t b = 0; b < TK_HIST_BUCKETS; b++)
		total += r.total.hist.buckets[b];
	check(total == r.total.hist.count, "buckets add up to the count");
	check(r.total.hist.count == 0 || r.total.hist.min <= r.total.hist.max,
	      "min <= max");
	check(r.generators > 0, "at least one generator");
	bench_result_free(&r);
	return 0;
}
