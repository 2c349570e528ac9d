/* endpoint.c: the endpoint syntax (tcp, tls://, udp://, unix:, -, exec:,
 * sh:), a pure parser and formatter. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tcpkit.h"

static int __attribute__((format(printf, 3, 4)))
bad(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return TK_EBADENDPOINT;
}

/* Does text start with prefix?  Schemes are matched without case. */
static bool
has_prefix(const char *text, const char *prefix)
{
	return strncasecmp(text, prefix, strlen(prefix)) == 0;
}

/*
 * Text shown in an error: at most 40 bytes of it, with anything that is
 * not printable ASCII replaced, so a hostile argument cannot corrupt the
 * one-line message.
 */
static const char *
shown(const char *s, size_t n, char *buf, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 4 < len; i++) {
		if (i == 40) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		buf[o++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	}
	buf[o] = '\0';
	return buf;
}

static int
parse_unix(const char *rest, unsigned flags, struct tk_endpoint *ep, char *why,
	   size_t whylen)
{
	bool abstract = rest[0] == '@';
	const char *path = abstract ? rest + 1 : rest;
	size_t n = strlen(path);

	if (!(flags & TK_EP_ALLOW_UNIX))
		return bad(why, whylen, "unix: sockets are not taken here");
	if (n == 0)
		return bad(why, whylen, "unix: %s",
			   abstract ? "empty abstract name after '@'"
				    : "missing path");
	if (n > TK_UNIX_PATHLEN)
		return bad(why, whylen, "unix: %s longer than %d bytes",
			   abstract ? "abstract name" : "path",
			   TK_UNIX_PATHLEN);
	memset(ep, 0, sizeof(*ep));
	ep->kind = TK_EP_UNIX;
	ep->abstract = abstract;
	memcpy(ep->path, path, n + 1);
	ep->path_len = n;
	return 0;
}

static int
parse_command(enum tk_endpoint_kind kind, const char *rest, unsigned flags,
	      struct tk_endpoint *ep, char *why, size_t whylen)
{
	const char *name = kind == TK_EP_EXEC ? "exec" : "sh";

	if (!(flags & TK_EP_ALLOW_EXEC))
		return bad(why, whylen, "%s: programs are not run here", name);
	if (rest[strspn(rest, " \t")] == '\0')
		return bad(why, whylen, "%s: missing command", name);
	memset(ep, 0, sizeof(*ep));
	ep->kind = kind;
	ep->command = rest;
	return 0;
}

/* Check a port's text: a number in range or a service name. */
static int
check_port(const char *port, unsigned flags, char *why, size_t whylen)
{
	size_t digits = strspn(port, "0123456789");
	char s[48];
	uint16_t v;

	if (port[digits] != '\0')
		return 0; /* a service name (tk_hostport_split vetted it) */
	if (tk_port_parse(port, &v) < 0)
		return bad(why, whylen, "port '%s' out of range (%d-65535)",
			   shown(port, strlen(port), s, sizeof(s)),
			   flags & TK_EP_PASSIVE ? 0 : 1);
	if (v == 0 && !(flags & TK_EP_PASSIVE))
		return bad(why, whylen,
			   "port 0 cannot be connected to (1-65535)");
	return 0;
}

static int
parse_inet(enum tk_endpoint_kind kind, const char *text, const char *rest,
	   unsigned flags, struct tk_endpoint *ep, char *why, size_t whylen)
{
	char host[TK_HOSTLEN], port[TK_PORTLEN], s[48];
	const char *colon = strrchr(rest, ':');
	int err;

	if (rest[0] == '\0')
		return bad(why, whylen, "'%s': missing HOST:PORT",
			   shown(text, strlen(text), s, sizeof(s)));
	if (rest[0] != '[' && strchr(rest, '/') != NULL)
		return bad(why, whylen, "'%s': a path is not an address%s",
			   shown(rest, strlen(rest), s, sizeof(s)),
			   rest[0] == '/' ? " (unix:PATH for a UNIX socket)"
					  : "");
	err = tk_hostport_split(rest, host, port);
	if (err == TK_EBADPORT) {
		const char *p = colon != NULL ? colon + 1 : rest;

		if (p[0] == '\0')
			return bad(why, whylen, "'%s': missing port after ':'",
				   shown(rest, strlen(rest), s, sizeof(s)));
		if (strlen(p) == strspn(p, "0123456789"))
			return bad(why, whylen,
				   "port '%s' out of range (%d-65535)",
				   shown(p, strlen(p), s, sizeof(s)),
				   flags & TK_EP_PASSIVE ? 0 : 1);
		return bad(why, whylen,
			   "port '%s': not a number or a service "
			   "name",
			   shown(p, strlen(p), s, sizeof(s)));
	}
	if (err < 0)
		return bad(why, whylen,
			   "host '%s': not a host name or an IP "
			   "address",
			   shown(rest,
				 colon != NULL && rest[0] != '['
					 ? (size_t)(colon - rest)
					 : strlen(rest),
				 s, sizeof(s)));
	if (port[0] == '\0')
		return bad(why, whylen, "'%s': missing port (HOST:PORT)",
			   shown(rest, strlen(rest), s, sizeof(s)));
	if (host[0] == '\0' && !(flags & TK_EP_PASSIVE))
		return bad(why, whylen, "'%s': missing host (HOST:PORT)",
			   shown(rest, strlen(rest), s, sizeof(s)));
	if ((err = check_port(port, flags, why, whylen)) < 0)
		return err;
	memset(ep, 0, sizeof(*ep));
	ep->kind = kind;
	memcpy(ep->host, host, sizeof(host));
	memcpy(ep->port, port, sizeof(port));
	/* ":PORT" says "every address"; a bare "PORT" leaves it open. */
	ep->wildcard = host[0] == '\0' && rest[0] == ':';
	return 0;
}

int
tk_endpoint_parse(const char *text, unsigned flags, struct tk_endpoint *ep,
		  char *why, size_t whylen)
{
	const char *sep;
	char s[48];

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (text == NULL || ep == NULL)
		return bad(why, whylen, "no endpoint given");
	if (text[0] == '\0')
		return bad(why, whylen, "empty endpoint");

	if (strcmp(text, "-") == 0) {
		if (!(flags & TK_EP_ALLOW_STDIO))
			return bad(why, whylen,
				   "'-' (standard input and output) is not "
				   "taken here");
		memset(ep, 0, sizeof(*ep));
		ep->kind = TK_EP_STDIO;
		return 0;
	}
	if (has_prefix(text, "unix:"))
		return parse_unix(text + 5, flags, ep, why, whylen);
	if (has_prefix(text, "exec:"))
		return parse_command(TK_EP_EXEC, text + 5, flags, ep, why,
				     whylen);
	if (has_prefix(text, "sh:"))
		return parse_command(TK_EP_SH, text + 3, flags, ep, why,
				     whylen);
	if (has_prefix(text, "tls://")) {
		if (!(flags & TK_EP_ALLOW_TLS))
			return bad(why, whylen, "tls:// is not taken here");
		return parse_inet(TK_EP_TLS, text, text + 6, flags, ep, why,
				  whylen);
	}
	if (has_prefix(text, "udp://")) {
		if (!(flags & TK_EP_ALLOW_UDP))
			return bad(why, whylen, "udp:// is not taken here");
		return parse_inet(TK_EP_UDP, text, text + 6, flags, ep, why,
				  whylen);
	}
	if (has_prefix(text, "tcp://"))
		return parse_inet(TK_EP_TCP, text, text + 6, flags, ep, why,
				  whylen);
	if ((sep = strstr(text, "://")) != NULL &&
	    strspn(text, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-") ==
		    (size_t)(sep - text))
		return bad(why, whylen,
			   "unknown scheme '%s://' (tcp://, tls://, udp://, "
			   "unix:, exec:, sh:)",
			   shown(text, (size_t)(sep - text), s, sizeof(s)));
	return parse_inet(TK_EP_TCP, text, text, flags, ep, why, whylen);
}

int
tk_exec_split(const char *command, char *buf, size_t buflen, char **argv,
	      size_t max_args, char *why, size_t whylen)
{
	const char *p = command;
	size_t o = 0, n = 0;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (command == NULL || buf == NULL || argv == NULL || max_args == 0)
		return -EINVAL;
	for (;;) {
		char quote = 0;

		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		if (n + 1 >= max_args)
			return -E2BIG;
		argv[n++] = buf + o;
		/* One word: until a blank outside quotes. */
		while (*p != '\0' &&
		       (quote != 0 || (*p != ' ' && *p != '\t'))) {
			char c = *p++;

			if (quote == 0 && (c == '\'' || c == '"')) {
				quote = c;
				continue;
			}
			if (c == quote) {
				quote = 0;
				continue;
			}
			if (c == '\\' && quote != '\'') {
				if (*p == '\0')
					return bad(why, whylen,
						   "exec: a '\\' ends the "
						   "command");
				/* In "...", only \" and \\ are escapes. */
				if (quote == 0 || *p == '"' || *p == '\\')
					c = *p++;
			}
			if (o + 1 >= buflen)
				return -E2BIG;
			buf[o++] = c;
		}
		if (quote != 0)
			return bad(why, whylen, "exec: unclosed %s quote",
				   quote == '\'' ? "single" : "double");
		if (o + 1 > buflen)
			return -E2BIG;
		buf[o++] = '\0';
	}
	if (n == 0)
		return bad(why, whylen, "exec: missing command");
	argv[n] = NULL;
	return (int)n;
}

char *
tk_endpoint_format(const struct tk_endpoint *ep, char *buf, size_t len)
{
	const char *scheme = ep->kind == TK_EP_TLS   ? "tls://"
			     : ep->kind == TK_EP_UDP ? "udp://"
						     : "";

	/* A host named like a prefix ("unix:80" is a socket path) needs its
	 * scheme said, so that the text parses back to the same endpoint. */
	if (ep->kind == TK_EP_TCP && (strcasecmp(ep->host, "unix") == 0 ||
				      strcasecmp(ep->host, "exec") == 0 ||
				      strcasecmp(ep->host, "sh") == 0))
		scheme = "tcp://";
	if (len == 0)
		return buf;
	switch (ep->kind) {
	case TK_EP_TCP:
	case TK_EP_TLS:
	case TK_EP_UDP:
		if (ep->host[0] == '\0' && !ep->wildcard)
			snprintf(buf, len, "%s%s", scheme, ep->port);
		else if (strchr(ep->host, ':') != NULL)
			snprintf(buf, len, "%s[%s]:%s", scheme, ep->host,
				 ep->port);
		else
			snprintf(buf, len, "%s%s:%s", scheme, ep->host,
				 ep->port);
		break;
	case TK_EP_UNIX:
		snprintf(buf, len, "unix:%s%s", ep->abstract ? "@" : "",
			 ep->path);
		break;
	case TK_EP_STDIO:
		snprintf(buf, len, "-");
		break;
	case TK_EP_EXEC:
	case TK_EP_SH:
		snprintf(buf, len, "%s:%s",
			 ep->kind == TK_EP_EXEC ? "exec" : "sh",
			 ep->command != NULL ? ep->command : "");
		break;
	default:
		buf[0] = '\0';
	}
	return buf;
}
