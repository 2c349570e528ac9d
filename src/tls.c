/* tls.c: TLS through OpenSSL 3: contexts, the non-blocking handshake, and
 * the transport a connection swaps in. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "tcpkit/reload.h"

/*
 * Mozilla "intermediate" for TLS 1.2: ECDHE key exchange (forward secrecy)
 * and AEAD ciphers only, no CBC, no RSA key transport.  TLS 1.3 suites are
 * all AEAD and forward secret: OpenSSL's default list stands.
 */
#define TLS12_CIPHERS                                                          \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"           \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"           \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"
/* The ephemeral certificate lives as long as the process, at most this. */
#define EPHEMERAL_DAYS 30

struct tk_tls_ctx {
	struct tk__layer layer; /* first: conn.c attaches TLS through it */
	SSL_CTX *ssl;
	bool server;
	bool insecure;
	bool has_pin;
	bool has_fp;
	unsigned char pin[32];
	unsigned char fp[32]; /* SHA-256 of our own certificate */
	unsigned char *alpn;  /* wire format: length-prefixed names */
	size_t alpn_len;
	int keylog_fd; /* SSLKEYLOGFILE, or -1 */
	/*
	 * Its creator's, and one per session made from it (a server holds
	 * one too): a context freed while connections use it lives on
	 * until the last of them is gone, on whichever thread that is.
	 */
	atomic_uint refs;
};

/* One connection's TLS session. */
struct tls_conn {
	SSL *ssl;
	struct tk_tls_ctx *ctx;
	int fd;
	bool fd_set;
	bool done;	      /* handshake finished and verified */
	bool pin_failed;      /* the peer's certificate is not the pinned one */
	int verify_err;	      /* first X509_V_ERR_* seen, 0 if none */
	unsigned rd_want;     /* readiness a read's -EAGAIN waits for, if odd */
	unsigned wr_want;     /* same for a write */
	bool no_close_notify; /* the peer's FIN came without close_notify */
	bool not_tls;	      /* the peer's first bytes are not TLS */
	unsigned nhead;
	unsigned char head[6];	 /* the peer's first bytes, for not_tls */
	char seen[TK_TLS_FPLEN]; /* the leaf that failed the pin or the CA */
};

/* The record a TLS peer can start with: 0x16 (handshake) or 0x15 (alert). */
#define REC_ALERT	0x15
#define REC_HANDSHAKE	0x16
#define HS_CLIENT_HELLO 1

/*
 * A BIO over the connection's socket that sends with MSG_NOSIGNAL: a peer
 * that went away must be EPIPE, never SIGPIPE (OpenSSL's socket BIO uses
 * write()).  It also watches the peer's first bytes: a peer that does not
 * speak TLS is named as such, at once, not after OpenSSL has waited for
 * a record that never comes.  Its data is the struct tls_conn.
 */
static BIO_METHOD *nosig_method;
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static int
nosig_fd(BIO *b)
{
	return ((struct tls_conn *)BIO_get_data(b))->fd;
}

/*
 * Could the peer's first bytes be TLS?  A client's first record is a
 * handshake one (or, high bit set, an SSLv2-format hello); a server's is
 * a handshake or an alert record, and never a ClientHello: that is a plain
 * echo server sending ours back.
 */
static bool
head_is_tls(const struct tls_conn *tc)
{
	const unsigned char *h = tc->head;

	if (tc->nhead == 0)
		return true;
	if (tc->ctx->server)
		return h[0] == REC_HANDSHAKE || (h[0] & 0x80) != 0;
	if (h[0] == REC_ALERT)
		return true;
	if (h[0] != REC_HANDSHAKE)
		return false;
	return tc->nhead < 6 || h[5] != HS_CLIENT_HELLO;
}

static void
watch_head(struct tls_conn *tc, const char *buf, size_t n)
{
	size_t k = sizeof(tc->head) - tc->nhead;

	if (k == 0 || tc->done)
		return;
	memcpy(tc->head + tc->nhead, buf, n < k ? n : k);
	tc->nhead += (unsigned)(n < k ? n : k);
	if (!head_is_tls(tc))
		tc->not_tls = true;
}

static int
nosig_write(BIO *b, const char *buf, int len)
{
	ssize_t n = send(nosig_fd(b), buf, (size_t)len, MSG_NOSIGNAL);

	BIO_clear_retry_flags(b);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static int
nosig_read(BIO *b, char *buf, int len)
{
	struct tls_conn *tc = BIO_get_data(b);
	ssize_t n = recv(tc->fd, buf, (size_t)len, 0);

	BIO_clear_retry_flags(b);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		BIO_set_retry_read(b);
	if (n > 0) {
		watch_head(tc, buf, (size_t)n);
		if (tc->not_tls) {
			/* The handshake fails now; failure() names why. */
			errno = EPROTO;
			return -1;
		}
	}
	return (int)n;
}

static long
nosig_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
nosig_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void
nosig_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
				     "tcpkit socket");

	if (m == NULL)
		return;
	BIO_meth_set_write(m, nosig_write);
	BIO_meth_set_read(m, nosig_read);
	BIO_meth_set_ctrl(m, nosig_ctrl);
	BIO_meth_set_create(m, nosig_create);
	nosig_method = m;
}

static BIO *
nosig_new(struct tls_conn *tc)
{
	BIO *b;

	pthread_once(&nosig_once, nosig_init);
	if (nosig_method == NULL || (b = BIO_new(nosig_method)) == NULL)
		return NULL;
	BIO_set_data(b, tc);
	return b;
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static void
say(char *why, size_t len, const char *fmt, const char *arg)
{
	unsigned long e = ERR_peek_error(); /* the first: the root cause */
	char tail[160] = "";

	if (why == NULL || len == 0)
		return;
	if (e != 0 && ERR_reason_error_string(e) != NULL)
		snprintf(tail, sizeof(tail), ": %s",
			 ERR_reason_error_string(e));
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	/* fmt is always one of this file's literals, with one %s at most. */
	snprintf(why, len, fmt, arg != NULL ? arg : "");
#pragma GCC diagnostic pop
	strncat(why, tail, len - strlen(why) - 1);
	ERR_clear_error();
}

/* "sha256:HEX" with optional ':' between bytes, into 32 bytes. */
static int
parse_pin(const char *text, unsigned char out[32])
{
	size_t n = 0;
	const char *p;

	if (strncasecmp(text, "sha256:", 7) != 0)
		return -1;
	for (p = text + 7; *p != '\0';) {
		int hi, lo;

		if (*p == ':' && n > 0) {
			p++;
			continue;
		}
		if (n == 32 || p[1] == '\0')
			return -1;
		hi = OPENSSL_hexchar2int((unsigned char)p[0]);
		lo = OPENSSL_hexchar2int((unsigned char)p[1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[n++] = (unsigned char)(hi << 4 | lo);
		p += 2;
	}
	return n == 32 ? 0 : -1;
}

/* "h2,http/1.1" into the wire format (length-prefixed names). */
static int
parse_alpn(const char *text, unsigned char **out, size_t *outlen)
{
	size_t len = strlen(text), n = 0;
	unsigned char *w = malloc(len + 1);
	const char *p = text;

	if (w == NULL)
		return -ENOMEM;
	while (*p != '\0') {
		size_t k = strcspn(p, ",");

		if (k == 0 || k > 255) {
			free(w);
			return -EINVAL;
		}
		w[n++] = (unsigned char)k;
		memcpy(w + n, p, k);
		n += k;
		p += k;
		if (*p == ',' && *++p == '\0') {
			free(w);
			return -EINVAL;
		}
	}
	if (n == 0) {
		free(w);
		return -EINVAL;
	}
	*out = w;
	*outlen = n;
	return 0;
}

static void
keylog_cb(const SSL *ssl, const char *line)
{
	struct tk_tls_ctx *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	size_t n = strlen(line);
	char *buf;

	if (ctx == NULL || ctx->keylog_fd < 0 || (buf = malloc(n + 1)) == NULL)
		return;
	memcpy(buf, line, n);
	buf[n] = '\n';
	/* One write per line: O_APPEND keeps workers' lines whole. */
	(void)!write(ctx->keylog_fd, buf, n + 1);
	free(buf);
}

/* The settings both sides share. */
static int
ctx_common(struct tk_tls_ctx *ctx, unsigned min_version, const char *alpn,
	   const char *path, char *why, size_t whylen)
{
	SSL_CTX *s = ctx->ssl;

	SSL_CTX_set_app_data(s, ctx);
	if (min_version != 0 && min_version != TK_TLS_1_2 &&
	    min_version != TK_TLS_1_3) {
		say(why, whylen, "TLS minimum version must be 1.2 or 1.3",
		    NULL);
		return TK_ETLSCONFIG;
	}
	if (!SSL_CTX_set_min_proto_version(s, min_version == TK_TLS_1_3
						      ? TLS1_3_VERSION
						      : TLS1_2_VERSION) ||
	    !SSL_CTX_set_cipher_list(s, TLS12_CIPHERS) ||
	    !SSL_CTX_set1_groups_list(s, TLS_GROUPS)) {
		say(why, whylen, "cannot set TLS defaults", NULL);
		return TK_ETLSCONFIG;
	}
	SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
				       SSL_OP_IGNORE_UNEXPECTED_EOF);
	/*
	 * conn.c retries a write from its own buffer, which may have moved
	 * and grown; idle connections give their buffers back.
	 */
	SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE |
				    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				    SSL_MODE_RELEASE_BUFFERS);
	if (alpn != NULL && parse_alpn(alpn, &ctx->alpn, &ctx->alpn_len) < 0) {
		say(why, whylen, "malformed ALPN list '%s'", alpn);
		return TK_ETLSCONFIG;
	}
	if (path != NULL && path[0] != '\0') {
		ctx->keylog_fd = open(
			path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (ctx->keylog_fd >= 0)
			SSL_CTX_set_keylog_callback(s, keylog_cb);
	}
	return 0;
}

static int
load_cert_key(struct tk_tls_ctx *ctx, const char *cert, const char *key,
	      char *why, size_t whylen)
{
	if (!SSL_CTX_use_certificate_chain_file(ctx->ssl, cert)) {
		say(why, whylen, "cannot load certificate %s", cert);
		return TK_ETLSCONFIG;
	}
	if (key == NULL)
		key = cert;
	if (!SSL_CTX_use_PrivateKey_file(ctx->ssl, key, SSL_FILETYPE_PEM)) {
		say(why, whylen, "cannot load key %s", key);
		return TK_ETLSCONFIG;
	}
	if (!SSL_CTX_check_private_key(ctx->ssl)) {
		say(why, whylen, "key %s does not match the certificate", key);
		return TK_ETLSCONFIG;
	}
	return 0;
}

static int tls_attach(struct tk_conn *c, void *ctx, const char *servername);

static struct tk_tls_ctx *
ctx_alloc(const SSL_METHOD *method, bool server)
{
	struct tk_tls_ctx *ctx = calloc(1, sizeof(*ctx));

	if (ctx == NULL)
		return NULL;
	ctx->layer.attach = tls_attach;
	ctx->keylog_fd = -1;
	ctx->server = server;
	atomic_init(&ctx->refs, 1);
	ctx->ssl = SSL_CTX_new(method);
	if (ctx->ssl == NULL) {
		free(ctx);
		return NULL;
	}
	return ctx;
}

const char *
tk_tls_built_version(void)
{
	return OPENSSL_VERSION_TEXT;
}

const char *
tk_tls_runtime_version(void)
{
	return OpenSSL_version(OPENSSL_VERSION);
}

struct tk_tls_ctx *
tk__tls_ctx_ref(struct tk_tls_ctx *ctx)
{
	if (ctx != NULL)
		atomic_fetch_add(&ctx->refs, 1);
	return ctx;
}

void
tk_tls_ctx_free(struct tk_tls_ctx *ctx)
{
	if (ctx == NULL || atomic_fetch_sub(&ctx->refs, 1) != 1)
		return;
	SSL_CTX_free(ctx->ssl);
	if (ctx->keylog_fd >= 0)
		close(ctx->keylog_fd);
	free(ctx->alpn);
	free(ctx);
}

static int verify_cb(int ok, X509_STORE_CTX *xs);

int
tk_tls_ctx_new_client(const struct tk_tls_client_opts *o,
		      struct tk_tls_ctx **out, char *why, size_t whylen)
{
	struct tk_tls_ctx *ctx = ctx_alloc(TLS_client_method(), false);
	int err;

	if (ctx == NULL)
		return -ENOMEM;
	err = ctx_common(ctx, o->min_version, o->alpn, o->keylog_file, why,
			 whylen);
	if (err < 0)
		goto out_free;
	err = TK_ETLSCONFIG;
	if (o->pin != NULL) {
		if (parse_pin(o->pin, ctx->pin) < 0) {
			say(why, whylen,
			    "pin must be sha256: and 64 hex digits, not '%s'",
			    o->pin);
			goto out_free;
		}
		ctx->has_pin = true;
	}
	ctx->insecure = o->insecure;
	if (o->ca_file != NULL &&
	    !SSL_CTX_load_verify_file(ctx->ssl, o->ca_file)) {
		say(why, whylen, "cannot load CA file %s", o->ca_file);
		goto out_free;
	}
	if (o->ca_dir != NULL &&
	    !SSL_CTX_load_verify_dir(ctx->ssl, o->ca_dir)) {
		say(why, whylen, "cannot use CA directory %s", o->ca_dir);
		goto out_free;
	}
	if (o->ca_file == NULL && o->ca_dir == NULL &&
	    !SSL_CTX_set_default_verify_paths(ctx->ssl)) {
		say(why, whylen, "cannot load the system trust store", NULL);
		goto out_free;
	}
	if (o->cert_file != NULL &&
	    load_cert_key(ctx, o->cert_file, o->key_file, why, whylen) < 0)
		goto out_free;
	if (ctx->alpn != NULL &&
	    SSL_CTX_set_alpn_protos(ctx->ssl, ctx->alpn,
				    (unsigned)ctx->alpn_len) != 0) {
		err = -ENOMEM;
		goto out_free;
	}
	/* Always verify: the callback waives what --insecure or a pin allow. */
	SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, verify_cb);
	*out = ctx;
	return 0;

out_free:
	tk_tls_ctx_free(ctx);
	return err;
}

/* Server ALPN: our first preference that the client offers, or none. */
static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
	    const unsigned char *in, unsigned inlen, void *arg)
{
	struct tk_tls_ctx *ctx = arg;
	unsigned char *sel;

	(void)ssl;
	if (SSL_select_next_proto(&sel, outlen, ctx->alpn,
				  (unsigned)ctx->alpn_len, in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* A P-256 key and a self-signed certificate for it, in memory. */
static int
make_ephemeral(struct tk_tls_ctx *ctx, char *why, size_t whylen)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	X509_EXTENSION *ext = NULL;
	X509V3_CTX v3;
	int err = TK_ETLSCONFIG;

	if (key == NULL || x == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f; /* positive */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	name = X509_get_subject_name(x);
	if (bn == NULL || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
	    !X509_set_version(x, X509_VERSION_3) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x),
			     (long)EPHEMERAL_DAYS * 86400) ||
	    !X509_set_pubkey(x, key) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)"tcpkit "
							       "ephemeral",
					-1, -1, 0) ||
	    !X509_set_issuer_name(x, name))
		goto out;
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
				  "DNS:localhost,IP:127.0.0.1,IP:::1");
	if (ext == NULL || !X509_add_ext(x, ext, -1) ||
	    !X509_sign(x, key, EVP_sha256()) ||
	    !SSL_CTX_use_certificate(ctx->ssl, x) ||
	    !SSL_CTX_use_PrivateKey(ctx->ssl, key))
		goto out;
	err = 0;
out:
	if (err < 0)
		say(why, whylen, "cannot make a self-signed certificate", NULL);
	X509_EXTENSION_free(ext);
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(key);
	return err;
}

int
tk_tls_ctx_new_server(const struct tk_tls_server_opts *o,
		      struct tk_tls_ctx **out, char *why, size_t whylen)
{
	static const unsigned char sid[] = "tcpkit";
	struct tk_tls_ctx *ctx = ctx_alloc(TLS_server_method(), true);
	unsigned int fplen = sizeof(ctx->fp);
	int err;

	if (ctx == NULL)
		return -ENOMEM;
	err = ctx_common(ctx, o->min_version, o->alpn, o->keylog_file, why,
			 whylen);
	if (err < 0)
		goto out_free;
	if (o->cert_file != NULL)
		err = load_cert_key(ctx, o->cert_file, o->key_file, why,
				    whylen);
	else
		err = make_ephemeral(ctx, why, whylen);
	if (err < 0)
		goto out_free;
	err = TK_ETLSCONFIG;
	if (o->client_auth != TK_TLS_CLIENT_AUTH_NONE) {
		STACK_OF(X509_NAME) * names;

		if (o->client_ca_file == NULL) {
			say(why, whylen,
			    "client authentication needs a CA file", NULL);
			goto out_free;
		}
		names = SSL_load_client_CA_file(o->client_ca_file);
		if (names == NULL ||
		    !SSL_CTX_load_verify_file(ctx->ssl, o->client_ca_file)) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			say(why, whylen, "cannot load client CA file %s",
			    o->client_ca_file);
			goto out_free;
		}
		SSL_CTX_set_client_CA_list(ctx->ssl, names);
		SSL_CTX_set_verify(
			ctx->ssl,
			SSL_VERIFY_PEER |
				(o->client_auth == TK_TLS_CLIENT_AUTH_REQUIRED
					 ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT
					 : 0),
			verify_cb);
	}
	/* Resumed sessions must keep the client-auth context. */
	SSL_CTX_set_session_id_context(ctx->ssl, sid, sizeof(sid) - 1);
	if (o->no_tickets) {
		SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx->ssl, 0);
	}
	if (ctx->alpn != NULL)
		SSL_CTX_set_alpn_select_cb(ctx->ssl, alpn_select, ctx);
	if (X509_digest(SSL_CTX_get0_certificate(ctx->ssl), EVP_sha256(),
			ctx->fp, &fplen))
		ctx->has_fp = true;
	*out = ctx;
	return 0;

out_free:
	tk_tls_ctx_free(ctx);
	return err;
}

int
tk_tls_ctx_fingerprint(const struct tk_tls_ctx *ctx, char out[TK_TLS_FPLEN])
{
	if (!ctx->has_fp)
		return -ENOENT;
	hex(ctx->fp, sizeof(ctx->fp), out);
	return 0;
}

/* Does cert, or its public key, hash to the pin? */
static bool
pin_matches(const struct tk_tls_ctx *ctx, X509 *cert)
{
	unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned int mdlen = 0;
	int len;
	bool ok = false;

	if (cert == NULL)
		return false;
	if (X509_digest(cert, EVP_sha256(), md, &mdlen) && mdlen == 32 &&
	    CRYPTO_memcmp(md, ctx->pin, 32) == 0)
		return true;
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	if (len > 0 &&
	    EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) &&
	    mdlen == 32)
		ok = CRYPTO_memcmp(md, ctx->pin, 32) == 0;
	OPENSSL_free(der);
	return ok;
}

/*
 * Chain and name checks as OpenSSL makes them, except: a pin replaces them
 * (the leaf must match it), --insecure waives them.  The first failure is
 * kept to name it in plain words.
 */
static int
verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(
		xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *tc = ssl != NULL ? SSL_get_app_data(ssl) : NULL;

	if (tc == NULL)
		return ok;
	if (tc->ctx->has_pin) {
		if (X509_STORE_CTX_get_error_depth(xs) != 0)
			return 1;
		X509 *leaf = X509_STORE_CTX_get_current_cert(xs);
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int len = 0;

		if (pin_matches(tc->ctx, leaf))
			return 1;
		if (leaf != NULL && X509_digest(leaf, EVP_sha256(), md, &len) &&
		    len == 32)
			hex(md, 32, tc->seen);
		tc->pin_failed = true;
		X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	if (tc->ctx->insecure)
		return 1;
	if (!ok && tc->verify_err == 0) {
		X509 *leaf = X509_STORE_CTX_get0_cert(xs);
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int len = 0;

		tc->verify_err = X509_STORE_CTX_get_error(xs);
		/* The pin that would accept it, for the error to suggest. */
		if (leaf != NULL && X509_digest(leaf, EVP_sha256(), md, &len) &&
		    len == 32)
			hex(md, 32, tc->seen);
	}
	return ok;
}

static int tls_handshake(struct tk_conn *c, unsigned *want);
static void tls_close(struct tk_conn *c);
static ssize_t tls_read(struct tk_conn *c, void *buf, size_t len);
static ssize_t tls_write(struct tk_conn *c, const void *buf, size_t len);
static int tls_shutdown(struct tk_conn *c);
static unsigned tls_want(const struct tk_conn *c);
static size_t tls_pending(const struct tk_conn *c);

static const struct tk__transport tls_transport = {
	.handshake = tls_handshake,
	.read = tls_read,
	.write = tls_write,
	.shutdown = tls_shutdown,
	.close = tls_close,
	.want = tls_want,
	.pending = tls_pending,
};

/*
 * Give c a TLS session of ctx (client: servername as in struct
 * tk_conn_opts) and the TLS transport, whose handshake conn.c drives.
 */
static int
tls_attach(struct tk_conn *c, void *layer, const char *servername)
{
	struct tk_tls_ctx *ctx = layer;
	struct tls_conn *tc = calloc(1, sizeof(*tc));
	struct tk_addr ip;

	if (tc == NULL)
		return -ENOMEM;
	tc->ctx = ctx;
	tc->ssl = SSL_new(ctx->ssl);
	if (tc->ssl == NULL) {
		free(tc);
		return -ENOMEM;
	}
	SSL_set_app_data(tc->ssl, tc);
	tk__tls_ctx_ref(ctx);
	if (!ctx->server && servername != NULL) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(tc->ssl);

		/* An IP literal is checked as an address and not sent. */
		if (tk_addr_from_ip(servername, 0, &ip) == 0) {
			if (!X509_VERIFY_PARAM_set1_ip_asc(vp, servername))
				goto out_free;
		} else if (!SSL_set1_host(tc->ssl, servername) ||
			   !SSL_set_tlsext_host_name(tc->ssl, servername)) {
			goto out_free;
		}
		/*
		 * subjectAltName only: a CN that looks like the name is no
		 * proof (RFC 6125 6.4.4, and what browsers and curl do).
		 */
		X509_VERIFY_PARAM_set_hostflags(
			vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
				    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
	}
	if (ctx->server)
		SSL_set_accept_state(tc->ssl);
	else
		SSL_set_connect_state(tc->ssl);
	tk__conn_set_transport(c, &tls_transport, tc);
	return 0;

out_free:
	ERR_clear_error();
	SSL_free(tc->ssl);
	tk_tls_ctx_free(ctx);
	free(tc);
	return -ENOMEM;
}

/* Bind the session to c's socket, once it is connected. */
static int
bind_fd(struct tk_conn *c, struct tls_conn *tc)
{
	X509_VERIFY_PARAM *vp = SSL_get0_param(tc->ssl);
	BIO *b;

	tc->fd = tk_conn_fd(c);
	b = nosig_new(tc);
	if (b == NULL)
		return -ENOMEM;
	SSL_set_bio(tc->ssl, b, b);
	tc->fd_set = true;
	/* No name given: the address we connected to is what must match. */
	if (!tc->ctx->server && X509_VERIFY_PARAM_get0_host(vp, 0) == NULL) {
		char ip[TK_ADDRSTRLEN],
			*have = X509_VERIFY_PARAM_get1_ip_asc(vp);

		OPENSSL_free(have);
		/*
		 * A UNIX socket's peer has no address to match: only a name
		 * or a pin can say who it must be; a CA alone would take
		 * any certificate it ever signed.
		 */
		if (tk_addr_family(tk_conn_peer(c)) == AF_UNIX) {
			if (tc->ctx->has_pin || tc->ctx->insecure)
				return 0;
			tk__conn_set_detail(c, "a UNIX socket's peer has no "
					       "address to check: give a "
					       "server name or a pin");
			return TK_ETLSCONFIG;
		}
		tk_addr_format_ip(tk_conn_peer(c), ip, sizeof(ip));
		if (have == NULL && !X509_VERIFY_PARAM_set1_ip_asc(vp, ip))
			return -ENOMEM;
	}
	return 0;
}

/* The error detail: OpenSSL's reason, or the certificate check's. */
static void
detail(struct tk_conn *c, const char *what, const char *how)
{
	char buf[320];

	if (how != NULL && how[0] != '\0')
		snprintf(buf, sizeof(buf), "%s: %s", what, how);
	else
		snprintf(buf, sizeof(buf), "%s", what);
	tk__conn_set_detail(c, buf);
}

static int
verify_code(int v)
{
	switch (v) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return TK_ETLSEXPIRED;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
	case X509_V_ERR_EMAIL_MISMATCH:
		return TK_ETLSNAME;
	default:
		return TK_ETLSVERIFY;
	}
}

static int
reason_code(int reason, bool handshake)
{
	switch (reason) {
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_VERSION_TOO_HIGH:
		return TK_ETLSVERSION;
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		return TK_ETLSCERTREQUIRED;
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
		return TK_ETLSPEERREJECT;
	default:
		return handshake ? TK_ETLSHANDSHAKE : TK_ETLS;
	}
}

/* Name a failed SSL_* call: a TK_E* code (or -errno), detail on c. */
static int
failure(struct tk_conn *c, struct tls_conn *tc, int ssl_err, bool handshake)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
	long v = SSL_get_verify_result(tc->ssl);
	int code, saved = errno;

	if (tc->not_tls) {
		detail(c, "", NULL);
		code = TK_ETLSPLAIN;
	} else if (tc->pin_failed) {
		X509 *peer = SSL_get0_peer_certificate(tc->ssl);
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int len = 0;
		char buf[TK_TLS_FPLEN + 64];

		if (tc->seen[0] == '\0' && peer != NULL &&
		    X509_digest(peer, EVP_sha256(), md, &len) && len == 32)
			hex(md, 32, tc->seen);
		snprintf(buf, sizeof(buf),
			 "the peer's certificate is sha256:%s", tc->seen);
		detail(c, buf, NULL);
		code = TK_ETLSPIN;
	} else if (tc->verify_err != 0 || (handshake && v != X509_V_OK)) {
		int ve = tc->verify_err != 0 ? tc->verify_err : (int)v;

		detail(c, X509_verify_cert_error_string(ve), NULL);
		code = verify_code(ve);
	} else if (ssl_err == SSL_ERROR_SYSCALL && e == 0) {
		if (saved != 0) {
			code = -saved;
		} else {
			detail(c, "the peer closed the connection", NULL);
			code = handshake ? TK_ETLSHANDSHAKE : TK_EOF;
		}
	} else {
		code = reason_code(e != 0 ? ERR_GET_REASON(e) : 0, handshake);
		detail(c, reason != NULL ? reason : "TLS error", NULL);
	}
	ERR_clear_error();
	return code;
}

/*
 * A failed server handshake: read what the client already sent (its
 * Finished, early application data) so that the close is a FIN after our
 * alert, not a reset that could destroy the alert before it is read.
 */
static void
discard_input(int fd)
{
	char buf[4096];

	for (int i = 0; i < 16; i++)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
}

/*
 * A client that is not speaking TLS: OpenSSL closes without a word
 * ("doesn't look like TLS - don't send an alert"), which leaves the
 * client with a bare close.  One fatal unexpected_message alert in the
 * clear tells a client that checks (tcpkit without --tls) what it met.
 * Best effort: the socket is closed next whatever happens.
 */
static void
plain_alert(int fd)
{
	static const unsigned char alert[] = { REC_ALERT, 0x03, 0x03, 0x00,
					       0x02,	  0x02, 0x0a };

	(void)!send(fd, alert, sizeof(alert), MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* 0 when done and verified, -EAGAIN with *want set, or a TK_ETLS* code. */
static int
tls_handshake(struct tk_conn *c, unsigned *want)
{
	struct tls_conn *tc = tk__conn_tp_state(c);
	int r, e;

	if (!tc->fd_set && (r = bind_fd(c, tc)) < 0)
		return r;
	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(tc->ssl);
	if (r == 1) {
		/* A pin is checked even if the callback did not see a leaf. */
		if (tc->ctx->has_pin &&
		    !pin_matches(tc->ctx, SSL_get0_peer_certificate(tc->ssl))) {
			tc->pin_failed = true;
			return failure(c, tc, SSL_ERROR_SSL, true);
		}
		tc->done = true;
		return 0;
	}
	e = SSL_get_error(tc->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*want = e == SSL_ERROR_WANT_READ ? TK_READABLE : TK_WRITABLE;
		return -EAGAIN;
	}
	r = failure(c, tc, e, true);
	if (tc->ctx->server && tc->not_tls)
		plain_alert(tc->fd);
	if (tc->ctx->server)
		discard_input(tk_conn_fd(c));
	return r;
}

static ssize_t
tls_read(struct tk_conn *c, void *buf, size_t len)
{
	struct tls_conn *tc = tk__conn_tp_state(c);
	int n, e;

	ERR_clear_error();
	errno = 0;
	n = SSL_read(tc->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	tc->rd_want = 0;
	if (n > 0)
		return n;
	e = SSL_get_error(tc->ssl, n);
	switch (e) {
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		tc->rd_want = TK_WRITABLE;
		return -EAGAIN;
	default:
		n = failure(c, tc, e, false);
		if (n != TK_EOF)
			return n;
		/*
		 * A FIN with no close_notify before it (close_notify is
		 * SSL_ERROR_ZERO_RETURN): an end of stream still, but
		 * remembered for data delimited by the close.
		 */
		tc->no_close_notify = true;
		return 0;
	}
}

static ssize_t
tls_write(struct tk_conn *c, const void *buf, size_t len)
{
	struct tls_conn *tc = tk__conn_tp_state(c);
	int n, e;

	ERR_clear_error();
	errno = 0;
	n = SSL_write(tc->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	tc->wr_want = 0;
	if (n > 0)
		return n;
	e = SSL_get_error(tc->ssl, n);
	switch (e) {
	case SSL_ERROR_WANT_WRITE:
		return -EAGAIN;
	case SSL_ERROR_WANT_READ:
		tc->wr_want = TK_READABLE;
		return -EAGAIN;
	default:
		n = failure(c, tc, e, false);
		return n == TK_EOF ? -EPIPE : n;
	}
}

/*
 * Our end: close_notify, then FIN.  TLS 1.3 lets the peer go on sending;
 * OpenSSL reads on after its own close_notify.  A close_notify that meets
 * a full socket buffer is -EAGAIN: the connection calls again once the
 * socket is writable, and the FIN waits for it.  WANT_READ means ours is
 * out and OpenSSL would wait for the peer's: the FIN goes now.
 */
static int
tls_shutdown(struct tk_conn *c)
{
	struct tls_conn *tc = tk__conn_tp_state(c);

	if (tc->done) {
		int r;

		ERR_clear_error();
		r = SSL_shutdown(tc->ssl);
		if (r < 0 && SSL_get_error(tc->ssl, r) == SSL_ERROR_WANT_WRITE)
			return -EAGAIN;
		/* Any other failure (the peer gone): the FIN still goes. */
		ERR_clear_error();
	}
	return shutdown(tk_conn_fd(c), SHUT_WR) < 0 ? -errno : 0;
}

static unsigned
tls_want(const struct tk_conn *c)
{
	const struct tls_conn *tc = tk__conn_tp_state(c);

	return tc->rd_want | tc->wr_want;
}

/* The rest of a record a paused reader left in OpenSSL's buffer. */
static size_t
tls_pending(const struct tk_conn *c)
{
	const struct tls_conn *tc = tk__conn_tp_state(c);
	int n = tc != NULL ? SSL_pending(tc->ssl) : 0;

	return n > 0 ? (size_t)n : 0;
}

static void
tls_close(struct tk_conn *c)
{
	struct tls_conn *tc = tk__conn_tp_state(c);

	if (tc == NULL)
		return;
	SSL_free(tc->ssl);
	/* The session's reference: the context may go with it. */
	tk_tls_ctx_free(tc->ctx);
	free(tc);
	tk__conn_set_transport(c, NULL, NULL);
}

int
tk_conn_tls_peer_fingerprint(const struct tk_conn *c, char out[TK_TLS_FPLEN])
{
	const struct tls_conn *tc = tk__conn_tp_state(c);
	X509 *peer;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (tc == NULL)
		return -ENOTCONN;
	if (tc->seen[0] != '\0') {
		memcpy(out, tc->seen, TK_TLS_FPLEN);
		return 0;
	}
	peer = SSL_get0_peer_certificate(tc->ssl);
	if (peer == NULL || !X509_digest(peer, EVP_sha256(), md, &len) ||
	    len != 32)
		return -ENOENT;
	hex(md, 32, out);
	return 0;
}

bool
tk_conn_is_tls(const struct tk_conn *c)
{
	return tk__conn_transport(c) == &tls_transport;
}

bool
tk_conn_tls_truncated(const struct tk_conn *c)
{
	const struct tls_conn *tc = tk__conn_tp_state(c);

	return tc != NULL && tc->no_close_notify;
}

static void
name_text(X509_NAME *name, char *out, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	out[0] = '\0';
	if (b == NULL)
		return;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
		n = BIO_read(b, out, (int)len - 1);
		out[n > 0 ? n : 0] = '\0';
	}
	BIO_free(b);
}

static void
time_text(const ASN1_TIME *t, char *out, size_t len)
{
	struct tm tm;

	out[0] = '\0';
	if (t != NULL && ASN1_TIME_to_tm(t, &tm))
		strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Who a certificate names, and when it is valid. */
static void
cert_text(X509 *cert, struct tk_tls_info *info)
{
	name_text(X509_get_subject_name(cert), info->subject,
		  sizeof(info->subject));
	name_text(X509_get_issuer_name(cert), info->issuer,
		  sizeof(info->issuer));
	time_text(X509_get0_notBefore(cert), info->not_before,
		  sizeof(info->not_before));
	time_text(X509_get0_notAfter(cert), info->not_after,
		  sizeof(info->not_after));
}

int
tk_tls_ctx_cert_info(const struct tk_tls_ctx *ctx, struct tk_tls_info *info)
{
	X509 *cert = SSL_CTX_get0_certificate(ctx->ssl);

	memset(info, 0, sizeof(*info));
	if (cert == NULL || !ctx->has_fp)
		return -ENOENT;
	cert_text(cert, info);
	hex(ctx->fp, sizeof(ctx->fp), info->sha256);
	return 0;
}

int
tk_conn_tls_info(const struct tk_conn *c, struct tk_tls_info *info)
{
	const struct tls_conn *tc = tk__conn_tp_state(c);
	const unsigned char *alpn;
	unsigned int alpn_len, mdlen = 32;
	unsigned char md[EVP_MAX_MD_SIZE];
	const char *g;
	X509 *peer;
	int nid;

	memset(info, 0, sizeof(*info));
	if (tc == NULL || !tc->done)
		return -ENOTCONN;
	snprintf(info->version, sizeof(info->version), "%s",
		 SSL_get_version(tc->ssl));
	snprintf(info->cipher, sizeof(info->cipher), "%s",
		 SSL_get_cipher_name(tc->ssl));
	nid = SSL_get_negotiated_group(tc->ssl);
	g = nid != 0 ? SSL_group_to_name(tc->ssl, nid) : NULL;
	snprintf(info->group, sizeof(info->group), "%s", g != NULL ? g : "");
	SSL_get0_alpn_selected(tc->ssl, &alpn, &alpn_len);
	if (alpn_len > 0 && alpn_len < sizeof(info->alpn)) {
		memcpy(info->alpn, alpn, alpn_len);
		info->alpn[alpn_len] = '\0';
	}
	info->resumed = SSL_session_reused(tc->ssl);
	peer = SSL_get0_peer_certificate(tc->ssl);
	if (peer == NULL)
		return 0;
	info->peer_cert = true;
	cert_text(peer, info);
	if (X509_digest(peer, EVP_sha256(), md, &mdlen) && mdlen == 32)
		hex(md, 32, info->sha256);
	return 0;
}

bool
tk_tls_looks_like_record(const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t len;

	if (n < 5 || (p[0] != 0x15 && p[0] != 0x16) || p[1] != 3 || p[2] > 4)
		return false;
	len = (size_t)p[3] << 8 | p[4];
	/* A plaintext alert is 2 bytes; a record at most 2^14 + 2048. */
	return p[0] == 0x15 ? len == 2 : len > 0 && len <= 16384 + 2048;
}
