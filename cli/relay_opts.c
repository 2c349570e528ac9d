/* relay_opts.c: `tcpkit relay`'s help and command line. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "execlog.h"
#include "handoff.h"
#include "proxyopt.h"
#include "relay.h"
#include "reload.h"

#define DEFAULT_IDLE_MS	   (5 * 60 * 1000u)
#define DEFAULT_CONNECT_MS 10000u
#define DEFAULT_DRAIN_MS   10000u

const char cmd_relay_help[] =
	"usage: tcpkit relay [OPTIONS] LISTEN TARGET...\n"
	"       tcpkit relay [OPTIONS] udp://[HOST]:PORT udp://HOST:PORT\n"
	"\n"
	"Forward every client of LISTEN to a TARGET and back (socat's\n"
	"TCP-LISTEN,fork TCP:...), many at once on the server's workers.  Each\n"
	"side's half-close is carried to the other; a reset on one side resets\n"
	"the other.  Plain socket pairs (TCP, UNIX) move bytes with splice(2),\n"
	"never through user space; a TLS side copies through bounded buffers.\n"
	"\n"
	"LISTEN:  [HOST]:PORT      TCP; :PORT: every address; PORT alone:\n"
	"                          loopback, as serve; port 0: any free port\n"
	"         tls://[HOST]:PORT  TLS termination (the TLS options below)\n"
	"         unix:/PATH, unix:@NAME\n"
	"                          a UNIX stream socket (a stale file from a\n"
	"                          dead server is replaced, a live one is\n"
	"                          refused; removed on exit)\n"
	"TARGET:  HOST:PORT        TCP\n"
	"         tls://HOST:PORT  TLS origination, the certificate verified\n"
	"                          (system trust store, or --cacert)\n"
	"         unix:/PATH, unix:@NAME\n"
	"                          a UNIX stream socket\n"
	"         exec:PROG ARGS   run PROG for every client, the connection\n"
	"                          its stdin and stdout (socat's EXEC:;\n"
	"                          ARGS split as a shell's words, no shell)\n"
	"         sh:COMMAND       the same with /bin/sh -c COMMAND (SYSTEM:)\n"
	"A program's environment has TCPKIT_PEER_ADDR, TCPKIT_PEER_PORT,\n"
	"TCPKIT_LOCAL_ADDR and TCPKIT_LOCAL_PORT (and, with a tls:// LISTEN,\n"
	"TCPKIT_TLS_CLIENT_SUBJECT); its stderr is the relay's.  It is the only\n"
	"TARGET, runs on one loop (-w 1), and each child's end is logged:\n"
	"'PEER: pid N exit S after DURATION'.  On SIGINT/SIGTERM the programs\n"
	"still running get SIGTERM (SIGKILL 2s later) and are reaped.\n"
	"Several TARGETs are tried in order, the next on a refused, timed-out\n"
	"or failed connect; with --balance each client starts at the next one\n"
	"(round-robin).  A client none could take is closed and the reason\n"
	"logged.\n"
	"\n"
	"UDP (udp:// on both sides, one TARGET; mixing UDP and TCP is a usage\n"
	"error): each client address gets a flow, its own socket connected to\n"
	"the TARGET; the TARGET's replies go back to the client from the\n"
	"LISTEN socket, each datagram whole.  A flow ends after -i without a\n"
	"datagram either way (default 60s for UDP; 0: never), and each end is\n"
	"one line: 'flow udp://CLIENT ended (idle): N datagrams (B bytes) in,\n"
	"N datagrams (B bytes) out, DURATIONs' (in: client to TARGET).\n"
	"--max-conns bounds the flows (default 1024): a new client's\n"
	"datagrams past it are dropped, each drop said on stderr.  On\n"
	"SIGINT/SIGTERM every flow is logged ('stopped') and the relay exits 0.\n"
	"One loop (-w above 1 is refused); the TCP-only options (-x, --balance,\n"
	"--proxy, TLS, access rules) are usage errors with udp://.\n"
	"\n"
	"Options:\n"
	"      --balance       round-robin over the TARGETs\n"
	"  -w, --workers N     worker threads, each with its own loop and\n"
	"                      SO_REUSEPORT socket (default: online CPUs)\n"
	"      --max-conns N   clients relayed at once at most (default: the\n"
	"                      open-file limit less 64, over 6: each takes\n"
	"                      two sockets and two pipes); with a program,\n"
	"                      N children at once, a client over it waiting\n"
	"                      for one to end\n"
	"      --backlog N     listen queue length, 1-65535 (default 511)\n"
	"      --proxy URL     reach TCP and TLS TARGETs through a proxy:\n"
	"                      socks5://, socks5h:// (the proxy resolves),\n"
	"                      socks4a:// or http:// (CONNECT), with\n"
	"                      USER:PASSWORD@ if it asks; not for UNIX or\n"
	"                      program TARGETs\n"
	"      --connect-timeout D\n"
	"                      give up on a TARGET after D (default 10s)\n"
	"  -i, --idle-timeout D\n"
	"                      end a relay silent both ways this long (default\n"
	"                      5m; 0: never)\n"
	"      --drain-timeout D\n"
	"                      on SIGINT/SIGTERM: stop listening, let relays\n"
	"                      finish; after D close the rest (the target\n"
	"                      gets a reset; default 10s)\n"
	"      --fdname NAME   started by systemd with sockets (LISTEN_FDS):\n"
	"                      listen on the one named NAME (the .socket's\n"
	"                      FileDescriptorName=); without it, the first\n" HANDOFF_HELP
	"  -x, --hexdump FILE  write both directions of every relay to FILE\n"
	"                      in hex and ASCII as they pass ('>' the\n"
	"                      client's bytes to the target, '<' the\n"
	"                      target's back; the client, offset and time\n"
	"                      per chunk); - is stderr (text logs only).\n"
	"                      The bytes then go through user space: no\n"
	"                      splice(2); not with a program TARGET\n"
	"      --keepalive[=IDLE,INTVL,CNT]\n"
	"                      TCP keepalive on both sides (clients and\n"
	"                      targets; not UNIX sockets): probe after IDLE\n"
	"                      seconds of silence, every INTVL, end the relay\n"
	"                      after CNT unanswered; an empty or missing\n"
	"                      field keeps the system's value\n"
	"  -q, --quiet         do not log each relay\n"
	"      --log-format F  text (default), logfmt or json: one record per\n"
	"                      relay at its end (peer, target, bytes each way,\n"
	"                      duration, who closed first, reason); logfmt and\n"
	"                      json turn every line on stderr into a record\n" METRICSOPT_HELP
	"  -h, --help          show this help\n"
	"\n" ACLOPT_HELP
	"They need a TCP LISTEN: UNIX peers have no address to check.\n"
	"\n" PPOPT_HELP "      --send-proxy v1|v2\n"
	"                      send the target a PROXY header first, naming\n"
	"                      the client (the real one, with\n"
	"                      --proxy-protocol) and this relay's address;\n"
	"                      not to a tls:// TARGET (the header must come\n"
	"                      before TLS)\n"
	"\n"
	"TLS termination (a tls:// LISTEN; see docs/tls.md):\n"
	"      --cert FILE     certificate chain (PEM, leaf first); without it\n"
	"                      an ephemeral self-signed one, its fingerprint\n"
	"                      printed\n"
	"      --key FILE      its private key (default: in --cert)\n"
	"      --client-ca FILE\n"
	"                      ask clients for a certificate from these CAs\n"
	"      --client-auth optional|required\n"
	"                      with --client-ca (default required)\n"
	"      --alpn LIST     protocols accepted, preferred first\n"
	"      --handshake-timeout D\n"
	"                      a client's handshake must finish within D\n"
	"TLS origination (tls:// TARGETs):\n"
	"      --cacert FILE   trust these CAs (PEM) instead of the system's\n"
	"      --capath DIR    trust the CAs in DIR (c_rehash layout)\n"
	"      --servername NAME\n"
	"                      check the certificate for NAME, send it as SNI\n"
	"                      (default: the TARGET's HOST)\n"
	"      --pin sha256:HEX\n"
	"                      accept exactly this certificate or public key\n"
	"      --insecure      check nothing (warns)\n"
	"Both:\n"
	"      --tls-min 1.2|1.3\n"
	"                      oldest version accepted, on both sides\n"
	"                      (default 1.2)\n"
	"\n"
	"On start, 'listening on ADDR:PORT' is printed on stderr for every\n"
	"address.  Each relay's end is logged: 'relay PEER -> TARGET after\n"
	"DURATION: N bytes up, M bytes down, client|target closed first\n"
	"(REASON)', or why no TARGET could be reached.\n"
	"\n"
	"Memory: per relay, two connections and, spliced, two kernel pipes of\n"
	"64 KiB; with TLS or -x, at most 128 KiB of buffered output per\n"
	"direction.\n"
	"\n"
	"Signals: SIGINT and SIGTERM drain and stop (--drain-timeout).\n" RELOAD_HELP
	"For tls:// TARGETs, the --cacert file (or --capath) is read again\n"
	"too: relays from then on verify against it ('reload: CAs for\n"
	"tls:// targets: --cacert FILE').\n"
	"\n"
	"Exit codes: 0 stopped cleanly (SIGINT or SIGTERM), 1 cannot listen,\n"
	"64 usage, 66 a certificate, CA or access-list file is missing (or\n"
	"the exec: program is not in PATH), 68\n"
	"unknown LISTEN host, 73 the -x dump cannot be created, 74 it could\n"
	"not be written (reported once; every relay that could not be\n"
	"recorded was reset, the others went on).\n"
	"\n"
	"Examples:\n"
	"  tcpkit relay :8080 backend:80              forward a port\n"
	"  tcpkit relay 127.0.0.1:0 127.0.0.1:7007    any free port, loopback\n"
	"  tcpkit relay tls://:8443 127.0.0.1:8080    TLS termination\n"
	"  tcpkit relay :8443 tls://example.org:443   TLS origination\n"
	"  tcpkit relay :5432 unix:/run/app.sock      TCP to a UNIX socket\n"
	"  tcpkit relay --balance :80 10.0.0.1:80 10.0.0.2:80\n"
	"  tcpkit relay -x - --allow 10.0.0.0/8 :8080 127.0.0.1:80\n"
	"  tcpkit relay :9000 sh:'tr a-z A-Z'         a program per client\n"
	"  tcpkit relay --proxy socks5h://127.0.0.1:9050 :8080 example.org:80\n";

enum {
	OPT_MAX_CONNS = 256,
	OPT_BACKLOG,
	OPT_DRAIN,
	OPT_LOG_FORMAT,
	OPT_BALANCE,
	OPT_CONNECT_TIMEOUT,
	OPT_HANDSHAKE,
	OPT_PROXY,
};

/* Which of the two TLS sides an option belongs to (--tls-min: both). */
static int
take_tls(struct relay_opts *o, int ch, const char *arg)
{
	int rc = 0;

	switch (ch) {
	case TLSOPT_CACERT:
	case TLSOPT_CAPATH:
	case TLSOPT_SERVERNAME:
	case TLSOPT_PIN:
	case TLSOPT_INSECURE:
		return tlsopt_take("relay", &o->cli_tls, ch, arg);
	case TLSOPT_MIN: {
		/* Either side may use it: neither needs it. */
		struct tlsopt c = o->cli_tls, s = o->srv_tls;

		rc = tlsopt_take("relay", &o->cli_tls, ch, arg);
		if (rc == 0)
			rc = tlsopt_take("relay", &o->srv_tls, ch, arg);
		o->cli_tls.used = c.used;
		o->cli_tls.used_name = c.used_name;
		o->srv_tls.used = s.used;
		o->srv_tls.used_name = s.used_name;
		return rc;
	}
	default:
		return tlsopt_take("relay", &o->srv_tls, ch, arg);
	}
}

static int
parse_listen(struct relay_opts *o, const char *text)
{
	char why[160];
	uint64_t port;
	char *end;

	o->listen_text = text;
	if (tk_endpoint_parse(text,
			      TK_EP_PASSIVE | TK_EP_ALLOW_TLS |
				      TK_EP_ALLOW_UNIX | TK_EP_ALLOW_UDP,
			      &o->listen, why, sizeof(why)) != 0)
		return cli_usage("relay", "LISTEN '%s': %s", text, why);
	if (o->listen.kind == TK_EP_UNIX)
		return 0;
	port = strtoull(o->listen.port, &end, 10);
	if (o->listen.port[0] == '\0' || *end != '\0' || port > 65535)
		return cli_usage("relay",
				 "LISTEN '%s': the port must be a number "
				 "(0-65535)",
				 text);
	o->listen_port = (uint16_t)port;
	o->srv_tls.tls = o->listen.kind == TK_EP_TLS;
	return 0;
}

static int
parse_target(struct relay_opts *o, const char *text)
{
	struct tk_endpoint *ep = &o->targets[o->ntargets];
	char why[160];

	if (o->ntargets == RELAY_MAX_TARGETS)
		return cli_usage("relay", "at most %d TARGETs",
				 RELAY_MAX_TARGETS);
	if (tk_endpoint_parse(text,
			      TK_EP_ALLOW_TLS | TK_EP_ALLOW_UNIX |
				      TK_EP_ALLOW_EXEC | TK_EP_ALLOW_UDP,
			      ep, why, sizeof(why)) != 0)
		return cli_usage("relay", "TARGET '%s': %s", text, why);
	if (ep->kind == TK_EP_EXEC || ep->kind == TK_EP_SH)
		o->exec = true;
	if (ep->kind == TK_EP_TLS)
		o->cli_tls.tls = true;
	o->target_text[o->ntargets++] = text;
	return 0;
}

static const char *
acl_name(int ch)
{
	return ch == ACLOPT_ALLOW	 ? "--allow"
	       : ch == ACLOPT_DENY	 ? "--deny"
	       : ch == ACLOPT_ALLOW_FILE ? "--allow-file"
					 : "--deny-file";
}

static unsigned
online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

static int
parse_options(int argc, char **argv, struct relay_opts *o)
{
	static const struct option longopts[] = {
		{ "balance", no_argument, NULL, OPT_BALANCE },
		SDSOCK_LONGOPTS,
		{ "workers", required_argument, NULL, 'w' },
		{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
		{ "backlog", required_argument, NULL, OPT_BACKLOG },
		{ "connect-timeout", required_argument, NULL,
		  OPT_CONNECT_TIMEOUT },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "drain-timeout", required_argument, NULL, OPT_DRAIN },
		{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
		{ "handshake-timeout", required_argument, NULL, OPT_HANDSHAKE },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "cacert", required_argument, NULL, TLSOPT_CACERT },
		{ "capath", required_argument, NULL, TLSOPT_CAPATH },
		{ "servername", required_argument, NULL, TLSOPT_SERVERNAME },
		{ "pin", required_argument, NULL, TLSOPT_PIN },
		{ "insecure", no_argument, NULL, TLSOPT_INSECURE },
		{ "cert", required_argument, NULL, TLSOPT_CERT },
		{ "key", required_argument, NULL, TLSOPT_KEY },
		{ "tls-min", required_argument, NULL, TLSOPT_MIN },
		{ "alpn", required_argument, NULL, TLSOPT_ALPN },
		{ "client-ca", required_argument, NULL, TLSOPT_CLIENT_CA },
		{ "client-auth", required_argument, NULL, TLSOPT_CLIENT_AUTH },
		{ "hexdump", required_argument, NULL, 'x' },
		{ "proxy", required_argument, NULL, OPT_PROXY },
		ACLOPT_LONGOPTS,
		PPOPT_LONGOPTS,
		PPOPT_SEND_LONGOPT,
		CONNOPT_LONGOPTS,
		HANDOFF_LONGOPT,
		METRICSOPT_LONGOPT,
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int ch, f, rc;

	opterr = 0;
	while ((ch = cli_getopt(argc, argv, ":w:i:x:qh", longopts)) != -1) {
		switch (ch) {
		case OPT_BALANCE:
			o->balance = true;
			break;
		case 'w':
			if (cli_parse_uint("relay", "-w/--workers", optarg, 1,
					   256, &v) < 0)
				return CLI_EXIT_USAGE;
			o->workers = (unsigned)v;
			o->workers_set = true;
			break;
		case OPT_MAX_CONNS:
			if (cli_parse_uint("relay", "--max-conns", optarg, 1,
					   10000000, &o->max_conns) < 0)
				return CLI_EXIT_USAGE;
			break;
		case OPT_BACKLOG:
			if (cli_parse_uint("relay", "--backlog", optarg, 1,
					   65535, &v) < 0)
				return CLI_EXIT_USAGE;
			o->backlog = (int)v;
			break;
		case OPT_CONNECT_TIMEOUT:
			if (cli_parse_duration("relay", "--connect-timeout",
					       optarg, false,
					       &o->connect_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'i':
			if (cli_parse_duration("relay", "-i/--idle-timeout",
					       optarg, true, &o->idle_ms) < 0)
				return CLI_EXIT_USAGE;
			o->idle_set = true;
			break;
		case HANDOFF_OPT:
			if (handoff_check_path("relay", optarg) != 0)
				return CLI_EXIT_USAGE;
			o->handoff = optarg;
			break;
		case OPT_DRAIN:
			if (cli_parse_duration("relay", "--drain-timeout",
					       optarg, true, &o->drain_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case SDSOCK_FDNAME:
			o->fdname = optarg;
			break;
		case OPT_HANDSHAKE:
			if (cli_parse_duration("relay", "--handshake-timeout",
					       optarg, false, &v) < 0)
				return CLI_EXIT_USAGE;
			o->srv_tls.used = true;
			o->srv_tls.used_name = "--handshake-timeout";
			o->handshake_ms = v;
			break;
		case OPT_LOG_FORMAT:
			f = serve_log_parse_format(optarg);
			if (f < 0)
				return cli_usage("relay",
						 "--log-format is text, logfmt "
						 "or json, not '%s'",
						 optarg);
			o->log.format = (enum log_format)f;
			cli_set_log_format((enum cli_log_format)f);
			break;
		case 'x':
			o->hexdump = optarg;
			break;
		case OPT_PROXY:
			tk_proxy_clear(&o->proxy);
			if ((rc = proxyopt_parse("relay", "--proxy", optarg,
						 &o->proxy)) != 0)
				return rc;
			proxyopt_hide(optarg); /* ps shows no password */
			o->has_proxy = true;
			break;
		case CONNOPT_KEEPALIVE:
			if (connopt_keepalive("relay", optarg, &o->keepalive) !=
			    0)
				return CLI_EXIT_USAGE;
			break;
		case 'q':
			o->log.quiet = true;
			break;
		case METRICSOPT_METRICS:
			if ((rc = metricsopt_take("relay", &o->metrics,
						  optarg)) != 0)
				return rc;
			break;
		case 'h':
			cli_help("relay");
			return -1;
		default:
			if (ch >= PPOPT_ON && ch <= PPOPT_SEND) {
				if ((rc = ppopt_take("relay", &o->pp, ch,
						     optarg)) != 0)
					return rc;
				break;
			}
			if (ch >= ACLOPT_ALLOW && ch <= ACLOPT_DENY_FILE) {
				if ((rc = aclopt_take("relay", &o->acl, ch,
						      optarg)) != 0)
					return rc;
				if (o->acl_name == NULL)
					o->acl_name = acl_name(ch);
				break;
			}
			if (ch >= TLSOPT_TLS && ch <= TLSOPT_CLIENT_AUTH &&
			    ch != TLSOPT_TLS) {
				if ((rc = take_tls(o, ch, optarg)) != 0)
					return rc;
				break;
			}
			return cli_bad_option("relay", argv, ch);
		}
	}
	return 0;
}

/* A proxy tunnels TCP: a TLS TARGET rides it too, a UNIX one cannot. */
static int
check_proxy(const struct relay_opts *o)
{
	if (!o->has_proxy)
		return 0;
	for (size_t i = 0; i < o->ntargets; i++)
		if (o->targets[i].kind == TK_EP_UNIX)
			return cli_usage("relay",
					 "--proxy is for TCP and TLS TARGETs, "
					 "not UNIX sockets ('%s')",
					 o->target_text[i]);
	return 0;
}

/*
 * A program TARGET: alone, on one loop (the children are reaped there),
 * and with the socket handed to the child, no -x to see its bytes.
 */
static int
check_exec(struct relay_opts *o)
{
	const struct tk_endpoint *ep = &o->targets[0];
	char why[160];
	int rc;

	for (size_t i = 0; i < o->ntargets; i++)
		if (o->targets[i].kind != TK_EP_EXEC &&
		    o->targets[i].kind != TK_EP_SH)
			return cli_usage("relay",
					 "an exec: or sh: TARGET is the only "
					 "TARGET ('%s' too)",
					 o->target_text[i]);
	if (o->ntargets > 1)
		return cli_usage("relay",
				 "an exec: or sh: TARGET is the only TARGET "
				 "(one program per client)");
	if (o->has_proxy)
		return cli_usage("relay", "--proxy is for TCP and TLS "
					  "TARGETs, not a program");
	if (o->pp.send != 0)
		return cli_usage("relay", "--send-proxy is for TCP and UNIX "
					  "TARGETs, not a program (it "
					  "has TCPKIT_PEER_ADDR)");
	if (o->hexdump != NULL)
		return cli_usage("relay",
				 "-x and an exec: or sh: TARGET exclude each "
				 "other (the program has the socket: its "
				 "bytes never pass through tcpkit)");
	if (o->workers_set && o->workers > 1)
		return cli_usage("relay",
				 "-w/--workers %u: an exec: or sh: TARGET "
				 "runs on one loop (-w 1)",
				 o->workers);
	o->workers = 1;
	if (ep->kind == TK_EP_SH) {
		o->argv[0] = "/bin/sh";
		o->argv[1] = "-c";
		o->argv[2] = ep->command;
		o->argv[3] = NULL;
		return 0;
	}
	rc = tk_exec_split(ep->command, o->argbuf, sizeof(o->argbuf),
			   (char **)o->argv, RELAY_MAX_ARGS, why, sizeof(why));
	if (rc == -E2BIG)
		return cli_usage("relay", "TARGET '%s': too long",
				 o->target_text[0]);
	if (rc < 0)
		return cli_usage("relay", "TARGET '%s': %s", o->target_text[0],
				 why);
	if (!execlog_in_path(o->argv[0])) {
		cli_error("relay", o->target_text[0],
			  "%s: program not found in PATH", o->argv[0]);
		return CLI_EXIT_NOINPUT;
	}
	return 0;
}

/* udp:// on both sides or on none; and what datagrams cannot take. */
static int
check_udp(struct relay_opts *o)
{
	bool front = o->listen.kind == TK_EP_UDP;
	const char *bad = NULL;

	for (size_t i = 0; i < o->ntargets; i++)
		if ((o->targets[i].kind == TK_EP_UDP) != front)
			return cli_usage("relay",
					 "'%s' and '%s': UDP relays to UDP "
					 "only (and TCP to TCP)",
					 o->listen_text, o->target_text[i]);
	o->udp = front;
	if (!front)
		return 0;
	if (o->ntargets > 1)
		bad = "more than one TARGET";
	else if (o->balance)
		bad = "--balance";
	else if (o->workers_set && o->workers > 1)
		bad = "-w/--workers above 1";
	else if (o->hexdump != NULL)
		bad = "-x/--hexdump";
	else if (o->has_proxy)
		bad = "--proxy";
	else if (o->acl_name != NULL)
		bad = o->acl_name;
	else if (o->pp.on || o->pp.send != 0)
		bad = o->pp.on ? "--proxy-protocol" : "--send-proxy";
	else if (o->srv_tls.used || o->cli_tls.used)
		bad = o->srv_tls.used ? o->srv_tls.used_name
				      : o->cli_tls.used_name;
	else if (o->metrics.set)
		bad = "--metrics";
	if (bad != NULL)
		return cli_usage("relay", "udp://: %s is for TCP", bad);
	if (!o->idle_set)
		o->idle_ms = RELAY_UDP_IDLE_MS;
	return 0;
}

int
relay_parse_args(int argc, char **argv, struct relay_opts *o)
{
	int rc;

	memset(o, 0, sizeof(*o));
	o->backlog = TK_DEFAULT_BACKLOG;
	o->workers = online_cpus();
	o->connect_ms = DEFAULT_CONNECT_MS;
	o->idle_ms = DEFAULT_IDLE_MS;
	o->drain_ms = DEFAULT_DRAIN_MS;
	o->log.format = LOG_TEXT;
	o->log.service = "relay";
	/* The format first: a usage error is then a record too. */
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
	if ((rc = parse_options(argc, argv, o)) != 0)
		return rc;
	if (optind >= argc)
		return cli_usage("relay", "LISTEN and TARGET are missing");
	if ((rc = parse_listen(o, argv[optind++])) != 0)
		return rc;
	if (optind >= argc)
		return cli_usage("relay", "TARGET is missing");
	while (optind < argc)
		if ((rc = parse_target(o, argv[optind++])) != 0)
			return rc;
	if ((rc = check_udp(o)) != 0 ||
	    (rc = ppopt_check("relay", &o->pp)) != 0)
		return rc;
	/* The PROXY header has the handshake's deadline, TLS or not. */
	if (o->pp.on && !o->srv_tls.tls && o->srv_tls.used_name != NULL &&
	    strcmp(o->srv_tls.used_name, "--handshake-timeout") == 0)
		o->srv_tls.used = false;
	if (o->handoff != NULL && (o->udp || o->listen.kind == TK_EP_UNIX))
		return cli_usage("relay", "--handoff hands over TCP listeners "
					  "only (not udp://, not unix:)");
	/* Options of a side that is not TLS are a mistake: say which. */
	if (!o->srv_tls.tls && o->srv_tls.used)
		return cli_usage("relay", "%s needs a tls:// LISTEN",
				 o->srv_tls.used_name);
	if (!o->cli_tls.tls && o->cli_tls.used)
		return cli_usage("relay", "%s needs a tls:// TARGET",
				 o->cli_tls.used_name);
	/* It would go after the handshake, inside TLS: no peer reads it. */
	if (o->pp.send != 0 && o->cli_tls.tls)
		return cli_usage("relay",
				 "--send-proxy with a tls:// TARGET is "
				 "not supported (the header must come "
				 "before TLS)");
	/* Every line on stderr is a record then: a dump there is not. */
	if (o->hexdump != NULL && strcmp(o->hexdump, "-") == 0 &&
	    o->log.format != LOG_TEXT)
		return cli_usage("relay",
				 "-x - would mix the dump into the %s records "
				 "on stderr: give -x a FILE",
				 o->log.format == LOG_JSON ? "json" : "logfmt");
	/* A UNIX peer has no address for a rule to match. */
	if (o->listen.kind == TK_EP_UNIX && o->acl_name != NULL)
		return cli_usage("relay",
				 "%s needs a TCP LISTEN: UNIX peers have no "
				 "address to check",
				 o->acl_name);
	if (o->exec && o->balance)
		return cli_usage("relay", "--balance needs TCP, TLS or UNIX "
					  "TARGETs, not a program");
	if (o->exec)
		return check_exec(o);
	if (o->balance && o->ntargets < 2)
		return cli_usage("relay",
				 "--balance needs two TARGETs or more");
	return check_proxy(o);
}
