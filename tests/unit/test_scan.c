/* test_scan.c: the port and target list parsers, and the connect scan against
 * loopback listeners made here. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "tcpkit.h"

TestSuite(portset, .timeout = 30);
TestSuite(target, .timeout = 30);
TestSuite(scan, .timeout = 30);

static struct tk_portset ps;

static void
ports_ok(const char *text, uint32_t count)
{
	char why[128] = "";
	int err = tk_portset_parse(text, &ps, why, sizeof(why));

	cr_assert_eq(err, 0, "parse(\"%s\") = %s: %s", text, tk_err_name(err),
		     why);
	cr_assert_eq(ps.count, count, "parse(\"%s\"): %u ports, want %u", text,
		     ps.count, count);
}

static void
ports_err(const char *text, const char *want)
{
	char why[128] = "";
	int err;

	memset(&ps, 0x5a, sizeof(ps));
	err = tk_portset_parse(text, &ps, why, sizeof(why));
	cr_assert_eq(err, TK_EBADPORT, "parse(\"%s\") = %s", text,
		     tk_err_name(err));
	cr_assert(strstr(why, want) != NULL, "parse(\"%s\"): '%s', want '%s'",
		  text, why, want);
	cr_assert_eq(ps.count, 0x5a5a5a5au, "out written on failure");
}

Test(portset, lists_ranges_and_all)
{
	ports_ok("22", 1);
	cr_assert(tk_portset_has(&ps, 22));
	cr_assert(!tk_portset_has(&ps, 21) && !tk_portset_has(&ps, 23));
	ports_ok("22,80,8000-8100", 103);
	cr_assert(tk_portset_has(&ps, 8000) && tk_portset_has(&ps, 8100));
	cr_assert(!tk_portset_has(&ps, 8101) && !tk_portset_has(&ps, 7999));
	ports_ok("-", 65535);
	cr_assert(tk_portset_has(&ps, 1) && tk_portset_has(&ps, 65535));
	cr_assert(!tk_portset_has(&ps, 0));
	ports_ok("1-65535", 65535);
	ports_ok("-1024", 1024);
	ports_ok("65000-", 536);
	ports_ok("65535", 1);
	ports_ok("1", 1);
	ports_ok("5-5", 1);
	/* Overlaps count once. */
	ports_ok("80,80,70-90,85", 21);
	ports_ok("007", 1);
	cr_assert(tk_portset_has(&ps, 7));
}

Test(portset, next_walks_in_order)
{
	ports_ok("65535,1,8,9,16,300-301", 7);
	cr_assert_eq(tk_portset_next(&ps, 0), 1);
	cr_assert_eq(tk_portset_next(&ps, 1), 8);
	cr_assert_eq(tk_portset_next(&ps, 8), 9);
	cr_assert_eq(tk_portset_next(&ps, 9), 16);
	cr_assert_eq(tk_portset_next(&ps, 16), 300);
	cr_assert_eq(tk_portset_next(&ps, 301), 65535);
	cr_assert_eq(tk_portset_next(&ps, 65535), 0);
	ports_ok("-", 65535);
	for (uint32_t p = 0; p < 65535; p++)
		if (tk_portset_next(&ps, (uint16_t)p) != p + 1)
			cr_assert_fail("next(%u) = %u", p,
				       tk_portset_next(&ps, (uint16_t)p));
}

Test(portset, errors_name_the_bad_item)
{
	ports_err("", "empty port list");
	ports_err("0", "port '0' out of range (1-65535)");
	ports_err("65536", "port '65536' out of range");
	ports_err("99999999999999999999", "out of range");
	ports_err("22,80000", "port '80000' out of range");
	ports_err("1-65536", "port '65536' out of range");
	ports_err("0-10", "port '0' out of range");
	ports_err("90-80", "range '90-80' runs backwards");
	ports_err("22,,80", "empty item in port list '22,,80'");
	ports_err("22,", "empty item");
	ports_err(",22", "empty item");
	ports_err("ssh", "'ssh' is not a port or a range");
	ports_err("1-2-3", "'1-2-3' is not a port or a range");
	ports_err("--", "'--' is not a port or a range");
	ports_err(" 22", "' 22' is not a port");
	ports_err("22 ", "is not a port");
	ports_err("+22", "is not a port");
}

/* The reason is one line, whatever the text holds (found by fuzz_scan). */
Test(portset, reason_is_one_line)
{
	ports_err("2\n2", "'2?2' is not a port or a range");
	ports_err("1,\n,", "'?' is not a port");
	ports_err("1,,\n", "empty item in port list '1,,?'");
	cr_assert_eq(tk_portset_parse("1,,\n", &ps, NULL, 0), TK_EBADPORT);
}

static struct tk_scan_target tg;

static void
target_ok(const char *text, uint64_t max, uint64_t count, const char *first)
{
	char why[160] = "", ip[TK_ADDRSTRLEN];
	int err = tk_scan_target_parse(text, max, &tg, why, sizeof(why));

	cr_assert_eq(err, 0, "parse(\"%s\") = %s: %s", text, tk_err_name(err),
		     why);
	cr_assert_eq(tg.count, count, "parse(\"%s\"): %llu addresses", text,
		     (unsigned long long)tg.count);
	if (first == NULL) {
		cr_assert(tg.is_name);
		return;
	}
	cr_assert(!tg.is_name);
	cr_assert_str_eq(tk_addr_format_ip(&tg.first, ip, sizeof(ip)), first);
}

static void
target_err(const char *text, uint64_t max, const char *want)
{
	char why[160] = "";
	int err = tk_scan_target_parse(text, max, &tg, why, sizeof(why));

	cr_assert_eq(err, TK_EBADADDR, "parse(\"%s\") = %s", text,
		     tk_err_name(err));
	cr_assert(strstr(why, want) != NULL, "parse(\"%s\"): '%s', want '%s'",
		  text, why, want);
}

static const char *
nth(uint64_t i)
{
	static char ip[TK_ADDRSTRLEN];
	struct tk_addr a;

	tk_scan_target_addr(&tg, i, &a);
	return tk_addr_format_ip(&a, ip, sizeof(ip));
}

Test(target, literals_blocks_and_names)
{
	target_ok("127.0.0.1", 1, 1, "127.0.0.1");
	target_ok("::1", 1, 1, "::1");
	target_ok("[::1]", 1, 1, "::1");
	target_ok("localhost", 1, 1, NULL);
	cr_assert_str_eq(tg.name, "localhost");
	target_ok("host-1.example_x.test", 1, 1, NULL);
	target_ok("127.0.0.0/30", 4, 4, "127.0.0.0");
	cr_assert_str_eq(nth(3), "127.0.0.3");
	/* Host bits set: the block that holds the address. */
	target_ok("127.0.0.6/30", 4, 4, "127.0.0.4");
	target_ok("127.0.0.1/32", 1, 1, "127.0.0.1");
	target_ok("10.1.2.3/16", 65536, 65536, "10.1.0.0");
	cr_assert_str_eq(nth(65535), "10.1.255.255");
	cr_assert_str_eq(nth(256), "10.1.1.0");
	target_ok("::1/128", 1, 1, "::1");
	target_ok("fe80::ff/120", 256, 256, "fe80::");
	cr_assert_str_eq(nth(255), "fe80::ff");
	target_ok("2001:db8::/112", 65536, 65536, "2001:db8::");
	cr_assert_str_eq(nth(65535), "2001:db8::ffff");
	cr_assert_str_eq(nth(256), "2001:db8::100");
	target_ok("0.0.0.0/0", UINT64_MAX, UINT64_C(1) << 32, "0.0.0.0");
}

Test(target, errors_name_the_bad_part)
{
	target_err("", 1, "empty target");
	target_err("127.0.0.0/33", 1000, "prefix '/33' out of range (0-32)");
	target_err("::1/129", 1000, "prefix '/129' out of range (0-128)");
	target_err("127.0.0.0/", 1000, "prefix '/' out of range");
	target_err("127.0.0.0/x", 1000, "prefix '/x' out of range");
	target_err("127.0.0.0/-1", 1000, "prefix '/-1'");
	target_err("127.0.0.0/0024", 1000, "prefix '/0024'");
	target_err("localhost/24", 1000,
		   "'localhost': a CIDR block needs an IP address");
	target_err("127.0.0.0/30/1", 1000, "prefix '/30/1'");
	/* The bound: one over it is refused, with the sizes named. */
	target_err("127.0.0.0/29", 4,
		   "block '127.0.0.0/29' has 8 addresses, more than 4");
	target_err(
		"10.0.0.0/8", 65536,
		"block '10.0.0.0/8' has 16777216 addresses, more than 65536");
	target_err("::/0", UINT64_MAX, "has 2^128 addresses");
	target_err("2001:db8::/64", 65536, "has 2^64 addresses");
	target_err("a b", 1, "'a b' is not an address or a host name");
	target_err("-oops", 1, "is not an address or a host name");
	target_err("x;y", 1, "is not an address or a host name");
	target_err("1.2.3.4:80", 1, "is not an address or a host name");
	/* One line, whatever the text holds (found by fuzz_scan). */
	target_err("local\nost", 1, "'local?ost' is not an address");
	target_err("a\nb/24", 1, "'a?b': a CIDR block needs an IP address");
	target_err("127.0.0.0/3\n", 1, "prefix '/3?' out of range");
}

/* --- the scan against loopback ------------------------------------------ */

#define MAXRES 64

struct scan_rec {
	struct tk_loop *loop;
	size_t n;
	uint16_t port[MAXRES];
	enum tk_scan_state state[MAXRES];
	int err[MAXRES];
	unsigned tries[MAXRES];
	char banner[MAXRES][64];
	bool has_banner[MAXRES];
	uint64_t t[MAXRES];
	uint64_t max_inflight;
	bool done;
	int done_err;
};

static void
rec_result(struct tk_scan *s, const struct tk_scan_result *r, void *arg)
{
	struct scan_rec *x = arg;
	struct tk_scan_stats st;

	tk_scan_get_stats(s, &st);
	if (st.inflight > x->max_inflight)
		x->max_inflight = st.inflight;
	cr_assert_lt(x->n, MAXRES);
	x->port[x->n] = tk_addr_port(r->addr);
	x->state[x->n] = r->state;
	x->err[x->n] = r->err;
	x->tries[x->n] = r->tries;
	x->t[x->n] = t_now_ms();
	if (r->banner != NULL) {
		x->has_banner[x->n] = true;
		snprintf(x->banner[x->n], sizeof(x->banner[0]), "%.*s",
			 (int)r->banner_len, r->banner);
	}
	x->n++;
}

/* Counts only: for scans with more results than a scan_rec holds. */
static void
count_result(struct tk_scan *s, const struct tk_scan_result *r, void *arg)
{
	(void)s;
	(void)r;
	((struct scan_rec *)arg)->n++;
}

static void
rec_done(struct tk_scan *s, int err, void *arg)
{
	struct scan_rec *x = arg;

	(void)s;
	x->done = true;
	x->done_err = err;
}

static struct tk_scan *
scan_run(struct scan_rec *x, const struct tk_scan_opts *o,
	 const struct tk_addr *a, const char *ports, uint64_t ms)
{
	struct tk_scan *s;

	memset(x, 0, sizeof(*x));
	x->loop = t_loop_new();
	cr_assert_eq(tk_portset_parse(ports, &ps, NULL, 0), 0);
	cr_assert_eq(
		tk_scan_new(x->loop, o, a, 1, &ps, rec_result, rec_done, x, &s),
		0);
	cr_assert_eq(tk_scan_start(s), 0);
	cr_assert_eq(tk_scan_start(s), -EALREADY);
	RUN_UNTIL(x->loop, ms, x->done);
	return s;
}

static int
find(const struct scan_rec *x, uint16_t port)
{
	for (size_t i = 0; i < x->n; i++)
		if (x->port[i] == port)
			return (int)i;
	cr_assert_fail("port %u not reported", port);
	return -1;
}

/*
 * n consecutive ports of ip, each held by a socket bound but not listening
 * (refused, and no other program can listen there meanwhile): a range a
 * scan may probe without touching anyone else's listener.  Below the
 * ephemeral range; returns the first port.
 */
static uint16_t
hold_range(const char *ip, int *fds, int n)
{
	int last_err = 0;

	/*
	 * First fit from a per-process start, moving past any port another
	 * program holds (or a TIME_WAIT occupies), up to the top of the port
	 * space: a gap of n is found wherever one is.
	 */
	for (int base = 20000 + (getpid() % 97) * 97; base + n <= 65535;) {
		int k;

		for (k = 0; k < n; k++) {
			struct tk_addr a = t_addr(ip, (uint16_t)(base + k));

			fds[k] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			cr_assert(fds[k] >= 0, "socket: %s", strerror(errno));
			if (bind(fds[k], &a.u.sa, a.len) < 0) {
				last_err = errno;
				break;
			}
		}
		if (k == n)
			return (uint16_t)base;
		for (int j = 0; j <= k; j++)
			close(fds[j]);
		base += k + 1;
	}
	cr_assert_fail("no %d free consecutive ports on %s (last: %s)", n, ip,
		       strerror(last_err));
	return 0;
}

static void
release_range(int *fds, int n)
{
	for (int k = 0; k < n; k++)
		close(fds[k]);
}

Test(scan, open_closed_and_filtered)
{
	struct tk_addr lst, ref, bh, a = t_addr("127.0.0.1", 0);
	int lfd = t_raw_listen("127.0.0.1", 16, &lst);
	int rfd = t_refusing_port("127.0.0.1", &ref);
	int bfd = t_raw_listen("127.0.0.1", 0, &bh), fills[3];
	struct tk_scan_opts o;
	struct scan_rec x;
	struct tk_scan *s;
	struct tk_scan_stats st;
	char ports[64];
	int i;

	/* A full accept queue drops SYNs: the port can only time out. */
	for (int k = 0; k < 3; k++) {
		fills[k] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		(void)connect(fills[k], &bh.u.sa, bh.len);
	}
	snprintf(ports, sizeof(ports), "%u,%u,%u", tk_addr_port(&lst),
		 tk_addr_port(&ref), tk_addr_port(&bh));
	tk_scan_opts_init(&o);
	o.timeout_ms = 300;
	o.retries = 1;
	s = scan_run(&x, &o, &a, ports, 5000);
	cr_assert_eq(x.done_err, 0);
	cr_assert_eq(x.n, 3);
	i = find(&x, tk_addr_port(&lst));
	cr_assert_eq(x.state[i], TK_SCAN_OPEN);
	cr_assert_eq(x.err[i], 0);
	cr_assert_eq(x.tries[i], 1);
	cr_assert(!x.has_banner[i]);
	i = find(&x, tk_addr_port(&ref));
	cr_assert_eq(x.state[i], TK_SCAN_CLOSED);
	cr_assert_eq(x.err[i], -ECONNREFUSED);
	i = find(&x, tk_addr_port(&bh));
	cr_assert_eq(x.state[i], TK_SCAN_FILTERED, "state %d err %s",
		     x.state[i], tk_err_name(x.err[i]));
	cr_assert_eq(x.err[i], TK_ECONNTIMEDOUT);
	cr_assert_eq(x.tries[i], 2, "one retry after the first timeout");
	tk_scan_get_stats(s, &st);
	cr_assert_eq(st.total, 3);
	cr_assert_eq(st.done, 3);
	cr_assert_eq(st.open + st.closed + st.filtered, 3);
	cr_assert_eq(st.connects, 4);
	cr_assert_eq(st.inflight, 0);
	tk_scan_free(s);
	tk_loop_free(x.loop);
	for (int k = 0; k < 3; k++)
		close(fills[k]);
	close(bfd);
	close(rfd);
	close(lfd);
}

Test(scan, open_port_is_reset_not_left_in_time_wait)
{
	struct tk_addr lst, a = t_addr("127.0.0.1", 0);
	int lfd = t_raw_listen("127.0.0.1", 16, &lst), cfd;
	struct scan_rec x;
	struct tk_scan *s;
	char ports[16], buf[4];
	ssize_t n;

	snprintf(ports, sizeof(ports), "%u", tk_addr_port(&lst));
	s = scan_run(&x, NULL, &a, ports, 5000);
	cr_assert_eq(x.state[0], TK_SCAN_OPEN);
	cfd = accept(lfd, NULL, NULL);
	cr_assert(cfd >= 0);
	/* The probe's close was a reset: the accepted side reads ECONNRESET. */
	n = recv(cfd, buf, sizeof(buf), 0);
	cr_assert(n < 0 && errno == ECONNRESET, "recv = %zd (%s)", n,
		  strerror(errno));
	close(cfd);
	tk_scan_free(s);
	tk_loop_free(x.loop);
	close(lfd);
}

Test(scan, banner_first_line_bounded)
{
	struct tk_addr lst, a = t_addr("127.0.0.1", 0);
	int lfd = t_raw_listen("127.0.0.1", 16, &lst), cfd;
	struct tk_scan_opts o;
	struct scan_rec x;
	struct tk_scan *s;
	char ports[16];

	snprintf(ports, sizeof(ports), "%u", tk_addr_port(&lst));
	tk_scan_opts_init(&o);
	o.banner_max = 16;
	o.timeout_ms = 2000;
	memset(&x, 0, sizeof(x));
	x.loop = t_loop_new();
	cr_assert_eq(tk_portset_parse(ports, &ps, NULL, 0), 0);
	cr_assert_eq(tk_scan_new(x.loop, &o, &a, 1, &ps, rec_result, rec_done,
				 &x, &s),
		     0);
	cr_assert_eq(tk_scan_start(s), 0);
	/* Let the connect through, then greet with two lines at once. */
	t_nonblock(lfd);
	while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) < 0) {
		cr_assert(errno == EAGAIN || errno == EINTR);
		cr_assert_eq(tk_loop_run_once(x.loop, 50), 0);
	}
	cr_assert_eq(write(cfd, "220 hello\r\n250 more\r\n", 21), 21);
	RUN_UNTIL(x.loop, 3000, x.done);
	cr_assert_eq(x.state[0], TK_SCAN_OPEN);
	cr_assert(x.has_banner[0]);
	cr_assert_str_eq(x.banner[0], "220 hello");
	close(cfd);
	tk_scan_free(s);
	tk_loop_free(x.loop);
	close(lfd);
}

/* A quiet service: the banner wait ends at its deadline, the port open. */
Test(scan, banner_silent_port_times_out_open)
{
	struct tk_addr lst, a = t_addr("127.0.0.1", 0);
	int lfd = t_raw_listen("127.0.0.1", 16, &lst);
	struct tk_scan_opts o;
	struct scan_rec x;
	struct tk_scan *s;
	char ports[16];
	uint64_t t0 = t_now_ms();

	snprintf(ports, sizeof(ports), "%u", tk_addr_port(&lst));
	tk_scan_opts_init(&o);
	o.banner_max = 64;
	o.banner_timeout_ms = 200;
	s = scan_run(&x, &o, &a, ports, 3000);
	cr_assert_eq(x.state[0], TK_SCAN_OPEN);
	cr_assert(x.has_banner[0]);
	cr_assert_str_eq(x.banner[0], "");
	cr_assert_geq(x.t[0] - t0, 200);
	tk_scan_free(s);
	tk_loop_free(x.loop);
	close(lfd);
}

/* --rate: 20 connects at 50/s take 0.2 s past the first burst of 5. */
Test(scan, rate_limit_spaces_connects)
{
	struct tk_addr a = t_addr("127.0.0.1", 0);
	int fds[20];
	uint16_t p0 = hold_range("127.0.0.1", fds, 20);
	struct tk_scan_opts o;
	struct scan_rec x;
	struct tk_scan *s;
	char ports[32];
	uint64_t t0 = t_now_ms(), took;

	snprintf(ports, sizeof(ports), "%u-%u", p0, p0 + 19);
	tk_scan_opts_init(&o);
	o.rate = 50;
	s = scan_run(&x, &o, &a, ports, 5000);
	took = t_now_ms() - t0;
	cr_assert_eq(x.n, 20);
	cr_assert_geq(took, 250, "20 connects at 50/s in %llu ms",
		      (unsigned long long)took);
	cr_assert_lt(took, 2000);
	tk_scan_free(s);
	tk_loop_free(x.loop);
	release_range(fds, 20);
}

/* In flight never above the bound, and every port reported once. */
Test(scan, inflight_bounded_every_port_once)
{
	struct tk_addr bh, a = t_addr("127.0.0.1", 0);
	int bfd = t_raw_listen("127.0.0.1", 0, &bh), fills[3];
	struct tk_scan_opts o;
	struct scan_rec x;
	struct tk_scan *s;
	char ports[32];
	int fds[39];
	uint16_t p0 = hold_range("127.0.0.1", fds, 39);

	for (int k = 0; k < 3; k++) {
		fills[k] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		(void)connect(fills[k], &bh.u.sa, bh.len);
	}
	/* 39 refused ports and one that times out. */
	snprintf(ports, sizeof(ports), "%u-%u,%u", p0, p0 + 38,
		 tk_addr_port(&bh));
	tk_scan_opts_init(&o);
	o.inflight = 3;
	o.timeout_ms = 100;
	s = scan_run(&x, &o, &a, ports, 10000);
	cr_assert_eq(x.n, 40);
	cr_assert_leq(x.max_inflight, 3);
	for (size_t i = 0; i < x.n; i++)
		for (size_t j = i + 1; j < x.n; j++)
			cr_assert_neq(x.port[i], x.port[j]);
	cr_assert_eq(x.state[find(&x, tk_addr_port(&bh))], TK_SCAN_FILTERED);
	tk_scan_free(s);
	tk_loop_free(x.loop);
	release_range(fds, 39);
	for (int k = 0; k < 3; k++)
		close(fills[k]);
	close(bfd);
}

/* Freed mid-scan: what is in flight is closed, nothing leaks. */
Test(scan, free_while_in_flight)
{
	struct tk_addr bh, a = t_addr("127.0.0.1", 0);
	int bfd = t_raw_listen("127.0.0.1", 0, &bh), fills[3];
	struct scan_rec x = { 0 };
	struct tk_scan *s;
	char ports[16];

	for (int k = 0; k < 3; k++) {
		fills[k] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		(void)connect(fills[k], &bh.u.sa, bh.len);
	}
	snprintf(ports, sizeof(ports), "%u", tk_addr_port(&bh));
	x.loop = t_loop_new();
	cr_assert_eq(tk_portset_parse(ports, &ps, NULL, 0), 0);
	cr_assert_eq(tk_scan_new(x.loop, NULL, &a, 1, &ps, rec_result, rec_done,
				 &x, &s),
		     0);
	cr_assert_eq(tk_scan_start(s), 0);
	t_run_for(x.loop, 50);
	tk_scan_free(s);
	cr_assert_eq(tk_loop_close(x.loop), 0, "the scan left a handle");
	cr_assert(!x.done);
	for (int k = 0; k < 3; k++)
		close(fills[k]);
	close(bfd);
}

Test(scan, bad_arguments)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr a = t_addr("127.0.0.1", 0);
	struct tk_scan_opts o;
	struct tk_scan *s = (void *)1;
	struct tk_portset empty = { 0 };

	cr_assert_eq(tk_portset_parse("80", &ps, NULL, 0), 0);
	cr_assert_eq(tk_scan_new(loop, NULL, &a, 0, &ps, rec_result, rec_done,
				 NULL, &s),
		     -EINVAL);
	cr_assert_null(s);
	cr_assert_eq(tk_scan_new(loop, NULL, &a, 1, &empty, rec_result,
				 rec_done, NULL, &s),
		     -EINVAL);
	tk_scan_opts_init(&o);
	o.inflight = TK_SCAN_MAX_INFLIGHT + 1;
	cr_assert_eq(tk_scan_new(loop, &o, &a, 1, &ps, rec_result, rec_done,
				 NULL, &s),
		     -EINVAL);
	tk_loop_free(loop);
}

/*
 * On loopback a refused probe's socket connects again for the next port:
 * refused and open ports mixed, one at a time, each still told right.
 */
Test(scan, refused_socket_reused_across_ports)
{
	struct tk_addr a = t_addr("127.0.0.1", 0), ref[3], lst[2];
	int rfd[3], lfd[2], n = 0;
	struct tk_scan_opts o;
	struct scan_rec x;
	struct tk_scan *s;
	char ports[128];

	for (int k = 0; k < 3; k++)
		rfd[k] = t_refusing_port("127.0.0.1", &ref[k]);
	for (int k = 0; k < 2; k++)
		lfd[k] = t_raw_listen("127.0.0.1", 16, &lst[k]);
	n = snprintf(ports, sizeof(ports), "%u,%u,%u,%u,%u",
		     tk_addr_port(&ref[0]), tk_addr_port(&lst[0]),
		     tk_addr_port(&ref[1]), tk_addr_port(&lst[1]),
		     tk_addr_port(&ref[2]));
	cr_assert_lt(n, (int)sizeof(ports));
	tk_scan_opts_init(&o);
	o.inflight = 1;
	s = scan_run(&x, &o, &a, ports, 5000);
	cr_assert_eq(x.n, 5);
	for (int k = 0; k < 3; k++)
		cr_assert_eq(x.state[find(&x, tk_addr_port(&ref[k]))],
			     TK_SCAN_CLOSED, "refused port %d", k);
	for (int k = 0; k < 2; k++)
		cr_assert_eq(x.state[find(&x, tk_addr_port(&lst[k]))],
			     TK_SCAN_OPEN, "listener %d", k);
	tk_scan_free(s);
	cr_assert_eq(tk_loop_close(x.loop), 0);
	for (int k = 0; k < 3; k++)
		close(rfd[k]);
	for (int k = 0; k < 2; k++)
		close(lfd[k]);
}

struct tick {
	struct scan_rec *x;
	size_t seen; /* results when the timer first ran; SIZE_MAX: never */
};

static void
on_tick(struct tk_timer *t, void *arg)
{
	struct tick *k = arg;

	(void)t;
	if (k->seen == SIZE_MAX)
		k->seen = k->x->n;
}

/*
 * On loopback the answers come within connect(): a scan of thousands of
 * closed ports must still give the loop back (a progress timer runs
 * before the end), not run whole inside one callback.
 */
Test(scan, loop_gets_turns_during_a_loopback_scan)
{
	static struct scan_rec x;
	static int fds[6000];
	struct tk_addr a = t_addr("127.0.0.2", 0);
	struct tick k = { &x, SIZE_MAX };
	uint16_t p0 = hold_range("127.0.0.2", fds, 6000);
	struct tk_timer *t;
	struct tk_scan *s;
	char ports[32];

	memset(&x, 0, sizeof(x));
	x.loop = t_loop_new();
	snprintf(ports, sizeof(ports), "%u-%u", p0, p0 + 5999);
	cr_assert_eq(tk_portset_parse(ports, &ps, NULL, 0), 0);
	cr_assert_eq(tk_scan_new(x.loop, NULL, &a, 1, &ps, count_result,
				 rec_done, &x, &s),
		     0);
	t = t_timer_new(x.loop, on_tick, &k);
	cr_assert_eq(tk_scan_start(s), 0);
	cr_assert_eq(tk_timer_start(t, 0, 1), 0);
	RUN_UNTIL(x.loop, 30000, x.done);
	cr_assert_eq(x.n, 6000);
	cr_assert_lt(k.seen, 6000, "the timer first ran after all %zu results",
		     k.seen);
	tk_timer_free(t);
	tk_scan_free(s);
	tk_loop_free(x.loop);
	release_range(fds, 6000);
}
