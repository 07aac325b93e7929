#!/usr/bin/env python3
"""test_ui_browser.py: the web UI in a real browser (issue #17): headless Chromium driven over W3C WebDriver.

A real build/ferry under a route prefix (/gw: the page's links and delete URLs are relative and must stay under it)
gets groups in every state (docs/ui.md): alive (interval 1h), late (interval 1s, grace 1s, 4.9 s later), expires
soon (TTL 6 s, 4.9 s later), failed (a push with a timestamp after a good one), no interval; then, in Chromium:
  - the states' text and data-state, their badges' colours all different, the groups sorted by job (a group with
    instance=aaa and job=zeta last, though its canonical key sorts first);
  - the state filter and the job filter, chosen in the form's controls and submitted;
  - "Delete Group" on one group, the confirm() accepted: the group leaves the page and /api/v1/metrics;
  - the Help link: Ferry's own docs index, docs/ui.md from it (HTML rendered at build time by cmark-gfm: its title,
    its tables, its screenshot loaded under the pages' CSP, no script), a link to another doc and a heading's anchor
    followed, the pages' links back; without cmark-gfm in the build (--docs text), the Markdown as text;
  - 100,000 more groups (pipelined PUTs over a few connections), then the pager's "next" link twice, a jump to the
    last page, the job and state filters over all of them; the page's bytes and times are printed; then "Delete All
    Groups" empties the store;
  - the UI behind --web.config.file basic auth: 401 without credentials (the page, the Help, the delete URL); opened
    as http://alice:secret@host/, the delete button works.
chromedriver and Chromium run with the flags a machine without internet needs (--disable-background-networking
and the rest) and a fresh profile; everything is stopped by PID (chromedriver in its own process group, which holds
its Chromium). Exit 77 (skipped) without /usr/bin/chromium or chromedriver.
Usage: test_ui_browser.py path/to/ferry [--screenshot out.png] [--groups N] [--docs html|text]
  --docs: what the build embedded as the Help's pages (html when configure found cmark-gfm, the default)
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "diff"))
import pghttp  # noqa: E402

FERRY = sys.argv[1]
ARGS = sys.argv[2:]
SCREENSHOT = ARGS[ARGS.index("--screenshot") + 1] if "--screenshot" in ARGS else None
N_BULK = int(ARGS[ARGS.index("--groups") + 1]) if "--groups" in ARGS else 100000
DOCS = ARGS[ARGS.index("--docs") + 1] if "--docs" in ARGS else "html"
DOCS_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PREFIX = "/gw"
WAIT = 10.0  # seconds any single wait in the browser may take

check = pghttp.Checks()


# --- WebDriver over urllib ------------------------------------------------------------------------------------

class WebDriver:
    """The few W3C WebDriver commands the suite needs, over chromedriver's HTTP API (stdlib only)."""

    def __init__(self, port, profile):
        self.base = "http://127.0.0.1:%d" % port
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "pageLoadStrategy": "normal", "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900", "--user-data-dir=" + profile]}}}}
        self.sid = self.cmd("POST", "/session", caps, timeout=60)["sessionId"]
        self.cmd("POST", "/session/%s/timeouts" % self.sid, {"pageLoad": 60000, "script": 30000, "implicit": 0})

    def cmd(self, method, path, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as e:
            raise RuntimeError("WebDriver %s %s: %d %s" % (method, path, e.code, e.read()[:500])) from None

    def s(self, path, body=None, method="POST"):
        return self.cmd(method, "/session/%s%s" % (self.sid, path), body)

    def get(self, url):
        self.s("/url", {"url": url})

    def url(self):
        return self.s("/url", method="GET")

    def js(self, script, *args):
        return self.s("/execute/sync", {"script": script, "args": list(args)})

    def find(self, css):
        v = self.s("/element", {"using": "css selector", "value": css})
        return next(iter(v.values()))

    def click(self, css):
        self.s("/element/%s/click" % self.find(css))

    def type(self, css, text):
        el = self.find(css)
        self.s("/element/%s/clear" % el)
        self.s("/element/%s/value" % el, {"text": text})

    def text(self, css):
        return self.s("/element/%s/text" % self.find(css), method="GET")

    def alert_text(self):
        return self.s("/alert/text", method="GET")

    def accept_alert(self):
        self.s("/alert/accept")

    def screenshot(self):
        return base64.b64decode(self.s("/screenshot", method="GET"))

    def until(self, script, what, timeout=WAIT):
        """Polls a script until it returns a true value (bounded); returns it, or None after timeout."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = self.js(script)
            if v:
                return v
            time.sleep(0.05)
        check(False, "timed out waiting for " + what)
        return None

    def quit(self):
        try:
            self.cmd("DELETE", "/session/" + self.sid, timeout=20)
        except (OSError, RuntimeError) as e:
            print("quitting the session:", e)


GROUPS_JS = """return [...document.querySelectorAll('details.group')].map(d => {
  const st = d.querySelector('.badge.st'), job = d.querySelector('.badge.job');
  return [d.dataset.state, st.textContent, job ? job.textContent : '', getComputedStyle(st).backgroundColor,
          [...d.querySelectorAll('summary > .badge.lbl, summary > .badge.inst')].map(b => b.textContent).join(' ')];
});"""


def page_groups(wd):
    return wd.js(GROUPS_JS)


def jobs_of(groups):
    return [g[2][len('job="'):-1] for g in groups]


# --- pushing --------------------------------------------------------------------------------------------------

def push(port, path, body, headers=None):
    st, _, data = pghttp.request(port, "PUT", PREFIX + path, body.encode(), headers)
    return st, data


def bulk_push(port, n, conns=4, batch=500):
    """n groups job=bulkNNN (1,000 groups per job), instance=iN, each its own PUT: pipelined, `batch` requests written
    before their answers are read, over `conns` connections in parallel. Returns the seconds it took."""
    errors = []

    def worker(lo, hi):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        try:
            i = lo
            while i < hi:
                j = min(hi, i + batch)
                s.sendall(b"".join(b"PUT %s/metrics/job/bulk%03d/instance/i%d HTTP/1.1\r\nHost: x\r\n"
                                   b"Content-Length: 22\r\n\r\nbulk_value{k=\"v\"} 42\n\n" % (PREFIX.encode(), k // 1000, k)
                                   for k in range(i, j)))
                buf, seen = b"", 0
                while seen < j - i:
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        raise RuntimeError("connection closed after %d answers" % seen)
                    buf += chunk
                    # answers to PUT have empty bodies: one status line per answer, once its header block is complete
                    seen = buf.count(b"\r\n\r\n")
                if buf.count(b"HTTP/1.1 200 ") != j - i:
                    raise RuntimeError("not all 200: %r" % buf[:300])
                i = j
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)
        finally:
            s.close()

    t0 = time.time()
    per = (n + conns - 1) // conns
    ts = [threading.Thread(target=worker, args=(k * per, min(n, (k + 1) * per))) for k in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    check(not errors and not any(t.is_alive() for t in ts), "bulk push: %r" % errors[:3])
    return time.time() - t0


def api_groups(port):
    st, _, data = pghttp.request(port, "GET", PREFIX + "/api/v1/metrics", timeout=60)
    check(st == 200, "/api/v1/metrics: %d" % st)
    return [g["labels"] for g in json.loads(data)["data"]]


# --- the suite ------------------------------------------------------------------------------------------------

def small_states(wd, port, base):
    # (path, headers, bodies) in push order; the states expected 4.9 s after cleanup's push with --push.interval-grace=1s
    check(push(port, "/metrics/job/api/instance/a2", "up 1\n", {"X-Ferry-Interval": "1h"})[0] == 200, "push api/a2")
    check(push(port, "/metrics/job/api/instance/a1", "up 1\n", {"X-Ferry-Interval": "1h"})[0] == 200, "push api/a1")
    check(push(port, "/metrics/job/batch/instance/b1", "up 1\n", {"X-Ferry-Interval": "1s"})[0] == 200, "push batch")
    check(push(port, "/metrics/job/cleanup/instance/c1", "up 1\n", {"X-Ferry-TTL": "6s"})[0] == 200, "push cleanup")
    t_ttl = time.time()  # the TTL runs from a push time at or before this
    check(push(port, "/metrics/job/cron/instance/k1", "up 1\n", {"X-Ferry-Interval": "1h"})[0] == 200, "push cron")
    st, _ = push(port, "/metrics/job/cron/instance/k1", "up 1 1234\n")  # a timestamp: the Pushgateway's 400
    check(st == 400, "the failing push is refused: %d" % st)
    check(push(port, "/metrics/job/legacy/instance/l1", "up 1\n")[0] == 200, "push legacy")
    check(push(port, "/metrics/job/zeta/instance/aaa", "up 1\n", {"X-Ferry-Interval": "1h"})[0] == 200, "push zeta")
    # expires soon from push + 4.5 s (a quarter of 6 s left), deleted at push + 6 s: load the page at t_ttl + 4.9 s,
    # at least 2 s after every push with an interval of 1 s (grace 1 s)
    time.sleep(max(0.0, t_ttl + 4.9 - time.time()))

    t = time.time()
    wd.get(base + "/")
    load = time.time() - t
    groups = page_groups(wd)
    got = [(jobs_of([g])[0], g[0], g[1]) for g in groups]
    want = [("api", "alive", "alive"), ("api", "alive", "alive"), ("batch", "late", "late"),
            ("cleanup", "expiring", "expires soon"), ("cron", "failed", "failed"),
            ("legacy", "undeclared", "no interval"), ("zeta", "alive", "alive")]
    check(got == want, "states and order by job: %r" % got)
    check([g[4] for g in groups[:2]] == ['instance="a1"', 'instance="a2"'], "api's groups by instance: %r" % groups[:2])
    colours = {g[0]: g[3] for g in groups}
    check(len(set(colours.values())) == 5, "five states, five badge colours: %r" % colours)
    check("Last push failed!" in wd.text("details.group[data-state=failed] summary"), "failed keeps 1.5.1's notice")
    check(wd.js("return document.querySelector('details.group[data-state=late] .badge.st').title")
          .startswith("last push "), "the late badge says why in its title")
    print("small page: %d groups, loaded in %.0f ms" % (len(groups), load * 1e3))
    if SCREENSHOT:
        with open(SCREENSHOT, "wb") as f:
            f.write(wd.screenshot())
        print("screenshot:", SCREENSHOT)

    # the state filter, chosen in the form
    wd.click("select[name=state] option[value=late]")
    wd.click("form button[type=submit]")
    wd.until("return location.search.includes('state=late') && document.readyState == 'complete'", "state=late")
    got = [(jobs_of([g])[0], g[0]) for g in page_groups(wd)]
    check(got == [("batch", "late")], "state filter late: %r" % got)
    check(wd.js("return document.querySelector('select[name=state]').value") == "late", "the choice stays selected")

    # the job filter, typed in the form (the state choice back to all)
    wd.get(base + "/")
    wd.type("input[name=job]", "cr")
    wd.click("form button[type=submit]")
    wd.until("return location.search.includes('job=cr') && document.readyState == 'complete'", "job=cr")
    got = [(jobs_of([g])[0], g[0]) for g in page_groups(wd)]
    check(got == [("cron", "failed")], "job filter cr: %r" % got)

    # an unknown state or order is ignored: everything, by job
    wd.get(base + "/?state=bogus&sort=bogus")
    got = jobs_of(page_groups(wd))
    check(got[:3] == ["api", "api", "batch"] and got[-1] == "zeta", "unknown state and sort: %r" % got)
    # sort by state: failed, late, expiring, alive, no interval
    wd.get(base + "/?sort=state")
    got = [g[0] for g in page_groups(wd)]
    want = ["failed", "late", "expiring", "alive", "alive", "alive", "undeclared"]
    if "expiring" not in got:  # cleanup's TTL may have run out by now (deleted at push + 6 s)
        want.remove("expiring")
    check(got == want, "sort by state: %r" % got)

    # delete a group through its button; the confirm() accepted
    wd.get(base + "/")
    wd.click("details.group[data-state=undeclared] button.del")
    check("delete all metrics of this group" in (wd.alert_text() or ""), "the delete asks first")
    wd.accept_alert()
    wd.until("return !document.querySelector('details.group[data-state=undeclared]')", "the group to leave the page")
    jobs = sorted(g.get("job") for g in api_groups(port))
    check("legacy" not in jobs and "api" in jobs, "deleted through the UI, gone from the API: %r" % jobs)
    wd.get(base + "/")
    check("legacy" not in jobs_of(page_groups(wd)), "and gone after a reload")

    # Help: Ferry's own docs, under the prefix
    wd.click("nav a[href='static/docs/']")
    wd.until("return location.pathname == '%s/static/docs/' && document.readyState == 'complete'" % PREFIX, "the docs")
    check(wd.js("return document.querySelector('h1').textContent") == "Ferry documentation", "the docs index")
    items = wd.js("return [...document.querySelectorAll('li')].map(l => l.textContent)")
    check(items[:1] == ["ui.md: The web UI"] and len(items) >= 10, "the index lists the docs, titled: %r" % items[:3])
    wd.click("a[href='ui.md']")
    wd.until("return location.pathname == '%s/static/docs/ui.md' && document.readyState == 'complete'" % PREFIX,
             "docs/ui.md")
    st, h, data = pghttp.request(port, "GET", PREFIX + "/static/docs/ui.md")
    want = "text/html; charset=utf-8" if DOCS == "html" else "text/plain; charset=utf-8"
    check(st == 200 and h.get("content-type") == want and h.get("x-content-type-options") == "nosniff" and
          h.get("content-security-policy") == DOCS_CSP, "ui.md: %d %r" % (st, h))
    if DOCS == "text":
        body = wd.js("return document.body.innerText")
        check(body.startswith("# The web UI") and "expires soon" in body, "docs/ui.md as text: %r" % body[:80])
        check(data.startswith(b"# The web UI\n"), "ui.md: the Markdown")
    else:
        check(wd.js("return document.title") == "The web UI - Ferry documentation", "ui.md: its <title>")
        check(wd.js("return document.querySelector('main h1').textContent") == "The web UI", "ui.md: its heading")
        heads = wd.js("return [...document.querySelector('main table').querySelectorAll('th')].map(t => t.textContent)")
        check(heads == ["state (?state=)", "shown as", "when"], "ui.md: its first pipe table as a table: %r" % heads)
        check(wd.js("return document.scripts.length") == 0, "ui.md: no script on the page")
        # the screenshot, from the same fixed table under the prefix; the page's CSP allows images from here only
        wd.until("const i = document.querySelector('main img'); return !!i && i.complete && i.naturalWidth > 800",
                 "docs/img/ui.png to load in the page")
        check(wd.js("return document.querySelector('main img').src") == base + "/static/docs/img/ui.png",
              "the screenshot under the prefix")
        # a link to another doc (ui.md names `docs/beyond-pushgateway.md`), followed
        wd.click("main a[href='beyond-pushgateway.md']")
        wd.until("return location.pathname == '%s/static/docs/beyond-pushgateway.md' && document.readyState == "
                 "'complete'" % PREFIX, "the link to docs/beyond-pushgateway.md")
        title = wd.js("return document.title")
        check(title == "Beyond the Pushgateway: expiry, liveness, bulk deletes - Ferry documentation",
              "followed to beyond-pushgateway.md: %r" % title)
        # a heading's anchor: ha.md's contents link to its sections by GitHub's ids
        wd.get(base + "/static/docs/ha.md")
        wd.click("main a[href='#flags']")
        wd.until("return location.hash == '#flags' && window.scrollY > 1000 && "
                 "Math.abs(document.getElementById('flags').getBoundingClientRect().top) < 50", "ha.md#flags")
        # the page's links back: all docs, then the groups, still under the prefix
        wd.click("nav a[href='./']")
        wd.until("return location.pathname == '%s/static/docs/' && document.readyState == 'complete'" % PREFIX,
                 "all docs")
        wd.get(base + "/static/docs/when-to-use.md")
        wd.click("nav a[href='../../']")
        wd.until("return location.pathname == '%s/' && !!document.querySelector('details.group')" % PREFIX,
                 "back to the groups")
    for path, note in (("/static/docs/README.md", "a file of the repository that is not in the list"),
                       ("/static/docs/nothere.md", "no such doc"), ("/static/docs/UI.MD", "names are exact"),
                       ("/static/docs/ui.md/", "no trailing slash"), ("/static/index.html", "no other static file"),
                       ("/static/docs", "the index needs its slash")):
        st = pghttp.request(port, "GET", PREFIX + path)[0]
        check(st == 404, "%s: %d, want 404 (%s)" % (path, st, note))
    st, _, _ = pghttp.request(port, "GET", PREFIX + "/static/docs/../../etc/passwd")
    check(st in (301, 404), "no path out of the docs: %d" % st)
    st, _, _ = pghttp.request(port, "GET", PREFIX + "/static/docs/%2e%2e%2fCMakeLists.txt")
    check(st in (301, 404), "no encoded path out of the docs: %d" % st)


AUTH_YML = """basic_auth_users:
  alice: $2b$04$OHr.FgMey63ZaEEQ9/VZTuie3NnSUCJa1yB1XJph335VVB2XKEUr.
"""  # alice / secret, as tests/fixtures/webconfig/web-tls.yml (without TLS: Chromium would refuse the test certificate)


def with_auth(wd, tmpdir):
    """The UI behind --web.config.file basic auth: nothing of it without credentials; with them (given in the URL, so
    Chromium keeps them for the origin) the page, the Help and the delete button work, the delete authenticated."""
    cfg = os.path.join(tmpdir, "web.yml")
    with open(cfg, "w") as f:
        f.write(AUTH_YML)
    port = pghttp.free_port()
    srv = pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.config.file=" + cfg,
                         "--log.level=warn"], port, "ferry-ui-browser-auth")
    auth = {"Authorization": "Basic " + base64.b64encode(b"alice:secret").decode()}
    with srv:
        for path in ("/", "/status", "/static/docs/", "/static/docs/ui.md"):
            st = pghttp.request(port, "GET", path)[0]
            check(st == 401, "GET %s without credentials: %d" % (path, st))
        st = pghttp.request(port, "PUT", "/metrics/job/secret/instance/s1", b"up 1\n", auth)[0]
        check(st == 200, "push with credentials: %d" % st)
        st = pghttp.request(port, "DELETE", "/metrics/job@base64/c2VjcmV0/instance@base64/czE=")[0]
        check(st == 401, "the UI's delete URL without credentials: %d" % st)
        wd.get("http://alice:secret@127.0.0.1:%d/" % port)
        check(jobs_of(page_groups(wd)) == ["secret"], "the page with credentials")
        wd.click("details.group button.del")
        wd.accept_alert()
        wd.until("return !document.querySelector('details.group')", "the group to leave the page (authenticated)")
        st, _, data = pghttp.request(port, "GET", "/api/v1/metrics", headers=auth)
        check(st == 200 and json.loads(data)["data"] == [], "deleted with the page's credentials: %r" % data[:200])


def many_groups(wd, port, base):
    secs = bulk_push(port, N_BULK)
    print("%d groups pushed in %.1f s (%.0f/s)" % (N_BULK, secs, N_BULK / secs))
    deadline = time.time() + 10  # cleanup's TTL (6 s) ends; Ferry deletes expired groups within a second
    while any(g.get("job") == "cleanup" for g in api_groups(port)) and time.time() < deadline:
        time.sleep(0.2)
    total = N_BULK + 5  # the small groups left: 8 pushed, legacy deleted, cleanup expired
    # the page's size and time over plain HTTP (no browser), then in the browser
    for path in ("/", "/?page=500", "/?state=late", "/?job=bulk099", "/?sort=push", "/?limit=1000"):
        t = time.time()
        st, _, data = pghttp.request(port, "GET", PREFIX + path, timeout=60)
        print("GET %s at %d groups: %d, %d bytes, %.0f ms" % (path, total, st, len(data), (time.time() - t) * 1e3))
        check(st == 200, "GET %s: %d" % (path, st))
    t = time.time()
    wd.get(base + "/")
    print("browser: first page at %d groups loaded in %.0f ms" % (total, (time.time() - t) * 1e3))
    pager = wd.text("p.pager")
    check(pager.startswith("%d groups" % total) and "showing 1–100" in pager, "pager: %r" % pager)
    first = jobs_of(page_groups(wd))
    check(first[:2] == ["api", "api"] and first[6:8] == ["bulk000", "bulk000"], "first page in job order: %r" % first[:8])
    for want in ("showing 101–200", "showing 201–300"):
        wd.click("p.pager a:last-child")
        ok = wd.until("return document.readyState == 'complete' && "
                      "document.querySelector('p.pager').textContent.includes('%s')" % want, want)
        check(ok and len(page_groups(wd)) == 100, "next page: %s" % want)
    last = (total - 1) // 100
    wd.get(base + "/?page=%d" % last)
    n_last = len(page_groups(wd))
    check(n_last == total - last * 100, "last page: %d groups" % n_last)
    check("next" not in wd.text("p.pager"), "no next link on the last page")
    wd.get(base + "/?job=bulk042")
    got = page_groups(wd)
    check(wd.text("p.pager").startswith("1000 groups") and all(g[2] == 'job="bulk042"' for g in got),
          "job filter over 100k: %r" % wd.text("p.pager"))
    wd.get(base + "/?state=late")
    got = [(jobs_of([g])[0], g[0]) for g in page_groups(wd)]
    check(got == [("batch", "late")], "state filter over 100k: %r" % got)
    # "Delete All Groups" (--web.enable-admin-api): PUT api/v1/admin/wipe under the prefix
    wd.get(base + "/")
    check(wd.text("button.delall") == "Delete All %d Groups" % total, "delete all: %r" % wd.text("button.delall"))
    wd.click("button.delall")
    wd.accept_alert()
    wd.until("return document.getElementById('del-all-counter').textContent == '0'", "the wipe", timeout=30)
    check(api_groups(port) == [], "wiped through the UI")


def main():
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(exe):
            print("skipped: no %s (scripts/install-deps.sh test installs chromium and chromium-driver)" % exe)
            return 77
    started = time.time()
    port, wd_port = pghttp.free_port(), pghttp.free_port()
    profile = tempfile.mkdtemp(prefix="ferry-ui-chromium-")
    ferry = pghttp.Server([FERRY, "--web.listen-address=127.0.0.1:%d" % port, "--web.route-prefix=" + PREFIX,
                           "--web.enable-admin-api", "--push.interval-grace=1s", "--log.level=warn"],
                          port, "ferry-ui-browser", health=PREFIX + "/-/healthy")
    driver = None
    wd = None
    try:
        ferry.start()
        # its own process group: Chromium's processes are chromedriver's children, stopped with it by group id
        driver = subprocess.Popen([CHROMEDRIVER, "--port=%d" % wd_port, "--log-path=/tmp/ferry-ui-chromedriver-%d.log"
                                   % wd_port], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if pghttp.request(wd_port, "GET", "/status", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        wd = WebDriver(wd_port, profile)
        base = "http://127.0.0.1:%d%s" % (port, PREFIX)
        small_states(wd, port, base)
        with_auth(wd, profile)
        if N_BULK:
            many_groups(wd, port, base)
    finally:
        if wd is not None:
            wd.quit()
        if driver is not None:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGTERM)  # the group chromedriver leads: its PID is the group id
                try:
                    driver.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(driver.pid, signal.SIGKILL)
                    driver.wait(10)
            try:
                os.killpg(driver.pid, signal.SIGKILL)  # any Chromium process of the group still there
            except ProcessLookupError:
                pass
        ferry.stop()
        shutil.rmtree(profile, ignore_errors=True)
    print("browser suite: %.1f s" % (time.time() - started))
    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
