/* bench_doc.h: a `tcpkit bench --json` document read back, and runs merged
 * exactly (tcpkit bench merge). */
#ifndef TK_BENCH_DOC_H
#define TK_BENCH_DOC_H

#include <stddef.h>

#include "bench_engine.h"

/*
 * The version of the --json document's format: a change in the meaning
 * of a field bumps it, and bench merge refuses any other.
 */
#define BENCH_FORMAT_VERSION 1

/*
 * Read the document text[0..len) into the options and result it reports
 * (r->rows allocated: bench_result_free()).  r->generators is 1 for a run,
 * N for a merge of N.  0, or -EINVAL with the reason in why (malformed
 * JSON, another format version or bucket scheme, a field missing or of
 * the wrong type, a failed run's error document), or -ENOMEM.
 */
int bench_doc_read(const char *text, size_t len, struct bench_opts *o,
		   struct bench_result *r, char *why, size_t whylen);

/*
 * Add run (o2, r2) to the merge (o, r): counts summed, histograms merged
 * bucket by bucket, the earliest start and latest end kept, rows summed
 * second by second.  0; 1 when the targets differ (merged all the same,
 * why says how); -EINVAL when the runs cannot be merged (mode or TLS
 * differ, why says how); -ENOMEM.
 */
int bench_merge(struct bench_opts *o, struct bench_result *r,
		const struct bench_opts *o2, const struct bench_result *r2,
		char *why, size_t whylen);

#endif /* TK_BENCH_DOC_H */
