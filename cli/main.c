/* main.c: the tcpkit program's entry point and subcommand table. */
#include <errno.h>
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
	"\n"
	"Print tcpkit's version, the OpenSSL it was built with and the one it\n"
	"runs with, and the event backend.  `tcpkit --version` does the same.\n";

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
	  "run a server: echo, discard, welcome, basic (default: echo)",
	  cmd_serve_help },
	{ "bench", cmd_bench,
	  "load a server and measure throughput, latency and errors",
	  cmd_bench_help },
	{ "help", cmd_help, "show help for tcpkit or a command", help_help },
	{ "version", cmd_version,
	  "print the version, the OpenSSL in use and the event backend",
	  version_help },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

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
		"Exit codes:\n"
		"  0   success\n"
		"  1   other failure (bind error, I/O error, HTTP --fail)\n"
		"  64  usage error (bad option, argument or address)\n"
		"  68  unknown host\n"
		"  69  connection refused, host or network unreachable\n"
		"  75  timed out (connect, idle)\n"
		"  76  protocol error (malformed reply)\n"
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
		return cli_usage("version", "too many arguments");
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
