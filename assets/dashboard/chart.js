// A drain as a small chart: requests in flight and tunnels open against the time since it began, the
// x axis running to the drain's deadline (its right edge) so the eye sees how much of the delay it
// used. Drawn by uPlot on a canvas.
import { h } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';

const html = htm.bind(h);

const COLORS = { requests: '#2563eb', tunnels: '#9333ea', deadline: '#dc2626' };

/** uPlot's columns from the samples: x in seconds since the drain began. */
function columns(series) {
  return [series.map((s) => s.elapsedMs / 1000), series.map((s) => s.requestsInFlight), series.map((s) => s.tunnelsOpen)];
}

/** The x range: from the start to the deadline, or to the last sample if the drain ran past it. */
function xMax(series, timeoutSeconds) {
  const last = series.length === 0 ? 0 : series[series.length - 1].elapsedMs / 1000;
  return Math.max(timeoutSeconds, last, 1);
}

function yMax(series) {
  let m = 1;
  for (const s of series) m = Math.max(m, s.requestsInFlight, s.tunnelsOpen);
  return Math.ceil(m * 1.15);
}

/** Draws the deadline as a dashed red line at its x (drawn after the series, over the plot area). */
function deadlinePlugin(getDeadline) {
  return {
    hooks: {
      draw: [
        (u) => {
          const x = u.valToPos(getDeadline(), 'x', true);
          const { top, height } = u.bbox;
          const ctx = u.ctx;
          ctx.save();
          ctx.strokeStyle = COLORS.deadline;
          ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.lineWidth = 1.5 * devicePixelRatio;
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.restore();
        },
      ],
    },
  };
}

export function DrainChart({ series, timeoutSeconds, width = 300, height = 110, label }) {
  const box = useRef(null);
  const plot = useRef(null);
  // What the range functions read when uPlot redraws: the newest props, not those of the first render.
  const deadline = useRef(timeoutSeconds);
  deadline.current = timeoutSeconds;
  const current = useRef(series);
  current.current = series;

  useEffect(() => {
    const opts = {
      width,
      height,
      legend: { show: false },
      cursor: { show: false },
      scales: {
        x: { time: false, range: () => [0, xMax(current.current, deadline.current)] },
        y: { range: () => [0, yMax(current.current)] },
      },
      axes: [
        { size: 30, font: '10px system-ui, sans-serif', values: (u, vals) => vals.map((v) => `${v}s`), grid: { stroke: '#e5e7eb' } },
        { size: 28, font: '10px system-ui, sans-serif', grid: { stroke: '#e5e7eb' } },
      ],
      series: [
        {},
        { label: 'requests in flight', stroke: COLORS.requests, fill: 'rgba(37,99,235,0.12)', width: 2, paths: uPlot.paths.stepped({ align: 1 }) },
        { label: 'tunnels open', stroke: COLORS.tunnels, width: 2, dash: [5, 3], paths: uPlot.paths.stepped({ align: 1 }) },
      ],
      plugins: [deadlinePlugin(() => deadline.current)],
    };
    const u = new uPlot(opts, columns(series), box.current);
    plot.current = u;
    return () => {
      u.destroy();
      plot.current = null;
    };
  }, [width, height]);

  useEffect(() => {
    const u = plot.current;
    if (u === null) return;
    u.setData(columns(series), true);
  }, [series, timeoutSeconds]);

  const last = series.length === 0 ? null : series[series.length - 1];
  return html`<figure class="drain-chart" data-drain-chart=${label} data-samples=${series.length}>
    <div ref=${box}></div>
    <figcaption>
      <span class="key requests">in flight${last === null ? '' : ` ${last.requestsInFlight}`}</span>
      <span class="key tunnels">tunnels${last === null ? '' : ` ${last.tunnelsOpen}`}</span>
      <span class="key deadline">deadline ${timeoutSeconds} s</span>
    </figcaption>
  </figure>`;
}
