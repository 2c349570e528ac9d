/* test_socks5.c: the SOCKS5 server's parsers of the client's messages and
 * its reply, byte for byte, against the client encoders of proxy.h. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "tcpkit.h"

TestSuite(socks5_server, .timeout = 30);

Test(socks5_server, greeting_from_the_client_encoder)
{
	uint8_t msg[16];
	ssize_t n = tk_socks5_greeting(true, msg, sizeof(msg));
	bool none = false, userpass = false;

	cr_assert_gt(n, 0);
	for (ssize_t i = 0; i < n; i++)
		cr_assert_eq(tk_socks5_parse_greeting(msg, (size_t)i, &none,
						      &userpass),
			     0);
	cr_assert_eq(tk_socks5_parse_greeting(msg, (size_t)n, &none, &userpass),
		     n);
	cr_assert(none && userpass);
}

Test(socks5_server, greeting_errors)
{
	bool a, b;

	cr_assert_eq(tk_socks5_parse_greeting((const uint8_t *)"\x04\x01", 2,
					      &a, &b),
		     TK_EPROXYPROTO);
	cr_assert_eq(tk_socks5_parse_greeting((const uint8_t *)"\x05\x00", 2,
					      &a, &b),
		     TK_EPROXYPROTO);
	cr_assert_eq(tk_socks5_parse_greeting((const uint8_t *)"\x05\x01\x02",
					      3, &a, &b),
		     3);
	cr_assert(!a && b);
}

Test(socks5_server, userpass_round_trip_and_bounds)
{
	uint8_t msg[600];
	char user[TK_PROXY_CREDLEN], pass[TK_PROXY_CREDLEN], big[256];
	ssize_t n = tk_socks5_auth_request("alice", "s:cret", msg, sizeof(msg));

	cr_assert_eq(tk_socks5_parse_userpass(msg, (size_t)n - 1, user, pass),
		     0);
	cr_assert_eq(tk_socks5_parse_userpass(msg, (size_t)n, user, pass), n);
	cr_assert_str_eq(user, "alice");
	cr_assert_str_eq(pass, "s:cret");
	memset(big, 'x', 255);
	big[255] = '\0';
	n = tk_socks5_auth_request(big, big, msg, sizeof(msg));
	cr_assert_eq(n, 513);
	cr_assert_eq(tk_socks5_parse_userpass(msg, (size_t)n, user, pass), n);
	cr_assert_eq(strlen(user), 255);
	/* Empty user, and a NUL inside the name. */
	cr_assert_eq(tk_socks5_parse_userpass((const uint8_t *)"\x01\x00", 2,
					      user, pass),
		     TK_EPROXYPROTO);
	cr_assert_eq(tk_socks5_parse_userpass((const uint8_t *)"\x01\x02"
							       "a\0"
							       "\x01p",
					      6, user, pass),
		     TK_EPROXYPROTO);
}

static void
request_ok(const char *host, const char *want, uint8_t atyp)
{
	uint8_t msg[300];
	struct tk_socks5_request r;
	ssize_t n = tk_socks5_connect_request(host, 8080, msg, sizeof(msg));

	cr_assert_gt(n, 0);
	for (ssize_t i = 0; i < n; i++)
		cr_assert_eq(tk_socks5_parse_request(msg, (size_t)i, &r), 0,
			     "%s: prefix %zd", host, i);
	cr_assert_eq(tk_socks5_parse_request(msg, (size_t)n + 3, &r), n);
	cr_assert_eq(r.cmd, TK_SOCKS5_CMD_CONNECT);
	cr_assert_eq(r.atyp, atyp);
	cr_assert_str_eq(r.host, want);
	cr_assert_eq(r.port, 8080);
}

Test(socks5_server, requests_from_the_client_encoder)
{
	request_ok("192.0.2.7", "192.0.2.7", TK_SOCKS5_ATYP_IPV4);
	request_ok("2001:db8::1", "2001:db8::1", TK_SOCKS5_ATYP_IPV6);
	request_ok("example.com", "example.com", TK_SOCKS5_ATYP_NAME);
}

Test(socks5_server, request_errors_say_what_to_answer)
{
	struct tk_socks5_request r;

	/* Unknown address type: an error, with the type for reply 8. */
	cr_assert_eq(tk_socks5_parse_request(
			     (const uint8_t *)"\x05\x01\x00\x09", 4, &r),
		     TK_EPROXYPROTO);
	cr_assert_eq(r.atyp, 9);
	/* Not SOCKS5 at all: atyp 0, no reply. */
	cr_assert_eq(tk_socks5_parse_request((const uint8_t *)"GET /", 5, &r),
		     TK_EPROXYPROTO);
	cr_assert_eq(r.atyp, 0);
	/* An empty name, and a NUL in one. */
	cr_assert_eq(
		tk_socks5_parse_request(
			(const uint8_t *)"\x05\x01\x00\x03\x00\x00\x50", 7, &r),
		TK_EPROXYPROTO);
	cr_assert_eq(
		tk_socks5_parse_request((const uint8_t *)"\x05\x01\x00\x03\x02"
							 "a\0"
							 "\x00\x50",
					9, &r),
		TK_EPROXYPROTO);
	/* BIND parses: the server answers it with reply 7. */
	cr_assert_eq(tk_socks5_parse_request(
			     (const uint8_t *)"\x05\x02\x00\x01\x7f\x00\x00\x01"
					      "\x00\x50",
			     10, &r),
		     10);
	cr_assert_eq(r.cmd, 2);
}

Test(socks5_server, reply_parses_with_the_client_parser)
{
	uint8_t out[32];
	struct tk_addr a;
	struct tk_socks_reply r;
	ssize_t n;

	cr_assert_eq(tk_addr_parse("[::1]:1080", 0, &a), 0);
	n = tk_socks5_reply(TK_SOCKS5_REP_REFUSED, &a, out, sizeof(out));
	cr_assert_eq(n, 22);
	cr_assert_eq(tk_socks5_parse_reply(out, (size_t)n, &r), n);
	cr_assert_eq(r.code, TK_SOCKS5_REP_REFUSED);
	cr_assert_str_eq(r.bound, "::1");
	cr_assert_eq(r.port, 1080);
	n = tk_socks5_reply(TK_SOCKS5_REP_OK, NULL, out, sizeof(out));
	cr_assert_eq(n, 10);
	cr_assert_eq(memcmp(out, "\x05\x00\x00\x01\0\0\0\0\0\0", 10), 0);
	cr_assert_eq(tk_socks5_reply(0, NULL, out, 9), -E2BIG);
}
