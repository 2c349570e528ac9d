/* test_conn_lifetime.c: a connection outlived by its loop: tk_loop_free()
 * and tk_loop_close() with connections open. */
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

/*
 * tk_loop_free() with a connection still open: the connection is closed
 * (its socket too: the peer sees the end) and its close callback runs,
 * with -ECANCELED; nothing is leaked.
 */
Test(conn, loop_free_closes_an_open_connection)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr a;
	int lfd = t_raw_listen("127.0.0.1", 8, &a), fd;
	struct rec r = { 0 };
	struct timeval tv = { .tv_sec = 3 };
	char ch;

	rec_connect(loop, &a, 1, NULL, &r);
	RUN_UNTIL(loop, 3000, r.opens == 1);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert(fd >= 0);
	tk_loop_free(loop);
	cr_assert_eq(r.closes, 1, "the close callback did not run");
	cr_assert_eq(r.close_err, -ECANCELED);
	cr_assert_str_eq(r.log, "oc");
	T_ASSERT_FREED(r.gone);
	cr_assert(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ==
		  0);
	cr_assert_eq(recv(fd, &ch, 1, 0), 0, "the socket was left open");
	close(fd);
	close(lfd);
	rec_free(&r);
}

struct walked {
	int conns, timers, fds;
	bool close_them;
	int pipe_fd;
};

static void
walk_count(struct tk_loop *loop, const struct tk_handle *h, void *arg)
{
	struct walked *w = arg;

	switch (h->type) {
	case TK_HANDLE_CONN:
		w->conns++;
		cr_assert_not_null(h->conn);
		cr_assert_eq(h->fd, tk_conn_fd(h->conn));
		if (w->close_them)
			tk_conn_close(h->conn, -ESHUTDOWN);
		break;
	case TK_HANDLE_TIMER:
		w->timers++;
		if (w->close_them)
			tk_timer_free(h->timer);
		break;
	case TK_HANDLE_FD:
		w->fds++;
		cr_assert_eq(h->fd, w->pipe_fd);
		cr_assert_eq(h->arg, w);
		if (w->close_them)
			tk_loop_unwatch(loop, h->fd);
		break;
	}
}

static void
ignore_io(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	(void)loop;
	(void)fd;
	(void)events;
	(void)arg;
}

/*
 * tk_loop_close() refuses while a connection, a timer or a watched fd
 * lives; tk_loop_walk() finds each once (a connection's own socket is not
 * a handle of its own) and may close what it visits.
 */
static void
walk_noop_timer(struct tk_timer *t, void *arg)
{
	(void)t;
	(void)arg;
}

Test(conn, loop_close_busy_until_the_walk_closed_everything)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr a;
	int lfd = t_raw_listen("127.0.0.1", 8, &a);
	struct rec r = { 0 }, r2 = { 0 };
	struct walked w = { 0 };
	struct tk_timer *t = t_timer_new(loop, walk_noop_timer, NULL);
	struct blackhole b;
	int pfd[2];

	cr_assert_not_null(t);
	cr_assert_eq(pipe2(pfd, O_CLOEXEC | O_NONBLOCK), 0);
	w.pipe_fd = pfd[0];
	cr_assert_eq(tk_loop_watch(loop, pfd[0], TK_READABLE, ignore_io, &w),
		     0);
	rec_connect(loop, &a, 1, NULL, &r);
	RUN_UNTIL(loop, 3000, r.opens == 1);
	/* A second one still connecting (attempt fds are its own too). */
	blackhole_open(&b, "127.0.0.1");
	rec_connect(loop, &b.addr, 1, NULL, &r2);
	cr_assert_eq(tk_loop_close(loop), -EBUSY);
	cr_assert_eq(tk_loop_walk(loop, walk_count, &w), 4);
	cr_assert_eq(w.conns, 2);
	cr_assert_eq(w.timers, 1);
	cr_assert_eq(w.fds, 1);
	cr_assert_eq(r.closes + r2.closes, 0, "a walk closed something");

	w = (struct walked){ .close_them = true, .pipe_fd = pfd[0] };
	cr_assert_eq(tk_loop_walk(loop, walk_count, &w), 4);
	cr_assert_eq(tk_loop_walk(loop, NULL, NULL), 0);
	/* The close callbacks run in tk_loop_close(), which then frees. */
	cr_assert_eq(r.closes + r2.closes, 0);
	cr_assert_eq(tk_loop_close(loop), 0);
	cr_assert_eq(r.closes, 1);
	cr_assert_eq(r.close_err, -ESHUTDOWN);
	cr_assert_eq(r2.closes, 1);
	cr_assert_str_eq(r2.log, "c");
	T_ASSERT_FREED(r.gone);
	T_ASSERT_FREED(r2.gone);
	blackhole_close(&b);
	close(pfd[0]);
	close(pfd[1]);
	close(lfd);
	rec_free(&r);
	rec_free(&r2);
}
