/* test_server.c: listeners, accepting, the connection set, stats, events
 * (stopping: test_server_stop.c; accepted sockets: test_server_accept.c). */
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

Test(server, opts_and_bad_arguments)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server_opts o;
	struct tk_server *s;

	tk_server_opts_init(&o);
	cr_assert_eq(o.backlog, TK_DEFAULT_BACKLOG);
	cr_assert_eq(o.conn.max_pending, TK_DEFAULT_MAX_PENDING);
	cr_assert_null(o.on_event);
	s = (struct tk_server *)&o; /* set to NULL on failure */
	cr_assert_eq(tk_server_new(NULL, &o, &tk_service_echo, NULL, &s),
		     -EINVAL);
	cr_assert_null(s);
	cr_assert_eq(tk_server_new(loop, &o, NULL, NULL, &s), -EINVAL);
	cr_assert_null(s);
	o.workers = 100000;
	cr_assert_eq(tk_server_new(loop, &o, &tk_service_echo, NULL, &s),
		     -EINVAL);
	o.workers = 1;
	cr_assert_eq(tk_server_new(loop, NULL, &tk_service_echo, NULL, &s), 0);
	cr_assert_not_null(s);
	cr_assert_eq(tk_server_loop(s), loop);
	cr_assert_eq(tk_server_listener_count(s), 0);
	cr_assert_null(tk_server_addr(s, 0));
	cr_assert_eq(tk_server_start(s), -EDESTADDRREQ);
	cr_assert(!tk_server_stopping(s));
	tk_server_free(s);
	tk_server_free(NULL);
	tk_loop_free(loop);
}

Test(server, listen_port_zero_v4_and_v6)
{
	struct tk_loop *loop = t_loop_new();
	struct slog l = { 0 };
	struct tk_addr a4 = t_addr("127.0.0.1", 0), a6 = t_addr("::1", 0);
	struct tk_server_opts o;
	struct peer p4, p6;
	struct tk_server *s;

	tk_server_opts_init(&o);
	o.on_event = on_event;
	o.event_arg = &l;
	s = l.s = t_server_new(loop, &o, &lecho, &l);
	cr_assert_eq(tk_server_listen(s, &a4, false), 0);
	cr_assert_eq(tk_server_listen(s, &a6, true), 0);
	cr_assert_eq(tk_server_listener_count(s), 2);
	cr_assert_eq(tk_addr_family(tk_server_addr(s, 0)), AF_INET);
	cr_assert_eq(tk_addr_family(tk_server_addr(s, 1)), AF_INET6);
	cr_assert(tk_addr_is_loopback(tk_server_addr(s, 0)));
	cr_assert(tk_addr_is_loopback(tk_server_addr(s, 1)));
	cr_assert_neq(tk_addr_port(tk_server_addr(s, 0)), 0);
	cr_assert_neq(tk_addr_port(tk_server_addr(s, 1)), 0);
	cr_assert_null(tk_server_addr(s, 2));
	cr_assert_eq(tk_server_start(s), 0);

	peer_connect(&p4, loop, tk_server_addr(s, 0));
	peer_connect(&p6, loop, tk_server_addr(s, 1));
	peer_send_str(&p4, "four");
	peer_send_str(&p6, "six");
	RUN_UNTIL(loop, 3000, p4.in_len == 4 && p6.in_len == 3);
	cr_assert(peer_got(&p4, "four"));
	cr_assert(peer_got(&p6, "six"));
	cr_assert_eq(stats(s).accepted, 2);

	/* The accepted conns know both ends. */
	for (int i = 0; i < 2; i++) {
		struct tk_conn *c = l.opened[i];
		struct peer *p =
			tk_addr_family(tk_conn_local(c)) == AF_INET ? &p4 : &p6;
		struct tk_addr mine;

		mine.len = sizeof(mine.u);
		cr_assert(getsockname(p->fd, &mine.u.sa, &mine.len) == 0);
		cr_assert(tk_addr_equal(tk_conn_peer(c), &mine));
		cr_assert(tk_addr_equal(tk_conn_local(c),
					tk_server_addr(s, p == &p4 ? 0 : 1)));
		cr_assert(tk_conn_is_open(c));
	}
	peer_free(&p4);
	peer_free(&p6);
	tk_server_free(s);
	tk_loop_free(loop);
}

Test(server, wildcard_v6_is_dual_stack_unless_v6only)
{
	struct tk_loop *loop = t_loop_new();
	struct slog l1 = { 0 }, l2 = { 0 };
	struct tk_addr any = t_addr("::", 0), v4;
	struct tk_server_opts o;
	struct tk_server *s1, *s2;
	struct peer p;
	char buf[TK_ADDRSTRLEN];

	tk_server_opts_init(&o);
	o.on_event = on_event;
	o.event_arg = &l1;
	s1 = l1.s = t_server_new(loop, &o, &lecho, &l1);
	cr_assert_eq(tk_server_listen(s1, &any, false), 0);
	cr_assert(tk_addr_is_any(tk_server_addr(s1, 0)));
	cr_assert_eq(tk_server_start(s1), 0);
	v4 = t_addr("127.0.0.1", tk_addr_port(tk_server_addr(s1, 0)));
	peer_connect(&p, loop, &v4);
	RUN_UNTIL(loop, 3000, l1.nopened == 1);
	/*
	 * An IPv4 peer on an IPv6 socket: loopback either way, whether it is
	 * reported mapped (::ffff:127.0.0.1) or as the IPv4 address it is.
	 */
	tk_addr_format_ip(tk_conn_peer(l1.opened[0]), buf, sizeof(buf));
	cr_assert(strcmp(buf, "127.0.0.1") == 0 ||
			  strcmp(buf, "::ffff:127.0.0.1") == 0,
		  "peer %s", buf);
	cr_assert(tk_addr_is_loopback(tk_conn_peer(l1.opened[0])));
	peer_free(&p);
	tk_server_free(s1);

	o.event_arg = &l2;
	s2 = l2.s = t_server_new(loop, &o, &lecho, &l2);
	cr_assert_eq(tk_server_listen(s2, &any, true), 0);
	cr_assert_eq(tk_server_start(s2), 0);
	v4 = t_addr("127.0.0.1", tk_addr_port(tk_server_addr(s2, 0)));
	cr_assert_eq(try_connect(&v4), ECONNREFUSED,
		     "a v6only listener took IPv4");
	tk_server_free(s2);
	tk_loop_free(loop);
}

Test(server, address_in_use)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr a;
	struct tk_server *s1 =
		t_server(loop, "127.0.0.1", NULL, &tk_service_echo, NULL, &a);
	struct tk_server *s2 = t_server_new(loop, NULL, &tk_service_echo, NULL);

	cr_assert_eq(tk_server_listen(s2, &a, false), -EADDRINUSE);
	cr_assert_eq(tk_server_listener_count(s2), 0);
	cr_assert_eq(tk_server_start(s2), -EDESTADDRREQ);
	/* A port in use by a plain listener, too. */
	struct tk_addr raw;
	int lfd = t_raw_listen("::1", 1, &raw);

	cr_assert_eq(tk_server_listen(s2, &raw, true), -EADDRINUSE);
	close(lfd);
	tk_server_free(s2);
	tk_server_free(s1);
	tk_loop_free(loop);
}

Test(server, too_many_listeners)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = t_server_new(loop, NULL, &tk_service_echo, NULL);
	struct tk_addr a = t_addr("127.0.0.1", 0);
	size_t n = 0;
	int err;

	while ((err = tk_server_listen(s, &a, false)) == 0)
		cr_assert_lt(++n, 1000);
	cr_assert_eq(err, -ENOSPC);
	cr_assert_eq(tk_server_listener_count(s), n);
	cr_assert_geq(n, 1);
	tk_server_free(s);
	tk_loop_free(loop);
}

/* Has peer i got its i * 9999 + 1 bytes back? */
static bool
all_echoed(const struct peer *p, int n)
{
	for (int i = 0; i < n; i++)
		if (p[i].in_len != (size_t)i * 9999 + 1)
			return false;
	return true;
}

Test(server, stats_are_exact_after_n_clients)
{
	enum { N = 6 };
	struct tk_loop *loop = t_loop_new();
	struct slog l = { 0 };
	struct tk_addr a;
	struct tk_server *s = lserver(loop, &l, "127.0.0.1", NULL, &a);
	struct peer p[N];
	struct tk_server_stats st;
	size_t sum = 0;
	char *data = malloc(N * 10000);

	for (int i = 0; i < N; i++) {
		size_t n = (size_t)i * 9999 + 1;

		t_fill(data, n, 0, (unsigned)i);
		peer_connect(&p[i], loop, &a);
		peer_send(&p[i], data, n);
		sum += n;
	}
	RUN_UNTIL(loop, 5000, all_echoed(p, N));
	/* Live connections count too. */
	st = stats(s);
	cr_assert_eq(st.accepted, N);
	cr_assert_eq(st.active, N);
	cr_assert_eq(st.closed, 0);
	cr_assert_eq(st.bytes_in, sum);
	cr_assert_eq(st.bytes_out, sum);

	for (int i = 0; i < N; i++)
		peer_shutdown(&p[i]);
	RUN_UNTIL(loop, 5000, stats(s).closed == N);
	for (int i = 0; i < N; i++) {
		RUN_UNTIL(loop, 3000, p[i].eof);
		cr_assert_eq(t_check(p[i].in, p[i].in_len, 0, (unsigned)i),
			     p[i].in_len);
		peer_free(&p[i]);
	}
	st = stats(s);
	cr_assert_eq(st.accepted, N);
	cr_assert_eq(st.active, 0);
	cr_assert_eq(st.closed, N);
	cr_assert_eq(st.bytes_in, sum);
	cr_assert_eq(st.bytes_out, sum);
	cr_assert_eq(st.accept_errors, 0);
	cr_assert_eq(st.conn_errors, 0);
	for (int i = 0; i < N; i++)
		cr_assert_eq(l.close_err[i], 0);
	tk_server_free(s);
	free(data);
	tk_loop_free(loop);
}

static bool
all_eof(const struct peer *p, int n)
{
	for (int i = 0; i < n; i++)
		if (!p[i].eof)
			return false;
	return true;
}

/* More clients at once than one wakeup accepts: every one is served. */
Test(server, many_clients_at_once)
{
	enum { N = 150 };
	struct tk_loop *loop = t_loop_new();
	struct slog l = { 0 };
	struct tk_addr a;
	struct tk_server *s = lserver(loop, &l, "127.0.0.1", NULL, &a);
	static struct peer p[N];

	for (int i = 0; i < N; i++) {
		char b = (char)('a' + i % 26);

		peer_connect(&p[i], loop, &a);
		peer_send(&p[i], &b, 1);
		peer_shutdown(&p[i]);
	}
	RUN_UNTIL(loop, 10000, all_eof(p, N));
	for (int i = 0; i < N; i++) {
		cr_assert_eq(p[i].in_len, 1);
		cr_assert_eq(p[i].in[0], (char)('a' + i % 26));
		peer_free(&p[i]);
	}
	RUN_UNTIL(loop, 5000, stats(s).closed == N);
	cr_assert_eq(stats(s).accepted, N);
	cr_assert_eq(stats(s).bytes_in, N);
	cr_assert_eq(stats(s).accept_errors, 0);
	tk_server_free(s);
	tk_loop_free(loop);
}

Test(server, events_in_order)
{
	struct tk_loop *loop = t_loop_new();
	struct slog l = { 0 };
	struct tk_addr a;
	struct tk_server *s = lserver(loop, &l, "127.0.0.1", NULL, &a);

	/* One client after the other: open event, open, close, close event. */
	for (int i = 0; i < 3; i++) {
		struct peer p;

		peer_connect(&p, loop, &a);
		peer_send_str(&p, "x");
		peer_shutdown(&p);
		RUN_UNTIL(loop, 3000, p.eof && l.ncloses == i + 1);
		cr_assert(peer_got(&p, "x"));
		peer_free(&p);
	}
	cr_assert_str_eq(l.ev, "OocCOocCOocC");
	cr_assert_eq(l.nopened, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(l.close_err[i], 0);
		cr_assert_eq(l.svc_close_err[i], 0);
	}
	tk_server_free(s);
	tk_loop_free(loop);
}

Test(server, stop_closes_live_connections)
{
	enum { N = 3 };
	struct tk_loop *loop = t_loop_new();
	struct slog l = { 0 };
	struct tk_addr a;
	struct tk_server *s = lserver(loop, &l, "127.0.0.1", NULL, &a);
	struct peer p[N];
	struct tk_server_stats st;

	for (int i = 0; i < N; i++)
		peer_connect(&p[i], loop, &a);
	RUN_UNTIL(loop, 3000, l.nopened == N);
	cr_assert_eq(stats(s).active, N);

	tk_server_stop(s);
	RUN_UNTIL(loop, 3000, l.ncloses == N);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(l.svc_close_err[i], -ECANCELED);
		cr_assert_eq(l.close_err[i], -ECANCELED);
	}
	st = stats(s);
	cr_assert_eq(st.active, 0);
	cr_assert_eq(st.closed, N);
	cr_assert_eq(st.conn_errors, N);
	for (int i = 0; i < N; i++) {
		RUN_UNTIL(loop, 3000, p[i].eof || p[i].err != 0);
		peer_free(&p[i]);
	}
	/* Nobody listens any more. */
	cr_assert_eq(try_connect(&a), ECONNREFUSED);
	tk_server_stop(s); /* twice: harmless */
	t_run_for(loop, 20);
	cr_assert_eq(l.ncloses, N);
	tk_server_free(s);
	tk_loop_free(loop);
}
