/**
 * A self-contained SVG bar chart (no external tools): one panel per metric, a bar per
 * implementation for the median p50, a tick for the median p99 (at the axis end when beyond
 * it), and the floor as a dashed line.
 */

export interface Bar {
  label: string;
  p50: number;
  p99?: number;
  /** 'floor' | 'ours' | 'peer' — colours the bar. */
  kind: 'floor' | 'ours' | 'peer';
  note?: string;
}

export interface Panel {
  title: string;
  unit: string;
  bars: Bar[];
  /** Value of the dashed reference line (the floor's p50). */
  floor?: number;
}

const COLOURS = { floor: '#8c8c8c', ours: '#2b6cb0', peer: '#dd6b20' } as const;

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceMax(value: number): number {
  const exp = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * exp >= value) return m * exp;
  return 10 * exp;
}

function fmt(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export function renderChart(title: string, subtitle: string, panels: Panel[]): string {
  const width = 900;
  const labelW = 230;
  const valueW = 200;
  const plotW = width - labelW - valueW - 16;
  const barH = 18;
  const gap = 8;
  const parts: string[] = [];
  let y = 56;
  parts.push(`<text x="16" y="26" font-size="17" font-weight="bold">${esc(title)}</text>`);
  parts.push(`<text x="16" y="44" font-size="12" fill="#555">${esc(subtitle)}</text>`);
  for (const panel of panels) {
    y += 22;
    parts.push(`<text x="16" y="${y}" font-size="14" font-weight="bold">${esc(panel.title)}</text>`);
    y += 10;
    // Scaled to the p50s; a p99 beyond the axis is drawn at its end (its value is in the label).
    const max = niceMax(Math.max(...panel.bars.map(b => b.p50).filter(Number.isFinite), panel.floor ?? 0, 1e-9) * 2.2);
    const x = (v: number) => labelW + (Math.min(v, max) / max) * plotW;
    const top = y;
    for (const bar of panel.bars) {
      const cy = y + barH / 2;
      parts.push(`<text x="${labelW - 8}" y="${cy + 4}" font-size="12" text-anchor="end">${esc(bar.label)}</text>`);
      if (Number.isFinite(bar.p50)) {
        parts.push(
          `<rect x="${labelW}" y="${y}" width="${Math.max(1, x(bar.p50) - labelW).toFixed(1)}" height="${barH}" fill="${COLOURS[bar.kind]}"/>`,
        );
        if (bar.p99 !== undefined && Number.isFinite(bar.p99)) {
          const px = x(bar.p99);
          parts.push(`<line x1="${x(bar.p50).toFixed(1)}" x2="${px.toFixed(1)}" y1="${cy}" y2="${cy}" stroke="#222" stroke-width="1"/>`);
          if (bar.p99 > max) {
            // Beyond the axis: an arrowhead at its end; the value is in the label.
            parts.push(
              `<path d="M${px - 6},${y + 4} L${px},${cy} L${px - 6},${y + barH - 4}" fill="none" stroke="#222" stroke-width="1.5"/>`,
            );
          } else {
            parts.push(
              `<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${y + 3}" y2="${y + barH - 3}" stroke="#222" stroke-width="2"/>`,
            );
          }
        }
        const text = `${fmt(bar.p50)}${bar.p99 !== undefined && Number.isFinite(bar.p99) ? ` (p99 ${fmt(bar.p99)})` : ''} ${panel.unit}${bar.note ? ` · ${bar.note}` : ''}`;
        parts.push(`<text x="${labelW + plotW + 12}" y="${cy + 4}" font-size="11" fill="#333">${esc(text)}</text>`);
      } else {
        parts.push(`<text x="${labelW + 4}" y="${cy + 4}" font-size="11" fill="#999">skipped</text>`);
      }
      y += barH + gap;
    }
    if (panel.floor !== undefined && Number.isFinite(panel.floor)) {
      const fx = x(panel.floor).toFixed(1);
      parts.push(`<line x1="${fx}" x2="${fx}" y1="${top - 4}" y2="${y - gap + 4}" stroke="#444" stroke-dasharray="4 3"/>`);
    }
    // axis
    parts.push(`<line x1="${labelW}" x2="${labelW + plotW}" y1="${y}" y2="${y}" stroke="#999"/>`);
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4;
      const tx = labelW + (plotW * i) / 4;
      parts.push(`<line x1="${tx}" x2="${tx}" y1="${y}" y2="${y + 4}" stroke="#999"/>`);
      parts.push(`<text x="${tx}" y="${y + 16}" font-size="10" text-anchor="middle" fill="#555">${fmt(v)}</text>`);
    }
    parts.push(
      `<text x="${labelW + plotW + 26}" y="${y + 16}" font-size="10" fill="#555">${esc(panel.unit)} (p99 beyond the axis: ▸)</text>`,
    );
    y += 30;
  }
  const legendY = y + 4;
  const legend = [
    ['floor', 'floor (raw etcd calls)'],
    ['ours', 'nest-etcd-lock'],
    ['peer', 'peers'],
  ] as const;
  legend.forEach(([kind, text], i) => {
    const lx = 16 + i * 190;
    parts.push(`<rect x="${lx}" y="${legendY}" width="12" height="12" fill="${COLOURS[kind]}"/>`);
    parts.push(`<text x="${lx + 18}" y="${legendY + 10}" font-size="12">${esc(text)}</text>`);
  });
  parts.push(`<text x="${16 + 3 * 190}" y="${legendY + 10}" font-size="12">bar: median p50 · tick: median p99</text>`);
  const height = legendY + 28;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
