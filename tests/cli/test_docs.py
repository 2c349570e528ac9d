"""The project's documents point only at themselves: every relative link in
a *.md file of the repository names a file or directory that exists, inside
the repository, and every `docs/NAME.md` a document or the program's help
mentions exists too.  A reader who follows a link never lands outside the
project or on nothing."""
import glob
import os
import re
import subprocess

from tkhelpers import ROOT

# [text](target "title") and ![alt](target); [id]: target definitions.
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)"
                    r"(?:\s+[\"'(][^)]*)?\)")
REFDEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.M)
HTML = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']*)",
                  re.I)
FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
DOC_MENTION = re.compile(r"(?<![\w./-])docs/[\w.-]+\.md\b")


def markdown_files():
    """The repository's *.md files, committed or new, never a build's."""
    try:
        out = subprocess.run(["git", "-C", ROOT, "ls-files", "-co",
                              "--exclude-standard", "*.md"],
                             capture_output=True, check=True, timeout=30,
                             text=True).stdout.split("\n")
        files = [f for f in out if f]
    except (OSError, subprocess.SubprocessError):
        files = [os.path.relpath(f, ROOT) for f in
                 glob.glob(os.path.join(ROOT, "**", "*.md"), recursive=True)
                 if not os.path.relpath(f, ROOT).startswith("build")]
    assert "README.md" in files
    return sorted(files)


def links(text):
    """Every link target in markdown text, code blocks and spans left out."""
    text = FENCE.sub("", text)
    text = CODE_SPAN.sub("", text)
    found = INLINE.findall(text) + REFDEF.findall(text) + HTML.findall(text)
    return [t[1:-1] if t.startswith("<") else t for t in found]


def problem(md, target):
    """Why target, a link in file md, is wrong; None when it is fine."""
    if SCHEME.match(target) or target.startswith("//"):
        # A web address is the author's call; a file: URL is not portable.
        return "file: URL" if target.lower().startswith("file:") else None
    path = re.split(r"[#?]", target, 1)[0]
    if path == "":
        return None  # an anchor in the same file
    if path.startswith("/"):
        return "absolute path (not inside the repository)"
    where = os.path.realpath(os.path.join(ROOT, os.path.dirname(md), path))
    root = os.path.realpath(ROOT)
    if where != root and not where.startswith(root + os.sep):
        return "points outside the repository"
    if not os.path.exists(where):
        return "no such file"
    return None


def test_the_link_finder_finds_links():
    text = ("see [a](docs/a.md) and [b](<b c.md> \"t\"), ![img](x.svg);\n"
            "[ref]: ../shared/x.md\n"
            "`[not](a-link.md)`\n```\n[nor](this.md)\n```\n"
            "<a href=\"y.md\">y</a>")
    assert links(text) == ["docs/a.md", "b c.md", "x.svg",
                           "../shared/x.md", "y.md"]
    assert problem("README.md", "../shared/docs/design.md") == \
        "points outside the repository"
    assert problem("docs/x.md", "../README.md") is None
    assert problem("docs/x.md", "../../README.md") == \
        "points outside the repository"
    assert problem("README.md", "docs/no-such-page.md") == "no such file"
    assert problem("README.md", "/etc/passwd") == \
        "absolute path (not inside the repository)"
    assert problem("README.md", "https://example.org/a") is None
    assert problem("README.md", "#commands") is None


def test_every_relative_link_resolves_inside_the_repository():
    bad = []
    checked = 0
    for md in markdown_files():
        with open(os.path.join(ROOT, md), encoding="utf-8") as f:
            text = f.read()
        for target in links(text):
            checked += 1
            why = problem(md, target)
            if why is not None:
                bad.append("%s: (%s): %s" % (md, target, why))
    assert checked > 0
    assert bad == [], "\n".join(bad)


def test_every_docs_page_named_exists():
    """`docs/NAME.md` written as text (in a document, or in the program's
    help, which cli/*.c holds) must exist as well: a reader looks for it."""
    sources = markdown_files() + sorted(
        os.path.relpath(f, ROOT)
        for f in glob.glob(os.path.join(ROOT, "cli", "*.c")))
    bad = []
    for src in sources:
        with open(os.path.join(ROOT, src), encoding="utf-8") as f:
            text = f.read()
        for name in sorted(set(DOC_MENTION.findall(text))):
            if not os.path.isfile(os.path.join(ROOT, name)):
                bad.append("%s names %s, which does not exist" % (src, name))
    assert bad == [], "\n".join(bad)

