/* cmd_get.c: `tcpkit get`: its arguments and its output; the HTTP/1.1
 * exchange itself is the library's (tk_http_get()). */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "get.h"
#include "proxyopt.h"
#include "tlsopt.h"

/* One run of the command: where the output goes and how it ended. */
struct get_state {
	const struct get_opts *o;
	struct tk_loop *loop;
	const char *url;     /* the hop's: the errors name it */
	struct get_out file; /* -o */
	int fd;		     /* 1 or file.fd */
	int rc;		     /* the exit code */
	bool reported;	     /* the error line is printed (or none is due) */
	bool ended;	     /* done has run */
};

/* Report an error once; the exchange is ended by the caller. */
static void fail(struct get_state *st, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fail(struct get_state *st, int rc, const char *fmt, ...)
{
	const char *url = st->url != NULL ? st->url : st->o->url;
	char why[1024], *where = NULL;
	size_t len;
	va_list ap;

	if (st->reported)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* Through a proxy, the error names it too (never its password). */
	len = strlen(url) + 2 * TK_HOSTLEN + TK_PROXY_CREDLEN + 64;
	if (st->o->has_proxy && (where = malloc(len)) != NULL)
		proxyopt_where(url, &st->o->proxy, where, len);
	cli_error("get", where != NULL ? where : url, "%s", why);
	free(where);
	st->reported = true;
	st->rc = rc;
}

/*
 * Write as the bytes come: memory stays bounded whatever the body's size.
 * 0, or a code that ends the exchange: stdout failed, or whoever read it
 * went away (a pipe into head), which ends quietly with 0 as for `tcpkit
 * connect`.
 */
static int
emit(struct get_state *st, const char *p, size_t n)
{
	int err = cli_write_all(st->fd, p, n);

	if (err == -EPIPE && st->o->output == NULL) {
		st->reported = true;
		return err;
	}
	if (err < 0)
		fail(st,
		     st->o->output != NULL ? CLI_EXIT_IOERR : CLI_EXIT_OTHER,
		     "cannot write to %s: %s",
		     st->o->output != NULL ? st->o->output : "stdout",
		     tk_strerror(err));
	return err;
}

/* One line of network text on stderr, escaped (see get_escape()). */
static void
print_escaped(const char *prefix, const char *s, size_t n)
{
	size_t len;
	char *e = get_escape(s, n, false, &len);

	fprintf(stderr, "%s%s\n", prefix, e != NULL ? e : "(out of memory)");
	free(e);
}

/* -i: a head as received into a file or a pipe; escaped on a terminal. */
static int
emit_head(struct get_state *st, const char *h, size_t hlen)
{
	size_t len;
	char *e;
	int err;

	if (!st->o->tty_out)
		return emit(st, h, hlen);
	e = get_escape(h, hlen, true, &len);
	if (e == NULL) {
		fail(st, CLI_EXIT_OTHER, "%s", tk_strerror(-ENOMEM));
		return -ENOMEM;
	}
	err = emit(st, e, len);
	free(e);
	return err;
}

static int
on_open(struct tk_http_req *req, struct tk_conn *c, void *arg)
{
	struct get_state *st = arg;
	const char *r = tk_http_req_info(req)->request;
	char where[TK_ADDRSTRLEN];

	st->url = tk_http_req_info(req)->url;
	if (st->o->verbose) {
		tk_addr_format(tk_conn_peer(c), where, sizeof(where));
		/* Through a proxy the peer is the proxy: say so. */
		if (st->o->has_proxy)
			fprintf(stderr,
				"connected to %s through the proxy at %s\n",
				st->url, where);
		else
			fprintf(stderr, "connected to %s\n", where);
		if (tk_conn_is_tls(c))
			tlsopt_print_info(c);
		fprintf(stderr, "> %.*s\n", (int)strcspn(r, "\r"), r);
	}
	return 0;
}

/* Without -L, a redirect is shown as any response, and where it points. */
static void
redirect_notice(struct get_state *st, struct tk_http_req *req,
		const struct tk_http_response *r, const char *h)
{
	const char *loc;
	char *raw, target[4096], *shown;
	size_t llen, slen;
	ssize_t n;

	loc = tk_http_header_find(h, r, "location", &llen);
	if (st->o->http.follow || loc == NULL || llen == 0 ||
	    (r->status != 301 && r->status != 302 && r->status != 303 &&
	     r->status != 307 && r->status != 308))
		return;
	raw = strndup(loc, llen);
	if (raw == NULL)
		return;
	n = tk_url_resolve(tk_http_req_info(req)->url, raw, target,
			   sizeof(target));
	/* Text from the server: escaped before it reaches the terminal. */
	shown = n >= 0 ? get_escape(target, (size_t)n, false, &slen)
		       : get_escape(raw, llen, false, &slen);
	cli_error("get", tk_http_req_info(req)->url, "%d -> %s (use -L)",
		  r->status, shown != NULL ? shown : "?");
	free(shown);
	free(raw);
}

static int
on_head(struct tk_http_req *req, const struct tk_http_response *r,
	const char *h, size_t len, void *arg)
{
	struct get_state *st = arg;
	size_t n = strcspn(h, "\r\n");

	if (st->o->verbose)
		print_escaped("< ", h, n < len ? n : len);
	if (r->status >= 200 && st->o->fail && r->status >= 400) {
		char *reason =
			get_escape(h + r->reason.off, r->reason.len, false, &n);

		fail(st, CLI_EXIT_OTHER, "server answered %d%s%s", r->status,
		     r->reason.len > 0 ? " " : "",
		     reason != NULL ? reason : "");
		free(reason);
		return -ECANCELED;
	}
	if (r->status >= 200)
		redirect_notice(st, req, r, h);
	return st->o->include ? emit_head(st, h, len) : 0;
}

static int
on_redirect(struct tk_http_req *req, int status, const char *url, void *arg)
{
	struct get_state *st = arg;
	char prefix[64];

	(void)req;
	if (st->o->verbose) {
		snprintf(prefix, sizeof(prefix), "redirected (%d) to ", status);
		print_escaped(prefix, url, strlen(url));
	}
	return 0;
}

static int
on_body(struct tk_http_req *req, const char *data, size_t len, void *arg)
{
	(void)req;
	return emit(arg, data, len);
}

/* --max-time: say what the server was doing when time ran out. */
static void
max_time_reached(struct get_state *st, const struct tk_http_info *i)
{
	char dur[32];

	cli_format_duration(st->o->http.max_time_ms, dur, sizeof(dur));
	if (i->phase == TK_HTTP_CONNECTING)
		fail(st, CLI_EXIT_TIMEOUT,
		     "max time (%s) reached while connecting", dur);
	else if (i->phase == TK_HTTP_HEAD && i->ninterim > 0)
		fail(st, CLI_EXIT_TIMEOUT,
		     "max time reached: 1xx responses for %s (%llu of them) "
		     "and no final response",
		     dur, (unsigned long long)i->ninterim);
	else if (i->phase == TK_HTTP_HEAD)
		fail(st, CLI_EXIT_TIMEOUT,
		     "max time reached: no complete response within %s", dur);
	else
		fail(st, CLI_EXIT_TIMEOUT,
		     "max time reached: %sbody not complete within %s (%llu "
		     "bytes received)",
		     i->kind == TK_HTTP_BODY_CHUNKED ? "chunked " : "", dur,
		     (unsigned long long)i->got);
}

/* A refused redirect, in the words of the options that govern it. */
static void
redirect_refused(struct get_state *st, int err, const struct tk_http_info *i)
{
	const char *to = i->location != NULL ? i->location : "";
	size_t n = strspn(to, SCHEME_CHARS), len;
	char *shown;

	if (err == TK_EREDIRECTS) {
		fail(st, CLI_EXIT_PROTOCOL,
		     "too many redirects (more than --max-redirs %u); the "
		     "next was to %s",
		     st->o->http.max_redirs, to);
	} else if (err == TK_EDOWNGRADE) {
		fail(st, CLI_EXIT_PROTOCOL,
		     "redirect from https to http refused: %s (use "
		     "--allow-https-downgrade)",
		     to);
	} else if (!i->location_resolved) {
		shown = get_escape(to, strlen(to), false, &len);
		fail(st, CLI_EXIT_PROTOCOL,
		     "%d redirect to a malformed Location '%s'", i->status,
		     shown != NULL ? shown : "");
		free(shown);
	} else if (!(n == 5 && strncasecmp(to, "https", 5) == 0) &&
		   !(n == 4 && strncasecmp(to, "http", 4) == 0)) {
		fail(st, CLI_EXIT_PROTOCOL,
		     "redirect to '%s' refused: not http or https", to);
	} else {
		fail(st, CLI_EXIT_PROTOCOL, "redirect to a malformed URL '%s'",
		     to);
	}
}

static void
on_done(struct tk_http_req *req, int err, void *arg)
{
	struct get_state *st = arg;
	const struct tk_http_info *i = tk_http_req_info(req);
	char dur[32], why[512];

	st->ended = true;
	st->url = i->url;
	tk_loop_stop(st->loop);
	if (st->reported || err == 0)
		return;
	if (err == TK_ECONNTIMEDOUT) {
		fail(st, CLI_EXIT_TIMEOUT, "connect timed out after %s",
		     cli_format_duration(st->o->http.connect_timeout_ms, dur,
					 sizeof(dur)));
	} else if (err == TK_EIDLE) {
		fail(st, CLI_EXIT_TIMEOUT, "idle timeout (no data for %s)",
		     cli_format_duration(st->o->http.idle_timeout_ms, dur,
					 sizeof(dur)));
	} else if (err == TK_ETIMEDOUT) {
		max_time_reached(st, i);
	} else if (err == TK_EREDIRECTS || err == TK_EREDIRECT ||
		   err == TK_EDOWNGRADE) {
		redirect_refused(st, err, i);
	} else if (i->detail[0] != '\0') {
		fail(st, cli_exit_code(err), "%s", i->detail);
	} else if (i->conn != NULL) {
		fail(st, cli_exit_code(err), "%s",
		     tlsopt_why(i->conn, err, why, sizeof(why)));
	} else {
		fail(st, cli_exit_code(err), "%s", tk_strerror(err));
	}
	if (st->o->verbose && i->conn_error[0] != '\0')
		fprintf(stderr, "last attempt: %s\n", i->conn_error);
	st->url = NULL;
}

static const struct tk_http_cb get_cb = {
	.open = on_open,
	.head = on_head,
	.redirect = on_redirect,
	.body = on_body,
	.done = on_done,
};

/* The exchange, on a loop of its own.  The exit code. */
static int
fetch(struct get_opts *o)
{
	struct get_state st = { .o = o, .fd = STDOUT_FILENO };
	struct tk_http_req *req;
	int err;

	if (o->output != NULL) {
		st.rc = get_out_open(&st.file, o->output);
		if (st.rc != 0)
			return st.rc;
		st.file.no_sync = o->no_sync;
		st.fd = st.file.fd;
	}
	if ((err = tk_loop_new(&st.loop)) < 0) {
		st.rc = cli_fail("get", o->url, err);
		goto out;
	}
	err = tk_http_get(st.loop, o->url, &o->http, &get_cb, &st, &req);
	if (err < 0) {
		st.rc = cli_fail("get", o->url, err);
		goto out_loop;
	}
	err = tk_loop_run(st.loop);
	if (!st.ended) {
		/* Only after a loop failure: stop, and let the close run. */
		fail(&st, cli_exit_code(err), "%s", tk_strerror(err));
		tk_http_req_cancel(req);
		(void)tk_loop_run_once(st.loop, 0);
	}
out_loop:
	tk_loop_free(st.loop);
out:
	if (o->output != NULL && st.rc == 0)
		st.rc = get_out_commit(&st.file);
	else if (o->output != NULL)
		get_out_discard(&st.file);
	return st.rc;
}

/*
 * The proxy for o->url, from --proxy or the environment (curl's rules),
 * unless --noproxy or NO_PROXY names its host.  0 or the usage error's
 * exit code.
 */
static int
pick_proxy(struct get_opts *o, bool https)
{
	struct tk_url u;
	char host[TK_HOSTLEN];
	int rc;

	if (tk_url_parse(o->url, strlen(o->url), &u) < 0 ||
	    u.host.len >= sizeof(host))
		return 0; /* get_check_url() has let it through: tk_http_get
			     says what is wrong */
	memcpy(host, o->url + u.host.off, u.host.len);
	host[u.host.len] = '\0';
	rc = proxyopt_for_url("get", https ? "https" : "http", host,
			      o->proxy_flag, o->noproxy, &o->proxy,
			      &o->has_proxy);
	if (o->proxy_flag != NULL)
		proxyopt_hide(o->proxy_flag);
	if (rc != 0)
		return rc;
	o->http.proxy = o->has_proxy ? &o->proxy : NULL;
	return 0;
}

int
cmd_get(int argc, char **argv)
{
	struct get_opts o;
	bool https;
	int rc;

	rc = get_parse(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	rc = get_check_url(o.url);
	if (rc != 0)
		return rc;
	https = strncasecmp(o.url, "https:", 6) == 0;
	if (!https && o.tls.used && !o.http.follow)
		return cli_usage("get", "%s needs an https:// URL",
				 o.tls.used_name);
	/* Certificates are read before any I/O (with -L, for later hops). */
	o.tls.tls = https || o.tls.used || o.http.follow;
	rc = tlsopt_client_ctx("get", &o.tls, &o.ctx);
	if (rc != 0)
		return rc;
	o.http.tls = o.ctx;
	o.http.servername = o.tls.servername;
	rc = pick_proxy(&o, https);
	if (rc == 0)
		rc = fetch(&o);
	tk_proxy_clear(&o.proxy);
	tk_tls_ctx_free(o.ctx);
	return rc;
}
