"""The documentation is self-contained: no link or path in the repository points outside it.

* Every text file of the repository (tracked, or new and not ignored) is scanned for pointers out of
  it: the workspace folder next to the clone, the workspace's own design and catalog notes, absolute
  filesystem paths of a particular machine, ``file:`` URLs, and relative paths that climb above the
  repository root. Links to papers and code on the web (http, https) are fine.
* Every relative Markdown link resolves to a file of the repository (anchors are ignored).
* Every page of ``docs/`` is linked from ``docs/README.md``, and every ``docs/design.md §N`` that the
  code cites is a section of that page.

The patterns below are written so that this file does not match them itself.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TEXT_SUFFIXES = {".md", ".py", ".toml", ".txt", ".cfg", ".ini", ".json"}

#: the workspace folder beside a clone (``..`` then ``shared``)
WORKSPACE = re.compile(r"\.\./shared\b")
#: the workspace's design and catalog notes, which a clone does not have
WORKSPACE_NOTES = re.compile(r"\b(?:DESIGN|CATALOG)\.md\b")
#: absolute paths of one machine (under a root folder such as work, home or Users, a Windows user
#: folder) and file URLs
ABSOLUTE = re.compile(r"(?<![\w.:/~-])/(?:work|home|Users|root|tmp|mnt|scratch)/"
                      r"|\b[A-Za-z]:\\(?:Users|work|home)\\"
                      r"|\bfile:/{2}")
#: a relative path that climbs: one or more leading ``..`` components
CLIMB = re.compile(r"(?<![\w./-])((?:\.\./)+[\w.@%+~/-]*)")
#: Markdown inline links and images: [text](target "title")
INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
#: Markdown reference definitions: [label]: target
REFERENCE_LINK = re.compile(r"^ {0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.MULTILINE | re.DOTALL)
WEB = ("http://", "https://", "mailto:")


def repository_files() -> list[Path]:
    """Text files of the repository: tracked ones and new ones git does not ignore."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the repository's files cannot be listed")
    files = []
    for name in sorted(set(out.decode().split("\0")) - {""}):
        path = ROOT / name
        if not path.is_file() or (path.suffix and path.suffix not in TEXT_SUFFIXES):
            continue
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:   # an extensionless binary
            continue
        files.append(path)
    return files


FILES = repository_files()
MARKDOWN = [p for p in FILES if p.suffix == ".md"]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def inside(path: Path) -> bool:
    try:
        path.resolve().relative_to(ROOT)
    except ValueError:
        return False
    return True


def link_targets(text: str):
    """(offset, target) of every Markdown link outside fenced code blocks."""
    prose = FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    for pattern in (INLINE_LINK, REFERENCE_LINK):
        for m in pattern.finditer(prose):
            yield m.start(1), m.group(1)


def local_target(target: str) -> str | None:
    """The file part of a relative link, or None for web links and pure anchors."""
    if target.lower().startswith(WEB) or target.startswith("#"):
        return None
    return unquote(target.split("#", 1)[0].split("?", 1)[0]) or None


def test_no_reference_outside_the_repository():
    problems = []
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        for pattern, what in ((WORKSPACE, "the workspace folder beside the clone"),
                              (WORKSPACE_NOTES, "the workspace's notes (use docs/)"),
                              (ABSOLUTE, "an absolute path of one machine")):
            for m in pattern.finditer(text):
                problems.append(f"{rel(path)}:{line_of(text, m.start())}: {m.group(0)!r} points to {what}")
        if path.suffix == ".md":   # paths in prose and commands, relative to the page
            for m in CLIMB.finditer(text):
                if not inside(path.parent / m.group(1)):
                    problems.append(f"{rel(path)}:{line_of(text, m.start())}: {m.group(1)!r} climbs out of "
                                    "the repository")
        for start, target in link_targets(text):
            local = local_target(target)
            if local is None:
                continue
            if re.match(r"^[A-Za-z][\w+.-]*:", local) or local.startswith("/"):
                problems.append(f"{rel(path)}:{line_of(text, start)}: link {target!r} is not relative")
            elif not inside(path.parent / local):
                problems.append(f"{rel(path)}:{line_of(text, start)}: link {target!r} leaves the repository")
    assert not problems, "pointers outside the repository:\n" + "\n".join(problems)


def test_markdown_links_resolve():
    problems = []
    for path in MARKDOWN:
        text = path.read_text(encoding="utf-8")
        for start, target in link_targets(text):
            local = local_target(target)
            if local is None or re.match(r"^[A-Za-z][\w+.-]*:", local) or local.startswith("/"):
                continue   # web links; non-relative ones fail the test above
            resolved = path.parent / local
            if inside(resolved) and not resolved.exists():
                problems.append(f"{rel(path)}:{line_of(text, start)}: link {target!r} has no file")
    assert not problems, "broken links:\n" + "\n".join(problems)


def linked_files(page: Path) -> set[Path]:
    text = page.read_text(encoding="utf-8")
    out = set()
    for _, target in link_targets(text):
        local = local_target(target)
        if local is not None:
            out.add((page.parent / local).resolve())
    return out


def test_docs_pages_are_linked_from_the_index():
    index = DOCS / "README.md"
    assert index.is_file(), "docs/README.md, the index of the documentation, is missing"
    pages = sorted(p.resolve() for p in DOCS.rglob("*.md") if p.resolve() != index.resolve())
    assert {"design.md", "verdicts.md", "catalog.md", "plugins.md"} <= {p.name for p in pages}
    missing = [rel(p) for p in pages if p not in linked_files(index)]
    assert not missing, f"docs pages not linked from docs/README.md: {missing}"


def test_readme_links_the_documentation():
    assert (DOCS / "README.md").resolve() in linked_files(ROOT / "README.md"), \
        "README.md should link the documentation index docs/README.md"


def test_cited_docs_exist():
    """Every docs/<page>.md named in the repository exists, and every cited section of
    docs/design.md (``docs/design.md §N`` or ``section N``) is a heading of it."""
    design = (DOCS / "design.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (\d+)\. ", design, re.MULTILINE))
    problems = []
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"(?<![\w/.-])docs/([\w/.-]+?\.md)\b(?:\s*(?:§|section\s+)(\d+))?", text):
            where = f"{rel(path)}:{line_of(text, m.start())}"
            if not (DOCS / m.group(1)).is_file():
                problems.append(f"{where}: docs/{m.group(1)} does not exist")
            elif m.group(2) and m.group(1) == "design.md" and m.group(2) not in sections:
                problems.append(f"{where}: docs/design.md has no section {m.group(2)}")
    assert not problems, "\n".join(problems)
