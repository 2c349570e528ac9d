/* broker.c: the broker and chat services: one server's clients, each one's
 * bytes or named lines fanned out to all the others. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

struct client {
	struct client *prev, *next;
	struct tk_conn *c;
	struct tk_broker *b;   /* NULL once it has left */
	bool behind;	       /* over its max_pending, not yet drained */
	bool paused;	       /* a sender held while someone is behind */
	uint64_t behind_since; /* loop time it went behind */
	char name[TK_CHAT_NAMELEN + 1];
};

struct tk_broker {
	struct tk_loop *loop; /* every client's: one thread, no locks */
	struct client *head;
	size_t count;
	size_t behind;	       /* clients behind */
	uint64_t slow_ms;      /* longest a client may stay behind */
	struct tk_timer *slow; /* cuts those behind too long */
	unsigned long next_id; /* the N of the next "user<N>" */
	char *scratch;	       /* a chat message being built */
	size_t scratch_cap;
};

static void on_slow(struct tk_timer *t, void *arg);

int
tk_broker_new(struct tk_loop *loop, const struct tk_broker_opts *opts,
	      struct tk_broker **out)
{
	struct tk_broker *b;
	int err;

	*out = NULL;
	if (loop == NULL)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	b->loop = loop;
	b->next_id = 1;
	b->slow_ms = opts != NULL && opts->slow_ms != 0
			     ? opts->slow_ms
			     : TK_BROKER_DEFAULT_SLOW_MS;
	if ((err = tk_timer_new(loop, on_slow, b, &b->slow)) < 0) {
		free(b);
		return err;
	}
	*out = b;
	return 0;
}

void
tk_broker_free(struct tk_broker *b)
{
	if (b == NULL)
		return;
	tk_timer_free(b->slow);
	free(b->scratch);
	free(b);
}

size_t
tk_broker_count(const struct tk_broker *b)
{
	return b->count;
}

static struct client *
find_name(const struct tk_broker *b, const char *name)
{
	for (struct client *cl = b->head; cl != NULL; cl = cl->next)
		if (strcmp(cl->name, name) == 0)
			return cl;
	return NULL;
}

static int
join(struct tk_conn *c, struct tk_broker *b, bool named)
{
	struct client *cl;

	/* Clients on two threads could not reach each other safely. */
	if (b == NULL || tk_conn_loop(c) != b->loop)
		return b == NULL ? -EINVAL : -EXDEV;
	cl = calloc(1, sizeof(*cl));
	if (cl == NULL)
		return -ENOMEM;
	cl->c = c;
	cl->b = b;
	/* A /nick may have taken a default name: the next free one. */
	while (named) {
		snprintf(cl->name, sizeof(cl->name), "user%lu", b->next_id++);
		if (find_name(b, cl->name) == NULL)
			break;
	}
	cl->next = b->head;
	if (b->head != NULL)
		b->head->prev = cl;
	b->head = cl;
	b->count++;
	tk_conn_set_data(c, cl);
	return 0;
}

/* Nobody is behind any more: the senders held go on. */
static void
resume_all(struct tk_broker *b)
{
	for (struct client *cl = b->head; cl != NULL; cl = cl->next)
		if (cl->paused) {
			cl->paused = false;
			tk_conn_resume(cl->c);
		}
}

static void
caught_up(struct client *cl)
{
	struct tk_broker *b = cl->b;

	if (b == NULL || !cl->behind)
		return;
	cl->behind = false;
	if (--b->behind == 0) {
		tk_timer_stop(b->slow);
		resume_all(b);
	}
}

/* Out of the set (once): nothing more is sent to it. */
static bool
leave(struct client *cl)
{
	struct tk_broker *b = cl->b;

	if (b == NULL)
		return false;
	caught_up(cl);
	if (cl->prev != NULL)
		cl->prev->next = cl->next;
	else
		b->head = cl->next;
	if (cl->next != NULL)
		cl->next->prev = cl->prev;
	cl->prev = cl->next = NULL;
	b->count--;
	cl->b = NULL;
	return true;
}

/*
 * Cut every client behind for slow_ms or more, and come back for the
 * others when their time is up.  Each cut one's close callback (after this
 * returns) counts it out and lets the senders go on.
 */
static void
on_slow(struct tk_timer *t, void *arg)
{
	struct tk_broker *b = arg;
	uint64_t now = tk_loop_now(b->loop), next = 0;

	(void)t;
	for (struct client *cl = b->head; cl != NULL; cl = cl->next) {
		if (!cl->behind || !tk_conn_is_open(cl->c))
			continue;
		if (now - cl->behind_since >= b->slow_ms)
			tk_conn_abort(cl->c, -ENOBUFS);
		else if (next == 0 || cl->behind_since + b->slow_ms < next)
			next = cl->behind_since + b->slow_ms;
	}
	if (next != 0 && tk_timer_start(b->slow, next - now, 0) < 0)
		resume_all(b); /* no clock to cut by: better fast than stuck */
}

/*
 * Queue msg for one client.  Over its max_pending it is behind: senders
 * are held (see fan_out) until it has written everything, which it must
 * do within slow_ms or be cut.  A failed write has closed the client with
 * its reason; a client already ending (its own FIN queued) takes nothing
 * more, and loses nothing it was promised.
 */
static void
send_to(struct client *dst, const char *msg, size_t n)
{
	struct tk_broker *b = dst->b;

	if (!tk_conn_is_open(dst->c))
		return;
	if (tk_conn_write(dst->c, msg, n) < 0 || dst->behind ||
	    tk_conn_pending(dst->c) <= tk_conn_max_pending(dst->c))
		return;
	dst->behind = true;
	dst->behind_since = tk_loop_now(b->loop);
	if (b->behind++ == 0 && tk_timer_start(b->slow, b->slow_ms, 0) < 0)
		tk_conn_abort(dst->c, -ENOMEM); /* no clock to cut it by */
}

/*
 * To every client of b but from (NULL: to all).  While someone is behind,
 * the sender is held after its chunk: a burst waits for a reader that is
 * a little late (bounded by one chunk per sender over max_pending), and a
 * reader that does not read holds everyone for slow_ms at most.
 */
static void
fan_out(struct tk_broker *b, struct client *from, const char *msg, size_t n)
{
	/*
	 * A cut client stays in the list until its close callback, which
	 * never runs inside this call: the walk is safe.
	 */
	for (struct client *cl = b->head; cl != NULL; cl = cl->next)
		if (cl != from)
			send_to(cl, msg, n);
	if (from != NULL && b->behind > 0 && !from->paused &&
	    tk_conn_is_open(from->c)) {
		from->paused = true;
		tk_conn_pause(from->c);
	}
}

/* All written to the kernel: a client behind has caught up. */
static void
client_drain(struct tk_conn *c, void *arg)
{
	struct client *cl = tk_conn_data(c);

	(void)arg;
	if (cl != NULL)
		caught_up(cl);
}

static int
broker_open(struct tk_conn *c, void *arg)
{
	return join(c, arg, false);
}

static void
broker_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct client *cl = tk_conn_data(c);

	(void)arg;
	if (cl == NULL || cl->b == NULL)
		return;
	if (n == TK_EOF) {
		/* Its FIN is its leaving, as with ncat --broker. */
		leave(cl);
		tk_conn_end(c);
		return;
	}
	fan_out(cl->b, cl, data, (size_t)n);
}

static void
client_close(struct tk_conn *c, int err, void *arg)
{
	struct client *cl = tk_conn_data(c);

	(void)err;
	(void)arg;
	if (cl == NULL)
		return;
	leave(cl);
	tk_conn_set_data(c, NULL);
	free(cl);
}

const struct tk_service tk_service_broker = {
	.name = "broker",
	.open = broker_open,
	.data = broker_data,
	.drain = client_drain,
	.close = client_close,
};

/* Room for n bytes in b's scratch buffer, or NULL. */
static char *
scratch(struct tk_broker *b, size_t n)
{
	if (n > b->scratch_cap) {
		char *p = realloc(b->scratch, n);

		if (p == NULL)
			return NULL;
		b->scratch = p;
		b->scratch_cap = n;
	}
	return b->scratch;
}

/* A notice to every client but from (NULL: all). */
static void __attribute__((format(printf, 3, 4)))
announce(struct tk_broker *b, struct client *from, const char *fmt, ...)
{
	char msg[2 * TK_CHAT_NAMELEN + 64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(msg))
		fan_out(b, from, msg, (size_t)n);
}

/* Tell one client (a failed write has closed it, with the reason). */
static void __attribute__((format(printf, 2, 3)))
tell(struct client *cl, const char *fmt, ...)
{
	char msg[2 * TK_CHAT_NAMELEN + 64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < sizeof(msg))
		(void)tk_conn_write(cl->c, msg, (size_t)n);
}

static int
chat_open(struct tk_conn *c, void *arg)
{
	struct client *cl;
	int err = join(c, arg, true);

	if (err < 0)
		return err;
	cl = tk_conn_data(c);
	tell(cl, "* you are %s\n", cl->name);
	announce(cl->b, cl, "* %s joined\n", cl->name);
	return 0;
}

/* Why name cannot be taken, or NULL. */
static const char *
bad_name(const struct tk_broker *b, const char *name, size_t len)
{
	if (len == 0)
		return "a name is 1 to 32 bytes";
	if (len > TK_CHAT_NAMELEN)
		return "longer than 32 bytes";
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (ch < 0x20 || ch == 0x7f)
			return "control characters are not allowed";
		if (ch == ' ')
			return "spaces are not allowed";
	}
	if (find_name(b, name) != NULL)
		return "in use";
	return NULL;
}

static void
nick(struct client *cl, const char *arg, size_t len)
{
	char name[TK_CHAT_NAMELEN + 1], old[TK_CHAT_NAMELEN + 1];
	const char *why;

	/* "/nick  NAME" as "/nick NAME": the name is the rest. */
	while (len > 0 && arg[0] == ' ') {
		arg++;
		len--;
	}
	if (len > TK_CHAT_NAMELEN) {
		tell(cl, "error: bad name: %s\n", "longer than 32 bytes");
		return;
	}
	memcpy(name, arg, len);
	name[len] = '\0';
	if (strlen(name) != len) {
		tell(cl, "error: bad name: %s\n",
		     "control characters are not allowed");
		return;
	}
	if ((why = bad_name(cl->b, name, len)) != NULL) {
		tell(cl, "error: bad name: %s\n", why);
		return;
	}
	memcpy(old, cl->name, sizeof(old));
	memcpy(cl->name, name, len + 1);
	tell(cl, "* you are now %s\n", cl->name);
	announce(cl->b, cl, "* %s is now %s\n", old, cl->name);
}

/* "<NAME> line\n" to the others, control characters as ^X. */
static void
say(struct client *cl, const char *line, size_t len)
{
	size_t nlen = strlen(cl->name), k = 0;
	char *msg = scratch(cl->b, nlen + 4 + 2 * len);

	if (msg == NULL) {
		tk_conn_close(cl->c, -ENOMEM);
		return;
	}
	msg[k++] = '<';
	memcpy(msg + k, cl->name, nlen);
	k += nlen;
	msg[k++] = '>';
	msg[k++] = ' ';
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];

		/* A peer's escape sequences must not drive others' screens. */
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
			msg[k++] = '^';
			msg[k++] = (char)(ch ^ 0x40);
		} else {
			msg[k++] = (char)ch;
		}
	}
	msg[k++] = '\n';
	fan_out(cl->b, cl, msg, k);
}

static void
chat_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct client *cl = tk_conn_data(c);
	size_t len = (size_t)n;

	(void)arg;
	if (cl == NULL || cl->b == NULL)
		return;
	if (n == TK_EOF) {
		struct tk_broker *b = cl->b;

		/* A chat client's FIN is its leaving. */
		leave(cl);
		announce(b, NULL, "* %s left\n", cl->name);
		tk_conn_end(c);
		return;
	}
	if (len > 0 && data[len - 1] == '\n')
		len--;
	if (len > 0 && data[len - 1] == '\r')
		len--;
	if (len >= 5 && memcmp(data, "/nick", 5) == 0 &&
	    (len == 5 || data[5] == ' ')) {
		nick(cl, data + 5, len - 5);
		return;
	}
	say(cl, data, len);
}

static void
chat_close(struct tk_conn *c, int err, void *arg)
{
	struct client *cl = tk_conn_data(c);
	struct tk_broker *b = cl != NULL ? cl->b : NULL;

	if (cl != NULL && leave(cl))
		announce(b, NULL, "* %s left\n", cl->name);
	client_close(c, err, arg);
}

const struct tk_service tk_service_chat = {
	.name = "chat",
	.flags = TK_SERVICE_TEXT | TK_SERVICE_LINE_FRAMING,
	.open = chat_open,
	.data = chat_data,
	.drain = client_drain,
	.close = chat_close,
};
