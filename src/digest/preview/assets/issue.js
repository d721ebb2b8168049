"use strict";
(function () {
  const el = window.digestEl;
  const $ = (id) => document.getElementById(id);
  const slug = decodeURIComponent(location.pathname.split("/")[2] || "");
  const frame = $("email");
  const CHOICES = { w: ["desktop", "mobile"], m: ["light", "dark"], v: ["email", "text", "headers", "source"] };
  const DEFAULTS = { w: "desktop", m: "light", v: "email", s: "" };
  const STORE = "digest-preview";

  // State: defaults, then what this browser used last (localStorage), then the URL hash, which wins
  // so that a reload or a shared link shows the same width, mode, view and subscriber.
  const state = Object.assign({}, DEFAULTS, readStored(), readHash());
  let data = null;
  let ticket = 0;

  function valid(key, value) {
    return key === "s" ? typeof value === "string" : CHOICES[key].includes(value);
  }
  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    const out = {};
    for (const key of Object.keys(DEFAULTS)) {
      if (params.has(key) && valid(key, params.get(key))) out[key] = params.get(key);
    }
    return out;
  }
  function readStored() {
    try {
      const saved = JSON.parse(localStorage.getItem(STORE) || "{}");
      const out = {};
      for (const key of ["w", "m", "v"]) if (valid(key, saved[key])) out[key] = saved[key];
      return out;
    } catch (err) {
      return {};
    }
  }
  function save() {
    const params = new URLSearchParams();
    for (const key of Object.keys(DEFAULTS)) if (state[key] !== DEFAULTS[key]) params.set(key, state[key]);
    const hash = params.toString();
    history.replaceState(null, "", hash ? `#${hash}` : location.pathname + location.search);
    try {
      localStorage.setItem(STORE, JSON.stringify({ w: state.w, m: state.m, v: state.v }));
    } catch (err) { /* private mode: the hash still keeps the state */ }
  }

  // --- controls -----------------------------------------------------------------------------

  function applyControls() {
    for (const [attr, key] of [["width", "w"], ["mode", "m"], ["view", "v"]]) {
      for (const button of document.querySelectorAll(`[data-${attr}]`)) {
        button.setAttribute("aria-pressed", String(button.dataset[attr] === state[key]));
      }
    }
    const stage = $("view-email");
    stage.classList.toggle("mobile", state.w === "mobile");
    stage.classList.toggle("dark", state.m === "dark");
    for (const view of CHOICES.v) $(`view-${view}`).hidden = state.v !== view;
    document.body.dataset.width = state.w;
    document.body.dataset.mode = state.m;
    document.body.dataset.view = state.v;
  }

  for (const [attr, key] of [["width", "w"], ["mode", "m"], ["view", "v"]]) {
    for (const button of document.querySelectorAll(`[data-${attr}]`)) {
      button.addEventListener("click", () => {
        state[key] = button.dataset[attr];
        save();
        applyControls();
        if (key === "m") loadFrame();
        if (key === "w" || key === "v") settle(fit);
      });
    }
  }

  // --- the email frame ----------------------------------------------------------------------

  function frameUrl() {
    const params = new URLSearchParams({ mode: state.m, g: data ? data.generation : 0 });
    if (state.s) params.set("subscriber", state.s);
    return `/issue/${encodeURIComponent(slug)}/email.html?${params}`;
  }
  function loadFrame() {
    if (!data || !data.ok) return;
    const url = frameUrl();
    if (frame.dataset.url !== url) {
      frame.dataset.url = url;
      frame.src = url;
    }
  }
  function fit() {
    const doc = frame.contentDocument;
    if (!doc || !doc.documentElement) return;
    // The frame grows to the email's full height, so the page scrolls (and keeps its scroll
    // position when the email is re-rendered) instead of a scrollbar inside the frame.
    const height = Math.ceil(doc.documentElement.getBoundingClientRect().height);
    frame.style.height = `${Math.max(height, 120)}px`;
  }
  function settle(fn) {
    requestAnimationFrame(() => requestAnimationFrame(fn));
  }
  frame.addEventListener("load", () => {
    fit();
    const doc = frame.contentDocument;
    if (doc) for (const img of doc.images) if (!img.complete) img.addEventListener("load", fit);
    document.body.dataset.frame = frame.dataset.url || "";
  });
  window.addEventListener("resize", () => settle(fit));

  // --- data ---------------------------------------------------------------------------------

  async function refresh() {
    const mine = ++ticket;
    const params = state.s ? `?subscriber=${encodeURIComponent(state.s)}` : "";
    let response, body;
    try {
      response = await fetch(`/api/issue/${encodeURIComponent(slug)}${params}`, { cache: "no-store" });
      body = await response.json();
    } catch (err) {
      return; // the server is restarting; the live stream reconnects and refreshes
    }
    if (mine !== ticket) return; // a newer refresh is on its way
    data = body;
    live.seen(body.generation);
    show(body);
  }

  function kb(bytes) {
    return `${(bytes / 1024).toFixed(1)} KB`;
  }

  function show(d) {
    document.body.dataset.generation = d.generation;
    $("error").hidden = d.ok;
    $("views").hidden = !d.ok;
    $("notices").replaceChildren();
    if (!d.ok) {
      document.body.dataset.state = "error";
      const e = d.error;
      $("error-where").textContent = e.file ? ` — ${e.file}${e.line ? `, line ${e.line}` : ""}` : "";
      $("error-message").textContent = e.message;
      $("error-hint").textContent = e.hint ? `→ ${e.hint}` : "";
      if ($("title").textContent === "Loading…") $("title").textContent = slug;
      $("size").replaceChildren();
      return;
    }
    document.body.dataset.state = "ok";
    document.title = `${d.issue.title} · digest preview`;
    $("title").textContent = d.issue.title;
    $("subject").textContent = d.subject;
    $("preheader").textContent = d.preheader ? `— ${d.preheader}` : "";
    showSize(d);
    $("text").textContent = d.text;
    $("source").textContent = d.html;
    const rows = d.headers.map(([name, value]) => el("tr", {}, el("th", { text: name }), el("td", { text: value })));
    $("headers").replaceChildren(...rows);
    const eml = new URLSearchParams();
    if (state.s) eml.set("subscriber", state.s);
    $("eml").href = `/issue/${encodeURIComponent(slug)}/message.eml${state.s ? `?${eml}` : ""}`;
    showSubscriber(d);
    for (const warning of d.warnings) $("notices").append(el("div", { class: "notice", text: warning }));
    for (const f of d.checks || []) {
      // The pre-send checks: an error would stop `digest send`, a warning needs accepting.
      $("notices").append(el("div", { class: `notice check${f.level === "error" ? " bad" : ""}`, "data-code": f.code },
        el("strong", { text: `${f.level}: ${f.code}` }), ` ${f.where ? `${f.where}: ` : ""}${f.message}`,
        f.hint ? el("span", { class: "muted", text: ` → ${f.hint}` }) : null));
    }
    loadFrame();
    settle(fit);
  }

  function showSize(d) {
    const size = $("size");
    size.classList.toggle("over", d.clipped);
    if (d.clipped) {
      size.replaceChildren(el("strong", { text: `⚠ HTML ${kb(d.html_bytes)}` }),
        ` — over Gmail's ~${Math.round(d.clip_bytes / 1024)} KB limit: Gmail clips it, and the rest, unsubscribe link included, hides behind "View entire message"`);
    } else {
      size.replaceChildren(`HTML ${kb(d.html_bytes)} `, el("span", { class: "muted", text: `· Gmail clips at ~${Math.round(d.clip_bytes / 1024)} KB` }));
    }
  }

  function showSubscriber(d) {
    const sub = d.subscriber;
    const chip = $("sub-current");
    chip.replaceChildren(el("span", { class: "who", text: sub.name ? `${sub.name} <${sub.email}>` : sub.email }));
    if (!sub.in_audience) {
      chip.append(el("span", { class: "flag", text: "not in audience", title: `This issue goes to: ${d.issue.audience.join(", ")}` }));
    }
    if (state.s) {
      const reset = el("button", { type: "button", class: "reset", title: "Back to the list's first subscriber", text: "×" });
      reset.addEventListener("click", () => choose(""));
      chip.append(reset);
    }
  }

  // --- subscriber picker --------------------------------------------------------------------

  const search = $("sub-search");
  const results = $("sub-results");
  let searchTicket = 0;
  let searchTimer = null;
  let active = -1;

  function choose(email) {
    state.s = email;
    save();
    search.value = "";
    closeResults();
    refresh();
  }
  function closeResults() {
    results.hidden = true;
    search.setAttribute("aria-expanded", "false");
    active = -1;
  }
  function options() {
    return Array.from(results.querySelectorAll("li[data-email]"));
  }
  function highlight(index) {
    const items = options();
    active = Math.max(-1, Math.min(index, items.length - 1));
    items.forEach((item, i) => item.setAttribute("aria-selected", String(i === active)));
  }
  async function runSearch() {
    const mine = ++searchTicket;
    let found;
    try {
      const response = await fetch(`/api/subscribers?q=${encodeURIComponent(search.value)}`, { cache: "no-store" });
      found = await response.json();
    } catch (err) {
      return;
    }
    if (mine !== searchTicket) return;
    results.replaceChildren();
    if (found.error) results.append(el("li", { class: "info bad", text: found.error }));
    for (const match of found.matches) {
      const item = el("li", { role: "option", "data-email": match.email },
        el("span", { class: "name", text: match.name || match.email }),
        match.name ? el("span", { class: "email", text: match.email }) : null);
      item.addEventListener("mousedown", (event) => {
        event.preventDefault(); // keep focus: the click must not blur the input first
        choose(match.email);
      });
      results.append(item);
    }
    const shown = found.matches.length;
    let info = `${found.count} subscribers in ${found.file}`;
    if (search.value.trim()) info = `${found.total_matches} of ${found.count} match`;
    if (found.total_matches > shown) info += ` · first ${shown} shown — type to narrow`;
    if (!found.error) results.prepend(el("li", { class: "info", text: info }));
    results.hidden = false;
    search.setAttribute("aria-expanded", "true");
    highlight(shown ? 0 : -1);
  }
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 120);
  });
  search.addEventListener("focus", runSearch);
  search.addEventListener("blur", () => setTimeout(closeResults, 150));
  search.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") { highlight(active + 1); event.preventDefault(); }
    else if (event.key === "ArrowUp") { highlight(active - 1); event.preventDefault(); }
    else if (event.key === "Escape") { closeResults(); }
    else if (event.key === "Enter") {
      const items = options();
      if (items[active]) choose(items[active].dataset.email);
      event.preventDefault();
    }
  });

  // --- start --------------------------------------------------------------------------------

  window.addEventListener("hashchange", () => {
    Object.assign(state, DEFAULTS, readStored(), readHash());
    applyControls();
    refresh();
  });
  applyControls();
  const live = window.digestLive(refresh);
  refresh();
})();
