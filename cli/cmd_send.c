/* cmd_send.c: `tcpkit send` (placeholder until implemented). */
#include "cli.h"

const char cmd_send_help[] = "usage: tcpkit send ...\n";

int
cmd_send(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_error("send", "", "not implemented yet");
	return CLI_EXIT_OTHER;
}
