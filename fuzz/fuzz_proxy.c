/* fuzz_proxy.c: libFuzzer harness for the proxy URL parser and the SOCKS5,
 * SOCKS4 and RFC 1929 reply parsers, and the SOCKS5 server's parsers of
 * the client's messages. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "check failed: %s\n", what);
		abort();
	}
}

/*
 * A reply parser read at every prefix: "incomplete" until the message is
 * whole, then always the same length; never past the input; only the
 * documented code.
 */
static void
prefixes(ssize_t (*parse)(const uint8_t *, size_t, struct tk_socks_reply *),
	 const uint8_t *in, size_t len)
{
	struct tk_socks_reply r;
	ssize_t whole;

	/* The method and auth parsers set only the code. */
	memset(&r, 0, sizeof(r));
	whole = parse(in, len, &r);

	check(whole >= 0 || whole == TK_EPROXYPROTO, "reply: documented code");
	check(whole <= (ssize_t)len, "reply: within the input");
	if (whole > 0) {
		check(strlen(r.bound) < sizeof(r.bound), "reply: bound fits");
		for (const char *p = r.bound; *p; p++)
			check(*p > 0x20 && *p < 0x7f, "reply: bound printable");
	}
	for (size_t n = 0; n < len; n++) {
		ssize_t got = parse(in, n, &r);

		if (whole > 0 && n < (size_t)whole)
			check(got == 0, "reply: a prefix is incomplete");
		if (whole > 0 && n >= (size_t)whole)
			check(got == whole, "reply: the same length");
		/* An error seen in a prefix stays an error. */
		if (got == TK_EPROXYPROTO)
			check(whole == TK_EPROXYPROTO, "reply: error stays");
	}
}

/* Each wrapped to the common shape. */
static ssize_t
method(const uint8_t *in, size_t len, struct tk_socks_reply *r)
{
	return tk_socks5_parse_method(in, len, &r->code);
}

static ssize_t
auth(const uint8_t *in, size_t len, struct tk_socks_reply *r)
{
	return tk_socks5_parse_auth(in, len, &r->code);
}

/* The server's parsers, to the common shape; what they fill is checked. */
static ssize_t
greeting(const uint8_t *in, size_t len, struct tk_socks_reply *r)
{
	bool none = false, userpass = false;

	(void)r;
	return tk_socks5_parse_greeting(in, len, &none, &userpass);
}

static ssize_t
userpass(const uint8_t *in, size_t len, struct tk_socks_reply *r)
{
	char user[TK_PROXY_CREDLEN], pass[TK_PROXY_CREDLEN];
	ssize_t n = tk_socks5_parse_userpass(in, len, user, pass);

	(void)r;
	if (n > 0)
		check(strlen(user) + strlen(pass) + 3 == (size_t)n,
		      "userpass: the lengths sent");
	return n;
}

static ssize_t
request(const uint8_t *in, size_t len, struct tk_socks_reply *r)
{
	struct tk_socks5_request q;
	ssize_t n = tk_socks5_parse_request(in, len, &q);

	(void)r;
	if (n > 0) {
		check(q.host[0] != '\0' && strlen(q.host) < sizeof(q.host),
		      "request: a host that fits");
		check(q.atyp == TK_SOCKS5_ATYP_IPV4 ||
			      q.atyp == TK_SOCKS5_ATYP_IPV6 ||
			      q.atyp == TK_SOCKS5_ATYP_NAME,
		      "request: a known address type");
	}
	return n;
}

/*
 * The first byte picks what the rest is: a proxy URL (parsed, formatted,
 * the format parsed back to the same proxy, no password in it), a reply
 * of one of the SOCKS parsers, or a target host the encoders must take or
 * refuse without writing past their buffer.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tk_proxy p, again;
	char why[128], fmt[1024], fmt2[1024], *text;
	uint8_t out[600];
	int err;

	if (size == 0)
		return 0;
	switch (data[0] % 6) {
	case 0:
		if ((text = malloc(size)) == NULL)
			return 0;
		memcpy(text, data + 1, size - 1);
		text[size - 1] = '\0';
		why[0] = '\0';
		err = tk_proxy_parse(text, &p, why, sizeof(why));
		check(err == 0 || err == TK_EBADURL, "url: documented code");
		if (err < 0) {
			check(why[0] != '\0' && strchr(why, '\n') == NULL,
			      "url: a one-line reason");
			free(text);
			return 0;
		}
		check(p.kind != TK_PROXY_NONE, "url: a kind");
		check(p.host[0] != '\0', "url: a host");
		check(strlen(p.user) < TK_PROXY_CREDLEN &&
			      strlen(p.pass) < TK_PROXY_CREDLEN,
		      "url: credentials fit");
		tk_proxy_format(&p, fmt, sizeof(fmt));
		if (!p.has_auth || strpbrk(p.user, ":@/?#%") == NULL) {
			/* A plain user formats to a URL that parses back. */
			check(tk_proxy_parse(fmt, &again, NULL, 0) == 0,
			      "url: format parses");
			check(again.kind == p.kind &&
				      strcmp(again.host, p.host) == 0 &&
				      strcmp(again.port, p.port) == 0,
			      "url: same proxy");
		}
		/* The password never shows: without it, the same text. */
		again = p;
		memset(again.pass, 0, sizeof(again.pass));
		tk_proxy_format(&again, fmt2, sizeof(fmt2));
		check(strcmp(fmt, fmt2) == 0, "url: no password in the format");
		tk_proxy_clear(&again);
		tk_proxy_clear(&p);
		free(text);
		return 0;
	case 1:
		prefixes(tk_socks5_parse_reply, data + 1, size - 1);
		return 0;
	case 2:
		prefixes(tk_socks4_parse_reply, data + 1, size - 1);
		return 0;
	case 3:
		prefixes(method, data + 1, size - 1);
		prefixes(auth, data + 1, size - 1);
		prefixes(greeting, data + 1, size - 1);
		prefixes(userpass, data + 1, size - 1);
		prefixes(request, data + 1, size - 1);
		return 0;
	default:
		break;
	}
	/* A host for the encoders, into a buffer of a size the input picks. */
	if ((text = malloc(size)) == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	{
		size_t room = data[0] % 2 ? sizeof(out) : (size_t)data[0];
		ssize_t n;
		uint8_t *buf = malloc(room ? room : 1);

		if (buf == NULL) {
			free(text);
			return 0;
		}
		n = tk_socks5_connect_request(text, 443, buf, room);
		check(n == -EINVAL || n == -E2BIG ||
			      (n > 0 && (size_t)n <= room),
		      "socks5 request: within its buffer");
		n = tk_socks4a_request(text, 443, "u", buf, room);
		check(n == -EINVAL || n == -E2BIG ||
			      (n > 0 && (size_t)n <= room),
		      "socks4a request: within its buffer");
		n = tk_http_connect_request(text, 443, "u", "p", (char *)buf,
					    room);
		check(n == -EINVAL || n == -E2BIG ||
			      (n > 0 && (size_t)n < room),
		      "http request: within its buffer");
		if (n > 0) {
			/* One request line: the host cannot add a line. */
			const char *eol = strstr((char *)buf, "\r\n");

			check(eol != NULL &&
				      memchr(buf, '\n',
					     (size_t)(eol - (char *)buf)) ==
					      NULL,
			      "http request: one request line");
		}
		free(buf);
	}
	free(text);
	return 0;
}
