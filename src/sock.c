/* sock.c: socket helpers: listening and connecting sockets, options, addresses.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

void
tk__close(int fd)
{
	if (fd >= 0)
		TK_SAVE_ERRNO(close(fd));
}

static int
set_int(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof(v)) < 0 ? -errno : 0;
}

int
tk__sock_set_nodelay(int fd, bool on)
{
	return set_int(fd, IPPROTO_TCP, TCP_NODELAY, on);
}

int
tk__sock_set_sndbuf(int fd, size_t bytes)
{
	return set_int(fd, SOL_SOCKET, SO_SNDBUF,
		       bytes > INT32_MAX / 2 ? INT32_MAX / 2 : (int)bytes);
}

int
tk__sock_conn_opts(int fd, bool no_delay, size_t sndbuf, size_t max_pending)
{
	int err;

	if (no_delay && (err = tk__sock_set_nodelay(fd, true)) < 0)
		return err;
	if (sndbuf != 0)
		return tk__sock_set_sndbuf(fd, sndbuf);
	return set_int(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT,
		       max_pending > INT32_MAX ? INT32_MAX : (int)max_pending);
}

int
tk__sock_keepalive(int fd, const struct tk_conn_opts *opts)
{
	int err;

	if (!opts->keepalive)
		return 0;
	if ((err = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1)) < 0)
		return err;
	if (opts->keepalive_idle != 0 &&
	    (err = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE,
			   (int)opts->keepalive_idle)) < 0)
		return err;
	if (opts->keepalive_intvl != 0 &&
	    (err = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL,
			   (int)opts->keepalive_intvl)) < 0)
		return err;
	if (opts->keepalive_cnt != 0)
		return set_int(fd, IPPROTO_TCP, TCP_KEEPCNT,
			       (int)opts->keepalive_cnt);
	return 0;
}

int
tk__sock_listen(const struct tk_addr *addr, int backlog, bool v6only,
		enum tk__reuseport reuseport)
{
	int fd, err;

	fd = socket(addr->u.sa.sa_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	/* Restart at once even while old connections sit in TIME_WAIT. */
	if ((err = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1)) < 0)
		goto out_close;
	if (reuseport == TK__REUSEPORT_JOIN &&
	    (err = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)) < 0)
		goto out_close;
	if (addr->u.sa.sa_family == AF_INET6 &&
	    (err = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only)) < 0)
		goto out_close;
	if (bind(fd, &addr->u.sa, addr->len) < 0) {
		err = -errno;
		goto out_close;
	}
	/*
	 * The first socket of a group binds without SO_REUSEPORT, so a port
	 * another program holds (even with SO_REUSEPORT) is "in use" rather
	 * than silently shared; the flag set now lets our workers join.
	 */
	if (reuseport == TK__REUSEPORT_FIRST &&
	    (err = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)) < 0)
		goto out_close;
	if (listen(fd, backlog) < 0) {
		err = -errno;
		goto out_close;
	}
	return fd;

out_close:
	tk__close(fd);
	return err;
}

int
tk__sock_connect(const struct tk_addr *addr, const struct tk_addr *source)
{
	int fd, err;

	if (source != NULL && source->u.sa.sa_family != addr->u.sa.sa_family)
		return -EAFNOSUPPORT;
	fd = socket(addr->u.sa.sa_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return -errno;
	if (source != NULL) {
		/*
		 * With port 0, let connect() pick the port with the 4-tuple
		 * in view, so many clients can share one source address.
		 */
		if (tk_addr_port(source) == 0)
			(void)set_int(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT,
				      1);
		/*
		 * A chosen port: reusable while an earlier run's connection
		 * sits in TIME_WAIT; a socket using it now still refuses.
		 */
		else
			(void)set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
		if (bind(fd, &source->u.sa, source->len) < 0) {
			err = -errno;
			goto out_close;
		}
	}
	if (connect(fd, &addr->u.sa, addr->len) < 0 && errno != EINPROGRESS) {
		err = -errno;
		goto out_close;
	}
	return fd;

out_close:
	tk__close(fd);
	return err;
}

int
tk__sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}

int
tk__sock_local(int fd, struct tk_addr *out)
{
	out->len = sizeof(out->u);
	return getsockname(fd, &out->u.sa, &out->len) < 0 ? -errno : 0;
}

int
tk__sock_peer(int fd, struct tk_addr *out)
{
	out->len = sizeof(out->u);
	return getpeername(fd, &out->u.sa, &out->len) < 0 ? -errno : 0;
}
