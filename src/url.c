/* url.c: tk_url_parse(), a pure parser for the URLs `tcpkit get` accepts. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

static bool
is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_scheme_char(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.';
}

static bool
is_host_char(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
}

/*
 * A URI is ASCII without controls or spaces (RFC 3986 section 2); whatever
 * else would go on the request line as is, so refuse it here rather than
 * send something a server must reject.  Non-ASCII must be percent-encoded.
 */
static bool
is_url_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/*
 * A host made of digits and dots only is meant as an IPv4 literal: insist
 * on four decimal parts of 0..255 without leading zeros, rather than hand
 * "1.2.3.999" or the octal-looking "010.0.0.1" to the resolver.
 */
static bool
is_numeric_host(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!is_digit((unsigned char)s[i]) && s[i] != '.')
			return false;
	return true;
}

static bool
is_ipv4(const char *s, size_t len)
{
	size_t i = 0, digits;
	unsigned parts, v;

	for (parts = 0; parts < 4; parts++) {
		if (parts > 0) {
			if (i == len || s[i] != '.')
				return false;
			i++;
		}
		v = 0;
		for (digits = 0; i < len && is_digit((unsigned char)s[i]);
		     digits++, i++) {
			if (digits == 3)
				return false;
			v = v * 10 + (unsigned)(s[i] - '0');
		}
		if (digits == 0 || v > 255 ||
		    (digits > 1 && s[i - digits] == '0'))
			return false;
	}
	return i == len;
}

/*
 * The text between the brackets.  inet_pton() wants a C string, so copy it
 * to the stack first: still no allocation, and never past len.
 * XXX Zone identifiers ("[fe80::1%25eth0]", RFC 6874) are refused for now.
 */
static bool
is_ipv6(const char *s, size_t len)
{
	char tmp[INET6_ADDRSTRLEN];
	struct in6_addr a;
	size_t i;

	if (len == 0 || len >= sizeof(tmp))
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!is_digit(c) && !(c >= 'a' && c <= 'f') &&
		    !(c >= 'A' && c <= 'F') && c != ':' && c != '.')
			return false;
	}
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return inet_pton(AF_INET6, tmp, &a) == 1;
}

static int
parse_port(const char *s, size_t len)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0)
		return TK_EBADURL;
	for (i = 0; i < len; i++) {
		if (!is_digit((unsigned char)s[i]))
			return TK_EBADURL;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > 65535)
			return TK_EBADURL;
	}
	return 0;
}

/*
 * Parse "scheme://host[:port][/path][?query][#fragment]".  Every span on
 * success lies inside text[0..len); empty spans point where the part would
 * have been.  On error *out is left zeroed.
 */
int
tk_url_parse(const char *text, size_t len, struct tk_url *out)
{
	size_t i, auth, auth_end, host_end, end;
	struct tk_url u;

	memset(out, 0, sizeof(*out));
	memset(&u, 0, sizeof(u));

	/* Spaces and controls anywhere, the dropped fragment included. */
	for (i = 0; i < len; i++)
		if (!is_url_char((unsigned char)text[i]))
			return TK_EBADURL;

	/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) then "://". */
	if (len == 0 || !is_alpha((unsigned char)text[0]))
		return TK_EBADURL;
	for (i = 1; i < len && is_scheme_char((unsigned char)text[i]); i++)
		continue;
	if (len - i < 3 || memcmp(text + i, "://", 3) != 0)
		return TK_EBADURL;
	u.scheme.off = 0;
	u.scheme.len = i;
	auth = i + 3;

	/* The fragment is not sent; the authority ends at the path or query. */
	end = auth;
	while (end < len && text[end] != '#')
		end++;
	auth_end = auth;
	while (auth_end < end && text[auth_end] != '/' && text[auth_end] != '?')
		auth_end++;
	/* Userinfo ("user:pass@host") is refused rather than sent in clear. */
	if (memchr(text + auth, '@', auth_end - auth) != NULL)
		return TK_EBADURL;

	if (auth < auth_end && text[auth] == '[') {
		const char *rb;

		rb = memchr(text + auth, ']', auth_end - auth);
		if (rb == NULL)
			return TK_EBADURL;
		host_end = (size_t)(rb - text);
		u.host.off = auth + 1;
		u.host.len = host_end - u.host.off;
		if (!is_ipv6(text + u.host.off, u.host.len))
			return TK_EBADURL;
		u.host_is_ipv6 = true;
		host_end++;
	} else {
		for (host_end = auth;
		     host_end < auth_end &&
		     is_host_char((unsigned char)text[host_end]);
		     host_end++)
			continue;
		u.host.off = auth;
		u.host.len = host_end - auth;
		if (u.host.len == 0 || u.host.len >= TK_HOSTLEN)
			return TK_EBADURL;
		if (is_numeric_host(text + auth, u.host.len) &&
		    !is_ipv4(text + auth, u.host.len))
			return TK_EBADURL;
	}

	/* After the host: nothing, or ":port" with at least one digit. */
	u.port.off = host_end;
	if (host_end < auth_end) {
		if (text[host_end] != ':')
			return TK_EBADURL;
		u.port.off = host_end + 1;
		u.port.len = auth_end - u.port.off;
		if (parse_port(text + u.port.off, u.port.len) != 0)
			return TK_EBADURL;
	}

	/* "?q" with no path stays "?q": the caller puts the "/" in front. */
	u.target.off = auth_end;
	u.target.len = end - auth_end;

	*out = u;
	return 0;
}

/*
 * RFC 3986 section 5.2.4 on in[0..n), into out (never longer than in):
 * "." and ".." segments go, so "/a/b/../c" is "/a/c".  Returns the length.
 */
static size_t
remove_dot_segments(const char *in, size_t n, char *out)
{
	const char *p = in, *end = in + n;
	size_t o = 0, left;

	while (p < end) {
		left = (size_t)(end - p);
		if (left >= 3 && memcmp(p, "../", 3) == 0) {
			p += 3;
		} else if (left >= 2 && memcmp(p, "./", 2) == 0) {
			p += 2;
		} else if (left >= 3 && memcmp(p, "/./", 3) == 0) {
			p += 2;
		} else if (left == 2 && memcmp(p, "/.", 2) == 0) {
			out[o++] = '/';
			p = end;
		} else if ((left >= 4 && memcmp(p, "/../", 4) == 0) ||
			   (left == 3 && memcmp(p, "/..", 3) == 0)) {
			/* Drop the last output segment and its '/'. */
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			if (left == 3) {
				out[o++] = '/';
				p = end;
			} else {
				p += 3;
			}
		} else if ((left == 1 && p[0] == '.') ||
			   (left == 2 && memcmp(p, "..", 2) == 0)) {
			p = end;
		} else {
			/* One segment, with its leading '/' if any. */
			do
				out[o++] = *p++;
			while (p < end && *p != '/');
		}
	}
	return o;
}

/* Append s[0..n) to out, with bounds. */
static bool
put(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
	if (n >= outlen - *o)
		return false;
	memcpy(out + *o, s, n);
	*o += n;
	return true;
}

ssize_t
tk_url_resolve(const char *base, const char *ref, char *out, size_t outlen)
{
	struct tk_url b;
	const char *bpath, *bquery, *rpath, *rquery;
	size_t reflen, i, auth_end, bplen, bqlen, rplen, rqlen, o = 0;
	size_t dir, mlen;
	char *merged;
	bool ok;

	if (outlen == 0 || tk_url_parse(base, strlen(base), &b) < 0)
		return TK_EBADURL;
	/* The fragment is ours alone: it is never sent. */
	reflen = strcspn(ref, "#");
	for (i = 0; i < reflen; i++)
		if (!is_url_char((unsigned char)ref[i]))
			return TK_EBADURL;

	/* An absolute URL ("scheme:..."): as it is. */
	if (reflen > 0 && is_alpha((unsigned char)ref[0])) {
		for (i = 1; i < reflen && is_scheme_char((unsigned char)ref[i]);
		     i++)
			continue;
		if (i < reflen && ref[i] == ':') {
			if (!put(out, outlen, &o, ref, reflen))
				return TK_ETOOBIG;
			out[o] = '\0';
			return (ssize_t)o;
		}
	}
	/* A network-path reference ("//host/path"): the base's scheme. */
	if (reflen >= 2 && ref[0] == '/' && ref[1] == '/') {
		if (!put(out, outlen, &o, base, b.scheme.len + 1) ||
		    !put(out, outlen, &o, ref, reflen))
			return TK_ETOOBIG;
		out[o] = '\0';
		return (ssize_t)o;
	}

	/* Otherwise the base's scheme and authority, then path and query. */
	auth_end = b.target.off;
	bpath = base + b.target.off;
	bplen = strcspn(bpath, "?#");
	if (bplen > b.target.len)
		bplen = b.target.len;
	bquery = bpath + bplen;
	bqlen = b.target.len - bplen;
	rpath = ref;
	rplen = strcspn(ref, "?#");
	if (rplen > reflen)
		rplen = reflen;
	rquery = ref + rplen;
	rqlen = reflen - rplen;

	if (!put(out, outlen, &o, base, auth_end))
		return TK_ETOOBIG;
	if (rplen == 0) {
		/* "?q" or "": the base's path, and its query unless replaced.
		 */
		if (!put(out, outlen, &o, bplen > 0 ? bpath : "/",
			 bplen > 0 ? bplen : 1) ||
		    !put(out, outlen, &o, rqlen > 0 ? rquery : bquery,
			 rqlen > 0 ? rqlen : bqlen))
			return TK_ETOOBIG;
		out[o] = '\0';
		return (ssize_t)o;
	}

	/* The path: the ref's, or merged with the base's directory. */
	dir = 0;
	if (rpath[0] != '/') {
		for (i = 0; i < bplen; i++)
			if (bpath[i] == '/')
				dir = i + 1;
	}
	mlen = (rpath[0] != '/' && dir == 0 ? 1 : dir) + rplen;
	merged = malloc(2 * mlen + 1);
	if (merged == NULL)
		return -ENOMEM;
	if (rpath[0] != '/' && dir == 0) {
		merged[0] = '/';
		memcpy(merged + 1, rpath, rplen);
	} else {
		memcpy(merged, bpath, dir);
		memcpy(merged + dir, rpath, rplen);
	}
	i = remove_dot_segments(merged, mlen, merged + mlen);
	ok = put(out, outlen, &o, merged + mlen, i) &&
	     put(out, outlen, &o, rquery, rqlen);
	free(merged);
	if (!ok)
		return TK_ETOOBIG;
	out[o] = '\0';
	return (ssize_t)o;
}
