"""stats.py: the comparison suite's statistics: medians with min and max
over the repetitions of each scenario and server."""
import statistics

from catalogue import SCENARIOS


def med(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return statistics.median(xs), min(xs), max(xs)


def summarize(results, servers):
    """{scenario: {server: {metric: (median, min, max)}}}"""
    out = {}
    for sc in SCENARIOS:
        s = out.setdefault(sc[0], {})
        for name in servers:
            runs = [r for r in results.get((sc[0], name), [])
                    if "error" not in r]
            errs = [r["error"] for r in results.get((sc[0], name), [])
                    if "error" in r]
            if not runs:
                s[name] = dict(failed=errs[0] if errs else "not run",
                               runs=0)
                continue
            m = dict(runs=len(runs), failed_runs=len(errs),
                     errors=sum(r.get("errors", 0) for r in runs))
            for k in ("value", "cpu_op", "p50", "p99"):
                v = med([r.get(k) for r in runs])
                if v is not None:
                    m[k] = v
            s[name] = m
    return out
