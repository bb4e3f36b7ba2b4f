/** An inline SVG sparkline of `[at, value]` points (oldest first); pure apart from building the SVG. */
import { svg } from './dom.js';

/** The polyline's points for a width × height box (y grows downward), values scaled min..max. */
export const sparkPoints = (points, width, height, pad = 2) => {
  if (points.length === 0) return '';
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x) => (x1 === x0 ? width / 2 : pad + ((x - x0) / (x1 - x0)) * (width - 2 * pad));
  const sy = (y) => (y1 === y0 ? height / 2 : height - pad - ((y - y0) / (y1 - y0)) * (height - 2 * pad));
  return points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
};

export const sparkline = (points, { width = 120, height = 28, label = '' } = {}) => {
  const clean = points.filter((p) => Array.isArray(p) && Number.isFinite(p[0]) && Number.isFinite(p[1]));
  const line = sparkPoints(clean, width, height);
  const last = line === '' ? undefined : line.split(' ').at(-1).split(',');
  return svg(
    'svg',
    {
      class: 'sparkline',
      testid: 'sparkline',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-label': label,
    },
    svg('title', {}, `${label}: ${clean.length} points`),
    svg('polyline', { points: line, fill: 'none' }),
    last ? svg('circle', { r: 2, cx: last[0], cy: last[1] }) : null,
  );
};
