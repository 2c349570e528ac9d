/* bench_doc.c: bench's --json document read back into options and a
 * result, and runs merged exactly, for `tcpkit bench merge`. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_doc.h"
#include "bench_json.h"

#define NS_PER_US 1000u

struct reader {
	const struct bj_doc *d;
	char *why;
	size_t whylen;
};

static int __attribute__((format(printf, 2, 3)))
refuse(struct reader *rd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (rd->whylen > 0)
		vsnprintf(rd->why, rd->whylen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int
u64_at(struct reader *rd, size_t obj, const char *key, uint64_t *v)
{
	if (!bj_u64(rd->d, bj_get(rd->d, obj, key), v))
		return refuse(rd, "\"%s\" is missing or not a whole number",
			      key);
	return 0;
}

/* A count that must fit an unsigned. */
static int
uint_at(struct reader *rd, size_t obj, const char *key, unsigned *v)
{
	uint64_t x;
	int err;

	if ((err = u64_at(rd, obj, key, &x)) < 0)
		return err;
	if (x > UINT32_MAX)
		return refuse(rd, "\"%s\" is too large", key);
	*v = (unsigned)x;
	return 0;
}

/* Seconds with at most 6 decimals, as us (x 1000 for ns when ns). */
static int
seconds_at(struct reader *rd, size_t obj, const char *key, uint64_t *v, bool ns)
{
	if (!bj_fixed(rd->d, bj_get(rd->d, obj, key), 6, v) ||
	    (ns && *v > UINT64_MAX / NS_PER_US))
		return refuse(rd,
			      "\"%s\" is missing or not seconds to the "
			      "microsecond",
			      key);
	if (ns)
		*v *= NS_PER_US;
	return 0;
}

static int
bool_at(struct reader *rd, size_t obj, const char *key, bool *v)
{
	size_t i = bj_get(rd->d, obj, key);

	if (i == 0 || (rd->d->nodes[i].type != BJ_TRUE &&
		       rd->d->nodes[i].type != BJ_FALSE))
		return refuse(rd, "\"%s\" is missing or not true or false",
			      key);
	*v = rd->d->nodes[i].type == BJ_TRUE;
	return 0;
}

static size_t
object_at(struct reader *rd, size_t obj, const char *key)
{
	size_t i = bj_get(rd->d, obj, key);

	if (i == 0 || rd->d->nodes[i].type != BJ_OBJECT) {
		refuse(rd, "\"%s\" is missing or not an object", key);
		return 0;
	}
	return i;
}

static int
read_histogram(struct reader *rd, size_t top, struct tk_hist *h)
{
	const struct bj_doc *d = rd->d;
	size_t hi = object_at(rd, top, "histogram"), b, i;
	uint64_t v, sub, max, sum, total = 0, low, high, idx, n;
	bool any = false;
	int err;

	if (hi == 0)
		return -EINVAL;
	tk_hist_init(h);
	if (!bj_is(d, bj_get(d, hi, "scheme"), "log-linear") ||
	    !bj_is(d, bj_get(d, hi, "unit"), "ns") ||
	    (err = u64_at(rd, hi, "sub_bits", &sub)) < 0 ||
	    (err = u64_at(rd, hi, "max_bits", &max)) < 0 ||
	    sub != TK_HIST_SUB_BITS || max != TK_HIST_MAX_BITS)
		return refuse(rd,
			      "the histogram's bucket scheme differs from "
			      "this tcpkit's (log-linear, ns, sub_bits %d, "
			      "max_bits %d)",
			      TK_HIST_SUB_BITS, TK_HIST_MAX_BITS);
	if ((err = u64_at(rd, hi, "count", &h->count)) < 0 ||
	    (err = u64_at(rd, hi, "min", &h->min)) < 0 ||
	    (err = u64_at(rd, hi, "max", &h->max)) < 0 ||
	    (err = u64_at(rd, hi, "sum", &sum)) < 0 ||
	    (err = u64_at(rd, hi, "clamped", &h->clamped)) < 0)
		return err;
	h->sum = (long double)sum;
	b = bj_get(d, hi, "buckets");
	if (b == 0 || d->nodes[b].type != BJ_ARRAY)
		return refuse(rd, "\"buckets\" is missing or not an array");
	i = b + 1;
	for (uint32_t k = 0; k < d->nodes[b].count; k++, i = d->nodes[i].end) {
		if ((err = u64_at(rd, i, "index", &idx)) < 0 ||
		    (err = u64_at(rd, i, "low", &v)) < 0 ||
		    (err = u64_at(rd, i, "count", &n)) < 0)
			return err;
		if (idx >= TK_HIST_BUCKETS ||
		    tk_hist_bucket((size_t)idx, &low, &high) < 0 || v != low ||
		    (err = u64_at(rd, i, "high", &v)) < 0 || v != high)
			return refuse(rd,
				      "bucket %zu's index and bounds are not "
				      "this tcpkit's bucket scheme",
				      (size_t)k);
		if (h->buckets[idx] != 0 || n == 0)
			return refuse(rd,
				      "bucket index %llu is repeated or empty",
				      (unsigned long long)idx);
		if (n > UINT64_MAX - total)
			return refuse(rd, "the bucket counts overflow");
		h->buckets[idx] = n;
		total += n;
		/* min and max must lie in the first and last buckets. */
		if (!any && (h->min < low || h->min > high))
			return refuse(rd, "\"min\" is not in the first bucket");
		any = true;
	}
	if (total != h->count)
		return refuse(rd,
			      "the buckets hold %llu values, \"count\" says "
			      "%llu",
			      (unsigned long long)total,
			      (unsigned long long)h->count);
	if (any && (h->max < low || h->max > high))
		return refuse(rd, "\"max\" is not in the last bucket");
	if (!any)
		h->min = h->max = 0;
	return 0;
}

static int
read_errors(struct reader *rd, size_t top, struct bench_stats *t)
{
	size_t errs = object_at(rd, top, "errors"), first, i;
	int err;

	if (errs == 0 || (first = object_at(rd, top, "first_errors")) == 0)
		return -EINVAL;
	for (int e = 0; e < BENCH_NERR; e++) {
		const char *name = bench_err_name((enum bench_err)e);

		if ((err = u64_at(rd, errs, name, &t->errors[e])) < 0)
			return err;
		i = bj_get(rd->d, first, name);
		if (i != 0 && !bj_string(rd->d, i, t->first_error[e],
					 sizeof(t->first_error[e])))
			return refuse(rd, "first_errors \"%s\" is no string",
				      name);
	}
	return 0;
}

static int
read_rows(struct reader *rd, size_t top, struct bench_result *r)
{
	const struct bj_doc *d = rd->d;
	size_t s = bj_get(d, top, "series"), i;
	uint64_t second;
	int err;

	if (s == 0 || d->nodes[s].type != BJ_ARRAY)
		return refuse(rd, "\"series\" is missing or not an array");
	if (d->nodes[s].count == 0)
		return 0;
	r->rows = calloc(d->nodes[s].count, sizeof(*r->rows));
	if (r->rows == NULL)
		return -ENOMEM;
	r->nrows = d->nodes[s].count;
	i = s + 1;
	for (size_t k = 0; k < r->nrows; k++, i = d->nodes[i].end) {
		struct bench_row *row = &r->rows[k];

		if ((err = u64_at(rd, i, "second", &second)) < 0 ||
		    (err = u64_at(rd, i, "messages", &row->messages)) < 0 ||
		    (err = u64_at(rd, i, "bytes", &row->bytes)) < 0 ||
		    (err = u64_at(rd, i, "connections", &row->connections)) <
			    0 ||
		    (err = u64_at(rd, i, "errors", &row->errors)) < 0)
			return err;
		if (second != k + 1)
			return refuse(rd, "series row %zu is not second %zu", k,
				      k + 1);
	}
	return 0;
}

static int
read_mode(struct reader *rd, size_t top, struct bench_opts *o)
{
	size_t i = bj_get(rd->d, top, "mode");

	for (int m = BENCH_ECHO; m <= BENCH_IDLE; m++)
		if (bj_is(rd->d, i, bench_mode_name((enum bench_mode)m))) {
			o->mode = (enum bench_mode)m;
			return 0;
		}
	return refuse(rd, "\"mode\" is missing or unknown");
}

/* The run's settings, as far as the reports show them. */
static int
read_opts(struct reader *rd, size_t top, struct bench_opts *o)
{
	const struct bj_doc *d = rd->d;
	uint64_t v;
	int err;

	if ((err = read_mode(rd, top, o)) < 0)
		return err;
	if (!bj_string(d, bj_get(d, top, "target"), o->where, sizeof(o->where)))
		return refuse(rd, "\"target\" is missing or not a string");
	if ((err = bool_at(rd, top, "tls", &o->tls_used)) < 0 ||
	    (err = uint_at(rd, top, "connections", &o->connections)) < 0 ||
	    (err = uint_at(rd, top, "depth", &o->depth)) < 0 ||
	    (err = uint_at(rd, top, "threads", &o->threads)) < 0 ||
	    (err = u64_at(rd, top, "size", &v)) < 0)
		return err;
	o->size = (size_t)v;
	if (bj_u64(d, bj_get(d, top, "window"), &v))
		o->window = (size_t)v;
	if (bj_u64(d, bj_get(d, top, "count"), &v))
		o->count = v;
	if (!bj_double(d, bj_get(d, top, "open_loop_rate"), &o->rate))
		o->rate = 0;
	if ((err = seconds_at(rd, top, "duration_s", &v, false)) < 0)
		return err;
	o->duration_ms = v / 1000;
	if ((err = seconds_at(rd, top, "warmup_s", &v, false)) < 0)
		return err;
	o->warmup_ms = v / 1000;
	return 0;
}

static int
read_result(struct reader *rd, size_t top, struct bench_result *r)
{
	struct bench_stats *t = &r->total;
	uint64_t end, n;
	size_t cpu;
	int err;

	if (bj_get(rd->d, top, "start_unix") != 0 &&
	    rd->d->nodes[bj_get(rd->d, top, "start_unix")].type == BJ_NULL)
		return refuse(rd, "no measured window: the run was stopped "
				  "before it began");
	if ((err = bool_at(rd, top, "interrupted", &r->interrupted)) < 0 ||
	    (err = u64_at(rd, top, "established", &t->established)) < 0 ||
	    (err = u64_at(rd, top, "open_at_end", &r->open_at_end)) < 0 ||
	    (err = u64_at(rd, top, "messages", &t->messages)) < 0 ||
	    (err = u64_at(rd, top, "drained", &t->drained)) < 0 ||
	    (err = u64_at(rd, top, "bytes_sent", &t->bytes_out)) < 0 ||
	    (err = u64_at(rd, top, "bytes_received", &t->bytes_in)) < 0 ||
	    (err = seconds_at(rd, top, "start_unix", &r->start_us, false)) <
		    0 ||
	    (err = seconds_at(rd, top, "end_unix", &end, false)) < 0 ||
	    (err = u64_at(rd, top, "generators", &n)) < 0)
		return err;
	if (end < r->start_us)
		return refuse(rd, "\"end_unix\" is before \"start_unix\"");
	if (n == 0 || n > UINT32_MAX)
		return refuse(rd, "\"generators\" is out of range");
	r->generators = (unsigned)n;
	r->window_ns = (end - r->start_us) * NS_PER_US;
	if (!bj_double(rd->d, bj_get(rd->d, top, "messages_per_s_sum"),
		       &r->rate_sum))
		return refuse(rd, "\"messages_per_s_sum\" is missing or not a "
				  "number");
	if ((cpu = object_at(rd, top, "cpu")) == 0)
		return -EINVAL;
	if ((err = seconds_at(rd, cpu, "user_s", &r->cpu_user_ns, true)) < 0 ||
	    (err = seconds_at(rd, cpu, "system_s", &r->cpu_sys_ns, true)) < 0)
		return err;
	if ((err = read_errors(rd, top, t)) < 0 ||
	    (err = read_histogram(rd, top, &t->hist)) < 0)
		return err;
	return read_rows(rd, top, r);
}

int
bench_doc_read(const char *text, size_t len, struct bench_opts *o,
	       struct bench_result *r, char *why, size_t whylen)
{
	struct bj_doc d;
	struct reader rd = { .d = &d, .why = why, .whylen = whylen };
	char failed[160];
	uint64_t version;
	int err;

	memset(o, 0, sizeof(*o));
	memset(r, 0, sizeof(*r));
	if ((err = bj_parse(text, len, &d, why, whylen)) < 0)
		return err;
	if (d.nodes[0].type != BJ_OBJECT) {
		err = refuse(&rd, "not a JSON object");
		goto out;
	}
	if (bj_string(&d, bj_get(&d, 0, "error"), failed, sizeof(failed))) {
		err = refuse(&rd, "the run failed (%s): nothing to merge",
			     failed);
		goto out;
	}
	if (bj_is(&d, bj_get(&d, 0, "transport"), "udp")) {
		err = refuse(&rd, "a UDP run (bench -u): bench merge reads "
				  "TCP runs only");
		goto out;
	}
	if (!bj_u64(&d, bj_get(&d, 0, "format_version"), &version)) {
		err = refuse(&rd, "no \"format_version\": not a bench --json "
				  "document of this tcpkit's format");
		goto out;
	}
	if (version != BENCH_FORMAT_VERSION) {
		err = refuse(&rd,
			     "format version %llu, this tcpkit reads version "
			     "%d",
			     (unsigned long long)version, BENCH_FORMAT_VERSION);
		goto out;
	}
	if ((err = read_opts(&rd, 0, o)) == 0)
		err = read_result(&rd, 0, r);
	if (err < 0)
		bench_result_free(r);
out:
	bj_free(&d);
	return err;
}

static uint64_t
end_us(const struct bench_result *r)
{
	return r->start_us + r->window_ns / NS_PER_US;
}

static int
merge_rows(struct bench_result *r, const struct bench_result *r2)
{
	if (r2->nrows > r->nrows) {
		struct bench_row *rows =
			realloc(r->rows, r2->nrows * sizeof(*rows));

		if (rows == NULL)
			return -ENOMEM;
		memset(rows + r->nrows, 0,
		       (r2->nrows - r->nrows) * sizeof(*rows));
		r->rows = rows;
		r->nrows = r2->nrows;
	}
	for (size_t k = 0; k < r2->nrows; k++) {
		r->rows[k].messages += r2->rows[k].messages;
		r->rows[k].bytes += r2->rows[k].bytes;
		r->rows[k].connections += r2->rows[k].connections;
		r->rows[k].errors += r2->rows[k].errors;
	}
	return 0;
}

int
bench_merge(struct bench_opts *o, struct bench_result *r,
	    const struct bench_opts *o2, const struct bench_result *r2,
	    char *why, size_t whylen)
{
	struct bench_stats *t = &r->total;
	const struct bench_stats *t2 = &r2->total;
	uint64_t start, end;
	int rc = 0;

	if (o->mode != o2->mode || o->tls_used != o2->tls_used) {
		snprintf(why, whylen, "a %s run%s, not %s%s as the first",
			 bench_mode_name(o2->mode),
			 o2->tls_used ? " over TLS" : "",
			 bench_mode_name(o->mode),
			 o->tls_used ? " over TLS" : "");
		return -EINVAL;
	}
	if (merge_rows(r, r2) < 0)
		return -ENOMEM;
	if (strcmp(o->where, o2->where) != 0) {
		snprintf(why, whylen, "target %s differs from the first's, %s",
			 o2->where, o->where);
		rc = 1;
	}
	o->connections += o2->connections;
	o->threads += o2->threads;
	o->rate += o2->rate;
	if (o->count != o2->count)
		o->count = 0;
	if (o2->duration_ms > o->duration_ms)
		o->duration_ms = o2->duration_ms;
	if (o2->warmup_ms > o->warmup_ms)
		o->warmup_ms = o2->warmup_ms;
	start = r->start_us < r2->start_us ? r->start_us : r2->start_us;
	end = end_us(r) > end_us(r2) ? end_us(r) : end_us(r2);
	r->start_us = start;
	r->window_ns = (end - start) * NS_PER_US;
	r->generators += r2->generators;
	r->rate_sum += r2->rate_sum;
	r->interrupted |= r2->interrupted;
	r->open_at_end += r2->open_at_end;
	r->cpu_user_ns += r2->cpu_user_ns;
	r->cpu_sys_ns += r2->cpu_sys_ns;
	t->messages += t2->messages;
	t->drained += t2->drained;
	t->bytes_out += t2->bytes_out;
	t->bytes_in += t2->bytes_in;
	t->established += t2->established;
	for (int e = 0; e < BENCH_NERR; e++) {
		t->errors[e] += t2->errors[e];
		if (t->first_error[e][0] == '\0')
			memcpy(t->first_error[e], t2->first_error[e],
			       sizeof(t->first_error[e]));
	}
	tk_hist_merge(&t->hist, &t2->hist);
	return rc;
}
