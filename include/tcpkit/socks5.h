/* tcpkit/socks5.h: the SOCKS5 server side: its pure parsers and the socks5
 * service (part of tcpkit.h; include that). */
#ifndef TCPKIT_SOCKS5_H
#define TCPKIT_SOCKS5_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../tcpkit.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * The client's messages, parsed as tcpkit/proxy.h's parsers are: the
 * length (> 0) once whole, 0 while not, TK_EPROXYPROTO when it cannot be
 * one; never a read past the message (what follows is the tunnel's).
 */
#define TK_SOCKS5_CMD_CONNECT 0x01
#define TK_SOCKS5_ATYP_IPV4   0x01
#define TK_SOCKS5_ATYP_NAME   0x03
#define TK_SOCKS5_ATYP_IPV6   0x04

/* RFC 1928 6: reply codes. */
#define TK_SOCKS5_REP_OK	  0x00
#define TK_SOCKS5_REP_FAILURE	  0x01
#define TK_SOCKS5_REP_NOTALLOWED  0x02
#define TK_SOCKS5_REP_NETUNREACH  0x03
#define TK_SOCKS5_REP_HOSTUNREACH 0x04
#define TK_SOCKS5_REP_REFUSED	  0x05
#define TK_SOCKS5_REP_TTL	  0x06
#define TK_SOCKS5_REP_COMMAND	  0x07
#define TK_SOCKS5_REP_ATYP	  0x08

/* RFC 1928 3: the methods offered: whether "none" and username/password. */
ssize_t tk_socks5_parse_greeting(const uint8_t *in, size_t len, bool *none,
				 bool *userpass);
/* RFC 1929 2: user and password (1 to 255 bytes each; NUL-terminated). */
ssize_t tk_socks5_parse_userpass(const uint8_t *in, size_t len,
				 char user[TK_PROXY_CREDLEN],
				 char pass[TK_PROXY_CREDLEN]);

struct tk_socks5_request {
	uint8_t cmd;
	uint8_t atyp;
	/* An IP literal, or the name (1 to 255 bytes, no NUL in it). */
	char host[TK_HOSTLEN];
	uint16_t port;
};

/*
 * RFC 1928 4: a request.  Any command is parsed (the server answers one
 * it does not support with TK_SOCKS5_REP_COMMAND).  An address type
 * other than 1, 3 or 4 cannot be measured: TK_EPROXYPROTO with r->atyp
 * set (r->atyp 0 for a message that is not SOCKS5 at all), for the
 * server to answer TK_SOCKS5_REP_ATYP.
 */
ssize_t tk_socks5_parse_request(const uint8_t *in, size_t len,
				struct tk_socks5_request *r);
/*
 * The reply: code and the address bound (NULL: 0.0.0.0:0) into out.
 * Bytes written, or -E2BIG.
 */
ssize_t tk_socks5_reply(uint8_t code, const struct tk_addr *bound, uint8_t *out,
			size_t len);

/*
 * The socks5 service (tk_service_find("socks5")): RFC 1928 CONNECT, with
 * no authentication or RFC 1929 username/password.  Its svc_arg is a
 * struct tk_socks5_opts that outlives the server.
 *
 * The handshake (greeting, authentication, request) must be whole within
 * handshake_ms; each message is bounded by the protocol (at most 515
 * bytes), a client that sends anything else is closed (a request that can
 * be answered is answered first).  The target is connected to under
 * connect_timeout_ms, only to addresses targets accepts (a name is
 * resolved first, then its addresses checked; none left: "not allowed by
 * ruleset").  Bytes a client sends after its request, before the reply
 * (up to 256 KiB; more is a reset), go to the target first.  Once the
 * target is open, the reply goes out and the two are
 * joined with tk_conn_pipe() (splice for plain TCP).
 */
struct tk_socks5_tunnel {
	const struct tk_addr *client;
	const char *target; /* "host:port" as asked ("" before the request) */
	const char *user;   /* "" without authentication */
	uint8_t reply;	    /* the code sent, or 0xff if none was */
	int err;	    /* why it failed (0: relayed) */
	const char *why;    /* one line, or "" */
	/* Once relayed: bytes each way, duration, who ended first. */
	const struct tk_pipe_result *result;
};

struct tk_socks5_opts {
	/* Whether a client must authenticate (check_user is then needed). */
	bool require_auth;
	/* true to accept user/pass; called on the connection's loop. */
	bool (*check_user)(const char *user, const char *pass, void *arg);
	void *user_arg;
	const struct tk_acl *targets; /* NULL: any target */
	uint64_t handshake_ms;	      /* 0: TK_DEFAULT_HANDSHAKE_TIMEOUT_MS */
	uint64_t connect_timeout_ms;  /* 0: TK_DEFAULT_CONNECT_TIMEOUT_MS */
	/* Optional: every session's end, once (on the client's loop). */
	void (*log)(const struct tk_socks5_tunnel *t, void *arg);
	void *log_arg;
};

extern const struct tk_service tk_service_socks5;

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_SOCKS5_H */
