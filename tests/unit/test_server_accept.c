/* test_server_accept.c: what accepted connections get: the server's
 * connection options, socket options, EMFILE back-off, release at open,
 * line framing. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "helpers.h"
#include "internal.h"
#include "server_rec.h"

/*
 * One timeout for every test: Criterion 2.4 leaks in its runner when tests
 * running in parallel have different timeouts.
 */
TestSuite(server, .timeout = 30);

Test(server, conn_options_apply_to_accepted_connections)
{
	struct tk_loop *loop = t_loop_new();
	struct slog l = { 0 };
	struct tk_addr a;
	struct tk_server_opts o;
	struct tk_server *s;
	struct peer p;
	uint64_t t0;

	tk_server_opts_init(&o);
	o.conn.idle_timeout_ms = 80;
	s = lserver(loop, &l, "127.0.0.1", &o, &a);
	tk_loop_update_time(loop);
	t0 = t_now_ms();
	peer_connect(&p, loop, &a);
	RUN_UNTIL(loop, 3000, p.eof || p.err != 0);
	cr_assert_geq(t_now_ms() - t0, 80);
	RUN_UNTIL(loop, 3000, l.ncloses == 1);
	cr_assert_eq(l.close_err[0], TK_EIDLE);
	cr_assert_eq(stats(s).conn_errors, 1);
	peer_free(&p);
	tk_server_free(s);
	tk_loop_free(loop);
}

/*
 * The connection options a server sets once on its listeners reach every
 * accepted socket (Linux copies them at accept): TCP_NODELAY, and the
 * kernel's bound on unsent bytes at max_pending; an explicit sndbuf
 * replaces that bound by a fixed send buffer.
 */
Test(server, accepted_sockets_inherit_nodelay_and_unsent_bound)
{
	for (int fixed = 0; fixed < 2; fixed++) {
		struct tk_loop *loop = t_loop_new();
		struct slog l = { 0 };
		struct tk_addr a;
		struct tk_server_opts o;
		struct tk_server *s;
		struct peer p;
		int fd;

		tk_server_opts_init(&o);
		o.conn.max_pending = 12288;
		if (fixed)
			o.conn.sndbuf = 16384;
		s = lserver(loop, &l, "127.0.0.1", &o, &a);
		peer_connect(&p, loop, &a);
		RUN_UNTIL(loop, 3000, l.nopened == 1);
		fd = tk_conn_fd(l.opened[0]);
		cr_expect_eq(t_sockopt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
		if (fixed) {
			/* Linux doubles the value for its bookkeeping. */
			cr_expect_eq(t_sockopt(fd, SOL_SOCKET, SO_SNDBUF),
				     2 * 16384);
			cr_expect_neq(
				t_sockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT),
				12288);
		} else {
			cr_expect_eq(
				t_sockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT),
				12288);
		}
		peer_free(&p);
		tk_server_free(s);
		tk_loop_free(loop);
	}
}

/* Highest open descriptor of this process. */
static int
max_open_fd(void)
{
	int max = -1;

	for (int fd = 0; fd < 65536; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			max = fd;
	return max;
}

/*
 * Out of descriptors, accept fails with EMFILE while the client waits in
 * the kernel's queue.  The listener stays readable, so a server that kept
 * polling it would spin: it must pause, then serve the client once
 * descriptors are free again.  Criterion runs each test in its own
 * process, so the lowered limit stays here.
 */
Test(server, emfile_pauses_accepting_then_recovers)
{
	struct tk_loop *loop = t_loop_new();
	struct slog l = { 0 };
	struct tk_addr a;
	struct tk_server *s = lserver(loop, &l, "127.0.0.1", NULL, &a);
	struct rlimit old, low;
	static int fill[65536];
	int nfill = 0, fd, rounds = 0;
	struct peer p;
	uint64_t end, now;

	peer_connect(&p, loop, &a); /* queued in the kernel, not accepted */

	/* Lower the limit to what is open now, then fill every hole. */
	cr_assert(getrlimit(RLIMIT_NOFILE, &old) == 0);
	low = old;
	low.rlim_cur = (rlim_t)max_open_fd() + 1;
	cr_assert(setrlimit(RLIMIT_NOFILE, &low) == 0);
	while ((fd = dup(0)) >= 0)
		fill[nfill++] = fd;
	cr_assert_eq(errno, EMFILE);

	RUN_UNTIL(loop, 3000, l.nerrors >= 1);
	cr_assert_eq(l.errors[0], -EMFILE, "error event %s",
		     tk_err_name(l.errors[0]));
	cr_assert_eq(l.nopened, 0);

	/* Paused: the loop sleeps instead of spinning on the listener. */
	end = t_now_ms() + 300;
	while ((now = t_now_ms()) < end) {
		cr_assert_eq(tk_loop_run_once(loop, (int)(end - now)), 0);
		rounds++;
	}
	cr_assert_leq(rounds, 5, "%d loop rounds in 300 ms: spinning", rounds);
	cr_assert_leq(l.nerrors, 2);
	cr_assert_eq(stats(s).accept_errors, (uint64_t)l.nerrors);

	/* Descriptors come back: the waiting client is served. */
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	cr_assert(setrlimit(RLIMIT_NOFILE, &old) == 0);
	RUN_UNTIL(loop, 5000, l.nopened == 1);
	peer_send_str(&p, "served");
	RUN_UNTIL(loop, 3000, p.in_len == 6);
	cr_assert(peer_got(&p, "served"));
	cr_assert_eq(stats(s).accepted, 1);
	peer_free(&p);
	tk_server_free(s);
	tk_loop_free(loop);
}

/*
 * Out of descriptors while the workers' loops are made: tk_server_new()
 * fails with the error, frees what it made, and closes nothing it did
 * not open (a worker not reached yet has no listener: fd 0 stays open).
 */
Test(server, new_fails_cleanly_out_of_descriptors)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server_opts o;
	struct tk_server *s = (struct tk_server *)&o;
	struct rlimit old, low;
	int err;

	tk_server_opts_init(&o);
	o.workers = 8;
	cr_assert(getrlimit(RLIMIT_NOFILE, &old) == 0);
	low = old;
	/* Room for a loop or two, not eight. */
	low.rlim_cur = (rlim_t)max_open_fd() + 6;
	cr_assert(setrlimit(RLIMIT_NOFILE, &low) == 0);
	err = tk_server_new(loop, &o, &tk_service_echo, NULL, &s);
	cr_assert(setrlimit(RLIMIT_NOFILE, &old) == 0);
	cr_assert_eq(err, -EMFILE, "tk_server_new: %s", tk_err_name(err));
	cr_assert_null(s);
	cr_assert_neq(fcntl(0, F_GETFD), -1, "fd 0 was closed");
	tk_loop_free(loop);
}

/*
 * A server's OPEN event may turn the client away by closing it: the
 * connection is released once (the counters stay right, so max_conns and
 * the drain still work) and its close says 0, not an error of its own.
 */
struct turn_away {
	int opens, closes, svc_close_err, svc_closes;
};

static void
turn_away_event(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
		const struct tk_addr *peer, int err, void *arg)
{
	struct turn_away *t = arg;

	(void)s;
	(void)peer;
	(void)err;
	if (ev == TK_SERVER_OPEN) {
		t->opens++;
		tk_conn_close(c, 0);
	} else if (ev == TK_SERVER_CLOSE) {
		t->closes++;
	}
}

static void
turn_away_close(struct tk_conn *c, int err, void *arg)
{
	struct turn_away *t = tk_server_get_opts(tk_conn_server(c))->event_arg;

	(void)arg;
	t->svc_closes++;
	t->svc_close_err = err;
}

Test(server, closing_in_the_open_event_releases_once)
{
	static const struct tk_service svc = { .name = "away",
					       .close = turn_away_close };
	struct tk_loop *loop = t_loop_new();
	struct turn_away t = { 0 };
	struct tk_server_opts o;
	struct tk_addr a;
	struct tk_server *s;
	struct peer p1, p2;

	tk_server_opts_init(&o);
	o.max_conns = 1;
	o.on_event = turn_away_event;
	o.event_arg = &t;
	s = t_server(loop, "127.0.0.1", &o, &svc, NULL, &a);
	peer_connect(&p1, loop, &a);
	RUN_UNTIL(loop, 3000, t.closes == 1);
	cr_assert_eq(t.svc_closes, 1);
	cr_assert_eq(t.svc_close_err, 0);
	cr_assert_eq(stats(s).active, 0);
	cr_assert_eq(stats(s).closed, 1);
	/* The slot is free again: the next client is accepted, not refused. */
	peer_connect(&p2, loop, &a);
	RUN_UNTIL(loop, 3000, t.closes == 2);
	cr_assert_eq(stats(s).accepted, 2);
	cr_assert_eq(stats(s).rejected, 0);
	cr_assert_eq(stats(s).active, 0);
	peer_free(&p1);
	peer_free(&p2);
	tk_server_free(s);
	tk_loop_free(loop);
}

/*
 * A line over max_line ends the connection with TK_ELINETOOLONG even when
 * the service has already shut its side: nothing of the line, nor what
 * follows it, reaches the service.
 */
struct framed {
	int lines, eofs, closes, close_err;
	char first[16];
};

static void
framed_data(struct tk_conn *c, const char *d, ssize_t n, void *arg)
{
	struct framed *f = arg;

	if (n == TK_EOF) {
		f->eofs++;
		return;
	}
	if (f->lines++ == 0) {
		snprintf(f->first, sizeof(f->first), "%.*s", (int)n, d);
		tk_conn_shutdown(c);
	}
}

static void
framed_close(struct tk_conn *c, int err, void *arg)
{
	struct framed *f = arg;

	(void)c;
	f->closes++;
	f->close_err = err;
}

Test(server, line_too_long_after_shutdown_still_ends)
{
	static const struct tk_service svc = {
		.name = "framed",
		.flags = TK_SERVICE_TEXT | TK_SERVICE_LINE_FRAMING,
		.data = framed_data,
		.close = framed_close,
	};
	struct tk_loop *loop = t_loop_new();
	struct framed f = { 0 };
	struct tk_server_opts o;
	struct tk_addr a;
	struct tk_server *s;
	struct peer p;

	tk_server_opts_init(&o);
	o.max_line = 8;
	s = t_server(loop, "127.0.0.1", &o, &svc, &f, &a);
	peer_connect(&p, loop, &a);
	peer_send_str(&p, "hello\n");
	RUN_UNTIL(loop, 3000, f.lines == 1);
	peer_send_str(&p, "AAAAAAAAAAAAAAAAAA");
	peer_send_str(&p, "BBBB\nnext\n");
	RUN_UNTIL(loop, 3000, f.closes == 1);
	cr_assert_str_eq(f.first, "hello\n");
	cr_assert_eq(f.lines, 1, "part of the long line was delivered");
	cr_assert_eq(f.eofs, 0);
	cr_assert_eq(f.close_err, TK_ELINETOOLONG);
	peer_free(&p);
	tk_server_free(s);
	tk_loop_free(loop);
}
