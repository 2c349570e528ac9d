/* test_connect.c: connecting: by address list (refused, timeouts, Happy
 * Eyeballs, source address) and by host name (resolution off the loop,
 * cancelled). */
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

/* opts.acl: a name's addresses the list refuses are never tried. */
Test(conn, connect_host_acl_filters_the_addresses)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr sa;
	struct tk_server *s =
		t_server(loop, "127.0.0.1", NULL, &tk_service_echo, NULL, &sa);
	struct tk_conn_opts o;
	struct tk_acl *acl;
	struct tk_conn *c = NULL;
	struct rec r = { 0 }, r2 = { 0 };
	char port[16];

	port_text(&sa, port);
	cr_assert_eq(tk_acl_new(&acl), 0);
	cr_assert_eq(tk_acl_add(acl, TK_ACL_DENY, "127.0.0.0/8", NULL, 0), 0);
	cr_assert_eq(tk_acl_add(acl, TK_ACL_DENY, "::1", NULL, 0), 0);
	tk_conn_opts_init(&o);
	o.acl = acl;
	cr_assert_eq(tk_conn_connect_host(loop, "localhost", port, &o, &rec_svc,
					  &r, &c),
		     0);
	RUN_UNTIL(loop, 5000, r.closes == 1);
	cr_assert_eq(r.opens, 0);
	cr_assert_eq(r.close_err, TK_EDENIED, "close(%d)", r.close_err);
	cr_assert_str_eq(r.last_error, "localhost: address not allowed");
	/* Allowed: only 127.0.0.1 is left, and it is tried. */
	tk_acl_free(acl);
	cr_assert_eq(tk_acl_new(&acl), 0);
	cr_assert_eq(tk_acl_add(acl, TK_ACL_ALLOW, "127.0.0.1", NULL, 0), 0);
	o.acl = acl;
	cr_assert_eq(tk_conn_connect_host(loop, "localhost", port, &o, &rec_svc,
					  &r2, &c),
		     0);
	RUN_UNTIL(loop, 5000, r2.opens == 1 || r2.closes == 1);
	cr_assert_eq(r2.opens, 1, "closed: %s", r2.last_error);
	tk_conn_close(c, 0);
	RUN_UNTIL(loop, 1000, r2.closes == 1);
	tk_server_free(s);
	tk_acl_free(acl);
	rec_free(&r);
	rec_free(&r2);
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
