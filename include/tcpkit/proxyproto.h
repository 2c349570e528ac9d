/* tcpkit/proxyproto.h: the PROXY protocol (v1 text, v2 binary) by which a
 * load balancer tells a server who the real client is. */
#ifndef TCPKIT_PROXYPROTO_H
#define TCPKIT_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcpkit.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * HAProxy's PROXY protocol (proxy-protocol.txt): a balancer that connects
 * to a server on a client's behalf first sends one header naming the
 * client's address and port and the address it connected to, then the
 * client's bytes.  Version 1 is one text line ("PROXY TCP4 192.0.2.1
 * 192.0.2.9 51000 443\r\n", at most 107 bytes); version 2 a 16-byte
 * binary prefix, then addresses and optional TLVs (type, length, value).
 *
 * Bounds: a v1 line of TK_PP_V1_MAX bytes at most; a v2 header of at most
 * TK_PP_V2_MAX_BODY bytes after its prefix (the addresses take at most 216,
 * the rest is TLVs: ALPN, authority, a CRC, TLS details), larger ones are
 * refused: a server never needs a big one and must not buffer one.
 */
#define TK_PP_V1_MAX	  107
#define TK_PP_V2_PREFIX	  16
#define TK_PP_V2_MAX_BODY 1024
#define TK_PP_MAX	  (TK_PP_V2_PREFIX + TK_PP_V2_MAX_BODY)
/* The longest message the parser writes to why, with its NUL. */
#define TK_PP_ERRLEN 96
/* The longest ALPN and authority kept, with their NUL. */
#define TK_PP_ALPNLEN	   64
#define TK_PP_AUTHORITYLEN 256

enum tk_pp_command {
	TK_PP_PROXY, /* on behalf of a client: the addresses are its */
	/*
	 * v2 only: the balancer's own connection (a health check): the
	 * addresses are to be ignored, the connection's own ones stand.
	 */
	TK_PP_LOCAL,
};

enum tk_pp_family {
	TK_PP_UNSPEC, /* v1 "UNKNOWN", or v2 AF_UNSPEC: no address given */
	TK_PP_TCP4,
	TK_PP_TCP6,
	TK_PP_UNIX, /* v2 only: two socket paths */
};

struct tk_pp_header {
	int version; /* 1 or 2 */
	enum tk_pp_command command;
	enum tk_pp_family family;
	/* TCP4, TCP6 or UNIX; zeroed (length 0) otherwise. */
	struct tk_addr src; /* the client */
	struct tk_addr dst; /* where it connected to (the balancer) */
	/* v2 TLVs, "" when absent; others are checked and skipped. */
	char alpn[TK_PP_ALPNLEN];
	char authority[TK_PP_AUTHORITYLEN];
	size_t ntlvs; /* TLVs seen, every type */
};

/*
 * Parse the header at the start of buf[0..len): pure (no allocation, no
 * I/O).  Returns:
 *   > 0  the header is complete and that many bytes long; *h is filled
 *        and every byte after it belongs to the stream;
 *   0    every byte given is a header's beginning: read more (at most
 *        TK_PP_MAX bytes in all are ever needed);
 *   TK_EPPHEADER  not a header, or a malformed one: why (optional, up to
 *        TK_PP_ERRLEN bytes) says what in one line ("v1: port '65536' out
 *        of range").
 * A header is never longer than TK_PP_MAX bytes, so a caller may read
 * into a buffer of that size and give up when it is full.  The v1
 * addresses must be in the family named (TCP4 dotted quads, TCP6 IPv6
 * text), ports decimal without leading zeros; v2's version must be 2, its
 * command LOCAL or PROXY, its family and transport known (STREAM or
 * UNSPEC; a DGRAM header has no place on a stream) and its length enough
 * for the family's addresses; every TLV must fit in the length.
 */
int tk_pp_parse(const void *buf, size_t len, struct tk_pp_header *h, char *why,
		size_t whylen);

/*
 * Write a header of version 1 or 2 into buf[0..size) for the connection
 * from src to dst (command PROXY), or a LOCAL one when src is NULL (v1 has
 * no LOCAL: "PROXY UNKNOWN\r\n").  IPv4 and IPv6 addresses may be mixed:
 * the IPv4 one is then written as IPv4-mapped IPv6.  Addresses of another
 * family, or a v1 header for UNIX sockets, are UNKNOWN (v1) or UNSPEC
 * (v2).  No TLV is written.  Returns the length written, -EINVAL for a bad
 * version, or -ENOSPC when size is short (TK_PP_MAX is always enough).
 */
int tk_pp_format(int version, const struct tk_addr *src,
		 const struct tk_addr *dst, void *buf, size_t size);

/*
 * Format h (as parsed) back, in its own version, keeping its command and
 * family: what tk_pp_parse() reads from the result is h again, its TLVs
 * aside.  Same returns as tk_pp_format().
 */
int tk_pp_format_header(const struct tk_pp_header *h, void *buf, size_t size);

/*
 * A server that accepts the PROXY protocol (tk_server_opts.proxy_protocol):
 * the balancer's address for a connection whose header gave another
 * (tk_conn_peer() is then the client's); NULL for a connection that came
 * straight, or by a LOCAL header.
 */
const struct tk_addr *tk_conn_via(const struct tk_conn *c);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_PROXYPROTO_H */
