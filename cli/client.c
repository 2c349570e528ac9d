/* client.c: the client session of `tcpkit connect` and `tcpkit send`: stdin to
 * the peer, the peer to stdout. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "hexdump.h"
#include "ppopt.h"
#include "proxyopt.h"

/* Stop reading stdin while this much is waiting for the peer. */
#define STDIN_CHUNK	  (64u * 1024)
#define STDIN_MAX_PENDING (1024u * 1024)

/*
 * "host:port" or "[v6]:port", not a bare IPv6 literal ("::1", which has
 * more than one colon and no brackets).
 */
static bool
is_hostport(const char *arg)
{
	const char *colon = strchr(arg, ':');

	if (arg[0] == '[')
		return strstr(arg, "]:") != NULL;
	return colon != NULL && strchr(colon + 1, ':') == NULL;
}

/*
 * A target in the endpoint syntax: unix:/path, unix:@name, or tls://H:P
 * (the same as --tls with H:P).  0 or a usage exit code.
 */
static int
take_endpoint(const char *cmd, const char *text, struct client_opts *o)
{
	char why[256];

	if (tk_endpoint_parse(
		    text,
		    TK_EP_ALLOW_UNIX | TK_EP_ALLOW_TLS |
			    (strcmp(cmd, "connect") == 0 ? TK_EP_ALLOW_UDP : 0),
		    &o->ep, why, sizeof(why)) < 0)
		return cli_usage(cmd, "%s", why);
	if (o->ep.kind == TK_EP_UDP) {
		strcpy(o->host, o->ep.host);
		strcpy(o->port, o->ep.port);
		o->udp = true;
		return 0;
	}
	if (o->ep.kind == TK_EP_TLS) {
		strcpy(o->host, o->ep.host);
		strcpy(o->port, o->ep.port);
		o->tls.tls = true;
		return 0;
	}
	if (o->family != AF_UNSPEC || o->source_port != 0)
		return cli_usage(cmd,
				 "%s is a UNIX socket: -4, -6, -s/--source "
				 "and -p/--source-port are for TCP",
				 text);
	o->unix_ep = true;
	return 0;
}

/* -u: what has no meaning for datagrams is refused, not ignored. */
static int
check_udp(const struct client_opts *o)
{
	if (o->unix_ep)
		return cli_usage(o->cmd, "-u/--udp takes HOST PORT, not a UNIX "
					 "socket");
	if (o->tls.tls || o->tls.used)
		return cli_usage(o->cmd, "-u/--udp: no TLS over UDP");
	if (o->no_shutdown || o->send_only || o->recv_only || o->crlf)
		return cli_usage(o->cmd,
				 "-u/--udp takes none of --no-shutdown, "
				 "--send-only, --recv-only, -C");
	if (o->has_proxy)
		return cli_usage(o->cmd, "-u/--udp: --proxy tunnels TCP only");
	if (o->send_proxy != 0)
		return cli_usage(o->cmd, "-u/--udp: --send-proxy is for TCP");
	if (o->hexdump != NULL || o->telnet || o->keepalive.on ||
	    o->source_port != 0)
		return cli_usage(o->cmd,
				 "-u/--udp takes none of -x/--hexdump, "
				 "-t/--telnet, --keepalive, -p/--source-port");
	return 0;
}

int
client_parse(int argc, char **argv, struct client_opts *o)
{
	enum {
		OPT_NO_SHUTDOWN = 256,
		OPT_SEND_ONLY,
		OPT_RECV_ONLY,
		OPT_NEWLINE,
		OPT_DATAGRAM_SIZE,
		OPT_EXEC,
		OPT_SH_EXEC,
		OPT_PROXY,
	};
	static const struct option longopts[] = {
		{ "ipv4", no_argument, NULL, '4' },
		{ "ipv6", no_argument, NULL, '6' },
		{ "connect-timeout", required_argument, NULL, 'w' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "max-time", required_argument, NULL, 'm' },
		{ "source", required_argument, NULL, 's' },
		{ "hexdump", required_argument, NULL, 'x' },
		{ "source-port", required_argument, NULL, 'p' },
		{ "telnet", no_argument, NULL, 't' },
		{ "crlf", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "no-shutdown", no_argument, NULL, OPT_NO_SHUTDOWN },
		{ "send-only", no_argument, NULL, OPT_SEND_ONLY },
		{ "recv-only", no_argument, NULL, OPT_RECV_ONLY },
		{ "newline", no_argument, NULL, OPT_NEWLINE },
		{ "udp", no_argument, NULL, 'u' },
		{ "datagram-size", required_argument, NULL, OPT_DATAGRAM_SIZE },
		{ "exec", required_argument, NULL, OPT_EXEC },
		{ "sh-exec", required_argument, NULL, OPT_SH_EXEC },
		{ "proxy", required_argument, NULL, OPT_PROXY },
		PPOPT_SEND_LONGOPT,
		TLSOPT_CLIENT_LONGOPTS,
		CONNOPT_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = o->cmd;
	bool is_send = strcmp(cmd, "send") == 0;
	bool v4 = false, v6 = false;
	int ch, err, nargs;

	opterr = 0;
	while ((ch = cli_getopt(argc, argv, ":46w:i:m:s:x:p:tCuvh",
				longopts)) != -1) {
		switch (ch) {
		case '4':
			v4 = true;
			break;
		case '6':
			v6 = true;
			break;
		case 'w':
			if (cli_parse_duration(cmd, "-w/--connect-timeout",
					       optarg, false,
					       &o->connect_timeout_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'i':
			if (cli_parse_duration(cmd, "-i/--idle-timeout", optarg,
					       true, &o->idle_timeout_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'm':
			if (cli_parse_duration(cmd, "-m/--max-time", optarg,
					       true, &o->max_time_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 's':
			err = tk_addr_parse(optarg, 0, &o->source);
			if (err < 0)
				return cli_usage(cmd,
						 "-s/--source needs an IP "
						 "address (optionally with "
						 ":PORT), not '%s'",
						 optarg);
			o->has_source = true;
			break;
		case 'x':
		case 't':
			if (is_send)
				return cli_usage(cmd,
						 "option '%s' is for 'tcpkit "
						 "connect'",
						 argv[optind - 1]);
			if (ch == 'x')
				o->hexdump = optarg;
			else
				o->telnet = true;
			break;
		case 'p':
			if (cli_parse_port(cmd, "-p/--source-port", optarg,
					   &o->source_port) < 0)
				return CLI_EXIT_USAGE;
			break;
		case CONNOPT_KEEPALIVE:
			if (connopt_keepalive(cmd, optarg, &o->keepalive) != 0)
				return CLI_EXIT_USAGE;
			break;
		case 'C':
			o->crlf = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'u':
		case OPT_DATAGRAM_SIZE:
			if (is_send)
				return cli_usage(cmd,
						 "option '%s' is for 'tcpkit "
						 "connect'",
						 argv[optind - 1]);
			if (ch == 'u')
				o->udp = true;
			else if (cli_parse_uint(cmd, "--datagram-size", optarg,
						1, TK_UDP_MAX_PAYLOAD,
						&o->datagram_size) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'h':
			cli_help(cmd);
			return -1;
		case OPT_NO_SHUTDOWN:
		case OPT_SEND_ONLY:
		case OPT_RECV_ONLY:
			if (is_send)
				return cli_usage(cmd,
						 "option '%s' is for 'tcpkit "
						 "connect'",
						 argv[optind - 1]);
			if (ch == OPT_NO_SHUTDOWN)
				o->no_shutdown = true;
			else if (ch == OPT_SEND_ONLY)
				o->send_only = true;
			else
				o->recv_only = true;
			break;
		case OPT_EXEC:
		case OPT_SH_EXEC:
			if (is_send)
				return cli_usage(cmd,
						 "option '%s' is for 'tcpkit "
						 "connect'",
						 argv[optind - 2]);
			if (o->exec != NULL)
				return cli_usage(cmd,
						 "--exec and --sh-exec are "
						 "given once, together never");
			if (optarg[0] == '\0')
				return cli_usage(cmd, "%s",
						 ch == OPT_EXEC
							 ? "--exec needs a PROG"
							 : "--sh-exec needs a "
							   "CMD");
			if (ch == OPT_EXEC) {
				char why[128];

				err = tk_exec_split(optarg, o->exec_buf,
						    sizeof(o->exec_buf),
						    o->exec_argv, 64, why,
						    sizeof(why));
				if (err == -E2BIG)
					return cli_usage(cmd,
							 "--exec: too long");
				if (err < 0)
					return cli_usage(
						cmd, "--exec: %s",
						strncmp(why, "exec: ", 6) == 0
							? why + 6
							: why);
			}
			o->exec = optarg;
			o->sh = ch == OPT_SH_EXEC;
			break;
		case OPT_NEWLINE:
			if (!is_send)
				return cli_usage(cmd,
						 "option '--newline' is for "
						 "'tcpkit send'");
			o->newline = true;
			break;
		case OPT_PROXY:
			tk_proxy_clear(&o->proxy);
			if ((err = proxyopt_parse(cmd, "--proxy", optarg,
						  &o->proxy)) != 0)
				return err;
			proxyopt_hide(optarg);
			o->has_proxy = true;
			break;
		case PPOPT_SEND: {
			struct ppopt pp = { 0 };

			/* send is for a message to a service, not a balancer.
			 */
			if (is_send)
				return cli_usage(cmd, "unknown option "
						      "'--send-proxy'");
			if ((err = ppopt_take(cmd, &pp, ch, optarg)) != 0)
				return err;
			o->send_proxy = pp.send;
			break;
		}
		default:
			if (ch >= TLSOPT_TLS && ch <= TLSOPT_ALPN) {
				err = tlsopt_take(cmd, &o->tls, ch, optarg);
				if (err != 0)
					return err;
				break;
			}
			return cli_bad_option(cmd, argv, ch);
		}
	}
	if (v4 && v6)
		return cli_usage(cmd, "-4 and -6 exclude each other");
	o->family = v4 ? AF_INET : v6 ? AF_INET6 : AF_UNSPEC;
	if (o->send_only && o->recv_only)
		return cli_usage(cmd,
				 "--send-only and --recv-only exclude each "
				 "other");
	if (o->has_source) {
		int sf = tk_addr_family(&o->source);

		if (o->family != AF_UNSPEC && o->family != sf)
			return cli_usage(cmd,
					 "-s/--source is an %s address, but "
					 "%s was asked for",
					 sf == AF_INET ? "IPv4" : "IPv6",
					 v4 ? "-4" : "-6");
		o->family = sf;
		if (o->source_port != 0) {
			uint16_t sp = tk_addr_port(&o->source);

			if (sp != 0 && sp != o->source_port)
				return cli_usage(cmd,
						 "-s/--source gives port %u, "
						 "-p/--source-port %u",
						 sp, o->source_port);
			tk_addr_set_port(&o->source, o->source_port);
		}
	}

	nargs = argc - optind;
	argv += optind;
	if (nargs == 0)
		return cli_usage(cmd, "missing HOST and PORT");
	if (strncmp(argv[0], "unix:", 5) == 0 ||
	    strncmp(argv[0], "tls://", 6) == 0 ||
	    strncasecmp(argv[0], "udp://", 6) == 0) {
		if ((err = take_endpoint(cmd, argv[0], o)) != 0)
			return err;
		argv++;
		nargs--;
	} else if (nargs == 1 || is_hostport(argv[0])) {
		/* HOST:PORT or [V6]:PORT in one argument. */
		err = cli_split_target(cmd, argv[0], o->host, o->port);
		if (err != 0)
			return err;
		argv++;
		nargs--;
	} else {
		if (cli_check_host(cmd, argv[0]) != 0)
			return CLI_EXIT_USAGE;
		if (strlen(argv[1]) >= TK_PORTLEN || argv[1][0] == '\0')
			return cli_usage(cmd, "malformed port '%s'", argv[1]);
		strcpy(o->host, argv[0]);
		strcpy(o->port, argv[1]);
		argv += 2;
		nargs -= 2;
		if (o->host[0] == '[') {
			/* "[::1]" given apart from its port. */
			char h[TK_HOSTLEN], p[TK_PORTLEN];

			if (tk_hostport_split(o->host, h, p) < 0 ||
			    p[0] != '\0')
				return cli_usage(cmd, "malformed host '%s'",
						 o->host);
			strcpy(o->host, h);
		}
		err = cli_check_target(cmd, o->host, o->port);
		if (err != 0)
			return err;
	}
	if (is_send && nargs >= 1) {
		o->message = argv[0];
		argv++;
		nargs--;
	}
	if (o->exec != NULL &&
	    (o->crlf || o->no_shutdown || o->send_only || o->recv_only))
		return cli_usage(cmd,
				 "--exec and --sh-exec take none of -C, "
				 "--no-shutdown, --send-only, --recv-only (the "
				 "program has the connection)");
	if (o->exec != NULL && (o->tls.tls || o->tls.used))
		return cli_usage(cmd, "--tls with --exec is not supported yet");
	/* It would go after the handshake, inside TLS: no peer reads it. */
	if (o->send_proxy != 0 && o->tls.tls)
		return cli_usage(cmd,
				 "--send-proxy with --tls is not supported "
				 "(the header must come before TLS)");
	if (o->newline && o->message == NULL)
		return cli_usage(cmd, "--newline needs a MESSAGE argument");
	if (nargs > 0)
		return cli_usage(cmd, "unexpected argument '%s'", argv[0]);
	if (o->has_proxy && o->unix_ep)
		return cli_usage(cmd, "--proxy is for TCP targets, not UNIX "
				      "sockets");
	/* The proxy chooses the target's address, not us. */
	if (o->has_proxy && (v4 || v6))
		return cli_usage(cmd, "-4 and -6 do not apply through "
				      "--proxy");
	if (o->udp && (err = check_udp(o)) != 0)
		return err;
	if (o->datagram_size != 0 && !o->udp)
		return cli_usage(cmd, "--datagram-size is for UDP: add -u");
	return tlsopt_client_ctx(cmd, &o->tls, &o->tls_ctx);
}

static void
format_where(struct client_session *s)
{
	const char *h = s->o->host;

	if (s->o->unix_ep) {
		tk_endpoint_format(&s->o->ep, s->where, sizeof(s->where));
		return;
	}
	snprintf(s->where, sizeof(s->where),
		 strchr(h, ':') != NULL ? "[%s]:%s" : "%s:%s", h, s->o->port);
	if (s->o->has_proxy) {
		char target[sizeof(s->where)];

		snprintf(target, sizeof(target), "%s", s->where);
		proxyopt_where(target, &s->o->proxy, s->where,
			       sizeof(s->where));
	}
}

static void
finish(struct client_session *s, int code)
{
	s->exit_code = code;
	if (s->done != NULL)
		s->done(s, code);
	else
		tk_loop_stop(s->loop);
}

static void stdin_ready(struct tk_loop *loop, int fd, unsigned events,
			void *arg);

void
client_stdin_stop(struct client_session *s)
{
	if (s->stdin_watched) {
		tk_loop_unwatch(s->loop, STDIN_FILENO);
		s->stdin_watched = false;
	}
}

static void
post_stdin(struct tk_loop *loop, void *arg)
{
	stdin_ready(loop, STDIN_FILENO, TK_READABLE, arg);
}

/* Ask for more input: poll a pipe or terminal, or just read a file. */
static void
stdin_want(struct client_session *s)
{
	if (s->stdin_eof || s->stdin_paused || s->conn == NULL)
		return;
	if (s->stdin_polls) {
		if (tk_loop_post(s->loop, post_stdin, s) < 0)
			finish(s, cli_fail("read", "stdin", -ENOMEM));
		return;
	}
	if (!s->stdin_watched) {
		int err = tk_loop_watch(s->loop, STDIN_FILENO, TK_READABLE,
					stdin_ready, s);

		if (err == -EPERM) {
			/* epoll refuses regular files: they never block. */
			s->stdin_polls = true;
			stdin_want(s);
			return;
		}
		if (err < 0) {
			finish(s, cli_fail("read", "stdin", err));
			return;
		}
		s->stdin_watched = true;
	}
}

static void
end_of_input(struct client_session *s)
{
	s->stdin_eof = true;
	client_stdin_stop(s);
	if (s->o->annotate)
		fprintf(stderr, "sent %llu bytes\n",
			(unsigned long long)s->sent);
	if (s->peer_eof) {
		/* Both directions are done: flush, FIN, close. */
		tk_conn_end(s->conn);
		return;
	}
	if (s->o->no_shutdown)
		return;
	if (s->o->annotate)
		fprintf(stderr, "half-closed: sent FIN, reading the answer\n");
	tk_conn_shutdown(s->conn);
}

/*
 * -x: record a chunk.  A dump that cannot be written ends the session
 * (its error is told already): a trace with a hole is not a trace.
 */
static int
dump(struct client_session *s, char dir, const void *p, size_t n)
{
	if (s->hd == NULL ||
	    (s->hc != NULL ? hexdump_write_conn(s->hd, s->hc, dir, p, n)
			   : hexdump_write(s->hd, dir, p, n)) == 0)
		return 0;
	s->exit_code = hexdump_exit_code();
	s->reported = true;
	tk_conn_close(s->conn, 0);
	return -EIO;
}

/* Write to the peer, then to the dump. */
static int
write_dumped(struct client_session *s, const char *p, size_t n)
{
	int err = tk_conn_write(s->conn, p, n);

	return err < 0 ? err : dump(s, HEXDUMP_SENT, p, n);
}

/* Send p[0..n), turning bare LF into CRLF with --crlf. */
static int
send_bytes(struct client_session *s, const char *p, size_t n)
{
	char out[2 * STDIN_CHUNK];
	size_t m = 0;

	if (!s->o->crlf) {
		s->sent += n;
		return write_dumped(s, p, n);
	}
	while (n > 0) {
		size_t take = n < STDIN_CHUNK ? n : STDIN_CHUNK;

		m = 0;
		for (size_t i = 0; i < take; i++) {
			if (p[i] == '\n' && !s->prev_cr)
				out[m++] = '\r';
			out[m++] = p[i];
			s->prev_cr = p[i] == '\r';
		}
		s->sent += m;
		if (write_dumped(s, out, m) < 0)
			return -EPIPE;
		p += take;
		n -= take;
	}
	return 0;
}

static void
stdin_ready(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	struct client_session *s = arg;
	char buf[STDIN_CHUNK];
	ssize_t n;

	(void)loop;
	(void)events;
	if (s->conn == NULL || s->stdin_eof || s->stdin_paused)
		return;
	n = read(fd, buf, sizeof(buf));
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			goto again;
		client_stdin_stop(s);
		finish(s, cli_fail("read", "stdin", -errno));
		tk_conn_close(s->conn, 0);
		return;
	}
	if (n == 0) {
		end_of_input(s);
		return;
	}
	if (send_bytes(s, buf, (size_t)n) < 0)
		return; /* the connection closed: its callback reports */
	if (tk_conn_pending(s->conn) > STDIN_MAX_PENDING) {
		/* The peer is slower than stdin: wait for the drain. */
		s->stdin_paused = true;
		client_stdin_stop(s);
		return;
	}
again:
	if (s->stdin_polls)
		stdin_want(s);
}

static void print(struct client_session *s, const char *data, size_t n);
static void telnet_data(struct client_session *s, const char *data, size_t n);

static int
on_open(struct tk_conn *c, void *arg)
{
	struct client_session *s = arg;
	char addr[TK_ADDRSTRLEN];

	s->conn = c; /* a server's connection is known from here */
	s->opened = true;
	/* Before any byte of ours or the program's: this connection's ends. */
	if (s->o->send_proxy != 0) {
		int err = ppopt_send(s->o->send_proxy, c, tk_conn_local(c),
				     tk_conn_peer(c));

		if (err < 0)
			return err;
	}
	if (s->x != NULL) {
		int err = tk_exec_spawn(s->x, c);

		if (err < 0) {
			cli_error(s->o->cmd, s->o->exec, "cannot run: %s",
				  tk_strerror(err));
			s->reported = true;
			s->exit_code = CLI_EXIT_UNAVAILABLE;
			return err;
		}
		s->spawned = true;
		if (s->o->verbose)
			fprintf(stderr, "connected to %s, running %s\n",
				s->where, s->o->exec);
		return 0;
	}
	if (s->o->verbose) {
		tk_addr_format(tk_conn_peer(c), addr, sizeof(addr));
		/* Through a proxy the peer is the proxy: say both. */
		if (s->o->has_proxy)
			fprintf(stderr, "connected to %s (proxy at %s)\n",
				s->where, addr);
		else
			fprintf(stderr, "connected to %s\n", addr);
		if (tk_conn_is_tls(c))
			tlsopt_print_info(c);
	}
	if (s->o->message != NULL) {
		int err = send_bytes(s, s->o->message, strlen(s->o->message));

		if (err == 0 && s->o->newline)
			err = send_bytes(s, s->o->crlf ? "\r\n" : "\n",
					 s->o->crlf ? 2 : 1);
		if (err < 0)
			return err;
		end_of_input(s);
	} else if (!s->o->recv_only) {
		stdin_want(s);
	}
	return 0;
}

static void
on_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct client_session *s = arg;

	if (n == TK_EOF) {
		if (s->o->annotate)
			fprintf(stderr,
				"received %llu bytes; the server closed\n",
				(unsigned long long)s->received);
		s->peer_eof = true;
		/*
		 * The peer sends no more, but may still read: piped input goes
		 * on to its end (nothing accepted is lost).  A person at a
		 * terminal is done, as with telnet.
		 */
		if (s->stdin_eof || s->o->recv_only || isatty(STDIN_FILENO)) {
			client_stdin_stop(s);
			s->stdin_eof = true;
			tk_conn_end(c);
		}
		return;
	}
	if (!s->got_data && !s->o->no_tls_hint && !tk_conn_is_tls(c) &&
	    tk_tls_looks_like_record(data, (size_t)n)) {
		/* Binary noise on the terminal would not tell what happened. */
		cli_error(s->o->cmd, s->where,
			  "the peer answered with TLS: try --tls");
		s->exit_code = CLI_EXIT_PROTOCOL;
		s->reported = true;
		tk_conn_close(c, 0);
		return;
	}
	s->got_data = true;
	s->received += (uint64_t)n;
	if (dump(s, HEXDUMP_RECV, data, (size_t)n) < 0)
		return;
	if (s->o->telnet) {
		telnet_data(s, data, (size_t)n);
		return;
	}
	if (s->o->send_only || s->stdout_gone)
		return;
	print(s, data, (size_t)n);
}

/* Received bytes to stdout. */
static void
print(struct client_session *s, const char *data, size_t n)
{
	int err = cli_write_all(s->out_fd, data, n);

	if (err < 0) {
		/* Whoever read our output went away (a pipe into head). */
		s->stdout_gone = true;
		if (err != -EPIPE)
			cli_fail("write", s->out_name, err);
		s->exit_code = err == -EPIPE		    ? 0
			       : s->out_fd != STDOUT_FILENO ? CLI_EXIT_IOERR
							    : CLI_EXIT_OTHER;
		tk_conn_close(s->conn, 0);
	}
}

/*
 * -t: the server's options refused, its data printed without them.  The
 * refusals are sent at once, ahead of stdin's next bytes, as a telnet
 * client does.
 */
static void
telnet_data(struct client_session *s, const char *data, size_t n)
{
	while (n > 0 && s->conn != NULL) {
		char out[4096], reply[4096 + 2];
		size_t take = n < sizeof(out) ? n : sizeof(out), no, nr;

		tk_telnet_filter(&s->telnet, data, take, out, &no, reply, &nr);
		if (nr > 0) {
			int err = tk_conn_write(s->conn, reply, nr);

			/*
			 * -EPIPE: our FIN is sent (stdin ended), an answer
			 * can no longer go; silence refuses as well.
			 */
			if (err == 0 && dump(s, HEXDUMP_SENT, reply, nr) < 0)
				return;
			if (err < 0 && err != -EPIPE)
				return;
		}
		if (no > 0 && !s->o->send_only && !s->stdout_gone)
			print(s, out, no);
		data += take;
		n -= take;
	}
}

static void
on_drain(struct tk_conn *c, void *arg)
{
	struct client_session *s = arg;

	(void)c;
	if (s->stdin_paused) {
		s->stdin_paused = false;
		stdin_want(s);
	}
}

static void
on_close(struct tk_conn *c, int err, void *arg)
{
	struct client_session *s = arg;
	char dur[32], why[512];

	s->conn = NULL;
	client_stdin_stop(s);
	if (s->spawned)
		return; /* handed to the program: its exit ends the session */
	if (s->deadline != NULL)
		tk_timer_stop(s->deadline);
	if (s->deadline_hit) {
		finish(s, CLI_EXIT_TIMEOUT);
		return;
	}
	if (s->stdout_gone || s->reported) {
		finish(s, s->exit_code);
		return;
	}
	if (err == 0) {
		finish(s, s->exit_code);
		return;
	}
	if (!s->opened) {
		if (err == TK_ECONNTIMEDOUT)
			cli_error(s->o->cmd, s->where,
				  "connect timed out after %s",
				  cli_format_duration(s->o->connect_timeout_ms,
						      dur, sizeof(dur)));
		else if (err == -EADDRINUSE)
			cli_error(s->o->cmd, s->where, "source port %u: %s",
				  s->o->has_source ? tk_addr_port(&s->o->source)
						   : s->o->source_port,
				  tk_strerror(err));
		else
			cli_error(s->o->cmd, s->where, "%s",
				  tlsopt_why(c, err, why, sizeof(why)));
		if (s->o->verbose && tk_conn_last_error(c)[0] != '\0')
			fprintf(stderr, "last attempt: %s\n",
				tk_conn_last_error(c));
	} else if (err == TK_EIDLE) {
		cli_error(s->o->cmd, s->where, "idle timeout (no data for %s)",
			  cli_format_duration(s->o->idle_timeout_ms, dur,
					      sizeof(dur)));
	} else {
		cli_error(s->o->cmd, s->where, "%s",
			  tlsopt_why(c, err, why, sizeof(why)));
	}
	/* No socket at a UNIX path: nobody serves there, as if refused. */
	finish(s, s->o->unix_ep && err == -ENOENT ? CLI_EXIT_UNAVAILABLE
						  : cli_exit_code(err));
}

/*
 * --max-time: the session is over, however busy.  The idle timeout cannot
 * catch a peer that trickles; this can.  Whatever is still queued for the
 * peer is dropped: the user asked for the deadline.
 */
static void
on_deadline(struct tk_timer *t, void *arg)
{
	struct client_session *s = arg;
	char dur[32];

	(void)t;
	if (s->conn == NULL)
		return;
	cli_format_duration(s->o->max_time_ms, dur, sizeof(dur));
	if (!s->opened)
		cli_error(s->o->cmd, s->where,
			  "max time (%s) reached while connecting", dur);
	else
		cli_error(s->o->cmd, s->where,
			  "max time (%s) reached: sent %llu bytes, received "
			  "%llu",
			  dur, (unsigned long long)s->sent,
			  (unsigned long long)s->received);
	s->deadline_hit = true;
	tk_conn_close(s->conn, 0);
}

const struct tk_service client_service = {
	.name = "client",
	.open = on_open,
	.data = on_data,
	.drain = on_drain,
	.close = on_close,
};

/* connect --exec: the program's exit status is ours (128 + a signal). */
static void
on_program_exit(struct tk_exec *x, const struct tk_exec_exit *e, void *arg)
{
	struct client_session *s = arg;
	int code = CLI_EXIT_OTHER;

	(void)x;
	if (WIFEXITED(e->status))
		code = WEXITSTATUS(e->status);
	else if (WIFSIGNALED(e->status))
		code = 128 + WTERMSIG(e->status);
	if (s->o->verbose && e->status == TK_EXEC_STATUS_UNKNOWN)
		fprintf(stderr, "%s: pid %d ended, status unknown\n",
			s->o->exec, (int)e->pid);
	else if (s->o->verbose)
		fprintf(stderr, "%s: pid %d ended, status %d\n", s->o->exec,
			(int)e->pid, code);
	finish(s, code);
}

static int
exec_setup(struct client_session *s)
{
	const char *argv[] = { "/bin/sh", "-c", s->o->exec, NULL };
	struct tk_exec_opts xo = { .on_exit = on_program_exit, .arg = s };

	xo.argv = s->o->sh ? argv : (const char *const *)s->o->exec_argv;
	return tk_exec_new(s->loop, &xo, &s->x);
}

int
client_run(struct client_opts *o)
{
	struct client_session s = { .o = o,
				    .out_fd = STDOUT_FILENO,
				    .out_name = "stdout" };
	struct tk_conn_opts copts;
	struct tk_addrlist *list = NULL;
	int err = 0;

	if (o->udp)
		return client_udp_run(o);
	format_where(&s);
	tk_telnet_init(&s.telnet);
	if (o->hexdump != NULL &&
	    (err = hexdump_open(o->cmd, o->hexdump, &s.hd)) != 0) {
		tk_tls_ctx_free(o->tls_ctx);
		return err;
	}
	/* Through a proxy the name is the proxy's to resolve, or ours later. */
	if (!o->unix_ep && !o->has_proxy)
		err = tk_resolve(o->host, o->port, o->family, 0, &list);
	if (err < 0) {
		tk_tls_ctx_free(o->tls_ctx);
		hexdump_close(s.hd);
	}
	if (err == TK_EBADPORT)
		return cli_usage(o->cmd, "unknown port '%s'", o->port);
	if (err < 0)
		return cli_fail(o->cmd, s.where, err);
	if (o->annotate && list != NULL)
		fprintf(stderr, "resolved %s to %zu address%s\n", o->host,
			list->count, list->count == 1 ? "" : "es");
	if ((err = tk_loop_new(&s.loop)) < 0)
		goto out_free_list;
	if (o->exec != NULL && (err = exec_setup(&s)) < 0)
		goto out_free_loop;
	tk_conn_opts_init(&copts);
	copts.connect_timeout_ms = o->connect_timeout_ms;
	copts.idle_timeout_ms = o->idle_timeout_ms;
	copts.source = o->has_source ? &o->source : NULL;
	copts.source_port = o->source_port;
	connopt_apply(&o->keepalive, &copts);
	copts.tls = o->tls_ctx;
	/* A UNIX peer has no name: TLS over it checks --servername. */
	copts.servername = o->tls.servername != NULL ? o->tls.servername
			   : o->unix_ep		     ? NULL
						     : o->host;
	/*
	 * The two directions are independent here: what we send comes from
	 * stdin, not from what we read, so output must never stop reading
	 * (an echo server would wait for us while we wait for it).  The
	 * stdin pump bounds the output instead (STDIN_MAX_PENDING).
	 */
	copts.max_pending = copts.max_output;
	if (o->max_time_ms != 0) {
		if ((err = tk_timer_new(s.loop, on_deadline, &s, &s.deadline)) <
			    0 ||
		    (err = tk_timer_start(s.deadline, o->max_time_ms, 0)) < 0)
			goto out_free_loop;
	}
	copts.proxy = o->has_proxy ? &o->proxy : NULL;
	if (o->unix_ep)
		err = tk_conn_connect_endpoint(s.loop, &o->ep, &copts,
					       &client_service, &s, &s.conn);
	else if (o->has_proxy)
		err = tk_conn_connect_host(s.loop, o->host, o->port, &copts,
					   &client_service, &s, &s.conn);
	else
		err = tk_conn_connect(s.loop, list, &copts, &client_service, &s,
				      &s.conn);
	if (err < 0)
		goto out_free_loop;
	tk_addrlist_free(list);
	list = NULL;
	tk_proxy_clear(&o->proxy); /* the connection has its copy */
	err = tk_loop_run(s.loop);
	if (err < 0) {
		s.exit_code = cli_fail(o->cmd, "event loop", err);
		if (s.conn != NULL)
			tk_conn_close(s.conn, 0);
	}
	client_stdin_stop(&s);
	/* Before the loop: a close it still runs must not see the timer. */
	tk_timer_free(s.deadline);
	s.deadline = NULL;
	tk_exec_free(s.x);    /* its pidfds are watched by the loop */
	tk_loop_free(s.loop); /* runs what is left of the close */
	tk_tls_ctx_free(o->tls_ctx);
	if (hexdump_close(s.hd) < 0 && s.exit_code == 0)
		s.exit_code = hexdump_exit_code();
	return s.exit_code;

out_free_loop:
	tk_timer_free(s.deadline);
	tk_exec_free(s.x);
	tk_loop_free(s.loop);
out_free_list:
	tk_addrlist_free(list);
	tk_tls_ctx_free(o->tls_ctx);
	hexdump_close(s.hd);
	tk_proxy_clear(&o->proxy);
	return cli_fail(o->cmd, s.where, err);
}
