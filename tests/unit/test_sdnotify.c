/* test_sdnotify.c: systemd's protocols: sockets passed by LISTEN_FDS, and
 * notifications to a NOTIFY_SOCKET this test owns. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tcpkit.h"

TestSuite(sd_listen, .timeout = 30);
TestSuite(sd_notify, .timeout = 30);
TestSuite(sd_watchdog, .timeout = 30);

static void
set_pid_env(const char *name, pid_t pid)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", (long)pid);
	cr_assert_eq(setenv(name, buf, 1), 0);
}

static void
assert_env_cleared(void)
{
	cr_assert_null(getenv("LISTEN_PID"));
	cr_assert_null(getenv("LISTEN_FDS"));
	cr_assert_null(getenv("LISTEN_FDNAMES"));
}

/*
 * Sockets at descriptors 3, 4...: where a manager puts them.  The runner
 * may use those numbers: what was there is kept aside and put back.
 */
struct at3 {
	int saved[4];
	size_t n;
};

static void
at3_put(struct at3 *a, size_t n, bool open_them)
{
	a->n = n;
	for (size_t i = 0; i < n; i++) {
		int fd = 3 + (int)i;

		a->saved[i] = fcntl(fd, F_DUPFD_CLOEXEC, 100);
		if (open_them) {
			int s = socket(AF_INET, SOCK_STREAM, 0);

			cr_assert_geq(s, 0);
			cr_assert_eq(dup2(s, fd), fd);
			close(s);
		} else {
			close(fd);
		}
	}
}

static void
at3_restore(struct at3 *a)
{
	for (size_t i = 0; i < a->n; i++) {
		close(3 + (int)i);
		if (a->saved[i] >= 0) {
			dup2(a->saved[i], 3 + (int)i);
			close(a->saved[i]);
		}
	}
}

Test(sd_listen, none_without_listen_pid)
{
	struct tk_sd_socket s[4];

	unsetenv("LISTEN_PID");
	setenv("LISTEN_FDS", "2", 1);
	cr_assert_eq(tk_sd_listen_fds(s, 4), 0);
	assert_env_cleared();
}

Test(sd_listen, another_process_sockets_are_left)
{
	struct tk_sd_socket s[4];

	set_pid_env("LISTEN_PID", getpid() + 1);
	setenv("LISTEN_FDS", "2", 1);
	setenv("LISTEN_FDNAMES", "a:b", 1);
	cr_assert_eq(tk_sd_listen_fds(s, 4), 0);
	assert_env_cleared();
}

Test(sd_listen, malformed_numbers_are_errors)
{
	static const char *bad[] = { "",   "abc", "-1",
				     "2x", " 2",  "99999999999999999999" };
	struct tk_sd_socket s[4];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set_pid_env("LISTEN_PID", getpid());
		setenv("LISTEN_FDS", bad[i], 1);
		cr_expect_eq(tk_sd_listen_fds(s, 4), TK_ELISTENFDS,
			     "LISTEN_FDS=\"%s\"", bad[i]);
		assert_env_cleared();
	}
	setenv("LISTEN_PID", "12ab", 1);
	setenv("LISTEN_FDS", "1", 1);
	cr_expect_eq(tk_sd_listen_fds(s, 4), TK_ELISTENFDS);
	cr_expect_str_eq(tk_err_name(TK_ELISTENFDS), "ELISTENFDS");
}

Test(sd_listen, more_than_max_is_too_big)
{
	struct tk_sd_socket s[2];

	set_pid_env("LISTEN_PID", getpid());
	setenv("LISTEN_FDS", "3", 1);
	cr_assert_eq(tk_sd_listen_fds(s, 2), TK_ETOOBIG);
	assert_env_cleared();
}

Test(sd_listen, names_must_match_count)
{
	static const char *bad[] = { "a", "a:b:c", "" };
	struct tk_sd_socket s[4];
	struct at3 a;
	char longname[TK_SD_NAME_MAX + 8];

	at3_put(&a, 2, true);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set_pid_env("LISTEN_PID", getpid());
		setenv("LISTEN_FDS", "2", 1);
		setenv("LISTEN_FDNAMES", bad[i], 1);
		cr_expect_eq(tk_sd_listen_fds(s, 4), TK_EFDNAMES,
			     "LISTEN_FDNAMES=\"%s\"", bad[i]);
		assert_env_cleared();
	}
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	longname[0] = ':'; /* "" then a name over TK_SD_NAME_MAX */
	set_pid_env("LISTEN_PID", getpid());
	setenv("LISTEN_FDS", "2", 1);
	setenv("LISTEN_FDNAMES", longname, 1);
	cr_expect_eq(tk_sd_listen_fds(s, 4), TK_EFDNAMES);
	at3_restore(&a);
}

Test(sd_listen, sockets_with_names_made_cloexec)
{
	struct tk_sd_socket s[4];
	struct at3 a;
	int n;

	at3_put(&a, 2, true);
	set_pid_env("LISTEN_PID", getpid());
	setenv("LISTEN_FDS", "2", 1);
	setenv("LISTEN_FDNAMES", "web:admin", 1);
	n = tk_sd_listen_fds(s, 4);
	cr_expect_eq(n, 2);
	cr_expect_eq(s[0].fd, 3);
	cr_expect_eq(s[1].fd, 4);
	cr_expect_str_eq(s[0].name, "web");
	cr_expect_str_eq(s[1].name, "admin");
	cr_expect(fcntl(3, F_GETFD) & FD_CLOEXEC);
	cr_expect(fcntl(4, F_GETFD) & FD_CLOEXEC);
	assert_env_cleared();
	at3_restore(&a);
}

Test(sd_listen, unnamed_sockets_are_unknown)
{
	struct tk_sd_socket s[1];
	struct at3 a;

	at3_put(&a, 1, true);
	set_pid_env("LISTEN_PID", getpid());
	setenv("LISTEN_FDS", "1", 1);
	cr_expect_eq(tk_sd_listen_fds(s, 1), 1);
	cr_expect_str_eq(s[0].name, "unknown");
	at3_restore(&a);
}

Test(sd_listen, a_closed_descriptor_is_ebadf)
{
	struct tk_sd_socket s[1];
	struct at3 a;

	at3_put(&a, 1, false);
	set_pid_env("LISTEN_PID", getpid());
	setenv("LISTEN_FDS", "1", 1);
	cr_expect_eq(tk_sd_listen_fds(s, 1), -EBADF);
	assert_env_cleared();
	at3_restore(&a);
}

/* The manager's side: a datagram socket at a path or an abstract name. */
struct mgr {
	int fd;
	char dir[64];
	char path[128];
};

static void
mgr_new(struct mgr *m, bool abstract)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len;
	struct timeval tv = { .tv_sec = 5 };

	m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(m->fd, 0);
	m->dir[0] = '\0';
	if (abstract) {
		snprintf(m->path, sizeof(m->path), "@tk-sdnotify-test-%ld",
			 (long)getpid());
		memcpy(sun.sun_path + 1, m->path + 1, strlen(m->path) - 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				  strlen(m->path));
	} else {
		strcpy(m->dir, "/tmp/tk-sdnotify-XXXXXX");
		cr_assert_not_null(mkdtemp(m->dir));
		snprintf(m->path, sizeof(m->path), "%s/notify", m->dir);
		strcpy(sun.sun_path, m->path);
		len = sizeof(sun);
	}
	cr_assert_eq(bind(m->fd, (struct sockaddr *)&sun, len), 0, "%s",
		     strerror(errno));
	/* A missing datagram fails the test in bounded time. */
	cr_assert_eq(
		setsockopt(m->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	cr_assert_eq(setenv("NOTIFY_SOCKET", m->path, 1), 0);
}

static void
mgr_expect(struct mgr *m, const char *want)
{
	char buf[512];
	ssize_t n = recv(m->fd, buf, sizeof(buf) - 1, 0);

	cr_assert_gt(n, 0, "no notification: %s", strerror(errno));
	buf[n] = '\0';
	cr_expect_str_eq(buf, want);
}

static void
mgr_free(struct mgr *m)
{
	close(m->fd);
	if (m->dir[0] != '\0') {
		unlink(m->path);
		rmdir(m->dir);
	}
}

Test(sd_notify, unset_is_a_no_op)
{
	unsetenv("NOTIFY_SOCKET");
	cr_expect_eq(tk_sd_notify("READY=1"), 0);
	cr_expect_eq(tk_sd_notify_reloading(), 0);
}

Test(sd_notify, to_a_path)
{
	struct mgr m;

	mgr_new(&m, false);
	cr_expect_eq(tk_sd_notify("READY=1"), 1);
	mgr_expect(&m, "READY=1");
	cr_expect_eq(tk_sd_notify("WATCHDOG=1\nSTATUS=2 open, 9 accepted"), 1);
	mgr_expect(&m, "WATCHDOG=1\nSTATUS=2 open, 9 accepted");
	mgr_free(&m);
}

Test(sd_notify, to_an_abstract_name)
{
	struct mgr m;

	mgr_new(&m, true);
	cr_expect_eq(tk_sd_notify("STOPPING=1"), 1);
	mgr_expect(&m, "STOPPING=1");
	mgr_free(&m);
}

Test(sd_notify, reloading_carries_the_monotonic_clock)
{
	struct mgr m;
	struct timespec t0, t1;
	char buf[128];
	unsigned long long us, lo, hi;
	ssize_t n;

	mgr_new(&m, false);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(tk_sd_notify_reloading(), 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	n = recv(m.fd, buf, sizeof(buf) - 1, 0);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	cr_assert_eq(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu", &us), 1,
		     "%s", buf);
	lo = (unsigned long long)t0.tv_sec * 1000000ull +
	     (unsigned long long)t0.tv_nsec / 1000;
	hi = (unsigned long long)t1.tv_sec * 1000000ull +
	     (unsigned long long)t1.tv_nsec / 1000;
	cr_expect(us >= lo && us <= hi, "%llu not in [%llu, %llu]", us, lo, hi);
	mgr_free(&m);
}

Test(sd_notify, bad_sockets_are_said)
{
	struct mgr m;
	char longpath[200];

	setenv("NOTIFY_SOCKET", "relative/notify", 1);
	cr_expect_eq(tk_sd_notify("READY=1"), -EAFNOSUPPORT);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longpath, 1);
	cr_expect_eq(tk_sd_notify("READY=1"), -ENAMETOOLONG);
	/* The manager gone: its path is left, nobody reads. */
	mgr_new(&m, false);
	close(m.fd);
	cr_expect_eq(tk_sd_notify("READY=1"), -ECONNREFUSED);
	unlink(m.path);
	rmdir(m.dir);
}

Test(sd_watchdog, interval_for_this_process_only)
{
	uint64_t us = 7;

	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	cr_expect_eq(tk_sd_watchdog(&us), 0);
	cr_expect_eq(us, 0);
	setenv("WATCHDOG_USEC", "200000", 1);
	cr_expect_eq(tk_sd_watchdog(&us), 1);
	cr_expect_eq(us, 200000);
	set_pid_env("WATCHDOG_PID", getpid());
	cr_expect_eq(tk_sd_watchdog(&us), 1);
	cr_expect_eq(us, 200000);
	set_pid_env("WATCHDOG_PID", getpid() + 1);
	cr_expect_eq(tk_sd_watchdog(&us), 0);
	cr_expect_eq(us, 0);
}

Test(sd_watchdog, malformed_is_einval)
{
	uint64_t us;

	unsetenv("WATCHDOG_PID");
	setenv("WATCHDOG_USEC", "20s", 1);
	cr_expect_eq(tk_sd_watchdog(&us), -EINVAL);
	setenv("WATCHDOG_USEC", "0", 1);
	cr_expect_eq(tk_sd_watchdog(&us), -EINVAL);
	setenv("WATCHDOG_USEC", "200000", 1);
	setenv("WATCHDOG_PID", "me", 1);
	cr_expect_eq(tk_sd_watchdog(&us), -EINVAL);
}
