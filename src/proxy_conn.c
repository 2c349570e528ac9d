/* proxy_conn.c: a client connection's proxy phase: once connected to the
 * proxy, ask it for the tunnel, before any handshake of the connection's
 * own. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conn_int.h"

enum step {
	S_GREET,      /* SOCKS5: send the methods */
	S_METHOD,     /* ...and read the one chosen */
	S_AUTH,	      /* RFC 1929: send user and password */
	S_AUTH_REPLY, /* ...and read the verdict */
	S_REQUEST,    /* send the CONNECT request */
	S_REPLY,      /* ...and read the reply */
	S_DONE,
};

/* The longest reply head read: a proxy's error page is not read. */
#define MAX_REPLY 8192

struct tk__proxying {
	struct tk_proxy proxy;
	char host[TK_HOSTLEN]; /* the target, as sent */
	char port[TK_PORTLEN]; /* as given, a number or a service */
	uint16_t portnum;
	enum step step;
	/* What is being sent; cleared once sent (it may hold a password). */
	uint8_t out[1024];
	size_t out_len, out_off;
	/* The reply being read, never a byte past its end. */
	char in[MAX_REPLY];
	size_t in_len;
};

struct tk__proxying *
tk__proxy_new(const struct tk_proxy *p, const char *host, const char *port)
{
	struct tk__proxying *px;

	if (p->kind == TK_PROXY_NONE || host == NULL ||
	    strlen(host) >= TK_HOSTLEN || port == NULL ||
	    strlen(port) >= TK_PORTLEN)
		return NULL;
	px = calloc(1, sizeof(*px));
	if (px == NULL)
		return NULL;
	px->proxy = *p;
	strcpy(px->host, host);
	strcpy(px->port, port);
	(void)tk_port_parse(port, &px->portnum);
	px->step = p->kind == TK_PROXY_SOCKS5 || p->kind == TK_PROXY_SOCKS5H
			   ? S_GREET
			   : S_REQUEST;
	return px;
}

void
tk__proxy_free(struct tk__proxying *px)
{
	if (px == NULL)
		return;
	explicit_bzero(px, sizeof(*px));
	free(px);
}

const struct tk_proxy *
tk__proxy_of(const struct tk__proxying *px)
{
	return &px->proxy;
}

bool
tk__proxy_resolves_here(const struct tk__proxying *px)
{
	struct tk_addr a;

	return px->proxy.kind == TK_PROXY_SOCKS5 &&
	       tk_addr_from_ip(px->host, 0, &a) < 0;
}

bool
tk__proxy_has_port(const struct tk__proxying *px)
{
	return px->portnum != 0;
}

void
tk__proxy_set_target(struct tk__proxying *px, const char *host, uint16_t port)
{
	if (host != NULL)
		snprintf(px->host, sizeof(px->host), "%s", host);
	px->portnum = port;
}

static int failf(struct tk_conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Fail with err, the detail in words. */
static int
failf(struct tk_conn *c, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tk__conn_set_detail(c, msg);
	return err;
}

/* Make the message of this step into px->out. */
static int
encode(struct tk_conn *c, struct tk__proxying *px)
{
	const struct tk_proxy *p = &px->proxy;
	ssize_t n;

	switch (px->step) {
	case S_GREET:
		n = tk_socks5_greeting(p->has_auth, px->out, sizeof(px->out));
		break;
	case S_AUTH:
		n = tk_socks5_auth_request(p->user, p->pass, px->out,
					   sizeof(px->out));
		if (n == -EINVAL)
			return failf(c, TK_EPROXYAUTH,
				     "SOCKS5 needs a user and a password of 1 "
				     "to 255 bytes each");
		break;
	case S_REQUEST:
		if (p->kind == TK_PROXY_SOCKS4A)
			n = tk_socks4a_request(px->host, px->portnum,
					       p->has_auth ? p->user : NULL,
					       px->out, sizeof(px->out));
		else if (p->kind == TK_PROXY_HTTP)
			n = tk_http_connect_request(
				px->host, px->portnum,
				p->has_auth ? p->user : NULL, p->pass,
				(char *)px->out, sizeof(px->out));
		else
			n = tk_socks5_connect_request(px->host, px->portnum,
						      px->out, sizeof(px->out));
		/* SOCKS4a has no IPv6; a name past 255 bytes fits none. */
		if (n < 0)
			return failf(c, TK_EPROXYPROTO,
				     "%s cannot ask for %s port %u%s",
				     tk_proxy_scheme(p->kind), px->host,
				     px->portnum,
				     p->kind == TK_PROXY_SOCKS4A
					     ? " (no IPv6 in SOCKS4a: use "
					       "socks5)"
					     : "");
		break;
	default:
		return -EINVAL;
	}
	if (n < 0)
		return (int)n;
	px->out_len = (size_t)n;
	px->out_off = 0;
	return 0;
}

/*
 * A complete reply in px->in[0..len): the next step, or why the proxy
 * said no.
 */
static int
answer(struct tk_conn *c, struct tk__proxying *px, ssize_t len,
       const struct tk_socks_reply *r, const struct tk_http_response *h)
{
	const struct tk_proxy *p = &px->proxy;
	uint8_t v = len >= 2 ? (uint8_t)px->in[1] : 0;

	switch (px->step) {
	case S_METHOD:
		if (v == TK_SOCKS5_AUTH_NONE) {
			px->step = S_REQUEST;
			return 0;
		}
		if (v == TK_SOCKS5_AUTH_USERPASS && p->has_auth) {
			px->step = S_AUTH;
			return 0;
		}
		if (v == TK_SOCKS5_AUTH_NOMETHOD ||
		    v == TK_SOCKS5_AUTH_USERPASS)
			return failf(c, TK_EPROXYAUTH,
				     p->has_auth
					     ? "the SOCKS5 proxy accepts none "
					       "of our methods"
					     : "the SOCKS5 proxy wants a user "
					       "and a password");
		return failf(c, TK_EPROXYPROTO,
			     "the SOCKS5 proxy chose method %u, which we did "
			     "not offer",
			     v);
	case S_AUTH_REPLY:
		if (v != 0)
			return failf(c, TK_EPROXYAUTH,
				     "the SOCKS5 proxy refused user '%s' "
				     "(status %u)",
				     p->user, v);
		px->step = S_REQUEST;
		return 0;
	case S_REPLY:
		break;
	default:
		return -EINVAL;
	}
	if (p->kind == TK_PROXY_HTTP) {
		int st = h->status;
		char reason[128];
		size_t rl = h->reason.len < sizeof(reason) - 1
				    ? h->reason.len
				    : sizeof(reason) - 1;

		/* The reason phrase, shown safely: it is the proxy's. */
		for (size_t i = 0; i < rl; i++) {
			char ch = px->in[h->reason.off + i];

			reason[i] = ch >= 0x20 && ch < 0x7f ? ch : '?';
		}
		reason[rl] = '\0';
		if (st >= 200 && st < 300) {
			px->step = S_DONE;
			return 0;
		}
		/* 401 too: some proxies (tinyproxy) answer CONNECT so. */
		if (st == 407 || st == 401)
			return failf(
				c, TK_EPROXYAUTH, "HTTP %d %s%s", st, reason,
				p->has_auth ? "" : " (no credentials given)");
		/*
		 * A proxy's 5xx to CONNECT is the target it could not reach
		 * (502, 503, 504; tinyproxy's 500 "Unable to connect").
		 */
		if (st >= 500 && st < 600)
			return failf(c, TK_EPROXYTARGET, "HTTP %d %s", st,
				     reason);
		if (st >= 100 && st < 200)
			return failf(c, TK_EPROXYPROTO,
				     "HTTP %d before the answer to CONNECT",
				     st);
		return failf(c, TK_EPROXYDENIED, "HTTP %d %s", st, reason);
	}
	if (p->kind == TK_PROXY_SOCKS4A) {
		if (r->code == 90) {
			px->step = S_DONE;
			return 0;
		}
		/*
		 * 91 is "rejected or failed": a refused target as much as a
		 * forbidden one; 92 and 93 are about identd.
		 */
		if (r->code == 91)
			return failf(c, TK_EPROXYTARGET,
				     "SOCKS4 reply 91: request rejected or "
				     "failed");
		if (r->code == 92 || r->code == 93)
			return failf(c, TK_EPROXYAUTH,
				     "SOCKS4 reply %u: identd check failed",
				     r->code);
		return failf(c, TK_EPROXYPROTO, "SOCKS4 reply %u: unknown",
			     r->code);
	}
	switch (r->code) {
	case 0:
		px->step = S_DONE;
		return 0;
	case 3:
	case 4:
	case 5:
	case 6:
		return failf(c, TK_EPROXYTARGET, "SOCKS5 reply %u: %s", r->code,
			     tk_socks5_reply_text(r->code));
	default:
		return failf(c, TK_EPROXYDENIED, "SOCKS5 reply %u: %s", r->code,
			     tk_socks5_reply_text(r->code));
	}
}

/* Parse what has come of the reply: its length, 0, or an error. */
static ssize_t
parse(struct tk__proxying *px, size_t len, size_t last,
      struct tk_socks_reply *r, struct tk_http_response *h)
{
	const uint8_t *in = (const uint8_t *)px->in;
	uint8_t v;

	switch (px->step) {
	case S_METHOD:
		return tk_socks5_parse_method(in, len, &v);
	case S_AUTH_REPLY:
		return tk_socks5_parse_auth(in, len, &v);
	default:
		break;
	}
	if (px->proxy.kind == TK_PROXY_SOCKS4A)
		return tk_socks4_parse_reply(in, len, r);
	if (px->proxy.kind == TK_PROXY_HTTP) {
		ssize_t n = tk_http_parse_response(px->in, len, last, h);

		return n == TK_EHTTP || n == TK_ETOOBIG ? TK_EPROXYPROTO : n;
	}
	return tk_socks5_parse_reply(in, len, r);
}

static int
do_send(struct tk_conn *c, struct tk__proxying *px, unsigned *want)
{
	while (px->out_off < px->out_len) {
		ssize_t n = send(c->fd, px->out + px->out_off,
				 px->out_len - px->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			*want = TK_WRITABLE;
			return -EAGAIN;
		}
		if (n < 0)
			return -errno;
		px->out_off += (size_t)n;
	}
	explicit_bzero(px->out, px->out_len);
	px->step++;
	px->in_len = 0;
	return 0;
}

/*
 * Read the reply without taking a byte past its end: peek, parse, and
 * take only the reply's bytes; what follows them is the target's.
 */
static int
do_recv(struct tk_conn *c, struct tk__proxying *px, unsigned *want)
{
	struct tk_http_header fields[TK_HTTP_MAX_HEADERS];
	struct tk_http_response h = { .headers = fields,
				      .max_headers = TK_HTTP_MAX_HEADERS };
	struct tk_socks_reply r;
	char sink[MAX_REPLY];

	for (;;) {
		size_t last = px->in_len;
		ssize_t n = recv(c->fd, px->in + px->in_len,
				 sizeof(px->in) - px->in_len, MSG_PEEK);
		ssize_t len;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			*want = TK_READABLE;
			return -EAGAIN;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return failf(c, TK_EPROXYPROTO,
				     "the proxy closed the connection before "
				     "its answer%s",
				     px->step == S_AUTH_REPLY ||
						     (px->step == S_REPLY &&
						      px->proxy.has_auth)
					     ? " (credentials refused?)"
					     : "");
		len = parse(px, px->in_len + (size_t)n, last, &r, &h);
		if (len < 0)
			return failf(c, TK_EPROXYPROTO,
				     "not a %s answer from the proxy",
				     px->proxy.kind == TK_PROXY_HTTP ? "HTTP"
				     : px->proxy.kind == TK_PROXY_SOCKS4A
					     ? "SOCKS4"
					     : "SOCKS5");
		/* Take the reply's bytes (all peeked while incomplete). */
		if (len > 0)
			n = len - (ssize_t)px->in_len;
		if (recv(c->fd, sink, (size_t)n, 0) != n)
			return failf(c, TK_EPROXYPROTO,
				     "the proxy's answer could not be read");
		px->in_len += (size_t)n;
		if (len > 0)
			return answer(c, px, len, &r, &h);
		if (px->in_len == sizeof(px->in))
			return failf(c, TK_EPROXYPROTO,
				     "the proxy's answer is over %d bytes",
				     MAX_REPLY);
	}
}

int
tk__proxy_step(struct tk_conn *c, unsigned *want)
{
	struct tk__proxying *px = c->px;
	int err;

	while (px->step != S_DONE) {
		switch (px->step) {
		case S_GREET:
		case S_AUTH:
		case S_REQUEST:
			if (px->out_len == 0 && (err = encode(c, px)) < 0)
				return err;
			err = do_send(c, px, want);
			if (err == 0)
				px->out_len = 0;
			break;
		default:
			err = do_recv(c, px, want);
			break;
		}
		if (err < 0)
			return err;
	}
	return 0;
}
