// radloop review workstation: viewer, finding decisions, report editing, sign-off, questions.
// Server-rendered pages do the rest; every state-changing call sends the CSRF token, and
// every write and sign-off the worksheet version the page showed (409 if it changed since).
"use strict";

const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

async function api(method, url, body) {
  const init = { method, headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin" };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
    // The server's detail is a sentence for the reader; the status stays on the error.
    const error = new Error(detail || `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.detail = detail || response.statusText;
    throw error;
  }
  return data;
}

function say(message, isError) {
  const line = document.getElementById("action-status") || document.getElementById("upload-status");
  if (!line) return;
  line.textContent = message;
  line.classList.toggle("error", Boolean(isError));
}

// --- upload -------------------------------------------------------------------------------
function setupUpload() {
  const form = document.getElementById("upload");
  if (!form) return;
  const input = form.querySelector("input[type=file]");
  input.addEventListener("change", async () => {
    if (!input.files.length) return;
    const data = new FormData();
    for (const file of input.files) data.append("files", file);
    say(`Uploading ${input.files.length} file(s)…`);
    try {
      const result = await api("POST", "/api/upload", data);
      say(`Added ${result.added.length} study(ies); ${result.existing.length} already here. Drafting…`);
      setTimeout(() => location.reload(), 1500);
    } catch (error) {
      say(`Upload refused: ${error.message}`, true);
    }
    input.value = "";
  });
}

// --- worklist keys: j/k or the arrows move along the rows, Enter opens the focused one ------
function setupWorklist() {
  const table = document.querySelector("table.studies.worklist");
  if (!table) return;
  const links = Array.from(table.querySelectorAll("tbody tr[data-study] a.open"));
  if (!links.length) return;
  const mark = (a) => {
    links.forEach((other) => other.closest("tr").classList.toggle("current", other === a));
  };
  links.forEach((a) => a.addEventListener("focus", () => mark(a)));
  const move = (step) => {
    const at = links.indexOf(document.activeElement);
    const next = at < 0 ? 0 : Math.min(links.length - 1, Math.max(0, at + step));
    links[next].focus();
    links[next].scrollIntoView({ block: "nearest" });
  };
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, textarea, select, dialog") || e.ctrlKey || e.metaKey || e.altKey) return;
    const step = { j: 1, ArrowDown: 1, k: -1, ArrowUp: -1 }[e.key];
    if (step === undefined || (e.shiftKey && e.key.length === 1)) return;
    e.preventDefault();
    move(step);
  });
  // The first study has the focus when the worklist opens: Enter reads it.
  if (document.activeElement === document.body) links[0].focus();
}

// --- worklist filters by key: u urgent only, s signed, a all to read (no filter), / the filters
function setupWorklistFilters() {
  const form = document.querySelector("form.filters");
  if (!form || !document.querySelector("table.studies.worklist")) return;
  const go = (params) => {
    const query = new URLSearchParams(params).toString();
    location.assign(query ? `/?${query}` : "/");
  };
  const keep = () => {
    const params = Object.fromEntries(new URLSearchParams(location.search));
    delete params.page;  // a new filter starts on its first page
    return params;
  };
  const keys = {
    u: () => go({ ...keep(), urgent: "yes" }),
    s: () => go({ status: "signed" }),
    a: () => go({}),
    "/": () => form.querySelector("select, input").focus(),
  };
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, textarea, select, dialog") || e.ctrlKey || e.metaKey || e.altKey) return;
    if (!keys[e.key] || (e.shiftKey && /^[a-z]$/i.test(e.key))) return;
    e.preventDefault();
    keys[e.key]();
  });
}

// --- report tools: add a finding, the normal template, macros --------------------------------
// A sentence written into its FINDINGS line ("Pleura: Unremarkable." becomes "Pleura: Small
// left pleural effusion."); a new line before IMPRESSION when the text has none for it.
function withFinding(text, section, sentence) {
  const lines = text.replace(/\s+$/, "").split("\n");
  // Devices go on the "Lines and tubes" line of the portable AP template when the text has one.
  if (section === "Devices" && lines.some((l) => /^lines and tubes:/i.test(l))) section = "Lines and tubes";
  const impression = lines.findIndex((l) => /^\s*IMPRESSION\s*:/i.test(l));
  const end = impression < 0 ? lines.length : impression;
  const at = lines.findIndex((l, i) => i < end && l.toLowerCase().startsWith(`${section.toLowerCase()}:`));
  if (at >= 0) {
    const rest = lines[at].slice(section.length + 1).trim();
    lines[at] = `${section}: ${/^(Unremarkable|Not commented|None)\.?$/i.test(rest) || !rest ? sentence : `${rest} ${sentence}`}`;
  } else if (!lines.some((l) => /^\s*FINDINGS\s*:/i.test(l))) {
    lines.splice(end, 0, "FINDINGS:", `${section}: ${sentence}`);
  } else {
    let before = end;
    while (before > 0 && !lines[before - 1].trim()) before--;
    lines.splice(before, 0, `${section}: ${sentence}`);
  }
  return `${lines.join("\n").trim()}\n`;
}

function insertAtCaret(area, snippet) {
  const start = area.selectionStart ?? area.value.length, stop = area.selectionEnd ?? start;
  const before = area.value.slice(0, start), after = area.value.slice(stop);
  const pad = before && !/\s$/.test(before) ? " " : "";
  area.value = `${before}${pad}${snippet}${after}`;
  const caret = before.length + pad.length + snippet.length;
  area.setSelectionRange(caret, caret);
  area.focus();
}

function setupReportTools(data, area) {
  const form = document.getElementById("add-finding");
  if (!form || !area) return;
  const save = async (message) => {
    try {
      await api("PUT", `/api/studies/${data.id}/text`, { text: area.value, version: data.version });
      sessionStorage.setItem("radloop-said", message);
      location.reload();
    } catch (error) { say(`Not saved: ${error.message}`, true); }
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { code: form.code.value, side: form.side.value || null, level: form.level.value || null, size: form.size.value || null };
    let composed;
    try { composed = await api("POST", "/api/findings/sentence", body); }
    catch (error) { say(`Not added: ${error.message}`, true); return; }
    const section = form.code.selectedOptions[0].dataset.section || "Other";
    area.value = withFinding(area.value, section, composed.sentence);
    await save(`Added “${composed.sentence}” to the findings and saved the text. Check the impression.`);
  });
  const normal = document.getElementById("normal-template");
  normal.addEventListener("click", () => {
    const current = area.value.trim();
    if (current && current !== normal.dataset.text.trim()
        && !window.confirm(`Replace the report text with the ${(normal.dataset.label || "normal chest").toLowerCase()} template?`)) return;
    area.value = `${normal.dataset.text}\n`;
    area.focus();
    say(`${normal.dataset.label || "Normal chest"} template in the report text (not saved yet: Save text, or sign).`);
  });
  // The reader's own macros: kept in this browser (localStorage), per user name.
  const key = `radloop-macros:${data.user}`;
  const mine = () => { try { return JSON.parse(localStorage.getItem(key) || "[]"); } catch { return []; } };
  const holder = document.getElementById("my-macros");
  const showMine = () => {
    holder.replaceChildren(...mine().map((m) => {
      const b = document.createElement("button");
      b.type = "button"; b.className = "macro user-macro"; b.dataset.text = m.text;
      b.textContent = m.label; b.title = `Your macro: ${m.text}`;
      return b;
    }));
  };
  showMine();
  document.getElementById("save-macro").addEventListener("click", () => {
    const text = area.value.slice(area.selectionStart, area.selectionEnd).trim();
    if (!text) { say("Select the text to keep as a macro first.", true); area.focus(); return; }
    const label = (window.prompt("Name of the macro", text.slice(0, 24)) || "").trim();
    if (!label) return;
    localStorage.setItem(key, JSON.stringify([...mine().filter((m) => m.label !== label), { label, text }]));
    showMine();
    say(`Macro “${label}” kept in this browser.`);
  });
  const macros = () => Array.from(document.querySelectorAll("button.macro"));
  document.querySelector(".templates").addEventListener("click", (e) => {
    const b = e.target.closest("button.macro");
    if (b) insertAtCaret(area, b.dataset.text);
  });
  area.addEventListener("keydown", (e) => {
    const n = Number(e.key), all = macros();
    if (!e.altKey || e.ctrlKey || e.metaKey || !Number.isInteger(n) || n < 1 || n > all.length) return;
    e.preventDefault();
    insertAtCaret(area, all[n - 1].dataset.text);
  });
  const said = sessionStorage.getItem("radloop-said");
  if (said) { sessionStorage.removeItem("radloop-said"); say(said); }
}

// --- review page ----------------------------------------------------------------------------
function setupReview() {
  const dataNode = document.getElementById("study-data");
  if (!dataNode) return;
  const data = JSON.parse(dataNode.textContent);
  const viewers = setupViewers(data);
  const heatmapSelect = document.getElementById("heatmap-select");
  const actions = viewers.actions;

  // Findings: select, decide, edit. The selection follows keyboard focus (Tab, j/k, a click),
  // so the keys always act on the finding that shows the focus ring.
  const items = Array.from(document.querySelectorAll("li.finding"));
  let selected = 0;
  const mark = (i) => {
    selected = i;
    items.forEach((li, k) => li.classList.toggle("selected", k === i));
  };
  const select = (i) => {
    if (!items.length) return;
    mark((i + items.length) % items.length);
    items[selected].focus();
  };
  const focusedItem = () => {
    const active = document.activeElement;
    return active && active.closest ? items.indexOf(active.closest("li.finding")) : -1;
  };
  // Rejecting a critical finding the safety check verified asks why first (null: cancelled).
  const reasonDialog = document.getElementById("reject-reason");
  const askReason = (li) => new Promise((resolve) => {
    const form = reasonDialog.querySelector("form");
    form.reset();
    reasonDialog.querySelector(".reject-finding").textContent = li.querySelector(".finding-text").textContent.trim();
    reasonDialog.returnValue = "";
    reasonDialog.addEventListener("close", () => {
      const reason = form.reason.value.trim();
      li.focus();
      resolve(reasonDialog.returnValue === "reject" && reason ? reason : null);
    }, { once: true });
    reasonDialog.showModal();
    form.reason.focus();
  });
  if (reasonDialog) {
    const form = reasonDialog.querySelector("form");
    reasonDialog.querySelector("button.cancel").addEventListener("click", () => reasonDialog.close(""));
    form.reason.addEventListener("input", () => form.reason.setCustomValidity(""));
    form.addEventListener("submit", (e) => {
      if (form.reason.value.trim()) return;
      e.preventDefault();
      form.reason.setCustomValidity("Say why you reject this finding.");
      form.reason.reportValidity();
    });
  }
  const decide = async (li, decision, sentence) => {
    let reason;
    if (decision === "rejected" && li.dataset.reasonRequired && reasonDialog) {
      reason = await askReason(li);
      if (reason === null) { say("Not rejected: no reason given."); return; }
    }
    try {
      await api("POST", `/api/studies/${data.id}/findings/${li.dataset.key}`, { decision, sentence, reason, version: data.version });
      location.reload();
    } catch (error) { say(`Not saved: ${error.message}`, true); }
  };
  const openEdit = (li) => {
    if (li.querySelector("form.edit")) return;
    const form = document.createElement("form");
    form.className = "edit";
    form.innerHTML = '<input name="sentence" maxlength="500" placeholder="Replacement sentence, e.g. Small left pleural effusion." required><button type="submit">Save edit</button>';
    form.querySelector("input").value = li.querySelector(".finding-text").textContent.trim();
    form.addEventListener("submit", (e) => { e.preventDefault(); decide(li, "edited", form.sentence.value); });
    li.appendChild(form);
    form.querySelector("input").focus();
  };
  items.forEach((li, k) => {
    li.addEventListener("focusin", () => mark(k));
    li.addEventListener("click", () => mark(k));
    li.querySelectorAll("[data-decide]").forEach((b) => b.addEventListener("click", (e) => {
      e.stopPropagation();
      if (b.dataset.decide === "edited") openEdit(li); else decide(li, b.dataset.decide);
    }));
  });

  const text = document.getElementById("report-text");
  const save = document.getElementById("text-save");
  if (save) save.addEventListener("click", async () => {
    try { await api("PUT", `/api/studies/${data.id}/text`, { text: text.value, version: data.version }); location.reload(); }
    catch (error) { say(`Not saved: ${error.message}`, true); }
  });
  const reset = document.getElementById("text-reset");
  if (reset) reset.addEventListener("click", async () => {
    try { await api("PUT", `/api/studies/${data.id}/text`, { text: null, version: data.version }); location.reload(); }
    catch (error) { say(`Not saved: ${error.message}`, true); }
  });
  setupReportTools(data, text);
  const sign = document.getElementById("sign");
  // What the server would refuse is said before the confirmation, in words, and the focus
  // goes where the reader has to act (the first undecided finding, or the communication form).
  const blocked = () => {
    const blockers = data.blockers || [];
    if (!blockers.length) return false;
    say(`Not signed yet: ${blockers.map((b) => b.message).join(" ")}`, true);
    const first = blockers[0];
    const li = first.key && document.querySelector(`li.finding[data-key="${first.key}"]`);
    const form = document.querySelector('#communicate-form input[name="recipient"]');
    if (li) li.focus(); else if (first.kind === "communication" && form) form.focus();
    return true;
  };
  const doSign = async (andNext) => {
    if (!sign || blocked()) return;
    if (text && text.value !== text.defaultValue) {
      try { data.version = (await api("PUT", `/api/studies/${data.id}/text`, { text: text.value, version: data.version })).version; }
      catch (error) { say(`Not saved: ${error.message}`, true); return; }
    }
    const then = andNext ? " The next unsigned study opens after it." : "";
    if (!window.confirm(`Sign this report? A signed report cannot be changed; later changes are addenda.${then}`)) return;
    try {
      await api("POST", `/api/studies/${data.id}/sign`, { version: data.version });
      if (andNext) location.assign(`/worklist/next?after=${encodeURIComponent(data.id)}`); else location.reload();
    } catch (error) { say(`Not signed: ${error.message}`, true); }
  };
  if (sign) sign.addEventListener("click", () => doSign(false));
  const signNext = document.getElementById("sign-next");
  if (signNext) signNext.addEventListener("click", () => doSign(true));
  // The communication form's time: now, in the reader's zone (sent with the zone's offset).
  const communicate = document.getElementById("communicate-form");
  if (communicate) {
    const now = new Date();
    now.setMinutes(now.getMinutes() - now.getTimezoneOffset());
    communicate.communicated_at.value = now.toISOString().slice(0, 16);
    communicate.tz_offset.value = String(new Date().getTimezoneOffset());
  }
  const addendum = document.getElementById("addendum-form");
  if (addendum) addendum.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await api("POST", `/api/studies/${data.id}/addenda`, { text: addendum.text.value }); location.reload(); }
    catch (error) { say(`Not signed: ${error.message}`, true); }
  });

  const ask = document.getElementById("ask-form");
  ask.addEventListener("submit", async (e) => {
    e.preventDefault();
    const out = document.getElementById("answers");
    const box = document.createElement("div");
    box.className = "answer";
    box.textContent = "…";
    out.prepend(box);
    const question = ask.question.value;
    try {
      const answer = await api("POST", `/api/studies/${data.id}/ask`, { question });
      box.innerHTML = "";
      const label = document.createElement("div"); label.className = "answer-label"; label.textContent = answer.label;
      const q = document.createElement("div"); q.className = "question"; q.textContent = `Q: ${answer.question}`;
      const a = document.createElement("div"); a.textContent = answer.text;
      const state = document.createElement("div"); state.className = "answer-state";
      const badge = document.createElement("span");
      badge.className = `verdict state state-${answer.state.replace(" ", "-")}`;
      badge.textContent = answer.state;
      state.append(badge);
      if (answer.reasons && answer.reasons.length && answer.state !== "verified") {
        const why = document.createElement("span"); why.className = "why"; why.textContent = ` ${answer.reasons.join("; ")}`;
        state.append(why);
      }
      const m = document.createElement("div"); m.className = "muted";
      m.textContent = `model: ${answer.model}${answer.verifier ? ` · checked by ${answer.verifier}` : ""}`;
      box.append(label, q, a, state, m);
    } catch (error) {
      // 429: this reader's questions are still waiting; 503: every slot is busy; 504: the
      // model did not answer in time. Each says why in words, with the question it concerns.
      const why = { 429: "Not asked", 503: "Not asked", 504: "No answer in time" }[error.status];
      box.innerHTML = "";
      const q = document.createElement("div"); q.className = "question"; q.textContent = `Q: ${question}`;
      const m = document.createElement("div"); m.className = "answer-error";
      m.textContent = why ? `${why}: ${error.detail}` : `No answer: ${error.message}`;
      box.append(q, m);
      box.classList.add("error");
    }
  });

  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input:not([type=checkbox]), textarea, select, dialog") || e.ctrlKey || e.metaKey || e.altKey) return;
    // Letters act unshifted only: R (or r under Caps Lock with Shift) decides nothing.
    if (e.shiftKey && /^[a-z]$/i.test(e.key)) return;
    const at = focusedItem();
    if (at >= 0) mark(at);
    const li = items[selected];
    const keys = {
      j: () => select(selected + 1), k: () => select(selected - 1),
      a: () => li && li.querySelector('[data-decide="accepted"]') && decide(li, "accepted"),
      r: () => li && li.querySelector('[data-decide="rejected"]') && decide(li, "rejected"),
      e: () => li && li.querySelector('[data-decide="edited"]') && openEdit(li),
      "+": () => actions["zoom-in"](), "=": () => actions["zoom-in"](), "-": () => actions["zoom-out"](),
      f: () => actions.fit(), i: () => actions.invert(), w: () => actions["reset-wl"](),
      p: () => actions.prior(), s: () => doSign(false), n: () => doSign(true),
      o: () => actions.rotate(), x: () => actions.flip(), m: () => actions.magnifier(),
      l: () => actions.measure(), "1": () => viewers.preset("full"), "2": () => viewers.preset("lung"),
      "3": () => viewers.preset("soft"), "4": () => viewers.preset("bone"),
      h: () => {
        if (!heatmapSelect || !li) return;
        const code = li.dataset.heatmap;
        heatmapSelect.value = heatmapSelect.value === code ? "" : code;
        heatmapSelect.dispatchEvent(new Event("change"));
      },
      "?": () => document.getElementById("help").showModal(),
      t: () => { const b = document.getElementById("normal-template"); if (b) b.click(); },
    };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });
  if (items.length) items[0].classList.add("selected");
}

setupUpload();
setupWorklist();
setupWorklistFilters();
setupReview();
