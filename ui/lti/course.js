/* Mentorly LTI course panel: what an instructor sees next to the chat after a launch.
 *
 * Shown only when the launch made the user an instructor (data-role on #lti-app, filled in by the
 * server from the signed launch; the server checks the role again on every call, so changing the
 * page changes nothing). Upload and remove the course's documents, see the collection's status
 * and the course's usage. Every call sends the launch's session token as
 * "Authorization: Bearer lti_…" (no cookie: the page runs in the platform's cross-site iframe).
 * Rendered with DOM nodes and textContent only, never innerHTML.
 */
(function () {
  "use strict";
  var app = document.getElementById("lti-app");
  if (!app || app.dataset.role !== "instructor") { return; }  // learners see the chat only
  var widget = document.querySelector("script[data-mode='page'][data-session]");
  var session = widget ? widget.dataset.session || "" : "";
  var lang = app.dataset.lang === "zh" ? "zh" : "en";
  var locale = lang === "zh" ? "zh-CN" : "en";
  var API = "/lti/api/course";
  var ACCEPT = ".txt,.md,.markdown,.pdf,.html,.htm,.docx";
  var TEXT = {
    en: { chat: "Chat", course: "Course", tabs: "Course assistant", status: "Collection status",
          documents: "Documents", chunks: "Passages", index: "Index", inSync: "in sync with the database",
          outOfSync: "needs attention", empty: "No documents yet: upload the course's documents so the assistant can answer from them.",
          check: "Check again", upload: "Add documents", drop: "Drop files here or choose them",
          choose: "Choose files", accepts: "Accepted: .txt .md .pdf .html .docx, up to {mb} MB each.",
          uploading: "Uploading {name}…", added: "Added {name} ({n} passages).", replaced: "Replaced {name} ({n} passages).",
          skipped: "{name} is unchanged.", failed: "{name} could not be added: {why}",
          list: "Course documents", title: "Title", file: "File", added_at: "Added", actions: "",
          remove: "Remove", removeLabel: "Remove {name}", confirm: "Remove {name} from the course? The assistant will no longer answer from it.",
          removed: "Removed {name}.", usage: "Usage in this course", refresh: "Refresh",
          turns: "Questions answered", toolCalls: "Tool calls", tokens: "Tokens", launches: "Launches",
          learners: "People", person: "Person", none: "No use yet.", loading: "Loading…",
          expired: "This page's session has ended. Open the assistant again from your course.",
          unavailable: "Course documents are not available on this server (the knowledge plugin is off).",
          failedLoad: "Could not load: {why}", network: "The server cannot be reached right now." },
    zh: { chat: "聊天", course: "课程", tabs: "课程助手", status: "文档集状态",
          documents: "文档", chunks: "段落", index: "索引", inSync: "与数据库一致",
          outOfSync: "需要处理", empty: "还没有文档：上传课程资料后，助手就能据此回答。",
          check: "重新检查", upload: "添加文档", drop: "把文件拖到这里，或选择文件",
          choose: "选择文件", accepts: "支持 .txt .md .pdf .html .docx，每个文件不超过 {mb} MB。",
          uploading: "正在上传 {name}…", added: "已添加 {name}（{n} 段）。", replaced: "已替换 {name}（{n} 段）。",
          skipped: "{name} 没有变化。", failed: "{name} 无法添加：{why}",
          list: "课程文档", title: "标题", file: "文件", added_at: "添加时间", actions: "",
          remove: "移除", removeLabel: "移除 {name}", confirm: "从课程中移除 {name}？助手将不再依据它回答。",
          removed: "已移除 {name}。", usage: "本课程的使用情况", refresh: "刷新",
          turns: "已回答的问题", toolCalls: "工具调用", tokens: "令牌数", launches: "启动次数",
          learners: "人数", person: "用户", none: "还没有使用记录。", loading: "加载中…",
          expired: "本页面的会话已结束，请从课程中重新打开助手。",
          unavailable: "此服务器未提供课程文档功能（知识库插件未启用）。",
          failedLoad: "加载失败：{why}", network: "暂时无法连接服务器。" }
  };
  var t = TEXT[lang];
  var ended = false;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) { Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); }); }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (m, k) { return values[k] !== undefined ? String(values[k]) : m; });
  }
  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }
  function number(n) { return Number(n || 0).toLocaleString(locale); }

  /* -- calls ---------------------------------------------------------------------------- */

  function ApiError(status, message) { this.status = status; this.message = message; }
  function call(method, path, body) {
    var init = { method: method, credentials: "omit", cache: "no-store",
                 headers: { Authorization: "Bearer " + session } };
    if (body) { init.body = body; }
    return fetch(API + path, init).catch(function () { throw new ApiError(0, t.network); })
      .then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (data) {
          if (resp.ok) { return data; }
          var message = (data && data.error && data.error.message) || String(resp.status);
          if (resp.status === 401) { sessionEnded(); message = t.expired; }
          // listing the documents or the status never answers 404 itself: not installed here
          if (resp.status === 404 && method === "GET" && path !== "/usage") { message = t.unavailable; }
          throw new ApiError(resp.status, message);
        });
      });
  }
  function sessionEnded() {
    if (ended) { return; }
    ended = true;
    banner.hidden = false; banner.textContent = t.expired;
    Array.prototype.forEach.call(panel.querySelectorAll("button, input"), function (b) { b.disabled = true; });
  }

  /* -- layout: tabs for the chat and the course panel ------------------------------------ */

  var bar = document.getElementById("lti-bar");
  var main = document.getElementById("lti-main");
  var chat = document.getElementById("lti-chat");
  if (!bar || !main || !chat) { return; }
  app.classList.add("lti-instructor");
  bar.hidden = false;
  var tabs = el("div", { role: "tablist", "class": "lti-tabs", "aria-label": t.tabs });
  var chatTab = el("button", { type: "button", role: "tab", id: "lti-tab-chat", "aria-controls": "lti-chat",
                               "aria-selected": "true" }, t.chat);
  var courseTab = el("button", { type: "button", role: "tab", id: "lti-tab-course", "aria-controls": "lti-course",
                                 "aria-selected": "false", tabindex: "-1" }, t.course);
  tabs.appendChild(chatTab); tabs.appendChild(courseTab);
  bar.insertBefore(tabs, bar.firstChild);
  chat.setAttribute("role", "tabpanel"); chat.setAttribute("aria-labelledby", "lti-tab-chat");
  var panel = el("section", { id: "lti-course", "class": "lti-course", role: "tabpanel",
                              "aria-labelledby": "lti-tab-course", hidden: "" });
  main.appendChild(panel);
  var banner = el("div", { "class": "lti-banner", role: "alert", hidden: "" });
  panel.appendChild(banner);

  var loaded = false;
  function select(course) {
    chatTab.setAttribute("aria-selected", course ? "false" : "true");
    courseTab.setAttribute("aria-selected", course ? "true" : "false");
    chatTab.tabIndex = course ? -1 : 0; courseTab.tabIndex = course ? 0 : -1;
    chat.hidden = course; panel.hidden = !course;
    if (course && !loaded) { loaded = true; refreshAll(); }
  }
  chatTab.addEventListener("click", function () { select(false); });
  courseTab.addEventListener("click", function () { select(true); });
  tabs.addEventListener("keydown", function (e) {
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight" && e.key !== "Home" && e.key !== "End") { return; }
    e.preventDefault();
    var toCourse = e.key === "End" || (e.key !== "Home" && chatTab.getAttribute("aria-selected") === "true");
    select(toCourse); (toCourse ? courseTab : chatTab).focus();
  });

  function card(titleText) {
    var box = el("section", { "class": "lti-card" });
    var id = "lti-h-" + Math.random().toString(36).slice(2, 8);
    box.setAttribute("aria-labelledby", id);
    box.appendChild(el("h2", { id: id }, titleText));
    panel.appendChild(box);
    return box;
  }

  /* -- status ---------------------------------------------------------------------------- */

  var statusCard = card(t.status);
  var statusBody = el("div", { "class": "lti-status", "aria-live": "polite" }, t.loading);
  var checkBtn = el("button", { type: "button", "class": "lti-button" }, t.check);
  statusCard.appendChild(statusBody); statusCard.appendChild(checkBtn);
  var maxMb = 50;

  function stat(label, value, kind) {
    var item = el("div", { "class": "lti-stat" + (kind ? " lti-" + kind : "") });
    item.appendChild(el("span", { "class": "lti-stat-value" }, value));
    item.appendChild(el("span", { "class": "lti-stat-label" }, label));
    return item;
  }
  function loadStatus() {
    return call("GET", "/status").then(function (s) {
      clear(statusBody);
      if (s.max_bytes) { maxMb = Math.round(s.max_bytes / (1024 * 1024)); accepts.textContent = fill(t.accepts, { mb: maxMb }); }
      var grid = el("div", { "class": "lti-stats" });
      grid.appendChild(stat(t.documents, number(s.documents)));
      grid.appendChild(stat(t.chunks, number(s.chunks)));
      grid.appendChild(stat(t.index, s.in_sync ? t.inSync : t.outOfSync, s.in_sync ? "ok" : "warn"));
      statusBody.appendChild(grid);
      if (!s.documents) { statusBody.appendChild(el("p", { "class": "lti-hint" }, t.empty)); }
      if (s.problems && s.problems.length) {
        var ul = el("ul", { "class": "lti-problems" });
        s.problems.forEach(function (p) { ul.appendChild(el("li", null, p)); });
        statusBody.appendChild(ul);
      }
    }).catch(function (e) { clear(statusBody); statusBody.appendChild(el("p", { "class": "lti-error" }, fill(t.failedLoad, { why: e.message }))); });
  }
  checkBtn.addEventListener("click", function () { statusBody.textContent = t.loading; loadStatus(); });

  /* -- upload ---------------------------------------------------------------------------- */

  var uploadCard = card(t.upload);
  var zone = el("div", { "class": "lti-drop" });
  var fileInput = el("input", { type: "file", id: "lti-file", accept: ACCEPT, multiple: "", "class": "lti-file" });
  var chooseLabel = el("label", { "for": "lti-file", "class": "lti-button" }, t.choose);
  zone.appendChild(el("p", null, t.drop));
  zone.appendChild(fileInput); zone.appendChild(chooseLabel);
  var accepts = el("p", { "class": "lti-hint" }, fill(t.accepts, { mb: maxMb }));
  var uploadLog = el("ul", { "class": "lti-log", "aria-live": "polite" });
  uploadCard.appendChild(zone); uploadCard.appendChild(accepts); uploadCard.appendChild(uploadLog);

  function logLine(text, kind) {
    var li = el("li", { "class": kind ? "lti-" + kind : "" }, text);
    uploadLog.insertBefore(li, uploadLog.firstChild);
    return li;
  }
  function uploadOne(file) {
    var line = logLine(fill(t.uploading, { name: file.name }));
    var form = new FormData();
    form.append("file", file, file.name);
    return call("POST", "/documents", form).then(function (report) {
      var f = (report.files && report.files[0]) || {};
      var key = f.action === "replaced" ? "replaced" : f.action === "skipped" ? "skipped" : f.action === "failed" ? "failed" : "added";
      line.textContent = fill(t[key], { name: f.source || file.name, n: number(f.chunks), why: f.reason || "" });
      line.className = key === "failed" ? "lti-error" : "lti-ok";
    }).catch(function (e) {
      line.textContent = fill(t.failed, { name: file.name, why: e.message }); line.className = "lti-error";
    });
  }
  function uploadAll(files) {
    if (ended || !files || !files.length) { return; }
    var list = Array.prototype.slice.call(files);
    var chain = Promise.resolve();
    list.forEach(function (file) { chain = chain.then(function () { return uploadOne(file); }); });
    chain.then(function () { fileInput.value = ""; loadDocuments(); loadStatus(); });
  }
  fileInput.addEventListener("change", function () { uploadAll(fileInput.files); });
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("lti-drag"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.remove("lti-drag"); });
  });
  zone.addEventListener("drop", function (e) { uploadAll(e.dataTransfer && e.dataTransfer.files); });

  /* -- documents ------------------------------------------------------------------------- */

  var docsCard = card(t.list);
  var docsBody = el("div", { "class": "lti-docs" }, t.loading);
  var docsNote = el("p", { "class": "lti-hint", "aria-live": "polite" });
  docsCard.appendChild(docsBody); docsCard.appendChild(docsNote);

  function table(headers) {
    var tbl = el("table", { "class": "lti-table" }), head = el("tr");
    headers.forEach(function (h) { head.appendChild(el("th", { scope: "col" }, h)); });
    var thead = el("thead"); thead.appendChild(head); tbl.appendChild(thead);
    var tbody = el("tbody"); tbl.appendChild(tbody);
    return { table: tbl, body: tbody };
  }
  function when(iso) {
    var d = iso ? new Date(iso) : null;
    return d && !isNaN(d.getTime()) ? d.toLocaleString(locale) : "";
  }
  function loadDocuments() {
    return call("GET", "/documents").then(function (data) {
      clear(docsBody);
      var docs = data.documents || [];
      if (!docs.length) { docsBody.appendChild(el("p", { "class": "lti-hint" }, t.empty)); return; }
      var tbl = table([t.title, t.file, t.chunks, t.added_at, t.actions]);
      docs.forEach(function (d) {
        var tr = el("tr");
        tr.appendChild(el("td", null, d.title || d.source));
        tr.appendChild(el("td", { "class": "lti-mono" }, d.source));
        tr.appendChild(el("td", { "class": "lti-num" }, number(d.chunks)));
        tr.appendChild(el("td", null, when(d.added)));
        var cell = el("td"), btn = el("button", { type: "button", "class": "lti-button lti-danger",
                                                  "aria-label": fill(t.removeLabel, { name: d.source }) }, t.remove);
        btn.addEventListener("click", function () { remove(d.source, btn); });
        cell.appendChild(btn); tr.appendChild(cell);
        tbl.body.appendChild(tr);
      });
      docsBody.appendChild(tbl.table);
    }).catch(function (e) { clear(docsBody); docsBody.appendChild(el("p", { "class": "lti-error" }, fill(t.failedLoad, { why: e.message }))); });
  }
  function remove(source, btn) {
    if (ended || !window.confirm(fill(t.confirm, { name: source }))) { return; }
    btn.disabled = true;
    call("DELETE", "/documents/" + encodeURIComponent(source)).then(function () {
      docsNote.textContent = fill(t.removed, { name: source });
      loadDocuments(); loadStatus();
    }).catch(function (e) { btn.disabled = false; docsNote.textContent = fill(t.failed, { name: source, why: e.message }); });
  }

  /* -- usage ----------------------------------------------------------------------------- */

  var usageCard = card(t.usage);
  var usageBody = el("div", { "class": "lti-usage", "aria-live": "polite" }, t.loading);
  var refreshBtn = el("button", { type: "button", "class": "lti-button" }, t.refresh);
  usageCard.appendChild(usageBody); usageCard.appendChild(refreshBtn);

  function loadUsage() {
    return call("GET", "/usage").then(function (u) {
      clear(usageBody);
      var s = u.totals || {}, grid = el("div", { "class": "lti-stats" });
      grid.appendChild(stat(t.turns, number(s.turns)));
      grid.appendChild(stat(t.toolCalls, number(s.tool_calls)));
      grid.appendChild(stat(t.tokens, number(s.tokens)));
      grid.appendChild(stat(t.launches, number(s.launches)));
      grid.appendChild(stat(t.learners, number(s.learners)));
      usageBody.appendChild(grid);
      var people = u.learners || [];
      if (!people.length) { usageBody.appendChild(el("p", { "class": "lti-hint" }, t.none)); return; }
      var tbl = table([t.person, t.turns, t.toolCalls, t.tokens, t.launches]);
      people.forEach(function (p) {
        var tr = el("tr");
        tr.appendChild(el("td", { title: p.user }, p.name || p.user));
        [p.turns, p.tool_calls, p.tokens, p.launches].forEach(function (v) { tr.appendChild(el("td", { "class": "lti-num" }, number(v))); });
        tbl.body.appendChild(tr);
      });
      usageBody.appendChild(tbl.table);
    }).catch(function (e) { clear(usageBody); usageBody.appendChild(el("p", { "class": "lti-error" }, fill(t.failedLoad, { why: e.message }))); });
  }
  refreshBtn.addEventListener("click", function () { usageBody.textContent = t.loading; loadUsage(); });

  function refreshAll() { loadStatus(); loadDocuments(); loadUsage(); }
})();
