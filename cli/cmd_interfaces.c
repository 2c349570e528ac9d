/* cmd_interfaces.c: `tcpkit interfaces`: the network interfaces and addresses.
 */
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "cli.h"

const char cmd_interfaces_help[] =
	"usage: tcpkit interfaces [-4 | -6] [--json]\n"
	"\n"
	"List the network interfaces in index order with their state, MTU,\n"
	"MAC address and IP addresses: what `ip address` shows, one line per\n"
	"interface and one indented line per address.  Use it to choose the\n"
	"address a server should listen on.\n"
	"\n"
	"Options:\n"
	"  -4, --ipv4   only IPv4 addresses, of interfaces that have one\n"
	"  -6, --ipv6   only IPv6 addresses, of interfaces that have one\n"
	"      --json   print one JSON document instead of lines\n"
	"  -h, --help   show this help\n"
	"\n"
	"Output:\n"
	"  NAME  STATE  mtu N  [MAC]\n"
	"      inet ADDRESS/PREFIX\n"
	"      inet6 ADDRESS/PREFIX\n"
	"  for example:\n"
	"    lo    UP  mtu 65536\n"
	"        inet 127.0.0.1/8\n"
	"        inet6 ::1/128\n"
	"    eth0  UP  mtu 1500  02:fc:00:00:00:01\n"
	"        inet 192.0.2.2/24\n"
	"        inet6 fe80::fc:ff:fe00:1/64\n"
	"  STATE is UP (up, link has carrier), UP,NO-CARRIER (up, no link) or\n"
	"  DOWN (administratively down).  The MAC is left out when the\n"
	"  interface has none (lo); the MTU reads \"mtu ?\" when unknown.\n"
	"  IPv6 link-local addresses are shown without their zone: it is the\n"
	"  interface they are listed under.\n"
	"  With --json, one document on one line:\n"
	"    {\"interfaces\":[{\"name\":\"lo\",\"index\":1,\"up\":true,\n"
	"     \"running\":true,\"loopback\":true,\"mtu\":65536,\"mac\":\"\",\n"
	"     \"addresses\":[{\"family\":\"ipv4\",\"address\":\"127.0.0.1\",\n"
	"     \"prefix\":8}]}]}\n"
	"  where \"mtu\" is null when unknown and \"mac\" is \"\" when there\n"
	"  is none.\n"
	"\n"
	"Exit status:\n"
	"  0   success\n"
	"  64  usage error (bad option, an argument, -4 with -6)\n"
	"  1   the interfaces could not be read, or stdout not written\n"
	"\n"
	"Examples:\n"
	"  tcpkit interfaces\n"
	"  tcpkit interfaces -4\n"
	"  tcpkit interfaces --json | jq '.interfaces[].name'\n";

struct interfaces_opts {
	int family; /* AF_UNSPEC, AF_INET or AF_INET6: addresses shown */
	bool json;
};

enum { OPT_JSON = 256 };

static const char *
state_name(const struct tk_iface *ifc)
{
	if (!ifc->up)
		return "DOWN";
	return ifc->running ? "UP" : "UP,NO-CARRIER";
}

static bool
shown_addr(const struct interfaces_opts *o, const struct tk_iface_addr *ia)
{
	return o->family == AF_UNSPEC || tk_addr_family(&ia->addr) == o->family;
}

/* With -4 or -6, an interface without such an address is left out. */
static bool
shown_iface(const struct interfaces_opts *o, const struct tk_iface *ifc)
{
	if (o->family == AF_UNSPEC)
		return true;
	for (size_t i = 0; i < ifc->naddrs; i++)
		if (shown_addr(o, &ifc->addrs[i]))
			return true;
	return false;
}

/* The address without its zone: the interface is already named. */
static char *
format_ip(const struct tk_iface_addr *ia, char *buf, size_t len)
{
	tk_addr_format_ip(&ia->addr, buf, len);
	buf[strcspn(buf, "%")] = '\0';
	return buf;
}

static void
print_text(const struct interfaces_opts *o, const struct tk_iface *list,
	   size_t n)
{
	char ip[TK_ADDRSTRLEN];
	int wname = 0, wstate = 0;

	for (size_t i = 0; i < n; i++) {
		int a = (int)strlen(list[i].name);
		int b = (int)strlen(state_name(&list[i]));

		if (!shown_iface(o, &list[i]))
			continue;
		wname = a > wname ? a : wname;
		wstate = b > wstate ? b : wstate;
	}
	for (size_t i = 0; i < n; i++) {
		const struct tk_iface *ifc = &list[i];

		if (!shown_iface(o, ifc))
			continue;
		printf("%-*s  %-*s  ", wname, ifc->name, wstate,
		       state_name(ifc));
		if (ifc->mtu > 0)
			printf("mtu %u", ifc->mtu);
		else
			printf("mtu ?");
		if (ifc->mac[0] != '\0')
			printf("  %s", ifc->mac);
		putchar('\n');
		for (size_t j = 0; j < ifc->naddrs; j++) {
			const struct tk_iface_addr *ia = &ifc->addrs[j];

			if (!shown_addr(o, ia))
				continue;
			printf("    %s %s/%u\n",
			       tk_addr_family(&ia->addr) == AF_INET6 ? "inet6"
								     : "inet",
			       format_ip(ia, ip, sizeof(ip)), ia->prefix);
		}
	}
}

static void
print_json(const struct interfaces_opts *o, const struct tk_iface *list,
	   size_t n)
{
	char ip[TK_ADDRSTRLEN];
	bool first = true;

	fputs("{\"interfaces\":[", stdout);
	for (size_t i = 0; i < n; i++) {
		const struct tk_iface *ifc = &list[i];
		bool afirst = true;

		if (!shown_iface(o, ifc))
			continue;
		fputs(first ? "{\"name\":" : ",{\"name\":", stdout);
		first = false;
		cli_json_string(stdout, ifc->name, strlen(ifc->name));
		printf(",\"index\":%u,\"up\":%s,\"running\":%s,"
		       "\"loopback\":%s,",
		       ifc->index, ifc->up ? "true" : "false",
		       ifc->running ? "true" : "false",
		       ifc->loopback ? "true" : "false");
		if (ifc->mtu > 0)
			printf("\"mtu\":%u,\"mac\":", ifc->mtu);
		else
			fputs("\"mtu\":null,\"mac\":", stdout);
		cli_json_string(stdout, ifc->mac, strlen(ifc->mac));
		fputs(",\"addresses\":[", stdout);
		for (size_t j = 0; j < ifc->naddrs; j++) {
			const struct tk_iface_addr *ia = &ifc->addrs[j];

			if (!shown_addr(o, ia))
				continue;
			printf("%s{\"family\":\"%s\",\"address\":",
			       afirst ? "" : ",",
			       tk_addr_family(&ia->addr) == AF_INET6 ? "ipv6"
								     : "ipv4");
			afirst = false;
			format_ip(ia, ip, sizeof(ip));
			cli_json_string(stdout, ip, strlen(ip));
			printf(",\"prefix\":%u}", ia->prefix);
		}
		fputs("]}", stdout);
	}
	fputs("]}\n", stdout);
}

int
cmd_interfaces(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ipv4", no_argument, NULL, '4' },
		{ "ipv6", no_argument, NULL, '6' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct interfaces_opts o = { AF_UNSPEC, false };
	struct tk_iface *list;
	bool v4 = false, v6 = false;
	size_t n;
	int ch, err;

	opterr = 0;
	while ((ch = cli_getopt(argc, argv, ":46h", longopts)) != -1) {
		switch (ch) {
		case '4':
			v4 = true;
			break;
		case '6':
			v6 = true;
			break;
		case OPT_JSON:
			o.json = true;
			break;
		case 'h':
			return cli_help("interfaces");
		default:
			return cli_bad_option("interfaces", argv, ch);
		}
	}
	if (v4 && v6)
		return cli_usage("interfaces",
				 "-4 and -6 cannot be used together");
	if (optind < argc)
		return cli_usage("interfaces", "unexpected argument '%s'",
				 argv[optind]);
	o.family = v4 ? AF_INET : v6 ? AF_INET6 : AF_UNSPEC;

	if ((err = tk_iface_list(&list, &n)) < 0)
		return cli_fail("interfaces", "", err);
	if (o.json)
		print_json(&o, list, n);
	else
		print_text(&o, list, n);
	tk_iface_list_free(list, n);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error("interfaces", "stdout", "%s",
			  strerror(errno ? errno : EIO));
		return CLI_EXIT_OTHER;
	}
	return 0;
}
