#!/usr/bin/env python3
"""tls-audit: scan `tcpkit serve --tls` with sslscan and testssl.sh.

Starts the server on loopback with a certificate chain made now (a test CA
that testssl.sh is told to trust), runs both scanners, and fails on any
testssl.sh finding of severity MEDIUM or worse whose id is not explained in
docs/tls.md (a line "- `ID`: why" under "## Audit findings explained")."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
import tlscerts  # noqa: E402

BAD = {"MEDIUM", "HIGH", "CRITICAL"}


def explained(doc):
    text = open(doc).read()
    part = text.split("## Audit findings explained", 1)
    if len(part) < 2:
        return set()
    section = part[1].split("\n## ", 1)[0]
    return set(re.findall(r"^- `([^`]+)`:", section, re.M))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcpkit", required=True)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--testssl", default="testssl")
    a = ap.parse_args()
    ok_ids = explained(a.doc)
    with tempfile.TemporaryDirectory() as tmp:
        certs = tlscerts.make(tmp)
        srv = subprocess.Popen([a.tcpkit, "serve", "--tls", "--cert",
                                certs["srv"], "--key", certs["srv_key"],
                                "-H", "127.0.0.1", "-p", "0", "-q"],
                               stderr=subprocess.PIPE, text=True)
        try:
            port = None
            for line in srv.stderr:
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)$", line)
                if m:
                    port = m.group(1)
                    break
            if port is None:
                sys.exit("tls-audit: the server did not start")
            target = "localhost:%s" % port
            print("== sslscan %s" % target, flush=True)
            subprocess.run(["sslscan", "--no-colour", target], check=True)
            out = os.path.join(tmp, "testssl.json")
            print("== %s %s" % (a.testssl, target), flush=True)
            subprocess.run([a.testssl, "--quiet", "--color", "0",
                            "--warnings", "off", "--add-ca", certs["ca"],
                            "--ip", "127.0.0.1", "--jsonfile", out, target])
            findings = json.load(open(out))
        finally:
            srv.terminate()
            srv.wait(10)
    bad = [f for f in findings if f.get("severity") in BAD]
    unexplained = [f for f in bad if f["id"] not in ok_ids]
    for f in bad:
        print("%-8s %-28s %s%s" % (f["severity"], f["id"], f["finding"],
                                    "" if f in unexplained
                                    else "  (explained in docs/tls.md)"))
    if unexplained:
        print("tls-audit: %d unexplained finding(s) of medium severity or "
              "worse" % len(unexplained))
        return 1
    print("tls-audit: no unexplained finding of medium severity or worse "
          "(%d checks)" % len(findings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
