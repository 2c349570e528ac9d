/* resolve.c: tutorial 1's name lookup: every address of each host. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "tcpkit.h"

#define NAME "resolve"

int
main(int argc, char **argv)
{
	char ip[TK_ADDRSTRLEN];
	int rc = EXIT_SUCCESS;

	if (argc < 2) {
		fprintf(stderr, "usage: " NAME " HOST...\n");
		return EXIT_FAILURE;
	}
	for (int i = 1; i < argc; i++) {
		struct tk_addrlist *list;
		/*
		 * AF_UNSPEC: IPv4 and IPv6 both, in the order the system
		 * prefers (/etc/gai.conf).  The tutorial's gethostbyname()
		 * knows IPv4 only, and gives one address of many.
		 */
		int err = tk_resolve(argv[i], NULL, AF_UNSPEC, 0, &list);

		if (err < 0) {
			/* Keep going: one unknown name says nothing of the
			 * rest. */
			fflush(stdout);
			fprintf(stderr, NAME ": %s: %s\n", argv[i],
				tk_strerror(err));
			rc = EXIT_FAILURE;
			continue;
		}
		for (size_t j = 0; j < list->count; j++) {
			const struct tk_addr *a = &list->addrs[j];

			printf("%s %s %s\n", argv[i],
			       tk_addr_family(a) == AF_INET6 ? "IPv6" : "IPv4",
			       tk_addr_format_ip(a, ip, sizeof(ip)));
		}
		tk_addrlist_free(list);
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, NAME ": write stdout: %s\n",
			tk_strerror(errno ? -errno : -EIO));
		rc = EXIT_FAILURE;
	}
	return rc;
}
