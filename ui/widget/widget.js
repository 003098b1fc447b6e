/* Mentorly chat widget: one script tag, no framework, no CDN.
 *
 *   <script src="https://mentorly.example/widget.js" data-key="pk_..." data-token="<JWT>"
 *           data-lang="en|zh" data-title="Course helper" data-position="right|left"
 *           data-collection="course-101" async></script>
 *
 * Full-page mode (the page a learning platform's LTI launch opens, inside its iframe):
 *
 *   <script src="/widget.js" data-mode="page" data-session="lti_..." data-lang="zh|en"
 *           data-title="..." data-target="element-id"></script>
 *
 * fills its target (or the page) with the chat, always open, no launcher. Every call carries the
 * launch's session token in its body instead of the key and token: no cookie is needed, so
 * browsers blocking third-party cookies in the platform's iframe change nothing.
 *
 * Everything is rendered with textContent / DOM nodes, never innerHTML: model output and user
 * input cannot inject markup. Requests are CORS "simple" requests (text/plain JSON, multipart),
 * so browsers send no preflight. The UI lives in an open shadow root, isolated from the host CSS.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || script.dataset.mentorlyLoaded) { return; }
  script.dataset.mentorlyLoaded = "1";
  var BASE = new URL(script.src, document.baseURI).origin;
  var PAGE = script.dataset.mode === "page";
  var opts = {
    key: script.dataset.key || "",
    session: PAGE ? (script.dataset.session || "") : "",
    target: script.dataset.target || "",
    token: script.dataset.token || "",
    lang: (script.dataset.lang || (navigator.language || "en")).toLowerCase().indexOf("zh") === 0 ? "zh" : "en",
    title: script.dataset.title || "",
    position: script.dataset.position === "left" ? "left" : "right",
    collection: script.dataset.collection || null
  };
  var TEXT = {
    en: { title: "Ask Mentorly", open: "Open the assistant chat", close: "Close", send: "Send",
          placeholder: "Ask a question…", attach: "Attach an image", attached: "Image attached: ",
          remove: "Remove the image", imageOnly: "(an image)", thinking: "Thinking…", tool: "Using tool: ", done: "Done: ",
          failed: "Failed: ", sources: "Sources", you: "You", bot: "Assistant",
          mode_generated: "Quoted from the course documents; the summary was checked against them.",
          mode_quoted: "Quoted from the course documents (no summary passed the fact check).",
          mode_abstained: "The documents do not answer this, so nothing was guessed.",
          refused: "This assistant cannot be used here: ", quota: "You have reached the usage limit for now. Please try again after ",
          network: "The assistant cannot be reached right now. Please try again later.",
          queued: "Many learners are asking right now. You are number {n} in line; your answer should start in about {s} s.",
          queuedNext: "Many learners are asking right now. Your turn is next (about {s} s).",
          busy: "Many learners are asking right now. Please try again in {s} s.",
          uploading: "Uploading the image…", welcome: "Hello! How can I help you learn today?",
          welcomeName: "Hello, {name}! How can I help you learn today?",
          expired: "This page's session has ended. Open the assistant again from your course.",
          shared: "shared: " },
    zh: { title: "问问 Mentorly", open: "打开助手聊天", close: "关闭", send: "发送",
          placeholder: "请输入问题…", attach: "添加图片", attached: "已添加图片：",
          remove: "移除图片", imageOnly: "（一张图片）", thinking: "思考中…", tool: "正在使用工具：", done: "完成：",
          failed: "失败：", sources: "来源", you: "你", bot: "助手",
          mode_generated: "引自课程资料；简要回答已与原文核对。",
          mode_quoted: "引自课程资料（没有通过事实核对的简要回答，因此只显示原文）。",
          mode_abstained: "资料中没有答案，因此没有做任何猜测。",
          refused: "此网站无法使用该助手：", quota: "您已达到当前的使用上限，请在以下时间后再试：",
          network: "暂时无法连接助手，请稍后再试。",
          queued: "现在提问的同学很多。你排在第 {n} 位，大约 {s} 秒后开始回答。",
          queuedNext: "现在提问的同学很多。下一个就轮到你（大约 {s} 秒）。",
          busy: "现在提问的同学很多，请在 {s} 秒后再试。",
          uploading: "正在上传图片…", welcome: "你好！今天想学点什么？",
          welcomeName: "{name}，你好！今天想学点什么？",
          expired: "本页面的会话已结束，请从课程中重新打开助手。",
          shared: "共享资料：" }
  };
  var t = TEXT[opts.lang];
  var anon = (function () {
    try {
      var v = sessionStorage.getItem("mentorly-anon");
      if (!v) { v = Math.random().toString(36).slice(2) + Date.now().toString(36); sessionStorage.setItem("mentorly-anon", v); }
      return v;
    } catch (e) { return "visitor" + Math.random().toString(36).slice(2, 10); }
  })();
  var state = { conversation: null, upload: null, busy: false, session: null, blocked: false };

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) { Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); }); }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function icon(d) {  // a small inline SVG (no icon font, no emoji font needed)
    var ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg"), path = document.createElementNS(ns, "path");
    svg.setAttribute("viewBox", "0 0 24 24"); svg.setAttribute("width", "24"); svg.setAttribute("height", "24");
    svg.setAttribute("aria-hidden", "true"); svg.setAttribute("focusable", "false");
    path.setAttribute("d", d); path.setAttribute("fill", "none"); path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "2"); path.setAttribute("stroke-linecap", "round"); path.setAttribute("stroke-linejoin", "round");
    svg.appendChild(path); return svg;
  }
  var CHAT_ICON = "M21 12a8 8 0 0 1-11.6 7.1L4 20l1.1-4.6A8 8 0 1 1 21 12z";
  var CLIP_ICON = "M21 11.5l-8.5 8.5a5 5 0 0 1-7-7l9-9a3.5 3.5 0 0 1 5 5l-9 9a2 2 0 0 1-3-3l8.5-8.5";

  var host = el("div", { "class": PAGE ? "mentorly-widget-host mentorly-page" : "mentorly-widget-host" });
  var root = host.attachShadow({ mode: "open" });
  var css = el("link", { rel: "stylesheet", href: BASE + "/widget.css" });
  root.appendChild(css);
  var wrap = el("div", { "class": PAGE ? "mw mw-page mw-open" : "mw mw-" + opts.position,
                         lang: opts.lang === "zh" ? "zh-CN" : "en" });
  var launcher = el("button", { "class": "mw-launcher", type: "button", "aria-label": t.open,
                                "aria-expanded": "false", "aria-controls": "mw-panel" });
  launcher.appendChild(icon(CHAT_ICON));
  var panel = PAGE ? el("section", { "class": "mw-panel", id: "mw-panel", "aria-labelledby": "mw-title" })
                   : el("section", { "class": "mw-panel", id: "mw-panel", role: "dialog", "aria-modal": "false",
                                     "aria-labelledby": "mw-title", hidden: "" });
  var header = el("header", { "class": "mw-header" });
  var title = el("h2", { id: "mw-title", "class": "mw-title" }, opts.title || t.title);
  var closeBtn = el("button", { "class": "mw-close", type: "button", "aria-label": t.close }, "×");
  header.appendChild(title);
  if (!PAGE) { header.appendChild(closeBtn); }  // a page's chat is always open
  var log = el("div", { "class": "mw-log", role: "log", "aria-live": "polite", "aria-relevant": "additions text", tabindex: "0" });
  var chip = el("div", { "class": "mw-chip", hidden: "" });
  var chipText = el("span", null, "");
  var chipRemove = el("button", { type: "button", "class": "mw-chip-remove", "aria-label": t.remove }, "×");
  chip.appendChild(chipText); chip.appendChild(chipRemove);
  var form = el("form", { "class": "mw-form" });
  var fileInput = el("input", { type: "file", accept: "image/*", "class": "mw-file", id: "mw-file", "aria-label": t.attach });
  var attachBtn = el("button", { type: "button", "class": "mw-attach", "aria-label": t.attach, title: t.attach });
  attachBtn.appendChild(icon(CLIP_ICON));
  var input = el("textarea", { "class": "mw-input", rows: "1", placeholder: t.placeholder, "aria-label": t.placeholder, maxlength: "20000" });
  var sendBtn = el("button", { type: "submit", "class": "mw-send" }, t.send);
  form.appendChild(fileInput); form.appendChild(attachBtn); form.appendChild(input); form.appendChild(sendBtn);
  panel.appendChild(header); panel.appendChild(log); panel.appendChild(chip); panel.appendChild(form);
  wrap.appendChild(panel);
  if (!PAGE) { wrap.appendChild(launcher); }
  root.appendChild(wrap);

  function scroll() { log.scrollTop = log.scrollHeight; }
  function notice(text, kind) {
    var n = el("div", { "class": "mw-notice mw-" + (kind || "info"), role: kind === "error" ? "alert" : "status" }, text);
    log.appendChild(n); scroll(); return n;
  }
  function bubble(role, text) {
    var b = el("div", { "class": "mw-msg mw-" + role });
    b.appendChild(el("span", { "class": "mw-who" }, role === "user" ? t.you : t.bot));
    var body = el("div", { "class": "mw-body" }, text);
    b.appendChild(body);
    log.appendChild(b); scroll();
    return body;
  }
  function safeUrl(uri) {
    try { var u = new URL(uri); return (u.protocol === "https:" || u.protocol === "http:") ? u.href : null; }
    catch (e) { return null; }
  }
  function showSources(list, after) {
    if (!list || !list.length) { return; }
    var box = el("div", { "class": "mw-sources" });
    box.appendChild(el("div", { "class": "mw-sources-title" }, t.sources));
    var ol = el("ol");
    list.forEach(function (s) {
      var li = el("li");
      var href = s.uri ? safeUrl(s.uri) : null;
      var label = s.title || s.uri || "";
      var from = s.metadata && s.metadata.collection;
      if (PAGE && from && state.session && state.session.course && from !== state.session.course) {
        label += " (" + t.shared + from + ")";  // found in the platform's shared collections
      }
      if (href) { li.appendChild(el("a", { href: href, target: "_blank", rel: "noopener noreferrer" }, label)); }
      else { li.textContent = label; }
      ol.appendChild(li);
    });
    box.appendChild(ol);
    after.parentNode.appendChild(box); scroll();
  }
  function setBusy(busy) { state.busy = busy; sendBtn.disabled = busy || state.blocked; attachBtn.disabled = busy || state.blocked; }
  function auth() { return PAGE ? { session: opts.session } : { key: opts.key, token: opts.token || null, anon: anon }; }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (m, k) { return values[k] !== undefined ? String(values[k]) : m; });
  }
  function busyText(seconds) { return fill(t.busy, { s: seconds || 10 }); }
  function describeError(status, body) {
    var err = (body && body.error) || {};
    if (status === 429 && err.type === "server_busy") { return { kind: "busy", text: busyText(err.retry_after_s) }; }
    if (status === 429) {
      var when = err.reset_at ? new Date(err.reset_at) : new Date(Date.now() + 1000 * (err.retry_after_s || 60));
      return { kind: "quota", text: t.quota + when.toLocaleString(opts.lang === "zh" ? "zh-CN" : "en") };
    }
    if (PAGE && status === 401) { return { kind: "refused", text: t.expired }; }
    if (status === 401 || status === 403) { return { kind: "refused", text: t.refused + (err.message || status) }; }
    return { kind: "error", text: err.message || t.network };
  }
  function post(path, body, isForm) {
    var init = { method: "POST", mode: "cors", credentials: "omit", body: body };
    if (!isForm) { init.headers = { "Content-Type": "text/plain;charset=UTF-8" }; }
    return fetch(BASE + path, init);
  }
  function readError(resp) {
    return resp.json().catch(function () { return {}; }).then(function (body) { return describeError(resp.status, body); });
  }
  function fail(info) {
    if (info.kind === "refused") { state.blocked = true; setBusy(false); wrap.classList.add("mw-blocked"); }
    notice(info.text, info.kind === "quota" || info.kind === "busy" ? info.kind : "error");
  }

  function startSession() {
    return post("/widget/api/session", JSON.stringify(auth())).then(function (resp) {
      if (!resp.ok) { return readError(resp).then(function (info) { fail(info); }); }
      return resp.json().then(function (s) {
        state.session = s;
        notice(s.name ? t.welcomeName.replace("{name}", s.name) : t.welcome, "info");
        (s.messages || []).forEach(function (m) {  // the learner's history follows them across pages
          bubble(m.role === "user" ? "user" : "assistant", m.content).parentNode.classList.add("mw-history");
        });
        if (s.conversation_id) { state.conversation = s.conversation_id; }
      });
    }).catch(function () { notice(t.network, "error"); });
  }

  function handleEvent(type, data, ctx) {
    if (type === "queued") {  // every model slot is busy: say where the learner is in line
      ctx.answer.textContent = fill(data.position > 1 ? t.queued : t.queuedNext, { n: data.position, s: data.retry_after_s });
      ctx.answer.parentNode.setAttribute("data-queued", String(data.position));
      scroll();
    } else if (type === "step_started") {
      if (ctx.answer.parentNode.hasAttribute("data-queued")) { ctx.answer.textContent = t.thinking; ctx.answer.parentNode.removeAttribute("data-queued"); }
      var step = el("div", { "class": "mw-step", role: "status" });
      step.appendChild(el("span", { "class": "mw-step-title" }, t.tool + data.tool));
      ctx.steps[data.step_id] = step;
      log.insertBefore(step, ctx.answer.parentNode); scroll();
    } else if (type === "step_finished") {
      var s = ctx.steps[data.step_id];
      if (!s) { s = el("div", { "class": "mw-step" }); log.insertBefore(s, ctx.answer.parentNode); }
      var line = el("div", { "class": data.ok ? "mw-step-ok" : "mw-step-failed" },
                    (data.ok ? t.done : t.failed) + (data.ok ? (data.summary || data.tool) : (data.error || data.summary || "")));
      s.appendChild(line);
      if (data.ok && data.provenance && data.provenance.model) {
        var p = data.provenance, conf = typeof p.confidence === "number" ? " · " + Math.round(p.confidence * 100) + "%" : "";
        s.appendChild(el("div", { "class": "mw-provenance" }, p.model + (p.model_version ? " " + p.model_version : "") + conf));
      }
      scroll();
    } else if (type === "text_delta") {
      ctx.answer.parentNode.removeAttribute("data-queued");
      if (ctx.answer.classList.contains("mw-pending")) { ctx.answer.classList.remove("mw-pending"); ctx.answer.textContent = ""; }
      ctx.answer.textContent += data.text; scroll();
    } else if (type === "sources") {
      showSources(data.sources || data.items || [], ctx.answer.parentNode);
    } else if (type === "done") {
      state.conversation = data.conversation_id || state.conversation;
      if (ctx.answer.classList.contains("mw-pending")) { ctx.answer.classList.remove("mw-pending"); ctx.answer.textContent = data.text || ""; }
      ctx.answer.parentNode.setAttribute("data-done", "1");
      if (t["mode_" + data.answer_mode]) {  // how a knowledge answer was made: quoted, checked, or none
        ctx.answer.parentNode.setAttribute("data-answer-mode", data.answer_mode);
        ctx.answer.parentNode.appendChild(el("div", { "class": "mw-answer-mode" }, t["mode_" + data.answer_mode]));
      }
    } else if (type === "error") {
      var pending = ctx.answer.classList.contains("mw-pending");
      ctx.answer.classList.remove("mw-pending");
      if (pending || !ctx.answer.textContent) { ctx.answer.parentNode.remove(); }
      if (data.error_type === "server_busy") { notice(busyText(data.retry_after_s), "busy"); }
      else { notice(data.message || t.network, "error"); }
    }
  }

  function stream(resp, ctx) {
    var reader = resp.body.getReader(), decoder = new TextDecoder(), buffer = "";
    function pump() {
      return reader.read().then(function (r) {
        buffer += decoder.decode(r.value || new Uint8Array(), { stream: !r.done });
        var parts = buffer.split("\n\n");
        buffer = r.done ? "" : parts.pop();
        parts.forEach(function (chunk) {
          var type = "message", data = "";
          chunk.split("\n").forEach(function (line) {
            if (line.indexOf("event:") === 0) { type = line.slice(6).trim(); }
            else if (line.indexOf("data:") === 0) { data += line.slice(5).trim(); }
          });
          if (data) { try { handleEvent(type, JSON.parse(data), ctx); } catch (e) { /* a malformed event is skipped */ } }
        });
        if (!r.done) { return pump(); }
      });
    }
    return pump();
  }

  function send(text) {
    if (state.busy || state.blocked) { return; }
    var message = text.trim();
    if (!message && !state.upload) { return; }
    bubble("user", message || t.imageOnly);
    var answer = bubble("assistant", t.thinking);
    answer.classList.add("mw-pending");
    var ctx = { answer: answer, steps: {} };
    var body = auth();
    body.message = message; body.conversation_id = state.conversation;
    if (opts.collection) { body.collection = opts.collection; }
    body.uploads = state.upload ? [state.upload.id] : [];
    clearUpload();
    setBusy(true);
    post("/widget/api/chat", JSON.stringify(body)).then(function (resp) {
      if (!resp.ok) {
        return readError(resp).then(function (info) { answer.parentNode.remove(); fail(info); });
      }
      return stream(resp, ctx);
    }).catch(function () { answer.parentNode.remove(); notice(t.network, "error"); })
      .then(function () { setBusy(false); input.focus(); });
  }

  function clearUpload() { state.upload = null; chip.hidden = true; chipText.textContent = ""; fileInput.value = ""; }
  function upload(file) {
    if (!file || state.blocked) { return; }
    var n = notice(t.uploading, "info");
    var fd = new FormData();
    if (PAGE) { fd.append("session", opts.session); }
    else {
      fd.append("key", opts.key);
      if (opts.token) { fd.append("token", opts.token); }
      fd.append("anon", anon);
    }
    fd.append("file", file, file.name || "image");
    setBusy(true);
    post("/widget/api/uploads", fd, true).then(function (resp) {
      n.remove();
      if (!resp.ok) { return readError(resp).then(fail); }
      return resp.json().then(function (info) {
        state.upload = info; chip.hidden = false; chipText.textContent = t.attached + (file.name || "image");
      });
    }).catch(function () { n.remove(); notice(t.network, "error"); })
      .then(function () { setBusy(false); input.focus(); });
  }

  var opened = false;
  function open() {
    panel.hidden = false; launcher.setAttribute("aria-expanded", "true"); wrap.classList.add("mw-open");
    if (!opened) { opened = true; startSession(); }
    if (!PAGE) { input.focus(); }  // a page opens on load: focus there would scroll the platform's page
  }
  function close() {
    if (PAGE) { return; }  // nothing to close it to
    panel.hidden = true; launcher.setAttribute("aria-expanded", "false"); wrap.classList.remove("mw-open");
    launcher.focus();
  }
  launcher.addEventListener("click", function () { if (panel.hidden) { open(); } else { close(); } });
  closeBtn.addEventListener("click", close);
  if (!PAGE) { panel.addEventListener("keydown", function (e) { if (e.key === "Escape") { e.preventDefault(); close(); } }); }
  form.addEventListener("submit", function (e) { e.preventDefault(); var v = input.value; input.value = ""; send(v); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit")); }
  });
  attachBtn.addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () { upload(fileInput.files && fileInput.files[0]); });
  chipRemove.addEventListener("click", clearUpload);

  function mount() {
    if (!PAGE) { document.body.appendChild(host); return; }
    (document.getElementById(opts.target) || document.body).appendChild(host);
    open();  // the page is the chat: open at once, with the learner's history
  }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
  window.MentorlyWidget = { open: open, close: close };
})();
