/* poll.c: the portable backend: poll(2), a self-pipe for wakeups and
 * another for signals (POSIX only: what a BSD or macOS port starts from). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"

/* Slots 0 and 1 are the wake and signal pipes; fds from 2 on. */
#define SLOT_WAKE 0
#define SLOT_SIG  1
#define SLOT_FDS  2

struct tk__backend {
	struct pollfd *pfds; /* what poll() watches */
	uint64_t *data;	     /* the data of each slot */
	size_t n, cap;
	int *slot_of; /* fd -> slot + 1; 0: not watched */
	size_t nslot_of;
	size_t next; /* first fd slot to report: fairness past max */
	int wake[2];
	int sig[2];
	sigset_t taken;	    /* signals whose handler writes to sig[1] */
	sigset_t unblocked; /* of those, the ones that were not blocked */
	struct sigaction old[NSIG];
};

/*
 * A signal handler knows no loop: each signal taken writes its number to
 * the pipe of the backend that took it (one at a time per signal).
 */
static _Atomic int sig_pipe[NSIG];
static pthread_once_t sig_once = PTHREAD_ONCE_INIT;

static void
sig_init(void)
{
	for (int i = 0; i < NSIG; i++)
		atomic_store(&sig_pipe[i], -1);
}

static void
on_signal(int signo)
{
	int save = errno;
	int fd = signo > 0 && signo < NSIG ? atomic_load(&sig_pipe[signo]) : -1;
	unsigned char c = (unsigned char)signo;

	/* A full pipe drops the byte: that signal is pending already. */
	if (fd >= 0)
		(void)!write(fd, &c, 1);
	errno = save;
}

const char *
tk__backend_name(void)
{
	return "poll";
}

static int
nonblocking_pipe(int fds[2])
{
	if (pipe(fds) < 0)
		return -errno;
	for (int i = 0; i < 2; i++)
		if (fcntl(fds[i], F_SETFL, O_NONBLOCK) < 0 ||
		    fcntl(fds[i], F_SETFD, FD_CLOEXEC) < 0) {
			int err = -errno;

			close(fds[0]);
			close(fds[1]);
			return err;
		}
	return 0;
}

static int
grow(struct tk__backend *b, int fd)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct pollfd *p = realloc(b->pfds, cap * sizeof(*p));
		uint64_t *d;

		if (p == NULL)
			return -ENOMEM;
		b->pfds = p;
		d = realloc(b->data, cap * sizeof(*d));
		if (d == NULL)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	if ((size_t)fd >= b->nslot_of) {
		size_t n = b->nslot_of ? b->nslot_of : 64;
		int *s;

		while (n <= (size_t)fd)
			n *= 2;
		s = realloc(b->slot_of, n * sizeof(*s));
		if (s == NULL)
			return -ENOMEM;
		memset(s + b->nslot_of, 0, (n - b->nslot_of) * sizeof(*s));
		b->slot_of = s;
		b->nslot_of = n;
	}
	return 0;
}

static short
to_poll(unsigned events)
{
	short e = 0;

	if (events & TK_READABLE)
		e |= POLLIN;
	if (events & TK_WRITABLE)
		e |= POLLOUT;
	return e;
}

static int
slot_add(struct tk__backend *b, int fd, short events, uint64_t data)
{
	int err = grow(b, fd);

	if (err < 0)
		return err;
	b->pfds[b->n] = (struct pollfd){ .fd = fd, .events = events };
	b->data[b->n] = data;
	b->slot_of[fd] = (int)++b->n;
	return 0;
}

int
tk__backend_new(struct tk__backend **out)
{
	struct tk__backend *b = calloc(1, sizeof(*b));
	int err;

	if (b == NULL)
		return -ENOMEM;
	pthread_once(&sig_once, sig_init);
	sigemptyset(&b->taken);
	sigemptyset(&b->unblocked);
	if ((err = nonblocking_pipe(b->wake)) < 0)
		goto out_free;
	if ((err = nonblocking_pipe(b->sig)) < 0)
		goto out_close_wake;
	if ((err = slot_add(b, b->wake[0], POLLIN, TK__EV_WAKE)) < 0 ||
	    (err = slot_add(b, b->sig[0], POLLIN, 0)) < 0)
		goto out_close_sig;
	*out = b;
	return 0;

out_close_sig:
	close(b->sig[0]);
	close(b->sig[1]);
out_close_wake:
	close(b->wake[0]);
	close(b->wake[1]);
out_free:
	free(b->pfds);
	free(b->data);
	free(b->slot_of);
	free(b);
	return err;
}

void
tk__backend_free(struct tk__backend *b)
{
	if (b == NULL)
		return;
	for (int signo = 1; signo < NSIG; signo++) {
		struct sigaction now;

		if (!sigismember(&b->taken, signo))
			continue;
		/* A handler running from now on writes nowhere. */
		atomic_store(&sig_pipe[signo], -1);
		/*
		 * The earlier action comes back, unless the program has set
		 * one of its own since (say SIG_IGN, to outlive a late
		 * signal): that one stays.
		 */
		if (sigaction(signo, NULL, &now) == 0 &&
		    now.sa_handler == on_signal)
			sigaction(signo, &b->old[signo], NULL);
	}
	/* A signal blocked before we took it stays blocked. */
	pthread_sigmask(SIG_BLOCK, &b->unblocked, NULL);
	for (int i = 0; i < 2; i++) {
		close(b->wake[i]);
		close(b->sig[i]);
	}
	free(b->pfds);
	free(b->data);
	free(b->slot_of);
	free(b);
}

int
tk__backend_add(struct tk__backend *b, int fd, unsigned events, uint64_t data)
{
	if ((size_t)fd < b->nslot_of && b->slot_of[fd] != 0)
		return -EEXIST;
	/* As epoll_ctl() would: a closed fd is refused now, not later. */
	if (fcntl(fd, F_GETFD) < 0)
		return -errno;
	return slot_add(b, fd, to_poll(events), data);
}

int
tk__backend_mod(struct tk__backend *b, int fd, unsigned events, uint64_t data)
{
	size_t i;

	if ((size_t)fd >= b->nslot_of || b->slot_of[fd] == 0)
		return -ENOENT;
	i = (size_t)b->slot_of[fd] - 1;
	b->pfds[i].events = to_poll(events);
	b->data[i] = data;
	return 0;
}

int
tk__backend_del(struct tk__backend *b, int fd)
{
	size_t i, last;

	if (fd < 0 || (size_t)fd >= b->nslot_of || b->slot_of[fd] == 0)
		return -ENOENT;
	i = (size_t)b->slot_of[fd] - 1;
	last = b->n - 1;
	/* The last slot fills the hole. */
	if (i != last) {
		b->pfds[i] = b->pfds[last];
		b->data[i] = b->data[last];
		b->slot_of[b->pfds[i].fd] = (int)i + 1;
	}
	b->slot_of[fd] = 0;
	b->n--;
	return 0;
}

void
tk__backend_forget(struct tk__backend *b, int fd)
{
	/* poll() has no kernel set: forgetting is deleting. */
	(void)tk__backend_del(b, fd);
}

void
tk__backend_wake(struct tk__backend *b)
{
	char c = 1;

	/* EAGAIN: the pipe is full, so a wakeup is pending already. */
	(void)!write(b->wake[1], &c, 1);
}

int
tk__backend_signal(struct tk__backend *b, int signo)
{
	struct sigaction sa;
	sigset_t one, old;
	int err;

	if (sigismember(&b->taken, signo) == 1)
		return 0;
	/* One loop per signal: the handler knows one pipe. */
	if (atomic_load(&sig_pipe[signo]) != -1)
		return -EBUSY;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigfillset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	atomic_store(&sig_pipe[signo], b->sig[1]);
	if (sigaction(signo, &sa, &b->old[signo]) < 0) {
		err = -errno;
		atomic_store(&sig_pipe[signo], -1);
		return err;
	}
	sigaddset(&b->taken, signo);
	/*
	 * The handler must be able to run in this thread (others may block
	 * every signal, as a server's workers do).
	 */
	sigemptyset(&one);
	sigaddset(&one, signo);
	err = pthread_sigmask(SIG_UNBLOCK, &one, &old);
	if (err != 0)
		return -err;
	if (sigismember(&old, signo))
		sigaddset(&b->unblocked, signo);
	return 0;
}

/* Read up to room signal numbers from the pipe into evs. */
static int
read_signals(struct tk__backend *b, struct tk__event *evs, int room)
{
	unsigned char buf[64];
	int out = 0;

	while (out < room) {
		size_t want = (size_t)(room - out) < sizeof(buf)
				      ? (size_t)(room - out)
				      : sizeof(buf);
		ssize_t n = read(b->sig[0], buf, want);

		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			evs[out++] = (struct tk__event){ .data = TK__EV_SIGNAL(
								 buf[i]) };
	}
	return out;
}

int
tk__backend_wait(struct tk__backend *b, struct tk__event *evs, int max,
		 int timeout_ms)
{
	int n, out = 0;
	size_t nfd, start;

	n = poll(b->pfds, (nfds_t)b->n, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		return 0;
	if (b->pfds[SLOT_WAKE].revents) {
		char buf[64];

		while (read(b->wake[0], buf, sizeof(buf)) > 0)
			;
		evs[out++] = (struct tk__event){ .data = TK__EV_WAKE };
	}
	if (b->pfds[SLOT_SIG].revents && out < max)
		out += read_signals(b, evs + out, max - out);
	/* Start where the last round stopped, so no fd waits for ever. */
	nfd = b->n - SLOT_FDS;
	start = nfd ? b->next % nfd : 0;
	for (size_t k = 0; k < nfd && out < max; k++) {
		size_t i = SLOT_FDS + (start + k) % nfd;
		short r = b->pfds[i].revents;
		unsigned ev = 0;

		if (r == 0)
			continue;
		if (r & POLLIN)
			ev |= TK_READABLE;
		if (r & POLLOUT)
			ev |= TK_WRITABLE;
		if (r & (POLLERR | POLLHUP | POLLNVAL))
			ev |= TK_HANGUP;
		/* A peer's FIN: poll() says POLLHUP only when both are shut. */
		if ((r & POLLHUP) && (b->pfds[i].events & POLLIN))
			ev |= TK_READABLE;
		evs[out++] =
			(struct tk__event){ .data = b->data[i], .events = ev };
		b->next = start + k + 1;
	}
	return out;
}
