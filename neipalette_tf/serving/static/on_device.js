// On-device scoring: the service's own .tflite files run in the page by LiteRT.js (WASM, or WebGPU
// for float32 files where the browser has it); the photos never leave the device.
//
// The files are those the service scores with (GET /v1/model's on_device.files): the embedding graph
// (`attention`, or `encoder` in older exports) on each garment, then the `head` on the two
// embeddings, as neipalette_tf.explanation.explain_images does for the service's verdict; each
// served with its batch fixed at 1 (LiteRT.js cannot resize inputs). The runtime comes from /vendor/
// (installed by the web-runtime command; no CDN). The photos go through letterbox.js, the port of
// neipalette_tf/core/preprocessing.load_image, so the graphs see the pixels Python would give them;
// normalisation is inside the graphs. Image inputs are [1, S, S, 3] RGB (uint8 in the int8 files,
// float32 0..255 otherwise); the embedding's last three values are the garment's main colour
// (OKLab, scaled by OKLAB_SCALE of neipalette_tf/colour/space.py), the graph's `palette` output its raw
// palette (read by `readPalette`, the port of neipalette_tf/colour/palette.read_palette: the colour
// shown is its dominant entry, as the service's); the head gives `harmony` (p) and, for
// people-trained models, `rating`.

import { loadImage } from "./letterbox.js";

const VENDOR = "/vendor/";
let runtime = null;  // {lib, threads}
const compiled = new Map();  // file URL -> {model, accelerator, inputs}

async function loadRuntime() {
  if (runtime) return runtime;
  const lib = await import(VENDOR + "litert.js");
  const threads = self.crossOriginIsolated === true && (navigator.hardwareConcurrency || 1) > 1
    && await lib.supportsFeature("relaxedSimd") && await lib.supportsFeature("threads");
  try {
    await lib.loadLiteRt(VENDOR + "wasm/", threads ? { threads: true } : {});
    runtime = { lib, threads };
  } catch (e) {
    if (!threads) throw e;
    lib.unloadLiteRt?.();
    await lib.loadLiteRt(VENDOR + "wasm/");  // no threads: the single-threaded build
    runtime = { lib, threads: false };
  }
  return runtime;
}

function threadCount(rt) {
  return rt.threads ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
}

const OKLAB_SCALE = [1.0, 4.0, 4.0];

async function compileOne(rt, url, accelerator) {
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const options = { accelerator, cpuOptions: { numThreads: threadCount(rt) } };
  const model = await rt.lib.loadAndCompile(bytes, options);
  const inputs = {};
  for (const d of model.getInputDetails()) inputs[d.name] = d;
  return { model, inputs, bytes: bytes.length };
}

// The compiled graphs: WebGPU for float32 files when the browser has a WebGPU adapter (LiteRT.js has
// no fp16 on WebGPU, and the int8 files' quantised ops are CPU kernels), WASM (XNNPACK) otherwise.
export async function compile(info, preferred) {
  const key = JSON.stringify(info.files) + "|" + (preferred || "");
  if (compiled.has(key)) return compiled.get(key);
  const rt = await loadRuntime();
  let accelerator = preferred || "wasm";
  if (!preferred && info.format === "tflite" && rt.lib.isWebGPUSupported() && navigator.gpu
      && await navigator.gpu.requestAdapter().catch(() => null)) accelerator = "webgpu";
  const embedPart = info.files.attention ? "attention" : "encoder";
  let graphs, gpuNote = null;
  const load = (acc) => Promise.all([compileOne(rt, info.files[embedPart].url, acc), compileOne(rt, info.files.head.url, acc)]);
  try {
    graphs = await load(accelerator);
  } catch (e) {
    if (accelerator === "wasm") throw e;
    gpuNote = "WebGPU failed to compile these graphs";
    accelerator = "wasm";
    graphs = await load(accelerator);
  }
  if (accelerator === "webgpu" && !graphs.every((g) => g.model.isFullyAccelerated)) {
    // Ops the WebGPU delegate lacks (in these graphs: EXPAND_DIMS, STRIDED_SLICE with shrink_axis_mask)
    // would run on WASM beside it, which LiteRT.js supports only in its JSPI build (no threads); the
    // builds loaded here stop at run time ("Asyncify is not defined"). So such a graph runs on WASM.
    for (const g of graphs) g.model.delete();
    gpuNote = "WebGPU lacks some of these graphs' ops";
    accelerator = "wasm";
    graphs = await load(accelerator);
  }
  const [embed, head] = graphs;
  if (!embed.inputs.image) throw new Error(`${info.files[embedPart].name}: no input 'image'`);
  for (const name of ["top_embedding", "bottom_embedding"]) {
    if (!head.inputs[name]) throw new Error(`${info.files.head.name}: no input '${name}'`);
  }
  const entry = { embed, head, accelerator, threads: accelerator === "wasm" ? threadCount(rt) : null,
                  gpuNote,
                  fullyAccelerated: embed.model.isFullyAccelerated && head.model.isFullyAccelerated,
                  files: `${info.files[embedPart].name} + ${info.files.head.name}` };
  compiled.set(key, entry);
  return entry;
}

async function valuesOf(tensor) {
  const local = tensor.accelerator === "wasm" ? tensor : await tensor.moveTo("wasm");
  const values = local.toTypedArray().slice();
  local.delete();
  if (local !== tensor) tensor.delete();
  return values;
}

async function runGraph(graph, feeds) {
  let out;
  try {
    out = await graph.model.run(feeds);
  } finally {
    for (const t of Object.values(feeds)) t.delete();
  }
  const values = {};
  for (const [name, tensor] of Object.entries(out)) values[name] = await valuesOf(tensor);
  return values;
}

async function embed(entry, pixels, size) {
  const rt = runtime, d = entry.embed.inputs.image;
  const data = d.dtype === "uint8" ? pixels : Float32Array.from(pixels);
  const out = await runGraph(entry.embed, { image: new rt.lib.Tensor(data, [1, size, size, 3]) });
  if (!out.embedding) throw new Error("the embedding graph gave no 'embedding' output");
  return out;
}

const oklch = ([L, a, b]) => [L, Math.hypot(a, b), (Math.atan2(b, a) * 180 / Math.PI + 360) % 360];

// The main colour in an embedding (its last three values), as OKLCH [L, C, h°].
export function colourOf(embedding) {
  const n = embedding.length;
  return oklch([embedding[n - 3] / OKLAB_SCALE[0], embedding[n - 2] / OKLAB_SCALE[1], embedding[n - 1] / OKLAB_SCALE[2]]);
}

// The port of neipalette_tf/colour/palette.read_palette (its defaults; OKLab distances, lightness weight 1):
// a garment's raw palette (the attention graph's `palette` output, K x [L, a, b, share]) -> [{lab, share}],
// largest share first. Entries closer than MERGE merge; of three, one on the segment between the
// other two (within BLEND) is their edges' blend; entries under MIN_SHARE go.
export const PALETTE = { merge: 0.07, blend: 0.03, minShare: 0.06 };
const dist = (p, q) => Math.hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]);

function splitBlend(entries) {
  for (let i = 0; i < 3; i++) {
    const [j, k] = [0, 1, 2].filter((n) => n !== i);
    const a = entries[j].lab, b = entries[k].lab, c = entries[i].lab;
    const ab = [0, 1, 2].map((n) => b[n] - a[n]);
    const t = [0, 1, 2].reduce((s, n) => s + (c[n] - a[n]) * ab[n], 0)
      / Math.max(ab.reduce((s, v) => s + v * v, 0), 1e-12);
    if (t > 0.15 && t < 0.85 && dist([0, 1, 2].map((n) => a[n] + t * ab[n]), c) < PALETTE.blend) {
      const s = entries[i].share;
      return [{ lab: a, share: entries[j].share + (1 - t) * s }, { lab: b, share: entries[k].share + t * s }]
        .sort((x, y) => y.share - x.share);
    }
  }
  return entries;
}

export function readPalette(raw) {
  let entries = [];
  for (let i = 0; i + 3 < raw.length; i += 4) entries.push({ lab: [raw[i], raw[i + 1], raw[i + 2]], share: Math.max(raw[i + 3], 0) });
  while (entries.length > 1) {
    let best = null;  // the closest pair, the first in (i, j) order on ties (Python's min over tuples)
    for (let i = 0; i < entries.length; i++) {
      for (let j = i + 1; j < entries.length; j++) {
        const d = dist(entries[i].lab, entries[j].lab);
        if (best === null || d < best[0]) best = [d, i, j];
      }
    }
    const [d, i, j] = best;
    if (d >= PALETTE.merge) break;
    const p = entries[i], q = entries[j], total = p.share + q.share;
    const lab = p.lab.map((v, n) => total > 0 ? (v * p.share + q.lab[n] * q.share) / total : (v + q.lab[n]) / 2);
    entries = entries.filter((_, n) => n !== i && n !== j).concat([{ lab, share: total }]);
  }
  entries.sort((x, y) => y.share - x.share);  // stable, as Python's
  if (entries.length === 3 && PALETTE.blend > 0) entries = splitBlend(entries);
  let kept = entries.filter((e) => e.share >= PALETTE.minShare);
  if (!kept.length) kept = entries.slice(0, 1);
  const total = kept.reduce((s, e) => s + e.share, 0) || 1;
  return kept.map((e) => ({ lab: e.lab, share: e.share / total }));
}

// A garment's colour as the service shows it (neipalette_tf.explanation.explain.shown_colours): its
// palette's dominant colour where the graph gives a palette, else the embedding's main colour; OKLCH.
export function shownColour(out) {
  return out.palette ? oklch(readPalette(out.palette)[0].lab) : colourOf(out.embedding);
}

// The graphs on already letterboxed pixels (Uint8Array size*size*3 each) -> {p, rating, colours, ms}.
export async function run(entry, top, bottom, size) {
  const rt = runtime;
  const t0 = performance.now();
  const gTop = await embed(entry, top, size), gBottom = await embed(entry, bottom, size);
  const eTop = gTop.embedding, eBottom = gBottom.embedding;
  const dims = [1, eTop.length];
  const out = await runGraph(entry.head, { top_embedding: new rt.lib.Tensor(eTop, dims),
                                           bottom_embedding: new rt.lib.Tensor(eBottom, dims) });
  if (!out.harmony) throw new Error("the head gave no 'harmony' output");
  const palettes = { top: gTop.palette ? readPalette(gTop.palette) : null,
                     bottom: gBottom.palette ? readPalette(gBottom.palette) : null };
  return { p: out.harmony[0], rating: out.rating ? out.rating[0] : null,
           colours: { top: shownColour(gTop), bottom: shownColour(gBottom) }, palettes, ms: performance.now() - t0 };
}

// Score two photos (File / Blob) in the page. `info`: /v1/model's on_device block.
export async function score(info, topFile, bottomFile) {
  const t0 = performance.now();
  const entry = await compile(info);
  const t1 = performance.now();
  const [top, bottom] = await Promise.all([loadImage(topFile, info.image_size), loadImage(bottomFile, info.image_size)]);
  const t2 = performance.now();
  const r = await run(entry, top, bottom, info.image_size);
  const t3 = performance.now();
  return { p: r.p, rating: r.rating, colours: r.colours, palettes: r.palettes, label: r.p >= info.threshold ? "harmonious" : "clashing",
           backend: backendName(entry), files: entry.files,
           ms: { load: t1 - t0, preprocess: t2 - t1, model: r.ms, pair: t3 - t1 } };
}

export function backendName(entry) {
  if (entry.accelerator === "webgpu") return "LiteRT.js WebGPU" + (entry.fullyAccelerated === false ? " (some ops on WASM)" : "");
  return `LiteRT.js WASM (XNNPACK, ${entry.threads} thread${entry.threads === 1 ? "" : "s"})` +
    (entry.gpuNote ? `; ${entry.gpuNote}` : "");
}

// For tests and benchmarks: the letterboxed pixels the model gets, and repeated timings.
export { loadImage };
export async function bench(info, topFile, bottomFile, repeats = 20, accelerator = null) {
  const entry = await compile(info, accelerator);
  const pairs = [], models = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    const [top, bottom] = await Promise.all([loadImage(topFile, info.image_size), loadImage(bottomFile, info.image_size)]);
    const r = await run(entry, top, bottom, info.image_size);
    pairs.push(performance.now() - t0);
    models.push(r.ms);
  }
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  return { backend: backendName(entry), repeats, pair_ms_median: median(pairs), model_ms_median: median(models),
           pair_ms_first: pairs[0] };
}
