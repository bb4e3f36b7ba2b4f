/** How figures and times read on the page (pure functions). */

const pad = (n, width = 2) => String(n).padStart(width, '0');

/** `2026-12-01 22:57:43` in the browser's time zone; `—` for nothing. */
export const dateTime = (ms) => {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time(ms)}`;
};

/** `22:57:43.120` */
export const time = (ms) => {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
};

/** `12,345` */
export const count = (n) =>
  typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: 2 }) : '—';

/** `81.2 MiB` */
export const bytes = (n) => {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
};

/** `1h 2m`, `3m 4s`, `5.2 s`, `120 ms` */
export const duration = (ms) => {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
};

/** A metric value: integers as they are, others to 3 significant digits. */
export const metric = (v) => {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '—';
  if (Number.isInteger(v)) return count(v);
  return Math.abs(v) >= 100 ? count(Math.round(v)) : String(Number(v.toPrecision(3)));
};

/** `{a="b", c="d"}` */
export const labels = (l) =>
  l && typeof l === 'object'
    ? `{${Object.entries(l)
        .map(([k, v]) => `${k}="${v}"`)
        .join(', ')}}`
    : '{}';

/** Pretty JSON for display in a <pre> (as text). */
export const json = (v) => {
  try {
    return JSON.stringify(v, null, 2) ?? 'undefined';
  } catch (e) {
    return `(not JSON: ${e.message})`;
  }
};

export const SEVERITY_NAMES = { 1: 'info', 2: 'low', 3: 'medium', 4: 'high', 5: 'critical' };
