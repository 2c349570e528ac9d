/* proxy.c: proxy URLs, and the SOCKS5, SOCKS4a and HTTP CONNECT messages:
 * pure encoders and parsers. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define DEFAULT_PORT "1080"

static const struct {
	const char *name;
	enum tk_proxy_kind kind;
} schemes[] = {
	{ "socks5", TK_PROXY_SOCKS5 },
	{ "socks5h", TK_PROXY_SOCKS5H },
	{ "socks4a", TK_PROXY_SOCKS4A },
	{ "http", TK_PROXY_HTTP },
};

const char *
tk_proxy_scheme(enum tk_proxy_kind kind)
{
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (schemes[i].kind == kind)
			return schemes[i].name;
	return "none";
}

static int
fail(char *why, size_t whylen, const char *msg)
{
	if (why != NULL && whylen > 0)
		snprintf(why, whylen, "%s", msg);
	return TK_EBADURL;
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * Percent-decode in[0..n) into out (TK_PROXY_CREDLEN bytes with the NUL).
 * A decoded NUL is refused: no protocol here could carry it.
 */
static int
decode_cred(const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int ch = (unsigned char)in[i];

		if (ch == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = hexval(in[i + 1]);
			lo = hexval(in[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			ch = hi * 16 + lo;
			i += 2;
		}
		if (ch == 0 || o + 1 >= TK_PROXY_CREDLEN)
			return -1;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return 0;
}

int
tk_proxy_parse(const char *url, struct tk_proxy *out, char *why, size_t whylen)
{
	struct tk_proxy p;
	const char *sep, *auth, *at, *hp, *end;
	char hostport[TK_HOSTLEN + TK_PORTLEN + 4];
	size_t slen;
	int err;

	memset(&p, 0, sizeof(p));
	if (url == NULL || (sep = strstr(url, "://")) == NULL)
		return fail(why, whylen,
			    "a proxy is a URL: socks5://, socks5h://, "
			    "socks4a:// or http://");
	slen = (size_t)(sep - url);
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strlen(schemes[i].name) == slen &&
		    strncasecmp(url, schemes[i].name, slen) == 0)
			p.kind = schemes[i].kind;
	if (p.kind == TK_PROXY_NONE)
		return fail(why, whylen,
			    "unknown proxy scheme (socks5, socks5h, socks4a "
			    "or http)");
	auth = sep + 3;
	end = auth + strcspn(auth, "/?#");
	if (*end != '\0' && strcmp(end, "/") != 0)
		return fail(why, whylen,
			    "a proxy URL has no path, query or fragment");
	at = NULL;
	for (const char *q = auth; q < end; q++)
		if (*q == '@')
			at = q;
	hp = auth;
	if (at != NULL) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));
		size_t ulen = colon != NULL ? (size_t)(colon - auth)
					    : (size_t)(at - auth);

		if (ulen == 0 || decode_cred(auth, ulen, p.user) < 0 ||
		    (colon != NULL &&
		     decode_cred(colon + 1, (size_t)(at - colon - 1), p.pass) <
			     0)) {
			tk_proxy_clear(&p);
			return fail(why, whylen,
				    "bad user or password in the proxy URL "
				    "(each 1 to 255 bytes, percent-encoded)");
		}
		p.has_auth = true;
		hp = at + 1;
	}
	if ((size_t)(end - hp) >= sizeof(hostport)) {
		tk_proxy_clear(&p);
		return fail(why, whylen, "proxy host too long");
	}
	memcpy(hostport, hp, (size_t)(end - hp));
	hostport[end - hp] = '\0';
	err = tk_hostport_split(hostport, p.host, p.port);
	if (err < 0 || p.host[0] == '\0') {
		tk_proxy_clear(&p);
		return fail(why, whylen,
			    err == TK_EBADPORT ? "bad port in the proxy URL"
					       : "no proxy host in the URL");
	}
	if (p.port[0] == '\0') {
		strcpy(p.port, DEFAULT_PORT);
	} else {
		uint16_t port;

		if (tk_port_parse(p.port, &port) < 0 || port == 0) {
			tk_proxy_clear(&p);
			return fail(
				why, whylen,
				"the proxy's port must be a number from 1 to 65535");
		}
	}
	*out = p;
	explicit_bzero(&p, sizeof(p));
	return 0;
}

void
tk_proxy_clear(struct tk_proxy *p)
{
	if (p != NULL)
		explicit_bzero(p, sizeof(*p));
}

char *
tk_proxy_format(const struct tk_proxy *p, char *buf, size_t len)
{
	bool v6 = strchr(p->host, ':') != NULL;

	if (len == 0)
		return buf;
	snprintf(buf, len, "%s://%s%s%s%s%s:%s", tk_proxy_scheme(p->kind),
		 p->has_auth ? p->user : "", p->has_auth ? "@" : "",
		 v6 ? "[" : "", p->host, v6 ? "]" : "", p->port);
	return buf;
}

ssize_t
tk_socks5_greeting(bool userpass, uint8_t *out, size_t len)
{
	size_t n = userpass ? 4 : 3;

	if (len < n)
		return -E2BIG;
	out[0] = 5;
	out[1] = (uint8_t)(n - 2);
	out[2] = TK_SOCKS5_AUTH_NONE;
	if (userpass)
		out[3] = TK_SOCKS5_AUTH_USERPASS;
	return (ssize_t)n;
}

ssize_t
tk_socks5_parse_method(const uint8_t *in, size_t len, uint8_t *method)
{
	if (len < 2)
		return len > 0 && in[0] != 5 ? TK_EPROXYPROTO : 0;
	if (in[0] != 5)
		return TK_EPROXYPROTO;
	*method = in[1];
	return 2;
}

ssize_t
tk_socks5_auth_request(const char *user, const char *pass, uint8_t *out,
		       size_t len)
{
	size_t ulen = strlen(user), plen = strlen(pass), n = 3 + ulen + plen;

	/* RFC 1929: a password of at least one byte (PLEN 1 to 255). */
	if (ulen == 0 || ulen > 255 || plen == 0 || plen > 255)
		return -EINVAL;
	if (len < n)
		return -E2BIG;
	out[0] = 1;
	out[1] = (uint8_t)ulen;
	memcpy(out + 2, user, ulen);
	out[2 + ulen] = (uint8_t)plen;
	memcpy(out + 3 + ulen, pass, plen);
	return (ssize_t)n;
}

ssize_t
tk_socks5_parse_auth(const uint8_t *in, size_t len, uint8_t *status)
{
	/* Version 1 is RFC 1929's; some servers answer 5, as curl accepts. */
	if (len > 0 && in[0] != 1 && in[0] != 5)
		return TK_EPROXYPROTO;
	if (len < 2)
		return 0;
	*status = in[1];
	return 2;
}

/* The address bytes of host as an IP literal: 4, 16, or 0 for a name. */
static size_t
ip_bytes(const char *host, uint8_t ip[16])
{
	struct tk_addr a;

	if (tk_addr_from_ip(host, 0, &a) < 0)
		return 0;
	if (tk_addr_family(&a) == AF_INET) {
		memcpy(ip, &a.u.in4.sin_addr, 4);
		return 4;
	}
	memcpy(ip, &a.u.in6.sin6_addr, 16);
	return 16;
}

ssize_t
tk_socks5_connect_request(const char *host, uint16_t port, uint8_t *out,
			  size_t len)
{
	uint8_t ip[16];
	size_t alen = ip_bytes(host, ip), hlen = strlen(host), n;

	if (hlen == 0 || (alen == 0 && hlen > 255))
		return -EINVAL;
	n = 4 + (alen != 0 ? alen : 1 + hlen) + 2;
	if (len < n)
		return -E2BIG;
	out[0] = 5;
	out[1] = 1; /* CONNECT */
	out[2] = 0;
	if (alen != 0) {
		out[3] = alen == 4 ? 1 : 4;
		memcpy(out + 4, ip, alen);
	} else {
		out[3] = 3;
		out[4] = (uint8_t)hlen;
		memcpy(out + 5, host, hlen);
	}
	out[n - 2] = (uint8_t)(port >> 8);
	out[n - 1] = (uint8_t)port;
	return (ssize_t)n;
}

ssize_t
tk_socks5_parse_reply(const uint8_t *in, size_t len, struct tk_socks_reply *r)
{
	size_t n;
	struct tk_addr a;

	/* RSV (in[2]) is not checked: curl does not either. */
	if (len > 0 && in[0] != 5)
		return TK_EPROXYPROTO;
	if (len < 5)
		return 0;
	switch (in[3]) {
	case 1:
		n = 4 + 4 + 2;
		break;
	case 4:
		n = 4 + 16 + 2;
		break;
	case 3:
		n = 4 + 1 + (size_t)in[4] + 2;
		break;
	default:
		return TK_EPROXYPROTO;
	}
	if (len < n)
		return 0;
	memset(r, 0, sizeof(*r));
	r->code = in[1];
	r->port = (uint16_t)(in[n - 2] << 8 | in[n - 1]);
	memset(&a, 0, sizeof(a));
	if (in[3] == 1) {
		a.u.in4.sin_family = AF_INET;
		memcpy(&a.u.in4.sin_addr, in + 4, 4);
		a.len = sizeof(a.u.in4);
		tk_addr_format_ip(&a, r->bound, sizeof(r->bound));
	} else if (in[3] == 4) {
		a.u.in6.sin6_family = AF_INET6;
		memcpy(&a.u.in6.sin6_addr, in + 4, 16);
		a.len = sizeof(a.u.in6);
		tk_addr_format_ip(&a, r->bound, sizeof(r->bound));
	} else {
		/* A name, shown safely: it is the proxy's to choose. */
		for (size_t i = 0; i < in[4]; i++) {
			uint8_t ch = in[5 + i];

			r->bound[i] = ch > 0x20 && ch < 0x7f ? (char)ch : '?';
		}
		r->bound[in[4]] = '\0';
	}
	return (ssize_t)n;
}

const char *
tk_socks5_reply_text(uint8_t code)
{
	static const char *const text[] = {
		"succeeded",
		"general SOCKS server failure",
		"connection not allowed by ruleset",
		"network unreachable",
		"host unreachable",
		"connection refused",
		"TTL expired",
		"command not supported",
		"address type not supported",
	};

	return code < sizeof(text) / sizeof(text[0]) ? text[code]
						     : "unknown reply code";
}

ssize_t
tk_socks4a_request(const char *host, uint16_t port, const char *user,
		   uint8_t *out, size_t len)
{
	uint8_t ip[16];
	size_t alen = ip_bytes(host, ip), hlen = strlen(host);
	size_t ulen = user != NULL ? strlen(user) : 0, n;

	if (hlen == 0 || hlen > 255 || ulen > 255 || alen == 16)
		return -EINVAL;
	n = 8 + ulen + 1 + (alen == 4 ? 0 : hlen + 1);
	if (len < n)
		return -E2BIG;
	out[0] = 4;
	out[1] = 1; /* CONNECT */
	out[2] = (uint8_t)(port >> 8);
	out[3] = (uint8_t)port;
	if (alen == 4) {
		memcpy(out + 4, ip, 4);
	} else {
		/* 0.0.0.x, x != 0: "the name follows" (SOCKS4a). */
		memcpy(out + 4, "\0\0\0\1", 4);
	}
	memcpy(out + 8, user != NULL ? user : "", ulen);
	out[8 + ulen] = 0;
	if (alen != 4) {
		memcpy(out + 9 + ulen, host, hlen);
		out[9 + ulen + hlen] = 0;
	}
	return (ssize_t)n;
}

ssize_t
tk_socks4_parse_reply(const uint8_t *in, size_t len, struct tk_socks_reply *r)
{
	struct tk_addr a;

	/* The reply's version byte is 0 (some servers send 4). */
	if (len > 0 && in[0] != 0 && in[0] != 4)
		return TK_EPROXYPROTO;
	if (len < 8)
		return 0;
	memset(r, 0, sizeof(*r));
	r->code = in[1];
	r->port = (uint16_t)(in[2] << 8 | in[3]);
	memset(&a, 0, sizeof(a));
	a.u.in4.sin_family = AF_INET;
	memcpy(&a.u.in4.sin_addr, in + 4, 4);
	a.len = sizeof(a.u.in4);
	tk_addr_format_ip(&a, r->bound, sizeof(r->bound));
	return 8;
}

static size_t
base64(const uint8_t *in, size_t n, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

/* A host fit for a request line: no space, no control, no '@', '/'. */
static bool
host_ok(const char *host)
{
	if (*host == '\0' || strlen(host) >= TK_HOSTLEN)
		return false;
	for (const char *p = host; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f ||
		    strchr("/?#@[]\"\\", *p) != NULL)
			return false;
	return true;
}

ssize_t
tk_http_connect_request(const char *host, uint16_t port, const char *user,
			const char *pass, char *out, size_t len)
{
	/* "user:pass", each at most 255 bytes, in base64. */
	uint8_t cred[2 * TK_PROXY_CREDLEN];
	char b64[(sizeof(cred) + 2) / 3 * 4 + 1];
	bool v6 = strchr(host, ':') != NULL;
	char hp[TK_HOSTLEN + 16];
	struct tk_addr a;
	int n;

	if (!host_ok(host) || (v6 && tk_addr_from_ip(host, 0, &a) < 0))
		return -EINVAL;
	snprintf(hp, sizeof(hp), "%s%s%s:%u", v6 ? "[" : "", host,
		 v6 ? "]" : "", port);
	b64[0] = '\0';
	if (user != NULL) {
		size_t ulen = strlen(user),
		       plen = pass != NULL ? strlen(pass) : 0;

		/* Basic's user id cannot hold a colon (RFC 7617 2). */
		if (ulen >= TK_PROXY_CREDLEN || plen >= TK_PROXY_CREDLEN ||
		    strchr(user, ':') != NULL)
			return -EINVAL;
		memcpy(cred, user, ulen);
		cred[ulen] = ':';
		memcpy(cred + ulen + 1, pass != NULL ? pass : "", plen);
		base64(cred, ulen + 1 + plen, b64);
		explicit_bzero(cred, sizeof(cred));
	}
	n = snprintf(out, len,
		     "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s%s%s"
		     "User-Agent: tcpkit/" TK_VERSION_STRING "\r\n\r\n",
		     hp, hp, user != NULL ? "Proxy-Authorization: Basic " : "",
		     b64, user != NULL ? "\r\n" : "");
	explicit_bzero(b64, sizeof(b64));
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= len) {
		explicit_bzero(out, len);
		return -E2BIG;
	}
	return n;
}
