import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Marked } from 'marked';

/**
 * Job summaries rendered as github.com renders them: GitHub-flavoured Markdown (marked, GFM), every
 * ```mermaid block drawn by Mermaid 11 with the theme GitHub picks for the reader's colour mode, in
 * Debian's headless Chromium. Tests read back what failed to parse or render; people get screenshots.
 */

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export type Theme = 'light' | 'dark';

export interface RenderReport {
  /** Mermaid diagrams that failed to parse or render, with Mermaid's message. */
  mermaidErrors: string[];
  /** How many Mermaid diagrams were drawn. */
  diagrams: number;
  /** Height of the rendered page, in CSS pixels. */
  height: number;
  /** Each drawn diagram's height, in CSS pixels, in document order. */
  diagramHeights: number[];
  /** Colours the charts draw their data with (the strokes and fills inside each xychart's plot). */
  plotColors: string[];
  /** The page's visible text (details opened), to assert on what a reader sees. */
  text: string;
  /**
   * The start of each code block wider than the page, which GitHub scrolls sideways instead of
   * wrapping: a reader sees its lines cut at the right edge.
   */
  clipped: string[];
  /**
   * The run page's annotations (tooling/rehearse/summary-page.ts draws GitHub's Annotations box),
   * each with its text and where it sits on the page, in CSS pixels from the top.
   */
  annotations: { text: string; top: number; bottom: number }[];
}

const PALETTE = {
  light: {
    bg: '#ffffff',
    fg: '#1f2328',
    muted: '#59636e',
    border: '#d1d9e0',
    code: '#eff1f3',
    link: '#0969da',
  },
  dark: {
    bg: '#0d1117',
    fg: '#f0f6fc',
    muted: '#9198a1',
    border: '#3d444d',
    code: '#262c36',
    link: '#4493f8',
  },
} as const;

function css(theme: Theme): string {
  const p = PALETTE[theme];
  return `
body { margin: 0; background: ${p.bg}; color: ${p.fg};
  font: 14px/1.5 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 24px 32px; word-wrap: break-word; }
a { color: ${p.link}; text-decoration: none; }
h1, h2 { border-bottom: 1px solid ${p.border}; padding-bottom: .3em; }
h3 { font-size: 1.25em; } h4 { font-size: 1em; }
table { border-collapse: collapse; display: block; overflow: auto; margin: 0 0 16px; }
th, td { border: 1px solid ${p.border}; padding: 6px 13px; }
th { font-weight: 600; }
code { background: ${p.code}; border-radius: 6px; padding: .2em .4em; font: 85% ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { background: ${p.code}; border-radius: 6px; padding: 16px; overflow: auto; }
pre code { background: none; padding: 0; }
blockquote { margin: 0 0 16px; padding: 0 1em; color: ${p.muted}; border-left: .25em solid ${p.border}; }
details { margin: 0 0 16px; } summary { cursor: pointer; }
.mermaid-box { margin: 0 0 16px; }
.gh-annotations { border: 1px solid ${p.border}; border-radius: 6px; margin: 0 0 24px; }
.gh-annotations-head { padding: 12px 16px; }
.gh-annotation { display: flex; gap: 12px; padding: 12px 16px; border-top: 1px solid ${p.border}; }
.gh-annotation-job { flex: 0 0 180px; font-weight: 600; }
.gh-annotation-message { flex: 1; font-size: 13px; overflow-wrap: anywhere; }
`;
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The HTML of a summary page: the Markdown as GitHub turns it into HTML, Mermaid blocks left for the page to draw. */
function summaryHtml(markdown: string, options: { theme: Theme; openDetails?: boolean }): string {
  const marked = new Marked({ gfm: true, breaks: false });
  marked.use({
    renderer: {
      code({ text, lang }) {
        if (lang === 'mermaid')
          return `<div class="mermaid-box"><pre class="mermaid-src">${escapeHtml(text)}</pre></div>\n`;
        return false;
      },
    },
  });
  let body = marked.parse(markdown, { async: false });
  if (options.openDetails) body = body.replace(/<details>/g, '<details open>');
  const mermaid = pathToFileURL(require.resolve('mermaid/dist/mermaid.min.js')).href;
  // GitHub draws each diagram with Mermaid's "default" theme in light mode and "dark" in dark mode.
  return `<!doctype html><html><head><meta charset="utf-8"><style>${css(options.theme)}</style>
<script src="${mermaid}"></script></head><body><main>${body}</main>
<script>
(async () => {
  const report = { mermaidErrors: [], diagrams: 0, diagramHeights: [], plotColors: [] };
  mermaid.initialize({ startOnLoad: false, theme: ${JSON.stringify(options.theme === 'dark' ? 'dark' : 'default')}, securityLevel: 'strict' });
  let n = 0;
  for (const box of document.querySelectorAll('.mermaid-box')) {
    const source = box.querySelector('pre').textContent;
    try {
      const { svg } = await mermaid.render('diagram' + n++, source);
      box.innerHTML = svg;
      report.diagrams++;
      report.diagramHeights.push(Math.round(box.querySelector('svg').getBoundingClientRect().height));
      for (const el of box.querySelectorAll('g.plot path, g.plot rect')) {
        const color = el.getAttribute('stroke') !== 'none' && el.getAttribute('stroke') || el.getAttribute('fill');
        if (color && color !== 'none' && !report.plotColors.includes(color)) report.plotColors.push(color);
      }
    } catch (error) {
      report.mermaidErrors.push(String(error && error.message || error).slice(0, 500) + ' in: ' + source.slice(0, 200));
      box.innerHTML = '<pre style="color:#cf222e">Unable to render rich display: ' + String(error && error.message || error).replace(/</g, '&lt;') + '</pre>';
    }
  }
  for (const d of document.querySelectorAll('.error-icon, [id^="ddiagram"]')) d.remove();
  report.height = Math.ceil(document.documentElement.scrollHeight);
  report.text = document.querySelector('main').innerText;
  report.annotations = [...document.querySelectorAll('.gh-annotation')].map((a) => {
    const box = a.getBoundingClientRect();
    return { text: a.innerText, top: Math.round(box.top + window.scrollY), bottom: Math.round(box.bottom + window.scrollY) };
  });
  report.clipped = [...document.querySelectorAll('main pre')]
    .filter((pre) => pre.scrollWidth > pre.clientWidth + 1)
    .map((pre) => pre.textContent.slice(0, 120));
  const out = document.createElement('script');
  out.type = 'application/json';
  out.id = 'render-report';
  out.textContent = JSON.stringify(report);
  document.body.appendChild(out);
})();
</script></body></html>`;
}

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--hide-scrollbars',
  '--allow-file-access-from-files',
  '--virtual-time-budget=20000',
];

async function chromium(args: string[], page: string, width: number, height: number): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
  try {
    const { stdout } = await run(
      CHROMIUM,
      [
        ...FLAGS,
        `--user-data-dir=${profile}`,
        `--window-size=${width},${height}`,
        ...args,
        pathToFileURL(page).href,
      ],
      { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
    );
    return stdout;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

function withPage<T>(html: string, body: (page: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'summary-page-'));
  const page = join(dir, 'summary.html');
  writeFileSync(page, html);
  return body(page).finally(() => rmSync(dir, { recursive: true, force: true }));
}

/** Renders the summary in Chromium and reports what Mermaid could not draw and what a reader sees. */
export async function renderSummary(
  markdown: string,
  options: { theme?: Theme; width?: number } = {},
): Promise<RenderReport> {
  const html = summaryHtml(markdown, { theme: options.theme ?? 'light', openDetails: true });
  return withPage(html, async (page) => {
    const dom = await chromium(['--dump-dom'], page, options.width ?? 1100, 900);
    const match = /<script type="application\/json" id="render-report">([\s\S]*?)<\/script>/.exec(dom);
    if (!match)
      throw new Error('Chromium finished without the render report: the page script did not complete');
    return JSON.parse(match[1]!) as RenderReport;
  });
}

/** A full-page PNG of the summary as a reader in `theme` sees it, `<details>` opened when asked. */
export async function screenshotSummary(
  markdown: string,
  file: string,
  options: { theme?: Theme; width?: number; openDetails?: boolean; maxHeight?: number } = {},
): Promise<RenderReport> {
  const theme = options.theme ?? 'light';
  const width = options.width ?? 1100;
  const report = await renderSummary(markdown, { theme, width });
  const html = summaryHtml(markdown, { theme, openDetails: options.openDetails ?? false });
  const height = options.openDetails
    ? report.height
    : await withPage(html, async (page) => {
        const dom = await chromium(['--dump-dom'], page, width, 900);
        const m = /id="render-report">([\s\S]*?)<\/script>/.exec(dom);
        return m ? (JSON.parse(m[1]!) as RenderReport).height : 2000;
      });
  mkdirSync(dirname(file), { recursive: true });
  await withPage(html, (page) =>
    chromium(
      [`--screenshot=${file}`],
      page,
      width,
      Math.min(Math.max(height, 300), options.maxHeight ?? 16_000),
    ),
  );
  return report;
}
