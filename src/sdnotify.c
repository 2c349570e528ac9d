/* sdnotify.c: systemd's socket activation and notification protocols,
 * spoken directly (no libsystemd; see tcpkit/systemd.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define SD_FIRST_FD 3 /* SD_LISTEN_FDS_START */

/*
 * A decimal number in text, all of it (no sign, no spaces: the variables
 * are written by a manager, not typed), up to max.  0 or -EINVAL.
 */
static int
parse_u64(const char *text, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (text == NULL || *text == '\0')
		return -EINVAL;
	for (; *text != '\0'; text++) {
		if (*text < '0' || *text > '9')
			return -EINVAL;
		if (v > (max - (uint64_t)(*text - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*text - '0');
	}
	*out = v;
	return 0;
}

/* Is a PID variable, when set, this process's?  1, 0, or -EINVAL. */
static int
pid_is_mine(const char *text)
{
	uint64_t pid;

	if (parse_u64(text, INT_MAX, &pid) < 0)
		return -EINVAL;
	return (pid_t)pid == getpid();
}

/* Copy LISTEN_FDNAMES's names into out[0..n): exactly n, each fitting. */
static int
take_names(const char *names, struct tk_sd_socket *out, size_t n)
{
	size_t i = 0;

	for (const char *p = names;; i++) {
		const char *end = strchr(p, ':');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		if (i >= n || len > TK_SD_NAME_MAX)
			return TK_EFDNAMES;
		memcpy(out[i].name, p, len);
		out[i].name[len] = '\0';
		if (end == NULL)
			break;
		p = end + 1;
	}
	return i + 1 == n ? 0 : TK_EFDNAMES;
}

static int
listen_fds(struct tk_sd_socket *out, size_t max)
{
	const char *names = getenv("LISTEN_FDNAMES");
	uint64_t n;
	int mine, err;

	if (getenv("LISTEN_PID") == NULL)
		return 0;
	mine = pid_is_mine(getenv("LISTEN_PID"));
	if (mine < 0)
		return TK_ELISTENFDS;
	if (mine == 0)
		return 0; /* our parent's, passed on by mistake */
	if (parse_u64(getenv("LISTEN_FDS"), INT_MAX - SD_FIRST_FD, &n) < 0)
		return TK_ELISTENFDS;
	if (n > max)
		return TK_ETOOBIG;
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		out[i].fd = SD_FIRST_FD + (int)i;
		strcpy(out[i].name,
		       "unknown"); /* as sd_listen_fds_with_names */
	}
	if (names != NULL && (err = take_names(names, out, n)) < 0)
		return err;
	for (size_t i = 0; i < n; i++) {
		int flags = fcntl(out[i].fd, F_GETFD);

		if (flags < 0 ||
		    fcntl(out[i].fd, F_SETFD, flags | FD_CLOEXEC) < 0)
			return -errno;
	}
	return (int)n;
}

int
tk_sd_listen_fds(struct tk_sd_socket *out, size_t max)
{
	int n = listen_fds(out, max);

	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return n;
}

int
tk_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len;
	socklen_t alen;
	ssize_t n;
	int fd, err = 0;

	if (path == NULL || *path == '\0')
		return 0;
	/* vsock: (a manager in a VM's host) is not spoken here. */
	if (path[0] != '/' && path[0] != '@')
		return -EAFNOSUPPORT;
	len = strlen(path);
	if (len > sizeof(sun.sun_path) - (path[0] == '/'))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, len);
	if (path[0] == '@')
		sun.sun_path[0] = '\0'; /* the abstract namespace */
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
			   (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Never wait on the manager: a full queue is its problem, said. */
	n = sendto(fd, state, strlen(state), MSG_DONTWAIT | MSG_NOSIGNAL,
		   (struct sockaddr *)&sun, alen);
	if (n < 0)
		err = -errno;
	close(fd);
	return err < 0 ? err : 1;
}

int
tk_sd_notify_reloading(void)
{
	struct timespec ts;
	char state[64];

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return -errno;
	snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull +
			 (unsigned long long)ts.tv_nsec / 1000ull);
	return tk_sd_notify(state);
}

int
tk_sd_watchdog(uint64_t *usec)
{
	const char *pid = getenv("WATCHDOG_PID");
	int mine;

	*usec = 0;
	if (getenv("WATCHDOG_USEC") == NULL)
		return 0;
	if (pid != NULL && (mine = pid_is_mine(pid)) <= 0)
		return mine;
	if (parse_u64(getenv("WATCHDOG_USEC"), UINT64_MAX, usec) < 0 ||
	    *usec == 0) {
		*usec = 0;
		return -EINVAL;
	}
	return 1;
}
