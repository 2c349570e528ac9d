/* test_proxyproto.c: the PROXY protocol parser and formatter, v1 and v2. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "tcpkit.h"

TestSuite(ppv1, .timeout = 30);
TestSuite(ppv2, .timeout = 30);
TestSuite(ppfmt, .timeout = 30);
TestSuite(ppserver, .timeout = 30);

static const unsigned char sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

static struct tk_addr
ip(const char *text, uint16_t port)
{
	struct tk_addr a;

	cr_assert_eq(tk_addr_from_ip(text, port, &a), 0, "ip %s", text);
	return a;
}

static void
assert_addr(const struct tk_addr *a, const char *want)
{
	char buf[TK_ADDRSTRLEN];

	cr_assert_str_eq(tk_addr_format(a, buf, sizeof(buf)), want);
}

/*
 * Every prefix of a complete header asks for more, the whole is complete,
 * and bytes after it (the stream) change nothing.
 */
static void
parse_splits(const unsigned char *hdr, size_t len, struct tk_pp_header *h)
{
	unsigned char buf[TK_PP_MAX + 16];
	char why[TK_PP_ERRLEN];

	cr_assert_leq(len, TK_PP_MAX);
	for (size_t k = 0; k < len; k++)
		cr_assert_eq(tk_pp_parse(hdr, k, h, why, sizeof(why)), 0,
			     "prefix of %zu/%zu: %s", k, len, why);
	memcpy(buf, hdr, len);
	memcpy(buf + len, "GET / HTTP/1.0\r\n", 16);
	cr_assert_eq(tk_pp_parse(buf, len + 16, h, why, sizeof(why)), (int)len,
		     "%s", why);
	cr_assert_eq(tk_pp_parse(hdr, len, h, why, sizeof(why)), (int)len, "%s",
		     why);
	cr_assert_str_eq(why, "");
}

/* A malformed header: refused, with why saying want (once enough came). */
static void
bad(const void *hdr, size_t len, const char *want)
{
	struct tk_pp_header h;
	char why[TK_PP_ERRLEN];
	int r = tk_pp_parse(hdr, len, &h, why, sizeof(why));

	cr_assert_eq(r, TK_EPPHEADER, "got %d for '%.*s'", r, (int)len,
		     (const char *)hdr);
	cr_assert(strstr(why, want) != NULL, "why '%s' lacks '%s'", why, want);
}

static void
bad1(const char *line, const char *want)
{
	bad(line, strlen(line), want);
}

Test(ppv1, tcp4_every_split)
{
	static const char line[] =
		"PROXY TCP4 192.0.2.1 198.51.100.9 51000 443\r\n";
	struct tk_pp_header h;

	parse_splits((const unsigned char *)line, sizeof(line) - 1, &h);
	cr_assert_eq(h.version, 1);
	cr_assert_eq(h.command, TK_PP_PROXY);
	cr_assert_eq(h.family, TK_PP_TCP4);
	assert_addr(&h.src, "192.0.2.1:51000");
	assert_addr(&h.dst, "198.51.100.9:443");
}

Test(ppv1, tcp6_every_split)
{
	static const char line[] = "PROXY TCP6 2001:db8::1 ::1 0 65535\r\n";
	struct tk_pp_header h;

	parse_splits((const unsigned char *)line, sizeof(line) - 1, &h);
	cr_assert_eq(h.family, TK_PP_TCP6);
	assert_addr(&h.src, "[2001:db8::1]:0");
	assert_addr(&h.dst, "[::1]:65535");
}

Test(ppv1, unknown_keeps_no_address)
{
	static const char *lines[] = {
		"PROXY UNKNOWN\r\n",
		"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
	};

	for (size_t i = 0; i < 2; i++) {
		struct tk_pp_header h;

		parse_splits((const unsigned char *)lines[i], strlen(lines[i]),
			     &h);
		cr_assert_eq(h.family, TK_PP_UNSPEC);
		cr_assert_eq(h.src.len, 0);
	}
}

Test(ppv1, longest_line_is_107_bytes)
{
	char line[TK_PP_V1_MAX + 8];
	struct tk_pp_header h;

	/* "PROXY UNKNOWN " and filler up to exactly 107 bytes with CRLF. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + TK_PP_V1_MAX - 2, "\r\n", 2);
	cr_assert_eq(tk_pp_parse(line, TK_PP_V1_MAX, &h, NULL, 0),
		     TK_PP_V1_MAX);
	/* One more byte of filler: the CRLF lands past the bound. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + TK_PP_V1_MAX - 1, "\r\n", 2);
	for (size_t k = 0; k < TK_PP_V1_MAX - 1; k++)
		cr_assert_eq(tk_pp_parse(line, k, &h, NULL, 0), 0, "at %zu", k);
	bad(line, TK_PP_V1_MAX, "no CRLF within 107");
	bad(line, TK_PP_V1_MAX + 1, "no CRLF within 107");
}

Test(ppv1, malformed)
{
	bad1("GET / HTTP/1.1\r\n", "no PROXY header");
	bad1("PROXZ TCP4", "no PROXY header");
	bad1("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "no PROXY header");
	bad1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "LF, not CRLF");
	bad1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "CR not followed by LF");
	bad1("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "unknown protocol 'TCP5'");
	bad1("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "5 fields, not 6");
	bad1("PROXY TCP4\r\n", "2 fields, not 6");
	bad1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "more than 6 fields");
	bad1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "space before the CRLF");
	bad1("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "empty field");
	bad1("PROXY TCP4 1.2.3.4 ::1 1 2\r\n", "'::1' is not an IPv4");
	bad1("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "'1.2.3.4' is not an IPv6");
	bad1("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "not an IPv4");
	bad1("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "bad port '65536'");
	bad1("PROXY TCP4 1.2.3.4 5.6.7.8 1 080\r\n", "bad port '080'");
	bad1("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "bad port '-1'");
	bad1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2x\r\n", "bad port '2x'");
	bad1("PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", "byte 0x09");
}

/* A v2 header: prefix, then body of n bytes. */
static size_t
v2(unsigned char *buf, unsigned vercmd, unsigned famproto, const void *body,
   size_t n)
{
	memcpy(buf, sig, 12);
	buf[12] = (unsigned char)vercmd;
	buf[13] = (unsigned char)famproto;
	buf[14] = (unsigned char)(n >> 8);
	buf[15] = (unsigned char)n;
	if (n > 0)
		memcpy(buf + 16, body, n);
	return 16 + n;
}

Test(ppv2, tcp4_with_tlvs_every_split)
{
	static const unsigned char body[] = {
		192,
		0,
		2,
		1,
		198,
		51,
		100,
		9,
		0xc7,
		0x38,
		0x01,
		0xbb,
		/* ALPN "h2", authority "example.com", a NOOP of 3 */
		0x01,
		0,
		2,
		'h',
		'2',
		0x02,
		0,
		11,
		'e',
		'x',
		'a',
		'm',
		'p',
		'l',
		'e',
		'.',
		'c',
		'o',
		'm',
		0x04,
		0,
		3,
		0,
		0,
		0,
	};
	unsigned char buf[TK_PP_MAX];
	struct tk_pp_header h;
	size_t len = v2(buf, 0x21, 0x11, body, sizeof(body));

	parse_splits(buf, len, &h);
	cr_assert_eq(h.version, 2);
	cr_assert_eq(h.command, TK_PP_PROXY);
	cr_assert_eq(h.family, TK_PP_TCP4);
	assert_addr(&h.src, "192.0.2.1:51000");
	assert_addr(&h.dst, "198.51.100.9:443");
	cr_assert_str_eq(h.alpn, "h2");
	cr_assert_str_eq(h.authority, "example.com");
	cr_assert_eq(h.ntlvs, 3);
}

Test(ppv2, tcp6_every_split)
{
	unsigned char body[36] = { 0 }, buf[TK_PP_MAX];
	struct tk_pp_header h;
	size_t len;

	inet_pton(AF_INET6, "2001:db8::7", body);
	inet_pton(AF_INET6, "::1", body + 16);
	body[32] = 0x30;
	body[33] = 0x39; /* 12345 */
	body[35] = 80;
	len = v2(buf, 0x21, 0x21, body, sizeof(body));
	parse_splits(buf, len, &h);
	cr_assert_eq(h.family, TK_PP_TCP6);
	assert_addr(&h.src, "[2001:db8::7]:12345");
	assert_addr(&h.dst, "[::1]:80");
}

Test(ppv2, unix_paths)
{
	unsigned char body[216] = { 0 }, buf[TK_PP_MAX];
	struct tk_pp_header h;
	size_t len;

	memcpy(body, "/run/client.sock", 16);
	memcpy(body + 108, "/run/server.sock", 16);
	len = v2(buf, 0x21, 0x31, body, sizeof(body));
	parse_splits(buf, len, &h);
	cr_assert_eq(h.family, TK_PP_UNIX);
	assert_addr(&h.src, "unix:/run/client.sock");
	assert_addr(&h.dst, "unix:/run/server.sock");
}

Test(ppv2, local_and_unspec)
{
	unsigned char buf[TK_PP_MAX];
	static const unsigned char noop[] = { 0x04, 0, 0 };
	struct tk_pp_header h;
	size_t len;

	/* HAProxy's health check: LOCAL, no address. */
	len = v2(buf, 0x20, 0x00, NULL, 0);
	parse_splits(buf, len, &h);
	cr_assert_eq(h.command, TK_PP_LOCAL);
	cr_assert_eq(h.family, TK_PP_UNSPEC);
	/* PROXY over an unknown family: a TLV, no address. */
	len = v2(buf, 0x21, 0x00, noop, sizeof(noop));
	parse_splits(buf, len, &h);
	cr_assert_eq(h.command, TK_PP_PROXY);
	cr_assert_eq(h.family, TK_PP_UNSPEC);
	cr_assert_eq(h.ntlvs, 1);
}

Test(ppv2, malformed)
{
	unsigned char buf[TK_PP_MAX + 4], body[TK_PP_V2_MAX_BODY + 1] = { 0 };
	static const unsigned char tlv_long[] = { 0x01, 0, 9, 'h' };
	/* Prefix bytes 13 and 14, body length, and what why says. */
	static const struct {
		unsigned vercmd, famproto;
		size_t n;
		const char *want;
	} cases[] = {
		{ 0x22, 0x11, 12, "unknown command 0x2" },
		{ 0x21, 0x41, 12, "unknown address family 0x4" },
		{ 0x21, 0x13, 12, "unknown transport 0x3" },
		{ 0x21, 0x12, 12, "datagram header on a stream" },
		{ 0x21, 0x10, 12, "address with no transport" },
		{ 0x21, 0x11, 11, "11 bytes, too short for TCP4 (needs 12)" },
		{ 0x21, 0x21, 35, "35 bytes, too short for TCP6 (needs 36)" },
		{ 0x21, 0x31, 215, "too short for UNIX (needs 216)" },
	};
	size_t len;

	memcpy(buf, sig, 12);
	buf[5] = 0x0E;
	bad(buf, 12, "no PROXY header (first byte 0x0d)");
	bad("\x0D\x0A\x0D\x0B", 4, "no PROXY header");
	len = v2(buf, 0x11, 0x11, body, 12);
	bad(buf, len, "version 1, not 2");
	/* A bad version is told at 16 bytes: no need to wait for the body. */
	bad(buf, 16, "version 1, not 2");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = v2(buf, cases[i].vercmd, cases[i].famproto, body,
			 cases[i].n);
		bad(buf, len, cases[i].want);
	}
	len = v2(buf, 0x21, 0x00, tlv_long, sizeof(tlv_long));
	bad(buf, len, "TLV 0x01 of 9 bytes past the end");
	len = v2(buf, 0x21, 0x00, tlv_long, 2);
	bad(buf, len, "2 stray bytes after the last TLV");
	/* Over the bound: refused from the prefix, never buffered. */
	buf[12] = 0x21;
	buf[13] = 0x11;
	buf[14] = (TK_PP_V2_MAX_BODY + 1) >> 8;
	buf[15] = (TK_PP_V2_MAX_BODY + 1) & 0xff;
	bad(buf, 16, "1025 bytes, over the 1024 bound");
	/* The largest allowed: one NOOP TLV filling it, complete. */
	body[0] = 0x04;
	body[1] = (TK_PP_V2_MAX_BODY - 3) >> 8;
	body[2] = (TK_PP_V2_MAX_BODY - 3) & 0xff;
	len = v2(buf, 0x21, 0x00, body, TK_PP_V2_MAX_BODY);
	cr_assert_eq(len, TK_PP_MAX);
	{
		struct tk_pp_header h;

		cr_assert_eq(tk_pp_parse(buf, len, &h, NULL, 0), TK_PP_MAX);
		cr_assert_eq(tk_pp_parse(buf, len - 1, &h, NULL, 0), 0);
	}
}

Test(ppfmt, v1_and_v2_round_trip)
{
	const char *pairs[][2] = {
		{ "192.0.2.1", "198.51.100.9" },
		{ "2001:db8::1", "::1" },
	};

	for (size_t i = 0; i < 2; i++)
		for (int ver = 1; ver <= 2; ver++) {
			struct tk_addr s = ip(pairs[i][0], 40000),
				       d = ip(pairs[i][1], 7);
			unsigned char buf[TK_PP_MAX];
			struct tk_pp_header h;
			int n = tk_pp_format(ver, &s, &d, buf, sizeof(buf));

			cr_assert_gt(n, 0);
			cr_assert_eq(tk_pp_parse(buf, (size_t)n, &h, NULL, 0),
				     n);
			cr_assert_eq(h.version, ver);
			cr_assert_eq(h.command, TK_PP_PROXY);
			cr_assert(tk_addr_equal(&h.src, &s));
			cr_assert(tk_addr_equal(&h.dst, &d));
		}
}

Test(ppfmt, v1_text)
{
	struct tk_addr s = ip("127.0.0.2", 5555), d = ip("127.0.0.1", 80);
	char buf[TK_PP_MAX];
	int n = tk_pp_format(1, &s, &d, buf, sizeof(buf));

	cr_assert_eq(n, 40);
	buf[n] = '\0';
	cr_assert_str_eq(buf, "PROXY TCP4 127.0.0.2 127.0.0.1 5555 80\r\n");
}

Test(ppfmt, mixed_families_map_ipv4)
{
	struct tk_addr s = ip("192.0.2.1", 1), d = ip("::1", 2);
	char buf[TK_PP_MAX], text[TK_ADDRSTRLEN];
	struct tk_pp_header h;
	int n = tk_pp_format(1, &s, &d, buf, sizeof(buf));

	cr_assert_eq(tk_pp_parse(buf, (size_t)n, &h, NULL, 0), n);
	cr_assert_eq(h.family, TK_PP_TCP6);
	tk_addr_format_ip(&h.src, text, sizeof(text));
	cr_assert_str_eq(text, "::ffff:192.0.2.1");
}

Test(ppfmt, local_unknown_and_short)
{
	unsigned char buf[TK_PP_MAX];
	struct tk_addr s = ip("192.0.2.1", 1), d = ip("192.0.2.2", 2);
	struct tk_pp_header h;
	int n;

	n = tk_pp_format(1, NULL, NULL, buf, sizeof(buf));
	cr_assert_eq(n, 15);
	cr_assert_eq(memcmp(buf, "PROXY UNKNOWN\r\n", 15), 0);
	n = tk_pp_format(2, NULL, NULL, buf, sizeof(buf));
	cr_assert_eq(n, 16);
	cr_assert_eq(tk_pp_parse(buf, 16, &h, NULL, 0), 16);
	cr_assert_eq(h.command, TK_PP_LOCAL);
	cr_assert_eq(tk_pp_format(2, &s, &d, buf, 27), -ENOSPC);
	cr_assert_eq(tk_pp_format(1, &s, &d, buf, 10), -ENOSPC);
	cr_assert_eq(tk_pp_format(3, &s, &d, buf, sizeof(buf)), -EINVAL);
}

/* --- a server that takes the PROXY protocol ---------------------------- */

struct seen {
	int opens, rejects, last_err;
	struct tk_addr peer, via;
	bool has_via;
	char data[64];
	size_t n;
};

static int
rec_open(struct tk_conn *c, void *arg)
{
	struct seen *s = arg;
	const struct tk_addr *via = tk_conn_via(c);

	s->opens++;
	s->peer = *tk_conn_peer(c);
	s->has_via = via != NULL;
	if (via != NULL)
		s->via = *via;
	return 0;
}

static void
rec_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct seen *s = arg;

	if (n <= 0) {
		tk_conn_end(c);
		return;
	}
	if ((size_t)n > sizeof(s->data) - s->n)
		n = (ssize_t)(sizeof(s->data) - s->n);
	memcpy(s->data + s->n, data, (size_t)n);
	s->n += (size_t)n;
}

static const struct tk_service rec_service = {
	.name = "rec",
	.open = rec_open,
	.data = rec_data,
};

static void
rec_event(struct tk_server *srv, enum tk_server_event ev, struct tk_conn *c,
	  const struct tk_addr *peer, int err, void *arg)
{
	struct seen *s = arg;

	(void)srv;
	(void)c;
	(void)peer;
	if (ev == TK_SERVER_REJECT) {
		s->rejects++;
		s->last_err = err;
	}
}

/* A server on 127.0.0.1 trusting 127.0.0.1, with deny (or NULL) as --deny. */
static struct tk_server *
pp_server(struct tk_loop *loop, struct seen *seen, struct tk_acl **from,
	  struct tk_acl **acl, const char *deny, struct tk_addr *addr)
{
	struct tk_server_opts o;

	cr_assert_eq(tk_acl_new(from), 0);
	cr_assert_eq(tk_acl_add(*from, TK_ACL_ALLOW, "127.0.0.1", NULL, 0), 0);
	*acl = NULL;
	tk_server_opts_init(&o);
	o.proxy_protocol = true;
	o.proxy_from = *from;
	o.conn.handshake_timeout_ms = 300;
	o.on_event = rec_event;
	o.event_arg = seen;
	if (deny != NULL) {
		cr_assert_eq(tk_acl_new(acl), 0);
		cr_assert_eq(tk_acl_add(*acl, TK_ACL_DENY, deny, NULL, 0), 0);
		o.acl = *acl;
	}
	return t_server(loop, "127.0.0.1", &o, &rec_service, seen, addr);
}

/* A blocking client that sends data[0..n) and keeps the socket open. */
static int
client(const struct tk_addr *a, const void *data, size_t n)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, &a->u.sa, a->len), 0);
	cr_assert_eq(send(fd, data, n, 0), (ssize_t)n);
	return fd;
}

Test(ppserver, header_then_bytes_peer_and_via)
{
	static const char msg[] =
		"PROXY TCP4 192.0.2.5 127.0.0.1 6000 80\r\nafter the header";
	struct tk_loop *loop = t_loop_new();
	struct tk_acl *from, *acl;
	struct seen seen = { 0 };
	struct tk_server_stats st;
	struct tk_addr addr;
	struct tk_server *srv =
		pp_server(loop, &seen, &from, &acl, NULL, &addr);
	int fd = client(&addr, msg, sizeof(msg) - 1);
	char buf[TK_ADDRSTRLEN];

	RUN_UNTIL(loop, 5000, seen.n == 16);
	cr_assert_eq(memcmp(seen.data, "after the header", 16), 0);
	cr_assert_eq(seen.opens, 1);
	cr_assert_str_eq(t_fmt(&seen.peer, buf), "192.0.2.5:6000");
	cr_assert(seen.has_via);
	cr_assert_str_eq(tk_addr_format_ip(&seen.via, buf, sizeof(buf)),
			 "127.0.0.1");
	close(fd);
	tk_server_get_stats(srv, &st);
	cr_assert_eq(st.pp_refused, 0);
	cr_assert_eq(st.accepted, 1);
	tk_server_free(srv);
	tk_acl_free(from);
	tk_loop_free(loop);
}

Test(ppserver, deny_matches_the_named_client_and_refusals_count)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_acl *from, *acl;
	struct seen seen = { 0 };
	struct tk_server_stats st;
	struct tk_addr addr;
	struct tk_server *srv =
		pp_server(loop, &seen, &from, &acl, "192.0.2.0/24", &addr);
	int a = client(&addr, "PROXY TCP4 192.0.2.5 127.0.0.1 1 2\r\nx", 37);
	int b, c;

	RUN_UNTIL(loop, 5000, seen.rejects == 1);
	cr_assert_eq(seen.last_err, TK_EDENIED);
	b = client(&addr, "HELLO\r\n", 7);
	RUN_UNTIL(loop, 5000, seen.rejects == 2);
	cr_assert_eq(seen.last_err, TK_EPPHEADER);
	/* Half a header, then nothing: the deadline (300 ms). */
	c = client(&addr, "PROXY TCP4 ", 11);
	RUN_UNTIL(loop, 5000, seen.rejects == 3);
	cr_assert_eq(seen.last_err, TK_ETIMEDOUT);
	cr_assert_eq(seen.opens, 0);
	tk_server_get_stats(srv, &st);
	cr_assert_eq(st.denied, 1);
	cr_assert_eq(st.pp_refused, 2);
	cr_assert_eq(st.accepted, 0);
	close(a);
	close(b);
	close(c);
	tk_server_free(srv);
	tk_acl_free(from);
	tk_acl_free(acl);
	tk_loop_free(loop);
}

Test(ppserver, trust_must_be_said)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_server_opts o;
	struct tk_server *srv;

	tk_server_opts_init(&o);
	o.proxy_protocol = true;
	cr_assert_eq(tk_server_new(loop, &o, &rec_service, NULL, &srv),
		     -EINVAL);
	tk_loop_free(loop);
}
