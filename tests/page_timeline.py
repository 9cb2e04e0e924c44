"""Where a page switch's time goes, in a real browser: one app server, one headless Chromium page
at 1400x1000, and for each action a timeline from the click (0 ms) of what the page saw: its
requests to the server (send), scripts fetched (js: Streamlit's lazy chunks), the server's
messages (msg: grouped while they come less than 15 ms apart, with their count and size), the
main thread's long tasks (long: > 50 ms, their length) and every batch of DOM changes (mut: the
width of the page's block, the page's height over the window's, then where the changes were, by
Streamlit's data-testid, most first; outside Streamlit's elements, "?" and the node itself as
tag#id.class[data-baseweb][role=...], with the nodes a change added (+) or removed (-) and the
start of their text: e.g. ?div[role=log]-div"20 options available." is React Aria's live
announcer dropping an announcement, which the bench does not count as a change).

    .venv/bin/python tests/page_timeline.py [--actions Regressor,Merge,presenter,Next:Detection,presenter]

An action is a page of the sidebar's navigation, "presenter" (the presenter mode toggle; the
sidebar is opened first if presenter mode collapsed it) or "Next:<page>" (the foot's Next link).
The settled time is the bench's (tests/load_app.py, SETTLED_JS). A measuring tool, not a test:
docs/BENCHMARKS.md ("Where a page switch's time goes") reads its output.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from load_app import CHROMIUM, LAUNCH_ARGS, Probe, free_port, start_server, wait_healthy  # noqa: E402

TIMELINE_JS = """(() => {
  const T = window.__tl = {ev: []};
  const now = () => performance.now();
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (...a) {
    if (!this.__tl) {
      this.__tl = true;
      this.addEventListener('message', e => T.ev.push([now(), 'msg', e.data.byteLength || e.data.size || 0]));
    }
    T.ev.push([now(), 'send', 0]);
    return send.apply(this, a);
  };
  for (const ev of ['pointerdown', 'keydown'])
    window.addEventListener(ev, () => T.ev.push([now(), 'input', ev]), true);
  new PerformanceObserver(l => { for (const e of l.getEntries())
    T.ev.push([e.startTime, 'long', Math.round(e.duration)]); }).observe({type: 'longtask'});
  // scripts fetched after the first load: Streamlit's lazy chunks (one per element type)
  new PerformanceObserver(l => { for (const e of l.getEntries())
    if (e.initiatorType === 'script' || e.name.endsWith('.js'))
      T.ev.push([e.startTime, 'js', e.name.split('/').pop() + ' ' + Math.round(e.duration) + ' ms '
                 + Math.round(e.transferSize / 1024) + ' kB']); }).observe({type: 'resource'});
  const where = n => {
    let x = n.nodeType === 1 ? n : n.parentElement;
    while (x && !(x.dataset && x.dataset.testid)) x = x.parentElement;
    if (x) return x.dataset.testid;
    // outside Streamlit's elements (a portal, the head): the node itself, as tag#id.class
    const e = n.nodeType === 1 ? n : n.parentElement;
    if (!e) return '?' + n.nodeName;
    const c = typeof e.className === 'string' ? e.className.trim().split(/\s+/)[0] : '';
    const b = e.getAttribute('data-baseweb'), r = e.getAttribute('role');
    return '?' + e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (c ? '.' + c : '')
      + (b ? '[' + b + ']' : '') + (r ? '[role=' + r + ']' : '');
  };
  new MutationObserver(rs => {
    const w = {};
    for (const r of rs) {
      let k = where(r.target) + (r.type === 'attributes' ? '@' + r.attributeName : '');
      if (k[0] === '?' && r.type === 'childList') {  // what came or went there
        const d = x => x.nodeType === 1 ? where(x).replace(/^\?/, '')
          + (x.textContent ? '"' + x.textContent.trim().slice(0, 30) + '"' : '') : x.nodeName;
        k += [...r.addedNodes].map(x => '+' + d(x)).join('')
          + [...r.removedNodes].map(x => '-' + d(x)).join('');
      }
      w[k] = (w[k] || 0) + 1;
    }
    const block = document.querySelector('[data-testid="stMainBlockContainer"]');
    const main = document.querySelector('[data-testid="stMain"]');
    const size = block && main ? `W${block.clientWidth} H${main.scrollHeight}/${main.clientHeight} ` : '';
    T.ev.push([now(), 'mut', size + Object.entries(w).sort((a, b) => b[1] - a[1]).slice(0, 6)
      .map(([k, v]) => k + 'x' + v).join(' ')]);
  }).observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
})()"""


def format_events(ev: list) -> list[str]:
    """The timeline's lines, times from the first input event."""
    ev = sorted(ev, key=lambda e: e[0])
    t0 = next((e[0] for e in ev if e[1] == "input"), ev[0][0] if ev else 0.0)
    out, group = [], None  # group: [first ms, last ms, count, bytes] of messages

    def flush():
        if group:
            out.append(f"{group[0]:7.0f} msg x{group[2]} ({group[3] / 1024:.0f} kB, until "
                       f"{group[1]:.0f})")

    for t, kind, what in ev:
        dt = t - t0
        if kind == "msg":
            if group and dt - group[1] < 15:
                group[1], group[2], group[3] = dt, group[2] + 1, group[3] + what
                continue
            flush()
            group = [dt, dt, 1, what]
            continue
        flush()
        group = None
        out.append(f"{dt:7.0f} {kind} {what}")
    flush()
    return out


async def run(actions: list[str]) -> None:
    from playwright.async_api import async_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(ROOT / "test-artifacts" / "page_timeline_server.log", "w") if (
        ROOT / "test-artifacts").is_dir() else open("/dev/null", "w")
    proc = start_server(port, log)
    try:
        err = wait_healthy(proc, url, time.monotonic() + 180)
        if err:
            raise SystemExit(err)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            page = await (await browser.new_context(
                viewport={"width": 1400, "height": 1000})).new_page()
            page.set_default_timeout(120_000)
            await page.add_init_script(TIMELINE_JS)
            probe = await Probe.attach(page, cdp=True)
            await page.goto(url)
            await probe.settled(timeout_ms=300_000)
            sb = page.locator('[data-testid="stSidebar"]')

            async def presenter():
                if await sb.get_attribute("data-collapsed") == "true":
                    await page.locator('[data-testid="stExpandSidebarButton"]').click()
                    await page.wait_for_timeout(500)
                await page.evaluate("() => { window.__tl.ev = []; }")
                await sb.get_by_text("Presenter mode", exact=True).click()

            for name in actions:
                if name == "presenter":
                    act = presenter
                elif name.startswith("Next:"):
                    target = name.split(":", 1)[1]

                    def act(target=target):
                        return page.get_by_text(f"Next: {target}", exact=True).click()
                else:
                    def act(name=name):
                        return page.locator('[data-testid="stSidebarNav"] a',
                                            has_text=name).first.click()
                await page.evaluate("() => { window.__tl.ev = []; }")
                t = await probe.timed(act)
                ev = await page.evaluate("() => window.__tl.ev")
                server = "?" if t["server_s"] is None else f"{t['server_s']:.2f} s"
                print(f"\n=== {name}: settled {t['settled_s']:.2f} s, server column {server}")
                for line in format_events(ev):
                    print(line)
            await browser.close()
    finally:
        proc.terminate()
        proc.wait()
        log.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--actions", default="Regressor,Merge,Overview,Regressor,Merge,presenter,"
                   "Next:Detection,presenter,Merge,Overview",
                   help="comma-separated: page names, 'presenter', 'Next:<page>'")
    args = p.parse_args(argv)
    asyncio.run(run([a.strip() for a in args.actions.split(",") if a.strip()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
