/* bench_udp.c: `tcpkit bench echo -u`: datagrams with sequence numbers and
 * checked payloads; loss, duplication, reordering and latency. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli.h"

/* Datagrams remembered per socket: replies older than this are unknown. */
#define RING	   8192u
#define HEADER	   16u /* sequence (8), socket (4), check (4) */
#define TICK_MS	   5u
#define DRAIN_XTRA 1000u /* ms beyond the loss timeout, at most */

enum slot_state { S_FREE, S_OUT, S_DONE, S_LOST };

struct slot {
	uint64_t seq;
	uint64_t sent_ns;
	unsigned char state;
	bool measured; /* sent inside the measured window */
};

struct flow {
	struct ubench *b;
	struct tk_udp *u;
	uint32_t id;
	uint64_t next_seq;
	uint64_t oldest; /* no datagram before it is out */
	uint64_t max_done;
	bool any_done;
	uint32_t inflight;
	struct slot *ring;
};

enum phase { WARMUP, WINDOW, DRAIN };

struct ubench {
	const struct bench_opts *o;
	struct tk_loop *loop;
	struct tk_timer *tick;
	struct flow *flows;
	unsigned char *tx, *want;
	enum phase phase;
	uint64_t start_ns, window_start_ns, window_end_ns;
	uint64_t window_start_us; /* Unix time, for --json */
	uint64_t sent, received, lost, dup, reordered, late, corrupt;
	uint64_t refused, inflight;
	int error; /* a send or receive error that ends the run */
	struct tk_hist hist;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
real_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
}

static void
put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t
get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/*
 * Datagram seq of socket id: its header, then bytes that differ for every
 * datagram and socket (splitmix64), so a reply meant for another, or cut,
 * or changed, does not pass.
 */
static void
fill(unsigned char *p, size_t size, uint32_t id, uint64_t seq)
{
	uint64_t x = seq * 0x9e3779b97f4a7c15u ^ ((uint64_t)id << 32 | id);

	put_le(p, seq, 8);
	put_le(p + 8, id, 4);
	put_le(p + 12, (seq ^ id) * 2654435761u, 4);
	for (size_t i = HEADER; i < size; i += 8) {
		uint64_t z = (x += 0x9e3779b97f4a7c15u);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
		z ^= z >> 31;
		for (size_t k = 0; k < 8 && i + k < size; k++)
			p[i + k] = (unsigned char)(z >> (8 * k));
	}
}

static void
stop(struct ubench *b)
{
	tk_loop_stop(b->loop);
}

static void
mark_lost(struct ubench *b, struct flow *f, struct slot *s)
{
	s->state = S_LOST;
	f->inflight--;
	b->inflight--;
	if (s->measured)
		b->lost++;
}

static void
refill(struct flow *f)
{
	struct ubench *b = f->b;
	const struct bench_opts *o = b->o;

	while (f->inflight < o->depth && b->phase != DRAIN &&
	       (o->count == 0 || f->next_seq < o->count) && b->error == 0) {
		struct slot *s = &f->ring[f->next_seq % RING];
		int err;

		/* A datagram this old cannot still be coming: lost. */
		if (s->state == S_OUT)
			mark_lost(b, f, s);
		fill(b->tx, o->size, f->id, f->next_seq);
		err = tk_udp_send(f->u, NULL, b->tx, o->size);
		if (err == -ECONNREFUSED) {
			/* The ICMP of an earlier datagram: counted there. */
			b->refused++;
			if (b->received == 0) {
				b->error = err;
				stop(b);
			}
			return;
		}
		if (err < 0) {
			b->error = err;
			stop(b);
			return;
		}
		s->seq = f->next_seq++;
		s->sent_ns = now_ns();
		s->state = S_OUT;
		s->measured = b->phase == WINDOW;
		f->inflight++;
		b->inflight++;
		if (s->measured)
			b->sent++;
	}
}

static void
on_reply(struct flow *f, const struct tk_udp_dgram *d)
{
	struct ubench *b = f->b;
	const unsigned char *p = d->data;
	uint64_t seq;
	struct slot *s;

	if (d->len < HEADER || d->truncated || get_le(p + 8, 4) != f->id) {
		b->corrupt++;
		return;
	}
	seq = get_le(p, 8);
	s = &f->ring[seq % RING];
	if (seq >= f->next_seq) {
		b->corrupt++; /* never sent */
		return;
	}
	if (s->seq != seq || s->state == S_FREE) {
		b->dup++; /* too old to tell: it was answered long ago */
		return;
	}
	if (s->state == S_DONE) {
		if (s->measured)
			b->dup++;
		return;
	}
	if (s->state == S_LOST) {
		if (s->measured)
			b->late++;
		return;
	}
	fill(b->want, b->o->size, f->id, seq);
	s->state = S_DONE;
	f->inflight--;
	b->inflight--;
	if (d->len != b->o->size || memcmp(p, b->want, d->len) != 0) {
		b->corrupt++;
	} else if (s->measured) {
		b->received++;
		tk_hist_record(&b->hist, now_ns() - s->sent_ns);
		if (f->any_done && seq < f->max_done)
			b->reordered++;
	}
	if (!f->any_done || seq > f->max_done)
		f->max_done = seq;
	f->any_done = true;
	refill(f);
}

static void
on_recv(struct tk_udp *u, const struct tk_udp_dgram *d, int err, void *arg)
{
	struct flow *f = arg;
	struct ubench *b = f->b;

	(void)u;
	if (err == -ECONNREFUSED) {
		b->refused++;
		if (b->received == 0) {
			b->error = err;
			stop(b);
		}
		return;
	}
	if (err < 0) {
		b->error = err;
		stop(b);
		return;
	}
	on_reply(f, d);
}

/* Datagrams out longer than the loss timeout are lost; refill. */
static void
expire(struct ubench *b, struct flow *f, uint64_t now)
{
	uint64_t limit = b->o->loss_timeout_ms * 1000000u;

	while (f->oldest < f->next_seq) {
		struct slot *s = &f->ring[f->oldest % RING];

		if (s->seq == f->oldest && s->state == S_OUT) {
			if (now - s->sent_ns < limit)
				break;
			mark_lost(b, f, s);
		}
		f->oldest++;
	}
	refill(f);
}

static bool
all_sent(const struct ubench *b)
{
	if (b->o->count == 0)
		return false;
	for (uint32_t i = 0; i < b->o->connections; i++)
		if (b->flows[i].next_seq < b->o->count)
			return false;
	return true;
}

static void
on_tick(struct tk_timer *t, void *arg)
{
	struct ubench *b = arg;
	const struct bench_opts *o = b->o;
	uint64_t now = now_ns();

	(void)t;
	if (b->phase == WARMUP &&
	    now - b->start_ns >= o->warmup_ms * 1000000u) {
		b->phase = WINDOW;
		b->window_start_ns = now;
		b->window_start_us = real_us();
	}
	if (b->phase == WINDOW &&
	    (now - b->window_start_ns >= o->duration_ms * 1000000u ||
	     all_sent(b))) {
		b->phase = DRAIN;
		b->window_end_ns = now;
	}
	for (uint32_t i = 0; i < o->connections; i++)
		expire(b, &b->flows[i], now);
	if (b->phase == DRAIN &&
	    (b->inflight == 0 ||
	     now - b->window_end_ns >=
		     (o->loss_timeout_ms + DRAIN_XTRA) * 1000000u))
		stop(b);
}

static void
report_text(const struct ubench *b, const char *where)
{
	const struct bench_opts *o = b->o;
	double secs = (double)(b->window_end_ns - b->window_start_ns) / 1e9;
	double rate = secs > 0 ? (double)b->received / secs : 0;
	char l[6][32];

	printf("echo over UDP to %s: %u socket%s, depth %u, %zu-byte "
	       "datagrams, %.2fs measured\n",
	       where, o->connections, CLI_PLURAL(o->connections), o->depth,
	       o->size, secs);
	printf("  datagrams: %" PRIu64 " sent, %" PRIu64 " received, %.1f/s, "
	       "%.2f MB/s each way\n",
	       b->sent, b->received, rate, rate * (double)o->size / 1e6);
	printf("  lost %" PRIu64 " (%.2f%%), duplicated %" PRIu64
	       ", reordered %" PRIu64 ", late %" PRIu64 ", corrupt %" PRIu64
	       "\n",
	       b->lost,
	       b->sent > 0 ? 100.0 * (double)b->lost / (double)b->sent : 0.0,
	       b->dup, b->reordered, b->late, b->corrupt);
	if (b->hist.count == 0) {
		printf("  latency: no replies\n");
		return;
	}
	printf("  latency: min %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
	       bench_format_ns(b->hist.min, l[0], sizeof(l[0])),
	       bench_format_ns(tk_hist_percentile(&b->hist, 50), l[1],
			       sizeof(l[1])),
	       bench_format_ns(tk_hist_percentile(&b->hist, 90), l[2],
			       sizeof(l[2])),
	       bench_format_ns(tk_hist_percentile(&b->hist, 99), l[3],
			       sizeof(l[3])),
	       bench_format_ns(tk_hist_percentile(&b->hist, 99.9), l[4],
			       sizeof(l[4])),
	       bench_format_ns(b->hist.max, l[5], sizeof(l[5])));
}

static void
report_json(const struct ubench *b, const char *where)
{
	const struct bench_opts *o = b->o;
	uint64_t ns = b->window_end_ns - b->window_start_ns;
	const struct tk_hist *h = &b->hist;

	printf("{\"mode\": \"echo\", \"transport\": \"udp\", \"target\": ");
	cli_json_string(stdout, where, strlen(where));
	printf(", \"sockets\": %u, \"depth\": %u, \"size\": %zu, "
	       "\"duration_ns\": %" PRIu64 ", \"sent\": %" PRIu64
	       ", \"received\": %" PRIu64 ", \"lost\": %" PRIu64
	       ", \"duplicated\": %" PRIu64 ", \"reordered\": %" PRIu64
	       ", \"late\": %" PRIu64 ", \"corrupt\": %" PRIu64
	       ", \"datagrams_per_s\": %.1f",
	       o->connections, o->depth, o->size, ns, b->sent, b->received,
	       b->lost, b->dup, b->reordered, b->late, b->corrupt,
	       ns > 0 ? (double)b->received * 1e9 / (double)ns : 0.0);
	printf(", \"latency_ns\": {\"min\": %" PRIu64 ", \"p50\": %" PRIu64
	       ", \"p90\": %" PRIu64 ", \"p99\": %" PRIu64
	       ", \"p99_9\": %" PRIu64 ", \"max\": %" PRIu64
	       ", \"mean\": %.0f}",
	       h->count ? h->min : 0, tk_hist_percentile(h, 50),
	       tk_hist_percentile(h, 90), tk_hist_percentile(h, 99),
	       tk_hist_percentile(h, 99.9), h->count ? h->max : 0,
	       tk_hist_mean(h));
	bench_json_window(stdout, b->window_start_us,
			  b->window_start_us + (ns + 500) / 1000);
	bench_json_histogram(stdout, h);
	printf("}\n");
}

static int
open_flows(struct ubench *b, const struct tk_addr *peer)
{
	static const struct tk_udp_cb cb = { .recv = on_recv };
	struct tk_udp_opts uo = { .peer = peer };

	for (uint32_t i = 0; i < b->o->connections; i++) {
		struct flow *f = &b->flows[i];
		int err;

		f->b = b;
		f->id = i;
		if ((f->ring = calloc(RING, sizeof(*f->ring))) == NULL)
			return -ENOMEM;
		if ((err = tk_udp_open(b->loop, &uo, &cb, f, &f->u)) < 0)
			return err;
	}
	return 0;
}

int
bench_udp_run(const struct bench_opts *o, const struct tk_addrlist *addrs)
{
	struct ubench *b = calloc(1, sizeof(*b));
	char where[sizeof(o->where) + 8];
	int rc = 0, err;

	snprintf(where, sizeof(where), "udp://%s", o->where);
	if (b == NULL)
		return cli_fail("bench", where, -ENOMEM);
	b->o = o;
	tk_hist_init(&b->hist);
	b->flows = calloc(o->connections, sizeof(*b->flows));
	b->tx = malloc(o->size);
	b->want = malloc(o->size);
	err = b->flows == NULL || b->tx == NULL || b->want == NULL ? -ENOMEM
								   : 0;
	if (err == 0)
		err = tk_loop_new(&b->loop);
	if (err == 0)
		err = open_flows(b, &addrs->addrs[0]);
	if (err == 0)
		err = tk_timer_new(b->loop, on_tick, b, &b->tick);
	if (err == 0)
		err = tk_timer_start(b->tick, TICK_MS, TICK_MS);
	if (err < 0) {
		rc = cli_fail("bench", where, err);
		goto out;
	}
	b->start_ns = b->window_start_ns = now_ns();
	b->window_start_us = real_us();
	b->phase = o->warmup_ms != 0 ? WARMUP : WINDOW;
	for (uint32_t i = 0; i < o->connections; i++)
		refill(&b->flows[i]);
	if (b->error == 0 && (err = tk_loop_run(b->loop)) < 0)
		b->error = err;
	if (b->window_end_ns == 0)
		b->window_end_ns = now_ns();
	if (b->error == -ECONNREFUSED) {
		cli_error("bench", where,
			  "%s: nothing listens on this UDP port (ICMP port "
			  "unreachable)",
			  tk_strerror(b->error));
		rc = CLI_EXIT_UNAVAILABLE;
		goto out;
	}
	if (b->error < 0) {
		rc = cli_fail("bench", where, b->error);
		goto out;
	}
	if (o->json)
		report_json(b, where);
	else if (!o->quiet)
		report_text(b, where);
	rc = bench_flush_stdout("bench");
	if (b->corrupt > 0) {
		cli_error("bench", where,
			  "%" PRIu64 " corrupt datagrams: the echo differs "
			  "from what was sent",
			  b->corrupt);
		rc = CLI_EXIT_OTHER;
	}
out:
	if (b->flows != NULL)
		for (uint32_t i = 0; i < o->connections; i++) {
			tk_udp_close(b->flows[i].u);
			free(b->flows[i].ring);
		}
	tk_timer_free(b->tick);
	tk_loop_free(b->loop);
	free(b->flows);
	free(b->tx);
	free(b->want);
	free(b);
	return rc;
}
