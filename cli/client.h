/* client.h: the client session shared by `tcpkit connect` and `tcpkit send`. */
#ifndef TK_CLI_CLIENT_H
#define TK_CLI_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

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
	bool unix_ep;		    /* a unix: target, in ep */
	struct tk_endpoint ep;
	bool has_proxy; /* --proxy: the target through proxy */
	struct tk_proxy proxy;
};

/*
 * Parse `tcpkit connect` or `tcpkit send` arguments (o->cmd says which)
 * into o; with --tls, the TLS context is built (its files read) now.
 * Returns 0, -1 after printing help, or an exit code.
 */
int client_parse(int argc, char **argv, struct client_opts *o);
/*
 * Run the session (and free the TLS context, wipe the proxy's
 * credentials); returns the exit code.
 */
int client_run(struct client_opts *o);

#endif /* TK_CLI_CLIENT_H */
