/* ref_splice.c: the reference echo server, moving bytes kernel to kernel. */

/*
 * The bench suite's answer to "would splice(2) make bulk echo faster?":
 * ref_echo.c with the copy through user space replaced by two splices,
 * socket -> pipe -> the same socket, so the echoed bytes never leave the
 * kernel.  One thread, level-triggered epoll; each connection has its own
 * pipe (two descriptors, made at accept), and the pipe is what waits when
 * the kernel refuses output: until it is empty the connection is not read.
 *
 * usage: bench_ref_splice [PORT [PIPE_BYTES]]
 * PORT 0 or nothing: any free port; PIPE_BYTES: F_SETPIPE_SZ (default: the
 * system's, 64 KiB).  Prints "listening on 127.0.0.1:PORT" once it
 * accepts, then runs until killed.  Loopback only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, pipe2, splice, F_SETPIPE_SZ */
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ref_listen.h"

#define NEVENTS	    256
#define SPLICE_MAX  (1u << 20)
#define SPLICE_FLAG (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)

struct conn {
	int fd;
	int pipe[2];  /* [0] read end, [1] write end */
	size_t piped; /* bytes in the pipe, not yet sent */
};

static int ep;
static int pipe_bytes;

static void
drop(struct conn *c)
{
	close(c->pipe[0]);
	close(c->pipe[1]);
	close(c->fd); /* also removes it from the epoll set */
	free(c);
}

static void
set_events(struct conn *c, unsigned events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Send what the pipe holds.  0: all sent; 1: EAGAIN; -1: c must go. */
static int
flush(struct conn *c)
{
	while (c->piped > 0) {
		ssize_t w = splice(c->pipe[0], NULL, c->fd, NULL, c->piped,
				   SPLICE_FLAG);

		if (w > 0) {
			c->piped -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		return w < 0 && errno == EAGAIN ? 1 : -1;
	}
	return 0;
}

static void
on_writable(struct conn *c)
{
	int r = flush(c);

	if (r < 0)
		drop(c);
	else if (r == 0)
		set_events(c, EPOLLIN);
}

static void
on_readable(struct conn *c)
{
	ssize_t n =
		splice(c->fd, NULL, c->pipe[1], NULL, SPLICE_MAX, SPLICE_FLAG);
	int r;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop(c);
		return;
	}
	c->piped = (size_t)n;
	r = flush(c);
	if (r < 0)
		drop(c);
	else if (r > 0)
		set_events(c, EPOLLOUT);
}

static void
on_accept(int lfd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int fd, one = 1;

	for (;;) {
		struct conn *c;

		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or EMFILE: try at the next event */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		if (pipe2(c->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
			close(fd);
			free(c);
			continue;
		}
		if (pipe_bytes > 0)
			(void)fcntl(c->pipe[0], F_SETPIPE_SZ, pipe_bytes);
		ev.data.ptr = c;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			drop(c);
	}
}

int
main(int argc, char **argv)
{
	struct epoll_event evs[NEVENTS], ev = { .events = EPOLLIN };
	int lfd = ref_listen(argc, argv, "bench_ref_splice"), i, n;

	pipe_bytes = argc > 2 ? atoi(argv[2]) : 0;
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.ptr = NULL; /* the listener */
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
		perror("bench_ref_splice: epoll");
		return 1;
	}
	for (;;) {
		n = epoll_wait(ep, evs, NEVENTS, -1);
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c == NULL)
				on_accept(lfd);
			else if (c->piped > 0)
				on_writable(c);
			else
				on_readable(c);
		}
	}
}
