/* proxyproto.c: the PROXY protocol's pure parser and formatter (v1 and
 * v2). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tcpkit.h"

#define V1_PREFIX     "PROXY "
#define V1_PREFIX_LEN 6

static const unsigned char v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

/* v2 address block sizes: IPv4, IPv6, UNIX. */
#define V2_ADDR4     12
#define V2_ADDR6     36
#define V2_ADDRUNIX  216
#define V2_UNIX_PATH 108

#define PP2_TYPE_ALPN	   0x01
#define PP2_TYPE_AUTHORITY 0x02

static int fail(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return TK_EPPHEADER;
}

/* Does buf[0..len) match the start of want[0..wlen)? */
static bool
prefix_of(const unsigned char *buf, size_t len, const unsigned char *want,
	  size_t wlen)
{
	return memcmp(buf, want, len < wlen ? len : wlen) == 0;
}

/* The next space-separated field of a v1 line, NUL-terminated in place. */
static char *
v1_field(char **p)
{
	char *start = *p, *sp = strchr(start, ' ');

	if (sp == NULL) {
		*p = start + strlen(start);
		return start;
	}
	*sp = '\0';
	*p = sp + 1;
	return start;
}

/* A v1 port: 0..65535 in decimal, no sign, no leading zero. */
static int
v1_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

static int
v1_addr(const char *s, int family, struct tk_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		a->u.in4.sin_family = AF_INET;
		a->len = sizeof(a->u.in4);
		return inet_pton(AF_INET, s, &a->u.in4.sin_addr) == 1 ? 0 : -1;
	}
	a->u.in6.sin6_family = AF_INET6;
	a->len = sizeof(a->u.in6);
	return inet_pton(AF_INET6, s, &a->u.in6.sin6_addr) == 1 ? 0 : -1;
}

/* A whole v1 line, CRLF included (len bytes); returns len or an error. */
static int
parse_v1(const unsigned char *buf, size_t len, struct tk_pp_header *h,
	 char *why, size_t whylen)
{
	char line[TK_PP_V1_MAX + 1], *p, *proto, *f[4];
	uint16_t sport, dport;
	int family;

	/* Without the CRLF; the caller checked every byte is printable. */
	memcpy(line, buf, len - 2);
	line[len - 2] = '\0';
	p = line + V1_PREFIX_LEN;
	proto = v1_field(&p);
	h->version = 1;
	h->command = TK_PP_PROXY;
	if (strcmp(proto, "UNKNOWN") == 0) {
		/* Whatever follows is to be ignored (the spec says so). */
		h->family = TK_PP_UNSPEC;
		return (int)len;
	}
	if (strcmp(proto, "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(proto, "TCP6") == 0)
		family = AF_INET6;
	else
		return fail(why, whylen, "v1: unknown protocol '%.16s'", proto);
	if (line[len - 3] == ' ')
		return fail(why, whylen, "v1: a space before the CRLF");
	for (int i = 0; i < 4; i++) {
		if (*p == '\0')
			return fail(why, whylen, "v1: %d fields, not 6", i + 2);
		f[i] = v1_field(&p);
		if (*f[i] == '\0')
			return fail(why, whylen,
				    "v1: empty field (two spaces)");
	}
	if (*p != '\0')
		return fail(why, whylen, "v1: more than 6 fields");
	if (v1_addr(f[0], family, &h->src) < 0 ||
	    v1_addr(f[1], family, &h->dst) < 0)
		return fail(why, whylen, "v1: '%.46s' is not an %s address",
			    v1_addr(f[0], family, &h->src) < 0 ? f[0] : f[1],
			    family == AF_INET ? "IPv4" : "IPv6");
	if (v1_port(f[2], &sport) < 0 || v1_port(f[3], &dport) < 0)
		return fail(why, whylen, "v1: bad port '%.8s'",
			    v1_port(f[2], &sport) < 0 ? f[2] : f[3]);
	tk_addr_set_port(&h->src, sport);
	tk_addr_set_port(&h->dst, dport);
	h->family = family == AF_INET ? TK_PP_TCP4 : TK_PP_TCP6;
	return (int)len;
}

/* v1: complete once its LF is in, within TK_PP_V1_MAX bytes. */
static int
v1(const unsigned char *buf, size_t len, struct tk_pp_header *h, char *why,
   size_t whylen)
{
	size_t max = len < TK_PP_V1_MAX ? len : TK_PP_V1_MAX;

	for (size_t i = V1_PREFIX_LEN; i < max; i++) {
		if (buf[i] == '\r') {
			if (i + 2 > TK_PP_V1_MAX)
				break;
			if (i + 1 == len)
				return 0;
			if (buf[i + 1] != '\n')
				return fail(why, whylen,
					    "v1: CR not followed by LF");
			return parse_v1(buf, i + 2, h, why, whylen);
		}
		if (buf[i] == '\n')
			return fail(why, whylen,
				    "v1: line ends in LF, not CRLF");
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return fail(why, whylen,
				    "v1: byte 0x%02x in the line at %zu",
				    buf[i], i);
	}
	if (len >= TK_PP_V1_MAX)
		return fail(why, whylen, "v1: no CRLF within %d bytes",
			    TK_PP_V1_MAX);
	return 0;
}

static uint16_t
be16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
v2_ip(struct tk_addr *a, int family, const unsigned char *ip, size_t iplen,
      const unsigned char *port)
{
	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		a->u.in4.sin_family = AF_INET;
		memcpy(&a->u.in4.sin_addr, ip, iplen);
		memcpy(&a->u.in4.sin_port, port, 2);
		a->len = sizeof(a->u.in4);
		return;
	}
	a->u.in6.sin6_family = AF_INET6;
	memcpy(&a->u.in6.sin6_addr, ip, iplen);
	memcpy(&a->u.in6.sin6_port, port, 2);
	a->len = sizeof(a->u.in6);
}

/*
 * A UNIX name of up to 108 bytes: a path ends at its first NUL; an
 * abstract one (first byte NUL) keeps all 108.
 */
static void
v2_unix(struct tk_addr *a, const unsigned char *path)
{
	size_t n = V2_UNIX_PATH;

	memset(a, 0, sizeof(*a));
	a->u.un.sun_family = AF_UNIX;
	if (path[0] != '\0')
		n = strnlen((const char *)path, V2_UNIX_PATH);
	memcpy(a->u.un.sun_path, path, n);
	a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

static void
tlv_text(char *dst, size_t size, const unsigned char *v, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
	/* A NUL inside would cut the text short: keep what is before it. */
}

static int
v2_tlvs(const unsigned char *p, size_t n, struct tk_pp_header *h, char *why,
	size_t whylen)
{
	while (n > 0) {
		size_t vlen;

		if (n < 3)
			return fail(why, whylen,
				    "v2: %zu stray bytes after "
				    "the last TLV",
				    n);
		vlen = be16(p + 1);
		if (vlen > n - 3)
			return fail(why, whylen,
				    "v2: TLV 0x%02x of %zu bytes past the end",
				    p[0], vlen);
		if (p[0] == PP2_TYPE_ALPN)
			tlv_text(h->alpn, sizeof(h->alpn), p + 3, vlen);
		else if (p[0] == PP2_TYPE_AUTHORITY)
			tlv_text(h->authority, sizeof(h->authority), p + 3,
				 vlen);
		h->ntlvs++;
		p += 3 + vlen;
		n -= 3 + vlen;
	}
	return 0;
}

static int
v2(const unsigned char *buf, size_t len, struct tk_pp_header *h, char *why,
   size_t whylen)
{
	unsigned ver, cmd, fam, proto;
	size_t body, need = 0;
	const unsigned char *b = buf + TK_PP_V2_PREFIX;
	int err;

	if (len < TK_PP_V2_PREFIX)
		return 0;
	ver = buf[12] >> 4;
	cmd = buf[12] & 0xf;
	fam = buf[13] >> 4;
	proto = buf[13] & 0xf;
	body = be16(buf + 14);
	if (ver != 2)
		return fail(why, whylen, "v2: version %u, not 2", ver);
	if (cmd > 1)
		return fail(why, whylen, "v2: unknown command 0x%x", cmd);
	if (fam > 3)
		return fail(why, whylen, "v2: unknown address family 0x%x",
			    fam);
	if (proto > 2)
		return fail(why, whylen, "v2: unknown transport 0x%x", proto);
	if (body > TK_PP_V2_MAX_BODY)
		return fail(why, whylen, "v2: %zu bytes, over the %d bound",
			    body, TK_PP_V2_MAX_BODY);
	if (len < TK_PP_V2_PREFIX + body)
		return 0;
	h->version = 2;
	h->command = cmd == 0 ? TK_PP_LOCAL : TK_PP_PROXY;
	h->family = TK_PP_UNSPEC;
	if (fam != 0 && proto == 2)
		return fail(why, whylen, "v2: a datagram header on a stream");
	if (fam != 0 && proto == 0)
		return fail(why, whylen, "v2: an address with no transport");
	need = fam == 1	  ? V2_ADDR4
	       : fam == 2 ? V2_ADDR6
	       : fam == 3 ? V2_ADDRUNIX
			  : 0;
	if (body < need)
		return fail(why, whylen,
			    "v2: %zu bytes, too short for %s (needs %zu)", body,
			    fam == 1   ? "TCP4"
			    : fam == 2 ? "TCP6"
				       : "UNIX",
			    need);
	if (fam == 1) {
		v2_ip(&h->src, AF_INET, b, 4, b + 8);
		v2_ip(&h->dst, AF_INET, b + 4, 4, b + 10);
		h->family = TK_PP_TCP4;
	} else if (fam == 2) {
		v2_ip(&h->src, AF_INET6, b, 16, b + 32);
		v2_ip(&h->dst, AF_INET6, b + 16, 16, b + 34);
		h->family = TK_PP_TCP6;
	} else if (fam == 3) {
		v2_unix(&h->src, b);
		v2_unix(&h->dst, b + V2_UNIX_PATH);
		h->family = TK_PP_UNIX;
	}
	if ((err = v2_tlvs(b + need, body - need, h, why, whylen)) < 0)
		return err;
	return (int)(TK_PP_V2_PREFIX + body);
}

int
tk_pp_parse(const void *data, size_t len, struct tk_pp_header *h, char *why,
	    size_t whylen)
{
	const unsigned char *buf = data;

	memset(h, 0, sizeof(*h));
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (len == 0)
		return 0;
	if (buf[0] == 'P') {
		if (!prefix_of(buf, len, (const unsigned char *)V1_PREFIX,
			       V1_PREFIX_LEN))
			return fail(why, whylen,
				    "no PROXY header (starts with 'P')");
		return len <= V1_PREFIX_LEN ? 0 : v1(buf, len, h, why, whylen);
	}
	if (!prefix_of(buf, len, v2_sig, sizeof(v2_sig)))
		return fail(why, whylen, "no PROXY header (first byte 0x%02x)",
			    buf[0]);
	return v2(buf, len, h, why, whylen);
}

/* Both addresses as one IP family, IPv4 mapped into IPv6 if they differ. */
static int
common_family(const struct tk_addr *src, const struct tk_addr *dst,
	      struct tk_addr *s, struct tk_addr *d)
{
	int fs = tk_addr_family(src), fd = tk_addr_family(dst);

	*s = *src;
	*d = *dst;
	if ((fs != AF_INET && fs != AF_INET6) ||
	    (fd != AF_INET && fd != AF_INET6))
		return fs == AF_UNIX && fd == AF_UNIX ? AF_UNIX : AF_UNSPEC;
	if (fs == fd)
		return fs;
	for (int i = 0; i < 2; i++) {
		struct tk_addr *a = i == 0 ? s : d;
		struct sockaddr_in in4;

		if (a->u.sa.sa_family != AF_INET)
			continue;
		in4 = a->u.in4;
		memset(a, 0, sizeof(*a));
		a->u.in6.sin6_family = AF_INET6;
		a->u.in6.sin6_port = in4.sin_port;
		a->u.in6.sin6_addr.s6_addr[10] = 0xff;
		a->u.in6.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&a->u.in6.sin6_addr.s6_addr[12], &in4.sin_addr, 4);
		a->len = sizeof(a->u.in6);
	}
	return AF_INET6;
}

static int
format_v1(int family, const struct tk_addr *s, const struct tk_addr *d,
	  char *buf, size_t size)
{
	char sip[INET6_ADDRSTRLEN], dip[INET6_ADDRSTRLEN];
	int n;

	if (family != AF_INET && family != AF_INET6)
		n = snprintf(buf, size, "PROXY UNKNOWN\r\n");
	else
		n = snprintf(buf, size, "PROXY %s %s %s %u %u\r\n",
			     family == AF_INET ? "TCP4" : "TCP6",
			     tk_addr_format_ip(s, sip, sizeof(sip)),
			     tk_addr_format_ip(d, dip, sizeof(dip)),
			     tk_addr_port(s), tk_addr_port(d));
	return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

static void
put_unix(unsigned char *p, const struct tk_addr *a)
{
	size_t off = offsetof(struct sockaddr_un, sun_path), n = 0;

	memset(p, 0, V2_UNIX_PATH);
	if (a->len > off)
		n = a->len - off;
	memcpy(p, a->u.un.sun_path, n < V2_UNIX_PATH ? n : V2_UNIX_PATH);
}

static int
format_v2(bool local, int family, const struct tk_addr *s,
	  const struct tk_addr *d, unsigned char *buf, size_t size)
{
	size_t body = family == AF_INET	   ? V2_ADDR4
		      : family == AF_INET6 ? V2_ADDR6
		      : family == AF_UNIX  ? V2_ADDRUNIX
					   : 0;
	unsigned char *b = buf + TK_PP_V2_PREFIX;

	if (size < TK_PP_V2_PREFIX + body)
		return -ENOSPC;
	memcpy(buf, v2_sig, sizeof(v2_sig));
	buf[12] = local ? 0x20 : 0x21;
	buf[13] = family == AF_INET    ? 0x11
		  : family == AF_INET6 ? 0x21
		  : family == AF_UNIX  ? 0x31
				       : 0x00;
	buf[14] = (unsigned char)(body >> 8);
	buf[15] = (unsigned char)body;
	if (family == AF_INET) {
		memcpy(b, &s->u.in4.sin_addr, 4);
		memcpy(b + 4, &d->u.in4.sin_addr, 4);
		memcpy(b + 8, &s->u.in4.sin_port, 2);
		memcpy(b + 10, &d->u.in4.sin_port, 2);
	} else if (family == AF_INET6) {
		memcpy(b, &s->u.in6.sin6_addr, 16);
		memcpy(b + 16, &d->u.in6.sin6_addr, 16);
		memcpy(b + 32, &s->u.in6.sin6_port, 2);
		memcpy(b + 34, &d->u.in6.sin6_port, 2);
	} else if (family == AF_UNIX) {
		put_unix(b, s);
		put_unix(b + V2_UNIX_PATH, d);
	}
	return (int)(TK_PP_V2_PREFIX + body);
}

int
tk_pp_format(int version, const struct tk_addr *src, const struct tk_addr *dst,
	     void *buf, size_t size)
{
	struct tk_addr s, d;
	int family = AF_UNSPEC;

	memset(&s, 0, sizeof(s));
	memset(&d, 0, sizeof(d));
	if (version != 1 && version != 2)
		return -EINVAL;
	if (src != NULL && dst != NULL)
		family = common_family(src, dst, &s, &d);
	if (version == 1)
		return format_v1(family, &s, &d, buf, size);
	return format_v2(src == NULL, family, &s, &d, buf, size);
}

int
tk_pp_format_header(const struct tk_pp_header *h, void *buf, size_t size)
{
	int family = h->family == TK_PP_TCP4   ? AF_INET
		     : h->family == TK_PP_TCP6 ? AF_INET6
		     : h->family == TK_PP_UNIX ? AF_UNIX
					       : AF_UNSPEC;

	if (h->version == 1)
		return format_v1(family, &h->src, &h->dst, buf, size);
	if (h->version != 2)
		return -EINVAL;
	return format_v2(h->command == TK_PP_LOCAL, family, &h->src, &h->dst,
			 buf, size);
}
