/* test_url.c: tk_url_parse(), the URLs `tcpkit get` accepts and refuses,
 * and tk_url_resolve(), how a Location is followed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guard.h"
#include "tcpkit.h"

/* The URL is copied to end right before a PROT_NONE page: no overreads. */
static int
parse_len(const char *s, size_t len, struct tk_url *u)
{
	struct guard g;
	int rc;

	guard_init(&g, len);
	rc = tk_url_parse(guard_put(&g, s, len), len, u);
	guard_free(&g);
	return rc;
}

static int
parse(const char *s, struct tk_url *u)
{
	return parse_len(s, strlen(s), u);
}

static void
expect_span(const char *text, struct tk_span sp, const char *want,
	    const char *what)
{
	cr_assert_leq(sp.off + sp.len, strlen(text), "%s: span outside", what);
	cr_assert_eq(sp.len, strlen(want), "%s of %s: length %zu, want \"%s\"",
		     what, text, sp.len, want);
	cr_assert(memcmp(text + sp.off, want, sp.len) == 0, "%s of %s", what,
		  text);
}

static void
ok(const char *text, const char *scheme, const char *host, const char *port,
   const char *target, bool v6)
{
	struct tk_url u;

	cr_assert_eq(parse(text, &u), 0, "%s refused", text);
	expect_span(text, u.scheme, scheme, "scheme");
	expect_span(text, u.host, host, "host");
	expect_span(text, u.port, port, "port");
	expect_span(text, u.target, target, "target");
	cr_assert_eq(u.host_is_ipv6, v6, "%s: host_is_ipv6", text);
}

static void
bad(const char *text)
{
	struct tk_url u;

	cr_assert_eq(parse(text, &u), TK_EBADURL, "%s accepted", text);
}

Test(url, basic)
{
	ok("http://example.com", "http", "example.com", "", "", false);
	ok("http://example.com/", "http", "example.com", "", "/", false);
	ok("https://example.com:8443/a/b?x=1&y=2", "https", "example.com",
	   "8443", "/a/b?x=1&y=2", false);
	ok("HTTP://Example.COM/", "HTTP", "Example.COM", "", "/", false);
	ok("http://a_b-c.d./p", "http", "a_b-c.d.", "", "/p", false);
	ok("http://localhost:0", "http", "localhost", "0", "", false);
	ok("http://h:65535/", "http", "h", "65535", "/", false);
	ok("http://h:00080/", "http", "h", "00080", "/", false);
}

Test(url, scheme_chars)
{
	ok("svn+ssh://h/", "svn+ssh", "h", "", "/", false);
	ok("a1.-+://h", "a1.-+", "h", "", "", false);
	bad("1http://h/");
	bad("+http://h/");
	bad("://h/");
	bad("ht_tp://h/");
	bad("http:/h/");
	bad("http:h");
	bad("http:");
	bad("http");
	bad("");
	bad("h");
}

Test(url, query_and_fragment)
{
	/* A query without a path: the caller puts "/" in front. */
	ok("http://h?q=1", "http", "h", "", "?q=1", false);
	ok("http://h:81?q", "http", "h", "81", "?q", false);
	/* The fragment is dropped. */
	ok("http://h/p#frag", "http", "h", "", "/p", false);
	ok("http://h/p?q#frag", "http", "h", "", "/p?q", false);
	ok("http://h#frag", "http", "h", "", "", false);
	ok("http://h:80#f/g?h", "http", "h", "80", "", false);
	/* Characters the authority forbids are fine in the path. */
	ok("http://h/a@b:c[d]", "http", "h", "", "/a@b:c[d]", false);
	ok("http://h/%20x", "http", "h", "", "/%20x", false);
}

Test(url, ipv4)
{
	ok("http://127.0.0.1:8080/x", "http", "127.0.0.1", "8080", "/x", false);
	ok("http://0.0.0.0", "http", "0.0.0.0", "", "", false);
	ok("http://255.255.255.255/", "http", "255.255.255.255", "", "/",
	   false);
	/* Names that merely contain digits are names. */
	ok("http://1.2.3.4a/", "http", "1.2.3.4a", "", "/", false);
	ok("http://a.1/", "http", "a.1", "", "/", false);
}

Test(url, ipv4_malformed)
{
	bad("http://1.2.3.256/");
	bad("http://1.2.3/");
	bad("http://1.2.3.4.5/");
	bad("http://1..2.3/");
	bad("http://1.2.3.4./");
	bad("http://.1.2.3.4/");
	bad("http://010.0.0.1/");
	bad("http://1.2.3.0004/");
	bad("http://99999999999999999999.1.1.1/");
}

Test(url, ipv6)
{
	ok("http://[::1]/", "http", "::1", "", "/", true);
	ok("http://[::1]:8080/x?y", "http", "::1", "8080", "/x?y", true);
	ok("http://[2001:DB8::a]", "http", "2001:DB8::a", "", "", true);
	ok("http://[::ffff:1.2.3.4]:1", "http", "::ffff:1.2.3.4", "1", "",
	   true);
	ok("http://[::1]?q", "http", "::1", "", "?q", true);
}

Test(url, ipv6_malformed)
{
	bad("http://[]/");
	bad("http://[::1/");
	bad("http://[::1]x/");
	bad("http://[::1]:/");
	bad("http://[::g]/");
	bad("http://[1:2:3:4:5:6:7:8:9]/");
	bad("http://[:::1]/");
	bad("http://::1/");
	bad("http://[v1.x]/");
	bad("http://[::1]]/");
	bad("http://x[::1]/");
	/* Zone identifiers are refused for now (RFC 6874). */
	bad("http://[fe80::1%25eth0]/");
	bad("http://[fe80::1%eth0]/");
	/* Longer than any IPv6 text form. */
	bad("http://[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]/");
}

Test(url, port_malformed)
{
	bad("http://h:/");
	bad("http://h:");
	bad("http://h:?q");
	bad("http://h:65536/");
	bad("http://h:99999999999999999999999/");
	bad("http://h:-1/");
	bad("http://h:+80/");
	bad("http://h:8a/");
	bad("http://h:80:81/");
	bad("http://h:0x50/");
}

Test(url, host_malformed)
{
	bad("http:///");
	bad("http://");
	bad("http://:80/");
	bad("http://?q");
	bad("http://#f");
	bad("http://h!/");
	bad("http://h%41/");
	bad("http://h~/");
	bad("http://h]/");
}

Test(url, host_length)
{
	char text[300], want[256];

	memset(want, 'a', 255);
	want[255] = '\0';
	snprintf(text, sizeof(text), "http://%s/", want);
	ok(text, "http", want, "", "/", false);
	snprintf(text, sizeof(text), "http://%sa/", want);
	bad(text);
}

Test(url, userinfo_refused)
{
	bad("http://user@h/");
	bad("http://user:pass@h/");
	bad("http://@h/");
	bad("http://h@/");
	bad("http://[::1]@h/");
	bad("http://h:80@x/");
}

Test(url, spaces_and_controls_refused)
{
	bad(" http://h/");
	bad("http://h/ ");
	bad("http://h/a b");
	bad("http:// h/");
	bad("http://h/a\tb");
	bad("http://h/\r\nX: y");
	bad("http://h/\x7f");
	bad("http://h/#a b");
	/* Non-ASCII must be percent-encoded. */
	bad("http://h/caf\xc3\xa9");
	bad("http://h\xc3\xa9/");
}

Test(url, embedded_nul_refused)
{
	static const char text[] = "http://h/a\0b";
	struct tk_url u;

	cr_assert_eq(tk_url_parse(text, sizeof(text) - 1, &u), TK_EBADURL);
	cr_assert_eq(tk_url_parse(text, 10, &u), 0, "the prefix is fine");
}

Test(url, len_bounds_the_parse)
{
	static const char text[] = "http://host:80/path";
	struct tk_url u;

	cr_assert_eq(tk_url_parse(text, 11, &u), 0);
	cr_assert_eq(u.host.len, 4);
	cr_assert_eq(u.port.len, 0);
	cr_assert_eq(tk_url_parse(text, 12, &u), TK_EBADURL, "\"host:\"");
	cr_assert_eq(tk_url_parse(text, 13, &u), 0);
	cr_assert_eq(u.port.len, 1);
}

/* Spans of a successful parse lie inside the text, the host non-empty. */
static void
check_sane(const struct tk_url *u, size_t len)
{
	cr_assert_leq(u->scheme.off + u->scheme.len, len);
	cr_assert_leq(u->host.off + u->host.len, len);
	cr_assert_leq(u->port.off + u->port.len, len);
	cr_assert_leq(u->target.off + u->target.len, len);
	cr_assert_gt(u->scheme.len, 0);
	cr_assert_gt(u->host.len, 0);
}

/* Every prefix and every one-byte change must parse or fail cleanly. */
Test(url, prefixes_and_mutations)
{
	static const char text[] = "https://[2001:db8::1]:8443/a/b?c=d#e";
	char buf[sizeof(text)];
	struct tk_url u;
	size_t i, n = sizeof(text) - 1;
	int c, rc;

	for (i = 0; i <= n; i++) {
		rc = parse_len(text, i, &u);
		cr_assert(rc == 0 || rc == TK_EBADURL);
		if (rc == 0)
			check_sane(&u, i);
	}
	for (i = 0; i < n; i++) {
		for (c = 0; c < 256; c++) {
			memcpy(buf, text, n);
			buf[i] = (char)c;
			rc = parse_len(buf, n, &u);
			cr_assert(rc == 0 || rc == TK_EBADURL);
			if (rc == 0)
				check_sane(&u, n);
		}
	}
}

/* tk_url_resolve(): Location values against the URL they came with. */
static void
resolves(const char *base, const char *ref, const char *want)
{
	char out[256];
	ssize_t n = tk_url_resolve(base, ref, out, sizeof(out));

	cr_assert_eq(n, (ssize_t)strlen(want), "%s + \"%s\": %zd", base, ref,
		     n);
	cr_assert_str_eq(out, want, "%s + \"%s\"", base, ref);
}

/* RFC 3986 section 5.4.1, with our base and the fragment dropped. */
Test(url_resolve, rfc3986_normal)
{
	static const char *const cases[][2] = {
		{ "g:h", "g:h" },
		{ "g", "http://a/b/c/g" },
		{ "./g", "http://a/b/c/g" },
		{ "g/", "http://a/b/c/g/" },
		{ "/g", "http://a/g" },
		{ "//g", "http://g" },
		{ "?y", "http://a/b/c/d;p?y" },
		{ "g?y", "http://a/b/c/g?y" },
		{ "#s", "http://a/b/c/d;p?q" },
		{ "g#s", "http://a/b/c/g" },
		{ "g?y#s", "http://a/b/c/g?y" },
		{ ";x", "http://a/b/c/;x" },
		{ "g;x", "http://a/b/c/g;x" },
		{ "g;x?y#s", "http://a/b/c/g;x?y" },
		{ "", "http://a/b/c/d;p?q" },
		{ ".", "http://a/b/c/" },
		{ "./", "http://a/b/c/" },
		{ "..", "http://a/b/" },
		{ "../", "http://a/b/" },
		{ "../g", "http://a/b/g" },
		{ "../..", "http://a/" },
		{ "../../", "http://a/" },
		{ "../../g", "http://a/g" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		resolves("http://a/b/c/d;p?q", cases[i][0], cases[i][1]);
}

/* RFC 3986 section 5.4.2. */
Test(url_resolve, rfc3986_abnormal)
{
	static const char *const cases[][2] = {
		{ "../../../g", "http://a/g" },
		{ "../../../../g", "http://a/g" },
		{ "/./g", "http://a/g" },
		{ "/../g", "http://a/g" },
		{ "g.", "http://a/b/c/g." },
		{ ".g", "http://a/b/c/.g" },
		{ "g..", "http://a/b/c/g.." },
		{ "..g", "http://a/b/c/..g" },
		{ "./../g", "http://a/b/g" },
		{ "./g/.", "http://a/b/c/g/" },
		{ "g/./h", "http://a/b/c/g/h" },
		{ "g/../h", "http://a/b/c/h" },
		{ "g;x=1/./y", "http://a/b/c/g;x=1/y" },
		{ "g;x=1/../y", "http://a/b/c/y" },
		{ "g?y/./x", "http://a/b/c/g?y/./x" },
		{ "g?y/../x", "http://a/b/c/g?y/../x" },
		{ "g#s/./x", "http://a/b/c/g" },
		{ "http:g", "http:g" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		resolves("http://a/b/c/d;p?q", cases[i][0], cases[i][1]);
}

Test(url_resolve, bases_with_ports_v6_and_no_path)
{
	resolves("http://h", "g", "http://h/g");
	resolves("http://h?x", "?y", "http://h/?y");
	resolves("http://h?x", "", "http://h/?x");
	resolves("http://h:8080/a/b#frag", "c", "http://h:8080/a/c");
	resolves("https://[::1]:8443/a/", "../x?q=1",
		 "https://[::1]:8443/x?q=1");
	resolves("https://h/a", "//other:81/p", "https://other:81/p");
	resolves("https://h/a", "http://evil.example/", "http://evil.example/");
	resolves("http://h/a", "/b%20c", "http://h/b%20c");
}

Test(url_resolve, refused)
{
	char out[32];

	cr_assert_eq(tk_url_resolve("nonsense", "/x", out, sizeof(out)),
		     TK_EBADURL);
	cr_assert_eq(tk_url_resolve("http://h/", "/a b", out, sizeof(out)),
		     TK_EBADURL);
	cr_assert_eq(
		tk_url_resolve("http://h/", "/a\r\nX: y", out, sizeof(out)),
		TK_EBADURL);
	cr_assert_eq(tk_url_resolve("http://h/", "/\xc3\xa9", out, sizeof(out)),
		     TK_EBADURL);
	/* Exactly fits (with the NUL), then one byte short. */
	cr_assert_eq(tk_url_resolve("http://h/", "/0123456789abcdefghijkl", out,
				    sizeof(out)),
		     31);
	cr_assert_eq(tk_url_resolve("http://h/", "/0123456789abcdefghijklm",
				    out, sizeof(out)),
		     TK_ETOOBIG);
	cr_assert_eq(tk_url_resolve("http://h/",
				    "../../0123456789abcdefghijklm", out,
				    sizeof(out)),
		     TK_ETOOBIG);
	cr_assert_eq(tk_url_resolve("http://h/", "?0123456789abcdefghijklmn",
				    out, sizeof(out)),
		     TK_ETOOBIG);
}
