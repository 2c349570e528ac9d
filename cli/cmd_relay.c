/* cmd_relay.c: `tcpkit relay LISTEN TARGET...`: every client joined to a
 * target with tk_conn_pipe(), on the server's workers. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "execlog.h"
#include "handoff.h"
#include "hexdump.h"
#include "proxyopt.h"
#include "relay.h"
#include "reload.h"

#define FD_RESERVE 64 /* descriptors kept for all but relays */

/* A TARGET, ready to connect to. */
struct target {
	const struct tk_endpoint *ep;
	char name[512]; /* as the logs show it (with --proxy: "via URL") */
	/* An IP literal and numeric port: connected without a resolver
	 * thread.  count == 0: resolved per client. */
	struct tk_addr addr;
	struct tk_addrlist list;
};

struct relay_state {
	const struct relay_opts *opts;
	struct target targets[RELAY_MAX_TARGETS];
	size_t ntargets;
	_Atomic unsigned next; /* --balance: where the next client starts */
	struct tk_tls_ctx *cli_tls;
	pthread_mutex_t cli_tls_lock; /* a reload replaces cli_tls */
	struct tk_conn_opts target_opts;
	struct tk_server *server;
	struct tk_loop *loop;
	struct tk_timer *drain_timer;
	int signo;
	bool draining, forced, timed_out;
	bool handed_over; /* --handoff: a successor took the sockets */
	struct handoff *ho;
	uint64_t open_at_stop;
	struct hexdump *dump;	  /* -x, or NULL; shared by the workers */
	_Atomic bool dump_failed; /* a relay could not be recorded: exit 74 */
	_Atomic unsigned nunix;	  /* UNIX clients, numbered for the dump */
	struct tk_exec *x;	  /* an exec: or sh: TARGET's children */
	struct sdsock sd;	  /* under systemd: its notifications */
};

/*
 * One client's relay.  Until the pipe, the client is paused and this
 * owns both connections; once piped, the pipe does, and done frees it.
 */
struct rconn {
	struct relay_state *st;
	struct tk_conn *client;
	struct tk_conn *target; /* while its connect is in progress */
	size_t first, tries;	/* the target tried first, and how many */
	size_t cur;		/* the one being tried */
	bool client_gone;
	char peer[TK_ADDRSTRLEN];
	char why[768];		/* the last target failure, for the log */
	struct hexdump_conn hc; /* -x: this relay's offsets and label */
};

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

/* A log field's text with its double quotes and backslashes made plain. */
static void
plain(char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '"' || *s == '\\' || *s == '\n')
			*s = '\'';
}

static const char *
side_word(enum tk_pipe_side s)
{
	return s == TK_PIPE_A ? "client" : s == TK_PIPE_B ? "target" : "none";
}

/* The record of a relay that ran: one line, one stdio call. */
static void
log_relay(const struct rconn *rc, const struct tk_pipe_result *r)
{
	const struct relay_opts *o = rc->st->opts;
	const char *target = rc->st->targets[rc->cur].name;
	char reason[320], ts[48], dur[32], line[2048];

	if (o->log.quiet)
		return;
	snprintf(reason, sizeof(reason), "%s",
		 r->err == 0	     ? "done"
		 : r->why[0] != '\0' ? r->why
				     : tk_strerror(r->err));
	plain(reason);
	if (o->log.format == LOG_TEXT) {
		cli_log("relay", NULL, NULL,
			"relay %s -> %s after %s: %llu bytes up, %llu bytes "
			"down, %s closed first (%s)",
			rc->peer, target,
			cli_format_duration(r->duration_ms, dur, sizeof(dur)),
			(unsigned long long)r->a_to_b,
			(unsigned long long)r->b_to_a, side_word(r->first),
			reason);
		return;
	}
	cli_iso_time(ts, sizeof(ts));
	snprintf(
		line, sizeof(line),
		o->log.format == LOG_JSON
			? "{\"ts\":\"%s\",\"event\":\"relay\",\"peer\":\"%s\","
			  "\"target\":\"%s\",\"duration_ms\":%llu,"
			  "\"bytes_up\":%llu,\"bytes_down\":%llu,"
			  "\"first\":\"%s\",\"spliced\":%s,\"reason\":\"%s\"}\n"
			: "ts=%s event=relay peer=%s target=%s duration_ms=%llu "
			  "bytes_up=%llu bytes_down=%llu first=%s spliced=%s "
			  "reason=\"%s\"\n",
		ts, rc->peer, target, (unsigned long long)r->duration_ms,
		(unsigned long long)r->a_to_b, (unsigned long long)r->b_to_a,
		side_word(r->first), r->spliced ? "true" : "false", reason);
	fputs(line, stderr);
}

/* No target took the client: why, once, when the client is closed. */
static void
log_failed(const struct rconn *rc)
{
	const struct relay_opts *o = rc->st->opts;
	char ts[48], line[2048], why[768];

	if (o->log.quiet)
		return;
	snprintf(why, sizeof(why), "%s", rc->why);
	plain(why);
	if (o->log.format == LOG_TEXT) {
		cli_log("relay_failed", NULL, NULL,
			"relay %s: no target reached (%s); client closed",
			rc->peer, why);
		return;
	}
	cli_iso_time(ts, sizeof(ts));
	snprintf(line, sizeof(line),
		 o->log.format == LOG_JSON
			 ? "{\"ts\":\"%s\",\"event\":\"relay_failed\","
			   "\"peer\":\"%s\",\"reason\":\"%s\"}\n"
			 : "ts=%s event=relay_failed peer=%s reason=\"%s\"\n",
		 ts, rc->peer, why);
	fputs(line, stderr);
}

static void
on_pipe_done(struct tk_pipe *p, const struct tk_pipe_result *r, void *arg)
{
	struct rconn *rc = arg;

	(void)p;
	log_relay(rc, r);
	free(rc);
}

/*
 * -x: every chunk, before it is relayed.  A relay that cannot be recorded
 * is reset (a trace with a hole is not a trace); the dump told the error
 * once, and the exit status will say it.
 */
static void
on_tap(struct tk_pipe *p, enum tk_pipe_side from, const char *data, size_t n,
       void *arg)
{
	struct rconn *rc = arg;
	int err;

	if (n == 0)
		return; /* the end of a direction: the log tells it */
	err = hexdump_write_conn(
		rc->st->dump, &rc->hc,
		from == TK_PIPE_A ? HEXDUMP_SENT : HEXDUMP_RECV, data, n);
	if (err < 0) {
		atomic_store(&rc->st->dump_failed, true);
		tk_pipe_abort(p, err);
	}
}

static void target_close(struct tk_conn *c, int err, void *arg);
static int target_open(struct tk_conn *c, void *arg);

static const struct tk_service target_service = {
	.name = "relay-target",
	.open = target_open,
	.close = target_close,
};

/* Connect to the next target to try: 0, or the error of the last one. */
static int
try_target(struct rconn *rc)
{
	struct relay_state *st = rc->st;
	struct tk_loop *loop = tk_conn_loop(rc->client);
	const struct target *t;
	struct tk_conn_opts co;
	int err = -EINVAL;

	while (rc->tries < st->ntargets) {
		rc->cur = (rc->first + rc->tries++) % st->ntargets;
		t = &st->targets[rc->cur];
		co = st->target_opts;
		co.proxy = st->opts->has_proxy ? &st->opts->proxy : NULL;
		/*
		 * The session takes its reference to the context inside the
		 * connect: until then a reload must not free it.
		 */
		if (t->ep->kind == TK_EP_TLS) {
			pthread_mutex_lock(&st->cli_tls_lock);
			co.tls = st->cli_tls;
		}
		if (t->list.count > 0)
			err = tk_conn_connect(loop, &t->list, &co,
					      &target_service, rc, &rc->target);
		else /* a name to resolve, a UNIX socket, or via a proxy */
			err = tk_conn_connect_endpoint(loop, t->ep, &co,
						       &target_service, rc,
						       &rc->target);
		if (t->ep->kind == TK_EP_TLS)
			pthread_mutex_unlock(&st->cli_tls_lock);
		if (err == 0)
			return 0;
		snprintf(rc->why, sizeof(rc->why), "%s: %s", t->name,
			 tk_strerror(err));
	}
	return err;
}

static int
target_open(struct tk_conn *c, void *arg)
{
	struct rconn *rc = arg;
	struct tk_pipe_opts po;
	int err;

	rc->target = NULL;
	/* The header goes first: the client's bytes wait for the pipe. */
	if (rc->st->opts->pp.send != 0 &&
	    (err = ppopt_send(rc->st->opts->pp.send, c,
			      tk_conn_peer(rc->client),
			      tk_conn_local(rc->client))) < 0) {
		snprintf(rc->why, sizeof(rc->why), "%s: --send-proxy: %s",
			 rc->st->targets[rc->cur].name, tk_strerror(err));
		rc->target = c;
		rc->tries = rc->st->ntargets;
		return err;
	}
	tk_pipe_opts_init(&po);
	po.done = on_pipe_done;
	po.arg = rc;
	if (rc->st->dump != NULL)
		po.tap = on_tap; /* bytes through user space: no splice */
	/* From here the pipe owns both, and its done frees rc. */
	err = tk_conn_pipe(rc->client, c, &po, NULL);
	if (err < 0) {
		snprintf(rc->why, sizeof(rc->why), "%s: %s",
			 rc->st->targets[rc->cur].name, tk_strerror(err));
		rc->target = c; /* its close ends the client */
		rc->tries = rc->st->ntargets;
	}
	return err;
}

/* A target that never opened (refused, timed out, TLS failed...). */
static void
target_close(struct tk_conn *c, int err, void *arg)
{
	struct rconn *rc = arg;
	char why[256];

	rc->target = NULL;
	if (rc->client_gone) {
		free(rc);
		return;
	}
	if (err != -ECANCELED || rc->why[0] == '\0')
		snprintf(rc->why, sizeof(rc->why), "%s: %s",
			 rc->st->targets[rc->cur].name,
			 tlsopt_why(c, err, why, sizeof(why)));
	/* Cancelled (the loop goes away): no next target, the client ends. */
	if (err == -ECANCELED)
		rc->tries = rc->st->ntargets;
	if (rc->tries < rc->st->ntargets && !rc->st->opts->log.quiet)
		cli_log("relay_retry", NULL, NULL,
			"relay %s: %s; trying the next target", rc->peer,
			rc->why);
	if (try_target(rc) == 0)
		return;
	log_failed(rc);
	rc->client_gone = true;
	tk_conn_close(rc->client, err != 0 ? err : -ECONNABORTED);
}

static int
client_open(struct tk_conn *c, void *arg)
{
	struct relay_state *st = arg;
	struct rconn *rc = calloc(1, sizeof(*rc));

	if (rc == NULL)
		return -ENOMEM;
	rc->st = st;
	rc->client = c;
	tk_addr_format(tk_conn_peer(c), rc->peer, sizeof(rc->peer));
	if (st->dump != NULL) {
		char label[sizeof(rc->hc.label)];

		/* UNIX clients have no name of their own: a number each. */
		if (st->opts->listen.kind == TK_EP_UNIX)
			snprintf(label, sizeof(label), "%s client %u",
				 st->opts->listen_text,
				 atomic_fetch_add(&st->nunix, 1) + 1);
		hexdump_conn_init(&rc->hc, st->opts->listen.kind == TK_EP_UNIX
						   ? label
						   : rc->peer);
	}
	if (st->opts->balance)
		rc->first = atomic_fetch_add(&st->next, 1) % st->ntargets;
	tk_conn_set_data(c, rc);
	/* Nothing is read from the client before its target is open. */
	tk_conn_pause(c);
	if (try_target(rc) < 0) {
		log_failed(rc);
		tk_conn_set_data(c, NULL);
		free(rc);
		return -ECONNABORTED;
	}
	return 0;
}

/* The client went before its target opened (a pipe replaces this). */
static void
client_close(struct tk_conn *c, int err, void *arg)
{
	struct rconn *rc = tk_conn_data(c);
	struct relay_state *st = arg;
	char peer[TK_ADDRSTRLEN], why[256];

	if (rc == NULL) {
		/* Never opened (a failed TLS handshake), unless open logged. */
		if (err != 0 && err != -ECONNABORTED && !st->opts->log.quiet)
			cli_log("relay_failed", NULL, NULL,
				"relay %s: closed before relaying (%s)",
				tk_addr_format(tk_conn_peer(c), peer,
					       sizeof(peer)),
				tlsopt_why(c, err, why, sizeof(why)));
		return;
	}
	if (rc->client_gone) {
		/* Closed by target_close(), which logged: no target left. */
		if (rc->target == NULL)
			free(rc);
		return;
	}
	rc->client_gone = true;
	if (!st->opts->log.quiet)
		cli_log("relay_failed", NULL, NULL,
			"relay %s: closed before relaying (%s, while "
			"connecting to %s)",
			rc->peer, err != 0 ? tk_strerror(err) : "client gone",
			st->targets[rc->cur].name);
	if (rc->target != NULL)
		tk_conn_close(rc->target, -ECANCELED); /* its close frees rc */
	else
		free(rc);
}

/* A drain lets a client whose target is being connected go on. */
static void
client_stop(struct tk_conn *c, void *arg)
{
	(void)c;
	(void)arg;
}

static const struct tk_service client_service = {
	.name = "relay",
	.open = client_open,
	.close = client_close,
	.stop = client_stop,
};

/* A program TARGET's child ended: logged as listen --exec logs it. */
static void
on_exec_exit(struct tk_exec *x, const struct tk_exec_exit *e, void *arg)
{
	struct relay_state *st = arg;

	(void)x;
	if (e->pid != 0 && st->opts->log.quiet)
		return;
	execlog_exit("relay", st->opts->target_text[0], e);
}

static void
on_event(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
	 const struct tk_addr *peer, int err, void *arg)
{
	struct relay_state *st = arg;

	(void)s;
	switch (ev) {
	case TK_SERVER_DRAINED:
		tk_loop_stop(st->loop);
		break;
	case TK_SERVER_REJECT:
	case TK_SERVER_ERROR:
		serve_log_event(&st->opts->log, ev, c, peer, err);
		break;
	default:
		break; /* a relay is logged once, at its end */
	}
}

static void
on_signal(struct tk_loop *loop, int signo, void *arg)
{
	struct relay_state *st = arg;

	if (st->draining)
		st->forced = true;
	else
		st->signo = signo;
	tk_loop_stop(loop);
}

/* --handoff: a successor serves on our sockets; drain as on SIGTERM. */
static void
on_handed_over(void *arg)
{
	struct relay_state *st = arg;

	st->handed_over = true;
	tk_loop_stop(st->loop);
}

static void
on_drain_deadline(struct tk_timer *t, void *arg)
{
	struct relay_state *st = arg;

	(void)t;
	st->timed_out = true;
	tk_loop_stop(st->loop);
}

static int
start_drain(struct relay_state *st)
{
	struct tk_server_stats stats;
	int err;

	tk_server_get_stats(st->server, &stats);
	st->open_at_stop = stats.active;
	st->draining = true;
	sdsock_stopping(&st->sd);
	tk_server_drain(st->server);
	if (st->opts->drain_ms == 0) {
		st->timed_out = true;
		return 0;
	}
	err = tk_timer_new(st->loop, on_drain_deadline, st, &st->drain_timer);
	if (err == 0)
		err = tk_timer_start(st->drain_timer, st->opts->drain_ms, 0);
	return err;
}

/* The targets, with IP literals made into addresses once. */
static void
prepare_targets(struct relay_state *st, const struct relay_opts *o)
{
	for (size_t i = 0; i < o->ntargets; i++) {
		struct target *t = &st->targets[i];
		char *end;
		unsigned long port = strtoul(o->targets[i].port, &end, 10);

		t->ep = &o->targets[i];
		tk_endpoint_format(t->ep, t->name, sizeof(t->name));
		if (o->has_proxy) {
			char ep[sizeof(t->name)];

			/* The proxy connects, to the name as given. */
			snprintf(ep, sizeof(ep), "%s", t->name);
			proxyopt_where(ep, &o->proxy, t->name, sizeof(t->name));
			continue;
		}
		if (t->ep->kind != TK_EP_UNIX && *end == '\0' && port > 0 &&
		    port <= 65535 &&
		    tk_addr_from_ip(t->ep->host, (uint16_t)port, &t->addr) ==
			    0) {
			t->list.count = 1;
			t->list.addrs = &t->addr;
		}
	}
	st->ntargets = o->ntargets;
}

static int
listen_on(struct relay_state *st, const struct relay_opts *o)
{
	static const char *const any_v4[] = { "::", "0.0.0.0" };
	const char *host = o->listen.host;
	struct tk_listen_why why;
	char where[TK_ADDRSTRLEN];
	int err;

	if (o->handoff != NULL &&
	    (err = handoff_open("relay", o->handoff, &st->ho)) != 0)
		return err;
	if (handoff_count(st->ho) > 0) {
		struct handoff_want w = { NULL, 0, false, o->listen_port };

		if (host[0] != '\0') {
			w.hosts = &host;
			w.nhosts = 1;
		} else if (o->listen.wildcard) {
			/* Dual-stack, or IPv4 alone where no IPv6. */
			w.hosts = any_v4;
			w.nhosts = 2;
			w.any_of = true;
		}
		return handoff_adopt(st->ho, st->server, &w);
	}
	if (o->listen.kind == TK_EP_UNIX) {
		struct tk_addr ua;

		err = tk_addr_from_unix(o->listen.path, o->listen.path_len,
					o->listen.abstract, &ua);
		if (err == 0)
			err = tk_server_listen_unix(st->server, &ua, NULL);
		if (err == 0)
			return 0;
		cli_error("listen", o->listen_text, "%s",
			  err == -EADDRINUSE ? "in use: a server is listening "
					       "on this socket"
			  : err == -EEXIST   ? "not a socket: the file is left "
					       "alone; choose another path"
					     : tk_strerror(err));
		return CLI_EXIT_OTHER;
	}
	err = cli_listen_tcp(st->server, host, o->listen.wildcard,
			     o->listen_port, &why);
	if (err == 0)
		return 0;
	if (why.host != NULL)
		return cli_fail("relay", why.host, err);
	tk_addr_format(&why.addr, where, sizeof(where));
	cli_error("listen", where, "%s", tk_strerror(err));
	return CLI_EXIT_OTHER;
}

static void
init_server_opts(const struct relay_opts *o, struct relay_state *st,
		 struct tk_server_opts *so, struct tk_tls_ctx *srv_tls)
{
	uint64_t fds = raise_fd_limit();

	tk_server_opts_init(so);
	so->backlog = o->backlog;
	so->workers = o->workers;
	so->max_conns = o->max_conns;
	/* Each relay holds two sockets and two pipes' four descriptors. */
	if (so->max_conns == 0)
		so->max_conns = fds > 2 * FD_RESERVE ? (fds - FD_RESERVE) / 6
						     : fds / 12 + 1;
	so->conn.idle_timeout_ms = o->idle_ms;
	so->conn.tls = srv_tls;
	so->conn.handshake_timeout_ms = o->handshake_ms;
	so->on_event = on_event;
	so->event_arg = st;
	so->acl = o->acl.acl;
	ppopt_apply(&o->pp, so);
	connopt_apply(&o->keepalive, &so->conn);
	tk_conn_opts_init(&st->target_opts);
	connopt_apply(&o->keepalive, &st->target_opts);
	st->target_opts.connect_timeout_ms = o->connect_ms;
	st->target_opts.idle_timeout_ms = o->idle_ms;
	st->target_opts.servername = o->cli_tls.servername;
}

static int
run(struct relay_state *st)
{
	struct tk_server_stats stats;
	int rc;

	cli_log_listening(st->server);
	if (st->ho != NULL && (rc = handoff_start(st->ho, st->loop, st->server,
						  on_handed_over, st)) != 0)
		return rc;
	sdsock_ready(&st->sd, st->loop, st->server);
	rc = tk_loop_run(st->loop);
	handoff_stop(st->ho);
	if (rc == 0 && (rc = start_drain(st)) == 0 && !st->timed_out)
		rc = tk_loop_run(st->loop);
	if (rc < 0)
		return cli_fail("relay", "event loop", rc);
	tk_server_get_stats(st->server, &stats);
	if (stats.active > 0)
		cli_error("relay", "", "%s: closing %llu relay%s still open",
			  st->forced ? "second signal" : "drain deadline",
			  (unsigned long long)stats.active,
			  CLI_PLURAL(stats.active));
	tk_server_stop(st->server);
	if (st->x != NULL && tk_exec_running(st->x) > 0)
		cli_log("stopping", NULL, NULL,
			"stopping %zu program%s still running (SIGTERM)",
			tk_exec_running(st->x),
			CLI_PLURAL(tk_exec_running(st->x)));
	tk_server_get_stats(st->server, &stats);
	cli_log("stopped", NULL, NULL,
		"stopped (%s): %llu client%s relayed, %llu open at the stop",
		st->handed_over	      ? "handed over"
		: st->signo == SIGINT ? "SIGINT"
				      : "SIGTERM",
		(unsigned long long)stats.accepted, CLI_PLURAL(stats.accepted),
		(unsigned long long)st->open_at_stop);
	return 0;
}

int
cmd_relay(int argc, char **argv)
{
	struct relay_opts o;
	struct relay_state st = { .opts = &o,
				  .cli_tls_lock = PTHREAD_MUTEX_INITIALIZER };
	struct tk_server_opts so;
	struct tk_tls_ctx *srv_tls = NULL;
	struct metrics *metrics = NULL;
	size_t nmfds;
	int *mfds;
	bool adopted;
	struct reload rl = { .cmd = "relay" };
	int rc;

	if ((rc = relay_parse_args(argc, argv, &o)) != 0) {
		aclopt_free(&o.acl);
		ppopt_free(&o.pp);
		tk_proxy_clear(&o.proxy);
		return rc < 0 ? 0 : rc;
	}
	if (o.udp)
		return relay_udp_run(&o);
	/* Certificates are read and checked before anything listens. */
	if ((rc = tlsopt_server_ctx("relay", &o.srv_tls, &srv_tls)) != 0) {
		aclopt_free(&o.acl);
		ppopt_free(&o.pp);
		tk_proxy_clear(&o.proxy);
		return rc;
	}
	if ((rc = tlsopt_client_ctx("relay", &o.cli_tls, &st.cli_tls)) != 0)
		goto out_tls;
	if (o.hexdump != NULL &&
	    (rc = hexdump_open("relay", o.hexdump, &st.dump)) != 0)
		goto out_tls;
	prepare_targets(&st, &o);
	if ((rc = tk_loop_new(&st.loop)) < 0) {
		rc = cli_fail("relay", "", rc);
		goto out_tls;
	}
	if ((rc = tk_loop_signal(st.loop, SIGINT, on_signal, &st)) < 0 ||
	    (rc = tk_loop_signal(st.loop, SIGTERM, on_signal, &st)) < 0) {
		rc = cli_fail("relay", "signals", rc);
		goto out_loop;
	}
	rl.tls = &o.srv_tls;
	rl.ctx = &srv_tls;
	rl.acl = &o.acl;
	rl.cli = &o.cli_tls;
	rl.cli_ctx = &st.cli_tls;
	rl.cli_lock = &st.cli_tls_lock;
	if ((rc = reload_watch(st.loop, &rl)) != 0)
		goto out_loop;
	init_server_opts(&o, &st, &so, srv_tls);
	if (o.exec) {
		/* Over --max-conns children, a client waits its turn. */
		struct tk_exec_opts xo = {
			.argv = o.argv,
			.max_children = (unsigned)o.max_conns,
			.on_exit = on_exec_exit,
			.arg = &st,
		};

		if ((rc = tk_exec_new(st.loop, &xo, &st.x)) < 0) {
			rc = cli_fail("relay", "", rc);
			goto out_loop;
		}
		rc = tk_server_new(st.loop, &so, &tk_service_exec, st.x,
				   &st.server);
	} else {
		rc = tk_server_new(st.loop, &so, &client_service, &st,
				   &st.server);
	}
	if (rc < 0) {
		rc = cli_fail("relay", "", rc);
		goto out_loop;
	}
	rc = sdsock_adopt("relay", st.server, o.fdname, true, &adopted);
	if (rc == 0 && !adopted)
		rc = listen_on(&st, &o);
	if (rc != 0)
		goto out_server;
	if ((rc = tk_server_start(st.server)) < 0) {
		rc = cli_fail("relay", "", rc);
		goto out_server;
	}
	rl.server = st.server;
	mfds = handoff_metrics_fds(st.ho, &nmfds);
	if ((rc = metrics_start("relay", &o.metrics, st.server,
				o.exec ? "exec" : "relay", mfds, nmfds,
				&metrics)) != 0)
		goto out_server;
	handoff_also(st.ho, metrics_server(metrics));
	rc = run(&st);
	/* Every relay is over: the dump is complete, or it failed. */
	if (rc == 0 && atomic_load(&st.dump_failed))
		rc = hexdump_exit_code();
out_server:
	handoff_free(st.ho);
	metrics_free(metrics); /* it reads the server's numbers */
	tk_server_free(st.server);
out_loop:
	/* Children still running get SIGTERM and are reaped here. */
	tk_exec_free(st.x);
	tk_timer_free(st.drain_timer);
	sdsock_free(&st.sd);
	/* As serve: a second signal pending after a clean stop is dropped. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	tk_loop_free(st.loop);
out_tls:
	if (hexdump_close(st.dump) < 0 && rc == 0)
		rc = hexdump_exit_code();
	tk_tls_ctx_free(st.cli_tls);
	tk_tls_ctx_free(srv_tls);
	aclopt_free(&o.acl);
	ppopt_free(&o.pp);
	tk_proxy_clear(&o.proxy);
	return rc;
}
