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
// (OKLab, scaled by OKLAB_SCALE of neipalette_tf/colour/space.py); the head gives `harmony` (p) and,
// for people-trained models, `rating`.

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
  return out.embedding;
}

// The main colour in an embedding (its last three values), as OKLCH [L, C, h°].
export function colourOf(embedding) {
  const n = embedding.length;
  const L = embedding[n - 3] / OKLAB_SCALE[0], a = embedding[n - 2] / OKLAB_SCALE[1], b = embedding[n - 1] / OKLAB_SCALE[2];
  const h = (Math.atan2(b, a) * 180 / Math.PI + 360) % 360;
  return [L, Math.hypot(a, b), h];
}

// The graphs on already letterboxed pixels (Uint8Array size*size*3 each) -> {p, rating, colours, ms}.
export async function run(entry, top, bottom, size) {
  const rt = runtime;
  const t0 = performance.now();
  const eTop = await embed(entry, top, size), eBottom = await embed(entry, bottom, size);
  const dims = [1, eTop.length];
  const out = await runGraph(entry.head, { top_embedding: new rt.lib.Tensor(eTop, dims),
                                           bottom_embedding: new rt.lib.Tensor(eBottom, dims) });
  if (!out.harmony) throw new Error("the head gave no 'harmony' output");
  return { p: out.harmony[0], rating: out.rating ? out.rating[0] : null,
           colours: { top: colourOf(eTop), bottom: colourOf(eBottom) }, ms: performance.now() - t0 };
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
  return { p: r.p, rating: r.rating, colours: r.colours, label: r.p >= info.threshold ? "harmonious" : "clashing",
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
