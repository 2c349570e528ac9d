/* test_iface.c: tk_iface_list() against what the kernel says in /sys. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

/* The first line of /sys/class/net/NAME/FILE, or "" if unreadable. */
static char *
sysfs(const char *name, const char *file, char *buf, size_t len)
{
	char path[256];
	FILE *f;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/sys/class/net/%s/%s", name, file);
	if ((f = fopen(path, "r")) == NULL)
		return buf;
	if (fgets(buf, (int)len, f) == NULL)
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
	return buf;
}

static const struct tk_iface *
find(const struct tk_iface *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].name, name) == 0)
			return &list[i];
	return NULL;
}

static const struct tk_iface_addr *
find_addr(const struct tk_iface *ifc, const char *ip)
{
	char buf[TK_ADDRSTRLEN];

	for (size_t i = 0; i < ifc->naddrs; i++)
		if (strcmp(tk_addr_format_ip(&ifc->addrs[i].addr, buf,
					     sizeof(buf)),
			   ip) == 0)
			return &ifc->addrs[i];
	return NULL;
}

TestSuite(iface, .timeout = 30);

Test(iface, loopback_present)
{
	const struct tk_iface_addr *ia;
	const struct tk_iface *lo;
	struct tk_iface *list;
	size_t n;

	cr_assert_eq(tk_iface_list(&list, &n), 0);
	cr_assert_gt(n, 0);
	lo = find(list, n, "lo");
	cr_assert_not_null(lo, "no interface lo");
	cr_assert(lo->loopback);
	cr_assert(lo->up);
	cr_assert_eq(lo->index, if_nametoindex("lo"));
	cr_assert_str_eq(lo->mac, "", "an all-zero MAC is left out");
	cr_assert_gt(lo->mtu, 0);

	ia = find_addr(lo, "127.0.0.1");
	cr_assert_not_null(ia, "lo has no 127.0.0.1");
	cr_assert_eq(ia->prefix, 8);
	cr_assert(tk_addr_is_loopback(&ia->addr));
	cr_assert_eq(tk_addr_port(&ia->addr), 0);

	/* ::1 exists unless IPv6 is disabled; when it does, it is a /128. */
	if ((ia = find_addr(lo, "::1")) != NULL)
		cr_assert_eq(ia->prefix, 128);
	tk_iface_list_free(list, n);
}

Test(iface, consistent_with_sysfs)
{
	struct tk_iface *list;
	size_t n;

	cr_assert_eq(tk_iface_list(&list, &n), 0);
	for (size_t i = 0; i < n; i++) {
		const struct tk_iface *ifc = &list[i];
		char buf[64];
		unsigned long flags;

		cr_assert_neq(ifc->name[0], '\0');
		cr_assert_eq(ifc->index, if_nametoindex(ifc->name), "%s",
			     ifc->name);
		if (i > 0)
			cr_assert_gt(ifc->index, list[i - 1].index,
				     "not in index order at %s", ifc->name);

		sysfs(ifc->name, "mtu", buf, sizeof(buf));
		cr_assert_eq(ifc->mtu, strtoul(buf, NULL, 10), "%s mtu",
			     ifc->name);
		sysfs(ifc->name, "flags", buf, sizeof(buf));
		flags = strtoul(buf, NULL, 16);
		cr_assert_eq(ifc->up, (flags & IFF_UP) != 0, "%s up",
			     ifc->name);
		cr_assert_eq(ifc->loopback, (flags & IFF_LOOPBACK) != 0,
			     "%s loopback", ifc->name);

		sysfs(ifc->name, "address", buf, sizeof(buf));
		if (strlen(buf) == 17 && strcmp(buf, "00:00:00:00:00:00") != 0)
			cr_assert_str_eq(ifc->mac, buf, "%s mac", ifc->name);
		else
			cr_assert_str_eq(ifc->mac, "", "%s mac", ifc->name);
	}
	tk_iface_list_free(list, n);
}

Test(iface, addresses_sane)
{
	struct tk_iface *list;
	size_t n;

	cr_assert_eq(tk_iface_list(&list, &n), 0);
	for (size_t i = 0; i < n; i++) {
		const struct tk_iface *ifc = &list[i];

		cr_assert(ifc->naddrs == 0 || ifc->addrs != NULL);
		for (size_t j = 0; j < ifc->naddrs; j++) {
			const struct tk_iface_addr *ia = &ifc->addrs[j];
			const struct tk_addr *a = &ia->addr;
			char ip[TK_ADDRSTRLEN];

			tk_addr_format_ip(a, ip, sizeof(ip));
			cr_assert_eq(tk_addr_port(a), 0, "%s", ip);
			if (tk_addr_family(a) == AF_INET) {
				cr_assert_eq(a->len,
					     sizeof(struct sockaddr_in));
				cr_assert_leq(ia->prefix, 32, "%s/%u", ip,
					      ia->prefix);
				continue;
			}
			cr_assert_eq(tk_addr_family(a), AF_INET6, "%s", ip);
			cr_assert_eq(a->len, sizeof(struct sockaddr_in6));
			cr_assert_leq(ia->prefix, 128, "%s/%u", ip, ia->prefix);
			/* A link-local address is usable as it comes. */
			if (IN6_IS_ADDR_LINKLOCAL(&a->u.in6.sin6_addr))
				cr_assert_eq(a->u.in6.sin6_scope_id, ifc->index,
					     "%s", ip);
		}
	}
	tk_iface_list_free(list, n);
}

/* Every IPv6 address the kernel lists is there, with its prefix. */
Test(iface, matches_proc_ipv6)
{
	struct tk_iface *list;
	char line[256];
	size_t n, seen = 0, lines = 0;
	FILE *f;

	cr_assert_eq(tk_iface_list(&list, &n), 0);
	/* "00000000000000000000000000000001 01 80 10 80       lo" */
	if ((f = fopen("/proc/net/if_inet6", "r")) == NULL) {
		tk_iface_list_free(list, n);
		cr_skip_test("no /proc/net/if_inet6 (IPv6 disabled)");
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char hex[33], name[IF_NAMESIZE + 1], ip[INET6_ADDRSTRLEN];
		unsigned idx, plen, scope, fl;
		struct in6_addr a;
		const struct tk_iface *ifc;
		const struct tk_iface_addr *ia;

		if (sscanf(line, "%32s %x %x %x %x %16s", hex, &idx, &plen,
			   &scope, &fl, name) != 6)
			continue;
		lines++;
		for (int k = 0; k < 16; k++) {
			unsigned b;

			sscanf(hex + 2 * k, "%2x", &b);
			a.s6_addr[k] = (unsigned char)b;
		}
		inet_ntop(AF_INET6, &a, ip, sizeof(ip));
		ifc = find(list, n, name);
		cr_assert_not_null(ifc, "%s missing", name);
		cr_assert_eq(ifc->index, idx);
		for (size_t j = 0; j < ifc->naddrs; j++) {
			char got[TK_ADDRSTRLEN];

			tk_addr_format_ip(&ifc->addrs[j].addr, got,
					  sizeof(got));
			got[strcspn(got, "%")] = '\0';
			if (strcmp(got, ip) == 0) {
				ia = &ifc->addrs[j];
				cr_assert_eq(ia->prefix, plen, "%s", ip);
				seen++;
				break;
			}
		}
	}
	fclose(f);
	cr_assert_eq(seen, lines, "%zu of %zu IPv6 addresses found", seen,
		     lines);
	tk_iface_list_free(list, n);
}

Test(iface, free_empty)
{
	tk_iface_list_free(NULL, 0);
}
