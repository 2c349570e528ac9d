/* test_sock.c: the socket helpers: listening (with SO_REUSEPORT groups),
 * connecting, options. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

TestSuite(sock, .timeout = 20);

static struct tk_addr
loopback(const char *ip, uint16_t port)
{
	struct tk_addr a;

	cr_assert_eq(tk_addr_from_ip(ip, port, &a), 0);
	return a;
}

/* Wait until fd is writable (a non-blocking connect finished). */
static void
wait_writable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	cr_assert_eq(poll(&p, 1, 5000), 1);
}

Test(sock, listen_connect_and_addresses)
{
	struct tk_addr any = loopback("127.0.0.1", 0), local, peer;
	int lfd, cfd, afd, one = 0;
	socklen_t len = sizeof(one);

	lfd = tk__sock_listen(&any, 16, false, TK__REUSEPORT_NONE);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(tk__sock_local(lfd, &local), 0);
	cr_assert_neq(tk_addr_port(&local), 0);
	/* Listening sockets restart at once: SO_REUSEADDR is on. */
	cr_assert_eq(getsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, &len), 0);
	cr_expect_eq(one, 1);

	cfd = tk__sock_connect(&local, NULL);
	cr_assert_geq(cfd, 0);
	wait_writable(cfd);
	cr_expect_eq(tk__sock_error(cfd), 0);
	cr_assert_eq(tk__sock_peer(cfd, &peer), 0);
	cr_expect(tk_addr_equal(&peer, &local));
	afd = accept(lfd, NULL, NULL);
	cr_assert_geq(afd, 0);

	cr_expect_eq(tk__sock_set_nodelay(cfd, true), 0);
	len = sizeof(one);
	cr_assert_eq(getsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, &len), 0);
	cr_expect_eq(one, 1);
	cr_expect_eq(tk__sock_set_sndbuf(cfd, 16384), 0);
	close(afd);
	close(cfd);
	close(lfd);
}

Test(sock, refused_connect_reports_through_so_error)
{
	struct tk_addr any = loopback("127.0.0.1", 0), local;
	int lfd, cfd, err;

	/* A port that was just free: bind, learn it, close. */
	lfd = tk__sock_listen(&any, 1, false, TK__REUSEPORT_NONE);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(tk__sock_local(lfd, &local), 0);
	close(lfd);
	cfd = tk__sock_connect(&local, NULL);
	if (cfd < 0) {
		cr_expect_eq(cfd, -ECONNREFUSED);
		return;
	}
	wait_writable(cfd);
	err = tk__sock_error(cfd);
	cr_expect_eq(err, -ECONNREFUSED, "got %s", tk_strerror(err));
	close(cfd);
}

Test(sock, source_family_must_match)
{
	struct tk_addr v6 = loopback("::1", 9), src = loopback("127.0.0.1", 0);

	cr_expect_eq(tk__sock_connect(&v6, &src), -EAFNOSUPPORT);
}

Test(sock, port_in_use_even_for_a_reuseport_holder)
{
	struct tk_addr any = loopback("127.0.0.1", 0), local;
	int holder, fd, one = 1;

	/* Another program holds the port with SO_REUSEPORT. */
	holder = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(holder, 0);
	setsockopt(holder, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	cr_assert_eq(bind(holder, &any.u.sa, any.len), 0);
	cr_assert_eq(listen(holder, 1), 0);
	cr_assert_eq(tk__sock_local(holder, &local), 0);

	/* Our group's first socket binds alone: the port is in use. */
	fd = tk__sock_listen(&local, 16, false, TK__REUSEPORT_FIRST);
	cr_expect_eq(fd, -EADDRINUSE);
	close(holder);
}

Test(sock, reuseport_group_shares_one_port)
{
	struct tk_addr any = loopback("127.0.0.1", 0), local;
	int first, second, third;

	first = tk__sock_listen(&any, 16, false, TK__REUSEPORT_FIRST);
	cr_assert_geq(first, 0);
	cr_assert_eq(tk__sock_local(first, &local), 0);
	second = tk__sock_listen(&local, 16, false, TK__REUSEPORT_JOIN);
	cr_expect_geq(second, 0, "join failed: %s", tk_strerror(second));
	/* A socket that does not ask to join is still refused. */
	third = tk__sock_listen(&local, 16, false, TK__REUSEPORT_NONE);
	cr_expect_eq(third, -EADDRINUSE);
	close(first);
	if (second >= 0)
		close(second);
}

Test(sock, v6only_controls_dual_stack)
{
	struct tk_addr any6 = loopback("::", 0), local, v4;
	int lfd, cfd;

	lfd = tk__sock_listen(&any6, 16, false, TK__REUSEPORT_NONE);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(tk__sock_local(lfd, &local), 0);
	v4 = loopback("127.0.0.1", tk_addr_port(&local));
	cfd = tk__sock_connect(&v4, NULL);
	cr_assert_geq(cfd, 0);
	wait_writable(cfd);
	cr_expect_eq(tk__sock_error(cfd), 0, "dual-stack :: refused IPv4");
	close(cfd);
	close(lfd);

	lfd = tk__sock_listen(&any6, 16, true, TK__REUSEPORT_NONE);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(tk__sock_local(lfd, &local), 0);
	v4 = loopback("127.0.0.1", tk_addr_port(&local));
	cfd = tk__sock_connect(&v4, NULL);
	if (cfd >= 0) {
		wait_writable(cfd);
		cr_expect_eq(tk__sock_error(cfd), -ECONNREFUSED);
		close(cfd);
	}
	close(lfd);
}
