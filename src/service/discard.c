/* discard.c: the discard service: read everything, answer nothing. */
#include "tcpkit.h"

static void
discard_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	(void)data;
	(void)arg;
	if (n == TK_EOF)
		tk_conn_end(c);
}

const struct tk_service tk_service_discard = {
	.name = "discard",
	.data = discard_data,
};
