// The draw-a-digit page. Plain JavaScript, no build step, nothing fetched but this server's API.
"use strict";

const SIZE = 28; // MNIST images are 28x28
const $ = (id) => document.getElementById(id);

const state = {
  model: null, // name of the chosen model
  strokes: [], // [{width, points: [[x, y], ...]}]
  sample: null, // pixels of a picked MNIST test image, drawn under the strokes
  last: null, // the last request body sent, resent when the model or layer changes
  sequence: 0, // the newest request; older answers are dropped
  pending: 0, // requests in flight (tests wait for 0)
};

// ---- requests -------------------------------------------------------------------------------

async function api(path, body) {
  state.pending += 1;
  document.body.dataset.pending = state.pending;
  try {
    const response = await fetch(path, body === undefined ? {} : {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  } finally {
    state.pending -= 1;
    document.body.dataset.pending = state.pending;
  }
}

function showError(error) {
  const line = $("error");
  line.hidden = !error;
  line.textContent = error ? String(error.message || error) : "";
}

async function submit() {
  const body = currentInput();
  if (!body) return clearResults();
  state.last = body;
  const mine = ++state.sequence;
  try {
    const answer = await api("/api/infer", body);
    if (mine !== state.sequence) return;
    showError(null);
    renderAnswer(answer);
    await submitTrace(mine);
  } catch (error) {
    if (mine === state.sequence) showError(error);
  }
}

async function submitTrace(mine) {
  const layer = Number($("layer").value || 0);
  const answer = await api("/api/trace", { ...state.last, layer });
  if (mine !== state.sequence) return;
  renderTrace(answer);
}

// ---- drawing --------------------------------------------------------------------------------

const canvas = $("canvas");
const pen = canvas.getContext("2d", { willReadFrequently: true });

function paintImage(context, pixels, scale) {
  const image = context.createImageData(SIZE, SIZE);
  pixels.flat().forEach((v, i) => {
    image.data.set([v, v, v, 255], 4 * i);
  });
  const small = document.createElement("canvas");
  small.width = small.height = SIZE;
  small.getContext("2d").putImageData(image, 0, 0);
  context.imageSmoothingEnabled = false;
  context.drawImage(small, 0, 0, SIZE * scale, SIZE * scale);
}

function paintStroke(stroke) {
  pen.strokeStyle = "#fff";
  pen.fillStyle = "#fff";
  pen.lineWidth = stroke.width;
  pen.lineCap = pen.lineJoin = "round";
  const [first, ...rest] = stroke.points;
  pen.beginPath();
  if (rest.length === 0) {
    pen.arc(first[0], first[1], stroke.width / 2, 0, 2 * Math.PI);
    pen.fill();
    return;
  }
  pen.moveTo(...first);
  rest.forEach((p) => pen.lineTo(...p));
  pen.stroke();
}

function redraw() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  if (state.sample) paintImage(pen, state.sample, canvas.width / SIZE);
  state.strokes.forEach(paintStroke);
}

function point(event) {
  const box = canvas.getBoundingClientRect();
  return [
    ((event.clientX - box.left) * canvas.width) / box.width,
    ((event.clientY - box.top) * canvas.height) / box.height,
  ];
}

let drawing = null;
canvas.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  drawing = { width: Number($("pen").value), points: [point(event)] };
  paintStroke(drawing);
});
canvas.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  drawing.points.push(point(event));
  redraw();
  paintStroke(drawing);
});
function endStroke() {
  if (!drawing) return;
  state.strokes.push(drawing);
  drawing = null;
  redraw();
  submit();
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

$("undo").addEventListener("click", () => {
  if (state.strokes.length) state.strokes.pop();
  else state.sample = null;
  redraw();
  submit();
});
$("clear").addEventListener("click", () => {
  state.strokes = [];
  state.sample = null;
  document.querySelectorAll(".samples canvas").forEach((c) => c.classList.remove("chosen"));
  redraw();
  clearResults();
});

// The drawing as 28x28 grey values: the mean of each 10x10 block of the 280x280 canvas. A
// picked test image with nothing drawn over it goes as it is, already prepared like MNIST.
function currentInput() {
  const base = { model: state.model };
  if (state.sample && state.strokes.length === 0) {
    return { ...base, pixels: state.sample, center: false };
  }
  const block = canvas.width / SIZE;
  const data = pen.getImageData(0, 0, canvas.width, canvas.height).data;
  const pixels = [];
  let ink = 0;
  for (let r = 0; r < SIZE; r++) {
    const row = [];
    for (let c = 0; c < SIZE; c++) {
      let sum = 0;
      for (let y = r * block; y < (r + 1) * block; y++) {
        for (let x = c * block; x < (c + 1) * block; x++) sum += data[4 * (y * canvas.width + x)];
      }
      const value = Math.round(sum / (block * block));
      ink += value;
      row.push(value);
    }
    pixels.push(row);
  }
  return ink ? { ...base, pixels, center: true } : null;
}

// ---- results --------------------------------------------------------------------------------

function clearResults() {
  state.sequence++;
  state.last = null;
  for (const name of ["litert", "numpy", "hardware"]) $(`prediction-${name}`).textContent = "·";
  const badge = $("agreement");
  badge.className = "badge";
  badge.textContent = "draw a digit";
  delete badge.dataset.agree;
  $("cycles").textContent = "–";
  $("measured").textContent = "";
  ["logits", "layers"].forEach((id) => ($(id).textContent = ""));
  for (const id of ["centred", "input", "trace"]) {
    const c = $(id);
    c.getContext("2d").clearRect(0, 0, c.width, c.height);
  }
  $("trace-caption").textContent = "";
  showError(null);
}

// int8 value -> CSS colour: black at -128, white at 127 (the input); diverging for activations.
const grey = (v) => `rgb(${v + 128},${v + 128},${v + 128})`;
function heat(v) {
  const t = (v + 128) / 255;
  const low = [241, 244, 250];
  const high = [47, 111, 223];
  const mix = low.map((a, i) => Math.round(a + (high[i] - a) * t));
  return `rgb(${mix.join(",")})`;
}

function renderInput(input) {
  const [h, w] = input.shape;
  const c = $("input");
  const cell = Math.floor(288 / Math.max(h, w));
  c.width = w * cell;
  c.height = h * cell;
  const ctx = c.getContext("2d");
  ctx.font = `${Math.max(7, Math.floor(cell / 2.8))}px ui-monospace, monospace`;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  input.values.forEach((v, i) => {
    const x = (i % w) * cell;
    const y = Math.floor(i / w) * cell;
    ctx.fillStyle = grey(v);
    ctx.fillRect(x, y, cell, cell);
    ctx.fillStyle = v > 0 ? "#000" : "#bbb";
    ctx.fillText(String(v), x + cell / 2, y + cell / 2 + 0.5);
  });
  $("input-caption").textContent =
    `the model's int8 input: ${h}×${w} values (qnn-ref preprocess and quantize_input), ` +
    "the words the hardware reads";
}

function renderAnswer(answer) {
  const centred = $("centred").getContext("2d");
  paintImage(centred, answer.image, 4);
  renderInput(answer.input);
  for (const [name, result] of Object.entries(answer.backends)) {
    $(`prediction-${name}`).textContent = result.prediction;
  }
  const badge = $("agreement");
  badge.dataset.agree = answer.agreement;
  badge.className = `badge ${answer.agreement ? "good" : "bad"}`;
  badge.textContent = answer.agreement
    ? "✓ identical: every int8 value of every layer"
    : "✗ MISMATCH: " +
      answer.differences
        .map((d) => `${d.backend} ${d.tensor} differs from LiteRT in ${d.values} values`)
        .join("; ");
  const [rows, cols] = answer.array;
  $("array").textContent = `${rows}×${cols} systolic array`;
  $("cycles").textContent = answer.cycles;

  const hardware = answer.backends.hardware.layers;
  const logits = hardware[hardware.length - 1];
  const top = answer.backends.hardware.prediction;
  const bars = $("logits");
  bars.textContent = "";
  logits.forEach((v, digit) => {
    const bar = document.createElement("div");
    bar.className = digit === top ? "bar top" : "bar";
    bar.style.width = `${Math.max(1, ((v + 128) / 255) * 100)}%`;
    bars.append(cell("label", digit), wrap(bar), cell("value", v));
  });

  const layers = $("layers");
  layers.textContent = "";
  hardware.forEach((values, index) => {
    const block = document.createElement("div");
    block.className = "layer";
    const name = document.createElement("div");
    name.className = "name";
    const last = index === hardware.length - 1;
    name.textContent = `layer ${index}: ${values.length} units${last ? " (logits)" : ""}`;
    const cells = document.createElement("div");
    cells.className = "cells";
    values.forEach((v) => {
      const span = document.createElement("span");
      span.textContent = v;
      span.style.background = heat(v);
      span.style.color = v > 30 ? "#fff" : "#1d2330";
      cells.append(span);
    });
    block.append(name, cells);
    layers.append(block);
  });
  const select = $("layer");
  if (select.options.length !== hardware.length) {
    select.textContent = "";
    hardware.forEach((values, index) => select.add(new Option(`${index}`, `${index}`)));
  }
}

function cell(kind, text) {
  const span = document.createElement("span");
  span.className = kind;
  span.textContent = text;
  return span;
}
function wrap(child) {
  const div = document.createElement("div");
  div.append(child);
  return div;
}

// One layer on the array, cycle by cycle: a band showing which output tile the array computes
// (one operand word enters per cycle), and one row per array column lit when that column's
// results drain.
function renderTrace(trace) {
  const [rows, cols] = trace.array;
  const n = trace.tiles.length;
  const step = Math.max(2, Math.min(8, Math.floor(1100 / n)));
  const left = 64;
  const band = 22;
  const row = 8;
  const top = 18;
  const c = $("trace");
  c.width = left + n * step + 10;
  c.height = top + band + 8 + cols * row + 26;
  const ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  const hues = [212, 28, 140, 280, 350, 90];
  const colour = (tile, light) => `hsl(${hues[tile % hues.length]}, 65%, ${light}%)`;
  ctx.fillStyle = "#5f6b7a";
  ctx.fillText("computing", 2, top + band / 2);
  ctx.fillText("draining", 2, top + band + 8 + (cols * row) / 2);
  const tileIds = new Map();
  const firsts = [];
  trace.tiles.forEach((tile, i) => {
    if (!tile) return;
    const key = `${tile[0]},${tile[1]}`;
    if (!tileIds.has(key)) {
      tileIds.set(key, tileIds.size);
      firsts.push([i, tile]);
    }
    ctx.fillStyle = colour(tileIds.get(key), 72);
    ctx.fillRect(left + i * step, top, step, band);
  });
  ctx.fillStyle = "#1d2330";
  firsts.forEach(([i, tile]) => ctx.fillText(`tile m${tile[0]} n${tile[1]}`, left + i * step + 4, top + band / 2));
  const y0 = top + band + 8;
  ctx.strokeStyle = "#eef1f5";
  for (let j = 0; j <= cols; j++) {
    ctx.beginPath();
    ctx.moveTo(left, y0 + j * row);
    ctx.lineTo(left + n * step, y0 + j * row);
    ctx.stroke();
  }
  trace.drains.forEach((drain, i) => {
    if (!drain) return;
    const column = drain[1] % cols;
    const tile = tileIds.get(`${drain[0]},${Math.floor(drain[1] / cols)}`) ?? 0;
    ctx.fillStyle = colour(tile, 45);
    ctx.fillRect(left + i * step, y0 + column * row, step, row - 1);
  });
  ctx.fillStyle = "#5f6b7a";
  ctx.fillText("col 0", left - 34, y0 + row / 2);
  ctx.fillText(`col ${cols - 1}`, left - 40, y0 + (cols - 0.5) * row);
  const axis = y0 + cols * row + 14;
  ctx.textAlign = "center";
  const every = Math.ceil(n / 12 / 10) * 10;
  for (let i = 0; i < n; i += every) {
    ctx.fillText(String(trace.first_cycle + i), left + i * step, axis);
  }
  ctx.textAlign = "left";
  ctx.fillText("cycle", 2, axis);
  const tiles = new Set(trace.tiles.filter(Boolean).map((t) => `${t[0]},${t[1]}`)).size;
  $("trace-caption").textContent =
    `layer ${trace.layer}: ${tiles} output tile${tiles === 1 ? "" : "s"} of ${rows}×${cols} ` +
    `from cycle ${trace.first_cycle} to ${trace.first_cycle + n - 1} after start; each tile takes ` +
    "one operand word per cycle, then its results leave the array one column per cycle while " +
    "the next tile computes. Read from the simulation's own trace of this image.";
  $("measured").textContent =
    `(start to done in the trace: ${trace.measured_cycles} cycles)`;
}

// ---- start ----------------------------------------------------------------------------------

async function start() {
  const [models, samples] = await Promise.all([api("/api/models"), api("/api/samples")]);
  const select = $("model");
  for (const model of models.models) {
    const [h, w] = model.input_shape;
    const shape = model.layers.map((l) => l.units).join("-");
    select.add(new Option(`${model.name} (${h}×${w} in, ${h * w}-${shape})`, model.name));
  }
  state.model = select.value;
  select.addEventListener("change", () => {
    state.model = select.value;
    $("layer").textContent = "";
    submit();
  });
  $("layer").addEventListener("change", () => {
    if (state.last) submitTrace(state.sequence).catch(showError);
  });
  const row = $("samples");
  for (const sample of samples.samples) {
    const thumb = document.createElement("canvas");
    thumb.width = thumb.height = SIZE * 2;
    thumb.title = `MNIST test image ${sample.index} (a ${sample.label})`;
    thumb.dataset.testid = `sample-${sample.index}`;
    paintImage(thumb.getContext("2d"), sample.pixels, 2);
    thumb.addEventListener("click", () => {
      document.querySelectorAll(".samples canvas").forEach((t) => t.classList.remove("chosen"));
      thumb.classList.add("chosen");
      state.sample = sample.pixels;
      state.strokes = [];
      redraw();
      submit();
    });
    row.append(thumb);
  }
  redraw();
  document.body.dataset.ready = "true";
}

start().catch(showError);
