// Live reload over Server-Sent Events. The stream is closed while the tab is hidden: browsers allow
// only ~6 open connections per host over HTTP/1.1, and every open preview tab would hold one.
"use strict";
window.digestLive = function (onChange) {
  const badge = document.getElementById("live");
  let source = null;
  let known = null;
  function show(connected) {
    badge.textContent = connected ? "● live" : "○ reconnecting…";
    badge.classList.toggle("on", connected);
  }
  function open() {
    if (source) return;
    source = new EventSource("/events");
    source.addEventListener("hello", (event) => {
      show(true);
      const generation = Number(event.data);
      // A server restart or changes missed while hidden: catch up.
      if (known !== null && generation !== known) onChange(generation);
      known = generation;
    });
    source.addEventListener("change", (event) => {
      known = Number(event.data);
      onChange(known);
    });
    source.onerror = () => show(false);
  }
  function close() {
    if (source) source.close();
    source = null;
  }
  document.addEventListener("visibilitychange", () => (document.hidden ? close() : open()));
  window.addEventListener("pagehide", close);
  open();
  return { seen(generation) { known = generation; } };
};

window.digestEl = function (tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) el.append(child);
  }
  return el;
};

window.digestErrorBox = function (error) {
  const el = window.digestEl;
  const where = error.file ? `${error.file}${error.line ? `, line ${error.line}` : ""}` : "";
  return el("div", { class: "error-inline" },
    where ? el("div", { class: "where", text: where }) : null,
    el("div", { class: "message", text: error.message }),
    error.hint ? el("div", { class: "hint", text: "→ " + error.hint }) : null);
};
