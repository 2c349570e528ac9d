/* tcpkit/proxy.h: proxy clients: SOCKS5, SOCKS4a and HTTP CONNECT (part of
 * tcpkit.h; include that). */
#ifndef TCPKIT_PROXY_H
#define TCPKIT_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * A proxy a client connection goes through (tk_conn_opts.proxy): the
 * connection is made to the proxy, the proxy is asked for a tunnel to the
 * target, and only then does the connection's own handshake (TLS, to the
 * target, verified against the target's name) and its service's open run.
 *
 *   socks5://HOST:PORT    SOCKS5 (RFC 1928); the target's name is resolved
 *                         here and its address sent
 *   socks5h://HOST:PORT   SOCKS5, the name sent for the proxy to resolve
 *   socks4a://HOST:PORT   SOCKS4a: the name sent
 *   http://HOST:PORT      HTTP CONNECT (RFC 9110 9.3.6)
 *
 * PORT is 1080 when left out, for every scheme, as curl has it; a "/" may
 * end the URL, nothing else may follow the port.
 *
 * Each may carry "USER:PASSWORD@" before the host, percent-encoded
 * (SOCKS5: RFC 1929 username/password; HTTP: Basic; SOCKS4a: the user id
 * alone), each at most 255 bytes once decoded.
 */
enum tk_proxy_kind {
	TK_PROXY_NONE,
	TK_PROXY_SOCKS5,
	TK_PROXY_SOCKS5H,
	TK_PROXY_SOCKS4A,
	TK_PROXY_HTTP,
};

/* RFC 1929's limit on a user name and a password, and a NUL. */
#define TK_PROXY_CREDLEN 256

struct tk_proxy {
	enum tk_proxy_kind kind;
	char host[TK_HOSTLEN]; /* no brackets */
	char port[TK_PORTLEN];
	bool has_auth; /* user (and pass) given */
	char user[TK_PROXY_CREDLEN];
	char pass[TK_PROXY_CREDLEN];
};

/*
 * Parse a proxy URL (scheme without case) into *out.  Pure.  Returns 0,
 * or TK_EBADURL with a one-line reason in why (when not NULL).  The
 * password is a secret: tk_proxy_clear() the struct when done with it.
 */
int tk_proxy_parse(const char *url, struct tk_proxy *out, char *why,
		   size_t whylen);
/* Wipe p, its credentials with explicit_bzero(). */
void tk_proxy_clear(struct tk_proxy *p);
/*
 * "socks5://USER@HOST:PORT" (never the password; an IPv6 host in
 * brackets) into buf; returns buf, truncated to len - 1 bytes if needed.
 */
char *tk_proxy_format(const struct tk_proxy *p, char *buf, size_t len);
/* "socks5", "socks5h", "socks4a", "http" or "none". */
const char *tk_proxy_scheme(enum tk_proxy_kind kind);

/*
 * The messages of the protocols, as pure encoders and parsers (fuzzed).
 * An encoder writes into out[0..len) and returns the bytes written, or
 * -E2BIG (out too small) or -EINVAL (a field too long for the protocol,
 * an empty host).  A parser reads in[0..len) and returns the length of
 * the message (> 0) once it is complete, 0 while it is not, or
 * TK_EPROXYPROTO when it cannot be one; it never reads past the message,
 * so what follows it is the tunnel's.
 */
#define TK_SOCKS5_AUTH_NONE	0x00
#define TK_SOCKS5_AUTH_USERPASS 0x02
#define TK_SOCKS5_AUTH_NOMETHOD 0xff

/* RFC 1928 3: the methods offered: none, and username/password too. */
ssize_t tk_socks5_greeting(bool userpass, uint8_t *out, size_t len);
/* The method the server chose, in *method. */
ssize_t tk_socks5_parse_method(const uint8_t *in, size_t len, uint8_t *method);
/* RFC 1929 2: user and password, each 1 to 255 bytes. */
ssize_t tk_socks5_auth_request(const char *user, const char *pass, uint8_t *out,
			       size_t len);
/* Its answer: *status 0 is success. */
ssize_t tk_socks5_parse_auth(const uint8_t *in, size_t len, uint8_t *status);
/*
 * RFC 1928 4: CONNECT to host (an IPv4 or IPv6 literal is sent as an
 * address, anything else as a name of at most 255 bytes) and port.
 */
ssize_t tk_socks5_connect_request(const char *host, uint16_t port, uint8_t *out,
				  size_t len);

/* A SOCKS reply: its code and the address the proxy bound. */
struct tk_socks_reply {
	uint8_t code; /* SOCKS5: 0 succeeded; SOCKS4: 90 granted */
	/* The bound address, as text: an IP literal or a name ("" if none). */
	char bound[TK_HOSTLEN];
	uint16_t port;
};

/* RFC 1928 6: the reply to a request. */
ssize_t tk_socks5_parse_reply(const uint8_t *in, size_t len,
			      struct tk_socks_reply *r);
/* What a SOCKS5 reply code means ("connection refused"). */
const char *tk_socks5_reply_text(uint8_t code);
/*
 * SOCKS4a CONNECT: to an IPv4 literal as SOCKS4 does, to a name as 4a
 * does (address 0.0.0.1, the name after the user id).  user may be NULL.
 */
ssize_t tk_socks4a_request(const char *host, uint16_t port, const char *user,
			   uint8_t *out, size_t len);
/* The SOCKS4 reply (8 bytes): code 90 granted, 91 to 93 not. */
ssize_t tk_socks4_parse_reply(const uint8_t *in, size_t len,
			      struct tk_socks_reply *r);
/*
 * "CONNECT host:port HTTP/1.1" with Host and, with user, a
 * "Proxy-Authorization: Basic" field; the end of the head included.
 * The answer is an HTTP response head: tk_http_parse_response().
 */
ssize_t tk_http_connect_request(const char *host, uint16_t port,
				const char *user, const char *pass, char *out,
				size_t len);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_PROXY_H */
