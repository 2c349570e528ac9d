/* get_out.c: `tcpkit get`'s output: -o files written whole or not at all,
 * and network text made safe for a terminal. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "get.h"

/*
 * Length of the well-formed UTF-8 sequence (RFC 3629) at p, or 0: overlong
 * forms, surrogates and cut sequences are not text.
 */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/*
 * A server must not be able to move the cursor, retitle the window or
 * worse through our lines: C0 and C1 controls, DEL and bytes that are not
 * UTF-8 become \xNN; other UTF-8 is kept.
 */
char *
get_escape(const char *s, size_t n, bool keep_eol, size_t *outlen)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	char *out = malloc(4 * n + 1), *o = out;
	size_t i = 0, len, j;
	bool plain;

	if (out == NULL)
		return NULL;
	while (i < n) {
		len = utf8_len(u + i, n - i);
		if (len == 1)
			plain = (u[i] >= 0x20 && u[i] != 0x7f) ||
				(keep_eol && (u[i] == '\r' || u[i] == '\n'));
		else /* U+0080..U+009F are the C1 controls. */
			plain = len > 1 && !(u[i] == 0xc2 && u[i + 1] < 0xa0);
		if (len == 0)
			len = 1;
		for (j = 0; j < len; j++, i++) {
			if (plain) {
				*o++ = (char)u[i];
				continue;
			}
			*o++ = '\\';
			*o++ = 'x';
			*o++ = digits[u[i] >> 4];
			*o++ = digits[u[i] & 15];
		}
	}
	*o = '\0';
	*outlen = (size_t)(o - out);
	return out;
}

/*
 * The temporary file is in FILE's directory, so that rename() replaces
 * FILE in one step and a reader never sees half of it.
 */
int
get_out_open(struct get_out *out, const char *path)
{
	return get_out_open_cmd(out, path, "get");
}

int
get_out_open_cmd(struct get_out *out, const char *path, const char *cmd)
{
	char *d = strdup(path), *b = strdup(path);
	const char *dir, *base;
	mode_t mask;
	size_t len;

	memset(out, 0, sizeof(*out));
	out->cmd = cmd;
	out->fd = -1;
	out->path = path;
	if (d == NULL || b == NULL)
		goto nomem;
	dir = dirname(d);
	base = basename(b);
	len = strlen(dir) + strlen(base) + 16;
	out->tmp = malloc(len);
	if (out->tmp == NULL)
		goto nomem;
	snprintf(out->tmp, len, "%s/.%s.XXXXXX", dir, base);
	free(d);
	free(b);
	out->fd = mkstemp(out->tmp);
	if (out->fd < 0) {
		cli_error(out->cmd, path, "cannot create: %s",
			  tk_strerror(-errno));
		free(out->tmp);
		out->tmp = NULL;
		return CLI_EXIT_CANTCREAT;
	}
	/* mkstemp() makes it 0600: give it the mode any new file gets. */
	mask = umask(0);
	umask(mask);
	if (fchmod(out->fd, 0666 & ~mask) < 0) {
		cli_error(out->cmd, path, "cannot create: %s",
			  tk_strerror(-errno));
		get_out_discard(out);
		return CLI_EXIT_CANTCREAT;
	}
	return 0;
nomem:
	free(d);
	free(b);
	return cli_fail(out->cmd, path, -ENOMEM);
}

int
get_out_commit(struct get_out *out)
{
	int err = 0;

	/*
	 * Without the fsync a crash soon after may leave FILE empty or short
	 * (the rename can reach the disk before the data); a cut transfer
	 * still never replaces FILE.
	 */
	if (!out->no_sync && fsync(out->fd) < 0)
		err = -errno;
	if (close(out->fd) < 0 && err == 0)
		err = -errno;
	out->fd = -1;
	if (err == 0 && rename(out->tmp, out->path) < 0)
		err = -errno;
	if (err < 0) {
		cli_error(out->cmd, out->path, "cannot write: %s",
			  tk_strerror(err));
		get_out_discard(out);
		return CLI_EXIT_IOERR;
	}
	free(out->tmp);
	out->tmp = NULL;
	return 0;
}

void
get_out_discard(struct get_out *out)
{
	if (out->fd >= 0)
		close(out->fd);
	out->fd = -1;
	if (out->tmp != NULL)
		unlink(out->tmp);
	free(out->tmp);
	out->tmp = NULL;
}
