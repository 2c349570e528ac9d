/* cmd_serve.c: `tcpkit serve`: run a built-in service on one or more listeners.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "serve.h"
#include "tlsopt.h"

#define MAX_HOSTS		16
#define DEFAULT_IDLE_MS		(5 * 60 * 1000u)
#define DEFAULT_LINE_TIMEOUT_MS 30000u
#define DEFAULT_DRAIN_MS	10000u
#define FD_RESERVE		64 /* descriptors kept for all but clients */

static unsigned
online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

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

const char cmd_serve_help[] =
	"usage: tcpkit serve [SERVICE] [-H HOST]... [-p PORT] [OPTIONS]\n"
	"\n"
	"Run a TCP server: shared-nothing workers, one event loop each, serve\n"
	"every client at once, none waiting on another.\n"
	"\n"
	"Services:\n"
	"  echo      every byte back, unchanged (default; port 7007)\n"
	"  discard   read and drop everything (port 7009)\n"
	"  welcome   tutorial 1: a welcome line, then \"OK...\" and every chunk\n"
	"            received (port 9999)\n"
	"  basic     tutorial 2: \"You connected at [TIME]\", one message,\n"
	"            \"You sent: [MESSAGE]\", close; the message \"shutdown\"\n"
	"            stops the server when it comes from loopback (port 60000)\n"
	"  line      a line server: every complete line back (port 7008)\n"
	"\n"
	"Options:\n"
	"  -H, --host HOST     address or name to listen on; repeatable.\n"
	"                      Default: loopback only, 127.0.0.1 and ::1.\n"
	"                      Use 0.0.0.0 (IPv4) or :: (IPv4 and IPv6, where\n"
	"                      the system allows) for every interface.\n"
	"  -p, --port PORT     port (default: the service's); 0 = any free port\n"
	"      --backlog N     listen queue length, 1-65535 (default 511)\n"
	"  -w, --workers N     worker threads, each with its own loop and\n"
	"                      SO_REUSEPORT socket (default: online CPUs)\n"
	"                      (in connect, send and get, -w is\n"
	"                      --connect-timeout; in bench, --warmup)\n"
	"      --allow-remote-shutdown\n"
	"                      basic: honour \"shutdown\" from any client, not\n"
	"                      only from this machine's loopback\n"
	"  -q, --quiet         do not log each connection\n"
	"  -h, --help          show this help\n"
	"\n"
	"TLS (every service runs unchanged over it; see docs/tls.md):\n"
	"      --tls           serve TLS 1.2 and 1.3 only, ECDHE with AEAD\n"
	"                      ciphers only (Mozilla intermediate), session\n"
	"                      tickets on; without --cert, an ephemeral\n"
	"                      self-signed certificate is made in memory and\n"
	"                      its fingerprint printed ('tls: self-signed\n"
	"                      certificate sha256:HEX') for clients to --pin\n"
	"      --cert FILE     certificate chain (PEM, leaf first)\n"
	"      --key FILE      its private key (default: in --cert)\n"
	"      --client-ca FILE\n"
	"                      ask clients for a certificate from these CAs\n"
	"                      (mutual TLS); the client's subject is logged\n"
	"      --client-auth optional|required\n"
	"                      with --client-ca (default required)\n"
	"      --tls-min 1.2|1.3\n"
	"                      oldest version accepted (1.3: Mozilla modern)\n"
	"      --alpn LIST     protocols accepted, preferred first (h2,http/1.1)\n"
	"      --handshake-timeout D\n"
	"                      a TLS handshake must finish within D (default\n"
	"                      10s); failures are logged with their reason\n"
	"\n"
	"Limits (durations: 30, 1.5s, 500ms, 5m; 0 turns a timeout off):\n"
	"      --max-conns N   open connections at most (default: the open-file\n"
	"                      limit less 64); beyond it a line service's client\n"
	"                      gets \"busy: too many connections, try again\n"
	"                      later\" and is closed, any other (and any over\n"
	"                      TLS) is closed at once\n"
	"  -i, --idle-timeout D\n"
	"                      close a connection silent this long (default 5m)\n"
	"      --line-timeout D\n"
	"                      line services: a line must be complete within D\n"
	"                      of its first byte, the first within D of the\n"
	"                      connection (slowloris); default 30s, none for\n"
	"                      welcome's first word (a human at a prompt)\n"
	"      --max-line BYTES\n"
	"                      line service: a longer line gets \"error: line\n"
	"                      too long\" and a close (default 8192)\n"
	"      --max-pending BYTES\n"
	"                      output waiting for a slow reader, per connection;\n"
	"                      above it the server stops reading that client,\n"
	"                      and the kernel holds no more than this of its\n"
	"                      unsent output either (TCP_NOTSENT_LOWAT), so\n"
	"                      memory stays bounded in both (default 262144)\n"
	"      --drain-timeout D\n"
	"                      on SIGINT/SIGTERM: stop listening, let exchanges\n"
	"                      in flight finish and end idle sessions with FIN;\n"
	"                      after D close the rest (default 10s); a second\n"
	"                      signal stops at once\n"
	"\n"
	"Logging (stderr):\n"
	"      --log-format F  text (default), logfmt or json: one record per\n"
	"                      connection at close (peer, worker, duration, bytes\n"
	"                      each way, why it closed); text also logs opens.\n"
	"                      logfmt and json turn every line on stderr into a\n"
	"                      record (ts, event, msg: the text line): listening\n"
	"                      (with addr), hints, rejections, errors, warnings\n"
	"                      and the stopped line, for a log shipper\n"
	"      --stats-interval D\n"
	"                      print totals (accepted, rejected, active, bytes,\n"
	"                      errors by kind) every D, and always at exit\n"
	"\n"
	"On start, 'listening on ADDR:PORT' is printed on stderr for every\n"
	"address, with the real port.  The process never dies of SIGPIPE; a\n"
	"reset, half-close or partial write affects only its own connection.\n"
	"\n"
	"Exit codes: 0 stopped cleanly (by SIGINT or SIGTERM, however many\n"
	"come), 1 cannot listen (port in use, permission, address not\n"
	"available), 64 usage, 66 a --cert, --key or --client-ca file is\n"
	"missing, 68 unknown host.\n"
	"\n"
	"Examples:\n"
	"  tcpkit serve                       echo on 127.0.0.1 and ::1, 7007\n"
	"  tcpkit serve welcome -H 0.0.0.0    tutorial 1's server, all IPv4\n"
	"  tcpkit serve basic -p 0            tutorial 2's server, any port\n"
	"  tcpkit serve line --max-line 1024 --log-format json\n"
	"  tcpkit serve --tls -p 0            echo over TLS, self-signed\n"
	"  tcpkit serve --tls --cert srv.pem --key srv.key --client-ca ca.pem\n";

struct serve_opts {
	const char *service;
	const char *hosts[MAX_HOSTS];
	size_t nhosts;
	bool port_set;
	uint16_t port;
	int backlog;
	unsigned workers;
	uint64_t max_conns; /* 0: from the open-file limit */
	uint64_t idle_ms;
	uint64_t line_timeout_ms;
	bool line_timeout_set; /* --line-timeout given */
	uint64_t max_line;
	uint64_t max_pending;
	uint64_t drain_ms;
	uint64_t stats_ms;
	uint64_t handshake_ms;
	bool allow_remote_shutdown;
	struct serve_log log;
	struct tlsopt tls;
};

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
	uint64_t open_at_stop; /* sessions open when the stop began */
};

struct service_info {
	const char *name;
	uint16_t port;
};

static const struct service_info services[] = {
	{ "echo", 7007 },   { "discard", 7009 }, { "welcome", 9999 },
	{ "basic", 60000 }, { "line", 7008 },
};

static const struct service_info *
find_service(const char *name)
{
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		if (strcmp(services[i].name, name) == 0)
			return &services[i];
	return NULL;
}

enum {
	OPT_MAX_CONNS = 256,
	OPT_LINE_TIMEOUT,
	OPT_MAX_LINE,
	OPT_MAX_PENDING,
	OPT_DRAIN,
	OPT_LOG_FORMAT,
	OPT_STATS,
	OPT_HANDSHAKE,
};

static int
parse_args(int argc, char **argv, struct serve_opts *o)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "backlog", required_argument, NULL, 'b' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "workers", required_argument, NULL, 'w' },
		{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
		{ "line-timeout", required_argument, NULL, OPT_LINE_TIMEOUT },
		{ "max-line", required_argument, NULL, OPT_MAX_LINE },
		{ "max-pending", required_argument, NULL, OPT_MAX_PENDING },
		{ "drain-timeout", required_argument, NULL, OPT_DRAIN },
		{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
		{ "stats-interval", required_argument, NULL, OPT_STATS },
		{ "handshake-timeout", required_argument, NULL, OPT_HANDSHAKE },
		{ "allow-remote-shutdown", no_argument, NULL, 'R' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		TLSOPT_SERVER_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int ch;

	memset(o, 0, sizeof(*o));
	o->service = "echo";
	o->backlog = TK_DEFAULT_BACKLOG;
	o->workers = online_cpus();
	o->idle_ms = DEFAULT_IDLE_MS;
	o->line_timeout_ms = DEFAULT_LINE_TIMEOUT_MS;
	o->max_line = TK_DEFAULT_MAX_LINE;
	o->max_pending = TK_DEFAULT_MAX_PENDING;
	o->drain_ms = DEFAULT_DRAIN_MS;
	o->log.format = LOG_TEXT;
	/*
	 * The format first, so that even a usage error in an option before
	 * --log-format is a record a log shipper can read.
	 */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *fmt = NULL;
		int f;

		if (strncmp(argv[i], "--log-format=", 13) == 0)
			fmt = argv[i] + 13;
		else if (strcmp(argv[i], "--log-format") == 0 && i + 1 < argc)
			fmt = argv[i + 1];
		f = fmt != NULL ? serve_log_parse_format(fmt) : -1;
		if (f >= 0)
			cli_set_log_format((enum cli_log_format)f);
	}
	opterr = 0;
	while ((ch = cli_getopt(argc, argv, ":H:p:i:w:qh", longopts)) != -1) {
		int f;

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
					       optarg, true, &o->idle_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'w':
			if (cli_parse_uint("serve", "-w/--workers", optarg, 1,
					   256, &v) < 0)
				return CLI_EXIT_USAGE;
			o->workers = (unsigned)v;
			break;
		case OPT_MAX_CONNS:
			if (cli_parse_uint("serve", "--max-conns", optarg, 1,
					   10000000, &o->max_conns) < 0)
				return CLI_EXIT_USAGE;
			break;
		case OPT_LINE_TIMEOUT:
			if (cli_parse_duration("serve", "--line-timeout",
					       optarg, true,
					       &o->line_timeout_ms) < 0)
				return CLI_EXIT_USAGE;
			o->line_timeout_set = true;
			break;
		case OPT_MAX_LINE:
			if (cli_parse_uint("serve", "--max-line", optarg, 1,
					   16 << 20, &o->max_line) < 0)
				return CLI_EXIT_USAGE;
			break;
		case OPT_MAX_PENDING:
			if (cli_parse_uint("serve", "--max-pending", optarg,
					   4096, 1u << 30, &o->max_pending) < 0)
				return CLI_EXIT_USAGE;
			break;
		case OPT_DRAIN:
			if (cli_parse_duration("serve", "--drain-timeout",
					       optarg, true, &o->drain_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case OPT_LOG_FORMAT:
			f = serve_log_parse_format(optarg);
			if (f < 0)
				return cli_usage("serve",
						 "--log-format is text, logfmt "
						 "or json, not '%s'",
						 optarg);
			o->log.format = (enum log_format)f;
			cli_set_log_format((enum cli_log_format)f);
			break;
		case OPT_STATS:
			if (cli_parse_duration("serve", "--stats-interval",
					       optarg, true, &o->stats_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case OPT_HANDSHAKE:
			if (cli_parse_duration("serve", "--handshake-timeout",
					       optarg, false,
					       &o->handshake_ms) < 0)
				return CLI_EXIT_USAGE;
			o->tls.used = true;
			o->tls.used_name = "--handshake-timeout";
			break;
		case 'R':
			o->allow_remote_shutdown = true;
			break;
		case 'q':
			o->log.quiet = true;
			break;
		case 'h':
			cli_help("serve");
			return -1;
		default:
			if (ch >= TLSOPT_TLS && ch <= TLSOPT_CLIENT_AUTH) {
				int rc = tlsopt_take("serve", &o->tls, ch,
						     optarg);

				if (rc != 0)
					return rc;
				break;
			}
			return cli_bad_option("serve", argv, ch);
		}
	}
	for (size_t i = 0; i < o->nhosts; i++) {
		char host[TK_HOSTLEN], port[TK_PORTLEN];

		if (o->hosts[i][0] == '\0')
			return cli_usage("serve",
					 "-H needs an address or name");
		if (tk_hostport_split(o->hosts[i], host, port) == 0 &&
		    port[0] != '\0')
			return cli_usage("serve",
					 "-H takes an address without a port "
					 "('%s'); give the port with -p",
					 o->hosts[i]);
	}
	if (optind < argc)
		o->service = argv[optind++];
	if (optind < argc)
		return cli_usage("serve", "unexpected argument '%s'",
				 argv[optind]);
	if (find_service(o->service) == NULL)
		return cli_usage("serve",
				 "unknown service '%s' (echo, discard, "
				 "welcome, basic, line)",
				 o->service);
	if (o->allow_remote_shutdown && strcmp(o->service, "basic") != 0)
		return cli_usage("serve",
				 "--allow-remote-shutdown applies to the basic "
				 "service only");
	if (!o->port_set)
		o->port = find_service(o->service)->port;
	o->log.service = o->service;
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

/*
 * Listen on every -H address (loopback by default), one port for all; a
 * missing default ::1 is only a warning.
 */
static int
listen_all(struct tk_server *srv, const struct serve_opts *o)
{
	struct tk_listen_why why;
	char where[TK_ADDRSTRLEN];
	int err = tk_server_listen_hosts(srv, o->hosts, o->nhosts, o->port, 0,
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
	tk_server_drain(st->server);
	if (st->opts->drain_ms != 0) {
		st->drain_timer = tk_timer_new(st->loop, on_drain_deadline, st);
		if (st->drain_timer == NULL)
			return -ENOMEM;
		tk_timer_start(st->drain_timer, st->opts->drain_ms, 0);
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

	for (size_t i = 0; i < tk_server_listener_count(srv); i++) {
		const struct tk_addr *a = tk_server_addr(srv, i);

		tk_addr_format(a, where, sizeof(where));
		cli_log("listening", "addr", where, "listening on %s", where);
		if (!tk_addr_is_loopback(a))
			all_loopback = false;
	}
	if (o->log.quiet)
		return;
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
	 * prompt: no deadline for the first word unless asked for (the idle
	 * timeout still applies).
	 */
	sopts->line_timeout_ms =
		strcmp(o->service, "welcome") == 0 && !o->line_timeout_set
			? 0
			: o->line_timeout_ms;
	sopts->conn.idle_timeout_ms = o->idle_ms;
	/* It bounds the kernel's unsent bytes too (TCP_NOTSENT_LOWAT). */
	sopts->conn.max_pending = (size_t)o->max_pending;
	sopts->on_event = on_event;
	sopts->event_arg = st;
}

int
cmd_serve(int argc, char **argv)
{
	struct serve_opts o;
	struct serve_state st = { .opts = &o };
	struct tk_server_opts sopts;
	struct tk_basic_opts basic = { 0 };
	struct tk_server_stats stats;
	struct tk_tls_ctx *tls = NULL;
	const struct tk_service *svc;
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	/* Certificates are read and checked before anything listens. */
	rc = tlsopt_server_ctx("serve", &o.tls, &tls);
	if (rc != 0)
		return rc;
	svc = tk_service_find(o.service);

	st.loop = tk_loop_new();
	if (st.loop == NULL) {
		rc = cli_fail("serve", "", -errno);
		tk_tls_ctx_free(tls);
		return rc;
	}
	/* Ctrl-C must stop a server however busy: the loop takes signals. */
	if ((rc = tk_loop_signal(st.loop, SIGINT, on_signal, &st)) < 0 ||
	    (rc = tk_loop_signal(st.loop, SIGTERM, on_signal, &st)) < 0) {
		rc = cli_fail("serve", "signals", rc);
		goto out_free_loop;
	}
	init_server_opts(&o, &st, &sopts);
	sopts.conn.tls = tls;
	sopts.conn.handshake_timeout_ms = o.handshake_ms;
	basic.allow_remote_shutdown = o.allow_remote_shutdown;
	st.server = tk_server_new(st.loop, &sopts, svc, &basic);
	if (st.server == NULL) {
		rc = cli_fail("serve", "", -errno);
		goto out_free_loop;
	}
	rc = listen_all(st.server, &o);
	if (rc != 0)
		goto out_free_server;
	if ((rc = tk_server_start(st.server)) < 0) {
		rc = cli_fail("serve", "", rc);
		goto out_free_server;
	}
	print_hints(&o, st.server);
	if (o.stats_ms != 0) {
		st.stats_timer = tk_timer_new(st.loop, on_stats, &st);
		if (st.stats_timer != NULL)
			tk_timer_start(st.stats_timer, o.stats_ms, o.stats_ms);
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
		st.signo == SIGINT    ? "SIGINT"
		: st.signo == SIGTERM ? "SIGTERM"
				      : "remote shutdown",
		(unsigned long long)stats.accepted, CLI_PLURAL(stats.accepted),
		(unsigned long long)st.open_at_stop,
		(unsigned long long)stats.bytes_in,
		(unsigned long long)stats.bytes_out);
	rc = 0;
out_free_server:
	tk_server_free(st.server);
out_free_loop:
	tk_timer_free(st.drain_timer);
	tk_timer_free(st.stats_timer);
	/*
	 * tk_loop_free() unblocks the signals the loop took, and one may be
	 * pending still: timeout(1) signals the process and then its group,
	 * so two come at once, and the second would kill us with 130 after a
	 * clean stop.  We are done with signals: ignoring them discards it.
	 */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	tk_loop_free(st.loop);
	tk_tls_ctx_free(tls);
	return rc;
}
