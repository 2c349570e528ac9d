/* loop_epoll.c: the epoll backend behind the loop's small polling interface. */
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "internal.h"

const char *
tk_backend_name(void)
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

int
tk__poll_open(void)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int
ctl(int pfd, int op, int fd, unsigned events, uint64_t data)
{
	struct epoll_event ev = { .events = to_epoll(events),
				  .data.u64 = data };

	return epoll_ctl(pfd, op, fd, &ev) < 0 ? -errno : 0;
}

int
tk__poll_add(int pfd, int fd, unsigned events, uint64_t data)
{
	return ctl(pfd, EPOLL_CTL_ADD, fd, events, data);
}

int
tk__poll_mod(int pfd, int fd, unsigned events, uint64_t data)
{
	return ctl(pfd, EPOLL_CTL_MOD, fd, events, data);
}

int
tk__poll_del(int pfd, int fd)
{
	struct epoll_event ev = { 0 }; /* pre-2.6.9 kernels wanted non-NULL */

	return epoll_ctl(pfd, EPOLL_CTL_DEL, fd, &ev) < 0 ? -errno : 0;
}

int
tk__poll_wait(int pfd, struct tk__event *evs, int max, int timeout_ms)
{
	struct epoll_event raw[256];
	int n;

	if (max > 256)
		max = 256;
	n = epoll_wait(pfd, raw, max, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		uint32_t e = raw[i].events;
		unsigned out = 0;

		if (e & (EPOLLIN | EPOLLRDHUP))
			out |= TK_READABLE;
		if (e & EPOLLOUT)
			out |= TK_WRITABLE;
		if (e & (EPOLLERR | EPOLLHUP))
			out |= TK_HANGUP;
		evs[i].data = raw[i].data.u64;
		evs[i].events = out;
	}
	return n;
}
