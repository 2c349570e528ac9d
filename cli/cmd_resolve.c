/* cmd_resolve.c: `tcpkit resolve` (placeholder until implemented). */
#include "cli.h"

const char cmd_resolve_help[] = "usage: tcpkit resolve ...\n";

int
cmd_resolve(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_error("resolve", "", "not implemented yet");
	return CLI_EXIT_OTHER;
}
