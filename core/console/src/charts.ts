import { svg, svgText } from './dom.ts';

export interface Bucket {
  start: string;
  [series: string]: number | string;
}

/** Grouped bar chart of time buckets; one bar per series, scaled to the tallest bar. */
export function barChart(
  title: string,
  buckets: Bucket[],
  series: Array<{ key: string; label: string }>,
): SVGElement {
  const width = 640;
  const height = 160;
  const pad = { left: 36, bottom: 20, top: 10 };
  const plotH = height - pad.bottom - pad.top;
  const max = Math.max(1, ...buckets.flatMap((b) => series.map((s) => Number(b[s.key]) || 0)));
  const slot = (width - pad.left) / Math.max(1, buckets.length);
  const bar = Math.max(1, (slot * 0.8) / series.length);
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'chart',
    role: 'img',
    'aria-label': title,
  });
  chart.appendChild(
    svg('line', { x1: pad.left, y1: pad.top + plotH, x2: width, y2: pad.top + plotH, class: 'axis-line' }),
  );
  chart.appendChild(svgText(2, pad.top + 8, String(max)));
  chart.appendChild(svgText(2, pad.top + plotH, '0'));
  buckets.forEach((b, i) => {
    series.forEach((s, j) => {
      const value = Number(b[s.key]) || 0;
      const barH = (value / max) * plotH;
      const rect = svg('rect', {
        x: pad.left + i * slot + j * bar,
        y: pad.top + plotH - barH,
        width: bar,
        height: barH,
        class: `bar bar-${s.key}`,
      });
      const tip = svg('title');
      tip.textContent = `${new Date(b.start).toISOString()} ${s.label}: ${value}`;
      rect.appendChild(tip);
      chart.appendChild(rect);
    });
  });
  const first = buckets[0];
  const last = buckets.at(-1);
  if (first)
    chart.appendChild(svgText(pad.left, height - 4, new Date(first.start).toISOString().slice(5, 16)));
  if (last)
    chart.appendChild(svgText(width - 90, height - 4, new Date(last.start).toISOString().slice(5, 16)));
  return chart;
}

export interface TimelinePoint {
  at: string;
  /** `none`: the event has no deliveries at all (held, routed nowhere or discarded). */
  outcome: 'ok' | 'failed' | 'waiting' | 'none';
  label: string;
  anchor: string;
}

/**
 * A horizontal time axis with one marker per event, coloured by what became of its SETs. The
 * markers are controls (Tab, Enter), so the chart is a group of buttons, not an image: an image's
 * children are hidden from assistive technology.
 */
export function timelineChart(points: TimelinePoint[], onPick: (anchor: string) => void): SVGElement {
  const width = 900;
  const height = 70;
  const times = points.map((p) => Date.parse(p.at));
  const min = Math.min(...times);
  const max = Math.max(...times);
  const span = Math.max(1, max - min);
  const x = (t: number) => 20 + ((t - min) / span) * (width - 40);
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'timeline-chart',
    role: 'group',
    'aria-label': 'timeline',
  });
  chart.appendChild(svg('line', { x1: 10, y1: 35, x2: width - 10, y2: 35, class: 'axis-line' }));
  points.forEach((p, i) => {
    const dot = svg('circle', {
      cx: x(times[i] ?? min),
      cy: 35,
      r: 7,
      class: `dot dot-${p.outcome}`,
      tabindex: 0,
      role: 'button',
      'aria-label': p.label,
    });
    const tip = svg('title');
    tip.textContent = p.label;
    dot.appendChild(tip);
    dot.addEventListener('click', () => onPick(p.anchor));
    // Focusable with Tab, so Enter or Space does what a click does.
    dot.addEventListener('keydown', (event) => {
      const key = (event as KeyboardEvent).key;
      if (key !== 'Enter' && key !== ' ') return;
      event.preventDefault();
      onPick(p.anchor);
    });
    chart.appendChild(dot);
  });
  if (points.length > 0) {
    chart.appendChild(svgText(10, 65, new Date(min).toISOString().replace('T', ' ').slice(0, 19)));
    chart.appendChild(svgText(width - 160, 65, new Date(max).toISOString().replace('T', ' ').slice(0, 19)));
  }
  return chart;
}
