// Chart redraws spread over animation frames: when a tick lands, every visible chart wants to
// redraw at once; drawing them all in one frame is a visible hitch. The queue draws charts until
// a frame's budget is spent and leaves the rest for the next frames (a chart queued twice is
// drawn once, with its latest data).
const BUDGET_MS = 8;
const queue = new Map<object, () => void>();
let scheduled = false;

function flush(): void {
  scheduled = false;
  const start = performance.now();
  for (const [key, draw] of queue) {
    queue.delete(key);
    draw();
    if (performance.now() - start > BUDGET_MS) break;
  }
  if (queue.size) schedule();
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  if (typeof requestAnimationFrame === 'undefined') setTimeout(flush, 0);
  else requestAnimationFrame(flush);
}

/** Draw `draw` soon; `key` identifies the chart (a later call replaces a pending one). */
export function queueDraw(key: object, draw: () => void): void {
  queue.delete(key);
  queue.set(key, draw);
  schedule();
}

/** Forget a chart's pending draw (it is being destroyed). */
export function cancelDraw(key: object): void {
  queue.delete(key);
}

export function pendingDraws(): number {
  return queue.size;
}
