/* execlog.h: what listen --exec and relay to a program share: the PATH
 * check before starting and the line logged when a child ends. */
#ifndef TK_CLI_EXECLOG_H
#define TK_CLI_EXECLOG_H

#include <stdbool.h>

#include "tcpkit.h"

/* Is prog (looked up in PATH unless it has a '/') executable? */
bool execlog_in_path(const char *prog);
/*
 * Log how a child of the program prog ended (cmd names the command for an
 * error line): "PEER: pid N exit S after D", or, when it could not be
 * started, "tcpkit: CMD PROG: cannot run for PEER: WHY".
 */
void execlog_exit(const char *cmd, const char *prog,
		  const struct tk_exec_exit *e);

#endif
