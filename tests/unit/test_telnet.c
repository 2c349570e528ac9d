/* test_telnet.c: telnet negotiation refused and stripped, at every split. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "tcpkit.h"

TestSuite(telnet, .timeout = 30);

#define IAC  "\xff"
#define DO   "\xfd"
#define DONT "\xfe"
#define WILL "\xfb"
#define WONT "\xfc"
#define SB   "\xfa"
#define SE   "\xf0"
#define NOP  "\xf1"

/* A server's greeting: negotiation mixed with data, every case once. */
static const char stream[] =
	"hello" IAC DO "\x01" IAC WILL "\x03" IAC WONT "\x05" IAC DONT "\x06"
	" " IAC IAC "x" IAC NOP "y" IAC SB "\x18\x01" IAC IAC "\x02" IAC SE
	"end" IAC DO "\x1f";
static const char want_out[] = "hello \xffxyend";
static const char want_reply[] =
	IAC WONT "\x01" IAC DONT "\x03" IAC WONT "\x1f";

struct result {
	unsigned char out[256], reply[256];
	size_t nout, nreply;
};

/* Feed the stream cut at the given points; collect what comes out. */
static void
feed(const size_t *cuts, size_t ncuts, struct result *res)
{
	struct tk_telnet t;
	size_t n = sizeof(stream) - 1, at = 0;

	memset(res, 0, sizeof(*res));
	tk_telnet_init(&t);
	for (size_t k = 0; k <= ncuts; k++) {
		size_t end = k < ncuts ? cuts[k] : n, no, nr;
		unsigned char out[64], reply[64 + 2];

		cr_assert(end >= at && end - at <= 64);
		tk_telnet_filter(&t, stream + at, end - at, out, &no, reply,
				 &nr);
		cr_assert(no <= end - at, "out over n");
		cr_assert(nr <= end - at + 2, "reply over n + 2");
		memcpy(res->out + res->nout, out, no);
		memcpy(res->reply + res->nreply, reply, nr);
		res->nout += no;
		res->nreply += nr;
		at = end;
	}
}

static void
check(const struct result *res, const char *what)
{
	cr_assert_eq(res->nout, sizeof(want_out) - 1, "%s: %zu data bytes",
		     what, res->nout);
	cr_assert_eq(memcmp(res->out, want_out, res->nout), 0, "%s: data",
		     what);
	cr_assert_eq(res->nreply, sizeof(want_reply) - 1, "%s: %zu reply bytes",
		     what, res->nreply);
	cr_assert_eq(memcmp(res->reply, want_reply, res->nreply), 0,
		     "%s: reply", what);
}

Test(telnet, whole)
{
	struct result res;

	feed(NULL, 0, &res);
	check(&res, "whole");
}

Test(telnet, every_split_point)
{
	size_t n = sizeof(stream) - 1;

	for (size_t i = 0; i <= n; i++) {
		struct result res;
		char what[32];

		feed(&i, 1, &res);
		snprintf(what, sizeof(what), "cut at %zu", i);
		check(&res, what);
	}
}

Test(telnet, every_pair_of_split_points)
{
	size_t n = sizeof(stream) - 1;

	for (size_t i = 0; i <= n; i++)
		for (size_t j = i; j <= n; j++) {
			size_t cuts[2] = { i, j };
			struct result res;
			char what[32];

			feed(cuts, 2, &res);
			snprintf(what, sizeof(what), "cuts at %zu, %zu", i, j);
			check(&res, what);
		}
}

Test(telnet, byte_by_byte)
{
	size_t cuts[sizeof(stream)];
	struct result res;

	for (size_t i = 0; i < sizeof(stream) - 1; i++)
		cuts[i] = i + 1;
	feed(cuts, sizeof(stream) - 2, &res);
	check(&res, "byte by byte");
}

Test(telnet, plain_data_passes_unchanged)
{
	unsigned char in[255], out[255], reply[257];
	struct tk_telnet t;
	size_t no, nr;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)i; /* every byte but 0xff */
	tk_telnet_init(&t);
	tk_telnet_filter(&t, in, sizeof(in), out, &no, reply, &nr);
	cr_assert_eq(no, sizeof(in));
	cr_assert_eq(memcmp(in, out, no), 0);
	cr_assert_eq(nr, 0);
}
