// On-device scoring: the service's own .tflite file run in the page by LiteRT.js (WASM, or WebGPU
// for float32 files where the browser has it); the photos never leave the device.
//
// The model file comes from GET /v1/model/file (the file the service runs, nothing else), the
// runtime from /vendor/ (installed by the web-runtime command; no CDN). The photos go through
// letterbox.js, the port of neipalette_tf/core/preprocessing.load_image, so the model sees the
// pixels Python would give it; the graph holds the normalisation, as in every other runtime.
// Inputs `top` and `bottom` are [1, S, S, 3] RGB (uint8 in the int8 files, float32 0..255 in the
// float32 / float16 ones); outputs `harmony` (p) and, for people-trained models, `rating`.

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

// The compiled model: WebGPU for float32 files when the browser has a WebGPU adapter (LiteRT.js has
// no fp16 on WebGPU, and the int8 files' quantised ops are CPU kernels), WASM (XNNPACK) otherwise.
export async function compile(info, preferred) {
  const key = info.file + "|" + (preferred || "");
  if (compiled.has(key)) return compiled.get(key);
  const rt = await loadRuntime();
  const bytes = new Uint8Array(await (await fetch(info.file, { cache: "force-cache" })).arrayBuffer());
  let accelerator = preferred || "wasm";
  if (!preferred && info.format === "tflite" && rt.lib.isWebGPUSupported() && navigator.gpu
      && await navigator.gpu.requestAdapter().catch(() => null)) accelerator = "webgpu";
  let model;
  try {
    model = await rt.lib.loadAndCompile(bytes, { accelerator, cpuOptions: { numThreads: threadCount(rt) } });
  } catch (e) {
    if (accelerator === "wasm") throw e;
    accelerator = "wasm";
    model = await rt.lib.loadAndCompile(bytes, { accelerator, cpuOptions: { numThreads: threadCount(rt) } });
  }
  const inputs = {};
  for (const d of model.getInputDetails()) inputs[d.name] = d;
  for (const name of ["top", "bottom"]) {
    if (!inputs[name]) throw new Error(`${info.name}: no input '${name}' (inputs: ${Object.keys(inputs).join(", ")})`);
  }
  const entry = { model, accelerator, inputs, threads: accelerator === "wasm" ? threadCount(rt) : null,
                  fullyAccelerated: model.isFullyAccelerated, bytes: bytes.length };
  compiled.set(key, entry);
  return entry;
}

function tensorOf(rt, detail, pixels, size) {
  const data = detail.dtype === "uint8" ? pixels : Float32Array.from(pixels);
  return new rt.lib.Tensor(data, [1, size, size, 3]);
}

async function valuesOf(tensor) {
  const local = tensor.accelerator === "wasm" ? tensor : await tensor.moveTo("wasm");
  const values = Array.from(local.toTypedArray());
  local.delete();
  return values;
}

// The model on already letterboxed pixels (Uint8Array size*size*3 each) -> {p, rating, ms}.
export async function run(entry, top, bottom, size) {
  const rt = runtime;
  const feeds = { top: tensorOf(rt, entry.inputs.top, top, size), bottom: tensorOf(rt, entry.inputs.bottom, bottom, size) };
  const t0 = performance.now();
  let out;
  try {
    out = await entry.model.run(feeds);
  } finally {
    feeds.top.delete(); feeds.bottom.delete();
  }
  const result = { p: null, rating: null };
  for (const [name, tensor] of Object.entries(out)) {
    const values = await valuesOf(tensor);
    if (name === "harmony") result.p = values[0];
    if (name === "rating") result.rating = values[0];
  }
  result.ms = performance.now() - t0;
  if (result.p === null) throw new Error("the model gave no 'harmony' output");
  return result;
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
  return { p: r.p, rating: r.rating, label: r.p >= info.threshold ? "harmonious" : "clashing",
           backend: backendName(entry), file: info.name,
           ms: { load: t1 - t0, preprocess: t2 - t1, model: r.ms, pair: t3 - t1 } };
}

export function backendName(entry) {
  if (entry.accelerator === "webgpu") return "LiteRT.js WebGPU" + (entry.fullyAccelerated === false ? " (some ops on WASM)" : "");
  return `LiteRT.js WASM (XNNPACK, ${entry.threads} thread${entry.threads === 1 ? "" : "s"})`;
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
