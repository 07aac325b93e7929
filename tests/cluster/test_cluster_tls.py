#!/usr/bin/env python3
"""test_cluster_tls.py: --cluster.tls-config, mutual TLS on the peer links (docs/ha.md, "TLS between replicas").

A CA and one certificate per replica (plus a rogue CA and its certificate) are made with the openssl CLI in a temp
dir. Three replicas, each with its own certificate, client_auth_type RequireAndVerifyClientCert:
  1. they converge (a push on replica 0, identical /api/v1/metrics everywhere); a peer port closes a plain-TCP HELLO
     without a byte in answer, while the same HELLO over TLS with a CA-signed client certificate gets a frame back;
  2. replica 2 restarted with a client certificate from the rogue CA (its server certificate still the CA's): its
     peers log the failed handshake (inbound, certificate verify), it stays not ready (a push to it: 503) while
     replicas 0 and 1 keep taking pushes;
  3. replica 2 restarted with server_name: wrong.example: its dials fail the host check (logged), it stays not
     ready; restarted with the same name and insecure_skip_verify: true, it catches up and converges.
Skips (exit 0) when build/ferry has no --cluster.listen-address or there is no openssl CLI.
Usage: test_cluster_tls.py path/to/ferry
"""
import os
import random
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferrycluster as fc  # noqa: E402
from ferrycluster import pghttp  # noqa: E402

FERRY = os.path.abspath(sys.argv[1])
check = pghttp.Checks()
FAILED = b"TLS handshake with a peer failed"


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
            name + ".key", "-out", name + ".crt", "-days", "2", "-subj", "/CN=" + name, cwd=d)


def make_cert(d, name, ca):
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + ".key",
            "-out", name + ".csr", "-subj", "/CN=" + name, cwd=d)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key", "-CAcreateserial",
            "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext", cwd=d)


def tls_file(d, name, server, client, client_extra=""):
    """A cluster TLS file; paths relative to it (resolved against its directory)."""
    path = os.path.join(d, name + ".yml")
    with open(path, "w") as f:
        f.write("tls_server_config:\n  cert_file: %s.crt\n  key_file: %s.key\n"
                "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n"
                "tls_client_config:\n  cert_file: %s.crt\n  key_file: %s.key\n  ca_file: ca.crt\n%s"
                % (server, server, client, client, client_extra))
    return path


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def hello_frame():
    """A HELLO as a dialer sends it (wire.h); the label differs, so an answer is a REFUSE or a WELCOME."""
    label = b"tls-test"
    payload = struct.pack("<IHHQIqQI", 0x31435946, 1, 0, random.getrandbits(64), 0, time.time_ns(), 0,
                          len(label)) + label
    body = bytes([1]) + payload
    return struct.pack("<II", len(body), crc32c(body)) + body


def read_some(sock, timeout=3.0):
    """Bytes until EOF or timeout (what came back)."""
    sock.settimeout(timeout)
    got = b""
    try:
        while len(got) < 9:
            b = sock.recv(4096)
            if not b:
                break
            got += b
    except (socket.timeout, ConnectionResetError):
        pass
    except ssl.SSLError as e:
        print("TLS read ended: %s" % e)
    return got


def plain_hello(port):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(hello_frame())
        return read_some(s)


def tls_hello(port, d, name):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(d, "ca.crt"))
    ctx.load_cert_chain(os.path.join(d, name + ".crt"), os.path.join(d, name + ".key"))
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(hello_frame())
            return read_some(s)


def wait_for(pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def failure_lines(cl, i):
    try:
        log = cl.replicas[i].log().encode()
    except OSError:
        return []
    return [ln for ln in log.split(b"\n") if FAILED in ln]


def main():
    fc.skip_without_cluster(FERRY)
    if shutil.which("openssl") is None:
        print("SKIP: no openssl CLI")
        return 0
    tm = fc.Timer()
    d = tempfile.mkdtemp(prefix="ferry-tls-")
    try:
        make_ca(d, "ca")
        make_ca(d, "rogue-ca")
        for i in range(3):
            make_cert(d, "r%d" % i, "ca")
        make_cert(d, "rogue", "rogue-ca")
        good = [tls_file(d, "r%d" % i, "r%d" % i, "r%d" % i) for i in range(3)]
        tm.mark("CA, 3 replica certificates and a rogue one made with openssl")
        flags = {i: ["--cluster.tls-config=" + good[i], "--cluster.label=tls-test"] for i in range(3)}
        with fc.Cluster(FERRY, 3, name="tls", replica_flags=flags) as cl:
            # 1. mutual TLS: converge, plain TCP refused
            tm.mark("3 replicas with mutual TLS ready")
            st, data = fc.push(cl.web[0], "PUT", "/metrics/job/tls/g/a", b"# TYPE cl_tls gauge\ncl_tls 1\n")
            check(st == 200, "push on replica 0 over TLS peer links: %s %r" % (st, data[:200]))
            took, bodies = cl.wait_converged(2.0)
            check(took is not None and b"cl_tls" in (bodies[0] or b""),
                  "identical /api/v1/metrics on all three within 2 s:\n%s" % fc.explain_difference(bodies))
            got = plain_hello(cl.peer[2])
            check(got == b"", "a plain-TCP HELLO to a TLS peer port is closed without an answer (got %r)" % got[:40])
            got = tls_hello(cl.peer[2], d, "r0")
            check(len(got) >= 9 and got[8] in (2, 3),
                  "the same HELLO over TLS with a CA-signed certificate gets a WELCOME or REFUSE (got %r)" % got[:40])
            tm.mark("converged; plain TCP closed, TLS answered")

            # 2. a client certificate the CA did not sign
            before = [len(failure_lines(cl, i)) for i in (0, 1)]
            cl.kill9(2)
            cl.replica_flags[2] = ["--cluster.tls-config=" + tls_file(d, "r2-rogue", "r2", "rogue"),
                                   "--cluster.label=tls-test"]
            cl.restart(2)
            logged = wait_for(lambda: any(len(failure_lines(cl, i)) > before[k] for k, i in enumerate((0, 1))), 8.0)
            lines = failure_lines(cl, 0)[before[0]:] + failure_lines(cl, 1)[before[1]:]
            print("peers' log lines:\n  " + "\n  ".join(ln.decode("utf-8", "replace") for ln in lines[:4]))
            check(logged and any(b"inbound" in ln and b"certif" in ln for ln in lines),
                  "replicas 0/1 log the rogue client certificate's failed handshake (inbound, a certificate reason)")
            time.sleep(3.0)
            check(not cl.is_ready(2), "the replica with a rogue client certificate is not ready")
            st, _ = fc.push(cl.web[2], "PUT", "/metrics/job/tls/g/rogue", b"# TYPE cl_tls gauge\ncl_tls 2\n")
            check(st == 503, "a push to it is refused with 503 (got %s)" % st)
            st, _ = fc.push(cl.web[0], "PUT", "/metrics/job/tls/g/b", b"# TYPE cl_tls gauge\ncl_tls 3\n")
            check(st == 200, "replicas 0 and 1 still hold the write quorum (got %s)" % st)
            tm.mark("rogue client certificate refused")

            # 3. server_name: a wrong name is refused, unless insecure_skip_verify
            cl.kill9(2)
            cl.replica_flags[2] = ["--cluster.tls-config=" + tls_file(d, "r2-name", "r2", "r2",
                                                                      "  server_name: wrong.example\n"),
                                   "--cluster.label=tls-test"]
            cl.restart(2)
            logged = wait_for(lambda: any(b"outbound" in ln for ln in failure_lines(cl, 2)), 8.0)
            lines = failure_lines(cl, 2)
            print("replica 2's log lines:\n  " + "\n  ".join(ln.decode("utf-8", "replace") for ln in lines[:4]))
            check(logged, "replica 2 logs its failed dials (the peers' certificates do not name wrong.example)")
            time.sleep(2.0)
            check(not cl.is_ready(2), "with a wrong server_name replica 2 is not ready")
            cl.kill9(2)
            cl.replica_flags[2] = ["--cluster.tls-config=" + tls_file(d, "r2-insecure", "r2", "r2",
                                                                      "  server_name: wrong.example\n"
                                                                      "  insecure_skip_verify: true\n"),
                                   "--cluster.label=tls-test"]
            cl.restart(2)
            check(cl.wait_ready(2, 15.0), "with insecure_skip_verify replica 2 catches up and is ready")
            took, bodies = cl.wait_converged(3.0)
            check(took is not None and b"cl_tls" in (bodies[0] or b""),
                  "identical everywhere again:\n%s" % fc.explain_difference(bodies))
            tm.mark("wrong server_name refused, accepted with insecure_skip_verify")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    tm.mark("done")
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
