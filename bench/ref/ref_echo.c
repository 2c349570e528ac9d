/* ref_echo.c: the reference epoll echo server, the least work per message. */

/*
 * The bench suite's "ceiling": one thread, level-triggered epoll, every
 * read into one static buffer and written straight back.  Only what the
 * kernel refuses (EAGAIN) is copied into a per-connection buffer; until it
 * is flushed the connection is not read (backpressure), so that buffer
 * never grows beyond one read.  An idle connection costs one pointer.
 *
 * usage: bench_ref [PORT]   (0 or nothing: any free port)
 * Prints "listening on 127.0.0.1:PORT" once it accepts, then runs until
 * killed.  Loopback only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ref_listen.h"

#define BUFSZ	(64 * 1024)
#define NEVENTS 256

/* What the kernel did not take, waiting for EPOLLOUT. */
struct pending {
	size_t off;
	size_t len;
	char data[];
};

static char buf[BUFSZ];
static struct pending **pend; /* indexed by fd */
static int npend;
static int ep;

static void
drop(int fd)
{
	if (fd < npend) {
		free(pend[fd]);
		pend[fd] = NULL;
	}
	close(fd); /* also removes it from the epoll set */
}

static int
track(int fd)
{
	struct pending **p;
	int n;

	if (fd < npend)
		return 0;
	n = npend ? npend : 1024;
	while (n <= fd)
		n *= 2;
	p = realloc(pend, (size_t)n * sizeof(*p));
	if (p == NULL)
		return -1;
	memset(p + npend, 0, (size_t)(n - npend) * sizeof(*p));
	pend = p;
	npend = n;
	return 0;
}

static void
set_events(int fd, unsigned events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };

	epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/* Write p[0..n); keep the rest on EAGAIN.  Returns -1 when fd must go. */
static int
send_back(int fd, const char *p, size_t n)
{
	struct pending *q;
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w >= 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -1;
		q = malloc(sizeof(*q) + n);
		if (q == NULL)
			return -1;
		memcpy(q->data, p, n);
		q->off = 0;
		q->len = n;
		pend[fd] = q;
		set_events(fd, EPOLLOUT);
		return 0;
	}
	return 0;
}

static void
on_writable(int fd)
{
	struct pending *q = pend[fd];
	ssize_t w;

	while (q->off < q->len) {
		w = send(fd, q->data + q->off, q->len - q->off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0) {
			drop(fd);
			return;
		}
		q->off += (size_t)w;
	}
	free(q);
	pend[fd] = NULL;
	set_events(fd, EPOLLIN);
}

static void
on_readable(int fd)
{
	ssize_t n;

	n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || send_back(fd, buf, (size_t)n) < 0)
		drop(fd);
}

static void
on_accept(int lfd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int fd, one = 1;

	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or EMFILE: try at the next event */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ev.data.fd = fd;
		if (track(fd) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			close(fd);
	}
}

int
main(int argc, char **argv)
{
	struct epoll_event evs[NEVENTS], ev = { .events = EPOLLIN };
	int lfd = ref_listen(argc, argv, "bench_ref"), i, n;

	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = lfd;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
		perror("bench_ref: epoll");
		return 1;
	}
	for (;;) {
		n = epoll_wait(ep, evs, NEVENTS, -1);
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == lfd)
				on_accept(lfd);
			else if (pend[fd] != NULL)
				on_writable(fd);
			else
				on_readable(fd);
		}
	}
}
