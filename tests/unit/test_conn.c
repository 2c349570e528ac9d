/* test_conn.c: a client connection's life once open: idle timeouts,
 * half-close, end and linger, backpressure, pause, resets, callbacks. */
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

Test(conn, idle_timeout_closes)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr sa;
	struct tk_server *s =
		t_server(loop, "127.0.0.1", NULL, &tk_service_echo, NULL, &sa);
	struct tk_conn_opts o;
	struct rec r = { 0 };
	char where[TK_ADDRSTRLEN], want[256];

	tk_conn_opts_init(&o);
	o.idle_timeout_ms = 100;
	rec_connect(loop, &sa, 1, &o, &r);
	RUN_UNTIL(loop, 3000, r.closes == 1);
	cr_assert_eq(r.opens, 1);
	cr_assert_eq(r.close_err, TK_EIDLE, "close(%s)",
		     tk_err_name(r.close_err));
	cr_assert_geq(r.t_close - r.t_open, 95);
	cr_assert_lt(r.t_close - r.t_open, 2000);
	snprintf(want, sizeof(want), "%s: %s", t_fmt(&sa, where),
		 tk_strerror(TK_EIDLE));
	cr_assert_str_eq(r.last_error, want);
	tk_server_free(s);
	tk_loop_free(loop);
}

/* Traffic postpones the idle timeout: it counts from the last byte. */
struct pinger {
	struct rec *r;
	int sent;
};

static void
ping(struct tk_timer *t, void *arg)
{
	struct pinger *pg = arg;

	if (pg->r->c == NULL)
		return;
	cr_assert_eq(tk_conn_write(pg->r->c, "p", 1), 0);
	if (++pg->sent == 4)
		tk_timer_stop(t);
}

Test(conn, idle_timeout_counts_from_last_activity)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr sa;
	struct tk_server *s =
		t_server(loop, "127.0.0.1", NULL, &tk_service_echo, NULL, &sa);
	struct tk_conn_opts o;
	struct rec r = { 0 };
	struct pinger pg = { .r = &r };
	struct tk_timer *t = t_timer_new(loop, ping, &pg);

	tk_conn_opts_init(&o);
	o.idle_timeout_ms = 150;
	rec_connect(loop, &sa, 1, &o, &r);
	RUN_UNTIL(loop, 3000, r.opens == 1);
	tk_timer_start(t, 60, 60);
	RUN_UNTIL(loop, 5000, r.closes == 1);
	cr_assert_eq(r.close_err, TK_EIDLE);
	cr_assert_eq(r.in_len, 4, "four pings echoed before the timeout");
	/* Pinged for ~240 ms; then 150 ms of silence. */
	cr_assert_geq(r.t_close - r.t_open, 380);
	cr_assert_geq(r.t_close - r.t_data, 140);
	tk_timer_free(t);
	tk_server_free(s);
	rec_free(&r);
	tk_loop_free(loop);
}

Test(conn, set_idle_timeout_on_open_conn)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr sa;
	struct tk_server *s =
		t_server(loop, "127.0.0.1", NULL, &tk_service_echo, NULL, &sa);
	struct tk_conn_opts o;
	struct rec r1 = { 0 }, r2 = { 0 };
	struct tk_conn *c1, *c2;

	tk_conn_opts_init(&o);
	c1 = rec_connect(loop, &sa, 1, &o, &r1); /* no idle timeout */
	o.idle_timeout_ms = 200;
	c2 = rec_connect(loop, &sa, 1, &o, &r2);
	RUN_UNTIL(loop, 3000, r1.opens == 1 && r2.opens == 1);
	tk_conn_set_idle_timeout(c1, 60); /* switch on */
	tk_conn_set_idle_timeout(c2, 0);  /* switch off */
	RUN_UNTIL(loop, 3000, r1.closes == 1);
	cr_assert_eq(r1.close_err, TK_EIDLE);
	t_run_for(loop, 300);
	cr_assert_eq(r2.closes, 0, "idle timeout still on after setting 0");
	tk_conn_close(c2, 0);
	RUN_UNTIL(loop, 1000, r2.closes == 1);
	tk_server_free(s);
	tk_loop_free(loop);
}

Test(conn, peer_half_close_then_we_still_write)
{
	struct pair x;

	pair_open(&x, NULL, 0);
	peer_send_str(&x.p, "bye");
	peer_shutdown(&x.p);
	RUN_UNTIL(x.loop, 3000, x.r.eofs == 1);
	cr_assert(rec_got(&x.r, "bye"));
	cr_assert_str_eq(x.r.log, "ode");
	cr_assert(tk_conn_is_open(x.c), "EOF closed the connection");
	cr_assert_eq(tk_conn_write(x.c, "still here", 10), 0);
	RUN_UNTIL(x.loop, 3000, x.p.in_len == 10);
	cr_assert(peer_got(&x.p, "still here"));
	cr_assert(!x.p.eof);
	t_run_for(x.loop, 30);
	cr_assert_eq(x.r.eofs, 1, "EOF delivered more than once");
	/* Our FIN now ends it: both directions are done. */
	tk_conn_end(x.c);
	RUN_UNTIL(x.loop, 3000, x.r.closes == 1 && x.p.eof);
	cr_assert_eq(x.r.close_err, 0);
	cr_assert_str_eq(x.r.log, "odec");
	T_ASSERT_FREED(x.r.gone);
	pair_close(&x);
}

Test(conn, shutdown_sends_fin_and_reading_goes_on)
{
	struct pair x;

	pair_open(&x, NULL, 0);
	cr_assert_eq(tk_conn_write(x.c, "abc", 3), 0);
	tk_conn_shutdown(x.c);
	tk_conn_shutdown(x.c); /* twice: harmless */
	cr_assert_eq(tk_conn_write(x.c, "d", 1), -EPIPE);
	RUN_UNTIL(x.loop, 3000, x.p.eof);
	cr_assert(peer_got(&x.p, "abc"));
	cr_assert(tk_conn_is_open(x.c));
	peer_send_str(&x.p, "more");
	RUN_UNTIL(x.loop, 3000, x.r.in_len == 4);
	cr_assert(rec_got(&x.r, "more"));
	cr_assert_eq(x.r.closes, 0);
	/* The peer's FIN completes the close, with no error. */
	peer_shutdown(&x.p);
	RUN_UNTIL(x.loop, 3000, x.r.closes == 1);
	cr_assert_eq(x.r.close_err, 0);
	cr_assert_str_eq(x.r.log, "odec");
	pair_close(&x);
}

/* Write chunks until the kernel is full and pending passes `above`. */
static size_t
fill_output(struct tk_conn *c, size_t above, unsigned seed)
{
	char chunk[16384];
	size_t total = 0;

	while (tk_conn_pending(c) <= above) {
		t_fill(chunk, sizeof(chunk), total, seed);
		cr_assert_eq(tk_conn_write(c, chunk, sizeof(chunk)), 0,
			     "write failed at %zu", total);
		total += sizeof(chunk);
		cr_assert_lt(total, 64u << 20, "the kernel never pushed back");
	}
	return total;
}

Test(conn, end_flushes_then_fin_then_close)
{
	struct pair x;
	size_t total;

	pair_open(&x, NULL, 4096);
	peer_set_reading(&x.p, false);
	total = fill_output(x.c, 100000, 7);
	cr_assert_gt(tk_conn_pending(x.c), 100000);
	/* Input while ending is read and dropped. */
	peer_send_str(&x.p, "ignored");
	tk_conn_end(x.c);
	tk_conn_end(x.c); /* twice: harmless */
	cr_assert(tk_conn_is_open(x.c), "end closed with output pending");
	cr_assert_eq(tk_conn_write(x.c, "late", 4), -EPIPE);
	t_run_for(x.loop, 30);
	cr_assert_eq(x.r.closes, 0);
	/* The peer reads: everything, then EOF. */
	peer_set_reading(&x.p, true);
	RUN_UNTIL(x.loop, 10000, x.p.eof);
	cr_assert_eq(x.p.in_len, total);
	cr_assert_eq(t_check(x.p.in, total, 0, 7), total, "stream corrupt");
	/* Still waiting for the peer's FIN (linger is 2 s). */
	cr_assert_eq(x.r.closes, 0);
	peer_shutdown(&x.p);
	RUN_UNTIL(x.loop, 3000, x.r.closes == 1);
	cr_assert_eq(x.r.close_err, 0);
	cr_assert_eq(x.r.datas, 0, "data delivered while ending");
	cr_assert_eq(x.r.eofs, 0, "EOF delivered while ending");
	T_ASSERT_FREED(x.r.gone);
	pair_close(&x);
}

Test(conn, end_lingers_for_peer_fin_then_closes)
{
	struct tk_conn_opts o;
	struct pair x;
	uint64_t t0;

	tk_conn_opts_init(&o);
	o.linger_ms = 120;
	pair_open(&x, &o, 0);
	cr_assert_eq(tk_conn_write(x.c, "last words", 10), 0);
	tk_loop_update_time(x.loop);
	t0 = t_now_ms();
	tk_conn_end(x.c);
	RUN_UNTIL(x.loop, 3000, x.p.eof);
	cr_assert(peer_got(&x.p, "last words"));
	/* The peer never closes: the linger runs out, still close(0). */
	RUN_UNTIL(x.loop, 3000, x.r.closes == 1);
	cr_assert_eq(x.r.close_err, 0);
	cr_assert_geq(x.r.t_close - t0, 120);
	pair_close(&x);
}

/*
 * A transport whose FIN never gets out: its shutdown meets a full socket
 * every time, as a TLS close_notify does while the peer reads nothing.
 */
static ssize_t
stuck_read(struct tk_conn *c, void *buf, size_t len)
{
	ssize_t n = recv(tk_conn_fd(c), buf, len, 0);

	return n < 0 ? -errno : n;
}

static ssize_t
stuck_write(struct tk_conn *c, const void *buf, size_t len)
{
	ssize_t n = send(tk_conn_fd(c), buf, len, MSG_NOSIGNAL);

	return n < 0 ? -errno : n;
}

static int
stuck_shutdown(struct tk_conn *c)
{
	(void)c;
	return -EAGAIN;
}

static const struct tk__transport stuck_fin = {
	.read = stuck_read,
	.write = stuck_write,
	.shutdown = stuck_shutdown,
};

/* Ending waits for the transport's FIN no longer than the linger. */
Test(conn, end_waits_for_a_stuck_fin_no_longer_than_linger)
{
	struct tk_conn_opts o;
	struct pair x;
	uint64_t t0;

	tk_conn_opts_init(&o);
	o.linger_ms = 120;
	pair_open(&x, &o, 0);
	tk__conn_set_transport(x.c, &stuck_fin, NULL);
	tk_loop_update_time(x.loop);
	t0 = t_now_ms();
	tk_conn_end(x.c);
	cr_assert(tk_conn_is_open(x.c));
	RUN_UNTIL(x.loop, 3000, x.r.closes == 1);
	cr_assert_eq(x.r.close_err, 0);
	cr_assert_geq(x.r.t_close - t0, 120);
	pair_close(&x);
}

static void
check_drain(struct rec *r, const char *d, ssize_t n)
{
	(void)d;
	(void)n;
	/* Reading resumed only once output fell well below the cap. */
	cr_assert_leq(tk_conn_pending(r->c), 64u * 1024 / 2);
}

Test(conn, backpressure_pauses_reading_until_drained)
{
	struct tk_conn_opts o;
	struct pair x;
	size_t total, before;
	char chunk[65536];
	int err;

	tk_conn_opts_init(&o);
	o.max_pending = 64u * 1024;
	o.max_output = 1u << 20;
	pair_open(&x, &o, 4096);
	x.r.on_data = check_drain;
	peer_set_reading(&x.p, false);
	total = fill_output(x.c, o.max_pending, 9);

	/* Above max_pending: what the peer sends is not delivered. */
	peer_send_str(&x.p, "are you listening?");
	t_run_for(x.loop, 150);
	cr_assert_eq(x.r.datas, 0, "data delivered above max_pending");
	cr_assert_eq(x.r.drains, 0);

	/* Up to max_output, exactly: every write is taken. */
	while ((before = tk_conn_pending(x.c)) < o.max_output) {
		size_t room = o.max_output - before;
		size_t n = room < sizeof(chunk) ? room : sizeof(chunk);

		t_fill(chunk, n, total, 9);
		err = tk_conn_write(x.c, chunk, n);
		cr_assert_eq(err, 0);
		total += n;
	}
	cr_assert_eq(tk_conn_pending(x.c), o.max_output);
	cr_assert(tk_conn_is_open(x.c));

	/* The peer reads: output drains, reading resumes, drain fires. */
	peer_set_reading(&x.p, true);
	RUN_UNTIL(x.loop, 10000, x.r.drains >= 1 && x.r.in_len == 18);
	cr_assert(rec_got(&x.r, "are you listening?"));
	cr_assert_eq(x.r.pending_at_drain, 0);
	cr_assert_eq(tk_conn_pending(x.c), 0);
	RUN_UNTIL(x.loop, 10000, x.p.in_len == total);
	cr_assert_eq(t_check(x.p.in, total, 0, 9), total, "stream corrupt");
	cr_assert_eq(tk_conn_bytes_out(x.c), total);
	pair_close(&x);
}

/*
 * Output past max_output is never dropped in silence: the write fails with
 * -ENOBUFS, the connection closes with it, and the peer sees a reset (not
 * a clean FIN after a gap in the stream).
 */
Test(conn, write_past_max_output_resets_the_connection)
{
	struct tk_conn_opts o;
	struct pair x;
	char chunk[65536];
	int err = 0;

	tk_conn_opts_init(&o);
	o.max_pending = 64u * 1024;
	o.max_output = 256u * 1024;
	pair_open(&x, &o, 4096);
	peer_set_reading(&x.p, false);
	for (int i = 0; i < 64 && err == 0; i++) {
		memset(chunk, 'a' + i % 26, sizeof(chunk));
		err = tk_conn_write(x.c, chunk, sizeof(chunk));
	}
	cr_assert_eq(err, -ENOBUFS);
	cr_assert(!tk_conn_is_open(x.c), "the connection is still open");
	RUN_UNTIL(x.loop, 5000, x.r.closes == 1);
	cr_assert_eq(x.r.close_err, -ENOBUFS);
	/*
	 * The reset is in (the peer saw its hangup): reading finds the
	 * error, never an EOF that would pass for a clean end.
	 */
	RUN_UNTIL(x.loop, 5000, !x.p.watched);
	peer_read(&x.p);
	cr_assert_eq(x.p.err, -ECONNRESET, "a clean end after lost output");
	pair_close(&x);
}

/* A service's reserve raises max_output above max_pending by as much. */
Test(conn, reserve_output_keeps_room_above_max_pending)
{
	struct tk_conn_opts o;
	struct pair x;
	char *big = malloc(200000);

	cr_assert_not_null(big);
	tk_conn_opts_init(&o);
	o.max_pending = 100000;
	o.max_output = 100000; /* raised to max_pending + the reserve */
	pair_open(&x, &o, 4096);
	cr_assert_eq(tk_conn_write(x.c, big, 100001), -ENOBUFS);
	pair_close(&x);
	pair_open(&x, &o, 4096);
	tk_conn_reserve_output(x.c, 100000);
	peer_set_reading(&x.p, false);
	memset(big, 'z', 200000);
	cr_assert_eq(tk_conn_write(x.c, big, 200000), 0);
	cr_assert(tk_conn_is_open(x.c));
	peer_set_reading(&x.p, true);
	RUN_UNTIL(x.loop, 10000, x.p.in_len == 200000);
	free(big);
	pair_close(&x);
}

static void
max_chunk(struct rec *r, const char *d, ssize_t n)
{
	size_t *max = r->user;

	(void)d;
	if (n > 0 && (size_t)n > *max)
		*max = (size_t)n;
}

Test(conn, read_size_bounds_each_delivery)
{
	struct tk_conn_opts o;
	struct pair x;
	size_t max = 0;
	char data[1000];

	tk_conn_opts_init(&o);
	o.read_size = 7;
	pair_open(&x, &o, 0);
	x.r.on_data = max_chunk;
	x.r.user = &max;
	t_fill(data, sizeof(data), 0, 21);
	peer_send(&x.p, data, sizeof(data));
	RUN_UNTIL(x.loop, 3000, x.r.in_len == sizeof(data));
	cr_assert_eq(t_check(x.r.in, sizeof(data), 0, 21), sizeof(data));
	cr_assert_eq(max, 7, "largest delivery %zu bytes", max);
	cr_assert_eq(tk_conn_bytes_in(x.c), sizeof(data));
	pair_close(&x);
}

Test(conn, pause_and_resume)
{
	struct pair x;

	pair_open(&x, NULL, 0);
	tk_conn_pause(x.c);
	peer_send_str(&x.p, "held");
	t_run_for(x.loop, 60);
	cr_assert_eq(x.r.datas, 0, "data delivered while paused");
	tk_conn_resume(x.c);
	RUN_UNTIL(x.loop, 3000, x.r.in_len == 4);
	cr_assert(rec_got(&x.r, "held"));
	pair_close(&x);
}

/*
 * Paused, our FIN sent, then the peer's last bytes and FIN: the socket
 * hangs up (both directions shut) with data still unread.  Nothing may be
 * lost: resume delivers the data, then EOF, then an orderly close.
 */
Test(conn, pause_keeps_data_across_both_fins)
{
	struct pair x;

	pair_open(&x, NULL, 0);
	tk_conn_pause(x.c);
	tk_conn_shutdown(x.c);
	RUN_UNTIL(x.loop, 3000, x.p.eof);
	peer_send_str(&x.p, "unread");
	peer_shutdown(&x.p);
	t_run_for(x.loop, 100);
	cr_assert_eq(x.r.closes, 0, "closed (%s) while paused: data lost",
		     tk_err_name(x.r.close_err));
	cr_assert_eq(x.r.datas, 0);
	tk_conn_resume(x.c);
	RUN_UNTIL(x.loop, 3000, x.r.closes == 1);
	cr_assert(rec_got(&x.r, "unread"));
	cr_assert_str_eq(x.r.log, "odec");
	cr_assert_eq(x.r.close_err, 0);
	pair_close(&x);
}

/* Paused (nothing polled but hang-ups), a reset still closes at once. */
Test(conn, paused_conn_sees_reset)
{
	struct pair x;

	pair_open(&x, NULL, 0);
	tk_conn_pause(x.c);
	peer_reset(&x.p);
	RUN_UNTIL(x.loop, 3000, x.r.closes == 1);
	cr_assert_eq(x.r.close_err, -ECONNRESET, "close(%s)",
		     tk_err_name(x.r.close_err));
	pair_close(&x);
}

Test(conn, peer_reset_closes_with_econnreset)
{
	struct pair x;

	pair_open(&x, NULL, 0);
	peer_reset(&x.p);
	RUN_UNTIL(x.loop, 3000, x.r.closes == 1);
	cr_assert_eq(x.r.close_err, -ECONNRESET, "close(%s)",
		     tk_err_name(x.r.close_err));
	cr_assert_eq(x.r.opens, 1);
	cr_assert_neq(x.r.last_error[0], '\0');
	pair_close(&x);
}

/* Close from inside a data callback, then misuse it a little. */
static void
close_in_data(struct rec *r, const char *d, ssize_t n)
{
	struct tk_conn *c = r->c;

	(void)d;
	(void)n;
	tk_conn_close(c, -ECANCELED);
	cr_assert_eq(r->closes, 0, "close callback ran inside tk_conn_close");
	tk_conn_close(c, -EIO); /* the first reason stands */
	tk_conn_end(c);
	tk_conn_shutdown(c);
	tk_conn_pause(c);
	tk_conn_resume(c);
	cr_assert_eq(tk_conn_write(c, "x", 1), -EPIPE);
}

static void
close_again(struct rec *r)
{
	tk_conn_close(r->c, -EIO);
	cr_assert_eq(tk_conn_write(r->c, "x", 1), -EPIPE);
}

Test(conn, close_callback_once_then_freed)
{
	struct pair x;

	pair_open(&x, NULL, 0);
	x.r.on_data = close_in_data;
	x.r.on_close = close_again;
	peer_send_str(&x.p, "first");
	peer_send_str(&x.p, "second");
	RUN_UNTIL(x.loop, 3000, x.r.closes == 1);
	cr_assert(!x.r.close_inside_callback);
	cr_assert_eq(x.r.close_err, -ECANCELED);
	cr_assert_eq(x.r.datas, 1, "data delivered after close");
	t_run_for(x.loop, 30);
	cr_assert_eq(x.r.closes, 1);
	T_ASSERT_FREED(x.r.gone);
	/* The peer sees the connection go. */
	RUN_UNTIL(x.loop, 3000, x.p.eof || x.p.err != 0);
	pair_close(&x);
}

Test(conn, open_error_closes_with_it)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr sa;
	struct tk_server *s =
		t_server(loop, "127.0.0.1", NULL, &tk_service_echo, NULL, &sa);
	struct rec r = { .open_ret = TK_EPROTO };

	rec_connect(loop, &sa, 1, NULL, &r);
	RUN_UNTIL(loop, 3000, r.closes == 1);
	cr_assert_eq(r.opens, 1);
	cr_assert_eq(r.close_err, TK_EPROTO);
	cr_assert_str_eq(r.log, "oc");
	T_ASSERT_FREED(r.gone);
	tk_server_free(s);
	tk_loop_free(loop);
}

static void
write_in_open(struct rec *r)
{
	/* Writes from open go out (the greeting pattern). */
	cr_assert_eq(tk_conn_write(r->c, "hi", 2), 0);
}

Test(conn, write_from_open_callback)
{
	struct pair x;

	memset(&x, 0, sizeof(x));
	x.loop = t_loop_new();
	x.lfd = t_raw_listen("127.0.0.1", 8, &x.addr);
	x.r.on_open = write_in_open;
	x.c = rec_connect(x.loop, &x.addr, 1, NULL, &x.r);
	RUN_UNTIL(x.loop, 3000, x.r.opens == 1);
	peer_accept(&x.p, x.loop, x.lfd);
	RUN_UNTIL(x.loop, 3000, x.p.in_len == 2);
	cr_assert(peer_got(&x.p, "hi"));
	pair_close(&x);
}
