/* client.h: the client session shared by `tcpkit connect` and `tcpkit send`. */
#ifndef TK_CLI_CLIENT_H
#define TK_CLI_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "connopt.h"
#include "tcpkit.h"
#include "tlsopt.h"

struct client_opts {
	const char *cmd; /* "connect" or "send": names the errors */
	char host[TK_HOSTLEN];
	char port[TK_PORTLEN];
	int family; /* AF_UNSPEC, AF_INET, AF_INET6 */
	uint64_t connect_timeout_ms;
	uint64_t idle_timeout_ms; /* 0: none */
	uint64_t max_time_ms;	  /* --max-time: the whole session; 0: none */
	bool has_source;
	struct tk_addr source;
	bool verbose;
	bool crlf;	  /* stdin's bare LF goes out as CRLF */
	bool no_shutdown; /* no FIN at the end of input */
	bool send_only;	  /* received bytes are not printed */
	bool recv_only;	  /* stdin is not read */
	/* send: the message to send instead of stdin (may be NULL). */
	const char *message;
	bool newline;  /* send: end the message with a newline */
	bool annotate; /* send -v: narrate each step */
	struct tlsopt tls;
	struct tk_tls_ctx *tls_ctx; /* built by client_parse(), or NULL */
	bool udp;		    /* -u or udp://: client_udp.c */
	uint64_t datagram_size;	    /* --datagram-size; 0: one per line */
	bool unix_ep;		    /* a unix: target, in ep */
	struct tk_endpoint ep;
	const char *hexdump;  /* -x: FILE or "-", or NULL */
	uint16_t source_port; /* -p; 0: any */
	bool telnet;	      /* -t: refuse telnet options, strip them */
	struct keepalive keepalive;
};

/*
 * Parse `tcpkit connect` or `tcpkit send` arguments (o->cmd says which)
 * into o; with --tls, the TLS context is built (its files read) now.
 * Returns 0, -1 after printing help, or an exit code.
 */
int client_parse(int argc, char **argv, struct client_opts *o);
/* Run the session (and free the TLS context); returns the exit code. */
int client_run(const struct client_opts *o);
/* connect -u: stdin as datagrams, replies to stdout; the exit code. */
int client_udp_run(const struct client_opts *o);

#endif /* TK_CLI_CLIENT_H */
