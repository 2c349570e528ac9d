"""Test certificates, made at test time with the openssl command in a
temporary directory; none are committed.

make(dir) returns a dict of paths:
  ca, ca_key        a CA ("tcpkit test CA")
  srv, srv_key      localhost, 127.0.0.1 and ::1, from ca
  wrong, wrong_key  wrong.example only, from ca
  expired, expired_key
                    localhost, 127.0.0.1 and ::1, from ca, valid in 2020 only
  client, client_key
                    CN=tcpkit client, clientAuth, from ca
  ca2, ca2_key      a second, unrelated CA
  other, other_key  localhost, 127.0.0.1 and ::1, from ca2
  other_client, other_client_key
                    a client certificate from ca2
  cn_only, cn_only_key
                    CN=localhost and no subjectAltName, from ca
  partial, partial_key
                    DNS:ww*.example.test (a partial wildcard) and
                    DNS:ok.example.test, from ca
"""
import os
import subprocess

SAN_LOCAL = "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   capture_output=True, timeout=60)


def _key(name, cwd):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-out", name + ".key", cwd=cwd)


def _ca(name, cn, cwd):
    _key(name, cwd)
    _openssl("req", "-x509", "-new", "-key", name + ".key", "-out",
             name + ".pem", "-days", "397", "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=cwd)


def _leaf(name, cn, ca, exts, cwd, dates=None):
    _key(name, cwd)
    _openssl("req", "-new", "-key", name + ".key", "-out", name + ".csr",
             "-subj", "/CN=" + cn, cwd=cwd)
    with open(os.path.join(cwd, name + ".ext"), "w") as f:
        f.write("\n".join(exts) + "\n")
    if dates is None:
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
                 "-CAkey", ca + ".key", "-CAcreateserial", "-days", "397",
                 "-sha256", "-out", name + ".pem", "-extfile",
                 name + ".ext", cwd=cwd)
        return
    # openssl x509 in OpenSSL 3.0 cannot back-date: `openssl ca` can.
    db = os.path.join(cwd, "cadb")
    os.makedirs(os.path.join(db, "new"), exist_ok=True)
    open(os.path.join(db, "index.txt"), "w").close()
    with open(os.path.join(db, "serial"), "w") as f:
        f.write("1000\n")
    with open(os.path.join(cwd, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\n"
                "database = %s/index.txt\nnew_certs_dir = %s/new\n"
                "serial = %s/serial\ndefault_md = sha256\n"
                "policy = p\nunique_subject = no\n[p]\n"
                "commonName = supplied\n" % (db, db, db))
    _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", ca + ".pem",
             "-keyfile", ca + ".key", "-in", name + ".csr", "-out",
             name + ".pem", "-notext", "-startdate", dates[0], "-enddate",
             dates[1], "-extfile", name + ".ext", cwd=cwd)


def make(cwd):
    server = [SAN_LOCAL, "extendedKeyUsage=serverAuth"]
    _ca("ca", "tcpkit test CA", cwd)
    _ca("ca2", "unrelated CA", cwd)
    _leaf("srv", "localhost", "ca", server, cwd)
    _leaf("wrong", "wrong.example",  "ca",
          ["subjectAltName=DNS:wrong.example", "extendedKeyUsage=serverAuth"],
          cwd)
    _leaf("expired", "localhost", "ca", server, cwd,
          dates=("20200101000000Z", "20200201000000Z"))
    _leaf("client", "tcpkit client", "ca", ["extendedKeyUsage=clientAuth"],
          cwd)
    _leaf("other", "localhost", "ca2", server, cwd)
    _leaf("other_client", "stranger", "ca2", ["extendedKeyUsage=clientAuth"],
          cwd)
    _leaf("cn_only", "localhost", "ca", ["extendedKeyUsage=serverAuth"], cwd)
    _leaf("partial", "www.example.test", "ca",
          ["subjectAltName=DNS:ww*.example.test,DNS:ok.example.test",
           "extendedKeyUsage=serverAuth"], cwd)
    paths = {}
    for n in ("ca", "ca2", "srv", "wrong", "expired", "client", "other",
              "other_client", "cn_only", "partial"):
        paths[n] = os.path.join(cwd, n + ".pem")
        paths[n + "_key"] = os.path.join(cwd, n + ".key")
    return paths
