/* iface.c: the machine's network interfaces and addresses, via getifaddrs. */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "tcpkit.h"

/* The list under construction. */
struct ifaces {
	struct tk_iface *v;
	size_t n;
	size_t cap;
};

static void
ifaces_free(struct ifaces *l)
{
	tk_iface_list_free(l->v, l->n);
	l->v = NULL;
	l->n = l->cap = 0;
}

/*
 * The interface called name, created if new.  getifaddrs names IPv4
 * addresses by their label, and an alias label is "eth0:1": the device is
 * the part before the colon (device names cannot contain one).
 * NULL on -ENOMEM.
 */
static struct tk_iface *
ifaces_get(struct ifaces *l, const char *label, unsigned flags)
{
	char name[sizeof(l->v->name)];
	struct tk_iface *ifc;

	snprintf(name, sizeof(name), "%.*s", (int)strcspn(label, ":"), label);
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct tk_iface *v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	ifc = &l->v[l->n++];
	memset(ifc, 0, sizeof(*ifc));
	memcpy(ifc->name, name, sizeof(name));
	/* An AF_PACKET entry, when there is one, sets index and flags. */
	ifc->up = flags & IFF_UP;
	ifc->running = flags & IFF_RUNNING;
	ifc->loopback = flags & IFF_LOOPBACK;
	return ifc;
}

/* Leading one bits of a netmask: its prefix length. */
static unsigned
mask_prefix(const unsigned char *m, size_t n)
{
	unsigned bits = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned b = m[i];

		if (b == 0xff) {
			bits += 8;
			continue;
		}
		while (b & 0x80) {
			bits++;
			b = (b << 1) & 0xff;
		}
		break;
	}
	return bits;
}

static int
add_addr(struct tk_iface *ifc, const struct ifaddrs *ifa)
{
	const struct sockaddr *nm = ifa->ifa_netmask;
	struct tk_iface_addr *v, *ia;

	v = realloc(ifc->addrs, (ifc->naddrs + 1) * sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	ifc->addrs = v;
	ia = &v[ifc->naddrs++];
	memset(ia, 0, sizeof(*ia));
	if (ifa->ifa_addr->sa_family == AF_INET) {
		memcpy(&ia->addr.u.in4, ifa->ifa_addr, sizeof(ia->addr.u.in4));
		ia->addr.len = sizeof(ia->addr.u.in4);
		ia->prefix = 32;
		if (nm != NULL)
			ia->prefix = mask_prefix(
				(const unsigned char *)&(
					(const struct sockaddr_in *)nm)
					->sin_addr,
				4);
	} else {
		/* sin6_scope_id stays: link-local addresses need it. */
		memcpy(&ia->addr.u.in6, ifa->ifa_addr, sizeof(ia->addr.u.in6));
		ia->addr.len = sizeof(ia->addr.u.in6);
		ia->prefix = 128;
		if (nm != NULL)
			ia->prefix =
				mask_prefix(((const struct sockaddr_in6 *)nm)
						    ->sin6_addr.s6_addr,
					    16);
	}
	tk_addr_set_port(&ia->addr, 0);
	return 0;
}

/* Link-level facts from an AF_PACKET entry: index, flags and MAC. */
static void
set_link(struct tk_iface *ifc, const struct ifaddrs *ifa)
{
	const struct sockaddr_ll *ll =
		(const struct sockaddr_ll *)ifa->ifa_addr;
	static const unsigned char zero[6];

	if (ll->sll_ifindex > 0)
		ifc->index = (unsigned)ll->sll_ifindex;
	ifc->up = ifa->ifa_flags & IFF_UP;
	ifc->running = ifa->ifa_flags & IFF_RUNNING;
	ifc->loopback = ifa->ifa_flags & IFF_LOOPBACK;
	/*
	 * Only Ethernet-sized addresses fit mac[]; the loopback's is all
	 * zeros, which says nothing, so it is left out like no address.
	 */
	if (ll->sll_halen == 6 && memcmp(ll->sll_addr, zero, 6) != 0)
		snprintf(ifc->mac, sizeof(ifc->mac),
			 "%02x:%02x:%02x:%02x:%02x:%02x", ll->sll_addr[0],
			 ll->sll_addr[1], ll->sll_addr[2], ll->sll_addr[3],
			 ll->sll_addr[4], ll->sll_addr[5]);
}

/* MTUs through SIOCGIFMTU; an interface whose query fails keeps 0. */
static void
set_mtus(struct ifaces *l)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return;
	for (size_t i = 0; i < l->n; i++) {
		size_t len = strlen(l->v[i].name);
		struct ifreq ifr;

		if (len >= sizeof(ifr.ifr_name))
			continue;
		memset(&ifr, 0, sizeof(ifr));
		memcpy(ifr.ifr_name, l->v[i].name, len);
		if (ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
			l->v[i].mtu = (unsigned)ifr.ifr_mtu;
	}
	close(fd);
}

static int
by_index(const void *pa, const void *pb)
{
	const struct tk_iface *a = pa, *b = pb;

	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	return strcmp(a->name, b->name);
}

int
tk_iface_list(struct tk_iface **out, size_t *count)
{
	struct ifaddrs *all, *ifa;
	struct ifaces l = { NULL, 0, 0 };
	int err = 0;

	*out = NULL;
	*count = 0;
	if (getifaddrs(&all) < 0)
		return -errno;
	for (ifa = all; ifa != NULL; ifa = ifa->ifa_next) {
		int family = ifa->ifa_addr ? ifa->ifa_addr->sa_family : 0;
		struct tk_iface *ifc;

		if (ifa->ifa_name == NULL)
			continue;
		if ((ifc = ifaces_get(&l, ifa->ifa_name, ifa->ifa_flags)) ==
		    NULL) {
			err = -ENOMEM;
			goto out_free;
		}
		if (family == AF_PACKET)
			set_link(ifc, ifa);
		else if ((family == AF_INET || family == AF_INET6) &&
			 (err = add_addr(ifc, ifa)) < 0)
			goto out_free;
	}
	freeifaddrs(all);
	/* Only where no AF_PACKET entry told (some sandboxes have none). */
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].index == 0)
			l.v[i].index = if_nametoindex(l.v[i].name);
	set_mtus(&l);
	if (l.n > 0)
		qsort(l.v, l.n, sizeof(*l.v), by_index);
	*out = l.v;
	*count = l.n;
	return 0;

out_free:
	freeifaddrs(all);
	ifaces_free(&l);
	return err;
}

void
tk_iface_list_free(struct tk_iface *list, size_t count)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free(list[i].addrs);
	free(list);
}
