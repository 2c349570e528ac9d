/* test_benchjson.c: bench merge's JSON reader refuses all but strict,
 * bounded JSON, and documents read back merge exactly. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_doc.h"
#include "bench_json.h"

TestSuite(json, .timeout = 30);
TestSuite(doc, .timeout = 30);

static int
parse(const char *text, struct bj_doc *d, char *why, size_t len)
{
	return bj_parse(text, strlen(text), d, why, len);
}

Test(json, values_and_structure)
{
	const char *text = " {\"a\": [1, -2.5e3, true, false, null],\n"
			   "  \"b\": {\"c\": \"x\\u00e9\\ud83d\\ude00\\n\"}} ";
	struct bj_doc d;
	char why[128], s[32];
	size_t a, b;

	cr_assert_eq(parse(text, &d, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(d.nodes[0].type, BJ_OBJECT);
	cr_assert_eq(d.nodes[0].count, 2);
	a = bj_get(&d, 0, "a");
	cr_assert_eq(d.nodes[a].type, BJ_ARRAY);
	cr_assert_eq(d.nodes[a].count, 5);
	cr_assert_eq(d.nodes[a + 3].type, BJ_TRUE);
	cr_assert_eq(d.nodes[a + 5].type, BJ_NULL);
	b = bj_get(&d, 0, "b");
	/* Past a's subtree is b's key. */
	cr_assert_eq(d.nodes[a].end, b - 1);
	cr_assert(bj_string(&d, bj_get(&d, b, "c"), s, sizeof(s)));
	cr_assert_str_eq(s, "x\xc3\xa9\xf0\x9f\x98\x80\n");
	cr_assert_eq(bj_get(&d, 0, "z"), 0);
	cr_assert_eq(bj_get(&d, a, "a"), 0, "an array has no members");
	bj_free(&d);
}

Test(json, strict_refusals)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "", "line 1, column 1: unexpected end of input" },
		{ "{\"a\": 1,}", "line 1, column 9: expected a key" },
		{ "[1,]", "line 1, column 4: expected a value" },
		{ "[01]", "leading zero" },
		{ "[1.]", "expected a digit" },
		{ "[.5]", "expected a value" },
		{ "[-]", "expected a value" },
		{ "[+1]", "expected a value" },
		{ "[1e]", "expected a digit" },
		{ "[NaN]", "expected a value" },
		{ "[tru]", "expected a value" },
		{ "['a']", "expected a value" },
		{ "[1] // c", "text after the document" },
		{ "{\"a\" 1}", "expected ':'" },
		{ "{\"a\": 1 \"b\": 2}", "expected ',' or '}'" },
		{ "[1 2]", "expected ',' or ']'" },
		{ "\"abc", "unterminated string" },
		{ "\"a\tb\"", "control character" },
		{ "\"\\x\"", "bad escape" },
		{ "\"\\ud800\"", "bad \\u escape" },
		{ "\"\\udc00\"", "bad \\u escape" },
		{ "\"\\u12g4\"", "bad \\u escape" },
		{ "\"\xc0\xaf\"", "invalid UTF-8" },
		{ "\"\xed\xa0\x80\"", "invalid UTF-8" },
		{ "\"\xf4\x90\x80\x80\"", "invalid UTF-8" },
		{ "\"\xe2\x82\"", "invalid UTF-8" },
		{ "{\"a\": 1, \"a\": 2}", "duplicate key" },
		{ "{\n\"a\":\n  ]}", "line 3, column 3: expected a value" },
	};
	struct bj_doc d;
	char why[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse(bad[i].text, &d, why, sizeof(why)), -EINVAL,
			     "accepted %s", bad[i].text);
		cr_assert(strstr(why, bad[i].why) != NULL,
			  "%s: got \"%s\", want \"%s\"", bad[i].text, why,
			  bad[i].why);
		cr_assert_null(d.nodes);
	}
}

Test(json, depth_and_member_bounds)
{
	char text[2 * BJ_MAX_DEPTH + 8], why[128], *many, *p;
	struct bj_doc d;
	size_t n = 0;

	for (int i = 0; i < BJ_MAX_DEPTH; i++)
		text[n++] = '[';
	for (int i = 0; i < BJ_MAX_DEPTH; i++)
		text[n++] = ']';
	text[n] = '\0';
	cr_assert_eq(parse(text, &d, why, sizeof(why)), 0, "%s", why);
	bj_free(&d);
	memmove(text + 1, text, n + 1);
	text[0] = '[';
	strcat(text, "]");
	cr_assert_eq(parse(text, &d, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "nested too deep") != NULL, "%s", why);

	/* An object of BJ_MAX_MEMBERS + 1 members. */
	many = malloc(16 * (BJ_MAX_MEMBERS + 2));
	cr_assert_not_null(many);
	p = many + sprintf(many, "{");
	for (int i = 0; i <= BJ_MAX_MEMBERS; i++)
		p += sprintf(p, "%s\"k%d\": 0", i ? ", " : "", i);
	strcpy(p, "}");
	cr_assert_eq(parse(many, &d, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "too many members") != NULL, "%s", why);
	free(many);
}

Test(json, numbers)
{
	struct bj_doc d;
	char why[128];
	uint64_t v;
	double x;

	cr_assert_eq(parse("[18446744073709551615, 18446744073709551616, -1, "
			   "1.0, 1.5, 0.000001, 1.1234567, 2e3, 0]",
			   &d, why, sizeof(why)),
		     0, "%s", why);
	cr_assert(bj_u64(&d, 1, &v));
	cr_assert_eq(v, UINT64_MAX);
	cr_assert_not(bj_u64(&d, 2, &v), "overflow");
	cr_assert_not(bj_u64(&d, 3, &v), "negative");
	cr_assert_not(bj_u64(&d, 4, &v), "a fraction");
	cr_assert(bj_fixed(&d, 5, 6, &v));
	cr_assert_eq(v, 1500000);
	cr_assert(bj_fixed(&d, 6, 6, &v));
	cr_assert_eq(v, 1);
	cr_assert_not(bj_fixed(&d, 7, 6, &v), "7 decimals");
	cr_assert_not(bj_u64(&d, 8, &v), "an exponent");
	cr_assert(bj_double(&d, 8, &x));
	cr_assert_eq(x, 2000.0);
	cr_assert(bj_u64(&d, 9, &v));
	cr_assert_eq(v, 0);
	cr_assert_not(bj_u64(&d, 0, &v), "an array");
	bj_free(&d);
}

Test(json, string_cut_at_a_character)
{
	struct bj_doc d;
	char why[128], s[4];

	cr_assert_eq(parse("[\"h\xc3\xa9llo\", \"a\\u0000b\"]", &d, why,
			   sizeof(why)),
		     0, "%s", why);
	/* "hé" needs 4 bytes with its NUL: only "h" fits whole in 3. */
	cr_assert(bj_string(&d, 1, s, 3));
	cr_assert_str_eq(s, "h");
	cr_assert(bj_string(&d, 1, s, 4));
	cr_assert_str_eq(s, "h\xc3\xa9");
	cr_assert_not(bj_string(&d, 2, s, sizeof(s)), "a NUL inside");
	cr_assert(bj_is(&d, 1, "h\xc3\xa9llo"));
	bj_free(&d);
}

/* --- documents and merges ------------------------------------------------ */

/*
 * A minimal bench document with histogram h: what `tcpkit bench --json`
 * writes, fields the merge reads only.
 */
static char *
make_doc(const char *mode, const char *target, uint64_t start_us,
	 uint64_t len_us, const struct tk_hist *h)
{
	size_t cap = 64 * 1024, n;
	char *buf = malloc(cap);
	uint64_t low, high;
	bool first = true;

	cr_assert_not_null(buf);
	n = (size_t)snprintf(
		buf, cap,
		"{\"format_version\": %d, \"mode\": \"%s\", \"target\": "
		"\"%s\", \"tls\": false, \"connections\": 2, \"established\": "
		"2, \"open_at_end\": 0, \"depth\": 1, \"size\": 64, "
		"\"threads\": 1, \"open_loop_rate\": null, \"count\": null, "
		"\"duration_s\": 10.000, \"warmup_s\": 0.000, "
		"\"interrupted\": false, \"messages\": %llu, \"drained\": 0, "
		"\"bytes_sent\": 10, \"bytes_received\": 10, \"errors\": "
		"{\"connect\": 1, \"reset\": 0, \"timeout\": 0, \"mismatch\": "
		"0, \"protocol\": 0, \"tls\": 0, \"total\": 1}, "
		"\"first_errors\": {\"connect\": \"refused\"}, \"cpu\": "
		"{\"user_s\": 0.5, \"system_s\": 0.25}, \"start_unix\": "
		"%llu.%06llu, \"end_unix\": %llu.%06llu, \"generators\": 1, "
		"\"messages_per_s_sum\": 100.5, \"series\": [{\"second\": 1, "
		"\"messages\": 3, \"bytes\": 4, \"connections\": 2, "
		"\"errors\": 0}], \"histogram\": {\"scheme\": \"log-linear\", "
		"\"sub_bits\": %d, \"max_bits\": %d, \"unit\": \"ns\", "
		"\"count\": %llu, \"min\": %llu, \"max\": %llu, \"sum\": "
		"%.0Lf, \"clamped\": 0, \"buckets\": [",
		BENCH_FORMAT_VERSION, mode, target,
		(unsigned long long)h->count,
		(unsigned long long)(start_us / 1000000),
		(unsigned long long)(start_us % 1000000),
		(unsigned long long)((start_us + len_us) / 1000000),
		(unsigned long long)((start_us + len_us) % 1000000),
		TK_HIST_SUB_BITS, TK_HIST_MAX_BITS,
		(unsigned long long)h->count, (unsigned long long)h->min,
		(unsigned long long)h->max, h->sum);
	for (size_t b = 0; b < TK_HIST_BUCKETS; b++) {
		if (h->buckets[b] == 0)
			continue;
		tk_hist_bucket(b, &low, &high);
		n += (size_t)snprintf(buf + n, cap - n,
				      "%s{\"index\": %zu, \"low\": %llu, "
				      "\"high\": %llu, \"count\": %llu}",
				      first ? "" : ", ", b,
				      (unsigned long long)low,
				      (unsigned long long)high,
				      (unsigned long long)h->buckets[b]);
		first = false;
		cr_assert_lt(n, cap - 16);
	}
	snprintf(buf + n, cap - n, "]}}");
	return buf;
}

struct run {
	struct bench_opts o;
	struct bench_result r;
};

static void
read_doc(const char *text, struct run *run)
{
	char why[256];

	cr_assert_eq(bench_doc_read(text, strlen(text), &run->o, &run->r, why,
				    sizeof(why)),
		     0, "%s", why);
}

Test(doc, merge_is_exact)
{
	struct tk_hist *h1 = calloc(3, sizeof(*h1)), *h2 = h1 + 1,
		       *all = h1 + 2;
	struct run *a = calloc(2, sizeof(*a)), *b = a + 1;
	char *t1, *t2, why[256];
	uint64_t x = 12345;

	cr_assert_not_null(h1);
	cr_assert_not_null(a);
	/* Values spread over many buckets, split unevenly. */
	for (int i = 0; i < 5000; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t v = (x >> 40) % (i % 7 == 0 ? 50000000 : 300000);

		tk_hist_record(i % 3 ? h1 : h2, v);
		tk_hist_record(all, v);
	}
	t1 = make_doc("echo", "127.0.0.1:7", 1000000000000000, 2500000, h1);
	t2 = make_doc("echo", "127.0.0.1:7", 1000000000500000, 3000000, h2);
	read_doc(t1, a);
	read_doc(t2, b);
	cr_assert_eq(a->r.total.hist.count, h1->count);
	cr_assert_eq(memcmp(a->r.total.hist.buckets, h1->buckets,
			    sizeof(h1->buckets)),
		     0);
	cr_assert_eq(bench_merge(&a->o, &a->r, &b->o, &b->r, why, sizeof(why)),
		     0, "%s", why);
	/* The merge holds exactly what recording every value would. */
	cr_assert_eq(memcmp(a->r.total.hist.buckets, all->buckets,
			    sizeof(all->buckets)),
		     0);
	cr_assert_eq(a->r.total.hist.count, all->count);
	cr_assert_eq(a->r.total.hist.min, all->min);
	cr_assert_eq(a->r.total.hist.max, all->max);
	cr_assert_eq(tk_hist_mean(&a->r.total.hist), tk_hist_mean(all));
	for (double p = 1; p < 100; p += 0.7)
		cr_assert_eq(tk_hist_percentile(&a->r.total.hist, p),
			     tk_hist_percentile(all, p), "p%g", p);
	/* The span: earliest start to latest end. */
	cr_assert_eq(a->r.start_us, 1000000000000000);
	cr_assert_eq(a->r.window_ns, 3500000ull * 1000);
	cr_assert_eq(a->r.generators, 2);
	cr_assert_float_eq(a->r.rate_sum, 201.0, 1e-9);
	cr_assert_eq(a->r.total.errors[BENCH_ERR_CONNECT], 2);
	cr_assert_str_eq(a->r.total.first_error[BENCH_ERR_CONNECT], "refused");
	cr_assert_eq(a->r.cpu_user_ns, 1000000000);
	cr_assert_eq(a->r.nrows, 1);
	cr_assert_eq(a->r.rows[0].messages, 6);
	cr_assert_eq(a->o.connections, 4);
	bench_result_free(&a->r);
	bench_result_free(&b->r);
	free(t1);
	free(t2);
	free(a);
	free(h1);
}

Test(doc, refusals_and_warning)
{
	struct tk_hist *h = calloc(1, sizeof(*h));
	struct run *a = calloc(2, sizeof(*a)), *b = a + 1;
	char *t, *u, why[256];

	cr_assert_not_null(h);
	cr_assert_not_null(a);
	tk_hist_record(h, 1000);
	t = make_doc("echo", "127.0.0.1:7", 1000000, 1000, h);
	read_doc(t, a);

	u = make_doc("bulk", "127.0.0.1:7", 1000000, 1000, h);
	read_doc(u, b);
	cr_assert_eq(bench_merge(&a->o, &a->r, &b->o, &b->r, why, sizeof(why)),
		     -EINVAL);
	cr_assert_str_eq(why, "a bulk run, not echo as the first");
	bench_result_free(&b->r);
	free(u);

	u = make_doc("echo", "[::1]:7", 1000000, 1000, h);
	read_doc(u, b);
	cr_assert_eq(bench_merge(&a->o, &a->r, &b->o, &b->r, why, sizeof(why)),
		     1);
	cr_assert_str_eq(
		why, "target [::1]:7 differs from the first's, 127.0.0.1:7");
	bench_result_free(&b->r);
	free(u);

	/* Edits that make the document another format, or a lie. */
	static const struct {
		const char *from, *to, *why;
	} bad[] = {
		{ "\"format_version\": 1", "\"format_version\": 2",
		  "format version 2, this tcpkit reads version 1" },
		{ "\"sub_bits\": 8", "\"sub_bits\": 7", "bucket scheme" },
		{ "\"count\": 1, \"min\"", "\"count\": 2, \"min\"",
		  "the buckets hold 1 values, \"count\" says 2" },
		{ "\"low\": 1000", "\"low\": 1001", "bucket scheme" },
		{ "\"min\": 1000", "\"min\": 2000", "\"min\" is not in" },
		{ "\"messages\": 1,", "\"messages\": -1,",
		  "\"messages\" is missing or not a whole number" },
		{ "\"user_s\": 0.5", "\"user_s\": 0.5e0", "\"user_s\"" },
		{ "\"second\": 1", "\"second\": 2",
		  "series row 0 is not second 1" },
		{ "\"mode\": \"echo\"", "\"mode\": \"ping\"", "\"mode\"" },
		{ "\"end_unix\": 1.001000", "\"end_unix\": 0.5",
		  "\"end_unix\" is before" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *p = strstr(t, bad[i].from), *edit;

		cr_assert_not_null(p, "%s", bad[i].from);
		edit = malloc(strlen(t) + 32);
		cr_assert_not_null(edit);
		sprintf(edit, "%.*s%s%s", (int)(p - t), t, bad[i].to,
			p + strlen(bad[i].from));
		cr_assert_eq(bench_doc_read(edit, strlen(edit), &b->o, &b->r,
					    why, sizeof(why)),
			     -EINVAL, "accepted %s", bad[i].to);
		cr_assert(strstr(why, bad[i].why) != NULL, "got \"%s\"", why);
		cr_assert_null(b->r.rows);
		free(edit);
	}
	static const char failed[] = "{\"mode\": \"echo\", \"error\": \"no "
				     "route\", \"exit_code\": 69}";
	cr_assert_eq(bench_doc_read(failed, strlen(failed), &b->o, &b->r, why,
				    sizeof(why)),
		     -EINVAL);
	cr_assert_str_eq(why, "the run failed (no route): nothing to merge");
	bench_result_free(&a->r);
	free(t);
	free(a);
	free(h);
}
