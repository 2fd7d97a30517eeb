// The page of `nnscratch serve`: draw on the pad, and the network's answer follows.
//
// Drawing uses pointer events (mouse, pen and touch alike) with pointer capture, so a stroke
// that leaves the pad keeps drawing, and `touch-action: none` on the pad, so a finger draws
// instead of scrolling. Positions are mapped from CSS pixels to the canvas's 280x280 pixels,
// so the pad may be shown at any size.
//
// After every stroke, and at most every THROTTLE_MS while drawing, the drawing is sent as a PNG
// to POST api/predict, SENT_SIZE pixels a side: its strokes redrawn with a brush in proportion
// to the drawing (sentBrush), so that a digit drawn small reaches the network with strokes as
// thin, relative to its size, as one drawn large. Each request gets a sequence number, and an
// answer is shown only if it is newer than the one on screen: a slow older answer never
// overwrites a newer one, and answers still on their way when the pad is cleared are dropped.
//
// The page loads nothing but this script, its style sheet and the JSON API.
"use strict";

(() => {
  const THROTTLE_MS = 150;
  const PROMPT = "draw a digit";
  // MNIST digits fit a 20-pixel box in a 28-pixel field with strokes about 2 pixels wide; a
  // digit drawn across most of the pad gets strokes of the same proportion.
  const BRUSH_FRACTION = 2.2 / 28;
  // The picture sent: half the pad's 280 pixels a side is ample for a digit that ends up 20
  // pixels tall, and a quarter of the pixels for the server to decode and preprocess.
  const SENT_SIZE = 140;
  // The brush of what is sent, as a share of the drawing's extent (the longer side of the box
  // around its strokes' centre lines): MNIST's strokes are about 2.6 px wide on a digit whose
  // longer side is 20 px, so a brush b on centre lines of extent E wants b = 0.13 (E + b), that
  // is b = 0.15 E. Never wider than the pad's brush (a digit drawn large is sent as drawn) nor
  // thinner than MIN_SENT_BRUSH pad pixels (2 px once scaled to SENT_SIZE).
  const SENT_BRUSH_SHARE = 0.15;
  const MIN_SENT_BRUSH = 4;
  // Heat map colours, dark to bright (the "inferno" colour map, sampled).
  const HEAT = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];

  const pad = document.getElementById("pad");
  const ink = pad.getContext("2d");
  const prediction = document.getElementById("prediction");
  const bars = document.getElementById("bars");
  const status = document.getElementById("status");
  const seen = document.getElementById("seen");
  const hidden = document.getElementById("hidden");
  const brush = pad.width * BRUSH_FRACTION;
  const outbox = document.createElement("canvas");
  outbox.width = outbox.height = SENT_SIZE;
  const outboxInk = outbox.getContext("2d");

  const strokes = []; // each stroke is a list of [x, y] points in canvas pixels
  let stroke = null; // the stroke being drawn
  let pointerId = null; // the pointer drawing it
  let sent = 0; // sequence number of the latest request
  let shown = 0; // sequence number of the answer on screen (or of the clear that blanked it)
  let pending = 0; // requests on their way
  let lastSentAt = -Infinity;
  let trailing = null; // timer that sends the last moves of a stroke

  // -------------------------------------------------------------------------------------------
  // Drawing

  function position(event) {
    // clientLeft/clientTop skip the border; clientWidth/Height are the drawn area in CSS pixels.
    const box = pad.getBoundingClientRect();
    return [
      (event.clientX - box.left - pad.clientLeft) * (pad.width / pad.clientWidth),
      (event.clientY - box.top - pad.clientTop) * (pad.height / pad.clientHeight),
    ];
  }

  function paper(context, width) {
    // White paper, and a round black brush `width` pad pixels wide (in context's own units).
    context.fillStyle = "#fff";
    context.fillRect(0, 0, pad.width, pad.height);
    context.strokeStyle = context.fillStyle = "#000";
    context.lineWidth = width;
    context.lineCap = "round";
    context.lineJoin = "round";
  }

  function dot([x, y], context = ink) {
    context.beginPath();
    context.arc(x, y, context.lineWidth / 2, 0, 2 * Math.PI);
    context.fill();
  }

  function segment([x0, y0], [x1, y1], context = ink) {
    context.beginPath();
    context.moveTo(x0, y0);
    context.lineTo(x1, y1);
    context.stroke();
  }

  function paint(context, width) {
    paper(context, width);
    for (const points of strokes) {
      dot(points[0], context);
      for (let i = 1; i < points.length; i++) segment(points[i - 1], points[i], context);
    }
  }

  function redraw() {
    paint(ink, brush);
  }

  function sentBrush() {
    // SENT_BRUSH_SHARE of the strokes' extent, between MIN_SENT_BRUSH and the pad's brush.
    const xs = strokes.flat().map(([x]) => x);
    const ys = strokes.flat().map(([, y]) => y);
    const extent = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys));
    return Math.min(brush, Math.max(MIN_SENT_BRUSH, SENT_BRUSH_SHARE * extent));
  }

  function drawSent() {
    // The strokes at SENT_SIZE pixels a side, with the brush in proportion to the drawing.
    outboxInk.setTransform(SENT_SIZE / pad.width, 0, 0, SENT_SIZE / pad.height, 0, 0);
    paint(outboxInk, sentBrush());
  }

  pad.addEventListener("pointerdown", (event) => {
    if (stroke !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    pointerId = event.pointerId;
    stroke = [position(event)];
    strokes.push(stroke);
    dot(stroke[0]);
    predictWhileDrawing();
  });

  pad.addEventListener("pointermove", (event) => {
    if (event.pointerId !== pointerId) return;
    event.preventDefault();
    const moves = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const move of moves.length ? moves : [event]) {
      const point = position(move);
      segment(stroke[stroke.length - 1], point);
      stroke.push(point);
    }
    predictWhileDrawing();
  });

  function endStroke(event) {
    if (event.pointerId !== pointerId) return;
    stroke = null;
    pointerId = null;
    clearTimeout(trailing);
    trailing = null;
    predict();
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  pad.addEventListener("lostpointercapture", endStroke);

  function undo() {
    if (stroke !== null) return;
    strokes.pop();
    redraw();
    predict();
  }

  function clear() {
    if (stroke !== null) return;
    strokes.length = 0;
    redraw();
    showBlank();
  }

  document.getElementById("undo").addEventListener("click", undo);
  document.getElementById("clear").addEventListener("click", clear);
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      event.preventDefault();
      undo();
    } else if (event.key === "Escape") {
      clear();
    }
  });

  // -------------------------------------------------------------------------------------------
  // Asking the network

  function predictWhileDrawing() {
    const wait = lastSentAt + THROTTLE_MS - performance.now();
    if (wait <= 0) {
      predict();
    } else if (trailing === null) {
      trailing = setTimeout(() => { trailing = null; predict(); }, wait);
    }
  }

  async function predict() {
    lastSentAt = performance.now();
    if (strokes.length === 0) {
      showBlank();
      return;
    }
    const seq = ++sent;
    setPending(+1);
    try {
      drawSent(); // toBlob copies it at once
      const picture = await new Promise((resolve) => outbox.toBlob(resolve, "image/png"));
      const response = await fetch("api/predict", {
        method: "POST",
        headers: { "Content-Type": "image/png" },
        body: picture,
      });
      const answer = await response.json();
      if (seq <= shown) return; // a newer answer (or a clear) is already on screen
      shown = seq;
      if (response.ok) {
        showAnswer(answer);
      } else if (answer.error === "blank_picture") {
        showBlank();
      } else {
        showError(answer.message || `the server answered ${response.status}`);
      }
    } catch (error) {
      if (seq > shown) {
        shown = seq;
        showError(`no answer from the server (${error.message}); is nnscratch serve running?`);
      }
    } finally {
      setPending(-1);
    }
  }

  function setPending(change) {
    pending += change;
    document.body.dataset.pending = String(pending);
  }

  // -------------------------------------------------------------------------------------------
  // Showing the answer

  function makeBars(classes) {
    if (bars.childElementCount === classes.length) return;
    bars.replaceChildren(...classes.map((label) => {
      const row = document.createElement("div");
      row.className = "bar";
      row.setAttribute("role", "listitem");
      row.dataset.class = String(label);
      row.dataset.probability = "0";
      const name = document.createElement("span");
      name.className = "label";
      name.textContent = String(label);
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill";
      track.append(fill);
      const value = document.createElement("span");
      value.className = "value";
      row.append(name, track, value);
      return row;
    }));
  }

  function setBars(probabilities) {
    let top = -1;
    if (probabilities !== null) {
      top = probabilities.indexOf(Math.max(...probabilities));
    }
    [...bars.children].forEach((row, i) => {
      const p = probabilities === null ? 0 : probabilities[i];
      row.dataset.probability = String(p);
      row.classList.toggle("top", i === top);
      row.querySelector(".fill").style.width = `${(100 * p).toFixed(2)}%`;
      row.querySelector(".value").textContent =
        probabilities === null ? "" : `${(100 * p).toFixed(1)}%`;
    });
  }

  function showAnswer(answer) {
    makeBars(answer.classes);
    prediction.textContent = String(answer.label);
    prediction.dataset.state = "answer";
    status.textContent = "";
    setBars(answer.probabilities);
    drawSeen(answer.input);
    if (answer.feature_maps) {
      drawMaps(answer.feature_maps);
    } else {
      drawHidden(answer.hidden);
    }
  }

  function showBlank() {
    shown = sent; // answers still on their way are for a drawing that is gone
    prediction.textContent = PROMPT;
    prediction.dataset.state = "blank";
    status.textContent = "";
    setBars(null);
    drawSeen(null);
    drawHidden(null);
  }

  function showError(message) {
    prediction.textContent = "no answer";
    prediction.dataset.state = "error";
    status.textContent = message;
    setBars(null);
  }

  function drawSeen(rows) {
    const context = seen.getContext("2d");
    context.fillStyle = "#000";
    context.fillRect(0, 0, seen.width, seen.height);
    if (rows === null) return;
    const image = context.createImageData(seen.width, seen.height);
    rows.flat().forEach((value, i) => {
      const gray = Math.round(255 * value);
      image.data.set([gray, gray, gray, 255], 4 * i);
    });
    context.putImageData(image, 0, 0);
  }

  function heat(t) {
    const x = Math.min(Math.max(t, 0), 1) * (HEAT.length - 1);
    const i = Math.min(Math.floor(x), HEAT.length - 2);
    const f = x - i;
    return HEAT[i].map((c, k) => Math.round(c + f * (HEAT[i + 1][k] - c)));
  }

  function layOutHidden(units) {
    // A near-square grid, one pixel per unit, scaled up by CSS.
    const columns = Math.ceil(Math.sqrt(units));
    const rows = Math.ceil(units / columns);
    if (hidden.width !== columns || hidden.height !== rows) {
      hidden.width = columns;
      hidden.height = rows;
      hidden.style.height = `${(hidden.clientWidth * rows) / columns}px`;
    }
  }

  function drawHidden(values) {
    const context = hidden.getContext("2d");
    context.fillStyle = "#000";
    context.fillRect(0, 0, hidden.width, hidden.height);
    if (values === null || values.length === 0) return;
    layOutHidden(values.length);
    const peak = Math.max(...values.map(Math.abs)) || 1;
    const image = context.createImageData(hidden.width, hidden.height);
    values.forEach((value, i) => image.data.set([...heat(value / peak), 255], 4 * i));
    context.putImageData(image, 0, 0);
  }

  function mapColumns(channels) {
    // A near-square grid, full if a column count up to twice the square root divides the
    // maps evenly (32 maps: 8 × 4), else the square root rounded up.
    const least = Math.ceil(Math.sqrt(channels));
    for (let columns = least; columns <= 2 * least; columns++) {
      if (channels % columns === 0) return columns;
    }
    return least;
  }

  function layOutMaps(channels, height, width) {
    // The grid of the maps, one pixel per value, a one-pixel gap between them.
    const columns = mapColumns(channels);
    const rows = Math.ceil(channels / columns);
    const canvasWidth = columns * (width + 1) - 1;
    const canvasHeight = rows * (height + 1) - 1;
    if (hidden.width !== canvasWidth || hidden.height !== canvasHeight) {
      hidden.width = canvasWidth;
      hidden.height = canvasHeight;
      hidden.style.height = `${(hidden.clientWidth * canvasHeight) / canvasWidth}px`;
    }
    return columns;
  }

  function drawMaps(maps) {
    // A convolution's feature maps: gray levels 0..255, each map stretched on its own.
    const height = maps[0].length;
    const width = maps[0][0].length;
    const columns = layOutMaps(maps.length, height, width);
    const context = hidden.getContext("2d");
    const image = context.createImageData(hidden.width, hidden.height);
    image.data.fill(255); // the gaps: white lines between the maps
    maps.forEach((map, k) => {
      const top = Math.floor(k / columns) * (height + 1);
      const left = (k % columns) * (width + 1);
      map.forEach((row, r) => row.forEach((gray, c) => {
        image.data.set([gray, gray, gray, 255], 4 * ((top + r) * hidden.width + left + c));
      }));
    });
    context.putImageData(image, 0, 0);
    for (let k = maps.length; k < Math.ceil(maps.length / columns) * columns; k++) {
      // The cells of a last, partial row show the page behind them.
      const top = Math.floor(k / columns) * (height + 1);
      const left = (k % columns) * (width + 1);
      context.clearRect(left - 1, top - 1, width + 2, height + 2);
    }
  }

  // -------------------------------------------------------------------------------------------
  // The model's facts

  async function describeModel() {
    const facts = await (await fetch("api/model")).json();
    makeBars(facts.classes);
    setBars(null);
    const text = (id, value) => { document.getElementById(id).textContent = value; };
    text("model-architecture", `${facts.summary} (${facts.dtype})`);
    text("model-classes", facts.classes.join(" "));
    text("model-accuracy", facts.test_accuracy === null
      ? "not recorded"
      : `${(100 * facts.test_accuracy).toFixed(2)}% (${facts.test_accuracy_source})`);
    text("model-parameters", facts.n_parameters.toLocaleString("en"));
    const file = document.getElementById("model-file");
    const code = document.createElement("code");
    code.textContent = `SHA-256 ${facts.sha256.slice(0, 16)}…`;
    code.title = facts.sha256;
    file.replaceChildren(`${facts.file} `, code);
    const maps = facts.feature_maps;
    if (maps) {
      layOutMaps(maps.channels, maps.height, maps.width);
      hidden.setAttribute("aria-label", "the first convolution's feature maps");
      document.getElementById("hidden-caption").textContent =
        `The first convolution: ${maps.channels} feature maps of ${maps.height}×${maps.width} ` +
        `(after ${maps.layers}), each brighter where its filter responds more.`;
    } else if (facts.hidden_units > 0) {
      layOutHidden(facts.hidden_units);
      document.getElementById("hidden-caption").textContent =
        `The first hidden layer: ${facts.hidden_units} ${facts.hidden_activation || ""} units, ` +
        "brighter when firing harder.";
    } else {
      document.getElementById("hidden-figure").hidden = true;
    }
  }

  paper(ink, brush);
  showBlank();
  document.body.dataset.pending = "0";
  describeModel().catch((error) => {
    status.textContent = `cannot read the model's facts (${error.message}).`;
  });
})();
