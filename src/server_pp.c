/* server_pp.c: reading the PROXY protocol header of an accepted socket
 * before it becomes a connection, so nothing of it reaches TLS or the
 * service and nothing after it is consumed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conn_int.h"
#include "server_pp.h"

struct tk__ppwait {
	struct tk_loop *loop;
	struct tk__ppwait **list, *next, *prev;
	int fd;
	struct tk_addr peer;
	struct tk_timer *timer;
	tk__ppwait_cb cb;
	void *arg;
	size_t tag;
	size_t len; /* bytes of the header consumed so far */
	unsigned char buf[TK_PP_MAX];
};

static void
unlink_wait(struct tk__ppwait *pw)
{
	if (pw->prev != NULL)
		pw->prev->next = pw->next;
	else
		*pw->list = pw->next;
	if (pw->next != NULL)
		pw->next->prev = pw->prev;
}

static void
finish(struct tk__ppwait *pw, const struct tk_pp_header *h, int err)
{
	const struct tk_addr *peer = &pw->peer, *via = NULL;
	struct tk_addr real;

	tk_loop_unwatch(pw->loop, pw->fd);
	tk_timer_free(pw->timer);
	unlink_wait(pw);
	/* A LOCAL or UNKNOWN header keeps the connection's own address. */
	if (err == 0 && h->command == TK_PP_PROXY &&
	    (h->family == TK_PP_TCP4 || h->family == TK_PP_TCP6)) {
		real = h->src;
		peer = &real;
		via = &pw->peer;
	}
	pw->cb(pw->fd, peer, via, pw->tag, err, pw->arg);
	free(pw);
}

/*
 * Peek at what has come, and consume only the header's bytes: while the
 * parser asks for more, every byte seen is the header's (a v1 line before
 * its CRLF, a v2 header short of its length), so taking them is safe and
 * keeps the socket from staying readable with the same bytes.
 */
static void
on_readable(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	struct tk__ppwait *pw = arg;
	struct tk_pp_header h;
	size_t want = sizeof(pw->buf) - pw->len;
	ssize_t n, got;
	int r;

	(void)loop;
	(void)events;
	n = recv(fd, pw->buf + pw->len, want, MSG_PEEK);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			finish(pw, NULL, -errno);
		return;
	}
	if (n == 0) {
		finish(pw, NULL, TK_ETRUNCATED);
		return;
	}
	r = tk_pp_parse(pw->buf, pw->len + (size_t)n, &h, NULL, 0);
	if (r < 0) {
		finish(pw, NULL, r);
		return;
	}
	/* Complete: up to its end only; else all that was seen. */
	want = r > 0 ? (size_t)r - pw->len : (size_t)n;
	got = recv(fd, pw->buf + pw->len, want, 0);
	if (got != (ssize_t)want) {
		finish(pw, NULL, got < 0 ? -errno : -EIO);
		return;
	}
	pw->len += want;
	if (r > 0)
		finish(pw, &h, 0);
}

static void
on_timeout(struct tk_timer *t, void *arg)
{
	(void)t;
	finish(arg, NULL, TK_ETIMEDOUT);
}

int
tk__ppwait_start(struct tk_loop *loop, struct tk__ppwait **list, int fd,
		 const struct tk_addr *peer, uint64_t timeout_ms, size_t tag,
		 tk__ppwait_cb cb, void *arg)
{
	struct tk__ppwait *pw = malloc(sizeof(*pw));
	int err;

	if (pw == NULL)
		return -ENOMEM;
	memset(pw, 0, offsetof(struct tk__ppwait, buf));
	pw->loop = loop;
	pw->list = list;
	pw->fd = fd;
	pw->peer = *peer;
	pw->cb = cb;
	pw->arg = arg;
	pw->tag = tag;
	if ((err = tk_timer_new(loop, on_timeout, pw, &pw->timer)) < 0 ||
	    (err = tk_timer_start(pw->timer, timeout_ms, 0)) < 0 ||
	    (err = tk_loop_watch(loop, fd, TK_READABLE, on_readable, pw)) < 0) {
		tk_timer_free(pw->timer);
		free(pw);
		return err;
	}
	pw->next = *list;
	if (*list != NULL)
		(*list)->prev = pw;
	*list = pw;
	return 0;
}

void
tk__ppwait_cancel_all(struct tk__ppwait **list)
{
	while (*list != NULL)
		finish(*list, NULL, -ECANCELED);
}

void
tk__conn_give_via(struct tk_conn *c, struct tk_addr *via)
{
	c->via = via;
}

const struct tk_addr *
tk_conn_via(const struct tk_conn *c)
{
	return c->via;
}
