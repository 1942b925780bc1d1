// The latent map: test pictures as points on two latent axes, over the decoded manifold of a
// 2-D model. Hover or click a point: its picture and its reconstruction show at once (both
// travel with the map). props.marker, set by the server for a drawn or uploaded digit, is
// its posterior: the mean and the ±2σ ellipse. Run by gr.HTML's js_on_load.
(() => {
  // Tableau 10: ten hues told apart by most eyes (and in print)
  const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                   "#9c755f", "#bab0ac"];
  const SIZE = 480; // CSS pixels of the plot square: 15 manifold tiles of 32 px
  const MARGIN = 36;
  const root = element;
  let view = null;

  function el(tag, attrs = {}, children = []) {
    const node = document.createElement(tag);
    Object.entries(attrs).forEach(([k, v]) => (k === "text" ? (node.textContent = v) : node.setAttribute(k, v)));
    children.forEach((child) => node.appendChild(child));
    return node;
  }

  function bytes(b64) {
    const text = atob(b64);
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }

  const toPx = (v) => MARGIN + ((v + view.span) / (2 * view.span)) * SIZE;
  const toPy = (v) => MARGIN + ((view.span - v) / (2 * view.span)) * SIZE;

  function showPicture(canvas, data, index) {
    const [, h, w] = view.image_shape;
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(w, h);
    for (let i = 0; i < w * h; i++) {
      const v = data[index * w * h + i];
      image.data.set([v, v, v, 255], 4 * i);
    }
    ctx.putImageData(image, 0, 0);
  }

  function draw() {
    const ctx = view.plot.getContext("2d");
    const full = SIZE + 2 * MARGIN;
    ctx.clearRect(0, 0, full, full);
    if (view.background) ctx.drawImage(view.background, MARGIN, MARGIN, SIZE, SIZE);
    else { ctx.fillStyle = "#fafafa"; ctx.fillRect(MARGIN, MARGIN, SIZE, SIZE); }
    ctx.strokeStyle = "#71717a";
    ctx.strokeRect(MARGIN, MARGIN, SIZE, SIZE);
    ctx.fillStyle = "#27272a";
    ctx.font = "12px sans-serif";
    ctx.textAlign = "center";
    const step = view.span <= 2 ? 0.5 : 1;
    for (let t = -Math.floor(view.span / step) * step; t <= view.span + 1e-9; t += step) {
      ctx.fillText(t.toFixed(step < 1 ? 1 : 0), toPx(t), MARGIN + SIZE + 14);
      ctx.fillText(t.toFixed(step < 1 ? 1 : 0), MARGIN - 14, toPy(t) + 4);
    }
    ctx.font = "bold 14px sans-serif";
    ctx.fillText(view.axes[0], MARGIN + SIZE / 2, MARGIN + SIZE + 30);
    ctx.save(); ctx.translate(12, MARGIN + SIZE / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(view.axes[1], 0, 0); ctx.restore();
    ctx.save();
    ctx.beginPath(); ctx.rect(MARGIN, MARGIN, SIZE, SIZE); ctx.clip(); // codes beyond the span stay off the axes
    ctx.globalAlpha = view.background ? 0.9 : 0.75;
    for (let i = 0; i < view.x.length; i++) {
      ctx.fillStyle = PALETTE[view.labels[i] % PALETTE.length];
      ctx.beginPath(); ctx.arc(toPx(view.x[i]), toPy(view.y[i]), i === view.picked ? 6 : 3.2, 0, 2 * Math.PI); ctx.fill();
    }
    ctx.globalAlpha = 1;
    if (view.picked !== null) {
      ctx.strokeStyle = "#000"; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(toPx(view.x[view.picked]), toPy(view.y[view.picked]), 7, 0, 2 * Math.PI); ctx.stroke();
      ctx.lineWidth = 1;
    }
    ctx.restore();
    const marker = view.marker;
    if (marker) {
      ctx.save();
      ctx.translate(toPx(marker.x), toPy(marker.y));
      ctx.rotate(-marker.angle);
      ctx.strokeStyle = "#dc2626"; ctx.lineWidth = 2.5;
      ctx.beginPath();
      ctx.ellipse(0, 0, (marker.rx / (2 * view.span)) * SIZE, (marker.ry / (2 * view.span)) * SIZE, 0, 0, 2 * Math.PI);
      ctx.stroke();
      ctx.restore();
      ctx.fillStyle = "#dc2626";
      ctx.beginPath(); ctx.arc(toPx(marker.x), toPy(marker.y), 5, 0, 2 * Math.PI); ctx.fill();
    }
  }

  function nearest(event) {
    const box = view.plot.getBoundingClientRect();
    const scale = view.plot.width / box.width;
    const px = (event.clientX - box.left) * scale, py = (event.clientY - box.top) * scale;
    let best = null, bestDistance = 12 * 12;
    for (let i = 0; i < view.x.length; i++) {
      const d = (toPx(view.x[i]) - px) ** 2 + (toPy(view.y[i]) - py) ** 2;
      if (d < bestDistance) { best = i; bestDistance = d; }
    }
    return best;
  }

  function pick(index) {
    if (index === null) return;
    view.picked = index;
    showPicture(view.original, view.pictures, index);
    showPicture(view.reconstruction, view.reconstructions, index);
    const name = view.classes.length ? view.classes[view.labels[index]] : "";
    view.caption.textContent = `Test picture ${index + 1}${name ? ` (class ${name})` : ""} at ` +
      `${view.axes[0]} = ${view.x[index].toFixed(2)}, ${view.axes[1]} = ${view.y[index].toFixed(2)}`;
    root.dataset.picked = String(index);
    draw();
  }

  function build() {
    root.innerHTML = "";
    let data = null;
    try { data = JSON.parse(props.spec || "null"); } catch (e) { data = null; }
    if (!data) { root.appendChild(el("p", { text: "Loading the map…" })); return; }
    const [, h, w] = data.image_shape;
    const full = SIZE + 2 * MARGIN;
    view = { ...data, pictures: bytes(data.pictures), reconstructions: bytes(data.reconstructions), picked: null,
             marker: null, background: null,
             plot: el("canvas", { width: full, height: full, class: "lm-plot", "data-testid": "latent-map-plot" }),
             original: el("canvas", { width: w, height: h, class: "lm-digit" }),
             reconstruction: el("canvas", { width: w, height: h, class: "lm-digit" }),
             caption: el("p", { class: "lm-caption", text: "Hover or click a point to see its picture and its reconstruction." }) };
    root.latentMap = view;
    if (data.manifold) {
      const background = new Image();
      background.onload = () => { view.background = background; draw(); };
      background.src = `data:image/png;base64,${data.manifold}`;
    }
    const legend = el("div", { class: "lm-legend" }, (data.classes.length ? data.classes : []).map((name, k) =>
      el("span", {}, [el("i", { style: `background:${PALETTE[k % PALETTE.length]}` }), el("span", { text: name })])));
    view.plot.addEventListener("mousemove", (event) => pick(nearest(event)));
    view.plot.addEventListener("click", (event) => pick(nearest(event)));
    root.appendChild(el("div", { class: "lm-row" }, [
      view.plot,
      el("div", { class: "lm-side" }, [legend, el("div", { class: "lm-pair" }, [
        el("figure", {}, [view.original, el("figcaption", { text: "test picture" })]),
        el("figure", {}, [view.reconstruction, el("figcaption", { text: "its reconstruction" })])]), view.caption]),
    ]));
    try { view.marker = JSON.parse(props.marker || "null"); } catch (e) { view.marker = null; }
    draw();
  }

  build();
  watch("spec", build);
  watch("marker", () => {
    if (!view) return;
    try { view.marker = JSON.parse(props.marker || "null"); } catch (e) { view.marker = null; }
    root.dataset.marker = props.marker ? "shown" : "";
    draw();
  });
})();
