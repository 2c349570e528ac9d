/* error.c: tk_strerror() and tk_err_name(), generated from TK_ERRNO_MAP. */
#include <errno.h>
#include <string.h>

#include "tcpkit.h"

const char *
tk_version(void)
{
	return TK_VERSION_STRING;
}

const char *
tk_strerror(int err)
{
	const char *s;

	switch (err) {
#define TK__ERR_TEXT(name, value, class, text)                                 \
	case TK_##name:                                                        \
		return text;
		TK_ERRNO_MAP(TK__ERR_TEXT)
#undef TK__ERR_TEXT
	case 0:
		return "success";
	}
	/*
	 * POSIX has nothing better: glibc and musl return their static table
	 * entry for a known errno (the library never calls setlocale(), so
	 * the text is the C locale's).
	 */
	s = err < 0 && -err < 4096 ? strerror(-err) : NULL;
	return s != NULL ? s : "unknown error";
}

/*
 * The system errors a network library meets, by name (POSIX gives no way
 * to ask for an errno's name), laid out by hand.  Others are "EUNKNOWN".
 */
/* clang-format off */
#define SYS_ERRNO_NAMES(X)                                                     \
	X(EPERM) X(ENOENT) X(ESRCH) X(EINTR) X(EIO) X(ENXIO) X(E2BIG)          \
	X(EBADF) X(ECHILD) X(EAGAIN) X(ENOMEM) X(EACCES) X(EFAULT) X(EBUSY)    \
	X(EEXIST) X(ENODEV) X(ENOTDIR) X(EISDIR) X(EINVAL) X(ENFILE)           \
	X(EMFILE) X(ENOTTY) X(EFBIG) X(ENOSPC) X(ESPIPE) X(EROFS) X(EPIPE)     \
	X(EDOM) X(ERANGE) X(ENAMETOOLONG) X(ENOSYS) X(EOPNOTSUPP) X(EPROTO)    \
	X(EOVERFLOW) X(ENOTSOCK) X(EDESTADDRREQ) X(EMSGSIZE) X(EPROTOTYPE)     \
	X(ENOPROTOOPT) X(EPROTONOSUPPORT) X(EAFNOSUPPORT) X(EADDRINUSE)        \
	X(EADDRNOTAVAIL) X(ENETDOWN) X(ENETUNREACH) X(ENETRESET)               \
	X(ECONNABORTED) X(ECONNRESET) X(ENOBUFS) X(EISCONN) X(ENOTCONN)        \
	X(ETIMEDOUT) X(ECONNREFUSED) X(EHOSTUNREACH) X(EALREADY)               \
	X(EINPROGRESS) X(ECANCELED) X(EUSERS) X(EHOSTDOWN) X(ESHUTDOWN)        \
	X(ETXTBSY) X(EXDEV) X(EMLINK) X(EDEADLK) X(ENOLCK) X(ENOTEMPTY)        \
	X(ELOOP) X(EILSEQ) X(EBADMSG) X(ENODATA) X(ETIME) X(ENOMSG)
/* clang-format on */

static const char *
sys_errno_name(int e)
{
	/*
	 * An if chain, not a switch: some systems give two names one value
	 * (EAGAIN and EWOULDBLOCK, EOPNOTSUPP and ENOTSUP); the first wins.
	 */
#define SYS_ERRNO_NAME(name)                                                   \
	if (e == name)                                                         \
		return #name;
	SYS_ERRNO_NAMES(SYS_ERRNO_NAME)
#undef SYS_ERRNO_NAME
	return NULL;
}

const char *
tk_err_name(int err)
{
	const char *s;

	switch (err) {
#define TK__ERR_NAME(name, value, class, text)                                 \
	case TK_##name:                                                        \
		return #name;
		TK_ERRNO_MAP(TK__ERR_NAME)
#undef TK__ERR_NAME
	case 0:
		return "OK";
	}
	s = err < 0 ? sys_errno_name(-err) : NULL;
	return s != NULL ? s : "EUNKNOWN";
}

enum tk_err_class
tk_err_class(int err)
{
	switch (err) {
	case 0:
		return TK_CLASS_NONE;
#define TK__ERR_CLASS(name, value, class, text)                                \
	case TK_##name:                                                        \
		return TK_CLASS_##class;
		TK_ERRNO_MAP(TK__ERR_CLASS)
#undef TK__ERR_CLASS
	case -ECONNREFUSED:
	case -ENETUNREACH:
	case -EHOSTUNREACH:
	case -EHOSTDOWN:
	case -ENETDOWN:
	case -EADDRNOTAVAIL:
	case -ECONNRESET:
	case -ECONNABORTED:
		return TK_CLASS_REFUSED;
	case -ETIMEDOUT:
		return TK_CLASS_TIMEOUT;
	default:
		return TK_CLASS_IO;
	}
}
