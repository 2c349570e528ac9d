/* proxyopt.c: the proxy a client command goes through, from its options or
 * (get) the environment, as curl reads them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "proxyopt.h"

int
proxyopt_parse(const char *cmd, const char *opt, const char *url,
	       struct tk_proxy *out)
{
	char why[256], *full = NULL;
	int err;

	if (strstr(url, "://") == NULL && asprintf(&full, "http://%s", url) < 0)
		return cli_usage(cmd, "%s: out of memory", opt);
	err = tk_proxy_parse(full != NULL ? full : url, out, why, sizeof(why));
	if (full != NULL) {
		explicit_bzero(full, strlen(full));
		free(full);
	}
	/* The URL may hold a password: the reason never quotes it. */
	if (err < 0)
		return cli_usage(cmd, "%s: %s", opt, why);
	return 0;
}

/* Whether entry (n bytes, no leading dot) matches host. */
static bool
entry_matches(const char *entry, size_t n, const char *host)
{
	size_t hl = strlen(host);
	struct tk_addr a;
	char ip[TK_HOSTLEN];

	if (n == 0 || n >= sizeof(ip))
		return false;
	memcpy(ip, entry, n);
	ip[n] = '\0';
	/* "[::1]" as an entry is the address ::1. */
	if (ip[0] == '[' && ip[n - 1] == ']') {
		memmove(ip, ip + 1, n - 2);
		ip[n - 2] = '\0';
		n -= 2;
	}
	if (tk_addr_from_ip(ip, 0, &a) == 0) {
		struct tk_addr b;

		return tk_addr_from_ip(host, 0, &b) == 0 &&
		       tk_addr_equal(&a, &b);
	}
	if (hl == n)
		return strncasecmp(host, ip, n) == 0;
	return hl > n && host[hl - n - 1] == '.' &&
	       strncasecmp(host + hl - n, ip, n) == 0;
}

bool
proxyopt_no_proxy(const char *list, const char *host)
{
	const char *p = list;

	while (p != NULL && *p != '\0') {
		size_t n;

		p += strspn(p, ", \t");
		n = strcspn(p, ", \t");
		if (n == 1 && *p == '*')
			return true;
		if (n > 0 && *p == '.') {
			p++;
			n--;
		}
		if (entry_matches(p, n, host))
			return true;
		p += n;
	}
	return false;
}

static const char *
env2(const char *lower, const char *upper)
{
	const char *v = getenv(lower);

	if ((v == NULL || *v == '\0') && upper != NULL)
		v = getenv(upper);
	return v != NULL && *v != '\0' ? v : NULL;
}

int
proxyopt_for_url(const char *cmd, const char *scheme, const char *host,
		 const char *flag, const char *noproxy, struct tk_proxy *out,
		 bool *use)
{
	const char *url = flag, *from = "--proxy", *np;

	*use = false;
	if (url == NULL) {
		if (strcasecmp(scheme, "https") == 0) {
			url = env2("https_proxy", "HTTPS_PROXY");
			from = getenv("https_proxy") != NULL ? "https_proxy"
							     : "HTTPS_PROXY";
		} else {
			url = env2("http_proxy", NULL);
			from = "http_proxy";
		}
		if (url == NULL) {
			url = env2("all_proxy", "ALL_PROXY");
			from = getenv("all_proxy") != NULL ? "all_proxy"
							   : "ALL_PROXY";
		}
	}
	if (url == NULL || *url == '\0')
		return 0;
	np = noproxy != NULL ? noproxy : env2("no_proxy", "NO_PROXY");
	if (np != NULL && proxyopt_no_proxy(np, host))
		return 0;
	if (proxyopt_parse(cmd, from, url, out) != 0)
		return CLI_EXIT_USAGE;
	*use = true;
	return 0;
}

void
proxyopt_hide(char *url)
{
	char *s = strstr(url, "://"), *at = NULL, *colon, *end;

	s = s != NULL ? s + 3 : url;
	end = s + strcspn(s, "/?#");
	for (char *p = s; p < end; p++)
		if (*p == '@')
			at = p;
	if (at == NULL)
		return;
	colon = memchr(s, ':', (size_t)(at - s));
	if (colon != NULL)
		memset(colon + 1, '*', (size_t)(at - colon - 1));
}

char *
proxyopt_where(const char *target, const struct tk_proxy *p, char *buf,
	       size_t len)
{
	char url[TK_HOSTLEN + TK_PROXY_CREDLEN + 64];

	snprintf(buf, len, "%s via %s", target,
		 tk_proxy_format(p, url, sizeof(url)));
	return buf;
}
