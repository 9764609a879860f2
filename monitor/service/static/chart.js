// The skin-temperature chart: a canvas, drawn by this file alone (no library).
// The last WINDOW_S seconds of skin and plate temperature, the session's band shaded, the
// trend warning as a yellow limit line.

export const WINDOW_S = 60;
const MAX_POINTS = 2400;

export class TempChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.points = []; // [t_wall, skin, plate]
    this.band = null;
    this.trend = false;
  }

  clear() { this.points = []; }

  add(tWall, skin, plate) {
    const last = this.points[this.points.length - 1];
    if (last && tWall <= last[0]) return;
    this.points.push([tWall, skin, plate]);
    if (this.points.length > MAX_POINTS) this.points.splice(0, this.points.length - MAX_POINTS);
  }

  draw() {
    const { ctx, canvas } = this;
    const w = canvas.width, h = canvas.height, left = 44, right = 8, top = 8, bottom = 22;
    ctx.clearRect(0, 0, w, h);
    const pts = this.points;
    const tEnd = pts.length ? pts[pts.length - 1][0] : 0;
    const tStart = tEnd - WINDOW_S;
    let lo = Infinity, hi = -Infinity;
    for (const p of pts) {
      if (p[0] < tStart) continue;
      for (const v of [p[1], p[2]]) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }
    if (this.band) { lo = Math.min(lo, this.band[0]); hi = Math.max(hi, this.band[1]); }
    if (!Number.isFinite(lo)) { lo = 0; hi = 50; }
    lo = Math.floor(lo - 2); hi = Math.ceil(hi + 2);
    const x = (t) => left + ((t - tStart) / WINDOW_S) * (w - left - right);
    const y = (v) => top + (1 - (v - lo) / (hi - lo)) * (h - top - bottom);
    if (this.band) {
      ctx.fillStyle = "rgba(29,122,53,0.10)";
      ctx.fillRect(left, y(this.band[1]), w - left - right, y(this.band[0]) - y(this.band[1]));
      ctx.lineWidth = this.trend ? 4 : 2;
      ctx.strokeStyle = this.trend ? "#f2c200" : "#d00000";
      ctx.setLineDash([8, 5]);
      ctx.beginPath(); ctx.moveTo(left, y(this.band[1])); ctx.lineTo(w - right, y(this.band[1])); ctx.stroke();
      ctx.strokeStyle = "#2b5fa8"; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(left, y(this.band[0])); ctx.lineTo(w - right, y(this.band[0])); ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.fillStyle = "#333"; ctx.font = "13px system-ui, sans-serif";
    const step = hi - lo > 30 ? 10 : 5;
    for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
      ctx.fillText(`${v}`, 6, y(v) + 4);
      ctx.strokeStyle = "#eee"; ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(w - right, y(v)); ctx.stroke();
    }
    ctx.fillText(`-${WINDOW_S} s`, left, h - 5);
    ctx.fillText("now", w - right - 28, h - 5);
    this.line(pts, tStart, 2, "#2b5fa8", x, y, 2);   // plate
    this.line(pts, tStart, 1, "#111", x, y, 3);      // skin
  }

  line(pts, tStart, i, colour, x, y, width) {
    const { ctx } = this;
    ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.beginPath();
    let pen = false;
    for (const p of pts) {
      if (p[0] < tStart || p[i] === null) { pen = false; continue; }
      if (pen) ctx.lineTo(x(p[0]), y(p[i])); else ctx.moveTo(x(p[0]), y(p[i]));
      pen = true;
    }
    ctx.stroke();
  }
}
