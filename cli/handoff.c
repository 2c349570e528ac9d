/* handoff.c: --handoff PATH: the running process passes its listening
 * sockets to its successor over a UNIX socket (SCM_RIGHTS), then drains. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "handoff.h"
#include "tcpkit/handoff.h"
#include "tcpkit/listenfd.h"

/*
 * The conversation, one SOCK_SEQPACKET record each way at a time:
 *   successor: "tcpkit-handoff 1 get\n"
 *   running:   "tcpkit-handoff 1 pid=PID fds=N\n" and an address a line,
 *              with the N sockets (SCM_RIGHTS); --metrics's sockets come
 *              last, their lines "metrics ADDR"
 *   successor: "tcpkit-handoff 1 go\n"   (serving on them now)
 *   running:   "tcpkit-handoff 1 bye\n"  (draining)
 * A successor that closes instead of "go" leaves the running one serving.
 */
#define HANDOFF_VERSION	   1
#define HANDOFF_MAX_FDS	   64
#define HANDOFF_MAX_MSG	   (HANDOFF_MAX_FDS * 64 + 64)
#define HANDOFF_TIMEOUT_MS 5000u
/* The running side waits longer for "go": the successor starts serving. */
#define HANDOFF_GO_MS (2 * HANDOFF_TIMEOUT_MS)
/*
 * After "go", accepts stop, and connections accepted a moment before get
 * this long for their first bytes before the drain would end them idle.
 */
#define HANDOFF_GRACE_MS 250u
#define MSG_GET		 "tcpkit-handoff 1 get\n"
#define MSG_GO		 "tcpkit-handoff 1 go\n"
#define MSG_BYE		 "tcpkit-handoff 1 bye\n"

struct handoff {
	const char *cmd;
	const char *path;
	/* The successor's side: the predecessor and what it sent. */
	int ctl;
	long old_pid;
	int fds[HANDOFF_MAX_FDS];
	struct tk_addr addrs[HANDOFF_MAX_FDS];
	size_t nfds;
	int mfds[HANDOFF_MAX_FDS]; /* --metrics's, apart from the data's */
	size_t nmfds;
	/* The running side: answering at path. */
	struct tk_loop *loop;
	struct tk_server *srv;
	struct tk_server *metrics; /* handed over too, paused at "go" */
	int lfd;
	int peer; /* the conversation going on, or -1 */
	long peer_pid;
	bool sent; /* the sockets went to peer: "go" is next */
	bool handed;
	struct tk_timer *deadline; /* for "go"; once handed, the grace */
	dev_t dev;		   /* PATH's file, removed only if ours */
	ino_t ino;
	bool own_path;
	void (*on_go)(void *arg);
	void *arg;
};

int
handoff_check_path(const char *cmd, const char *path)
{
	/* Room for the temporary name: PATH.new.PID */
	if (path[0] == '\0' ||
	    strlen(path) + 20 >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return cli_usage(cmd, "--handoff: PATH must be 1 to %zu bytes",
				 sizeof(((struct sockaddr_un *)0)->sun_path) -
					 21);
	return 0;
}

static void
set_unix(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", path);
}

/*
 * The other end is this user; or root, who may take over anyone's
 * sockets (serving side: as_server), or we are root (successor side).
 */
static int
peer_allowed(int fd, bool as_server, long *pid, unsigned *uid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	*pid = (long)uc.pid;
	*uid = (unsigned)uc.uid;
	if (uc.uid == geteuid() || (as_server ? uc.uid == 0 : geteuid() == 0))
		return 0;
	return -EPERM;
}

static void
close_fds(struct handoff *h)
{
	for (size_t i = 0; i < h->nfds; i++)
		if (h->fds[i] >= 0)
			close(h->fds[i]);
	for (size_t i = 0; i < h->nmfds; i++)
		if (h->mfds[i] >= 0)
			close(h->mfds[i]);
	h->nfds = h->nmfds = 0;
}

/*
 * The predecessor's answer: its header and sockets.  0, or an exit code
 * after printing why.
 */
static int
receive(struct handoff *h)
{
	char buf[HANDOFF_MAX_MSG + 1], *line, *save = NULL;
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(int) * HANDOFF_MAX_FDS)];
	} cbuf;
	struct iovec iov = { buf, sizeof(buf) - 1 };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf.space,
			    .msg_controllen = sizeof(cbuf.space) };
	unsigned version = 0, count = 0;
	long pid = 0;
	ssize_t n;

	n = recvmsg(h->ctl, &m, MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		cli_error("handoff", h->path, "no answer within %us",
			  HANDOFF_TIMEOUT_MS / 1000);
		return CLI_EXIT_TIMEOUT;
	}
	if (n < 0)
		return cli_fail("handoff", h->path, -errno);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL;
	     c = CMSG_NXTHDR(&m, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && h->nfds < HANDOFF_MAX_FDS; i++)
			memcpy(&h->fds[h->nfds++],
			       CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	if (n == 0) {
		cli_error("handoff", h->path,
			  "the running process refused (see its log)");
		return CLI_EXIT_UNAVAILABLE;
	}
	buf[n] = '\0';
	if ((m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
	    sscanf(buf, "tcpkit-handoff %u pid=%ld fds=%u\n", &version, &pid,
		   &count) != 3 ||
	    version != HANDOFF_VERSION || count != h->nfds || count == 0) {
		cli_error("handoff", h->path,
			  "not an answer of handoff version %d (too long, "
			  "another version, or sockets missing)",
			  HANDOFF_VERSION);
		return CLI_EXIT_PROTOCOL;
	}
	h->old_pid = pid;
	/* Each socket's own address, and the header must say the same. */
	line = strtok_r(buf, "\n", &save);
	for (size_t i = 0, got = h->nfds; i < got; i++) {
		char where[TK_ADDRSTRLEN];
		struct tk_addr a = { .len = sizeof(a.u) };
		int fd = h->fds[i];
		bool metrics;

		line = strtok_r(NULL, "\n", &save);
		metrics = line != NULL && strncmp(line, "metrics ", 8) == 0;
		if (metrics)
			line += 8;
		if (getsockname(fd, &a.u.sa, &a.len) < 0 || line == NULL ||
		    strcmp(line, tk_addr_format(&a, where, sizeof(where))) !=
			    0) {
			cli_error("handoff", h->path,
				  "socket %zu is not the address announced",
				  i + 1);
			return CLI_EXIT_PROTOCOL;
		}
		/* Sorted apart, in place: data sockets first, in order. */
		h->fds[i] = -1;
		if (metrics) {
			h->mfds[h->nmfds++] = fd;
		} else {
			h->addrs[i - h->nmfds] = a;
			h->fds[i - h->nmfds] = fd;
		}
	}
	h->nfds -= h->nmfds;
	if (h->nfds == 0) {
		cli_error("handoff", h->path,
			  "only metrics sockets were handed over");
		return CLI_EXIT_PROTOCOL;
	}
	return 0;
}

int
handoff_open(const char *cmd, const char *path, struct handoff **out)
{
	struct handoff *h = calloc(1, sizeof(*h));
	struct timeval tv = { HANDOFF_TIMEOUT_MS / 1000, 0 };
	struct sockaddr_un sun;
	struct stat sb;
	unsigned uid;
	int rc;

	if (h == NULL)
		return cli_fail(cmd, "", -ENOMEM);
	h->cmd = cmd;
	h->path = path;
	h->ctl = h->lfd = h->peer = -1;
	*out = h;
	if (lstat(path, &sb) < 0) {
		if (errno == ENOENT)
			return 0; /* the first one: listen as usual */
		cli_error("handoff", path, "%s", strerror(errno));
		return CLI_EXIT_CANTCREAT;
	}
	if (!S_ISSOCK(sb.st_mode)) {
		cli_error("handoff", path,
			  "not a socket: the file is left alone; choose "
			  "another path");
		return CLI_EXIT_CANTCREAT;
	}
	h->ctl = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (h->ctl < 0)
		return cli_fail("handoff", path, -errno);
	/* Every step of the conversation is bounded. */
	(void)setsockopt(h->ctl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(h->ctl, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	set_unix(&sun, path);
	if (connect(h->ctl, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (errno != ECONNREFUSED)
			return cli_fail("handoff", path, -errno);
		/* Left by a process that is gone: replaced at start. */
		cli_log("handoff", "path", path,
			"handoff: nobody answers at %s (a stale socket); "
			"listening anew",
			path);
		close(h->ctl);
		h->ctl = -1;
		return 0;
	}
	if ((rc = peer_allowed(h->ctl, false, &h->old_pid, &uid)) < 0) {
		if (rc == -EPERM) {
			cli_error("handoff", path,
				  "the process answering (pid %ld) is uid %u, "
				  "not this user",
				  h->old_pid, uid);
			return CLI_EXIT_NOPERM;
		}
		return cli_fail("handoff", path, rc);
	}
	if (send(h->ctl, MSG_GET, strlen(MSG_GET), MSG_NOSIGNAL) < 0)
		return cli_fail("handoff", path, -errno);
	return receive(h);
}

size_t
handoff_count(const struct handoff *h)
{
	return h != NULL ? h->nfds : 0;
}

int *
handoff_metrics_fds(struct handoff *h, size_t *n)
{
	*n = h != NULL ? h->nmfds : 0;
	return h != NULL ? h->mfds : NULL;
}

void
handoff_also(struct handoff *h, struct tk_server *metrics)
{
	if (h != NULL)
		h->metrics = metrics;
}

/* got's IP is one of l's (and its port w's, unless any). */
static bool
in_list(const struct tk_addr *got, const struct tk_addrlist *l, uint16_t port)
{
	char a[TK_ADDRSTRLEN], b[TK_ADDRSTRLEN];

	if (port != 0 && tk_addr_port(got) != port)
		return false;
	tk_addr_format_ip(got, a, sizeof(a));
	for (size_t i = 0; i < l->count; i++)
		if (tk_addr_family(&l->addrs[i]) == tk_addr_family(got) &&
		    strcmp(tk_addr_format_ip(&l->addrs[i], b, sizeof(b)), a) ==
			    0)
			return true;
	return false;
}

/*
 * Every socket received on an address w asks for, and every host w names
 * (one of them when any_of; ::1 of the loopback default may be missing,
 * as it is on a system without IPv6).  0, or an exit code after printing
 * what differs.
 */
static int
check_addrs(struct handoff *h, const struct handoff_want *w)
{
	static const char *const loopback[] = { "127.0.0.1", "::1" };
	const char *const *hosts = w->nhosts > 0 ? w->hosts : loopback;
	size_t n = w->nhosts > 0 ? w->nhosts : 2, matched = 0;
	struct tk_addrlist *l[16] = { NULL };
	bool hit[16] = { false };
	char where[TK_ADDRSTRLEN];
	int rc = 0, err;

	if (n > 16)
		n = 16;
	for (size_t i = 0; i < n; i++) {
		char host[TK_HOSTLEN];
		size_t len = strlen(hosts[i]);

		/* "[v6]" as -H takes it. */
		if (len > 2 && len < sizeof(host) && hosts[i][0] == '[' &&
		    hosts[i][len - 1] == ']')
			snprintf(host, sizeof(host), "%.*s", (int)len - 2,
				 hosts[i] + 1);
		else
			snprintf(host, sizeof(host), "%s", hosts[i]);
		if ((err = tk_resolve(host, NULL, AF_UNSPEC, TK_RESOLVE_PASSIVE,
				      &l[i])) < 0) {
			rc = cli_fail(h->cmd, hosts[i], err);
			goto out;
		}
	}
	for (size_t k = 0; k < h->nfds; k++) {
		bool found = false;

		for (size_t i = 0; i < n; i++)
			if (in_list(&h->addrs[k], l[i], w->port))
				found = hit[i] = true;
		if (!found) {
			cli_error("handoff", h->path,
				  "pid %ld listens on %s, which this command "
				  "line does not; it goes on serving",
				  h->old_pid,
				  tk_addr_format(&h->addrs[k], where,
						 sizeof(where)));
			rc = CLI_EXIT_USAGE;
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		matched += hit[i];
		if (hit[i] || w->any_of || (w->nhosts == 0 && i == 1))
			continue;
		cli_error("handoff", h->path,
			  "pid %ld does not listen on %s port %u, which this "
			  "command line asks for; it goes on serving",
			  h->old_pid, hosts[i], w->port);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (matched == 0) {
		cli_error("handoff", h->path,
			  "pid %ld listens on none of this command line's "
			  "addresses; it goes on serving",
			  h->old_pid);
		rc = CLI_EXIT_USAGE;
	}
out:
	for (size_t i = 0; i < n; i++)
		tk_addrlist_free(l[i]);
	return rc;
}

int
handoff_adopt(struct handoff *h, struct tk_server *srv,
	      const struct handoff_want *w)
{
	int rc = check_addrs(h, w), err;

	for (size_t i = 0; rc == 0 && i < h->nfds; i++) {
		if ((err = tk_server_listen_fd(srv, h->fds[i])) == -ENOSPC) {
			cli_error("handoff", h->path,
				  "pid %ld hands over %zu sockets, more than a "
				  "server takes; it goes on serving (fewer -w "
				  "there)",
				  h->old_pid, h->nfds);
			rc = CLI_EXIT_USAGE;
		} else if (err < 0) {
			rc = cli_fail("handoff", h->path, err);
		} else {
			h->fds[i] = -1; /* the server's now */
		}
	}
	if (rc != 0)
		return rc;
	cli_log("handoff", NULL, NULL,
		"handoff: took %zu listening socket%s from pid %ld at %s",
		h->nfds, CLI_PLURAL(h->nfds), h->old_pid, h->path);
	return 0;
}

static void
end_peer(struct handoff *h, const char *why)
{
	if (why != NULL)
		cli_log("handoff", NULL, NULL, "handoff: pid %ld %s",
			h->peer_pid, why);
	tk_timer_stop(h->deadline);
	tk_loop_unwatch(h->loop, h->peer);
	close(h->peer);
	h->peer = -1;
	h->sent = false;
}

/* The listening sockets to the successor, with the header. */
static int
send_fds(struct handoff *h)
{
	char buf[HANDOFF_MAX_MSG], where[TK_ADDRSTRLEN];
	int fds[HANDOFF_MAX_FDS];
	union {
		struct cmsghdr align;
		char space[CMSG_SPACE(sizeof(int) * HANDOFF_MAX_FDS)];
	} cbuf;
	size_t n = tk_server_listener_fds(h->srv, fds, HANDOFF_MAX_FDS), len;
	size_t nm = h->metrics == NULL || n >= HANDOFF_MAX_FDS
			    ? 0
			    : tk_server_listener_fds(h->metrics, fds + n,
						     HANDOFF_MAX_FDS - n);
	struct iovec iov = { buf, 0 };
	struct msghdr m = { .msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf.space };
	struct cmsghdr *c;

	if (n == 0 || n + nm > HANDOFF_MAX_FDS)
		return -E2BIG;
	len = (size_t)snprintf(buf, sizeof(buf),
			       "tcpkit-handoff %d pid=%ld fds=%zu\n",
			       HANDOFF_VERSION, (long)getpid(), n + nm);
	for (size_t i = 0; i < n + nm; i++) {
		struct tk_addr a = { .len = sizeof(a.u) };

		if (getsockname(fds[i], &a.u.sa, &a.len) < 0)
			return -errno;
		len += (size_t)snprintf(
			buf + len, sizeof(buf) - len, "%s%s\n",
			i >= n ? "metrics " : "",
			tk_addr_format(&a, where, sizeof(where)));
		if (len >= sizeof(buf))
			return -E2BIG;
	}
	iov.iov_len = len;
	memset(cbuf.space, 0, sizeof(cbuf.space));
	m.msg_controllen = CMSG_SPACE(sizeof(int) * (n + nm));
	c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * (n + nm));
	memcpy(CMSG_DATA(c), fds, sizeof(int) * (n + nm));
	if (sendmsg(h->peer, &m, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return -errno;
	cli_log("handoff", NULL, NULL,
		"handoff: sent %zu listening socket%s to pid %ld; serving "
		"until it takes over",
		n, CLI_PLURAL(n), h->peer_pid);
	return 0;
}

static void
on_peer(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	struct handoff *h = arg;
	char buf[64];
	ssize_t n;
	int err;

	(void)loop;
	(void)events;
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		end_peer(h, h->sent ? "went away before taking over; still "
				      "serving"
				    : NULL);
		return;
	}
	buf[n] = '\0';
	if (!h->sent && strcmp(buf, MSG_GET) == 0) {
		if ((err = send_fds(h)) < 0) {
			cli_log("handoff", NULL, NULL,
				"handoff: cannot send the sockets to pid %ld: "
				"%s",
				h->peer_pid, tk_strerror(err));
			end_peer(h, NULL);
			return;
		}
		h->sent = true;
		return;
	}
	if (h->sent && strcmp(buf, MSG_GO) == 0) {
		(void)send(fd, MSG_BYE, strlen(MSG_BYE),
			   MSG_NOSIGNAL | MSG_DONTWAIT);
		end_peer(h, "took over the listening sockets: handed over, "
			    "draining");
		h->handed = true;
		/* Scrapes go to the successor now (it has the sockets). */
		if (h->metrics != NULL)
			(void)tk_server_pause(h->metrics);
		/* Cannot pause: drain at once, as on SIGTERM. */
		if (tk_server_pause(h->srv) < 0 ||
		    tk_timer_start(h->deadline, HANDOFF_GRACE_MS, 0) < 0)
			h->on_go(h->arg);
		return;
	}
	end_peer(h, "sent what handoff does not know; closed, still serving");
}

static void
on_deadline(struct tk_timer *t, void *arg)
{
	struct handoff *h = arg;

	(void)t;
	if (h->handed)
		h->on_go(h->arg); /* the grace is over: drain */
	else
		end_peer(h, "said nothing in time; closed, still serving");
}

static void
on_accept(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	struct handoff *h = arg;
	long pid;
	unsigned uid;
	int c, err;

	(void)events;
	c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (c < 0)
		return;
	if ((err = peer_allowed(c, true, &pid, &uid)) < 0) {
		cli_log("handoff", NULL, NULL,
			"handoff: refused a control client (pid %ld, uid %u): "
			"%s",
			pid, uid,
			err == -EPERM ? "not this user" : tk_strerror(err));
		close(c);
		return;
	}
	if (h->peer >= 0 || h->handed) {
		cli_log("handoff", NULL, NULL,
			"handoff: refused pid %ld: pid %ld is taking over", pid,
			h->peer_pid);
		close(c);
		return;
	}
	if (tk_loop_watch(loop, c, TK_READABLE, on_peer, h) < 0 ||
	    tk_timer_start(h->deadline, HANDOFF_GO_MS, 0) < 0) {
		tk_loop_unwatch(loop, c);
		close(c);
		return;
	}
	h->peer = c;
	h->peer_pid = pid;
}

/* Answer at PATH: a temporary name renamed over it, never without one. */
static int
take_path(struct handoff *h)
{
	struct sockaddr_un sun;
	char tmp[sizeof(sun.sun_path)];
	struct stat sb;
	int err;

	snprintf(tmp, sizeof(tmp), "%s.new.%ld", h->path, (long)getpid());
	set_unix(&sun, tmp);
	h->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
			0);
	if (h->lfd < 0)
		return -errno;
	if (bind(h->lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return -errno;
	if (chmod(tmp, 0600) < 0 || listen(h->lfd, 4) < 0 ||
	    rename(tmp, h->path) < 0) {
		err = -errno;
		unlink(tmp);
		return err;
	}
	if (stat(h->path, &sb) == 0) {
		h->dev = sb.st_dev;
		h->ino = sb.st_ino;
		h->own_path = true;
	}
	if ((err = tk_timer_new(h->loop, on_deadline, h, &h->deadline)) < 0)
		return err;
	return tk_loop_watch(h->loop, h->lfd, TK_READABLE, on_accept, h);
}

/* "go" to the predecessor, and its "bye" (it drains now). */
static void
say_go(struct handoff *h)
{
	char buf[64];
	ssize_t n = -1;

	if (send(h->ctl, MSG_GO, strlen(MSG_GO), MSG_NOSIGNAL) >= 0)
		n = recv(h->ctl, buf, sizeof(buf) - 1, 0);
	if (n > 0 && (buf[n] = '\0', strcmp(buf, MSG_BYE) == 0))
		cli_log("handoff", NULL, NULL,
			"handoff: pid %ld is draining; serving in its place",
			h->old_pid);
	else
		cli_error("warning", h->path,
			  "pid %ld did not confirm the hand-over: it may "
			  "still be serving too",
			  h->old_pid);
	close(h->ctl);
	h->ctl = -1;
}

int
handoff_start(struct handoff *h, struct tk_loop *loop, struct tk_server *srv,
	      void (*on_go)(void *arg), void *arg)
{
	int err;

	h->loop = loop;
	h->srv = srv;
	h->on_go = on_go;
	h->arg = arg;
	if (h->ctl >= 0 && h->nfds > 0)
		say_go(h);
	if ((err = take_path(h)) == 0) {
		cli_log("handoff", "path", h->path,
			"handoff: answering at %s for the next restart",
			h->path);
		return 0;
	}
	cli_error(h->nfds > 0 ? "warning" : "handoff", h->path,
		  "cannot answer here for the next restart: %s",
		  tk_strerror(err));
	/* Serving on handed-over sockets already: go on without. */
	return h->nfds > 0 ? 0 : CLI_EXIT_CANTCREAT;
}

void
handoff_stop(struct handoff *h)
{
	struct stat sb;

	if (h == NULL || h->loop == NULL)
		return;
	if (h->peer >= 0)
		end_peer(h, h->sent ? "was too late: draining" : NULL);
	if (h->deadline != NULL)
		tk_timer_stop(h->deadline);
	if (h->lfd >= 0) {
		tk_loop_unwatch(h->loop, h->lfd);
		close(h->lfd);
		h->lfd = -1;
	}
	/* Handed over, PATH is the successor's (or soon will be). */
	if (!h->handed && h->own_path && stat(h->path, &sb) == 0 &&
	    sb.st_dev == h->dev && sb.st_ino == h->ino)
		unlink(h->path);
	h->own_path = false;
}

void
handoff_free(struct handoff *h)
{
	if (h == NULL)
		return;
	handoff_stop(h);
	close_fds(h);
	if (h->ctl >= 0)
		close(h->ctl);
	tk_timer_free(h->deadline);
	free(h);
}
