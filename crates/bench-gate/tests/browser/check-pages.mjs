// Loads bench-gate's HTML pages in headless Chromium as a person would open them (file://),
// and reports what the page did: console messages and script errors, requests that left the
// file (there must be none), the cards and their charts as laid out, the first screen, and the
// filter box at work. Screenshots go to the output directory. tests/browser.rs judges the JSON
// this prints; this script only observes.
//
// Usage: node check-pages.mjs SPEC.json   (SPEC: {chromium, outDir, pages: [{name, file, filter?}]})

import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const profile = mkdtempSync(join(tmpdir(), 'bench-gate-chromium-'));
const viewport = { width: 1280, height: 900 };
const context = await chromium.launchPersistentContext(profile, {
  executablePath: spec.chromium,
  headless: true,
  viewport,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
    '--disable-sync',
  ],
});

const results = [];
try {
  for (const p of spec.pages) {
    const page = await context.newPage();
    const messages = [];
    const errors = [];
    const external = [];
    page.on('console', (m) => messages.push({ type: m.type(), text: m.text() }));
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('request', (r) => {
      const url = r.url();
      if (!url.startsWith('file:') && !url.startsWith('data:')) external.push(url);
    });
    await page.goto(pathToFileURL(p.file).href, { waitUntil: 'load' });
    const layout = await page.evaluate((vh) => {
      const box = (el) => {
        if (!el) return null;
        const r = el.getBoundingClientRect();
        return { top: r.top, bottom: r.bottom, width: r.width, height: r.height };
      };
      const cards = Array.from(document.querySelectorAll('article.card'));
      return {
        title: document.title,
        banner: document.getElementById('verdict')?.innerText ?? null,
        cards: cards.map((c) => ({
          id: c.dataset.id,
          verdict: c.dataset.verdict ?? null,
          charts: Array.from(c.querySelectorAll('svg')).map((s) => ({
            ...box(s),
            marks: s.querySelectorAll('circle, polygon, rect, polyline').length,
          })),
        })),
        // The first flagged card's explanation and charts, as far down as they reach.
        firstFlagged: (() => {
          const card = document.querySelector('.cards.flagged article.card');
          if (!card) return null;
          const plots = card.querySelector('.plots');
          return { id: card.dataset.id, why: box(card.querySelector('.why')), plots: box(plots) };
        })(),
        viewportHeight: vh,
      };
    }, viewport.height);
    await page.screenshot({ path: join(spec.outDir, `${p.name}.png`) });
    await page.screenshot({ path: join(spec.outDir, `${p.name}-full.png`), fullPage: true });
    let filter = null;
    if (p.filter !== undefined) {
      await page.fill('#filter', p.filter);
      filter = await page.evaluate(() => ({
        visible: Array.from(document.querySelectorAll('article.card'))
          .filter((c) => c.offsetParent !== null)
          .map((c) => c.dataset.id),
        shown: document.getElementById('shown').innerText,
      }));
      await page.screenshot({ path: join(spec.outDir, `${p.name}-filtered.png`) });
    }
    results.push({ name: p.name, messages, errors, external, layout, filter });
    await page.close();
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(results));
