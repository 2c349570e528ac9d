/* socks5.c: the socks5 service: RFC 1928 CONNECT with RFC 1929 username and
 * password, target rules, and the tunnel relayed with tk_conn_pipe(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpkit.h"

/* The longest message: a username/password request (3 + 255 + 255). */
#define MSG_MAX 515
/*
 * Bytes a client may send after its request, before the reply (an
 * optimistic client): kept for the target.  The client is paused from its
 * request on, so at most one read comes after it.
 */
#define EARLY_MAX (256u * 1024)

enum state { GREETING, AUTH, REQUEST, CONNECTING, RELAYING, FAILED };

struct sess {
	const struct tk_socks5_opts *o;
	struct tk_conn *client;
	struct tk_conn *target; /* while connecting */
	enum state state;
	bool client_gone; /* closed while the target connects */
	bool logged;
	uint8_t reply; /* the code sent, 0xff before */
	struct tk_addr peer;
	size_t len;
	uint8_t buf[MSG_MAX + 1];
	char target_text[TK_HOSTLEN + 8];
	char user[TK_PROXY_CREDLEN];
	char why[256];
	char *early; /* bytes after the request in the same reads */
	size_t nearly;
};

static void
log_end(struct sess *s, int err, const struct tk_pipe_result *r)
{
	struct tk_socks5_tunnel t = {
		.client = &s->peer,
		.target = s->target_text,
		.user = s->user,
		.reply = s->reply,
		.err = err,
		.why = s->why,
		.result = r,
	};

	if (s->logged)
		return;
	s->logged = true;
	if (s->o->log != NULL)
		s->o->log(&t, s->o->log_arg);
}

static void
fail(struct sess *s, uint8_t code, int err, const char *why)
{
	uint8_t out[32];
	ssize_t n;

	if (why != NULL && s->why[0] == '\0')
		snprintf(s->why, sizeof(s->why), "%s", why);
	s->state = FAILED;
	if (code != 0xff &&
	    (n = tk_socks5_reply(code, NULL, out, sizeof(out))) > 0) {
		s->reply = code;
		(void)tk_conn_write(s->client, out, (size_t)n);
	}
	log_end(s, err, NULL);
	/* Read (and drop) again, so the linger sees the client's FIN. */
	tk_conn_resume(s->client);
	/* What was written goes out before the FIN. */
	tk_conn_end_error(s->client, err);
}

/* RFC 1928 6's code for why a connect failed. */
static uint8_t
reply_code(int err)
{
	switch (err) {
	case -ECONNREFUSED:
		return TK_SOCKS5_REP_REFUSED;
	case -ENETUNREACH:
		return TK_SOCKS5_REP_NETUNREACH;
	case -EHOSTUNREACH:
	case TK_ENOHOST:
	case TK_ENODATA:
		return TK_SOCKS5_REP_HOSTUNREACH;
	case TK_ECONNTIMEDOUT:
	case TK_ETIMEDOUT:
	case -ETIMEDOUT:
		return TK_SOCKS5_REP_TTL;
	case TK_EDENIED:
		return TK_SOCKS5_REP_NOTALLOWED;
	default:
		return TK_SOCKS5_REP_FAILURE;
	}
}

static void
on_pipe_done(struct tk_pipe *p, const struct tk_pipe_result *r, void *arg)
{
	struct sess *s = arg;

	(void)p;
	if (r->why != NULL && r->why[0] != '\0')
		snprintf(s->why, sizeof(s->why), "%s", r->why);
	log_end(s, r->err, r);
	free(s->early);
	free(s);
}

static int
target_open(struct tk_conn *c, void *arg)
{
	struct sess *s = arg;
	struct tk_pipe_opts po;
	uint8_t out[32];
	ssize_t n;
	int err;

	s->target = NULL;
	tk_conn_set_deadline(s->client, 0, 0);
	n = tk_socks5_reply(TK_SOCKS5_REP_OK, NULL, out, sizeof(out));
	s->reply = TK_SOCKS5_REP_OK;
	/* Bytes the client sent after its request are the tunnel's. */
	if ((err = tk_conn_write(s->client, out, (size_t)n)) < 0 ||
	    (s->len > 0 && (err = tk_conn_write(c, s->buf, s->len)) < 0) ||
	    (s->nearly > 0 &&
	     (err = tk_conn_write(c, s->early, s->nearly)) < 0))
		goto fail;
	free(s->early);
	s->early = NULL;
	tk_pipe_opts_init(&po);
	po.done = on_pipe_done;
	po.arg = s;
	s->state = RELAYING;
	/* From here the pipe owns both, and its done frees s. */
	if ((err = tk_conn_pipe(s->client, c, &po, NULL)) == 0)
		return 0;
fail:
	s->state = FAILED;
	s->target = c; /* its close ends the client */
	return err;
}

/* A target that never opened, or whose pipe could not start. */
static void
target_close(struct tk_conn *c, int err, void *arg)
{
	struct sess *s = arg;

	s->target = NULL;
	if (s->client_gone) {
		free(s->early);
		free(s);
		return;
	}
	if (s->why[0] == '\0')
		snprintf(s->why, sizeof(s->why), "%s", tk_conn_last_error(c));
	if (s->reply == 0xff) {
		fail(s, reply_code(err), err != 0 ? err : -ECONNABORTED, NULL);
	} else {
		log_end(s, err, NULL);
		tk_conn_close(s->client, err != 0 ? err : -ECONNABORTED);
	}
}

static const struct tk_service target_service = {
	.name = "socks5-target",
	.open = target_open,
	.close = target_close,
};

static void
start_connect(struct sess *s, const struct tk_socks5_request *r)
{
	struct tk_loop *loop = tk_conn_loop(s->client);
	struct tk_conn_opts co;
	struct tk_addr a;
	char port[8];
	int err;

	snprintf(port, sizeof(port), "%u", r->port);
	tk_conn_opts_init(&co);
	co.connect_timeout_ms = s->o->connect_timeout_ms;
	co.acl = s->o->targets;
	/* Nothing more is read from the client before the target is open. */
	tk_conn_pause(s->client);
	/*
	 * The handshake is over: from here the target's connect timeout
	 * bounds the wait, and its failure gets the client a reply (6, 4,
	 * 5...) instead of a silent close at the handshake deadline.
	 */
	tk_conn_set_deadline(s->client, 0, 0);
	s->state = CONNECTING;
	if (r->atyp != TK_SOCKS5_ATYP_NAME) {
		struct tk_addrlist list = { .count = 1, .addrs = &a };

		if (tk_addr_from_ip(r->host, r->port, &a) < 0)
			return fail(s, TK_SOCKS5_REP_FAILURE, TK_EPROXYPROTO,
				    "bad address");
		if (tk_acl_check(s->o->targets, &a) < 0)
			return fail(s, TK_SOCKS5_REP_NOTALLOWED, TK_EDENIED,
				    "target not allowed");
		err = tk_conn_connect(loop, &list, &co, &target_service, s,
				      &s->target);
	} else {
		err = tk_conn_connect_host(loop, r->host, port, &co,
					   &target_service, s, &s->target);
	}
	if (err < 0)
		fail(s, TK_SOCKS5_REP_FAILURE, err, tk_strerror(err));
}

/* The next whole message in buf, if any; false when waiting or done. */
static bool
step(struct sess *s)
{
	struct tk_socks5_request r;
	char pass[TK_PROXY_CREDLEN];
	bool none = false, userpass = false, ok;
	uint8_t out[2];
	ssize_t n;

	switch (s->state) {
	case GREETING:
		n = tk_socks5_parse_greeting(s->buf, s->len, &none, &userpass);
		if (n <= 0)
			break;
		out[0] = 5;
		if (s->o->require_auth)
			out[1] = userpass ? TK_SOCKS5_AUTH_USERPASS
					  : TK_SOCKS5_AUTH_NOMETHOD;
		else
			out[1] = none ? TK_SOCKS5_AUTH_NONE
				 : userpass && s->o->check_user != NULL
					 ? TK_SOCKS5_AUTH_USERPASS
					 : TK_SOCKS5_AUTH_NOMETHOD;
		if (out[1] == TK_SOCKS5_AUTH_NOMETHOD) {
			(void)tk_conn_write(s->client, out, 2);
			fail(s, 0xff, TK_EPROXYAUTH,
			     "no acceptable authentication method");
			return false;
		}
		s->state = out[1] == TK_SOCKS5_AUTH_NONE ? REQUEST : AUTH;
		if (tk_conn_write(s->client, out, 2) < 0)
			return false;
		break;
	case AUTH:
		n = tk_socks5_parse_userpass(s->buf, s->len, s->user, pass);
		if (n <= 0)
			break;
		ok = s->o->check_user != NULL &&
		     s->o->check_user(s->user, pass, s->o->user_arg);
		explicit_bzero(pass, sizeof(pass));
		out[0] = 1;
		out[1] = ok ? 0 : 1;
		if (tk_conn_write(s->client, out, 2) < 0)
			return false;
		if (!ok) {
			fail(s, 0xff, TK_EPROXYAUTH, "authentication failed");
			return false;
		}
		s->state = REQUEST;
		break;
	case REQUEST:
		n = tk_socks5_parse_request(s->buf, s->len, &r);
		if (n < 0 && r.atyp != 0) {
			fail(s, TK_SOCKS5_REP_ATYP, TK_EPROXYPROTO,
			     "address type not supported");
			return false;
		}
		if (n <= 0)
			break;
		snprintf(s->target_text, sizeof(s->target_text),
			 r.atyp == TK_SOCKS5_ATYP_IPV6 ? "[%s]:%u" : "%s:%u",
			 r.host, r.port);
		if (r.cmd != TK_SOCKS5_CMD_CONNECT) {
			fail(s, TK_SOCKS5_REP_COMMAND, TK_EPROXYPROTO,
			     "command not supported");
			return false;
		}
		memmove(s->buf, s->buf + n, s->len - (size_t)n);
		s->len -= (size_t)n;
		start_connect(s, &r);
		return false;
	default:
		return false;
	}
	if (n < 0) {
		fail(s, 0xff, TK_EPROXYPROTO, "not a SOCKS5 client");
		return false;
	}
	if (n == 0)
		return false;
	memmove(s->buf, s->buf + n, s->len - (size_t)n);
	s->len -= (size_t)n;
	return true;
}

/* Bytes for the target that came before it opened. */
static void
keep_early(struct sess *s, const char *data, size_t n)
{
	char *p;

	if (n > EARLY_MAX - s->nearly ||
	    (p = realloc(s->early, s->nearly + n)) == NULL) {
		/* Never dropped in silence: the client sees a reset. */
		tk_conn_close(s->client, -ENOBUFS);
		return;
	}
	memcpy(p + s->nearly, data, n);
	s->early = p;
	s->nearly += n;
}

static void
client_data(struct tk_conn *c, const char *data, ssize_t n, void *arg)
{
	struct sess *s = tk_conn_data(c);

	(void)arg;
	if (s == NULL || s->state == FAILED)
		return;
	if (n == TK_EOF) {
		if (s->state != CONNECTING)
			fail(s, 0xff, TK_EPROXYPROTO,
			     "client closed during the handshake");
		return;
	}
	/* A message at a time: none is longer than buf. */
	while (n > 0 && s->state < CONNECTING) {
		size_t take = sizeof(s->buf) - s->len;

		take = (size_t)n < take ? (size_t)n : take;
		memcpy(s->buf + s->len, data, take);
		s->len += take;
		data += take;
		n -= (ssize_t)take;
		while (step(s))
			;
		if (s->state < CONNECTING && s->len == sizeof(s->buf)) {
			fail(s, 0xff, TK_EPROXYPROTO, "handshake too long");
			return;
		}
	}
	if (n > 0 && s->state == CONNECTING)
		keep_early(s, data, (size_t)n);
}

static int
client_open(struct tk_conn *c, void *arg)
{
	const struct tk_socks5_opts *o = arg;
	struct sess *s;

	if (o == NULL || (o->require_auth && o->check_user == NULL))
		return -EINVAL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	s->o = o;
	s->client = c;
	s->reply = 0xff;
	s->peer = *tk_conn_peer(c);
	tk_conn_set_data(c, s);
	tk_conn_set_deadline(c,
			     o->handshake_ms != 0
				     ? o->handshake_ms
				     : TK_DEFAULT_HANDSHAKE_TIMEOUT_MS,
			     TK_ETIMEDOUT);
	return 0;
}

/* The client went before its tunnel (a pipe replaces this). */
static void
client_close(struct tk_conn *c, int err, void *arg)
{
	struct sess *s = tk_conn_data(c);

	(void)arg;
	if (s == NULL)
		return;
	if (s->why[0] == '\0' && err != 0)
		snprintf(s->why, sizeof(s->why), "client: %s",
			 tk_strerror(err));
	log_end(s, err != 0 ? err : -ECONNABORTED, NULL);
	if (s->target != NULL) {
		s->client_gone = true;
		tk_conn_close(s->target, -ECANCELED); /* its close frees s */
		return;
	}
	free(s->early);
	free(s);
}

const struct tk_service tk_service_socks5 = {
	.name = "socks5",
	.open = client_open,
	.data = client_data,
	.close = client_close,
};
