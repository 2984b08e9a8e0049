// The agent playground (/playground): agents, a streamed chat with tool calls inline, the
// caller's threads, and the "auth" panel. Only the public API, with the session cookie:
//   GET  /api/agents                      the agents
//   POST /api/agents/{id}/stream          a run, as server-sent events (fetch + a reader:
//                                         EventSource cannot POST)
//   /api/memory/threads[/{id}[/messages]] threads: list, create, rename, delete, read
//   GET  /api/auth-context                what the server sees for this request
// Errors are shown as sentences, never as raw JSON or a stack trace.
"use strict";
(() => {
  const root = document.getElementById("playground");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const API = {agents: root.dataset.agents, threads: root.dataset.threads, context: root.dataset.context};
  const MEMORY = root.dataset.memory === "on";

  const els = {
    agent: $("pg-agent"), agentAbout: $("pg-agent-about"), agentsAlert: $("pg-agents-alert"),
    threads: $("pg-threads"), noThreads: $("pg-no-threads"), threadsAlert: $("pg-threads-alert"),
    newThread: $("pg-new"), title: $("pg-chat-h"), log: $("pg-log"), empty: $("pg-empty"),
    form: $("pg-chat"), input: $("pg-input"), send: $("pg-send"), stop: $("pg-stop"),
    chatAlert: $("pg-chat-alert"), status: $("pg-chat-status"),
    authFacts: $("pg-auth-facts"), authJson: $("pg-auth-json"), authAlert: $("pg-auth-alert"),
    authRefresh: $("pg-auth-refresh"),
  };
  // creating: the new thread being made, which a message sent meanwhile must wait for.
  const state = {agents: {}, threads: [], threadId: null, running: null, creating: null};

  // ---- errors as sentences --------------------------------------------------------------
  const BY_STATUS = {
    0: "The server could not be reached. Check your connection and try again.",
    401: "Your session has ended. Sign in again to go on.",
    403: "You are not allowed to do that.",
    404: "That is not there any more.",
    413: "That message is too long.",
    429: "Too many requests. Wait a moment and try again.",
    502: "The agent's model failed. Try again in a moment.",
    503: "The server is unavailable right now. Try again in a moment.",
  };

  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function sentence(status, body) {
    // The API's errors are {"error": "..."}: a sentence meant for people. Anything else
    // (an HTML error page, a proxy's text) is replaced by a sentence of our own.
    const said = body && typeof body === "object" && typeof body.error === "string" ? body.error.trim() : "";
    if (status === 401) return BY_STATUS[401];
    if (said && said !== "Internal server error" && said.length < 300) {
      return status === 502 ? `The agent's model failed: ${said}` : said;
    }
    return BY_STATUS[status] || (status >= 500
      ? "Something went wrong on the server. Try again in a moment."
      : "That did not work. Try again.");
  }

  async function call(method, url, body) {
    const init = {method, credentials: "same-origin", headers: {Accept: "application/json"}};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try { response = await fetch(url, init); } catch { throw new APIError(0, BY_STATUS[0]); }
    return answerOf(response);
  }

  async function answerOf(response) {
    let data = null;
    try { data = await response.json(); } catch { data = null; }
    if (!response.ok) throw new APIError(response.status, sentence(response.status, data));
    return data;
  }

  function show(alert, message) {
    alert.textContent = message || "";
    alert.hidden = !message;
    if (message && alertsSignIn(message)) {
      const link = document.createElement("a");
      link.href = "/sign-in?next=" + encodeURIComponent(location.pathname);
      link.textContent = "Sign in";
      alert.append(" ", link);
    }
  }
  const alertsSignIn = (message) => message === BY_STATUS[401];

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function pretty(value) {
    if (typeof value === "string") return value;
    try { return JSON.stringify(value, null, 2); } catch { return String(value); }
  }

  // ---- agents -----------------------------------------------------------------------------
  async function loadAgents() {
    try {
      state.agents = await call("GET", API.agents) || {};
    } catch (error) {
      show(els.agentsAlert, error.message);
      els.agent.replaceChildren(new Option("No agents", ""));
      return;
    }
    const ids = Object.keys(state.agents);
    els.agent.replaceChildren(...ids.map((id) => new Option(state.agents[id].name || id, id)));
    if (!ids.length) els.agent.append(new Option("No agents you may use", ""));
    els.agent.disabled = !ids.length;
    const wanted = new URLSearchParams(location.search).get("agent");
    if (wanted && state.agents[wanted]) els.agent.value = wanted;
    describeAgent();
  }

  function describeAgent() {
    const agent = state.agents[els.agent.value];
    if (!agent) { els.agentAbout.textContent = ""; return; }
    const tools = Object.keys(agent.tools || {});
    els.agentAbout.textContent = (agent.instructions ? agent.instructions + " " : "") +
      (tools.length ? `Tools: ${tools.join(", ")}.` : "No tools.");
  }

  // ---- the transcript ---------------------------------------------------------------------
  function clearLog() {
    els.log.replaceChildren(els.empty);
    els.empty.hidden = false;
  }

  function addMessage(role, text) {
    els.empty.hidden = true;
    const item = el("div", `msg msg-${role}`);
    item.append(el("p", "msg-who", role === "user" ? "You" : role === "assistant" ? "Agent" : role));
    const body = el("div", "msg-text");
    if (text) body.textContent = text;
    item.append(body);
    els.log.append(item);
    scrollDown();
    return body;
  }

  function addToolCall(call) {
    els.empty.hidden = true;
    const box = el("div", "tool");
    box.dataset.callId = call.toolCallId || "";
    const head = el("p", "tool-head");
    head.append(el("span", "badge", "Tool call"), " ", el("code", "tool-name", call.toolName || "?"), " ");
    const status = el("span", "tool-state muted", "running…");
    head.append(status);
    box.append(head, el("p", "tool-label", "Arguments"), el("pre", "tool-args", pretty(call.args ?? {})));
    els.log.append(box);
    scrollDown();
    return box;
  }

  function addToolResult(result) {
    let box = [...els.log.querySelectorAll(".tool")].find((b) => b.dataset.callId === (result.toolCallId || ""));
    if (!box) box = addToolCall({toolCallId: result.toolCallId, toolName: result.toolName, args: {}});
    box.querySelector(".tool-state").textContent = result.isError ? "failed" : "done";
    if (result.isError) box.classList.add("tool-error");
    box.append(el("p", "tool-label", result.isError ? "Error" : "Result"), el("pre", "tool-result", pretty(result.result)));
    scrollDown();
  }

  function addError(message) {
    els.empty.hidden = true;
    const box = el("div", "msg msg-error");
    box.setAttribute("role", "alert");
    box.textContent = message;
    els.log.append(box);
    scrollDown();
  }

  function scrollDown() { els.log.scrollTop = els.log.scrollHeight; }

  // ---- threads ----------------------------------------------------------------------------
  const titleOf = (thread) => (thread.title && thread.title.trim()) || "Untitled thread";

  async function loadThreads() {
    if (!MEMORY) return;
    try {
      state.threads = await call("GET", API.threads) || [];
      show(els.threadsAlert, "");
    } catch (error) {
      show(els.threadsAlert, error.message);
      return;
    }
    renderThreads();
  }

  function renderThreads() {
    els.noThreads.hidden = state.threads.length > 0;
    els.threads.replaceChildren(...state.threads.map(threadItem));
    const open = state.threads.find((t) => t.id === state.threadId);
    els.title.textContent = open ? titleOf(open) : "New conversation";
  }

  function threadItem(thread) {
    const item = el("li", "thread");
    item.dataset.threadId = thread.id;
    const open = el("button", "thread-open link", titleOf(thread));
    open.type = "button";
    if (thread.id === state.threadId) open.setAttribute("aria-current", "true");
    open.addEventListener("click", () => openThread(thread.id));
    const rename = el("button", "secondary small", "Rename");
    rename.type = "button";
    rename.setAttribute("aria-label", `Rename ${titleOf(thread)}`);
    rename.addEventListener("click", () => startRename(item, thread));
    const remove = el("button", "danger small", "Delete");
    remove.type = "button";
    remove.setAttribute("aria-label", `Delete ${titleOf(thread)}`);
    remove.addEventListener("click", () => deleteThread(thread));
    const actions = el("span", "thread-actions");
    actions.append(rename, remove);
    item.append(open, actions);
    return item;
  }

  function startRename(item, thread) {
    const form = el("form", "thread-rename");
    const id = `pg-rename-${thread.id}`;
    const label = el("label", "visually-hidden", `New title for ${titleOf(thread)}`);
    label.htmlFor = id;
    const input = el("input");
    Object.assign(input, {id, type: "text", name: "title", value: thread.title || "", maxLength: 200});
    const save = el("button", "small", "Save");
    save.type = "submit";
    const cancel = el("button", "secondary small", "Cancel");
    cancel.type = "button";
    const finish = () => { renderThreads(); focusThread(thread.id, ".thread-open"); };
    cancel.addEventListener("click", finish);
    input.addEventListener("keydown", (event) => { if (event.key === "Escape") finish(); });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const updated = await call("PATCH", `${API.threads}/${encodeURIComponent(thread.id)}`,
          {title: input.value.trim() || null});
        state.threads = state.threads.map((t) => (t.id === updated.id ? updated : t));
        show(els.threadsAlert, "");
        finish();
      } catch (error) {
        show(els.threadsAlert, error.message);
      }
    });
    form.append(label, input, save, cancel);
    item.replaceChildren(form);
    input.focus();
    input.select();
  }

  function focusThread(id, selector) {
    const item = [...els.threads.children].find((li) => li.dataset.threadId === id);
    const target = item && item.querySelector(selector);
    if (target) target.focus();
  }

  async function deleteThread(thread) {
    if (!window.confirm(`Delete "${titleOf(thread)}" and its messages?`)) return;
    try {
      await call("DELETE", `${API.threads}/${encodeURIComponent(thread.id)}`);
    } catch (error) {
      show(els.threadsAlert, error.message);
      return;
    }
    state.threads = state.threads.filter((t) => t.id !== thread.id);
    if (state.threadId === thread.id) { state.threadId = null; clearLog(); }
    show(els.threadsAlert, "");
    renderThreads();
    els.status.textContent = `Deleted ${titleOf(thread)}.`;
    els.newThread.focus();
  }

  async function newThread() {
    if (state.creating) return state.creating;
    state.creating = makeThread();
    try { await state.creating; } finally { state.creating = null; }
  }

  async function makeThread() {
    try {
      const thread = await call("POST", API.threads, {});
      state.threads = [thread, ...state.threads];
      state.threadId = thread.id;
      show(els.threadsAlert, "");
    } catch (error) {
      show(els.threadsAlert, error.message);
      return;
    }
    clearLog();
    renderThreads();
    els.input.focus();
  }

  async function openThread(id) {
    if (state.running) return;
    let messages;
    try {
      const answer = await call("GET", `${API.threads}/${encodeURIComponent(id)}/messages`);
      messages = answer.messages || [];
    } catch (error) {
      show(els.threadsAlert, error.message);
      if (error.status === 404) await loadThreads();
      return;
    }
    show(els.threadsAlert, "");
    state.threadId = id;
    clearLog();
    const calls = {};
    for (const message of messages) {
      if (message.role === "user" || (message.role === "assistant" && message.content)) {
        addMessage(message.role, message.content);
      }
      for (const c of message.toolCalls || []) { calls[c.toolCallId] = c.toolName; addToolCall(c); }
      if (message.role === "tool") {
        let result = message.content;
        try { result = JSON.parse(message.content); } catch { /* a plain string */ }
        addToolResult({toolCallId: message.toolCallId, toolName: calls[message.toolCallId], result});
      }
    }
    renderThreads();
    els.input.focus();
  }

  // ---- a run --------------------------------------------------------------------------------
  async function* events(response) {
    // Server-sent events: blocks separated by a blank line, `event:` and `data:` lines.
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let type = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) type = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (!data.length) continue;
        let parsed = null;
        try { parsed = JSON.parse(data.join("\n")); } catch { parsed = null; }
        yield {type, data: parsed};
      }
    }
  }

  async function run(text) {
    const agentId = els.agent.value;
    if (!agentId) { show(els.chatAlert, "Choose an agent first."); return; }
    // "New" clicked just before: the message belongs to the thread it is making.
    if (state.creating) await state.creating;
    if (MEMORY && !state.threadId) {
      // The first message of a new conversation starts a thread named after it.
      try {
        const thread = await call("POST", API.threads, {title: text.slice(0, 60)});
        state.threads = [thread, ...state.threads];
        state.threadId = thread.id;
        renderThreads();
      } catch (error) {
        show(els.chatAlert, error.message);
        return;
      }
    }
    show(els.chatAlert, "");
    addMessage("user", text);
    const controller = new AbortController();
    state.running = controller;
    setBusy(true);
    let reply = null;
    let finished = false;
    try {
      const body = {messages: text};
      if (MEMORY && state.threadId) body.threadId = state.threadId;
      let response;
      try {
        response = await fetch(`${API.agents}/${encodeURIComponent(agentId)}/stream`, {
          method: "POST",
          credentials: "same-origin",
          headers: {"Content-Type": "application/json", Accept: "text/event-stream"},
          body: JSON.stringify(body),
          signal: controller.signal,
        });
      } catch (error) {
        if (controller.signal.aborted) throw error;
        throw new APIError(0, BY_STATUS[0]);
      }
      if (!response.ok || !(response.headers.get("content-type") || "").startsWith("text/event-stream")) {
        await answerOf(response);  // throws the error as a sentence
        throw new APIError(response.status, BY_STATUS[500]);
      }
      for await (const event of events(response)) {
        const data = event.data || {};
        if (event.type === "text-delta") {
          if (!reply) reply = addMessage("assistant", "");
          reply.append(data.text || "");
          scrollDown();
        } else if (event.type === "tool-call") {
          reply = null;  // text after the tool comes in a new bubble, below it
          addToolCall(data);
        } else if (event.type === "tool-result") {
          addToolResult(data);
        } else if (event.type === "finish") {
          finished = true;
        } else if (event.type === "error") {
          finished = true;
          addError(`The agent stopped with an error: ${sentence(500, data)}`);
        }
      }
      if (!finished) addError("The answer was cut off before the agent finished. Try again.");
      els.status.textContent = "The agent has answered.";
    } catch (error) {
      if (controller.signal.aborted) addError("Stopped. Nothing of this exchange was saved.");
      else addError(error instanceof APIError ? error.message : "The answer could not be read. Try again.");
    } finally {
      state.running = null;
      setBusy(false);
      if (MEMORY) loadThreads();
    }
  }

  function setBusy(busy) {
    els.send.disabled = busy;
    els.stop.hidden = !busy;
    els.log.setAttribute("aria-busy", busy ? "true" : "false");
    if (!busy) els.input.focus();
  }

  // ---- the auth panel -----------------------------------------------------------------------
  function fact(name, value) {
    const row = el("div", "fact");
    row.append(el("dt", "", name));
    const dd = el("dd");
    if (value instanceof Node) dd.append(value); else dd.textContent = value;
    row.append(dd);
    return row;
  }

  function list(values) {
    return values && values.length ? values.join(", ") : "none";
  }

  async function loadContext() {
    els.authFacts.setAttribute("aria-busy", "true");
    let ctx;
    try {
      ctx = await call("GET", API.context);
      show(els.authAlert, "");
    } catch (error) {
      show(els.authAlert, error.message);
      els.authFacts.setAttribute("aria-busy", "false");
      return;
    }
    const rows = [];
    const user = ctx.user && typeof ctx.user === "object" ? ctx.user : null;
    rows.push(fact("Signed in", ctx.authenticated ? `yes, by ${ctx.credential || "credential"}` : "no"));
    rows.push(fact("Provider", ctx.provider || "none"));
    if (user) {
      const who = [user.name, user.email].filter(Boolean).join(" · ") || user.sub || user.id || "(unnamed)";
      rows.push(fact("User", who));
      if (user.id || user.sub) rows.push(fact("User id", String(user.id || user.sub)));
    }
    if (ctx.session) {
      rows.push(fact("Session", String(ctx.session.id || "?")));
      if (ctx.session.expiresAt) rows.push(fact("Session expires", new Date(ctx.session.expiresAt).toLocaleString()));
    }
    if (ctx.organization) {
      rows.push(fact("Organization", String(ctx.organization.id)));
      rows.push(fact("Role there", list(ctx.organization.roles)));
      if (ctx.organization.teamId) rows.push(fact("Team", String(ctx.organization.teamId)));
    } else {
      rows.push(fact("Organization", "none active"));
    }
    rows.push(fact("Roles", list(ctx.roles)));
    rows.push(fact("Permissions", list(ctx.permissions)));
    rows.push(fact("Memory owner", ctx.resourceId || "none"));
    if (ctx.claims) {
      const pre = el("pre", "pg-json", pretty(ctx.claims));
      pre.tabIndex = 0;
      rows.push(fact("Verified JWT claims", pre));
    }
    els.authFacts.replaceChildren(...rows);
    els.authFacts.setAttribute("aria-busy", "false");
    els.authJson.textContent = pretty(ctx);
  }

  // ---- wiring -------------------------------------------------------------------------------
  els.agent.addEventListener("change", describeAgent);
  if (els.newThread) els.newThread.addEventListener("click", () => { if (!state.running) newThread(); });
  els.authRefresh.addEventListener("click", loadContext);
  els.stop.addEventListener("click", () => { if (state.running) state.running.abort(); });
  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = els.input.value.trim();
    if (!text) { show(els.chatAlert, "Type a message first."); els.input.focus(); return; }
    if (state.running) return;
    els.input.value = "";
    run(text);
  });
  els.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      els.form.requestSubmit();
    }
  });

  loadAgents();
  loadThreads();
  loadContext();
})();
