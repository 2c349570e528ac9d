/* addr.c: parse and format "host:port", "[v6]:port" and socket addresses. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

/*
 * Character classes by hand: <ctype.h> depends on the locale and takes
 * int, and a parser of untrusted text wants neither.
 */
static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/* A decimal number 0..65535 in s[0..n): digits only.  0 or TK_EBADPORT. */
static int
port_value(const char *s, size_t n, uint16_t *out)
{
	unsigned v = 0;

	if (!all_digits(s, n))
		return TK_EBADPORT;
	for (size_t i = 0; i < n; i++) {
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > 65535)
			return TK_EBADPORT;
	}
	*out = (uint16_t)v;
	return 0;
}

/*
 * Port text as split accepts it: a number 0..65535, or a service name
 * ("http", "http-alt") left for the resolver.  Text that starts with a
 * digit must be a number ("0x50" is a mistake, not a name).  Service names
 * start with a letter and go on with letters, digits, '-' and '_' (RFC 6335
 * plus the underscores of old services files); that keeps signs and spaces
 * out.  tk_resolve() applies the same rule.
 */
static int
port_text_check(const char *s, size_t n)
{
	uint16_t v;

	if (n == 0 || n >= TK_PORTLEN)
		return TK_EBADPORT;
	if (is_digit(s[0]))
		return port_value(s, n, &v);
	if (!is_alpha(s[0]))
		return TK_EBADPORT;
	for (size_t i = 1; i < n; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-' &&
		    s[i] != '_')
			return TK_EBADPORT;
	return 0;
}

/*
 * A host name or IPv4 literal: labels of letters, digits, '-' and '_'
 * (underscores occur in real names, e.g. SRV-style ones), 1..63 bytes each,
 * separated by single dots, an optional trailing dot.  No IDN: names must be
 * ASCII already.
 */
static bool
hostname_ok(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n >= TK_HOSTLEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

/*
 * An IPv6 literal in s[0..n), with an optional zone ("fe80::1%eth0").
 * Fills *a and zone (the text after '%', "" if none).  Pure.
 */
static bool
ipv6_text(const char *s, size_t n, struct in6_addr *a, char zone[IF_NAMESIZE])
{
	char ip[INET6_ADDRSTRLEN];
	const char *pct = memchr(s, '%', n);
	size_t alen = pct != NULL ? (size_t)(pct - s) : n;

	zone[0] = '\0';
	if (alen == 0 || alen >= sizeof(ip))
		return false;
	memcpy(ip, s, alen);
	ip[alen] = '\0';
	if (inet_pton(AF_INET6, ip, a) != 1)
		return false;
	if (pct != NULL) {
		const char *z = pct + 1;
		size_t zlen = n - alen - 1;

		/* Linux interface names: printable, no '/', ':' or space. */
		if (zlen == 0 || zlen >= IF_NAMESIZE)
			return false;
		for (size_t i = 0; i < zlen; i++)
			if (z[i] <= ' ' || z[i] >= 0x7f || z[i] == '/' ||
			    z[i] == ':' || z[i] == '%' || z[i] == '[' ||
			    z[i] == ']')
				return false;
		memcpy(zone, z, zlen);
		zone[zlen] = '\0';
	}
	return true;
}

static bool
ipv6_text_ok(const char *s, size_t n)
{
	struct in6_addr a;
	char zone[IF_NAMESIZE];

	return ipv6_text(s, n, &a, zone);
}

int
tk_hostport_split(const char *text, char host[TK_HOSTLEN],
		  char port[TK_PORTLEN])
{
	const char *h = text, *p = NULL, *colon;
	size_t hlen = 0, plen = 0;
	int err;

	host[0] = '\0';
	port[0] = '\0';
	if (text == NULL || text[0] == '\0')
		return TK_EBADADDR;

	if (text[0] == '[') {
		/* "[v6]" or "[v6]:port": brackets are for IPv6 literals. */
		const char *close = strchr(text, ']');

		if (close == NULL)
			return TK_EBADADDR;
		h = text + 1;
		hlen = (size_t)(close - h);
		if (!ipv6_text_ok(h, hlen))
			return TK_EBADADDR;
		if (close[1] == ':') {
			p = close + 2;
			plen = strlen(p);
			if (plen == 0)
				return TK_EBADPORT;
		} else if (close[1] != '\0') {
			return TK_EBADADDR;
		}
	} else if ((colon = strchr(text, ':')) == NULL) {
		/* "8080" is a port; anything else without a colon a host. */
		size_t n = strlen(text);

		if (all_digits(text, n)) {
			p = text;
			plen = n;
		} else {
			hlen = n;
			if (!hostname_ok(h, hlen))
				return TK_EBADADDR;
		}
	} else if (strchr(colon + 1, ':') == NULL) {
		/* "host:port" or ":port". */
		hlen = (size_t)(colon - text);
		p = colon + 1;
		plen = strlen(p);
		if (hlen > 0 && !hostname_ok(h, hlen))
			return TK_EBADADDR;
		if (plen == 0)
			return TK_EBADPORT;
	} else {
		/* Two colons or more: a bare IPv6 literal, all host. */
		hlen = strlen(text);
		if (!ipv6_text_ok(h, hlen))
			return TK_EBADADDR;
	}

	if (p != NULL && (err = port_text_check(p, plen)) < 0)
		return err;
	/* Checked above: hlen < TK_HOSTLEN and plen < TK_PORTLEN. */
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (p != NULL) {
		memcpy(port, p, plen);
		port[plen] = '\0';
	}
	return 0;
}

int
tk_port_parse(const char *text, uint16_t *port)
{
	size_t n;

	/* Leading zeros are fine, as long as the text fits TK_PORTLEN. */
	if (text == NULL || (n = strnlen(text, TK_PORTLEN)) >= TK_PORTLEN)
		return TK_EBADPORT;
	return port_value(text, n, port);
}

int
tk_addr_parse(const char *text, uint16_t default_port, struct tk_addr *out)
{
	char host[TK_HOSTLEN], port[TK_PORTLEN];
	uint16_t pn = default_port;
	int err;

	if ((err = tk_hostport_split(text, host, port)) < 0)
		return err;
	if (host[0] == '\0')
		return TK_EBADADDR;
	if (port[0] != '\0' && (err = tk_port_parse(port, &pn)) < 0)
		return err;
	return tk_addr_from_ip(host, pn, out);
}

/* A zone ("eth0" or "3") to a scope id; 0 if there is no such interface. */
static uint32_t
zone_index(const char *zone)
{
	size_t n = strlen(zone);
	unsigned long long v = 0;

	if (!all_digits(zone, n))
		return if_nametoindex(zone);
	if (n > 10)
		return 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(zone[i] - '0');
	return v > UINT32_MAX ? 0 : (uint32_t)v;
}

int
tk_addr_from_ip(const char *ip, uint16_t port, struct tk_addr *out)
{
	struct tk_addr a;
	char zone[IF_NAMESIZE];
	size_t n;

	if (ip == NULL || (n = strnlen(ip, TK_HOSTLEN)) >= TK_HOSTLEN)
		return TK_EBADADDR;
	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET, ip, &a.u.in4.sin_addr) == 1) {
		a.u.in4.sin_family = AF_INET;
		a.u.in4.sin_port = htons(port);
		a.len = sizeof(a.u.in4);
	} else if (ipv6_text(ip, n, &a.u.in6.sin6_addr, zone)) {
		a.u.in6.sin6_family = AF_INET6;
		a.u.in6.sin6_port = htons(port);
		/* A zone names an interface; scope id 0 would mean none. */
		if (zone[0] != '\0' &&
		    (a.u.in6.sin6_scope_id = zone_index(zone)) == 0)
			return TK_EBADADDR;
		a.len = sizeof(a.u.in6);
	} else {
		return TK_EBADADDR;
	}
	*out = a;
	return 0;
}

char *
tk_addr_format_ip(const struct tk_addr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN], zone[IF_NAMESIZE];
	uint32_t scope;

	if (len == 0)
		return buf;
	switch (a->u.sa.sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &a->u.in4.sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s", ip);
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &a->u.in6.sin6_addr, ip, sizeof(ip));
		scope = a->u.in6.sin6_scope_id;
		if (scope == 0)
			snprintf(buf, len, "%s", ip);
		else if (if_indextoname(scope, zone) != NULL)
			snprintf(buf, len, "%s%%%s", ip, zone);
		else
			/* The interface is gone: the number still says it. */
			snprintf(buf, len, "%s%%%u", ip, (unsigned)scope);
		break;
	case AF_UNIX:
		/* A UNIX address has no IP part: the whole name stands. */
		tk_addr_format(a, buf, len);
		break;
	default:
		snprintf(buf, len, "?");
	}
	return buf;
}

/*
 * The name of a UNIX address: the bytes of sun_path the length covers, the
 * abstract ones without their leading NUL, a path's up to its first NUL.
 */
static size_t
unix_name(const struct tk_addr *a, const char **name, bool *abstract)
{
	const char *p = a->u.un.sun_path;
	size_t n = 0;

	if (a->len > offsetof(struct sockaddr_un, sun_path))
		n = a->len - offsetof(struct sockaddr_un, sun_path);
	if (n > sizeof(a->u.un.sun_path))
		n = sizeof(a->u.un.sun_path);
	*abstract = n > 0 && p[0] == '\0';
	if (*abstract) {
		*name = p + 1;
		return n - 1;
	}
	*name = p;
	return strnlen(p, n);
}

/* "unix:/path" or "unix:@name", every byte that is not plain text escaped. */
static void
format_unix(const struct tk_addr *a, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const char *name;
	bool abstract;
	size_t n = unix_name(a, &name, &abstract), o;

	o = (size_t)snprintf(buf, len, "unix:%s", abstract ? "@" : "");
	for (size_t i = 0; i < n && o < len; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
			if (o + 1 >= len)
				break;
			buf[o++] = (char)ch;
			continue;
		}
		if (o + 4 >= len)
			break;
		buf[o++] = '\\';
		buf[o++] = 'x';
		buf[o++] = hex[ch >> 4];
		buf[o++] = hex[ch & 15];
	}
	if (o < len)
		buf[o] = '\0';
}

char *
tk_addr_format(const struct tk_addr *a, char *buf, size_t len)
{
	char ip[TK_ADDRSTRLEN];

	if (len == 0)
		return buf;
	switch (a->u.sa.sa_family) {
	case AF_INET:
		snprintf(buf, len, "%s:%u",
			 tk_addr_format_ip(a, ip, sizeof(ip)), tk_addr_port(a));
		break;
	case AF_INET6:
		snprintf(buf, len, "[%s]:%u",
			 tk_addr_format_ip(a, ip, sizeof(ip)), tk_addr_port(a));
		break;
	case AF_UNIX:
		format_unix(a, buf, len);
		break;
	default:
		snprintf(buf, len, "?");
	}
	return buf;
}

int
tk_addr_from_unix(const char *path, size_t len, bool abstract,
		  struct tk_addr *out)
{
	struct tk_addr a;
	size_t off = abstract ? 1 : 0;

	if (path == NULL || len == 0)
		return TK_EBADADDR;
	/* A path is a C string to the kernel: a NUL would cut it short. */
	if (!abstract && memchr(path, '\0', len) != NULL)
		return TK_EBADADDR;
	/* A path needs its NUL, an abstract name its leading one: 107. */
	if (len + 1 > sizeof(a.u.un.sun_path))
		return -ENAMETOOLONG;
	memset(&a, 0, sizeof(a));
	a.u.un.sun_family = AF_UNIX;
	memcpy(a.u.un.sun_path + off, path, len);
	/* An abstract name is exactly its bytes: no NUL counted after it. */
	a.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	*out = a;
	return 0;
}

uint16_t
tk_addr_port(const struct tk_addr *a)
{
	switch (a->u.sa.sa_family) {
	case AF_INET:
		return ntohs(a->u.in4.sin_port);
	case AF_INET6:
		return ntohs(a->u.in6.sin6_port);
	default:
		return 0;
	}
}

void
tk_addr_set_port(struct tk_addr *a, uint16_t port)
{
	switch (a->u.sa.sa_family) {
	case AF_INET:
		a->u.in4.sin_port = htons(port);
		break;
	case AF_INET6:
		a->u.in6.sin6_port = htons(port);
		break;
	}
}

int
tk_addr_family(const struct tk_addr *a)
{
	return a->u.sa.sa_family;
}

bool
tk_addr_is_loopback(const struct tk_addr *a)
{
	const struct in6_addr *v6 = &a->u.in6.sin6_addr;

	switch (a->u.sa.sa_family) {
	case AF_INET:
		return (ntohl(a->u.in4.sin_addr.s_addr) >> 24) == 127;
	case AF_INET6:
		/* A v4-mapped 127/8 reaches the IPv4 loopback too. */
		return IN6_IS_ADDR_LOOPBACK(v6) ||
		       (IN6_IS_ADDR_V4MAPPED(v6) && v6->s6_addr[12] == 127);
	case AF_UNIX:
		return true; /* a peer on this machine, whatever its name */
	default:
		return false;
	}
}

bool
tk_addr_is_any(const struct tk_addr *a)
{
	switch (a->u.sa.sa_family) {
	case AF_INET:
		return a->u.in4.sin_addr.s_addr == htonl(INADDR_ANY);
	case AF_INET6:
		return IN6_IS_ADDR_UNSPECIFIED(&a->u.in6.sin6_addr);
	default:
		return false;
	}
}

bool
tk_addr_equal(const struct tk_addr *a, const struct tk_addr *b)
{
	/* Field by field: padding and sin6_flowinfo do not make a difference.
	 */
	if (a->u.sa.sa_family != b->u.sa.sa_family)
		return false;
	switch (a->u.sa.sa_family) {
	case AF_INET:
		return a->u.in4.sin_addr.s_addr == b->u.in4.sin_addr.s_addr &&
		       a->u.in4.sin_port == b->u.in4.sin_port;
	case AF_INET6:
		return memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr,
			      sizeof(struct in6_addr)) == 0 &&
		       a->u.in6.sin6_port == b->u.in6.sin6_port &&
		       a->u.in6.sin6_scope_id == b->u.in6.sin6_scope_id;
	case AF_UNIX: {
		const char *na, *nb;
		bool aa, ab;
		size_t la = unix_name(a, &na, &aa), lb = unix_name(b, &nb, &ab);

		/* Bytes after a path's NUL do not count; an abstract's do. */
		return aa == ab && la == lb && memcmp(na, nb, la) == 0;
	}
	default:
		return a->len == b->len && a->len <= sizeof(a->u) &&
		       memcmp(&a->u, &b->u, a->len) == 0;
	}
}
