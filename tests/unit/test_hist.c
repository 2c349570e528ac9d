/* test_hist.c: histogram percentiles stay within 1% of the exact values. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "tcpkit.h"

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of sorted values. */
static uint64_t
exact(const uint64_t *v, size_t n, double p)
{
	size_t rank = (size_t)ceil(p / 100.0 * (double)n);

	if (rank == 0)
		rank = 1;
	return v[rank - 1];
}

static struct tk_hist *
new_hist(void)
{
	struct tk_hist *h = malloc(sizeof(*h));

	cr_assert_not_null(h);
	tk_hist_init(h);
	return h;
}

Test(hist, empty)
{
	struct tk_hist *h = new_hist();

	cr_expect_eq(tk_hist_percentile(h, 50), 0);
	cr_expect_eq(tk_hist_mean(h), 0.0);
	free(h);
}

Test(hist, small_values_are_exact)
{
	struct tk_hist *h = new_hist();

	for (uint64_t v = 1; v <= 200; v++)
		tk_hist_record(h, v);
	cr_expect_eq(tk_hist_percentile(h, 50), 100);
	cr_expect_eq(tk_hist_percentile(h, 99), 198);
	cr_expect_eq(tk_hist_percentile(h, 0), 1);
	cr_expect_eq(tk_hist_percentile(h, 100), 200);
	cr_expect_float_eq(tk_hist_mean(h), 100.5, 1e-9);
	free(h);
}

Test(hist, relative_error_under_one_percent)
{
	static const double ps[] = { 1, 10, 50, 90, 99, 99.9, 99.99 };
	enum { N = 200000 };
	uint64_t *v = malloc(N * sizeof(*v));
	struct tk_hist *h = new_hist();

	cr_assert_not_null(v);
	srand(12345);
	for (size_t i = 0; i < N; i++) {
		/* Log-uniform from 1 ns to about 100 s. */
		double e = (double)rand() / RAND_MAX * 25.0;

		v[i] = (uint64_t)exp2(e * 1.46) + (uint64_t)(rand() % 7);
		tk_hist_record(h, v[i]);
	}
	qsort(v, N, sizeof(*v), cmp_u64);
	cr_expect_eq(h->count, N);
	cr_expect_eq(h->min, v[0]);
	cr_expect_eq(h->max, v[N - 1]);
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		double want = (double)exact(v, N, ps[i]);
		double got = (double)tk_hist_percentile(h, ps[i]);

		cr_expect_leq(fabs(got - want) / want, 0.01,
			      "p%g: got %.0f, exact %.0f", ps[i], got, want);
	}
	free(v);
	free(h);
}

Test(hist, merge_equals_recording_all)
{
	struct tk_hist *a = new_hist(), *b = new_hist(), *all = new_hist();

	for (uint64_t i = 0; i < 5000; i++) {
		uint64_t v = (i * 7919) % 100000 + 1;

		tk_hist_record(i % 2 ? a : b, v);
		tk_hist_record(all, v);
	}
	tk_hist_merge(a, b);
	cr_expect_eq(a->count, all->count);
	cr_expect_eq(a->min, all->min);
	cr_expect_eq(a->max, all->max);
	for (double p = 1; p < 100; p += 7)
		cr_expect_eq(tk_hist_percentile(a, p),
			     tk_hist_percentile(all, p));
	free(a);
	free(b);
	free(all);
}

Test(hist, huge_values_are_clamped_and_counted)
{
	struct tk_hist *h = new_hist();

	tk_hist_record(h, UINT64_MAX);
	tk_hist_record(h, 10);
	cr_expect_eq(h->clamped, 1);
	cr_expect_eq(h->max, TK_HIST_MAX);
	cr_expect_eq(tk_hist_percentile(h, 100), TK_HIST_MAX);
	cr_expect_eq(tk_hist_percentile(h, 50), 10);
	free(h);
}

/*
 * tk_hist_bucket() tiles 0..TK_HIST_MAX without gap or overlap, and every
 * value recorded lands in the bucket whose bounds hold it: what a saved
 * histogram needs to be read back exactly.
 */
Test(hist, buckets_tile_the_range)
{
	uint64_t low, high, next = 0;
	struct tk_hist *h = calloc(1, sizeof(*h));

	cr_assert_not_null(h);
	for (size_t b = 0; b < TK_HIST_BUCKETS; b++) {
		cr_assert_eq(tk_hist_bucket(b, &low, &high), 0);
		cr_assert_eq(low, next, "bucket %zu starts at %llu", b,
			     (unsigned long long)low);
		cr_assert_geq(high, low);
		next = high + 1;
		/* Its two ends are recorded into it, and only into it. */
		tk_hist_init(h);
		tk_hist_record(h, low);
		tk_hist_record(h, high);
		cr_assert_eq(h->buckets[b], 2, "bucket %zu", b);
	}
	cr_assert_eq(next - 1, TK_HIST_MAX);
	cr_assert_eq(tk_hist_bucket(TK_HIST_BUCKETS, &low, &high), -EINVAL);
	free(h);
}
