/* buf.c: bounded byte buffers, allocated on first use and released when empty.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

/* The smallest allocation: most buffers hold a few small messages. */
#define BUF_MIN_CAP 4096u

void
tk_buf_init(struct tk_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void
tk_buf_free(struct tk_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
}

void
tk_buf_trim(struct tk_buf *b)
{
	if (b->len == 0 && b->data != NULL)
		tk_buf_free(b);
}

char *
tk_buf_reserve(struct tk_buf *b, size_t n, int *err)
{
	size_t need, cap;
	char *p;

	if (n > b->max - b->len) {
		*err = -ENOBUFS;
		return NULL;
	}
	need = b->len + n;
	/* Without storage (even for n == 0) allocate: never NULL on success. */
	if (b->data != NULL && b->off + need <= b->cap)
		return b->data + b->off + b->len;
	if (b->data != NULL && need <= b->cap) {
		/* Enough room in all: slide the content to the front. */
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
		return b->data + b->len;
	}
	cap = b->cap ? b->cap : BUF_MIN_CAP;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > b->max && need <= b->max)
		cap = b->max > BUF_MIN_CAP ? b->max : BUF_MIN_CAP;
	p = malloc(cap);
	if (p == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	if (b->len > 0)
		memcpy(p, b->data + b->off, b->len);
	free(b->data);
	b->data = p;
	b->cap = cap;
	b->off = 0;
	return p + b->len;
}

void
tk_buf_commit(struct tk_buf *b, size_t n)
{
	b->len += n;
}

int
tk_buf_append(struct tk_buf *b, const void *p, size_t n)
{
	int err = 0;
	char *dst;

	if (n == 0)
		return 0;
	dst = tk_buf_reserve(b, n, &err);
	if (dst == NULL)
		return err;
	memcpy(dst, p, n);
	b->len += n;
	return 0;
}

void
tk_buf_consume(struct tk_buf *b, size_t n)
{
	if (n >= b->len) {
		b->off = b->len = 0;
		return;
	}
	b->off += n;
	b->len -= n;
}
