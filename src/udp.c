/* udp.c: UDP datagram sockets on the loop, and datagram servers batching
 * with recvmmsg/sendmmsg on shared-nothing workers. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "internal.h"
#include "tcpkit/udp.h"

/* IPv6's largest payload on a link that carries it. */
#define UDP_MAX_SEND	 65527u
#define UDP_MAX_PENDING	 (4u * 1024 * 1024)
#define UDP_RECV_PER_RUN 64 /* datagrams per wakeup: fairness */

static int
set_int(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof(v)) < 0 ? -errno : 0;
}

/* A datagram tk_udp_send() could not hand to the kernel yet. */
struct qdgram {
	struct qdgram *next;
	struct tk_addr to;
	bool has_to;
	size_t len;
	unsigned char data[];
};

struct tk_udp {
	struct tk_loop *loop;
	int fd;
	struct tk_udp_cb cb;
	void *arg;
	unsigned char *buf;
	size_t bufsize;
	struct qdgram *qhead, *qtail;
	size_t pending, max_pending;
	unsigned busy; /* callbacks on the stack */
	bool closed;
	bool connected;
};

static void udp_free(struct tk_udp *u);

static int
udp_watch(struct tk_udp *u)
{
	unsigned ev = TK_READABLE | (u->qhead != NULL ? TK_WRITABLE : 0);

	return tk_loop_modify(u->loop, u->fd, ev);
}

/* One send(2); 0 or -errno (-EAGAIN: the kernel's buffer is full). */
static int
udp_send1(struct tk_udp *u, const struct tk_addr *to, const void *data,
	  size_t len)
{
	ssize_t n;

	do
		n = sendto(u->fd, data, len, MSG_NOSIGNAL,
			   to != NULL ? &to->u.sa : NULL,
			   to != NULL ? to->len : 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return 0;
}

/*
 * Send what is queued, in order.  A datagram the kernel refuses for
 * another reason than a full buffer is dropped and its error reported.
 */
static void
udp_flush(struct tk_udp *u)
{
	while (u->qhead != NULL && !u->closed) {
		struct qdgram *q = u->qhead;
		int err = udp_send1(u, q->has_to ? &q->to : NULL, q->data,
				    q->len);

		if (err == -EAGAIN)
			return;
		u->qhead = q->next;
		if (u->qhead == NULL)
			u->qtail = NULL;
		u->pending -= q->len;
		free(q);
		if (err < 0 && u->cb.recv != NULL)
			u->cb.recv(u, NULL, err, u->arg);
	}
	if (u->closed)
		return;
	(void)udp_watch(u);
	if (u->cb.drained != NULL)
		u->cb.drained(u, u->arg);
}

static void
udp_read(struct tk_udp *u)
{
	for (int i = 0; i < UDP_RECV_PER_RUN && !u->closed; i++) {
		struct tk_addr peer;
		struct tk_udp_dgram d;
		struct iovec iov = { u->buf, u->bufsize };
		struct msghdr mh = {
			.msg_name = &peer.u,
			.msg_namelen = sizeof(peer.u),
			.msg_iov = &iov,
			.msg_iovlen = 1,
		};
		ssize_t n = recvmsg(u->fd, &mh, MSG_TRUNC);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* ICMP errors come this way: the socket goes on. */
			u->cb.recv(u, NULL, -errno, u->arg);
			continue;
		}
		peer.len = mh.msg_namelen;
		d.data = u->buf;
		d.full_len = (size_t)n;
		d.truncated =
			(mh.msg_flags & MSG_TRUNC) || d.full_len > u->bufsize;
		d.len = d.truncated ? u->bufsize : d.full_len;
		d.peer = &peer;
		u->cb.recv(u, &d, 0, u->arg);
	}
}

static void
udp_on_io(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	struct tk_udp *u = arg;

	(void)loop;
	(void)fd;
	u->busy++;
	if ((events & TK_WRITABLE) && !u->closed)
		udp_flush(u);
	if ((events & (TK_READABLE | TK_HANGUP)) && !u->closed)
		udp_read(u);
	if (--u->busy == 0 && u->closed)
		udp_free(u);
}

int
tk_udp_open(struct tk_loop *loop, const struct tk_udp_opts *opts,
	    const struct tk_udp_cb *cb, void *arg, struct tk_udp **out)
{
	const struct tk_addr *b = opts->bind, *p = opts->peer;
	struct tk_udp *u;
	int family, err;

	*out = NULL;
	if ((b == NULL && p == NULL) || cb == NULL || cb->recv == NULL)
		return -EINVAL;
	family = b != NULL ? b->u.sa.sa_family : p->u.sa.sa_family;
	if ((b != NULL && p != NULL && b->u.sa.sa_family != family) ||
	    (family != AF_INET && family != AF_INET6))
		return -EINVAL;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return -ENOMEM;
	u->loop = loop;
	u->cb = *cb;
	u->arg = arg;
	u->bufsize = opts->recv_size != 0 ? opts->recv_size : TK_UDP_RECV_MAX;
	u->max_pending =
		opts->max_pending != 0 ? opts->max_pending : UDP_MAX_PENDING;
	if ((u->buf = malloc(u->bufsize)) == NULL) {
		free(u);
		return -ENOMEM;
	}
	u->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       IPPROTO_UDP);
	if (u->fd < 0) {
		err = -errno;
		goto out_free;
	}
	if (b != NULL && bind(u->fd, &b->u.sa, b->len) < 0) {
		err = -errno;
		goto out_close;
	}
	if (p != NULL) {
		if (connect(u->fd, &p->u.sa, p->len) < 0) {
			err = -errno;
			goto out_close;
		}
		u->connected = true;
	}
	if ((err = tk_loop_watch(loop, u->fd, TK_READABLE, udp_on_io, u)) < 0)
		goto out_close;
	*out = u;
	return 0;

out_close:
	tk__close(u->fd);
out_free:
	free(u->buf);
	free(u);
	return err;
}

int
tk_udp_send(struct tk_udp *u, const struct tk_addr *to, const void *data,
	    size_t len)
{
	struct qdgram *q;
	int err;

	if (u->closed)
		return -EPIPE;
	if (len > UDP_MAX_SEND)
		return -EMSGSIZE;
	if (to == NULL && !u->connected)
		return -EDESTADDRREQ;
	if (u->qhead == NULL) {
		err = udp_send1(u, to, data, len);
		if (err != -EAGAIN)
			return err;
	}
	/* Whole datagrams only: a boundary is never cut by the queue. */
	if (u->pending + len > u->max_pending)
		return -ENOBUFS;
	if ((q = malloc(sizeof(*q) + len)) == NULL)
		return -ENOMEM;
	q->next = NULL;
	q->has_to = to != NULL;
	if (to != NULL)
		q->to = *to;
	q->len = len;
	memcpy(q->data, data, len);
	if (u->qtail != NULL)
		u->qtail->next = q;
	else
		u->qhead = q;
	u->qtail = q;
	u->pending += len;
	return udp_watch(u);
}

size_t
tk_udp_pending(const struct tk_udp *u)
{
	return u->pending;
}

int
tk_udp_local(const struct tk_udp *u, struct tk_addr *out)
{
	return tk__sock_local(u->fd, out);
}

int
tk_udp_fd(const struct tk_udp *u)
{
	return u->fd;
}

static void
udp_free(struct tk_udp *u)
{
	while (u->qhead != NULL) {
		struct qdgram *q = u->qhead;

		u->qhead = q->next;
		free(q);
	}
	free(u->buf);
	free(u);
}

void
tk_udp_close(struct tk_udp *u)
{
	if (u == NULL || u->closed)
		return;
	u->closed = true;
	tk_loop_unwatch(u->loop, u->fd);
	tk__close(u->fd);
	u->fd = -1;
	if (u->busy == 0)
		udp_free(u);
}

/* Servers. */

#define SRV_MAX_ADDRS	16
#define SRV_MAX_WORKERS 256
#define SRV_MAX_BATCH	256
#define SRV_BATCH	32
#define SRV_RCVBUF	(4 * 1024 * 1024)

struct uworker {
	struct tk_udp_server *srv;
	unsigned id;
	struct tk_loop *loop;
	bool own_loop;
	pthread_t thread;
	bool thread_started;
	int fds[SRV_MAX_ADDRS];
	/* The batch: receive buffers, headers, peers; replies alike. */
	unsigned char *rxbuf;
	struct mmsghdr *rx;
	struct iovec *rxiov;
	struct tk_addr *peers;
	struct mmsghdr *tx;
	struct iovec *txiov;
	unsigned char *txbuf; /* copies of replies that are not a request */
	unsigned ntx, txsent;
	int txfd;     /* the socket the pending replies go out on */
	bool blocked; /* replies wait for the kernel: no receiving */
	bool replied; /* this request's reply is queued */
	_Atomic uint64_t din, dout, bin, bout, trunc, serr, rerr, batches;
};

struct tk_udp_server {
	struct tk_loop *loop;
	struct tk_udp_server_opts opts;
	const struct tk_udp_service *svc;
	void *svc_arg;
	struct tk_addr addrs[SRV_MAX_ADDRS];
	size_t naddrs;
	struct uworker *workers;
	unsigned nworkers;
	bool started;
};

static void
ctr_add(_Atomic uint64_t *c, uint64_t n)
{
	/* One writer (the worker): a relaxed load and store is enough. */
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

void
tk_udp_server_opts_init(struct tk_udp_server_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->workers = 1;
	opts->batch = SRV_BATCH;
}

static int
worker_alloc(struct uworker *w, unsigned batch)
{
	w->rxbuf = malloc((size_t)batch * TK_UDP_RECV_MAX);
	w->rx = calloc(batch, sizeof(*w->rx));
	w->rxiov = calloc(batch, sizeof(*w->rxiov));
	w->peers = calloc(batch, sizeof(*w->peers));
	w->tx = calloc(batch, sizeof(*w->tx));
	w->txiov = calloc(batch, sizeof(*w->txiov));
	if (w->rxbuf == NULL || w->rx == NULL || w->rxiov == NULL ||
	    w->peers == NULL || w->tx == NULL || w->txiov == NULL)
		return -ENOMEM;
	return 0;
}

static void
worker_release(struct uworker *w)
{
	free(w->rxbuf);
	free(w->txbuf);
	free(w->rx);
	free(w->rxiov);
	free(w->peers);
	free(w->tx);
	free(w->txiov);
}

int
tk_udp_server_new(struct tk_loop *loop, const struct tk_udp_server_opts *opts,
		  const struct tk_udp_service *svc, void *svc_arg,
		  struct tk_udp_server **out)
{
	struct tk_udp_server *s;
	int err;

	*out = NULL;
	if (loop == NULL || svc == NULL || svc->on_datagram == NULL)
		return -EINVAL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	s->loop = loop;
	if (opts != NULL)
		s->opts = *opts;
	else
		tk_udp_server_opts_init(&s->opts);
	if (s->opts.batch == 0)
		s->opts.batch = SRV_BATCH;
	if (s->opts.workers > SRV_MAX_WORKERS ||
	    s->opts.batch > SRV_MAX_BATCH) {
		free(s);
		return -EINVAL;
	}
	s->svc = svc;
	s->svc_arg = svc_arg;
	s->nworkers = s->opts.workers > 1 ? s->opts.workers : 1;
	if ((s->workers = calloc(s->nworkers, sizeof(*s->workers))) == NULL) {
		free(s);
		return -ENOMEM;
	}
	/* Every worker holds no socket before any can fail: free() closes. */
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct uworker *w = &s->workers[i];

		w->srv = s;
		w->id = i;
		w->txfd = -1;
		for (size_t j = 0; j < SRV_MAX_ADDRS; j++)
			w->fds[j] = -1;
	}
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct uworker *w = &s->workers[i];

		if ((err = worker_alloc(w, s->opts.batch)) < 0) {
			tk_udp_server_free(s);
			return err;
		}
		if (s->nworkers == 1) {
			w->loop = loop;
			continue;
		}
		/* Set once it exists: the stop skips a worker without one. */
		if ((err = tk_loop_new(&w->loop)) < 0) {
			tk_udp_server_free(s);
			return err;
		}
		w->own_loop = true;
	}
	*out = s;
	return 0;
}

/*
 * A worker's socket.  No SO_REUSEADDR: for UDP it would let two programs
 * share a port silently.  The first socket binds alone (a port in use is
 * -EADDRINUSE), then opens the SO_REUSEPORT group the others join.
 */
static int
bind_one(const struct tk_addr *a, bool v6only, enum tk__reuseport rp)
{
	int fd, err;

	fd = socket(a->u.sa.sa_family,
		    SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0)
		return -errno;
	if (rp == TK__REUSEPORT_JOIN &&
	    (err = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)) < 0)
		goto out_close;
	if (a->u.sa.sa_family == AF_INET6 &&
	    (err = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only)) < 0)
		goto out_close;
	if (bind(fd, &a->u.sa, a->len) < 0) {
		err = -errno;
		goto out_close;
	}
	if (rp == TK__REUSEPORT_FIRST &&
	    (err = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)) < 0)
		goto out_close;
	/*
	 * A burst the worker has not yet read waits here; the default
	 * (about 200 KiB, a few hundred small datagrams) drops the rest.
	 * The kernel caps it at net.core.rmem_max: best effort.
	 */
	(void)set_int(fd, SOL_SOCKET, SO_RCVBUF, SRV_RCVBUF);
	return fd;

out_close:
	tk__close(fd);
	return err;
}

int
tk_udp_server_bind(struct tk_udp_server *s, const struct tk_addr *addr,
		   bool v6only)
{
	struct tk_addr bound = *addr;
	size_t i = s->naddrs;
	int err;

	if (i == SRV_MAX_ADDRS)
		return -ENOSPC;
	if (s->started)
		return -EBUSY;
	if (addr->u.sa.sa_family != AF_INET && addr->u.sa.sa_family != AF_INET6)
		return -EAFNOSUPPORT;
	for (unsigned k = 0; k < s->nworkers; k++) {
		enum tk__reuseport rp = s->nworkers == 1 ? TK__REUSEPORT_NONE
					: k == 0	 ? TK__REUSEPORT_FIRST
							 : TK__REUSEPORT_JOIN;
		int fd = bind_one(&bound, v6only, rp);

		if (fd < 0) {
			err = fd;
			goto out_close;
		}
		s->workers[k].fds[i] = fd;
		if (k == 0 && (err = tk__sock_local(fd, &bound)) < 0)
			goto out_close;
	}
	s->addrs[i] = bound;
	s->naddrs++;
	return 0;

out_close:
	for (unsigned k = 0; k < s->nworkers; k++) {
		tk__close(s->workers[k].fds[i]);
		s->workers[k].fds[i] = -1;
	}
	return err;
}

size_t
tk_udp_server_count(const struct tk_udp_server *s)
{
	return s->naddrs;
}

const struct tk_addr *
tk_udp_server_addr(const struct tk_udp_server *s, size_t i)
{
	return i < s->naddrs ? &s->addrs[i] : NULL;
}

static void
set_receiving(struct uworker *w, bool on)
{
	for (size_t i = 0; i < w->srv->naddrs; i++)
		if (w->fds[i] >= 0)
			(void)tk_loop_modify(w->loop, w->fds[i],
					     on ? TK_READABLE : 0);
	if (!on && w->txfd >= 0)
		(void)tk_loop_modify(w->loop, w->txfd, TK_WRITABLE);
}

/*
 * Send the queued replies (sendmmsg); true when all are out.  A reply the
 * kernel refuses for good (not EAGAIN) is counted and skipped.
 */
static bool
flush_replies(struct uworker *w)
{
	while (w->txsent < w->ntx) {
		int n = sendmmsg(w->txfd, w->tx + w->txsent, w->ntx - w->txsent,
				 MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return false;
			ctr_add(&w->serr, 1);
			n = 1;
		} else {
			uint64_t bytes = 0;

			for (int i = 0; i < n; i++)
				bytes += w->tx[w->txsent + i].msg_len;
			ctr_add(&w->dout, (uint64_t)n);
			ctr_add(&w->bout, bytes);
		}
		w->txsent += (unsigned)n;
	}
	w->ntx = w->txsent = 0;
	return true;
}

int
tk_udp_reply(struct tk_udp_req *r, const void *data, size_t len)
{
	struct uworker *w = r->priv_;
	unsigned i = w->ntx;
	struct mmsghdr *m = &w->tx[i];

	if (len > UDP_MAX_SEND)
		return -EMSGSIZE;
	if (w->replied)
		return -ENOSPC;
	w->replied = true;
	/* The request's own bytes stay put until the batch is sent. */
	if (data == r->data)
		w->txiov[i].iov_base = (void *)data;
	else {
		/* Made on the first such reply: echo never needs it. */
		if (w->txbuf == NULL &&
		    (w->txbuf = malloc((size_t)w->srv->opts.batch *
				       TK_UDP_RECV_MAX)) == NULL)
			return -ENOMEM;
		w->txiov[i].iov_base = w->txbuf + (size_t)i * TK_UDP_RECV_MAX;
		memcpy(w->txiov[i].iov_base, data, len);
	}
	w->txiov[i].iov_len = len;
	memset(m, 0, sizeof(*m));
	m->msg_hdr.msg_iov = &w->txiov[i];
	m->msg_hdr.msg_iovlen = 1;
	m->msg_hdr.msg_name = (void *)&r->peer->u;
	m->msg_hdr.msg_namelen = r->peer->len;
	w->ntx++;
	return 0;
}

static void
on_datagrams(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	struct uworker *w = arg;
	struct tk_udp_server *s = w->srv;
	unsigned batch = s->opts.batch;

	(void)loop;
	if (w->blocked) {
		if (!(events & TK_WRITABLE) || !flush_replies(w))
			return;
		w->blocked = false;
		set_receiving(w, true);
		if (fd != w->txfd)
			return;
	}
	for (int round = 0; round < UDP_RECV_PER_RUN / 8; round++) {
		uint64_t bytes = 0;
		int n;

		for (unsigned i = 0; i < batch; i++) {
			struct mmsghdr *m = &w->rx[i];

			w->rxiov[i].iov_base =
				w->rxbuf + (size_t)i * TK_UDP_RECV_MAX;
			w->rxiov[i].iov_len = TK_UDP_RECV_MAX;
			memset(m, 0, sizeof(*m));
			m->msg_hdr.msg_iov = &w->rxiov[i];
			m->msg_hdr.msg_iovlen = 1;
			m->msg_hdr.msg_name = &w->peers[i].u;
			m->msg_hdr.msg_namelen = sizeof(w->peers[i].u);
		}
		n = recvmmsg(fd, w->rx, batch, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				ctr_add(&w->rerr, 1);
			return;
		}
		if (n == 0)
			return;
		ctr_add(&w->batches, 1);
		w->txfd = fd;
		for (int i = 0; i < n; i++) {
			struct mmsghdr *m = &w->rx[i];
			struct tk_udp_req r = {
				.data = w->rxiov[i].iov_base,
				.len = m->msg_len,
				.truncated =
					(m->msg_hdr.msg_flags & MSG_TRUNC) != 0,
				.peer = &w->peers[i],
				.worker = w->id,
				.server = s,
				.priv_ = w,
			};

			w->peers[i].len = m->msg_hdr.msg_namelen;
			bytes += m->msg_len;
			if (r.truncated)
				ctr_add(&w->trunc, 1);
			w->replied = false;
			s->svc->on_datagram(&r, s->svc_arg);
		}
		ctr_add(&w->din, (uint64_t)n);
		ctr_add(&w->bin, bytes);
		if (!flush_replies(w)) {
			/* Wait to send before taking more. */
			w->blocked = true;
			set_receiving(w, false);
			return;
		}
		if ((unsigned)n < batch)
			return;
	}
}

static void *
worker_main(void *arg)
{
	struct uworker *w = arg;

	(void)tk_loop_run(w->loop);
	return NULL;
}

int
tk_udp_server_start(struct tk_udp_server *s)
{
	sigset_t all, old;
	int err = 0;

	if (s->naddrs == 0)
		return -EDESTADDRREQ;
	if (s->started)
		return -EBUSY;
	for (unsigned k = 0; k < s->nworkers; k++)
		for (size_t i = 0; i < s->naddrs; i++) {
			struct uworker *w = &s->workers[k];

			err = tk_loop_watch(w->loop, w->fds[i], TK_READABLE,
					    on_datagrams, w);
			if (err < 0)
				return err;
		}
	s->started = true;
	if (s->nworkers == 1)
		return 0;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned k = 0; k < s->nworkers; k++) {
		struct uworker *w = &s->workers[k];

		err = -pthread_create(&w->thread, NULL, worker_main, w);
		if (err < 0)
			break;
		w->thread_started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err < 0)
		tk_udp_server_stop(s);
	return err;
}

static void
stop_worker(struct tk_loop *loop, void *arg)
{
	struct uworker *w = arg;

	for (size_t i = 0; i < SRV_MAX_ADDRS; i++) {
		if (w->fds[i] < 0)
			continue;
		tk_loop_unwatch(w->loop, w->fds[i]);
		tk__close(w->fds[i]);
		w->fds[i] = -1;
	}
	if (w->own_loop)
		tk_loop_stop(loop);
}

void
tk_udp_server_stop(struct tk_udp_server *s)
{
	for (unsigned k = 0; k < s->nworkers; k++) {
		struct uworker *w = &s->workers[k];

		if (!w->thread_started)
			stop_worker(w->loop, w);
		else
			(void)tk_loop_post(w->loop, stop_worker, w);
	}
	for (unsigned k = 0; k < s->nworkers; k++) {
		struct uworker *w = &s->workers[k];

		if (w->thread_started) {
			pthread_join(w->thread, NULL);
			w->thread_started = false;
		}
	}
}

static uint64_t
ctr_get(const _Atomic uint64_t *c)
{
	return atomic_load_explicit((_Atomic uint64_t *)c,
				    memory_order_relaxed);
}

void
tk_udp_server_get_stats(const struct tk_udp_server *s,
			struct tk_udp_server_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->workers = s->nworkers;
	for (unsigned k = 0; k < s->nworkers; k++) {
		const struct uworker *w = &s->workers[k];

		out->datagrams_in += ctr_get(&w->din);
		out->datagrams_out += ctr_get(&w->dout);
		out->bytes_in += ctr_get(&w->bin);
		out->bytes_out += ctr_get(&w->bout);
		out->truncated += ctr_get(&w->trunc);
		out->send_errors += ctr_get(&w->serr);
		out->recv_errors += ctr_get(&w->rerr);
		out->batches_in += ctr_get(&w->batches);
	}
}

void
tk_udp_server_free(struct tk_udp_server *s)
{
	if (s == NULL)
		return;
	tk_udp_server_stop(s);
	for (unsigned k = 0; k < s->nworkers; k++) {
		struct uworker *w = &s->workers[k];

		if (w->own_loop && w->loop != NULL)
			tk_loop_free(w->loop);
		worker_release(w);
	}
	free(s->workers);
	free(s);
}

/* RFC 862 and 863 over UDP. */
static void
udp_echo(struct tk_udp_req *r, void *arg)
{
	(void)arg;
	(void)tk_udp_reply(r, r->data, r->len);
}

static void
udp_discard(struct tk_udp_req *r, void *arg)
{
	(void)r;
	(void)arg;
}

const struct tk_udp_service tk_udp_service_echo = {
	.name = "echo",
	.on_datagram = udp_echo,
};

const struct tk_udp_service tk_udp_service_discard = {
	.name = "discard",
	.on_datagram = udp_discard,
};

const struct tk_udp_service *
tk_udp_service_find(const char *name)
{
	if (strcasecmp(name, "echo") == 0)
		return &tk_udp_service_echo;
	if (strcasecmp(name, "discard") == 0)
		return &tk_udp_service_discard;
	return NULL;
}
