/* unixopt.h: --mode, --owner, --group for a UNIX socket's file, and the
 * errors of listening on one, shared by serve and listen. */
#ifndef TK_CLI_UNIXOPT_H
#define TK_CLI_UNIXOPT_H

#include "tcpkit.h"

/* getopt values, clear of the other shared sets (0x1000 to 0x1200). */
enum {
	UNIXOPT_MODE = 0x1400,
	UNIXOPT_OWNER,
	UNIXOPT_GROUP,
};

#define UNIXOPT_LONGOPTS                                                       \
	{ "mode", required_argument, NULL, UNIXOPT_MODE },                     \
		{ "owner", required_argument, NULL, UNIXOPT_OWNER },           \
	{                                                                      \
		"group", required_argument, NULL, UNIXOPT_GROUP                \
	}

struct unixopt {
	struct tk_unix_listen_opts uo; /* tk_unix_listen_opts_init()ed */
	const char *name;	       /* the first of the options given */
};

void unixopt_init(struct unixopt *u);

/*
 * Take one of the options (ch one of UNIXOPT_*): 0, or the usage exit
 * code after printing why (a mode that is not octal, no such user).
 */
int unixopt_take(const char *cmd, struct unixopt *u, int ch, const char *arg);

/*
 * Check the options against what is listened on: nunix UNIX sockets,
 * abstract if one of them is an abstract name (no file: no mode).  hint
 * says how to give a UNIX socket ("give -H unix:/PATH").  0 or usage.
 */
int unixopt_check(const char *cmd, const struct unixopt *u, size_t nunix,
		  bool abstract, const char *hint);

/*
 * Why tk_server_listen_unix() failed on where (err): one line, "in use" for
 * a live server's socket, "not a socket" for another file.  Returns 1, the
 * exit code of a port that cannot be listened on.
 */
int unixopt_listen_error(const struct unixopt *u, const char *where, int err);

#endif /* TK_CLI_UNIXOPT_H */
