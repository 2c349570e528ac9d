/* hexdump.c: -x/--hexdump: both directions of a session in hex and ASCII,
 * with direction, offset and time per chunk, written as the session goes. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hexdump.h"

struct hexdump {
	FILE *f;
	char *path; /* for the error: "-" is stderr */
	const char *cmd;
	struct hexdump_conn own; /* hexdump_write()'s one session */
	pthread_mutex_t lock;	 /* one chunk at a time, whole */
	int err;		 /* the first failed write, then every call */
};

int
hexdump_open(const char *cmd, const char *path, struct hexdump **out)
{
	struct hexdump *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (h == NULL || (h->path = strdup(path)) == NULL) {
		free(h);
		return cli_fail(cmd, "", -ENOMEM);
	}
	h->cmd = cmd;
	hexdump_conn_init(&h->own, NULL);
	pthread_mutex_init(&h->lock, NULL);
	if (strcmp(path, "-") == 0) {
		h->f = stderr;
	} else if ((h->f = fopen(path, "we")) == NULL) {
		char where[4096 + 16];

		snprintf(where, sizeof(where), "--hexdump %.4096s", path);
		cli_error(cmd, where, "%s", strerror(errno));
		pthread_mutex_destroy(&h->lock);
		free(h->path);
		free(h);
		return CLI_EXIT_CANTCREAT;
	}
	*out = h;
	return 0;
}

int
hexdump_exit_code(void)
{
	return CLI_EXIT_IOERR;
}

static void
line(FILE *f, uint64_t off, const unsigned char *p, size_t n)
{
	char hex[16 * 3 + 2], ascii[17];
	size_t k = 0;

	for (size_t i = 0; i < 16; i++) {
		if (i == 8)
			hex[k++] = ' ';
		if (i < n)
			k += (size_t)snprintf(hex + k, sizeof(hex) - k, "%02x ",
					      p[i]);
		else
			k += (size_t)snprintf(hex + k, sizeof(hex) - k, "   ");
		ascii[i] = i >= n			 ? '\0'
			   : p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i]
							 : '.';
	}
	ascii[n < 16 ? n : 16] = '\0';
	fprintf(f, "  %08llx  %s |%s|\n", (unsigned long long)off, hex, ascii);
}

void
hexdump_conn_init(struct hexdump_conn *hc, const char *label)
{
	memset(hc, 0, sizeof(*hc));
	if (label != NULL)
		snprintf(hc->label, sizeof(hc->label), "%s", label);
}

int
hexdump_write_conn(struct hexdump *h, struct hexdump_conn *hc, char dir,
		   const void *data, size_t n)
{
	const unsigned char *p = data;
	uint64_t *off = &hc->off[dir == HEXDUMP_RECV];
	char ts[48];
	int err;

	pthread_mutex_lock(&h->lock);
	if (h->err != 0) {
		err = h->err;
		pthread_mutex_unlock(&h->lock);
		return err;
	}
	errno = 0;
	fprintf(h->f, "%c %s%s%s %s %zu byte%s at offset %llu\n", dir,
		cli_timestamp(ts, sizeof(ts)), hc->label[0] != '\0' ? " " : "",
		hc->label, dir == HEXDUMP_RECV ? "received" : "sent", n,
		CLI_PLURAL(n), (unsigned long long)*off);
	for (size_t i = 0; i < n; i += 16)
		line(h->f, *off + i, p + i, n - i < 16 ? n - i : 16);
	*off += n;
	if (fflush(h->f) != 0 || ferror(h->f)) {
		char where[4096 + 16];

		h->err = errno != 0 ? -errno : -EIO;
		snprintf(where, sizeof(where), "--hexdump %.4096s",
			 strcmp(h->path, "-") == 0 ? "stderr" : h->path);
		cli_error(h->cmd, where, "%s", strerror(-h->err));
	}
	err = h->err;
	pthread_mutex_unlock(&h->lock);
	return err;
}

int
hexdump_write(struct hexdump *h, char dir, const void *data, size_t n)
{
	return hexdump_write_conn(h, &h->own, dir, data, n);
}

int
hexdump_close(struct hexdump *h)
{
	int err = 0;

	if (h == NULL)
		return 0;
	if (h->f != stderr && fclose(h->f) != 0 && h->err == 0) {
		char where[4096 + 16];

		err = -errno;
		snprintf(where, sizeof(where), "--hexdump %.4096s", h->path);
		cli_error(h->cmd, where, "%s", strerror(errno));
	}
	pthread_mutex_destroy(&h->lock);
	free(h->path);
	free(h);
	return err;
}
