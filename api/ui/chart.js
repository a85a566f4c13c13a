import { amount } from './words.js';
// The balance over time, drawn as SVG from /account/history's points.

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Points of /account/history's data: {"Y-m-d H:i:s": balance} in time order. */
export function historyPoints(data) {
  return Object.entries(data || {})
    .map(([at, v]) => ({ t: Date.parse(`${at.replace(' ', 'T')}Z`), v: Number(v) }))
    .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v))
    .sort((a, b) => a.t - b.t);
}

function day(t) {
  return new Date(t).toISOString().slice(0, 10);
}

/**
 * An SVG chart of `points` ({t, v}); `limits` ({min, max} numbers) are drawn
 * as dashed lines when they fit near the data. `now` extends the last balance
 * to the present.
 */
export function balanceChart(points, limits, now, label) {
  const W = 640, H = 220, L = 52, R = 12, T = 12, B = 28;
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': label });
  svg.appendChild(el('title', {}, label));
  if (!points.length) {
    svg.appendChild(el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'No completed transactions yet'));
    return svg;
  }
  const pts = points.slice();
  const end = Math.max(now || 0, pts[pts.length - 1].t);
  if (end > pts[pts.length - 1].t) pts.push({ t: end, v: pts[pts.length - 1].v });
  const t0 = pts[0].t, t1 = Math.max(end, t0 + 1);
  let lo = Math.min(0, ...pts.map((p) => p.v)), hi = Math.max(0, ...pts.map((p) => p.v));
  const span = hi - lo || 1;
  const near = (x) => x >= lo - span && x <= hi + span;
  const drawMin = limits && Number.isFinite(limits.min) && near(limits.min);
  const drawMax = limits && Number.isFinite(limits.max) && near(limits.max);
  if (drawMin) lo = Math.min(lo, limits.min);
  if (drawMax) hi = Math.max(hi, limits.max);
  const pad = (hi - lo || 1) * 0.06;
  lo -= pad; hi += pad;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  svg.appendChild(el('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }));
  svg.appendChild(el('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }));
  svg.appendChild(el('line', { class: 'zero', x1: L, y1: y(0), x2: W - R, y2: y(0) }));
  svg.appendChild(el('text', { x: L - 6, y: y(0) + 4, 'text-anchor': 'end' }, '0'));
  for (const [on, v, name] of [[drawMin, limits && limits.min, 'min'], [drawMax, limits && limits.max, 'max']]) {
    if (!on) continue;
    svg.appendChild(el('line', { class: 'limit', x1: L, y1: y(v), x2: W - R, y2: y(v) }));
    svg.appendChild(el('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, `${name} ${amount(v)}`));
  }
  // A step line: a balance holds until the next change.
  let d = `M${x(pts[0].t).toFixed(1)},${y(pts[0].v).toFixed(1)}`;
  for (let i = 1; i < pts.length; i += 1) {
    d += ` H${x(pts[i].t).toFixed(1)} V${y(pts[i].v).toFixed(1)}`;
  }
  const area = `${d} V${y(0).toFixed(1)} H${x(pts[0].t).toFixed(1)} Z`;
  svg.appendChild(el('path', { class: 'area', d: area }));
  svg.appendChild(el('path', { class: 'line', d, 'data-points': pts.length }));
  svg.appendChild(el('text', { x: L, y: H - 8 }, day(t0)));
  svg.appendChild(el('text', { x: W - R, y: H - 8, 'text-anchor': 'end' }, day(t1)));
  return svg;
}
