/* test_service.c: the built-in services (echo, discard, welcome, basic). */
#include <criterion/criterion.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn_int.h"
#include "helpers.h"

/*
 * One timeout for every test: Criterion 2.4 leaks in its runner when tests
 * running in parallel have different timeouts.
 */
TestSuite(service, .timeout = 60);

/* A server running svc, with the close events of its conns counted. */
struct served {
	struct tk_loop *loop;
	struct tk_server *s;
	struct tk_addr addr;
	int opens, closes;
	int close_err;
	/* If set, recorded as every accepted conn's peer (see below). */
	const struct tk_addr *fake_peer;
};

static void
count_events(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
	     const struct tk_addr *peer, int err, void *arg)
{
	struct served *x = arg;

	(void)s;
	(void)peer;
	if (ev == TK_SERVER_OPEN) {
		x->opens++;
		/*
		 * The open event comes before the conn's first read: a peer
		 * replaced here is the one the service sees, as if it had
		 * connected from there.  No root, no other interface.
		 */
		if (x->fake_peer != NULL)
			c->peer = *x->fake_peer;
	}
	if (ev == TK_SERVER_CLOSE) {
		x->closes++;
		x->close_err = err;
	}
}

static void
serve(struct served *x, const struct tk_service *svc, void *arg)
{
	struct tk_server_opts o;

	memset(x, 0, sizeof(*x));
	x->loop = t_loop_new();
	tk_server_opts_init(&o);
	o.on_event = count_events;
	o.event_arg = x;
	x->s = t_server(x->loop, "127.0.0.1", &o, svc, arg, &x->addr);
}

static struct tk_server_stats
served_stats(const struct served *x)
{
	struct tk_server_stats st;

	tk_server_get_stats(x->s, &st);
	return st;
}

static void
served_free(struct served *x)
{
	tk_server_free(x->s);
	tk_loop_free(x->loop);
}

Test(service, find_by_name)
{
	cr_assert_eq(tk_service_find("echo"), &tk_service_echo);
	cr_assert_eq(tk_service_find("discard"), &tk_service_discard);
	cr_assert_eq(tk_service_find("welcome"), &tk_service_welcome);
	cr_assert_eq(tk_service_find("basic"), &tk_service_basic);
	cr_assert_null(tk_service_find("nope"));
	cr_assert_null(tk_service_find(""));
	cr_assert_null(tk_service_find("Echo"));
	cr_assert_str_eq(tk_service_echo.name, "echo");
}

Test(service, echo_every_byte_value)
{
	struct served x;
	struct peer p;
	char data[256 * 16];

	serve(&x, &tk_service_echo, NULL);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(unsigned char)(i % 256);
	peer_connect(&p, x.loop, &x.addr);
	peer_send(&p, data, sizeof(data));
	peer_shutdown(&p);
	RUN_UNTIL(x.loop, 5000, p.eof);
	cr_assert_eq(p.in_len, sizeof(data));
	cr_assert(memcmp(p.in, data, sizeof(data)) == 0, "echo altered bytes");
	RUN_UNTIL(x.loop, 3000, x.closes == 1);
	cr_assert_eq(x.close_err, 0);
	peer_free(&p);
	served_free(&x);
}

Test(service, echo_4mib_stream_with_half_close)
{
	const size_t n = 4u << 20;
	struct served x;
	struct tk_server_stats st;
	struct peer p;
	char *data = malloc(n);

	serve(&x, &tk_service_echo, NULL);
	t_fill(data, n, 0, 11);
	peer_connect(&p, x.loop, &x.addr);
	/* All of it queued at once; the peer reads while it writes. */
	peer_send(&p, data, n);
	peer_shutdown(&p);
	RUN_UNTIL(x.loop, 30000, p.eof);
	cr_assert_eq(p.in_len, n, "got %zu of %zu bytes", p.in_len, n);
	cr_assert_eq(t_check(p.in, n, 0, 11), n, "stream corrupt");
	RUN_UNTIL(x.loop, 3000, x.closes == 1);
	cr_assert_eq(x.close_err, 0, "close(%s)", tk_err_name(x.close_err));
	st = served_stats(&x);
	cr_assert_eq(st.bytes_in, n);
	cr_assert_eq(st.bytes_out, n);
	cr_assert_eq(st.conn_errors, 0);
	peer_free(&p);
	free(data);
	served_free(&x);
}

Test(service, discard_reads_everything_answers_nothing)
{
	const size_t n = 1u << 20;
	struct served x;
	struct tk_server_stats st;
	struct peer p;
	char *data = malloc(n);

	serve(&x, &tk_service_discard, NULL);
	t_fill(data, n, 0, 12);
	peer_connect(&p, x.loop, &x.addr);
	peer_send(&p, data, n);
	peer_shutdown(&p);
	RUN_UNTIL(x.loop, 10000, p.eof);
	cr_assert_eq(p.in_len, 0, "discard answered %zu bytes", p.in_len);
	RUN_UNTIL(x.loop, 3000, x.closes == 1);
	cr_assert_eq(x.close_err, 0);
	st = served_stats(&x);
	cr_assert_eq(st.bytes_in, n);
	cr_assert_eq(st.bytes_out, 0);
	peer_free(&p);
	free(data);
	served_free(&x);
}

Test(service, welcome_greeting_and_ok_framing)
{
	static const char greeting[] =
		"Welcome to the server. Type something and hit enter\n";
	struct served x;
	struct peer p;
	char big[3000];
	char *want;
	size_t wlen;

	cr_assert_str_eq(TK_WELCOME_GREETING, greeting);
	serve(&x, &tk_service_welcome, NULL);
	peer_connect(&p, x.loop, &x.addr);
	RUN_UNTIL(x.loop, 3000, p.in_len >= sizeof(greeting) - 1);
	cr_assert(peer_got(&p, greeting));

	/* Each message comes back prefixed, nothing more. */
	p.in_len = 0;
	peer_send_str(&p, "hello\n");
	RUN_UNTIL(x.loop, 3000, p.in_len >= 11);
	cr_assert(peer_got(&p, "OK...hello\n"));
	p.in_len = 0;
	peer_send_str(&p, "line two\r\n");
	RUN_UNTIL(x.loop, 3000, p.in_len >= 15);
	cr_assert(peer_got(&p, "OK...line two\r\n"));

	/* A chunk bigger than the service's one-segment buffer. */
	p.in_len = 0;
	t_fill(big, sizeof(big), 0, 13);
	peer_send(&p, big, sizeof(big));
	RUN_UNTIL(x.loop, 3000, p.in_len >= 5 + sizeof(big));
	wlen = 5 + sizeof(big);
	want = malloc(wlen);
	memcpy(want, "OK...", 5);
	memcpy(want + 5, big, sizeof(big));
	cr_assert_eq(p.in_len, wlen);
	cr_assert(memcmp(p.in, want, wlen) == 0);
	free(want);

	/* The client leaves; the server ends too. */
	peer_shutdown(&p);
	RUN_UNTIL(x.loop, 3000, p.eof);
	cr_assert_eq(p.in_len, wlen, "bytes after the last answer");
	RUN_UNTIL(x.loop, 3000, x.closes == 1);
	cr_assert_eq(x.close_err, 0);
	peer_free(&p);
	served_free(&x);
}

/*
 * Check the greeting's format and that its local time is now; returns its
 * length.
 */
static size_t
check_greeting(const char *in, size_t len)
{
	static const char *re =
		"^You connected at \\[([0-9]{4}-[0-9]{2}-[0-9]{2} "
		"[0-9]{2}:[0-9]{2}:[0-9]{2})(\\.[0-9]{6})?\\]\n";
	const char *nl = memchr(in, '\n', len);
	char line[128], stamp[32];
	regmatch_t m[3];
	struct tm tm;
	regex_t rx;
	time_t when, now = time(NULL);
	size_t n;

	cr_assert_not_null(nl, "no greeting line");
	n = (size_t)(nl - in) + 1;
	cr_assert_lt(n, sizeof(line));
	memcpy(line, in, n);
	line[n] = '\0';
	cr_assert_eq(regcomp(&rx, re, REG_EXTENDED), 0);
	cr_assert_eq(regexec(&rx, line, 3, m, 0), 0, "bad greeting: %s", line);
	regfree(&rx);
	cr_assert_eq((size_t)m[0].rm_eo, n, "trailing bytes: %s", line);
	snprintf(stamp, sizeof(stamp), "%.*s", (int)(m[1].rm_eo - m[1].rm_so),
		 line + m[1].rm_so);
	memset(&tm, 0, sizeof(tm));
	cr_assert_not_null(strptime(stamp, "%Y-%m-%d %H:%M:%S", &tm));
	tm.tm_isdst = -1;
	when = mktime(&tm);
	cr_assert_lt(labs((long)(now - when)), 5L, "greeting time %s", stamp);
	return n;
}

static bool
has_line(const struct peer *p)
{
	return p->in_len > 0 && memchr(p->in, '\n', p->in_len) != NULL;
}

/* A basic session: greeting, one message, the answer, the server's FIN. */
static void
basic_session(const void *msg, size_t mlen, bool eof_only, const char *want)
{
	struct served x;
	struct peer p;
	size_t g;

	serve(&x, &tk_service_basic, NULL);
	peer_connect(&p, x.loop, &x.addr);
	RUN_UNTIL(x.loop, 3000, has_line(&p));
	g = check_greeting(p.in, p.in_len);
	if (eof_only)
		peer_shutdown(&p);
	else
		peer_send(&p, msg, mlen);
	RUN_UNTIL(x.loop, 3000, p.eof);
	cr_assert_eq(p.in_len - g, strlen(want), "answer of %zu bytes",
		     p.in_len - g);
	cr_assert(memcmp(p.in + g, want, strlen(want)) == 0,
		  "answer differs: %.*s", (int)(p.in_len - g), p.in + g);
	cr_assert(!tk_server_stopping(x.s));
	/* The server waits for our FIN, then the conn is over. */
	peer_shutdown(&p);
	RUN_UNTIL(x.loop, 3000, x.closes == 1);
	cr_assert_eq(x.close_err, 0);
	peer_free(&p);
	served_free(&x);
}

Test(service, basic_greeting_and_answer)
{
	basic_session("hello", 5, false, "You sent: [hello]\n");
}

Test(service, basic_keeps_the_message_as_sent)
{
	basic_session("Hi there\r\n", 10, false, "You sent: [Hi there\r\n]\n");
}

Test(service, basic_eof_without_message)
{
	basic_session(NULL, 0, true, "You sent: []\n");
}

Test(service, basic_not_quite_shutdown)
{
	basic_session("shutdown now", 12, false, "You sent: [shutdown now]\n");
}

Test(service, basic_message_cut_at_4096)
{
	char msg[5000], *want = malloc(4096 + 14);

	memset(msg, 'a', sizeof(msg));
	memcpy(want, "You sent: [", 11);
	memset(want + 11, 'a', 4096);
	memcpy(want + 11 + 4096, "]\n", 3);
	basic_session(msg, sizeof(msg), false, want);
	free(want);
}

static void
basic_shutdown(const char *word, const struct tk_basic_opts *opts)
{
	struct served x;
	struct t_guard guard;
	struct peer p;
	char want[128];
	size_t g;

	serve(&x, &tk_service_basic, (void *)opts);
	peer_connect(&p, x.loop, &x.addr);
	RUN_UNTIL(x.loop, 3000, has_line(&p));
	g = check_greeting(p.in, p.in_len);
	peer_send_str(&p, word);
	/* The service asks the loop to stop: tk_loop_run returns. */
	t_guard_start(&guard, x.loop, 5000);
	cr_assert_eq(tk_loop_run(x.loop), 0);
	t_guard_end(&guard);
	cr_assert(tk_server_stopping(x.s));
	RUN_UNTIL(x.loop, 3000, p.eof);
	snprintf(want, sizeof(want),
		 "You sent: [%s]\nYou told me to shut down!\n", word);
	cr_assert_eq(p.in_len - g, strlen(want));
	cr_assert(memcmp(p.in + g, want, strlen(want)) == 0,
		  "answer differs: %.*s", (int)(p.in_len - g), p.in + g);
	peer_free(&p);
	served_free(&x);
}

Test(service, basic_shutdown_from_loopback_stops_the_server)
{
	basic_shutdown("shutdown", NULL);
}

Test(service, basic_shutdown_any_case_and_spaces)
{
	struct tk_basic_opts o = { .allow_remote_shutdown = false };

	/* Loopback peers may always stop it, allowed remotely or not. */
	basic_shutdown("  ShutDown \r\n", &o);
}

/*
 * "shutdown" from a peer at `from` (recorded as the conn's peer, the
 * connection itself on loopback): refused unless opts allow it remotely.
 */
static void
basic_shutdown_from(const char *from, const struct tk_basic_opts *opts,
		    bool allowed)
{
	static const char refused[] =
		"Shutdown refused: only a client on this machine's loopback "
		"may stop this server\n";
	struct served x;
	struct tk_addr fake;
	struct t_guard guard;
	struct peer p;
	char want[256];
	size_t g;

	cr_assert_eq(tk_addr_parse(from, 40000, &fake), 0, "%s", from);
	cr_assert(!tk_addr_is_loopback(&fake), "%s", from);
	serve(&x, &tk_service_basic, (void *)opts);
	x.fake_peer = &fake;
	peer_connect(&p, x.loop, &x.addr);
	RUN_UNTIL(x.loop, 3000, has_line(&p));
	g = check_greeting(p.in, p.in_len);
	peer_send_str(&p, "shutdown");
	if (allowed) {
		t_guard_start(&guard, x.loop, 5000);
		cr_assert_eq(tk_loop_run(x.loop), 0);
		t_guard_end(&guard);
	}
	RUN_UNTIL(x.loop, 3000, p.eof);
	snprintf(want, sizeof(want), "You sent: [shutdown]\n%s",
		 allowed ? "You told me to shut down!\n" : refused);
	cr_assert_eq(p.in_len - g, strlen(want), "from %s: %.*s", from,
		     (int)(p.in_len - g), p.in + g);
	cr_assert(memcmp(p.in + g, want, strlen(want)) == 0, "from %s: %.*s",
		  from, (int)(p.in_len - g), p.in + g);
	cr_assert_eq(tk_server_stopping(x.s), allowed, "from %s", from);
	peer_shutdown(&p);
	RUN_UNTIL(x.loop, 3000, x.closes == 1);
	peer_free(&p);
	served_free(&x);
}

/* Documentation addresses: nothing is ever sent to them. */
static const char *const remote_peers[] = {
	"192.0.2.7", "2001:db8::7", "::ffff:192.0.2.7",
	"128.0.0.1", /* just past 127/8 */
};

Test(service, basic_remote_shutdown_refused)
{
	struct tk_basic_opts o = { .allow_remote_shutdown = false };

	for (size_t i = 0; i < sizeof(remote_peers) / sizeof(*remote_peers);
	     i++) {
		basic_shutdown_from(remote_peers[i], NULL, false);
		basic_shutdown_from(remote_peers[i], &o, false);
	}
}

Test(service, basic_remote_shutdown_allowed_by_option)
{
	struct tk_basic_opts o = { .allow_remote_shutdown = true };

	for (size_t i = 0; i < sizeof(remote_peers) / sizeof(*remote_peers);
	     i++)
		basic_shutdown_from(remote_peers[i], &o, true);
}

/* As a client's service basic greets and answers too, but stops nothing. */
Test(service, basic_on_a_client_connection)
{
	struct tk_loop *loop = t_loop_new();
	struct tk_addr a;
	int lfd = t_raw_listen("127.0.0.1", 1, &a);
	struct tk_addrlist l = t_list(&a, 1);
	struct tk_conn *c = NULL;
	struct peer p;
	size_t g;

	cr_assert_eq(
		tk_conn_connect(loop, &l, NULL, &tk_service_basic, NULL, &c),
		0);
	peer_accept(&p, loop, lfd);
	RUN_UNTIL(loop, 3000, has_line(&p));
	g = check_greeting(p.in, p.in_len);
	peer_send_str(&p, "shutdown");
	RUN_UNTIL(loop, 3000, p.eof);
	cr_assert_eq(p.in_len - g, 47);
	cr_assert(memcmp(p.in + g,
			 "You sent: [shutdown]\nYou told me to shut down!\n",
			 47) == 0);
	peer_free(&p); /* our FIN (and close): the conn ends */
	t_run_for(loop, 50);
	close(lfd);
	tk_loop_free(loop);
}
