/* telnet.c: telnet negotiation refused and stripped from a byte stream. */
#include "tcpkit/telnet.h"
#include "internal.h"

/* RFC 854 commands. */
enum {
	SE = 240,
	SB = 250,
	WILL = 251,
	WONT = 252,
	DO = 253,
	DONT = 254,
	IAC = 255,
};

enum {
	ST_DATA,
	ST_IAC,	   /* after IAC */
	ST_OPTION, /* after IAC WILL/WONT/DO/DONT */
	ST_SB,	   /* inside IAC SB ... */
	ST_SB_IAC, /* IAC inside a subnegotiation */
};

void
tk_telnet_init(struct tk_telnet *t)
{
	t->state = ST_DATA;
	t->verb = 0;
}

void
tk_telnet_filter(struct tk_telnet *t, const void *in, size_t n, void *out,
		 size_t *outlen, void *reply, size_t *replylen)
{
	const unsigned char *p = in;
	unsigned char *o = out, *r = reply;
	size_t no = 0, nr = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char b = p[i];

		switch (t->state) {
		case ST_DATA:
			if (b == IAC)
				t->state = ST_IAC;
			else
				o[no++] = b;
			break;
		case ST_IAC:
			if (b == IAC) {
				o[no++] = IAC;
				t->state = ST_DATA;
			} else if (b >= WILL && b <= DONT) {
				t->verb = b;
				t->state = ST_OPTION;
			} else if (b == SB) {
				t->state = ST_SB;
			} else {
				t->state = ST_DATA; /* NOP, GA...: dropped */
			}
			break;
		case ST_OPTION:
			if (t->verb == DO || t->verb == WILL) {
				r[nr++] = IAC;
				r[nr++] = t->verb == DO ? WONT : DONT;
				r[nr++] = b;
			}
			t->state = ST_DATA;
			break;
		case ST_SB:
			if (b == IAC)
				t->state = ST_SB_IAC;
			break;
		default: /* ST_SB_IAC */
			t->state = b == SE ? ST_DATA : ST_SB;
			break;
		}
	}
	*outlen = no;
	*replylen = nr;
}
