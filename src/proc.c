/* proc.c: child processes for connections (tcpkit/exec.h): spawned with the
 * socket as stdio, reaped on the loop through pidfds, bounded in number. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conn_int.h"
#include "tcpkit/exec.h"

extern char **environ;

/* Without pidfds (Linux < 5.3), children are looked for this often. */
#define EXEC_POLL_MS	   100u
#define EXEC_KILL_AFTER_MS 2000u
#define EXEC_ENV_VARS	   5 /* the last only with a client certificate */
#define EXEC_ENV_LEN	   (32 + 256) /* a name, an address or a subject */

struct child {
	struct tk_exec *x;
	pid_t pid;
	int pidfd; /* -1: found by the poll timer instead */
	struct tk_addr peer;
	uint64_t started;
	struct child *next, *prev;
};

/* A connection over max_children, waiting for a child to exit. */
struct waiter {
	struct tk_conn *c;
	struct waiter *next, *prev;
};

struct tk_exec {
	struct tk_loop *loop;
	char **argv; /* one allocation: the pointers, then the strings */
	bool stderr_to_peer;
	unsigned max_children;
	tk_exec_exit_cb on_exit;
	void *arg;
	uint64_t kill_after_ms;
	size_t running;
	struct child children; /* circular list head */
	struct waiter waiting; /* circular list head, oldest first */
	struct tk_timer *poll; /* only while a child has no pidfd */
};

static void
child_unlink(struct child *ch)
{
	ch->prev->next = ch->next;
	ch->next->prev = ch->prev;
}

static void
waiter_unlink(struct waiter *w)
{
	w->prev->next = w->next;
	w->next->prev = w->prev;
}

int
tk_exec_new(struct tk_loop *loop, const struct tk_exec_opts *opts,
	    struct tk_exec **out)
{
	struct tk_exec *x;
	size_t n = 0, bytes = 0;
	char *p;

	*out = NULL;
	if (opts == NULL || opts->argv == NULL || opts->argv[0] == NULL ||
	    opts->argv[0][0] == '\0')
		return -EINVAL;
	while (opts->argv[n] != NULL)
		bytes += strlen(opts->argv[n++]) + 1;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return -ENOMEM;
	x->argv = malloc((n + 1) * sizeof(char *) + bytes);
	if (x->argv == NULL) {
		free(x);
		return -ENOMEM;
	}
	p = (char *)(x->argv + n + 1);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(opts->argv[i]) + 1;

		memcpy(p, opts->argv[i], len);
		x->argv[i] = p;
		p += len;
	}
	x->argv[n] = NULL;
	x->loop = loop;
	x->stderr_to_peer = opts->stderr_to_peer;
	x->max_children = opts->max_children;
	x->on_exit = opts->on_exit;
	x->arg = opts->arg;
	x->kill_after_ms =
		opts->kill_after_ms ? opts->kill_after_ms : EXEC_KILL_AFTER_MS;
	x->children.next = x->children.prev = &x->children;
	x->waiting.next = x->waiting.prev = &x->waiting;
	*out = x;
	return 0;
}

size_t
tk_exec_running(const struct tk_exec *x)
{
	return x->running;
}

/*
 * The child's environment: ours, less any TCPKIT_ variable we set (a
 * nested tcpkit's would be stale), plus the connection's.  Built apart:
 * setenv() in the parent would race other threads and leak.
 */
static char **
build_env(const struct tk_addr *peer, const struct tk_addr *local,
	  const char *subject, char *vars)
{
	static const char *const names[EXEC_ENV_VARS] = {
		"TCPKIT_PEER_ADDR=",	      "TCPKIT_PEER_PORT=",
		"TCPKIT_LOCAL_ADDR=",	      "TCPKIT_LOCAL_PORT=",
		"TCPKIT_TLS_CLIENT_SUBJECT=",
	};
	size_t n = 0, k = 0;
	char ip[TK_ADDRSTRLEN];
	char **env;

	while (environ != NULL && environ[n] != NULL)
		n++;
	env = malloc((n + EXEC_ENV_VARS + 1) * sizeof(char *));
	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		bool ours = false;

		for (size_t j = 0; j < EXEC_ENV_VARS; j++)
			if (strncmp(environ[i], names[j], strlen(names[j])) ==
			    0)
				ours = true;
		if (!ours)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < EXEC_ENV_VARS; j++) {
		const struct tk_addr *a = j < 2 ? peer : local;
		char *v = vars + j * EXEC_ENV_LEN;

		if (j == 4) {
			if (subject == NULL)
				break;
			snprintf(v, EXEC_ENV_LEN, "%s%s", names[j], subject);
		} else if (j % 2 == 0)
			snprintf(v, EXEC_ENV_LEN, "%s%s", names[j],
				 tk_addr_format_ip(a, ip, sizeof(ip)));
		else
			snprintf(v, EXEC_ENV_LEN, "%s%u", names[j],
				 (unsigned)tk_addr_port(a));
		env[k++] = v;
	}
	env[k] = NULL;
	return env;
}

/*
 * posix_spawn() rather than fork(): glibc runs it as clone(CLONE_VM |
 * CLONE_VFORK), so a server with a large heap does not copy its page
 * tables per connection, and a program that cannot be run is an error
 * returned here rather than a child that exits 127.
 */
static int
spawn(struct tk_exec *x, int fd, const struct tk_addr *peer,
      const struct tk_addr *local, const char *subject, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char vars[EXEC_ENV_VARS * EXEC_ENV_LEN];
	char **env = build_env(peer, local, subject, vars);
	int err;

	if (env == NULL)
		return -ENOMEM;
	if ((err = posix_spawn_file_actions_init(&fa)) != 0) {
		free(env);
		return -err;
	}
	if ((err = posix_spawnattr_init(&attr)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		free(env);
		return -err;
	}
	sigemptyset(&none);
	sigfillset(&all);
	/* dup2() clears close-on-exec on the copies; the rest is closed. */
	err = posix_spawn_file_actions_adddup2(&fa, fd, STDIN_FILENO);
	if (err == 0)
		err = posix_spawn_file_actions_adddup2(&fa, fd, STDOUT_FILENO);
	if (err == 0 && x->stderr_to_peer)
		err = posix_spawn_file_actions_adddup2(&fa, fd, STDERR_FILENO);
#if defined(__GLIBC__) &&                                                      \
	(__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
	/* Even fds the process inherited without close-on-exec. */
	if (err == 0)
		err = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#else
		/*
		 * XXX: elsewhere (musl) only close-on-exec closes: every fd the
		 * library opens has it, fds the program inherited without it
		 * stay open in the child.
		 */
#endif
	/*
	 * The loop blocks the signals it reads from a signalfd, and has
	 * handlers for others: a child starts with neither.
	 */
	if (err == 0)
		err = posix_spawnattr_setsigmask(&attr, &none);
	if (err == 0)
		err = posix_spawnattr_setsigdefault(&attr, &all);
	if (err == 0)
		err = posix_spawnattr_setflags(
			&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (err == 0)
		err = posix_spawnp(pid, x->argv[0], &fa, &attr, x->argv, env);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	return -err;
}

static void reap(struct child *ch);

static void
on_pidfd(struct tk_loop *loop, int fd, unsigned events, void *arg)
{
	(void)loop;
	(void)fd;
	(void)events;
	reap(arg);
}

static void
on_poll(struct tk_timer *t, void *arg)
{
	struct tk_exec *x = arg;
	struct child *ch, *next;

	(void)t;
	for (ch = x->children.next; ch != &x->children; ch = next) {
		next = ch->next;
		if (ch->pidfd < 0)
			reap(ch);
	}
}

static int
watch_child(struct tk_exec *x, struct child *ch)
{
	int err;

	ch->pidfd = (int)syscall(SYS_pidfd_open, ch->pid, 0);
	if (ch->pidfd >= 0) {
		err = tk__loop_watch_own(x->loop, ch->pidfd, TK_READABLE,
					 on_pidfd, ch);
		if (err == 0)
			return 0;
		close(ch->pidfd);
		ch->pidfd = -1;
	}
	/* No pidfd (an old kernel, or out of fds): look for it in turn. */
	if (x->poll == NULL) {
		x->poll = tk__timer_alloc(x->loop, on_poll, x);
		if (x->poll == NULL)
			return -ENOMEM;
	}
	if (!tk_timer_is_active(x->poll))
		return tk_timer_start(x->poll, EXEC_POLL_MS, EXEC_POLL_MS);
	return 0;
}

static void serve_waiting(struct tk_exec *x);

static void
child_free(struct child *ch)
{
	struct tk_exec *x = ch->x;
	bool polled = false;

	if (ch->pidfd >= 0) {
		tk_loop_unwatch(x->loop, ch->pidfd);
		close(ch->pidfd);
	}
	child_unlink(ch);
	x->running--;
	free(ch);
	/* The poll timer runs only while a child has no pidfd. */
	for (ch = x->children.next; ch != &x->children; ch = ch->next)
		if (ch->pidfd < 0)
			polled = true;
	if (x->poll != NULL && !polled)
		tk_timer_stop(x->poll);
}

/* A child may have ended: collect it, report it, let a waiter in. */
static void
reap(struct child *ch)
{
	struct tk_exec *x = ch->x;
	struct tk_exec_exit e = { .pid = ch->pid, .peer = ch->peer };
	pid_t r;

	do
		r = waitpid(ch->pid, &e.status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return; /* not yet (a spurious wakeup) */
	if (r < 0)
		e.status = TK_EXEC_STATUS_UNKNOWN; /* reaped by someone else */
	e.duration_ms = tk_loop_now(x->loop) - ch->started;
	child_free(ch);
	if (x->on_exit != NULL)
		x->on_exit(x, &e, x->arg);
	serve_waiting(x);
}

static bool
at_bound(const struct tk_exec *x)
{
	return x->max_children != 0 && x->running >= x->max_children;
}

/*
 * TLS: the child cannot have the session, so it gets one end of a
 * socketpair and the loop copies between the other end and the TLS
 * connection.  Each direction stops reading when the other side has
 * PUMP_HIGH bytes waiting and resumes when that has drained; a FIN is
 * carried across as a half-close (close_notify, then FIN, on the TLS side).
 */
#define PUMP_HIGH (256u * 1024)

struct pump {
	struct tk_conn *net;  /* the TLS connection (tk_service_exec's) */
	struct tk_conn *pipe; /* our end of the child's socketpair */
};

static struct tk_conn *
pump_other(struct pump *p, struct tk_conn *c)
{
	return c == p->net ? p->pipe : p->net;
}

static void
pump_data(struct pump *p, struct tk_conn *c, const char *data, ssize_t n)
{
	struct tk_conn *to = pump_other(p, c);
	int err;

	if (to == NULL) {
		tk_conn_close(c, 0);
		return;
	}
	if (n == TK_EOF) {
		tk_conn_shutdown(to);
		return;
	}
	if ((err = tk_conn_write(to, data, (size_t)n)) < 0) {
		/*
		 * The program reads no more (it closed its input, or exited):
		 * its input is dropped, as its own socket would, but what it
		 * wrote still goes to the peer, then the end.
		 */
		if (to == p->pipe && tk_conn_is_open(to))
			return;
		tk_conn_close(c, -EPIPE);
		return;
	}
	if (tk_conn_pending(to) > PUMP_HIGH)
		tk_conn_pause(c); /* until to drains */
}

static void
pump_drain(struct pump *p, struct tk_conn *c)
{
	struct tk_conn *from = pump_other(p, c);

	if (from != NULL)
		tk_conn_resume(from);
}

/* One side is gone: the other ends too (what it has queued is written). */
static void
pump_close(struct pump *p, struct tk_conn *c, int err)
{
	struct tk_conn *other = pump_other(p, c);

	if (c == p->net)
		p->net = NULL;
	else
		p->pipe = NULL;
	if (other != NULL) {
		if (err != 0)
			tk_conn_close(other, err);
		else
			tk_conn_end(other);
	}
	if (p->net == NULL && p->pipe == NULL)
		free(p);
}

static int
pipe_open(struct tk_conn *c, void *arg)
{
	((struct pump *)arg)->pipe = c;
	return 0;
}

static void
pipe_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	pump_data(arg, c, data, n);
}

static void
pipe_drain(struct tk_conn *c, void *arg)
{
	pump_drain(arg, c);
}

static void
pipe_close(struct tk_conn *c, int err, void *arg)
{
	pump_close(arg, c, err);
}

static const struct tk_service pipe_service = {
	.name = "exec-pipe",
	.open = pipe_open,
	.data = pipe_data,
	.drain = pipe_drain,
	.close = pipe_close,
};

static void
net_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	pump_data(arg, c, data, n);
}

static void
net_drain(struct tk_conn *c, void *arg)
{
	pump_drain(arg, c);
}

static void
net_close(struct tk_conn *c, int err, void *arg)
{
	pump_close(arg, c, err);
}

/* A server's drain lets the program finish: the pump ends with it. */
static void
net_stop(struct tk_conn *c, void *arg)
{
	(void)c;
	(void)arg;
}

static const struct tk_service net_service = {
	.name = "exec-tls",
	.data = net_data,
	.drain = net_drain,
	.close = net_close,
	.stop = net_stop,
};

/* The child's end of a socketpair for a TLS connection; ours is pumped. */
static int
pump_start(struct tk_exec *x, struct tk_conn *c, struct pump **out, int *fd)
{
	struct tk_conn_opts o;
	struct tk_conn *pc;
	struct pump *p;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		close(sv[0]);
		close(sv[1]);
		return -ENOMEM;
	}
	p->net = c;
	tk_conn_opts_init(&o);
	/*
	 * The pump bounds each direction (PUMP_HIGH); the connection's own
	 * backpressure, made for echoing services, would stop reading the
	 * program's output while the program waits for us to read it before
	 * it reads more input: a deadlock.
	 */
	o.max_pending = TK_DEFAULT_MAX_OUTPUT;
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 ||
	    (pc = tk__conn_adopt(x->loop, sv[0], NULL, NULL, &o, &pipe_service,
				 p)) == NULL) {
		int err = errno != 0 ? -errno : -ENOMEM;

		close(sv[0]);
		close(sv[1]);
		free(p);
		return err;
	}
	/* A program may stop reading, yet what it wrote must still go. */
	tk__conn_peer_may_stop(pc);
	*out = p;
	*fd = sv[1];
	return 0;
}

static void
child_add(struct tk_exec *x, struct child *ch)
{
	ch->started = tk_loop_now(x->loop);
	ch->next = &x->children;
	ch->prev = x->children.prev;
	ch->prev->next = ch;
	x->children.prev = ch;
	x->running++;
	if (watch_child(x, ch) < 0) {
		/*
		 * It must not outlive our knowing of it: wait for it now, and
		 * with SIGKILL, which a child cannot catch or ignore (a
		 * SIGTERM it handled would stall the loop in the waitpid).
		 */
		kill(ch->pid, SIGKILL);
		(void)waitpid(ch->pid, NULL, 0);
		child_free(ch);
	}
}

static int
spawn_tls(struct tk_exec *x, struct tk_conn *c, struct child *ch)
{
	struct tk_tls_info info;
	const char *subject = NULL;
	struct pump *p = NULL;
	int fd = -1, err;

	if (tk_conn_tls_info(c, &info) == 0 && info.peer_cert)
		subject = info.subject;
	if ((err = pump_start(x, c, &p, &fd)) < 0)
		return err;
	err = spawn(x, fd, tk_conn_peer(c), tk_conn_local(c), subject,
		    &ch->pid);
	close(fd);
	if (err < 0) {
		/*
		 * Our end closes; the pump frees itself with it.  c is left as
		 * it was: the pump lets go of it first, or the close would end
		 * c too (and the pump, still holding c, would never be freed).
		 */
		p->net = NULL;
		tk_conn_close(p->pipe, 0);
		return err;
	}
	/* c is the pump's from now on, whoever's service it ran. */
	c->svc = &net_service;
	c->arg = p;
	child_add(x, ch);
	return 0;
}

int
tk_exec_spawn(struct tk_exec *x, struct tk_conn *c)
{
	struct child *ch;
	int fd = tk_conn_fd(c), flags, err;

	if (!tk_conn_is_open(c) || fd < 0)
		return -ENOTCONN;
	if (tk_conn_pending(c) != 0)
		return -EBUSY;
	if (at_bound(x))
		return -EAGAIN;
	ch = calloc(1, sizeof(*ch));
	if (ch == NULL)
		return -ENOMEM;
	ch->x = x;
	ch->pidfd = -1;
	ch->peer = *tk_conn_peer(c);
	if (tk_conn_is_tls(c)) {
		err = spawn_tls(x, c, ch);
		if (err < 0)
			free(ch);
		return err;
	}
	/* The child reads and writes as programs do: blocking. */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
		free(ch);
		return -errno;
	}
	err = spawn(x, fd, tk_conn_peer(c), tk_conn_local(c), NULL, &ch->pid);
	if (err == 0)
		err = tk_conn_detach(c, &fd);
	if (err < 0) {
		/* c is unchanged: ours again, non-blocking. */
		(void)fcntl(fd, F_SETFL, flags);
		if (ch->pid > 0) {
			/* Unreachable after the checks above, but safe. */
			kill(ch->pid, SIGKILL);
			(void)waitpid(ch->pid, NULL, 0);
		}
		free(ch);
		return err;
	}
	close(fd); /* the child's copy is the stream now */
	child_add(x, ch);
	return 0;
}

static void
report_spawn_error(struct tk_exec *x, struct tk_conn *c, int err)
{
	struct tk_exec_exit e = { .spawn_err = err, .peer = *tk_conn_peer(c) };

	if (x->on_exit != NULL)
		x->on_exit(x, &e, x->arg);
}

/* Children exited: start the oldest waiting connections. */
static void
serve_waiting(struct tk_exec *x)
{
	while (x->waiting.next != &x->waiting && !at_bound(x)) {
		struct waiter *w = x->waiting.next;
		struct tk_conn *c = w->c;
		int err;

		waiter_unlink(w);
		free(w);
		tk_conn_set_data(c, NULL);
		tk_conn_resume(c);
		err = tk_exec_spawn(x, c);
		if (err < 0) {
			report_spawn_error(x, c, err);
			tk_conn_close(c, err);
		}
	}
}

static int
exec_open(struct tk_conn *c, void *arg)
{
	struct tk_exec *x = arg;
	struct waiter *w;
	int err = tk_exec_spawn(x, c);

	if (err != -EAGAIN) {
		if (err < 0)
			report_spawn_error(x, c, err);
		return err;
	}
	/* Over the bound: wait, unread, first come first served. */
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -ENOMEM;
	w->c = c;
	w->next = &x->waiting;
	w->prev = x->waiting.prev;
	w->prev->next = w;
	x->waiting.prev = w;
	tk_conn_set_data(c, w);
	tk_conn_pause(c);
	return 0;
}

static void
exec_close(struct tk_conn *c, int err, void *arg)
{
	struct waiter *w = tk_conn_data(c);

	(void)err;
	(void)arg;
	if (w == NULL)
		return;
	/* It left (or was stopped) while waiting. */
	waiter_unlink(w);
	free(w);
}

/* A waiting connection holds no child yet: nothing to finish. */
static void
exec_stop(struct tk_conn *c, void *arg)
{
	(void)arg;
	tk_conn_end(c);
}

const struct tk_service tk_service_exec = {
	.name = "exec",
	.open = exec_open,
	.close = exec_close,
	.stop = exec_stop,
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void
tk_exec_free(struct tk_exec *x)
{
	struct child *ch, *next;
	uint64_t deadline;

	if (x == NULL)
		return;
	while (x->waiting.next != &x->waiting) {
		struct waiter *w = x->waiting.next;

		waiter_unlink(w);
		tk_conn_set_data(w->c, NULL);
		tk_conn_close(w->c, -ECANCELED);
		free(w);
	}
	for (ch = x->children.next; ch != &x->children; ch = ch->next)
		kill(ch->pid, SIGTERM);
	deadline = mono_ms() + x->kill_after_ms;
	while (x->children.next != &x->children) {
		bool kill_now = mono_ms() >= deadline;

		for (ch = x->children.next; ch != &x->children; ch = next) {
			next = ch->next;
			if (kill_now)
				kill(ch->pid, SIGKILL);
			if (waitpid(ch->pid, NULL, kill_now ? 0 : WNOHANG) != 0)
				child_free(ch);
		}
		if (x->children.next != &x->children)
			nanosleep(&(struct timespec){ .tv_nsec = 10000000 },
				  NULL);
	}
	if (x->poll != NULL)
		tk_timer_free(x->poll);
	free(x->argv);
	free(x);
}
