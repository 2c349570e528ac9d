/* tcpkit/systemd.h: running under systemd without libsystemd: the sockets
 * it passes (socket activation) and the notifications it reads (sd_notify
 * protocol). */
#ifndef TCPKIT_SYSTEMD_H
#define TCPKIT_SYSTEMD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/*
 * The documented protocols, spoken directly (sd_listen_fds(3),
 * sd_notify(3)): they are stable, systemd calls them the interface, and
 * linking libsystemd for them would bring its dependencies into every
 * program using tcpkit (and there is none for musl).
 */

#define TK_SD_NAME_MAX 255 /* a LISTEN_FDNAMES name's bytes, at most */

/* A socket systemd passed: the descriptor and its name. */
struct tk_sd_socket {
	int fd;
	/* FileDescriptorName=, or "unknown" without LISTEN_FDNAMES. */
	char name[TK_SD_NAME_MAX + 1];
};

/*
 * The sockets passed to THIS process (LISTEN_PID equal to getpid();
 * LISTEN_FDS of them from descriptor 3; LISTEN_FDNAMES their names,
 * colon-separated) in out[0..max).  The variables are unset in every case
 * (a program this one starts must not take the sockets for its own; not
 * thread-safe: call it early, before threads) and the descriptors made
 * close-on-exec.
 * Returns how many (0: none for this process, LISTEN_PID unset or another
 * process's), or TK_ELISTENFDS (LISTEN_PID or LISTEN_FDS not a number),
 * TK_ETOOBIG (more than max), TK_EFDNAMES (not one name per socket, or a
 * name too long), -EBADF (a descriptor not open).
 */
int tk_sd_listen_fds(struct tk_sd_socket *out, size_t max);

/*
 * Send state, one or more "VAR=VALUE" lines (READY=1, STOPPING=1,
 * WATCHDOG=1, STATUS=text...), to the service manager's NOTIFY_SOCKET
 * (a path, or "@name" in the abstract namespace) in one datagram, without
 * blocking.  Returns 1 when sent, 0 when NOTIFY_SOCKET is unset (not run
 * by a manager: nothing to do), or -EAFNOSUPPORT (NOTIFY_SOCKET neither a
 * path nor "@name"), -ENAMETOOLONG, -EAGAIN (the manager's queue is full),
 * -ECONNREFUSED...  Thread-safe.
 */
int tk_sd_notify(const char *state);

/*
 * "RELOADING=1" with the MONOTONIC_USEC the manager needs to tell this
 * reload from the next: tk_sd_notify()'s results.  Send READY=1 when the
 * reload is done.
 */
int tk_sd_notify_reloading(void);

/*
 * The watchdog's interval: *usec from WATCHDOG_USEC when it is meant for
 * this process (WATCHDOG_PID unset or getpid()).  The service must send
 * WATCHDOG=1 more often than that; half of it is the usual period.
 * Returns 1 (*usec set), 0 (no watchdog: *usec 0), or -EINVAL when
 * WATCHDOG_USEC (or WATCHDOG_PID) is not a number, or WATCHDOG_USEC is 0.
 */
int tk_sd_watchdog(uint64_t *usec);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* TCPKIT_SYSTEMD_H */
