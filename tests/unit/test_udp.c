/* test_udp.c: UDP sockets on the loop and datagram servers (echo, discard). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(udp, .timeout = 30);

#define MAXGOT 512

/* What a client socket received. */
struct got {
	size_t n;
	size_t len[MAXGOT];
	size_t full_len[MAXGOT];
	bool truncated[MAXGOT];
	unsigned char *data[MAXGOT];
	int err;
	size_t want; /* stop the loop at this many */
	struct tk_loop *loop;
};

static void
on_recv(struct tk_udp *u, const struct tk_udp_dgram *d, int err, void *arg)
{
	struct got *g = arg;

	(void)u;
	if (err != 0) {
		g->err = err;
		tk_loop_stop(g->loop);
		return;
	}
	cr_assert_lt(g->n, MAXGOT);
	g->len[g->n] = d->len;
	g->full_len[g->n] = d->full_len;
	g->truncated[g->n] = d->truncated;
	g->data[g->n] = malloc(d->len + 1);
	memcpy(g->data[g->n], d->data, d->len);
	if (++g->n == g->want)
		tk_loop_stop(g->loop);
}

static void
got_free(struct got *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->data[i]);
}

static void
on_deadline(struct tk_timer *t, void *arg)
{
	(void)t;
	tk_loop_stop(arg);
}

/* Run the loop until it stops, or 5 s pass (a failure then). */
static void
run_bounded(struct tk_loop *loop)
{
	struct tk_timer *t = t_timer_new(loop, on_deadline, loop);

	cr_assert_eq(tk_timer_start(t, 5000, 0), 0);
	cr_assert_eq(tk_loop_run(loop), 0);
	tk_timer_free(t);
}

static struct tk_addr
lo4(uint16_t port)
{
	struct tk_addr a;

	cr_assert_eq(tk_addr_from_ip("127.0.0.1", port, &a), 0);
	return a;
}

static struct tk_udp_server *
server_on(struct tk_loop *loop, const struct tk_udp_service *svc,
	  unsigned workers)
{
	struct tk_udp_server_opts o;
	struct tk_udp_server *s;
	struct tk_addr a = lo4(0);

	tk_udp_server_opts_init(&o);
	o.workers = workers;
	cr_assert_eq(tk_udp_server_new(loop, &o, svc, NULL, &s), 0);
	cr_assert_eq(tk_udp_server_bind(s, &a, false), 0);
	cr_assert_eq(tk_udp_server_start(s), 0);
	cr_assert_neq(tk_addr_port(tk_udp_server_addr(s, 0)), 0);
	return s;
}

static struct tk_udp *
client_to(struct tk_loop *loop, const struct tk_addr *peer, size_t recv_size,
	  struct got *g)
{
	static const struct tk_udp_cb cb = { .recv = on_recv };
	struct tk_udp_opts o = { .peer = peer, .recv_size = recv_size };
	struct tk_udp *u;

	g->loop = loop;
	cr_assert_eq(tk_udp_open(loop, &o, &cb, g, &u), 0);
	return u;
}

/* Datagrams of 1, 1400 and 65,507 bytes come back whole, one by one. */
Test(udp, echo_keeps_boundaries)
{
	static const size_t sizes[] = { 1, 1400, TK_UDP_MAX_PAYLOAD, 0, 7 };
	struct tk_loop *loop = t_loop_new();
	struct tk_udp_server *s = server_on(loop, &tk_udp_service_echo, 1);
	struct got g = { .want = 5 };
	struct tk_udp *u = client_to(loop, tk_udp_server_addr(s, 0), 0, &g);
	struct tk_udp_server_stats st;
	unsigned char *buf = malloc(TK_UDP_MAX_PAYLOAD);

	for (size_t i = 0; i < TK_UDP_MAX_PAYLOAD; i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	for (size_t i = 0; i < 5; i++) {
		buf[0] = (unsigned char)i;
		cr_assert_eq(tk_udp_send(u, NULL, buf, sizes[i]), 0);
	}
	run_bounded(loop);
	cr_assert_eq(g.err, 0, "%s", tk_strerror(g.err));
	cr_assert_eq(g.n, 5);
	for (size_t i = 0; i < 5; i++) {
		cr_assert_eq(g.len[i], sizes[i], "datagram %zu: %zu bytes", i,
			     g.len[i]);
		cr_assert_not(g.truncated[i]);
		if (sizes[i] > 0) {
			cr_assert_eq(g.data[i][0], (unsigned char)i);
			cr_assert_eq(
				memcmp(g.data[i] + 1, buf + 1, sizes[i] - 1),
				0);
		}
	}
	tk_udp_server_get_stats(s, &st);
	cr_assert_eq(st.datagrams_in, 5);
	cr_assert_eq(st.datagrams_out, 5);
	cr_assert_eq(st.bytes_in, 1 + 1400 + TK_UDP_MAX_PAYLOAD + 7);
	cr_assert_eq(st.bytes_out, st.bytes_in);
	free(buf);
	got_free(&g);
	tk_udp_close(u);
	tk_udp_server_free(s);
	tk_loop_free(loop);
}

/* A datagram longer than the receive buffer: reported, with its size. */
Test(udp, truncation_reported)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_udp_server *s = server_on(loop, &tk_udp_service_echo, 1);
	struct got g = { .want = 2 };
	struct tk_udp *u = client_to(loop, tk_udp_server_addr(s, 0), 100, &g);
	char big[1000], small[100];

	memset(big, 'b', sizeof(big));
	memset(small, 's', sizeof(small));
	cr_assert_eq(tk_udp_send(u, NULL, big, sizeof(big)), 0);
	cr_assert_eq(tk_udp_send(u, NULL, small, sizeof(small)), 0);
	run_bounded(loop);
	cr_assert_eq(g.n, 2);
	cr_assert(g.truncated[0]);
	cr_assert_eq(g.len[0], 100);
	cr_assert_eq(g.full_len[0], 1000);
	/* Exactly the buffer's size is not truncated. */
	cr_assert_not(g.truncated[1]);
	cr_assert_eq(g.len[1], 100);
	cr_assert_eq(g.full_len[1], 100);
	got_free(&g);
	tk_udp_close(u);
	tk_udp_server_free(s);
	tk_loop_free(loop);
}

/* Nobody on the port: the ICMP unreachable comes as -ECONNREFUSED. */
Test(udp, port_unreachable_refused)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr a = lo4(0);
	struct got g = { .want = 1 };
	struct tk_udp *u;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	socklen_t len = sizeof(a.u);

	/* A port just freed: nothing listens there. */
	cr_assert_eq(bind(fd, &a.u.sa, a.len), 0);
	cr_assert_eq(getsockname(fd, &a.u.sa, &len), 0);
	close(fd);
	u = client_to(loop, &a, 0, &g);
	cr_assert_eq(tk_udp_send(u, NULL, "x", 1), 0);
	run_bounded(loop);
	cr_assert_eq(g.err, -ECONNREFUSED, "%s", tk_err_name(g.err));
	cr_assert_eq(g.n, 0);
	tk_udp_close(u);
	tk_loop_free(loop);
}

/* Two workers, eight clients, 40 datagrams each: every one answered. */
Test(udp, workers_many_clients)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_udp_server *s = server_on(loop, &tk_udp_service_echo, 2);
	struct got g[8];
	struct tk_udp *u[8];
	struct tk_udp_server_stats st;

	for (int c = 0; c < 8; c++) {
		memset(&g[c], 0, sizeof(g[c]));
		g[c].want = 40;
		u[c] = client_to(loop, tk_udp_server_addr(s, 0), 0, &g[c]);
		for (int i = 0; i < 40; i++) {
			char msg[32];
			int n = snprintf(msg, sizeof(msg), "c%d-%d", c, i);

			cr_assert_eq(tk_udp_send(u[c], NULL, msg, (size_t)n),
				     0);
		}
	}
	for (int c = 0; c < 8; c++) {
		/* Each client's last reply stops the loop once. */
		for (int tries = 0; g[c].n < 40 && tries < 9; tries++)
			run_bounded(loop);
		cr_assert_eq(g[c].n, 40, "client %d: %zu", c, g[c].n);
		for (int i = 0; i < 40; i++) {
			char msg[32];
			int n = snprintf(msg, sizeof(msg), "c%d-%d", c, i);

			cr_assert_eq(g[c].len[i], (size_t)n);
			cr_assert_eq(memcmp(g[c].data[i], msg, (size_t)n), 0);
		}
		got_free(&g[c]);
		tk_udp_close(u[c]);
	}
	tk_udp_server_get_stats(s, &st);
	cr_assert_eq(st.workers, 2);
	cr_assert_eq(st.datagrams_in, 320);
	cr_assert_eq(st.datagrams_out, 320);
	tk_udp_server_free(s);
	tk_loop_free(loop);
}

/* discard: counted, never answered. */
Test(udp, discard_answers_nothing)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_udp_server *s = server_on(loop, &tk_udp_service_discard, 1);
	struct got g = { .want = 1 };
	struct tk_udp *u = client_to(loop, tk_udp_server_addr(s, 0), 0, &g);
	struct tk_udp_server_stats st;

	for (int i = 0; i < 10; i++)
		cr_assert_eq(tk_udp_send(u, NULL, "drop me", 7), 0);
	/* One round at a time until the server has them all. */
	for (int i = 0; i < 200; i++) {
		tk_udp_server_get_stats(s, &st);
		if (st.datagrams_in == 10)
			break;
		cr_assert_eq(tk_loop_run_once(loop, 10), 0);
	}
	cr_assert_eq(st.datagrams_in, 10);
	cr_assert_eq(st.bytes_in, 70);
	cr_assert_eq(st.datagrams_out, 0);
	/* Whatever was to come back has had its chance. */
	for (int i = 0; i < 5; i++)
		cr_assert_eq(tk_loop_run_once(loop, 10), 0);
	cr_assert_eq(g.n, 0);
	tk_udp_close(u);
	tk_udp_server_free(s);
	tk_loop_free(loop);
}

Test(udp, errors)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_udp_server *s = server_on(loop, &tk_udp_service_echo, 2);
	struct tk_udp_server *s2;
	struct got g = { .want = 1 };
	struct tk_udp *u = client_to(loop, tk_udp_server_addr(s, 0), 0, &g);
	static const struct tk_udp_cb cb = { .recv = on_recv };
	struct tk_udp_opts none = { 0 };
	struct tk_udp *bad;
	char *big = calloc(1, 70000);

	cr_assert_eq(tk_udp_send(u, NULL, big, 65528), -EMSGSIZE);
	cr_assert_eq(tk_udp_open(loop, &none, &cb, NULL, &bad), -EINVAL);
	cr_assert_null(bad);
	/* A port in use by another server is in use, not shared. */
	cr_assert_eq(
		tk_udp_server_new(loop, NULL, &tk_udp_service_echo, NULL, &s2),
		0);
	cr_assert_eq(tk_udp_server_bind(s2, tk_udp_server_addr(s, 0), false),
		     -EADDRINUSE);
	cr_assert_eq(tk_udp_server_start(s2), -EDESTADDRREQ);
	cr_assert_eq(tk_udp_service_find("ECHO"), &tk_udp_service_echo);
	cr_assert_eq(tk_udp_service_find("discard"), &tk_udp_service_discard);
	cr_assert_null(tk_udp_service_find("chat"));
	free(big);
	tk_udp_close(u);
	tk_udp_server_free(s2);
	tk_udp_server_free(s);
	tk_loop_free(loop);
}

/*
 * A worker's loop that cannot be made (out of descriptors): the error
 * comes back, nothing is left, and no descriptor that is not the
 * server's is closed on the way out (stdin here).
 */
Test(udp, new_fails_cleanly)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_udp_server_opts o;
	struct tk_udp_server *s = (void *)1;
	struct rlimit old, rl;
	int probe, err;

	tk_udp_server_opts_init(&o);
	o.workers = 8;
	cr_assert_neq(fcntl(0, F_GETFD), -1, "stdin open to begin with");
	probe = dup(0);
	cr_assert_geq(probe, 0);
	close(probe);
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	rl = old;
	rl.rlim_cur = (rlim_t)probe + 5; /* room for two loops, not eight */
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	err = tk_udp_server_new(loop, &o, &tk_udp_service_echo, NULL, &s);
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	cr_assert_eq(err, -EMFILE, "%s", tk_err_name(err));
	cr_assert_null(s);
	cr_assert_neq(fcntl(0, F_GETFD), -1, "stdin closed by the failure");
	tk_loop_free(loop);
}
