// The latent playground: the model's decoder runs here, in the page, on every input event.
// Run by gr.HTML's js_on_load with `element`, `props`, `trigger` and `watch` in scope.
// props.spec is the JSON from vae_core/browser.py: shapes, dimensions ordered by KL, classes,
// and the MLP decoder's float32 weights in base64 (null for a conv decoder: then every change
// is sent to the server through props.value and trigger("change")).
(() => {
  const SPAN = 3; // sliders and the pad cover [-3, 3] in each dimension: 99.7 % of the prior
  const root = element;
  let state = null;

  function floats(b64) {
    const bytes = atob(b64);
    const buffer = new ArrayBuffer(bytes.length);
    const view = new Uint8Array(buffer);
    for (let i = 0; i < bytes.length; i++) view[i] = bytes.charCodeAt(i);
    return new Float32Array(buffer);
  }

  function makeDecoder(spec) {
    if (!spec.decoder) return null;
    const [first, second] = spec.decoder.layers.map((l) => ({ w: floats(l.w), b: floats(l.b), rows: l.rows, cols: l.cols }));
    const input = new Float64Array(first.cols);
    const hidden = new Float64Array(first.rows);
    const out = new Float32Array(second.rows);
    // h = relu(W1 [z; onehot(label)] + b1); pixels = sigmoid(W2 h + b2), as vae_core/nets.py's MLPDecoder
    return (z, label) => {
      input.fill(0);
      input.set(z);
      if (spec.classes.length) input[spec.latent + label] = 1;
      for (let r = 0; r < first.rows; r++) {
        let s = first.b[r];
        const row = r * first.cols;
        for (let c = 0; c < first.cols; c++) s += first.w[row + c] * input[c];
        hidden[r] = s > 0 ? s : 0;
      }
      for (let r = 0; r < second.rows; r++) {
        let s = second.b[r];
        const row = r * second.cols;
        for (let c = 0; c < second.cols; c++) s += second.w[row + c] * hidden[c];
        out[r] = 1 / (1 + Math.exp(-s));
      }
      return out;
    };
  }

  function el(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    Object.entries(attrs).forEach(([k, v]) => (k === "text" ? (node.textContent = v) : node.setAttribute(k, v)));
    children.forEach((child) => node.appendChild(child));
    return node;
  }

  function draw() {
    const { spec, decode, z, label, picture } = state;
    if (!decode) {
      // a conv decoder: the server decodes; the code travels through the component's value
      props.value = JSON.stringify({ code: Array.from(z), label });
      trigger("change");
      drawPad();
      return;
    }
    const t0 = performance.now();
    const pixels = decode(z, label);
    const [, height, width] = spec.image_shape;
    const ctx = picture.getContext("2d");
    const image = ctx.createImageData(width, height);
    for (let i = 0; i < width * height; i++) {
      const v = Math.round(pixels[i] * 255);
      image.data.set([v, v, v, 255], 4 * i);
    }
    ctx.putImageData(image, 0, 0);
    state.last = { code: Array.from(z), label, pixels: Array.from(pixels), ms: performance.now() - t0 };
    root.dataset.draws = String(Number(root.dataset.draws || 0) + 1);
    drawPad();
  }

  function drawPad() {
    const { pad, z, dims } = state;
    const ctx = pad.getContext("2d");
    const size = pad.width;
    ctx.fillStyle = "#f4f4f5";
    ctx.fillRect(0, 0, size, size);
    ctx.strokeStyle = "#d4d4d8";
    for (let k = -SPAN; k <= SPAN; k++) {
      const p = ((k + SPAN) / (2 * SPAN)) * size;
      ctx.beginPath(); ctx.moveTo(p, 0); ctx.lineTo(p, size); ctx.stroke();
      ctx.beginPath(); ctx.moveTo(0, p); ctx.lineTo(size, p); ctx.stroke();
    }
    const x = ((z[dims[0]] + SPAN) / (2 * SPAN)) * size;
    const y = ((SPAN - z[dims[1]]) / (2 * SPAN)) * size;
    ctx.fillStyle = "#f97316";
    ctx.beginPath(); ctx.arc(x, y, 6, 0, 2 * Math.PI); ctx.fill();
  }

  function setDim(d, value) {
    state.z[d] = Math.max(-SPAN, Math.min(SPAN, value));
    const slider = state.sliders[d];
    if (slider) {
      slider.value = String(state.z[d]);
      slider.nextSibling.textContent = state.z[d].toFixed(2);
    }
  }

  function build() {
    root.innerHTML = "";
    let spec = null;
    try { spec = JSON.parse(props.spec || "null"); } catch (e) { spec = null; }
    if (!spec) {
      root.appendChild(el("p", { text: "Open this tab to load the model's decoder into the page." }));
      return;
    }
    const [, height, width] = spec.image_shape;
    const picture = el("canvas", { width, height, class: "pg-picture", "data-testid": "playground-picture" });
    const pad = el("canvas", { width: 240, height: 240, class: "pg-pad", "data-testid": "playground-pad" });
    state = { spec, decode: makeDecoder(spec), z: new Float64Array(spec.latent), label: 0, picture, pad,
              dims: [spec.order[0], spec.order[Math.min(1, spec.latent - 1)]], sliders: {} };
    root.playground = state; // read by the tests: the code, the label and the pixels of the last draw
    if (!state.decode) picture.style.display = "none"; // the server's picture shows below instead

    const note = spec.decoder
      ? "Decoded in your browser: every move redraws at once, with no request to the server."
      : "This model's decoder is convolutional, which this page cannot run: each move is decoded on the server.";
    const axisChoice = (which) => {
      const select = el("select", { "data-testid": `playground-axis-${which}` },
        spec.order.map((d) => el("option", { value: d, text: `z${d + 1}` })));
      select.value = String(state.dims[which]);
      select.addEventListener("change", () => { state.dims[which] = Number(select.value); drawPad(); });
      return select;
    };
    const sliders = el("div", { class: "pg-sliders" });
    spec.order.forEach((d) => {
      const slider = el("input", { type: "range", min: -SPAN, max: SPAN, step: 0.01, value: 0, "data-dim": d });
      slider.addEventListener("input", () => { setDim(d, Number(slider.value)); draw(); });
      state.sliders[d] = slider;
      const name = `z${d + 1} · ${spec.kl[d].toFixed(2)} nats` + (spec.active[d] ? "" : " · inactive");
      sliders.appendChild(el("label", { class: spec.active[d] ? "pg-dim" : "pg-dim pg-inactive",
                                        title: spec.active[d] ? "" : "carries no information: the decoder ignores it" },
        [el("span", { text: name }), slider, el("output", { text: "0.00" })]));
    });
    const classes = el("div", { class: "pg-classes" });
    spec.classes.forEach((name, k) => {
      const button = el("button", { type: "button", text: name, "data-class": k });
      button.addEventListener("click", () => {
        state.label = k;
        classes.querySelectorAll("button").forEach((b) => b.classList.toggle("pg-chosen", b === button));
        draw();
      });
      if (k === 0) button.classList.add("pg-chosen");
      classes.appendChild(button);
    });
    const reset = el("button", { type: "button", text: "Back to the origin", class: "pg-reset" });
    reset.addEventListener("click", () => { for (let d = 0; d < spec.latent; d++) setDim(d, 0); draw(); });

    const onPad = (event) => {
      if (event.buttons !== 1 && event.type !== "pointerdown") return;
      const box = pad.getBoundingClientRect();
      setDim(state.dims[0], ((event.clientX - box.left) / box.width) * 2 * SPAN - SPAN);
      setDim(state.dims[1], SPAN - ((event.clientY - box.top) / box.height) * 2 * SPAN);
      draw();
    };
    pad.addEventListener("pointerdown", (e) => { pad.setPointerCapture(e.pointerId); onPad(e); });
    pad.addEventListener("pointermove", onPad);

    root.appendChild(el("p", { class: "pg-note", text: note }));
    root.appendChild(el("div", { class: "pg-row" }, [
      el("div", { class: "pg-col" }, [picture, classes, reset]),
      el("div", { class: "pg-col" }, [el("div", { class: "pg-axes" },
        [el("span", { text: "Drag: across " }), axisChoice(0), el("span", { text: " up " }), axisChoice(1)]), pad]),
      el("div", { class: "pg-col pg-wide" }, [el("p", { class: "pg-hint", text: "Dimensions by how much they carry (KL to the prior, averaged over the test set)" }), sliders]),
    ]));
    draw();
  }

  build();
  watch("spec", build);
})();
