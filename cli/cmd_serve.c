/* cmd_serve.c: `tcpkit serve`: run a built-in service on one or more listeners.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_HOSTS      16
#define MAX_BIND_TRIES 8    /* port 0 on several hosts: retries for one port */
#define STOP_DRAIN_MS  2000 /* finishing answers after a remote shutdown */

const char cmd_serve_help[] =
	"usage: tcpkit serve [SERVICE] [-H HOST]... [-p PORT] [OPTIONS]\n"
	"\n"
	"Run a TCP server on an event loop; each client is served at once,\n"
	"none waiting on another.\n"
	"\n"
	"Services:\n"
	"  echo      every byte back, unchanged (default; port 7007)\n"
	"  discard   read and drop everything (port 7009)\n"
	"  welcome   tutorial 1: a welcome line, then \"OK...\" and every chunk\n"
	"            received (port 9999)\n"
	"  basic     tutorial 2: \"You connected at [TIME]\", one message,\n"
	"            \"You sent: [MESSAGE]\", close; the message \"shutdown\"\n"
	"            stops the server when it comes from loopback (port 60000)\n"
	"\n"
	"Options:\n"
	"  -H, --host HOST     address or name to listen on; repeatable.\n"
	"                      Default: loopback only, 127.0.0.1 and ::1.\n"
	"                      Use 0.0.0.0 (IPv4) or :: (IPv4 and IPv6, where\n"
	"                      the system allows) for every interface.\n"
	"  -p, --port PORT     port (default: the service's); 0 = any free port\n"
	"      --backlog N     listen queue length, 1-65535 (default 511)\n"
	"  -i, --idle-timeout DURATION\n"
	"                      close a connection silent this long (default:\n"
	"                      never); e.g. 30, 1.5s, 500ms, 5m\n"
	"      --allow-remote-shutdown\n"
	"                      basic: honour \"shutdown\" from any client, not\n"
	"                      only from this machine's loopback\n"
	"  -q, --quiet         do not log each connection\n"
	"  -h, --help          show this help\n"
	"\n"
	"On start, 'listening on ADDR:PORT' is printed on stderr for every\n"
	"socket, with the real port.  Each connection is logged with its peer\n"
	"and time when it opens and when it closes.  SIGINT (Ctrl-C) and SIGTERM\n"
	"stop the server with a one-line summary and exit 0.\n"
	"\n"
	"Exit codes: 0 stopped cleanly, 1 cannot listen (port in use,\n"
	"permission, address not available), 64 usage, 68 unknown host.\n"
	"\n"
	"Examples:\n"
	"  tcpkit serve                       echo on 127.0.0.1 and ::1, 7007\n"
	"  tcpkit serve welcome -H 0.0.0.0    tutorial 1's server, all IPv4\n"
	"  tcpkit serve basic -p 0            tutorial 2's server, any port\n";

struct serve_opts {
	const char *service;
	const char *hosts[MAX_HOSTS];
	size_t nhosts;
	bool port_set;
	uint16_t port;
	int backlog;
	uint64_t idle_ms;
	bool quiet;
	bool allow_remote_shutdown;
};

struct serve_state {
	const struct serve_opts *opts;
	struct tk_server *server;
	int signo; /* the signal that stopped us, or 0 */
};

struct service_info {
	const char *name;
	uint16_t port;
};

static const struct service_info services[] = {
	{ "echo", 7007 },
	{ "discard", 7009 },
	{ "welcome", 9999 },
	{ "basic", 60000 },
};

static const struct service_info *
find_service(const char *name)
{
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		if (strcmp(services[i].name, name) == 0)
			return &services[i];
	return NULL;
}

static int
parse_args(int argc, char **argv, struct serve_opts *o)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "backlog", required_argument, NULL, 'b' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "allow-remote-shutdown", no_argument, NULL, 'R' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int ch;

	memset(o, 0, sizeof(*o));
	o->service = "echo";
	o->backlog = TK_DEFAULT_BACKLOG;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":H:p:i:qh", longopts, NULL)) !=
	       -1) {
		switch (ch) {
		case 'H':
			if (o->nhosts == MAX_HOSTS)
				return cli_usage("serve",
						 "at most %d -H options",
						 MAX_HOSTS);
			o->hosts[o->nhosts++] = optarg;
			break;
		case 'p':
			if (cli_parse_port("serve", "-p/--port", optarg,
					   &o->port) < 0)
				return CLI_EXIT_USAGE;
			o->port_set = true;
			break;
		case 'b':
			if (cli_parse_uint("serve", "--backlog", optarg, 1,
					   65535, &v) < 0)
				return CLI_EXIT_USAGE;
			o->backlog = (int)v;
			break;
		case 'i':
			if (cli_parse_duration("serve", "-i/--idle-timeout",
					       optarg, false, &o->idle_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'R':
			o->allow_remote_shutdown = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			cli_help("serve");
			return -1;
		default:
			return cli_bad_option("serve", argv, ch);
		}
	}
	if (optind < argc)
		o->service = argv[optind++];
	if (optind < argc)
		return cli_usage("serve", "unexpected argument '%s'",
				 argv[optind]);
	if (find_service(o->service) == NULL)
		return cli_usage("serve",
				 "unknown service '%s' (echo, discard, "
				 "welcome, basic)",
				 o->service);
	if (o->allow_remote_shutdown && strcmp(o->service, "basic") != 0)
		return cli_usage("serve",
				 "--allow-remote-shutdown applies to the basic "
				 "service only");
	if (!o->port_set)
		o->port = find_service(o->service)->port;
	return 0;
}

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

/* The addresses to listen on, in order; duplicates removed. */
struct bind_plan {
	struct tk_addr addrs[MAX_HOSTS * 4];
	bool v6only[MAX_HOSTS * 4];
	bool optional[MAX_HOSTS * 4]; /* default ::1: skipped if missing */
	size_t n;
};

static void
plan_add(struct bind_plan *p, const struct tk_addr *a, bool optional)
{
	for (size_t i = 0; i < p->n; i++)
		if (tk_addr_equal(&p->addrs[i], a))
			return;
	if (p->n == sizeof(p->addrs) / sizeof(p->addrs[0]))
		return;
	p->addrs[p->n] = *a;
	p->optional[p->n] = optional;
	p->n++;
}

static int
make_plan(const struct serve_opts *o, struct bind_plan *p)
{
	bool v4any = false;

	memset(p, 0, sizeof(*p));
	if (o->nhosts == 0) {
		struct tk_addr a;

		(void)tk_addr_from_ip("127.0.0.1", o->port, &a);
		plan_add(p, &a, false);
		(void)tk_addr_from_ip("::1", o->port, &a);
		plan_add(p, &a, true);
		return 0;
	}
	for (size_t i = 0; i < o->nhosts; i++) {
		char host[TK_HOSTLEN], port[TK_PORTLEN];
		struct tk_addrlist *list;
		int err;

		/* "[::1]" is how people often write an IPv6 address. */
		if (o->hosts[i][0] == '\0')
			return cli_usage("serve",
					 "-H needs an address or name");
		if (tk_hostport_split(o->hosts[i], host, port) < 0 ||
		    host[0] == '\0')
			return cli_fail("serve", o->hosts[i], TK_EBADADDR);
		if (port[0] != '\0')
			return cli_usage("serve",
					 "-H takes an address without a port "
					 "('%s'); give the port with -p",
					 o->hosts[i]);
		/* A colon means an IPv6 literal, never a name to look up. */
		err = tk_resolve(host, NULL, AF_UNSPEC,
				 strchr(host, ':') ? TK_RESOLVE_NUMERIC : 0,
				 &list);
		if (err == TK_ENOHOST && strchr(host, ':') != NULL)
			err = TK_EBADADDR;
		if (err < 0)
			return cli_fail("serve", o->hosts[i], err);
		for (size_t j = 0; j < list->count; j++) {
			tk_addr_set_port(&list->addrs[j], o->port);
			plan_add(p, &list->addrs[j], false);
		}
		tk_addrlist_free(list);
	}
	for (size_t i = 0; i < p->n; i++)
		if (tk_addr_family(&p->addrs[i]) == AF_INET &&
		    tk_addr_is_any(&p->addrs[i]))
			v4any = true;
	/* "::" is dual-stack unless 0.0.0.0 is asked for as well. */
	for (size_t i = 0; i < p->n; i++)
		p->v6only[i] = tk_addr_family(&p->addrs[i]) == AF_INET6 &&
			       (!tk_addr_is_any(&p->addrs[i]) || v4any);
	return 0;
}

/*
 * Listen on every planned address.  With port 0 and several addresses, the
 * first one's port is used for the rest, so one number reaches them all.
 */
static int
listen_all(struct tk_server *srv, struct bind_plan *p, uint16_t port)
{
	for (int attempt = 0; attempt < MAX_BIND_TRIES; attempt++) {
		uint16_t chosen = port;
		int err = 0;
		size_t i;

		for (i = 0; i < p->n; i++) {
			tk_addr_set_port(&p->addrs[i], chosen);
			err = tk_server_listen(srv, &p->addrs[i], p->v6only[i]);
			if (err == 0 && chosen == 0)
				chosen = tk_addr_port(tk_server_addr(
					srv,
					tk_server_listener_count(srv) - 1));
			if (err == 0)
				continue;
			if (p->optional[i] &&
			    (err == -EADDRNOTAVAIL || err == -EAFNOSUPPORT)) {
				char where[TK_ADDRSTRLEN];

				cli_error("warning", "",
					  "cannot listen on %s (%s); going on "
					  "without it",
					  tk_addr_format(&p->addrs[i], where,
							 sizeof(where)),
					  tk_strerror(err));
				err = 0;
				continue;
			}
			break;
		}
		if (err == 0)
			return 0;
		/* A free port on one address may be taken on another. */
		if (port == 0 && err == -EADDRINUSE && i > 0) {
			tk_server_stop(srv);
			continue;
		}
		bind_error(&p->addrs[i], err);
		return CLI_EXIT_OTHER;
	}
	cli_error("listen", "", "no port free on every address after %d tries",
		  MAX_BIND_TRIES);
	return CLI_EXIT_OTHER;
}

static void
on_event(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
	 int err, void *arg)
{
	struct serve_state *st = arg;
	const char *svc = st->opts->service;
	char peer[TK_ADDRSTRLEN], ts[48], dur[32];

	(void)s;
	if (st->opts->quiet)
		return;
	cli_timestamp(ts, sizeof(ts));
	if (ev == TK_SERVER_ERROR) {
		cli_error("accept", "", "%s", tk_strerror(err));
		return;
	}
	tk_addr_format(tk_conn_peer(c), peer, sizeof(peer));
	if (ev == TK_SERVER_OPEN) {
		/* The tutorials' own wording for their services. */
		if (strcmp(svc, "basic") == 0)
			fprintf(stderr, "Got a connection from [%s] at [%s]\n",
				peer, ts);
		else if (strcmp(svc, "welcome") == 0)
			fprintf(stderr, "Connected with %s at [%s]\n", peer,
				ts);
		else
			fprintf(stderr, "connection from %s at [%s]\n", peer,
				ts);
		return;
	}
	fprintf(stderr,
		"closed %s at [%s] after %s: %llu bytes in, %llu bytes out "
		"(%s)\n",
		peer, ts,
		cli_format_duration(tk_conn_age_ms(c), dur, sizeof(dur)),
		(unsigned long long)tk_conn_bytes_in(c),
		(unsigned long long)tk_conn_bytes_out(c),
		err == 0 ? "done" : tk_strerror(err));
}

static void
on_signal(struct tk_loop *loop, int signo, void *arg)
{
	struct serve_state *st = arg;

	st->signo = signo;
	tk_loop_stop(loop);
}

static void
print_hints(const struct serve_opts *o, struct tk_server *srv)
{
	bool all_loopback = true;
	char where[TK_ADDRSTRLEN], ip[TK_ADDRSTRLEN];
	const struct tk_addr *first = tk_server_addr(srv, 0);

	for (size_t i = 0; i < tk_server_listener_count(srv); i++) {
		const struct tk_addr *a = tk_server_addr(srv, i);

		fprintf(stderr, "listening on %s\n",
			tk_addr_format(a, where, sizeof(where)));
		if (!tk_addr_is_loopback(a))
			all_loopback = false;
	}
	if (o->quiet)
		return;
	if (all_loopback)
		fprintf(stderr, "hint: loopback only, other machines cannot "
				"connect; use -H 0.0.0.0 or -H :: to serve "
				"every interface\n");
	if (tk_addr_is_any(first))
		strcpy(ip,
		       tk_addr_family(first) == AF_INET ? "127.0.0.1" : "::1");
	else
		tk_addr_format_ip(first, ip, sizeof(ip));
	if (strcmp(o->service, "basic") == 0)
		fprintf(stderr, "try: tcpkit send %s %u 'Hey!'\n", ip,
			tk_addr_port(first));
	else
		fprintf(stderr, "try: tcpkit connect %s %u\n", ip,
			tk_addr_port(first));
}

/* After a remote shutdown: let answers in flight reach their clients. */
static void
drain(struct tk_loop *loop, struct tk_server *srv)
{
	struct tk_server_stats st;
	uint64_t deadline;

	tk_loop_update_time(loop);
	deadline = tk_loop_now(loop) + STOP_DRAIN_MS;
	for (;;) {
		tk_server_get_stats(srv, &st);
		if (st.active == 0 || tk_loop_now(loop) >= deadline)
			break;
		if (tk_loop_run_once(loop, 50) < 0)
			break;
	}
}

int
cmd_serve(int argc, char **argv)
{
	struct serve_opts o;
	struct serve_state st = { .opts = &o };
	struct tk_server_opts sopts;
	struct tk_basic_opts basic = { 0 };
	struct tk_server_stats stats;
	struct bind_plan plan;
	struct tk_loop *loop;
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	rc = make_plan(&o, &plan);
	if (rc != 0)
		return rc;

	loop = tk_loop_new();
	if (loop == NULL)
		return cli_fail("serve", "", -errno);
	tk_server_opts_init(&sopts);
	sopts.backlog = o.backlog;
	sopts.conn.idle_timeout_ms = o.idle_ms;
	sopts.on_event = on_event;
	sopts.event_arg = &st;
	basic.allow_remote_shutdown = o.allow_remote_shutdown;
	st.server =
		tk_server_new(loop, &sopts, tk_service_find(o.service), &basic);
	if (st.server == NULL) {
		rc = cli_fail("serve", "", -errno);
		goto out_free_loop;
	}
	/* Ctrl-C must stop a server however busy: the loop takes signals. */
	if ((rc = tk_loop_signal(loop, SIGINT, on_signal, &st)) < 0 ||
	    (rc = tk_loop_signal(loop, SIGTERM, on_signal, &st)) < 0) {
		rc = cli_fail("serve", "signals", rc);
		goto out_free_server;
	}
	rc = listen_all(st.server, &plan, o.port);
	if (rc != 0)
		goto out_free_server;
	if ((rc = tk_server_start(st.server)) < 0) {
		rc = cli_fail("serve", "", rc);
		goto out_free_server;
	}
	print_hints(&o, st.server);

	rc = tk_loop_run(loop);
	if (rc < 0) {
		rc = cli_fail("serve", "event loop", rc);
		goto out_free_server;
	}
	if (tk_server_stopping(st.server)) {
		fprintf(stderr, "Execution ended because of [Remote user "
				"initiated shutdown.]\n");
		drain(loop, st.server);
	} else if (st.signo == SIGINT && strcmp(o.service, "basic") == 0) {
		fprintf(stderr, "User pressed Ctrl-C, stopping.\n");
	}
	tk_server_get_stats(st.server, &stats);
	fprintf(stderr,
		"stopped (%s%s): %llu connections served, %llu closed by the stop, "
		"%llu bytes in, %llu bytes out\n",
		st.signo ? "SIG" : "",
		st.signo ? sigabbrev_np(st.signo) : "remote shutdown",
		(unsigned long long)stats.accepted,
		(unsigned long long)stats.active,
		(unsigned long long)stats.bytes_in,
		(unsigned long long)stats.bytes_out);
	rc = 0;
	o.quiet = true; /* no per-connection lines for the final closes */
out_free_server:
	tk_server_free(st.server);
out_free_loop:
	tk_loop_free(loop);
	return rc;
}
