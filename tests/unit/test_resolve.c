/* test_resolve.c: tk_resolve() against the system resolver and a scripted one.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

/*
 * A scripted resolver.  This executable defines getaddrinfo() and
 * freeaddrinfo(), so libtcpkit's calls land here first.  Names under
 * ".tk-test" get scripted answers (duplicates, odd families, every EAI_*
 * error); all others go to the real functions.  The hints and service of
 * the last call are kept for the tests to inspect.
 */
static struct addrinfo last_hints;
static char last_service[64];
static int calls;
static const char fake_mark[] = "tk-test fake";

typedef int (*getaddrinfo_fn)(const char *, const char *,
			      const struct addrinfo *, struct addrinfo **);
typedef void (*freeaddrinfo_fn)(struct addrinfo *);

/* Append one fake entry for text (an IP literal, or "unix") to *tail. */
static struct addrinfo **
fake_add(struct addrinfo **tail, const char *text, uint16_t port)
{
	struct {
		struct addrinfo ai;
		struct sockaddr_storage ss;
	} *e = calloc(1, sizeof(*e));
	struct sockaddr_in *in4 = (struct sockaddr_in *)&e->ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&e->ss;

	cr_assert_not_null(e);
	e->ai.ai_socktype = SOCK_STREAM;
	e->ai.ai_protocol = IPPROTO_TCP;
	e->ai.ai_addr = (struct sockaddr *)&e->ss;
	e->ai.ai_canonname = (char *)fake_mark;
	if (strcmp(text, "unix") == 0) {
		e->ai.ai_family = AF_UNIX;
		e->ss.ss_family = AF_UNIX;
		e->ai.ai_addrlen = sizeof(sa_family_t) + 4;
	} else if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
		e->ai.ai_family = in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		e->ai.ai_addrlen = sizeof(*in4);
	} else {
		cr_assert_eq(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
		e->ai.ai_family = in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		e->ai.ai_addrlen = sizeof(*in6);
	}
	*tail = &e->ai;
	return &e->ai.ai_next;
}

int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
	    struct addrinfo **res)
{
	static const struct {
		const char *name;
		int rc;
		int sys_errno;
		const char *addrs[6];
	} script[] = {
		{ "dup.tk-test",
		  0,
		  0,
		  { "::1", "127.0.0.1", "::1", "127.0.0.1", "127.0.0.2" } },
		{ "order.tk-test", 0, 0, { "127.0.0.3", "::2", "127.0.0.1" } },
		{ "unix.tk-test", 0, 0, { "unix", "127.0.0.9", "unix" } },
		{ "onlyunix.tk-test", 0, 0, { "unix" } },
		{ "again.tk-test", EAI_AGAIN, 0, { NULL } },
		{ "fail.tk-test", EAI_FAIL, 0, { NULL } },
		{ "noname.tk-test", EAI_NONAME, 0, { NULL } },
		{ "nodata.tk-test", EAI_NODATA, 0, { NULL } },
		{ "addrfamily.tk-test", EAI_ADDRFAMILY, 0, { NULL } },
		{ "service.tk-test", EAI_SERVICE, 0, { NULL } },
		{ "memory.tk-test", EAI_MEMORY, 0, { NULL } },
		{ "system.tk-test", EAI_SYSTEM, EMFILE, { NULL } },
		{ "badflags.tk-test", EAI_BADFLAGS, 0, { NULL } },
		{ "socktype.tk-test", EAI_SOCKTYPE, 0, { NULL } },
	};
	size_t n = node != NULL ? strlen(node) : 0;

	calls++;
	last_hints = hints != NULL ? *hints : (struct addrinfo){ 0 };
	snprintf(last_service, sizeof(last_service), "%s",
		 service != NULL ? service : "(null)");
	if (n < 8 || strcmp(node + n - 8, ".tk-test") != 0)
		return ((getaddrinfo_fn)dlsym(RTLD_NEXT, "getaddrinfo"))(
			node, service, hints, res);

	for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++) {
		struct addrinfo *head = NULL, **tail = &head;

		if (strcmp(script[i].name, node) != 0)
			continue;
		if (script[i].rc != 0) {
			errno = script[i].sys_errno;
			return script[i].rc;
		}
		for (size_t j = 0; script[i].addrs[j] != NULL; j++)
			tail = fake_add(
				tail, script[i].addrs[j],
				(uint16_t)atoi(service ? service : "0"));
		*res = head;
		return 0;
	}
	return EAI_NONAME;
}

void
freeaddrinfo(struct addrinfo *res)
{
	if (res == NULL || res->ai_canonname != fake_mark) {
		((freeaddrinfo_fn)dlsym(RTLD_NEXT, "freeaddrinfo"))(res);
		return;
	}
	while (res != NULL) {
		struct addrinfo *next = res->ai_next;

		free(res);
		res = next;
	}
}

static void
assert_addr(const struct tk_addr *a, const char *ip, uint16_t port)
{
	char buf[TK_ADDRSTRLEN];

	cr_assert_str_eq(tk_addr_format_ip(a, buf, sizeof(buf)), ip);
	cr_assert_eq(tk_addr_port(a), port, "%s port %u", ip, tk_addr_port(a));
}

static void
assert_no_duplicates(const struct tk_addrlist *l)
{
	for (size_t i = 0; i < l->count; i++)
		for (size_t j = i + 1; j < l->count; j++)
			cr_assert_not(tk_addr_equal(&l->addrs[i], &l->addrs[j]),
				      "duplicate at %zu and %zu", i, j);
}

/* tk_resolve() expecting failure: *out must come back NULL. */
static void
resolve_err(const char *host, const char *port, int family, int flags, int want)
{
	struct tk_addrlist *l = (struct tk_addrlist *)&l;
	int err = tk_resolve(host, port, family, flags, &l);

	cr_assert_eq(err, want, "resolve(%s, %s) = %s (%s), want %s",
		     host ? host : "NULL", port ? port : "NULL",
		     tk_err_name(err), tk_strerror(err), tk_err_name(want));
	cr_assert_null(l);
}

TestSuite(resolve, .timeout = 30);

Test(resolve, localhost)
{
	struct tk_addrlist *l;
	bool v4 = false;

	cr_assert_eq(tk_resolve("localhost", NULL, AF_UNSPEC, 0, &l), 0);
	cr_assert_gt(l->count, 0);
	for (size_t i = 0; i < l->count; i++) {
		cr_assert(tk_addr_is_loopback(&l->addrs[i]));
		cr_assert_eq(tk_addr_port(&l->addrs[i]), 0);
		if (tk_addr_family(&l->addrs[i]) == AF_INET) {
			v4 = true;
			cr_assert_eq(l->addrs[i].len,
				     sizeof(struct sockaddr_in));
		} else {
			cr_assert_eq(l->addrs[i].len,
				     sizeof(struct sockaddr_in6));
		}
	}
	cr_assert(v4, "localhost has no IPv4 address");
	assert_no_duplicates(l);
	tk_addrlist_free(l);
}

Test(resolve, ports_and_services)
{
	struct tk_addrlist *l;

	cr_assert_eq(tk_resolve("127.0.0.1", "8080", AF_UNSPEC, 0, &l), 0);
	cr_assert_eq(l->count, 1);
	assert_addr(&l->addrs[0], "127.0.0.1", 8080);
	tk_addrlist_free(l);

	cr_assert_eq(tk_resolve("127.0.0.1", "65535", AF_INET, 0, &l), 0);
	assert_addr(&l->addrs[0], "127.0.0.1", 65535);
	tk_addrlist_free(l);

	/* /etc/services has http on every system this builds on. */
	cr_assert_eq(tk_resolve("127.0.0.1", "http", AF_UNSPEC, 0, &l), 0);
	assert_addr(&l->addrs[0], "127.0.0.1", 80);
	tk_addrlist_free(l);

	resolve_err("127.0.0.1", "no-such-service", AF_UNSPEC, 0, TK_EBADPORT);
	resolve_err("127.0.0.1", "65536", AF_UNSPEC, 0, TK_EBADPORT);
	resolve_err("127.0.0.1", "65616", AF_UNSPEC, 0, TK_EBADPORT);
	resolve_err("127.0.0.1", "+80", AF_UNSPEC, 0, TK_EBADPORT);
	resolve_err("127.0.0.1", "-1", AF_UNSPEC, 0, TK_EBADPORT);
	resolve_err("127.0.0.1", " 80", AF_UNSPEC, 0, TK_EBADPORT);
	resolve_err("127.0.0.1", "80 ", AF_UNSPEC, 0, TK_EBADPORT);
	resolve_err("127.0.0.1", "0x50", AF_UNSPEC, 0, TK_EBADPORT);
	resolve_err("127.0.0.1", "", AF_UNSPEC, 0, TK_EBADPORT);
	resolve_err("127.0.0.1", "ht tp", AF_UNSPEC, 0, TK_EBADPORT);
}

Test(resolve, numeric_literals)
{
	struct tk_addrlist *l;

	cr_assert_eq(tk_resolve("::1", "22", AF_UNSPEC, 0, &l), 0);
	cr_assert_eq(l->count, 1);
	cr_assert_eq(tk_addr_family(&l->addrs[0]), AF_INET6);
	assert_addr(&l->addrs[0], "::1", 22);
	tk_addrlist_free(l);

	cr_assert_eq(tk_resolve("fe80::1%lo", NULL, AF_INET6,
				TK_RESOLVE_NUMERIC, &l),
		     0);
	cr_assert_eq(l->addrs[0].u.in6.sin6_scope_id, if_nametoindex("lo"));
	tk_addrlist_free(l);

	cr_assert_eq(
		tk_resolve("127.0.0.1", NULL, AF_INET, TK_RESOLVE_NUMERIC, &l),
		0);
	assert_addr(&l->addrs[0], "127.0.0.1", 0);
	tk_addrlist_free(l);

	resolve_err("localhost", NULL, AF_UNSPEC, TK_RESOLVE_NUMERIC,
		    TK_ENOHOST);
}

Test(resolve, family_filter)
{
	struct tk_addrlist *l;
	int err;

	cr_assert_eq(tk_resolve("localhost", NULL, AF_INET, 0, &l), 0);
	for (size_t i = 0; i < l->count; i++)
		cr_assert_eq(tk_addr_family(&l->addrs[i]), AF_INET);
	tk_addrlist_free(l);

	/* Where /etc/hosts has "::1 localhost" there is an answer. */
	err = tk_resolve("localhost", NULL, AF_INET6, 0, &l);
	if (err == 0) {
		for (size_t i = 0; i < l->count; i++)
			cr_assert_eq(tk_addr_family(&l->addrs[i]), AF_INET6);
		tk_addrlist_free(l);
	} else {
		cr_assert_eq(err, TK_ENODATA, "%s", tk_err_name(err));
	}

	resolve_err("::1", NULL, AF_INET, 0, TK_ENODATA);
	resolve_err("127.0.0.1", NULL, AF_INET6, 0, TK_ENODATA);
	resolve_err("::1", NULL, AF_INET, TK_RESOLVE_NUMERIC, TK_ENODATA);
	resolve_err("localhost", NULL, AF_UNIX, 0, -EAFNOSUPPORT);
}

Test(resolve, unknown_host)
{
	resolve_err("no-such-host.invalid", NULL, AF_UNSPEC, 0, TK_ENOHOST);
	/* The second look without a family must not turn this into ENODATA. */
	resolve_err("no-such-host.invalid", NULL, AF_INET6, 0, TK_ENOHOST);
	resolve_err("", NULL, AF_UNSPEC, 0, TK_ENOHOST);
	resolve_err("no-such-host.invalid", "no-such-service", AF_UNSPEC, 0,
		    TK_EBADPORT);
}

Test(resolve, passive_wildcard)
{
	struct tk_addrlist *l;
	bool any4 = false, any6 = false;

	cr_assert_eq(
		tk_resolve(NULL, "9999", AF_UNSPEC, TK_RESOLVE_PASSIVE, &l), 0);
	for (size_t i = 0; i < l->count; i++) {
		cr_assert(tk_addr_is_any(&l->addrs[i]));
		cr_assert_eq(tk_addr_port(&l->addrs[i]), 9999);
		if (tk_addr_family(&l->addrs[i]) == AF_INET)
			any4 = true;
		else
			any6 = true;
	}
	cr_assert(any4 && any6, "want 0.0.0.0 and ::");
	cr_assert_eq(l->count, 2);
	tk_addrlist_free(l);

	cr_assert_eq(tk_resolve(NULL, NULL, AF_INET, TK_RESOLVE_PASSIVE, &l),
		     0);
	cr_assert_eq(l->count, 1);
	assert_addr(&l->addrs[0], "0.0.0.0", 0);
	tk_addrlist_free(l);
}

Test(resolve, hints_given_to_the_system)
{
	struct tk_addrlist *l;

	cr_assert_eq(tk_resolve("127.0.0.1", "080", AF_INET, 0, &l), 0);
	tk_addrlist_free(l);
	cr_assert_eq(last_hints.ai_family, AF_INET);
	cr_assert_eq(last_hints.ai_socktype, SOCK_STREAM);
	cr_assert_eq(last_hints.ai_protocol, IPPROTO_TCP);
	cr_assert_eq(last_hints.ai_flags & AI_ADDRCONFIG, 0);
	cr_assert_eq(last_hints.ai_flags & (AI_PASSIVE | AI_NUMERICHOST), 0);
	cr_assert_str_eq(last_service, "80", "numbers go over canonical");

	cr_assert_eq(tk_resolve(NULL, "http", AF_UNSPEC,
				TK_RESOLVE_PASSIVE | TK_RESOLVE_NUMERIC, &l),
		     0);
	tk_addrlist_free(l);
	cr_assert_eq(last_hints.ai_flags & AI_PASSIVE, AI_PASSIVE);
	cr_assert_eq(last_hints.ai_flags & AI_NUMERICHOST, AI_NUMERICHOST);
	cr_assert_eq(last_hints.ai_flags & AI_ADDRCONFIG, 0);
	cr_assert_str_eq(last_service, "http");

	/* A bad port is refused before the system is asked. */
	calls = 0;
	resolve_err("localhost", "+1", AF_UNSPEC, 0, TK_EBADPORT);
	cr_assert_eq(calls, 0);
}

Test(resolve, duplicates_removed_order_kept)
{
	struct tk_addrlist *l;

	cr_assert_eq(tk_resolve("dup.tk-test", "7", AF_UNSPEC, 0, &l), 0);
	cr_assert_eq(l->count, 3);
	assert_addr(&l->addrs[0], "::1", 7);
	assert_addr(&l->addrs[1], "127.0.0.1", 7);
	assert_addr(&l->addrs[2], "127.0.0.2", 7);
	tk_addrlist_free(l);

	cr_assert_eq(tk_resolve("order.tk-test", NULL, AF_UNSPEC, 0, &l), 0);
	cr_assert_eq(l->count, 3);
	assert_addr(&l->addrs[0], "127.0.0.3", 0);
	assert_addr(&l->addrs[1], "::2", 0);
	assert_addr(&l->addrs[2], "127.0.0.1", 0);
	tk_addrlist_free(l);
}

Test(resolve, other_families_skipped)
{
	struct tk_addrlist *l;

	cr_assert_eq(tk_resolve("unix.tk-test", NULL, AF_UNSPEC, 0, &l), 0);
	cr_assert_eq(l->count, 1);
	assert_addr(&l->addrs[0], "127.0.0.9", 0);
	tk_addrlist_free(l);

	resolve_err("onlyunix.tk-test", NULL, AF_UNSPEC, 0, TK_ENODATA);
}

Test(resolve, error_mapping)
{
	resolve_err("again.tk-test", NULL, AF_UNSPEC, 0, TK_EAGAINDNS);
	resolve_err("fail.tk-test", NULL, AF_UNSPEC, 0, TK_ENOHOST);
	resolve_err("noname.tk-test", NULL, AF_UNSPEC, 0, TK_ENOHOST);
	resolve_err("nodata.tk-test", NULL, AF_UNSPEC, 0, TK_ENODATA);
	resolve_err("addrfamily.tk-test", NULL, AF_INET, 0, TK_ENODATA);
	resolve_err("service.tk-test", "x", AF_UNSPEC, 0, TK_EBADPORT);
	resolve_err("memory.tk-test", NULL, AF_UNSPEC, 0, -ENOMEM);
	resolve_err("system.tk-test", NULL, AF_UNSPEC, 0, -EMFILE);
	resolve_err("badflags.tk-test", NULL, AF_UNSPEC, 0, TK_ERESOLVE);
	resolve_err("socktype.tk-test", NULL, AF_UNSPEC, 0, TK_ERESOLVE);
}

Test(resolve, free_null)
{
	tk_addrlist_free(NULL);
}
