/* test_addr.c: host:port splitting, address parsing, formatting, predicates. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "tcpkit.h"

TestSuite(split, .timeout = 30);
TestSuite(port, .timeout = 30);
TestSuite(addr, .timeout = 30);
TestSuite(format, .timeout = 30);

/* Split text and check the result (err 0) or the error. */
static void
split_ok(const char *text, const char *host, const char *port)
{
	char h[TK_HOSTLEN], p[TK_PORTLEN];
	int err = tk_hostport_split(text, h, p);

	cr_assert_eq(err, 0, "split(\"%s\") = %d (%s)", text, err,
		     tk_err_name(err));
	cr_assert_str_eq(h, host, "split(\"%s\") host \"%s\"", text, h);
	cr_assert_str_eq(p, port, "split(\"%s\") port \"%s\"", text, p);
}

static void
split_err(const char *text, int want)
{
	char h[TK_HOSTLEN], p[TK_PORTLEN];
	int err = tk_hostport_split(text, h, p);

	cr_assert_eq(err, want, "split(\"%s\") = %s, want %s", text,
		     tk_err_name(err), tk_err_name(want));
	cr_assert_str_eq(h, "", "split(\"%s\") left host \"%s\"", text, h);
	cr_assert_str_eq(p, "", "split(\"%s\") left port \"%s\"", text, p);
}

Test(split, host_and_port)
{
	split_ok("localhost:80", "localhost", "80");
	split_ok("example.com:http", "example.com", "http");
	split_ok("1.2.3.4:65535", "1.2.3.4", "65535");
	split_ok("a-b_c.example.:0", "a-b_c.example.", "0");
	split_ok("host:http-alt", "host", "http-alt");
	split_ok("host:080", "host", "080");
}

Test(split, bracketed_ipv6)
{
	split_ok("[::1]:80", "::1", "80");
	split_ok("[::1]", "::1", "");
	split_ok("[fe80::1%lo]:8080", "fe80::1%lo", "8080");
	split_ok("[::ffff:127.0.0.1]:1", "::ffff:127.0.0.1", "1");
	split_ok("[2001:db8::1]:https", "2001:db8::1", "https");
}

Test(split, bare_forms)
{
	split_ok("8080", "", "8080");
	split_ok("0", "", "0");
	split_ok(":8080", "", "8080");
	split_ok("localhost", "localhost", "");
	split_ok("127.0.0.1", "127.0.0.1", "");
	/* A bare IPv6 literal is all host, even when it ends like a port. */
	split_ok("::1", "::1", "");
	split_ok("::", "::", "");
	split_ok("::1:80", "::1:80", "");
	split_ok("fe80::1%lo", "fe80::1%lo", "");
	split_ok("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8", "");
}

Test(split, bad_addresses)
{
	split_err(NULL, TK_EBADADDR);
	split_err("", TK_EBADADDR);
	split_err("[]", TK_EBADADDR);
	split_err("[]:80", TK_EBADADDR);
	split_err("[", TK_EBADADDR);
	split_err("[::1", TK_EBADADDR);
	split_err("[::1:80", TK_EBADADDR);
	split_err("::1]:80", TK_EBADADDR);
	split_err("]:80", TK_EBADADDR);
	split_err("[[::1]]:80", TK_EBADADDR);
	split_err("[::1]]", TK_EBADADDR);
	split_err("[::1]x", TK_EBADADDR);
	split_err("[::1]80", TK_EBADADDR);
	split_err("[::1] :80", TK_EBADADDR);
	split_err("[localhost]:80", TK_EBADADDR);
	split_err("[1.2.3.4]:80", TK_EBADADDR);
	split_err("[fe80::1%]:80", TK_EBADADDR);
	split_err("[fe80::1%a/b]", TK_EBADADDR);
	split_err("[fe80::1%toolonginterfacename]", TK_EBADADDR);
	split_err("a:b:c", TK_EBADADDR);
	split_err("host:80:90", TK_EBADADDR);
	split_err("1:2:3:4:5:6:7:8:9", TK_EBADADDR);
	split_err(" localhost", TK_EBADADDR);
	split_err("localhost ", TK_EBADADDR);
	split_err("local host:80", TK_EBADADDR);
	split_err("host\t:80", TK_EBADADDR);
	split_err("user@host:80", TK_EBADADDR);
	split_err("host/path", TK_EBADADDR);
	split_err(".", TK_EBADADDR);
	split_err(".host", TK_EBADADDR);
	split_err("a..b", TK_EBADADDR);
	split_err("h\xc3\xa9llo", TK_EBADADDR);
}

Test(split, bad_ports)
{
	split_err("host:", TK_EBADPORT);
	split_err(":", TK_EBADPORT);
	split_err("[::1]:", TK_EBADPORT);
	split_err("host:65536", TK_EBADPORT);
	split_err("host:99999999999999999999", TK_EBADPORT);
	split_err("65536", TK_EBADPORT);
	split_err(":65536", TK_EBADPORT);
	split_err("host:+80", TK_EBADPORT);
	split_err("host:-80", TK_EBADPORT);
	split_err("host:-http", TK_EBADPORT);
	split_err("host: 80", TK_EBADPORT);
	split_err("host:80 ", TK_EBADPORT);
	split_err("[::1]:8x0!", TK_EBADPORT);
	split_err("host:_-_", TK_EBADPORT);
	split_err("host:0x50", TK_EBADPORT);
	split_err("host:80a", TK_EBADPORT);
	split_err("host:ht.tp", TK_EBADPORT);
}

/* A host name of exactly n bytes: labels of 63 'a' joined by dots. */
static char *
long_name(char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = i % 64 == 63 ? '.' : 'a';
	buf[n] = '\0';
	return buf;
}

Test(split, host_length_limits)
{
	char text[TK_HOSTLEN + 8], host[TK_HOSTLEN + 8];

	/* 255 bytes fit TK_HOSTLEN with their NUL; 256 do not. */
	split_ok(long_name(text, TK_HOSTLEN - 1), text, "");
	long_name(host, TK_HOSTLEN - 1);
	split_ok(strcat(long_name(text, TK_HOSTLEN - 1), ":1"), host, "1");
	split_err(long_name(text, TK_HOSTLEN), TK_EBADADDR);
	split_err(strcat(long_name(text, TK_HOSTLEN), ":1"), TK_EBADADDR);

	/* One label longer than 63 bytes. */
	memset(text, 'a', 64);
	text[64] = '\0';
	split_err(text, TK_EBADADDR);
}

Test(split, port_length_limit)
{
	char text[64];

	/* A service name of TK_PORTLEN - 1 bytes fits, one more does not. */
	snprintf(text, sizeof(text), "h:%0*d", TK_PORTLEN - 1, 0);
	text[2] = 's';
	split_ok(text, "h", text + 2);
	snprintf(text, sizeof(text), "h:s%0*d", TK_PORTLEN - 1, 0);
	split_err(text, TK_EBADPORT);
}

Test(port, parse)
{
	uint16_t p = 1;

	cr_assert_eq(tk_port_parse("0", &p), 0);
	cr_assert_eq(p, 0);
	cr_assert_eq(tk_port_parse("80", &p), 0);
	cr_assert_eq(p, 80);
	cr_assert_eq(tk_port_parse("65535", &p), 0);
	cr_assert_eq(p, 65535);
	cr_assert_eq(tk_port_parse("00080", &p), 0);
	cr_assert_eq(p, 80);

	p = 7;
	cr_assert_eq(tk_port_parse("65536", &p), TK_EBADPORT);
	cr_assert_eq(tk_port_parse("4294967376", &p), TK_EBADPORT);
	cr_assert_eq(tk_port_parse("", &p), TK_EBADPORT);
	cr_assert_eq(tk_port_parse("+80", &p), TK_EBADPORT);
	cr_assert_eq(tk_port_parse("-1", &p), TK_EBADPORT);
	cr_assert_eq(tk_port_parse(" 80", &p), TK_EBADPORT);
	cr_assert_eq(tk_port_parse("80 ", &p), TK_EBADPORT);
	cr_assert_eq(tk_port_parse("0x50", &p), TK_EBADPORT);
	cr_assert_eq(tk_port_parse("http", &p), TK_EBADPORT);
	cr_assert_eq(tk_port_parse(NULL, &p), TK_EBADPORT);
	/* Not cut short at TK_PORTLEN: 40 zeros then 80 is too long. */
	cr_assert_eq(
		tk_port_parse("0000000000000000000000000000000000000080", &p),
		TK_EBADPORT);
	cr_assert_eq(tk_port_parse("00000000000000000000000000000000", &p),
		     TK_EBADPORT);
	cr_assert_eq(p, 7, "a failed parse must not write the port");
}

static struct tk_addr
parse_ok(const char *text, uint16_t def)
{
	struct tk_addr a;
	int err = tk_addr_parse(text, def, &a);

	cr_assert_eq(err, 0, "parse(\"%s\") = %s", text, tk_err_name(err));
	return a;
}

static void
parse_err(const char *text, int want)
{
	struct tk_addr a;
	int err;

	memset(&a, 0xa5, sizeof(a));
	err = tk_addr_parse(text, 1, &a);
	cr_assert_eq(err, want, "parse(\"%s\") = %s, want %s", text,
		     tk_err_name(err), tk_err_name(want));
	cr_assert_eq(a.len, (socklen_t)0xa5a5a5a5, "out written on error");
}

Test(addr, parse_ipv4)
{
	struct tk_addr a = parse_ok("1.2.3.4:80", 9);

	cr_assert_eq(tk_addr_family(&a), AF_INET);
	cr_assert_eq(a.len, sizeof(struct sockaddr_in));
	cr_assert_eq(a.u.in4.sin_addr.s_addr, htonl(0x01020304));
	cr_assert_eq(tk_addr_port(&a), 80);

	a = parse_ok("10.0.0.1", 9);
	cr_assert_eq(tk_addr_port(&a), 9, "default port when absent");
	cr_assert_eq(a.u.in4.sin_addr.s_addr, htonl(0x0a000001));
}

Test(addr, parse_ipv6)
{
	struct in6_addr one = IN6ADDR_LOOPBACK_INIT;
	struct tk_addr a = parse_ok("[::1]:443", 9);

	cr_assert_eq(tk_addr_family(&a), AF_INET6);
	cr_assert_eq(a.len, sizeof(struct sockaddr_in6));
	cr_assert_eq(memcmp(&a.u.in6.sin6_addr, &one, sizeof(one)), 0);
	cr_assert_eq(tk_addr_port(&a), 443);
	cr_assert_eq(a.u.in6.sin6_scope_id, 0);

	a = parse_ok("::1", 9);
	cr_assert_eq(tk_addr_port(&a), 9);
	a = parse_ok("[::1]", 7);
	cr_assert_eq(tk_addr_port(&a), 7);
}

Test(addr, parse_scope)
{
	unsigned lo = if_nametoindex("lo");
	struct tk_addr a;

	cr_assert_neq(lo, 0, "no loopback interface called lo");
	a = parse_ok("[fe80::1%lo]:80", 0);
	cr_assert_eq(a.u.in6.sin6_scope_id, lo);
	a = parse_ok("fe80::1%lo", 0);
	cr_assert_eq(a.u.in6.sin6_scope_id, lo);
	/* A numeric zone need not name an existing interface. */
	a = parse_ok("[fe80::1%4000]:80", 0);
	cr_assert_eq(a.u.in6.sin6_scope_id, 4000);

	parse_err("fe80::1%nosuchif0", TK_EBADADDR);
	parse_err("fe80::1%0", TK_EBADADDR);
	parse_err("fe80::1%99999999999", TK_EBADADDR);
	parse_err("fe80::1%", TK_EBADADDR);
}

Test(addr, parse_rejects)
{
	parse_err("localhost:80", TK_EBADADDR);
	parse_err("localhost", TK_EBADADDR);
	parse_err("8080", TK_EBADADDR);
	parse_err(":8080", TK_EBADADDR);
	parse_err("1.2.3:80", TK_EBADADDR);
	parse_err("1.2.3.256", TK_EBADADDR);
	parse_err("01.2.3.4", TK_EBADADDR);
	parse_err("1.2.3.4.5", TK_EBADADDR);
	parse_err("127.1", TK_EBADADDR);
	parse_err("[1.2.3.4]:80", TK_EBADADDR);
	parse_err("[::1", TK_EBADADDR);
	parse_err("[]:80", TK_EBADADDR);
	parse_err("", TK_EBADADDR);
	parse_err(NULL, TK_EBADADDR);
	parse_err("1.2.3.4:http", TK_EBADPORT);
	parse_err("1.2.3.4:65536", TK_EBADPORT);
	parse_err("[::1]:-1", TK_EBADPORT);
	parse_err("1.2.3.4:", TK_EBADPORT);
}

Test(addr, from_ip)
{
	struct tk_addr a;

	cr_assert_eq(tk_addr_from_ip("192.0.2.7", 8080, &a), 0);
	cr_assert_eq(tk_addr_family(&a), AF_INET);
	cr_assert_eq(tk_addr_port(&a), 8080);
	cr_assert_eq(tk_addr_from_ip("2001:db8::7", 1, &a), 0);
	cr_assert_eq(tk_addr_family(&a), AF_INET6);
	cr_assert_eq(tk_addr_port(&a), 1);

	cr_assert_eq(tk_addr_from_ip("[::1]", 1, &a), TK_EBADADDR);
	cr_assert_eq(tk_addr_from_ip("::1:", 1, &a), TK_EBADADDR);
	cr_assert_eq(tk_addr_from_ip("localhost", 1, &a), TK_EBADADDR);
	cr_assert_eq(tk_addr_from_ip("1.2.3.4:80", 1, &a), TK_EBADADDR);
	cr_assert_eq(tk_addr_from_ip(" 1.2.3.4", 1, &a), TK_EBADADDR);
	cr_assert_eq(tk_addr_from_ip("", 1, &a), TK_EBADADDR);
	cr_assert_eq(tk_addr_from_ip(NULL, 1, &a), TK_EBADADDR);
}

/* Format a, check the text, and parse it back to an equal address. */
static void
round_trip(const char *text, const char *want, const char *want_ip)
{
	char buf[TK_ADDRSTRLEN], ip[TK_ADDRSTRLEN];
	struct tk_addr a = parse_ok(text, 0), b;

	cr_assert_str_eq(tk_addr_format(&a, buf, sizeof(buf)), want);
	cr_assert_str_eq(tk_addr_format_ip(&a, ip, sizeof(ip)), want_ip);
	b = parse_ok(buf, 1);
	cr_assert(tk_addr_equal(&a, &b), "%s -> %s is not the same", text, buf);
}

Test(format, round_trips)
{
	round_trip("1.2.3.4:80", "1.2.3.4:80", "1.2.3.4");
	round_trip("0.0.0.0", "0.0.0.0:0", "0.0.0.0");
	round_trip("255.255.255.255:65535", "255.255.255.255:65535",
		   "255.255.255.255");
	round_trip("[::1]:80", "[::1]:80", "::1");
	round_trip("::", "[::]:0", "::");
	/* inet_ntop's canonical form (RFC 5952): lower case, zeros folded. */
	round_trip("[2001:DB8:0:0:0:0:0:1]:8443", "[2001:db8::1]:8443",
		   "2001:db8::1");
	round_trip("::ffff:127.0.0.1", "[::ffff:127.0.0.1]:0",
		   "::ffff:127.0.0.1");
	round_trip("[fe80::1%lo]:22", "[fe80::1%lo]:22", "fe80::1%lo");
	/* A zone that is no interface stays a number. */
	round_trip("[fe80::1%4000]:22", "[fe80::1%4000]:22", "fe80::1%4000");
}

Test(format, longest_fits)
{
	char buf[TK_ADDRSTRLEN];
	struct tk_addr a = parse_ok(
		"[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%4294967295]:"
		"65535",
		0);

	tk_addr_format(&a, buf, sizeof(buf));
	cr_assert_lt(strlen(buf), sizeof(buf) - 1, "%s", buf);
	cr_assert_str_eq(buf, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%"
			      "4294967295]:65535");
}

Test(format, truncates_and_unknown_family)
{
	char buf[8], big[TK_ADDRSTRLEN];
	struct tk_addr a = parse_ok("192.168.100.200:65535", 0), u;

	cr_assert_str_eq(tk_addr_format(&a, buf, sizeof(buf)), "192.168");
	cr_assert_eq(tk_addr_format(&a, buf, 0), buf);
	cr_assert_str_eq(tk_addr_format_ip(&a, buf, sizeof(buf)), "192.168");

	/* AF_UNIX is known since UNIX sockets came (test_unix.c). */
	memset(&u, 0, sizeof(u));
	u.u.sa.sa_family = AF_APPLETALK;
	cr_assert_str_eq(tk_addr_format(&u, big, sizeof(big)), "?");
	cr_assert_str_eq(tk_addr_format_ip(&u, big, sizeof(big)), "?");
	cr_assert_eq(tk_addr_port(&u), 0);
}

Test(addr, ports)
{
	struct tk_addr a = parse_ok("1.2.3.4", 0), b = parse_ok("::1", 0);

	tk_addr_set_port(&a, 65535);
	tk_addr_set_port(&b, 1);
	cr_assert_eq(tk_addr_port(&a), 65535);
	cr_assert_eq(tk_addr_port(&b), 1);
	cr_assert_eq(a.u.in4.sin_port, htons(65535));
	cr_assert_eq(b.u.in6.sin6_port, htons(1));
}

static bool
loopback(const char *text)
{
	struct tk_addr a = parse_ok(text, 0);

	return tk_addr_is_loopback(&a);
}

static bool
any(const char *text)
{
	struct tk_addr a = parse_ok(text, 0);

	return tk_addr_is_any(&a);
}

Test(addr, is_loopback)
{
	cr_assert(loopback("127.0.0.1"));
	cr_assert(loopback("127.255.255.254"));
	cr_assert(loopback("127.0.0.0"));
	cr_assert(loopback("::1"));
	cr_assert(loopback("::ffff:127.0.0.1"));
	cr_assert(loopback("::ffff:127.1.2.3"));

	cr_assert_not(loopback("128.0.0.1"));
	cr_assert_not(loopback("126.255.255.255"));
	cr_assert_not(loopback("0.0.0.0"));
	cr_assert_not(loopback("::"));
	cr_assert_not(loopback("::2"));
	cr_assert_not(loopback("::127.0.0.1"));
	cr_assert_not(loopback("::ffff:128.0.0.1"));
	cr_assert_not(loopback("::fffe:127.0.0.1"));
	cr_assert_not(loopback("fe80::1"));
}

Test(addr, is_any)
{
	cr_assert(any("0.0.0.0"));
	cr_assert(any("::"));
	cr_assert(any("[::]:80"));
	cr_assert_not(any("0.0.0.1"));
	cr_assert_not(any("::1"));
	cr_assert_not(any("127.0.0.1"));
	cr_assert_not(any("::ffff:0.0.0.0"));
}

Test(addr, equal)
{
	struct tk_addr a = parse_ok("1.2.3.4:80", 0), b = a, c, d;

	/* Differences in padding do not count. */
	memset(&b, 0xff, sizeof(b));
	cr_assert_eq(tk_addr_parse("1.2.3.4:80", 0, &b), 0);
	b.u.in4.sin_zero[3] = 9;
	cr_assert(tk_addr_equal(&a, &b));

	c = parse_ok("1.2.3.4:81", 0);
	cr_assert_not(tk_addr_equal(&a, &c), "port differs");
	c = parse_ok("1.2.3.5:80", 0);
	cr_assert_not(tk_addr_equal(&a, &c), "address differs");
	c = parse_ok("[::ffff:1.2.3.4]:80", 0);
	cr_assert_not(tk_addr_equal(&a, &c), "family differs");

	c = parse_ok("[fe80::1]:80", 0);
	d = parse_ok("[fe80::1%lo]:80", 0);
	cr_assert_not(tk_addr_equal(&c, &d), "scope differs");
	d = parse_ok("[FE80:0::1]:80", 0);
	d.u.in6.sin6_flowinfo = htonl(5);
	cr_assert(tk_addr_equal(&c, &d), "flow label does not count");
}

/*
 * Every split point of a valid input: the prefixes are parsed without
 * crashing, and the error, if any, is one of the two documented.
 */
Test(split, every_prefix)
{
	static const char *const inputs[] = {
		"[fe80::1%lo]:8080",
		"example.com:http",
		"1.2.3.4:65535",
		"[::ffff:1.2.3.4]",
		"::1",
		":80",
	};

	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		char buf[64];
		size_t n = strlen(inputs[i]);

		for (size_t k = 0; k <= n; k++) {
			char h[TK_HOSTLEN], p[TK_PORTLEN];
			struct tk_addr a;
			int err;

			memcpy(buf, inputs[i], k);
			buf[k] = '\0';
			err = tk_hostport_split(buf, h, p);
			cr_assert(err == 0 || err == TK_EBADADDR ||
					  err == TK_EBADPORT,
				  "split(\"%s\") = %d", buf, err);
			err = tk_addr_parse(buf, 0, &a);
			cr_assert(err == 0 || err == TK_EBADADDR ||
					  err == TK_EBADPORT,
				  "parse(\"%s\") = %d", buf, err);
		}
	}
}
