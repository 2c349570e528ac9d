/* hexdump.h: -x/--hexdump: a trace of both directions of a session in hex
 * and ASCII, shared by connect, listen and relay. */
#ifndef TK_CLI_HEXDUMP_H
#define TK_CLI_HEXDUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEXDUMP_SENT '>'
#define HEXDUMP_RECV '<'

/*
 * The option's help line, for the commands' help texts.
 */
#define HEXDUMP_HELP                                                            \
	"  -x, --hexdump FILE       write both directions to FILE in hex and\n" \
	"                           ASCII as they pass ('>' sent, '<'\n"        \
	"                           received; offset and time per chunk);\n"    \
	"                           - is stderr\n"

struct hexdump;

/*
 * One connection's place in a dump that several share (listen -k, relay):
 * its offsets each way, and a label ("127.0.0.1:5000") put in every header
 * so the chunks of concurrent connections can be told apart.  Zeroed by
 * hexdump_conn_init(); owned by the caller, one per connection.
 */
struct hexdump_conn {
	uint64_t off[2]; /* bytes so far: [0] sent, [1] received */
	char label[96];	 /* "" for none (connect's one session) */
};

void hexdump_conn_init(struct hexdump_conn *hc, const char *label);
/*
 * hexdump_write() for one of several connections: its offsets, its label
 * in the header.  Safe from several threads at once (one lock per dump;
 * each chunk is written and flushed whole under it).
 */
int hexdump_write_conn(struct hexdump *h, struct hexdump_conn *hc, char dir,
		       const void *data, size_t n);

/*
 * Open the dump: path "-" is stderr, anything else is created (or
 * truncated).  0, or an exit code after printing the error: 73 when the
 * file cannot be created.
 */
int hexdump_open(const char *cmd, const char *path, struct hexdump **out);
/*
 * Record one chunk that went one way (HEXDUMP_SENT or HEXDUMP_RECV): a
 * header line with the direction, the local time, the length and the
 * chunk's offset in that direction's stream, then 16 bytes a line.  The
 * dump is flushed after each chunk, so a file shows the session as it
 * goes.  0, or -errno the first time a write fails: that is reported then
 * (once), and every later call returns the same error without writing.
 * The caller ends the session with hexdump_exit_code().
 */
int hexdump_write(struct hexdump *h, char dir, const void *data, size_t n);
/* The exit code for a failed dump (74, EX_IOERR). */
int hexdump_exit_code(void);
/* Flush and close (a file; stderr stays open): 0 or -errno, reported. */
int hexdump_close(struct hexdump *h);

#endif /* TK_CLI_HEXDUMP_H */
