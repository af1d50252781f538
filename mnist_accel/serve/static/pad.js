// The drawing pad. Strokes come in as Pointer Events (mouse, pen, touch) and are drawn white on black, as
// MNIST's digits are. While you draw, the canvas goes to POST /api/predict as a PNG, one request at a time
// (when an answer arrives, the newest drawing goes next), and the server's answer is shown: the 28x28
// image the model saw (prepared on the server, exactly as `python -m mnist_accel.predict` prepares a
// picture), the probability of every class as a bar, and the most probable label, large.
//
// <body data-version> counts changes to the drawing and <body data-shown> is the version whose answer is
// on screen, so a script (or a test) knows when what it sees belongs to what was drawn.
"use strict";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const seen = document.getElementById("seen").getContext("2d");
const label = document.getElementById("label");
const confidence = document.getElementById("confidence");
const bars = document.getElementById("bars");
const status = document.getElementById("status");
const PEN = pad.width / 14; // the drawn digit fills most of the pad, its strokes about a tenth of its height
const TITLES = { mnist: "Draw a digit", "fashion-mnist": "Draw a piece of clothing", kmnist: "Draw a hiragana character" };

let classes = []; // the model's labels, in output order: the answer's probabilities are keyed by them
let version = 0; // changes to the drawing so far
let cleared = 0; // the version the last Clear made: answers for older drawings are dropped
let sent = 0; // the newest version sent to the server
let busy = false; // a request is on its way
let inked = false; // something is drawn since the last Clear
const pointers = new Map(); // pointerId -> last point, for each pointer drawing now

function blank() {
  ink.fillStyle = "#000"; // opaque: a transparent pad would read as white paper
  ink.fillRect(0, 0, pad.width, pad.height);
  ink.fillStyle = ink.strokeStyle = "#fff";
  ink.lineWidth = PEN;
  ink.lineCap = ink.lineJoin = "round";
}

function point(event) {
  const box = pad.getBoundingClientRect(); // the pad may be shown smaller or larger than its pixels
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

function dot([x, y]) {
  ink.beginPath();
  ink.arc(x, y, PEN / 2, 0, 2 * Math.PI);
  ink.fill();
}

function line(from, to) {
  ink.beginPath();
  ink.moveTo(from[0], from[1]);
  ink.lineTo(to[0], to[1]);
  ink.stroke();
}

function changed() {
  version += 1;
  inked = true;
  document.body.dataset.version = version;
  predict();
}

pad.addEventListener("pointerdown", (event) => {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  const p = point(event);
  pointers.set(event.pointerId, p);
  dot(p);
  changed();
});

pad.addEventListener("pointermove", (event) => {
  let last = pointers.get(event.pointerId);
  if (!last) return;
  const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const e of coalesced.length ? coalesced : [event]) { // every sample the device gave, not one a frame
    const p = point(e);
    line(last, p);
    last = p;
  }
  pointers.set(event.pointerId, last);
  changed();
});

function lift(event) {
  if (pointers.delete(event.pointerId)) changed();
}
pad.addEventListener("pointerup", lift);
pad.addEventListener("pointercancel", lift);

async function predict() {
  if (busy || sent === version || !inked) return;
  busy = true;
  const v = version;
  sent = v;
  try {
    const png = await new Promise((resolve) => pad.toBlob(resolve, "image/png"));
    const response = await fetch("/api/predict", { method: "POST", headers: { "Content-Type": "image/png" }, body: png });
    const answer = await response.json();
    if (v > cleared) {
      if (response.ok) show(answer);
      else status.textContent = answer.error || `the server answered ${response.status}`;
      document.body.dataset.shown = v;
    }
  } catch (err) {
    status.textContent = `the server did not answer (${err.message}): is it still running?`;
    document.body.dataset.shown = v;
  } finally {
    busy = false;
    if (sent !== version) predict();
  }
}

function show(answer) {
  status.textContent = "";
  label.textContent = answer.name;
  label.classList.toggle("long", answer.name.length > 2); // a class name such as "Ankle boot"
  confidence.textContent = `probability ${(100 * answer.probability).toFixed(1)}%`;
  const pixels = seen.createImageData(28, 28);
  answer.image.flat().forEach((value, i) => {
    const level = Math.round(255 * value);
    pixels.data.set([level, level, level, 255], 4 * i);
  });
  seen.putImageData(pixels, 0, 0);
  classes.forEach((name, i) => setBar(i, answer.probabilities[String(name)] || 0, i === answer.index));
}

function setBar(i, probability, top) {
  const row = bars.children[i];
  row.classList.toggle("top", top);
  row.querySelector(".fill").style.width = `${(100 * probability).toFixed(1)}%`;
  row.querySelector(".pct").textContent = `${(100 * probability).toFixed(1)}%`;
}

function clear() {
  blank();
  version += 1;
  cleared = sent = version;
  inked = false;
  document.body.dataset.version = document.body.dataset.shown = version;
  label.innerHTML = "&nbsp;";
  label.classList.remove("long");
  confidence.textContent = "draw to see what the model reads";
  status.textContent = "";
  seen.fillStyle = "#000";
  seen.fillRect(0, 0, 28, 28);
  classes.forEach((_, i) => setBar(i, 0, false));
}

document.getElementById("clear").addEventListener("click", clear);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") clear();
});

async function start() {
  blank();
  try {
    const response = await fetch("/api/info");
    const info = await response.json();
    if (!response.ok) throw new Error(info.error);
    classes = info.classes;
    for (const name of info.names) {
      const row = document.createElement("li");
      row.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span><span class="pct"></span>';
      row.querySelector(".name").textContent = name;
      bars.appendChild(row);
    }
    document.getElementById("title").textContent = TITLES[info.dataset] || "Draw a picture";
    document.getElementById("model").textContent =
      `${info.model}: ${info.layers.join("-")}, ${info.activation}, trained on ${info.dataset}`;
    clear();
  } catch (err) {
    status.textContent = `could not read the model's description (${err.message}): is the server running?`;
  }
}

start();
