/* cmd_scan.c: `tcpkit scan`: a TCP connect scan of ports on hosts. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

const char cmd_scan_help[] =
	"usage: tcpkit scan [OPTIONS] HOST... PORTS\n"
	"       tcpkit scan [OPTIONS] -p PORTS HOST...\n"
	"\n"
	"Connect to every port of PORTS on each HOST, many at a time, and\n"
	"report each port: open (the connect succeeded), closed (refused:\n"
	"nothing listens) or filtered (no answer in time, or unreachable).\n"
	"A connect that got through is closed with a reset, so a scan leaves\n"
	"no TIME_WAIT behind.  Scan only hosts you are allowed to scan.\n"
	"\n"
	"PORTS is the last argument (or -p's): ports and ranges separated by\n"
	"commas, 22,80,8000-8100; '-' is every port 1-65535, and a range may\n"
	"leave out an end (-1024 is 1-1024, 60000- ends at 65535: give it\n"
	"with -p, or it is read as an option).  HOST is a name (its first\n"
	"address, as the system prefers), an IP address or a CIDR block\n"
	"(127.0.0.0/30: every address in it, at most 65536).\n"
	"\n"
	"Options:\n"
	"  -p, --ports PORTS            the ports; every argument is then a HOST\n"
	"  -c, --connections N          connects in flight at most (default 100,\n"
	"                               at most 10000)\n"
	"  -w, --connect-timeout D      no answer in D is filtered (default 1s)\n"
	"      --retries N              connects again to a filtered port N\n"
	"                               more times (default 1, at most 10)\n"
	"      --rate N                 start at most N connects a second\n"
	"                               (default: no limit but -c)\n"
	"      --open                   show only open ports\n"
	"      --banner                 read what an open port says first: its\n"
	"                               first line, up to 256 bytes, waiting at\n"
	"                               most the connect timeout\n"
	"      --json                   print one JSON document\n"
	"  -h, --help                   show this help\n"
	"\n"
	"Output:\n"
	"  One line per port, in the order the answers come: the address,\n"
	"  PORT/tcp, the state and the service's name from /etc/services\n"
	"  (\"-\" if none), and with --banner what the port said, quoted, with\n"
	"  anything unprintable written as \\xHH:\n"
	"    127.0.0.1  22/tcp  open  ssh  \"SSH-2.0-OpenSSH_9.2p1\"\n"
	"  Then a summary on stderr:\n"
	"    scanned 1 host, 1000 ports in 0.1s: 2 open, 998 closed, "
	"0 filtered\n"
	"  With --json, one document: {\"results\":[{\"host\":...,\"address\":...,\n"
	"  \"port\":22,\"state\":\"open\",\"service\":\"ssh\",\"ms\":0,\"tries\":1,\n"
	"  \"error\":...,\"banner\":...}...],\"summary\":{\"hosts\":1,\"ports\":1000,\n"
	"  \"open\":2,\"closed\":998,\"filtered\":0,\"seconds\":0.1}}\n"
	"  On a terminal a progress line on stderr tells the ports done, the\n"
	"  open ones so far and the rate; none when stderr is not a terminal.\n"
	"\n"
	"Exit status:\n"
	"  0   the scan ran, whatever it found\n"
	"  64  usage error (bad port list, bad address or block, a block too\n"
	"      big, bad option)\n"
	"  68  a HOST does not resolve (nothing is scanned)\n"
	"  1   other failure (out of sockets, stdout not writable)\n"
	"\n"
	"Examples:\n"
	"  tcpkit scan 127.0.0.1 1-1024\n"
	"  tcpkit scan --open -c 1000 127.0.0.1 -\n"
	"  tcpkit scan --banner -p 22,25,80 localhost ::1\n"
	"  tcpkit scan --json 127.0.0.0/30 8000-8100 | jq .summary\n";

/* What one argument may expand to, and all of them together. */
#define MAX_BLOCK  65536u
#define MAX_ADDRS  65536u
#define BANNER_MAX 256u

enum { OPT_RETRIES = 256, OPT_RATE, OPT_OPEN, OPT_BANNER, OPT_JSON };

struct scan_run {
	bool open_only, json, progress;
	struct tk_loop *loop;
	struct tk_scan *scan;
	const char **names; /* per address: the HOST it came from */
	char **services;    /* per port: /etc/services' tcp name, or NULL */
	char *service_buf;
	size_t nprinted;
	int width;
	int err;
	struct timespec t0;
	struct tk_timer *ticker;
};

/*
 * /etc/services read once, not getservbyport() per port: glibc reads the
 * whole file on each call, and a full scan would read it 65535 times.
 */
static void
load_services(struct scan_run *r)
{
	FILE *f = fopen("/etc/services", "r");
	char line[512];
	size_t used = 0, cap = 0;
	size_t *offs;

	r->services = calloc(65536, sizeof(*r->services));
	offs = calloc(65536, sizeof(*offs));
	if (f == NULL || r->services == NULL || offs == NULL)
		goto out;
	while (fgets(line, sizeof(line), f) != NULL) {
		char name[128], proto[16];
		unsigned port;
		size_t n;

		if (sscanf(line, "%127s %u/%15s", name, &port, proto) != 3 ||
		    name[0] == '#' || port == 0 || port > 65535 ||
		    strcmp(proto, "tcp") != 0 || offs[port] != 0)
			continue;
		n = strlen(name) + 1;
		if (used + n > cap) {
			char *nb =
				realloc(r->service_buf, cap ? cap * 2 : 16384);

			if (nb == NULL)
				break;
			r->service_buf = nb;
			cap = cap ? cap * 2 : 16384;
		}
		memcpy(r->service_buf + used, name, n);
		offs[port] = used + 1; /* 0: none */
		used += n;
	}
	for (size_t p = 0; p < 65536; p++)
		if (offs[p] != 0)
			r->services[p] = r->service_buf + offs[p] - 1;
out:
	free(offs);
	if (f != NULL)
		fclose(f);
}

static const char *
state_name(enum tk_scan_state st)
{
	return st == TK_SCAN_OPEN     ? "open"
	       : st == TK_SCAN_CLOSED ? "closed"
				      : "filtered";
}

/* The banner in quotes, anything unprintable (and " and \) escaped. */
static void
print_banner(const char *b, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)b[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void
clear_progress(struct scan_run *r)
{
	if (r->progress)
		fputs("\r\033[K", stderr);
}

static double
elapsed(const struct scan_run *r)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - r->t0.tv_sec) +
	       (double)(now.tv_nsec - r->t0.tv_nsec) / 1e9;
}

static void
on_result(struct tk_scan *s, const struct tk_scan_result *res, void *arg)
{
	struct scan_run *r = arg;
	uint16_t port = tk_addr_port(res->addr);
	const char *svc = r->services ? r->services[port] : NULL;
	char ip[TK_ADDRSTRLEN];

	(void)s;
	if (r->open_only && res->state != TK_SCAN_OPEN)
		return;
	tk_addr_format_ip(res->addr, ip, sizeof(ip));
	if (r->json) {
		fputs(r->nprinted ? ",{\"host\":" : "{\"host\":", stdout);
		cli_json_string(stdout, r->names[res->target],
				strlen(r->names[res->target]));
		fputs(",\"address\":", stdout);
		cli_json_string(stdout, ip, strlen(ip));
		printf(",\"port\":%u,\"state\":\"%s\",\"service\":", port,
		       state_name(res->state));
		if (svc != NULL)
			cli_json_string(stdout, svc, strlen(svc));
		else
			fputs("null", stdout);
		printf(",\"ms\":%llu,\"tries\":%u", (unsigned long long)res->ms,
		       res->tries);
		if (res->err != 0) {
			fputs(",\"error\":", stdout);
			cli_json_string(stdout, tk_strerror(res->err),
					strlen(tk_strerror(res->err)));
		}
		if (res->banner != NULL) {
			fputs(",\"banner\":", stdout);
			cli_json_string(stdout, res->banner, res->banner_len);
		}
		fputc('}', stdout);
	} else {
		char pt[16];

		clear_progress(r);
		snprintf(pt, sizeof(pt), "%u/tcp", port);
		printf("%-*s  %-9s  %-8s  %s", r->width, ip, pt,
		       state_name(res->state), svc ? svc : "-");
		if (res->banner != NULL) {
			fputs("  ", stdout);
			print_banner(res->banner, res->banner_len);
		}
		putchar('\n');
		if (r->progress)
			fflush(stdout);
	}
	r->nprinted++;
}

static void
on_done(struct tk_scan *s, int err, void *arg)
{
	struct scan_run *r = arg;

	(void)s;
	r->err = err;
	tk_loop_stop(r->loop);
}

static void
on_tick(struct tk_timer *t, void *arg)
{
	struct scan_run *r = arg;
	struct tk_scan_stats st;
	double secs = elapsed(r);

	(void)t;
	tk_scan_get_stats(r->scan, &st);
	fprintf(stderr, "\r\033[K%llu/%llu ports, %llu open, %.0f/s",
		(unsigned long long)st.done, (unsigned long long)st.total,
		(unsigned long long)st.open,
		secs > 0 ? (double)st.done / secs : 0.0);
}

/* Resolve and expand every HOST; 0 or an exit code after the error. */
static int
collect_targets(char **hosts, int nhosts, struct tk_addr **out,
		const char ***names, size_t *n)
{
	struct tk_scan_target *t = calloc((size_t)nhosts, sizeof(*t));
	uint64_t total = 0;
	size_t k = 0;
	int rc = 0;

	*out = NULL;
	*names = NULL;
	if (t == NULL)
		return cli_fail("scan", NULL, -ENOMEM);
	for (int i = 0; i < nhosts && rc == 0; i++) {
		char why[256];

		if (tk_scan_target_parse(hosts[i], MAX_BLOCK, &t[i], why,
					 sizeof(why)) < 0)
			rc = cli_usage("scan", "%s", why);
		else if ((total += t[i].count) > MAX_ADDRS)
			rc = cli_usage("scan", "more than %u addresses in all",
				       MAX_ADDRS);
	}
	if (rc == 0) {
		*out = calloc(total, sizeof(**out));
		*names = calloc(total, sizeof(**names));
		if (*out == NULL || *names == NULL)
			rc = cli_fail("scan", NULL, -ENOMEM);
	}
	for (int i = 0; i < nhosts && rc == 0; i++) {
		struct tk_addrlist *list = NULL;
		int err;

		if (!t[i].is_name) {
			for (uint64_t j = 0; j < t[i].count; j++) {
				(*names)[k] = hosts[i];
				tk_scan_target_addr(&t[i], j, &(*out)[k++]);
			}
			continue;
		}
		err = tk_resolve(t[i].name, NULL, AF_UNSPEC, 0, &list);
		if (err < 0) {
			rc = cli_fail("scan", hosts[i], err);
			break;
		}
		(*names)[k] = hosts[i];
		(*out)[k++] = list->addrs[0];
		tk_addrlist_free(list);
	}
	free(t);
	*n = k;
	return rc;
}

static int
run_scan(struct scan_run *r, const struct tk_scan_opts *so,
	 const struct tk_addr *addrs, size_t naddrs,
	 const struct tk_portset *ports)
{
	struct tk_scan_stats st;
	double secs;
	char ip[TK_ADDRSTRLEN];
	int err, rc = 0;

	for (size_t i = 0; i < naddrs; i++) {
		int w = (int)strlen(
			tk_addr_format_ip(&addrs[i], ip, sizeof(ip)));

		if (w > r->width)
			r->width = w;
	}
	if ((err = tk_loop_new(&r->loop)) < 0)
		return cli_fail("scan", NULL, err);
	err = tk_scan_new(r->loop, so, addrs, naddrs, ports, on_result, on_done,
			  r, &r->scan);
	if (err == 0 && r->progress &&
	    (err = tk_timer_new(r->loop, on_tick, r, &r->ticker)) == 0)
		err = tk_timer_start(r->ticker, 250, 250);
	if (err == 0)
		err = tk_scan_start(r->scan);
	if (err < 0) {
		rc = cli_fail("scan", NULL, err);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	if (r->json)
		fputs("{\"results\":[", stdout);
	if ((err = tk_loop_run(r->loop)) < 0 && r->err == 0)
		r->err = err;
	secs = elapsed(r);
	tk_scan_get_stats(r->scan, &st);
	clear_progress(r);
	if (r->json)
		printf("],\"summary\":{\"hosts\":%zu,\"ports\":%llu,"
		       "\"open\":%llu,\"closed\":%llu,\"filtered\":%llu,"
		       "\"seconds\":%.3f}}\n",
		       naddrs, (unsigned long long)(st.total / naddrs),
		       (unsigned long long)st.open,
		       (unsigned long long)st.closed,
		       (unsigned long long)st.filtered, secs);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error("scan", "stdout", "%s",
			  strerror(errno ? errno : EIO));
		rc = CLI_EXIT_OTHER;
	}
	if (r->err < 0) {
		rc = cli_fail("scan", NULL, r->err);
	} else if (!r->json && rc == 0) {
		fprintf(stderr,
			"scanned %zu host%s, %llu port%s in %.1fs: %llu open, "
			"%llu closed, %llu filtered\n",
			naddrs, CLI_PLURAL(naddrs),
			(unsigned long long)(st.total / naddrs),
			CLI_PLURAL(st.total / naddrs), secs,
			(unsigned long long)st.open,
			(unsigned long long)st.closed,
			(unsigned long long)st.filtered);
	}
out:
	tk_timer_free(r->ticker);
	tk_scan_free(r->scan);
	tk_loop_free(r->loop);
	return rc;
}

/* -c, lowered to leave room below the open-file limit. */
static unsigned
inflight_limit(uint64_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want + 64)
		return rl.rlim_cur > 128 ? (unsigned)(rl.rlim_cur - 64) : 64;
	return (unsigned)want;
}

int
cmd_scan(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ports", required_argument, NULL, 'p' },
		{ "connections", required_argument, NULL, 'c' },
		{ "connect-timeout", required_argument, NULL, 'w' },
		{ "retries", required_argument, NULL, OPT_RETRIES },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "open", no_argument, NULL, OPT_OPEN },
		{ "banner", no_argument, NULL, OPT_BANNER },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct scan_run r = { 0 };
	struct tk_scan_opts so;
	struct tk_portset *ports = NULL;
	struct tk_addr *addrs = NULL;
	const char *ports_arg = NULL;
	size_t naddrs = 0;
	uint64_t v;
	char why[256];
	int ch, nhosts, rc;

	tk_scan_opts_init(&so);
	so.retries = 1;
	opterr = 0;
	while ((ch = cli_getopt(argc, argv, ":p:c:w:h", longopts)) != -1) {
		switch (ch) {
		case 'p':
			ports_arg = optarg;
			break;
		case 'c':
			if (cli_parse_uint("scan", "-c", optarg, 1,
					   TK_SCAN_MAX_INFLIGHT, &v) < 0)
				return CLI_EXIT_USAGE;
			so.inflight = (unsigned)v;
			break;
		case 'w':
			if (cli_parse_duration("scan", "--connect-timeout",
					       optarg, false,
					       &so.timeout_ms) < 0)
				return CLI_EXIT_USAGE;
			break;
		case OPT_RETRIES:
			if (cli_parse_uint("scan", "--retries", optarg, 0, 10,
					   &v) < 0)
				return CLI_EXIT_USAGE;
			so.retries = (unsigned)v;
			break;
		case OPT_RATE:
			if (cli_parse_uint("scan", "--rate", optarg, 1, 1000000,
					   &so.rate) < 0)
				return CLI_EXIT_USAGE;
			break;
		case OPT_OPEN:
			r.open_only = true;
			break;
		case OPT_BANNER:
			so.banner_max = BANNER_MAX;
			break;
		case OPT_JSON:
			r.json = true;
			break;
		case 'h':
			return cli_help("scan");
		default:
			return cli_bad_option("scan", argv, ch);
		}
	}
	nhosts = argc - optind;
	if (ports_arg == NULL) {
		if (nhosts < 2)
			return cli_usage("scan",
					 nhosts == 0
						 ? "missing HOST and PORTS"
						 : "missing PORTS (or HOST)");
		ports_arg = argv[--argc];
		nhosts--;
	} else if (nhosts < 1) {
		return cli_usage("scan", "missing HOST");
	}
	ports = malloc(sizeof(*ports));
	if (ports == NULL)
		return cli_fail("scan", NULL, -ENOMEM);
	if (tk_portset_parse(ports_arg, ports, why, sizeof(why)) < 0) {
		free(ports);
		return cli_usage("scan", "%s", why);
	}
	so.inflight = inflight_limit(so.inflight);
	rc = collect_targets(argv + optind, nhosts, &addrs, &r.names, &naddrs);
	if (rc == 0) {
		load_services(&r);
		r.progress = isatty(STDERR_FILENO);
		rc = run_scan(&r, &so, addrs, naddrs, ports);
	}
	free(r.services);
	free(r.service_buf);
	free(r.names);
	free(addrs);
	free(ports);
	return rc;
}
