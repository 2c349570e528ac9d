/* test_conn_write.c: writing: short reads and writes (the short transport),
 * writev, room and limits, the drain low-water mark, abortive close. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn_rec.h"
#include "helpers.h"
#include "internal.h"
#include "short_tp.h"

/*
 * One timeout for every test: Criterion 2.4 leaks in its runner when tests
 * running in parallel have different timeouts.
 */
TestSuite(conn, .timeout = 30);

/* Opts for the short transport's tests: a small kernel buffer fills soon. */
static void
short_opts(struct tk_conn_opts *o, size_t max_pending, size_t max_output)
{
	tk_conn_opts_init(o);
	o->max_pending = max_pending;
	o->max_output = max_output;
	o->sndbuf = 4096;
	o->no_delay = false; /* a socketpair has no TCP_NODELAY */
}

/* Every byte echoed, in order, through reads and writes of 7 bytes. */
Test(conn, short_io_echo_keeps_every_byte)
{
	enum { TOTAL = 100000 };
	struct tk_conn_opts o;
	struct spair x;
	char *buf = malloc(TOTAL);

	cr_assert_not_null(buf);
	short_opts(&o, 4096, 0);
	spair_open(&x, 7, 5, &o, &tk_service_echo);
	t_fill(buf, TOTAL, 0, 3);
	peer_send(&x.p, buf, TOTAL);
	peer_shutdown(&x.p);
	RUN_UNTIL(x.loop, 20000, x.p.eof);
	cr_assert_eq(x.p.in_len, TOTAL);
	cr_assert_eq(t_check(x.p.in, TOTAL, 0, 3), TOTAL, "stream corrupt");
	cr_assert_leq(x.st.biggest_read, 7);
	cr_assert_leq(x.st.biggest_write, 7);
	cr_assert_geq(x.st.writes, TOTAL / 7);
	/* The peer's FIN was in: our FIN ends it, no linger. */
	RUN_UNTIL(x.loop, 3000, x.st.closed);
	free(buf);
	spair_close(&x);
}

static void
echo_back(struct rec *r, const char *d, ssize_t n)
{
	size_t *most = r->user;

	if (n <= 0)
		return;
	cr_assert_eq(tk_conn_write(r->c, d, (size_t)n), 0);
	if (tk_conn_pending(r->c) > *most)
		*most = tk_conn_pending(r->c);
}

/*
 * A peer that sends and does not read: reading stops with output at
 * max_pending, never above; once it reads, everything arrives.
 */
Test(conn, short_io_backpressure_pauses_reading_then_delivers_all)
{
	enum { TOTAL = 65536 };
	struct tk_conn_opts o;
	struct spair x;
	size_t most = 0, seen;
	char *buf = malloc(TOTAL);

	cr_assert_not_null(buf);
	short_opts(&o, 2048, 0);
	spair_open(&x, 7, 0, &o, NULL);
	x.r.on_data = echo_back;
	x.r.user = &most;
	peer_set_reading(&x.p, false);
	t_fill(buf, TOTAL, 0, 5);
	peer_send(&x.p, buf, TOTAL);
	RUN_UNTIL(x.loop, 10000, tk_conn_pending(x.c) == 2048);
	seen = x.r.in_len;
	cr_assert_lt(seen, TOTAL);
	t_run_for(x.loop, 100);
	cr_assert_eq(x.r.in_len, seen, "read on above max_pending");
	peer_set_reading(&x.p, true);
	RUN_UNTIL(x.loop, 20000, x.p.in_len == TOTAL);
	cr_assert_eq(t_check(x.p.in, TOTAL, 0, 5), TOTAL, "stream corrupt");
	cr_assert_leq(most, 2048);
	cr_assert_leq(x.st.biggest_write, 7);
	free(buf);
	spair_close(&x);
}

static void
reply_at_eof(struct rec *r, const char *d, ssize_t n)
{
	char msg[64];
	int len;

	(void)d;
	if (n != TK_EOF)
		return;
	len = snprintf(msg, sizeof(msg), "got %zu bytes, bye\n", r->in_len);
	cr_assert_eq(tk_conn_write(r->c, msg, (size_t)len), 0);
	tk_conn_end(r->c);
}

/* Half-closed by the peer, we still answer, 3 bytes at a time. */
Test(conn, short_io_half_close_then_reply)
{
	struct spair x;

	spair_open(&x, 3, 4, NULL, NULL);
	x.r.on_data = reply_at_eof;
	peer_send_str(&x.p, "hello, short world");
	peer_shutdown(&x.p);
	RUN_UNTIL(x.loop, 5000, x.r.closes == 1 && x.p.eof);
	cr_assert(rec_got(&x.r, "hello, short world"));
	cr_assert(peer_got(&x.p, "got 18 bytes, bye\n"), "peer got %.*s",
		  (int)x.p.in_len, x.p.in);
	cr_assert_eq(x.r.close_err, 0);
	cr_assert_str_eq(x.r.log, "odec");
	cr_assert_leq(x.st.biggest_write, 3);
	cr_assert_geq(x.st.writes, 6);
	spair_close(&x);
}

/*
 * tk_conn_writev() queues all of its buffers or none: a total past
 * max_output sends not even the parts that would fit.
 */
Test(conn, writev_is_all_or_nothing)
{
	struct tk_conn_opts o;
	struct spair x;
	static char part[3000];
	struct iovec ok[] = {
		{ .iov_base = "head:", .iov_len = 5 },
		{ .iov_base = NULL, .iov_len = 0 },
		{ .iov_base = "body", .iov_len = 4 },
		{ .iov_base = "\n", .iov_len = 1 },
	};
	struct iovec big[] = {
		{ .iov_base = part, .iov_len = sizeof(part) },
		{ .iov_base = part, .iov_len = sizeof(part) },
	};

	memset(part, 'p', sizeof(part));
	short_opts(&o, 1024, 4096);
	spair_open(&x, 5, 0, &o, NULL);
	cr_assert_eq(tk_conn_max_pending(x.c), 1024);
	cr_assert_eq(tk_conn_max_output(x.c), 4096);
	cr_assert_eq(tk_conn_room(x.c), 4096);
	cr_assert_eq(tk_conn_writev(x.c, ok, 4), 0);
	cr_assert_eq(tk_conn_room(x.c), 4096 - tk_conn_pending(x.c));
	RUN_UNTIL(x.loop, 3000, x.p.in_len == 10);
	cr_assert(peer_got(&x.p, "head:body\n"));
	cr_assert_eq(tk_conn_writev(x.c, ok, -1), -EINVAL);
	cr_assert(tk_conn_is_open(x.c));

	/* 6000 bytes against 4096 of room: nothing goes, c is reset. */
	cr_assert_eq(tk_conn_writev(x.c, big, 2), -ENOBUFS);
	cr_assert(!tk_conn_is_open(x.c));
	cr_assert_eq(tk_conn_room(x.c), 0);
	RUN_UNTIL(x.loop, 3000, x.r.closes == 1 && (x.p.eof || x.p.err));
	cr_assert_eq(x.r.close_err, -ENOBUFS);
	cr_assert(peer_got(&x.p, "head:body\n"), "part of a refused writev "
						 "was sent");
	spair_close(&x);
}

/* The limits' getters follow the reserve; room follows what is pending. */
Test(conn, room_and_limits)
{
	struct tk_conn_opts o;
	struct spair x;

	short_opts(&o, 1000, 500); /* max_output raised to max_pending */
	spair_open(&x, 64, 0, &o, NULL);
	cr_assert_eq(tk_conn_max_output(x.c), 1000);
	tk_conn_reserve_output(x.c, 24);
	cr_assert_eq(tk_conn_max_pending(x.c), 1000);
	cr_assert_eq(tk_conn_max_output(x.c), 1024);
	cr_assert_eq(tk_conn_room(x.c), 1024);
	tk_conn_shutdown(x.c);
	cr_assert_eq(tk_conn_room(x.c), 0, "room after shutdown");
	spair_close(&x);
}

/*
 * With drain_lowat, drain fires as pending output falls to the mark (not
 * at zero), once per crossing.  Writes of 7 bytes make the fall slow
 * enough to see where it fired.
 */
Test(conn, drain_fires_at_the_low_water_mark)
{
	enum { TOTAL = 20000 };
	struct tk_conn_opts o;
	struct spair x;
	char *buf = malloc(TOTAL);

	cr_assert_not_null(buf);
	short_opts(&o, 64u * 1024, 1u << 20);
	o.drain_lowat = 1000;
	spair_open(&x, 7, 3, &o, NULL);
	peer_set_reading(&x.p, false);
	t_fill(buf, TOTAL, 0, 7);
	cr_assert_eq(tk_conn_write(x.c, buf, TOTAL), 0);
	cr_assert_gt(tk_conn_pending(x.c), 1000);
	peer_set_reading(&x.p, true);
	RUN_UNTIL(x.loop, 20000, x.r.drains == 1);
	cr_assert_leq(x.r.pending_at_drain, 1000);
	cr_assert_gt(x.r.pending_at_drain, 0, "drain waited for empty");
	RUN_UNTIL(x.loop, 20000, x.p.in_len == TOTAL);
	cr_assert_eq(t_check(x.p.in, TOTAL, 0, 7), TOTAL, "stream corrupt");
	cr_assert_eq(x.r.drains, 1, "drain more than once per crossing");
	free(buf);
	spair_close(&x);
}

/* tk_conn_abort(): the peer sees a reset, the close callback the code. */
Test(conn, abort_sends_a_reset)
{
	struct pair x;

	pair_open(&x, NULL, 0);
	cr_assert_eq(tk_conn_write(x.c, "doomed", 6), 0);
	RUN_UNTIL(x.loop, 3000, x.p.in_len == 6);
	tk_conn_abort(x.c, -ECANCELED);
	cr_assert(!tk_conn_is_open(x.c));
	RUN_UNTIL(x.loop, 3000, x.r.closes == 1);
	cr_assert_eq(x.r.close_err, -ECANCELED);
	RUN_UNTIL(x.loop, 5000, !x.p.watched || x.p.err != 0);
	peer_read(&x.p);
	cr_assert_eq(x.p.err, -ECONNRESET, "a FIN, not a reset");
	pair_close(&x);
}
