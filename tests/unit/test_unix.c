/* test_unix.c: UNIX stream sockets: addresses, connect, listen on a path. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(unix, .timeout = 30);

/* A fresh directory per test, and a socket path in it. */
struct tdir {
	char dir[64];
	char path[128];
};

static void
tdir_new(struct tdir *d)
{
	strcpy(d->dir, "/tmp/tk-unix-XXXXXX");
	cr_assert_not_null(mkdtemp(d->dir));
	snprintf(d->path, sizeof(d->path), "%s/s.sock", d->dir);
}

static void
tdir_free(struct tdir *d)
{
	(void)unlink(d->path);
	cr_assert_eq(rmdir(d->dir), 0, "%s left behind: %s", d->dir,
		     strerror(errno));
}

static struct tk_addr
uaddr(const char *path)
{
	struct tk_addr a;

	cr_assert_eq(tk_addr_from_unix(path, strlen(path), false, &a), 0);
	return a;
}

/* A socket bound at path outside the library; listening if asked. */
static int
raw_bind(const char *path, bool listening)
{
	struct tk_addr a = uaddr(path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	cr_assert_eq(bind(fd, &a.u.sa, a.len), 0, "bind: %s", strerror(errno));
	if (listening)
		cr_assert_eq(listen(fd, 8), 0);
	return fd;
}

/* A blocking client: connect, send msg, read the echo back, close. */
static void
echo_once(const struct tk_addr *a, const char *msg)
{
	char buf[256];
	size_t got = 0, n = strlen(msg);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = 5 };

	cr_assert(fd >= 0);
	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)),
		     0);
	cr_assert_eq(connect(fd, &a->u.sa, a->len), 0, "connect: %s",
		     strerror(errno));
	cr_assert_eq(write(fd, msg, n), (ssize_t)n);
	while (got < n) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - got);

		cr_assert(r > 0, "echo cut after %zu bytes", got);
		got += (size_t)r;
	}
	cr_assert_eq(memcmp(buf, msg, n), 0);
	close(fd);
}

Test(unix, format_and_compare)
{
	char buf[TK_ADDRSTRLEN], name[107], big[108];
	struct tk_addr a, b;

	a = uaddr("/run/app.sock");
	cr_assert_str_eq(t_fmt(&a, buf), "unix:/run/app.sock");
	cr_assert_eq(tk_addr_family(&a), AF_UNIX);
	cr_assert(tk_addr_is_loopback(&a));
	cr_assert(!tk_addr_is_any(&a));
	cr_assert_eq(tk_addr_port(&a), 0);
	b = uaddr("/run/app.sock");
	cr_assert(tk_addr_equal(&a, &b));
	b = uaddr("/run/app.soc");
	cr_assert(!tk_addr_equal(&a, &b));

	/* Abstract: '@' for the leading NUL, odd bytes escaped. */
	cr_assert_eq(tk_addr_from_unix("x\001\\y", 4, true, &a), 0);
	cr_assert_str_eq(t_fmt(&a, buf), "unix:@x\\x01\\x5cy");
	cr_assert_eq(tk_addr_from_unix("x\0", 2, true, &b), 0);
	cr_assert(!tk_addr_equal(&a, &b));
	cr_assert_eq(tk_addr_from_unix("x", 1, false, &b), 0);
	cr_assert(!tk_addr_equal(&a, &b), "abstract and path differ");

	/* 107 bytes fit, 108 do not; no NUL inside a path; not empty. */
	memset(name, 'a', sizeof(name));
	memset(big, 'a', sizeof(big));
	cr_assert_eq(tk_addr_from_unix(name, sizeof(name), false, &a), 0);
	cr_assert_eq(strlen(t_fmt(&a, buf)), 5 + sizeof(name));
	cr_assert_eq(tk_addr_from_unix(name, sizeof(name), true, &a), 0);
	cr_assert_eq(tk_addr_from_unix(big, sizeof(big), false, &a),
		     -ENAMETOOLONG);
	cr_assert_eq(tk_addr_from_unix(big, sizeof(big), true, &a),
		     -ENAMETOOLONG);
	cr_assert_eq(tk_addr_from_unix("a\0b", 3, false, &a), TK_EBADADDR);
	cr_assert_eq(tk_addr_from_unix("", 0, false, &a), TK_EBADADDR);

	/* The longest escaped name fits TK_ADDRSTRLEN whole. */
	memset(name, 0x01, sizeof(name));
	cr_assert_eq(tk_addr_from_unix(name, sizeof(name), true, &a), 0);
	cr_assert_eq(strlen(t_fmt(&a, buf)), 6 + 4 * sizeof(name));

	/* An unnamed socket (an accepted client's) and a short buffer. */
	memset(&a, 0, sizeof(a));
	a.u.un.sun_family = AF_UNIX;
	a.len = sizeof(sa_family_t);
	cr_assert_str_eq(t_fmt(&a, buf), "unix:");
	a = uaddr("/run/app.sock");
	cr_assert_str_eq(tk_addr_format(&a, buf, 9), "unix:/ru");
}

/* Client side of the echo test: send, half-close, collect the echo. */
struct cl {
	char in[64];
	size_t n;
	bool eof, closed;
	int err;
};

static int
cl_open(struct tk_conn *c, void *arg)
{
	(void)arg;
	cr_assert_eq(tk_conn_write(c, "hello unix", 10), 0);
	tk_conn_shutdown(c);
	return 0;
}

static void
cl_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct cl *cl = arg;

	(void)c;
	if (n == TK_EOF) {
		cl->eof = true;
		tk_conn_close(c, 0);
		return;
	}
	cr_assert_leq(cl->n + (size_t)n, sizeof(cl->in));
	memcpy(cl->in + cl->n, data, (size_t)n);
	cl->n += (size_t)n;
}

static void
cl_close(struct tk_conn *c, int err, void *arg)
{
	struct cl *cl = arg;

	(void)c;
	cl->closed = true;
	cl->err = err;
}

static const struct tk_service client_svc = {
	.name = "unix-client",
	.open = cl_open,
	.data = cl_data,
	.close = cl_close,
};

static char accepted_peer[TK_ADDRSTRLEN];

static void
note_peer(struct tk_server *s, enum tk_server_event ev, struct tk_conn *c,
	  const struct tk_addr *peer, int err, void *arg)
{
	(void)s;
	(void)c;
	(void)err;
	(void)arg;
	if (ev == TK_SERVER_OPEN)
		tk_addr_format(peer, accepted_peer, sizeof(accepted_peer));
}

Test(unix, connect_and_echo)
{
	struct tdir d;
	struct tk_loop *loop = t_loop_new();
	struct tk_server_opts o;
	struct tk_server *s;
	struct tk_addr a;
	struct tk_addrlist list;
	struct tk_conn *c;
	struct cl cl = { 0 };
	char buf[TK_ADDRSTRLEN];

	tdir_new(&d);
	a = uaddr(d.path);
	tk_server_opts_init(&o);
	o.on_event = note_peer;
	s = t_server_new(loop, &o, &tk_service_echo, NULL);
	/* tk_server_listen() takes a UNIX address as it is. */
	cr_assert_eq(tk_server_listen(s, &a, false), 0);
	cr_assert_eq(tk_server_listener_count(s), 1);
	cr_assert_str_eq(t_fmt(tk_server_addr(s, 0), buf),
			 t_fmt(&a, (char[TK_ADDRSTRLEN]){ 0 }));
	cr_assert_eq(tk_server_start(s), 0);

	list = t_list(&a, 1);
	cr_assert_eq(tk_conn_connect(loop, &list, NULL, &client_svc, &cl, &c),
		     0);
	RUN_UNTIL(loop, 5000, cl.closed);
	cr_assert_eq(cl.err, 0, "%s", tk_strerror(cl.err));
	cr_assert(cl.eof);
	cr_assert_eq(cl.n, 10);
	cr_assert_eq(memcmp(cl.in, "hello unix", 10), 0);
	/* An accepted UNIX client has no name. */
	cr_assert_str_eq(accepted_peer, "unix:");
	tk_server_free(s);
	/* Removed with the server. */
	cr_assert_eq(access(d.path, F_OK), -1);
	tk_loop_free(loop);
	tdir_free(&d);
}

static struct tk_server *
userver(struct tk_loop *loop, unsigned workers)
{
	struct tk_server_opts o;

	tk_server_opts_init(&o);
	o.workers = workers;
	return t_server_new(loop, &o, &tk_service_echo, NULL);
}

Test(unix, stale_file_replaced)
{
	struct tdir d;
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = userver(loop, 2);
	struct tk_addr a;
	struct stat st;

	tdir_new(&d);
	a = uaddr(d.path);
	/* A dead server's socket file: bound, then closed, not removed. */
	close(raw_bind(d.path, true));
	cr_assert_eq(stat(d.path, &st), 0);
	cr_assert_eq(tk_server_listen(s, &a, false), 0);
	cr_assert_eq(tk_server_start(s), 0);
	echo_once(&a, "after a stale file");
	tk_server_free(s);
	tk_loop_free(loop);
	tdir_free(&d);
}

Test(unix, live_socket_refused)
{
	struct tdir d;
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = userver(loop, 1);
	struct tk_addr a;
	int fd, cfd;

	tdir_new(&d);
	a = uaddr(d.path);
	fd = raw_bind(d.path, true);
	cr_assert_eq(tk_server_listen(s, &a, false), -EADDRINUSE);
	cr_assert_eq(tk_server_listener_count(s), 0);
	tk_server_free(s);
	/* The live server's file is still there, and still answers. */
	cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(connect(cfd, &a.u.sa, a.len), 0);
	close(cfd);
	close(fd);
	tk_loop_free(loop);
	tdir_free(&d);
}

Test(unix, non_socket_kept)
{
	struct tdir d;
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = userver(loop, 1);
	struct tk_addr a;
	char buf[16] = { 0 };
	FILE *f;

	tdir_new(&d);
	a = uaddr(d.path);
	f = fopen(d.path, "w");
	cr_assert_not_null(f);
	fputs("precious", f);
	fclose(f);
	cr_assert_eq(tk_server_listen(s, &a, false), -EEXIST);
	tk_server_free(s);
	f = fopen(d.path, "r");
	cr_assert_not_null(f, "the file was removed");
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	cr_assert_str_eq(buf, "precious");
	tk_loop_free(loop);
	tdir_free(&d);
}

Test(unix, mode_applied)
{
	struct tdir d;
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = userver(loop, 1);
	struct tk_unix_listen_opts uo;
	struct tk_addr a;
	struct stat st;

	tdir_new(&d);
	a = uaddr(d.path);
	tk_unix_listen_opts_init(&uo);
	uo.mode = 0600;
	cr_assert_eq(tk_server_listen_unix(s, &a, &uo), 0);
	cr_assert_eq(stat(d.path, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o",
		     (unsigned)(st.st_mode & 07777));
	tk_server_free(s);

	/* Wider than the umask would give, and a bad one refused. */
	s = userver(loop, 1);
	uo.mode = 0666;
	cr_assert_eq(tk_server_listen_unix(s, &a, &uo), 0);
	cr_assert_eq(stat(d.path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0666);
	tk_server_free(s);
	s = userver(loop, 1);
	uo.mode = 010000;
	cr_assert_eq(tk_server_listen_unix(s, &a, &uo), -EINVAL);
	cr_assert_eq(access(d.path, F_OK), -1, "no file for a refused mode");
	tk_server_free(s);
	tk_loop_free(loop);
	tdir_free(&d);
}

Test(unix, owner_and_group)
{
	struct tdir d;
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = userver(loop, 1);
	struct tk_unix_listen_opts uo;
	struct tk_addr a;
	struct stat st;

	tdir_new(&d);
	a = uaddr(d.path);
	tk_unix_listen_opts_init(&uo);
	if (geteuid() != 0) {
		/* Giving a file away needs root: refused, nothing left. */
		uo.owner = geteuid() + 1;
		cr_assert_eq(tk_server_listen_unix(s, &a, &uo), -EPERM);
		cr_assert_eq(access(d.path, F_OK), -1, "a file left behind");
	} else {
		uo.owner = 65534;
		uo.group = 65534;
		uo.mode = 0660;
		cr_assert_eq(tk_server_listen_unix(s, &a, &uo), 0);
		cr_assert_eq(stat(d.path, &st), 0);
		cr_assert_eq(st.st_uid, 65534);
		cr_assert_eq(st.st_gid, 65534);
		cr_assert_eq(st.st_mode & 07777, 0660);
	}
	tk_server_free(s);
	tk_loop_free(loop);
	tdir_free(&d);
}

Test(unix, removed_only_if_ours)
{
	struct tdir d;
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = userver(loop, 1);
	struct tk_addr a;
	struct stat st;
	int fd;

	tdir_new(&d);
	a = uaddr(d.path);
	cr_assert_eq(tk_server_listen(s, &a, false), 0);
	/* A newer server took the path over (its own socket file). */
	cr_assert_eq(unlink(d.path), 0);
	fd = raw_bind(d.path, true);
	tk_server_free(s);
	cr_assert_eq(stat(d.path, &st), 0, "the newer socket was removed");
	close(fd);
	tk_loop_free(loop);
	tdir_free(&d);
}

Test(unix, abstract_name)
{
	struct tk_loop *loop = t_loop_new();
	/* Workers: the blocking client below runs while they serve. */
	struct tk_server *s = userver(loop, 2);
	struct tk_unix_listen_opts uo;
	struct tk_addr a;
	char name[64];

	snprintf(name, sizeof(name), "tk-unix-test-%d", (int)getpid());
	cr_assert_eq(tk_addr_from_unix(name, strlen(name), true, &a), 0);
	tk_unix_listen_opts_init(&uo);
	uo.mode = 0600;
	cr_assert_eq(tk_server_listen_unix(s, &a, &uo), -EINVAL);
	cr_assert_eq(tk_server_listen(s, &a, false), 0);
	cr_assert_eq(tk_server_start(s), 0);
	cr_assert_eq(access(name, F_OK), -1);
	echo_once(&a, "abstract");
	tk_server_free(s);
	tk_loop_free(loop);
}

/* Clients on threads of their own, while two workers serve. */
#define NCLIENTS 50
#define NTHREADS 5

static void *
clients(void *arg)
{
	for (int i = 0; i < NCLIENTS / NTHREADS; i++)
		echo_once(arg, "many");
	return NULL;
}

Test(unix, two_workers_many_connections)
{
	struct tdir d;
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = userver(loop, 2);
	struct tk_server_stats st;
	struct tk_addr a;
	pthread_t t[NTHREADS];

	tdir_new(&d);
	a = uaddr(d.path);
	cr_assert_eq(tk_server_listen(s, &a, false), 0);
	cr_assert_eq(tk_server_start(s), 0);
	for (int i = 0; i < NTHREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, clients, &a), 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	tk_server_get_stats(s, &st);
	cr_assert_eq(st.accepted, NCLIENTS);
	cr_assert_eq(st.accept_errors, 0);
	tk_server_free(s);
	cr_assert_eq(access(d.path, F_OK), -1);
	tk_loop_free(loop);
	tdir_free(&d);
}

Test(unix, connect_endpoint)
{
	struct tdir d;
	struct tk_loop *loop = t_loop_new();
	struct tk_server *s = userver(loop, 1);
	struct tk_endpoint ep;
	struct tk_conn_opts o;
	struct tk_conn *c = NULL;
	struct cl cl = { 0 };
	char text[160], why[128];

	tdir_new(&d);
	snprintf(text, sizeof(text), "unix:%s", d.path);
	cr_assert_eq(tk_endpoint_parse(text, TK_EP_ALLOW_UNIX, &ep, why,
				       sizeof(why)),
		     0, "%s", why);
	cr_assert_eq(tk_server_listen_unix(s, &(struct tk_addr){ 0 }, NULL),
		     -EINVAL);
	{
		struct tk_addr a = uaddr(d.path);

		cr_assert_eq(tk_server_listen(s, &a, false), 0);
	}
	cr_assert_eq(tk_server_start(s), 0);
	cr_assert_eq(
		tk_conn_connect_endpoint(loop, &ep, NULL, &client_svc, &cl, &c),
		0);
	RUN_UNTIL(loop, 5000, cl.closed);
	cr_assert_eq(cl.err, 0, "%s", tk_strerror(cl.err));
	cr_assert_eq(cl.n, 10);

	/* tls:// without a context, and what is no connection: -EINVAL. */
	tk_conn_opts_init(&o);
	cr_assert_eq(tk_endpoint_parse("tls://127.0.0.1:1", TK_EP_ALLOW_TLS,
				       &ep, why, sizeof(why)),
		     0, "%s", why);
	cr_assert_eq(
		tk_conn_connect_endpoint(loop, &ep, &o, &client_svc, &cl, &c),
		-EINVAL);
	cr_assert_eq(
		tk_conn_connect_endpoint(loop, &ep, NULL, &client_svc, &cl, &c),
		-EINVAL);
	cr_assert_eq(tk_endpoint_parse("-", TK_EP_ALLOW_STDIO, &ep, why,
				       sizeof(why)),
		     0, "%s", why);
	cr_assert_eq(
		tk_conn_connect_endpoint(loop, &ep, NULL, &client_svc, &cl, &c),
		-EINVAL);
	tk_server_free(s);
	tk_loop_free(loop);
	tdir_free(&d);
}
