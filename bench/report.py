"""report.py: the comparison suite's report: the Markdown tables (the
summary, one table per scenario, the targets), the SVG chart, and the
machine it ran on."""
import os
import platform

from catalogue import (FORKING, LABELS, SCENARIOS, TLS_SERVERS, base_of,
                       is_tls, runs_on)
from runner import CLIENT_CPU, SERVER_CPU


def fmt_value(scn, v):
    if v is None:
        return "-"
    if scn == "S5":
        return "%.0f MB/s" % v
    if scn == "S7":
        return "%.0f B" % v
    if scn == "S6":
        return "%.0f conn/s" % v
    if scn == "S8a":
        return "%.0f hs/s" % v
    return "%.0f msg/s" % v


def fmt_cpu(scn, v):
    if v is None:
        return "-"
    if scn == "S5":
        return "%.2f ms/MB" % (v * 1e3)
    return "%.2f us" % (v * 1e6)


def fmt_us(ns):
    return "%.0f us" % (ns / 1e3)


def fmt_range(m, key, f):
    """'median [min-max] unit' from f's 'number unit'."""
    v = m.get(key)
    if v is None:
        return "-"
    parts = [f(x).split(" ", 1) for x in v]
    unit = (" " + parts[0][1]) if len(parts[0]) > 1 else ""
    return "%s [%s-%s]%s" % (parts[0][0], parts[1][0], parts[2][0], unit)


def ratio(a, b):
    if a is None or b is None or not b[0]:
        return "-"
    return "%.2fx" % (a[0] / b[0])


def markdown(summary, servers, cfg, machine, command):
    L = []
    L.append("# tcpkit bench suite: results (%s mode)" % cfg.mode)
    L.append("")
    L.append("Machine: %s." % machine)
    L.append("")
    L.append("Command: `%s`" % command)
    L.append("")
    L.append("Each server pinned to CPU %s, `tcpkit bench --threads 1` "
             "pinned to CPU %s (tcpkit -w 2 is not pinned); a fresh server "
             "for every run, %d interleaved repetition(s) of %gs each "
             "(after a 200 ms unmeasured warm-up run); median [min-max]. "
             "CPU is the server's own (utime+stime of its process tree, "
             "/proc/PID/stat) over the measured run divided by the "
             "operations completed; x ref and x tcpkit are ratios of "
             "medians." % (SERVER_CPU, CLIENT_CPU, cfg.reps, cfg.t))
    L.append("")
    plain = [n for n in servers if n not in TLS_SERVERS]
    # the summary: one row per server
    L.append("## Summary (medians)" if plain else "")
    L.append("")
    hdr = ["server", "S1 p50", "S1 p99", "S2 msg/s", "S2 CPU/msg",
           "S3 msg/s", "S3 CPU/msg", "S4 msg/s", "S4 CPU/msg", "S5 MB/s",
           "S5 CPU/MB", "S6 conn/s", "S6 CPU/conn", "S7 RSS/conn"]
    if plain:
        L.append("| " + " | ".join(hdr) + " |")
        L.append("|" + "---|" * len(hdr))
    for name in plain:
        row = [LABELS[name]]

        def get(scn, key):
            return summary[scn][name].get(key)
        for key in ("p50", "p99"):
            v = get("S1", key)
            row.append(fmt_us(v[0]) if v else
                       summary["S1"][name].get("failed", "-"))
        for scn in ("S2", "S3", "S4", "S5", "S6"):
            v = get(scn, "value")
            c = get(scn, "cpu_op")
            row.append(("%.0f" % v[0]) if v else
                       summary[scn][name].get("failed", "-"))
            row.append(fmt_cpu(scn, c[0]) if c else "-")
        v = get("S7", "value")
        row.append(("%.0f B" % v[0]) if v else
                   ("n/a (process per connection)" if name in FORKING
                    else summary["S7"][name].get("failed", "-")))
        L.append("| " + " | ".join(row) + " |")
    L.append("")
    tls = [n for n in servers if n in TLS_SERVERS]
    if tls:
        L.append("## S8 summary: TLS (medians)")
        L.append("")
        L.append("Same certificate for every TLS server (ECDSA P-256, "
                 "self-signed, made by the openssl CLI); the generator "
                 "pins it (`--tls --pin sha256:...`).  In the S8 tables "
                 "x tcpkit is relative to tcpkit serve --tls; there is no "
                 "TLS reference server, so x ref is -.")
        L.append("")
        L.append("| server | S8a handshakes/s | S8a CPU/handshake "
                 "| S8b msg/s | S8b CPU/msg |")
        L.append("|---|---|---|---|---|")
        for name in tls:
            row = [LABELS[name]]
            for scn in ("S8a", "S8b"):
                v = summary[scn][name].get("value")
                c = summary[scn][name].get("cpu_op")
                row.append(("%.0f" % v[0]) if v else
                           summary[scn][name].get("failed", "-"))
                row.append(fmt_cpu(scn, c[0]) if c else "-")
            L.append("| " + " | ".join(row) + " |")
        L.append("")
    for sc in SCENARIOS:
        scn = sc[0]
        names = [n for n in servers if runs_on(scn, n)]
        if not names:
            continue
        title = sc[1].format(n4=cfg.n4, n7=cfg.n7)
        L.append("## %s: %s" % (scn, title))
        L.append("")
        ref = summary[scn].get("ref", {})
        tk = summary[scn].get(base_of(scn), {})
        if scn == "S7":
            L.append("| server | RSS growth per connection | x ref "
                     "| x tcpkit | runs |")
            L.append("|---|---|---|---|---|")
        elif scn == "S1":
            L.append("| server | p50 | p99 | p50 x ref | p99 x ref "
                     "| p50 x tcpkit | msg/s | CPU/msg | CPU x ref "
                     "| CPU x tcpkit | runs |")
            L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        else:
            L.append("| server | throughput | x ref | x tcpkit | CPU/op "
                     "| CPU x ref | CPU x tcpkit | runs |")
            L.append("|---|---|---|---|---|---|---|---|")
        for name in names:
            m = summary[scn][name]
            if m.get("runs", 0) == 0:
                why = m.get("failed", "not run")
                if scn == "S7" and name in FORKING:
                    why = "n/a: a process per connection"
                L.append("| %s | %s |" % (LABELS[name], why))
                continue
            runs = "%d" % m["runs"]
            if m.get("failed_runs"):
                runs += " (%d failed)" % m["failed_runs"]
            if m.get("errors"):
                runs += ", %d errors" % m["errors"]
            if scn == "S7":
                L.append("| %s | %s | %s | %s | %s |" % (
                    LABELS[name],
                    fmt_range(m, "value", lambda v: "%.0f B" % v),
                    ratio(m.get("value"), ref.get("value")),
                    ratio(m.get("value"), tk.get("value")), runs))
            elif scn == "S1":
                L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s "
                         "| %s | %s |" % (
                             LABELS[name], fmt_range(m, "p50", fmt_us),
                             fmt_range(m, "p99", fmt_us),
                             ratio(m.get("p50"), ref.get("p50")),
                             ratio(m.get("p99"), ref.get("p99")),
                             ratio(m.get("p50"), tk.get("p50")),
                             fmt_range(m, "value", lambda v: "%.0f" % v),
                             fmt_range(m, "cpu_op",
                                       lambda v: fmt_cpu(scn, v)),
                             ratio(m.get("cpu_op"), ref.get("cpu_op")),
                             ratio(m.get("cpu_op"), tk.get("cpu_op")),
                             runs))
            else:
                L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    LABELS[name],
                    fmt_range(m, "value", lambda v: fmt_value(scn, v)),
                    ratio(m.get("value"), ref.get("value")),
                    ratio(m.get("value"), tk.get("value")),
                    fmt_range(m, "cpu_op", lambda v: fmt_cpu(scn, v)),
                    ratio(m.get("cpu_op"), ref.get("cpu_op")),
                    ratio(m.get("cpu_op"), tk.get("cpu_op")), runs))
        L.append("")
    if plain:
        L.extend(targets(summary, servers))
    return "\n".join(L) + "\n"


def targets(summary, servers):
    """The performance targets (docs/performance.md), measured: lines of a
    Markdown table."""
    L = ["## Targets", "",
         "| target | measured | met |", "|---|---|---|"]

    def get(scn, name, key):
        m = summary.get(scn, {}).get(name, {})
        v = m.get(key)
        return v[0] if v else None

    def row(what, val, ok):
        L.append("| %s | %s | %s |" % (
            what, val, "-" if ok is None else ("yes" if ok else "**no**")))

    for scn in ("S2", "S3", "S4"):
        t, r, g = (get(scn, n, "cpu_op") for n in ("tcpkit", "ref", "go"))
        q = t / r if t and r else None
        row("%s CPU/msg <= 1.05x ref" % scn,
            "%.2fx (%s vs %s)" % (q, fmt_cpu(scn, t), fmt_cpu(scn, r))
            if q else "-", q <= 1.05 if q else None)
        q = t / g if t and g else None
        row("%s CPU/msg <= 0.75x Go" % scn,
            "%.2fx (Go %s)" % (q, fmt_cpu(scn, g)) if q else "-",
            q <= 0.75 if q else None)
    for key in ("p50", "p99"):
        t, r = get("S1", "tcpkit", key), get("S1", "ref", key)
        q = t / r if t and r else None
        row("S1 %s within 5%% of ref" % key,
            "%.2fx (%s vs %s)" % (q, fmt_us(t), fmt_us(r)) if q else "-",
            q <= 1.05 if q else None)
    t, r = get("S5", "tcpkit", "value"), get("S5", "ref", "value")
    q = t / r if t and r else None
    row("S5 bulk >= 1.5x ref", "%.2fx (%.0f vs %.0f MB/s)" % (q, t, r)
        if q else "-", q >= 1.5 if q else None)
    others = [(n, get("S5", n, "value")) for n in servers
              if n not in ("tcpkit", "tcpkit-w2", "ref", "ref-splice")]
    others = [(n, v) for n, v in others if v]
    if t and others:
        best = max(others, key=lambda x: x[1])
        row("S5 bulk ahead of every peer", "best peer %s %.0f MB/s" % (
            LABELS[best[0]], best[1]), t > best[1])
    t, r = get("S6", "tcpkit", "value"), get("S6", "ref", "value")
    q = t / r if t and r else None
    row("S6 rate >= ref", "%.2fx (%.0f vs %.0f conn/s)" % (q, t, r)
        if q else "-", q >= 1.0 if q else None)
    t, r = get("S6", "tcpkit", "cpu_op"), get("S6", "ref", "cpu_op")
    q = t / r if t and r else None
    row("S6 CPU/conn <= 1.1x ref", "%.2fx (%s vs %s)" % (
        q, fmt_cpu("S6", t), fmt_cpu("S6", r)) if q else "-",
        q <= 1.1 if q else None)
    t = get("S7", "tcpkit", "value")
    row("S7 RSS/idle conn <= 1 KiB", "%.0f B" % t if t is not None else "-",
        t <= 1024 if t is not None else None)
    L.append("")
    return L


def svg(summary, servers, cfg):
    """Bars per scenario: throughput (or latency, memory) and CPU per
    operation, each relative to the reference server."""
    colors = {"value": "#3b7dd8", "cpu_op": "#e07b39"}
    panels = []
    for sc in SCENARIOS:
        scn = sc[0]
        if scn == "S1":
            metrics = [("p50", "p50 latency"), ("cpu_op", "CPU/msg")]
        elif scn == "S7":
            metrics = [("value", "RSS/conn (bytes, absolute)")]
        else:
            metrics = [("value", "throughput"), ("cpu_op", "CPU/op")]
        panels.append((scn, sc[1].format(n4=cfg.n4, n7=cfg.n7), metrics))
    bar_h, gap, label_w, plot_w = 9, 6, 190, 420
    rows_h = len(servers) * (2 * bar_h + gap)
    panel_h = rows_h + 40
    W, H = label_w + plot_w + 120, 50 + panel_h * len(panels)
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
         'font-family="sans-serif" font-size="11">' % (W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="10" y="20" font-size="14" font-weight="bold">tcpkit '
         'bench suite (%s): relative to the reference server (1.0 = '
         'reference; blue: throughput or latency, orange: CPU per '
         'operation; S8, over TLS: 1.0 = tcpkit serve --tls)</text>'
         % cfg.mode]
    y0 = 40
    for scn, title, metrics in panels:
        names = [n for n in servers if runs_on(scn, n)]
        if not names:
            continue
        o.append('<text x="10" y="%d" font-weight="bold">%s: %s</text>'
                 % (y0 + 14, scn, esc(title)))
        vals = {}
        for key, _ in metrics:
            # S8 has no TLS reference: relative to tcpkit serve --tls
            ref = summary[scn].get(base_of(scn) if is_tls(scn) else "ref",
                                   {}).get(key)
            for name in names:
                v = summary[scn][name].get(key)
                if v is None:
                    continue
                if scn == "S7":
                    vals[(name, key)] = (v[0], "%.0f B" % v[0])
                elif ref and ref[0]:
                    vals[(name, key)] = (v[0] / ref[0], "%.2fx" %
                                         (v[0] / ref[0]))
        top = max([v[0] for v in vals.values()] + [1.0])
        scale = plot_w / top
        y = y0 + 24
        x1 = label_w + (scale if scn != "S7" else 0)
        for name in names:
            o.append('<text x="%d" y="%d" text-anchor="end">%s</text>' % (
                label_w - 6, y + bar_h + 3, esc(LABELS[name])))
            for i, (key, _) in enumerate(metrics):
                v = vals.get((name, key))
                yy = y + i * bar_h
                if v is None:
                    o.append('<text x="%d" y="%d" fill="#888">n/a</text>' %
                             (label_w + 2, yy + bar_h - 1))
                    continue
                w = max(1.0, v[0] * scale)
                o.append('<rect x="%d" y="%d" width="%.1f" height="%d" '
                         'fill="%s"/>' % (label_w, yy, w, bar_h - 1,
                                          colors.get(key, "#3b7dd8")))
                o.append('<text x="%.1f" y="%d">%s</text>' % (
                    label_w + w + 4, yy + bar_h - 1, v[1]))
            y += 2 * bar_h + gap
        if scn != "S7":
            o.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" '
                     'stroke="#444" stroke-dasharray="3,3"/>' % (
                         x1, y0 + 20, x1, y))
        y0 += panel_h
    o.append("</svg>")
    return "\n".join(o) + "\n"


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def machine_line():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    return ("%d CPUs (nproc), %s, Linux %s, load average %s at the start" %
            (os.cpu_count(), model, platform.release(), load))
