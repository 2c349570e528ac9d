/* resolve.c: host and service names to TCP addresses, through getaddrinfo. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

/* getaddrinfo's EAI_* codes as tcpkit codes; saved_errno for EAI_SYSTEM. */
static int
map_gai_error(int rc, int saved_errno)
{
	switch (rc) {
	case EAI_NONAME:
	case EAI_FAIL:
		return TK_ENOHOST;
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
	case EAI_ADDRFAMILY:
#endif
		return TK_ENODATA;
	case EAI_AGAIN:
		return TK_EAGAINDNS;
	case EAI_SERVICE:
		return TK_EBADPORT;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return saved_errno > 0 ? -saved_errno : TK_ERESOLVE;
	default:
		return TK_ERESOLVE;
	}
}

/*
 * Check port and choose the service text for getaddrinfo into svc.  glibc
 * reads a numeric service with strtoul and no range check, so "+80",
 * " 80" and "65616" would all pass (the last as port 80): numbers are
 * checked here and handed over canonical, with AI_NUMERICSERV.  Returns 0
 * or TK_EBADPORT.
 */
static int
service_text(const char *port, char svc[TK_PORTLEN], int *flags)
{
	size_t n;
	uint16_t v;

	if (port == NULL) {
		snprintf(svc, TK_PORTLEN, "0");
		*flags |= AI_NUMERICSERV;
		return 0;
	}
	if (port[0] >= '0' && port[0] <= '9') {
		if (tk_port_parse(port, &v) < 0)
			return TK_EBADPORT;
		snprintf(svc, TK_PORTLEN, "%u", v);
		*flags |= AI_NUMERICSERV;
		return 0;
	}
	/*
	 * A service name: a letter, then letters, digits, '-', '_' (the
	 * rule tk_hostport_split() applies); no sign, no space.
	 */
	n = strnlen(port, TK_PORTLEN);
	if (n == 0 || n >= TK_PORTLEN ||
	    !((port[0] >= 'a' && port[0] <= 'z') ||
	      (port[0] >= 'A' && port[0] <= 'Z')))
		return TK_EBADPORT;
	for (size_t i = 1; i < n; i++) {
		char c = port[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return TK_EBADPORT;
	}
	memcpy(svc, port, n + 1);
	return 0;
}

/*
 * Copy the TCP addresses of res into a new list, in order, without
 * duplicates.  0, TK_ENODATA (nothing usable) or -ENOMEM.
 */
static int
collect(const struct addrinfo *res, struct tk_addrlist **out)
{
	struct tk_addrlist *list;
	const struct addrinfo *ai;
	size_t n = 0;

	for (ai = res; ai != NULL; ai = ai->ai_next)
		n++;
	if ((list = calloc(1, sizeof(*list))) == NULL)
		return -ENOMEM;
	if ((list->addrs = calloc(n ? n : 1, sizeof(*list->addrs))) == NULL)
		goto out_free_list;

	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct tk_addr a;
		bool seen = false;

		if (ai->ai_addr == NULL ||
		    (ai->ai_family != AF_INET && ai->ai_family != AF_INET6))
			continue;
		if (ai->ai_addrlen > sizeof(a.u) ||
		    ai->ai_addrlen < (ai->ai_family == AF_INET
					      ? sizeof(struct sockaddr_in)
					      : sizeof(struct sockaddr_in6)))
			continue;
		memset(&a, 0, sizeof(a));
		memcpy(&a.u, ai->ai_addr, ai->ai_addrlen);
		a.len = ai->ai_addrlen;
		/* Lists are a handful long: quadratic is fine. */
		for (size_t i = 0; i < list->count && !seen; i++)
			seen = tk_addr_equal(&list->addrs[i], &a);
		if (!seen)
			list->addrs[list->count++] = a;
	}
	if (list->count == 0) {
		tk_addrlist_free(list);
		return TK_ENODATA;
	}
	*out = list;
	return 0;

out_free_list:
	free(list);
	return -ENOMEM;
}

int
tk_resolve(const char *host, const char *port, int family, int flags,
	   struct tk_addrlist **out)
{
	struct addrinfo hints, *res = NULL;
	char svc[TK_PORTLEN];
	int rc, err, saved_errno;

	*out = NULL;
	if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
		return -EAFNOSUPPORT;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/*
	 * No AI_ADDRCONFIG: it hides ::1 on a machine whose only IPv6
	 * address is loopback, and loopback is what tests and local
	 * servers use most.
	 */
	if (flags & TK_RESOLVE_PASSIVE)
		hints.ai_flags |= AI_PASSIVE;
	if (flags & TK_RESOLVE_NUMERIC)
		hints.ai_flags |= AI_NUMERICHOST;
	if ((err = service_text(port, svc, &hints.ai_flags)) < 0)
		return err;

	errno = 0;
	rc = getaddrinfo(host, svc, &hints, &res);
	saved_errno = errno;
	if (rc != 0) {
		err = map_gai_error(rc, saved_errno);
		/*
		 * glibc says "unknown name" when a name has addresses, only
		 * not of the family asked for ("localhost" with AF_INET6 and
		 * no ::1 in /etc/hosts).  One more look without the family
		 * tells the two apart, at the cost of a second query for
		 * names that really are unknown.
		 */
		if (err == TK_ENOHOST && family != AF_UNSPEC && host != NULL) {
			hints.ai_family = AF_UNSPEC;
			if (getaddrinfo(host, svc, &hints, &res) == 0) {
				freeaddrinfo(res);
				err = TK_ENODATA;
			}
		}
		return err;
	}
	err = collect(res, out);
	freeaddrinfo(res);
	return err;
}

void
tk_addrlist_free(struct tk_addrlist *list)
{
	if (list == NULL)
		return;
	free(list->addrs);
	free(list);
}
