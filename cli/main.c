/* main.c: the tcpkit program's entry point and subcommand table. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const char help_help[] =
	"usage: tcpkit help [COMMAND]\n"
	"\n"
	"Without COMMAND, list the commands and exit codes; with one, show its\n"
	"options.  `tcpkit COMMAND --help` does the same.\n";

static const char version_help[] =
	"usage: tcpkit version\n"
	"       tcpkit --version\n"
	"\n"
	"Print tcpkit's version, the OpenSSL it was built with and the one it\n"
	"runs with, and the event backend.  `tcpkit --version` does the same.\n"
	"\n"
	"Exit codes: 0, 64 for an argument, 1 if stdout cannot be written.\n";

static const struct cli_command commands[] = {
	{ "resolve", cmd_resolve, "print every address of a host name",
	  cmd_resolve_help },
	{ "interfaces", cmd_interfaces,
	  "list network interfaces and their addresses", cmd_interfaces_help },
	{ "connect", cmd_connect,
	  "interactive session: stdin to a TCP peer, the peer to stdout",
	  cmd_connect_help },
	{ "send", cmd_send,
	  "one exchange: send a message, print the whole answer",
	  cmd_send_help },
	{ "get", cmd_get, "HTTP/1.1 GET a URL, body to stdout", cmd_get_help },
	{ "serve", cmd_serve,
	  "run a server: echo, discard, welcome, basic, line, broker, chat, "
	  "socks5",
	  cmd_serve_help },
	{ "listen", cmd_listen,
	  "wait for a client: pipe it to stdio or a file, or run a program",
	  cmd_listen_help },
	{ "relay", cmd_relay,
	  "forward every client to a target (socat's TCP-LISTEN,fork)",
	  cmd_relay_help },
	{ "bench", cmd_bench,
	  "load a server and measure throughput, latency and errors",
	  cmd_bench_help },
	{ "scan", cmd_scan, "TCP connect scan: which ports of hosts are open",
	  cmd_scan_help },
	{ "help", cmd_help, "show help for tcpkit or a command", help_help },
	{ "version", cmd_version,
	  "print the version, the OpenSSL in use and the event backend",
	  version_help },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/*
 * A hint's command line must work when pasted back into the same shell, so
 * it names the program as it was run: by its path when run by a path
 * ("./build/tcpkit"), plain "tcpkit" when the shell found it in PATH.
 * A path the shell would split or expand is quoted as one word, as Python's
 * shlex.quote() does; the buffer fits a path made only of quotes.
 */
static char prog_quoted[5 * PATH_MAX + 3];
static const char *prog = "tcpkit";

const char *
cli_prog(void)
{
	return prog;
}

static void
set_prog(const char *argv0)
{
	static const char safe[] = "@%+=:,./-_";
	size_t len = argv0 != NULL ? strlen(argv0) : 0;
	bool plain = true;
	char *q = prog_quoted;

	if (len == 0 || len >= PATH_MAX || strchr(argv0, '/') == NULL)
		return;
	for (const char *p = argv0; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr(safe, *p) != NULL))
			plain = false;
	if (plain) {
		prog = argv0;
		return;
	}
	*q++ = '\'';
	for (const char *p = argv0; *p != '\0'; p++) {
		if (*p == '\'') {
			memcpy(q, "'\"'\"'", 5);
			q += 5;
		} else {
			*q++ = *p;
		}
	}
	*q++ = '\'';
	*q = '\0';
	prog = prog_quoted;
}

static const struct cli_command *
find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void
print_overview(FILE *f)
{
	fprintf(f,
		"usage: tcpkit COMMAND [OPTIONS] [ARGUMENTS]\n"
		"\n"
		"tcpkit %s: resolve names, connect, send and receive, and "
		"run TCP servers.\n"
		"\n"
		"Commands:\n",
		tk_version());
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-12s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f,
		"\n"
		"Run 'tcpkit help COMMAND' for a command's options.\n"
		"\n"
		"Option letters: a long name means one thing in every command;\n"
		"where a letter means two things, the long names tell them\n"
		"apart (scripts should use the long names).  Long names are\n"
		"never abbreviated.\n"
		"  -4  --ipv4             resolve interfaces connect send get listen\n"
		"  -6  --ipv6             resolve interfaces connect send get listen\n"
		"  -C  --crlf             connect send\n"
		"  -c  --connections      bench scan\n"
		"  -d  --depth            bench\n"
		"  -f  --fail             get\n"
		"  -H  --host             serve\n"
		"      --header           get (as in curl)\n"
		"  -h  --help             every command\n"
		"  -I  --head             get (as in curl)\n"
		"  -i  --idle-timeout     connect send serve relay listen\n"
		"      --include          get (as in curl)\n"
		"  -k  --keep-open        listen (as in nc)\n"
		"  -L  --location         get (as in curl)\n"
		"  -m  --max-time         connect send get (as in curl)\n"
		"  -n  --count            bench\n"
		"  -o  --output           get listen (as in curl)\n"
		"  -p  --port             serve\n"
		"      --source-port      connect send (as in nc)\n"
		"      --ports            scan\n"
		"  -q  --quiet            serve relay bench\n"
		"  -s  --source           connect send\n"
		"      --size             bench\n"
		"  -t  --timeout          get (the idle timeout; --idle-timeout too)\n"
		"      --duration         bench\n"
		"      --telnet           connect (as in nc)\n"
		"  -u  --udp              connect serve listen bench\n"
		"  -v  --verbose          connect send get listen\n"
		"  -w  --connect-timeout  connect send get scan (as in nc)\n"
		"      --warmup           bench\n"
		"      --workers          serve relay\n"
		"  -x  --hexdump          connect relay listen (as in ncat)\n"
		"\n"
		"Exit codes:\n"
		"  0   success\n"
		"  1   other failure (bind error, I/O error, HTTP --fail)\n"
		"  64  usage error (bad option, argument or address)\n"
		"  65  bench merge: an input document is malformed or cannot\n"
		"      be merged\n"
		"  66  an input file is missing or unreadable\n"
		"  68  unknown host\n"
		"  69  connection refused, host or network unreachable\n"
		"  73  get -o, listen -o: the output file cannot be created\n"
		"      (connect, relay and listen -x: the dump)\n"
		"  74  get -o, listen -o: the output file cannot be written\n"
		"      (connect, relay and listen -x: the dump)\n"
		"  75  timed out (connect, idle)\n"
		"  76  protocol or TLS error (malformed reply, handshake)\n"
		"  77  the proxy refused the credentials (--proxy)\n"
		"\n"
		"Errors are one line on stderr: 'tcpkit: WHAT WHERE: WHY'.\n");
}

int
cli_help(const char *cmd)
{
	const struct cli_command *c = find_command(cmd);

	if (c == NULL)
		return cli_usage("help", "unknown command '%s'", cmd);
	fputs(c->help, stdout);
	return 0;
}

static int
cmd_help(int argc, char **argv)
{
	if (argc > 2)
		return cli_usage("help", "too many arguments");
	if (argc == 2 && strcmp(argv[1], "--help") != 0 &&
	    strcmp(argv[1], "-h") != 0)
		return cli_help(argv[1]);
	print_overview(stdout);
	return 0;
}

static int
cmd_version(int argc, char **argv)
{
	if (argc == 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
		return cli_help("version");
	if (argc > 1)
		return cli_usage("version", "unexpected argument '%s'",
				 argv[1]);
	printf("tcpkit %s\n"
	       "OpenSSL (built with): %s\n"
	       "OpenSSL (running): %s\n"
	       "event backend: %s\n",
	       tk_version(), tk_tls_built_version(), tk_tls_runtime_version(),
	       tk_backend_name());
	/* Piped into a closed reader or a full disk: say so, not exit 0. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error("version", "stdout", "%s",
			  strerror(errno ? errno : EIO));
		return CLI_EXIT_OTHER;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const struct cli_command *c;

	/* A peer that goes away must never kill us; writes report EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	set_prog(argv[0]);

	if (argc < 2) {
		print_overview(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		print_overview(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(1, argv + 1);
	c = find_command(argv[1]);
	if (c == NULL) {
		cli_error("unknown command", argv[1],
			  "see 'tcpkit help' for the list");
		return CLI_EXIT_USAGE;
	}
	return c->run(argc - 1, argv + 1);
}
