/* tcpkit/metrics.h: a server's numbers per worker and per listener, and its
 * response-latency histogram (part of tcpkit.h; include that). */
#ifndef TCPKIT_METRICS_H
#define TCPKIT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

struct tk_server;
struct tk_server_stats;

/*
 * Every read is a snapshot taken without stopping the workers: each
 * worker's numbers are from one moment of its own (a connection closed
 * with a reset is in closed, conn_errors and resets together, or in none).
 */

/*
 * Worker k's own counts (0 .. workers-1), out->workers set to 1.  0, or
 * -EINVAL when there is no worker k (*out zeroed).
 */
int tk_server_get_worker_stats(const struct tk_server *s, unsigned k,
			       struct tk_server_stats *out);
/*
 * Connections worker k accepted on listener i (tk_server_addr(s, i)),
 * those refused by max_conns or the access list not included; 0 when
 * there is no such worker or listener.
 */
uint64_t tk_server_listener_accepted(const struct tk_server *s, unsigned k,
				     size_t i);

/*
 * Response latency of a server's connections: from the first byte read
 * that has not been answered yet to the moment the next bytes written to
 * that same connection are handed to the kernel.  That is how long the
 * peer waits for an answer: an echo's turnaround, a line service's reply
 * to a line (timed from the line's first byte), and for a relay the round
 * trip through the target.  Bytes read while nothing answers (discard)
 * are never timed, and bytes written with nothing read before them (a
 * greeting) are not an answer.
 *
 * Bucket i counts latencies above bound i-1 and at most bound i (not
 * cumulative); the last bound is UINT64_MAX (+Inf).
 */
#define TK_LATENCY_BUCKETS 18

struct tk_server_latency {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t buckets[TK_LATENCY_BUCKETS];
};

/* Bucket i's upper bound in nanoseconds (UINT64_MAX for the last and past
 * it). */
uint64_t tk_latency_bound_ns(unsigned i);
/*
 * Worker k's histogram; k == TK_ALL_WORKERS: every worker's summed.  0,
 * or -EINVAL when there is no worker k (*out zeroed).
 */
#define TK_ALL_WORKERS (~0u)
int tk_server_get_latency(const struct tk_server *s, unsigned k,
			  struct tk_server_latency *out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_METRICS_H */
