/* tcpkit/unix.h: UNIX stream sockets: addresses, and servers on a path. */
#ifndef TCPKIT_UNIX_H
#define TCPKIT_UNIX_H

#include <sys/types.h>

#include "tcpkit.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * A UNIX stream socket address: path[0..len) is a file name (no NUL in
 * it), or with abstract the bytes of an abstract name (Linux; no file;
 * any bytes, written "unix:@name" by tk_addr_format()).  0, TK_EBADADDR
 * (empty, or a NUL in a path) or -ENAMETOOLONG (over 107 bytes: the
 * kernel's 108 less the path's NUL or the abstract name's leading one).
 */
int tk_addr_from_unix(const char *path, size_t len, bool abstract,
		      struct tk_addr *out);

/*
 * How a server's socket file is made.  Per listener rather than in
 * struct tk_server_opts: they describe one file, and the server options
 * keep their size (and ABI).  -1 in a field: leave as it is.
 */
struct tk_unix_listen_opts {
	int mode;    /* permission bits (0 .. 07777); -1: as the umask says */
	uid_t owner; /* chown(2): root's privilege; (uid_t)-1: unchanged */
	gid_t group; /* a group of the caller's, or any as root; (gid_t)-1 */
};

/* Fill uo with "leave everything as it is". */
void tk_unix_listen_opts_init(struct tk_unix_listen_opts *uo);

/*
 * Listen on the UNIX address addr (tk_server_listen() with an AF_UNIX
 * address is this with uo NULL).  The file, if any:
 * - a socket file nobody listens on (connect() is refused: the server
 *   that made it is gone) is removed and replaced;
 * - a live one is left alone: -EADDRINUSE ("in use");
 * - a path that exists and is not a socket is never touched: -EEXIST;
 * - with a mode, owner or group, the socket is bound under a umask that
 *   lets nobody in, then given its mode and owner before listen(), so no
 *   client ever finds it wider than asked (the umask is the process's:
 *   no other thread should create files meanwhile);
 * - tk_server_free() removes it, if the path is still the file this
 *   server made (same device and inode): a newer server's stays.
 * An abstract name has no file: mode, owner and group are -EINVAL there.
 * Every worker shares the one socket (the kernel has no SO_REUSEPORT
 * balancing for UNIX sockets): each accepts from it when it can.
 * Returns 0, -EADDRINUSE, -EEXIST, -EINVAL (not AF_UNIX, a bad mode),
 * -EPERM (chown), or another -errno (-EACCES, -ENOENT: no such
 * directory...).
 */
int tk_server_listen_unix(struct tk_server *s, const struct tk_addr *addr,
			  const struct tk_unix_listen_opts *uo);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_UNIX_H */
