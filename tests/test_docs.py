"""The docs hold together: a short front page, links that reach files, result files that exist.

README.md is the front page and docs/ the manual (docs/README.md is the index). These checks
are fast and need nothing but the working tree:

    python -m pytest tests/test_docs.py -q
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]

MAX_README_LINES = 250
SETUP_COMMANDS = ("bash scripts/quickstart.sh", "bash scripts/test.sh")
QUICKSTART_BEGIN = "<!-- quickstart-output:begin -->"
QUICKSTART_END = "<!-- quickstart-output:end -->"

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target), with an optional "title" after the target.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
RESULTS_PATH = re.compile(r"benchmarks/results/[\w./-]*")
# A table copied from a results file, marked so that it can be refreshed from it.
COPIED = re.compile(r"<!-- from (benchmarks/results/[\w./-]+): (begin|end)\b")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _prose(text: str) -> str:
    """The text without fenced code blocks or inline code (their brackets are not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _links(page: Path) -> list[str]:
    return LINK.findall(_prose(page.read_text(encoding="utf-8")))


def test_readme_is_a_short_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_README_LINES}): move detail into docs/"
    )


def test_readme_gives_the_two_setup_commands():
    lines = [line.strip() for line in README.read_text(encoding="utf-8").splitlines()]
    for command in SETUP_COMMANDS:
        assert any(line.startswith(command) for line in lines), f"README.md lost `{command}`"


def test_readme_marks_the_quickstart_output_once():
    text = README.read_text(encoding="utf-8")
    assert text.count(QUICKSTART_BEGIN) == 1 and text.count(QUICKSTART_END) == 1
    block = text[text.index(QUICKSTART_BEGIN):text.index(QUICKSTART_END)]
    assert "Pipeline finished in" in block, "the quickstart's output belongs between the markers"


def test_the_docs_index_lists_every_page():
    index = ROOT / "docs" / "README.md"
    listed = {(index.parent / link.split("#")[0]).resolve() for link in _links(index)}
    missing = [_rel(page) for page in DOCS if page != index and page.resolve() not in listed]
    assert not missing, f"docs/README.md does not link {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_relative_links_reach_files(page):
    broken = []
    for target in _links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor on the same page
        file_part = target.split("#", 1)[0]
        resolved = (page.parent / file_part).resolve()
        if resolved.exists():
            continue
        broken.append(target)
    assert not broken, f"{_rel(page)} links to missing files: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_mentioned_benchmark_results_exist(page):
    text = page.read_text(encoding="utf-8")
    missing = []
    for match in RESULTS_PATH.finditer(text):
        following = text[match.end():match.end() + 1]
        if following and following in "<{":
            continue  # a pattern such as benchmarks/results/<machine>.{json,md}
        path = match.group().rstrip(".")
        if not (ROOT / path).exists():
            missing.append(path)
    assert not missing, f"{_rel(page)} names results that are not committed: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_copied_result_tables_are_marked_in_pairs(page):
    """Each copied block opens and closes with the same results file, one block at a time."""
    open_source = None
    for source, edge in COPIED.findall(page.read_text(encoding="utf-8")):
        if edge == "begin":
            assert open_source is None, f"{_rel(page)}: a copy from {source} begins inside one from {open_source}"
            open_source = source
        else:
            assert open_source == source, f"{_rel(page)}: the copy from {source} ends without its begin"
            open_source = None
    assert open_source is None, f"{_rel(page)}: the copy from {open_source} has no end marker"
