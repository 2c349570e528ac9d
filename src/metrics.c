/* metrics.c: the response-latency histogram's buckets and clock. */
#include <time.h>

#include "internal.h"

/*
 * Upper bounds in microseconds: from a loopback turnaround (tens of us)
 * to a stalled target (seconds), about three per decade.
 */
static const uint64_t bounds_us[TK_LATENCY_BUCKETS - 1] = {
	50,	100,	 250,	  500,	   1000,     2500,
	5000,	10000,	 25000,	  50000,   100000,   250000,
	500000, 1000000, 2500000, 5000000, 10000000,
};

uint64_t
tk_latency_bound_ns(unsigned i)
{
	if (i >= TK_LATENCY_BUCKETS - 1)
		return UINT64_MAX;
	return bounds_us[i] * 1000;
}

uint64_t
tk__mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
tk__ctr_latency(struct tk__counters *c, uint64_t ns)
{
	unsigned i = 0;

	while (i < TK_LATENCY_BUCKETS - 1 && ns > bounds_us[i] * 1000)
		i++;
	/* Count, sum and bucket move together for a reader. */
	tk__ctr_begin(c);
	tk__ctr_add(&c->lat_count, 1);
	tk__ctr_add(&c->lat_sum_ns, ns);
	tk__ctr_add(&c->lat_bucket[i], 1);
	tk__ctr_end(c);
}
