/* unix.c: UNIX listening sockets: stale files, modes, owners, removal. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

void
tk_unix_listen_opts_init(struct tk_unix_listen_opts *uo)
{
	uo->mode = -1;
	uo->owner = (uid_t)-1;
	uo->group = (gid_t)-1;
}

static bool
is_abstract(const struct tk_addr *a)
{
	return a->len > offsetof(struct sockaddr_un, sun_path) &&
	       a->u.un.sun_path[0] == '\0';
}

/*
 * Is somebody listening on the socket file at a?  0: nobody (connect()
 * refused: a dead server's file), -EADDRINUSE: yes (connected, or its
 * queue is full), another -errno when it cannot be told (-EACCES).
 */
static int
probe(const struct tk_addr *a)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int err = 0;

	if (fd < 0)
		return -errno;
	if (connect(fd, &a->u.sa, a->len) < 0)
		err = -errno;
	tk__close(fd);
	if (err == -ECONNREFUSED)
		return 0;
	if (err == 0 || err == -EAGAIN)
		return -EADDRINUSE;
	return err;
}

/*
 * bind() at a, replacing a stale socket file once.  A path that exists
 * and is not a socket is never removed (-EEXIST); a live socket is
 * -EADDRINUSE.
 */
static int
bind_replacing(int fd, const struct tk_addr *a)
{
	struct stat st;
	int err;

	for (int tries = 0; tries < 2; tries++) {
		if (bind(fd, &a->u.sa, a->len) == 0)
			return 0;
		if (errno != EADDRINUSE || is_abstract(a))
			return -errno;
		if (lstat(a->u.un.sun_path, &st) < 0) {
			if (errno == ENOENT)
				continue; /* gone meanwhile: try again */
			return -errno;
		}
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		if ((err = probe(a)) < 0)
			return err;
		/* Stale: its server is gone without removing it. */
		if (unlink(a->u.un.sun_path) < 0 && errno != ENOENT)
			return -errno;
	}
	return -EADDRINUSE;
}

/* Give the new file its mode and owner, checking it is still ours. */
static int
set_attrs(const struct tk__unix_file *f, const struct tk_unix_listen_opts *uo,
	  mode_t mode)
{
	struct stat st;

	if (lstat(f->path, &st) < 0)
		return -errno;
	if (st.st_dev != f->dev || st.st_ino != f->ino)
		return -EEXIST; /* replaced under our feet */
	if ((uo->owner != (uid_t)-1 || uo->group != (gid_t)-1) &&
	    lchown(f->path, uo->owner, uo->group) < 0)
		return -errno;
	/* After chown, which may clear mode bits on some systems. */
	if (chmod(f->path, mode) < 0)
		return -errno;
	return 0;
}

int
tk__unix_listen(const struct tk_addr *a, int backlog,
		const struct tk_unix_listen_opts *uo, struct tk__unix_file *f)
{
	bool attrs = uo != NULL && (uo->mode != -1 || uo->owner != (uid_t)-1 ||
				    uo->group != (gid_t)-1);
	mode_t old = 0, want;
	struct stat st;
	int fd, err;

	memset(f, 0, sizeof(*f));
	if (a->u.sa.sa_family != AF_UNIX ||
	    a->len <= offsetof(struct sockaddr_un, sun_path))
		return -EINVAL;
	if (attrs && (is_abstract(a) || uo->mode < -1 || uo->mode > 07777))
		return -EINVAL;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Born unreachable: nobody but root gets in before the chmod. */
	if (attrs)
		old = umask(0777);
	err = bind_replacing(fd, a);
	if (attrs)
		umask(old);
	if (err < 0)
		goto out_close;
	if (!is_abstract(a)) {
		memcpy(f->path, a->u.un.sun_path, sizeof(f->path));
		f->path[sizeof(f->path) - 1] = '\0';
		if (lstat(f->path, &st) < 0) {
			err = -errno;
			goto out_close;
		}
		f->dev = st.st_dev;
		f->ino = st.st_ino;
		f->made = true;
	}
	/* No mode asked for: the one bind() would have given. */
	want = attrs && uo->mode != -1 ? (mode_t)uo->mode : 0777 & ~old;
	if (attrs && (err = set_attrs(f, uo, want)) < 0)
		goto out_remove;
	if (listen(fd, backlog) < 0) {
		err = -errno;
		goto out_remove;
	}
	return fd;

out_remove:
	tk__unix_remove(f);
out_close:
	tk__close(fd);
	return err;
}

void
tk__unix_remove(struct tk__unix_file *f)
{
	struct stat st;

	if (!f->made)
		return;
	f->made = false;
	/* Only the file we made: a newer server's socket stays. */
	if (lstat(f->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == f->dev && st.st_ino == f->ino)
		TK_SAVE_ERRNO((void)unlink(f->path));
}
