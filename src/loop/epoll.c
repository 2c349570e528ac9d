/* epoll.c: the Linux backend: epoll, an eventfd for wakeups and a signalfd
 * for signals. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "backend.h"

/* The signalfd's own tag: never handed to the loop. */
#define EV_SIGFD (TK__EV_WAKE - 1)
#define RAW_MAX	 256

struct tk__backend {
	int epfd;
	int wakefd;	    /* eventfd */
	int sigfd;	    /* signalfd, -1 until a signal is taken */
	sigset_t taken;	    /* signals delivered through sigfd */
	sigset_t unblocked; /* of those, the ones that were not blocked */
};

const char *
tk__backend_name(void)
{
	return "epoll";
}

/* Hang-ups come with EPOLLRDHUP too, so a half-close is seen as readable. */
static uint32_t
to_epoll(unsigned events)
{
	uint32_t e = 0;

	if (events & TK_READABLE)
		e |= EPOLLIN | EPOLLRDHUP;
	if (events & TK_WRITABLE)
		e |= EPOLLOUT;
	return e;
}

static int
ctl(struct tk__backend *b, int op, int fd, unsigned events, uint64_t data)
{
	struct epoll_event ev = { .events = to_epoll(events),
				  .data.u64 = data };

	return epoll_ctl(b->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

int
tk__backend_new(struct tk__backend **out)
{
	struct tk__backend *b = calloc(1, sizeof(*b));
	int err;

	if (b == NULL)
		return -ENOMEM;
	b->sigfd = -1;
	sigemptyset(&b->taken);
	sigemptyset(&b->unblocked);
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (b->epfd < 0) {
		err = -errno;
		goto out_free;
	}
	b->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->wakefd < 0) {
		err = -errno;
		goto out_close_ep;
	}
	err = ctl(b, EPOLL_CTL_ADD, b->wakefd, TK_READABLE, TK__EV_WAKE);
	if (err < 0)
		goto out_close_wake;
	*out = b;
	return 0;

out_close_wake:
	close(b->wakefd);
out_close_ep:
	close(b->epfd);
out_free:
	free(b);
	return err;
}

void
tk__backend_free(struct tk__backend *b)
{
	if (b == NULL)
		return;
	if (b->sigfd >= 0) {
		close(b->sigfd);
		/* A signal blocked before we took it stays blocked. */
		pthread_sigmask(SIG_UNBLOCK, &b->unblocked, NULL);
	}
	close(b->wakefd);
	close(b->epfd);
	free(b);
}

int
tk__backend_add(struct tk__backend *b, int fd, unsigned events, uint64_t data)
{
	return ctl(b, EPOLL_CTL_ADD, fd, events, data);
}

int
tk__backend_mod(struct tk__backend *b, int fd, unsigned events, uint64_t data)
{
	return ctl(b, EPOLL_CTL_MOD, fd, events, data);
}

int
tk__backend_del(struct tk__backend *b, int fd)
{
	struct epoll_event ev = { 0 }; /* pre-2.6.9 kernels wanted non-NULL */

	return epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, &ev) < 0 ? -errno : 0;
}

void
tk__backend_forget(struct tk__backend *b, int fd)
{
	/* Closing the fd (never dup'ed) takes it out of the epoll set. */
	(void)b;
	(void)fd;
}

void
tk__backend_wake(struct tk__backend *b)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already non-zero: the loop will wake. */
	(void)!write(b->wakefd, &one, sizeof(one));
}

int
tk__backend_signal(struct tk__backend *b, int signo)
{
	sigset_t set = b->taken, one, old;
	int fd, err;

	if (sigaddset(&set, signo) < 0)
		return -errno;
	sigemptyset(&one);
	sigaddset(&one, signo);
	err = pthread_sigmask(SIG_BLOCK, &one, &old);
	if (err != 0)
		return -err;
	fd = signalfd(b->sigfd, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		if (!sigismember(&old, signo))
			pthread_sigmask(SIG_UNBLOCK, &one, NULL);
		return err;
	}
	if (b->sigfd < 0) {
		err = ctl(b, EPOLL_CTL_ADD, fd, TK_READABLE, EV_SIGFD);
		if (err < 0) {
			close(fd);
			if (!sigismember(&old, signo))
				pthread_sigmask(SIG_UNBLOCK, &one, NULL);
			return err;
		}
		b->sigfd = fd;
	}
	if (!sigismember(&b->taken, signo) && !sigismember(&old, signo))
		sigaddset(&b->unblocked, signo);
	b->taken = set;
	return 0;
}

/*
 * The backend's own fds (rare): the wakeup counter is reset and reported
 * once; pending signals are reported one by one while evs has room below
 * max (what is not read now waits for the next round).  Returns the new
 * count.
 */
static int
own_events(struct tk__backend *b, uint64_t data, struct tk__event *evs, int out,
	   int max)
{
	if (out >= max)
		return out; /* level-triggered: it comes back next round */
	if (data == TK__EV_WAKE) {
		uint64_t count;

		(void)!read(b->wakefd, &count, sizeof(count));
		evs[out].data = TK__EV_WAKE;
		evs[out].events = 0;
		return out + 1;
	}
	for (struct signalfd_siginfo si;
	     out < max &&
	     read(b->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si);
	     out++) {
		evs[out].data = TK__EV_SIGNAL(si.ssi_signo);
		evs[out].events = 0;
	}
	return out;
}

int
tk__backend_wait(struct tk__backend *b, struct tk__event *evs, int max,
		 int timeout_ms)
{
	struct epoll_event raw[RAW_MAX];
	int n, out = 0;

	n = epoll_wait(b->epfd, raw, max < RAW_MAX ? max : RAW_MAX, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		uint64_t data = raw[i].data.u64;
		uint32_t e = raw[i].events;
		unsigned ev;

		if (TK__EV_IS_OWN(data)) {
			/* Room is kept for the n - i - 1 still to come. */
			out = own_events(b, data, evs, out, max - (n - i - 1));
			continue;
		}
		ev = (e & (EPOLLIN | EPOLLRDHUP)) ? TK_READABLE : 0;
		if (e & EPOLLOUT)
			ev |= TK_WRITABLE;
		if (e & (EPOLLERR | EPOLLHUP))
			ev |= TK_HANGUP;
		evs[out].data = data;
		evs[out].events = ev;
		out++;
	}
	return out;
}
