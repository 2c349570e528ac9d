/* tcpkit/hist.h: the bucket scheme of struct tk_hist, for programs that
 * save a histogram and read it back (part of tcpkit.h; include that). */
#ifndef TCPKIT_HIST_H
#define TCPKIT_HIST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * The values bucket b of a struct tk_hist holds: low to high, both
 * included (TK_HIST_SUB_BITS and TK_HIST_MAX_BITS say which scheme).  A
 * histogram saved as (b, count) pairs is rebuilt exactly by adding each
 * count to buckets[b].  0, or -EINVAL when b >= TK_HIST_BUCKETS.
 */
int tk_hist_bucket(size_t b, uint64_t *low, uint64_t *high);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_HIST_H */
