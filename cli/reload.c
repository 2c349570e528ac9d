/* reload.c: SIGHUP in serve, listen and relay: the certificate and the
 * access-list files read again, swapped in for new connections only. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "reload.h"

/* A file the new context needs: its open error, in words, or 0. */
static int
unreadable(const char *opt, const char *path, char *why, size_t len)
{
	int fd;

	if (path == NULL)
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, len, "%s %s: %s", opt, path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * The same for a directory (--capath): OpenSSL reads it only when it
 * verifies, so a directory gone would load as a store that trusts no one.
 */
static int
unreadable_dir(const char *opt, const char *path, char *why, size_t len)
{
	DIR *d;

	if (path == NULL)
		return 0;
	if ((d = opendir(path)) == NULL) {
		snprintf(why, len, "%s %s: %s", opt, path, strerror(errno));
		return -1;
	}
	closedir(d);
	return 0;
}

/*
 * Startup takes any certificate (clients say what is wrong with it); a
 * reload refuses one out of date: the one in use may still be good.
 */
static int
out_of_date(const struct tk_tls_info *info, const char *cert, char *why,
	    size_t len)
{
	char now[32];
	time_t t = time(NULL);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return 0;
	/* Both "YYYY-MM-DDTHH:MM:SSZ": the strings compare as the times. */
	if (info->not_after[0] != '\0' && strcmp(info->not_after, now) < 0) {
		snprintf(why, len, "certificate %s expired on %s", cert,
			 info->not_after);
		return -1;
	}
	if (strcmp(info->not_before, now) > 0) {
		snprintf(why, len, "certificate %s is not valid before %s",
			 cert, info->not_before);
		return -1;
	}
	return 0;
}

static bool
reload_tls(struct reload *r)
{
	const struct tlsopt *t = r->tls;
	struct tk_tls_ctx *ctx = NULL;
	struct tk_tls_info info;
	char why[TK_TLS_ERRLEN + 512];
	int err;

	/* An ephemeral certificate stays: a new one would break pins. */
	if (t == NULL || !t->tls || t->cert == NULL)
		return false;
	if (unreadable("--cert", t->cert, why, sizeof(why)) < 0 ||
	    unreadable("--key", t->key, why, sizeof(why)) < 0 ||
	    unreadable("--client-ca", t->client_ca, why, sizeof(why)) < 0)
		goto refused;
	err = tlsopt_server_build(t, &ctx, why, sizeof(why));
	if (err == -ENOMEM)
		snprintf(why, sizeof(why), "%s", tk_strerror(err));
	if (err < 0)
		goto refused;
	if (tk_tls_ctx_cert_info(ctx, &info) < 0)
		memset(&info, 0, sizeof(info));
	if (out_of_date(&info, t->cert, why, sizeof(why)) < 0)
		goto refused;
	if ((err = tk_server_set_tls(r->server, ctx)) < 0) {
		snprintf(why, sizeof(why), "%s", tk_strerror(err));
		goto refused;
	}
	tk_tls_ctx_free(*r->ctx);
	*r->ctx = ctx;
	cli_log("reload_tls", "sha256", info.sha256,
		"reload: certificate %s: subject %s, sha256:%s, valid to %s",
		t->cert, info.subject, info.sha256, info.not_after);
	return true;

refused:
	tk_tls_ctx_free(ctx);
	cli_error(r->cmd, "reload",
		  "%s; the certificate in use stays (new clients get it)", why);
	return true;
}

static bool
reload_acl(struct reload *r)
{
	struct tk_acl *acl = NULL;
	char why[1024];
	int err;

	if (r->acl == NULL || r->acl->nfiles == 0)
		return false;
	err = aclopt_rebuild(r->acl, &acl, why, sizeof(why));
	if (err == 0 && (err = tk_server_set_acl(r->server, acl)) < 0)
		snprintf(why, sizeof(why), "%s", tk_strerror(err));
	if (err < 0) {
		tk_acl_free(acl);
		cli_error(r->cmd, "reload", "%s; the access list in use stays",
			  why);
		return true;
	}
	/* The server holds its own reference to both. */
	tk_acl_free(r->acl->acl);
	r->acl->acl = acl;
	cli_log("reload_acl", NULL, NULL,
		"reload: access list: %zu allow rule%s, %zu deny rule%s "
		"(lists apply to new clients)",
		tk_acl_count(acl, TK_ACL_ALLOW),
		CLI_PLURAL(tk_acl_count(acl, TK_ACL_ALLOW)),
		tk_acl_count(acl, TK_ACL_DENY),
		CLI_PLURAL(tk_acl_count(acl, TK_ACL_DENY)));
	return true;
}

/* relay's tls:// targets: the CAs (--cacert, --capath) read again. */
static bool
reload_targets(struct reload *r)
{
	const struct tlsopt *t = r->cli;
	struct tk_tls_ctx *ctx = NULL, *old;
	char why[TK_TLS_ERRLEN + 512];
	int err;

	if (t == NULL || !t->tls || (t->cacert == NULL && t->capath == NULL))
		return false;
	if (unreadable("--cacert", t->cacert, why, sizeof(why)) < 0 ||
	    unreadable_dir("--capath", t->capath, why, sizeof(why)) < 0)
		goto refused;
	err = tlsopt_client_build(t, &ctx, why, sizeof(why));
	if (err == -ENOMEM)
		snprintf(why, sizeof(why), "%s", tk_strerror(err));
	if (err < 0)
		goto refused;
	/* A worker connecting now holds the lock: its session holds old. */
	pthread_mutex_lock(r->cli_lock);
	old = *r->cli_ctx;
	*r->cli_ctx = ctx;
	pthread_mutex_unlock(r->cli_lock);
	tk_tls_ctx_free(old);
	cli_log("reload_targets", NULL, NULL,
		"reload: CAs for tls:// targets: %s %s",
		t->cacert != NULL ? "--cacert" : "--capath",
		t->cacert != NULL ? t->cacert : t->capath);
	return true;

refused:
	cli_error(r->cmd, "reload",
		  "%s; the CAs in use for tls:// targets stay", why);
	return true;
}

void
reload_now(struct reload *r)
{
	bool tls, acl, targets;

	if (r->server == NULL)
		return;
	/*
	 * Under systemd, RELOADING=1 then READY=1 (no-ops otherwise), so a
	 * Type=notify-reload unit's reload ends when ours has; a manager
	 * that cannot be told was already warned of at READY=1.
	 */
	(void)tk_sd_notify_reloading();
	tls = reload_tls(r);
	acl = reload_acl(r);
	targets = reload_targets(r);
	if (!tls && !acl && !targets)
		cli_log("reload", NULL, NULL,
			"reload: nothing to reload (no --cert, --allow-file "
			"or --deny-file)");
	(void)tk_sd_notify("READY=1");
}

static void
on_hup(struct tk_loop *loop, int signo, void *arg)
{
	(void)loop;
	(void)signo;
	reload_now(arg);
}

int
reload_watch(struct tk_loop *loop, struct reload *r)
{
	int err = tk_loop_signal(loop, SIGHUP, on_hup, r);

	return err < 0 ? cli_fail(r->cmd, "signals", err) : 0;
}
