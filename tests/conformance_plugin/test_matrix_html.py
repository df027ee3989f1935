"""The HTML matrix, read back structurally: the table (capabilities as rows, runs as
columns), one class per mark, the listed checks with their reasons, the merge account, no
emoji, no scripts or fetched resources, and CSS that keeps it to a 1280 px screen."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from conformance import matrix

_VOID = {"meta", "br", "hr", "img", "link", "input", "col", "source", "wbr"}
_EMOJI = re.compile("[\u2600-\u27bf\u2b00-\u2bff\ufe0f\U0001f000-\U0001faff]")


@dataclass
class Node:
    """An element of the parsed page."""

    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def find_all(self, tag: str, cls: str | None = None) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag and (cls is None or cls in child.classes):
                    found.append(child)
                found += child.find_all(tag, cls)
        return found

    def find(self, tag: str, cls: str | None = None) -> Node:
        found = self.find_all(tag, cls)
        assert found, f"no <{tag} class={cls}>"
        return found[0]

    def kids(self, tag: str) -> list[Node]:
        return [c for c in self.children if isinstance(c, Node) and c.tag == tag]


class _Tree(HTMLParser):
    """A strict little tree builder: every non-void element must be closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def _parse(page: str) -> Node:
    tree = _Tree()
    tree.feed(page)
    tree.close()
    assert tree.stack == [tree.root], "unclosed elements"
    return tree.root


def _line(nodeid: str, capability: str, outcome: str, name: str, **extra: Any) -> dict[str, Any]:
    line = {
        "nodeid": f"conformance/suite/test_x.py::{nodeid}",
        "test": nodeid,
        "capability": capability,
        "outcome": outcome,
        "profile": "openai",
        "target": "https://api.example.test/v1",
        "target_kind": "url",
        "target_name": name,
        "started": "2026-11-28T07:00:00+00:00",
        "seed": 0,
        "harness": "0.1.0",
        "message": "",
    }
    line.update(extra)
    return line


# One capability per mark, in one run; a second run passes everything.
_CASES = {
    "files": ("passed", matrix.PASS),
    "create": ("failed", matrix.FAIL),
    "lifecycle": ("deviation", matrix.DEVIATION),
    "records": ("xfailed", matrix.KNOWN),
    "validation": ("xpassed", matrix.STALE),
    "cancel": ("blocked", matrix.NA),
}


def _page() -> tuple[str, matrix.Matrix]:
    lines = []
    for capability, (outcome, _) in _CASES.items():
        message = f"{capability}: received <b>500</b> & more\nsecond line"
        lines.append(_line(f"test_{capability}", capability, outcome, "acme", message=message))
        lines.append(_line(f"test_{capability}", capability, "passed", "acme-2"))
    lines.append(_line("test_cancel2", "cancel", "blocked", "acme", message="cancel: received <b>500</b> & more"))
    # A later acme run replaces one check.
    lines.append(_line("test_files", "files", "passed", "acme", started="2026-11-28T08:00:00+00:00"))
    m = matrix.build(lines)
    return matrix.render_html(m), m


def test_the_table_has_capabilities_as_rows_and_runs_as_columns() -> None:
    page, m = _page()
    root = _parse(page)
    table = root.find("table", "matrix")
    heads = table.find("thead").find_all("th")
    assert heads[0].text() == "capability"
    runs = [th for th in heads if "run" in th.classes]
    assert [th.find("span", "name").text() for th in runs] == ["acme", "acme-2"]
    assert [s.text() for s in runs[0].find_all("span", "meta")] == [
        "profile openai",
        "https://api.example.test/v1",
        "started 2026-11-28T08:00:00+00:00",
    ]
    rows = table.find("tbody").kids("tr")
    assert [tr.kids("th")[0].text() for tr in rows] == [*m.columns, "overall"]
    assert all(len(tr.kids("td")) == 2 for tr in rows)


def test_each_mark_has_its_class_and_its_word() -> None:
    page, _ = _page()
    rows = {tr.kids("th")[0].text(): tr.kids("td") for tr in _parse(page).find("tbody").kids("tr")}
    for capability, (_, mark) in _CASES.items():
        acme, second = rows[capability]
        assert acme.classes == {matrix.MARK_CLASSES[mark]}, capability
        assert acme.find("span", "mark").text() == mark
        assert second.classes == {"pass"}
    assert rows["overall"][0].classes == {"fail"}
    assert len(set(matrix.MARK_CLASSES.values())) == len(matrix.MARKS)


def test_failing_and_deviating_cells_list_their_checks_with_the_reason() -> None:
    page, _ = _page()
    rows = {tr.kids("th")[0].text(): tr.kids("td") for tr in _parse(page).find("tbody").kids("tr")}
    for capability in ("create", "lifecycle", "records", "validation"):
        items = rows[capability][0].find("details").find("ul", "checks").kids("li")
        assert len(items) == 1
        # The reason is the message's first line, its markup shown as text, not as markup.
        assert items[0].find("code").text() == f"test_{capability}"
        assert items[0].text().endswith(f"{capability}: received <b>500</b> & more")
        assert not items[0].find_all("b")
        assert "second line" not in items[0].text()
    blocked = rows["cancel"][0].find("details")
    assert blocked.find("summary").text() == "2 checks"
    assert [c.text() for c in blocked.find_all("code")] == ["test_cancel", "test_cancel2"]
    assert not rows["files"][0].find_all("details")
    assert not rows["overall"][0].find_all("details")


def test_the_page_is_self_contained_without_emoji_and_fits_the_screen() -> None:
    page, _ = _page()
    root = _parse(page)
    assert page.startswith("<!DOCTYPE html>")
    assert not _EMOJI.search(page)
    for tag in ("script", "link", "img", "iframe", "object"):
        assert not root.find_all(tag), tag
    assert "src=" not in page and "href=" not in page and "url(" not in page and "@import" not in page
    css = root.find("style").text()
    assert re.search(r"main\s*{[^}]*max-width:\s*1280px", css)
    assert re.search(r"thead th\s*{[^}]*position:\s*sticky;\s*top:\s*0", css)
    assert re.search(r"tbody th\s*{[^}]*position:\s*sticky;\s*left:\s*0", css)
    assert re.search(r"\.scroll\s*{[^}]*overflow:\s*auto", css)
    # The wide table scrolls inside its box, not the page.
    assert root.find("div", "scroll").find("table", "matrix")


def test_the_legend_totals_and_merge_account_are_on_the_page() -> None:
    page, m = _page()
    root = _parse(page)
    legend = root.find("p", "legend")
    assert {s.text() for s in legend.find_all("span", "mark")} == {mark for mark, _ in matrix.MARKS}
    totals = root.find("table", "totals")
    head = [th.text() for th in totals.find("thead").find_all("th")]
    assert head[:4] == ["run", "profile", "target", "started"]
    acme = totals.find("tbody").kids("tr")[0].kids("td")
    values = dict(zip(head, (td.text() for td in acme), strict=True))
    assert (values["run"], values["failed"], values["deviations"], values["blocked"]) == ("acme", "1", "1", "2")
    footer = root.find("footer", "merge")
    assert len(footer.find("ul", "merged").kids("li")) == 3
    replaced = footer.find("ul", "replaced").kids("li")
    assert len(replaced) == 1 and "1 of 7 checks replaced" in replaced[0].text()
    assert next(line for line in m.account() if line.startswith("replaced: ")).endswith(replaced[0].text())
