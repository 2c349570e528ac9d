/* test_broker.c: the broker and chat services (every client to every other). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* One timeout for every test (Criterion leaks with mixed timeouts). */
TestSuite(broker, .timeout = 60);

#define MAXC 16

/* A server running broker or chat on one loop, its closes recorded. */
struct room {
	struct tk_loop *loop;
	struct tk_broker *b;
	struct tk_server *s;
	struct tk_addr addr;
	int closes;
	int errs[64]; /* close reasons, in order */
};

static void
on_event(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
	 const struct tk_addr *peer, int err, void *arg)
{
	struct room *r = arg;

	(void)s;
	(void)c;
	(void)peer;
	if (ev == TK_SERVER_CLOSE && r->closes < 64)
		r->errs[r->closes++] = err;
}

static void
room_open(struct room *r, const struct tk_service *svc, size_t max_pending,
	  size_t max_line)
{
	struct tk_server_opts o;
	struct tk_broker_opts bo = { .slow_ms = 500 };

	memset(r, 0, sizeof(*r));
	r->loop = t_loop_new();
	cr_assert_eq(tk_broker_new(r->loop, &bo, &r->b), 0);
	tk_server_opts_init(&o);
	o.conn.max_pending = max_pending;
	o.max_line = max_line;
	o.on_event = on_event;
	o.event_arg = r;
	r->s = t_server(r->loop, "127.0.0.1", &o, svc, r->b, &r->addr);
}

static void
room_free(struct room *r)
{
	tk_server_free(r->s);
	cr_assert_eq(tk_broker_count(r->b), 0);
	tk_broker_free(r->b);
	tk_loop_free(r->loop);
}

/* Connect a peer and wait until the service has it in its set. */
static void
enter(struct room *r, struct peer *p)
{
	size_t before = tk_broker_count(r->b);

	peer_connect(p, r->loop, &r->addr);
	RUN_UNTIL(r->loop, 5000, tk_broker_count(r->b) == before + 1);
}

/* A peer whose receive buffer is small, so it fills after a few bytes. */
static void
enter_small(struct room *r, struct peer *p)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), sz = 4096;
	size_t before = tk_broker_count(r->b);

	cr_assert(fd >= 0);
	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)), 0);
	cr_assert_eq(connect(fd, &r->addr.u.sa, r->addr.len), 0);
	peer_adopt(p, r->loop, fd);
	RUN_UNTIL(r->loop, 5000, tk_broker_count(r->b) == before + 1);
}

/* Occurrences of s in what p read. */
static int
count_in(const struct peer *p, const char *s)
{
	size_t n = strlen(s);
	int k = 0;

	for (size_t i = 0; i + n <= p->in_len; i++)
		if (memcmp(p->in + i, s, n) == 0)
			k++;
	return k;
}

Test(broker, found_by_name)
{
	cr_assert_eq(tk_service_find("broker"), &tk_service_broker);
	cr_assert_eq(tk_service_find("chat"), &tk_service_chat);
}

Test(broker, fan_out_to_every_other_client_not_back)
{
	const int n = 10;
	struct room r;
	struct peer p[MAXC];
	char msg[MAXC][32];
	size_t each = 0, total;

	room_open(&r, &tk_service_broker, 0, 0);
	for (int i = 0; i < n; i++) {
		enter(&r, &p[i]);
		snprintf(msg[i], sizeof(msg[i]), "<message %02d>", i);
		each = strlen(msg[i]);
	}
	for (int i = 0; i < n; i++)
		peer_send_str(&p[i], msg[i]);
	total = each * (size_t)(n - 1);
	for (int i = 0; i < n; i++)
		RUN_UNTIL(r.loop, 5000, p[i].in_len >= total);
	/* A little longer: nothing more (no echo) may come. */
	t_run_for(r.loop, 100);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(p[i].in_len, total, "client %d got %zu bytes", i,
			     p[i].in_len);
		for (int j = 0; j < n; j++)
			cr_assert_eq(count_in(&p[i], msg[j]), i == j ? 0 : 1,
				     "client %d has message %d %d times", i, j,
				     count_in(&p[i], msg[j]));
	}
	for (int i = 0; i < n; i++)
		peer_free(&p[i]);
	RUN_UNTIL(r.loop, 5000, tk_broker_count(r.b) == 0);
	room_free(&r);
}

Test(broker, one_sender_stream_arrives_whole_and_in_order)
{
	const size_t n = 2u << 20;
	struct room r;
	struct peer a, b, c;
	char *data = malloc(n);

	room_open(&r, &tk_service_broker, 0, 0);
	enter(&r, &a);
	enter(&r, &b);
	enter(&r, &c);
	t_fill(data, n, 0, 21);
	peer_send(&a, data, n);
	RUN_UNTIL(r.loop, 20000, b.in_len >= n && c.in_len >= n);
	cr_assert_eq(t_check(b.in, b.in_len, 0, 21), n);
	cr_assert_eq(t_check(c.in, c.in_len, 0, 21), n);
	cr_assert_eq(a.in_len, 0, "the sender got %zu bytes back", a.in_len);
	peer_free(&a);
	peer_free(&b);
	peer_free(&c);
	free(data);
	RUN_UNTIL(r.loop, 5000, tk_broker_count(r.b) == 0);
	room_free(&r);
}

Test(broker, slow_client_cut_while_the_others_keep_receiving)
{
	const size_t n = 8u << 20, cap = 64u << 10;
	struct room r;
	struct peer sender, fast, slow;
	char *data = malloc(n);
	uint64_t t0;

	room_open(&r, &tk_service_broker, cap, 0);
	enter(&r, &sender);
	enter(&r, &fast);
	enter_small(&r, &slow);
	peer_set_reading(&slow, false);
	t_fill(data, n, 0, 22);
	t0 = t_now_ms();
	peer_send(&sender, data, n);
	/* The slow one is cut with the reason; the others go on. */
	RUN_UNTIL(r.loop, 20000, r.closes == 1);
	cr_assert_eq(r.errs[0], -ENOBUFS, "closed with %s",
		     tk_err_name(r.errs[0]));
	cr_assert_eq(tk_broker_count(r.b), 2);
	RUN_UNTIL(r.loop, 20000, fast.in_len >= n);
	cr_assert_eq(fast.in_len, n);
	cr_assert_eq(t_check(fast.in, n, 0, 22), n, "stream corrupt");
	cr_assert_lt(t_now_ms() - t0, 20000);
	/*
	 * The cut client sees a reset, never a clean end, after a prefix of
	 * the stream (the loop gave up watching it at the hangup).
	 */
	{
		static char buf[65536];
		size_t got = 0;
		ssize_t k;

		while ((k = recv(slow.fd, buf, sizeof(buf), MSG_DONTWAIT)) >
		       0) {
			cr_assert_eq(t_check(buf, (size_t)k, got, 22),
				     (size_t)k);
			got += (size_t)k;
		}
		cr_assert(k < 0 && errno == ECONNRESET, "recv: %zd, %s", k,
			  k < 0 ? strerror(errno) : "end of stream");
		cr_assert_lt(got, n);
	}
	peer_free(&sender);
	peer_free(&fast);
	peer_free(&slow);
	free(data);
	RUN_UNTIL(r.loop, 5000, tk_broker_count(r.b) == 0);
	room_free(&r);
}

Test(broker, fin_is_leaving_after_what_was_queued)
{
	struct room r;
	struct peer a, b;

	room_open(&r, &tk_service_broker, 0, 0);
	enter(&r, &a);
	enter(&r, &b);
	peer_send_str(&b, "to a");
	peer_send_str(&a, "from a");
	peer_shutdown(&a);
	RUN_UNTIL(r.loop, 5000, a.eof && peer_got(&b, "from a"));
	cr_assert(peer_got(&a, "to a"), "a got '%.*s'", (int)a.in_len, a.in);
	RUN_UNTIL(r.loop, 5000, tk_broker_count(r.b) == 1);
	RUN_UNTIL(r.loop, 5000, r.closes == 1);
	cr_assert_eq(r.errs[0], 0);
	peer_free(&a);
	peer_free(&b);
	RUN_UNTIL(r.loop, 5000, tk_broker_count(r.b) == 0);
	room_free(&r);
}

/* A reader late for less than slow_ms holds the sender and loses nothing. */
Test(broker, briefly_late_reader_loses_nothing)
{
	const size_t n = 8u << 20;
	struct room r;
	struct peer sender, late;
	char *data = malloc(n);

	room_open(&r, &tk_service_broker, 64u << 10, 0);
	enter(&r, &sender);
	enter_small(&r, &late);
	peer_set_reading(&late, false);
	t_fill(data, n, 0, 23);
	peer_send(&sender, data, n);
	t_run_for(r.loop, 200);
	cr_assert_lt(late.in_len, n);
	/* The sender was held: no more of it read than the reader's cap,
	 * a chunk and the kernel's buffers, not all 8 MiB into memory. */
	{
		struct tk_server_stats st;

		tk_server_get_stats(r.s, &st);
		cr_assert_lt(st.bytes_in, 4u << 20, "read %llu bytes",
			     (unsigned long long)st.bytes_in);
	}
	peer_set_reading(&late, true);
	RUN_UNTIL(r.loop, 20000, late.in_len >= n);
	cr_assert_eq(t_check(late.in, late.in_len, 0, 23), n);
	cr_assert_eq(r.closes, 0);
	peer_free(&sender);
	peer_free(&late);
	free(data);
	RUN_UNTIL(r.loop, 5000, tk_broker_count(r.b) == 0);
	room_free(&r);
}

Test(broker, client_on_another_loop_refused)
{
	struct tk_loop *other = t_loop_new();
	struct tk_broker *b;
	struct room r;
	struct tk_server_opts o;
	struct peer p;

	memset(&r, 0, sizeof(r));
	r.loop = t_loop_new();
	cr_assert_eq(tk_broker_new(other, NULL, &b), 0);
	tk_server_opts_init(&o);
	o.on_event = on_event;
	o.event_arg = &r;
	r.s = t_server(r.loop, "127.0.0.1", &o, &tk_service_broker, b, &r.addr);
	peer_connect(&p, r.loop, &r.addr);
	RUN_UNTIL(r.loop, 5000, r.closes == 1);
	cr_assert_eq(r.errs[0], -EXDEV);
	cr_assert_eq(tk_broker_count(b), 0);
	peer_free(&p);
	tk_server_free(r.s);
	tk_broker_free(b);
	tk_loop_free(r.loop);
	tk_loop_free(other);
}

Test(broker, no_argument_refused)
{
	struct room r;
	struct tk_server_opts o;
	struct peer p;

	memset(&r, 0, sizeof(r));
	r.loop = t_loop_new();
	tk_server_opts_init(&o);
	o.on_event = on_event;
	o.event_arg = &r;
	r.s = t_server(r.loop, "127.0.0.1", &o, &tk_service_chat, NULL,
		       &r.addr);
	peer_connect(&p, r.loop, &r.addr);
	RUN_UNTIL(r.loop, 5000, r.closes == 1);
	cr_assert_eq(r.errs[0], -EINVAL);
	peer_free(&p);
	tk_server_free(r.s);
	tk_loop_free(r.loop);
}

Test(broker, chat_names_join_and_leave_lines)
{
	struct room r;
	struct peer a, b, c;

	room_open(&r, &tk_service_chat, 0, 0);
	enter(&r, &a);
	RUN_UNTIL(r.loop, 5000, peer_got(&a, "* you are user1\n"));
	enter(&r, &b);
	RUN_UNTIL(r.loop, 5000, peer_got(&b, "* you are user2\n"));
	enter(&r, &c);
	RUN_UNTIL(r.loop, 5000, peer_got(&c, "* you are user3\n"));
	peer_send_str(&a, "hello all\r\n");
	RUN_UNTIL(r.loop, 5000, c.in_len > 16);
	peer_free(&b);
	RUN_UNTIL(r.loop, 5000, tk_broker_count(r.b) == 2);
	peer_send_str(&c, "bye\n");
	RUN_UNTIL(r.loop, 5000, count_in(&a, "<user3> bye\n") == 1);
	cr_assert(peer_got(&a, "* you are user1\n"
			       "* user2 joined\n"
			       "* user3 joined\n"
			       "* user2 left\n"
			       "<user3> bye\n"),
		  "a got '%.*s'", (int)a.in_len, a.in);
	cr_assert(peer_got(&c, "* you are user3\n"
			       "<user1> hello all\n"
			       "* user2 left\n"),
		  "c got '%.*s'", (int)c.in_len, c.in);
	/* A FIN is the leaving: announced, then the leaver is ended. */
	peer_shutdown(&c);
	RUN_UNTIL(r.loop, 5000, c.eof && count_in(&a, "* user3 left\n") == 1);
	peer_free(&a);
	peer_free(&c);
	RUN_UNTIL(r.loop, 5000, tk_broker_count(r.b) == 0);
	room_free(&r);
}

Test(broker, chat_nick_and_refused_names)
{
	struct room r;
	struct peer a, b;
	char longname[64];

	room_open(&r, &tk_service_chat, 0, 0);
	enter(&r, &a);
	enter(&r, &b);
	RUN_UNTIL(r.loop, 5000, b.in_len == strlen("* you are user2\n"));
	peer_send_str(&a, "/nick alice\n");
	RUN_UNTIL(r.loop, 5000, count_in(&b, "* user1 is now alice\n") == 1);
	cr_assert_eq(count_in(&a, "* you are now alice\n"), 1);
	/* Each refused, to b only; a sees none of it. */
	peer_send_str(&b, "/nick bo\x1b[2Jb\n");
	peer_send_str(&b, "/nick alice\n");
	peer_send_str(&b, "/nick\n");
	peer_send_str(&b, "/nick two words\n");
	memset(longname, 'x', 33);
	longname[33] = '\0';
	peer_send_str(&b, "/nick ");
	peer_send_str(&b, longname);
	peer_send_str(&b, "\n");
	peer_send_str(&b, "still user2\n");
	RUN_UNTIL(r.loop, 5000, count_in(&a, "<user2> still user2\n") == 1);
	cr_assert(peer_got(&b, "* you are user2\n"
			       "* user1 is now alice\n"
			       "error: bad name: control characters are not "
			       "allowed\n"
			       "error: bad name: in use\n"
			       "error: bad name: a name is 1 to 32 bytes\n"
			       "error: bad name: spaces are not allowed\n"
			       "error: bad name: longer than 32 bytes\n"),
		  "b got '%.*s'", (int)b.in_len, b.in);
	cr_assert(peer_got(&a, "* you are user1\n"
			       "* user2 joined\n"
			       "* you are now alice\n"
			       "<user2> still user2\n"),
		  "a got '%.*s'", (int)a.in_len, a.in);
	/* The default names skip one taken. */
	peer_send_str(&a, "/nick user3\n");
	RUN_UNTIL(r.loop, 5000, count_in(&b, "* alice is now user3\n") == 1);
	{
		struct peer c;

		enter(&r, &c);
		RUN_UNTIL(r.loop, 5000, peer_got(&c, "* you are user4\n"));
		peer_free(&c);
	}
	peer_free(&a);
	peer_free(&b);
	RUN_UNTIL(r.loop, 5000, tk_broker_count(r.b) == 0);
	room_free(&r);
}

Test(broker, chat_control_characters_shown_not_sent)
{
	struct room r;
	struct peer a, b;

	room_open(&r, &tk_service_chat, 0, 0);
	enter(&r, &a);
	enter(&r, &b);
	peer_send_str(&a, "red\x1b[31m\ttab\x7f\n");
	RUN_UNTIL(r.loop, 5000, count_in(&b, "\n") == 2);
	cr_assert(peer_got(&b, "* you are user2\n"
			       "<user1> red^[[31m\ttab^?\n"),
		  "b got '%.*s'", (int)b.in_len, b.in);
	peer_free(&a);
	peer_free(&b);
	RUN_UNTIL(r.loop, 5000, tk_broker_count(r.b) == 0);
	room_free(&r);
}

Test(broker, chat_line_too_long_ends_that_client_only)
{
	struct room r;
	struct peer a, b;

	room_open(&r, &tk_service_chat, 0, 16);
	enter(&r, &a);
	enter(&r, &b);
	peer_send_str(&a, "sixteen bytes ok\n");
	RUN_UNTIL(r.loop, 5000, count_in(&b, "<user1> sixteen bytes ok\n"));
	peer_send_str(&a, "seventeen bytes!!\n");
	RUN_UNTIL(r.loop, 5000, a.eof);
	cr_assert_eq(count_in(&a, "error: line too long\n"), 1);
	RUN_UNTIL(r.loop, 5000, count_in(&b, "* user1 left\n") == 1);
	cr_assert_eq(count_in(&b, "seventeen"), 0);
	RUN_UNTIL(r.loop, 5000, r.closes == 1);
	cr_assert_eq(r.errs[0], TK_ELINETOOLONG);
	cr_assert_eq(tk_broker_count(r.b), 1);
	peer_free(&a);
	peer_free(&b);
	RUN_UNTIL(r.loop, 5000, tk_broker_count(r.b) == 0);
	room_free(&r);
}
