/* socks5_msg.c: the SOCKS5 server's side of RFC 1928/1929: pure parsers of
 * the client's messages and the reply encoder. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "internal.h"

ssize_t
tk_socks5_parse_greeting(const uint8_t *in, size_t len, bool *none,
			 bool *userpass)
{
	size_t n;

	if (len > 0 && in[0] != 5)
		return TK_EPROXYPROTO;
	if (len < 2)
		return 0;
	/* RFC 1928 3: NMETHODS is 1 to 255. */
	if (in[1] == 0)
		return TK_EPROXYPROTO;
	n = 2 + (size_t)in[1];
	if (len < n)
		return 0;
	*none = *userpass = false;
	for (size_t i = 2; i < n; i++) {
		if (in[i] == TK_SOCKS5_AUTH_NONE)
			*none = true;
		else if (in[i] == TK_SOCKS5_AUTH_USERPASS)
			*userpass = true;
	}
	return (ssize_t)n;
}

ssize_t
tk_socks5_parse_userpass(const uint8_t *in, size_t len,
			 char user[TK_PROXY_CREDLEN],
			 char pass[TK_PROXY_CREDLEN])
{
	size_t ulen, plen;

	/* RFC 1929 2: VER 1, ULEN, UNAME, PLEN, PASSWD. */
	if (len > 0 && in[0] != 1)
		return TK_EPROXYPROTO;
	if (len < 2)
		return 0;
	ulen = in[1];
	if (ulen == 0)
		return TK_EPROXYPROTO;
	if (len < 3 + ulen)
		return 0;
	plen = in[2 + ulen];
	if (plen == 0)
		return TK_EPROXYPROTO;
	if (len < 3 + ulen + plen)
		return 0;
	/* A NUL inside would make a name other than the one sent. */
	if (memchr(in + 2, 0, ulen) != NULL ||
	    memchr(in + 3 + ulen, 0, plen) != NULL)
		return TK_EPROXYPROTO;
	memcpy(user, in + 2, ulen);
	user[ulen] = '\0';
	memcpy(pass, in + 3 + ulen, plen);
	pass[plen] = '\0';
	return (ssize_t)(3 + ulen + plen);
}

ssize_t
tk_socks5_parse_request(const uint8_t *in, size_t len,
			struct tk_socks5_request *r)
{
	size_t alen, n;

	r->atyp = 0;
	/* VER 5, CMD, RSV 0, ATYP, DST.ADDR, DST.PORT. */
	if ((len > 0 && in[0] != 5) || (len > 2 && in[2] != 0))
		return TK_EPROXYPROTO;
	if (len < 4)
		return 0;
	switch (in[3]) {
	case TK_SOCKS5_ATYP_IPV4:
		alen = 4;
		n = 4 + alen + 2;
		break;
	case TK_SOCKS5_ATYP_IPV6:
		alen = 16;
		n = 4 + alen + 2;
		break;
	case TK_SOCKS5_ATYP_NAME:
		if (len < 5)
			return 0;
		alen = in[4];
		if (alen == 0)
			return TK_EPROXYPROTO;
		n = 5 + alen + 2;
		break;
	default:
		r->cmd = in[1];
		r->atyp = in[3];
		return TK_EPROXYPROTO;
	}
	if (len < n)
		return 0;
	if (in[3] == TK_SOCKS5_ATYP_NAME) {
		if (memchr(in + 5, 0, alen) != NULL)
			return TK_EPROXYPROTO;
		memcpy(r->host, in + 5, alen);
		r->host[alen] = '\0';
	} else if (inet_ntop(in[3] == TK_SOCKS5_ATYP_IPV4 ? AF_INET : AF_INET6,
			     in + 4, r->host, sizeof(r->host)) == NULL) {
		return TK_EPROXYPROTO;
	}
	r->cmd = in[1];
	r->atyp = in[3];
	r->port = (uint16_t)(in[n - 2] << 8 | in[n - 1]);
	return (ssize_t)n;
}

ssize_t
tk_socks5_reply(uint8_t code, const struct tk_addr *bound, uint8_t *out,
		size_t len)
{
	const uint8_t *ip = NULL;
	size_t alen = 4;
	uint16_t port = 0;

	if (bound != NULL && tk_addr_family(bound) == AF_INET) {
		ip = (const uint8_t *)&bound->u.in4.sin_addr;
		port = tk_addr_port(bound);
	} else if (bound != NULL && tk_addr_family(bound) == AF_INET6) {
		ip = (const uint8_t *)&bound->u.in6.sin6_addr;
		alen = 16;
		port = tk_addr_port(bound);
	}
	if (len < 6 + alen)
		return -E2BIG;
	out[0] = 5;
	out[1] = code;
	out[2] = 0;
	out[3] = alen == 4 ? TK_SOCKS5_ATYP_IPV4 : TK_SOCKS5_ATYP_IPV6;
	if (ip != NULL)
		memcpy(out + 4, ip, alen);
	else
		memset(out + 4, 0, alen);
	out[4 + alen] = (uint8_t)(port >> 8);
	out[5 + alen] = (uint8_t)port;
	return (ssize_t)(6 + alen);
}
