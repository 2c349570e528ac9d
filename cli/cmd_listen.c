/* cmd_listen.c: `tcpkit listen`: wait for a connection and pipe it to stdio
 * or a file (nc -l), or run a program for each (ncat -l --exec). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aclopt.h"
#include "cli.h"
#include "client.h"
#include "execlog.h"
#include "get.h"
#include "hexdump.h"
#include "listen.h"
#include "reload.h"
#include "tlsopt.h"

#define LISTEN_PROGRESS_MS 250u

/* A -k client held while the one before it is served. */
struct held {
	struct tk_conn *c;
	struct held *next;
};

struct listen_state {
	const struct listen_opts *o;
	struct client_opts co;
	struct client_session s;
	struct tk_loop *loop;
	struct tk_server *srv;
	struct metrics *metrics; /* --metrics, or NULL */
	struct tk_exec *x;
	struct tk_broker *broker; /* --broker, --chat */
	struct get_out out;
	struct hexdump_conn hc; /* -x: the client's offsets and label */
	int append_fd;
	struct tk_timer *progress;
	bool progress_shown;
	uint64_t started; /* of the session, loop time */
	bool busy;	  /* a client is being served */
	bool drained;	  /* without -k: the listener is closed */
	bool all_gone;	  /* ...and every connection too (TLS: the pump) */
	bool child_done;  /* --exec without -k: the one program ended */
	struct held *head, *tail;
	int signo;
	int exit_code;
	struct sdsock sd; /* under systemd: its notifications */
};

static char *
human_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

static void
show_progress(struct listen_state *st, bool last)
{
	uint64_t ms = tk_loop_now(st->loop) - st->started;
	uint64_t got = st->s.received;
	char b[32], r[32];

	human_bytes(got, b, sizeof(b));
	human_bytes(ms ? got * 1000 / ms : 0, r, sizeof(r));
	/* \r and a clear to the end: the line is rewritten in place. */
	fprintf(stderr, "\r%s received, %s/s, %.1fs\033[K%s", b, r,
		(double)ms / 1000, last ? "\n" : "");
	fflush(stderr);
	st->progress_shown = !last;
}

static void
on_progress(struct tk_timer *t, void *arg)
{
	(void)t;
	show_progress(arg, false);
}

static void
end_progress(struct listen_state *st)
{
	if (st->progress == NULL || !tk_timer_is_active(st->progress))
		return;
	tk_timer_stop(st->progress);
	show_progress(st, true);
}

static void start_session(struct listen_state *st, struct tk_conn *c);

/* The session's end: keep or drop the file, then the next client or exit. */
static void
session_done(struct client_session *s, int code)
{
	struct listen_state *st = s->owner;
	char b[32];

	end_progress(st);
	st->busy = false;
	if (st->o->output != NULL && !st->o->append) {
		if (code == 0 && s->peer_eof) {
			code = get_out_commit(&st->out);
		} else {
			get_out_discard(&st->out);
			cli_error("listen", st->o->output,
				  "transfer cut after %s: not written",
				  human_bytes(s->received, b, sizeof(b)));
			if (code == 0)
				code = CLI_EXIT_OTHER;
		}
	} else if (st->o->append && (code != 0 || !s->peer_eof)) {
		cli_error("listen", st->o->output,
			  "transfer cut: %llu bytes appended",
			  (unsigned long long)s->received);
		if (code == 0)
			code = CLI_EXIT_OTHER;
	}
	if (!st->o->keep) {
		st->exit_code = code;
		tk_loop_stop(st->loop);
		return;
	}
	if (st->head != NULL) {
		struct held *h = st->head;
		struct tk_conn *c = h->c;

		st->head = h->next;
		if (st->head == NULL)
			st->tail = NULL;
		free(h);
		tk_conn_set_data(c, NULL);
		tk_conn_resume(c);
		start_session(st, c);
	}
}

static void
start_session(struct listen_state *st, struct tk_conn *c)
{
	struct client_session *s = &st->s;
	char who[TK_ADDRSTRLEN];
	int err;

	/* Stdin's state carries over; the connection's starts afresh. */
	s->conn = c;
	s->opened = s->peer_eof = s->got_data = s->reported = false;
	s->stdout_gone = s->prev_cr = false;
	s->sent = s->received = 0;
	s->exit_code = 0;
	st->busy = true;
	st->started = tk_loop_now(st->loop);
	tk_addr_format(tk_conn_peer(c), who, sizeof(who));
	snprintf(s->where, sizeof(s->where), "%s", who);
	if (st->o->verbose)
		fprintf(stderr, "connection from %s\n", who);
	if (s->hd != NULL) {
		hexdump_conn_init(&st->hc, who);
		s->hc = &st->hc;
	}
	if (st->o->output != NULL && !st->o->append) {
		if ((err = get_out_open_cmd(&st->out, st->o->output,
					    "listen")) != 0) {
			st->exit_code = err;
			s->reported = true;
			tk_conn_close(c, 0);
			return;
		}
		st->out.no_sync = st->o->no_sync;
		s->out_fd = st->out.fd;
	}
	if (st->progress != NULL)
		(void)tk_timer_start(st->progress, LISTEN_PROGRESS_MS,
				     LISTEN_PROGRESS_MS);
	err = client_service.open(c, s);
	if (err < 0) {
		tk_conn_close(c, err);
		return;
	}
	/* Stdin ended with an earlier client: this one gets FIN at once. */
	if (s->stdin_eof)
		tk_conn_shutdown(c);
}

static int
listen_open(struct tk_conn *c, void *arg)
{
	struct listen_state *st = arg;
	struct held *h;

	if (!st->o->keep && !st->drained) {
		/* One client, as nc -l: the listener goes now. */
		st->drained = true;
		tk_server_drain(st->srv);
	}
	if (!st->busy) {
		start_session(st, c);
		return 0;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->c = c;
	if (st->tail != NULL)
		st->tail->next = h;
	else
		st->head = h;
	st->tail = h;
	tk_conn_set_data(c, h);
	tk_conn_pause(c);
	return 0;
}

static void
listen_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct listen_state *st = arg;

	if (c == st->s.conn)
		client_service.data(c, data, n, &st->s);
}

static void
listen_drain(struct tk_conn *c, void *arg)
{
	struct listen_state *st = arg;

	if (c == st->s.conn)
		client_service.drain(c, &st->s);
}

static void
listen_close(struct tk_conn *c, int err, void *arg)
{
	struct listen_state *st = arg;
	struct held *h = tk_conn_data(c), **pp;

	if (c == st->s.conn) {
		client_service.close(c, err, &st->s);
		return;
	}
	if (h == NULL)
		return;
	/* A held client left before its turn. */
	for (pp = &st->head; *pp != NULL; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	st->tail = NULL;
	for (struct held *p = st->head; p != NULL; p = p->next)
		st->tail = p;
	free(h);
}

/* The listener closing (no -k) must not end the session it accepted. */
static void
listen_stop(struct tk_conn *c, void *arg)
{
	(void)c;
	(void)arg;
}

static const struct tk_service listen_service = {
	.name = "listen",
	.open = listen_open,
	.data = listen_data,
	.drain = listen_drain,
	.close = listen_close,
	.stop = listen_stop,
};

/* --exec: the library's service; without -k, for one client only. */
static int
exec_open(struct tk_conn *c, void *arg)
{
	struct listen_state *st = arg;
	int err = tk_service_exec.open(c, st->x);

	if (!st->o->keep && !st->drained) {
		st->drained = true;
		tk_server_drain(st->srv);
	}
	return err;
}

static void
exec_close(struct tk_conn *c, int err, void *arg)
{
	struct listen_state *st = arg;

	tk_service_exec.close(c, err, st->x);
}

static void
exec_stop(struct tk_conn *c, void *arg)
{
	struct listen_state *st = arg;

	tk_service_exec.stop(c, st->x);
}

static const struct tk_service exec_service = {
	.name = "exec",
	.open = exec_open,
	.close = exec_close,
	.stop = exec_stop,
};

/*
 * --exec without -k: done when the program has ended and its connection
 * too (with TLS the pump still carries the program's last bytes).
 */
static void
one_done(struct listen_state *st)
{
	if (st->child_done && st->all_gone)
		tk_loop_stop(st->loop);
}

static void
on_exit_logged(struct tk_exec *x, const struct tk_exec_exit *e, void *arg)
{
	struct listen_state *st = arg;

	(void)x;
	execlog_exit("listen", st->o->exec, e);
	if (e->pid == 0 && !st->o->keep)
		st->exit_code = CLI_EXIT_UNAVAILABLE;
	if (!st->o->keep) {
		st->child_done = true;
		one_done(st);
	}
}

static void
on_signal(struct tk_loop *loop, int signo, void *arg)
{
	struct listen_state *st = arg;

	st->signo = signo;
	sdsock_stopping(&st->sd);
	tk_loop_stop(loop);
}

static void
on_event(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
	 const struct tk_addr *peer, int err, void *arg)
{
	struct listen_state *st = arg;
	char who[TK_ADDRSTRLEN];

	(void)s;
	(void)c;
	if (ev == TK_SERVER_REJECT && err == TK_EDENIED) {
		tk_addr_format(peer, who, sizeof(who));
		cli_log("deny", "peer", who, "denied %s", who);
	} else if (ev == TK_SERVER_REJECT && ppopt_is_refusal(err)) {
		tk_addr_format(peer, who, sizeof(who));
		cli_log("pp_refuse", "peer", who, "refused %s: %s", who,
			ppopt_why(err));
	} else if (ev == TK_SERVER_REJECT) {
		cli_error("listen", tk_addr_format(peer, who, sizeof(who)),
			  "turned away: --max-conns %llu reached",
			  (unsigned long long)st->o->max_conns);
	} else if (ev == TK_SERVER_ERROR) {
		cli_fail("listen", "accept", err);
	} else if (ev == TK_SERVER_DRAINED) {
		st->all_gone = true;
		if (st->o->exec != NULL)
			one_done(st);
	}
}

static int
listen_on(struct listen_state *st)
{
	const struct listen_opts *o = st->o;
	struct tk_listen_why why;
	const char *hosts[1];
	size_t n = 0;
	char where[TK_ADDRSTRLEN];
	bool adopted;
	int err;

	err = sdsock_adopt("listen", st->srv, o->fdname, true, &adopted);
	if (err != 0 || adopted) {
		if (adopted)
			cli_log_listening(st->srv);
		return err;
	}
	if (o->is_unix) {
		tk_addr_format(&o->unix_addr, where, sizeof(where));
		err = tk_server_listen_unix(st->srv, &o->unix_addr,
					    &o->unix.uo);
		if (err < 0)
			return unixopt_listen_error(&o->unix, where, err);
		cli_log("listening", "addr", where, "listening on %s", where);
		return 0;
	}
	if (o->host[0] != '\0')
		hosts[n++] = o->host;
	else if (o->wildcard)
		hosts[n++] = o->family == AF_INET ? "0.0.0.0" : "::";
	else if (o->family == AF_INET)
		hosts[n++] = "127.0.0.1";
	else if (o->family == AF_INET6)
		hosts[n++] = "::1";
	err = tk_server_listen_hosts(st->srv, hosts, n, o->port, 0, &why);
	if (o->wildcard && o->family == AF_UNSPEC &&
	    (err == -EAFNOSUPPORT || err == -EADDRNOTAVAIL)) {
		/* No IPv6 here: every IPv4 address, then. */
		hosts[0] = "0.0.0.0";
		err = tk_server_listen_hosts(st->srv, hosts, n, o->port, 0,
					     &why);
	}
	if (err == 0) {
		for (size_t i = 0; i < tk_server_listener_count(st->srv); i++) {
			const struct tk_addr *a = tk_server_addr(st->srv, i);

			if (o->family != AF_UNSPEC &&
			    tk_addr_family(a) != o->family) {
				cli_error(
					"listen", o->host, "not an %s address",
					o->family == AF_INET ? "IPv4" : "IPv6");
				return CLI_EXIT_USAGE;
			}
		}
		cli_log_listening(st->srv);
		return 0;
	}
	if (why.host != NULL)
		return cli_fail("listen", why.host, err);
	return cli_fail("listen",
			tk_addr_format(&why.addr, where, sizeof(where)), err);
}

int
cmd_listen(int argc, char **argv)
{
	struct listen_opts o;
	struct listen_state st;
	struct tk_server_opts sopts;
	struct tk_tls_ctx *tls = NULL;
	const char *sh_argv[] = { "/bin/sh", "-c", NULL, NULL };
	struct reload rl = { .cmd = "listen" };
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&st, 0, sizeof(st));
	st.o = &o;
	st.append_fd = -1;
	rc = listen_parse_args(argc, argv, &o);
	if (rc != 0) {
		aclopt_free(&o.acl);
		ppopt_free(&o.pp);
		return rc < 0 ? 0 : rc;
	}
	if (o.udp)
		return listen_udp_run(&o);
	rc = tlsopt_server_ctx("listen", &o.tls, &tls);
	if (rc != 0) {
		aclopt_free(&o.acl);
		ppopt_free(&o.pp);
		return rc;
	}
	if (o.append) {
		st.append_fd =
			open(o.output,
			     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
		if (st.append_fd < 0) {
			rc = CLI_EXIT_CANTCREAT;
			cli_error("listen", o.output, "cannot open: %s",
				  tk_strerror(-errno));
			tk_tls_ctx_free(tls);
			aclopt_free(&o.acl);
			ppopt_free(&o.pp);
			return rc;
		}
	} else if (o.output != NULL) {
		/* Fail now, not at the first client: the same checks. */
		rc = get_out_open_cmd(&st.out, o.output, "listen");
		if (rc != 0) {
			tk_tls_ctx_free(tls);
			aclopt_free(&o.acl);
			ppopt_free(&o.pp);
			return rc;
		}
		get_out_discard(&st.out);
	}

	st.co.cmd = "listen";
	st.co.idle_timeout_ms = o.idle_ms;
	st.co.verbose = false;
	st.co.recv_only = o.recv_only;
	st.co.no_tls_hint = true;
	st.s.o = &st.co;
	st.s.out_fd = st.append_fd >= 0 ? st.append_fd : STDOUT_FILENO;
	st.s.out_name = o.output != NULL ? o.output : "stdout";
	st.s.done = session_done;
	st.s.owner = &st;

	if ((rc = tk_loop_new(&st.loop)) < 0) {
		rc = cli_fail("listen", "", rc);
		goto out_tls;
	}
	st.s.loop = st.loop;
	if ((rc = tk_loop_signal(st.loop, SIGINT, on_signal, &st)) < 0 ||
	    (rc = tk_loop_signal(st.loop, SIGTERM, on_signal, &st)) < 0) {
		rc = cli_fail("listen", "signals", rc);
		goto out_loop;
	}
	rl.tls = &o.tls;
	rl.ctx = &tls;
	rl.acl = &o.acl;
	/*
	 * A server's SIGHUP reloads; one client on the terminal's stdio
	 * keeps the hang-up's meaning: the terminal is gone, so are we.
	 */
	if ((o.keep || o.exec != NULL) &&
	    (rc = reload_watch(st.loop, &rl)) != 0)
		goto out_loop;
	if (o.output != NULL && isatty(STDERR_FILENO) &&
	    tk_timer_new(st.loop, on_progress, &st, &st.progress) < 0)
		st.progress = NULL; /* no progress line: not worth failing */

	if (o.hexdump != NULL &&
	    (rc = hexdump_open("listen", o.hexdump, &st.s.hd)) != 0)
		goto out_loop;
	tk_server_opts_init(&sopts);
	sopts.max_conns = o.max_conns;
	sopts.acl = o.acl.acl;
	ppopt_apply(&o.pp, &sopts);
	sopts.conn.idle_timeout_ms = o.idle_ms;
	connopt_apply(&o.keepalive, &sopts.conn);
	sopts.conn.tls = tls;
	sopts.on_event = on_event;
	sopts.event_arg = &st;
	/* As for connect: the two directions are independent. */
	sopts.conn.max_pending = sopts.conn.max_output;
	if (o.broker || o.chat) {
		if ((rc = tk_broker_new(st.loop, NULL, &st.broker)) < 0) {
			rc = cli_fail("listen", "", rc);
			goto out_loop;
		}
		rc = tk_server_new(st.loop, &sopts,
				   o.chat ? &tk_service_chat
					  : &tk_service_broker,
				   st.broker, &st.srv);
	} else if (o.exec != NULL) {
		struct tk_exec_opts xo = {
			.stderr_to_peer = o.stderr_to_peer,
			.max_children = (unsigned)o.max_conns,
			.on_exit = on_exit_logged,
			.arg = &st,
		};

		if (o.sh) {
			sh_argv[2] = o.exec;
			xo.argv = sh_argv;
		} else {
			xo.argv = (const char *const *)o.argv;
		}
		if ((rc = tk_exec_new(st.loop, &xo, &st.x)) < 0) {
			rc = cli_fail("listen", "", rc);
			goto out_loop;
		}
		rc = tk_server_new(st.loop, &sopts, &exec_service, &st,
				   &st.srv);
	} else {
		rc = tk_server_new(st.loop, &sopts, &listen_service, &st,
				   &st.srv);
	}
	if (rc < 0) {
		rc = cli_fail("listen", "", rc);
		goto out_exec;
	}
	if ((rc = listen_on(&st)) != 0)
		goto out_server;
	if ((rc = tk_server_start(st.srv)) < 0) {
		rc = cli_fail("listen", "", rc);
		goto out_server;
	}
	rl.server = st.srv;
	if ((rc = metrics_start("listen", &o.metrics, st.srv,
				o.exec != NULL ? "exec"
				: o.broker     ? "broker"
				: o.chat       ? "chat"
					       : "stdio",
				NULL, 0, &st.metrics)) != 0)
		goto out_server;
	sdsock_ready(&st.sd, st.loop, st.srv);
	rc = tk_loop_run(st.loop);
	if (rc < 0) {
		rc = cli_fail("listen", "event loop", rc);
		goto out_server;
	}
	rc = st.exit_code;
	if (st.signo != 0 && st.busy) {
		char b[32];

		end_progress(&st);
		if (o.output != NULL && !o.append)
			get_out_discard(&st.out);
		cli_error("listen", st.s.where, "%s: transfer cut after %s%s%s",
			  strsignal(st.signo),
			  human_bytes(st.s.received, b, sizeof(b)),
			  o.output != NULL && !o.append ? "; not written: "
							: "",
			  o.output != NULL && !o.append ? o.output : "");
		st.busy = false;
		rc = CLI_EXIT_OTHER;
	}
out_server:
	client_stdin_stop(&st.s);
	metrics_free(st.metrics); /* it reads the server's numbers */
	tk_server_free(st.srv);
out_exec:
	tk_exec_free(st.x);
	tk_broker_free(st.broker);
out_loop:
	tk_timer_free(st.progress);
	sdsock_free(&st.sd);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	tk_loop_free(st.loop);
	if (st.busy && o.output != NULL && !o.append)
		get_out_discard(&st.out);
	if (hexdump_close(st.s.hd) < 0 && rc == 0)
		rc = hexdump_exit_code();
out_tls:
	if (st.append_fd >= 0 && close(st.append_fd) < 0 && rc == 0)
		rc = cli_fail("listen", o.output, -errno);
	tk_tls_ctx_free(tls);
	aclopt_free(&o.acl);
	ppopt_free(&o.pp);
	return rc;
}
