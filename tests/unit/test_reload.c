/* test_reload.c: unit tests of a running server's swaps (tcpkit/reload.h):
 * new TLS contexts and access lists for new connections, old ones kept. */
#include <stdio.h>

#include "helpers.h"

TestSuite(reload, .timeout = 30);

/* One client connection: what it saw, and the echo it got back. */
struct cli {
	struct tk_conn *c;
	bool open, closed;
	int close_err;
	char fp[TK_TLS_FPLEN]; /* the server's certificate */
	char got[64];
	size_t len;
};

static int
cli_open(struct tk_conn *c, void *arg)
{
	struct cli *k = arg;

	k->open = true;
	if (tk_conn_is_tls(c))
		cr_assert_eq(tk_conn_tls_peer_fingerprint(c, k->fp), 0);
	return tk_conn_write(c, "a", 1);
}

static void
cli_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct cli *k = arg;

	(void)c;
	if (n == TK_EOF || k->len + (size_t)n > sizeof(k->got))
		return;
	memcpy(k->got + k->len, data, (size_t)n);
	k->len += (size_t)n;
}

static void
cli_close(struct tk_conn *c, int err, void *arg)
{
	struct cli *k = arg;

	(void)c;
	k->closed = true;
	k->close_err = err;
}

static const struct tk_service cli_svc = {
	.name = "reload-client",
	.open = cli_open,
	.data = cli_data,
	.close = cli_close,
};

static struct tk_tls_ctx *
server_ctx(void)
{
	struct tk_tls_server_opts o = { 0 };

	return t_tls_server(&o);
}

static struct tk_tls_ctx *
client_ctx(void)
{
	struct tk_tls_client_opts o = { .insecure = true };

	return t_tls_client(&o);
}

/* Connect k to addr (TLS with cctx, or plain) and wait for its echo. */
static void
connect_echo(struct tk_loop *loop, struct tk_addr *addr,
	     struct tk_tls_ctx *cctx, struct cli *k)
{
	struct tk_addrlist l = t_list(addr, 1);
	struct tk_conn_opts o;

	memset(k, 0, sizeof(*k));
	tk_conn_opts_init(&o);
	o.tls = cctx;
	cr_assert_eq(tk_conn_connect(loop, &l, &o, &cli_svc, k, &k->c), 0);
	RUN_UNTIL(loop, 5000, k->len == 1 || k->closed);
}

/* One more byte on an open connection: it must come back. */
static void
echo_again(struct tk_loop *loop, struct cli *k, const char *what)
{
	size_t want = k->len + 1;

	cr_assert(!k->closed, "%s: closed (%s)", what,
		  tk_strerror(k->close_err));
	cr_assert_eq(tk_conn_write(k->c, "b", 1), 0);
	RUN_UNTIL(loop, 5000, k->len == want || k->closed);
	cr_assert_eq(k->len, want, "%s: no echo after the swap", what);
}

static void
fp_of(const struct tk_tls_ctx *ctx, char fp[TK_TLS_FPLEN])
{
	cr_assert_eq(tk_tls_ctx_fingerprint(ctx, fp), 0);
}

/*
 * A swapped certificate: the connection made before keeps its session
 * (echo goes on), a new one sees the new certificate, and the old
 * context, which the caller freed at once, goes with its last connection.
 */
static void
tls_swap(unsigned workers)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_tls_ctx *a = server_ctx(), *b = server_ctx(), *cctx;
	struct tk_server_opts so;
	struct tk_server *s;
	struct tk_addr addr;
	struct cli before, after;
	char fa[TK_TLS_FPLEN], fb[TK_TLS_FPLEN];

	cctx = client_ctx();
	fp_of(a, fa);
	fp_of(b, fb);
	cr_assert_str_neq(fa, fb);
	tk_server_opts_init(&so);
	so.workers = workers;
	so.conn.tls = a;
	s = t_server(loop, "127.0.0.1", &so, &tk_service_echo, NULL, &addr);
	/* The server holds its own reference: ours may go now. */
	tk_tls_ctx_free(a);

	connect_echo(loop, &addr, cctx, &before);
	cr_assert_str_eq(before.fp, fa);

	cr_assert_eq(tk_server_set_tls(s, b), 0);
	cr_assert_eq(tk_server_get_opts(s)->conn.tls, b);
	tk_tls_ctx_free(b);

	connect_echo(loop, &addr, cctx, &after);
	cr_assert(after.open);
	cr_assert_str_eq(after.fp, fb, "a new client got the old certificate");
	echo_again(loop, &before, "the client from before");
	echo_again(loop, &after, "the client from after");

	tk_conn_close(before.c, 0);
	tk_conn_close(after.c, 0);
	RUN_UNTIL(loop, 5000, before.closed && after.closed);
	tk_server_free(s);
	/* Its last session gone, the old context is gone too. */
	T_ASSERT_FREED(a);
	tk_loop_free(loop);
	tk_tls_ctx_free(cctx);
}

Test(reload, tls_swap_one_worker)
{
	tls_swap(1);
}

Test(reload, tls_swap_worker_threads)
{
	tls_swap(3);
}

/*
 * The old context freed by everyone but a connection still open: the
 * session runs on, and the context is freed when it closes.
 */
Test(reload, context_outlives_its_server_while_a_session_runs)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_tls_ctx *a = server_ctx(), *b = server_ctx(),
			  *cctx = client_ctx();
	struct tk_server_opts so;
	struct tk_server *s;
	struct tk_addr addr;
	struct cli k;

	tk_server_opts_init(&so);
	so.conn.tls = a;
	s = t_server(loop, "127.0.0.1", &so, &tk_service_echo, NULL, &addr);
	connect_echo(loop, &addr, cctx, &k);
	cr_assert_eq(tk_server_set_tls(s, b), 0);
	tk_tls_ctx_free(a);
	tk_tls_ctx_free(b);
	/* Only the server's session holds a now. */
	echo_again(loop, &k, "the session of a freed context");
	tk_conn_close(k.c, 0);
	RUN_UNTIL(loop, 5000, k.closed);
	tk_server_free(s);
	T_ASSERT_FREED(a);
	T_ASSERT_FREED(b);
	tk_loop_free(loop);
	tk_tls_ctx_free(cctx);
}

/* A list that refuses 127.0.0.1. */
static struct tk_acl *
deny_loopback(void)
{
	struct tk_acl *acl;

	cr_assert_eq(tk_acl_new(&acl), 0);
	cr_assert_eq(tk_acl_add(acl, TK_ACL_DENY, "127.0.0.1", NULL, 0), 0);
	return acl;
}

/*
 * A swapped list applies at accept: a new client it refuses is closed
 * unanswered, one accepted before goes on; swapping back lets them in.
 */
static void
acl_swap(unsigned workers)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server_opts so;
	struct tk_server *s;
	struct tk_server_stats st;
	struct tk_addr addr;
	struct tk_acl *open_acl, *deny = deny_loopback();
	struct cli before, refused, again;

	cr_assert_eq(tk_acl_new(&open_acl), 0);
	tk_server_opts_init(&so);
	so.workers = workers;
	so.acl = open_acl;
	s = t_server(loop, "127.0.0.1", &so, &tk_service_echo, NULL, &addr);
	tk_acl_free(open_acl); /* the server keeps its own */
	connect_echo(loop, &addr, NULL, &before);
	cr_assert_eq(before.len, 1);

	cr_assert_eq(tk_server_set_acl(s, deny), 0);
	tk_acl_free(deny);
	connect_echo(loop, &addr, NULL, &refused);
	RUN_UNTIL(loop, 5000, refused.closed);
	cr_assert_eq(refused.len, 0, "a refused client got an echo");
	tk_server_get_stats(s, &st);
	cr_assert_eq(st.denied, 1);
	echo_again(loop, &before, "the client accepted before");

	cr_assert_eq(tk_server_set_acl(s, NULL), 0);
	connect_echo(loop, &addr, NULL, &again);
	cr_assert_eq(again.len, 1, "NULL did not let everyone in");

	tk_conn_close(before.c, 0);
	tk_conn_close(again.c, 0);
	RUN_UNTIL(loop, 5000, before.closed && again.closed);
	tk_server_free(s);
	T_ASSERT_FREED(open_acl);
	T_ASSERT_FREED(deny);
	tk_loop_free(loop);
}

Test(reload, acl_swap_one_worker)
{
	acl_swap(1);
}

Test(reload, acl_swap_worker_threads)
{
	acl_swap(2);
}

Test(reload, plain_stays_plain_and_tls_stays_tls)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_tls_ctx *a = server_ctx();
	struct tk_server_opts so;
	struct tk_server *plain, *tls;

	tk_server_opts_init(&so);
	plain = t_server_new(loop, &so, &tk_service_echo, NULL);
	cr_assert_eq(tk_server_set_tls(plain, a), -EINVAL);
	so.conn.tls = a;
	tls = t_server_new(loop, &so, &tk_service_echo, NULL);
	cr_assert_eq(tk_server_set_tls(tls, NULL), -EINVAL);
	cr_assert_eq(tk_server_get_opts(tls)->conn.tls, a);
	tk_server_free(plain);
	tk_server_free(tls);
	tk_tls_ctx_free(a);
	T_ASSERT_FREED(a);
	tk_loop_free(loop);
}

static void
count_opens(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
	    const struct tk_addr *peer, int err, void *arg)
{
	(void)s;
	(void)c;
	(void)peer;
	(void)err;
	if (ev == TK_SERVER_OPEN)
		(*(int *)arg)++;
}

/* A whole TLS record in p's input? */
static bool
got_record(const struct peer *p)
{
	const unsigned char *in = (const unsigned char *)p->in;

	return p->in_len >= 5 &&
	       p->in_len >= 5 + ((size_t)in[3] << 8 | (size_t)in[4]);
}

/*
 * Every holder gives up the context while a session of it waits for its
 * ClientHello: the handshake still runs on it (its ALPN choice reads the
 * context), and the context is freed after that session.
 */
Test(reload, context_freed_mid_handshake_serves_on)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_tls_server_opts sa = { .alpn = "x" };
	struct tk_tls_client_opts ca = { .insecure = true, .alpn = "x" };
	struct tk_tls_ctx *a, *b = server_ctx(), *cctx;
	struct tk_server_opts so;
	struct tk_server *s;
	struct tk_addr addr, dummy;
	struct peer hello = { 0 }, raw = { 0 };
	struct cli k;
	int opens = 0, lfd;

	cr_assert_eq(tk_tls_ctx_new_server(&sa, &a, NULL, 0), 0);
	cr_assert_eq(tk_tls_ctx_new_client(&ca, &cctx, NULL, 0), 0);
	/* A real ClientHello, offering ALPN, caught by a plain listener. */
	lfd = t_raw_listen("127.0.0.1", 4, &dummy);
	memset(&k, 0, sizeof(k));
	{
		struct tk_addrlist l = t_list(&dummy, 1);
		struct tk_conn_opts o;

		tk_conn_opts_init(&o);
		o.tls = cctx;
		cr_assert_eq(tk_conn_connect(loop, &l, &o, &cli_svc, &k, &k.c),
			     0);
	}
	peer_accept(&hello, loop, lfd);
	RUN_UNTIL(loop, 5000, got_record(&hello));
	tk_conn_abort(k.c, -ECANCELED);

	tk_server_opts_init(&so);
	so.conn.tls = a;
	so.on_event = count_opens;
	so.event_arg = &opens;
	s = t_server(loop, "127.0.0.1", &so, &tk_service_echo, NULL, &addr);
	peer_connect(&raw, loop, &addr);
	RUN_UNTIL(loop, 5000, opens == 1);
	/* Accepted, its session made of a: now nobody else holds a. */
	cr_assert_eq(tk_server_set_tls(s, b), 0);
	tk_tls_ctx_free(a);
	tk_tls_ctx_free(b);
	peer_send(&raw, hello.in, hello.in_len);
	RUN_UNTIL(loop, 5000, got_record(&raw) || raw.eof || raw.err != 0);
	cr_assert(got_record(&raw), "no answer to the ClientHello");
	cr_assert_eq((unsigned char)raw.in[0], 0x16, "not a handshake record");

	peer_free(&raw);
	peer_free(&hello);
	close(lfd);
	tk_server_free(s);
	T_ASSERT_FREED(a);
	tk_loop_free(loop);
	tk_tls_ctx_free(cctx);
}

Test(reload, cert_info_names_the_context_certificate)
{
	struct tk_tls_ctx *a = server_ctx(), *c = client_ctx();
	struct tk_tls_info info;
	char fp[TK_TLS_FPLEN];

	cr_assert_eq(tk_tls_ctx_cert_info(a, &info), 0);
	fp_of(a, fp);
	cr_assert_str_eq(info.sha256, fp);
	cr_assert_str_eq(info.subject, "CN=tcpkit ephemeral");
	cr_assert_eq(strlen(info.not_after), 20, "%s", info.not_after);
	cr_assert_eq(tk_tls_ctx_cert_info(c, &info), -ENOENT);
	tk_tls_ctx_free(a);
	tk_tls_ctx_free(c);
}
