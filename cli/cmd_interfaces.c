/* cmd_interfaces.c: `tcpkit interfaces` (placeholder until implemented). */
#include "cli.h"

const char cmd_interfaces_help[] = "usage: tcpkit interfaces ...\n";

int
cmd_interfaces(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_error("interfaces", "", "not implemented yet");
	return CLI_EXIT_OTHER;
}
