/* listen_opts.c: `tcpkit listen`'s help and command line. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "execlog.h"
#include "listen.h"
#include "reload.h"

const char cmd_listen_help[] =
	"usage: tcpkit listen [OPTIONS] [HOST] PORT\n"
	"       tcpkit listen [OPTIONS] [HOST]:PORT | tls://[HOST]:PORT\n"
	"       tcpkit listen [OPTIONS] unix:/PATH | unix:@NAME\n"
	"       tcpkit listen -u [OPTIONS] [HOST] PORT | udp://[HOST]:PORT\n"
	"\n"
	"Wait for a TCP connection on PORT (0: any free port) and copy it to\n"
	"stdout and stdin to it, byte for byte, with the half-close rules of\n"
	"`tcpkit connect`; exit when both directions are done (nc -l).  HOST\n"
	"defaults to loopback (127.0.0.1 and ::1), as for serve: give :PORT\n"
	"(every address), 0.0.0.0 or :: to take connections from other\n"
	"machines.  'listening on\n"
	"ADDR:PORT' is printed on stderr, with the real port.  A second client\n"
	"is not accepted: the listening socket closes with the first.\n"
	"tls://[HOST]:PORT is the same as --tls.\n"
	"\n"
	"unix:/PATH listens on a UNIX stream socket instead (nc -lU PATH),\n"
	"unix:@NAME on an abstract one (no file); 'listening on unix:/PATH'.\n"
	"A socket file left by a dead server is replaced; a live server's is\n"
	"refused ('in use'), and a path that is no socket is never touched\n"
	"('not a socket'); exit 1 for both.  The file is removed on exit.\n"
	"The options -4, -6, --allow and --deny are for TCP only (a UNIX peer\n"
	"has no address).\n"
	"\n"
	"UDP (-u, or udp://[HOST]:PORT; nc -u -l): every datagram received,\n"
	"from any sender, is written to stdout as it came (binary, no\n"
	"separator; -v names its sender on stderr, 'received N bytes from\n"
	"udp://ADDR:PORT').  stdin is read only once a datagram has come:\n"
	"until then what is typed waits, unread; then each line of stdin, its\n"
	"newline included (or each --datagram-size chunk), is sent as one\n"
	"datagram to the sender of the last datagram received (nc -u -l\n"
	"answers the first sender only).  The end of stdin ends nothing:\n"
	"datagrams are taken until SIGINT or SIGTERM (exit 0).  'listening on\n"
	"udp://ADDR:PORT' on stderr.  -k has no meaning here (no connection\n"
	"ends) and is a usage error, as are the options of TCP connections\n"
	"(-o, --exec, --sh-exec, --max-conns, -i, -x, --broker, --chat, the\n"
	"access rules and TLS).\n"
	"\n"
	"Options:\n"
	"  -4, --ipv4               IPv4 only (default HOST 127.0.0.1)\n"
	"  -6, --ipv6               IPv6 only (default HOST ::1)\n"
	"  -k, --keep-open          take connection after connection until\n"
	"                           SIGINT or SIGTERM; with stdio one at a time,\n"
	"                           in order (the next is accepted and held,\n"
	"                           unread, until the one before has ended);\n"
	"                           with --exec, all at once\n"
	"  -o, --output FILE        write what is received to FILE instead of\n"
	"                           stdout: to a temporary file next to it,\n"
	"                           renamed over FILE only when the client ended\n"
	"                           cleanly (FIN); a transfer cut by a reset, a\n"
	"                           timeout or a signal leaves FILE as it was;\n"
	"                           the file is synced (fsync) before the rename\n"
	"      --no-sync            with -o: rename without the fsync (as fast\n"
	"                           as nc -l > FILE; a crash or power loss soon\n"
	"                           after may leave FILE short or empty); a cut\n"
	"                           transfer still leaves FILE as it was\n"
	"      --append             with -o: append to FILE as bytes arrive (a\n"
	"                           cut transfer leaves the bytes that came,\n"
	"                           and exits non-zero); with -k, one client\n"
	"                           after another\n"
	"      --exec CMD           run CMD, a program and its arguments, for\n"
	"                           every connection, the socket as its stdin\n"
	"                           and stdout (stderr stays ours); CMD is one\n"
	"                           argument, split as ncat does: words, '...'\n"
	"                           and \"...\" quoting, \\ escapes, no shell;\n"
	"                           the program is found in PATH\n"
	"      --sh-exec CMD        the same with /bin/sh -c CMD\n"
	"      --stderr-to-peer     the program's stderr goes to the client too\n"
	"      --max-conns N        with --exec, N programs at once at most: the\n"
	"                           next clients wait, accepted and unread, and\n"
	"                           past N waiting are turned away; with -k\n"
	"                           (stdio), N clients held at most\n"
	"  -i, --idle-timeout D     end a connection after D without data\n"
	"                           either way (default: never)\n"
	"      --recv-only          do not read stdin (and send nothing)\n"
	"  -v, --verbose            report 'connection from ADDR:PORT'\n" CONNOPT_KEEPALIVE_HELP
	"  -x, --hexdump FILE       write both directions to FILE in hex and\n"
	"                           ASCII as they pass ('>' sent, '<'\n"
	"                           received; client, offset and time per\n"
	"                           chunk); - is stderr; not with --exec\n"
	"      --broker             every client's bytes go to every other\n"
	"                           client (ncat --broker; implies -k); a client\n"
	"                           that stays behind is cut, not buffered for\n"
	"                           (see tcpkit serve broker)\n"
	"      --chat               the same with names (user<N>, /nick) and\n"
	"                           join and leave lines (ncat --chat)\n"
	"      --mode OCTAL         unix:/PATH: the socket file's permission\n"
	"                           bits (0660); set before any client can\n"
	"                           connect (default: as the umask says)\n"
	"      --owner USER         its owner (name or uid; root only)\n"
	"      --group GROUP        its group (name or gid; one of yours, or\n"
	"                           root)\n"
	"  -u, --udp                UDP datagrams instead of a TCP stream\n"
	"      --fdname NAME        started by systemd with sockets\n"
	"                           (LISTEN_FDS): listen on the one named NAME\n"
	"                           (FileDescriptorName=); without it, the\n"
	"                           first\n"
	"      --datagram-size N    UDP: stdin in datagrams of N bytes\n"
	"      --metrics ADDR       serve Prometheus metrics at /metrics and a\n"
	"                           status page at / over HTTP, on a socket of\n"
	"                           their own; ADDR is [HOST:]PORT (a bare\n"
	"                           PORT: loopback; :PORT every address; 0:\n"
	"                           any free port, told in 'metrics on\n"
	"                           ADDR:PORT')\n"
	"  -h, --help               show this help\n"
	"\n"
	"Access (checked right after accept, before any byte is read or sent;\n"
	"a refused client is closed at once and logged 'denied ADDR'):\n"
	"      --allow CIDR         accept only clients in CIDR (10.0.0.0/8,\n"
	"                           ::1/128); repeatable\n"
	"      --deny CIDR          refuse clients in CIDR; repeatable; a deny\n"
	"                           wins over an allow\n"
	"      --allow-file FILE    the same, one rule per line ('#' comments)\n"
	"      --deny-file FILE\n"
	"\n" PPOPT_HELP "\n"
	"TLS (as serve's, see docs/tls.md); with --exec, the program talks\n"
	"plain text through a socketpair, the verified client certificate's\n"
	"subject in TCPKIT_TLS_CLIENT_SUBJECT:\n"
	"      --tls                speak TLS 1.2 or 1.3 (without --cert, an\n"
	"                           ephemeral self-signed certificate)\n"
	"      --cert FILE          certificate chain (PEM, leaf first)\n"
	"      --key FILE           its private key (default: in --cert)\n"
	"      --client-ca FILE     ask clients for a certificate from these CAs\n"
	"      --client-auth optional|required\n"
	"                           with --client-ca (default required)\n"
	"      --tls-min 1.2|1.3    oldest version accepted (default 1.2)\n"
	"      --alpn LIST          protocols accepted, preferred first\n"
	"\n"
	"Programs: the environment is ours plus TCPKIT_PEER_ADDR,\n"
	"TCPKIT_PEER_PORT, TCPKIT_LOCAL_ADDR and TCPKIT_LOCAL_PORT (as inetd\n"
	"and UCSPI servers give).  Over unix:, TCPKIT_PEER_ADDR is \"unix:\"\n"
	"(a client's socket has no name unless it bound one), the PORTs are\n"
	"0 and TCPKIT_LOCAL_ADDR is unix:/PATH.  Each exit is one line on\n"
	"stderr: client, pid, exit status or signal, duration.  Children are\n"
	"reaped as they end; at exit, those still running get SIGTERM\n"
	"(SIGKILL 2s later).\n"
	"Without -k, tcpkit exits 0 once the program has ended, whatever its\n"
	"status.\n"
	"\n"
	"Progress: with -o and stderr a terminal, one line (bytes, rate,\n"
	"elapsed) updated four times a second; none when stderr is not one.\n"
	"\n"
	"Durations: 10 or 1.5 (seconds), 250ms, 2s, 1m.\n"
	"\n"
	"Signals: SIGINT and SIGTERM stop.  Without -k or --exec, SIGHUP\n"
	"ends listen as a terminal's hang-up does; with them:\n" RELOAD_HELP
	"\n"
	"Exit codes: 0 done (or stopped by a signal with no transfer under\n"
	"way), 64 usage, 66 the --exec program not found or a TLS or rules\n"
	"file missing, 69 the client reset, or a program could not be\n"
	"started, 73 -o FILE (or -x FILE) cannot be created, 74 it cannot be\n"
	"written, 75 idle timeout, 76 TLS failure, 1 cut by a signal, or any\n"
	"other error.\n"
	"\n"
	"Examples:\n"
	"  tcpkit listen 9000 > file              receive one file (nc -l)\n"
	"  tcpkit listen -o file 9000             the same, whole or not at all\n"
	"  tcpkit listen -k --exec cat 0.0.0.0 7  an echo service (ncat -lk -e)\n"
	"  tcpkit listen -k --exec 'cat -n' 9000  numbered lines back\n"
	"  tcpkit listen -k --sh-exec 'echo $TCPKIT_PEER_ADDR' 9000\n"
	"  tcpkit listen --chat --allow 127.0.0.0/8 9000\n"
	"  tcpkit listen -k --exec cat --mode 0660 unix:/tmp/echo.sock\n"
	"  tcpkit listen -u -v 9000               print UDP datagrams\n";

static int
parse_target(struct listen_opts *o, int nargs, char **args)
{
	char host[TK_HOSTLEN] = "", port[TK_PORTLEN] = "";

	if (nargs == 0)
		return cli_usage("listen", "missing PORT");
	if (nargs > 2)
		return cli_usage("listen", "unexpected argument '%s'", args[2]);
	if (nargs == 1) {
		/* The one endpoint syntax: PORT, :PORT, HOST:PORT, tls://. */
		struct tk_endpoint ep;
		char why[160];

		if (tk_endpoint_parse(args[0],
				      TK_EP_PASSIVE | TK_EP_ALLOW_TLS |
					      TK_EP_ALLOW_UNIX |
					      TK_EP_ALLOW_UDP,
				      &ep, why, sizeof(why)) < 0)
			return cli_usage("listen", "%s", why);
		if (ep.kind == TK_EP_UDP)
			o->udp = true;
		else if (o->udp && ep.kind != TK_EP_TCP)
			return cli_usage("listen",
					 "-u/--udp takes [HOST] PORT or "
					 "udp://[HOST]:PORT, not '%s'",
					 args[0]);
		if (ep.kind == TK_EP_UNIX) {
			o->is_unix = true;
			o->abstract = ep.abstract;
			if (tk_addr_from_unix(ep.path, ep.path_len, ep.abstract,
					      &o->unix_addr) < 0)
				return cli_usage("listen",
						 "%s: not a UNIX address",
						 args[0]);
			return 0;
		}
		if (ep.kind == TK_EP_TLS)
			o->tls.tls = true;
		o->wildcard = ep.wildcard;
		snprintf(host, sizeof(host), "%s", ep.host);
		snprintf(port, sizeof(port), "%s", ep.port);
	} else {
		if (strncmp(args[0], "unix:", 5) == 0)
			return cli_usage("listen",
					 "%s: a UNIX socket has no PORT ('%s')",
					 args[0], args[1]);
		if (strlen(args[0]) >= TK_HOSTLEN || args[0][0] == '\0')
			return cli_usage("listen", "malformed host '%s'",
					 args[0]);
		if (tk_hostport_split(args[0], host, port) < 0 ||
		    port[0] != '\0')
			snprintf(host, sizeof(host), "%s", args[0]);
		snprintf(port, sizeof(port), "%s", args[1]);
	}
	if (cli_parse_port("listen", "PORT", port, &o->port) < 0)
		return CLI_EXIT_USAGE;
	snprintf(o->host, sizeof(o->host), "%s", host);
	return 0;
}

/* -u: what has no meaning for datagrams is refused, not ignored. */
static int
check_udp(const struct listen_opts *o)
{
	const char *bad = NULL;

	if (!o->udp) {
		if (o->datagram_size != 0)
			return cli_usage("listen",
					 "--datagram-size is for UDP: add -u");
		return 0;
	}
	if (o->output != NULL)
		bad = "-o/--output";
	else if (o->exec != NULL)
		bad = o->sh ? "--sh-exec" : "--exec";
	else if (o->max_conns != 0)
		bad = "--max-conns";
	else if (o->idle_ms != 0)
		bad = "-i/--idle-timeout";
	else if (o->hexdump != NULL)
		bad = "-x/--hexdump";
	else if (o->broker || o->chat)
		bad = o->broker ? "--broker" : "--chat";
	else if (o->acl.acl != NULL)
		bad = "--allow/--deny";
	else if (o->pp.on)
		bad = "--proxy-protocol";
	else if (o->tls.tls || o->tls.used)
		bad = o->tls.used ? o->tls.used_name : "--tls";
	else if (o->keepalive.on)
		bad = "--keepalive";
	else if (o->metrics.set)
		bad = "--metrics";
	if (bad != NULL)
		return cli_usage("listen", "-u/--udp: %s is for TCP", bad);
	if (o->keep)
		/* Every sender's datagrams are taken: there is no "next". */
		return cli_usage("listen",
				 "-k/--keep-open has no meaning for UDP (no "
				 "connection ends: datagrams from every "
				 "sender are taken until SIGINT)");
	return 0;
}

int
listen_parse_args(int argc, char **argv, struct listen_opts *o)
{
	enum {
		OPT_APPEND = 256,
		OPT_EXEC,
		OPT_SH_EXEC,
		OPT_STDERR_TO_PEER,
		OPT_MAX_CONNS,
		OPT_RECV_ONLY,
		OPT_BROKER,
		OPT_CHAT,
		OPT_NO_SYNC,
		OPT_DATAGRAM_SIZE,
	};
	static const struct option longopts[] = {
		{ "ipv4", no_argument, NULL, '4' },
		{ "ipv6", no_argument, NULL, '6' },
		{ "keep-open", no_argument, NULL, 'k' },
		{ "output", required_argument, NULL, 'o' },
		{ "append", no_argument, NULL, OPT_APPEND },
		{ "no-sync", no_argument, NULL, OPT_NO_SYNC },
		{ "exec", required_argument, NULL, OPT_EXEC },
		{ "sh-exec", required_argument, NULL, OPT_SH_EXEC },
		{ "stderr-to-peer", no_argument, NULL, OPT_STDERR_TO_PEER },
		{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "recv-only", no_argument, NULL, OPT_RECV_ONLY },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "hexdump", required_argument, NULL, 'x' },
		{ "broker", no_argument, NULL, OPT_BROKER },
		{ "chat", no_argument, NULL, OPT_CHAT },
		{ "udp", no_argument, NULL, 'u' },
		{ "datagram-size", required_argument, NULL, OPT_DATAGRAM_SIZE },
		TLSOPT_SERVER_LONGOPTS,
		ACLOPT_LONGOPTS,
		PPOPT_LONGOPTS,
		CONNOPT_LONGOPTS,
		UNIXOPT_LONGOPTS,
		SDSOCK_LONGOPTS,
		METRICSOPT_LONGOPT,
		{ NULL, 0, NULL, 0 },
	};
	bool v4 = false, v6 = false;
	int ch, rc;

	unixopt_init(&o->unix);
	opterr = 0;
	while ((ch = cli_getopt(argc, argv, ":46ko:i:vx:uh", longopts)) != -1) {
		switch (ch) {
		case '4':
			v4 = true;
			break;
		case '6':
			v6 = true;
			break;
		case 'k':
			o->keep = true;
			break;
		case 'o':
			if (optarg[0] == '\0')
				return cli_usage("listen",
						 "-o/--output needs a FILE");
			o->output = optarg;
			break;
		case OPT_APPEND:
			o->append = true;
			break;
		case SDSOCK_FDNAME:
			o->fdname = optarg;
			break;
		case OPT_NO_SYNC:
			o->no_sync = true;
			break;
		case OPT_EXEC:
		case OPT_SH_EXEC:
			if (o->exec != NULL)
				return cli_usage("listen",
						 "--exec and --sh-exec are "
						 "given once, together never");
			if (optarg[0] == '\0')
				return cli_usage("listen", "%s",
						 ch == OPT_EXEC
							 ? "--exec needs a PROG"
							 : "--sh-exec needs a "
							   "CMD");
			o->exec = optarg;
			o->sh = ch == OPT_SH_EXEC;
			break;
		case OPT_STDERR_TO_PEER:
			o->stderr_to_peer = true;
			break;
		case OPT_MAX_CONNS:
			if (cli_parse_uint("listen", "--max-conns", optarg, 1,
					   1000000, &o->max_conns) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'i':
			if (cli_parse_duration("listen", "-i/--idle-timeout",
					       optarg, true, &o->idle_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case OPT_RECV_ONLY:
			o->recv_only = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'x':
			o->hexdump = optarg;
			break;
		case OPT_BROKER:
			o->broker = true;
			break;
		case OPT_CHAT:
			o->chat = true;
			break;
		case CONNOPT_KEEPALIVE:
			if (connopt_keepalive("listen", optarg,
					      &o->keepalive) != 0)
				return CLI_EXIT_USAGE;
			break;
		case 'u':
			o->udp = true;
			break;
		case OPT_DATAGRAM_SIZE:
			if (cli_parse_uint("listen", "--datagram-size", optarg,
					   1, TK_UDP_MAX_PAYLOAD,
					   &o->datagram_size) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'h':
			cli_help("listen");
			return -1;
		case METRICSOPT_METRICS:
			if ((rc = metricsopt_take("listen", &o->metrics,
						  optarg)) != 0)
				return rc;
			break;
		default:
			if (ch == PPOPT_ON || ch == PPOPT_FROM) {
				rc = ppopt_take("listen", &o->pp, ch, optarg);
				if (rc != 0)
					return rc;
				break;
			}
			if (ch >= ACLOPT_ALLOW && ch <= ACLOPT_DENY_FILE) {
				rc = aclopt_take("listen", &o->acl, ch, optarg);
				if (rc != 0)
					return rc;
				break;
			}
			if (ch >= UNIXOPT_MODE && ch <= UNIXOPT_GROUP) {
				rc = unixopt_take("listen", &o->unix, ch,
						  optarg);
				if (rc != 0)
					return rc;
				break;
			}
			if (ch >= TLSOPT_TLS && ch <= TLSOPT_CLIENT_AUTH) {
				rc = tlsopt_take("listen", &o->tls, ch, optarg);
				if (rc != 0)
					return rc;
				break;
			}
			return cli_bad_option("listen", argv, ch);
		}
	}
	if (v4 && v6)
		return cli_usage("listen", "-4 and -6 exclude each other");
	if (o->broker && o->chat)
		return cli_usage("listen", "--broker and --chat exclude each "
					   "other");
	if ((o->broker || o->chat) && (o->exec != NULL || o->output != NULL ||
				       o->recv_only || o->hexdump != NULL))
		return cli_usage("listen",
				 "--%s takes none of --exec, --sh-exec, -o, "
				 "--recv-only, -x (the clients talk to each "
				 "other, not to us)",
				 o->broker ? "broker" : "chat");
	if (o->broker || o->chat)
		o->keep = true; /* as ncat --broker: client after client */
	if (o->hexdump != NULL && o->exec != NULL)
		return cli_usage("listen",
				 "-x and --exec exclude each other (the "
				 "program has the socket)");
	o->family = v4 ? AF_INET : v6 ? AF_INET6 : AF_UNSPEC;
	if (o->append && o->output == NULL)
		return cli_usage("listen", "--append needs -o FILE");
	if (o->no_sync && o->output == NULL)
		return cli_usage("listen", "--no-sync needs -o FILE");
	if (o->exec != NULL && o->output != NULL)
		return cli_usage("listen",
				 "-o and --exec exclude each other (the "
				 "program has the connection)");
	if (o->exec != NULL && o->recv_only)
		return cli_usage("listen",
				 "--recv-only and --exec exclude each other");
	if (o->stderr_to_peer && o->exec == NULL)
		return cli_usage("listen",
				 "--stderr-to-peer needs --exec or --sh-exec");
	if (o->keep && o->output != NULL && !o->append)
		return cli_usage("listen",
				 "-k with -o needs --append (each client "
				 "would replace the file)");
	if (o->exec != NULL && !o->sh) {
		char why[128];

		rc = tk_exec_split(o->exec, o->argbuf, sizeof(o->argbuf),
				   o->argv, LISTEN_MAX_ARGS, why, sizeof(why));
		if (rc == -E2BIG)
			return cli_usage("listen", "--exec: too long");
		if (rc < 0)
			return cli_usage(
				"listen", "--exec: %s",
				strncmp(why, "exec: ", 6) == 0 ? why + 6 : why);
	}
	rc = parse_target(o, argc - optind, argv + optind);
	if (rc != 0)
		return rc;
	if ((rc = check_udp(o)) != 0 ||
	    (rc = ppopt_check("listen", &o->pp)) != 0)
		return rc;
	if ((rc = unixopt_check("listen", &o->unix, o->is_unix ? 1 : 0,
				o->abstract, "listen on unix:/PATH")) != 0)
		return rc;
	/* A UNIX peer has no address for a rule to match. */
	if (o->is_unix && o->acl.acl != NULL)
		return cli_usage("listen",
				 "--allow/--deny need a TCP address: UNIX "
				 "peers have no address to check");
	if (o->is_unix && o->family != AF_UNSPEC)
		return cli_usage("listen",
				 "-%c is for TCP: a UNIX socket has no IP "
				 "version",
				 o->family == AF_INET ? '4' : '6');
	if (o->exec != NULL && !o->sh && !execlog_in_path(o->argv[0])) {
		cli_error("listen", "--exec", "%s: program not found in PATH",
			  o->argv[0]);
		return CLI_EXIT_NOINPUT;
	}
	return 0;
}
