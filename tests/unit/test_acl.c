/* test_acl.c: access-list rules (parsing, matching), files and the verdict. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tcpkit.h"

TestSuite(rule, .timeout = 30);
TestSuite(acl, .timeout = 30);
TestSuite(aclfile, .timeout = 30);

static struct tk_addr
ip(const char *text)
{
	struct tk_addr a;

	cr_assert_eq(tk_addr_from_ip(text, 1234, &a), 0, "ip %s", text);
	return a;
}

/* An IPv4-mapped IPv6 address, as an IPv6 listener reports IPv4 peers. */
static struct tk_addr
mapped(const char *v4)
{
	struct tk_addr a;

	memset(&a, 0, sizeof(a));
	a.u.in6.sin6_family = AF_INET6;
	a.u.in6.sin6_addr.s6_addr[10] = 0xff;
	a.u.in6.sin6_addr.s6_addr[11] = 0xff;
	cr_assert_eq(inet_pton(AF_INET, v4, &a.u.in6.sin6_addr.s6_addr[12]), 1);
	a.len = sizeof(a.u.in6);
	return a;
}

static void
rule_ok(const char *text, int family, unsigned prefix, const char *net)
{
	struct tk_acl_rule r;
	char why[TK_ACL_ERRLEN] = "", buf[64];
	int err = tk_acl_rule_parse(text, &r, why, sizeof(why));

	cr_assert_eq(err, 0, "parse(\"%s\") = %s: %s", text, tk_err_name(err),
		     why);
	cr_assert_eq(r.family, family, "parse(\"%s\") family", text);
	cr_assert_eq(r.prefix, prefix, "parse(\"%s\") prefix %u", text,
		     r.prefix);
	inet_ntop(family, r.addr, buf, sizeof(buf));
	cr_assert_str_eq(buf, net, "parse(\"%s\") network %s", text, buf);
}

static void
rule_bad(const char *text, const char *reason)
{
	struct tk_acl_rule r;
	char why[TK_ACL_ERRLEN] = "";
	int err = tk_acl_rule_parse(text, &r, why, sizeof(why));

	cr_assert_eq(err, TK_EBADADDR, "parse(\"%s\") = %s", text,
		     tk_err_name(err));
	cr_assert(strstr(why, reason) != NULL, "parse(\"%s\"): '%s' lacks '%s'",
		  text, why, reason);
}

Test(rule, forms)
{
	rule_ok("10.0.0.0/8", AF_INET, 8, "10.0.0.0");
	rule_ok("127.0.0.2", AF_INET, 32, "127.0.0.2");
	rule_ok("0.0.0.0/0", AF_INET, 0, "0.0.0.0");
	rule_ok("::1", AF_INET6, 128, "::1");
	rule_ok("::1/128", AF_INET6, 128, "::1");
	rule_ok("2001:db8::/32", AF_INET6, 32, "2001:db8::");
	rule_ok("::/0", AF_INET6, 0, "::");
	/* Host bits are cleared, as ncat does. */
	rule_ok("10.1.2.3/8", AF_INET, 8, "10.0.0.0");
	rule_ok("192.168.1.255/23", AF_INET, 23, "192.168.0.0");
	rule_ok("2001:db8:ffff::1/33", AF_INET6, 33, "2001:db8:8000::");
	/* An IPv4 network written as IPv4-mapped IPv6 is stored as IPv4. */
	rule_ok("::ffff:10.0.0.0/104", AF_INET, 8, "10.0.0.0");
	rule_ok("::ffff:127.0.0.3", AF_INET, 32, "127.0.0.3");
}

Test(rule, errors_name_the_part)
{
	rule_bad("", "no address");
	rule_bad("/8", "no address");
	rule_bad("10.0.0.0/", "no prefix");
	rule_bad("10.0.0.0/33", "prefix longer than 32");
	rule_bad("::/129", "prefix longer than 128");
	rule_bad("10.0.0.0/8x", "prefix is not a number");
	rule_bad("10.0.0.0/-1", "prefix is not a number");
	rule_bad("10.0.0.0/ 8", "prefix is not a number");
	rule_bad("10.0.0.0/0008", "prefix is not a number");
	rule_bad("10.0.0", "not an IP address");
	rule_bad("localhost", "not an IP address");
	rule_bad(" 10.0.0.1", "not an IP address");
	rule_bad("fe80::1%lo", "scope");
	rule_bad("10.0.0.0/8/8", "prefix is not a number");
	rule_bad("[::1]", "not an IP address");
}

/* Every prefix of valid rules: parsed or refused, never anything else. */
Test(rule, every_split_point)
{
	static const char *const texts[] = {
		"192.168.100.200/24",
		"2001:db8:1234:5678::abcd/64",
		"::ffff:127.0.0.1/120",
	};

	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		size_t n = strlen(texts[t]);

		for (size_t i = 0; i <= n; i++) {
			struct tk_acl_rule r;
			char *cut = strndup(texts[t], i), why[TK_ACL_ERRLEN];
			int err = tk_acl_rule_parse(cut, &r, why, sizeof(why));

			cr_assert(err == 0 || err == TK_EBADADDR,
				  "parse(\"%s\") = %d", cut, err);
			if (err == 0)
				cr_assert(r.prefix <=
					  (r.family == AF_INET ? 32u : 128u));
			free(cut);
		}
	}
}

Test(rule, match)
{
	struct tk_acl_rule r;
	struct tk_addr a2 = ip("127.0.0.2"), a3 = ip("127.0.0.3");

	cr_assert_eq(tk_acl_rule_parse("127.0.0.2", &r, NULL, 0), 0);
	cr_assert(tk_acl_rule_match(&r, &a2));
	cr_assert_not(tk_acl_rule_match(&r, &a3));
	cr_assert_eq(tk_acl_rule_parse("127.0.0.0/8", &r, NULL, 0), 0);
	cr_assert(tk_acl_rule_match(&r, &a3));
	a3 = mapped("127.0.0.3");
	cr_assert(tk_acl_rule_match(&r, &a3), "a mapped peer is IPv4");
	a3 = ip("::1");
	cr_assert_not(tk_acl_rule_match(&r, &a3), "families do not mix");
	cr_assert_eq(tk_acl_rule_parse("::/0", &r, NULL, 0), 0);
	cr_assert(tk_acl_rule_match(&r, &a3));
	a2 = mapped("10.1.1.1");
	cr_assert_not(tk_acl_rule_match(&r, &a2),
		      "::/0 is IPv6: a mapped IPv4 peer is not in it");
	cr_assert_eq(tk_acl_rule_parse("10.0.0.0/7", &r, NULL, 0), 0);
	a2 = ip("11.255.255.255");
	cr_assert(tk_acl_rule_match(&r, &a2));
	a2 = ip("12.0.0.0");
	cr_assert_not(tk_acl_rule_match(&r, &a2));
}

Test(acl, verdicts)
{
	struct tk_acl *acl;
	struct tk_addr a1 = ip("127.0.0.1"), a2 = ip("127.0.0.2"),
		       a3 = ip("127.0.0.3"), v6 = ip("::1");
	struct tk_addr unix_peer;

	memset(&unix_peer, 0, sizeof(unix_peer));
	unix_peer.u.sa.sa_family = AF_UNIX;
	cr_assert_eq(tk_acl_check(NULL, &a1), 0, "no list: everyone");
	cr_assert_eq(tk_acl_new(&acl), 0);
	cr_assert_eq(tk_acl_check(acl, &a1), 0, "empty list: everyone");
	/* Deny only: everyone else passes. */
	cr_assert_eq(tk_acl_add(acl, TK_ACL_DENY, "127.0.0.3", NULL, 0), 0);
	cr_assert_eq(tk_acl_check(acl, &a3), TK_EDENIED);
	cr_assert_eq(tk_acl_check(acl, &a2), 0);
	cr_assert_eq(tk_acl_check(acl, &v6), 0);
	/* An allow rule turns the allow list on: the rest is refused... */
	cr_assert_eq(tk_acl_add(acl, TK_ACL_ALLOW, "127.0.0.0/8", NULL, 0), 0);
	cr_assert_eq(tk_acl_check(acl, &a2), 0);
	cr_assert_eq(tk_acl_check(acl, &v6), TK_EDENIED);
	/* ...and a deny wins over an allow. */
	cr_assert_eq(tk_acl_check(acl, &a3), TK_EDENIED);
	a3 = mapped("127.0.0.3");
	cr_assert_eq(tk_acl_check(acl, &a3), TK_EDENIED);
	a2 = mapped("127.0.0.2");
	cr_assert_eq(tk_acl_check(acl, &a2), 0);
	cr_assert_eq(tk_acl_check(acl, &unix_peer), 0, "UNIX: not subject");
	cr_assert_eq(tk_acl_count(acl, TK_ACL_ALLOW), 1);
	cr_assert_eq(tk_acl_count(acl, TK_ACL_DENY), 1);
	cr_assert_eq(tk_acl_add(acl, TK_ACL_ALLOW, "::1/128", NULL, 0), 0);
	cr_assert_eq(tk_acl_check(acl, &v6), 0);
	cr_assert_eq(tk_err_class(TK_EDENIED), TK_CLASS_REFUSED);
	cr_assert_str_eq(tk_strerror(TK_EDENIED), "address not allowed");
	tk_acl_free(acl);
}

Test(acl, bounded)
{
	struct tk_acl *acl;
	char why[TK_ACL_ERRLEN], rule[32];

	cr_assert_eq(tk_acl_new(&acl), 0);
	for (int i = 0; i < TK_ACL_MAX_RULES; i++) {
		snprintf(rule, sizeof(rule), "10.%d.%d.0/24", i / 256, i % 256);
		cr_assert_eq(tk_acl_add(acl, i % 2 ? TK_ACL_ALLOW : TK_ACL_DENY,
					rule, why, sizeof(why)),
			     0);
	}
	cr_assert_eq(tk_acl_add(acl, TK_ACL_DENY, "10.0.0.1", why, sizeof(why)),
		     -ENOSPC);
	cr_assert(strstr(why, "more than 65536 rules") != NULL, "%s", why);
	tk_acl_free(acl);
}

static char *
write_file(const char *text)
{
	char *path = strdup("/tmp/tk_acl_XXXXXX");
	int fd = mkstemp(path);

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

Test(aclfile, comments_blanks_and_rules)
{
	char *path = write_file("# who may connect\n"
				"\n"
				"   127.0.0.2   # the test client\n"
				"\t::1/128\r\n"
				"10.0.0.0/8");
	struct tk_acl *acl;
	struct tk_addr a2 = ip("127.0.0.2"), a3 = ip("127.0.0.3"),
		       v6 = ip("::1"), ten = ip("10.9.8.7");
	size_t line = 99;

	cr_assert_eq(tk_acl_new(&acl), 0);
	cr_assert_eq(tk_acl_add_file(acl, TK_ACL_ALLOW, path, &line, NULL, 0),
		     0);
	cr_assert_eq(line, 0);
	cr_assert_eq(tk_acl_count(acl, TK_ACL_ALLOW), 3);
	cr_assert_eq(tk_acl_check(acl, &a2), 0);
	cr_assert_eq(tk_acl_check(acl, &v6), 0);
	cr_assert_eq(tk_acl_check(acl, &ten), 0);
	cr_assert_eq(tk_acl_check(acl, &a3), TK_EDENIED);
	tk_acl_free(acl);
	unlink(path);
	free(path);
}

Test(aclfile, bad_line_is_named)
{
	char *path = write_file("127.0.0.2\n# fine\n\n10.0.0.0/33\n::1\n");
	struct tk_acl *acl;
	char why[TK_ACL_ERRLEN];
	size_t line = 0;

	cr_assert_eq(tk_acl_new(&acl), 0);
	cr_assert_eq(tk_acl_add_file(acl, TK_ACL_DENY, path, &line, why,
				     sizeof(why)),
		     TK_EBADADDR);
	cr_assert_eq(line, 4);
	cr_assert_str_eq(why, "'10.0.0.0/33': prefix longer than 32");
	tk_acl_free(acl);
	unlink(path);
	free(path);
}

Test(aclfile, long_line_missing_file_empty_allow)
{
	char big[400];
	char *path;
	struct tk_acl *acl;
	struct tk_addr a1 = ip("127.0.0.1");
	char why[TK_ACL_ERRLEN];
	size_t line = 0;

	memset(big, ' ', sizeof(big) - 2);
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\0';
	path = write_file(big);
	cr_assert_eq(tk_acl_new(&acl), 0);
	cr_assert_eq(tk_acl_add_file(acl, TK_ACL_DENY, path, &line, why,
				     sizeof(why)),
		     TK_ETOOBIG);
	cr_assert_eq(line, 1);
	unlink(path);
	free(path);
	cr_assert_eq(tk_acl_add_file(acl, TK_ACL_DENY, "/nonexistent/acl",
				     &line, why, sizeof(why)),
		     -ENOENT);
	cr_assert_eq(line, 0);
	cr_assert_eq(tk_acl_check(acl, &a1), 0);
	/* An empty allow file refuses everyone, not no one. */
	path = write_file("# nobody yet\n");
	cr_assert_eq(tk_acl_add_file(acl, TK_ACL_ALLOW, path, &line, why,
				     sizeof(why)),
		     0);
	cr_assert_eq(tk_acl_check(acl, &a1), TK_EDENIED);
	tk_acl_free(acl);
	unlink(path);
	free(path);
}

/* xorshift32: the same "random" rules and peers on every run. */
static uint32_t
next(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/*
 * A big file of mixed prefixes: every verdict of the sorted lookup is the
 * one a plain scan of the same rules gives.
 */
Test(aclfile, big_file_agrees_with_a_scan)
{
	enum { NRULES = 5000, NPEERS = 20000 };
	static struct tk_acl_rule rules[NRULES];
	char *path = strdup("/tmp/tk_acl_big_XXXXXX");
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	struct tk_acl *acl;
	uint32_t x = 12345;
	size_t line;

	cr_assert(f != NULL);
	for (int i = 0; i < NRULES; i++) {
		uint32_t a = next(&x), p = next(&x);
		char text[64];

		/* Few networks, many prefixes: peers must hit some. */
		a = (a & 0x00ffffff) | 0x0a000000;
		if (i % 4 == 3)
			snprintf(text, sizeof(text), "2001:db8:%x::%x/%u",
				 a & 0xffff, a >> 16, 32 + p % 97);
		else
			snprintf(text, sizeof(text), "%u.%u.%u.%u/%u", a >> 24,
				 (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff,
				 8 + p % 25);
		cr_assert_eq(tk_acl_rule_parse(text, &rules[i], NULL, 0), 0,
			     "%s", text);
		fprintf(f, "%s # rule %d\n", text, i);
	}
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(tk_acl_new(&acl), 0);
	cr_assert_eq(tk_acl_add_file(acl, TK_ACL_DENY, path, &line, NULL, 0),
		     0);
	cr_assert_eq(tk_acl_count(acl, TK_ACL_DENY), NRULES);
	for (int i = 0; i < NPEERS; i++) {
		uint32_t a = (next(&x) & 0x00ffffff) | 0x0a000000;
		char text[64];
		struct tk_addr peer;
		bool hit = false;

		if (i % 4 == 3)
			snprintf(text, sizeof(text), "2001:db8:%x::%x",
				 a & 0xffff, a >> 16);
		else
			snprintf(text, sizeof(text), "%u.%u.%u.%u", a >> 24,
				 (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
		cr_assert_eq(tk_addr_from_ip(text, 1, &peer), 0);
		for (int r = 0; r < NRULES && !hit; r++)
			hit = tk_acl_rule_match(&rules[r], &peer);
		cr_assert_eq(tk_acl_check(acl, &peer), hit ? TK_EDENIED : 0,
			     "peer %s: the scan says %s", text,
			     hit ? "denied" : "allowed");
	}
	tk_acl_free(acl);
	unlink(path);
	free(path);
}
