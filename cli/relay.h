/* relay.h: `tcpkit relay`'s options (relay_opts.c) and the run
 * (cmd_relay.c). */
#ifndef TK_CLI_RELAY_H
#define TK_CLI_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "aclopt.h"
#include "connopt.h"
#include "metrics.h"
#include "ppopt.h"
#include "serve.h"
#include "tcpkit.h"
#include "tlsopt.h"

#define RELAY_MAX_TARGETS 16
#define RELAY_MAX_ARGS	  64

struct relay_opts {
	const char *listen_text;
	struct tk_endpoint listen;
	uint16_t listen_port;
	const char *target_text[RELAY_MAX_TARGETS];
	struct tk_endpoint targets[RELAY_MAX_TARGETS];
	size_t ntargets;
	bool balance;
	int backlog;
	unsigned workers;
	uint64_t max_conns; /* 0: from the open-file limit */
	uint64_t connect_ms;
	uint64_t idle_ms;
	uint64_t drain_ms;
	uint64_t handshake_ms; /* 0: the library's default */
	struct serve_log log;
	struct tlsopt srv_tls; /* a tls:// LISTEN: termination */
	struct tlsopt cli_tls; /* tls:// TARGETs: origination */
	const char *hexdump;   /* -x FILE, or NULL */
	struct aclopt acl;     /* freed by the caller, on every path */
	const char *acl_name;  /* the first access option given */
	struct ppopt pp;       /* freed by the caller, on every path */
	struct keepalive keepalive;
	struct metricsopt metrics; /* --metrics */
	bool workers_set; /* -w given: an exec target refuses above 1 */
	/* An exec: or sh: TARGET: the program every client runs. */
	bool exec;
	const char *argv[RELAY_MAX_ARGS]; /* NULL-terminated */
	char argbuf[4096];		  /* exec: its split arguments */
	struct tk_proxy proxy;		  /* --proxy; cleared by cmd_relay() */
	bool has_proxy;
	bool idle_set;	     /* -i given */
	bool udp;	     /* udp:// LISTEN and TARGET: relay_udp.c */
	const char *fdname;  /* --fdname: the passed socket to listen on */
	const char *handoff; /* --handoff PATH, or NULL */
};

/* A UDP flow ends after this long without a datagram either way. */
#define RELAY_UDP_IDLE_MS (60 * 1000u)

/*
 * 0 to go on, -1 after printing the help (exit 0), or an exit code after a
 * usage error.  Either way o->acl is the caller's to free.
 */
int relay_parse_args(int argc, char **argv, struct relay_opts *o);
/* relay udp:// udp://: per-client flows until SIGINT; an exit code. */
int relay_udp_run(const struct relay_opts *o);

#endif /* TK_CLI_RELAY_H */
