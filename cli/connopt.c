/* connopt.c: --keepalive[=IDLE,INTVL,CNT], parsed once for every command
 * that holds a connection. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "connopt.h"

int
connopt_keepalive(const char *cmd, const char *arg, struct keepalive *ka)
{
	static const char *const names[] = { "IDLE", "INTVL", "CNT" };
	/* Linux's bounds: MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT
	 */
	static const unsigned max[] = { 32767, 32767, 127 };
	unsigned *field[] = { &ka->idle, &ka->intvl, &ka->cnt };
	const char *p = arg;

	memset(ka, 0, sizeof(*ka));
	ka->on = true;
	if (arg == NULL)
		return 0;
	for (size_t i = 0;; i++) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		unsigned long v = 0;

		if (i == 3)
			return cli_usage(cmd,
					 "--keepalive takes at most three "
					 "values, IDLE,INTVL,CNT, not '%s'",
					 arg);
		for (size_t k = 0; k < len; k++) {
			if (p[k] < '0' || p[k] > '9' || v > max[i])
				return cli_usage(cmd,
						 "--keepalive %s is a number "
						 "from 1 to %u, not '%.*s'",
						 names[i], max[i], (int)len, p);
			v = v * 10 + (unsigned long)(p[k] - '0');
		}
		if (len > 0 && (v < 1 || v > max[i]))
			return cli_usage(cmd,
					 "--keepalive %s is a number from 1 "
					 "to %u, not '%.*s'",
					 names[i], max[i], (int)len, p);
		*field[i] = (unsigned)v;
		if (end == NULL)
			return 0;
		p = end + 1;
	}
}

void
connopt_apply(const struct keepalive *ka, struct tk_conn_opts *opts)
{
	opts->keepalive = ka->on;
	opts->keepalive_idle = ka->idle;
	opts->keepalive_intvl = ka->intvl;
	opts->keepalive_cnt = ka->cnt;
}
