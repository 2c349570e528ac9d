/* test_server_plan.c: server.c's bind plan (tk_server_listen_hosts) and
 * the drained event. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "helpers.h"

TestSuite(server_plan, .timeout = 30);

/* Can this machine listen on ::1 at all? */
static bool
have_v6_loopback(void)
{
	struct tk_addr a = t_addr("::1", 0);
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && bind(fd, &a.u.sa, a.len) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

static struct tk_server *
new_server(struct tk_loop *loop, unsigned workers)
{
	struct tk_server_opts o;
	struct tk_server *s;

	tk_server_opts_init(&o);
	o.workers = workers;
	s = t_server_new(loop, &o, &tk_service_echo, NULL);
	cr_assert_not_null(s);
	return s;
}

Test(server_plan, default_is_loopback_on_one_port)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = new_server(loop, 2);
	struct tk_listen_why why;
	char ip[TK_ADDRSTRLEN];
	size_t n;

	cr_assert_eq(tk_server_listen_hosts(s, NULL, 0, 0, 0, &why), 0);
	n = tk_server_listener_count(s);
	cr_assert_eq(n, have_v6_loopback() ? 2 : 1);
	cr_assert_eq(why.skipped_err != 0, n == 1);
	tk_addr_format_ip(tk_server_addr(s, 0), ip, sizeof(ip));
	cr_assert_str_eq(ip, "127.0.0.1");
	cr_assert_neq(tk_addr_port(tk_server_addr(s, 0)), 0);
	if (n == 2) {
		tk_addr_format_ip(tk_server_addr(s, 1), ip, sizeof(ip));
		cr_assert_str_eq(ip, "::1");
		/* Port 0: the one the kernel chose first, for every address. */
		cr_assert_eq(tk_addr_port(tk_server_addr(s, 1)),
			     tk_addr_port(tk_server_addr(s, 0)));
	}
	cr_assert_eq(tk_server_start(s), 0);
	tk_server_free(s);
	tk_loop_free(loop);
}

Test(server_plan, duplicates_once_and_v6_brackets)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = new_server(loop, 1);
	const char *hosts[] = { "127.0.0.1", "127.0.0.1", "127.0.0.1" };

	cr_assert_eq(tk_server_listen_hosts(s, hosts, 3, 0, 0, NULL), 0);
	cr_assert_eq(tk_server_listener_count(s), 1);
	tk_server_free(s);
	if (have_v6_loopback()) {
		const char *v6[] = { "[::1]", "::1" };

		s = new_server(loop, 1);
		cr_assert_eq(tk_server_listen_hosts(s, v6, 2, 0, 0, NULL), 0);
		cr_assert_eq(tk_server_listener_count(s), 1);
		cr_assert_eq(tk_addr_family(tk_server_addr(s, 0)), AF_INET6);
		tk_server_free(s);
	}
	tk_loop_free(loop);
}

/*
 * "::" with "0.0.0.0" on one port only works if "::" is IPv6 only: a
 * dual-stack "::" would hold the IPv4 port as well.
 */
Test(server_plan, v6_wildcard_is_v6only_beside_v4_wildcard)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = new_server(loop, 1);
	const char *hosts[] = { "0.0.0.0", "::" };

	if (!have_v6_loopback()) {
		tk_server_free(s);
		tk_loop_free(loop);
		cr_skip_test("no IPv6");
	}
	cr_assert_eq(tk_server_listen_hosts(s, hosts, 2, 0, 0, NULL), 0);
	cr_assert_eq(tk_server_listener_count(s), 2);
	cr_assert_eq(tk_addr_port(tk_server_addr(s, 0)),
		     tk_addr_port(tk_server_addr(s, 1)));
	tk_server_free(s);
	tk_loop_free(loop);
}

Test(server_plan, bad_hosts_say_which)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = new_server(loop, 1);
	struct tk_listen_why why;
	const char *with_port[] = { "127.0.0.1", "127.0.0.1:80" };
	const char *bad_v6[] = { "::zz" };
	const char *name[] = { "localhost" };

	cr_assert_eq(tk_server_listen_hosts(s, with_port, 2, 0, 0, &why),
		     TK_EBADADDR);
	cr_assert_eq(why.host, with_port[1]);
	cr_assert_eq(tk_server_listen_hosts(s, bad_v6, 1, 0, 0, &why),
		     TK_EBADADDR);
	cr_assert_eq(why.host, bad_v6[0]);
	/* Numeric only: a name is not looked up. */
	cr_assert_lt(
		tk_server_listen_hosts(s, name, 1, 0, TK_LISTEN_NUMERIC, &why),
		0);
	cr_assert_eq(why.host, name[0]);
	cr_assert_eq(tk_server_listener_count(s), 0);
	tk_server_free(s);
	tk_loop_free(loop);
}

/* A port in use on the second address: nothing of the call stays open. */
Test(server_plan, bind_failure_names_the_address_and_undoes)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = new_server(loop, 2);
	struct tk_listen_why why;
	struct tk_addr busy;
	int lfd = t_raw_listen("127.0.0.2", 1, &busy);
	const char *hosts[] = { "127.0.0.1", "127.0.0.2" };
	struct tk_addr a = t_addr("127.0.0.1", tk_addr_port(&busy));

	cr_assert_eq(tk_server_listen_hosts(s, hosts, 2, tk_addr_port(&busy), 0,
					    &why),
		     -EADDRINUSE);
	cr_assert_null(why.host);
	cr_assert(tk_addr_equal(&why.addr, &busy));
	cr_assert_eq(tk_server_listener_count(s), 0);
	/* 127.0.0.1 was let go: that port is free there again. */
	cr_assert_eq(tk_server_listen(s, &a, false), 0);
	close(lfd);
	tk_server_free(s);
	tk_loop_free(loop);
}

/* What the drain tests record, from any thread. */
struct drained {
	atomic_int opened;
	atomic_int drained;
	atomic_bool on_owner; /* DRAINED ran on the owner's thread */
	atomic_ullong active_then;
	pthread_t owner;
};

static void
on_event(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
	 const struct tk_addr *peer, int err, void *arg)
{
	struct drained *d = arg;
	struct tk_server_stats st;

	(void)err;
	if (ev == TK_SERVER_OPEN)
		atomic_fetch_add(&d->opened, 1);
	if (ev != TK_SERVER_DRAINED)
		return;
	cr_assert_null(c);
	cr_assert_null(peer);
	tk_server_get_stats(s, &st);
	atomic_store(&d->active_then, st.active);
	atomic_store(&d->on_owner, pthread_equal(pthread_self(), d->owner));
	atomic_fetch_add(&d->drained, 1);
}

static struct tk_server *
drain_server(struct tk_loop *loop, unsigned workers, struct drained *d,
	     struct tk_addr *a)
{
	struct tk_server_opts o;

	tk_server_opts_init(&o);
	o.workers = workers;
	o.on_event = on_event;
	o.event_arg = d;
	d->owner = pthread_self();
	return t_server(loop, "127.0.0.1", &o, &tk_service_echo, NULL, a);
}

static void
drained_after_last_conn(unsigned workers)
{
	struct tk_loop *loop = t_loop_new();
	struct drained d = { 0 };
	struct tk_addr a;
	struct tk_server *s = drain_server(loop, workers, &d, &a);
	struct peer p[3];

	for (int i = 0; i < 3; i++)
		peer_connect(&p[i], loop, &a);
	RUN_UNTIL(loop, 5000, atomic_load(&d.opened) == 3);
	tk_server_drain(s);
	/* Each session ends with a FIN, and lingers for the peer's. */
	RUN_UNTIL(loop, 5000, p[0].eof && p[1].eof && p[2].eof);
	t_run_for(loop, 50);
	cr_assert_eq(atomic_load(&d.drained), 0, "drained with sessions open");
	peer_free(&p[0]);
	peer_free(&p[1]);
	t_run_for(loop, 50);
	cr_assert_eq(atomic_load(&d.drained), 0, "drained with one open");
	peer_free(&p[2]);
	RUN_UNTIL(loop, 5000, atomic_load(&d.drained) == 1);
	cr_assert_eq(atomic_load(&d.active_then), 0);
	cr_assert(atomic_load(&d.on_owner), "DRAINED off the owner's loop");
	t_run_for(loop, 50);
	cr_assert_eq(atomic_load(&d.drained), 1, "DRAINED more than once");
	tk_server_free(s);
	tk_loop_free(loop);
}

Test(server_plan, drained_after_the_last_connection_one_worker)
{
	drained_after_last_conn(1);
}

Test(server_plan, drained_after_the_last_connection_workers)
{
	drained_after_last_conn(3);
}

Test(server_plan, drained_at_once_without_connections)
{
	struct tk_loop *loop = t_loop_new();
	struct drained d = { 0 };
	struct tk_addr a;
	struct tk_server *s = drain_server(loop, 2, &d, &a);

	tk_server_drain(s);
	/* On the loop, not inside the call. */
	cr_assert_eq(atomic_load(&d.drained), 0);
	RUN_UNTIL(loop, 5000, atomic_load(&d.drained) == 1);
	cr_assert(atomic_load(&d.on_owner));
	tk_server_free(s);
	tk_loop_free(loop);
}

/* A stop without a drain says nothing of draining. */
Test(server_plan, no_drained_without_a_drain)
{
	struct tk_loop *loop = t_loop_new();
	struct drained d = { 0 };
	struct tk_addr a;
	struct tk_server *s = drain_server(loop, 1, &d, &a);
	struct peer p;

	peer_connect(&p, loop, &a);
	RUN_UNTIL(loop, 5000, atomic_load(&d.opened) == 1);
	tk_server_stop(s);
	t_run_for(loop, 50);
	cr_assert_eq(atomic_load(&d.drained), 0);
	peer_free(&p);
	tk_server_free(s);
	tk_loop_free(loop);
}
