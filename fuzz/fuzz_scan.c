/* fuzz_scan.c: libFuzzer harness for tcpkit scan's parsers:
 * tk_portset_parse(), tk_portset_next() and tk_scan_target_parse(). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "check failed: %s\n", what);
		abort();
	}
}

static void
reason(const char *why)
{
	check(why[0] != '\0', "a reason");
	check(strchr(why, '\n') == NULL, "one line");
}

/*
 * A second reading of the port list, the slow way: whether port is named
 * by an item ("N", "A-B", "-B", "A-", "-"), for a text the parser took.
 */
static int
listed(const char *text, unsigned port)
{
	const char *p = text;

	for (;;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char item[64];
		unsigned long lo = 1, hi = 65535;
		char *dash;

		check(n > 0 && n < sizeof(item) + 1000, "item size");
		if (n < sizeof(item)) {
			memcpy(item, p, n);
			item[n] = '\0';
			dash = strchr(item, '-');
			if (dash == NULL) {
				lo = hi = strtoul(item, NULL, 10);
			} else {
				*dash = '\0';
				if (item[0] != '\0')
					lo = strtoul(item, NULL, 10);
				if (dash[1] != '\0')
					hi = strtoul(dash + 1, NULL, 10);
			}
			if (port >= lo && port <= hi)
				return 1;
		}
		if (end == NULL)
			return 0;
		p = end + 1;
	}
}

static void
ports(const char *text)
{
	static struct tk_portset ps, copy;
	char why[128] = "";
	uint32_t n = 0, prev = 0;
	int err;

	memset(&ps, 0xa5, sizeof(ps));
	copy = ps;
	err = tk_portset_parse(text, &ps, why, sizeof(why));
	check(err == 0 || err == TK_EBADPORT || err == -ENOMEM,
	      "documented code");
	if (err != 0) {
		check(memcmp(&ps, &copy, sizeof(ps)) == 0,
		      "untouched on failure");
		if (err == TK_EBADPORT)
			reason(why);
		return;
	}
	check(!(ps.bits[0] & 1), "no port 0");
	for (uint16_t p = tk_portset_next(&ps, 0); p != 0;
	     p = tk_portset_next(&ps, p)) {
		check(p > prev, "ascending");
		check(tk_portset_has(&ps, p), "next is in the set");
		prev = p;
		n++;
	}
	check(n == ps.count, "count is what next walks");
	/* Items of a few characters: compare every port with the slow way. */
	if (strlen(text) < 16)
		for (unsigned p = 1; p <= 65535; p++)
			check(tk_portset_has(&ps, (uint16_t)p) ==
				      !!listed(text, p),
			      "the set is what the items say");
}

static void
target(const char *text, uint64_t max)
{
	struct tk_scan_target t;
	struct tk_addr a, last;
	char why[160] = "";
	int err;

	err = tk_scan_target_parse(text, max, &t, why, sizeof(why));
	check(err == 0 || err == TK_EBADADDR, "documented code");
	if (err != 0) {
		reason(why);
		return;
	}
	check(t.count >= 1, "an address at least");
	if (t.is_name) {
		check(t.count == 1 && strlen(t.name) < TK_HOSTLEN &&
			      t.name[0] != '\0',
		      "a name fits");
		check(strspn(t.name, "abcdefghijklmnopqrstuvwxyz"
				     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				     "0123456789-._") == strlen(t.name),
		      "name characters");
		return;
	}
	check(t.count <= max || t.prefix == 32 || t.prefix == 128,
	      "within the bound");
	check(t.prefix <= (tk_addr_family(&t.first) == AF_INET ? 32u : 128u),
	      "prefix in range");
	/* The block's first and last addresses differ only in host bits. */
	tk_scan_target_addr(&t, 0, &a);
	tk_scan_target_addr(&t, t.count - 1, &last);
	check(tk_addr_family(&a) == tk_addr_family(&last), "one family");
	if (tk_addr_family(&a) == AF_INET) {
		uint32_t f = ntohl(a.u.in4.sin_addr.s_addr);
		uint32_t l = ntohl(last.u.in4.sin_addr.s_addr);

		check(l - f == t.count - 1, "last - first = count - 1");
		check(t.prefix == 0 ||
			      (f >> (32 - t.prefix)) == (l >> (32 - t.prefix)),
		      "one prefix");
	} else {
		check(memcmp(a.u.in6.sin6_addr.s6_addr,
			     last.u.in6.sin6_addr.s6_addr, t.prefix / 8) == 0,
		      "one prefix");
	}
}

/* The first byte picks the parser and, for targets, the bound. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size == 0)
		return 0;
	/* Exact-size copies, so ASan sees overreads. */
	if ((text = malloc(size)) == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] & 1)
		ports(text);
	else
		target(text, UINT64_C(1) << ((data[0] >> 1) % 40));
	free(text);
	return 0;
}
