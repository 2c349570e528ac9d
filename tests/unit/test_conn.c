/* test_conn.c: client connections on loopback against real peers. */
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

#include "helpers.h"
#include "internal.h"
#include "short_tp.h"

/*
 * One timeout for every test: Criterion 2.4 leaks in its runner when tests
 * running in parallel have different timeouts.
 */
TestSuite(conn, .timeout = 30);

/* A service that records what happens to one client connection. */
struct rec {
	struct tk_conn *c;    /* NULL once closed */
	struct tk_conn *gone; /* the pointer, kept to check it was freed */
	int opens, closes, drains, eofs;
	size_t datas;
	int close_err;
	char last_error[160];
	char *in;
	size_t in_len, in_cap;
	char log[64]; /* o open, d data, e EOF, r drain, c close */
	size_t nlog;
	int open_ret;
	uint64_t t_open, t_close, t_data;
	size_t pending_at_data; /* tk_conn_pending() at the first data */
	size_t pending_at_drain;
	bool in_callback; /* a callback of this conn is on the stack */
	bool close_inside_callback;
	/* Optional reactions. */
	void (*on_open)(struct rec *r);
	void (*on_data)(struct rec *r, const char *d, ssize_t n);
	void (*on_close)(struct rec *r);
	void *user;
};

static void
rec_log(struct rec *r, char ch)
{
	/* Runs of data are one 'd'. */
	if (ch == 'd' && r->nlog > 0 && r->log[r->nlog - 1] == 'd')
		return;
	if (r->nlog < sizeof(r->log) - 1)
		r->log[r->nlog++] = ch;
}

static int
rec_open(struct tk_conn *c, void *arg)
{
	struct rec *r = arg;

	cr_assert(tk_conn_is_open(c));
	r->c = c;
	r->opens++;
	r->t_open = t_now_ms();
	rec_log(r, 'o');
	r->in_callback = true;
	if (r->on_open != NULL)
		r->on_open(r);
	r->in_callback = false;
	return r->open_ret;
}

static void
rec_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct rec *r = arg;

	cr_assert_eq(c, r->c);
	cr_assert_eq(r->closes, 0, "data after close");
	r->in_callback = true;
	if (n == TK_EOF) {
		r->eofs++;
		rec_log(r, 'e');
	} else {
		cr_assert_gt(n, 0);
		cr_assert_eq(r->eofs, 0, "data after EOF");
		if (r->datas++ == 0)
			r->pending_at_data = tk_conn_pending(c);
		if (r->in_cap - r->in_len < (size_t)n) {
			while (r->in_cap - r->in_len < (size_t)n)
				r->in_cap = r->in_cap ? r->in_cap * 2 : 4096;
			r->in = realloc(r->in, r->in_cap);
			cr_assert_not_null(r->in);
		}
		memcpy(r->in + r->in_len, data, (size_t)n);
		r->in_len += (size_t)n;
		r->t_data = t_now_ms();
		rec_log(r, 'd');
	}
	if (r->on_data != NULL)
		r->on_data(r, data, n);
	r->in_callback = false;
}

static void
rec_drain(struct tk_conn *c, void *arg)
{
	struct rec *r = arg;

	cr_assert_eq(c, r->c);
	r->drains++;
	r->pending_at_drain = tk_conn_pending(c);
	rec_log(r, 'r');
}

static void
rec_close(struct tk_conn *c, int err, void *arg)
{
	struct rec *r = arg;

	if (r->in_callback)
		r->close_inside_callback = true;
	r->closes++;
	cr_assert_eq(r->closes, 1, "close callback ran %d times", r->closes);
	cr_assert(!tk_conn_is_open(c));
	r->close_err = err;
	r->t_close = t_now_ms();
	snprintf(r->last_error, sizeof(r->last_error), "%s",
		 tk_conn_last_error(c));
	rec_log(r, 'c');
	if (r->on_close != NULL)
		r->on_close(r);
	r->gone = c;
	r->c = NULL;
}

static const struct tk_service rec_svc = {
	.name = "rec",
	.open = rec_open,
	.data = rec_data,
	.drain = rec_drain,
	.close = rec_close,
};

static struct tk_conn *
rec_connect(struct tk_loop *loop, struct tk_addr *addrs, size_t n,
	    const struct tk_conn_opts *o, struct rec *r)
{
	struct tk_addrlist l = t_list(addrs, n);
	struct tk_conn *c = NULL;

	cr_assert_eq(tk_conn_connect(loop, &l, o, &rec_svc, r, &c), 0);
	cr_assert_not_null(c);
	cr_assert_eq(r->closes, 0, "a callback ran inside tk_conn_connect");
	cr_assert_eq(r->opens, 0, "a callback ran inside tk_conn_connect");
	return c;
}

static void
rec_free(struct rec *r)
{
	free(r->in);
	r->in = NULL;
}

static bool
rec_got(const struct rec *r, const char *s)
{
	size_t n = strlen(s);

	return r->in_len == n && (n == 0 || memcmp(r->in, s, n) == 0);
}

/*
 * A listener whose accept queue is full: it never answers new SYNs, so a
 * connect to it stays in progress.  listen(fd, 0) queues one connection;
 * the raw connects that fill it are never accepted.
 */
struct blackhole {
	int lfd;
	int fills[3];
	struct tk_addr addr;
};

static void
blackhole_open(struct blackhole *b, const char *ip)
{
	b->lfd = t_raw_listen(ip, 0, &b->addr);
	for (int i = 0; i < 3; i++) {
		b->fills[i] =
			socket(b->addr.u.sa.sa_family,
			       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		cr_assert(b->fills[i] >= 0);
		cr_assert(connect(b->fills[i], &b->addr.u.sa, b->addr.len) ==
				  0 ||
			  errno == EINPROGRESS);
	}
}

static void
blackhole_close(struct blackhole *b)
{
	for (int i = 0; i < 3; i++)
		close(b->fills[i]);
	close(b->lfd);
}

/* An echo server and a client: write, read it back, close. */
static void
echo_round_trip(const char *ip)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr sa, local;
	struct tk_server *s =
		t_server(loop, ip, NULL, &tk_service_echo, NULL, &sa);
	struct tk_server_stats st;
	struct rec r = { 0 };
	struct tk_conn *c = rec_connect(loop, &sa, 1, NULL, &r);
	char buf[TK_ADDRSTRLEN];

	cr_assert_eq(tk_conn_write(c, "x", 1), -ENOTCONN,
		     "writing before open");
	RUN_UNTIL(loop, 3000, r.opens == 1);
	cr_assert_eq(r.c, c);
	cr_assert(tk_addr_equal(tk_conn_peer(c), &sa), "peer is %s",
		  t_fmt(tk_conn_peer(c), buf));
	local = *tk_conn_local(c);
	cr_assert_eq(tk_addr_family(&local), tk_addr_family(&sa));
	cr_assert(tk_addr_is_loopback(&local));
	cr_assert_neq(tk_addr_port(&local), 0);
	cr_assert_geq(tk_conn_fd(c), 0);
	cr_assert_eq(tk_conn_loop(c), loop);
	cr_assert_null(tk_conn_server(c));
	cr_assert_str_empty(tk_conn_last_error(c));
	cr_assert_lt(tk_conn_age_ms(c), 5000);
	tk_conn_set_data(c, &r);
	cr_assert_eq(tk_conn_data(c), &r);

	cr_assert_eq(tk_conn_write(c, "hello, echo", 11), 0);
	cr_assert_eq(tk_conn_write(c, "", 0), 0);
	RUN_UNTIL(loop, 3000, r.in_len == 11);
	cr_assert(rec_got(&r, "hello, echo"));
	cr_assert_eq(tk_conn_bytes_out(c), 11);
	cr_assert_eq(tk_conn_bytes_in(c), 11);
	cr_assert_eq(tk_conn_pending(c), 0);

	/* The close callback is deferred, never run inside tk_conn_close. */
	tk_conn_close(c, 0);
	cr_assert_eq(r.closes, 0);
	cr_assert(!tk_conn_is_open(c));
	cr_assert_eq(tk_conn_write(c, "x", 1), -EPIPE);
	RUN_UNTIL(loop, 1000, r.closes == 1);
	cr_assert_eq(r.close_err, 0);
	cr_assert_str_eq(r.log, "odc");
	T_ASSERT_FREED(r.gone);

	/* The server saw the whole exchange end. */
	RUN_UNTIL(loop, 3000, (tk_server_get_stats(s, &st), st.closed == 1));
	cr_assert_eq(st.bytes_in, 11);
	cr_assert_eq(st.bytes_out, 11);
	tk_server_free(s);
	rec_free(&r);
	tk_loop_free(loop);
}

Test(conn, echo_round_trip_ipv4)
{
	echo_round_trip("127.0.0.1");
}

Test(conn, echo_round_trip_ipv6)
{
	echo_round_trip("::1");
}

static void
refused(const char *ip)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr a;
	int hold = t_refusing_port(ip, &a);
	struct rec r = { 0 };
	char where[TK_ADDRSTRLEN], want[256];

	rec_connect(loop, &a, 1, NULL, &r);
	RUN_UNTIL(loop, 3000, r.closes == 1);
	cr_assert_eq(r.opens, 0, "open called for a refused connection");
	cr_assert_eq(r.close_err, -ECONNREFUSED, "close(%d)", r.close_err);
	snprintf(want, sizeof(want), "%s: %s", t_fmt(&a, where),
		 tk_strerror(-ECONNREFUSED));
	cr_assert_str_eq(r.last_error, want);
	cr_assert_str_eq(r.log, "c");
	T_ASSERT_FREED(r.gone);
	close(hold);
	tk_loop_free(loop);
}

Test(conn, refused_ipv4)
{
	refused("127.0.0.1");
}

Test(conn, refused_ipv6)
{
	refused("::1");
}

Test(conn, address_list_refused_then_good)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr list[2], good;
	int hold = t_refusing_port("127.0.0.1", &list[0]);
	struct tk_server *s = t_server(loop, "127.0.0.1", NULL,
				       &tk_service_echo, NULL, &good);
	struct rec r = { 0 };
	struct tk_conn *c;

	list[1] = good;
	c = rec_connect(loop, list, 2, NULL, &r);
	RUN_UNTIL(loop, 3000, r.opens == 1 || r.closes == 1);
	cr_assert_eq(r.opens, 1, "closed: %s", r.last_error);
	cr_assert(tk_addr_equal(tk_conn_peer(c), &good));
	cr_assert_str_empty(tk_conn_last_error(c),
			    "a connected conn keeps an old error");
	cr_assert_eq(tk_conn_write(c, "ping", 4), 0);
	RUN_UNTIL(loop, 3000, r.in_len == 4);
	cr_assert(rec_got(&r, "ping"));
	tk_conn_close(c, 0);
	RUN_UNTIL(loop, 1000, r.closes == 1);
	tk_server_free(s);
	close(hold);
	rec_free(&r);
	tk_loop_free(loop);
}

Test(conn, address_list_mixed_families)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr list[3], good;
	int h4 = t_refusing_port("127.0.0.1", &list[0]);
	int h6 = t_refusing_port("::1", &list[1]);
	struct tk_server *s =
		t_server(loop, "::1", NULL, &tk_service_echo, NULL, &good);
	struct rec r = { 0 };
	struct tk_conn *c;

	/* v4 refused, v6 refused, v6 good: tried in turn (interleaved). */
	list[2] = good;
	c = rec_connect(loop, list, 3, NULL, &r);
	RUN_UNTIL(loop, 3000, r.opens == 1 || r.closes == 1);
	cr_assert_eq(r.opens, 1, "closed: %s", r.last_error);
	cr_assert(tk_addr_equal(tk_conn_peer(c), &good));
	tk_conn_close(c, 0);
	RUN_UNTIL(loop, 1000, r.closes == 1);
	tk_server_free(s);
	close(h4);
	close(h6);
	rec_free(&r);
	tk_loop_free(loop);
}

Test(conn, address_list_all_refused_reports_the_last)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr list[2];
	int h1 = t_refusing_port("127.0.0.1", &list[0]);
	int h2 = t_refusing_port("127.0.0.1", &list[1]);
	struct rec r = { 0 };
	char where[TK_ADDRSTRLEN];

	rec_connect(loop, list, 2, NULL, &r);
	RUN_UNTIL(loop, 3000, r.closes == 1);
	cr_assert_eq(r.opens, 0);
	cr_assert_eq(r.close_err, -ECONNREFUSED);
	cr_assert(strstr(r.last_error, t_fmt(&list[1], where)) != NULL,
		  "last error \"%s\" does not name %s", r.last_error, where);
	close(h1);
	close(h2);
	tk_loop_free(loop);
}

Test(conn, connect_timeout_on_full_backlog)
{
	struct tk_loop *loop = t_loop_new();
	struct blackhole b;
	struct tk_conn_opts o;
	struct rec r = { 0 };
	char where[TK_ADDRSTRLEN], want[256];
	uint64_t t0;

	blackhole_open(&b, "127.0.0.1");
	tk_conn_opts_init(&o);
	o.connect_timeout_ms = 300;
	tk_loop_update_time(loop);
	t0 = t_now_ms();
	rec_connect(loop, &b.addr, 1, &o, &r);
	RUN_UNTIL(loop, 5000, r.closes == 1);
	cr_assert_eq(r.opens, 0,
		     "the kernel accepted a SYN on a full backlog: the test's "
		     "premise does not hold here");
	cr_assert_eq(r.close_err, TK_ECONNTIMEDOUT, "close(%s)",
		     tk_err_name(r.close_err));
	cr_assert_geq(r.t_close - t0, 300);
	cr_assert_lt(r.t_close - t0, 2000, "took %llu ms",
		     (unsigned long long)(r.t_close - t0));
	snprintf(want, sizeof(want), "%s: %s", t_fmt(&b.addr, where),
		 tk_strerror(TK_ECONNTIMEDOUT));
	cr_assert_str_eq(r.last_error, want);
	blackhole_close(&b);
	tk_loop_free(loop);
}

/* One deadline for all addresses: two silent ones do not double it. */
Test(conn, connect_timeout_covers_the_whole_list)
{
	struct tk_loop *loop = t_loop_new();
	struct blackhole b1, b2;
	struct tk_addr list[2];
	struct tk_conn_opts o;
	struct rec r = { 0 };
	uint64_t t0;

	blackhole_open(&b1, "127.0.0.1");
	blackhole_open(&b2, "127.0.0.1");
	list[0] = b1.addr;
	list[1] = b2.addr;
	tk_conn_opts_init(&o);
	o.connect_timeout_ms = 400;
	tk_loop_update_time(loop);
	t0 = t_now_ms();
	rec_connect(loop, list, 2, &o, &r);
	RUN_UNTIL(loop, 5000, r.closes == 1);
	cr_assert_eq(r.close_err, TK_ECONNTIMEDOUT);
	cr_assert_geq(r.t_close - t0, 400);
	cr_assert_lt(r.t_close - t0, 2000);
	blackhole_close(&b1);
	blackhole_close(&b2);
	tk_loop_free(loop);
}

Test(conn, happy_eyeballs_moves_on_from_a_silent_address)
{
	struct tk_loop *loop = t_loop_new();
	struct blackhole b;
	struct tk_addr list[2], good;
	struct tk_server *s;
	struct tk_conn_opts o;
	struct rec r = { 0 };
	struct tk_conn *c;
	uint64_t t0;

	blackhole_open(&b, "127.0.0.1");
	s = t_server(loop, "127.0.0.1", NULL, &tk_service_echo, NULL, &good);
	list[0] = b.addr;
	list[1] = good;
	tk_conn_opts_init(&o);
	o.connect_timeout_ms = 5000;
	tk_loop_update_time(loop);
	t0 = t_now_ms();
	c = rec_connect(loop, list, 2, &o, &r);
	RUN_UNTIL(loop, 5000, r.opens == 1 || r.closes == 1);
	cr_assert_eq(r.opens, 1, "closed: %s", r.last_error);
	cr_assert(tk_addr_equal(tk_conn_peer(c), &good));
	/* The second address waited its turn, but not the whole deadline. */
	cr_assert_geq(r.t_open - t0, TK_HAPPY_EYEBALLS_DELAY_MS);
	cr_assert_lt(r.t_open - t0, 2000);
	tk_conn_close(c, 0);
	RUN_UNTIL(loop, 1000, r.closes == 1);
	tk_server_free(s);
	blackhole_close(&b);
	rec_free(&r);
	tk_loop_free(loop);
}

Test(conn, close_or_end_while_connecting)
{
	struct tk_loop *loop = t_loop_new();
	struct blackhole b;
	struct rec r1 = { 0 }, r2 = { 0 };
	struct tk_conn *c1, *c2;

	blackhole_open(&b, "127.0.0.1");
	c1 = rec_connect(loop, &b.addr, 1, NULL, &r1);
	c2 = rec_connect(loop, &b.addr, 1, NULL, &r2);
	cr_assert(!tk_conn_is_open(c1));
	cr_assert_eq(tk_conn_write(c1, "x", 1), -ENOTCONN);
	tk_conn_close(c1, -ECANCELED);
	tk_conn_end(c2);
	RUN_UNTIL(loop, 1000, r1.closes == 1 && r2.closes == 1);
	cr_assert_eq(r1.opens + r2.opens, 0);
	cr_assert_eq(r1.close_err, -ECANCELED);
	cr_assert_eq(r2.close_err, 0);
	T_ASSERT_FREED(r1.gone);
	T_ASSERT_FREED(r2.gone);
	blackhole_close(&b);
	tk_loop_free(loop);
}

Test(conn, connect_bad_arguments_call_nothing)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr a = t_addr("127.0.0.1", 9);
	struct tk_addrlist empty = { 0 }, one = t_list(&a, 1);
	struct tk_conn *c = (struct tk_conn *)&a;
	struct rec r = { 0 };

	cr_assert_eq(tk_conn_connect(loop, &empty, NULL, &rec_svc, &r, &c),
		     -EINVAL);
	cr_assert_eq(tk_conn_connect(loop, NULL, NULL, &rec_svc, &r, &c),
		     -EINVAL);
	cr_assert_eq(tk_conn_connect(loop, &one, NULL, NULL, &r, &c), -EINVAL);
	cr_assert_eq(c, (struct tk_conn *)&a, "*out changed on failure");
	t_run_for(loop, 20);
	cr_assert_eq(r.opens + r.closes, 0);
	tk_loop_free(loop);
}

Test(conn, source_address)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr sa, src = t_addr("127.0.0.1", 0);
	struct tk_addr src6 = t_addr("::1", 0);
	struct tk_server *s =
		t_server(loop, "127.0.0.1", NULL, &tk_service_echo, NULL, &sa);
	struct tk_conn_opts o;
	struct rec r = { 0 }, r6 = { 0 };
	struct tk_conn *c;

	tk_conn_opts_init(&o);
	o.source = &src;
	c = rec_connect(loop, &sa, 1, &o, &r);
	o.source = &src6; /* opts are copied: this changes nothing for c */
	RUN_UNTIL(loop, 3000, r.opens == 1);
	cr_assert_str_eq(
		tk_addr_format_ip(tk_conn_local(c), (char[64]){ 0 }, 64),
		"127.0.0.1");
	tk_conn_close(c, 0);
	/* A source of the wrong family fails that address. */
	rec_connect(loop, &sa, 1, &o, &r6);
	RUN_UNTIL(loop, 3000, r.closes == 1 && r6.closes == 1);
	cr_assert_eq(r6.opens, 0);
	cr_assert_eq(r6.close_err, -EAFNOSUPPORT);
	tk_server_free(s);
	rec_free(&r);
	tk_loop_free(loop);
}

/* A client connection gets the same socket options as a server's. */
Test(conn, client_socket_nodelay_and_unsent_bound)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr sa;
	struct tk_server *s =
		t_server(loop, "127.0.0.1", NULL, &tk_service_echo, NULL, &sa);
	struct tk_conn_opts o;
	struct rec r = { 0 };
	struct tk_conn *c;

	tk_conn_opts_init(&o);
	o.max_pending = 20480;
	c = rec_connect(loop, &sa, 1, &o, &r);
	RUN_UNTIL(loop, 3000, r.opens == 1);
	cr_expect_eq(t_sockopt(tk_conn_fd(c), IPPROTO_TCP, TCP_NODELAY), 1);
	cr_expect_eq(t_sockopt(tk_conn_fd(c), IPPROTO_TCP, TCP_NOTSENT_LOWAT),
		     20480);
	tk_conn_close(c, 0);
	RUN_UNTIL(loop, 3000, r.closes == 1);
	tk_server_free(s);
	rec_free(&r);
	tk_loop_free(loop);
}

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

/* A client and a raw peer accepted by hand from a raw listener. */
struct pair {
	struct tk_loop *loop;
	int lfd;
	struct tk_addr addr;
	struct rec r;
	struct tk_conn *c;
	struct peer p;
};

static void
pair_open(struct pair *x, const struct tk_conn_opts *o, int peer_rcvbuf)
{
	memset(x, 0, sizeof(*x));
	x->loop = t_loop_new();
	x->lfd = t_raw_listen("127.0.0.1", 8, &x->addr);
	/* Accepted sockets inherit it: a small window fills up soon. */
	if (peer_rcvbuf > 0)
		cr_assert(setsockopt(x->lfd, SOL_SOCKET, SO_RCVBUF,
				     &peer_rcvbuf, sizeof(peer_rcvbuf)) == 0);
	x->c = rec_connect(x->loop, &x->addr, 1, o, &x->r);
	RUN_UNTIL(x->loop, 3000, x->r.opens == 1);
	peer_accept(&x->p, x->loop, x->lfd);
}

static void
pair_close(struct pair *x)
{
	if (x->r.closes == 0) {
		tk_conn_close(x->c, 0);
		RUN_UNTIL(x->loop, 1000, x->r.closes == 1);
	}
	peer_free(&x->p);
	close(x->lfd);
	rec_free(&x->r);
	tk_loop_free(x->loop);
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

/*
 * A connection on the short transport (short_tp.h) and a raw peer on the
 * other end of its socketpair.  svc NULL: the recording service, on x->r.
 */
struct spair {
	struct tk_loop *loop;
	struct short_tp st;
	struct rec r;
	struct tk_conn *c;
	struct peer p;
};

static void
spair_open(struct spair *x, size_t max, unsigned eagain_every,
	   const struct tk_conn_opts *o, const struct tk_service *svc)
{
	int fd;

	memset(x, 0, sizeof(*x));
	x->loop = t_loop_new();
	cr_assert_not_null(x->loop);
	x->st.max = max;
	x->st.eagain_every = eagain_every;
	x->c = short_tp_conn(x->loop, &x->st, o, svc ? svc : &rec_svc,
			     svc ? NULL : &x->r, &fd);
	peer_adopt(&x->p, x->loop, fd);
}

static void
spair_close(struct spair *x)
{
	/* The transport's close runs when c is freed. */
	if (!x->st.closed) {
		tk_conn_close(x->c, 0);
		RUN_UNTIL(x->loop, 1000, x->st.closed);
	}
	peer_free(&x->p);
	rec_free(&x->r);
	tk_loop_free(x->loop);
}

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

/*
 * This executable's getaddrinfo(): "slow.tk-test" is held until the test
 * writes to slow_pipe (10 s at most), then resolves as 127.0.0.1; every
 * other name goes to the system's.  A resolution in flight, on demand.
 */
static int slow_pipe[2] = { -1, -1 };
static atomic_int slow_returned;

typedef int (*getaddrinfo_fn)(const char *, const char *,
			      const struct addrinfo *, struct addrinfo **);

int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
	    struct addrinfo **res)
{
	getaddrinfo_fn real = (getaddrinfo_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	bool slow = node != NULL && strcmp(node, "slow.tk-test") == 0;
	int rc;

	if (slow) {
		struct pollfd p = { .fd = slow_pipe[0], .events = POLLIN };

		(void)poll(&p, 1, 10000);
		node = "127.0.0.1";
	}
	rc = real(node, service, hints, res);
	if (slow)
		atomic_store(&slow_returned, 1);
	return rc;
}

static void
slow_setup(void)
{
	cr_assert_eq(pipe2(slow_pipe, O_CLOEXEC), 0);
	atomic_store(&slow_returned, 0);
}

/* Let the held resolution go, and wait until it has returned. */
static void
slow_release(void)
{
	uint64_t end = t_now_ms() + 5000;

	cr_assert_eq(write(slow_pipe[1], "x", 1), 1);
	while (!atomic_load(&slow_returned)) {
		struct pollfd none = { .fd = -1 };

		cr_assert_lt(t_now_ms(), end, "the resolver never returned");
		(void)poll(&none, 1, 5);
	}
}

static void
slow_teardown(void)
{
	close(slow_pipe[0]);
	close(slow_pipe[1]);
}

static void
port_text(const struct tk_addr *a, char buf[16])
{
	snprintf(buf, 16, "%u", (unsigned)tk_addr_port(a));
}

/* By name: resolved off the loop, then connected; data flows. */
Test(conn, connect_host_resolves_then_connects)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr sa;
	struct tk_server *s =
		t_server(loop, "127.0.0.1", NULL, &tk_service_echo, NULL, &sa);
	struct tk_conn *c = NULL;
	struct rec r = { 0 };
	char port[16];

	port_text(&sa, port);
	cr_assert_eq(tk_conn_connect_host(loop, "localhost", port, NULL,
					  &rec_svc, &r, &c),
		     0);
	cr_assert_not_null(c);
	cr_assert_eq(r.opens + r.closes, 0, "a callback inside the call");
	cr_assert_eq(tk_conn_write(c, "x", 1), -ENOTCONN);
	RUN_UNTIL(loop, 5000, r.opens == 1 || r.closes == 1);
	cr_assert_eq(r.opens, 1, "closed: %s", r.last_error);
	cr_assert(tk_addr_equal(tk_conn_peer(c), &sa));
	cr_assert_eq(tk_conn_write(c, "by name", 7), 0);
	RUN_UNTIL(loop, 3000, r.in_len == 7);
	cr_assert(rec_got(&r, "by name"));
	tk_conn_close(c, 0);
	RUN_UNTIL(loop, 1000, r.closes == 1);
	cr_assert_str_eq(r.log, "odc");
	tk_server_free(s);
	rec_free(&r);
	tk_loop_free(loop);
}

/* A resolution error closes c with it, and names the host. */
Test(conn, connect_host_resolution_error_closes_with_it)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_conn *c = NULL;
	struct rec r = { 0 };
	char want[160];

	cr_assert_eq(tk_conn_connect_host(loop, "127.0.0.1", "no-such-service",
					  NULL, &rec_svc, &r, &c),
		     0);
	RUN_UNTIL(loop, 5000, r.closes == 1);
	cr_assert_eq(r.opens, 0);
	cr_assert_eq(r.close_err, TK_EBADPORT, "close(%d)", r.close_err);
	snprintf(want, sizeof(want), "127.0.0.1: %s", tk_strerror(TK_EBADPORT));
	cr_assert_str_eq(r.last_error, want);
	T_ASSERT_FREED(r.gone);
	rec_free(&r);
	tk_loop_free(loop);
}

Test(conn, connect_host_bad_arguments_call_nothing)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_conn *c = NULL;
	struct rec r = { 0 };

	cr_assert_eq(
		tk_conn_connect_host(loop, NULL, "1", NULL, &rec_svc, &r, &c),
		-EINVAL);
	cr_assert_eq(tk_conn_connect_host(loop, "localhost", "1", NULL, NULL,
					  &r, &c),
		     -EINVAL);
	cr_assert_null(c);
	cr_assert_eq(tk_loop_walk(loop, NULL, NULL), 0);
	tk_loop_free(loop);
	cr_assert_eq(r.opens + r.closes, 0);
}

/*
 * Closed while the name resolves: the close callback runs once with the
 * code given, and nothing follows when the answer comes (no open, no
 * connect: the listener sees no one).
 */
Test(conn, connect_host_closed_while_resolving, .init = slow_setup,
     .fini = slow_teardown)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr a;
	int lfd = t_raw_listen("127.0.0.1", 8, &a);
	struct tk_conn *c = NULL;
	struct rec r = { 0 };
	char port[16];

	t_nonblock(lfd);
	port_text(&a, port);
	cr_assert_eq(tk_conn_connect_host(loop, "slow.tk-test", port, NULL,
					  &rec_svc, &r, &c),
		     0);
	t_run_for(loop, 20);
	cr_assert_eq(r.opens + r.closes, 0);
	tk_conn_close(c, -ESHUTDOWN);
	RUN_UNTIL(loop, 1000, r.closes == 1);
	cr_assert_eq(r.close_err, -ESHUTDOWN);
	cr_assert_str_eq(r.log, "c");
	T_ASSERT_FREED(r.gone);
	slow_release();
	t_run_for(loop, 100);
	cr_assert_eq(r.opens, 0, "opened after close");
	cr_assert_eq(r.closes, 1);
	cr_assert_eq(accept(lfd, NULL, NULL), -1, "connected after close");
	cr_assert_eq(errno, EAGAIN);
	close(lfd);
	rec_free(&r);
	tk_loop_free(loop);
}

/* The held name resolves in the end: the connect goes on from there. */
Test(conn, connect_host_waits_for_a_slow_resolver, .init = slow_setup,
     .fini = slow_teardown)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr a;
	int lfd = t_raw_listen("127.0.0.1", 8, &a);
	struct tk_conn *c = NULL;
	struct rec r = { 0 };
	char port[16];

	port_text(&a, port);
	cr_assert_eq(tk_conn_connect_host(loop, "slow.tk-test", port, NULL,
					  &rec_svc, &r, &c),
		     0);
	/* The loop is not blocked meanwhile. */
	t_run_for(loop, 50);
	cr_assert_eq(r.opens + r.closes, 0);
	slow_release();
	RUN_UNTIL(loop, 3000, r.opens == 1 || r.closes == 1);
	cr_assert_eq(r.opens, 1, "closed: %s", r.last_error);
	tk_conn_close(c, 0);
	RUN_UNTIL(loop, 1000, r.closes == 1);
	close(lfd);
	rec_free(&r);
	tk_loop_free(loop);
}

/*
 * The loop freed while a name resolves: the close callback runs with
 * -ECANCELED and the late answer touches neither loop nor connection
 * (AddressSanitizer would see it).
 */
Test(conn, connect_host_loop_freed_while_resolving, .init = slow_setup,
     .fini = slow_teardown)
{
	struct tk_loop *loop = t_loop_new(), *idle = t_loop_new();
	struct tk_conn *c = NULL;
	struct rec r = { 0 };

	cr_assert_eq(tk_conn_connect_host(loop, "slow.tk-test", "9", NULL,
					  &rec_svc, &r, &c),
		     0);
	tk_loop_free(loop);
	cr_assert_eq(r.closes, 1);
	cr_assert_eq(r.close_err, -ECANCELED);
	slow_release();
	t_run_for(idle, 100); /* the resolver thread finishes meanwhile */
	tk_loop_free(idle);
	rec_free(&r);
}

/*
 * Closed or freed at once, many times over: whichever of close, answer and
 * post comes first, one close callback and nothing after (races for the
 * sanitizers to see).
 */
Test(conn, connect_host_cancel_races)
{
	struct tk_loop *idle = t_loop_new();

	for (int i = 0; i < 40; i++) {
		struct tk_loop *loop = t_loop_new();
		struct tk_conn *c = NULL;
		struct rec r = { 0 };

		cr_assert_eq(tk_conn_connect_host(loop, "127.0.0.1", "9", NULL,
						  &rec_svc, &r, &c),
			     0);
		if (i % 2 == 0) {
			tk_conn_close(c, 0);
			t_run_for(loop, i % 4 == 0 ? 0 : 2);
		} else if (i % 3 == 0) {
			t_run_for(idle, 1); /* the answer is likely posted */
		}
		tk_loop_free(loop);
		cr_assert_eq(r.closes, 1, "round %d: %d closes", i, r.closes);
		rec_free(&r);
	}
	t_run_for(idle, 100); /* the last threads finish meanwhile */
	tk_loop_free(idle);
}

/* A line-framing service that records every delivery as it came. */
struct lrec {
	struct tk_conn *c;
	char got[16][48];
	int n;
	bool eof;
	int closes, close_err;
	int pause_at; /* pause after this line (1: the first), 0: never */
	bool echo;    /* write every line back */
};

static int
lrec_open(struct tk_conn *c, void *arg)
{
	((struct lrec *)arg)->c = c;
	return 0;
}

static void
lrec_data(struct tk_conn *c, const char *d, ssize_t n, void *arg)
{
	struct lrec *l = arg;

	cr_assert(!l->eof, "data after EOF");
	if (n == TK_EOF) {
		l->eof = true;
		tk_conn_end(c);
		return;
	}
	cr_assert_gt(n, 0);
	cr_assert_lt(n, (ssize_t)sizeof(l->got[0]), "a %zd-byte line", n);
	cr_assert_lt(l->n, 16);
	memcpy(l->got[l->n], d, (size_t)n);
	l->got[l->n++][n] = '\0';
	if (l->echo)
		cr_assert_eq(tk_conn_write(c, d, (size_t)n), 0);
	if (l->pause_at == l->n)
		tk_conn_pause(c);
}

static void
lrec_close(struct tk_conn *c, int err, void *arg)
{
	struct lrec *l = arg;

	(void)c;
	l->closes++;
	l->close_err = err;
}

static const struct tk_service lrec_svc = {
	.name = "lrec",
	.flags = TK_SERVICE_LINE_FRAMING,
	.open = lrec_open,
	.data = lrec_data,
	.close = lrec_close,
};

static const struct tk_service lrec_text_svc = {
	.name = "lrec-text",
	.flags = TK_SERVICE_LINE_FRAMING | TK_SERVICE_TEXT,
	.open = lrec_open,
	.data = lrec_data,
	.close = lrec_close,
};

static void
lrec_expect(const struct lrec *l, const char *const *want, int n)
{
	cr_assert_eq(l->n, n, "%d lines, not %d (first: \"%s\")", l->n, n,
		     l->got[0]);
	for (int i = 0; i < n; i++)
		cr_assert_str_eq(l->got[i], want[i], "line %d", i);
}

/*
 * Feed in[0..k) then the rest and a FIN, for every k, through reads of
 * (k % 4) + 1 bytes or more: the same lines come out of every split.
 */
static void
frame_every_split(const struct tk_service *svc, size_t max_line, const char *in,
		  const char *const *want, int nwant, int close_err,
		  const char *peer_gets)
{
	size_t len = strlen(in);

	for (size_t k = 0; k <= len; k++) {
		struct tk_conn_opts o;
		struct spair x;
		struct lrec l = { 0 };
		int fd;

		tk_conn_opts_init(&o);
		o.no_delay = false;
		o.max_line = max_line;
		memset(&x, 0, sizeof(x));
		x.loop = t_loop_new();
		x.st.max = k % 4 + 1 + (k % 3 == 0 ? 64 : 0);
		x.c = short_tp_conn(x.loop, &x.st, &o, svc, &l, &fd);
		peer_adopt(&x.p, x.loop, fd);
		if (k > 0)
			peer_send(&x.p, in, k);
		RUN_UNTIL(x.loop, 3000,
			  l.closes == 1 || tk_conn_bytes_in(x.c) == k);
		if (l.closes == 0 && k < len)
			peer_send(&x.p, in + k, len - k);
		if (l.closes == 0)
			peer_shutdown(&x.p);
		RUN_UNTIL(x.loop, 3000, l.closes == 1 && x.p.eof);
		cr_assert_eq(l.close_err, close_err, "split %zu: close(%d)", k,
			     l.close_err);
		lrec_expect(&l, want, nwant);
		cr_assert_eq(l.eof, close_err == 0, "split %zu", k);
		cr_assert(peer_got(&x.p, peer_gets), "split %zu: peer got %.*s",
			  k, (int)x.p.in_len, x.p.in);
		spair_close(&x);
	}
}

Test(conn, line_framing_one_line_per_call_at_every_split)
{
	static const char *const want[] = { "ab\n", "cd\r\n", "\n",
					    "\r\n", "efgh\n", "last" };

	frame_every_split(&lrec_svc, 0, "ab\ncd\r\n\n\r\nefgh\nlast", want, 6,
			  0, "");
}

Test(conn, line_framing_no_last_partial_line)
{
	static const char *const want[] = { "one\n", "two\n" };

	frame_every_split(&lrec_svc, 0, "one\ntwo\n", want, 2, 0, "");
}

/*
 * max_line 4: "abcd\r\n" fits, "toolong" does not: the lines before it
 * are delivered, it and everything after are not; a text service's peer
 * is told why, then sees the end.
 */
Test(conn, line_framing_too_long_at_every_split)
{
	static const char *const want[] = { "ok\n", "abcd\r\n", "wxyz\n" };

	frame_every_split(&lrec_text_svc, 4, "ok\nabcd\r\nwxyz\ntoolong\nno\n",
			  want, 3, TK_ELINETOOLONG, "error: line too long\n");
	frame_every_split(&lrec_svc, 4, "ok\nabcd\r\nwxyz\nabcde", want, 3,
			  TK_ELINETOOLONG, "");
}

/* Too long is known before the newline comes: no waiting for it. */
Test(conn, line_framing_too_long_without_newline)
{
	struct tk_conn_opts o;
	struct spair x;
	struct lrec l = { 0 };
	int fd;

	tk_conn_opts_init(&o);
	o.no_delay = false;
	o.max_line = 8;
	memset(&x, 0, sizeof(x));
	x.loop = t_loop_new();
	x.st.max = 1024;
	x.c = short_tp_conn(x.loop, &x.st, &o, &lrec_text_svc, &l, &fd);
	peer_adopt(&x.p, x.loop, fd);
	peer_send_str(&x.p, "123456789");
	RUN_UNTIL(x.loop, 3000, x.p.eof);
	peer_shutdown(&x.p); /* spares the linger */
	RUN_UNTIL(x.loop, 3000, l.closes == 1);
	cr_assert_eq(l.close_err, TK_ELINETOOLONG);
	cr_assert_eq(l.n, 0);
	cr_assert(peer_got(&x.p, "error: line too long\n"));
	spair_close(&x);
}

/* A pause inside data holds the lines not yet delivered, and the EOF. */
Test(conn, line_framing_pause_holds_the_rest)
{
	static const char *const want[] = { "1\n", "22\n", "333\n", "4" };
	struct spair x;
	struct lrec l = { .pause_at = 1 };
	int fd;

	memset(&x, 0, sizeof(x));
	x.loop = t_loop_new();
	x.st.max = 1024;
	x.c = short_tp_conn(x.loop, &x.st, NULL, &lrec_svc, &l, &fd);
	peer_adopt(&x.p, x.loop, fd);
	peer_send_str(&x.p, "1\n22\n333\n4");
	peer_shutdown(&x.p);
	RUN_UNTIL(x.loop, 3000, tk_conn_bytes_in(x.c) == 10);
	t_run_for(x.loop, 50);
	cr_assert_eq(l.n, 1, "delivered while paused");
	cr_assert(!l.eof);
	tk_conn_resume(x.c);
	RUN_UNTIL(x.loop, 3000, l.closes == 1);
	lrec_expect(&l, want, 4);
	cr_assert(l.eof);
	cr_assert_eq(l.close_err, 0);
	spair_close(&x);
}

/*
 * line_timeout_ms: a line must be complete in time (the first from the
 * open); between lines no deadline runs.
 */
Test(conn, line_framing_line_deadline)
{
	struct tk_conn_opts o;
	struct spair x;
	struct lrec l = { 0 };
	uint64_t t0;
	int fd;

	tk_conn_opts_init(&o);
	o.no_delay = false;
	o.line_timeout_ms = 200;
	memset(&x, 0, sizeof(x));
	x.loop = t_loop_new();
	x.st.max = 1024;
	x.c = short_tp_conn(x.loop, &x.st, &o, &lrec_svc, &l, &fd);
	peer_adopt(&x.p, x.loop, fd);
	peer_send_str(&x.p, "first\n");
	RUN_UNTIL(x.loop, 3000, l.n == 1);
	t_run_for(x.loop, 400); /* between lines: no deadline */
	cr_assert_eq(l.closes, 0, "closed between lines");
	t0 = t_now_ms();
	peer_send_str(&x.p, "sec");
	RUN_UNTIL(x.loop, 3000, l.closes == 1);
	cr_assert_eq(l.close_err, TK_ELINETIMEOUT);
	cr_assert_geq(t_now_ms() - t0, 190);
	cr_assert_eq(l.n, 1);
	spair_close(&x);
}

/*
 * A server's line-framing service takes the server's max_line, and its
 * busy line goes to TK_SERVICE_TEXT services only.
 */
Test(conn, line_framing_server_max_line)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server_opts so;
	struct tk_addr sa;
	struct tk_server *s;
	struct lrec l = { .echo = true };
	struct peer p;

	tk_server_opts_init(&so);
	so.max_line = 5;
	s = t_server(loop, "127.0.0.1", &so, &lrec_text_svc, &l, &sa);
	peer_connect(&p, loop, &sa);
	peer_send_str(&p, "12345\n123456\n");
	RUN_UNTIL(loop, 3000, p.eof);
	cr_assert(peer_got(&p, "12345\nerror: line too long\n"),
		  "peer got %.*s", (int)p.in_len, p.in);
	peer_shutdown(&p);
	RUN_UNTIL(loop, 3000, l.closes == 1);
	cr_assert_eq(l.close_err, TK_ELINETOOLONG);
	peer_free(&p);
	tk_server_free(s);
	tk_loop_free(loop);
}

/* Paused on the last line, which had no newline: its EOF waits, once. */
Test(conn, line_framing_pause_on_the_last_partial_line)
{
	static const char *const want[] = { "a\n", "last" };
	struct spair x;
	struct lrec l = { .pause_at = 2 };
	int fd;

	memset(&x, 0, sizeof(x));
	x.loop = t_loop_new();
	x.st.max = 1024;
	x.c = short_tp_conn(x.loop, &x.st, NULL, &lrec_svc, &l, &fd);
	peer_adopt(&x.p, x.loop, fd);
	peer_send_str(&x.p, "a\nlast");
	peer_shutdown(&x.p);
	RUN_UNTIL(x.loop, 3000, l.n == 2);
	t_run_for(x.loop, 50);
	cr_assert(!l.eof, "EOF while paused");
	tk_conn_resume(x.c);
	RUN_UNTIL(x.loop, 3000, l.closes == 1);
	lrec_expect(&l, want, 2);
	cr_assert(l.eof);
	spair_close(&x);
}
