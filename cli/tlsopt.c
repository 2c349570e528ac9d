/* tlsopt.c: the TLS options of connect, send, get and serve: parsing,
 * checks before any I/O, building the context, and -v output. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "tlsopt.h"

int
tlsopt_take(const char *cmd, struct tlsopt *t, int ch, const char *arg)
{
	const char *name = NULL;

	switch (ch) {
	case TLSOPT_TLS:
		t->tls = true;
		return 0;
	case TLSOPT_CACERT:
		t->cacert = arg;
		name = "--cacert";
		break;
	case TLSOPT_CAPATH:
		t->capath = arg;
		name = "--capath";
		break;
	case TLSOPT_SERVERNAME:
		if (arg[0] == '\0' || strlen(arg) >= TK_HOSTLEN)
			return cli_usage(cmd, "--servername needs a host name");
		t->servername = arg;
		name = "--servername";
		break;
	case TLSOPT_PIN:
		t->pin = arg;
		name = "--pin";
		break;
	case TLSOPT_INSECURE:
		t->insecure = true;
		name = "--insecure";
		break;
	case TLSOPT_CERT:
		t->cert = arg;
		name = "--cert";
		break;
	case TLSOPT_KEY:
		t->key = arg;
		name = "--key";
		break;
	case TLSOPT_MIN:
		if (strcmp(arg, "1.2") == 0)
			t->min_version = TK_TLS_1_2;
		else if (strcmp(arg, "1.3") == 0)
			t->min_version = TK_TLS_1_3;
		else
			return cli_usage(
				cmd, "--tls-min is 1.2 or 1.3, not '%s'", arg);
		name = "--tls-min";
		break;
	case TLSOPT_ALPN:
		t->alpn = arg;
		name = "--alpn";
		break;
	case TLSOPT_CLIENT_CA:
		t->client_ca = arg;
		name = "--client-ca";
		break;
	case TLSOPT_CLIENT_AUTH:
		if (strcmp(arg, "optional") == 0)
			t->client_auth = TK_TLS_CLIENT_AUTH_OPTIONAL;
		else if (strcmp(arg, "required") == 0)
			t->client_auth = TK_TLS_CLIENT_AUTH_REQUIRED;
		else
			return cli_usage(cmd,
					 "--client-auth is optional or "
					 "required, not '%s'",
					 arg);
		t->client_auth_set = true;
		name = "--client-auth";
		break;
	default:
		return cli_usage(cmd, "unexpected option");
	}
	t->used = true;
	t->used_name = name;
	return 0;
}

/* A file we will read: report now, not after connecting. */
static int
readable(const char *cmd, const char *opt, const char *path, bool dir)
{
	char where[512];
	int fd;

	snprintf(where, sizeof(where), "%s %s", opt, path);
	if (dir) {
		DIR *d = opendir(path);

		if (d == NULL) {
			cli_error(cmd, where, "%s", strerror(errno));
			return CLI_EXIT_NOINPUT;
		}
		closedir(d);
		return 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cli_error(cmd, where, "%s", strerror(errno));
		return CLI_EXIT_NOINPUT;
	}
	close(fd);
	return 0;
}

static int
build_failed(const char *cmd, int err, const char *why)
{
	if (err == -ENOMEM)
		return cli_fail(cmd, "tls", err);
	cli_error(cmd, "tls", "%s", why);
	return CLI_EXIT_USAGE;
}

/*
 * SSLKEYLOGFILE, as browsers and curl honour it (ignored in a setuid
 * program): the library reads no environment, the program passes it on.
 */
static const char *
keylog_file(void)
{
	const char *path = secure_getenv("SSLKEYLOGFILE");

	return path != NULL && path[0] != '\0' ? path : NULL;
}

int
tlsopt_client_build(const struct tlsopt *t, struct tk_tls_ctx **ctx, char *why,
		    size_t whylen)
{
	struct tk_tls_client_opts o = { 0 };

	o.ca_file = t->cacert;
	o.ca_dir = t->capath;
	o.insecure = t->insecure;
	o.pin = t->pin;
	o.cert_file = t->cert;
	o.key_file = t->key;
	o.min_version = t->min_version;
	o.alpn = t->alpn;
	o.keylog_file = keylog_file();
	return tk_tls_ctx_new_client(&o, ctx, why, whylen);
}

int
tlsopt_client_ctx(const char *cmd, struct tlsopt *t, struct tk_tls_ctx **ctx)
{
	char why[TK_TLS_ERRLEN];
	int rc, err;

	*ctx = NULL;
	if (!t->tls) {
		if (t->used)
			return cli_usage(cmd, "%s needs --tls", t->used_name);
		return 0;
	}
	if (t->insecure && (t->cacert || t->capath || t->pin))
		return cli_usage(cmd, "--insecure excludes %s",
				 t->pin	     ? "--pin"
				 : t->cacert ? "--cacert"
					     : "--capath");
	if (t->pin && (t->cacert || t->capath))
		return cli_usage(cmd,
				 "--pin replaces the CA check: it excludes "
				 "%s",
				 t->cacert ? "--cacert" : "--capath");
	if (t->key && !t->cert)
		return cli_usage(cmd, "--key needs --cert");
	if ((t->cacert && (rc = readable(cmd, "--cacert", t->cacert, false))) ||
	    (t->capath && (rc = readable(cmd, "--capath", t->capath, true))) ||
	    (t->cert && (rc = readable(cmd, "--cert", t->cert, false))) ||
	    (t->key && (rc = readable(cmd, "--key", t->key, false))))
		return rc;
	err = tlsopt_client_build(t, ctx, why, sizeof(why));
	if (err < 0)
		return build_failed(cmd, err, why);
	if (t->insecure)
		cli_error("warning", "--insecure",
			  "the server's certificate is not checked: anyone on "
			  "the path can read and change this connection");
	return 0;
}

int
tlsopt_server_build(const struct tlsopt *t, struct tk_tls_ctx **ctx, char *why,
		    size_t whylen)
{
	struct tk_tls_server_opts o = { 0 };

	o.cert_file = t->cert;
	o.key_file = t->key;
	o.client_ca_file = t->client_ca;
	/* A CA for clients and no word on it: a certificate is required. */
	o.client_auth = t->client_ca == NULL ? TK_TLS_CLIENT_AUTH_NONE
			: t->client_auth_set ? t->client_auth
					     : TK_TLS_CLIENT_AUTH_REQUIRED;
	o.min_version = t->min_version;
	o.alpn = t->alpn;
	o.keylog_file = keylog_file();
	return tk_tls_ctx_new_server(&o, ctx, why, whylen);
}

int
tlsopt_server_ctx(const char *cmd, struct tlsopt *t, struct tk_tls_ctx **ctx)
{
	char why[TK_TLS_ERRLEN], fp[TK_TLS_FPLEN];
	int rc, err;

	*ctx = NULL;
	if (!t->tls) {
		if (t->used)
			return cli_usage(cmd, "%s needs --tls", t->used_name);
		return 0;
	}
	if (t->key && !t->cert)
		return cli_usage(cmd, "--key needs --cert");
	if (t->client_auth_set && !t->client_ca)
		return cli_usage(cmd, "--client-auth needs --client-ca");
	if ((t->cert && (rc = readable(cmd, "--cert", t->cert, false))) ||
	    (t->key && (rc = readable(cmd, "--key", t->key, false))) ||
	    (t->client_ca &&
	     (rc = readable(cmd, "--client-ca", t->client_ca, false))))
		return rc;
	err = tlsopt_server_build(t, ctx, why, sizeof(why));
	if (err < 0)
		return build_failed(cmd, err, why);
	if (t->cert == NULL && tk_tls_ctx_fingerprint(*ctx, fp) == 0)
		cli_log("tls_self_signed", "sha256", fp,
			"tls: self-signed certificate sha256:%s", fp);
	return 0;
}

void
tlsopt_print_info(struct tk_conn *c)
{
	struct tk_tls_info i;

	if (tk_conn_tls_info(c, &i) < 0)
		return;
	fprintf(stderr, "tls: %s %s%s%s%s%s%s\n", i.version, i.cipher,
		i.group[0] ? " group " : "", i.group, i.alpn[0] ? " alpn " : "",
		i.alpn, i.resumed ? " (resumed)" : "");
	if (!i.peer_cert)
		return;
	fprintf(stderr, "tls: subject %s\n", i.subject);
	fprintf(stderr, "tls: issuer %s\n", i.issuer);
	fprintf(stderr, "tls: valid %s to %s\n", i.not_before, i.not_after);
	fprintf(stderr, "tls: sha256:%s\n", i.sha256);
}

const char *
tlsopt_why(struct tk_conn *c, int err, char *buf, size_t len)
{
	const char *d = tk_conn_last_error(c);
	char fp[TK_TLS_FPLEN];
	size_t n;

	/* TLS's and the proxies' codes (3300s, 3500s) have details. */
	if (err <= -3300 && err > -3600 && d[0] != '\0')
		snprintf(buf, len, "%s (%s)", tk_strerror(err), d);
	else
		snprintf(buf, len, "%s", tk_strerror(err));
	/* A pin is the way to trust one certificate no CA vouches for. */
	n = strlen(buf);
	if (err == TK_ETLSVERIFY && tk_conn_tls_peer_fingerprint(c, fp) == 0)
		snprintf(buf + n, len - n, "; if you trust it: --pin sha256:%s",
			 fp);
	return buf;
}
