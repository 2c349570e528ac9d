/* tcpkit/endpoint.h: the one address syntax every command takes (part of
 * tcpkit.h; include that). */
#ifndef TCPKIT_ENDPOINT_H
#define TCPKIT_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * An endpoint names where bytes come from or go to:
 *
 *   HOST:PORT, [V6]:PORT    TCP (HOST a name or an IP literal)
 *   tcp://HOST:PORT         the same, said explicitly
 *   tls://HOST:PORT         TCP with TLS
 *   udp://HOST:PORT         UDP datagrams (tcpkit/udp.h)
 *   unix:/PATH, unix:PATH   a UNIX stream socket (a relative path is kept
 *                           as given)
 *   unix:@NAME              a UNIX socket in the abstract namespace
 *   -                       standard input and output
 *   exec:PROG ARGS          a program, its arguments split by
 *                           tk_exec_split() (no shell)
 *   sh:COMMAND              a shell command (/bin/sh -c COMMAND)
 *
 * The prefixes are matched first and without case: a host named unix,
 * exec or sh is written tcp://unix:PORT.  udp:// takes the forms TCP does,
 * passive ones included ("udp://:5353").  A passive (listening) endpoint may
 * leave HOST out: ":8080" and "tls://:8443" mean every address (wildcard), a
 * bare "8080" the caller's default; and it may use port 0 (any free port).
 * An active one needs both, and a port from 1 to 65535 or a service name.
 */
enum tk_endpoint_kind {
	TK_EP_TCP,
	TK_EP_TLS,
	TK_EP_UNIX,
	TK_EP_STDIO,
	TK_EP_EXEC,
	TK_EP_SH,
	TK_EP_UDP,
};

/* Flags of tk_endpoint_parse(): what the caller can take. */
#define TK_EP_PASSIVE	  0x01u /* a listening side */
#define TK_EP_ALLOW_STDIO 0x02u /* "-" */
#define TK_EP_ALLOW_EXEC  0x04u /* exec: and sh: */
#define TK_EP_ALLOW_UNIX  0x08u /* unix: */
#define TK_EP_ALLOW_TLS	  0x10u /* tls:// */
#define TK_EP_ALLOW_UDP	  0x20u /* udp:// */

/* sun_path's size, less the NUL a filesystem path needs. */
#define TK_UNIX_PATHLEN 107

struct tk_endpoint {
	enum tk_endpoint_kind kind;
	char host[TK_HOSTLEN]; /* TCP, TLS, UDP: no brackets; "": none given */
	char port[TK_PORTLEN]; /* TCP, TLS, UDP: a number or a service name */
	char path[TK_UNIX_PATHLEN + 1]; /* UNIX: NUL-terminated */
	size_t path_len;		/* UNIX: bytes of path */
	bool abstract;			/* UNIX: unix:@NAME (path is NAME) */
	const char *command; /* EXEC, SH: borrowed from the text parsed */
	/*
	 * Passive TCP, TLS, UDP without a host: ":PORT" asked for every
	 * address (true); a bare "PORT" (false) leaves the address to the
	 * caller's default (tcpkit's commands: loopback).
	 */
	bool wildcard;
};

/*
 * Parse text into *ep.  Pure: reads only text, allocates nothing.
 * Returns 0, or TK_EBADENDPOINT with a one-line reason in why (when why
 * is not NULL) that names the part that is wrong: "unix: path longer than
 * 107 bytes", "port '99999' out of range (1-65535)", "exec: not allowed
 * here".  ep is filled only on success.
 */
int tk_endpoint_parse(const char *text, unsigned flags, struct tk_endpoint *ep,
		      char *why, size_t whylen);

/*
 * Split an exec: command into arguments, as a shell would without
 * expanding anything: words are separated by blanks; '...' keeps
 * everything inside as it is, "..." keeps everything but \" and \\, and \
 * outside quotes takes the next character as it is.  The words are
 * written into buf (buflen bytes), argv[0..n-1] point at them and argv[n]
 * is NULL, n < max_args.  Pure.  Returns the number of words (at least
 * 1), or TK_EBADENDPOINT (empty command, an unclosed quote, a trailing \;
 * why says which) or -E2BIG (buf or argv too small).
 */
int tk_exec_split(const char *command, char *buf, size_t buflen, char **argv,
		  size_t max_args, char *why, size_t whylen);

/*
 * Write ep in the syntax above ("unix:@NAME" for an abstract name; an IPv6
 * host in brackets) into buf; returns buf, truncated to len - 1 bytes if
 * it has to be.
 */
char *tk_endpoint_format(const struct tk_endpoint *ep, char *buf, size_t len);

/*
 * Connect to ep, as tk_conn_connect_host() does: TCP (host and port;
 * opts->tls, if set, applies as it would there), TLS (the same, with
 * opts->tls required: the caller builds the context; -EINVAL without),
 * UNIX (its address; no name to resolve; TLS over it when opts->tls is
 * set, with opts->servername to check, since a UNIX peer has no IP).
 * -EINVAL for stdio, exec, sh and udp endpoints, which are no
 * connections (udp://: resolve it, then tk_udp_open() in tcpkit/udp.h),
 * and for UNIX with opts->proxy (a proxy takes TCP and TLS targets).
 * Otherwise returns and calls back as tk_conn_connect() does.
 */
struct tk_loop;
struct tk_conn;
struct tk_conn_opts;
struct tk_service;
int tk_conn_connect_endpoint(struct tk_loop *loop, const struct tk_endpoint *ep,
			     const struct tk_conn_opts *opts,
			     const struct tk_service *svc, void *arg,
			     struct tk_conn **out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_ENDPOINT_H */
