/* short_writes.c: LD_PRELOAD shim: socket writes cut short, some EAGAIN. */
/*
 * Forces the partial-write paths of a server that is otherwise too fast for
 * them: every send/write/writev/sendmsg on a socket writes at most a few
 * bytes, and about one call in five fails with EAGAIN.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/*
 * At most SHIM_MAX_BYTES per call (SHORT_WRITES_MAX in the environment may
 * lower or raise it, up to SHIM_BUF), and about one call in
 * SHIM_EAGAIN_ONE_IN fails with EAGAIN.
 */
#define SHIM_MAX_BYTES	   7
#define SHIM_BUF	   4096
#define SHIM_EAGAIN_ONE_IN 5

static size_t shim_max = SHIM_MAX_BYTES;
/* SHORT_WRITES_REPORT set: say so on stderr the first time a write is cut. */
static bool shim_report;
static atomic_bool shim_reported;

/* Read the environment once, before any thread of the program starts. */
__attribute__((constructor)) static void
shim_init(void)
{
	const char *v = getenv("SHORT_WRITES_MAX");
	long n = v != NULL ? strtol(v, NULL, 10) : 0;

	if (n > 0)
		shim_max = n < SHIM_BUF ? (size_t)n : SHIM_BUF;
	shim_report = getenv("SHORT_WRITES_REPORT") != NULL;
}

/* One line on stderr by the raw syscall: proof the shim is at work. */
static void
shim_announce(size_t len, size_t n)
{
	char msg[96];
	int k;

	if (!shim_report || atomic_exchange(&shim_reported, true))
		return;
	k = snprintf(msg, sizeof(msg),
		     "short_writes: cut a write of %zu bytes to %zu\n", len, n);
	if (k > 0)
		(void)!syscall(SYS_write, 2, msg, (size_t)k);
}

ssize_t send(int fd, const void *buf, size_t len, int flags);
ssize_t write(int fd, const void *buf, size_t len);
ssize_t writev(int fd, const struct iovec *iov, int iovcnt);
ssize_t sendmsg(int fd, const struct msghdr *msg, int flags);

typedef ssize_t (*send_fn)(int, const void *, size_t, int);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);

/* Per thread, so the workers of a server need no lock. */
static __thread uint32_t shim_rng;

static uint32_t
shim_next(void)
{
	/* xorshift32, seeded per thread. */
	if (shim_rng == 0)
		shim_rng = 2463534242u ^ (uint32_t)(uintptr_t)&shim_rng;
	shim_rng ^= shim_rng << 13;
	shim_rng ^= shim_rng >> 17;
	shim_rng ^= shim_rng << 5;
	return shim_rng;
}

/* Only sockets are touched: pipes (the log) and eventfds are not. */
static int
shim_is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/*
 * How many bytes this call may write; 0 means "fail with EAGAIN", which
 * only a non-blocking socket may see (a blocking caller would not expect
 * it).  -1: not a socket, leave the call alone.
 */
static ssize_t
shim_allow(int fd, size_t len, int flags)
{
	uint32_t r;
	bool nonblock;

	if (len == 0 || !shim_is_socket(fd))
		return -1;
	r = shim_next();
	nonblock = (flags & MSG_DONTWAIT) ||
		   (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
	if (nonblock && (r >> 8) % SHIM_EAGAIN_ONE_IN == 0)
		return 0;
	r = 1 + r % (uint32_t)shim_max;
	if (r >= len)
		return (ssize_t)len;
	shim_announce(len, r);
	return (ssize_t)r;
}

/* The first n bytes of an iovec array, gathered into buf. */
static size_t
shim_gather(const struct iovec *iov, int iovcnt, char *buf, size_t n)
{
	size_t got = 0;

	for (int i = 0; i < iovcnt && got < n; i++) {
		size_t take =
			iov[i].iov_len < n - got ? iov[i].iov_len : n - got;

		memcpy(buf + got, iov[i].iov_base, take);
		got += take;
	}
	return got;
}

static size_t
shim_iov_len(const struct iovec *iov, int iovcnt)
{
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	return len;
}

ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	static send_fn real;
	ssize_t n;

	if (real == NULL)
		real = (send_fn)dlsym(RTLD_NEXT, "send");
	n = shim_allow(fd, len, flags);
	if (n == 0) {
		errno = EAGAIN;
		return -1;
	}
	return real(fd, buf, n < 0 ? len : (size_t)n, flags);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	static write_fn real;
	ssize_t n;

	if (real == NULL)
		real = (write_fn)dlsym(RTLD_NEXT, "write");
	n = shim_allow(fd, len, 0);
	if (n == 0) {
		errno = EAGAIN;
		return -1;
	}
	return real(fd, buf, n < 0 ? len : (size_t)n);
}

ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	static writev_fn real;
	static write_fn real_write;
	char small[SHIM_BUF];
	ssize_t n;

	if (real == NULL)
		real = (writev_fn)dlsym(RTLD_NEXT, "writev");
	if (real_write == NULL)
		real_write = (write_fn)dlsym(RTLD_NEXT, "write");
	n = shim_allow(fd, shim_iov_len(iov, iovcnt), 0);
	if (n < 0)
		return real(fd, iov, iovcnt);
	if (n == 0) {
		errno = EAGAIN;
		return -1;
	}
	return real_write(fd, small,
			  shim_gather(iov, iovcnt, small, (size_t)n));
}

ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	static sendmsg_fn real;
	static send_fn real_send;
	char small[SHIM_BUF];
	ssize_t n;

	if (real == NULL)
		real = (sendmsg_fn)dlsym(RTLD_NEXT, "sendmsg");
	if (real_send == NULL)
		real_send = (send_fn)dlsym(RTLD_NEXT, "send");
	/* Ancillary data or an address: pass through untouched. */
	if (msg->msg_controllen != 0 || msg->msg_name != NULL)
		return real(fd, msg, flags);
	n = shim_allow(fd, shim_iov_len(msg->msg_iov, (int)msg->msg_iovlen),
		       flags);
	if (n < 0)
		return real(fd, msg, flags);
	if (n == 0) {
		errno = EAGAIN;
		return -1;
	}
	return real_send(fd, small,
			 shim_gather(msg->msg_iov, (int)msg->msg_iovlen, small,
				     (size_t)n),
			 flags);
}
