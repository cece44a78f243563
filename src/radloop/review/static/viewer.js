// radloop review workstation: the image viewer (loaded before review.js, which wires the keys).
// Each viewer draws the server's 8-bit display rendering of one image on a canvas; window,
// level, invert, rotation and flip are applied here. Linked viewers (current and prior side by
// side) follow each other's zoom, pan and window. Lengths are in mm from the original's Pixel
// Spacing (patient plane) or Imager Pixel Spacing (detector: uncorrected for magnification).
"use strict";

// Display presets on the 0–255 values of the display rendering (not Hounsfield units: a
// radiograph has none). Each stretches one part of the grey range over the whole screen.
const WINDOW_PRESETS = {
  full: { width: 255, level: 127.5, label: "Full range" },
  lung: { width: 170, level: 95, label: "Lung (dark range stretched)" },
  soft: { width: 150, level: 165, label: "Soft tissue / mediastinum (bright range)" },
  bone: { width: 90, level: 200, label: "Bone (brightest range, high contrast)" },
};

class Viewer {
  constructor(root, studyId, images) {
    this.root = root;
    this.stage = root.querySelector(".stage");
    this.canvas = root.querySelector("canvas.image");
    this.overlay = root.querySelector("img.overlay");
    this.readout = root.querySelector(".readout");
    this.corner = root.querySelector(".corner");
    this.measureLine = root.querySelector(".measurement");
    this.loupe = root.querySelector("canvas.loupe");
    this.studyId = studyId;
    this.images = images;
    const frontal = images.findIndex((im) => ["PA", "AP"].includes((im.view || "").toUpperCase()));
    this.position = images.length ? images[Math.max(frontal, 0)].position : 0;
    this.frontal = this.position; // the heatmaps are of the frontal image
    this.scale = 1; this.tx = 0; this.ty = 0;
    this.width = 255; this.level = 127.5; this.invert = false;
    this.rotation = 0; this.flip = false;
    this.measure = null;
    this.source = null;
    this.peers = () => [this];
    this.tool = () => "pan";
    this.load();
    this.bindMouse();
  }

  image() { return this.images.find((im) => im.position === this.position) || {}; }

  show(position) {
    if (position === this.position && this.source) return;
    this.position = position;
    this.measure = null;
    this.load();
  }

  load() {
    const img = new Image();
    this.root.classList.remove("loaded");
    img.onload = () => {
      const off = document.createElement("canvas");
      off.width = img.naturalWidth; off.height = img.naturalHeight;
      const ctx = off.getContext("2d");
      ctx.drawImage(img, 0, 0);
      this.source = ctx.getImageData(0, 0, off.width, off.height);
      this.canvas.width = off.width; this.canvas.height = off.height;
      this.overlay.style.width = `${off.width}px`; this.overlay.style.height = `${off.height}px`;
      this.fit();
      this.root.dataset.position = String(this.position);
      this.overlay.classList.toggle("other-image", this.position !== this.frontal);
      this.root.classList.add("loaded");
    };
    img.src = `/api/studies/${this.studyId}/images/${this.position}.png`;
  }

  // mm per pixel of the display rendering (row, column), or null; and what the value means.
  spacing() {
    const im = this.image();
    if (!this.source || !im.spacing_mm) return null;
    return {
      row: im.spacing_mm[0] * ((im.rows || this.source.height) / this.source.height),
      column: im.spacing_mm[1] * ((im.columns || this.source.width) / this.source.width),
      source: im.spacing_source,
    };
  }

  render() {
    if (!this.source) return;
    const out = new ImageData(this.source.width, this.source.height);
    const lut = new Uint8ClampedArray(256);
    const low = this.level - this.width / 2;
    for (let v = 0; v < 256; v++) {
      let y = ((v - low) / Math.max(this.width, 1)) * 255;
      y = Math.min(255, Math.max(0, y));
      lut[v] = this.invert ? 255 - y : y;
    }
    const src = this.source.data, dst = out.data;
    for (let i = 0; i < src.length; i += 4) {
      const g = lut[src[i]];
      dst[i] = g; dst[i + 1] = g; dst[i + 2] = g; dst[i + 3] = 255;
    }
    const ctx = this.canvas.getContext("2d");
    ctx.putImageData(out, 0, 0);
    this.drawMeasure(ctx);
    const turned = this.rotation ? ` · rotated ${this.rotation}°` : "";
    this.readout.textContent = `W ${Math.round(this.width)} L ${Math.round(this.level)} · ${Math.round(this.scale * 100)}%${turned}${this.flip ? " · flipped" : ""}${this.invert ? " · inverted" : ""}`;
    this.writeCorner();
  }

  writeCorner() {
    if (!this.corner || !this.source) return;
    const im = this.image();
    const size = `${im.columns || this.source.width}×${im.rows || this.source.height}`;
    const spacing = im.spacing_mm
      ? `${im.spacing_mm[1].toFixed(3)} mm/px (${im.spacing_source === "PixelSpacing" ? "Pixel Spacing" : "Imager Pixel Spacing"})`
      : "spacing unknown";
    this.corner.textContent = `${im.view || "view ?"} · image ${this.position + 1}/${this.images.length} · ${size} · ${spacing}`;
  }

  // The image → stage matrix, as a CSS transform: zoom and pan, then rotation and flip about
  // the image centre.
  matrixText() {
    const w = this.source ? this.source.width : 0, h = this.source ? this.source.height : 0;
    return `translate(${this.tx}px, ${this.ty}px) scale(${this.scale}) translate(${w / 2}px, ${h / 2}px) rotate(${this.rotation}deg) scale(${this.flip ? -1 : 1}, 1) translate(${-w / 2}px, ${-h / 2}px)`;
  }

  matrix() { return new DOMMatrix(this.matrixText()); }

  // A point of the stage (CSS px from its top left) in image pixels.
  toImage(x, y) {
    const p = this.matrix().inverse().transformPoint(new DOMPoint(x, y));
    return [p.x, p.y];
  }

  transform() {
    const t = this.matrixText();
    this.canvas.style.transform = t;
    this.overlay.style.transform = t;
    this.render();
  }

  fit() {
    if (!this.source) return;
    const box = this.stage.getBoundingClientRect();
    const turned = this.rotation % 180 !== 0;
    const w = turned ? this.source.height : this.source.width;
    const h = turned ? this.source.width : this.source.height;
    this.scale = Math.min(box.width / w, box.height / h) || 1;
    this.tx = box.width / 2 - (this.source.width * this.scale) / 2;
    this.ty = box.height / 2 - (this.source.height * this.scale) / 2;
    this.transform();
  }

  zoom(factor, cx, cy) {
    const box = this.stage.getBoundingClientRect();
    const x = cx === undefined ? box.width / 2 : cx, y = cy === undefined ? box.height / 2 : cy;
    this.tx = x - (x - this.tx) * factor;
    this.ty = y - (y - this.ty) * factor;
    this.scale *= factor;
    this.transform();
  }

  pan(dx, dy) { this.tx += dx; this.ty += dy; this.transform(); }
  windowBy(dx, dy) { this.width = Math.max(1, this.width + dx); this.level += dy; this.render(); }
  setWindow(width, level) { this.width = width; this.level = level; this.render(); }
  resetWindow() { this.setWindow(255, 127.5); }
  toggleInvert() { this.invert = !this.invert; this.render(); }
  rotate() { this.rotation = (this.rotation + 90) % 360; this.fit(); }
  toggleFlip() { this.flip = !this.flip; this.transform(); }
  setOpacity(value) { this.overlay.style.opacity = String(value); }

  showHeatmap(code) {
    if (!code) { this.overlay.hidden = true; return; }
    this.overlay.src = `/api/studies/${this.studyId}/heatmaps/${code}.png`;
    this.overlay.hidden = false;
  }

  // --- length caliper ---------------------------------------------------------------------
  length() {
    if (!this.measure) return null;
    const [x0, y0] = this.measure.a, [x1, y1] = this.measure.b;
    const sp = this.spacing();
    if (!sp) return { value: Math.hypot(x1 - x0, y1 - y0), unit: "px", sp };
    return { value: Math.hypot((x1 - x0) * sp.column, (y1 - y0) * sp.row), unit: "mm", sp };
  }

  measureText() {
    const found = this.length();
    if (!found) return "";
    if (found.unit === "px") {
      const why = this.image().spacing_note || "no pixel spacing is known for this image";
      return `Length ${found.value.toFixed(0)} px (not mm: ${why})`;
    }
    const note = found.sp.source === "ImagerPixelSpacing"
      ? " (Imager Pixel Spacing, at the detector: uncorrected for magnification, about 10 % over the patient on a PA film)"
      : " (Pixel Spacing, patient plane)";
    return `Length ${found.value.toFixed(1)} mm${note}`;
  }

  drawMeasure(ctx) {
    if (!this.measure) { if (this.measureLine) this.measureLine.textContent = ""; return; }
    const [x0, y0] = this.measure.a, [x1, y1] = this.measure.b;
    ctx.save();
    ctx.strokeStyle = "#facc15"; ctx.fillStyle = "#facc15";
    ctx.lineWidth = 2 / this.scale;
    ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
    for (const [x, y] of [[x0, y0], [x1, y1]]) {
      ctx.beginPath(); ctx.arc(x, y, 4 / this.scale, 0, 2 * Math.PI); ctx.fill();
    }
    ctx.restore();
    if (this.measureLine) this.measureLine.textContent = this.measureText();
  }

  clearMeasure() { this.measure = null; this.render(); }

  // --- magnifier --------------------------------------------------------------------------
  drawLoupe(x, y) {
    if (!this.loupe || !this.source) return;
    const side = this.loupe.width, zoom = 2.5;
    this.loupe.hidden = false;
    this.loupe.style.left = `${x - side / 2}px`; this.loupe.style.top = `${y - side / 2}px`;
    const ctx = this.loupe.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, side, side);
    const m = new DOMMatrix().translate(side / 2, side / 2).scale(zoom).translate(-x, -y).multiply(this.matrix());
    ctx.setTransform(m);
    ctx.drawImage(this.canvas, 0, 0);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
  }

  hideLoupe() { if (this.loupe) this.loupe.hidden = true; }

  bindMouse() {
    let drag = null;
    const at = (e) => { const box = this.stage.getBoundingClientRect(); return [e.clientX - box.left, e.clientY - box.top]; };
    this.stage.addEventListener("contextmenu", (e) => e.preventDefault());
    this.stage.addEventListener("mousedown", (e) => {
      e.preventDefault();
      if (this.tool() === "measure" && e.button === 0 && !e.shiftKey) {
        const p = this.toImage(...at(e));
        this.measure = { a: p, b: p };
        drag = { measuring: true };
        this.render();
        return;
      }
      drag = { x: e.clientX, y: e.clientY, windowing: e.button === 2 || e.shiftKey };
    });
    window.addEventListener("mouseup", () => { drag = null; });
    window.addEventListener("mousemove", (e) => {
      if (!drag) return;
      if (drag.measuring) { this.measure.b = this.toImage(...at(e)); this.render(); return; }
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      drag.x = e.clientX; drag.y = e.clientY;
      this.peers().forEach((v) => (drag.windowing ? v.windowBy(dx, dy) : v.pan(dx, dy)));
    });
    this.stage.addEventListener("mousemove", (e) => {
      if (this.tool.magnify && this.tool.magnify()) this.drawLoupe(...at(e)); else this.hideLoupe();
    });
    this.stage.addEventListener("mouseleave", () => this.hideLoupe());
    this.stage.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [x, y] = at(e);
      this.peers().forEach((v) => v.zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, x, y));
    }, { passive: false });
  }
}

// The study page's viewers: the current one, the prior beside it on demand, thumbnails of
// every image of both, the toolbar. Returns the actions the keys name, and preset(name).
function setupViewers(data) {
  const viewers = [];
  const current = document.querySelector('.viewer[data-which="current"]');
  const priorRoot = document.querySelector('.viewer[data-which="prior"]');
  const wrap = document.querySelector(".prior-wrap");
  const link = document.getElementById("link-views");
  const heatmapSelect = document.getElementById("heatmap-select");
  const opacity = document.getElementById("heatmap-opacity");
  const legend = document.getElementById("heatmap-legend");
  const presetSelect = document.getElementById("preset-select");
  const tools = { measure: false, magnify: false };
  let prior = null;
  const visible = () => viewers.filter((v) => !v.root.closest("[hidden]"));
  const each = (fn) => visible().forEach(fn);
  const adopt = (viewer) => {
    viewer.peers = () => (link && link.checked ? visible() : [viewer]);
    viewer.tool = () => (tools.measure ? "measure" : "pan");
    viewer.tool.magnify = () => tools.magnify;
    viewers.push(viewer);
    return viewer;
  };
  if (current) adopt(new Viewer(current, data.id, data.images));
  const press = (act, on) => {
    const button = document.querySelector(`[data-act="${act}"]`);
    if (button) button.setAttribute("aria-pressed", String(on));
  };
  const markThumbs = () => {
    document.querySelectorAll("button.thumb").forEach((t) => {
      const v = t.dataset.which === "prior" ? prior : viewers[0];
      const shown = Boolean(v) && !v.root.closest("[hidden]") && v.position === Number(t.dataset.position);
      t.setAttribute("aria-pressed", String(shown));
    });
  };
  const showPrior = (on) => {
    if (!wrap) return;
    wrap.hidden = !on;
    document.querySelector(".viewers").classList.toggle("side-by-side", on);
    press("prior", on);
    if (on && !prior && priorRoot) prior = adopt(new Viewer(priorRoot, data.prior, data.prior_images));
    // The prior takes the current one's window, rotation and flip (then both fit their half).
    if (on && prior && viewers[0]) {
      const c = viewers[0];
      Object.assign(prior, { width: c.width, level: c.level, invert: c.invert, rotation: c.rotation, flip: c.flip });
    }
    setTimeout(() => { each((v) => v.fit()); markThumbs(); }, 50);
  };
  const actions = {
    "zoom-in": () => each((v) => v.zoom(1.25)),
    "zoom-out": () => each((v) => v.zoom(0.8)),
    "fit": () => each((v) => v.fit()),
    "invert": () => each((v) => v.toggleInvert()),
    "reset-wl": () => { each((v) => v.resetWindow()); if (presetSelect) presetSelect.value = "full"; },
    "rotate": () => each((v) => v.rotate()),
    "flip": () => each((v) => v.toggleFlip()),
    "prior": () => showPrior(Boolean(wrap && wrap.hidden)),
    "measure": () => {
      tools.measure = !tools.measure;
      press("measure", tools.measure);
      document.querySelector(".viewers").classList.toggle("measuring", tools.measure);
      if (!tools.measure) each((v) => v.clearMeasure());
    },
    "magnifier": () => {
      tools.magnify = !tools.magnify;
      press("magnifier", tools.magnify);
      if (!tools.magnify) each((v) => v.hideLoupe());
    },
  };
  const preset = (name) => {
    const p = WINDOW_PRESETS[name];
    if (!p) return;
    each((v) => v.setWindow(p.width, p.level));
    if (presetSelect) presetSelect.value = name;
  };
  document.querySelectorAll("[data-act]").forEach((b) => b.addEventListener("click", () => actions[b.dataset.act]()));
  if (presetSelect) presetSelect.addEventListener("change", () => preset(presetSelect.value));
  if (heatmapSelect) heatmapSelect.addEventListener("change", () => {
    if (viewers[0]) viewers[0].showHeatmap(heatmapSelect.value);
    if (legend) legend.hidden = !heatmapSelect.value;
  });
  if (opacity) opacity.addEventListener("input", () => {
    viewers.forEach((v) => v.setOpacity(Number(opacity.value) / 100));
    opacity.setAttribute("aria-valuetext", `${opacity.value} %`);
  });
  document.querySelectorAll("button.thumb").forEach((t) => t.addEventListener("click", () => {
    const position = Number(t.dataset.position);
    if (t.dataset.which === "prior") {
      if (!wrap || wrap.hidden) showPrior(true);
      prior.show(position);
    } else if (viewers[0]) viewers[0].show(position);
    markThumbs();
  }));
  markThumbs();
  window.addEventListener("resize", () => each((v) => v.fit()));
  return { actions, preset, viewers };
}

window.WINDOW_PRESETS = WINDOW_PRESETS;
window.Viewer = Viewer;
window.setupViewers = setupViewers;
