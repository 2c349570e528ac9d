/* bench_start.c: `tcpkit bench --start-at TIME`: RFC 3339 or Unix time, so
 * generators started apart (ssh, a Job's pods) begin their load together. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli.h"

#define NS_PER_S      UINT64_C(1000000000)
#define MAX_AHEAD_S   (24 * 3600)
#define START_AT_HELP "RFC 3339 (2026-12-03T17:00:00Z) or Unix time"

/* n decimal digits at *p, moving past them; -1 if one is not a digit. */
static int
digits(const char **p, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++, (*p)++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
	}
	return v;
}

/* ".123" (1 to 9 digits) as ns, moving past it; 0 when absent. */
static bool
fraction(const char **p, uint64_t *ns)
{
	uint64_t scale = NS_PER_S;
	int n = 0;

	*ns = 0;
	if (**p != '.')
		return true;
	for ((*p)++; **p >= '0' && **p <= '9'; (*p)++, n++) {
		if (n == 9)
			return false;
		scale /= 10;
		*ns += (uint64_t)(**p - '0') * scale;
	}
	return n > 0;
}

/*
 * sec and frac as ns; UINT64_MAX past 2554, which is still far ahead: a
 * product wrapped into the past would start the run at once.
 */
static uint64_t
to_ns(uint64_t sec, uint64_t frac)
{
	if (sec > (UINT64_MAX - frac) / NS_PER_S)
		return UINT64_MAX;
	return sec * NS_PER_S + frac;
}

static bool
unix_time(const char *s, uint64_t *ns)
{
	uint64_t sec = 0, frac;

	if (*s == '\0')
		return false;
	for (; *s >= '0' && *s <= '9'; s++)
		sec = sec > (UINT64_MAX - 9) / 10
			      ? UINT64_MAX
			      : sec * 10 + (uint64_t)(*s - '0');
	if (!fraction(&s, &frac) || *s != '\0')
		return false;
	*ns = to_ns(sec, frac);
	return true;
}

/* 2026-12-03T17:00:00[.frac](Z|+HH:MM|-HH:MM), as RFC 3339 writes it. */
static bool
rfc3339(const char *s, uint64_t *ns)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	uint64_t frac;
	time_t t;

	if ((y = digits(&s, 4)) < 0 || *s++ != '-' ||
	    (mo = digits(&s, 2)) < 0 || *s++ != '-' ||
	    (d = digits(&s, 2)) < 0 || (*s != 'T' && *s != 't') ||
	    (s++, (h = digits(&s, 2)) < 0) || *s++ != ':' ||
	    (mi = digits(&s, 2)) < 0 || *s++ != ':' ||
	    (sec = digits(&s, 2)) < 0 || !fraction(&s, &frac))
		return false;
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s++ == '+' ? 1 : -1;
		if ((oh = digits(&s, 2)) < 0 || *s++ != ':' ||
		    (om = digits(&s, 2)) < 0 || oh > 23 || om > 59)
			return false;
	} else {
		return false;
	}
	if (*s != '\0' || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 ||
	    h > 23 || mi > 59 || sec > 59)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* timegm() normalises 31 February: such a date is no date. */
	if (t == (time_t)-1 || tm.tm_mday != d)
		return false;
	t -= (time_t)sign * (oh * 3600 + om * 60);
	if (t < 0)
		return false;
	*ns = to_ns((uint64_t)t, frac);
	return true;
}

int
bench_parse_start_at(const char *text, uint64_t *ns)
{
	struct timespec now;

	if (!unix_time(text, ns) && !rfc3339(text, ns))
		return cli_usage("bench",
				 "--start-at needs a time, " START_AT_HELP
				 ", not '%s'",
				 text);
	clock_gettime(CLOCK_REALTIME, &now);
	if (*ns / NS_PER_S > (uint64_t)now.tv_sec + MAX_AHEAD_S)
		return cli_usage("bench",
				 "--start-at %s is more than a day ahead",
				 text);
	return 0;
}
