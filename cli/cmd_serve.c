/* cmd_serve.c: `tcpkit serve` (placeholder until implemented). */
#include "cli.h"

const char cmd_serve_help[] = "usage: tcpkit serve ...\n";

int
cmd_serve(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_error("serve", "", "not implemented yet");
	return CLI_EXIT_OTHER;
}
