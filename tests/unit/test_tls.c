/* test_tls.c: unit tests of tls.c: contexts, the handshake state between
 * connected and open, verification outcomes, deadlines, and data over TLS. */
#include <stdio.h>
#include <sys/socket.h>

#include "helpers.h"

TestSuite(tls, .timeout = 30);

/* What a client connection saw. */
struct rec {
	int opens;
	int closes;
	int close_err;
	int write_err_in_open;
	char detail[256];
	struct tk_tls_info info;
	int info_err;
	char *got;
	size_t len;
	size_t want; /* end once this much came back */
	const char *send;
	size_t send_len;
};

static int
rec_open(struct tk_conn *c, void *arg)
{
	struct rec *r = arg;

	r->opens++;
	cr_assert(tk_conn_is_tls(c));
	r->info_err = tk_conn_tls_info(c, &r->info);
	if (r->send != NULL)
		r->write_err_in_open = tk_conn_write(c, r->send, r->send_len);
	return 0;
}

static void
rec_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct rec *r = arg;

	if (n == TK_EOF)
		return;
	r->got = realloc(r->got, r->len + (size_t)n);
	cr_assert_not_null(r->got);
	memcpy(r->got + r->len, data, (size_t)n);
	r->len += (size_t)n;
	if (r->len >= r->want)
		tk_conn_close(c, 0);
}

static void
rec_close(struct tk_conn *c, int err, void *arg)
{
	struct rec *r = arg;

	r->closes++;
	r->close_err = err;
	snprintf(r->detail, sizeof(r->detail), "%s", tk_conn_last_error(c));
}

static const struct tk_service rec_svc = {
	.name = "rec",
	.open = rec_open,
	.data = rec_data,
	.close = rec_close,
};

/*
 * Server events: the close reason of the last connection, and what the
 * handshake event saw (O open, H handshake, C close, in order).
 */
struct srv_rec {
	int closes;
	int last_err;
	int handshakes;
	int hs_info_err;
	struct tk_tls_info hs_info;
	char order[16];
	size_t norder;
};

static void
srv_event(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
	  const struct tk_addr *peer, int err, void *arg)
{
	struct srv_rec *r = arg;

	(void)s;
	(void)peer;
	if (r->norder < sizeof(r->order) - 1)
		r->order[r->norder++] = ev == TK_SERVER_OPEN	    ? 'O'
					: ev == TK_SERVER_HANDSHAKE ? 'H'
					: ev == TK_SERVER_CLOSE	    ? 'C'
								    : '?';
	if (ev == TK_SERVER_HANDSHAKE) {
		r->handshakes++;
		r->hs_info_err = tk_conn_tls_info(c, &r->hs_info);
	}
	if (ev == TK_SERVER_CLOSE) {
		r->closes++;
		r->last_err = err;
	}
}

static struct tk_tls_ctx *
server_ctx(const char *alpn)
{
	struct tk_tls_server_opts o = { .alpn = alpn };

	return t_tls_server(&o);
}

static struct tk_tls_ctx *
client_ctx(const char *pin, const char *alpn)
{
	struct tk_tls_client_opts o = { .pin = pin, .alpn = alpn };

	return t_tls_client(&o);
}

static char *
pin_of(const struct tk_tls_ctx *ctx, char buf[7 + TK_TLS_FPLEN])
{
	char fp[TK_TLS_FPLEN];

	cr_assert_eq(tk_tls_ctx_fingerprint(ctx, fp), 0);
	snprintf(buf, 7 + TK_TLS_FPLEN, "sha256:%s", fp);
	return buf;
}

/* An echo server over TLS (one loop) and a client connection to it. */
struct pair {
	struct tk_loop *loop;
	struct tk_tls_ctx *sctx, *cctx;
	struct tk_server *srv;
	struct srv_rec srec;
	struct tk_addr addr;
};

static void
pair_start(struct pair *p, const char *sv_alpn)
{
	struct tk_server_opts so;

	memset(p, 0, sizeof(*p));
	p->loop = t_loop_new();
	cr_assert_not_null(p->loop);
	p->sctx = server_ctx(sv_alpn);
	tk_server_opts_init(&so);
	so.conn.tls = p->sctx;
	so.on_event = srv_event;
	so.event_arg = &p->srec;
	p->srv = t_server(p->loop, "127.0.0.1", &so, &tk_service_echo, NULL,
			  &p->addr);
}

static struct tk_conn *
pair_connect(struct pair *p, struct tk_tls_ctx *cctx, struct rec *r)
{
	struct tk_addrlist l = t_list(&p->addr, 1);
	struct tk_conn_opts o;
	struct tk_conn *c = NULL;

	tk_conn_opts_init(&o);
	o.tls = cctx;
	/*
	 * What the client sends it queues at once, in open: it must go on
	 * reading the echo meanwhile, or client and echo server each wait
	 * for the other once the kernel's buffers are full (as `tcpkit
	 * connect` does, cli/client.c).
	 */
	o.max_pending = 4u << 20;
	cr_assert_eq(tk_conn_connect(p->loop, &l, &o, &rec_svc, r, &c), 0);
	/* Connecting, then the handshake: nothing may be written yet. */
	cr_assert_eq(tk_conn_write(c, "x", 1), -ENOTCONN);
	cr_assert(!tk_conn_is_open(c));
	return c;
}

static void
pair_end(struct pair *p)
{
	tk_server_free(p->srv);
	tk_loop_free(p->loop);
	tk_tls_ctx_free(p->sctx);
	tk_tls_ctx_free(p->cctx);
}

Test(tls, echo_with_pinned_ephemeral_certificate)
{
	struct pair p;
	struct rec r = { .send = "hello", .send_len = 5, .want = 5 };
	char pin[7 + TK_TLS_FPLEN];

	pair_start(&p, NULL);
	p.cctx = client_ctx(pin_of(p.sctx, pin), NULL);
	pair_connect(&p, p.cctx, &r);
	RUN_UNTIL(p.loop, 5000, r.closes == 1);
	cr_assert_eq(r.opens, 1);
	cr_assert_eq(r.close_err, 0);
	cr_assert_eq(r.write_err_in_open, 0);
	cr_assert_eq(r.len, 5);
	cr_assert_arr_eq(r.got, "hello", 5);
	cr_assert_eq(r.info_err, 0);
	cr_assert_str_eq(r.info.version, "TLSv1.3");
	cr_assert(r.info.peer_cert);
	cr_assert_str_eq(r.info.subject, "CN=tcpkit ephemeral");
	cr_assert_str_eq(r.info.sha256, pin + 7);
	/* The server heard of the finished handshake, between accept and
	 * close, with the session's details at hand (no client cert here). */
	RUN_UNTIL(p.loop, 5000, p.srec.closes == 1);
	cr_assert_str_eq(p.srec.order, "OHC");
	cr_assert_eq(p.srec.hs_info_err, 0);
	cr_assert_str_eq(p.srec.hs_info.version, "TLSv1.3");
	cr_assert(!p.srec.hs_info.peer_cert);
	free(r.got);
	pair_end(&p);
}

Test(tls, a_megabyte_each_way)
{
	struct pair p;
	size_t n = 1u << 20;
	char *big = malloc(n);
	struct rec r = { .send = big, .send_len = n, .want = n };
	char pin[7 + TK_TLS_FPLEN];

	cr_assert_not_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)(i * 7 + (i >> 11));
	pair_start(&p, NULL);
	p.cctx = client_ctx(pin_of(p.sctx, pin), NULL);
	pair_connect(&p, p.cctx, &r);
	RUN_UNTIL(p.loop, 10000, r.closes == 1);
	cr_assert_eq(r.close_err, 0);
	cr_assert_eq(r.len, n);
	cr_assert(memcmp(r.got, big, n) == 0);
	free(r.got);
	free(big);
	pair_end(&p);
}

Test(tls, alpn_server_preference)
{
	struct pair p;
	struct rec r = { .send = "a", .send_len = 1, .want = 1 };
	char pin[7 + TK_TLS_FPLEN];

	pair_start(&p, "h2,http/1.1");
	p.cctx = client_ctx(pin_of(p.sctx, pin), "http/1.1,h2");
	pair_connect(&p, p.cctx, &r);
	RUN_UNTIL(p.loop, 5000, r.closes == 1);
	cr_assert_str_eq(r.info.alpn, "h2");
	free(r.got);
	pair_end(&p);
}

/* A failed verification: close with code, no open, no byte to the server. */
static void
expect_failure(const char *pin, int code, const char *detail)
{
	struct pair p;
	struct rec r = { .send = "secret", .send_len = 6, .want = 6 };
	struct tk_server_stats st;

	pair_start(&p, NULL);
	p.cctx = client_ctx(pin, NULL);
	pair_connect(&p, p.cctx, &r);
	RUN_UNTIL(p.loop, 5000, r.closes == 1 && p.srec.closes == 1);
	cr_assert_eq(r.opens, 0, "open ran on a failed handshake");
	cr_assert_eq(r.close_err, code, "got %s (%s)", tk_err_name(r.close_err),
		     r.detail);
	cr_assert(strstr(r.detail, detail) != NULL, "detail: %s", r.detail);
	cr_assert_eq(p.srec.last_err, TK_ETLSPEERREJECT);
	cr_assert_eq(p.srec.handshakes, 0, "a failed handshake reported");
	tk_server_get_stats(p.srv, &st);
	cr_assert_eq(st.bytes_in, 0);
	pair_end(&p);
}

Test(tls, untrusted_issuer)
{
	expect_failure(NULL, TK_ETLSVERIFY, "self-signed certificate");
}

Test(tls, pin_mismatch)
{
	expect_failure("sha256:"
		       "0000000000000000000000000000000000000000000000000000000"
		       "000000000",
		       TK_ETLSPIN, "the peer's certificate is sha256:");
}

Test(tls, client_handshake_deadline)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr a;
	int lfd = t_raw_listen("127.0.0.1", 4, &a);
	struct tk_addrlist l = t_list(&a, 1);
	struct tk_tls_ctx *cctx = client_ctx(NULL, NULL);
	struct rec r = { 0 };
	struct tk_conn_opts o;
	struct tk_conn *c;
	uint64_t t0 = t_now_ms();

	tk_conn_opts_init(&o);
	o.tls = cctx;
	o.handshake_timeout_ms = 200;
	cr_assert_eq(tk_conn_connect(loop, &l, &o, &rec_svc, &r, &c), 0);
	RUN_UNTIL(loop, 5000, r.closes == 1);
	cr_assert_eq(r.close_err, TK_EHANDSHAKETIMEDOUT);
	cr_assert_eq(r.opens, 0);
	cr_assert(t_now_ms() - t0 >= 190);
	close(lfd);
	tk_loop_free(loop);
	tk_tls_ctx_free(cctx);
}

Test(tls, server_handshake_deadline)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_tls_ctx *sctx = server_ctx(NULL);
	struct tk_server_opts so;
	struct srv_rec srec = { 0 };
	struct tk_server *srv;
	struct tk_addr a;
	char b;
	int fd;

	tk_server_opts_init(&so);
	so.conn.tls = sctx;
	so.conn.handshake_timeout_ms = 200;
	so.on_event = srv_event;
	so.event_arg = &srec;
	srv = t_server(loop, "127.0.0.1", &so, &tk_service_echo, NULL, &a);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(connect(fd, &a.u.sa, a.len) == 0);
	RUN_UNTIL(loop, 5000, srec.closes == 1);
	cr_assert_eq(srec.last_err, TK_EHANDSHAKETIMEDOUT);
	cr_assert_eq(recv(fd, &b, 1, 0), 0); /* closed, nothing sent */
	close(fd);
	tk_server_free(srv);
	tk_loop_free(loop);
	tk_tls_ctx_free(sctx);
}

Test(tls, context_errors_name_the_cause)
{
	struct tk_tls_client_opts co = { 0 };
	struct tk_tls_server_opts so = { 0 };
	struct tk_tls_ctx *ctx = NULL;
	char why[TK_TLS_ERRLEN];

	co.pin = "sha256:abcd";
	cr_assert_eq(tk_tls_ctx_new_client(&co, &ctx, why, sizeof(why)),
		     TK_ETLSCONFIG);
	cr_assert_str_eq(why, "pin must be sha256: and 64 hex digits, not "
			      "'sha256:abcd'");
	co.pin = NULL;
	co.alpn = "h2,,x";
	cr_assert_eq(tk_tls_ctx_new_client(&co, &ctx, why, sizeof(why)),
		     TK_ETLSCONFIG);
	cr_assert_str_eq(why, "malformed ALPN list 'h2,,x'");
	co.alpn = NULL;
	co.min_version = 11;
	cr_assert_eq(tk_tls_ctx_new_client(&co, &ctx, why, sizeof(why)),
		     TK_ETLSCONFIG);
	co.min_version = 0;
	co.ca_file = "/nonexistent/ca.pem";
	cr_assert_eq(tk_tls_ctx_new_client(&co, &ctx, why, sizeof(why)),
		     TK_ETLSCONFIG);
	cr_assert(strncmp(why, "cannot load CA file /nonexistent/ca.pem", 39) ==
			  0,
		  "%s", why);
	so.cert_file = "/nonexistent/cert.pem";
	cr_assert_eq(tk_tls_ctx_new_server(&so, &ctx, why, sizeof(why)),
		     TK_ETLSCONFIG);
	cr_assert(strncmp(why, "cannot load certificate /nonexistent", 36) == 0,
		  "%s", why);
	so.cert_file = NULL;
	so.client_auth = TK_TLS_CLIENT_AUTH_REQUIRED;
	cr_assert_eq(tk_tls_ctx_new_server(&so, &ctx, why, sizeof(why)),
		     TK_ETLSCONFIG);
	cr_assert_str_eq(why, "client authentication needs a CA file");
	cr_assert_null(ctx);
}

Test(tls, error_codes_in_the_tls_band)
{
	cr_assert_str_eq(tk_strerror(TK_ETLSNAME), "certificate name mismatch");
	cr_assert_str_eq(tk_err_name(TK_ETLSPIN), "ETLSPIN");
	cr_assert_str_eq(tk_strerror(TK_EHANDSHAKETIMEDOUT),
			 "TLS handshake timed out");
	cr_assert(TK_ETLSCONFIG <= -3300 && TK_ETLSCONFIG > -3400);
	cr_assert_str_eq(tk_strerror(TK_ETLSPLAIN),
			 "the peer does not speak TLS");
	cr_assert(TK_ETLSPLAIN <= -3300 && TK_ETLSPLAIN > -3400);
}

Test(tls, plain_connection_is_not_tls)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr a;
	int lfd = t_raw_listen("127.0.0.1", 4, &a);
	struct tk_addrlist l = t_list(&a, 1);
	struct tk_tls_info info;
	struct rec r = { 0 };
	struct tk_conn *c;

	cr_assert_eq(tk_conn_connect(loop, &l, NULL, &rec_svc, &r, &c), 0);
	cr_assert(!tk_conn_is_tls(c));
	cr_assert_eq(tk_conn_tls_info(c, &info), -ENOTCONN);
	cr_assert_eq(tk_conn_tls_peer_fingerprint(c, info.sha256), -ENOTCONN);
	tk_conn_close(c, 0);
	RUN_UNTIL(loop, 5000, r.closes == 1);
	close(lfd);
	tk_loop_free(loop);
}

/* What a plain client may get from a TLS server, and what it may not. */
Test(tls, looks_like_record)
{
	static const unsigned char alert[] = { 0x15, 3, 3, 0, 2, 2, 10 };
	static const unsigned char hello[] = { 0x16, 3, 1, 0x02, 0x00 };
	static const unsigned char big[] = { 0x16, 3, 3, 0x48, 0x01 };
	static const unsigned char alert3[] = { 0x15, 3, 3, 0, 3 };

	cr_assert(tk_tls_looks_like_record(alert, sizeof(alert)));
	cr_assert(tk_tls_looks_like_record(hello, sizeof(hello)));
	cr_assert(!tk_tls_looks_like_record(alert, 4), "too short to say");
	cr_assert(!tk_tls_looks_like_record(big, sizeof(big)), "over 18 KiB");
	cr_assert(!tk_tls_looks_like_record(alert3, sizeof(alert3)));
	cr_assert(!tk_tls_looks_like_record("HTTP/1.1 200 OK", 15));
}
