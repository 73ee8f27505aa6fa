/* The moderator's queue and comment pages. Plain JS, no dependencies.
 *
 * Everything comes from the JSON API (/api/v1/moderation) with the session cookie and the
 * CSRF token from <meta name="csrf-token">. Comment data is only ever put into the page as
 * text (textContent, text nodes), never parsed as HTML.
 */
"use strict";

(function () {
  const API = "/api/v1/moderation";
  // How often the tab counts (and the first page of the list) are refreshed.
  const POLL_MS = 5000;
  const PAGE_SIZE = 50;
  const STATUSES = ["held", "pending", "spam", "published", "rejected"];
  const ACTIONS = {
    approve: { label: "Approve", key: "a", to: "published" },
    reject: { label: "Reject", key: "r", to: "rejected" },
    spam: { label: "Spam", key: "s", to: "spam" },
    not_spam: { label: "Not spam", key: "n", to: "published" },
  };
  // Approve and Not spam both publish the comment and label it genuine: one button, named
  // for what the moderator is correcting (Not spam on a comment filed as spam).
  const PUBLISH_KEYS = ["a", "n"];
  // How long the Undo button stays after a decision (the server allows two minutes).
  const UNDO_MS = 10000;

  /** The actions offered for a comment in ``status``, in button order. */
  function actionsFor(status) {
    return [status === "spam" ? "not_spam" : "approve", "reject", "spam"];
  }

  /** The action a key means for a comment in ``status`` (a and n both publish). */
  function actionForKey(key, status) {
    if (PUBLISH_KEYS.includes(key)) return status === "spam" ? "not_spam" : "approve";
    return Object.keys(ACTIONS).find((name) => ACTIONS[name].key === key && !PUBLISH_KEYS.includes(key)) || null;
  }

  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;

  // --- small helpers ---------------------------------------------------------------------

  /** An element with properties (className, type, ...), dataset entries and text children. */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "attrs") {
        for (const [name, v] of Object.entries(value)) node.setAttribute(name, v);
      } else node[key] = value;
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || "HTTP " + status);
      this.status = status;
      this.problem = problem;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["X-CSRFToken"] = csrfToken;
      headers["Content-Type"] = "application/json";
    }
    const response = await fetch(API + path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      window.location.assign("/moderate/login?next=" + encodeURIComponent(location.pathname));
      throw new ApiError(401, { detail: "Logged out." });
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  let flashTimer = null;
  function flash(message, kind) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    box.className = "flash flash-" + (kind || "info");
    box.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 8000 : 3500);
  }

  function formatTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    const seconds = Math.round((Date.now() - date.getTime()) / 1000);
    if (seconds < 60) return "just now";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
    return date.toLocaleString();
  }

  function timeEl(iso) {
    return el("time", { dateTime: iso || "", title: iso ? new Date(iso).toLocaleString() : "" },
      formatTime(iso));
  }

  // --- highlighting ----------------------------------------------------------------------

  /** What the API says pushed towards spam (rule matches, model terms): those are marked. */
  function spamTerms(c) {
    return [...new Set(((c.explanation && c.explanation.highlight) || [])
      .map((term) => String(term).trim()).filter(Boolean))];
  }

  function escapeRegExp(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  /** One regex matching any term as a whole word (multi-word terms across any whitespace). */
  function termsRegExp(terms) {
    if (!terms.length) return null;
    const word = /[\p{L}\p{N}_]/u;
    const parts = terms
      .sort((a, b) => b.length - a.length)
      .map((term) => {
        const body = term.split(/\s+/).map(escapeRegExp).join("\\s+");
        const before = word.test(term[0]) ? "(?<![\\p{L}\\p{N}_])" : "";
        const after = word.test(term[term.length - 1]) ? "(?![\\p{L}\\p{N}_])" : "";
        return before + body + after;
      });
    return new RegExp(parts.join("|"), "giu");
  }

  /** ``text`` as text nodes, with the matches of ``pattern`` wrapped in <mark>. */
  function highlighted(text, pattern) {
    const fragment = document.createDocumentFragment();
    text = String(text || "");
    if (!pattern) {
      fragment.append(document.createTextNode(text));
      return fragment;
    }
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      if (!match[0]) continue;
      fragment.append(document.createTextNode(text.slice(last, match.index)));
      fragment.append(el("mark", {}, match[0]));
      last = match.index + match[0].length;
    }
    fragment.append(document.createTextNode(text.slice(last)));
    return fragment;
  }

  // --- rendering a comment ---------------------------------------------------------------

  /** The band a score falls in under ``bands`` ({low, high} of the model that scored it):
   * the worker's rule, p < low published, p > high spam, else held. */
  function bandOf(score, bands) {
    if (typeof score !== "number") return "none";
    if (!bands || typeof bands.low !== "number" || typeof bands.high !== "number") return "unknown";
    return score > bands.high ? "high" : score < bands.low ? "low" : "mid";
  }

  function scoreBar(score, bands, version) {
    const known = typeof score === "number";
    const bar = el("span", { className: "score-fill" });
    const level = bandOf(score, bands);
    // CSSOM, not a style attribute: allowed under style-src 'self'.
    bar.style.width = known ? Math.max(2, Math.round(score * 100)) + "%" : "0";
    const band = bands && typeof bands.low === "number"
      ? " · published below " + bands.low.toFixed(2) + ", spam above " + bands.high.toFixed(2) : "";
    return el("span", {
      className: "score score-" + level,
      dataset: { band: level },
      title: known ? "Spam score " + score.toFixed(3) + band + (version ? " · model " + version : "")
        : "Not scored",
      attrs: { role: "meter", "aria-valuemin": "0", "aria-valuemax": "1",
               "aria-valuenow": known ? String(score) : "0",
               "aria-label": "Spam score" },
    }, el("span", { className: "score-track" }, bar),
       el("span", { className: "score-value" }, known ? score.toFixed(2) : "–"));
  }

  function authorUrl(url) {
    if (!url) return null;
    if (!/^https?:\/\//i.test(url)) return el("span", { className: "url" }, url);
    return el("a", { className: "url", href: url, target: "_blank",
                     rel: "noopener noreferrer nofollow ugc", title: url }, url);
  }

  const CHIP_CLASS = { spam: "bad", hold: "warn", ham: "good", neutral: "warn" };

  /** The reasons worth showing (the API drops stop words and tiny weights), in words. */
  function reasonChips(c) {
    const list = el("ul", { className: "reasons" });
    const chips = (c.explanation && c.explanation.chips) || [];
    for (const chip of chips) {
      const weight = typeof chip.weight === "number"
        ? el("span", { className: "chip-weight" }, (chip.weight > 0 ? "+" : "") + chip.weight.toFixed(1))
        : null;
      const towards = chip.effect === "spam" ? "pushed towards spam"
        : chip.effect === "ham" ? "spoke for the comment" : chip.effect === "hold" ? "held for a moderator" : "";
      list.append(el("li", {
        className: "chip chip-" + (CHIP_CLASS[chip.effect] || "plain") + " chip-" + chip.kind,
        title: (chip.kind === "model" ? "Model: " : chip.kind === "rule" ? "Rule: " : "") + towards,
      }, chip.text, weight ? " " : null, weight));
    }
    return list;
  }

  function metaLine(c) {
    return el("div", { className: "meta" },
      el("strong", { className: "author" }, c.author_name),
      c.author_email ? el("span", { className: "email" }, c.author_email) : null,
      authorUrl(c.author_url),
      el("span", { className: "post", title: "Post" }, c.post),
      timeEl(c.created_at));
  }

  function commentBody(c) {
    const pattern = termsRegExp(spamTerms(c));
    return el("div", { className: "content" }, highlighted(c.content, pattern));
  }

  function actionButtons(c, onAction) {
    const group = el("div", { className: "actions", attrs: { role: "group", "aria-label": "Decide" } });
    for (const action of actionsFor(c.status)) {
      const spec = ACTIONS[action];
      const keys = spec.to === "published" ? "a" : spec.key;
      const button = el("button", {
        type: "button", className: "btn btn-small btn-" + action.replace("_", ""),
        title: spec.label + " (" + (spec.to === "published" ? "a or n" : keys) + ")",
        disabled: spec.to === c.status,
        dataset: { action },
      }, spec.label, el("kbd", {}, keys));
      button.addEventListener("click", (event) => {
        event.stopPropagation();
        onAction(c, action);
      });
      group.append(button);
    }
    return group;
  }

  function authorComments(c) {
    const others = c.author_comments || [];
    if (!others.length) return el("p", { className: "muted" }, "No other comments by this author.");
    const list = el("ol", { className: "others" });
    for (const o of others) {
      const text = String(o.content || "");
      list.append(el("li", {},
        el("span", { className: "status-pill status-" + o.status }, o.status), " ",
        el("a", { href: "/moderate/comments/" + o.id }, "#" + o.id), " ",
        el("span", { className: "post" }, o.post), " · ", timeEl(o.created_at),
        el("div", { className: "other-text" }, text.length > 160 ? text.slice(0, 160) + "…" : text)));
    }
    return list;
  }

  /** This comment and the similar ones listed that ``action`` would change. */
  function groupTargets(c, action) {
    return [c, ...c.campaign.comments].filter((m) => m.status !== ACTIONS[action].to);
  }

  /** The comment's campaign (its near-duplicates on any post by any author), and on its own
   * page the buttons that decide the whole group (``onGroup``). */
  function campaignSection(c, onGroup) {
    const group = c.campaign;
    if (!group || !group.total) return null;
    const list = el("ol", { className: "others" });
    for (const m of group.comments) {
      list.append(el("li", { dataset: { id: String(m.id) } },
        el("span", { className: "status-pill status-" + m.status }, m.status), " ",
        el("a", { href: "/moderate/comments/" + m.id }, "#" + m.id), " ",
        el("strong", {}, m.author_name), " on ", el("span", { className: "post" }, m.post),
        " · ", timeEl(m.created_at),
        el("div", { className: "other-text" }, m.excerpt)));
    }
    const counts = STATUSES.filter((s) => group.counts[s]).map((s) => group.counts[s] + " " + s);
    const buttons = el("div", { className: "actions", attrs: { role: "group", "aria-label": "Decide the campaign" } });
    for (const action of onGroup ? ["spam", "approve"] : []) {
      const targets = groupTargets(c, action);
      if (!targets.length) continue;
      const button = el("button", { type: "button", className: "btn btn-small btn-" + action,
                                    dataset: { group: action } },
        action === "spam"
          ? (targets.length > 1 ? "File all " + targets.length : "File #" + targets[0].id) + " as spam"
          : targets.length > 1 ? "Approve all " + targets.length : "Approve #" + targets[0].id);
      button.addEventListener("click", () => onGroup(action, targets));
      buttons.append(button);
    }
    return el("section", { id: "campaign", className: "campaign", attrs: { "aria-label": "Similar comments" } },
      el("h3", {}, "Similar comments (a campaign): " + group.total),
      el("p", { className: "muted" }, "The same text with a few words changed, on any post by any author, " +
        "in the last 30 days: " + counts.join(", ") + "." +
        (group.total > group.comments.length ? " The newest " + group.comments.length + " are listed." : "")),
      list,
      buttons.children.length ? buttons : null,
      buttons.children.length ? el("p", { className: "muted" }, "A button decides this comment and the " +
        "similar ones listed above. One that someone else decides meanwhile is left as it is.") : null);
  }

  /** The decision controls of the comment page: the note and the buttons. */
  function decisionForm(c, onAction) {
    const note = el("textarea", { id: "note", name: "note", maxLength: 2000, rows: 2,
                                  placeholder: "Why (optional, kept in the history)" });
    return el("div", { className: "decide" },
      el("label", { className: "note-label", htmlFor: "note" }, "Note"),
      note,
      actionButtons(c, onAction));
  }

  function detailView(c, onAction, onGroup) {
    const history = el("ol", { className: "history" });
    for (const e of c.history || []) {
      history.append(el("li", { dataset: { eventId: String(e.id) } },
        el("span", { className: "status-pill status-" + (e.to_status || "") }, e.to_status),
        " ", el("strong", {}, e.action), " by ", e.actor,
        e.from_status ? " (was " + e.from_status + ")" : "", " · ", timeEl(e.created_at),
        e.note ? el("div", { className: "note" }, e.note) : null));
    }
    const noHistory = el("p", { className: "muted" }, "No decisions yet.");
    const facts = el("dl", { className: "facts" });
    const fact = (name, value) => {
      if (value === null || value === undefined || value === "") return;
      facts.append(el("dt", {}, name), el("dd", {}, value));
    };
    fact("Status", el("span", { className: "status-pill status-" + c.status }, c.status));
    fact("Score", scoreBar(c.spam_score, c.bands, c.model_version));
    if (c.bands && typeof c.bands.low === "number") {
      fact("Bands", "published below " + c.bands.low.toFixed(2) + ", spam above " + c.bands.high.toFixed(2));
    }
    fact("Model", c.model_version || "–");
    fact("Decided by", c.decided_by);
    fact("Label", c.label);
    fact("E-mail", c.author_email);
    fact("URL", authorUrl(c.author_url));
    fact("IP", c.ip);
    fact("User-Agent", c.user_agent);
    fact("Referer", c.referer);
    fact("Post", c.post);
    fact("Reply to", c.parent_id ? "#" + c.parent_id : null);
    fact("Received", timeEl(c.created_at));
    fact("Decided", c.decided_at ? timeEl(c.decided_at) : null);
    return el("div", { className: "detail-inner" },
      el("h2", {}, "Comment #" + c.id, " ",
        el("a", { href: "/moderate/comments/" + c.id, className: "permalink", title: "Own page" }, "↗")),
      metaLine(c),
      commentBody(c),
      reasonChips(c),
      onAction ? decisionForm(c, onAction) : null,
      facts,
      el("h3", {}, "History"),
      history.children.length ? history : noHistory,
      el("h3", {}, "Other comments by this author"),
      authorComments(c),
      campaignSection(c, onGroup));
  }

  // --- undo ------------------------------------------------------------------------------

  let undoTimer = null;
  let undoOffer = null;

  /** A toast saying what was decided, with an Undo button for UNDO_MS (key: u). */
  function offerUndo(message, c, onUndone) {
    let toast = document.getElementById("toast");
    if (!toast) {
      toast = el("div", { id: "toast", className: "toast", attrs: { role: "status", "aria-live": "polite" } },
        el("span", { className: "toast-text" }),
        el("button", { type: "button", className: "btn btn-small", id: "toast-undo" }, "Undo", el("kbd", {}, "u")));
      document.body.append(toast);
      toast.querySelector("#toast-undo").addEventListener("click", () => undoLast());
    }
    const events = c.history || [];
    const last = events[events.length - 1];
    undoOffer = last ? { id: c.id, eventId: last.id, onUndone } : null;
    toast.querySelector(".toast-text").textContent = message;
    toast.querySelector("#toast-undo").hidden = !undoOffer;
    toast.hidden = false;
    clearTimeout(undoTimer);
    undoTimer = setTimeout(() => { toast.hidden = true; undoOffer = null; }, UNDO_MS);
  }

  async function undoLast() {
    const offer = undoOffer;
    if (!offer) return false;
    undoOffer = null;
    clearTimeout(undoTimer);
    const toast = document.getElementById("toast");
    if (toast) toast.hidden = true;
    try {
      const c = await api("POST", "/comments/" + offer.id + "/undo", { event_id: offer.eventId });
      flash("Undone: comment #" + c.id + " is " + c.status + " again.", "ok");
      offer.onUndone(c);
    } catch (error) {
      flash(error.message, "error");
    }
    return true;
  }

  // --- the comment page ------------------------------------------------------------------

  async function commentPage() {
    const box = document.getElementById("detail");
    const id = document.body.dataset.commentId;
    let current = null;
    let busy = false;
    async function load() {
      try {
        current = await api("GET", "/comments/" + id);
        box.replaceChildren(detailView(current, decide, decideGroup));
        box.setAttribute("aria-busy", "false");
      } catch (error) {
        box.replaceChildren(el("p", { className: "error" }, error.message));
      }
    }
    async function decide(c, action) {
      if (busy) return;
      busy = true;
      const noteField = document.getElementById("note");
      const note = noteField ? noteField.value.trim() : "";
      const body = { action, expected_status: c.status };
      if (note) body.note = note;
      try {
        const decided = await api("POST", "/comments/" + c.id + "/decision", body);
        offerUndo(ACTIONS[action].label + ": comment #" + c.id + ".", decided, () => load());
        current = decided;
        box.replaceChildren(detailView(decided, decide, decideGroup));
      } catch (error) {
        flash(error.message, "error");
        await load();
      } finally {
        busy = false;
      }
    }
    /** One decision on this comment and its campaign's members listed: one bulk request per
     * status they were shown in (expected_status), so one decided meanwhile is left alone. */
    async function decideGroup(action, targets) {
      if (busy) return;
      busy = true;
      const noteField = document.getElementById("note");
      const note = noteField ? noteField.value.trim() : "";
      const byStatus = new Map();
      for (const m of targets) byStatus.set(m.status, [...(byStatus.get(m.status) || []), m.id]);
      const done = [];
      const left = [];
      try {
        for (const [status, ids] of byStatus) {
          // Publishing a comment filed as spam is a "not spam" in its history, as by key.
          const body = { ids, action: action === "approve" && status === "spam" ? "not_spam" : action,
                         expected_status: status };
          if (note) body.note = note;
          const result = await api("POST", "/decisions", body);
          for (const r of result.results) (r.ok ? done : left).push(r.id);
        }
        const count = (n) => n + " comment" + (n === 1 ? "" : "s");
        let message = (action === "spam" ? "Filed as spam: " : "Approved: ") + count(done.length) + ".";
        if (left.length) {
          message += " " + count(left.length) + " changed since this page was loaded (someone else " +
            "decided " + (left.length === 1 ? "it" : "them") + ") and " + (left.length === 1 ? "was" : "were") +
            " left as " + (left.length === 1 ? "it is" : "they are") + ": " +
            left.map((i) => "#" + i).join(", ") + ".";
        }
        flash(message, left.length ? "error" : "ok");
      } catch (error) {
        flash(error.message, "error");
      } finally {
        busy = false;
        await load();
      }
    }
    document.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const target = event.target;
      if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) {
        if (event.key === "Escape") target.blur();
        return;
      }
      if (event.key === "u") { if (undoOffer) { event.preventDefault(); undoLast(); } return; }
      if (!current) return;
      const action = actionForKey(event.key, current.status);
      if (!action) return;
      event.preventDefault();
      if (ACTIONS[action].to === current.status) { flash("Already " + current.status + ".", "info"); return; }
      decide(current, action);
    });
    load();
  }

  // --- the queue page --------------------------------------------------------------------

  function queuePage() {
    const params = new URLSearchParams(location.search);
    const state = {
      status: STATUSES.includes(params.get("status")) ? params.get("status") : document.body.dataset.status,
      q: params.get("q") || "",
      post: params.get("post") || "",
      sort: params.get("sort") || "created",
      items: [],
      next: null,
      current: 0,
      checked: new Set(),
      busy: new Set(),
      counts: {},
      loading: false,
      detailId: null,
      generation: 0,
      model: {},
      bands: {},
    };
    const list = document.getElementById("items");
    const empty = document.getElementById("empty");
    const more = document.getElementById("more");
    const detail = document.getElementById("detail");
    const help = document.getElementById("help");
    const newer = document.getElementById("newer");
    const checkAll = document.getElementById("check-all");
    const bulkCount = document.getElementById("bulk-count");
    const form = document.getElementById("filters");
    form.q.value = state.q;
    form.post.value = state.post;
    form.sort.value = ["created", "-created", "score", "-score"].includes(state.sort) ? state.sort : "created";

    function queryString(extra) {
      const query = new URLSearchParams({ status: state.status, sort: state.sort, limit: PAGE_SIZE });
      if (state.q) query.set("q", state.q);
      if (state.post) query.set("post", state.post);
      for (const [k, v] of Object.entries(extra || {})) query.set(k, v);
      return query.toString();
    }

    function remember() {
      const query = new URLSearchParams({ status: state.status });
      if (state.q) query.set("q", state.q);
      if (state.post) query.set("post", state.post);
      if (state.sort !== "created") query.set("sort", state.sort);
      history.replaceState(null, "", location.pathname + "?" + query);
    }

    function showCounts(counts) {
      state.counts = counts || {};
      for (const node of document.querySelectorAll("[data-count]")) {
        const n = state.counts[node.dataset.count];
        node.textContent = n === undefined ? "–" : String(n);
        node.classList.toggle("count-zero", !n);
      }
      for (const tab of document.querySelectorAll(".tab")) {
        tab.setAttribute("aria-selected", tab.dataset.status === state.status ? "true" : "false");
      }
      const held = state.counts.held || 0;
      document.title = (held ? "(" + held + ") " : "") + "Queue · Comment moderation";
    }

    /** The bands of the model that scored ``c``; the active model's when that version is
     * gone from the store. */
    function bandsOf(c) {
      return state.bands[c.model_version] ||
        (typeof state.model.low === "number" ? { low: state.model.low, high: state.model.high } : null);
    }

    /** The active model, once for the whole list (not on every card). */
    function showModel(model) {
      state.model = model || {};
      const line = document.getElementById("model-line");
      if (!line) return;
      if (!state.model.version) {
        line.textContent = "No spam model is active: new comments are held for a moderator.";
        return;
      }
      line.replaceChildren("Model ", el("span", { className: "mono" }, state.model.version),
        typeof state.model.low === "number"
          ? ": published below " + state.model.low.toFixed(2) + ", held up to " +
            state.model.high.toFixed(2) + ", spam above."
          : ".");
    }

    function itemNode(c, index) {
      const check = el("input", { type: "checkbox", className: "pick", checked: state.checked.has(c.id),
                                  attrs: { "aria-label": "Select comment " + c.id } });
      check.addEventListener("click", (event) => event.stopPropagation());
      check.addEventListener("change", () => toggleChecked(c.id, check.checked));
      const node = el("li", {
        className: "item" + (index === state.current ? " current" : "") + (state.checked.has(c.id) ? " checked" : ""),
        id: "comment-" + c.id,
        dataset: { id: String(c.id) },
        tabIndex: -1,
      },
        el("div", { className: "item-side" }, check,
          scoreBar(c.spam_score, bandsOf(c), c.model_version)),
        el("div", { className: "item-main" },
          metaLine(c),
          commentBody(c),
          el("div", { className: "item-foot" },
            reasonChips(c),
            c.model_version && state.model.version && c.model_version !== state.model.version
              ? el("span", { className: "model", title: "Scored by an earlier model: " + c.model_version },
                "earlier model")
              : null,
            actionButtons(c, decide))));
      node.addEventListener("click", () => {
        select(state.items.findIndex((item) => item.id === c.id), true);
      });
      return node;
    }

    function render() {
      list.replaceChildren(...state.items.map(itemNode));
      list.setAttribute("aria-busy", "false");
      empty.hidden = state.items.length > 0 || state.loading;
      more.hidden = !state.next;
      updateBulk();
    }

    function updateBulk() {
      const n = state.checked.size;
      bulkCount.textContent = n ? n + " selected" : "Select all";
      checkAll.checked = n > 0 && n === state.items.length;
      checkAll.indeterminate = n > 0 && n < state.items.length;
      for (const button of document.querySelectorAll("[data-bulk]")) {
        const offered = actionsFor(state.status).includes(button.dataset.bulk);
        button.hidden = !offered;
        button.disabled = !offered || n === 0 || ACTIONS[button.dataset.bulk].to === state.status;
      }
      document.getElementById("bulkbar").classList.toggle("active", n > 0);
    }

    function toggleChecked(id, on) {
      if (on) state.checked.add(id); else state.checked.delete(id);
      const node = document.getElementById("comment-" + id);
      if (node) {
        node.classList.toggle("checked", on);
        node.querySelector(".pick").checked = on;
      }
      updateBulk();
    }

    function select(index, openDetail) {
      if (!state.items.length) {
        state.current = 0;
        return;
      }
      index = Math.max(0, Math.min(index, state.items.length - 1));
      const previous = list.querySelector(".item.current");
      if (previous) previous.classList.remove("current");
      state.current = index;
      const node = list.children[index];
      if (node) {
        node.classList.add("current");
        node.scrollIntoView({ block: "nearest" });
      }
      if (openDetail || state.detailId !== null) showDetail(state.items[index].id);
    }

    async function showDetail(id) {
      state.detailId = id;
      try {
        const c = await api("GET", "/comments/" + id);
        if (state.detailId !== id) return;
        detail.replaceChildren(detailView(c, null));
        detail.classList.add("open");
      } catch (error) {
        if (state.detailId === id) detail.replaceChildren(el("p", { className: "error" }, error.message));
      }
    }

    async function load(append) {
      const generation = ++state.generation;
      state.loading = true;
      list.setAttribute("aria-busy", "true");
      try {
        const page = await api("GET", "/queue?" + queryString(append && state.next ? { cursor: state.next } : {}));
        if (generation !== state.generation) return;
        if (append) {
          const known = new Set(state.items.map((c) => c.id));
          state.items.push(...page.comments.filter((c) => !known.has(c.id)));
        } else {
          state.items = page.comments;
          state.current = Math.min(state.current, Math.max(0, state.items.length - 1));
          const ids = new Set(state.items.map((c) => c.id));
          for (const id of [...state.checked]) if (!ids.has(id)) state.checked.delete(id);
        }
        state.next = page.next;
        Object.assign(state.bands, page.bands || {});
        showModel(page.active_model);
        showCounts(page.counts);
        newer.hidden = true;
      } catch (error) {
        flash(error.message, "error");
      } finally {
        if (generation === state.generation) {
          state.loading = false;
          render();
        }
      }
    }

    /** Counts (and whether new comments arrived) without touching the list being worked on. */
    async function poll() {
      if (document.hidden || state.loading) return;
      try {
        const page = await api("GET", "/queue?" + queryString());
        showCounts(page.counts);
        const known = new Set(state.items.map((c) => c.id));
        const fresh = page.comments.filter((c) => !known.has(c.id)).length;
        if (!state.items.length && fresh) {
          load(false);
        } else {
          newer.hidden = fresh === 0;
          document.getElementById("show-newer").textContent =
            fresh + " new comment" + (fresh === 1 ? "" : "s") + ": show";
        }
      } catch (error) {
        // A missed poll is not worth a message; the next one retries.
      }
    }

    function removeItems(ids) {
      const gone = new Set(ids);
      const currentId = state.items[state.current] && state.items[state.current].id;
      const before = state.items.length;
      let index = state.current;
      state.items = state.items.filter((c, i) => {
        if (gone.has(c.id) && i < state.current) index -= 1;
        return !gone.has(c.id);
      });
      for (const id of ids) {
        state.checked.delete(id);
        const node = document.getElementById("comment-" + id);
        if (node) node.remove();
      }
      if (gone.has(currentId)) index = Math.min(index, state.items.length - 1);
      for (const [status, delta] of [[state.status, -(before - state.items.length)]]) {
        state.counts[status] = Math.max(0, (state.counts[status] || 0) + delta);
      }
      showCounts(state.counts);
      empty.hidden = state.items.length > 0;
      updateBulk();
      if (state.items.length) select(Math.max(0, index), false);
      else detail.replaceChildren(el("p", { className: "muted" }, "Nothing selected."));
      if (state.items.length < 5 && state.next) load(false);
    }

    async function decide(c, action) {
      // A second key press before the first answer must not decide the same comment twice.
      if (state.busy.has(c.id)) return;
      state.busy.add(c.id);
      const node = document.getElementById("comment-" + c.id);
      if (node) node.classList.add("busy");
      try {
        const decided = await api("POST", "/comments/" + c.id + "/decision", { action, expected_status: c.status });
        removeItems([c.id]);
        offerUndo(ACTIONS[action].label + ": comment #" + c.id + ".", decided, () => load(false));
        poll();
      } catch (error) {
        if (node) node.classList.remove("busy");
        if (error.status === 409) {
          flash(error.message + " The list was refreshed.", "error");
          load(false);
        } else {
          flash(error.message, "error");
        }
      } finally {
        state.busy.delete(c.id);
      }
    }

    async function bulk(action) {
      const ids = state.items.filter((c) => state.checked.has(c.id)).map((c) => c.id);
      if (!ids.length) return;
      try {
        const result = await api("POST", "/decisions", { ids, action, expected_status: state.status });
        const done = result.results.filter((r) => r.ok).map((r) => r.id);
        const failed = result.results.filter((r) => !r.ok);
        removeItems(done);
        if (failed.length) {
          flash(ACTIONS[action].label + ": " + done.length + " done, " + failed.length +
                " failed (" + failed[0].error + "). The list was refreshed.", "error");
          load(false);
        } else {
          flash(ACTIONS[action].label + ": " + done.length + " comment" + (done.length === 1 ? "" : "s") + ".", "ok");
        }
        poll();
      } catch (error) {
        flash(error.message, "error");
      }
    }

    function switchTab(status) {
      if (!STATUSES.includes(status)) return;
      state.status = status;
      state.current = 0;
      state.checked.clear();
      state.items = [];
      state.next = null;
      state.detailId = null;
      detail.replaceChildren(el("p", { className: "muted" }, "Select a comment to see its full record and history."));
      remember();
      showCounts(state.counts);
      render();
      load(false);
    }

    function toggleHelp(show) {
      help.hidden = show === undefined ? !help.hidden : !show;
      if (!help.hidden) document.getElementById("help-close").focus();
    }

    // --- wiring ---
    for (const tab of document.querySelectorAll(".tab")) {
      tab.addEventListener("click", () => switchTab(tab.dataset.status));
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      state.q = form.q.value.trim();
      state.post = form.post.value.trim();
      state.sort = form.sort.value;
      state.current = 0;
      state.checked.clear();
      remember();
      load(false);
      form.q.blur();
    });
    form.sort.addEventListener("change", () => form.requestSubmit());
    more.addEventListener("click", () => load(true));
    document.getElementById("show-newer").addEventListener("click", () => load(false));
    document.getElementById("help-button").addEventListener("click", () => toggleHelp());
    document.getElementById("help-close").addEventListener("click", () => toggleHelp(false));
    help.addEventListener("click", (event) => { if (event.target === help) toggleHelp(false); });
    checkAll.addEventListener("change", () => {
      const on = checkAll.checked;
      for (const c of state.items) toggleChecked(c.id, on);
    });
    for (const button of document.querySelectorAll("[data-bulk]")) {
      button.addEventListener("click", () => bulk(button.dataset.bulk));
    }

    document.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const target = event.target;
      if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) {
        if (event.key === "Escape") target.blur();
        return;
      }
      // Enter on a focused button or link keeps its native meaning.
      if (event.key === "Enter" && target instanceof HTMLElement && target.closest("button, a")) return;
      if (event.key === "?") { event.preventDefault(); toggleHelp(); return; }
      if (event.key === "u") { if (undoOffer) { event.preventDefault(); undoLast(); } return; }
      if (event.key === "Escape") {
        if (!help.hidden) toggleHelp(false);
        else { state.detailId = null; detail.classList.remove("open"); }
        return;
      }
      if (!help.hidden) return;
      const c = state.items[state.current];
      switch (event.key) {
        case "j": select(state.current + 1, false); break;
        case "k": select(state.current - 1, false); break;
        case "x": if (c) toggleChecked(c.id, !state.checked.has(c.id)); break;
        case "o": case "Enter": if (c) showDetail(c.id); break;
        case "/": form.q.focus(); break;
        case "1": case "2": case "3": case "4": case "5":
          switchTab(STATUSES[Number(event.key) - 1]); break;
        default: {
          const action = c ? actionForKey(event.key, c.status) : null;
          if (!action) return;
          if (ACTIONS[action].to === c.status) { flash("Already " + c.status + ".", "info"); break; }
          decide(c, action);
        }
      }
      event.preventDefault();
    });

    remember();
    load(false);
    setInterval(poll, POLL_MS);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
  }

  if (document.body.dataset.page === "queue") queuePage();
  else if (document.body.dataset.page === "comment") commentPage();
})();
