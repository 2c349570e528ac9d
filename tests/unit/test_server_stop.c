/* test_server_stop.c: stopping a server: stop, request_stop and drain,
 * from outside and from a service, and consistent counters meanwhile. */
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

/* A service may stop its server from its own callback. */
static void
stop_server_in_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct slog *l = arg;

	(void)data;
	(void)n;
	slog_add(l, 'd');
	tk_server_stop(tk_conn_server(c));
}

static const struct tk_service stopper = {
	.name = "stopper",
	.open = lecho_open,
	.data = stop_server_in_data,
	.close = lecho_close,
};

Test(server, stop_from_a_service_callback)
{
	struct tk_loop *loop = t_loop_new();
	struct slog l = { 0 };
	struct tk_server_opts o;
	struct tk_addr a;
	struct peer p[2];

	tk_server_opts_init(&o);
	o.on_event = on_event;
	o.event_arg = &l;
	/* Reads that fill the buffer: conn.c reads again after the call. */
	o.conn.read_size = 2;
	l.s = t_server(loop, "127.0.0.1", &o, &stopper, &l, &a);
	peer_connect(&p[0], loop, &a);
	peer_connect(&p[1], loop, &a);
	RUN_UNTIL(loop, 3000, l.nopened == 2);
	peer_send_str(&p[0], "stop");
	RUN_UNTIL(loop, 3000, l.ncloses == 2);
	cr_assert_eq(l.svc_close_err[0], -ECANCELED);
	cr_assert_eq(l.svc_close_err[1], -ECANCELED);
	cr_assert_eq(try_connect(&a), ECONNREFUSED);
	/* Unread input makes the kernel reset p[0] rather than FIN it. */
	RUN_UNTIL(loop, 3000,
		  (p[0].eof || p[0].err != 0) && (p[1].eof || p[1].err != 0));
	peer_free(&p[0]);
	peer_free(&p[1]);
	tk_server_free(l.s);
	tk_loop_free(loop);
}

Test(server, free_with_live_connections)
{
	struct tk_loop *loop = t_loop_new();
	struct slog l = { 0 };
	struct tk_addr a;
	struct tk_server *s = lserver(loop, &l, "127.0.0.1", NULL, &a);
	struct peer p[2];

	peer_connect(&p[0], loop, &a);
	peer_connect(&p[1], loop, &a);
	RUN_UNTIL(loop, 3000, l.nopened == 2);
	tk_server_free(s);
	/* Everything reported before the free returned. */
	cr_assert_eq(l.nsvc_closes, 2);
	cr_assert_eq(l.ncloses, 2);
	cr_assert_str_eq(l.ev, "OoOocCcC");
	peer_free(&p[0]);
	peer_free(&p[1]);
	tk_loop_free(loop);
}

Test(server, request_stop_from_a_service)
{
	struct tk_loop *loop = t_loop_new();
	struct slog l = { .stop_on_open = true };
	struct t_guard g;
	struct tk_addr a;
	struct tk_server *s = lserver(loop, &l, "127.0.0.1", NULL, &a);
	struct peer p;

	cr_assert(!tk_server_stopping(s));
	peer_connect(&p, loop, &a);
	t_guard_start(&g, loop, 5000);
	cr_assert_eq(tk_loop_run(loop), 0); /* returns: the service asked */
	t_guard_end(&g);
	cr_assert(tk_server_stopping(s));
	cr_assert_eq(l.nopened, 1);
	/* The owner decides what stopping means; the conn still works. */
	peer_send_str(&p, "still");
	RUN_UNTIL(loop, 3000, p.in_len == 5);
	peer_free(&p);
	tk_server_free(s);
	tk_loop_free(loop);
}

/*
 * Stop requests race: a second one, or one after the owner began to
 * drain, must not stop the owner's loop again (that would cut the drain).
 */
static void
stop_twice_on_open(struct tk_conn *c, void *arg)
{
	(void)arg;
	tk_server_request_stop(tk_conn_server(c));
	tk_server_request_stop(tk_conn_server(c));
}

Test(server, stop_requests_are_idempotent_and_spare_the_drain)
{
	struct tk_loop *loop = t_loop_new();
	struct slog l = { 0 };
	struct t_guard g;
	struct tk_addr a;
	struct tk_server *s = lserver(loop, &l, "127.0.0.1", NULL, &a);
	struct peer p;

	cr_assert_not_null(s);
	/* Two requests, one stop: the first run ends, the next does not. */
	peer_connect(&p, loop, &a);
	RUN_UNTIL(loop, 3000, l.nopened == 1);
	stop_twice_on_open(l.opened[0], NULL);
	t_guard_start(&g, loop, 5000);
	cr_assert_eq(tk_loop_run(loop), 0);
	t_guard_end(&g);
	cr_assert(tk_server_stopping(s));
	/* The owner drains; a request now (a late worker's) stops nothing. */
	tk_server_drain(s);
	tk_server_request_stop(s);
	t_guard_start(&g, loop, 300);
	cr_assert_eq(tk_loop_run(loop), 0);
	cr_assert(g.fired, "a stop request cut the drain's run short");
	tk_timer_free(g.timer);
	peer_free(&p);
	tk_server_free(s);
	tk_loop_free(loop);
}

/*
 * A reader's snapshot of a worker's counters is consistent: here the
 * writer always moves two counters together, so a snapshot that mixes two
 * moments shows them apart.
 */
struct hammer {
	struct tk__counters ctr;
	atomic_bool stop;
};

static void *
hammer_main(void *arg)
{
	struct hammer *h = arg;

	while (!atomic_load_explicit(&h->stop, memory_order_relaxed)) {
		tk__ctr_begin(&h->ctr);
		tk__ctr_add(&h->ctr.conn_errors, 1);
		tk__ctr_add(&h->ctr.resets, 1);
		tk__ctr_add(&h->ctr.closed, 1);
		tk__ctr_end(&h->ctr);
	}
	return NULL;
}

Test(server, counter_snapshots_are_consistent)
{
	struct hammer h;
	pthread_t t;
	uint64_t seen = 0, last = 0;

	memset(&h, 0, sizeof(h));
	cr_assert_eq(pthread_create(&t, NULL, hammer_main, &h), 0);
	for (int i = 0; i < 200000; i++) {
		struct tk__ctr_values v;

		tk__ctr_snapshot(&h.ctr, &v);
		cr_assert_eq(v.conn_errors, v.resets, "torn: %llu vs %llu",
			     (unsigned long long)v.conn_errors,
			     (unsigned long long)v.resets);
		cr_assert_eq(v.closed, v.resets);
		cr_assert_geq(v.closed, last);
		if (v.closed != last)
			seen++;
		last = v.closed;
	}
	atomic_store(&h.stop, true);
	pthread_join(t, NULL);
	cr_assert_gt(seen, 0, "the writer never ran during the reads");
}
