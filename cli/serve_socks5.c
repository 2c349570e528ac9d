/* serve_socks5.c: `serve socks5`'s options: --users, the target rules, the
 * no-auth-on-loopback rule, and its one log line per tunnel. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "serve.h"

struct user {
	char *name;
	char *pass;
};

struct socks5_users {
	struct user *v;
	size_t n;
};

/* Compared in time independent of where they differ: no timing oracle. */
static bool
same(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;

	for (size_t i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static bool
check_user(const char *name, const char *pass, void *arg)
{
	const struct socks5_users *u = arg;
	bool ok = false;

	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->v[i].name, name) == 0)
			ok |= same(u->v[i].pass, pass);
	return ok;
}

static void
users_free(struct socks5_users *u)
{
	if (u == NULL)
		return;
	for (size_t i = 0; i < u->n; i++) {
		explicit_bzero(u->v[i].pass, strlen(u->v[i].pass));
		free(u->v[i].name);
		free(u->v[i].pass);
	}
	free(u->v);
	free(u);
}

/* USER:PASSWORD lines, '#' comments and blank lines. 0 or an exit code. */
static int
users_load(const char *path, struct socks5_users **out)
{
	struct socks5_users *u = calloc(1, sizeof(*u));
	FILE *f = fopen(path, "r");
	char line[TK_PROXY_CREDLEN * 2 + 4];
	size_t lineno = 0;
	int rc = 0;

	if (u == NULL || f == NULL) {
		rc = f == NULL ? CLI_EXIT_NOINPUT : CLI_EXIT_OTHER;
		cli_error("serve", path, "--users: %s",
			  f == NULL ? strerror(errno) : "out of memory");
		goto out;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *colon, *end = line + strcspn(line, "\r\n");
		struct user *v;

		lineno++;
		if (*end == '\0' && !feof(f)) {
			rc = cli_usage("serve", "--users %s:%zu: line too long",
				       path, lineno);
			goto out;
		}
		*end = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		colon = strchr(line, ':');
		if (colon == NULL || colon == line || colon[1] == '\0' ||
		    colon - line > 255 || strlen(colon + 1) > 255) {
			rc = cli_usage(
				"serve",
				"--users %s:%zu: not USER:PASSWORD (each "
				"1 to 255 bytes)",
				path, lineno);
			goto out;
		}
		*colon = '\0';
		v = realloc(u->v, (u->n + 1) * sizeof(*v));
		if (v == NULL) {
			rc = cli_fail("serve", path, -ENOMEM);
			goto out;
		}
		u->v = v;
		v[u->n].name = strdup(line);
		v[u->n].pass = strdup(colon + 1);
		u->n++;
		if (v[u->n - 1].name == NULL || v[u->n - 1].pass == NULL) {
			rc = cli_fail("serve", path, -ENOMEM);
			goto out;
		}
	}
	if (rc == 0 && u->n == 0)
		rc = cli_usage("serve", "--users %s: no USER:PASSWORD line",
			       path);
out:
	explicit_bzero(line, sizeof(line));
	if (f != NULL)
		fclose(f);
	if (rc != 0) {
		users_free(u);
		return rc;
	}
	*out = u;
	return 0;
}

int
socks5opt_take(struct socks5opt *o, int ch, const char *arg)
{
	char why[TK_ACL_ERRLEN];
	int err;

	if (ch == SOCKS5OPT_USERS) {
		o->users_file = arg;
		return 0;
	}
	if (o->targets == NULL && (err = tk_acl_new(&o->targets)) < 0)
		return cli_fail("serve", "", err);
	if (tk_acl_add(o->targets,
		       ch == SOCKS5OPT_ALLOW_TARGET ? TK_ACL_ALLOW
						    : TK_ACL_DENY,
		       arg, why, sizeof(why)) < 0)
		return cli_usage("serve", "%s %s: %s",
				 ch == SOCKS5OPT_ALLOW_TARGET ? "--allow-target"
							      : "--deny-target",
				 arg, why);
	return 0;
}

/* An address only this machine can reach (a name is not trusted to be). */
static bool
loopback_host(const char *host)
{
	struct tk_addr a;

	if (strcmp(host, "localhost") == 0)
		return true;
	return tk_addr_parse(host, 1, &a) == 0 && tk_addr_is_loopback(&a);
}

int
socks5opt_check(const struct serve_opts *o)
{
	const struct socks5opt *s = &o->socks;
	bool socks = strcmp(o->service, "socks5") == 0;

	if (!socks && (s->users_file != NULL || s->targets != NULL))
		return cli_usage("serve", "--users, --allow-target and "
					  "--deny-target apply to the socks5 "
					  "service only");
	if (!socks || s->users_file != NULL)
		return 0;
	for (size_t i = 0; i < o->nhosts; i++)
		if (!loopback_host(o->hosts[i]))
			return cli_usage(
				"serve",
				"socks5 on %s without --users: anyone who "
				"can reach it could use it; give --users "
				"FILE, or listen on loopback only",
				o->hosts[i]);
	return 0;
}

/* A name the client chose, safe on one log line. */
static void
plain(char *s, bool spaces)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < (spaces ? 0x20 : 0x21) ||
		    (unsigned char)*s > 0x7e)
			*s = '?';
}

static void
on_tunnel(const struct tk_socks5_tunnel *t, void *arg)
{
	const struct serve_opts *o = arg;
	const struct tk_pipe_result *r = t->result;
	char peer[TK_ADDRSTRLEN], target[TK_HOSTLEN + 8], user[300];
	char why[300], dur[32];

	if (o->log.quiet)
		return;
	tk_addr_format(t->client, peer, sizeof(peer));
	snprintf(target, sizeof(target), "%s", t->target);
	plain(target, false);
	if (target[0] == '\0')
		strcpy(target, "(no request)");
	snprintf(user, sizeof(user), "%s%s", t->user[0] != '\0' ? " user " : "",
		 t->user);
	plain(user + (user[0] != '\0' ? 6 : 0), false);
	snprintf(why, sizeof(why), "%s",
		 t->why[0] != '\0' ? t->why
		 : t->err != 0	   ? tk_strerror(t->err)
				   : "done");
	plain(why, true);
	if (r != NULL) {
		cli_log("socks5", "target", target,
			"socks5 %s%s -> %s after %s: %llu bytes up, %llu bytes "
			"down, %s closed first (%s)",
			peer, user, target,
			cli_format_duration(r->duration_ms, dur, sizeof(dur)),
			(unsigned long long)r->a_to_b,
			(unsigned long long)r->b_to_a,
			r->first == TK_PIPE_A	? "client"
			: r->first == TK_PIPE_B ? "target"
						: "nobody",
			r->err == 0 ? "done" : why);
		return;
	}
	if (t->reply != 0xff)
		cli_log("socks5_failed", "target", target,
			"socks5 %s%s -> %s: reply %u (%s): %s", peer, user,
			target, t->reply, tk_socks5_reply_text(t->reply), why);
	else
		cli_log("socks5_failed", "target", target,
			"socks5 %s%s -> %s: %s", peer, user, target, why);
}

int
socks5opt_setup(const struct serve_opts *o, struct tk_socks5_opts *so)
{
	struct socks5_users *u = NULL;
	int rc;

	memset(so, 0, sizeof(*so));
	if (o->socks.users_file != NULL &&
	    (rc = users_load(o->socks.users_file, &u)) != 0)
		return rc;
	so->require_auth = u != NULL;
	so->check_user = u != NULL ? check_user : NULL;
	so->user_arg = u;
	so->targets = o->socks.targets;
	so->handshake_ms = o->handshake_ms;
	so->log = on_tunnel;
	so->log_arg = (void *)o;
	return 0;
}

void
socks5opt_free(struct socks5opt *o, struct tk_socks5_opts *so)
{
	if (so != NULL)
		users_free(so->user_arg);
	tk_acl_free(o->targets);
	o->targets = NULL;
}
