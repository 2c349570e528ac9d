/* proxyopt.h: --proxy, --noproxy and the proxy environment variables, for
 * connect, send, get and bench. */
#ifndef TK_CLI_PROXYOPT_H
#define TK_CLI_PROXYOPT_H

#include <stdbool.h>
#include <stddef.h>

#include "tcpkit.h"

/*
 * A proxy URL given by the user (opt names where: "--proxy", "ALL_PROXY"):
 * without "SCHEME://" it is http://, as curl has it.  0 with *out set, or
 * the usage error's exit code, printed.
 */
int proxyopt_parse(const char *cmd, const char *opt, const char *url,
		   struct tk_proxy *out);
/*
 * Whether host is in list, a NO_PROXY value: names and IP addresses split
 * by commas or blanks; "*" is every host; a name matches itself and the
 * names under it (".example.com" and "example.com" both match
 * www.example.com); an IP address matches only itself.
 */
bool proxyopt_no_proxy(const char *list, const char *host);
/*
 * The proxy for a `get` of a URL of scheme ("http" or "https") to host,
 * as curl picks it: flag (--proxy; "" is none), else https_proxy or
 * HTTPS_PROXY for https, http_proxy (lower case only: a CGI program's
 * HTTP_PROXY is set from a request's Proxy header) for http, else
 * all_proxy or ALL_PROXY; then none if host is in noproxy (--noproxy),
 * else in no_proxy or NO_PROXY.  *use says whether a proxy applies.  0
 * or the usage error's exit code, printed.
 */
int proxyopt_for_url(const char *cmd, const char *scheme, const char *host,
		     const char *flag, const char *noproxy,
		     struct tk_proxy *out, bool *use);
/*
 * Overwrite the password in url (a command-line argument) with '*', once
 * parsed: other users can read a process's arguments (ps).
 */
void proxyopt_hide(char *url);
/* "HOST:PORT via socks5://USER@PROXY:PORT" (no password) into buf. */
char *proxyopt_where(const char *target, const struct tk_proxy *p, char *buf,
		     size_t len);

#endif
