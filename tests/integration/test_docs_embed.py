#!/usr/bin/env python3
"""test_docs_embed.py: cmake/embed_docs.cmake, which compiles docs/ into the binary as the web UI's Help (docs/ui.md).

Runs the script on tests/fixtures/docs (a.md holds what the real docs do not: raw HTML, a javascript: link, repeated
headings, a link to a doc not in the list, an image that does not exist) and reads back what it generated: the
rendered pages (docs_html/) and the C table, bytes decoded from their hex. Once with cmark-gfm, once without (the
build's fallback: the Markdown as text). No server: test_server_http.py and test_ui_browser.py serve the real docs.
Usage: test_docs_embed.py path/to/cmake SOURCE_ROOT path/to/cmark-gfm (empty or *-NOTFOUND: exit 77, skipped)
"""
import os
import re
import subprocess
import sys
import tempfile

CMAKE, ROOT, CMARK = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "docs")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def embed(out_dir, cmark):
    """Runs the script as src/CMakeLists.txt does; returns (pages by name, {name: (title, type, bytes)}, html flag)."""
    out = os.path.join(out_dir, "docs_embed.c")
    p = subprocess.run([CMAKE, "-DOUT=" + out, "-DSRC=" + FIXTURES, "-DNAMES=a.md;b.md", "-DCMARK=" + cmark, "-P",
                        os.path.join(ROOT, "cmake", "embed_docs.cmake")], capture_output=True, text=True, timeout=20)
    check(p.returncode == 0 and p.stderr == "", "embed_docs.cmake: exit %d, stderr %r" % (p.returncode, p.stderr))
    with open(out) as f:
        c = f.read()
    arrays = {}
    for kind, i, body in re.findall(r"static const unsigned char (doc|title)(\d+)\[\] = \{([^}]*)\};", c):
        b = bytes(int(x, 0) for x in body.replace("\n", "").split(",") if x)
        check(b.endswith(b"\0"), "%s%s: NUL-terminated" % (kind, i))
        arrays[kind + i] = b[:-1]
    table = {}
    entry = r'\{"([^"]+)", (?:\(const char \*\))?(title\d+|NULL), "([^"]+)", (doc\d+), (\d+)\}'
    for name, title, ctype, doc, length in re.findall(entry, c):
        check(int(length) == len(arrays[doc]), "%s: its length" % name)
        table[name] = (arrays[title].decode() if title != "NULL" else None, ctype, arrays[doc])
    flag = re.search(r"const int fy_ui_docs_html = (\d);", c)
    pages = {}
    html_dir = os.path.join(out_dir, "docs_html")
    for n in ("a.md", "b.md"):
        if os.path.exists(os.path.join(html_dir, n + ".html")):
            with open(os.path.join(html_dir, n + ".html"), "rb") as f:
                pages[n] = f.read()
    return pages, table, flag and flag.group(1) == "1"


def main():
    if not CMARK or CMARK.endswith("-NOTFOUND") or not os.path.exists(CMARK):
        print("skipped: no cmark-gfm (scripts/install-deps.sh build installs it)")
        sys.exit(77)
    with open(os.path.join(FIXTURES, "a.md"), "rb") as f:
        a_md = f.read()

    with tempfile.TemporaryDirectory(prefix="fy-docs-embed-") as d:
        pages, table, html = embed(d, CMARK)
    check(html, "with cmark-gfm: fy_ui_docs_html = 1")
    check(list(table) == ["a.md", "b.md", "img/dot.png"],
          "the docs in their order, then the one image a page shows that exists (not img/none.png, not "
          "img/unused.png): %r" % list(table))
    title, ctype, a = table["a.md"]
    check(a == pages.get("a.md"), "the table's bytes are the page in docs_html/")
    check(ctype == "text/html; charset=utf-8", "a.md: text/html")
    check(title == "Fixture a: <b>bold</b> & more", "the index's title: the first line, no '# ', no backticks "
          "(plain text: the index escapes it): %r" % title)
    check(table["img/dot.png"][:2] == (None, "image/png") and table["img/dot.png"][2].startswith(b"\x89PNG"),
          "img/dot.png: no title (not in the index), image/png, its bytes")
    # the page around cmark-gfm's output
    check(a.startswith(b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'), "a complete page")
    check(b"<title>Fixture a: bold &amp; more - Ferry documentation</title>" in a, "<title>: the h1's text, escaped")
    check(a.count(b'<nav><a href="../../">&larr; back to the groups</a><a href="./">all docs</a></nav>') == 2,
          "the two links back, relative, above and below")
    check(b"<style>" in a and b"border-collapse" in a, "an inline stylesheet for the tables")
    # cmark-gfm's safe mode: raw HTML dropped, the javascript: link emptied
    low = a.lower()
    check(b"<script" not in low and b"alert(1)" not in low and b"onerror" not in low and b"<b>" not in low,
          "no raw HTML from the Markdown")
    check(a.count(b"<!-- raw HTML omitted -->") >= 4, "raw HTML replaced by cmark-gfm's comment")
    check(b'<a href="">script link</a>' in a and b"javascript:" not in low, "the javascript: link has no target")
    # GFM
    check(b"<table>" in a and b"<th>col</th>" in a and b"<td><code>x|y</code></td>" in a, "the pipe table")
    check(b"<del>struck</del>" in a and b'<a href="https://example.com/x">' in a, "strikethrough, autolink")
    # GitHub's heading ids, repeated ones numbered; links between docs
    check(b'<h1 id="fixture-a-bold--more">' in a, "h1 id as GitHub makes it")
    check(b'<h2 id="same">Same</h2>' in a and b'<h2 id="same-1">Same</h2>' in a and b'<h2 id="same-2">Same</h2>' in a,
          "repeated headings: same, same-1, same-2")
    check(b'<h2 id="part-two">Part two</h2>' in pages.get("b.md", b""), "b.md: its heading's id")
    check(b'<a href="b.md">b</a>' in a and b'<a href="b.md#part-two">' in a and b'<a href="#same-1">' in a,
          "links to a listed doc, its heading, a heading of the page: kept")
    check(b'<a title="docs/design.md: not in this server\'s Help">not in the list</a>' in a and
          b'href="design.md' not in a,
          "a link to a doc not in the list: its text, no href")
    check(b'<a href="b.md"><code>docs/b.md</code></a>' in a and b"<code>docs/design.md</code> (not one)" in a,
          "`docs/b.md` is a link to b.md; `docs/design.md` (not listed) stays code")
    check(b'<img src="img/none.png"' in a, "a missing image is left as it is (a 404, its alt text shown)")

    with tempfile.TemporaryDirectory(prefix="fy-docs-embed-") as d:
        pages, table, html = embed(d, "")
        check(not os.path.exists(os.path.join(d, "docs_html")), "without cmark-gfm: no docs_html/")
    check(not html and pages == {}, "without cmark-gfm: fy_ui_docs_html = 0")
    check(list(table) == ["a.md", "b.md"], "without cmark-gfm: the docs, no image: %r" % list(table))
    check(table["a.md"] == ("Fixture `a`: <b>bold</b> & more", "text/plain; charset=utf-8", a_md),
          "without cmark-gfm: the Markdown as it is, as text/plain, titled by its first line")

    if failures:
        print("%d failure(s)" % len(failures))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
