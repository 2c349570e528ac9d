/* test_proxy.c: proxy URLs and the SOCKS5, SOCKS4a and HTTP CONNECT
 * messages, byte for byte. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "tcpkit.h"

TestSuite(proxy_url, .timeout = 30);
TestSuite(socks, .timeout = 30);
TestSuite(http_connect, .timeout = 30);

static struct tk_proxy
url_ok(const char *text)
{
	struct tk_proxy p;
	char why[128] = "";
	int err = tk_proxy_parse(text, &p, why, sizeof(why));

	cr_assert_eq(err, 0, "parse(\"%s\") = %s: %s", text, tk_err_name(err),
		     why);
	return p;
}

static void
url_err(const char *text, const char *want)
{
	struct tk_proxy p;
	char why[128] = "";

	memset(&p, 0x5a, sizeof(p));
	cr_assert_eq(tk_proxy_parse(text, &p, why, sizeof(why)), TK_EBADURL,
		     "%s", text);
	cr_assert(strstr(why, want) != NULL, "%s: why '%s', want '%s'", text,
		  why, want);
	/* Untouched on failure. */
	cr_assert_eq(((unsigned char *)&p)[0], 0x5a);
}

Test(proxy_url, schemes_and_default_port)
{
	struct tk_proxy p = url_ok("SOCKS5h://proxy.example");

	cr_assert_eq(p.kind, TK_PROXY_SOCKS5H);
	cr_assert_str_eq(p.host, "proxy.example");
	cr_assert_str_eq(p.port, "1080");
	cr_assert(!p.has_auth);
	cr_assert_eq(url_ok("socks5://h:1").kind, TK_PROXY_SOCKS5);
	cr_assert_eq(url_ok("socks4a://h:1").kind, TK_PROXY_SOCKS4A);
	p = url_ok("http://[::1]:3128/");
	cr_assert_eq(p.kind, TK_PROXY_HTTP);
	cr_assert_str_eq(p.host, "::1");
	cr_assert_str_eq(p.port, "3128");
}

Test(proxy_url, credentials_percent_decoded)
{
	struct tk_proxy p = url_ok("socks5://us%65r:p%40ss:w%3Ard@h:9");
	char buf[256];

	cr_assert(p.has_auth);
	cr_assert_str_eq(p.user, "user");
	cr_assert_str_eq(p.pass, "p@ss:w:rd");
	cr_assert_str_eq(tk_proxy_format(&p, buf, sizeof(buf)),
			 "socks5://user@h:9");
	tk_proxy_clear(&p);
	cr_assert_eq(p.kind, TK_PROXY_NONE);
	cr_assert_eq(p.pass[0], '\0');
	p = url_ok("http://[::1]:8080");
	cr_assert_str_eq(tk_proxy_format(&p, buf, sizeof(buf)),
			 "http://[::1]:8080");
}

Test(proxy_url, refused)
{
	char user[300];

	url_err("127.0.0.1:1080", "a proxy is a URL");
	url_err("https://h:1", "unknown proxy scheme");
	url_err("socks5://", "no proxy host");
	url_err("socks5://h:", "bad port"); /* forgotten, not the default */
	url_err("socks5://h:0", "1 to 65535");
	url_err("socks5://h:x", "a number from 1 to 65535");
	url_err("socks5://h:1/x", "no path");
	url_err("socks5://h:1?q", "no path");
	url_err("socks5://:p@h", "bad user or password");
	url_err("socks5://u:%4@h", "bad user or password");
	url_err("socks5://u:%00@h", "bad user or password");
	memset(user, 'u', sizeof(user));
	memcpy(user, "socks5://", 9);
	strcpy(user + 9 + 256, "@h");
	url_err(user, "bad user or password");
}

Test(socks, greeting_and_method)
{
	uint8_t out[8], m = 0x42;

	cr_assert_eq(tk_socks5_greeting(false, out, sizeof(out)), 3);
	cr_assert_arr_eq(out, "\5\1\0", 3);
	cr_assert_eq(tk_socks5_greeting(true, out, sizeof(out)), 4);
	cr_assert_arr_eq(out, "\5\2\0\2", 4);
	cr_assert_eq(tk_socks5_greeting(true, out, 3), -E2BIG);
	cr_assert_eq(tk_socks5_parse_method((const uint8_t *)"\5", 1, &m), 0);
	cr_assert_eq(tk_socks5_parse_method((const uint8_t *)"\5\2!", 3, &m),
		     2);
	cr_assert_eq(m, 2);
	cr_assert_eq(tk_socks5_parse_method((const uint8_t *)"H", 1, &m),
		     TK_EPROXYPROTO);
}

Test(socks, userpass)
{
	uint8_t out[600], st = 9;
	char big[257];

	cr_assert_eq(tk_socks5_auth_request("al", "pw!", out, sizeof(out)), 8);
	cr_assert_arr_eq(out, "\1\2al\3pw!", 8);
	memset(big, 'x', 256);
	big[256] = '\0';
	cr_assert_eq(tk_socks5_auth_request(big, "p", out, sizeof(out)),
		     -EINVAL);
	cr_assert_eq(tk_socks5_auth_request("u", "", out, sizeof(out)),
		     -EINVAL);
	cr_assert_eq(tk_socks5_auth_request("u", "p", out, 4), -E2BIG);
	cr_assert_eq(tk_socks5_parse_auth((const uint8_t *)"\1\1", 2, &st), 2);
	cr_assert_eq(st, 1);
	cr_assert_eq(tk_socks5_parse_auth((const uint8_t *)"\7", 1, &st),
		     TK_EPROXYPROTO);
}

Test(socks, connect_request_address_types)
{
	uint8_t out[300];

	cr_assert_eq(
		tk_socks5_connect_request("10.1.2.3", 80, out, sizeof(out)),
		10);
	cr_assert_arr_eq(out, "\5\1\0\1\12\1\2\3\0\120", 10);
	cr_assert_eq(tk_socks5_connect_request("::1", 443, out, sizeof(out)),
		     22);
	cr_assert_arr_eq(out, "\5\1\0\4\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1\1\273",
			 22);
	cr_assert_eq(
		tk_socks5_connect_request("a.example", 1, out, sizeof(out)),
		16);
	cr_assert_arr_eq(out, "\5\1\0\3\11a.example\0\1", 16);
	cr_assert_eq(tk_socks5_connect_request("", 1, out, sizeof(out)),
		     -EINVAL);
	cr_assert_eq(tk_socks5_connect_request("a.example", 1, out, 15),
		     -E2BIG);
}

Test(socks, reply_lengths_and_codes)
{
	struct tk_socks_reply r;
	const uint8_t v4[] = "\5\0\0\1\177\0\0\1\4\070tail";
	const uint8_t name[] = "\5\5\0\3\3a\nb\0\120";

	for (size_t n = 0; n < 10; n++)
		cr_assert_eq(tk_socks5_parse_reply(v4, n, &r), 0, "%zu", n);
	cr_assert_eq(tk_socks5_parse_reply(v4, sizeof(v4) - 1, &r), 10);
	cr_assert_eq(r.code, 0);
	cr_assert_str_eq(r.bound, "127.0.0.1");
	cr_assert_eq(r.port, 1080);
	cr_assert_eq(tk_socks5_parse_reply(name, 10, &r), 10);
	cr_assert_eq(r.code, 5);
	cr_assert_str_eq(r.bound, "a?b"); /* the proxy's bytes, made safe */
	cr_assert_str_eq(tk_socks5_reply_text(5), "connection refused");
	cr_assert_str_eq(tk_socks5_reply_text(200), "unknown reply code");
	cr_assert_eq(tk_socks5_parse_reply((const uint8_t *)"\5\0\0\7", 5, &r),
		     TK_EPROXYPROTO);
	/* A sloppy proxy's RSV byte is let through. */
	cr_assert_eq(tk_socks5_parse_reply(
			     (const uint8_t *)"\5\0\1\1\0\0\0\0\0\0", 10, &r),
		     10);
	cr_assert_eq(tk_socks5_parse_reply((const uint8_t *)"HTTP", 4, &r),
		     TK_EPROXYPROTO);
}

Test(socks, socks4a)
{
	uint8_t out[300];
	struct tk_socks_reply r;

	cr_assert_eq(tk_socks4a_request("10.0.0.1", 80, "me", out, sizeof(out)),
		     11);
	cr_assert_arr_eq(out, "\4\1\0\120\12\0\0\1me\0", 11);
	cr_assert_eq(tk_socks4a_request("host", 80, NULL, out, sizeof(out)),
		     14);
	cr_assert_arr_eq(out, "\4\1\0\120\0\0\0\1\0host\0", 14);
	/* SOCKS4 has no IPv6. */
	cr_assert_eq(tk_socks4a_request("::1", 80, NULL, out, sizeof(out)),
		     -EINVAL);
	cr_assert_eq(tk_socks4_parse_reply((const uint8_t *)"\0\132\0\0\0\0\0",
					   7, &r),
		     0);
	cr_assert_eq(tk_socks4_parse_reply(
			     (const uint8_t *)"\0\133\0\120\1\2\3\4", 8, &r),
		     8);
	cr_assert_eq(r.code, 91);
	cr_assert_str_eq(r.bound, "1.2.3.4");
	cr_assert_eq(tk_socks4_parse_reply((const uint8_t *)"\5", 1, &r),
		     TK_EPROXYPROTO);
}

Test(http_connect, request)
{
	char out[512];
	ssize_t n = tk_http_connect_request("example.test", 443, "Aladdin",
					    "open sesame", out, sizeof(out));

	cr_assert_gt(n, 0);
	cr_assert_str_eq(out,
			 "CONNECT example.test:443 HTTP/1.1\r\n"
			 "Host: example.test:443\r\n"
			 "Proxy-Authorization: Basic "
			 "QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"
			 "User-Agent: tcpkit/" TK_VERSION_STRING "\r\n\r\n");
	n = tk_http_connect_request("::1", 22, NULL, NULL, out, sizeof(out));
	cr_assert_gt(n, 0);
	cr_assert(strncmp(out,
			  "CONNECT [::1]:22 HTTP/1.1\r\nHost: [::1]:22\r\n",
			  43) == 0);
	cr_assert(strstr(out, "Proxy-Authorization") == NULL);
}

Test(http_connect, refused)
{
	char out[512];

	/* No header can be smuggled in through the host. */
	cr_assert_eq(tk_http_connect_request("a\r\nX: y", 1, NULL, NULL, out,
					     sizeof(out)),
		     -EINVAL);
	cr_assert_eq(
		tk_http_connect_request("a b", 1, NULL, NULL, out, sizeof(out)),
		-EINVAL);
	cr_assert_eq(tk_http_connect_request("::zz", 1, NULL, NULL, out,
					     sizeof(out)),
		     -EINVAL);
	/* Basic cannot carry a colon in the user id (RFC 7617). */
	cr_assert_eq(
		tk_http_connect_request("h", 1, "a:b", "c", out, sizeof(out)),
		-EINVAL);
	cr_assert_eq(tk_http_connect_request("h", 1, NULL, NULL, out, 20),
		     -E2BIG);
}

TestSuite(proxy_conn, .timeout = 30);

static const struct tk_service nothing = { .name = "nothing" };

/* A proxy needs the target's name: an address list or a UNIX socket has
 * none to give it, and no callback follows the refusal. */
Test(proxy_conn, needs_a_name)
{
	struct tk_loop *loop;
	struct tk_conn_opts o;
	struct tk_proxy p;
	struct tk_addr a;
	struct tk_addrlist list = { 1, &a };
	struct tk_endpoint ep;
	struct tk_conn *c = NULL;

	cr_assert_eq(tk_loop_new(&loop), 0);
	cr_assert_eq(tk_proxy_parse("socks5://127.0.0.1:9", &p, NULL, 0), 0);
	tk_conn_opts_init(&o);
	o.proxy = &p;
	cr_assert_eq(tk_addr_parse("127.0.0.1:9", 0, &a), 0);
	cr_assert_eq(tk_conn_connect(loop, &list, &o, &nothing, NULL, &c),
		     -EINVAL);
	cr_assert_eq(
		tk_endpoint_parse("unix:/nope", TK_EP_ALLOW_UNIX, &ep, NULL, 0),
		0);
	cr_assert_eq(
		tk_conn_connect_endpoint(loop, &ep, &o, &nothing, NULL, &c),
		-EINVAL);
	cr_assert_eq(
		tk_conn_connect_host(loop, "h", NULL, &o, &nothing, NULL, &c),
		-EINVAL);
	cr_assert_null(c);
	cr_assert_eq(tk_loop_close(loop), 0);
}
