/* test_http_client.c: tk_http_get() against raw loopback sockets. */
#include <arpa/inet.h>
#include <stdio.h>
#include <zlib.h>

#include "helpers.h"

/* What the callbacks saw. */
struct rec {
	struct tk_loop *loop;
	int nopen;
	int nhead;
	int status;
	int nredirect;
	char redirect_to[256];
	char body[8192];
	size_t body_len;
	int body_rc; /* body returns this */
	bool cancel_in_open;
	struct tk_http_req *req;
	int ndone;
	int err;
	char detail[256];
	uint64_t got;
};

static int
r_open(struct tk_http_req *req, struct tk_conn *c, void *arg)
{
	struct rec *r = arg;

	(void)c;
	r->nopen++;
	if (r->cancel_in_open)
		tk_http_req_cancel(req);
	return 0;
}

static int
r_head(struct tk_http_req *req, const struct tk_http_response *resp,
       const char *head, size_t len, void *arg)
{
	struct rec *r = arg;

	(void)req;
	(void)head;
	(void)len;
	r->nhead++;
	r->status = resp->status;
	return 0;
}

static int
r_redirect(struct tk_http_req *req, int status, const char *url, void *arg)
{
	struct rec *r = arg;

	(void)req;
	(void)status;
	r->nredirect++;
	snprintf(r->redirect_to, sizeof(r->redirect_to), "%s", url);
	return 0;
}

static int
r_body(struct tk_http_req *req, const char *data, size_t len, void *arg)
{
	struct rec *r = arg;

	(void)req;
	cr_assert_leq(r->body_len + len, sizeof(r->body));
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	return r->body_rc;
}

static void
r_done(struct tk_http_req *req, int err, void *arg)
{
	struct rec *r = arg;
	const struct tk_http_info *i = tk_http_req_info(req);

	r->ndone++;
	r->err = err;
	r->got = i->got;
	snprintf(r->detail, sizeof(r->detail), "%s", i->detail);
}

static const struct tk_http_cb cbs = {
	.open = r_open,
	.head = r_head,
	.redirect = r_redirect,
	.body = r_body,
	.done = r_done,
};

/* A listening socket and the URL that reaches it. */
struct hpeer {
	int lfd;
	int fd;
	char url[128];
	char hostport[64];
	char request[4096];
};

static void
hp_listen(struct hpeer *p, const char *path)
{
	struct tk_addr a;

	memset(p, 0, sizeof(*p));
	p->fd = -1;
	p->lfd = t_raw_listen("127.0.0.1", 8, &a);
	snprintf(p->hostport, sizeof(p->hostport), "127.0.0.1:%u",
		 ntohs(a.u.in4.sin_port));
	snprintf(p->url, sizeof(p->url), "http://%s%s", p->hostport, path);
}

/* Accept the client (connected by now) and read its request head. */
static void
hp_accept(struct hpeer *p)
{
	struct timeval tv = { .tv_sec = 10 };
	size_t n = 0;
	ssize_t got;

	p->fd = accept(p->lfd, NULL, NULL);
	cr_assert(p->fd >= 0, "accept: %s", strerror(errno));
	setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (strstr(p->request, "\r\n\r\n") == NULL) {
		got = read(p->fd, p->request + n, sizeof(p->request) - 1 - n);
		cr_assert(got > 0, "reading the request: %s", strerror(errno));
		n += (size_t)got;
		p->request[n] = '\0';
	}
}

static void
hp_send(struct hpeer *p, const void *data, size_t len)
{
	cr_assert_eq(write(p->fd, data, len), (ssize_t)len);
}

static void
hp_close(struct hpeer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

static void
hp_free(struct hpeer *p)
{
	hp_close(p);
	close(p->lfd);
}

/* Start a GET of p's URL and serve it resp; run until done. */
static void
fetch(struct rec *r, struct hpeer *p, const struct tk_http_opts *o,
      const char *resp, size_t len, bool close_after)
{
	r->loop = t_loop_new();
	cr_assert_not_null(r->loop);
	cr_assert_eq(tk_http_get(r->loop, p->url, o, &cbs, r, &r->req), 0);
	RUN_UNTIL(r->loop, 5000, r->nopen > 0 || r->ndone > 0);
	if (r->ndone == 0) {
		hp_accept(p);
		hp_send(p, resp, len);
		if (close_after)
			hp_close(p);
		RUN_UNTIL(r->loop, 5000, r->ndone > 0);
	}
	cr_assert_eq(r->ndone, 1);
}

static void
done_loop(struct rec *r)
{
	/* A second round: nothing more may be called. */
	cr_assert_eq(tk_loop_run_once(r->loop, 0), 0);
	cr_assert_eq(r->ndone, 1);
	tk_loop_free(r->loop);
}

#define S(lit) lit, sizeof(lit) - 1

Test(http_client, content_length_body)
{
	struct rec r = { 0 };
	struct hpeer p;
	char want[256];

	hp_listen(&p, "/a?b=1");
	fetch(&r, &p, NULL,
	      S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA"),
	      false);
	cr_assert_eq(r.err, 0, "%s", tk_strerror(r.err));
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.body_len, 5);
	cr_assert(memcmp(r.body, "hello", 5) == 0);
	snprintf(want, sizeof(want),
		 "GET /a?b=1 HTTP/1.1\r\nHost: %s\r\nUser-Agent: "
		 "tcpkit/%s\r\nAccept: */*\r\nConnection: close\r\n\r\n",
		 p.hostport, tk_version());
	cr_assert_str_eq(p.request, want);
	done_loop(&r);
	hp_free(&p);
}

Test(http_client, truncated_bodies)
{
	static const struct {
		const char *resp;
		const char *detail;
	} cases[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
		  "connection closed after 5 of 10 body bytes" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		  "5\r\nhello\r\n",
		  "connection closed inside a chunked body" },
		{ "HTTP/1.1 200 OK\r\nContent-", "connection closed inside "
						 "the response head" },
		{ "", "connection closed without a response" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rec r = { 0 };
		struct hpeer p;

		hp_listen(&p, "/");
		fetch(&r, &p, NULL, cases[i].resp, strlen(cases[i].resp), true);
		cr_assert_eq(r.err, TK_ETRUNCATED, "case %zu: %s", i,
			     tk_strerror(r.err));
		cr_assert_str_eq(r.detail, cases[i].detail);
		done_loop(&r);
		hp_free(&p);
	}
}

Test(http_client, close_delimited_body_is_complete)
{
	struct rec r = { 0 };
	struct hpeer p;

	hp_listen(&p, "/");
	fetch(&r, &p, NULL, S("HTTP/1.0 200 OK\r\n\r\nuntil the end"), true);
	cr_assert_eq(r.err, 0, "%s", tk_strerror(r.err));
	cr_assert_eq(r.body_len, 13);
	done_loop(&r);
	hp_free(&p);
}

/* A call that fails at once calls nothing and leaves nothing behind. */
Test(http_client, immediate_failures_call_nothing)
{
	static const char *const bad[] = { "X: ok", "Bad\r\nX: y", NULL };
	struct tk_loop *loop = t_loop_new();
	struct tk_http_opts o;
	struct tk_http_req *req = (void *)1;
	struct rec r = { 0 };

	tk_http_opts_init(&o);
	cr_assert_eq(tk_http_get(loop, "ftp://h/", &o, &cbs, &r, &req),
		     TK_EBADURL);
	cr_assert_null(req);
	cr_assert_eq(tk_http_get(loop, "http://", &o, &cbs, &r, &req),
		     TK_EBADURL);
	o.headers = bad;
	cr_assert_eq(
		tk_http_get(loop, "http://127.0.0.1:1/", &o, &cbs, &r, &req),
		-EINVAL);
	o.headers = NULL;
	cr_assert_eq(
		tk_http_get(loop, "https://127.0.0.1:1/", &o, &cbs, &r, &req),
		TK_ETLSCONFIG);
	t_run_for(loop, 20);
	cr_assert_eq(r.nopen + r.nhead + r.ndone, 0);
	tk_loop_free(loop);
}

Test(http_client, field_check)
{
	cr_assert_eq(tk_http_field_check("X-A: b c\td"), 0);
	cr_assert_eq(tk_http_field_check("X-A:"), 0);
	cr_assert_eq(tk_http_field_check("X A: b"), -EINVAL);
	cr_assert_eq(tk_http_field_check(": b"), -EINVAL);
	cr_assert_eq(tk_http_field_check("X: a\nb"), -EINVAL);
	cr_assert_eq(tk_http_field_check("X: a\rb"), -EINVAL);
	cr_assert_eq(tk_http_field_check("X: \x7f"), -EINVAL);
	cr_assert_eq(tk_http_field_check("X"), -EINVAL);
}

/* Deflate (zlib format) and a corrupt stream. */
Test(http_client, compressed)
{
	static const char text[] = "compress me, compress me, compress me";
	unsigned char z[256];
	uLongf zlen = sizeof(z);
	char resp[512];
	size_t hlen;
	int pass;
	struct tk_http_opts o;

	cr_assert_eq(
		compress2(z, &zlen, (const Bytef *)text, sizeof(text) - 1, 9),
		Z_OK);
	tk_http_opts_init(&o);
	o.compressed = true;
	for (pass = 0; pass < 2; pass++) {
		struct rec r = { 0 };
		struct hpeer p;

		hlen = (size_t)snprintf(
			resp, sizeof(resp),
			"HTTP/1.1 200 OK\r\nContent-Encoding: "
			"deflate\r\nContent-Length: %lu\r\n\r\n",
			(unsigned long)zlen);
		memcpy(resp + hlen, z, zlen);
		if (pass == 1)
			resp[hlen + 4] ^= 0x5a;
		hp_listen(&p, "/");
		fetch(&r, &p, &o, resp, hlen + zlen, false);
		cr_assert(strstr(p.request, "\r\nAccept-Encoding: gzip, "
					    "deflate\r\n") != NULL);
		if (pass == 0) {
			cr_assert_eq(r.err, 0, "%s: %s", tk_strerror(r.err),
				     r.detail);
			cr_assert_eq(r.body_len, sizeof(text) - 1);
			cr_assert(memcmp(r.body, text, r.body_len) == 0);
		} else {
			cr_assert_eq(r.err, TK_ECODING, "%s",
				     tk_strerror(r.err));
		}
		done_loop(&r);
		hp_free(&p);
	}
}

/* A callback's error ends the exchange with that code. */
Test(http_client, callback_error_ends_it)
{
	struct rec r = { .body_rc = -EPIPE };
	struct hpeer p;

	hp_listen(&p, "/");
	fetch(&r, &p, NULL,
	      S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), false);
	cr_assert_eq(r.err, -EPIPE);
	done_loop(&r);
	hp_free(&p);
}

Test(http_client, cancel_calls_nothing_more)
{
	struct rec r = { .cancel_in_open = true };
	struct hpeer p;

	hp_listen(&p, "/");
	r.loop = t_loop_new();
	cr_assert_eq(tk_http_get(r.loop, p.url, NULL, &cbs, &r, &r.req), 0);
	RUN_UNTIL(r.loop, 5000, r.nopen > 0);
	t_run_for(r.loop, 20);
	cr_assert_eq(r.ndone, 0);
	cr_assert_eq(r.nhead, 0);
	tk_loop_free(r.loop);
	hp_free(&p);
}

Test(http_client, redirect_followed_and_limited)
{
	struct tk_http_opts o;
	char resp[256];
	int max;

	tk_http_opts_init(&o);
	o.follow = true;
	for (max = 1; max >= 0; max--) {
		struct rec r = { 0 };
		struct hpeer a, b;

		o.max_redirs = (unsigned)max;
		hp_listen(&a, "/");
		hp_listen(&b, "/there");
		snprintf(resp, sizeof(resp),
			 "HTTP/1.1 302 Found\r\nLocation: %s\r\n"
			 "Content-Length: 0\r\n\r\n",
			 b.url);
		r.loop = t_loop_new();
		cr_assert_eq(tk_http_get(r.loop, a.url, &o, &cbs, &r, &r.req),
			     0);
		RUN_UNTIL(r.loop, 5000, r.nopen > 0);
		hp_accept(&a);
		hp_send(&a, resp, strlen(resp));
		RUN_UNTIL(r.loop, 5000, r.nopen > 1 || r.ndone > 0);
		if (max == 0) {
			cr_assert_eq(r.err, TK_EREDIRECTS);
			cr_assert_eq(r.nredirect, 0);
		} else {
			cr_assert_eq(r.nredirect, 1);
			cr_assert_str_eq(r.redirect_to, b.url);
			hp_accept(&b);
			cr_assert(strncmp(b.request, "GET /there ", 11) == 0);
			hp_send(&b, S("HTTP/1.1 200 OK\r\nContent-Length: "
				      "2\r\n\r\nok"));
			RUN_UNTIL(r.loop, 5000, r.ndone > 0);
			cr_assert_eq(r.err, 0, "%s", tk_strerror(r.err));
			cr_assert_eq(r.body_len, 2);
		}
		done_loop(&r);
		hp_free(&a);
		hp_free(&b);
	}
}

Test(http_client, idle_and_max_time)
{
	struct tk_http_opts o;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		struct rec r = { 0 };
		struct hpeer p;

		tk_http_opts_init(&o);
		if (pass == 0)
			o.idle_timeout_ms = 100;
		else
			o.max_time_ms = 100;
		hp_listen(&p, "/");
		r.loop = t_loop_new();
		cr_assert_eq(tk_http_get(r.loop, p.url, &o, &cbs, &r, &r.req),
			     0);
		RUN_UNTIL(r.loop, 5000, r.nopen > 0);
		hp_accept(&p);
		/* Headers trickle in, never complete. */
		hp_send(&p, S("HTTP/1.1 200 OK\r\n"));
		RUN_UNTIL(r.loop, 5000, r.ndone > 0);
		cr_assert_eq(r.err, pass == 0 ? TK_EIDLE : TK_ETIMEDOUT, "%s",
			     tk_strerror(r.err));
		done_loop(&r);
		hp_free(&p);
	}
}
