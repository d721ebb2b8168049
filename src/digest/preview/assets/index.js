"use strict";
(function () {
  const el = window.digestEl;
  const rows = document.getElementById("issue-rows");
  const notices = document.getElementById("notices");
  let pending = 0;

  async function load() {
    const ticket = ++pending;
    let data;
    try {
      const response = await fetch("/api/issues", { cache: "no-store" });
      data = await response.json();
    } catch (err) {
      return; // server restarting: the live stream brings us back
    }
    if (ticket !== pending) return;
    live.seen(data.generation);
    document.getElementById("folder").textContent = `${data.issues.length} in ${data.issues_folder}/ · newest first`;
    notices.replaceChildren();
    if (data.config_error) {
      notices.append(el("div", { class: "notice bad" }, el("strong", { text: "digest.toml: " }), window.digestErrorBox(data.config_error)));
    }
    if (data.ledger_error) notices.append(el("div", { class: "notice", text: data.ledger_error }));
    rows.replaceChildren();
    if (!data.issues.length) {
      rows.append(el("tr", {}, el("td", { colspan: "3", class: "muted", text: `No issue files in ${data.issues_folder}/ yet. Create one with: digest new "Title"` })));
    }
    for (const issue of data.issues) {
      const link = el("a", { href: issue.url, class: "issue-link", text: issue.title || issue.slug });
      const main = el("td", { class: "col-issue" }, link);
      if (issue.error) {
        main.append(el("div", { class: "file", text: issue.file }), window.digestErrorBox(issue.error));
      } else {
        main.append(el("div", { class: "subject", text: issue.subject }), el("div", { class: "file", text: issue.file }));
      }
      const state = issue.error
        ? el("span", { class: "state broken", text: "cannot load" })
        : el("span", { class: `state ${issue.state.kind}`, text: issue.state.label });
      rows.append(el("tr", { class: issue.error ? "broken" : "", "data-slug": issue.slug },
        el("td", { class: "col-date", text: issue.date || "—" }), main, el("td", { class: "col-state" }, state)));
    }
    document.body.dataset.state = "ok";
    document.body.dataset.generation = data.generation;
  }

  const live = window.digestLive(load);
  load();
})();
