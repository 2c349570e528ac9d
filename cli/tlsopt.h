/* tlsopt.h: the TLS options shared by connect, send, get and serve. */
#ifndef TK_CLI_TLSOPT_H
#define TK_CLI_TLSOPT_H

#include <getopt.h>
#include <stdbool.h>

#include "tcpkit.h"

/* getopt_long values of the TLS options (above every command's own). */
enum {
	TLSOPT_TLS = 0x1000,
	TLSOPT_CACERT,
	TLSOPT_CAPATH,
	TLSOPT_SERVERNAME,
	TLSOPT_PIN,
	TLSOPT_INSECURE,
	TLSOPT_CERT,
	TLSOPT_KEY,
	TLSOPT_MIN,
	TLSOPT_ALPN,
	TLSOPT_CLIENT_CA,
	TLSOPT_CLIENT_AUTH,
};

/* clang-format off */
/* The options of a client (connect, send, get), for a longopts table. */
#define TLSOPT_CLIENT_LONGOPTS                                                 \
	{ "tls", no_argument, NULL, TLSOPT_TLS },                              \
	{ "cacert", required_argument, NULL, TLSOPT_CACERT },                  \
	{ "capath", required_argument, NULL, TLSOPT_CAPATH },                  \
	{ "servername", required_argument, NULL, TLSOPT_SERVERNAME },          \
	{ "pin", required_argument, NULL, TLSOPT_PIN },                        \
	{ "insecure", no_argument, NULL, TLSOPT_INSECURE },                    \
	{ "cert", required_argument, NULL, TLSOPT_CERT },                      \
	{ "key", required_argument, NULL, TLSOPT_KEY },                        \
	{ "tls-min", required_argument, NULL, TLSOPT_MIN },                    \
	{ "alpn", required_argument, NULL, TLSOPT_ALPN }

/* The options of serve. */
#define TLSOPT_SERVER_LONGOPTS                                                 \
	{ "tls", no_argument, NULL, TLSOPT_TLS },                              \
	{ "cert", required_argument, NULL, TLSOPT_CERT },                      \
	{ "key", required_argument, NULL, TLSOPT_KEY },                        \
	{ "tls-min", required_argument, NULL, TLSOPT_MIN },                    \
	{ "alpn", required_argument, NULL, TLSOPT_ALPN },                      \
	{ "client-ca", required_argument, NULL, TLSOPT_CLIENT_CA },            \
	{ "client-auth", required_argument, NULL, TLSOPT_CLIENT_AUTH }
/* clang-format on */

struct tlsopt {
	bool tls;  /* --tls, or an https:// URL */
	bool used; /* some TLS option other than --tls was given */
	const char *used_name;
	const char *cacert, *capath, *servername, *pin, *cert, *key, *alpn;
	const char *client_ca;
	bool insecure;
	bool client_auth_set;
	enum tk_tls_client_auth client_auth;
	unsigned min_version;
};

/* Take option ch (a TLSOPT_*); 0, or a usage exit code. */
int tlsopt_take(const char *cmd, struct tlsopt *t, int ch, const char *arg);
/*
 * Check the options (conflicts, files readable) and build the context:
 * before any I/O.  0 with *ctx set (NULL without TLS), or an exit code
 * after printing the error.
 */
int tlsopt_client_ctx(const char *cmd, struct tlsopt *t,
		      struct tk_tls_ctx **ctx);
int tlsopt_server_ctx(const char *cmd, struct tlsopt *t,
		      struct tk_tls_ctx **ctx);
/*
 * The server's context from checked options, again (serve, listen and
 * relay on SIGHUP): tk_tls_ctx_new_server()'s result and why.
 */
int tlsopt_server_build(const struct tlsopt *t, struct tk_tls_ctx **ctx,
			char *why, size_t whylen);
/* The same for a client's (relay's tls:// targets). */
int tlsopt_client_build(const struct tlsopt *t, struct tk_tls_ctx **ctx,
			char *why, size_t whylen);
/* -v: what was negotiated and who the peer is, on stderr. */
void tlsopt_print_info(struct tk_conn *c);
/*
 * The why of a connection's error: tk_strerror(err), with OpenSSL's detail
 * for TLS errors ("certificate name mismatch (hostname mismatch)").
 */
const char *tlsopt_why(struct tk_conn *c, int err, char *buf, size_t len);

/* The help text of the client TLS options (connect and send). */
#define TLSOPT_CLIENT_HELP                                                            \
	"TLS (see docs/tls.md):\n"                                                    \
	"      --tls                TLS 1.2 or 1.3; the server's certificate is\n"    \
	"                           checked against the system's trust store and\n"   \
	"                           HOST (SNI is sent for names, not addresses)\n"    \
	"      --cacert FILE        trust these CAs (PEM) instead\n"                  \
	"      --capath DIR         trust the CAs in DIR (c_rehash layout)\n"         \
	"      --servername NAME    check the certificate for NAME, send it as SNI\n" \
	"      --pin sha256:HEX     accept exactly this certificate or public key\n"  \
	"                           (e.g. the one `tcpkit serve --tls` prints)\n"     \
	"      --insecure           check nothing (warns: anyone on the path can\n"   \
	"                           read and change the session)\n"                   \
	"      --cert FILE          a client certificate (chain, PEM)\n"              \
	"      --key FILE           its key (default: in --cert)\n"                   \
	"      --tls-min 1.2|1.3    oldest version accepted (default 1.2)\n"          \
	"      --alpn LIST          protocols to offer, e.g. h2,http/1.1\n"           \
	"  With -v: version, cipher, ALPN and the server's certificate (subject,\n"   \
	"  issuer, validity, SHA-256).  SSLKEYLOGFILE is honoured.  Nothing is\n"     \
	"  sent before the server is verified; a failure names its reason\n"          \
	"  (untrusted issuer, name mismatch, expired, pin mismatch, protocol\n"       \
	"  version, handshake failure, not TLS) and exits 76; an untrusted\n"         \
	"  certificate's error gives the --pin sha256:HEX that would accept it.\n"    \
	"  Without --tls, a first answer that is a TLS record (an alert from\n"       \
	"  `tcpkit serve --tls`) is \"the peer answered with TLS: try --tls\".\n"

#endif /* TK_CLI_TLSOPT_H */
