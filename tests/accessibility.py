"""axe-core in the browser tests: every page a browser test opens is checked against
WCAG 2 A and AA, and any violation fails the test.

axe-core is vendored under tests/vendor/ (the npm package, MIT licence) and evaluated in
the page through Playwright, so the console never serves it and the page's CSP doesn't
apply. The ``page`` fixture (tests/conftest.py) calls ``watch(page)``: the page is then
checked after every ``goto``, ``go_back``/``reload`` and ``wait_for_url`` (how the tests
wait for a click's navigation) and once more at the end of the test. States reached
without a navigation (a table swapped by htmx, a form answered with errors, an open
dialog) are checked by calling ``assert_accessible(page)`` once they are on screen.
"""
from __future__ import annotations

import functools
from pathlib import Path

AXE_SOURCE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
RULE_SETS = ["wcag2a", "wcag2aa"]

_RUN = """async (tags) => {
  // Let htmx requests (panels that load themselves) finish and settle, and CSS transitions
  // (Bootstrap's fade) end before judging colours.
  const tick = () => new Promise((resolve) => setTimeout(resolve, 25));
  for (let quiet = 0; quiet < 2; ) {
    await tick();
    quiet = document.querySelector(".htmx-request, .htmx-settling, .htmx-swapping") ? 0 : quiet + 1;
  }
  await Promise.all(document.getAnimations().map((a) => a.finished.catch(() => null)));
  const results = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 12).map((n) => ({target: n.target.join(" "), summary: n.failureSummary,
                                           html: n.html.slice(0, 200)})),
    count: v.nodes.length,
  }));
}"""


@functools.cache
def _axe_source() -> str:
    return AXE_SOURCE.read_text(encoding="utf-8")


class AccessibilityError(AssertionError):
    pass


def violations(page) -> list[dict]:
    """axe's WCAG 2 A/AA violations on what the page shows now."""
    if page.evaluate("typeof window.axe === 'undefined'"):
        page.evaluate(_axe_source())
    return page.evaluate(_RUN, RULE_SETS)


def describe(url: str, found: list[dict]) -> str:
    lines = [f"{sum(v['count'] for v in found)} WCAG 2 A/AA violation(s) on {url}:"]
    for v in found:
        lines.append(f"- {v['id']} ({v['impact']}, {v['count']}x): {v['help']}")
        for node in v["nodes"]:
            lines.append(f"    {node['target']}: {node['html']}")
            lines.extend(f"      {line}" for line in (node["summary"] or "").splitlines())
    return "\n".join(lines)


def assert_accessible(page) -> None:
    """Fail with axe's findings unless the page, as it is now, has no WCAG 2 A/AA violation."""
    if page.url in ("about:blank", ""):
        return
    page.wait_for_load_state("load")
    if page.evaluate("document.contentType") != "text/html":
        return  # a JSON answer or a file shown as text: not a page of the console
    found = violations(page)
    if found:
        raise AccessibilityError(describe(page.url, found))


def watch(page) -> None:
    """Check the page after each navigation the test makes (see the module's docstring)."""
    for name in ("goto", "go_back", "go_forward", "reload", "wait_for_url"):
        original = getattr(page, name)

        def checked(*args, _original=original, **kwargs):
            result = _original(*args, **kwargs)
            if not getattr(page, "axe_paused", False):
                assert_accessible(page)
            return result

        setattr(page, name, checked)
