/* line.c: tk_line_parse(), a pure line framer for "\n" and "\r\n" lines. */
#include <string.h>

#include "tcpkit.h"

/*
 * A line of at most max bytes ends with "\n" at index max at the latest, or
 * with "\r\n" at indexes max and max + 1.  So the terminator of an
 * acceptable line lies within the first max + 1 bytes, or max + 2 when the
 * byte at index max is '\r', and that is all we read: a peer cannot make us
 * scan (or the caller buffer) more than that to learn its line is too long.
 */
ssize_t
tk_line_parse(const char *data, size_t len, size_t max, size_t *line_len)
{
	const char *nl;
	size_t lim, n;

	lim = len;
	if (max < len) {
		/* max < len, so max + 1 and max + 2 cannot wrap. */
		lim = max + 1;
		if (data[max] == '\r' && max + 1 < len)
			lim = max + 2;
	}

	nl = memchr(data, '\n', lim);
	if (nl == NULL) {
		/*
		 * Past max bytes only the '\r' of a "\r\n" at index max can
		 * still end an acceptable line, and only while the byte after
		 * it has not arrived.
		 */
		if (len > max && (data[max] != '\r' || lim == max + 2))
			return TK_ELINETOOLONG;
		return 0;
	}

	/* '\n' is at index max + 1 only after a '\r' at max: n <= max. */
	n = (size_t)(nl - data);
	if (n > 0 && data[n - 1] == '\r')
		n--;
	*line_len = n;
	return (ssize_t)(nl - data) + 1;
}
