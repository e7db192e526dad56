import { escapeMermaidLabel } from '../core/escape.ts';

/**
 * Mermaid xycharts for job summaries. GitHub draws them with Mermaid's `default` theme in light
 * mode and `dark` in dark mode; the default series colour there is #ECECFF, invisible on white. So
 * every chart names its own palette: mid-tones with at least 3:1 contrast on both white and
 * #0d1117 (WCAG's figure for graphics), a fixed small height instead of Mermaid's 500 px, and an
 * axis scaled to the data.
 */
export const CHART_PALETTE = ['#2f81f7', '#e5534b', '#bf8700'] as const;

export interface ChartSeries {
  kind: 'line' | 'bar';
  values: number[];
}

export interface XyChart {
  title: string;
  /** Categories, one per value; labels beyond `maxLabels` are thinned by taking every k-th. */
  categories?: string[];
  /** Or a numeric x axis (values spread evenly from 0 to `max`), when the points are evenly spaced in time. */
  xRange?: { title: string; max: number };
  yTitle: string;
  yMin?: number;
  yMax: number;
  series: ChartSeries[];
  height?: number;
}

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten, a little above `value`. */
export function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const padded = value * 1.15;
  const power = 10 ** Math.floor(Math.log10(padded));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= padded) return step * power;
  return 10 * power;
}

function number(v: number): string {
  return Number.isInteger(v) ? String(v) : Number(v.toPrecision(4)).toString();
}

export function renderXyChart(chart: XyChart): string {
  const palette = CHART_PALETTE.slice(0, Math.max(1, chart.series.length)).join(', ');
  const lines = [
    '```mermaid',
    '---',
    'config:',
    '  xyChart:',
    '    width: 720',
    `    height: ${chart.height ?? 260}`,
    '  themeVariables:',
    '    xyChart:',
    `      plotColorPalette: "${palette}"`,
    '---',
    'xychart-beta',
    `  title "${escapeMermaidLabel(chart.title)}"`,
  ];
  if (chart.xRange)
    lines.push(`  x-axis "${escapeMermaidLabel(chart.xRange.title)}" 0 --> ${number(chart.xRange.max)}`);
  else
    lines.push(`  x-axis [${(chart.categories ?? []).map((c) => `"${escapeMermaidLabel(c)}"`).join(', ')}]`);
  lines.push(
    `  y-axis "${escapeMermaidLabel(chart.yTitle)}" ${number(chart.yMin ?? 0)} --> ${number(chart.yMax)}`,
  );
  for (const s of chart.series) lines.push(`  ${s.kind} [${s.values.map(number).join(', ')}]`);
  lines.push('```');
  return lines.join('\n');
}
