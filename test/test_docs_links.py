"""Every relative link in README.md and docs/*.md points at a file that exists, and every
``#anchor`` at a heading of its target, slugged as GitHub does (plain pytest, no ROS)."""
import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]"          # [text], one level of [] inside
                          r"\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")  # (target "title")
_REF_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
_HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.I)
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def _prose_lines(text):
    """The lines outside fenced code blocks, with their line numbers."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def github_slug(heading):
    """GitHub's heading anchor: the rendered text, lower case, punctuation other than '-' and
    '_' removed, each space a '-'."""
    text = _CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)   # links keep their text
    text = re.sub(r"<[^>]+>", "", text)                       # inline HTML
    text = text.strip().lower()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "-_" or ch == " " or cat[0] in "LN" or cat == "Mn":
            out.append("-" if ch == " " else ch)
    return "".join(out)


def anchors(path):
    """Every anchor a Markdown file has on GitHub: slugged headings (repeats get -1, -2, ...)
    and explicit <a name/id> tags."""
    seen = {}
    result = set()
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        result.update(_HTML_ANCHOR.findall(line))
        m = _HEADING.match(line)
        if not m:
            continue
        slug = github_slug(m.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        result.add(slug if n == 0 else f"{slug}-{n}")
    return result


def links(path):
    """(line number, target) of every inline, image and reference link outside code."""
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        prose = _CODE_SPAN.sub("", line)
        for m in _INLINE_LINK.finditer(prose):
            yield number, m.group(1)
        m = _REF_LINK.match(prose)
        if m:
            yield number, m.group(1)


def broken_links(path):
    """'file:line: target (why)' for each relative link of ``path`` that leads nowhere."""
    problems = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):   # http:, https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        where = f"{shown}:{number}: {target}"
        if not dest.exists():
            problems.append(f"{where} (no such file)")
            continue
        if anchor:
            if dest.is_dir() or dest.suffix.lower() not in (".md", ".markdown"):
                problems.append(f"{where} (anchor into a file that is not Markdown)")
            elif anchor not in anchors(dest):
                problems.append(f"{where} (no heading with anchor #{anchor} in {dest.name})")
    return problems


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_relative_links_and_anchors_resolve(doc):
    assert broken_links(doc) == []


def test_the_readme_links_every_docs_page():
    readme = {t.partition("#")[0] for _, t in links(ROOT / "README.md")}
    pages = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert pages - readme == set()


def test_the_checker_finds_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(
        "# Page\n\n## The `mono-depth-ros` CLI\n\n## QoS (REP 2003)\n\n"
        "## Repeated\n\n## Repeated\n\n"
        "```\n## not a heading\n```\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/page.md) [ok](docs/page.md#the-mono-depth-ros-cli)\n"
        "[ok](docs/page.md#qos-rep-2003)\n"
        "[ok](docs/page.md#repeated-1) [ok](#top) [web](https://example.com/x.md#nothing)\n"
        "`[in code](nowhere.md)`\n\n# Top\n\n"
        "[gone](docs/missing.md) [bad anchor](docs/page.md#qos)\n"
        "[fenced](docs/page.md#not-a-heading)\n"
        "[too many](docs/page.md#repeated-2)\n")
    problems = broken_links(readme)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "docs/missing.md (no such file)",
        "docs/page.md#qos (no heading with anchor #qos in page.md)",
        "docs/page.md#not-a-heading (no heading with anchor #not-a-heading in page.md)",
        "docs/page.md#repeated-2 (no heading with anchor #repeated-2 in page.md)",
    ]


@pytest.mark.parametrize("heading, slug", [
    ("DDS: large messages, other hosts, your own settings",
     "dds-large-messages-other-hosts-your-own-settings"),
    ("The `mono-depth-ros` CLI", "the-mono-depth-ros-cli"),
    ("depth_node: topics, QoS", "depth_node-topics-qos"),
    ("On a ROS 2 robot (Jazzy / Kilted)", "on-a-ros-2-robot-jazzy--kilted"),
    ("What the **shipped** weights are good for", "what-the-shipped-weights-are-good-for"),
    ("Ablation σ1 → σ3", "ablation-σ1--σ3"),
])
def test_github_slug(heading, slug):
    assert github_slug(heading) == slug
