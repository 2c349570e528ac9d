/* cmd_connect.c: `tcpkit connect` (placeholder until implemented). */
#include "cli.h"

const char cmd_connect_help[] = "usage: tcpkit connect ...\n";

int
cmd_connect(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_error("connect", "", "not implemented yet");
	return CLI_EXIT_OTHER;
}
