"""Opening a page in headless Chromium as a reader would, and checking its layout.

`open_page` loads a file at 1,400 px width and reports what a reader would notice: images
that did not load, console errors, failed requests, and text that overflows its box or
overlaps other text (bounding boxes of the rendered text, through the DOM's Range API).
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
WIDTH = 1400

# Every visible text node's box (one per line fragment) and every image's box; pairs of
# boxes of different nodes that intersect by more than 2 px both ways are overlaps; an
# element whose content is wider than its box (and clipped or spilling) is an overflow.
LAYOUT_JS = """
() => {
  const boxes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let id = 0;
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.textContent.trim()) continue;
    const parent = node.parentElement;
    if (!parent || parent.closest('script,style,option,select')) continue;
    const style = getComputedStyle(parent);
    if (style.visibility === 'hidden' || parent.offsetParent === null) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    id += 1;
    for (const r of range.getClientRects()) {
      if (r.width > 0 && r.height > 0)
        boxes.push({id, text: node.textContent.trim().slice(0, 40), l: r.left + scrollX,
                    t: r.top + scrollY, r: r.right + scrollX, b: r.bottom + scrollY});
    }
  }
  for (const img of document.images) {
    if (img.offsetParent === null) continue;
    const r = img.getBoundingClientRect();
    id += 1;
    boxes.push({id, text: '<img>', l: r.left + scrollX, t: r.top + scrollY,
                r: r.right + scrollX, b: r.bottom + scrollY});
  }
  boxes.sort((a, b) => a.t - b.t);
  const overlaps = [];
  for (let i = 0; i < boxes.length && overlaps.length < 20; i++) {
    for (let j = i + 1; j < boxes.length && boxes[j].t < boxes[i].b; j++) {
      const a = boxes[i], c = boxes[j];
      if (a.id === c.id) continue;
      const w = Math.min(a.r, c.r) - Math.max(a.l, c.l);
      const h = Math.min(a.b, c.b) - Math.max(a.t, c.t);
      if (w > 2 && h > 2) overlaps.push([a.text, c.text]);
    }
  }
  const overflows = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.offsetParent === null || ['HTML', 'BODY'].includes(el.tagName)) continue;
    if (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0 &&
        getComputedStyle(el).display !== 'inline')
      overflows.push(el.tagName + ': ' + (el.textContent || '').trim().slice(0, 40));
  }
  const page = document.documentElement.scrollWidth > innerWidth ? ['page wider than window'] : [];
  return {overlaps, overflows: page.concat(overflows.slice(0, 20)), boxes: boxes.length};
}
"""


def chromium() -> str:
    executable = CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")
    # `make install` installs Debian's chromium; a missing browser is a failure, not a skip.
    assert executable, "chromium is not installed: run `make install` (apt-get install chromium)"
    return str(executable)


@contextmanager
def open_page(path: Path):
    """(page, problems) of the file at `path` loaded in headless Chromium at WIDTH px;
    problems: console errors, failed requests (both filled while the page is used)."""
    from playwright import sync_api

    problems: list = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            page.on("console", lambda m: problems.append(("console", m.type, m.text))
                    if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(("pageerror", str(e))))
            page.on("requestfailed", lambda r: problems.append(("request", r.url[:80])))
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            yield page, problems
        finally:
            browser.close()


def image_widths(page) -> list[int]:
    return page.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")


def layout(page) -> dict:
    """{"overlaps": [[text, text], ...], "overflows": [...], "boxes": n} of the page now."""
    return page.evaluate(LAYOUT_JS)
