/**
 * A flame graph as a self-contained SVG file: each frame a box as wide as its share of the
 * samples, callers below callees; hover shows the frame and its count, a click zooms into a
 * frame, and a search box highlights frames by name. No external script or font.
 *
 * @module
 */
import type { FoldedStack } from "./folded.ts";

interface Node {
  name: string;
  count: number;
  children: Map<string, Node>;
}

const WIDTH = 1200;
const ROW = 16;

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Warm colours, stable per name. */
function colour(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return `rgb(${205 + (h % 50)},${(h >> 8) % 180 + 40},${(h >> 16) % 55})`;
}

const SCRIPT = `
const svg = document.documentElement;
const boxes = [...document.querySelectorAll("g.f")];
function zoom(g) {
  const x = +g.dataset.x, w = +g.dataset.w, y = +g.dataset.y;
  for (const b of boxes) {
    const bx = +b.dataset.x, bw = +b.dataset.w, by = +b.dataset.y;
    const inside = bx >= x && bx + bw <= x + w + 1e-9 && by <= y;
    const above = by > y && bx >= x && bx + bw <= x + w + 1e-9;
    const show = inside || above || (by < y && bx <= x && bx + bw >= x + w - 1e-9);
    b.style.display = show ? "" : "none";
    const nx = by < y ? 0 : (bx - x) / w * W, nw = by < y ? W : bw / w * W;
    const r = b.querySelector("rect"), t = b.querySelector("text");
    r.setAttribute("x", nx); r.setAttribute("width", Math.max(nw - 0.5, 0));
    t.setAttribute("x", nx + 3);
    t.textContent = nw > 40 ? b.dataset.n.slice(0, Math.floor(nw / 7)) : "";
  }
}
for (const b of boxes) b.addEventListener("click", () => zoom(b));
document.getElementById("reset").addEventListener("click", () => zoom(boxes[0]));
document.getElementById("search").addEventListener("click", () => {
  const q = prompt("Search frames (a regular expression)");
  for (const b of boxes) {
    const hit = q && new RegExp(q).test(b.dataset.n);
    b.querySelector("rect").setAttribute("fill", hit ? "rgb(230,0,230)" : b.dataset.c);
  }
});
`;

/** The SVG text of a flame graph of `stacks`, titled `title`. */
export function flameGraphSvg(stacks: readonly FoldedStack[], title: string): string {
  const root: Node = { name: "all", count: 0, children: new Map() };
  for (const s of stacks) {
    root.count += s.count;
    let node = root;
    for (const f of s.frames) {
      let child = node.children.get(f);
      if (!child) node.children.set(f, child = { name: f, count: 0, children: new Map() });
      child.count += s.count;
      node = child;
    }
  }
  const boxes: Array<{ name: string; count: number; x: number; w: number; level: number }> = [];
  let depth = 0;
  const place = (node: Node, x: number, level: number) => {
    depth = Math.max(depth, level);
    const w = root.count ? node.count / root.count * WIDTH : WIDTH;
    boxes.push({ name: node.name, count: node.count, x, w, level });
    let cx = x;
    for (const child of [...node.children.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      place(child, cx, level + 1);
      cx += root.count ? child.count / root.count * WIDTH : 0;
    }
  };
  place(root, 0, 0);
  const height = (depth + 1) * ROW + 50;
  const body = boxes.map((b) => {
    const y = height - 10 - (b.level + 1) * ROW;
    const pct = root.count ? (100 * b.count / root.count).toFixed(2) : "0";
    const name = escapeXml(b.name);
    const c = colour(b.name);
    const label = b.w > 40 ? escapeXml(b.name.slice(0, Math.floor(b.w / 7))) : "";
    return `<g class="f" data-n="${name}" data-c="${c}" data-x="${b.x}" data-w="${b.w}" ` +
      `data-y="${b.level}"><title>${name} (${b.count} samples, ${pct}%)</title>` +
      `<rect x="${b.x}" y="${y}" width="${Math.max(b.w - 0.5, 0)}" height="${ROW - 1}" ` +
      `fill="${c}" rx="2"/><text x="${b.x + 3}" y="${y + ROW - 4}">${label}</text></g>`;
  });
  return `<?xml version="1.0" standalone="no"?>\n` +
    `<svg version="1.1" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ` +
    `xmlns="http://www.w3.org/2000/svg">\n` +
    `<style>text { font: 12px monospace; pointer-events: none } g.f { cursor: pointer }</style>\n` +
    `<text x="${WIDTH / 2}" y="20" text-anchor="middle">${escapeXml(title)}</text>\n` +
    `<text id="reset" x="10" y="20" style="pointer-events: all; cursor: pointer">Reset zoom</text>\n` +
    `<text id="search" x="${
      WIDTH - 80
    }" y="20" style="pointer-events: all; cursor: pointer">Search</text>\n` +
    body.join("\n") +
    `\n<script type="text/ecmascript"><![CDATA[const W = ${WIDTH};${SCRIPT}]]></script>\n</svg>\n`;
}
