"""Checks every page of bastion.web must pass, for each page module's tests.

check_html(html)          # well-formed enough, one <main>, a label for every field,
                          # unique ids, no inline script / style / on* handlers
check_headers(headers)    # the CSP and the other security headers
await axe(page, name)     # axe-core in the page: no serious or critical violation
await screenshot(page, name)   # kept under $BASTION_ARTIFACTS (or the tmp dir)
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.web._security import CSP

if TYPE_CHECKING:
    from playwright.async_api import Page

__all__ = ["ARTIFACTS", "axe", "check_headers", "check_html", "screenshot"]

AXE = Path(__file__).parents[1] / "e2e" / "node" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("BASTION_ARTIFACTS") or Path(tempfile.gettempdir()) / "bastion-web")

ARTIFACTS.mkdir(parents=True, exist_ok=True)

VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip
NEEDS_LABEL = {"input", "select", "textarea"}
NO_LABEL_TYPES = {"hidden", "submit", "button", "reset", "image"}


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, int]] = []
        self.problems: list[str] = []
        self.ids: set[str] = set()
        self.labelled: set[str] = set()  # ids named by <label for>
        self.fields: list[tuple[str, int, bool]] = []  # (id, line, labelled otherwise)
        self.mains = 0
        self.in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        line = self.getpos()[0]
        for name, _ in attrs:
            if name.startswith("on"):
                self.problems.append(f"line {line}: inline handler {name}= on <{tag}>")
            if name == "style":
                self.problems.append(f"line {line}: inline style= on <{tag}>")
        element_id = values.get("id")
        if element_id:
            if element_id in self.ids:
                self.problems.append(f"line {line}: id {element_id!r} twice")
            self.ids.add(element_id)
        if tag == "script" and not values.get("src"):
            self.problems.append(f"line {line}: inline <script>")
        if tag == "style":
            self.problems.append(f"line {line}: inline <style>")
        if tag == "main":
            self.mains += 1
        if tag == "label" and values.get("for"):
            self.labelled.add(values["for"] or "")
        if tag in NEEDS_LABEL and (values.get("type") or "text") not in NO_LABEL_TYPES:
            inside_label = any(t == "label" for t, _ in self.stack)
            named = bool(values.get("aria-label") or values.get("aria-labelledby"))
            self.fields.append((element_id or "", line, inside_label or named))
        if tag not in VOID:
            self.stack.append((tag, line))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.problems.append(f"line {self.getpos()[0]}: self-closed <{tag}/>")
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        line = self.getpos()[0]
        if tag in VOID:
            return
        if not self.stack:
            self.problems.append(f"line {line}: </{tag}> closes nothing")
            return
        open_tag, opened = self.stack[-1]
        if open_tag != tag:
            self.problems.append(f"line {line}: </{tag}> but <{open_tag}> (line {opened}) is open")
            if any(t == tag for t, _ in self.stack):  # recover: close up to the match
                while self.stack and self.stack[-1][0] != tag:
                    self.stack.pop()
                self.stack.pop()
            return
        self.stack.pop()


def check_html(html: str, where: str = "page") -> None:
    """Fails with every problem found in `html`."""
    assert html.lstrip().lower().startswith("<!doctype html>"), f"{where}: no <!doctype html>"
    checker = _Checker()
    checker.feed(html)
    checker.close()
    problems = list(checker.problems)
    problems += [f"<{t}> (line {n}) never closed" for t, n in checker.stack]
    if checker.mains != 1:
        problems.append(f"{checker.mains} <main> elements, not one")
    for field_id, line, labelled in checker.fields:
        if not labelled and field_id not in checker.labelled:
            problems.append(f"line {line}: a field without a label (id={field_id!r})")
    assert not problems, f"{where}:\n" + "\n".join(problems)


def check_headers(headers: Mapping[str, str], where: str = "page") -> None:
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower.get("content-security-policy") == CSP, (
        f"{where}: CSP {lower.get('content-security-policy')!r}"
    )
    csp = lower["content-security-policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert lower.get("x-content-type-options") == "nosniff", where
    assert lower.get("referrer-policy"), where
    assert "text/html" in lower.get("content-type", ""), where


async def axe(page: Page, name: str) -> None:
    """axe-core's violations of impact serious or critical on the current page."""
    assert AXE.is_file(), f"axe-core is missing at {AXE} (npm ci in tests/e2e/node)"
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
              .map(v => ({id: v.id, impact: v.impact, help: v.help,
                          nodes: v.nodes.slice(0, 3).map(n => n.html)}));
        }"""
    )
    assert result == [], f"{name}: axe-core found\n{json.dumps(result, indent=1)}"


async def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG, `ARTIFACTS/<name>.png` (the directory exists from the import on)."""
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
