/* cmd_get.c: `tcpkit get` (placeholder until implemented). */
#include "cli.h"

const char cmd_get_help[] = "usage: tcpkit get ...\n";

int
cmd_get(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_error("get", "", "not implemented yet");
	return CLI_EXIT_OTHER;
}
