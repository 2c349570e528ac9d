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
	bool newline; /* send: end the message with a newline */
	/* connect --exec PROG / --sh-exec CMD: the program has the socket. */
	const char *exec;
	bool sh;
	char *exec_argv[64]; /* --exec split (tk_exec_split()) */
	char exec_buf[4096];
	/* listen: a file that starts like TLS is still just bytes. */
	bool no_tls_hint;
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
	bool has_proxy; /* --proxy: the target through proxy */
	int send_proxy; /* connect --send-proxy: PROXY protocol 1 or 2; 0 */
	struct tk_proxy proxy;
};

struct hexdump;
struct hexdump_conn;

/*
 * One session: stdin to the connection, the connection to out_fd, with
 * connect's half-close rules.  client_service runs it on a connection it
 * is the argument of: a client's (client_run()) or a server's (listen).
 */
struct client_session {
	const struct client_opts *o;
	struct tk_loop *loop;
	struct tk_conn *conn;
	struct tk_timer *deadline; /* --max-time */
	struct hexdump *hd;	   /* -x, or NULL */
	struct hexdump_conn *hc;   /* listen: this client's place in it */
	struct tk_telnet telnet;   /* -t */
	/* "HOST:PORT" as given, or an address; and " via PROXY" */
	char where[TK_ADDRSTRLEN + TK_HOSTLEN + TK_PROXY_CREDLEN + 64];
	int out_fd;	      /* what is received goes here */
	const char *out_name; /* for its errors */
	/*
	 * The session is over with an exit code: stop the loop (NULL), or
	 * the owner's call (listen's next connection).
	 */
	void (*done)(struct client_session *s, int code);
	void *owner;
	struct tk_exec *x;  /* connect --exec */
	bool spawned;	    /* the program runs: its exit ends the session */
	bool stdin_watched; /* registered with the loop */
	bool stdin_polls;   /* a regular file or /dev/null: always ready */
	bool stdin_eof;
	bool stdin_paused;
	bool prev_cr; /* --crlf: the last byte sent was '\r' */
	bool opened;
	bool stdout_gone;
	bool peer_eof;
	bool got_data;	   /* some bytes came: the TLS check is behind us */
	bool reported;	   /* the error is told already: on_close just ends */
	bool deadline_hit; /* --max-time ended the session */
	int exit_code;
	uint64_t sent;
	uint64_t received;
};

extern const struct tk_service client_service;
/* Stop reading stdin (the session's connection is gone). */
void client_stdin_stop(struct client_session *s);

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
/* connect -u: stdin as datagrams, replies to stdout; the exit code. */
int client_udp_run(const struct client_opts *o);

#endif /* TK_CLI_CLIENT_H */
