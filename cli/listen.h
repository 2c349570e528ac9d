/* listen.h: `tcpkit listen`'s options (listen_opts.c) and the run
 * (cmd_listen.c). */
#ifndef TK_CLI_LISTEN_H
#define TK_CLI_LISTEN_H

#include <stdbool.h>
#include <stdint.h>

#include "aclopt.h"
#include "connopt.h"
#include "metrics.h"
#include "ppopt.h"
#include "sdsock.h"
#include "tcpkit.h"
#include "tlsopt.h"
#include "unixopt.h"

#define LISTEN_MAX_ARGS 64

struct listen_opts {
	char host[TK_HOSTLEN]; /* "": loopback, or every address (wildcard) */
	bool wildcard;	       /* ":PORT": every address, asked for */
	uint16_t port;
	bool is_unix;  /* unix:/PATH or unix:@NAME */
	bool abstract; /* ...the second */
	struct tk_addr unix_addr;
	struct unixopt unix; /* --mode, --owner, --group */
	int family;
	bool keep;
	const char *output;
	bool append;
	bool no_sync;	  /* --no-sync: -o renamed without fsync */
	const char *exec; /* --exec "PROG ARGS" or --sh-exec CMD */
	bool sh;
	char *argv[LISTEN_MAX_ARGS]; /* --exec split (tk_exec_split()) */
	char argbuf[4096];
	bool stderr_to_peer;
	uint64_t max_conns;
	uint64_t idle_ms;
	bool recv_only;
	bool verbose;
	const char *hexdump; /* -x FILE or - */
	bool broker, chat;
	bool udp;		/* -u or udp://: listen_udp.c */
	uint64_t datagram_size; /* -u: stdin in datagrams of N bytes */
	const char *fdname;	/* --fdname: the passed socket to listen on */
	struct aclopt acl;
	struct ppopt pp;
	struct keepalive keepalive; /* --keepalive */
	struct tlsopt tls;
	struct metricsopt metrics; /* --metrics */
};

/*
 * Parse the command line into o (zeroed by the caller): 0, -1 after
 * --help, or an exit code after printing the error.  The --exec program
 * is looked for in PATH here (66 when missing).
 */
int listen_parse_args(int argc, char **argv, struct listen_opts *o);
/* listen -u: datagrams until SIGINT or SIGTERM; an exit code. */
int listen_udp_run(const struct listen_opts *o);

#endif /* TK_CLI_LISTEN_H */
