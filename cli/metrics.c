/* metrics.c: --metrics, a small HTTP/1.1 endpoint on the owner's loop with
 * the Prometheus text format (0.0.4) at /metrics, the status page at / and
 * its numbers at /status.json. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "metrics.h"

/*
 * Bounds: a scraper or a browser needs one short request at a time, so a
 * few connections, one request each, a request's head in 4 KiB and within
 * a few seconds; nothing more is worth a byte of memory.
 */
#define METRICS_MAX_CONNS   16
#define METRICS_MAX_REQUEST 4096
#define METRICS_REQUEST_MS  5000
#define METRICS_IDLE_MS	    10000
#define METRICS_MAX_ADDRS   16

struct metrics {
	struct tk_server *http;
	struct tk_server *data;
	const char *cmd;
	const char *service;
};

struct request {
	size_t len;
	bool answered;
	char buf[METRICS_MAX_REQUEST];
};

int
metricsopt_take(const char *cmd, struct metricsopt *o, const char *arg)
{
	char why[128];
	uint64_t port;

	if (tk_endpoint_parse(arg, TK_EP_PASSIVE, &o->ep, why, sizeof(why)) !=
	    0)
		return cli_usage(cmd, "--metrics '%s': %s", arg, why);
	if (o->ep.kind != TK_EP_TCP)
		return cli_usage(cmd, "--metrics '%s': HOST:PORT expected",
				 arg);
	if (cli_parse_uint(cmd, "--metrics", o->ep.port, 0, 65535, &port) < 0)
		return CLI_EXIT_USAGE;
	o->port = (uint16_t)port;
	o->text = arg;
	o->set = true;
	return 0;
}

/* A label value: backslash, double quote and newline escaped. */
static void
prom_label(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

#define OTHER_ERRORS SIZE_MAX /* conn_errors not counted by kind */

static const struct series {
	const char *name, *type, *help;
	const char *label; /* a fixed label pair, or NULL */
	size_t off;	   /* in struct tk_server_stats */
} series[] = {
	{ "tcpkit_connections_open", "gauge", "Connections open now.", NULL,
	  offsetof(struct tk_server_stats, active) },
	{ "tcpkit_connections_accepted_total", "counter",
	  "Connections accepted (refused ones not included).", NULL,
	  offsetof(struct tk_server_stats, accepted) },
	{ "tcpkit_connections_rejected_total", "counter",
	  "Connections closed right after accept: over --max-conns, "
	  "refused by --allow/--deny, or without a valid PROXY header from "
	  "a trusted balancer.",
	  "reason=\"max_conns\"", offsetof(struct tk_server_stats, rejected) },
	{ "tcpkit_connections_rejected_total", NULL, NULL, "reason=\"denied\"",
	  offsetof(struct tk_server_stats, denied) },
	{ "tcpkit_connections_rejected_total", NULL, NULL,
	  "reason=\"proxy_protocol\"",
	  offsetof(struct tk_server_stats, pp_refused) },
	{ "tcpkit_connections_closed_total", "counter",
	  "Accepted connections that have ended, errors included.", NULL,
	  offsetof(struct tk_server_stats, closed) },
	{ "tcpkit_connection_errors_total", "counter",
	  "Connections that ended with an error, by kind.", "kind=\"reset\"",
	  offsetof(struct tk_server_stats, resets) },
	{ "tcpkit_connection_errors_total", NULL, NULL, "kind=\"timeout\"",
	  offsetof(struct tk_server_stats, timeouts) },
	{ "tcpkit_connection_errors_total", NULL, NULL, "kind=\"line\"",
	  offsetof(struct tk_server_stats, line_errors) },
	{ "tcpkit_connection_errors_total", NULL, NULL, "kind=\"other\"",
	  OTHER_ERRORS },
	{ "tcpkit_accept_errors_total", "counter",
	  "Failed accept(2) calls (out of descriptors or memory).", NULL,
	  offsetof(struct tk_server_stats, accept_errors) },
	{ "tcpkit_tls_handshake_failures_total", "counter",
	  "TLS handshakes that failed or timed out.", NULL,
	  offsetof(struct tk_server_stats, tls_failures) },
	{ "tcpkit_received_bytes_total", "counter",
	  "Bytes read from clients (open connections included).", NULL,
	  offsetof(struct tk_server_stats, bytes_in) },
	{ "tcpkit_sent_bytes_total", "counter",
	  "Bytes written to clients (open connections included).", NULL,
	  offsetof(struct tk_server_stats, bytes_out) },
};

static uint64_t
stat_value(const struct tk_server_stats *st, size_t off)
{
	uint64_t v;

	if (off == OTHER_ERRORS)
		return st->conn_errors - st->resets - st->timeouts -
		       st->line_errors;
	memcpy(&v, (const char *)st + off, sizeof(v));
	return v;
}

/* Each worker's numbers, read once for a whole page. */
struct snapshot {
	unsigned n;
	struct tk_server_stats *st;
	struct tk_server_latency *lat;
};

static int
take_snapshot(const struct metrics *m, struct snapshot *s)
{
	struct tk_server_stats all;

	tk_server_get_stats(m->data, &all);
	s->n = (unsigned)all.workers;
	s->st = calloc(s->n, sizeof(*s->st));
	s->lat = calloc(s->n, sizeof(*s->lat));
	if (s->st == NULL || s->lat == NULL) {
		free(s->st);
		free(s->lat);
		return -ENOMEM;
	}
	for (unsigned k = 0; k < s->n; k++) {
		(void)tk_server_get_worker_stats(m->data, k, &s->st[k]);
		(void)tk_server_get_latency(m->data, k, &s->lat[k]);
	}
	return 0;
}

static void
free_snapshot(struct snapshot *s)
{
	free(s->st);
	free(s->lat);
}

static void
prom_latency(FILE *f, const struct snapshot *s)
{
	static const char name[] = "tcpkit_response_latency_seconds";

	fprintf(f,
		"# HELP %s Time from the first unanswered byte read on a "
		"connection to the next bytes written to it.\n"
		"# TYPE %s histogram\n",
		name, name);
	for (unsigned k = 0; k < s->n; k++) {
		const struct tk_server_latency *l = &s->lat[k];
		uint64_t cum = 0;

		for (unsigned i = 0; i < TK_LATENCY_BUCKETS; i++) {
			uint64_t b = tk_latency_bound_ns(i);

			cum += l->buckets[i];
			if (b == UINT64_MAX)
				fprintf(f,
					"%s_bucket{worker=\"%u\",le=\"+Inf\"} "
					"%llu\n",
					name, k, (unsigned long long)cum);
			else
				fprintf(f,
					"%s_bucket{worker=\"%u\",le=\"%g\"} "
					"%llu\n",
					name, k, (double)b / 1e9,
					(unsigned long long)cum);
		}
		fprintf(f, "%s_sum{worker=\"%u\"} %.9f\n", name, k,
			(double)l->sum_ns / 1e9);
		fprintf(f, "%s_count{worker=\"%u\"} %llu\n", name, k,
			(unsigned long long)l->count);
	}
}

static void
prom_listeners(FILE *f, const struct metrics *m, unsigned workers)
{
	static const char name[] = "tcpkit_listener_accepted_total";
	size_t n = tk_server_listener_count(m->data);

	if (n == 0)
		return;
	fprintf(f,
		"# HELP %s Connections accepted, by listening address.\n"
		"# TYPE %s counter\n",
		name, name);
	for (size_t i = 0; i < n; i++) {
		char where[TK_ADDRSTRLEN];

		tk_addr_format(tk_server_addr(m->data, i), where,
			       sizeof(where));
		for (unsigned k = 0; k < workers; k++) {
			fprintf(f, "%s{worker=\"%u\",listener=\"", name, k);
			prom_label(f, where);
			fprintf(f, "\"} %llu\n",
				(unsigned long long)tk_server_listener_accepted(
					m->data, k, i));
		}
	}
}

/*
 * Per worker only, no unlabelled total beside it: sum() over a family
 * would count a total twice.  sum without (worker) (...) is the total.
 */
static void
prom_page(FILE *f, const struct metrics *m, const struct snapshot *s)
{
	fprintf(f,
		"# HELP tcpkit_workers Worker threads (each its own loop).\n"
		"# TYPE tcpkit_workers gauge\ntcpkit_workers %u\n",
		s->n);
	for (size_t j = 0; j < sizeof(series) / sizeof(series[0]); j++) {
		const struct series *d = &series[j];

		if (d->help != NULL)
			fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", d->name,
				d->help, d->name, d->type);
		for (unsigned k = 0; k < s->n; k++)
			fprintf(f, "%s{worker=\"%u\"%s%s} %llu\n", d->name, k,
				d->label != NULL ? "," : "",
				d->label != NULL ? d->label : "",
				(unsigned long long)stat_value(&s->st[k],
							       d->off));
	}
	prom_listeners(f, m, s->n);
	prom_latency(f, s);
}

static void
json_page(FILE *f, const struct metrics *m, const struct snapshot *s)
{
	size_t n = tk_server_listener_count(m->data);

	fputs("{\"command\":", f);
	cli_json_string(f, m->cmd, strlen(m->cmd));
	fputs(",\"service\":", f);
	cli_json_string(f, m->service, strlen(m->service));
	fputs(",\"workers\":[", f);
	for (unsigned k = 0; k < s->n; k++) {
		const struct tk_server_stats *st = &s->st[k];

		fprintf(f,
			"%s{\"open\":%llu,\"accepted\":%llu,\"rejected\":%llu,"
			"\"denied\":%llu,\"closed\":%llu,\"errors\":%llu,"
			"\"tls_failures\":%llu,\"bytes_in\":%llu,"
			"\"bytes_out\":%llu,\"latency_count\":%llu,"
			"\"latency_sum\":%.9f}",
			k == 0 ? "" : ",", (unsigned long long)st->active,
			(unsigned long long)st->accepted,
			(unsigned long long)st->rejected,
			(unsigned long long)st->denied,
			(unsigned long long)st->closed,
			(unsigned long long)st->conn_errors,
			(unsigned long long)st->tls_failures,
			(unsigned long long)st->bytes_in,
			(unsigned long long)st->bytes_out,
			(unsigned long long)s->lat[k].count,
			(double)s->lat[k].sum_ns / 1e9);
	}
	fputs("],\"listeners\":[", f);
	for (size_t i = 0; i < n; i++) {
		char where[TK_ADDRSTRLEN];

		tk_addr_format(tk_server_addr(m->data, i), where,
			       sizeof(where));
		fputs(i == 0 ? "{\"addr\":" : ",{\"addr\":", f);
		cli_json_string(f, where, strlen(where));
		fputs(",\"accepted\":[", f);
		for (unsigned k = 0; k < s->n; k++)
			fprintf(f, "%s%llu", k == 0 ? "" : ",",
				(unsigned long long)tk_server_listener_accepted(
					m->data, k, i));
		fputs("]}", f);
	}
	fputs("]}\n", f);
}

/* The response, then FIN: Connection: close, one request per connection. */
static void
respond(struct tk_conn *c, const char *status, const char *type,
	const char *extra, const char *body, size_t len)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\n"
			 "Content-Type: %s\r\n"
			 "Content-Length: %zu\r\n"
			 "Cache-Control: no-store\r\n"
			 "%s"
			 "Connection: close\r\n\r\n",
			 status, type, len, extra);
	struct iovec iov[2] = {
		{ head, (size_t)n },
		{ (void *)body, len },
	};

	/* A failed write has closed c already (a reset the peer sees). */
	if (tk_conn_writev(c, iov, 2) == 0)
		tk_conn_end(c);
}

static void
respond_error(struct tk_conn *c, const char *status, const char *extra)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "%s\n", status);

	respond(c, status, "text/plain; charset=utf-8", extra, body, (size_t)n);
}

/* The page for path (query string stripped); false: no such page. */
static bool
render(const struct metrics *m, const char *path, FILE *f, const char **type)
{
	struct snapshot s;

	if (strcmp(path, "/") == 0) {
		char title[128];

		snprintf(title, sizeof(title), "tcpkit %s %s", m->cmd,
			 m->service);
		metrics_page(f, title);
		*type = "text/html; charset=utf-8";
		return true;
	}
	if (strcmp(path, "/metrics") != 0 && strcmp(path, "/status.json") != 0)
		return false;
	if (take_snapshot(m, &s) < 0)
		return true; /* an empty body: the stream's error says why */
	if (strcmp(path, "/metrics") == 0) {
		prom_page(f, m, &s);
		*type = "text/plain; version=0.0.4; charset=utf-8";
	} else {
		json_page(f, m, &s);
		*type = "application/json";
	}
	free_snapshot(&s);
	return true;
}

static void
answer(struct tk_conn *c, const struct metrics *m, char *req)
{
	char *method = req, *target, *version, *q, *body = NULL;
	const char *type = "text/plain";
	size_t len = 0;
	FILE *f;
	bool found;

	/* The request line: METHOD SP TARGET SP HTTP/1.x */
	req[strcspn(req, "\r\n")] = '\0';
	target = strchr(method, ' ');
	version = target != NULL ? strchr(target + 1, ' ') : NULL;
	if (target == NULL || version == NULL || target + 1 == version ||
	    target[1] != '/' || strncmp(version + 1, "HTTP/1.", 7) != 0 ||
	    strchr(version + 1, ' ') != NULL) {
		respond_error(c, "400 Bad Request", "");
		return;
	}
	*target++ = '\0';
	*version = '\0';
	if (strcmp(method, "GET") != 0) {
		respond_error(c, "405 Method Not Allowed", "Allow: GET\r\n");
		return;
	}
	if ((q = strchr(target, '?')) != NULL)
		*q = '\0';
	if ((f = open_memstream(&body, &len)) == NULL) {
		respond_error(c, "503 Service Unavailable", "");
		return;
	}
	found = render(m, target, f, &type);
	if (fclose(f) != 0 || body == NULL) {
		free(body);
		respond_error(c, "503 Service Unavailable", "");
		return;
	}
	if (found)
		respond(c, "200 OK", type, "", body, len);
	else
		respond_error(c, "404 Not Found", "");
	free(body);
}

static int
http_open(struct tk_conn *c, void *arg)
{
	struct request *r = calloc(1, sizeof(*r));

	(void)arg;
	if (r == NULL)
		return -ENOMEM;
	tk_conn_set_data(c, r);
	/* A slow client holds a slot: the whole head within the deadline. */
	tk_conn_set_deadline(c, METRICS_REQUEST_MS, -ETIMEDOUT);
	return 0;
}

/* The end of the request's head, or NULL. */
static char *
head_end(char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return &buf[i + 1];
		if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
			return &buf[i + 2];
	}
	return NULL;
}

static void
http_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct request *r = tk_conn_data(c);
	size_t room, take;
	char *end;

	if (r->answered)
		return;
	if (n == TK_EOF) {
		/* Half a request and nothing more coming: nothing to say. */
		r->answered = true;
		tk_conn_end(c);
		return;
	}
	room = sizeof(r->buf) - 1 - r->len;
	take = (size_t)n < room ? (size_t)n : room;
	memcpy(r->buf + r->len, data, take);
	r->len += take;
	r->buf[r->len] = '\0';
	end = head_end(r->buf, r->len);
	if (end == NULL && r->len < sizeof(r->buf) - 1)
		return;
	r->answered = true;
	tk_conn_set_deadline(c, 0, 0);
	if (end == NULL) {
		/* Over the bound: say which part was too long. */
		if (memchr(r->buf, '\n', r->len) == NULL)
			respond_error(c, "414 URI Too Long", "");
		else
			respond_error(c, "431 Request Header Fields Too Large",
				      "");
		return;
	}
	if (memchr(r->buf, '\0', r->len) != NULL) {
		respond_error(c, "400 Bad Request", "");
		return;
	}
	answer(c, arg, r->buf);
}

static void
http_close(struct tk_conn *c, int err, void *arg)
{
	(void)err;
	(void)arg;
	free(tk_conn_data(c));
	tk_conn_set_data(c, NULL);
}

static const struct tk_service http_service = {
	.name = "metrics",
	.open = http_open,
	.data = http_data,
	.close = http_close,
};

static int
listen_on(const struct metricsopt *o, struct tk_server *s)
{
	struct tk_listen_why why;
	char where[TK_ADDRSTRLEN];
	int err = cli_listen_tcp(s, o->ep.host, o->ep.wildcard, o->port, &why);

	if (err == 0)
		return 0;
	if (why.host != NULL)
		return cli_fail("metrics", why.host, err);
	tk_addr_format(&why.addr, where, sizeof(where));
	cli_error("metrics", where, "%s", tk_strerror(err));
	return CLI_EXIT_OTHER;
}

/*
 * Serve on the sockets a predecessor handed over (--handoff) that are on
 * o's port (any, for port 0): true if one was taken.  Taken ones are set
 * to -1; the others stay the caller's.
 */
static bool
adopt(const struct metricsopt *o, struct tk_server *s, int *fds, size_t n)
{
	bool took = false;

	for (size_t i = 0; i < n; i++) {
		struct tk_addr a = { .len = sizeof(a.u) };

		if (getsockname(fds[i], &a.u.sa, &a.len) < 0 ||
		    (o->port != 0 && tk_addr_port(&a) != o->port) ||
		    tk_server_listen_fd(s, fds[i]) < 0)
			continue;
		fds[i] = -1;
		took = true;
	}
	return took;
}

int
metrics_start(const char *cmd, const struct metricsopt *o,
	      struct tk_server *data, const char *service, int *fds,
	      size_t nfds, struct metrics **out)
{
	struct tk_server_opts so;
	struct metrics *m;
	int rc;

	*out = NULL;
	if (!o->set)
		return 0;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return cli_fail("metrics", o->text, -ENOMEM);
	m->data = data;
	m->cmd = cmd;
	m->service = service;
	tk_server_opts_init(&so);
	so.workers = 1; /* the owner's loop: never on a worker's data path */
	so.max_conns = METRICS_MAX_CONNS;
	so.conn.idle_timeout_ms = METRICS_IDLE_MS;
	rc = tk_server_new(tk_server_loop(data), &so, &http_service, m,
			   &m->http);
	if (rc < 0) {
		free(m);
		return cli_fail("metrics", o->text, rc);
	}
	if ((!adopt(o, m->http, fds, nfds) &&
	     (rc = listen_on(o, m->http)) != 0) ||
	    (rc = tk_server_start(m->http)) < 0) {
		rc = rc < 0 ? cli_fail("metrics", o->text, rc) : rc;
		metrics_free(m);
		return rc;
	}
	for (size_t i = 0; i < tk_server_listener_count(m->http); i++) {
		char where[TK_ADDRSTRLEN];

		tk_addr_format(tk_server_addr(m->http, i), where,
			       sizeof(where));
		cli_log("metrics", "addr", where, "metrics on %s", where);
	}
	*out = m;
	return 0;
}

struct tk_server *
metrics_server(const struct metrics *m)
{
	return m != NULL ? m->http : NULL;
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	tk_server_free(m->http);
	free(m);
}
