/* test_keepalive.c: the keepalive options of tk_conn_opts, read back. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

TestSuite(keepalive, .timeout = 30);

static int
get(int fd, int level, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);

	cr_assert_eq(getsockopt(fd, level, opt, &v, &len), 0);
	return v;
}

Test(keepalive, off_by_default)
{
	struct tk_conn_opts o;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(fd >= 0);
	tk_conn_opts_init(&o);
	cr_assert_not(o.keepalive);
	cr_assert_eq(tk__sock_keepalive(fd, &o), 0);
	cr_assert_eq(get(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
	close(fd);
}

Test(keepalive, every_value_set)
{
	struct tk_conn_opts o;
	int fd = socket(AF_INET6, SOCK_STREAM, 0);

	if (fd < 0)
		fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	tk_conn_opts_init(&o);
	o.keepalive = true;
	o.keepalive_idle = 42;
	o.keepalive_intvl = 7;
	o.keepalive_cnt = 5;
	cr_assert_eq(tk__sock_keepalive(fd, &o), 0);
	cr_assert_eq(get(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
	cr_assert_eq(get(fd, IPPROTO_TCP, TCP_KEEPIDLE), 42);
	cr_assert_eq(get(fd, IPPROTO_TCP, TCP_KEEPINTVL), 7);
	cr_assert_eq(get(fd, IPPROTO_TCP, TCP_KEEPCNT), 5);
	close(fd);
}

Test(keepalive, zero_keeps_the_system_value)
{
	struct tk_conn_opts o;
	int fd = socket(AF_INET, SOCK_STREAM, 0), intvl, cnt;

	cr_assert(fd >= 0);
	intvl = get(fd, IPPROTO_TCP, TCP_KEEPINTVL);
	cnt = get(fd, IPPROTO_TCP, TCP_KEEPCNT);
	tk_conn_opts_init(&o);
	o.keepalive = true;
	o.keepalive_idle = 60;
	cr_assert_eq(tk__sock_keepalive(fd, &o), 0);
	cr_assert_eq(get(fd, IPPROTO_TCP, TCP_KEEPIDLE), 60);
	cr_assert_eq(get(fd, IPPROTO_TCP, TCP_KEEPINTVL), intvl);
	cr_assert_eq(get(fd, IPPROTO_TCP, TCP_KEEPCNT), cnt);
	close(fd);
}

Test(keepalive, out_of_range_is_an_error)
{
	struct tk_conn_opts o;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(fd >= 0);
	tk_conn_opts_init(&o);
	o.keepalive = true;
	o.keepalive_cnt = 1000; /* Linux: at most 127 */
	cr_assert_eq(tk__sock_keepalive(fd, &o), -EINVAL);
	close(fd);
}
