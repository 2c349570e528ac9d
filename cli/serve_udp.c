/* serve_udp.c: `tcpkit serve echo|discard -u`: the datagram services on
 * the library's UDP server. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "serve.h"

struct udp_state {
	const struct serve_opts *o;
	struct tk_loop *loop;
	struct tk_udp_server *srv;
	int signo;
};

static void
on_signal(struct tk_loop *loop, int signo, void *arg)
{
	struct udp_state *st = arg;

	st->signo = signo;
	tk_loop_stop(loop);
}

#define USTATS_JSON                                                            \
	"{\"ts\":\"%s\",\"event\":\"stats\",\"when\":\"%s\","                  \
	"\"datagrams_in\":%llu,\"datagrams_out\":%llu,\"bytes_in\":%llu,"      \
	"\"bytes_out\":%llu,\"truncated\":%llu,"                               \
	"\"errors\":{\"send\":%llu,\"receive\":%llu}}\n"
#define USTATS_LOGFMT                                                          \
	"ts=%s event=stats when=%s datagrams_in=%llu datagrams_out=%llu "      \
	"bytes_in=%llu bytes_out=%llu truncated=%llu errors_send=%llu "        \
	"errors_receive=%llu\n"
#define USTATS_TEXT                                                            \
	"stats %s (%s): datagrams in %llu, out %llu, %llu bytes in, %llu "     \
	"bytes out, %llu truncated; errors: %llu send, %llu receive\n"

/* The totals, as serve_log_stats() writes TCP's, with UDP's counts. */
static void
log_stats(const struct serve_opts *o, const char *what,
	  const struct tk_udp_server_stats *s)
{
	enum log_format f = o->log.format;
	char ts[40];

	if (f == LOG_TEXT)
		cli_timestamp(ts, sizeof(ts));
	else
		cli_iso_time(ts, sizeof(ts));
	fprintf(stderr,
		f == LOG_JSON	  ? USTATS_JSON
		: f == LOG_LOGFMT ? USTATS_LOGFMT
				  : USTATS_TEXT,
		f == LOG_TEXT ? what : ts, f == LOG_TEXT ? ts : what,
		(unsigned long long)s->datagrams_in,
		(unsigned long long)s->datagrams_out,
		(unsigned long long)s->bytes_in,
		(unsigned long long)s->bytes_out,
		(unsigned long long)s->truncated,
		(unsigned long long)s->send_errors,
		(unsigned long long)s->recv_errors);
}

static void
on_stats(struct tk_timer *t, void *arg)
{
	struct udp_state *st = arg;
	struct tk_udp_server_stats s;

	(void)t;
	tk_udp_server_get_stats(st->srv, &s);
	log_stats(st->o, "interval", &s);
}

static const char *
bind_why(int err)
{
	switch (err) {
	case -EADDRINUSE:
		return "another program holds this UDP port; choose another "
		       "with -p, or -p 0 for any free port";
	case -EACCES:
		return "ports below 1024 need root or CAP_NET_BIND_SERVICE; "
		       "use a port above 1023";
	case -EADDRNOTAVAIL:
		return "no interface has this address (see 'tcpkit "
		       "interfaces')";
	default:
		return NULL;
	}
}

static int
bind_error(const struct tk_addr *a, int err)
{
	char where[TK_ADDRSTRLEN + 8] = "udp://";
	const char *why = bind_why(err);

	tk_addr_format(a, where + 6, sizeof(where) - 6);
	if (why == NULL) {
		(void)cli_fail("listen", where, err);
		return CLI_EXIT_OTHER;
	}
	cli_error("listen", where, "%s: %s", tk_strerror(err), why);
	return CLI_EXIT_OTHER;
}

/* The addresses of -H HOST (an IP literal or a name), in *list. */
static int
resolve_host(const char *text, struct tk_addrlist **list)
{
	char host[TK_HOSTLEN], port[TK_PORTLEN];
	bool literal;
	int err;

	if (tk_hostport_split(text, host, port) < 0 || host[0] == '\0')
		return TK_EBADADDR;
	literal = strchr(host, ':') != NULL;
	err = tk_resolve(host, NULL, AF_UNSPEC,
			 literal ? TK_RESOLVE_NUMERIC : 0, list);
	return err == TK_ENOHOST && literal ? TK_EBADADDR : err;
}

/*
 * Bind every -H address (loopback, 127.0.0.1 and ::1, by default; ::1
 * skipped with a warning where there is no IPv6), all on one port: with
 * -p 0 the first one's.
 */
static int
bind_all(struct tk_udp_server *srv, const struct serve_opts *o)
{
	struct tk_addr addrs[64];
	bool optional[64] = { false }, v4any = false;
	size_t n = 0;
	uint16_t port = o->port;
	int err;

	if (o->nhosts == 0) {
		(void)tk_addr_from_ip("127.0.0.1", 0, &addrs[n++]);
		(void)tk_addr_from_ip("::1", 0, &addrs[n]);
		optional[n++] = true;
	}
	for (size_t i = 0; i < o->nhosts; i++) {
		struct tk_addrlist *list;

		if ((err = resolve_host(o->hosts[i], &list)) < 0)
			return cli_fail("serve", o->hosts[i], err);
		for (size_t j = 0; j < list->count && n < 64; j++) {
			bool dup = false;

			for (size_t k = 0; k < n; k++)
				dup |= tk_addr_equal(&addrs[k],
						     &list->addrs[j]);
			if (!dup)
				addrs[n++] = list->addrs[j];
		}
		tk_addrlist_free(list);
	}
	for (size_t i = 0; i < n; i++)
		if (tk_addr_family(&addrs[i]) == AF_INET &&
		    tk_addr_is_any(&addrs[i]))
			v4any = true;
	for (size_t i = 0; i < n; i++) {
		bool v6only = tk_addr_family(&addrs[i]) == AF_INET6 &&
			      (!tk_addr_is_any(&addrs[i]) || v4any);
		char where[TK_ADDRSTRLEN];

		tk_addr_set_port(&addrs[i], port);
		err = tk_udp_server_bind(srv, &addrs[i], v6only);
		if (err < 0 && optional[i] &&
		    (err == -EADDRNOTAVAIL || err == -EAFNOSUPPORT)) {
			cli_error(
				"warning", "",
				"cannot listen on udp://%s (%s); going on "
				"without it",
				tk_addr_format(&addrs[i], where, sizeof(where)),
				tk_strerror(err));
			continue;
		}
		if (err < 0)
			return bind_error(&addrs[i], err);
		if (port == 0)
			port = tk_addr_port(tk_udp_server_addr(
				srv, tk_udp_server_count(srv) - 1));
	}
	return 0;
}

static void
print_listening(const struct serve_opts *o, struct tk_udp_server *srv)
{
	char where[TK_ADDRSTRLEN + 8], ip[TK_ADDRSTRLEN];
	const struct tk_addr *first = tk_udp_server_addr(srv, 0);

	for (size_t i = 0; i < tk_udp_server_count(srv); i++) {
		strcpy(where, "udp://");
		tk_addr_format(tk_udp_server_addr(srv, i), where + 6,
			       sizeof(where) - 6);
		cli_log("listening", "addr", where, "listening on %s", where);
	}
	if (o->log.quiet)
		return;
	if (tk_addr_is_any(first))
		strcpy(ip,
		       tk_addr_family(first) == AF_INET ? "127.0.0.1" : "::1");
	else
		tk_addr_format_ip(first, ip, sizeof(ip));
	cli_log("hint", NULL, NULL, "try: %s connect -u %s %u", cli_prog(), ip,
		tk_addr_port(first));
}

int
serve_udp(const struct serve_opts *o)
{
	struct udp_state st = { .o = o };
	struct tk_udp_server_opts uo;
	struct tk_udp_server_stats s;
	struct tk_timer *stats_timer = NULL;
	int rc;

	if ((rc = tk_loop_new(&st.loop)) < 0)
		return cli_fail("serve", "", rc);
	if ((rc = tk_loop_signal(st.loop, SIGINT, on_signal, &st)) < 0 ||
	    (rc = tk_loop_signal(st.loop, SIGTERM, on_signal, &st)) < 0) {
		rc = cli_fail("serve", "signals", rc);
		goto out_loop;
	}
	tk_udp_server_opts_init(&uo);
	uo.workers = o->workers;
	rc = tk_udp_server_new(st.loop, &uo, tk_udp_service_find(o->service),
			       NULL, &st.srv);
	if (rc < 0) {
		rc = cli_fail("serve", "", rc);
		goto out_loop;
	}
	if ((rc = bind_all(st.srv, o)) != 0)
		goto out_srv;
	if ((rc = tk_udp_server_start(st.srv)) < 0) {
		rc = cli_fail("serve", "", rc);
		goto out_srv;
	}
	print_listening(o, st.srv);
	if (o->stats_ms != 0 &&
	    (tk_timer_new(st.loop, on_stats, &st, &stats_timer) < 0 ||
	     tk_timer_start(stats_timer, o->stats_ms, o->stats_ms) < 0))
		cli_log("warning", NULL, NULL,
			"warning: no --stats-interval lines (out of memory)");
	if ((rc = tk_loop_run(st.loop)) < 0) {
		rc = cli_fail("serve", "event loop", rc);
		goto out_srv;
	}
	/* Datagrams have no sessions to drain: stop at once. */
	tk_udp_server_stop(st.srv);
	tk_udp_server_get_stats(st.srv, &s);
	if (o->log.format != LOG_TEXT || o->stats_ms != 0)
		log_stats(o, "exit", &s);
	cli_log("stopped", NULL, NULL,
		"stopped (%s): %llu datagram%s in, %llu out, %llu bytes in, "
		"%llu bytes out",
		st.signo == SIGINT ? "SIGINT" : "SIGTERM",
		(unsigned long long)s.datagrams_in, CLI_PLURAL(s.datagrams_in),
		(unsigned long long)s.datagrams_out,
		(unsigned long long)s.bytes_in,
		(unsigned long long)s.bytes_out);
	rc = 0;
out_srv:
	tk_udp_server_free(st.srv);
out_loop:
	tk_timer_free(stats_timer);
	/* As in cmd_serve.c: a second signal pending must not kill us. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	tk_loop_free(st.loop);
	return rc;
}
