/* tcpkit/listenfd.h: serving on listening sockets made elsewhere (systemd
 * socket activation, a hand-over from a previous process). */
#ifndef TCPKIT_LISTENFD_H
#define TCPKIT_LISTENFD_H

#include <stddef.h>

#include "tcpkit.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * Serve on fd, a socket already bound and listening (TCP or UNIX
 * stream), as tk_server_listen() would on its address.  The socket is
 * made non-blocking and close-on-exec, and the server's socket options
 * (no_delay, sndbuf, keepalive) are set on it.  Every worker watches
 * it and accepts what it can, as with UNIX sockets; a UNIX socket's
 * file is never removed (the server did not make it).  tk_server_addr()
 * tells its address (getsockname).
 * Returns 0 and the server owns fd (closed by drain, stop or free), or
 * -EBUSY (started), -ENOSPC (too many listeners), -ENOTSOCK, -EINVAL
 * (not a listening stream socket), -EMFILE..., and fd is still the
 * caller's.
 */
int tk_server_listen_fd(struct tk_server *s, int fd);

/*
 * The listening sockets under s, each once, in fds[0..max) (the count is
 * returned even if more than max): for TCP with several workers, one per
 * worker and address (an SO_REUSEPORT group); a shared socket once.  A
 * process taking over from this one needs them all: a socket it does
 * not take is closed by the drain with the connections waiting in it.
 * The fds stay the server's.  The owner's thread, before
 * tk_server_drain() or tk_server_stop().
 */
size_t tk_server_listener_fds(const struct tk_server *s, int *fds, size_t max);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_LISTENFD_H */
