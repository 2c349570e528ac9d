/* test_server.c: listeners, accepting, the connection set, stats, events. */
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

/*
 * One timeout for every test: Criterion 2.4 leaks in its runner when tests
 * running in parallel have different timeouts.
 */
TestSuite(server, .timeout = 30);

#define MAXC 256

/*
 * What a server did, in order: O open event, o service open, c service
 * close, C close event, E error event, R reject event.
 */
struct slog {
	struct tk_server *s;
	char ev[1024];
	size_t nev;
	struct tk_conn *opened[MAXC];
	int nopened;
	int svc_close_err[MAXC];
	int nsvc_closes;
	int close_err[MAXC];
	int ncloses;
	int errors[MAXC];
	int nerrors;
	bool stop_on_open;
};

static void
slog_add(struct slog *l, char ch)
{
	if (l->nev < sizeof(l->ev) - 1)
		l->ev[l->nev++] = ch;
}

static void
on_event(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
	 const struct tk_addr *peer, int err, void *arg)
{
	struct slog *l = arg;

	cr_assert_eq(s, l->s);
	switch (ev) {
	case TK_SERVER_OPEN:
		cr_assert_not_null(c);
		cr_assert_eq(err, 0);
		cr_assert_eq(tk_conn_server(c), s);
		cr_assert_eq(peer, tk_conn_peer(c));
		cr_assert_lt(l->nopened, MAXC);
		l->opened[l->nopened++] = c;
		slog_add(l, 'O');
		break;
	case TK_SERVER_CLOSE: {
		bool known = false;

		for (int i = 0; i < l->nopened; i++)
			known |= l->opened[i] == c;
		cr_assert(known, "close event for a conn never opened");
		cr_assert_eq(peer, tk_conn_peer(c));
		cr_assert_lt(l->ncloses, MAXC);
		l->close_err[l->ncloses++] = err;
		slog_add(l, 'C');
		break;
	}
	case TK_SERVER_ERROR:
		cr_assert_null(c);
		cr_assert_null(peer);
		cr_assert_lt(err, 0);
		if (l->nerrors < MAXC)
			l->errors[l->nerrors] = err;
		l->nerrors++;
		slog_add(l, 'E');
		break;
	case TK_SERVER_REJECT:
		cr_assert_null(c);
		/* The client turned away, for the log. */
		cr_assert_not_null(peer);
		cr_assert(tk_addr_is_loopback(peer));
		slog_add(l, 'R');
		break;
	case TK_SERVER_DRAINED:
		cr_assert_null(c);
		cr_assert_null(peer);
		slog_add(l, 'D');
		break;
	default:
		cr_assert_fail("unknown server event %d", (int)ev);
	}
}

/* Echo, with the service's own callbacks logged too. */
static int
lecho_open(struct tk_conn *c, void *arg)
{
	struct slog *l = arg;

	slog_add(l, 'o');
	if (l->stop_on_open)
		tk_server_request_stop(tk_conn_server(c));
	return 0;
}

static void
lecho_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	(void)arg;
	tk_service_echo.data(c, data, n, NULL);
}

static void
lecho_close(struct tk_conn *c, int err, void *arg)
{
	struct slog *l = arg;

	(void)c;
	cr_assert_lt(l->nsvc_closes, MAXC);
	l->svc_close_err[l->nsvc_closes++] = err;
	slog_add(l, 'c');
}

static const struct tk_service lecho = {
	.name = "logged echo",
	.open = lecho_open,
	.data = lecho_data,
	.close = lecho_close,
};

static struct tk_server *
lserver(struct tk_loop *loop, struct slog *l, const char *ip,
	struct tk_server_opts *o, struct tk_addr *addr)
{
	struct tk_server_opts def;

	if (o == NULL) {
		tk_server_opts_init(&def);
		o = &def;
	}
	o->on_event = on_event;
	o->event_arg = l;
	l->s = t_server(loop, ip, o, &lecho, l, addr);
	return l->s;
}

static struct tk_server_stats
stats(const struct tk_server *s)
{
	struct tk_server_stats st;

	tk_server_get_stats(s, &st);
	return st;
}

/* A plain blocking connect: 0 or the errno. */
static int
try_connect(const struct tk_addr *a)
{
	int fd = socket(a->u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int err = 0;

	cr_assert(fd >= 0);
	if (connect(fd, &a->u.sa, a->len) < 0)
		err = errno;
	close(fd);
	return err;
}

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
