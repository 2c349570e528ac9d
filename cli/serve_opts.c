/* serve_opts.c: `tcpkit serve`'s help, its services and their ports, and
 * its command line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "handoff.h"
#include "metrics.h"
#include "reload.h"
#include "serve.h"

#define DEFAULT_IDLE_MS		(5 * 60 * 1000u)
#define DEFAULT_LINE_TIMEOUT_MS 30000u
#define DEFAULT_DRAIN_MS	10000u

static unsigned
online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

const char cmd_serve_help[] =
	"usage: tcpkit serve [SERVICE] [-H HOST]... [-p PORT] [OPTIONS]\n"
	"       tcpkit serve [SERVICE] -H unix:/PATH [--mode OCTAL] [OPTIONS]\n"
	"       tcpkit serve echo|discard -u [-H HOST]... [-p PORT] [-w N]\n"
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
	"  broker    every client's bytes to every other client, not back to\n"
	"            the sender (like ncat --broker; port 7010)\n"
	"  chat      lines from each client to the others as \"<user1> ...\",\n"
	"            with join and leave lines and /nick NAME (like ncat\n"
	"            --chat; port 7011)\n"
	"  socks5    a SOCKS5 proxy (RFC 1928 CONNECT; RFC 1929 username and\n"
	"            password with --users; port 1080)\n"
	"\n"
	"socks5: without --users, no authentication, allowed only when every\n"
	"-H is a loopback address (the default); any other address without\n"
	"--users is a usage error.  The handshake must be done within\n"
	"--handshake-timeout (default 10s); then the target is connected to\n"
	"and the two are relayed (splice(2)).  One line per tunnel: client,\n"
	"target, bytes each way, duration, who closed first.  Every target is\n"
	"allowed unless --allow-target/--deny-target say otherwise: a proxy\n"
	"others can reach, with no target rules, lets them reach whatever this\n"
	"machine can (its loopback and internal networks included).\n"
	"      --users FILE    USER:PASSWORD lines ('#' comments): clients must\n"
	"                      authenticate (RFC 1929)\n"
	"      --allow-target CIDR\n"
	"                      connect only to targets in CIDR; repeatable\n"
	"      --deny-target CIDR\n"
	"                      never connect to targets in CIDR; repeatable;\n"
	"                      a deny wins.  Checked on the addresses a name\n"
	"                      resolves to; refused: reply 2 (not allowed)\n"
	"\n"
	"broker and chat run on one worker (-w 1): every client must reach\n"
	"every other, so they share one loop.\n"
	"\n"
	"-u, --udp serves echo (RFC 862: every datagram back to its sender,\n"
	"byte for byte) or discard (RFC 863) over UDP instead: each worker\n"
	"has its own SO_REUSEPORT socket and receives and answers in\n"
	"batches (recvmmsg, sendmmsg).  Datagrams of any size up to 65,507\n"
	"bytes (IPv6: 65,527) come back whole.  -H, -p, -w, -q,\n"
	"--log-format and --stats-interval apply; the connection, line and\n"
	"TLS options do not.  It prints 'listening on udp://ADDR:PORT' and,\n"
	"at exit, the datagrams and bytes each way.\n"
	"\n"
	"Options:\n"
	"  -H, --host HOST     address or name to listen on; repeatable.\n"
	"                      Default: loopback only, 127.0.0.1 and ::1.\n"
	"                      Use 0.0.0.0 (IPv4) or :: (IPv4 and IPv6, where\n"
	"                      the system allows) for every interface.\n"
	"                      -H unix:/PATH listens on a UNIX stream socket\n"
	"                      (unix:@NAME: an abstract one, no file), alone\n"
	"                      or with TCP addresses; a stale socket file (its\n"
	"                      server gone) is replaced, a live one or a path\n"
	"                      that is no socket is refused and left alone;\n"
	"                      the file is removed at exit if still ours.\n"
	"                      Workers share the one socket.\n"
	"  -p, --port PORT     port (default: the service's); 0 = any free port\n"
	"      --mode OCTAL    the socket file's permissions (0660, 600): set\n"
	"                      before anyone can connect (default: the umask's)\n"
	"      --owner USER    the socket file's owner (name or uid; root only)\n"
	"      --group GROUP   its group (name or gid; one of yours, or root)\n"
	"      --backlog N     listen queue length, 1-65535 (default 511)\n"
	"  -w, --workers N     worker threads, each with its own loop and\n"
	"                      SO_REUSEPORT socket (default: online CPUs)\n"
	"                      (in connect, send and get, -w is\n"
	"                      --connect-timeout; in bench, --warmup)\n"
	"      --allow-remote-shutdown\n"
	"                      basic: honour \"shutdown\" from any client, not\n"
	"                      only from this machine's loopback\n"
	"  -u, --udp           serve echo or discard over UDP (see above)\n"
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
	"                      a TLS (or socks5) handshake must finish within\n"
	"                      D (default 10s); failures are logged with\n"
	"                      their reason\n"
	"\n" ACLOPT_HELP "\n" PPOPT_HELP "\n"
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
	"                      welcome's first word and for chat (humans at a\n"
	"                      prompt)\n"
	"      --max-line BYTES\n"
	"                      line, chat: a longer line gets \"error: line\n"
	"                      too long\" and a close (default 8192)\n"
	"      --max-pending BYTES\n"
	"                      output waiting for a slow reader, per connection;\n"
	"                      above it the server stops reading that client,\n"
	"                      and the kernel holds no more than this of its\n"
	"                      unsent output either (TCP_NOTSENT_LOWAT), so\n"
	"                      memory stays bounded in both (default 262144).\n"
	"                      broker, chat: a client with more than this\n"
	"                      waiting for it holds the senders until it has\n"
	"                      caught up; one still behind for the\n"
	"                      slow timeout is cut (reset; logged as a slow\n"
	"                      reader), so it holds neither memory nor the\n"
	"                      others for longer\n"
	"      --slow-timeout D\n"
	"                      broker, chat: how long a client may stay behind\n"
	"                      before it is cut (default 2s); longer spares a\n"
	"                      reader on a slow link, shorter holds the\n"
	"                      senders less\n"
	"      --keepalive[=IDLE,INTVL,CNT]\n"
	"                      TCP keepalive on every connection: probe\n"
	"                      after IDLE seconds of silence, every INTVL,\n"
	"                      close after CNT unanswered; an empty or\n"
	"                      missing field keeps the system's value\n"
	"      --drain-timeout D\n"
	"                      on SIGINT/SIGTERM: stop listening, let exchanges\n"
	"                      in flight finish and end idle sessions with FIN;\n"
	"                      after D close the rest (default 10s); a second\n"
	"                      signal stops at once\n"
	"      --fdname NAME   started by systemd with sockets (LISTEN_FDS):\n"
	"                      serve only those named NAME (the .socket's\n"
	"                      FileDescriptorName=); without it, every one\n" HANDOFF_HELP
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
	"                      errors by kind) every D, and always at exit\n" METRICSOPT_HELP
	"\n"
	"On start, 'listening on ADDR:PORT' (or 'listening on unix:/PATH')\n"
	"is printed on stderr for every address, with the real port.  The\n"
	"process never dies of SIGPIPE; a reset, half-close or partial write\n"
	"affects only its own connection.\n"
	"\n"
	"Signals: SIGINT and SIGTERM drain and stop (--drain-timeout).\n" RELOAD_HELP
	"\n"
	"Exit codes: 0 stopped cleanly (by SIGINT or SIGTERM, however many\n"
	"come), 1 cannot listen (port in use, permission, address not\n"
	"available; a UNIX socket in use, a path that is no socket, a\n"
	"--owner or --group refused), 64 usage (also a bad --allow/--deny\n"
	"rule, or line of a rules file), 66 a --cert, --key, --client-ca,\n"
	"--allow-file or --deny-file file is missing, 68 unknown host.\n"
	"\n"
	"Examples:\n"
	"  tcpkit serve                       echo on 127.0.0.1 and ::1, 7007\n"
	"  tcpkit serve welcome -H 0.0.0.0    tutorial 1's server, all IPv4\n"
	"  tcpkit serve basic -p 0            tutorial 2's server, any port\n"
	"  tcpkit serve line --max-line 1024 --log-format json\n"
	"  tcpkit serve --tls -p 0            echo over TLS, self-signed\n"
	"  tcpkit serve echo -u -p 0          UDP echo, any port\n"
	"  tcpkit serve -H unix:/tmp/echo.sock --mode 0660\n"
	"  tcpkit serve socks5 -p 0 --deny-target 10.0.0.0/8\n"
	"  tcpkit serve --tls --cert srv.pem --key srv.key --client-ca ca.pem\n";

struct service_info {
	const char *name;
	uint16_t port;
};

static const struct service_info services[] = {
	{ "echo", 7007 },   { "discard", 7009 }, { "welcome", 9999 },
	{ "basic", 60000 }, { "line", 7008 },	 { "broker", 7010 },
	{ "chat", 7011 },   { "socks5", 1080 },
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
	OPT_SLOW_TIMEOUT,
};

/*
 * Take the -H unix:PATH and unix:@NAME out of hosts into unix_addrs, and
 * check --mode, --owner and --group against them.  0 or a usage code.
 */
static int
take_unix_hosts(struct serve_opts *o)
{
	struct tk_endpoint ep;
	char why[256];
	size_t n = 0;
	bool abstract = false;
	int rc;

	for (size_t i = 0; i < o->nhosts; i++) {
		if (strncmp(o->hosts[i], "unix:", 5) != 0) {
			o->hosts[n++] = o->hosts[i];
			continue;
		}
		if (tk_endpoint_parse(o->hosts[i],
				      TK_EP_PASSIVE | TK_EP_ALLOW_UNIX, &ep,
				      why, sizeof(why)) < 0)
			return cli_usage("serve", "-H %s: %s", o->hosts[i],
					 why);
		if (tk_addr_from_unix(ep.path, ep.path_len, ep.abstract,
				      &o->unix_addrs[o->nunix]) < 0)
			return cli_usage("serve", "-H %s: not a UNIX address",
					 o->hosts[i]);
		o->nunix++;
		abstract |= ep.abstract;
	}
	o->nhosts = n;
	if ((rc = unixopt_check("serve", &o->unix, o->nunix, abstract,
				"give -H unix:/PATH")) != 0)
		return rc;
	/* A UNIX peer has no address for a rule to match. */
	if (o->acl.acl != NULL && o->nunix > 0 && o->nhosts == 0)
		return cli_usage("serve",
				 "--allow/--deny need a TCP address: UNIX "
				 "peers have no address to check");
	if (o->port_set && o->nunix > 0 && o->nhosts == 0)
		return cli_usage("serve",
				 "-p/--port is for TCP: a UNIX socket has no "
				 "port");
	return 0;
}

/* -u: the services and options that have a meaning for datagrams. */
static int
check_udp(const struct serve_opts *o)
{
	if (strcmp(o->service, "echo") != 0 &&
	    strcmp(o->service, "discard") != 0)
		return cli_usage("serve",
				 "-u/--udp serves echo or discard, not '%s'",
				 o->service);
	if (o->tls.used || o->tls.tls)
		return cli_usage("serve", "-u/--udp: no TLS over UDP (%s)",
				 o->tls.used_name != NULL ? o->tls.used_name
							  : "--tls");
	if (o->nunix > 0)
		return cli_usage("serve",
				 "-u/--udp: -H unix: is a stream socket; UDP "
				 "takes IP addresses");
	if (o->acl.acl != NULL)
		return cli_usage("serve", "-u/--udp: --allow/--deny are for "
					  "TCP clients, checked at accept");
	if (o->pp.on)
		return cli_usage("serve", "-u/--udp: --proxy-protocol is for "
					  "TCP connections");
	if (o->keepalive.on)
		return cli_usage(
			"serve",
			"-u/--udp: --keepalive is for TCP connections");
	if (o->metrics.set)
		return cli_usage("serve",
				 "-u/--udp: --metrics counts TCP connections");
	return 0;
}

int
serve_parse_args(int argc, char **argv, struct serve_opts *o)
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
		{ "slow-timeout", required_argument, NULL, OPT_SLOW_TIMEOUT },
		UNIXOPT_LONGOPTS,
		SDSOCK_LONGOPTS,
		{ "allow-remote-shutdown", no_argument, NULL, 'R' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "udp", no_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		TLSOPT_SERVER_LONGOPTS,
		ACLOPT_LONGOPTS,
		PPOPT_LONGOPTS,
		CONNOPT_LONGOPTS,
		HANDOFF_LONGOPT,
		METRICSOPT_LONGOPT,
		{ "users", required_argument, NULL, SOCKS5OPT_USERS },
		{ "allow-target", required_argument, NULL,
		  SOCKS5OPT_ALLOW_TARGET },
		{ "deny-target", required_argument, NULL,
		  SOCKS5OPT_DENY_TARGET },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int ch, rc;

	memset(o, 0, sizeof(*o));
	unixopt_init(&o->unix);
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
	while ((ch = cli_getopt(argc, argv, ":H:p:i:w:quh", longopts)) != -1) {
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
			o->workers_set = true;
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
		case SDSOCK_FDNAME:
			o->fdname = optarg;
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
		case CONNOPT_KEEPALIVE:
			if (connopt_keepalive("serve", optarg, &o->keepalive) !=
			    0)
				return CLI_EXIT_USAGE;
			break;
		case OPT_SLOW_TIMEOUT:
			if (cli_parse_duration("serve", "--slow-timeout",
					       optarg, false, &o->slow_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case UNIXOPT_MODE:
		case UNIXOPT_OWNER:
		case UNIXOPT_GROUP:
			if ((rc = unixopt_take("serve", &o->unix, ch,
					       optarg)) != 0)
				return rc;
			break;
		case 'R':
			o->allow_remote_shutdown = true;
			break;
		case 'q':
			o->log.quiet = true;
			break;
		case 'u':
			o->udp = true;
			break;
		case 'h':
			cli_help("serve");
			return -1;
		case HANDOFF_OPT:
			if (handoff_check_path("serve", optarg) != 0)
				return CLI_EXIT_USAGE;
			o->handoff = optarg;
			break;
		case SOCKS5OPT_USERS:
		case SOCKS5OPT_ALLOW_TARGET:
		case SOCKS5OPT_DENY_TARGET:
			if ((rc = socks5opt_take(&o->socks, ch, optarg)) != 0)
				return rc;
			break;
		case METRICSOPT_METRICS:
			if ((rc = metricsopt_take("serve", &o->metrics,
						  optarg)) != 0)
				return rc;
			break;
		default:
			if (ch == PPOPT_ON || ch == PPOPT_FROM) {
				rc = ppopt_take("serve", &o->pp, ch, optarg);
				if (rc != 0)
					return rc;
				break;
			}
			if (ch >= ACLOPT_ALLOW && ch <= ACLOPT_DENY_FILE) {
				rc = aclopt_take("serve", &o->acl, ch, optarg);
				if (rc != 0)
					return rc;
				break;
			}
			if (ch >= TLSOPT_TLS && ch <= TLSOPT_CLIENT_AUTH) {
				rc = tlsopt_take("serve", &o->tls, ch, optarg);
				if (rc != 0)
					return rc;
				break;
			}
			return cli_bad_option("serve", argv, ch);
		}
	}
	if ((rc = take_unix_hosts(o)) != 0)
		return rc;
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
				 "welcome, basic, line, broker, chat, socks5)",
				 o->service);
	if (o->allow_remote_shutdown && strcmp(o->service, "basic") != 0)
		return cli_usage("serve",
				 "--allow-remote-shutdown applies to the basic "
				 "service only");
	if (strcmp(o->service, "broker") == 0 ||
	    strcmp(o->service, "chat") == 0) {
		if (o->workers_set && o->workers > 1)
			return cli_usage("serve",
					 "%s runs on one worker (every client "
					 "reaches every other): -w 1",
					 o->service);
		o->workers = 1;
	} else if (o->slow_ms != 0) {
		return cli_usage(
			"serve",
			"--slow-timeout applies to the broker and chat "
			"services only");
	}
	if (o->udp && (rc = check_udp(o)) != 0)
		return rc;
	if (o->handoff != NULL && (o->udp || o->nunix > 0))
		return cli_usage("serve", "--handoff hands over TCP listeners "
					  "only (not -u, not unix:)");
	if ((rc = socks5opt_check(o)) != 0 ||
	    (rc = ppopt_check("serve", &o->pp)) != 0)
		return rc;
	/* socks5's own handshake has the deadline, TLS or not; so has the
	 * PROXY header. */
	if ((strcmp(o->service, "socks5") == 0 || o->pp.on) && !o->tls.tls &&
	    o->tls.used_name != NULL &&
	    strcmp(o->tls.used_name, "--handshake-timeout") == 0)
		o->tls.used = false;
	if (!o->port_set)
		o->port = find_service(o->service)->port;
	o->log.service = o->service;
	return 0;
}
