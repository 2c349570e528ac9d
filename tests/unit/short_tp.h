/* short_tp.h: a test transport that cuts every read and write short. */
#ifndef TK_TEST_SHORT_TP_H
#define TK_TEST_SHORT_TP_H

#include <criterion/criterion.h>
#include <errno.h>
#include <sys/socket.h>

#include "helpers.h"
#include "internal.h"

/*
 * Moves at most max bytes per read or write, and fails one call in
 * eagain_every (0: none) with -EAGAIN though the socket is ready: the
 * partial-I/O paths of conn.c, driven from a unit test without the
 * LD_PRELOAD shim.  The socket underneath (one end of a socketpair) gives
 * readiness and the peer's end; the state belongs to the test.
 */
struct short_tp {
	size_t max;
	unsigned eagain_every;
	unsigned calls;
	size_t reads, writes; /* calls that moved bytes */
	size_t biggest_read, biggest_write;
	bool closed; /* the transport's close ran (c is being freed) */
};

static inline bool
short_tp_eagain(struct short_tp *st)
{
	return st->eagain_every != 0 && ++st->calls % st->eagain_every == 0;
}

static inline ssize_t
short_tp_read(struct tk_conn *c, void *buf, size_t len)
{
	struct short_tp *st = tk__conn_tp_state(c);
	ssize_t n;

	if (short_tp_eagain(st))
		return -EAGAIN;
	n = tk__plain_tcp.read(c, buf, len < st->max ? len : st->max);
	if (n > 0) {
		st->reads++;
		if ((size_t)n > st->biggest_read)
			st->biggest_read = (size_t)n;
	}
	return n;
}

static inline ssize_t
short_tp_write(struct tk_conn *c, const void *buf, size_t len)
{
	struct short_tp *st = tk__conn_tp_state(c);
	ssize_t n;

	if (short_tp_eagain(st))
		return -EAGAIN;
	n = tk__plain_tcp.write(c, buf, len < st->max ? len : st->max);
	if (n > 0) {
		st->writes++;
		if ((size_t)n > st->biggest_write)
			st->biggest_write = (size_t)n;
	}
	return n;
}

static inline void
short_tp_close(struct tk_conn *c)
{
	struct short_tp *st = tk__conn_tp_state(c);

	st->closed = true;
}

static inline int
short_tp_shutdown(struct tk_conn *c)
{
	return tk__plain_tcp.shutdown(c);
}

static const struct tk__transport short_tp_ops = {
	.read = short_tp_read,
	.write = short_tp_write,
	.shutdown = short_tp_shutdown,
	.close = short_tp_close,
};

/*
 * A connection with the short transport on one end of a fresh socketpair;
 * *peer gets the other end (non-blocking, the test's to close).
 */
static inline struct tk_conn *
short_tp_conn(struct tk_loop *loop, struct short_tp *st,
	      const struct tk_conn_opts *opts, const struct tk_service *svc,
	      void *arg, int *peer)
{
	int sv[2];
	struct tk_conn *c;

	cr_assert_eq(socketpair(AF_UNIX,
				SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
				sv),
		     0);
	c = tk__conn_adopt(loop, sv[0], &short_tp_ops, st, opts, svc, arg);
	cr_assert_not_null(c);
	*peer = sv[1];
	return c;
}

#endif
