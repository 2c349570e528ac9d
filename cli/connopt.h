/* connopt.h: connection options shared by every command that holds a
 * connection (connect, send, serve, listen, relay): --keepalive. */
#ifndef TK_CLI_CONNOPT_H
#define TK_CLI_CONNOPT_H

#include <stdbool.h>

#include "tcpkit.h"

/* getopt value, clear of tlsopt (0x1000) and aclopt (0x1100). */
#define CONNOPT_KEEPALIVE 0x1200

#define CONNOPT_LONGOPTS                                                       \
	{                                                                      \
		"keepalive", optional_argument, NULL, CONNOPT_KEEPALIVE        \
	}

/* The help line, aligned for connect and send (serve has its own). */
#define CONNOPT_KEEPALIVE_HELP                                                 \
	"      --keepalive[=IDLE,INTVL,CNT]\n"                                 \
	"                           TCP keepalive: probe after IDLE seconds\n" \
	"                           of silence, every INTVL, give up after\n"  \
	"                           CNT unanswered (exit 75); an empty or\n"   \
	"                           missing field keeps the system's value\n"

struct keepalive {
	bool on;
	unsigned idle, intvl, cnt; /* seconds, seconds, probes; 0: system's */
};

/*
 * --keepalive's value: NULL (the option alone) or "IDLE,INTVL,CNT" with
 * any field empty or left out ("60", ",10,3").  0, or CLI_EXIT_USAGE after
 * printing the error naming the field.
 */
int connopt_keepalive(const char *cmd, const char *arg, struct keepalive *ka);
/* Copy ka into the library's options. */
void connopt_apply(const struct keepalive *ka, struct tk_conn_opts *opts);

#endif /* TK_CLI_CONNOPT_H */
