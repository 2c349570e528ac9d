/* test_endpoint.c: the endpoint parser, formatter and exec: splitting. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tcpkit.h"

TestSuite(endpoint, .timeout = 30);
TestSuite(exec_split, .timeout = 30);

#define ALL                                                                    \
	(TK_EP_ALLOW_STDIO | TK_EP_ALLOW_EXEC | TK_EP_ALLOW_UNIX |             \
	 TK_EP_ALLOW_TLS)

static struct tk_endpoint
parse_ok(const char *text, unsigned flags)
{
	struct tk_endpoint ep;
	char why[128];
	int err = tk_endpoint_parse(text, flags, &ep, why, sizeof(why));

	cr_assert_eq(err, 0, "parse(\"%s\") = %s: %s", text, tk_err_name(err),
		     why);
	return ep;
}

/* The parse fails, and the reason contains want. */
static void
parse_err(const char *text, unsigned flags, const char *want)
{
	struct tk_endpoint ep;
	char why[128];
	int err;

	memset(&ep, 0x5a, sizeof(ep));
	err = tk_endpoint_parse(text, flags, &ep, why, sizeof(why));
	cr_assert_eq(err, TK_EBADENDPOINT, "parse(\"%s\") = %s", text,
		     tk_err_name(err));
	cr_assert(strstr(why, want) != NULL,
		  "parse(\"%s\"): \"%s\" lacks \"%s\"", text, why, want);
	cr_assert(strchr(why, '\n') == NULL, "one line: \"%s\"", why);
	cr_assert_eq(ep.kind, (enum tk_endpoint_kind)0x5a5a5a5a,
		     "ep written on failure");
}

static void
round_trip(const char *text, unsigned flags, const char *formatted)
{
	struct tk_endpoint ep = parse_ok(text, flags);
	char buf[256];

	cr_assert_str_eq(tk_endpoint_format(&ep, buf, sizeof(buf)), formatted,
			 "format(parse(\"%s\"))", text);
}

Test(endpoint, tcp_forms)
{
	struct tk_endpoint ep = parse_ok("example.org:80", 0);

	cr_assert_eq(ep.kind, TK_EP_TCP);
	cr_assert_str_eq(ep.host, "example.org");
	cr_assert_str_eq(ep.port, "80");
	ep = parse_ok("[::1]:8080", 0);
	cr_assert_str_eq(ep.host, "::1");
	cr_assert_str_eq(ep.port, "8080");
	ep = parse_ok("127.0.0.1:http", 0);
	cr_assert_str_eq(ep.port, "http");
	ep = parse_ok("tcp://localhost:22", 0);
	cr_assert_eq(ep.kind, TK_EP_TCP);
	cr_assert_str_eq(ep.host, "localhost");
	round_trip("[fe80::1%lo]:9", 0, "[fe80::1%lo]:9");
	round_trip("TCP://h:1", 0, "h:1");
}

Test(endpoint, passive_forms)
{
	struct tk_endpoint ep = parse_ok(":8080", TK_EP_PASSIVE);

	cr_assert_str_eq(ep.host, "");
	cr_assert_str_eq(ep.port, "8080");
	cr_assert(ep.wildcard, "\":8080\" asks for every address");
	ep = parse_ok("0", TK_EP_PASSIVE);
	cr_assert_str_eq(ep.port, "0");
	cr_assert_not(ep.wildcard, "a bare port leaves the address open");
	round_trip("8080", TK_EP_PASSIVE, "8080");
	round_trip(":8080", TK_EP_PASSIVE, ":8080");
	ep = parse_ok("127.0.0.1:0", TK_EP_PASSIVE);
	cr_assert_not(ep.wildcard);
	ep = parse_ok("tls://:8443", TK_EP_PASSIVE | TK_EP_ALLOW_TLS);
	cr_assert_eq(ep.kind, TK_EP_TLS);
	cr_assert_str_eq(ep.host, "");
	cr_assert(ep.wildcard);
	ep = parse_ok("[::]:0", TK_EP_PASSIVE);
	cr_assert_str_eq(ep.host, "::");
}

Test(endpoint, active_needs_host_and_port)
{
	parse_err(":8080", 0, "missing host");
	parse_err("8080", 0, "missing host");
	parse_err("localhost", 0, "missing port");
	parse_err("localhost:", 0, "missing port after ':'");
	parse_err("h:0", 0, "port 0 cannot be connected to");
	parse_err("h:65536", 0, "port '65536' out of range (1-65535)");
	parse_err("h:65536", TK_EP_PASSIVE, "out of range (0-65535)");
	parse_err("h:99999999999999999999", 0, "out of range");
	parse_err("h:a!b", 0, "port 'a!b': not a number or a service name");
	parse_err("bad_host!:80", 0, "host 'bad_host!'");
	parse_err("[::1:80", 0, "host '[::1:80'");
	parse_err("tcp://", 0, "missing HOST:PORT");
}

Test(endpoint, tls)
{
	struct tk_endpoint ep =
		parse_ok("tls://example.org:443", TK_EP_ALLOW_TLS);

	cr_assert_eq(ep.kind, TK_EP_TLS);
	cr_assert_str_eq(ep.host, "example.org");
	cr_assert_str_eq(ep.port, "443");
	round_trip("tls://[::1]:443", TK_EP_ALLOW_TLS, "tls://[::1]:443");
	parse_err("tls://example.org:443", 0, "tls:// is not taken here");
	parse_err("tls://example.org", TK_EP_ALLOW_TLS, "missing port");
}

Test(endpoint, udp)
{
	struct tk_endpoint ep = parse_ok("udp://127.0.0.1:53", TK_EP_ALLOW_UDP);

	cr_assert_eq(ep.kind, TK_EP_UDP);
	cr_assert_str_eq(ep.host, "127.0.0.1");
	cr_assert_str_eq(ep.port, "53");
	ep = parse_ok("UDP://:5353", TK_EP_ALLOW_UDP | TK_EP_PASSIVE);
	cr_assert_eq(ep.kind, TK_EP_UDP);
	cr_assert_str_eq(ep.host, "");
	cr_assert_str_eq(ep.port, "5353");
	ep = parse_ok("udp://0", TK_EP_ALLOW_UDP | TK_EP_PASSIVE);
	cr_assert_str_eq(ep.port, "0");
	round_trip("udp://[::1]:7", TK_EP_ALLOW_UDP, "udp://[::1]:7");
	round_trip("udp://h:domain", TK_EP_ALLOW_UDP, "udp://h:domain");
	parse_err("udp://h:53", ALL, "udp:// is not taken here");
	parse_err("udp://:53", TK_EP_ALLOW_UDP, "missing host");
	parse_err("udp://h:0", TK_EP_ALLOW_UDP, "port 0 cannot be connected");
	parse_err("udp://h", TK_EP_ALLOW_UDP, "missing port");
	parse_err("udp://", TK_EP_ALLOW_UDP, "missing HOST:PORT");
	parse_err("udp:///tmp/s", TK_EP_ALLOW_UDP, "a path is not an address");
}

Test(endpoint, unix)
{
	char longpath[TK_UNIX_PATHLEN + 8];
	struct tk_endpoint ep = parse_ok("unix:/run/app.sock", ALL);

	cr_assert_eq(ep.kind, TK_EP_UNIX);
	cr_assert_str_eq(ep.path, "/run/app.sock");
	cr_assert_eq(ep.path_len, strlen("/run/app.sock"));
	cr_assert_not(ep.abstract);
	ep = parse_ok("unix:@tcpkit", ALL);
	cr_assert(ep.abstract);
	cr_assert_str_eq(ep.path, "tcpkit");
	ep = parse_ok("unix:rel/x.sock", ALL);
	cr_assert_str_eq(ep.path, "rel/x.sock");
	round_trip("unix:@n", ALL, "unix:@n");
	round_trip("UNIX:/p", ALL, "unix:/p");

	/* The longest path that fits sun_path with its NUL, and one more. */
	memset(longpath, 'a', sizeof(longpath));
	memcpy(longpath, "unix:/", 6);
	longpath[5 + TK_UNIX_PATHLEN] = '\0';
	ep = parse_ok(longpath, ALL);
	cr_assert_eq(ep.path_len, TK_UNIX_PATHLEN);
	longpath[5 + TK_UNIX_PATHLEN] = 'a';
	longpath[6 + TK_UNIX_PATHLEN] = '\0';
	parse_err(longpath, ALL, "unix: path longer than 107 bytes");

	parse_err("unix:", ALL, "unix: missing path");
	parse_err("unix:@", ALL, "empty abstract name");
	parse_err("unix:/x", 0, "unix: sockets are not taken here");
	parse_err("/tmp/x.sock", ALL, "(unix:PATH for a UNIX socket)");
}

Test(endpoint, stdio_and_programs)
{
	struct tk_endpoint ep = parse_ok("-", ALL);
	const char *text = "exec:cat -u";

	cr_assert_eq(ep.kind, TK_EP_STDIO);
	ep = parse_ok(text, ALL);
	cr_assert_eq(ep.kind, TK_EP_EXEC);
	cr_assert_eq(ep.command, text + 5, "command borrowed from the text");
	ep = parse_ok("sh:echo $PWD | wc", ALL);
	cr_assert_eq(ep.kind, TK_EP_SH);
	cr_assert_str_eq(ep.command, "echo $PWD | wc");
	round_trip("sh:x y", ALL, "sh:x y");

	parse_err("-", 0, "not taken here");
	parse_err("exec:cat", TK_EP_ALLOW_UNIX, "exec: programs are not run");
	parse_err("sh:", ALL, "sh: missing command");
	parse_err("exec: \t", ALL, "exec: missing command");
}

Test(endpoint, unknown_scheme_and_garbage)
{
	parse_err("sctp://h:53", ALL, "unknown scheme 'sctp://'");
	parse_err("", ALL, "empty endpoint");
	parse_err("h\x1b[2J:80", 0, "host 'h?[2J'");
	cr_assert_eq(tk_endpoint_parse(NULL, 0, NULL, NULL, 0),
		     TK_EBADENDPOINT);
}

/*
 * Every prefix of a valid endpoint either parses or fails cleanly, and the
 * reason always fits: a parser that read past the NUL or left why unset
 * would show here (and under ASan).
 */
Test(endpoint, every_prefix)
{
	static const char *const texts[] = {
		"tls://[2001:db8::1]:443", "unix:@abstract",	 "exec:a 'b c'",
		"tcp://host.example:http", "udp://[::1]:domain", ":0",
	};

	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		char buf[64];
		size_t n = strlen(texts[t]);

		for (size_t i = 0; i <= n; i++) {
			struct tk_endpoint ep;
			char why[16]; /* small on purpose: truncated, not past
				       */
			int err;

			memcpy(buf, texts[t], i);
			buf[i] = '\0';
			err = tk_endpoint_parse(
				buf, ALL | TK_EP_ALLOW_UDP | TK_EP_PASSIVE, &ep,
				why, sizeof(why));
			cr_assert(err == 0 || err == TK_EBADENDPOINT,
				  "\"%s\": %d", buf, err);
			cr_assert(err == 0 || why[0] != '\0',
				  "\"%s\": no reason", buf);
		}
	}
}

static int
split(const char *cmd, char **argv, size_t max, char *buf, size_t buflen,
      char *why)
{
	return tk_exec_split(cmd, buf, buflen, argv, max, why, 128);
}

Test(exec_split, words_and_quotes)
{
	char buf[256], why[128], *argv[8];
	int n = split("  cat  -u\t'a b'  \"c \\\"d\\\" \\n\" e\\ f ''", argv, 8,
		      buf, sizeof(buf), why);

	cr_assert_eq(n, 6, "%d words (%s)", n, why);
	cr_assert_str_eq(argv[0], "cat");
	cr_assert_str_eq(argv[1], "-u");
	cr_assert_str_eq(argv[2], "a b");
	cr_assert_str_eq(argv[3], "c \"d\" \\n");
	cr_assert_str_eq(argv[4], "e f");
	cr_assert_str_eq(argv[5], "");
	cr_assert_null(argv[6]);
	n = split("'$HOME'\"x\"y", argv, 8, buf, sizeof(buf), why);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(argv[0], "$HOMExy");
}

Test(exec_split, errors)
{
	char buf[16], why[128], *argv[3];

	cr_assert_eq(split("", argv, 3, buf, sizeof(buf), why),
		     TK_EBADENDPOINT);
	cr_assert(strstr(why, "missing command") != NULL);
	cr_assert_eq(split("a 'b", argv, 3, buf, sizeof(buf), why),
		     TK_EBADENDPOINT);
	cr_assert(strstr(why, "unclosed single quote") != NULL, "%s", why);
	cr_assert_eq(split("a \"b", argv, 3, buf, sizeof(buf), why),
		     TK_EBADENDPOINT);
	cr_assert(strstr(why, "unclosed double quote") != NULL, "%s", why);
	cr_assert_eq(split("a \\", argv, 3, buf, sizeof(buf), why),
		     TK_EBADENDPOINT);
	/* Two words and the NULL fill argv[3]; a third word does not fit. */
	cr_assert_eq(split("a b", argv, 3, buf, sizeof(buf), why), 2);
	cr_assert_eq(split("a b c", argv, 3, buf, sizeof(buf), why), -E2BIG);
	/* buf: 16 bytes hold "0123456789abcde" and its NUL, no more. */
	cr_assert_eq(split("0123456789abcde", argv, 3, buf, sizeof(buf), why),
		     1);
	cr_assert_eq(split("0123456789abcdef", argv, 3, buf, sizeof(buf), why),
		     -E2BIG);
	cr_assert_eq(split("0123456789abcd e", argv, 3, buf, sizeof(buf), why),
		     -E2BIG);
}
