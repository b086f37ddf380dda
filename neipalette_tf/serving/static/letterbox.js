// The page's copy of neipalette_tf/core/preprocessing.load_image: a photo -> RGB uint8 [size, size, 3].
//
// On-device scoring must feed the model the pixels Python would, so this file ports Pillow's
// arithmetic, not an approximation of it (Pillow 13: libImaging/Reduce.c, libImaging/Resample.c,
// Image.resize with reducing_gap, Image._get_safe_box):
//   - JPEG: Pillow decodes large JPEGs at 1/2..1/8 scale (`draft`, size x 4); here the browser
//     decodes at full size and the same factor is a box reduction (Reduce.c's rounding);
//   - images above 16 MP: box-reduced to about 3x the model size first (`_reduce_large`);
//   - letterbox: scale the longer side to `size` (Python's round, half to even), Image.resize
//     BILINEAR with reducing_gap=3 (an integer box reduction, then the separable bilinear
//     convolution with Pillow's fixed-point coefficients and pass order), pad with the mean
//     colour of the resized image's border (numpy's round, half to even), paste centred.
// The browser decodes the file (EXIF orientation applied, colour profiles ignored as Pillow
// does, alpha composited on white). Left to the decoders: a JPEG decoded at reduced scale by
// libjpeg's DCT scaling equals the box-reduced full decode only up to small rounding, and the
// two JPEG decoders' chroma upsampling may differ by a step; PNG, WebP (lossless), BMP and GIF
// give the same pixels as Python (tests/serving/test_serve_browser_on_device.py checks it).

const PRECISION_BITS = 32 - 8 - 2;
const REDUCE_ABOVE_PIXELS = 16_000_000;
const REDUCING_GAP = 3.0;

function roundHalfEven(x) {
  const r = Math.round(x);
  return (Math.abs(x % 1) === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

// Reduce.c: each output pixel is the mean of its (up to) xs x ys block, ((sum + n/2) * m) >> 24.
function multiplier(n) {
  return Math.trunc(Math.fround(4294967296 / Math.fround(256 * n)));
}

export function reduce(img, xs, ys) {
  const { w, h, data } = img;
  const ow = Math.ceil(w / xs), oh = Math.ceil(h / ys);
  const out = new Uint8Array(ow * oh * 3);
  for (let oy = 0; oy < oh; oy++) {
    const y0 = oy * ys, y1 = Math.min(h, y0 + ys);
    for (let ox = 0; ox < ow; ox++) {
      const x0 = ox * xs, x1 = Math.min(w, x0 + xs);
      const n = (x1 - x0) * (y1 - y0), m = multiplier(n), amend = n >> 1;
      let s0 = amend, s1 = amend, s2 = amend;
      for (let y = y0; y < y1; y++) {
        let i = (y * w + x0) * 3;
        for (let x = x0; x < x1; x++, i += 3) { s0 += data[i]; s1 += data[i + 1]; s2 += data[i + 2]; }
      }
      const o = (oy * ow + ox) * 3;
      out[o] = Math.floor(s0 * m / 16777216);
      out[o + 1] = Math.floor(s1 * m / 16777216);
      out[o + 2] = Math.floor(s2 * m / 16777216);
    }
  }
  return { w: ow, h: oh, data: out };
}

// Resample.c precompute_coeffs (bilinear, support 1) + normalize_coeffs_8bpc.
function coefficients(inSize, in0, in1, outSize) {
  in0 = Math.fround(in0); in1 = Math.fround(in1);
  const scale = Math.fround(in1 - in0) / outSize;
  const filterscale = Math.max(scale, 1.0);
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2), kk = new Int32Array(outSize * ksize);
  const inv = 1.0 / filterscale, w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      let t = (x + xmin - center + 0.5) * inv;
      if (t < 0) t = -t;
      w[x] = t < 1.0 ? 1.0 - t : 0.0;
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0.0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * (1 << PRECISION_BITS)) : Math.trunc(0.5 + k * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin; bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(ss) {
  const v = Math.floor(ss / (1 << PRECISION_BITS));
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function horizontal(img, outW, rows, offset, c) {
  const out = new Uint8Array(outW * rows * 3), { w, data } = img;
  for (let yy = 0; yy < rows; yy++) {
    const line = (yy + offset) * w * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = c.bounds[xx * 2], xmax = c.bounds[xx * 2 + 1], k = xx * c.ksize;
      let s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
      for (let x = 0; x < xmax; x++) {
        const i = line + (x + xmin) * 3, kx = c.kk[k + x];
        s0 += data[i] * kx; s1 += data[i + 1] * kx; s2 += data[i + 2] * kx;
      }
      const o = (yy * outW + xx) * 3;
      out[o] = clip8(s0); out[o + 1] = clip8(s1); out[o + 2] = clip8(s2);
    }
  }
  return { w: outW, h: rows, data: out };
}

function vertical(img, outH, c) {
  const { w, data } = img, out = new Uint8Array(w * outH * 3);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = c.bounds[yy * 2], ymax = c.bounds[yy * 2 + 1], k = yy * c.ksize;
    for (let xx = 0; xx < w; xx++) {
      let s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
      for (let y = 0; y < ymax; y++) {
        const i = ((y + ymin) * w + xx) * 3, ky = c.kk[k + y];
        s0 += data[i] * ky; s1 += data[i + 1] * ky; s2 += data[i + 2] * ky;
      }
      const o = (yy * w + xx) * 3;
      out[o] = clip8(s0); out[o + 1] = clip8(s1); out[o + 2] = clip8(s2);
    }
  }
  return { w, h: outH, data: out };
}

// ImagingResampleInner: bilinear from `box` (floats, in img's pixels) to outW x outH, in Pillow's pass order.
function resample(img, outW, outH, box) {
  const needH = outW !== img.w || box[0] !== 0 || Math.fround(box[2]) !== outW;
  const needV = outH !== img.h || box[1] !== 0 || Math.fround(box[3]) !== outH;
  const horizontalFirst = !((img.h - outH) > 0 && (img.h - outH) > (img.w - outW) * 2);
  let cv = null, ch = null, first = 0, last = img.h;
  if ((needH && horizontalFirst) || needV) cv = coefficients(img.h, box[1], box[3], outH);
  if (needH) {
    if (horizontalFirst) {
      first = cv.bounds[0];
      last = cv.bounds[outH * 2 - 2] + cv.bounds[outH * 2 - 1];
      for (let i = 0; i < outH; i++) cv.bounds[i * 2] -= first;
    }
    ch = coefficients(img.w, box[0], box[2], outW);
  }
  if (horizontalFirst) {
    if (needH) img = horizontal(img, outW, last - first, first, ch);
    if (needV) img = vertical(img, outH, cv);
  } else {
    if (needV) img = vertical(img, outH, cv);
    if (needH) img = horizontal(img, outW, outH, 0, ch);
  }
  return img;
}

// Image.resize(size, BILINEAR, reducing_gap=3.0) of an RGB image.
export function resize(img, outW, outH) {
  if (img.w === outW && img.h === outH) return img;
  let box = [0, 0, img.w, img.h];
  const fx = Math.trunc(img.w / outW / REDUCING_GAP) || 1, fy = Math.trunc(img.h / outH / REDUCING_GAP) || 1;
  if (fx > 1 || fy > 1) {
    // _get_safe_box of the whole image is the whole image (bilinear support 0.5 beyond each side, clamped)
    const w = img.w, h = img.h;
    img = reduce(img, fx, fy);
    box = [0, 0, w / fx, h / fy];
  }
  return resample(img, outW, outH, box);
}

export function letterbox(img, size) {
  const scale = size / Math.max(img.w, img.h);
  const newW = Math.max(1, roundHalfEven(img.w * scale)), newH = Math.max(1, roundHalfEven(img.h * scale));
  const r = resize(img, newW, newH);
  // border: rows 0 and -1, columns 0 and -1 (corners twice), the mean rounded half to even
  const sum = [0, 0, 0];
  const add = (x, y) => { const i = (y * newW + x) * 3; sum[0] += r.data[i]; sum[1] += r.data[i + 1]; sum[2] += r.data[i + 2]; };
  for (let x = 0; x < newW; x++) { add(x, 0); add(x, newH - 1); }
  for (let y = 0; y < newH; y++) { add(0, y); add(newW - 1, y); }
  const n = 2 * (newW + newH), fill = sum.map((s) => roundHalfEven(s / n));
  const out = new Uint8Array(size * size * 3);
  for (let i = 0; i < size * size; i++) { out[i * 3] = fill[0]; out[i * 3 + 1] = fill[1]; out[i * 3 + 2] = fill[2]; }
  const ox = (size - newW) >> 1, oy = (size - newH) >> 1;
  for (let y = 0; y < newH; y++) out.set(r.data.subarray(y * newW * 3, (y + 1) * newW * 3), ((y + oy) * size + ox) * 3);
  return out;
}

// JpegImageFile.draft("RGB", (4 size, 4 size)): the DCT scale Pillow would decode at (1, 2, 4 or 8).
export function jpegDraftFactor(w, h, size) {
  const scale = Math.min(Math.floor(w / (size * 4)), Math.floor(h / (size * 4)));
  return [8, 4, 2, 1].find((a) => scale >= a) || 1;
}

// `_reduce_large`: above 16 MP, a box reduction to about 3x the model size before anything else.
export function reduceLarge(img, size) {
  if (img.w * img.h <= REDUCE_ABOVE_PIXELS) return img;
  const factor = Math.trunc(Math.max(img.w, img.h) / size / 3.0);
  return factor < 2 ? img : reduce(img, factor, factor);
}

function isJpeg(bytes) {
  return bytes.length > 2 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

// The decoded RGB pixels of a File / Blob (EXIF orientation applied, alpha composited on white).
export async function decode(blob) {
  const head = new Uint8Array(await blob.slice(0, 3).arrayBuffer());
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none",
                                             premultiplyAlpha: "none" });
  } catch (e) {
    throw new Error(`${blob.name || "image"}: not an image this browser can decode`);
  }
  const w = bitmap.width, h = bitmap.height;
  const canvas = typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(w, h)
    : Object.assign(document.createElement("canvas"), { width: w, height: h });
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, w, h);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, w, h).data, data = new Uint8Array(w * h * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) { data[j] = rgba[i]; data[j + 1] = rgba[i + 1]; data[j + 2] = rgba[i + 2]; }
  return { w, h, data, jpeg: isJpeg(head) };
}

// load_image(file, size) -> Uint8Array of size * size * 3 RGB values (row-major, HWC).
export async function loadImage(blob, size) {
  let img = await decode(blob);
  if (img.jpeg) {
    const a = jpegDraftFactor(img.w, img.h, size);
    if (a > 1) img = reduce(img, a, a);
  }
  return letterbox(reduceLarge(img, size), size);
}
