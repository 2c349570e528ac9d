/* echo.c: the echo service: every byte back, then FIN after the peer's FIN. */
#include "tcpkit.h"

static void
echo_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	(void)arg;
	if (n == TK_EOF) {
		tk_conn_end(c); /* what is pending goes out before the FIN */
		return;
	}
	/*
	 * Reads stop at max_pending of output waiting, so this fits; a
	 * failure has closed c with its reason (a reset for the peer).
	 */
	(void)tk_conn_write(c, data, (size_t)n);
}

const struct tk_service tk_service_echo = {
	.name = "echo",
	.data = echo_data,
};
