/* interfaces.c: tutorial 2's `ip a` step: interfaces and addresses. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

#define NAME "interfaces"

/* The flags as `ip a` shows them between < and >, the ones we know. */
static char *
flags(const struct tk_iface *ifc, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", ifc->loopback ? "LOOPBACK," : "",
		 ifc->up ? "UP" : "DOWN", ifc->running ? ",RUNNING" : "");
	return buf;
}

int
main(int argc, char **argv)
{
	struct tk_iface *list;
	size_t count;
	char fl[64], ip[TK_ADDRSTRLEN];
	int err;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: " NAME "\n");
		return EXIT_FAILURE;
	}
	if ((err = tk_iface_list(&list, &count)) < 0) {
		fprintf(stderr, NAME ": list interfaces: %s\n",
			tk_strerror(err));
		return EXIT_FAILURE;
	}
	for (size_t i = 0; i < count; i++) {
		const struct tk_iface *ifc = &list[i];

		printf("%u: %s: <%s> mtu %u\n", ifc->index, ifc->name,
		       flags(ifc, fl, sizeof(fl)), ifc->mtu);
		if (ifc->mac[0] != '\0')
			printf("    link/ether %s\n", ifc->mac);
		/*
		 * A server binds one of these addresses to be reachable on
		 * that interface only; 127.0.0.1 is this machine alone.
		 */
		for (size_t j = 0; j < ifc->naddrs; j++) {
			const struct tk_addr *a = &ifc->addrs[j].addr;

			tk_addr_format_ip(a, ip, sizeof(ip));
			/* fe80::1%eth0: the zone is the interface above. */
			ip[strcspn(ip, "%")] = '\0';
			printf("    %s %s/%u\n",
			       tk_addr_family(a) == AF_INET6 ? "inet6" : "inet",
			       ip, ifc->addrs[j].prefix);
		}
	}
	tk_iface_list_free(list, count);
	if (fflush(stdout) != 0) {
		fprintf(stderr, NAME ": write stdout: %s\n",
			tk_strerror(errno ? -errno : -EIO));
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}
