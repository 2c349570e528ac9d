/* welcome.c: tutorial 1's threaded server as a service: a greeting, then
 * "OK..." + each chunk. */
#include <string.h>

#include "tcpkit.h"

#define OK_PREFIX "OK..."
#define OK_LEN	  (sizeof(OK_PREFIX) - 1)

/*
 * A client has the server's line_timeout, if any, to say its first word
 * (slowloris).  `tcpkit serve welcome` sets none unless asked: like the
 * tutorial's server it waits for a human at a telnet prompt.
 */
static void
first_word_deadline(struct tk_conn *c)
{
	struct tk_server *s = tk_conn_server(c);

	if (s != NULL && tk_server_get_opts(s)->line_timeout_ms != 0)
		tk_conn_set_deadline(c, tk_server_get_opts(s)->line_timeout_ms,
				     TK_ELINETIMEOUT);
}

static int
welcome_open(struct tk_conn *c, void *arg)
{
	(void)arg;
	/* Each answer is its chunk and the prefix. */
	tk_conn_reserve_output(c, OK_LEN);
	first_word_deadline(c);
	return tk_conn_write(c, TK_WELCOME_GREETING,
			     sizeof(TK_WELCOME_GREETING) - 1);
}

static void
welcome_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	char small[OK_LEN + 2048];

	(void)arg;
	if (n == TK_EOF) {
		tk_conn_end(c);
		return;
	}
	tk_conn_set_deadline(c, 0, 0);
	/*
	 * Small chunks (typed lines) go out as one segment.  A failed write
	 * has closed c with its reason: nothing is lost in silence.
	 */
	if ((size_t)n <= sizeof(small) - OK_LEN) {
		memcpy(small, OK_PREFIX, OK_LEN);
		memcpy(small + OK_LEN, data, (size_t)n);
		(void)tk_conn_write(c, small, OK_LEN + (size_t)n);
		return;
	}
	if (tk_conn_write(c, OK_PREFIX, OK_LEN) == 0)
		(void)tk_conn_write(c, data, (size_t)n);
}

const struct tk_service tk_service_welcome = {
	.name = "welcome",
	.flags = TK_SERVICE_TEXT,
	.open = welcome_open,
	.data = welcome_data,
};
