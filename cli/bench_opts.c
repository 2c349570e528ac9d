/* bench_opts.c: `tcpkit bench`'s help and command line. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "proxyopt.h"
#include "tlsopt.h"

#define DEFAULT_SIZE	  64u
#define DEFAULT_BULK_SIZE (64u * 1024)
#define DEFAULT_WINDOW	  (256u * 1024)
#define DEFAULT_LINE	  "hello\n"
#define MAX_RATE	  1e8

const char cmd_bench_help[] =
	"usage: tcpkit bench [MODE] HOST PORT [OPTIONS]\n"
	"       tcpkit bench [MODE] HOST:PORT [OPTIONS]\n"
	"       tcpkit bench [MODE] unix:/PATH | unix:@NAME [OPTIONS]\n"
	"       tcpkit bench [MODE] tls://HOST:PORT [OPTIONS] (as --tls)\n"
	"       tcpkit bench echo -u HOST PORT [OPTIONS]\n"
	"       tcpkit bench merge [--json] FILE... (- for stdin, once)\n"
	"\n"
	"Load a TCP server and measure it: throughput, latency percentiles and\n"
	"errors, with every echoed byte checked.  The run stops by itself.\n"
	"\n"
	"Modes:\n"
	"  echo    (default) closed loop: each connection keeps -d messages of\n"
	"          -s bytes in flight and sends the next one when an echo is\n"
	"          complete.  Message k of a connection is its sequence number\n"
	"          (8 bytes, little-endian; left out below 8 bytes) and a\n"
	"          pseudo-random payload that differs for every message and\n"
	"          connection: every byte received is compared with what was\n"
	"          sent, so corruption, loss, duplication and reordering show as\n"
	"          mismatches (one per message that differs).  With --rate it is\n"
	"          an open loop: messages are sent on a schedule and latency is\n"
	"          measured from the scheduled time, so a stalled server cannot\n"
	"          hide its stall by slowing the sender down.\n"
	"  bulk    each connection streams -s byte writes (default 64 KiB) with\n"
	"          at most --window bytes not yet echoed, and checks the echoed\n"
	"          stream; reports MB/s each way.\n"
	"  rate    -c clients in parallel, each in a loop: connect, send a line\n"
	"          (\"hello\", or --message), read the answer up to its newline\n"
	"          (or the server's close), close; as fast as possible.\n"
	"  greet   tutorial 2's protocol (tcpkit serve basic): read a greeting\n"
	"          line, send a line, read the answer until the server closes.\n"
	"  idle    open -c connections, hold them for -t, close them.\n"
	"\n"
	"Options:\n"
	"  -c, --connections N   connections (rate, greet: parallel clients),\n"
	"                        1-100000 (default 10)\n"
	"  -d, --depth N         echo: messages in flight per connection,\n"
	"                        1-1024 (default 1)\n"
	"  -s, --size BYTES      echo: message size (default 64); bulk: write\n"
	"                        size (default 64k); 1 to 16m, suffixes k and m\n"
	"                        (times 1024)\n"
	"  -t, --duration D      measured time (default 10s): 30, 1.5s, 500ms, 2m\n"
	"                        (in get, -t is --timeout)\n"
	"  -w, --warmup D        run this long first, unmeasured (default 0)\n"
	"                        (in connect, send and get, -w is\n"
	"                        --connect-timeout: here it has no letter)\n"
	"  -n, --count M         echo, bulk: messages (bulk: writes) per\n"
	"                        connection; rate, greet: connections per\n"
	"                        client; then stop.  -t still bounds the run.\n"
	"      --rate R          echo: open loop at R messages/s in all, spread\n"
	"                        evenly over the connections\n"
	"      --window BYTES    bulk: bytes sent and not yet echoed per\n"
	"                        connection (default 256k)\n"
	"      --threads N       threads, one event loop each, the connections\n"
	"                        split between them (default 1)\n"
	"      --start-at TIME   begin (the warm-up, then the window) at TIME,\n"
	"                        once every connection is open: RFC 3339\n"
	"                        (2026-12-03T17:00:00Z) or Unix time\n"
	"                        (1796317200.5); a time past begins at once.\n"
	"                        N generators given one TIME start together\n"
	"      --connect-timeout D\n"
	"                        give up on a connect after D (default 10s)\n"
	"      --message TEXT    echo: the payload of every message (no sequence\n"
	"                        number then: reordering is not seen); rate,\n"
	"                        greet: the line to send (a newline is added if\n"
	"                        missing)\n"
	"      --message-file FILE\n"
	"                        the same, read from FILE (up to 16m)\n"
	"      --json            print one JSON document instead of the summary\n"
	"                        (latency in ns, the whole histogram, start and\n"
	"                        end, the per-second series; see Merging); when\n"
	"                        the run cannot happen, {\"mode\", \"target\",\n"
	"                        \"error\", \"exit_code\"} all the same\n"
	"      --csv FILE        write the per-second series: second, messages,\n"
	"                        bytes (received), connections (open), errors\n"
	"      --plot FILE       write an SVG: throughput over time and latency\n"
	"                        by percentile\n"
	"  -q, --quiet           no summary and no live line (exit code, --json,\n"
	"                        --csv and --plot only)\n"
	"  -u, --udp             echo over UDP: -c sockets, each with -d\n"
	"                        datagrams of -s bytes (16-65507) in flight\n"
	"                        (see UDP below)\n"
	"      --loss-timeout D  UDP: a datagram not answered within D is lost\n"
	"                        (default 250ms)\n"
	"      --proxy URL       every connection through this proxy, as in\n"
	"                        'tcpkit connect --proxy' (measures the proxy)\n"
	"      --tls             every connection runs TLS, verified as by\n"
	"                        'tcpkit connect --tls'; rate then measures full\n"
	"                        handshakes per second (no session resumption)\n"
	"      --cacert FILE, --capath DIR, --servername NAME, --pin sha256:HEX,\n"
	"      --insecure, --cert FILE, --key FILE, --tls-min 1.2|1.3, --alpn LIST\n"
	"                        as for 'tcpkit connect' (each needs --tls); the\n"
	"                        context is built once and shared by the threads\n"
	"  -h, --help            show this help\n"
	"\n"
	"How it runs: the connections are opened first (at most 256 connecting\n"
	"at once); then the warm-up, then the measured window; messages still in\n"
	"flight at its end get 1s to come back (their latency is recorded, they\n"
	"do not count in the throughput; those that do not come back are\n"
	"timeouts); then every connection is closed with a FIN.  With -n, the\n"
	"run ends when every connection has had its answers.  A connection that\n"
	"fails is counted and not reopened (echo, bulk, idle): the run ends\n"
	"early when none is left.  rate and greet go on after a failure; a\n"
	"client whose connect failed waits 10ms before its next one.  rate\n"
	"closes with a FIN after the answer, so TIME_WAIT is on our side:\n"
	"Linux reuses those ports for new connects to loopback (measured: 270k\n"
	"connections in 20s, no error); towards another host, set\n"
	"net.ipv4.tcp_tw_reuse=1 or the ports run out after ~28k connections\n"
	"a minute.  greet lets the server close first.  The open-file limit is\n"
	"raised to its hard limit.\n"
	"\n"
	"Errors, by class: connect (a connect failed: refused, unreachable,\n"
	"timed out, out of descriptors); reset (an open connection was reset,\n"
	"or closed by the server where it owed bytes); timeout (no answer\n"
	"within 1s after the window; open loop: a message not sent because\n"
	"65536 were unanswered); mismatch (an echo differs from what was sent,\n"
	"one per message; or more bytes came back than were sent); protocol\n"
	"(what the server sent breaks the protocol: a greeting that is not a\n"
	"line); tls (with --tls: a handshake failed or timed out: untrusted\n"
	"issuer, name or pin mismatch...; the first reason is printed once on\n"
	"stderr).\n"
	"\n"
	"Output: a summary on stdout: mode, target, connections, size, threads,\n"
	"measured duration, messages (or connections) per second, MB/s each\n"
	"way, latency min/p50/p90/p99/p99.9/max, errors by class (connect,\n"
	"reset, timeout, mismatch, protocol, and tls with --tls) with the first\n"
	"of each, whether TLS was used (\"over TLS\"; JSON \"tls\"), and the\n"
	"client's own CPU use (user + system over the window, as % of one core\n"
	"and per message: near 100% means the client, not the server, may be\n"
	"the limit).  On a terminal, a line per second on stderr.\n"
	"\n"
	"UDP (-u, echo only): each datagram carries its socket's sequence\n"
	"number and a payload that depends on it, checked on return.  The\n"
	"report counts separately: lost (no reply within --loss-timeout),\n"
	"duplicated (a second reply for one datagram), reordered (a reply\n"
	"after a later datagram's), late (a reply after it was counted lost)\n"
	"and corrupt (size or bytes differ; exit 1); latency percentiles are\n"
	"over the replies that came.  Loss alone is UDP's way, exit 0; every\n"
	"datagram refused (ICMP port unreachable) is exit 69.\n"
	"\n"
	"Merging (bench merge): N generators, each run with --json (and one\n"
	"--start-at to begin together), give N documents; 'tcpkit bench merge\n"
	"A.json B.json ...' reports them as one run, exactly: counts summed,\n"
	"the histograms merged bucket by bucket, min, percentiles and mean\n"
	"computed from the merged histogram as for one run (nearest rank: the\n"
	"bucket holding value ceil(p% x count), its midpoint, clamped to\n"
	"[min, max]), the per-second series summed second by second of each\n"
	"run.  The span runs from the earliest start to the latest end: the\n"
	"rate is the total over the span, and the generators' own rates summed\n"
	"are shown beside it (JSON \"messages_per_s_sum\"); CPU is summed.\n"
	"With --json it prints a document of the same format, so merges can be\n"
	"merged.  Refused (exit 65, one line naming the file and why): JSON\n"
	"that is malformed or not a bench document, another \"format_version\"\n"
	"(now 1), another histogram scheme, a failed run's error document, a\n"
	"run stopped before its window began (\"start\": null), a UDP run's\n"
	"(-u: TCP runs only, for now), a mode or TLS setting other than the\n"
	"first file's.  Targets that differ are merged with a warning (machines may\n"
	"name one server differently).  A missing or unreadable file is exit\n"
	"66.  A host named merge is written merge:PORT.\n"
	"\n"
	"Exit codes: 0 the run completed without a mismatch or protocol error;\n"
	"1 a mismatch or protocol error (what came back is wrong), or the report\n"
	"(stdout) or an output file could not be written; 64 usage (also port\n"
	"0, an empty or over-long HOST); 65 bench merge refused a document; 66\n"
	"--message-file, a TLS file or a bench merge file is missing; 68\n"
	"unknown host; 69 no connection\n"
	"could be established (refused, unreachable); 75 none could, because\n"
	"every connect timed out; 76 a TLS handshake failed (75 if the first\n"
	"failure was a handshake timeout), the report is printed all the same;\n"
	"with --proxy, 69 also when the proxy refused or could not reach the\n"
	"target, 77 when it refused the credentials.\n"
	"\n"
	"Examples:\n"
	"  tcpkit bench 127.0.0.1 7007                 10 connections, 10s\n"
	"  tcpkit bench localhost 7007 -c 100 -d 16 -t 30 -w 5\n"
	"  tcpkit bench 127.0.0.1:7007 --rate 20000 -c 50 --plot lat.svg\n"
	"  tcpkit bench bulk 127.0.0.1 7007 -c 4 --json\n"
	"  tcpkit bench rate 127.0.0.1 7007 -c 50\n"
	"  tcpkit bench greet 127.0.0.1 60000 --message 'Hey!'\n"
	"  tcpkit bench idle 127.0.0.1 7007 -c 10000 -t 30\n"
	"  tcpkit bench rate localhost 7443 --tls --cacert ca.pem -c 20 -t 5\n"
	"  tcpkit bench srv.example 7007 --start-at 2026-12-03T17:00:00Z --json\n"
	"  tcpkit bench merge gen1.json gen2.json gen3.json\n";

static bool
parse_mode(const char *s, enum bench_mode *m)
{
	for (int i = BENCH_ECHO; i <= BENCH_IDLE; i++) {
		if (strcmp(s, bench_mode_name((enum bench_mode)i)) == 0) {
			*m = (enum bench_mode)i;
			return true;
		}
	}
	return false;
}

static bool
is_number(const char *s)
{
	return s[0] != '\0' && strspn(s, "0123456789") == strlen(s);
}

/* A byte count: digits, then optionally k or m (KiB, MiB). */
static int
parse_bytes(const char *opt, const char *text, uint64_t min, uint64_t max,
	    uint64_t *out)
{
	char num[32], *end;
	size_t len = strlen(text);
	uint64_t scale = 1;

	if (len > 0 && len < sizeof(num)) {
		char last = text[len - 1];

		if (last == 'k' || last == 'K')
			scale = 1024;
		else if (last == 'm' || last == 'M')
			scale = 1024 * 1024;
	}
	if (scale == 1)
		return cli_parse_uint("bench", opt, text, min, max, out);
	memcpy(num, text, len - 1);
	num[len - 1] = '\0';
	if (num[0] < '0' || num[0] > '9')
		goto bad;
	errno = 0;
	*out = strtoull(num, &end, 10);
	if (errno != 0 || *end != '\0' || *out > max / scale)
		goto range;
	*out *= scale;
	if (*out < min)
		goto range;
	return 0;
range:
	cli_usage("bench", "%s must be between %llu and %llu, not %s", opt,
		  (unsigned long long)min, (unsigned long long)max, text);
	return -1;
bad:
	cli_usage("bench",
		  "%s needs a number of bytes such as 64, 16k or 1m, "
		  "not '%s'",
		  opt, text);
	return -1;
}

static int
parse_rate(const char *text, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (!((text[0] >= '0' && text[0] <= '9') || text[0] == '.') ||
	    errno != 0 || *end != '\0' || !isfinite(v))
		return cli_usage("bench",
				 "--rate needs messages per second such as "
				 "1000 or 0.5, not '%s'",
				 text);
	if (v <= 0 || v > MAX_RATE)
		return cli_usage("bench",
				 "--rate must be more than 0 and at most "
				 "%.0f, not %s",
				 MAX_RATE, text);
	*out = v;
	return 0;
}

static int
read_message_file(const char *path, struct bench_opts *o)
{
	struct stat sb;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;

	if (fd < 0) {
		cli_error("bench", path, "%s", strerror(errno));
		return CLI_EXIT_NOINPUT;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		err = errno;
		close(fd);
		cli_error("bench", path, "%s",
			  err ? strerror(err) : "not a regular file");
		return CLI_EXIT_NOINPUT;
	}
	if (sb.st_size == 0 || sb.st_size > (off_t)BENCH_MAX_SIZE) {
		close(fd);
		return cli_usage("bench",
				 "--message-file must hold 1 to %u bytes, "
				 "not %lld",
				 BENCH_MAX_SIZE, (long long)sb.st_size);
	}
	/* Room for the newline a line may need. */
	o->message = malloc((size_t)sb.st_size + 1);
	if (o->message == NULL) {
		close(fd);
		return cli_fail("bench", path, -ENOMEM);
	}
	while (got < (size_t)sb.st_size) {
		ssize_t n =
			read(fd, o->message + got, (size_t)sb.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			close(fd);
			cli_error("bench", path, "%s", strerror(err));
			return CLI_EXIT_OTHER;
		}
		got += (size_t)n;
	}
	close(fd);
	o->message_len = got;
	return 0;
}

static int
set_message(const char *text, struct bench_opts *o)
{
	size_t len = strlen(text);

	if (len == 0)
		return cli_usage("bench", "--message must not be empty");
	o->message = malloc(len + 1);
	if (o->message == NULL)
		return cli_fail("bench", "", -ENOMEM);
	memcpy(o->message, text, len);
	o->message_len = len;
	return 0;
}

static const char *
mode_list(unsigned mask)
{
	switch (mask) {
	case 1u << BENCH_ECHO:
		return "echo";
	case 1u << BENCH_BULK:
		return "bulk";
	case 1u << BENCH_ECHO | 1u << BENCH_BULK:
		return "echo and bulk";
	case 1u << BENCH_ECHO | 1u << BENCH_RATE | 1u << BENCH_GREET:
		return "echo, rate and greet";
	default:
		return "echo, bulk, rate and greet";
	}
}

/* Options given, for the checks that depend on the mode. */
struct given {
	const char *depth, *size, *count, *rate, *window, *message, *warmup;
	const char *message_file, *threads;
};

static int
check_mode(const struct bench_opts *o, const struct given *g)
{
	static const struct {
		size_t off;
		const char *name;
		unsigned modes;
	} rules[] = {
		{ offsetof(struct given, depth), "-d/--depth",
		  1u << BENCH_ECHO },
		{ offsetof(struct given, rate), "--rate", 1u << BENCH_ECHO },
		{ offsetof(struct given, size), "-s/--size",
		  1u << BENCH_ECHO | 1u << BENCH_BULK },
		{ offsetof(struct given, window), "--window",
		  1u << BENCH_BULK },
		{ offsetof(struct given, message), "--message",
		  1u << BENCH_ECHO | 1u << BENCH_RATE | 1u << BENCH_GREET },
		{ offsetof(struct given, message_file), "--message-file",
		  1u << BENCH_ECHO | 1u << BENCH_RATE | 1u << BENCH_GREET },
		{ offsetof(struct given, count), "-n/--count",
		  1u << BENCH_ECHO | 1u << BENCH_BULK | 1u << BENCH_RATE |
			  1u << BENCH_GREET },
	};

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		const char *v =
			*(const char *const *)((const char *)g + rules[i].off);

		if (v != NULL && !(rules[i].modes & (1u << o->mode)))
			return cli_usage(
				"bench", "%s applies to %s only, not to %s",
				rules[i].name, mode_list(rules[i].modes),
				bench_mode_name(o->mode));
	}
	return 0;
}

static int
parse_target(int nargs, char **args, struct bench_opts *o, struct tlsopt *tls)
{
	if (nargs == 0)
		return cli_usage("bench", "missing HOST and PORT");
	if (nargs == 1 && strncasecmp(args[0], "tls://", 6) == 0) {
		/* The endpoint syntax: tls://HOST:PORT is HOST PORT --tls. */
		struct tk_endpoint ep;
		char why[256];

		if (tk_endpoint_parse(args[0], TK_EP_ALLOW_TLS, &ep, why,
				      sizeof(why)) < 0)
			return cli_usage("bench", "%s", why);
		strcpy(o->host, ep.host);
		strcpy(o->port, ep.port);
		tls->tls = true;
		snprintf(o->where, sizeof(o->where),
			 strchr(o->host, ':') != NULL ? "[%s]:%s" : "%s:%s",
			 o->host, o->port);
		return 0;
	}
	if (nargs == 1 && strncmp(args[0], "unix:", 5) == 0) {
		struct tk_endpoint ep;
		char why[256];

		if (tk_endpoint_parse(args[0], TK_EP_ALLOW_UNIX, &ep, why,
				      sizeof(why)) < 0 ||
		    tk_addr_from_unix(ep.path, ep.path_len, ep.abstract,
				      &o->unix_addr) < 0)
			return cli_usage("bench", "%s", why);
		o->is_unix = true;
		tk_endpoint_format(&ep, o->where, sizeof(o->where));
		return 0;
	}
	if (nargs == 1) {
		int err = cli_split_target("bench", args[0], o->host, o->port);

		if (err != 0)
			return err;
	} else if (nargs == 2) {
		if (cli_check_host("bench", args[0]) != 0)
			return CLI_EXIT_USAGE;
		if (strlen(args[1]) >= TK_PORTLEN || args[1][0] == '\0')
			return cli_usage("bench", "malformed port '%s'",
					 args[1]);
		strcpy(o->host, args[0]);
		strcpy(o->port, args[1]);
		if (o->host[0] == '[') {
			char h[TK_HOSTLEN], p[TK_PORTLEN];

			if (tk_hostport_split(o->host, h, p) < 0 ||
			    p[0] != '\0')
				return cli_usage("bench", "malformed host '%s'",
						 o->host);
			strcpy(o->host, h);
		}
		if (cli_check_target("bench", o->host, o->port) != 0)
			return CLI_EXIT_USAGE;
	} else {
		return cli_usage("bench", "unexpected argument '%s'", args[2]);
	}
	snprintf(o->where, sizeof(o->where),
		 strchr(o->host, ':') != NULL ? "[%s]:%s" : "%s:%s", o->host,
		 o->port);
	return 0;
}

/* -u: echo's closed loop over datagrams; what it has no use for is refused. */
static int
check_udp(struct bench_opts *o, const struct given *g, const struct tlsopt *t)
{
	if (!o->udp) {
		if (o->loss_timeout_ms != 0)
			return cli_usage("bench",
					 "--loss-timeout is for UDP: add -u");
		return 0;
	}
	if (o->mode != BENCH_ECHO)
		return cli_usage("bench", "-u/--udp: echo only, not %s",
				 bench_mode_name(o->mode));
	if (o->is_unix)
		return cli_usage("bench", "-u/--udp takes HOST PORT, not a "
					  "UNIX socket");
	if (t->tls || t->used)
		return cli_usage("bench", "-u/--udp: no TLS over UDP");
	if (o->has_proxy)
		return cli_usage("bench", "-u/--udp: --proxy tunnels TCP only");
	if (g->rate != NULL || g->message != NULL || g->message_file != NULL ||
	    o->threads > 1 || o->csv_path != NULL || o->plot_path != NULL)
		return cli_usage("bench",
				 "-u/--udp takes none of --rate, --message, "
				 "--message-file, --threads, --csv, --plot");
	if (o->start_at_ns != 0)
		return cli_usage("bench", "-u/--udp: no --start-at (TCP modes "
					  "only)");
	if (o->size != 0 && (o->size < 16 || o->size > TK_UDP_MAX_PAYLOAD))
		return cli_usage("bench",
				 "-u/--udp: -s/--size is 16 to 65507 bytes "
				 "(a sequence number and a check go in each "
				 "datagram)");
	if (o->loss_timeout_ms == 0)
		o->loss_timeout_ms = 250;
	return 0;
}

/*
 * Parse argv into o.  Returns 0, -1 after printing help, or an exit code
 * (usage) after printing the error.
 */
int
bench_parse_args(int argc, char **argv, struct bench_opts *o)
{
	enum {
		OPT_RATE = 256,
		OPT_WINDOW,
		OPT_THREADS,
		OPT_CONNECT_TIMEOUT,
		OPT_MESSAGE,
		OPT_MESSAGE_FILE,
		OPT_JSON,
		OPT_CSV,
		OPT_PLOT,
		OPT_LOSS_TIMEOUT,
		OPT_PROXY,
		OPT_START_AT,
	};
	static const struct option longopts[] = {
		{ "connections", required_argument, NULL, 'c' },
		{ "depth", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 't' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "connect-timeout", required_argument, NULL,
		  OPT_CONNECT_TIMEOUT },
		{ "message", required_argument, NULL, OPT_MESSAGE },
		{ "message-file", required_argument, NULL, OPT_MESSAGE_FILE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "csv", required_argument, NULL, OPT_CSV },
		{ "plot", required_argument, NULL, OPT_PLOT },
		{ "proxy", required_argument, NULL, OPT_PROXY },
		{ "start-at", required_argument, NULL, OPT_START_AT },
		{ "quiet", no_argument, NULL, 'q' },
		{ "udp", no_argument, NULL, 'u' },
		{ "loss-timeout", required_argument, NULL, OPT_LOSS_TIMEOUT },
		{ "help", no_argument, NULL, 'h' },
		TLSOPT_CLIENT_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct tlsopt tls = { 0 };
	struct given g = { 0 };
	uint64_t v;
	int ch, rc, nargs;
	char **args;

	memset(o, 0, sizeof(*o));
	o->mode = BENCH_ECHO;
	o->connections = 10;
	o->depth = 1;
	o->duration_ms = 10000;
	o->threads = 1;
	o->connect_timeout_ms = TK_DEFAULT_CONNECT_TIMEOUT_MS;
	opterr = 0;
	while ((ch = cli_getopt(argc, argv, ":c:d:s:t:w:n:quh", longopts)) !=
	       -1) {
		switch (ch) {
		case 'c':
			if (cli_parse_uint("bench", "-c/--connections", optarg,
					   1, BENCH_MAX_CONNS, &v) < 0)
				return CLI_EXIT_USAGE;
			o->connections = (uint32_t)v;
			break;
		case 'd':
			if (cli_parse_uint("bench", "-d/--depth", optarg, 1,
					   BENCH_MAX_DEPTH, &v) < 0)
				return CLI_EXIT_USAGE;
			o->depth = (uint32_t)v;
			g.depth = optarg;
			break;
		case 's':
			if (parse_bytes("-s/--size", optarg, 1, BENCH_MAX_SIZE,
					&v) < 0)
				return CLI_EXIT_USAGE;
			o->size = (size_t)v;
			g.size = optarg;
			break;
		case 't':
			if (cli_parse_duration("bench", "-t/--duration", optarg,
					       false, &o->duration_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'w':
			if (cli_parse_duration("bench", "-w/--warmup", optarg,
					       true, &o->warmup_ms) < 0)
				return CLI_EXIT_USAGE;
			g.warmup = optarg;
			break;
		case 'n':
			if (cli_parse_uint("bench", "-n/--count", optarg, 1,
					   UINT32_MAX, &o->count) < 0)
				return CLI_EXIT_USAGE;
			g.count = optarg;
			break;
		case OPT_RATE:
			if (parse_rate(optarg, &o->rate) != 0)
				return CLI_EXIT_USAGE;
			g.rate = optarg;
			break;
		case OPT_WINDOW:
			if (parse_bytes("--window", optarg, 1,
					BENCH_MAX_INFLIGHT_B, &v) < 0)
				return CLI_EXIT_USAGE;
			o->window = (size_t)v;
			g.window = optarg;
			break;
		case OPT_THREADS:
			if (cli_parse_uint("bench", "--threads", optarg, 1,
					   BENCH_MAX_THREADS, &v) < 0)
				return CLI_EXIT_USAGE;
			o->threads = (unsigned)v;
			g.threads = optarg;
			break;
		case OPT_CONNECT_TIMEOUT:
			if (cli_parse_duration("bench", "--connect-timeout",
					       optarg, false,
					       &o->connect_timeout_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case OPT_MESSAGE:
			if (g.message != NULL || g.message_file != NULL)
				return cli_usage("bench",
						 "give one --message or "
						 "--message-file");
			g.message = optarg;
			break;
		case OPT_MESSAGE_FILE:
			if (g.message != NULL || g.message_file != NULL)
				return cli_usage("bench",
						 "give one --message or "
						 "--message-file");
			g.message_file = optarg;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_CSV:
			o->csv_path = optarg;
			break;
		case OPT_PLOT:
			o->plot_path = optarg;
			break;
		case OPT_PROXY:
			tk_proxy_clear(&o->proxy);
			if ((rc = proxyopt_parse("bench", "--proxy", optarg,
						 &o->proxy)) != 0)
				return rc;
			proxyopt_hide(optarg);
			o->has_proxy = true;
			break;
		case OPT_START_AT:
			if ((rc = bench_parse_start_at(optarg,
						       &o->start_at_ns)) != 0)
				return rc;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'u':
			o->udp = true;
			break;
		case OPT_LOSS_TIMEOUT:
			if (cli_parse_duration("bench", "--loss-timeout",
					       optarg, false,
					       &o->loss_timeout_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case 'h':
			cli_help("bench");
			return -1;
		default:
			/*
			 * glibc sets optopt to a long-only option's value,
			 * which is no character: name the option as written.
			 */
			if (ch == ':' && optopt >= 256)
				return cli_usage("bench",
						 "option '%s' needs a value",
						 argv[optind - 1]);
			if (ch >= TLSOPT_TLS && ch <= TLSOPT_ALPN) {
				rc = tlsopt_take("bench", &tls, ch, optarg);
				if (rc != 0)
					return rc;
				break;
			}
			return cli_bad_option("bench", argv, ch);
		}
	}

	nargs = argc - optind;
	args = argv + optind;
	/* A first word that names a mode is the mode, if more follows. */
	if (nargs >= 2 && parse_mode(args[0], &o->mode)) {
		args++;
		nargs--;
	} else if ((nargs == 2 && strchr(args[1], ':') != NULL) ||
		   (nargs == 3 && is_number(args[2]) && !is_number(args[1]))) {
		/* "WORD HOST:PORT", "WORD HOST PORT": WORD is in mode's place.
		 */
		return cli_usage("bench",
				 "unknown mode '%s' (echo, bulk, rate, greet, "
				 "idle)",
				 args[0]);
	}
	if ((rc = parse_target(nargs, args, o, &tls)) != 0)
		return rc;
	if (o->has_proxy && o->is_unix)
		return cli_usage("bench", "--proxy is for TCP targets, not "
					  "UNIX sockets");
	if (o->has_proxy) {
		char target[sizeof(o->where)];

		snprintf(target, sizeof(target), "%s", o->where);
		proxyopt_where(target, &o->proxy, o->where, sizeof(o->where));
	}
	if ((rc = check_mode(o, &g)) != 0)
		return rc;
	if ((rc = check_udp(o, &g, &tls)) != 0)
		return rc;
	if (o->count != 0 && g.warmup != NULL)
		return cli_usage("bench", "-n/--count and -w/--warmup exclude "
					  "each other (-n counts every "
					  "message)");
	if (g.rate != NULL && g.depth != NULL)
		return cli_usage("bench", "--rate and -d/--depth exclude each "
					  "other (the rate sets what is in "
					  "flight)");
	if (g.size != NULL && (g.message != NULL || g.message_file != NULL))
		return cli_usage("bench", "-s/--size and --message exclude "
					  "each other (the message sets the "
					  "size)");
	if (o->threads > o->connections)
		return cli_usage("bench",
				 "--threads (%u) must not exceed "
				 "-c/--connections (%u)",
				 o->threads, o->connections);
	if (o->size == 0)
		o->size = o->mode == BENCH_BULK ? DEFAULT_BULK_SIZE
						: DEFAULT_SIZE;
	if (o->mode == BENCH_BULK) {
		if (o->window == 0)
			o->window = DEFAULT_WINDOW > o->size ? DEFAULT_WINDOW
							     : o->size;
		if (o->window < o->size)
			return cli_usage("bench",
					 "--window (%zu) must be at least "
					 "-s/--size (%zu)",
					 o->window, o->size);
	}
	if (g.message != NULL && (rc = set_message(g.message, o)) != 0)
		return rc;
	if (g.message_file != NULL &&
	    (rc = read_message_file(g.message_file, o)) != 0)
		return rc;
	if (o->mode == BENCH_ECHO && o->message != NULL)
		o->size = o->message_len;
	if (o->mode == BENCH_ECHO &&
	    (uint64_t)o->depth * o->size > BENCH_MAX_INFLIGHT_B)
		return cli_usage("bench",
				 "-d/--depth times -s/--size must be at most "
				 "64m per connection, not %llu",
				 (unsigned long long)o->depth * o->size);
	if (o->mode == BENCH_RATE || o->mode == BENCH_GREET) {
		if (o->message == NULL && set_message(DEFAULT_LINE, o) != 0)
			return CLI_EXIT_OTHER;
		/* A line ends with a newline; the buffer has room for it. */
		if (o->message[o->message_len - 1] != '\n')
			o->message[o->message_len++] = '\n';
	}
	/* Last: a context is built only for options that are all good. */
	o->servername = tls.servername;
	return tlsopt_client_ctx("bench", &tls, &o->tls);
}
