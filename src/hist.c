/* hist.c: log-linear latency histograms with bounded relative error. */
#include <errno.h>
#include <string.h>

#include "tcpkit.h"

#define SUB  (1u << TK_HIST_SUB_BITS) /* exact values below this */
#define HALF (SUB / 2)

/*
 * Values below SUB have a bucket each.  Above, a value whose top bit is
 * bit b is shifted right by b - (SUB_BITS - 1), leaving HALF..SUB-1: HALF
 * buckets per power of two, each 2^shift wide, a width at most 1/HALF of
 * the values it holds.
 */
static size_t
bucket_of(uint64_t v)
{
	unsigned shift;

	if (v < SUB)
		return (size_t)v;
	shift = (unsigned)(63 - __builtin_clzll(v)) - (TK_HIST_SUB_BITS - 1);
	return (size_t)HALF * shift + (size_t)(v >> shift);
}

/* The smallest value of bucket b, and its width. */
static void
bucket_range(size_t b, uint64_t *low, uint64_t *width)
{
	unsigned shift;

	if (b < SUB) {
		*low = b;
		*width = 1;
		return;
	}
	shift = (unsigned)(b / HALF) - 1;
	*low = (uint64_t)(b - (size_t)HALF * shift) << shift;
	*width = UINT64_C(1) << shift;
}

void
tk_hist_init(struct tk_hist *h)
{
	memset(h, 0, sizeof(*h));
}

void
tk_hist_record(struct tk_hist *h, uint64_t v)
{
	if (v > TK_HIST_MAX) {
		v = TK_HIST_MAX;
		h->clamped++;
	}
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->sum += (long double)v;
	h->buckets[bucket_of(v)]++;
}

void
tk_hist_merge(struct tk_hist *dst, const struct tk_hist *src)
{
	if (src->count == 0)
		return;
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->clamped += src->clamped;
	dst->sum += src->sum;
	for (size_t i = 0; i < TK_HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
}

uint64_t
tk_hist_percentile(const struct tk_hist *h, double p)
{
	uint64_t rank, seen = 0, low, width, v;

	if (h->count == 0)
		return 0;
	if (p <= 0)
		return h->min;
	if (p >= 100)
		return h->max;
	/* The rank of the p-th value, 1-based, rounded up (nearest rank). */
	rank = (uint64_t)((p / 100.0) * (double)h->count);
	if ((double)rank < (p / 100.0) * (double)h->count)
		rank++;
	if (rank == 0)
		rank = 1;
	for (size_t b = 0; b < TK_HIST_BUCKETS; b++) {
		seen += h->buckets[b];
		if (seen < rank)
			continue;
		bucket_range(b, &low, &width);
		v = low + (width - 1) / 2;
		if (v < h->min)
			v = h->min;
		if (v > h->max)
			v = h->max;
		return v;
	}
	return h->max;
}

double
tk_hist_mean(const struct tk_hist *h)
{
	return h->count ? (double)(h->sum / (long double)h->count) : 0.0;
}

int
tk_hist_bucket(size_t b, uint64_t *low, uint64_t *high)
{
	uint64_t width;

	if (b >= TK_HIST_BUCKETS)
		return -EINVAL;
	bucket_range(b, low, &width);
	*high = *low + (width - 1);
	return 0;
}
