/* cmd_resolve.c: `tcpkit resolve`: print every address of one or more hosts. */
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "cli.h"

const char cmd_resolve_help[] =
	"usage: tcpkit resolve [-4 | -6] [--json] HOST...\n"
	"\n"
	"Look up every TCP address of each HOST with the system's resolver\n"
	"(getaddrinfo: /etc/hosts, then DNS, as /etc/nsswitch.conf says) and\n"
	"print them in the order the system prefers, duplicates removed.\n"
	"HOST may also be an IP literal: 127.0.0.1, ::1, fe80::1%eth0.\n"
	"\n"
	"Options:\n"
	"  -4, --ipv4   only IPv4 addresses\n"
	"  -6, --ipv6   only IPv6 addresses\n"
	"      --json   print one JSON document instead of lines\n"
	"  -h, --help   show this help\n"
	"\n"
	"Output:\n"
	"  One line per address: the host as given, the family (IPv4 or IPv6)\n"
	"  and the address, separated by spaces:\n"
	"    localhost  IPv4  127.0.0.1\n"
	"  With --json, one document on one line:\n"
	"    {\"hosts\":[{\"host\":\"localhost\",\"addresses\":[\n"
	"     {\"family\":\"ipv4\",\"address\":\"127.0.0.1\"}]},\n"
	"     {\"host\":\"x.invalid\",\"error\":\"host not found\"}]}\n"
	"  A host that does not resolve is reported on stderr, in both forms,\n"
	"  and the other hosts are still looked up:\n"
	"    tcpkit: resolve x.invalid: host not found\n"
	"  or, for `tcpkit resolve -6 127.0.0.1`:\n"
	"    tcpkit: resolve 127.0.0.1: host has no address of the "
	"requested family\n"
	"\n"
	"Exit status:\n"
	"  0   every host resolved\n"
	"  64  usage error (no HOST, an empty HOST, -4 with -6, bad option)\n"
	"  68  a host did not resolve (unknown, no address of the family,\n"
	"      resolver failure)\n"
	"  1   other failure (out of memory, stdout not writable)\n"
	"  With several failures, the first one decides.\n"
	"\n"
	"Examples:\n"
	"  tcpkit resolve localhost\n"
	"  tcpkit resolve -6 ::1 localhost\n"
	"  tcpkit resolve --json localhost 127.0.0.1 | jq .\n";

struct resolve_opts {
	int family; /* AF_UNSPEC, AF_INET or AF_INET6 */
	bool json;
};

enum { OPT_JSON = 256 };

static const char *
family_name(const struct tk_addr *a, bool json)
{
	if (tk_addr_family(a) == AF_INET6)
		return json ? "ipv6" : "IPv6";
	return json ? "ipv4" : "IPv4";
}

static void
print_json_host(const char *host, const struct tk_addrlist *list, int err)
{
	char ip[TK_ADDRSTRLEN];

	fputs("{\"host\":", stdout);
	cli_json_string(stdout, host, strlen(host));
	if (err < 0) {
		fputs(",\"error\":", stdout);
		cli_json_string(stdout, tk_strerror(err),
				strlen(tk_strerror(err)));
		fputc('}', stdout);
		return;
	}
	fputs(",\"addresses\":[", stdout);
	for (size_t i = 0; i < list->count; i++) {
		tk_addr_format_ip(&list->addrs[i], ip, sizeof(ip));
		printf("%s{\"family\":\"%s\",\"address\":", i ? "," : "",
		       family_name(&list->addrs[i], true));
		cli_json_string(stdout, ip, strlen(ip));
		fputc('}', stdout);
	}
	fputs("]}", stdout);
}

static void
print_text_host(const char *host, int width, const struct tk_addrlist *list)
{
	char ip[TK_ADDRSTRLEN];

	for (size_t i = 0; i < list->count; i++)
		printf("%-*s  %s  %s\n", width, host,
		       family_name(&list->addrs[i], false),
		       tk_addr_format_ip(&list->addrs[i], ip, sizeof(ip)));
}

static int
resolve_all(const struct resolve_opts *o, int nhosts, char **hosts)
{
	int width = 0, rc = 0;

	/* Aligned columns, but a very long name does not push the rest. */
	for (int i = 0; i < nhosts; i++) {
		int n = (int)strlen(hosts[i]);

		if (n > width)
			width = n < 32 ? n : 32;
	}
	if (o->json)
		fputs("{\"hosts\":[", stdout);
	for (int i = 0; i < nhosts; i++) {
		struct tk_addrlist *list = NULL;
		int err, code;

		err = tk_resolve(hosts[i], NULL, o->family, 0, &list);
		if (err < 0) {
			/* Keep stderr after the lines already printed. */
			fflush(stdout);
			code = cli_fail("resolve", hosts[i], err);
			if (rc == 0)
				rc = code;
		}
		if (o->json) {
			if (i > 0)
				fputc(',', stdout);
			print_json_host(hosts[i], list, err);
		} else if (err == 0) {
			print_text_host(hosts[i], width, list);
		}
		tk_addrlist_free(list);
	}
	if (o->json)
		fputs("]}\n", stdout);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		int e = errno ? errno : EIO;

		cli_error("resolve", "stdout", "%s", strerror(e));
		if (rc == 0)
			rc = CLI_EXIT_OTHER;
	}
	return rc;
}

int
cmd_resolve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ipv4", no_argument, NULL, '4' },
		{ "ipv6", no_argument, NULL, '6' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct resolve_opts o = { AF_UNSPEC, false };
	bool v4 = false, v6 = false;
	int ch;

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
			return cli_help("resolve");
		default:
			return cli_bad_option("resolve", argv, ch);
		}
	}
	if (v4 && v6)
		return cli_usage("resolve",
				 "-4 and -6 cannot be used together");
	o.family = v4 ? AF_INET : v6 ? AF_INET6 : AF_UNSPEC;
	if (optind >= argc)
		return cli_usage("resolve", "missing HOST");
	for (int i = optind; i < argc; i++)
		if (cli_check_host("resolve", argv[i]) != 0)
			return CLI_EXIT_USAGE;
	return resolve_all(&o, argc - optind, argv + optind);
}
