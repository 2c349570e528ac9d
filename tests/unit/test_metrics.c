/* test_metrics.c: tcpkit/metrics.h, a server's numbers per worker and per
 * listener and its response-latency histogram. */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "helpers.h"

TestSuite(metrics, .timeout = 30);

Test(metrics, latency_bounds_rise_to_inf)
{
	cr_assert_eq(tk_latency_bound_ns(0), 50000u);
	cr_assert_eq(tk_latency_bound_ns(TK_LATENCY_BUCKETS - 2), 10000000000u);
	cr_assert_eq(tk_latency_bound_ns(TK_LATENCY_BUCKETS - 1), UINT64_MAX);
	cr_assert_eq(tk_latency_bound_ns(1000), UINT64_MAX);
	for (unsigned i = 1; i < TK_LATENCY_BUCKETS; i++)
		cr_assert_gt(tk_latency_bound_ns(i),
			     tk_latency_bound_ns(i - 1));
}

/* A blocking client of addr, connected; the loop accepts it later. */
static int
client(const struct tk_addr *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	cr_assert_eq(connect(fd, &addr->u.sa, addr->len), 0);
	return fd;
}

static uint64_t
bytes_out(struct tk_server *s)
{
	struct tk_server_stats st;

	tk_server_get_stats(s, &st);
	return st.bytes_out;
}

static uint64_t
bytes_in(struct tk_server *s)
{
	struct tk_server_stats st;

	tk_server_get_stats(s, &st);
	return st.bytes_in;
}

Test(metrics, an_echo_is_one_answer_on_its_listener)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server_opts o;
	struct tk_server_stats all, w0;
	struct tk_server_latency lat, sum;
	struct tk_addr addr;
	struct tk_server *s;
	uint64_t in_buckets = 0;
	char buf[8];
	int fd;

	tk_server_opts_init(&o);
	s = t_server(loop, "127.0.0.1", &o, &tk_service_echo, NULL, &addr);
	fd = client(&addr);
	cr_assert_eq(send(fd, "hello", 5, 0), 5);
	RUN_UNTIL(loop, 5000, bytes_out(s) == 5);
	cr_assert_eq(recv(fd, buf, sizeof(buf), 0), 5);

	tk_server_get_stats(s, &all);
	cr_assert_eq(tk_server_get_worker_stats(s, 0, &w0), 0);
	cr_assert_eq(w0.workers, 1);
	cr_assert_eq(w0.accepted, 1);
	cr_assert_eq(w0.active, 1);
	cr_assert_eq(w0.bytes_in, all.bytes_in);
	cr_assert_eq(w0.tls_failures, 0);
	cr_assert_eq(tk_server_get_worker_stats(s, 1, &w0), -EINVAL);
	cr_assert_eq(w0.accepted, 0, "zeroed on error");

	cr_assert_eq(tk_server_listener_accepted(s, 0, 0), 1);
	cr_assert_eq(tk_server_listener_accepted(s, 0, 1), 0);
	cr_assert_eq(tk_server_listener_accepted(s, 1, 0), 0);

	cr_assert_eq(tk_server_get_latency(s, 0, &lat), 0);
	cr_assert_eq(lat.count, 1);
	cr_assert_gt(lat.sum_ns, 0);
	for (unsigned i = 0; i < TK_LATENCY_BUCKETS; i++)
		in_buckets += lat.buckets[i];
	cr_assert_eq(in_buckets, 1);
	cr_assert_eq(tk_server_get_latency(s, TK_ALL_WORKERS, &sum), 0);
	cr_assert_eq(memcmp(&sum, &lat, sizeof(sum)), 0);
	cr_assert_eq(tk_server_get_latency(s, 3, &lat), -EINVAL);
	cr_assert_eq(lat.count, 0);
	close(fd);
	tk_server_free(s);
	tk_loop_free(loop);
}

/* Bytes nothing answers are never timed. */
Test(metrics, discard_is_never_an_answer)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server_opts o;
	struct tk_server_latency lat;
	struct tk_addr addr;
	struct tk_server *s;
	int fd;

	tk_server_opts_init(&o);
	s = t_server(loop, "127.0.0.1", &o, &tk_service_discard, NULL, &addr);
	fd = client(&addr);
	cr_assert_eq(send(fd, "hello", 5, 0), 5);
	RUN_UNTIL(loop, 5000, bytes_in(s) == 5);
	cr_assert_eq(tk_server_get_latency(s, TK_ALL_WORKERS, &lat), 0);
	cr_assert_eq(lat.count, 0);
	close(fd);
	tk_server_free(s);
	tk_loop_free(loop);
}

/* Plain text to a TLS server: the handshake fails, and is counted. */
Test(metrics, a_failed_handshake_is_counted)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server_opts o;
	struct tk_server_stats st;
	struct tk_tls_server_opts to = { 0 };
	struct tk_tls_ctx *tls;
	struct tk_addr addr;
	struct tk_server *s;
	int fd;

	cr_assert_eq(tk_tls_ctx_new_server(&to, &tls, NULL, 0), 0);
	tk_server_opts_init(&o);
	o.conn.tls = tls;
	s = t_server(loop, "127.0.0.1", &o, &tk_service_echo, NULL, &addr);
	fd = client(&addr);
	cr_assert_eq(send(fd, "GET / HTTP/1.0\r\n\r\n", 18, 0), 18);
	RUN_UNTIL(loop, 5000, (tk_server_get_stats(s, &st), st.closed == 1));
	cr_assert_eq(st.tls_failures, 1);
	close(fd);
	tk_server_free(s);
	tk_tls_ctx_free(tls);
	tk_loop_free(loop);
}
