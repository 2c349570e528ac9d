/* bench_report.c: what `tcpkit bench` prints: the summary, --json, the --csv
 * series and the --plot SVG. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli.h"

#define NS_PER_S 1e9

/* The percentiles every report shows, and their JSON names. */
static const struct {
	double p;
	const char *name;
} pcts[] = {
	{ 50, "p50" },
	{ 90, "p90" },
	{ 99, "p99" },
	{ 99.9, "p99_9" },
};

#define NPCTS (sizeof(pcts) / sizeof(pcts[0]))

char *
bench_format_ns(uint64_t ns, char *buf, size_t len)
{
	double v = (double)ns;
	const char *unit;

	if (ns < 1000) {
		snprintf(buf, len, "%lluns", (unsigned long long)ns);
		return buf;
	}
	if (v < 1e6) {
		v /= 1e3;
		unit = "us";
	} else if (v < 1e9) {
		v /= 1e6;
		unit = "ms";
	} else {
		v /= 1e9;
		unit = "s";
	}
	/* Three significant digits: 12.3us, 123us, 1.52ms. */
	snprintf(buf, len,
		 v < 10	   ? "%.2f%s"
		 : v < 100 ? "%.1f%s"
			   : "%.0f%s",
		 v, unit);
	return buf;
}

char *
bench_format_time(uint64_t us, char *buf, size_t len)
{
	time_t sec = (time_t)(us / 1000000);
	struct tm tm;
	char day[32];

	gmtime_r(&sec, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%.20s.%06uZ", day, (unsigned)(us % 1000000));
	return buf;
}

/* The end of the measured window, to the us as start is. */
static uint64_t
end_us(const struct bench_result *r)
{
	return r->start_us + (r->window_ns + 500) / 1000;
}

static bool
uses_tls(const struct bench_opts *o)
{
	return o->tls != NULL || o->tls_used;
}

static double
seconds(const struct bench_result *r)
{
	return (double)r->window_ns / NS_PER_S;
}

static double
per_second(const struct bench_result *r, double v)
{
	return r->window_ns > 0 ? v / seconds(r) : 0;
}

static bool
is_ops(const struct bench_opts *o)
{
	return o->mode == BENCH_RATE || o->mode == BENCH_GREET;
}

static uint64_t
total_errors(const struct bench_result *r)
{
	uint64_t n = 0;

	for (int e = 0; e < BENCH_NERR; e++)
		n += r->total.errors[e];
	return n;
}

static const char *
latency_what(const struct bench_opts *o)
{
	switch (o->mode) {
	case BENCH_ECHO:
		return o->rate > 0 ? "from the scheduled send to the echo"
				   : "from the send to the echo";
	case BENCH_BULK:
		return "from a block's write to its echo";
	case BENCH_RATE:
		return "from connect to the answer";
	case BENCH_GREET:
		return "from connect to the server's close";
	default:
		return "connect time";
	}
}

static void
text_size(FILE *f, size_t size)
{
	if (size >= 1024 * 1024 && size % (1024 * 1024) == 0)
		fprintf(f, "%zu MiB", size / (1024 * 1024));
	else if (size >= 1024 && size % 1024 == 0)
		fprintf(f, "%zu KiB", size / 1024);
	else
		fprintf(f, "%zu B", size);
}

/* The end of a rate's parentheses: a merge says which rate is which. */
static void
text_rate_sum(FILE *f, const struct bench_result *r)
{
	if (r->generators > 0)
		fprintf(f,
			" over the whole span; %.1f/s summed over the "
			"generators",
			r->rate_sum);
	fprintf(f, ")\n");
}

void
bench_report_text(FILE *f, const struct bench_opts *o,
		  const struct bench_result *r)
{
	const struct bench_stats *t = &r->total;
	double secs = seconds(r);
	double cpu = (double)(r->cpu_user_ns + r->cpu_sys_ns);
	char buf[32], dur[32];

	fprintf(f, "mode:        %s", bench_mode_name(o->mode));
	if (o->mode == BENCH_ECHO && o->rate > 0)
		fprintf(f, ", open loop at %g messages/s", o->rate);
	else if (o->mode == BENCH_ECHO)
		fprintf(f, ", closed loop, depth %u", o->depth);
	if (o->count != 0)
		fprintf(f, ", %llu %s per connection",
			(unsigned long long)o->count,
			is_ops(o) ? "operations" : "messages");
	fprintf(f, "%s\n", r->interrupted ? " (interrupted)" : "");
	fprintf(f, "target:      %s%s\n", o->where,
		uses_tls(o) ? (o->mode == BENCH_RATE || o->mode == BENCH_GREET
				       ? " over TLS (a full handshake per "
					 "connection)"
				       : " over TLS")
			    : "");
	if (is_ops(o))
		fprintf(f,
			"clients:     %u in parallel, %llu connection%s "
			"established\n",
			o->connections, (unsigned long long)t->established,
			CLI_PLURAL(t->established));
	else
		fprintf(f,
			"connections: %u (%llu established, %llu open at the "
			"end)\n",
			o->connections, (unsigned long long)t->established,
			(unsigned long long)r->open_at_end);
	if (o->mode == BENCH_ECHO || o->mode == BENCH_BULK) {
		fprintf(f, "size:        ");
		text_size(f, o->size);
		if (o->mode == BENCH_BULK) {
			fprintf(f, " writes, window ");
			text_size(f, o->window);
		}
		fprintf(f, "%s\n", o->message != NULL ? " (--message)" : "");
	}
	fprintf(f, "threads:     %u\n", o->threads);
	if (r->generators > 0) {
		char t0[40], t1[40];

		fprintf(f, "generators:  %u runs merged, from %s to %s\n",
			r->generators,
			bench_format_time(r->start_us, t0, sizeof(t0)),
			bench_format_time(end_us(r), t1, sizeof(t1)));
		fprintf(f,
			"duration:    %.2f s from the first start to the "
			"last end",
			secs);
	} else {
		fprintf(f, "duration:    %.2f s measured", secs);
	}
	if (o->warmup_ms > 0)
		fprintf(f, " after %s of warm-up",
			cli_format_duration(o->warmup_ms, dur, sizeof(dur)));
	fputc('\n', f);

	switch (o->mode) {
	case BENCH_ECHO:
	case BENCH_BULK:
		fprintf(f, "%s    %llu (%.1f/s",
			o->mode == BENCH_ECHO ? "messages:" : "blocks:  ",
			(unsigned long long)t->messages,
			per_second(r, (double)t->messages));
		text_rate_sum(f, r);
		fprintf(f, "throughput:  %.2f MB/s sent, %.2f MB/s received\n",
			per_second(r, (double)t->bytes_out) / 1e6,
			per_second(r, (double)t->bytes_in) / 1e6);
		break;
	case BENCH_RATE:
	case BENCH_GREET:
		fprintf(f, "completed:   %llu connection%s (%.1f/s",
			(unsigned long long)t->messages,
			CLI_PLURAL(t->messages),
			per_second(r, (double)t->messages));
		text_rate_sum(f, r);
		break;
	case BENCH_IDLE:
		break;
	}
	fprintf(f, "latency:     ");
	if (t->hist.count == 0) {
		fprintf(f, "none measured\n");
	} else {
		fprintf(f, "min %s",
			bench_format_ns(t->hist.min, buf, sizeof(buf)));
		for (size_t i = 0; i < NPCTS; i++)
			fprintf(f, ", p%g %s", pcts[i].p,
				bench_format_ns(
					tk_hist_percentile(&t->hist, pcts[i].p),
					buf, sizeof(buf)));
		fprintf(f, ", max %s\n",
			bench_format_ns(t->hist.max, buf, sizeof(buf)));
		fprintf(f, "             (%s; %llu samples", latency_what(o),
			(unsigned long long)t->hist.count);
		if (t->drained > 0)
			fprintf(f, ", %llu answered after the window",
				(unsigned long long)t->drained);
		fprintf(f, ")\n");
	}
	fprintf(f, "errors:      %llu (", (unsigned long long)total_errors(r));
	for (int e = 0; e < BENCH_NERR; e++)
		/* Plain TCP has no handshake to fail: no tls class then. */
		if (e != BENCH_ERR_TLS || uses_tls(o))
			fprintf(f, "%s%s %llu", e ? ", " : "",
				bench_err_name((enum bench_err)e),
				(unsigned long long)t->errors[e]);
	fprintf(f, ")\n");
	for (int e = 0; e < BENCH_NERR; e++)
		if (t->errors[e] > 0)
			fprintf(f, "  first %s error: %s\n",
				bench_err_name((enum bench_err)e),
				t->first_error[e]);
	fprintf(f, "client CPU:  ");
	if (r->window_ns == 0) {
		fprintf(f, "not measured\n");
	} else {
		fprintf(f, "%.1f%% of one core",
			100 * cpu / (double)r->window_ns);
		if (t->messages > 0)
			fprintf(f, ", %s per %s",
				bench_format_ns(
					(uint64_t)(cpu / (double)t->messages),
					buf, sizeof(buf)),
				is_ops(o)		? "connection"
				: o->mode == BENCH_BULK ? "block"
							: "message");
		fprintf(f, " (user %.2f s, system %.2f s%s)\n",
			(double)r->cpu_user_ns / NS_PER_S,
			(double)r->cpu_sys_ns / NS_PER_S,
			r->generators > 0 ? "; the generators' summed" : "");
	}
}

static void
json_str(FILE *f, const char *s)
{
	cli_json_string(f, s, strlen(s));
}

void
bench_json_window(FILE *f, uint64_t start_us, uint64_t end)
{
	char buf[40];

	fprintf(f, ", \"start\": \"%s\", \"start_unix\": %llu.%06u",
		bench_format_time(start_us, buf, sizeof(buf)),
		(unsigned long long)(start_us / 1000000),
		(unsigned)(start_us % 1000000));
	fprintf(f, ", \"end\": \"%s\", \"end_unix\": %llu.%06u",
		bench_format_time(end, buf, sizeof(buf)),
		(unsigned long long)(end / 1000000), (unsigned)(end % 1000000));
}

/*
 * When the measured window opened and closed, as RFC 3339 and as Unix
 * time, both to the us; and the rate bench merge sums.
 */
static void
json_times(FILE *f, const struct bench_result *r)
{
	/* Stopped before the window opened: no time to give. */
	if (r->start_us == 0)
		fprintf(f, ", \"start\": null, \"start_unix\": null, "
			   "\"end\": null, \"end_unix\": null");
	else
		bench_json_window(f, r->start_us, end_us(r));
	fprintf(f, ", \"generators\": %u, \"messages_per_s_sum\": %.3f",
		r->generators > 0 ? r->generators : 1,
		r->generators > 0 ? r->rate_sum
				  : per_second(r, (double)r->total.messages));
}

/*
 * The whole latency histogram: its scheme (tcpkit/hist.h) and its
 * non-empty buckets, each with its index and bounds, from which bench
 * merge rebuilds it exactly.  sum is exact (whole ns), for the mean.
 */
void
bench_json_histogram(FILE *f, const struct tk_hist *h)
{
	uint64_t low, high;
	bool first = true;

	fprintf(f,
		", \"histogram\": {\"scheme\": \"log-linear\", "
		"\"sub_bits\": %d, \"max_bits\": %d, \"unit\": \"ns\", "
		"\"count\": %llu, \"min\": %llu, \"max\": %llu, "
		"\"sum\": %.0Lf, \"clamped\": %llu, \"buckets\": [",
		TK_HIST_SUB_BITS, TK_HIST_MAX_BITS,
		(unsigned long long)h->count, (unsigned long long)h->min,
		(unsigned long long)h->max, h->sum,
		(unsigned long long)h->clamped);
	for (size_t b = 0; b < TK_HIST_BUCKETS; b++) {
		if (h->buckets[b] == 0 || tk_hist_bucket(b, &low, &high) < 0)
			continue;
		fprintf(f,
			"%s{\"index\": %zu, \"low\": %llu, \"high\": %llu, "
			"\"count\": %llu}",
			first ? "" : ", ", b, (unsigned long long)low,
			(unsigned long long)high,
			(unsigned long long)h->buckets[b]);
		first = false;
	}
	fprintf(f, "]}");
}

void
bench_report_json(FILE *f, const struct bench_opts *o,
		  const struct bench_result *r)
{
	const struct bench_stats *t = &r->total;
	double cpu = (double)(r->cpu_user_ns + r->cpu_sys_ns);
	bool first;

	fprintf(f, "{\"format_version\": %d, \"mode\": ", BENCH_FORMAT_VERSION);
	json_str(f, bench_mode_name(o->mode));
	fprintf(f, ", \"target\": ");
	json_str(f, o->where);
	fprintf(f, ", \"tls\": %s", uses_tls(o) ? "true" : "false");
	fprintf(f,
		", \"connections\": %u, \"established\": %llu, "
		"\"open_at_end\": %llu, \"depth\": %u, \"size\": %zu, "
		"\"threads\": %u",
		o->connections, (unsigned long long)t->established,
		(unsigned long long)r->open_at_end, o->depth, o->size,
		o->threads);
	if (o->mode == BENCH_BULK)
		fprintf(f, ", \"window\": %zu", o->window);
	fprintf(f, ", \"open_loop_rate\": ");
	if (o->rate > 0)
		fprintf(f, "%.17g", o->rate);
	else
		fprintf(f, "null");
	fprintf(f, ", \"count\": ");
	if (o->count > 0)
		fprintf(f, "%llu", (unsigned long long)o->count);
	else
		fprintf(f, "null");
	fprintf(f,
		", \"duration_s\": %.3f, \"warmup_s\": %.3f, "
		"\"measured_s\": %.6f, \"interrupted\": %s",
		(double)o->duration_ms / 1e3, (double)o->warmup_ms / 1e3,
		seconds(r), r->interrupted ? "true" : "false");
	fprintf(f,
		", \"messages\": %llu, \"messages_per_s\": %.3f, "
		"\"drained\": %llu",
		(unsigned long long)t->messages,
		per_second(r, (double)t->messages),
		(unsigned long long)t->drained);
	if (is_ops(o))
		fprintf(f, ", \"connections_per_s\": %.3f",
			per_second(r, (double)t->messages));
	fprintf(f,
		", \"bytes_sent\": %llu, \"bytes_received\": %llu, "
		"\"mb_per_s_sent\": %.6f, \"mb_per_s_received\": %.6f",
		(unsigned long long)t->bytes_out,
		(unsigned long long)t->bytes_in,
		per_second(r, (double)t->bytes_out) / 1e6,
		per_second(r, (double)t->bytes_in) / 1e6);
	fprintf(f,
		", \"latency_ns\": {\"count\": %llu, \"min\": %llu, "
		"\"mean\": %.1f",
		(unsigned long long)t->hist.count,
		(unsigned long long)t->hist.min, tk_hist_mean(&t->hist));
	for (size_t i = 0; i < NPCTS; i++)
		fprintf(f, ", \"%s\": %llu", pcts[i].name,
			(unsigned long long)tk_hist_percentile(&t->hist,
							       pcts[i].p));
	fprintf(f, ", \"p99_99\": %llu, \"max\": %llu}",
		(unsigned long long)tk_hist_percentile(&t->hist, 99.99),
		(unsigned long long)t->hist.max);
	fprintf(f, ", \"errors\": {");
	for (int e = 0; e < BENCH_NERR; e++)
		fprintf(f, "\"%s\": %llu, ", bench_err_name((enum bench_err)e),
			(unsigned long long)t->errors[e]);
	fprintf(f, "\"total\": %llu}, \"first_errors\": {",
		(unsigned long long)total_errors(r));
	first = true;
	for (int e = 0; e < BENCH_NERR; e++) {
		if (t->errors[e] == 0)
			continue;
		fprintf(f, "%s\"%s\": ", first ? "" : ", ",
			bench_err_name((enum bench_err)e));
		json_str(f, t->first_error[e]);
		first = false;
	}
	fprintf(f,
		"}, \"cpu\": {\"user_s\": %.6f, \"system_s\": %.6f, "
		"\"percent_of_core\": %.3f, \"ns_per_message\": ",
		(double)r->cpu_user_ns / NS_PER_S,
		(double)r->cpu_sys_ns / NS_PER_S,
		r->window_ns > 0 ? 100 * cpu / (double)r->window_ns : 0);
	if (t->messages > 0)
		fprintf(f, "%.1f}", cpu / (double)t->messages);
	else
		fprintf(f, "null}");
	json_times(f, r);
	bench_json_histogram(f, &t->hist);
	fprintf(f, ", \"series\": [");
	for (size_t i = 0; i < r->nrows; i++)
		fprintf(f,
			"%s{\"second\": %zu, \"messages\": %llu, \"bytes\": "
			"%llu, \"connections\": %llu, \"errors\": %llu}",
			i ? ", " : "", i + 1,
			(unsigned long long)r->rows[i].messages,
			(unsigned long long)r->rows[i].bytes,
			(unsigned long long)r->rows[i].connections,
			(unsigned long long)r->rows[i].errors);
	fprintf(f, "]}\n");
}

void
bench_report_csv(FILE *f, const struct bench_result *r)
{
	fprintf(f, "second,messages,bytes,connections,errors\n");
	for (size_t i = 0; i < r->nrows; i++)
		fprintf(f, "%zu,%llu,%llu,%llu,%llu\n", i + 1,
			(unsigned long long)r->rows[i].messages,
			(unsigned long long)r->rows[i].bytes,
			(unsigned long long)r->rows[i].connections,
			(unsigned long long)r->rows[i].errors);
}

/* --- the SVG ------------------------------------------------------------- */

#define SVG_W	  760
#define SVG_H	  640
#define PLOT_L	  90 /* left margin: the y labels */
#define PLOT_R	  30
#define PANEL_H	  210 /* height of each chart */
#define TOP1	  60  /* top of the throughput chart */
#define TOP2	  360 /* top of the latency chart */
#define CURVE_MAX 4.0 /* x: -log10(1 - p) from 0 (p0) to 4 (p99.99) */

/* A step of 1, 2 or 5 times a power of ten giving about n ticks up to max. */
static double
nice_step(double max, int n)
{
	double raw = max / n, mag = pow(10, floor(log10(raw)));

	if (raw / mag <= 1)
		return mag;
	if (raw / mag <= 2)
		return 2 * mag;
	if (raw / mag <= 5)
		return 5 * mag;
	return 10 * mag;
}

static void
svg_frame(FILE *f, int top, const char *title)
{
	fprintf(f,
		"<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
		"fill=\"#fafafa\" stroke=\"#999\"/>\n",
		PLOT_L, top, SVG_W - PLOT_L - PLOT_R, PANEL_H);
	fprintf(f,
		"<text x=\"%d\" y=\"%d\" font-size=\"14\" "
		"font-weight=\"bold\">%s</text>\n",
		PLOT_L, top - 12, title);
}

/* Horizontal grid lines and labels for 0..ymax; returns the axis top. */
static double
svg_yaxis(FILE *f, int top, double ymax, bool ns)
{
	double step = nice_step(ymax > 0 ? ymax : 1, 5), axis;
	char label[32];

	axis = ceil((ymax > 0 ? ymax : 1) / step) * step;
	for (double v = 0; v <= axis + step / 2; v += step) {
		double y = top + PANEL_H - v / axis * PANEL_H;

		if (ns)
			bench_format_ns((uint64_t)v, label, sizeof(label));
		else if (v >= 1e6)
			snprintf(label, sizeof(label), "%gM", v / 1e6);
		else if (v >= 1e3)
			snprintf(label, sizeof(label), "%gk", v / 1e3);
		else
			snprintf(label, sizeof(label), "%g", v);
		fprintf(f,
			"<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
			"stroke=\"#ddd\"/>\n",
			PLOT_L, y, SVG_W - PLOT_R, y);
		fprintf(f,
			"<text x=\"%d\" y=\"%.1f\" font-size=\"11\" "
			"text-anchor=\"end\">%s</text>\n",
			PLOT_L - 6, y + 4, label);
	}
	return axis;
}

static void
svg_throughput(FILE *f, const struct bench_opts *o,
	       const struct bench_result *r)
{
	double width = SVG_W - PLOT_L - PLOT_R, ymax = 0, axis, secs;
	char title[96];

	snprintf(title, sizeof(title), "%s per second",
		 is_ops(o)		 ? "Connections"
		 : o->mode == BENCH_BULK ? "Blocks echoed"
					 : "Messages echoed");
	svg_frame(f, TOP1, title);
	secs = seconds(r);
	for (size_t i = 0; i < r->nrows; i++) {
		double span =
			i + 1 == r->nrows ? (double)r->last_row_ns / 1e9 : 1.0;
		double v = span > 0 ? (double)r->rows[i].messages / span : 0;

		if (v > ymax)
			ymax = v;
	}
	axis = svg_yaxis(f, TOP1, ymax, false);
	if (r->nrows == 0 || secs <= 0)
		return;
	/* One step per second: a row's rate is flat across its second. */
	fprintf(f, "<polyline fill=\"none\" stroke=\"#1f77b4\" "
		   "stroke-width=\"2\" points=\"");
	for (size_t i = 0; i < r->nrows; i++) {
		double t0 = (double)i,
		       t1 = i + 1 == r->nrows ? secs : (double)(i + 1);
		double span = t1 - t0;
		double v = span > 0 ? (double)r->rows[i].messages / span : 0;
		double y = TOP1 + PANEL_H - v / axis * PANEL_H;

		fprintf(f, "%.1f,%.1f %.1f,%.1f ", PLOT_L + t0 / secs * width,
			y, PLOT_L + t1 / secs * width, y);
	}
	fprintf(f, "\"/>\n");
	for (int k = 0; k <= 5; k++) {
		double t = secs * k / 5;

		fprintf(f,
			"<text x=\"%.1f\" y=\"%d\" font-size=\"11\" "
			"text-anchor=\"middle\">%.3gs</text>\n",
			PLOT_L + t / secs * width, TOP1 + PANEL_H + 16, t);
	}
}

static void
svg_latency(FILE *f, const struct bench_result *r)
{
	static const struct {
		double x;
		const char *label;
	} ticks[] = {
		{ 0, "0%" },	{ 1, "90%" },	 { 2, "99%" },
		{ 3, "99.9%" }, { 4, "99.99%" },
	};
	const struct tk_hist *h = &r->total.hist;
	double width = SVG_W - PLOT_L - PLOT_R, axis, ymax;

	svg_frame(f, TOP2, "Latency by percentile");
	ymax = (double)tk_hist_percentile(h, 99.99);
	axis = svg_yaxis(f, TOP2, ymax, true);
	for (size_t i = 0; i < sizeof(ticks) / sizeof(ticks[0]); i++) {
		double x = PLOT_L + ticks[i].x / CURVE_MAX * width;

		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
			"stroke=\"#ddd\"/>\n",
			x, TOP2, x, TOP2 + PANEL_H);
		fprintf(f,
			"<text x=\"%.1f\" y=\"%d\" font-size=\"11\" "
			"text-anchor=\"middle\">%s</text>\n",
			x, TOP2 + PANEL_H + 16, ticks[i].label);
	}
	fprintf(f,
		"<text x=\"%d\" y=\"%d\" font-size=\"11\" "
		"text-anchor=\"middle\">percentile (log scale of "
		"1/(1-p))</text>\n",
		PLOT_L + (SVG_W - PLOT_L - PLOT_R) / 2, TOP2 + PANEL_H + 34);
	if (h->count == 0)
		return;
	fprintf(f, "<polyline fill=\"none\" stroke=\"#d62728\" "
		   "stroke-width=\"2\" points=\"");
	for (int k = 0; k <= 200; k++) {
		double x = CURVE_MAX * k / 200, p = 100 * (1 - pow(10, -x));
		double v = (double)tk_hist_percentile(h, p);

		if (v > axis)
			v = axis;
		fprintf(f, "%.1f,%.1f ", PLOT_L + x / CURVE_MAX * width,
			TOP2 + PANEL_H - v / axis * PANEL_H);
	}
	fprintf(f, "\"/>\n");
}

void
bench_report_svg(FILE *f, const struct bench_opts *o,
		 const struct bench_result *r)
{
	const struct bench_stats *t = &r->total;
	char buf[4][32];

	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		"height=\"%d\" viewBox=\"0 0 %d %d\" "
		"font-family=\"sans-serif\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
		SVG_W, SVG_H, SVG_W, SVG_H);
	fprintf(f, "<title>tcpkit bench %s ", bench_mode_name(o->mode));
	/* The target is the user's text: escaped as XML. */
	for (const char *p = o->where; *p; p++) {
		if (*p == '<')
			fputs("&lt;", f);
		else if (*p == '>')
			fputs("&gt;", f);
		else if (*p == '&')
			fputs("&amp;", f);
		else
			fputc(*p, f);
	}
	fprintf(f, "</title>\n");
	fprintf(f,
		"<text x=\"%d\" y=\"24\" font-size=\"15\">tcpkit bench %s: "
		"%u connections, %.1f/s, p50 %s, p99 %s, p99.9 %s, max "
		"%s</text>\n",
		PLOT_L, bench_mode_name(o->mode), o->connections,
		per_second(r, (double)t->messages),
		bench_format_ns(tk_hist_percentile(&t->hist, 50), buf[0], 32),
		bench_format_ns(tk_hist_percentile(&t->hist, 99), buf[1], 32),
		bench_format_ns(tk_hist_percentile(&t->hist, 99.9), buf[2], 32),
		bench_format_ns(t->hist.max, buf[3], 32));
	svg_throughput(f, o, r);
	svg_latency(f, r);
	fprintf(f, "</svg>\n");
}

int
bench_flush_stdout(const char *what)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return 0;
	cli_error(what, "stdout", "write failed: %s",
		  strerror(errno ? errno : EIO));
	return CLI_EXIT_OTHER;
}
