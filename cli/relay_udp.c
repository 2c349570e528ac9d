/* relay_udp.c: `tcpkit relay udp://LISTEN udp://TARGET`: a flow per client
 * (its own connected socket toward the target), each ending when idle. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "relay.h"

#define RELAY_UDP_MAX_FLOWS 1024u /* without --max-conns: a socket each */

struct uflow {
	struct urelay *r;
	struct uflow *next;
	struct tk_addr client;
	struct tk_udp *u; /* connected to the target */
	struct tk_timer *idle;
	uint64_t dg_in, bytes_in;   /* client -> target */
	uint64_t dg_out, bytes_out; /* target -> client */
	struct timespec start;
};

struct urelay {
	const struct relay_opts *o;
	struct tk_loop *loop;
	struct tk_udp *front;
	struct tk_addr target;
	struct uflow *flows; /* a list: the bound keeps it short */
	uint64_t nflows, max_flows;
	uint64_t refused;
	int exit_code;
};

static double
since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) +
	       (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* One line per flow as it ends: who, what went each way, how long. */
static void
flow_end(struct uflow *f, const char *why)
{
	struct urelay *r = f->r;
	struct uflow **pp;
	char who[TK_ADDRSTRLEN];

	tk_addr_format(&f->client, who, sizeof(who));
	cli_log("flow", "client", who,
		"flow udp://%s ended (%s): %llu datagram%s (%llu bytes) in, "
		"%llu datagram%s (%llu bytes) out, %.3fs",
		who, why, (unsigned long long)f->dg_in, CLI_PLURAL(f->dg_in),
		(unsigned long long)f->bytes_in, (unsigned long long)f->dg_out,
		CLI_PLURAL(f->dg_out), (unsigned long long)f->bytes_out,
		since(&f->start));
	for (pp = &r->flows; *pp != NULL; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	r->nflows--;
	tk_udp_close(f->u);
	tk_timer_free(f->idle);
	free(f);
}

static void
flow_touch(struct uflow *f)
{
	if (f->r->o->idle_ms != 0)
		(void)tk_timer_start(f->idle, f->r->o->idle_ms, 0);
}

static void
on_idle(struct tk_timer *t, void *arg)
{
	(void)t;
	flow_end(arg, "idle");
}

/* A reply from the target: back to the client, from the front socket. */
static void
on_target(struct tk_udp *u, const struct tk_udp_dgram *d, int err, void *arg)
{
	struct uflow *f = arg;
	char who[TK_ADDRSTRLEN];
	int serr;

	(void)u;
	if (err != 0) {
		/* ICMP port unreachable: said, and the flow goes on. */
		tk_addr_format(&f->r->target, who, sizeof(who));
		cli_error("relay", who, "%s", tk_strerror(err));
		return;
	}
	if (d->truncated)
		cli_error("warning", "relay",
			  "datagram of %zu bytes truncated to %zu", d->full_len,
			  d->len);
	serr = tk_udp_send(f->r->front, &f->client, d->data, d->len);
	if (serr < 0) {
		tk_addr_format(&f->client, who, sizeof(who));
		cli_fail("relay", who, serr);
		return;
	}
	f->dg_out++;
	f->bytes_out += d->len;
	flow_touch(f);
}

static struct uflow *
flow_new(struct urelay *r, const struct tk_addr *client)
{
	static const struct tk_udp_cb cb = { .recv = on_target };
	struct tk_udp_opts uo = { .peer = &r->target };
	struct uflow *f = calloc(1, sizeof(*f));
	char who[TK_ADDRSTRLEN];
	int err;

	if (f == NULL) {
		cli_fail("relay", "", -ENOMEM);
		return NULL;
	}
	f->r = r;
	f->client = *client;
	clock_gettime(CLOCK_MONOTONIC, &f->start);
	err = tk_udp_open(r->loop, &uo, &cb, f, &f->u);
	if (err == 0)
		err = tk_timer_new(r->loop, on_idle, f, &f->idle);
	if (err < 0) {
		tk_addr_format(&r->target, who, sizeof(who));
		cli_fail("relay", who, err);
		tk_udp_close(f->u);
		free(f);
		return NULL;
	}
	f->next = r->flows;
	r->flows = f;
	r->nflows++;
	return f;
}

static void
on_front(struct tk_udp *u, const struct tk_udp_dgram *d, int err, void *arg)
{
	struct urelay *r = arg;
	struct uflow *f;
	char who[TK_ADDRSTRLEN];
	int serr;

	(void)u;
	if (err != 0)
		return; /* unconnected: no ICMP error is ours */
	for (f = r->flows; f != NULL; f = f->next)
		if (tk_addr_equal(&f->client, d->peer))
			break;
	if (f == NULL) {
		if (r->nflows >= r->max_flows) {
			/* Dropped, as UDP may: said, never silent. */
			r->refused++;
			cli_error("relay",
				  tk_addr_format(d->peer, who, sizeof(who)),
				  "datagram dropped: --max-conns %llu flows "
				  "reached",
				  (unsigned long long)r->max_flows);
			return;
		}
		if ((f = flow_new(r, d->peer)) == NULL)
			return;
	}
	if (d->truncated)
		cli_error("warning", "relay",
			  "datagram of %zu bytes truncated to %zu", d->full_len,
			  d->len);
	serr = tk_udp_send(f->u, NULL, d->data, d->len);
	if (serr < 0 && serr != -ECONNREFUSED) {
		tk_addr_format(&r->target, who, sizeof(who));
		cli_fail("relay", who, serr);
		return;
	}
	f->dg_in++;
	f->bytes_in += d->len;
	flow_touch(f);
}

static void
on_signal(struct tk_loop *loop, int signo, void *arg)
{
	(void)signo;
	(void)arg;
	tk_loop_stop(loop);
}

static int
resolve_one(const char *host, const char *port, bool passive,
	    struct tk_addr *out)
{
	struct tk_addrlist *list = NULL;
	int err;

	err = tk_resolve(host, port, AF_UNSPEC,
			 passive ? TK_RESOLVE_PASSIVE : 0, &list);
	if (err < 0)
		return err;
	*out = list->addrs[0];
	tk_addrlist_free(list);
	return 0;
}

int
relay_udp_run(const struct relay_opts *o)
{
	static const struct tk_udp_cb cb = { .recv = on_front };
	struct urelay r = { .o = o };
	struct tk_udp_opts uo = { 0 };
	struct tk_addr bind, local;
	const char *lhost = o->listen.host;
	char where[TK_ADDRSTRLEN];
	int rc;

	r.max_flows = o->max_conns != 0 ? o->max_conns : RELAY_UDP_MAX_FLOWS;
	if (lhost[0] == '\0')
		lhost = o->listen.wildcard ? "::" : "127.0.0.1";
	if ((rc = resolve_one(lhost, o->listen.port, true, &bind)) < 0)
		return cli_fail("relay", o->listen_text, rc);
	if ((rc = resolve_one(o->targets[0].host, o->targets[0].port, false,
			      &r.target)) < 0)
		return cli_fail("relay", o->target_text[0], rc);
	if ((rc = tk_loop_new(&r.loop)) < 0)
		return cli_fail("relay", "", rc);
	uo.bind = &bind;
	if ((rc = tk_loop_signal(r.loop, SIGINT, on_signal, &r)) < 0 ||
	    (rc = tk_loop_signal(r.loop, SIGTERM, on_signal, &r)) < 0) {
		rc = cli_fail("relay", "signals", rc);
		goto out;
	}
	if ((rc = tk_udp_open(r.loop, &uo, &cb, &r, &r.front)) < 0 ||
	    (rc = tk_udp_local(r.front, &local)) < 0) {
		rc = cli_fail("relay", o->listen_text, rc);
		goto out;
	}
	tk_addr_format(&local, where, sizeof(where));
	cli_log("listening", "addr", where, "listening on udp://%s", where);
	if ((rc = tk_loop_run(r.loop)) < 0) {
		rc = cli_fail("relay", "event loop", rc);
		goto out;
	}
	rc = 0;
out:
	while (r.flows != NULL)
		flow_end(r.flows, "stopped");
	tk_udp_close(r.front);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	tk_loop_free(r.loop);
	return rc;
}
