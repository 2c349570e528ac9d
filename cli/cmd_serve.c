/* cmd_serve.c: `tcpkit serve`: run a built-in service on one or more listeners.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "handoff.h"
#include "metrics.h"
#include "reload.h"
#include "serve.h"

#define FD_RESERVE 64 /* descriptors kept for all but clients */

/*
 * As many descriptors as allowed (the soft limit up to the hard one); the
 * default --max-conns keeps clear of it so accept never starves.
 */
static uint64_t
raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : rl.rlim_cur;
}

struct serve_state {
	const struct serve_opts *opts;
	struct tk_server *server;
	struct tk_loop *loop;
	struct tk_timer *drain_timer; /* the drain deadline */
	struct tk_timer *stats_timer;
	int signo;	       /* the signal that stopped us, or 0 */
	bool draining;	       /* listeners closed, sessions finishing */
	bool forced;	       /* a second signal: stop now */
	bool timed_out;	       /* the drain deadline passed */
	bool handed_over;      /* --handoff: a successor took the sockets */
	uint64_t open_at_stop; /* sessions open when the stop began */
	struct sdsock sd;      /* under systemd: its notifications */
};

/* Why a bind failed, in words a network engineer can act on. */
static void
bind_error(const struct tk_addr *a, int err)
{
	char where[TK_ADDRSTRLEN];
	uint16_t port = tk_addr_port(a);
	const char *svc = port == 22	? " (port 22 belongs to SSH)"
			  : port == 25	? " (port 25 belongs to SMTP)"
			  : port == 80	? " (port 80 belongs to HTTP)"
			  : port == 443 ? " (port 443 belongs to HTTPS)"
					: "";

	tk_addr_format(a, where, sizeof(where));
	switch (err) {
	case -EADDRINUSE:
		cli_error("listen", where,
			  "%s: another program holds this port%s; choose "
			  "another with -p, or -p 0 for any free port",
			  tk_strerror(err), svc);
		break;
	case -EACCES:
		cli_error("listen", where,
			  "%s: ports below 1024 need root or "
			  "CAP_NET_BIND_SERVICE%s; use a port above 1023",
			  tk_strerror(err), svc);
		break;
	case -EADDRNOTAVAIL:
		cli_error("listen", where,
			  "%s: no interface has this address (see 'tcpkit "
			  "interfaces')",
			  tk_strerror(err));
		break;
	default:
		cli_fail("listen", where, err);
	}
}

/*
 * Listen on every -H address (loopback by default), one port for all; a
 * missing default ::1 is only a warning.
 */
static int
listen_all(struct tk_server *srv, const struct serve_opts *o)
{
	struct tk_listen_why why;
	char where[TK_ADDRSTRLEN];
	int err;

	for (size_t i = 0; i < o->nunix; i++)
		if ((err = tk_server_listen_unix(srv, &o->unix_addrs[i],
						 &o->unix.uo)) < 0)
			return unixopt_listen_error(
				&o->unix,
				tk_addr_format(&o->unix_addrs[i], where,
					       sizeof(where)),
				err);
	/* Only UNIX sockets asked for: no default TCP listener. */
	if (o->nunix > 0 && o->nhosts == 0)
		return 0;
	err = tk_server_listen_hosts(srv, o->hosts, o->nhosts, o->port, 0,
				     &why);

	if (err == 0 && why.skipped_err != 0)
		cli_error("warning", "",
			  "cannot listen on %s (%s); going on without it",
			  tk_addr_format(&why.skipped, where, sizeof(where)),
			  tk_strerror(why.skipped_err));
	if (err == 0)
		return 0;
	if (why.host != NULL)
		return cli_fail("serve", why.host, err);
	if (err == -EAGAIN) {
		cli_error("listen", "",
			  "no port free on every address after several tries");
		return CLI_EXIT_OTHER;
	}
	bind_error(&why.addr, err);
	return CLI_EXIT_OTHER;
}

static void
on_event(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
	 const struct tk_addr *peer, int err, void *arg)
{
	struct serve_state *st = arg;
	struct tk_tls_info info;
	char who[TK_ADDRSTRLEN];

	(void)s;
	switch (ev) {
	case TK_SERVER_DRAINED:
		/* Every session is gone: the drain's run is over. */
		tk_loop_stop(st->loop);
		break;
	case TK_SERVER_HANDSHAKE:
		/* Mutual TLS: who the client is, once it is verified. */
		if (st->opts->tls.client_ca == NULL || st->opts->log.quiet ||
		    tk_conn_tls_info(c, &info) != 0)
			break;
		tk_addr_format(peer, who, sizeof(who));
		cli_log("tls_client", "peer", who, "tls: client %s subject %s",
			who,
			info.peer_cert ? info.subject : "(no certificate)");
		break;
	default:
		serve_log_event(&st->opts->log, ev, c, peer, err);
	}
}

static void
on_drain_deadline(struct tk_timer *t, void *arg)
{
	struct serve_state *st = arg;

	(void)t;
	st->timed_out = true;
	tk_loop_stop(st->loop);
}

/*
 * Stop listening and let sessions finish; the loop stops when the last is
 * gone, or at the drain deadline.
 */
static int
start_drain(struct serve_state *st)
{
	struct tk_server_stats stats;

	tk_server_get_stats(st->server, &stats);
	st->open_at_stop = stats.active;
	st->draining = true;
	sdsock_stopping(&st->sd);
	tk_server_drain(st->server);
	if (st->opts->drain_ms != 0) {
		int err = tk_timer_new(st->loop, on_drain_deadline, st,
				       &st->drain_timer);

		if (err == 0)
			err = tk_timer_start(st->drain_timer,
					     st->opts->drain_ms, 0);
		if (err < 0)
			return err;
	} else {
		st->timed_out = true; /* no grace at all */
		tk_loop_stop(st->loop);
	}
	return 0;
}

static void
on_signal(struct tk_loop *loop, int signo, void *arg)
{
	struct serve_state *st = arg;

	if (st->draining) {
		st->forced = true; /* a second signal: stop now */
		tk_loop_stop(loop);
		return;
	}
	st->signo = signo;
	tk_loop_stop(loop);
}

/* --handoff: a successor serves on our sockets; drain as on SIGTERM. */
static void
on_handed_over(void *arg)
{
	struct serve_state *st = arg;

	st->handed_over = true;
	tk_loop_stop(st->loop);
}

static void
on_stats(struct tk_timer *t, void *arg)
{
	struct serve_state *st = arg;
	struct tk_server_stats stats;

	(void)t;
	tk_server_get_stats(st->server, &stats);
	serve_log_stats(&st->opts->log, "interval", &stats);
}

static void
print_hints(const struct serve_opts *o, struct tk_server *srv)
{
	bool all_loopback = true;
	char where[TK_ADDRSTRLEN], ip[TK_ADDRSTRLEN];
	const struct tk_addr *first = tk_server_addr(srv, 0);

	cli_log_listening(srv);
	for (size_t i = 0; i < tk_server_listener_count(srv); i++)
		if (!tk_addr_is_loopback(tk_server_addr(srv, i)))
			all_loopback = false;
	if (o->log.quiet)
		return;
	if (tk_addr_family(first) == AF_UNIX) {
		cli_log("hint", NULL, NULL, "try: %s connect %s", cli_prog(),
			tk_addr_format(first, where, sizeof(where)));
		return;
	}
	if (all_loopback)
		cli_log("hint", NULL, NULL,
			"hint: loopback only, other machines cannot connect; "
			"use -H 0.0.0.0 or -H :: to serve every interface");
	if (tk_addr_is_any(first))
		strcpy(ip,
		       tk_addr_family(first) == AF_INET ? "127.0.0.1" : "::1");
	else
		tk_addr_format_ip(first, ip, sizeof(ip));
	if (strcmp(o->service, "basic") == 0)
		cli_log("hint", NULL, NULL, "try: %s send %s %u 'Hey!'",
			cli_prog(), ip, tk_addr_port(first));
	else
		cli_log("hint", NULL, NULL, "try: %s connect %s %u", cli_prog(),
			ip, tk_addr_port(first));
}

static void
init_server_opts(const struct serve_opts *o, struct serve_state *st,
		 struct tk_server_opts *sopts)
{
	uint64_t fds = raise_fd_limit();

	tk_server_opts_init(sopts);
	sopts->backlog = o->backlog;
	sopts->workers = o->workers;
	sopts->max_conns = o->max_conns;
	if (sopts->max_conns == 0)
		sopts->max_conns =
			fds > 2 * FD_RESERVE ? fds - FD_RESERVE : fds / 2;
	sopts->max_line = (size_t)o->max_line;
	/*
	 * welcome, like tutorial 1's server, waits for a human at a telnet
	 * prompt, and chat's users read more than they type: no deadline for
	 * a line unless asked for (the idle timeout still applies).
	 */
	sopts->line_timeout_ms = o->line_timeout_ms;
	if (!o->line_timeout_set && (strcmp(o->service, "welcome") == 0 ||
				     strcmp(o->service, "chat") == 0))
		sopts->line_timeout_ms = 0;
	sopts->conn.idle_timeout_ms = o->idle_ms;
	/* It bounds the kernel's unsent bytes too (TCP_NOTSENT_LOWAT). */
	sopts->conn.max_pending = (size_t)o->max_pending;
	sopts->on_event = on_event;
	sopts->event_arg = st;
	sopts->acl = o->acl.acl;
	ppopt_apply(&o->pp, sopts);
	connopt_apply(&o->keepalive, &sopts->conn);
}

static bool
svc_is(const char *service, const char *name)
{
	return strcmp(service, name) == 0;
}

int
cmd_serve(int argc, char **argv)
{
	struct serve_opts o;
	struct serve_state st = { .opts = &o };
	struct tk_server_opts sopts;
	struct tk_basic_opts basic = { 0 };
	struct tk_broker *broker = NULL;
	struct tk_broker_opts bopts = { 0 };
	struct tk_socks5_opts socks = { 0 };
	void *svc_arg = &basic;
	struct tk_server_stats stats;
	struct tk_tls_ctx *tls = NULL;
	struct metrics *metrics = NULL;
	const struct tk_service *svc;
	struct handoff *ho = NULL;
	size_t nmfds;
	int *mfds;
	bool adopted;
	struct reload rl = { .cmd = "serve" };
	int rc;

	rc = serve_parse_args(argc, argv, &o);
	if (rc != 0) {
		aclopt_free(&o.acl);
		ppopt_free(&o.pp);
		socks5opt_free(&o.socks, NULL);
		return rc < 0 ? 0 : rc;
	}
	if (o.udp)
		return serve_udp(&o);
	/* Certificates are read and checked before anything listens. */
	rc = tlsopt_server_ctx("serve", &o.tls, &tls);
	if (rc == 0 && svc_is(o.service, "socks5"))
		rc = socks5opt_setup(&o, &socks);
	if (rc != 0) {
		tk_tls_ctx_free(tls);
		aclopt_free(&o.acl);
		ppopt_free(&o.pp);
		socks5opt_free(&o.socks, NULL);
		return rc;
	}
	svc = tk_service_find(o.service);

	if ((rc = tk_loop_new(&st.loop)) < 0) {
		rc = cli_fail("serve", "", rc);
		tk_tls_ctx_free(tls);
		aclopt_free(&o.acl);
		ppopt_free(&o.pp);
		return rc;
	}
	/* Ctrl-C must stop a server however busy: the loop takes signals. */
	if ((rc = tk_loop_signal(st.loop, SIGINT, on_signal, &st)) < 0 ||
	    (rc = tk_loop_signal(st.loop, SIGTERM, on_signal, &st)) < 0) {
		rc = cli_fail("serve", "signals", rc);
		goto out_free_loop;
	}
	rl.tls = &o.tls;
	rl.ctx = &tls;
	rl.acl = &o.acl;
	if ((rc = reload_watch(st.loop, &rl)) != 0)
		goto out_free_loop;
	init_server_opts(&o, &st, &sopts);
	sopts.conn.tls = tls;
	sopts.conn.handshake_timeout_ms = o.handshake_ms;
	basic.allow_remote_shutdown = o.allow_remote_shutdown;
	if (svc == &tk_service_broker || svc == &tk_service_chat) {
		/* The clients' set; -w 1 keeps them all on this loop. */
		bopts.slow_ms = o.slow_ms;
		if ((rc = tk_broker_new(st.loop, &bopts, &broker)) < 0) {
			rc = cli_fail("serve", "", rc);
			goto out_free_loop;
		}
		svc_arg = broker;
	} else if (svc == &tk_service_socks5) {
		sopts.conn.handshake_timeout_ms =
			tls != NULL ? o.handshake_ms : 0;
		svc_arg = &socks;
	}
	if ((rc = tk_server_new(st.loop, &sopts, svc, svc_arg, &st.server)) <
	    0) {
		rc = cli_fail("serve", "", rc);
		goto out_free_loop;
	}
	/* The sockets come from systemd, from a predecessor, or a bind. */
	rc = sdsock_adopt("serve", st.server, o.fdname, false, &adopted);
	if (rc == 0 && !adopted && o.handoff != NULL)
		rc = handoff_open("serve", o.handoff, &ho);
	if (rc == 0 && !adopted && handoff_count(ho) > 0)
		rc = handoff_adopt(ho, st.server,
				   &(struct handoff_want){ o.hosts, o.nhosts,
							   false, o.port });
	else if (rc == 0 && !adopted)
		rc = listen_all(st.server, &o);
	if (rc != 0)
		goto out_free_server;
	if ((rc = tk_server_start(st.server)) < 0) {
		rc = cli_fail("serve", "", rc);
		goto out_free_server;
	}
	rl.server = st.server;
	mfds = handoff_metrics_fds(ho, &nmfds);
	if ((rc = metrics_start("serve", &o.metrics, st.server, o.service, mfds,
				nmfds, &metrics)) != 0)
		goto out_free_server;
	handoff_also(ho, metrics_server(metrics));
	print_hints(&o, st.server);
	if (ho != NULL &&
	    (rc = handoff_start(ho, st.loop, st.server, on_handed_over, &st)))
		goto out_free_server;
	sdsock_ready(&st.sd, st.loop, st.server);
	if (o.stats_ms != 0) {
		/* Best effort: serving goes on without the interval lines. */
		if (tk_timer_new(st.loop, on_stats, &st, &st.stats_timer) ==
			    0 &&
		    tk_timer_start(st.stats_timer, o.stats_ms, o.stats_ms) < 0)
			cli_log("warning", NULL, NULL,
				"warning: no --stats-interval lines (out of "
				"memory)");
	}

	/* Serve until a signal or a remote shutdown, then drain. */
	rc = tk_loop_run(st.loop);
	if (rc == 0 && tk_server_stopping(st.server))
		cli_log("shutdown", NULL, NULL,
			"Execution ended because of [Remote user initiated "
			"shutdown.]");
	else if (rc == 0 && st.signo == SIGINT &&
		 strcmp(o.service, "basic") == 0)
		cli_log("signal", NULL, NULL, "User pressed Ctrl-C, stopping.");
	handoff_stop(ho);
	if (rc == 0 && (rc = start_drain(&st)) == 0 && !st.timed_out)
		rc = tk_loop_run(st.loop);
	if (rc < 0) {
		rc = cli_fail("serve", "event loop", rc);
		goto out_free_server;
	}
	tk_server_get_stats(st.server, &stats);
	if (stats.active > 0)
		cli_error("serve", "",
			  "%s: closing %llu connection%s still open",
			  st.forced ? "second signal" : "drain deadline",
			  (unsigned long long)stats.active,
			  stats.active == 1 ? "" : "s");
	tk_server_stop(st.server);
	tk_server_get_stats(st.server, &stats);
	/* Machine formats always end with the totals; text when asked to. */
	if (o.log.format != LOG_TEXT || o.stats_ms != 0)
		serve_log_stats(&o.log, "exit", &stats);
	cli_log("stopped", NULL, NULL,
		"stopped (%s): %llu connection%s served, %llu closed by "
		"the stop, %llu bytes in, %llu bytes out",
		st.handed_over	      ? "handed over"
		: st.signo == SIGINT  ? "SIGINT"
		: st.signo == SIGTERM ? "SIGTERM"
				      : "remote shutdown",
		(unsigned long long)stats.accepted, CLI_PLURAL(stats.accepted),
		(unsigned long long)st.open_at_stop,
		(unsigned long long)stats.bytes_in,
		(unsigned long long)stats.bytes_out);
	rc = 0;
out_free_server:
	handoff_free(ho);
	metrics_free(metrics); /* it reads the server's numbers */
	tk_server_free(st.server);
out_free_loop:
	tk_broker_free(broker);
	tk_timer_free(st.drain_timer);
	tk_timer_free(st.stats_timer);
	sdsock_free(&st.sd);
	/*
	 * tk_loop_free() unblocks the signals the loop took, and one may be
	 * pending still: timeout(1) signals the process and then its group,
	 * so two come at once, and the second would kill us with 130 after a
	 * clean stop.  We are done with signals: ignoring them discards it.
	 */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	tk_loop_free(st.loop);
	tk_tls_ctx_free(tls);
	aclopt_free(&o.acl);
	ppopt_free(&o.pp);
	socks5opt_free(&o.socks, &socks);
	return rc;
}
