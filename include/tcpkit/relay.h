/* tcpkit/relay.h: two open connections joined into a relay (tk_conn_pipe()). */
#ifndef TCPKIT_RELAY_H
#define TCPKIT_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

struct tk_conn;
struct tk_pipe;

/*
 * A relay between two open connections a and b: what one sends is written
 * to the other, both ways, until both directions are done.
 *
 * Backpressure: per direction, at most high_water bytes are in flight
 * (read from the source, not yet written to the kernel for the
 * destination); above it the source is not read until what waits falls to
 * low_water.  A slow reader on one side so pauses the other, and the
 * memory a relay holds is bounded: see tk_pipe_opts.
 *
 * Half-close: the EOF of one side becomes a FIN to the other once all its
 * bytes are written; the other direction goes on.  Both directions done:
 * both connections close (err 0).  An error on one side (a reset, an idle
 * timeout, a write that failed) ends the other with a reset: a peer never
 * sees a clean end of a stream that was cut.
 *
 * Zero copy: when both connections are plain TCP (no TLS) with nothing
 * pending, no tap is given and TK_PIPE_COPY is not set, bytes move with
 * splice(2) through one kernel pipe per direction (high_water bytes, the
 * pipe's size), never through user space.  Otherwise they go through the
 * connections' own buffers (a TLS side, a tap).  splice(2) into a socket
 * cannot be told MSG_NOSIGNAL, so a peer gone away would raise SIGPIPE:
 * the zero-copy path is taken only when the process ignores SIGPIPE
 * (signal(SIGPIPE, SIG_IGN), as the tcpkit program does); with SIGPIPE at
 * its default action the bytes are copied and such a write fails with
 * EPIPE, never killing the caller.
 *
 * Taking over: the pipe becomes both connections' service (their own
 * service's callbacks are not called again, their data is the caller's
 * still).  Both must be open (-ENOTCONN otherwise): a proxy whose target
 * connect is in progress pauses the client (tk_conn_pause()) in its open,
 * and pipes the two in the target's open; a client that goes meanwhile
 * closes the target in its close.
 */

enum tk_pipe_side {
	TK_PIPE_NONE = -1,
	TK_PIPE_A = 0,
	TK_PIPE_B = 1,
};

/* The end of a relay, for the done callback. */
struct tk_pipe_result {
	uint64_t a_to_b;	    /* bytes written to b (read from a) */
	uint64_t b_to_a;	    /* bytes written to a */
	uint64_t duration_ms;	    /* from tk_conn_pipe() to the end */
	enum tk_pipe_side first;    /* whose end (EOF or error) came first */
	int err;		    /* 0, or the first error */
	enum tk_pipe_side err_side; /* where err happened; NONE if 0 */
	bool spliced;		    /* bytes moved with splice(2) */
	/* tk_conn_last_error() of err_side's connection, or "". */
	const char *why;
};

#define TK_PIPE_COPY 0x1u /* never splice: through user space */

#define TK_PIPE_DEFAULT_HIGH_WATER (64u * 1024)

struct tk_pipe_opts {
	unsigned flags;
	/*
	 * Bytes in flight per direction above which the source's reading
	 * stops (0: TK_PIPE_DEFAULT_HIGH_WATER), and at or below which it
	 * starts again (0, or not below high_water: high_water / 4).  A
	 * direction holds at most high_water plus one read (64 KiB) in its
	 * destination's output buffer, or high_water in its kernel pipe.
	 * Copying, both connections' own limits (tk_conn_max_pending(),
	 * tk_conn_max_output()) are raised to hold that much, so that one
	 * direction's bytes never stop the other's reading.
	 */
	size_t high_water;
	size_t low_water;
	/*
	 * Optional: every chunk relayed, before it is written (dir TK_PIPE_A
	 * for bytes read from a), and the end of each direction (n == 0).
	 * Given, bytes move through user space (no splice).
	 */
	void (*tap)(struct tk_pipe *p, enum tk_pipe_side from, const char *data,
		    size_t n, void *arg);
	/*
	 * Optional: the relay is over, both connections closed (their close
	 * having run): once, on the connections' loop.  The pipe is freed
	 * when it returns.
	 */
	void (*done)(struct tk_pipe *p, const struct tk_pipe_result *r,
		     void *arg);
	void *arg;
};

void tk_pipe_opts_init(struct tk_pipe_opts *opts);

/*
 * Join a and b (open, on the same loop, distinct); a peer's EOF that a or
 * b read before is carried at once.  Returns 0 with *out set (out may be
 * NULL), or -EINVAL, -ENOTCONN (one is not open: it is left as it was),
 * -ENOMEM; on failure nothing is taken over.
 */
int tk_conn_pipe(struct tk_conn *a, struct tk_conn *b,
		 const struct tk_pipe_opts *opts, struct tk_pipe **out);
/* The connection on a side. */
struct tk_conn *tk_pipe_conn(const struct tk_pipe *p, enum tk_pipe_side side);
/* Whether the relay moves its bytes with splice(2). */
bool tk_pipe_spliced(const struct tk_pipe *p);
/* End both sides now: a reset to each, the done callback with err. */
void tk_pipe_abort(struct tk_pipe *p, int err);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_RELAY_H */
