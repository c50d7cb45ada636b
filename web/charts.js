// A small time-series chart on <canvas>: bars (calls per minute) or a line with gaps (MOS),
// over a fixed window, with y ticks, time labels and optional guide lines.

export class Chart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{kind?: 'bars'|'line', min?: number, max?: number|null, color?: string,
   *          guides?: {value: number, color: string}[], format?: (v: number) => string}} opts
   */
  constructor(canvas, opts = {}) {
    this.canvas = canvas;
    this.kind = opts.kind || 'bars';
    this.min = opts.min ?? 0;
    this.max = opts.max ?? null;
    this.color = opts.color || '#1d5fd1';
    this.guides = opts.guides || [];
    this.format = opts.format || ((v) => String(Math.round(v)));
    this.points = [];
    this.from = 0;
    this.to = 1;
    this.step = 60000;
    if (typeof ResizeObserver !== 'undefined') {
      new ResizeObserver(() => this.draw()).observe(canvas);
    }
  }

  /** `points`: [{t: ms, v: number|null}], one per `step` ms, inside [from, to). */
  set(points, from, to, step) {
    this.points = points;
    this.from = from;
    this.to = to;
    this.step = step;
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (w === 0 || h === 0) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const pad = { l: 34, r: 8, t: 8, b: 20 };
    const pw = w - pad.l - pad.r;
    const ph = h - pad.t - pad.b;
    const values = this.points.map((p) => p.v).filter((v) => v !== null && v !== undefined);
    let max = this.max ?? Math.max(4, ...values);
    if (this.max === null) max = niceCeil(max);
    const min = this.min;
    const y = (v) => pad.t + ph - ((v - min) / (max - min || 1)) * ph;
    const x = (t) => pad.l + ((t - this.from) / (this.to - this.from || 1)) * pw;

    g.font = '11px system-ui, sans-serif';
    g.fillStyle = '#5b6675';
    g.strokeStyle = '#e3e7ec';
    g.lineWidth = 1;
    g.textBaseline = 'middle';
    g.textAlign = 'right';
    const ticks = 4;
    for (let i = 0; i <= ticks; i++) {
      const v = min + ((max - min) * i) / ticks;
      const yy = Math.round(y(v)) + 0.5;
      g.beginPath();
      g.moveTo(pad.l, yy);
      g.lineTo(pad.l + pw, yy);
      g.stroke();
      g.fillText(this.format(v), pad.l - 4, yy);
    }
    g.textAlign = 'center';
    g.textBaseline = 'top';
    const quarter = 15 * 60000;
    for (let t = Math.ceil(this.from / quarter) * quarter; t < this.to; t += quarter) {
      const d = new Date(t);
      const label = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
      g.fillText(label, x(t), pad.t + ph + 4);
    }
    for (const guide of this.guides) {
      if (guide.value < min || guide.value > max) continue;
      g.save();
      g.strokeStyle = guide.color;
      g.setLineDash([4, 4]);
      g.beginPath();
      g.moveTo(pad.l, y(guide.value));
      g.lineTo(pad.l + pw, y(guide.value));
      g.stroke();
      g.restore();
    }

    g.fillStyle = this.color;
    g.strokeStyle = this.color;
    if (this.kind === 'bars') {
      const bw = Math.max(1, (pw * this.step) / (this.to - this.from) - 1);
      for (const p of this.points) {
        if (!p.v) continue;
        const top = y(Math.min(p.v, max));
        g.fillRect(x(p.t), top, bw, pad.t + ph - top);
      }
    } else {
      g.lineWidth = 2;
      let open = false;
      g.beginPath();
      for (const p of this.points) {
        if (p.v === null || p.v === undefined) {
          open = false;
          continue;
        }
        const px = x(p.t + this.step / 2);
        const py = y(Math.max(min, Math.min(max, p.v)));
        if (open) g.lineTo(px, py);
        else g.moveTo(px, py);
        open = true;
      }
      g.stroke();
      for (const p of this.points) {
        if (p.v === null || p.v === undefined) continue;
        g.beginPath();
        g.arc(x(p.t + this.step / 2), y(Math.max(min, Math.min(max, p.v))), 2.5, 0, Math.PI * 2);
        g.fill();
      }
    }
  }
}

/** 7 → 8, 13 → 15, 47 → 50, 130 → 150. */
function niceCeil(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) {
    if (m * p >= v) return m * p;
  }
  return 10 * p;
}
