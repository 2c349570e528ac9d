/* http_client.c: tk_http_get(), an asynchronous HTTP/1.1 client on tk_conn. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <zlib.h>

#include "tcpkit.h"

/* A response head past this is not a web server talking to us. */
#define HEAD_MAX (64u * 1024)
/* The longest URL a redirect may lead to. */
#define URL_MAX		   (16u * 1024)
#define MAX_REDIRS_DEFAULT 10
/* Inflated bytes handed to the body callback at a time. */
#define INFLATE_CHUNK (16u * 1024)

enum zmode {
	ZM_OFF,	   /* body passed as it is */
	ZM_ON,	   /* inflating */
	ZM_ENDED,  /* the compressed stream ended */
	ZM_BROKEN, /* inflate failed: nothing more is passed */
};

struct tk_http_req {
	struct tk_loop *loop;
	struct tk_http_cb cb;
	void *arg;
	struct tk_http_opts o;
	char **headers; /* the caller's fields, copied */
	char *servername;
	struct tk_proxy *proxy; /* the caller's, copied; NULL: none */
	char first_host[TK_HOSTLEN];

	/* The current hop. */
	char *url;
	char *request;
	size_t reqlen;
	char host[TK_HOSTLEN];
	char port[TK_PORTLEN];
	bool https;
	bool ipv6;

	struct tk_conn *conn;
	struct tk_timer *idle;
	struct tk_timer *deadline;
	uint64_t last_data;
	struct tk_buf head;
	size_t last_len; /* the head's length at the last incomplete parse */
	struct tk_http_header hdrs[TK_HTTP_MAX_HEADERS];
	struct tk_chunked chunked;
	z_stream z;
	enum zmode zmode;
	bool gzip;

	char *next; /* a redirect being followed */
	int err;    /* decided: the code done gets */
	bool cancelled;
	bool in_done;
	struct tk_http_info info;
	char detail[256];
	char conn_error[256];
};

void
tk_http_opts_init(struct tk_http_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->max_redirs = MAX_REDIRS_DEFAULT;
	opts->family = AF_UNSPEC;
}

const struct tk_http_info *
tk_http_req_info(const struct tk_http_req *req)
{
	return &req->info;
}

static bool
is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int
tk_http_field_check(const char *line)
{
	const unsigned char *p = (const unsigned char *)line;

	if (!is_tchar(*p))
		return -EINVAL;
	while (is_tchar(*p))
		p++;
	if (*p++ != ':')
		return -EINVAL;
	for (; *p != '\0'; p++)
		if (*p != '\t' && (*p < 0x20 || *p == 0x7f))
			return -EINVAL;
	return 0;
}

/* Whether field line is named name (case-insensitive). */
static bool
field_is(const char *line, const char *name)
{
	size_t n = strlen(name);

	return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

/* The caller's field replacing the default name, or NULL. */
static const char *
user_field(const struct tk_http_req *req, const char *name, bool first_host)
{
	char **h;

	for (h = req->headers; h != NULL && *h != NULL; h++)
		if (field_is(*h, name) &&
		    (first_host || strcasecmp(name, "host") != 0))
			return *h;
	return NULL;
}

/* Credentials and a Host override are for the host they were given for. */
static bool
first_host_only(const char *line)
{
	return field_is(line, "host") || field_is(line, "authorization") ||
	       field_is(line, "proxy-authorization") ||
	       field_is(line, "cookie");
}

/* A growing string; the first failure sticks in err. */
struct strbuf {
	char *p;
	size_t len;
	size_t cap;
	int err;
};

static void strbuf_add(struct strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
strbuf_add(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	size_t need;
	char *np;
	int n;

	if (sb->err != 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		sb->err = -EINVAL;
		return;
	}
	need = sb->len + (size_t)n + 1;
	if (need > sb->cap) {
		np = realloc(sb->p, need * 2);
		if (np == NULL) {
			sb->err = -ENOMEM;
			return;
		}
		sb->p = np;
		sb->cap = need * 2;
	}
	va_start(ap, fmt);
	vsnprintf(sb->p + sb->len, sb->cap - sb->len, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

/*
 * Take url as the current hop (owned by req from now on, even on
 * failure): check it and build its request.  0 or TK_EBADURL, -ENOMEM.
 */
static int
set_hop(struct tk_http_req *req, char *url)
{
	struct tk_url u;
	struct strbuf sb = { 0 };
	const char *target, *f;
	uint16_t port;
	char text[TK_PORTLEN];
	bool first;
	char **h;

	free(req->url);
	req->url = url;
	req->info.url = url;
	if (tk_url_parse(url, strlen(url), &u) < 0)
		return TK_EBADURL;
	if (u.scheme.len == 5 && strncasecmp(url, "https", 5) == 0)
		req->https = true;
	else if (u.scheme.len == 4 && strncasecmp(url, "http", 4) == 0)
		req->https = false;
	else
		return TK_EBADURL;
	port = req->https ? 443 : 80;
	if (u.port.len > 0) {
		snprintf(text, sizeof(text), "%.*s", (int)u.port.len,
			 url + u.port.off);
		if (tk_port_parse(text, &port) < 0 || port == 0)
			return TK_EBADURL;
	}
	memcpy(req->host, url + u.host.off, u.host.len);
	req->host[u.host.len] = '\0';
	req->ipv6 = u.host_is_ipv6;
	snprintf(req->port, sizeof(req->port), "%u", port);
	if (req->first_host[0] == '\0')
		snprintf(req->first_host, sizeof(req->first_host), "%s",
			 req->host);
	first = strcmp(req->host, req->first_host) == 0;

	/* An empty path is "/", and "?q" alone is "/?q" (RFC 9112 3.2.1). */
	target = url + u.target.off;
	strbuf_add(&sb, "%s %s%.*s HTTP/1.1\r\n", req->o.head ? "HEAD" : "GET",
		   u.target.len == 0 || target[0] == '?' ? "/" : "",
		   (int)u.target.len, target);
	if ((f = user_field(req, "host", first)) != NULL) {
		strbuf_add(&sb, "%s\r\n", f);
	} else {
		/* RFC 9112 section 3.2: the port only when not the default. */
		strbuf_add(&sb, req->ipv6 ? "Host: [%s]" : "Host: %s",
			   req->host);
		if (port != (req->https ? 443 : 80))
			strbuf_add(&sb, ":%u", port);
		strbuf_add(&sb, "\r\n");
	}
	f = user_field(req, "user-agent", first);
	if (f != NULL)
		strbuf_add(&sb, "%s\r\n", f);
	else
		strbuf_add(&sb, "User-Agent: tcpkit/%s\r\n", tk_version());
	f = user_field(req, "accept", first);
	strbuf_add(&sb, "%s\r\n", f != NULL ? f : "Accept: */*");
	if (req->o.compressed &&
	    user_field(req, "accept-encoding", first) == NULL)
		strbuf_add(&sb, "Accept-Encoding: gzip, deflate\r\n");
	/* One exchange per connection, and no half-close. */
	strbuf_add(&sb, "Connection: close\r\n");
	for (h = req->headers; h != NULL && *h != NULL; h++) {
		if (field_is(*h, "host") || field_is(*h, "user-agent") ||
		    field_is(*h, "accept") || field_is(*h, "connection") ||
		    (!first && first_host_only(*h)))
			continue;
		strbuf_add(&sb, "%s\r\n", *h);
	}
	strbuf_add(&sb, "\r\n");
	free(req->request);
	req->request = sb.p;
	req->reqlen = sb.len;
	req->info.request = sb.p;
	return sb.err;
}

/*
 * Decide the outcome once and close the connection (its close callback
 * then ends the request).  detail, if not NULL, says it in words.
 */
static void fail(struct tk_http_req *req, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fail(struct tk_http_req *req, int err, const char *fmt, ...)
{
	va_list ap;

	if (req->err == 0 && req->info.phase != TK_HTTP_DONE) {
		req->err = err;
		va_start(ap, fmt);
		vsnprintf(req->detail, sizeof(req->detail), fmt, ap);
		va_end(ap);
	}
	if (req->conn != NULL)
		tk_conn_close(req->conn, err);
}

static bool
over(const struct tk_http_req *req)
{
	return req->err != 0 || req->cancelled ||
	       req->info.phase == TK_HTTP_DONE;
}

/* The body is complete: an orderly close ends the request with 0. */
static void
finish(struct tk_http_req *req)
{
	if (req->zmode == ZM_ON && req->info.got > 0) {
		fail(req, TK_ECODING, "compressed body cut short");
		return;
	}
	req->info.phase = TK_HTTP_DONE;
	if (req->conn != NULL)
		tk_conn_close(req->conn, 0);
}

static void
deliver(struct tk_http_req *req, const char *p, size_t n)
{
	char out[INFLATE_CHUNK];
	size_t have;
	int rc, err;

	if (n == 0)
		return;
	if (req->zmode == ZM_OFF) {
		if (req->cb.body != NULL &&
		    (rc = req->cb.body(req, p, n, req->arg)) < 0)
			fail(req, rc, "%s", "");
		return;
	}
	if (req->zmode != ZM_ON) {
		fail(req, TK_ECODING,
		     "data after the end of the compressed "
		     "body");
		return;
	}
	req->z.next_in = (unsigned char *)(uintptr_t)p;
	req->z.avail_in = (uInt)n;
	while (!over(req)) {
		req->z.next_out = (unsigned char *)out;
		req->z.avail_out = sizeof(out);
		rc = inflate(&req->z, Z_NO_FLUSH);
		if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
			req->zmode = ZM_BROKEN;
			fail(req, TK_ECODING, "corrupt %s body%s%s",
			     req->gzip ? "gzip" : "deflate",
			     req->z.msg != NULL ? ": " : "",
			     req->z.msg != NULL ? req->z.msg : "");
			return;
		}
		have = sizeof(out) - req->z.avail_out;
		if (have > 0 && req->cb.body != NULL &&
		    (err = req->cb.body(req, out, have, req->arg)) < 0) {
			fail(req, err, "%s", "");
			return;
		}
		if (rc == Z_STREAM_END) {
			/* gzip allows members one after the other. */
			if (req->z.avail_in > 0 && req->gzip) {
				inflateReset(&req->z);
				continue;
			}
			req->zmode = ZM_ENDED;
			if (req->z.avail_in > 0)
				fail(req, TK_ECODING,
				     "data after the end of the compressed "
				     "body");
			return;
		}
		if ((req->z.avail_in == 0 && req->z.avail_out > 0) ||
		    (rc == Z_BUF_ERROR && have == 0))
			return;
	}
}

static void
body_data(struct tk_http_req *req, const char *p, size_t n)
{
	size_t used, off, dlen;
	int rc;

	switch (req->info.kind) {
	case TK_HTTP_BODY_LENGTH:
		/* Bytes past Content-Length are not ours: drop them. */
		if (n > req->info.length - req->info.got)
			n = (size_t)(req->info.length - req->info.got);
		req->info.got += n;
		deliver(req, p, n);
		if (!over(req) && req->info.got == req->info.length)
			finish(req);
		return;
	case TK_HTTP_BODY_CHUNKED:
		while (!over(req)) {
			rc = tk_chunked_decode(&req->chunked, p, n, &used, &off,
					       &dlen);
			if (rc < 0) {
				fail(req, TK_EHTTP,
				     "malformed HTTP response: bad chunked "
				     "encoding");
				return;
			}
			if (rc == TK_CHUNK_DATA) {
				req->info.got += dlen;
				deliver(req, p + off, dlen);
			}
			p += used;
			n -= used;
			if (rc == TK_CHUNK_DONE && !over(req))
				finish(req);
			if (rc != TK_CHUNK_DATA)
				return;
		}
		return;
	case TK_HTTP_BODY_CLOSE:
		req->info.got += n;
		deliver(req, p, n);
		return;
	case TK_HTTP_BODY_NONE:
		finish(req);
		return;
	}
}

/* The statuses followed (RFC 9110 section 15.4); 300 and 305 are not. */
static bool
is_redirect(int status)
{
	return status == 301 || status == 302 || status == 303 ||
	       status == 307 || status == 308;
}

/*
 * A final response r that is a redirect with a Location: check where it
 * leads, tell the caller, and end this hop (the next starts when its
 * connection is closed).  Only GET and HEAD are sent, so a 303's "use
 * GET" needs nothing more.
 */
static void
follow(struct tk_http_req *req, const struct tk_http_response *r,
       const char *loc, size_t llen)
{
	char *target = malloc(URL_MAX), *raw = malloc(llen + 1);
	struct tk_url u;
	ssize_t n;
	size_t sl;
	bool https;
	int rc;

	if (target == NULL || raw == NULL) {
		free(target);
		free(raw);
		fail(req, -ENOMEM, "%s", "");
		return;
	}
	memcpy(raw, loc, llen);
	raw[llen] = '\0';
	n = tk_url_resolve(req->url, raw, target, URL_MAX);
	if (n < 0) {
		free(target);
		req->next = raw; /* kept for info.location */
		req->info.location = raw;
		req->info.location_resolved = false;
		fail(req, TK_EREDIRECT, "%d redirect to a malformed Location",
		     r->status);
		return;
	}
	free(raw);
	req->next = target;
	req->info.location = target;
	req->info.location_resolved = true;
	sl = strspn(target, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
			    "WXYZ0123456789+-.");
	https = sl == 5 && strncasecmp(target, "https", 5) == 0;
	if (req->info.redirects >= req->o.max_redirs) {
		fail(req, TK_EREDIRECTS, "too many redirects");
		return;
	}
	if (!https && !(sl == 4 && strncasecmp(target, "http", 4) == 0)) {
		fail(req, TK_EREDIRECT, "redirect to another scheme");
		return;
	}
	if (tk_url_parse(target, strlen(target), &u) < 0) {
		fail(req, TK_EREDIRECT, "redirect to a malformed URL");
		return;
	}
	if (!https && req->https && !req->o.allow_downgrade) {
		fail(req, TK_EDOWNGRADE, "redirect from https to http");
		return;
	}
	if (req->cb.redirect != NULL &&
	    (rc = req->cb.redirect(req, r->status, target, req->arg)) < 0) {
		fail(req, rc, "%s", "");
		return;
	}
	req->info.phase = TK_HTTP_DONE;
	if (req->conn != NULL)
		tk_conn_close(req->conn, 0);
}

/* Set up inflating per Content-Encoding.  false if refused. */
static bool
start_inflate(struct tk_http_req *req, const char *h,
	      const struct tk_http_response *r)
{
	size_t n;
	const char *ce = tk_http_header_find(h, r, "content-encoding", &n);
	int bits;

	if (!req->o.compressed || ce == NULL || n == 0 ||
	    (n == 8 && strncasecmp(ce, "identity", 8) == 0))
		return true;
	if ((n == 4 && strncasecmp(ce, "gzip", 4) == 0) ||
	    (n == 6 && strncasecmp(ce, "x-gzip", 6) == 0)) {
		req->gzip = true;
		bits = 15 + 16;
	} else if (n == 7 && strncasecmp(ce, "deflate", 7) == 0) {
		/* zlib format (RFC 9110 8.4.1.2); a gzip header is accepted. */
		bits = 15 + 32;
	} else {
		fail(req, TK_ECODING, "content coding '%.*s' not supported",
		     (int)(n > 64 ? 64 : n), ce);
		return false;
	}
	memset(&req->z, 0, sizeof(req->z));
	if (inflateInit2(&req->z, bits) != Z_OK) {
		fail(req, -ENOMEM, "%s", "");
		return false;
	}
	req->zmode = ZM_ON;
	return true;
}

/*
 * A complete head of hlen bytes is at the front of req->head.  Interim
 * responses are passed on and skipped; the final one sets up the body,
 * whose first bytes may already be in req->head after the head.
 */
static void
head_done(struct tk_http_req *req, const struct tk_http_response *r,
	  size_t hlen)
{
	const char *h = tk_buf_peek(&req->head), *loc;
	size_t nrest = tk_buf_len(&req->head) - hlen, llen;
	int rc;

	req->info.status = r->status;
	if (r->status == 101) {
		/* No upgrade was asked for: what follows is not HTTP. */
		fail(req, TK_EHTTP,
		     "malformed HTTP response: 101 Switching Protocols "
		     "without an Upgrade request");
		return;
	}
	if (r->status < 200) {
		req->info.ninterim++;
		if (req->cb.head != NULL &&
		    (rc = req->cb.head(req, r, h, hlen, req->arg)) < 0) {
			fail(req, rc, "%s", "");
			return;
		}
		tk_buf_consume(&req->head, hlen);
		req->last_len = 0;
		return;
	}
	if (tk_http_body_framing(h, r, req->o.head, &req->info.kind,
				 &req->info.length) < 0) {
		if (tk_http_header_find(h, r, "content-length", NULL) != NULL &&
		    tk_http_header_find(h, r, "transfer-encoding", NULL) !=
			    NULL)
			fail(req, TK_EHTTP,
			     "malformed HTTP response: both Content-Length "
			     "and Transfer-Encoding (RFC 9112 section 6.3)");
		else
			fail(req, TK_EHTTP,
			     "malformed HTTP response: bad Content-Length or "
			     "Transfer-Encoding");
		return;
	}
	if (req->cb.head != NULL &&
	    (rc = req->cb.head(req, r, h, hlen, req->arg)) < 0) {
		fail(req, rc, "%s", "");
		return;
	}
	if (over(req))
		return;
	loc = tk_http_header_find(h, r, "location", &llen);
	if (req->o.follow && is_redirect(r->status) && loc != NULL &&
	    llen > 0) {
		follow(req, r, loc, llen);
		return;
	}
	req->info.phase = TK_HTTP_BODY;
	tk_chunked_init(&req->chunked);
	if (req->info.kind != TK_HTTP_BODY_NONE && !start_inflate(req, h, r))
		return;
	if (req->info.kind == TK_HTTP_BODY_NONE ||
	    (req->info.kind == TK_HTTP_BODY_LENGTH && req->info.length == 0))
		finish(req);
	else if (nrest > 0)
		body_data(req, h + hlen, nrest);
	/* The head is not needed any more: its 64 KiB go back. */
	tk_buf_free(&req->head);
}

static void
head_data(struct tk_http_req *req, const char *p, size_t n)
{
	struct tk_http_response r = { .headers = req->hdrs,
				      .max_headers = TK_HTTP_MAX_HEADERS };
	ssize_t hlen;
	size_t take;
	int err;

	while (req->info.phase == TK_HTTP_HEAD && !over(req)) {
		take = n < tk_buf_room(&req->head) ? n
						   : tk_buf_room(&req->head);
		if (take > 0 &&
		    (err = tk_buf_append(&req->head, p, take)) < 0) {
			fail(req, err, "%s", "");
			return;
		}
		p += take;
		n -= take;
		hlen = tk_http_parse_response(tk_buf_peek(&req->head),
					      tk_buf_len(&req->head),
					      req->last_len, &r);
		req->info.head_bytes = tk_buf_len(&req->head);
		if (hlen == TK_ETOOBIG) {
			fail(req, TK_ETOOBIG,
			     "malformed HTTP response: more than %d header "
			     "fields",
			     TK_HTTP_MAX_HEADERS);
			return;
		}
		if (hlen < 0) {
			/* The usual mistake of http:// for https://. */
			if (tk_tls_looks_like_record(tk_buf_peek(&req->head),
						     tk_buf_len(&req->head)))
				fail(req, TK_EHTTP,
				     "the peer answered with TLS: try https://");
			else
				fail(req, TK_EHTTP, "%s",
				     tk_strerror(TK_EHTTP));
			return;
		}
		if (hlen == 0) {
			req->last_len = tk_buf_len(&req->head);
			/* Input left over means the buffer is full. */
			if (tk_buf_room(&req->head) == 0)
				fail(req, TK_ETOOBIG,
				     "malformed HTTP response: head larger "
				     "than %u KiB",
				     HEAD_MAX / 1024);
			return;
		}
		/* After an interim response, go round: the next head may be
		 * buffered already. */
		head_done(req, &r, (size_t)hlen);
	}
	if (n > 0 && req->info.phase == TK_HTTP_BODY && !over(req))
		body_data(req, p, n);
}

/* The server closed its side: complete only for a close-delimited body. */
static void
peer_closed(struct tk_http_req *req)
{
	if (req->info.phase == TK_HTTP_HEAD) {
		if (tk_buf_len(&req->head) == 0)
			fail(req, TK_ETRUNCATED,
			     "connection closed without a response");
		else
			fail(req, TK_ETRUNCATED,
			     "connection closed inside the response head");
		return;
	}
	switch (req->info.kind) {
	case TK_HTTP_BODY_LENGTH:
		fail(req, TK_ETRUNCATED,
		     "connection closed after %llu of %llu body bytes",
		     (unsigned long long)req->info.got,
		     (unsigned long long)req->info.length);
		return;
	case TK_HTTP_BODY_CHUNKED:
		fail(req, TK_ETRUNCATED,
		     "connection closed inside a chunked body");
		return;
	default:
		/*
		 * Over TLS only close_notify proves the close is the
		 * server's: a bare FIN may be an attacker cutting the body.
		 */
		if (req->conn != NULL && tk_conn_tls_truncated(req->conn)) {
			fail(req, TK_ETRUNCATED,
			     "truncated: no TLS close_notify after %llu body "
			     "bytes",
			     (unsigned long long)req->info.got);
			return;
		}
		if (req->zmode == ZM_ON) {
			fail(req, TK_ECODING, "compressed body cut short");
			return;
		}
		finish(req);
	}
}

static int
http_open(struct tk_conn *c, void *arg)
{
	struct tk_http_req *req = arg;
	int err;

	req->conn = c;
	req->info.conn = c;
	req->info.phase = TK_HTTP_HEAD;
	if (req->cb.open != NULL && (err = req->cb.open(req, c, req->arg)) < 0)
		return err;
	if (req->cancelled)
		return -ECANCELED;
	err = tk_conn_write(c, req->request, req->reqlen);
	if (err < 0)
		return err;
	tk_loop_update_time(req->loop);
	req->last_data = tk_loop_now(req->loop);
	if (req->idle != NULL)
		return tk_timer_start(req->idle, req->o.idle_timeout_ms, 0);
	return 0;
}

static void
http_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct tk_http_req *req = arg;

	(void)c;
	if (over(req))
		return;
	if (n == TK_EOF)
		peer_closed(req);
	else if (req->info.phase == TK_HTTP_HEAD)
		head_data(req, data, (size_t)n);
	else
		body_data(req, data, (size_t)n);
	/* The callbacks may have blocked: the wait starts afresh now. */
	tk_loop_update_time(req->loop);
	req->last_data = tk_loop_now(req->loop);
}

static int start_hop(struct tk_http_req *req);
static void req_free(struct tk_http_req *req);

/* The hop's connection is gone: on to the next hop, or the end. */
static void
http_close(struct tk_conn *c, int err, void *arg)
{
	struct tk_http_req *req = arg;

	req->conn = NULL;
	if (req->idle != NULL)
		tk_timer_stop(req->idle);
	if (req->cancelled) {
		req_free(req);
		return;
	}
	snprintf(req->conn_error, sizeof(req->conn_error), "%s",
		 tk_conn_last_error(c));
	if (req->err == 0 && req->info.phase == TK_HTTP_DONE &&
	    req->next != NULL) {
		req->info.redirects++;
		req->err = start_hop(req);
		if (req->err == 0)
			return;
		c = NULL;
		req->conn_error[0] = '\0';
	} else if (req->err == 0 && req->info.phase != TK_HTTP_DONE) {
		/* Not expected: every orderly end goes through http_data(). */
		req->err = err != 0 ? err : TK_ETRUNCATED;
		if (err == 0)
			snprintf(req->detail, sizeof(req->detail),
				 "connection closed");
	}
	if (req->deadline != NULL)
		tk_timer_stop(req->deadline);
	req->info.conn = c;
	req->in_done = true;
	req->cb.done(req, req->err, req->arg);
	req_free(req);
}

static const struct tk_service http_service = {
	.name = "http",
	.open = http_open,
	.data = http_data,
	.close = http_close,
};

/* No data for idle_timeout_ms.  Re-armed rather than restarted per read. */
static void
on_idle(struct tk_timer *t, void *arg)
{
	struct tk_http_req *req = arg;
	uint64_t spent = tk_loop_now(req->loop) - req->last_data;

	if (req->conn == NULL || over(req))
		return;
	if (spent < req->o.idle_timeout_ms) {
		if (tk_timer_start(t, req->o.idle_timeout_ms - spent, 0) < 0)
			fail(req, -ENOMEM, "%s", "");
		return;
	}
	fail(req, TK_EIDLE, "%s", "");
}

/* max_time_ms: the whole exchange is over, whatever it was doing. */
static void
on_deadline(struct tk_timer *t, void *arg)
{
	struct tk_http_req *req = arg;

	(void)t;
	if (req->conn == NULL || over(req))
		return;
	fail(req, TK_ETIMEDOUT, "%s", "");
}

/*
 * Resolve and connect to the current hop (req->next, if set, becomes it).
 * 0, or the error (no callback called).
 */
static int
start_hop(struct tk_http_req *req)
{
	struct tk_addrlist *list;
	struct tk_conn_opts copts;
	struct tk_conn *c;
	int err;

	if (req->next != NULL) {
		char *url = req->next;

		req->next = NULL;
		req->info.location = NULL;
		err = set_hop(req, url);
		if (err < 0)
			return err;
	}
	req->info.phase = TK_HTTP_CONNECTING;
	req->info.status = 0;
	req->info.kind = TK_HTTP_BODY_NONE;
	req->info.length = req->info.got = req->info.ninterim = 0;
	req->info.head_bytes = 0;
	req->info.conn = NULL;
	req->last_len = 0;
	if (req->https && req->o.tls == NULL)
		return TK_ETLSCONFIG;
	tk_buf_free(&req->head);
	tk_buf_init(&req->head, HEAD_MAX);
	if (req->zmode != ZM_OFF)
		inflateEnd(&req->z);
	req->zmode = ZM_OFF;
	req->gzip = false;
	tk_conn_opts_init(&copts);
	copts.connect_timeout_ms = req->o.connect_timeout_ms;
	/* The idle timeout is ours: it must not count the callbacks' time. */
	copts.idle_timeout_ms = 0;
	copts.tls = req->https ? req->o.tls : NULL;
	copts.servername =
		req->servername != NULL &&
				strcmp(req->host, req->first_host) == 0
			? req->servername
			: req->host;
	if (req->proxy != NULL) {
		/* The proxy resolves, or the connection does, off the loop. */
		copts.proxy = req->proxy;
		err = tk_conn_connect_host(req->loop, req->host, req->port,
					   &copts, &http_service, req, &c);
		if (err < 0)
			return err;
		req->conn = c;
		return 0;
	}
	err = tk_resolve(req->host, req->port, req->o.family,
			 req->ipv6 ? TK_RESOLVE_NUMERIC : 0, &list);
	if (err < 0)
		return err;
	err = tk_conn_connect(req->loop, list, &copts, &http_service, req, &c);
	tk_addrlist_free(list);
	if (err < 0)
		return err;
	req->conn = c;
	return 0;
}

static void
req_free(struct tk_http_req *req)
{
	char **h;

	if (req->zmode != ZM_OFF)
		inflateEnd(&req->z);
	tk_timer_free(req->idle);
	tk_timer_free(req->deadline);
	tk_buf_free(&req->head);
	for (h = req->headers; h != NULL && *h != NULL; h++)
		free(*h);
	free(req->headers);
	free(req->servername);
	if (req->proxy != NULL) {
		tk_proxy_clear(req->proxy);
		free(req->proxy);
	}
	free(req->url);
	free(req->request);
	free(req->next);
	free(req);
}

/* Copy the caller's options and fields into req.  0, -EINVAL, -ENOMEM. */
static int
copy_opts(struct tk_http_req *req, const struct tk_http_opts *opts)
{
	size_t n = 0, i;

	if (opts != NULL)
		req->o = *opts;
	else
		tk_http_opts_init(&req->o);
	if (req->o.servername != NULL &&
	    (req->servername = strdup(req->o.servername)) == NULL)
		return -ENOMEM;
	req->o.servername = NULL;
	if (req->o.proxy != NULL) {
		req->proxy = malloc(sizeof(*req->proxy));
		if (req->proxy == NULL)
			return -ENOMEM;
		*req->proxy = *req->o.proxy;
		req->o.proxy = NULL;
	}
	while (req->o.headers != NULL && req->o.headers[n] != NULL)
		if (tk_http_field_check(req->o.headers[n++]) < 0)
			return -EINVAL;
	if (n > 0) {
		req->headers = calloc(n + 1, sizeof(*req->headers));
		if (req->headers == NULL)
			return -ENOMEM;
		for (i = 0; i < n; i++)
			if ((req->headers[i] = strdup(req->o.headers[i])) ==
			    NULL)
				return -ENOMEM;
	}
	req->o.headers = NULL;
	return 0;
}

int
tk_http_get(struct tk_loop *loop, const char *url,
	    const struct tk_http_opts *opts, const struct tk_http_cb *cb,
	    void *arg, struct tk_http_req **out)
{
	struct tk_http_req *req;
	char *copy;
	int err;

	*out = NULL;
	if (cb == NULL || cb->done == NULL)
		return -EINVAL;
	req = calloc(1, sizeof(*req));
	if (req == NULL)
		return -ENOMEM;
	req->loop = loop;
	req->cb = *cb;
	req->arg = arg;
	req->info.detail = req->detail;
	req->info.conn_error = req->conn_error;
	tk_buf_init(&req->head, HEAD_MAX);
	err = copy_opts(req, opts);
	if (err < 0)
		goto fail;
	copy = strdup(url);
	if (copy == NULL) {
		err = -ENOMEM;
		goto fail;
	}
	err = set_hop(req, copy);
	if (err < 0)
		goto fail;
	if (req->o.idle_timeout_ms != 0 &&
	    (err = tk_timer_new(loop, on_idle, req, &req->idle)) < 0)
		goto fail;
	if (req->o.max_time_ms != 0 &&
	    ((err = tk_timer_new(loop, on_deadline, req, &req->deadline)) < 0 ||
	     (err = tk_timer_start(req->deadline, req->o.max_time_ms, 0)) < 0))
		goto fail;
	err = start_hop(req);
	if (err < 0)
		goto fail;
	*out = req;
	return 0;
fail:
	req_free(req);
	return err;
}

void
tk_http_req_cancel(struct tk_http_req *req)
{
	if (req == NULL || req->in_done || req->cancelled)
		return;
	req->cancelled = true;
	if (req->idle != NULL)
		tk_timer_stop(req->idle);
	if (req->deadline != NULL)
		tk_timer_stop(req->deadline);
	if (req->conn != NULL)
		tk_conn_close(req->conn, -ECANCELED);
	else
		req_free(req);
}
