/*
 * The comments widget. A blog adds
 *
 *   <div data-comments data-post="my-post-slug"></div>
 *   <script src="https://comments.example/embed.js" defer></script>
 *
 * and, optionally, counters anywhere on the page:
 *
 *   <span data-comment-count data-post="my-post-slug"></span>
 *
 * The widget lists a post's published comments (threaded), renders the "Leave a Comment"
 * form, posts it to the API, and follows the new comment until it is decided.
 *
 * Rules kept throughout: comment data only ever goes through textContent/createElement
 * (never parsed as HTML); no inline styles (the CSS comes from the service's /embed.css), so the
 * page can run under a strict Content-Security-Policy; no cookies are sent to the service.
 *
 * Returning readers: every accepted comment's answer carries a signed `reader_token`; the widget
 * keeps it in localStorage (on the blog's origin) and sends it with this reader's later comments.
 * Once a moderator approved comments sent with it, the reader is trusted (skips the hold band);
 * an e-mail address alone never is.
 *
 * A reader's own comments: the 202's per-comment `secret` is kept in localStorage too (per post,
 * the newest MAX_MINE), so after a reload the widget asks GET /comments/<id> with
 * X-Comment-Secret and shows its author a comment not yet published, marked "Awaiting
 * moderation" (nobody else sees it). Name, e-mail and website are remembered only when the
 * reader ticks the box.
 *
 * Links: http(s) addresses in a comment become links (rel="nofollow ugc noopener"), built as
 * elements around text nodes, so nothing of the comment is ever parsed as HTML.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  // The service's origin comes from this script's own URL, so a blog on another origin
  // talks to the service, not to itself.
  var ORIGIN = new URL(script && script.src ? script.src : "/embed.js", window.location.href).origin;
  var API = ORIGIN + "/api/v1";
  // The service writes the widget's version here when it serves this file, so the styles
  // come from their immutable URL; a copy served as a plain file links the plain URL.
  var VERSION = "__WIDGET_VERSION__";
  var STYLESHEET = ORIGIN + "/embed.css" + (/^[0-9a-f]+$/.test(VERSION) ? "?v=" + VERSION : "");
  var PAGE_SIZE = 50;
  var MAX_BATCH_POSTS = 100; // the API's limit for /counts
  var POLL_INTERVAL_MS = 1500;
  var POLL_DURATION_MS = 60000; // scoring takes seconds; after a minute we stop asking
  var AWAITING = "Your comment is awaiting moderation.";
  var CLOSED = "Comments are closed.";
  var MAX_MINE = 20; // own unpublished comments remembered per post
  // Caches may keep a listing for a while (the service says 10 s, then 60 s more while they
  // ask again). A reader who just posted expects to see their comment after a reload, so
  // for this long after posting the widget asks the service each time (a cheap 304 when
  // nothing changed).
  var REVALIDATE_AFTER_POST_MS = 5 * 60 * 1000;
  // An http(s) address up to whitespace or a character no address holds unescaped.
  var URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"'`]+/gi;

  var FIELDS = [
    // [API field, input name, label, element, type, hint]
    ["author_name", "name", "Name", "input", "text", ""],
    ["author_email", "email", "E-mail", "input", "email", "Optional, never published."],
    ["author_url", "website", "Website", "input", "url", "Optional."],
    ["content", "comment", "Comment", "textarea", "", ""]
  ];
  var instances = 0;
  var READER_KEY = "cw-reader-token:" + ORIGIN;
  var AUTHOR_KEY = "cw-author:" + ORIGIN;

  function load(key) {
    try {
      var value = window.localStorage.getItem(key);
      return value ? JSON.parse(value) : null;
    } catch (e) {
      return null; // storage disabled or a value from elsewhere
    }
  }

  function store(key, value) {
    try {
      if (value === null) window.localStorage.removeItem(key);
      else window.localStorage.setItem(key, JSON.stringify(value));
    } catch (e) { /* storage disabled or full: nothing kept */ }
  }

  function readerToken() {
    try {
      return window.localStorage.getItem(READER_KEY);
    } catch (e) {
      return null; // storage disabled: every comment comes from a new reader
    }
  }

  function keepReaderToken(token) {
    if (typeof token !== "string" || !token) return;
    try {
      window.localStorage.setItem(READER_KEY, token);
    } catch (e) { /* storage disabled or full: nothing to keep */ }
  }

  // --- small helpers ---------------------------------------------------------------------

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  function safeUrl(value) {
    if (!value) return null;
    try {
      var url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  // Append ``text`` to ``parent`` with its http(s) addresses as links. A trailing full stop,
  // comma or unbalanced bracket ends the sentence, not the address.
  function appendLinked(parent, text) {
    var last = 0;
    text.replace(URL_IN_TEXT, function (match, offset) {
      var address = match.replace(/[.,;:!?]+$/, "");
      while (/[)\]]$/.test(address) &&
             (address.match(/[(\[]/g) || []).length < (address.match(/[)\]]/g) || []).length) {
        address = address.slice(0, -1).replace(/[.,;:!?]+$/, "");
      }
      var href = safeUrl(address);
      if (!href || address.length <= "https://".length) return match;
      if (offset > last) parent.appendChild(document.createTextNode(text.slice(last, offset)));
      var link = el("a", "cw-url", address);
      link.href = href;
      link.rel = "nofollow ugc noopener";
      parent.appendChild(link);
      last = offset + address.length;
      return match;
    });
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function formatDate(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    return date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" }) +
      " " + date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  }

  // A key per draft: a retry after a lost answer returns the stored comment, not a second one.
  function newKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  function request(method, path, body, headers, cache) {
    var options = {
      method: method,
      mode: "cors",
      credentials: "omit",
      cache: cache || "default",
      headers: Object.assign({ "Accept": "application/json, application/problem+json" }, headers || {})
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(API + path, options).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      var parsed = /json/.test(type) ? response.json().catch(function () { return null; })
                                    : Promise.resolve(null);
      return parsed.then(function (data) { return { status: response.status, data: data }; });
    });
  }

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function ensureStylesheet() {
    var href = STYLESHEET;
    var links = document.querySelectorAll("link[rel=stylesheet]");
    for (var i = 0; i < links.length; i++) {
      if (links[i].href === href) return;
    }
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = href;
    document.head.appendChild(link);
  }

  // --- "N comments" counters -------------------------------------------------------------

  function setCounters(post, count) {
    var nodes = document.querySelectorAll("[data-comment-count]");
    for (var i = 0; i < nodes.length; i++) {
      if (nodes[i].getAttribute("data-post") === post) {
        nodes[i].textContent = plural(count, "comment", "comments");
      }
    }
  }

  function refreshCounters() {
    var posts = [];
    var nodes = document.querySelectorAll("[data-comment-count][data-post]");
    for (var i = 0; i < nodes.length; i++) {
      var post = nodes[i].getAttribute("data-post");
      if (post && posts.indexOf(post) < 0) posts.push(post);
    }
    for (var start = 0; start < posts.length; start += MAX_BATCH_POSTS) {
      var chunk = posts.slice(start, start + MAX_BATCH_POSTS);
      var query = chunk.map(function (p) { return "post=" + encodeURIComponent(p); }).join("&");
      request("GET", "/counts?" + query).then(function (answer) {
        if (answer.status !== 200 || !answer.data) return;
        Object.keys(answer.data.counts).forEach(function (post) {
          setCounters(post, answer.data.counts[post]);
        });
      }).catch(function () { /* counters keep their server-rendered text */ });
    }
  }

  // --- one widget ------------------------------------------------------------------------

  function Widget(root, post) {
    this.root = root;
    this.post = post;
    this.prefix = "cw" + (++instances) + "-";
    this.total = 0;
    this.next = null;
    this.nodes = {}; // comment id -> its <li>
    this.parentId = null;
    this.formToken = null;
    this.antiBot = false; // does the service offer form tokens (and so know the honeypot)?
    this.mineKey = "cw-mine:" + ORIGIN + ":" + post;
    this.postedKey = "cw-posted:" + ORIGIN + ":" + post;
    this.build();
    var self = this;
    this.loadComments(null).then(function (loaded) {
      if (loaded) self.showMine();
    });
    this.fetchToken();
  }

  Widget.prototype.build = function () {
    var self = this;
    var section = el("section", "cw");
    this.section = section;
    section.setAttribute("aria-label", "Comments");

    this.title = el("h2", "cw-title", "Comments");
    this.listStatus = el("p", "cw-list-status", "Loading comments…");
    this.listStatus.setAttribute("role", "status");
    this.list = el("ol", "cw-list");
    this.more = el("button", "cw-button cw-more", "Show more comments");
    this.more.type = "button";
    this.more.hidden = true;
    this.more.addEventListener("click", function () { self.loadComments(self.next); });
    section.append(this.title, this.listStatus, this.list, this.more);

    var form = el("form", "cw-form");
    form.noValidate = true; // the service's answers are the errors shown, for every browser
    form.setAttribute("aria-labelledby", this.prefix + "form-title");
    var heading = el("h2", "cw-form-title", "💬 Leave a Comment");
    heading.id = this.prefix + "form-title";
    form.appendChild(heading);

    this.replying = el("p", "cw-replying");
    this.replying.hidden = true;
    this.replyingText = el("span", "cw-replying-text");
    var cancel = el("button", "cw-link", "Cancel reply");
    cancel.type = "button";
    cancel.addEventListener("click", function () { self.setParent(null); });
    this.replying.append(this.replyingText, " ", cancel);
    form.appendChild(this.replying);

    this.inputs = {};
    this.errors = {};
    FIELDS.forEach(function (spec) {
      var id = self.prefix + spec[1];
      var row = el("p", "cw-field cw-field-" + spec[1]);
      var label = el("label", "cw-label", spec[2]);
      label.htmlFor = id;
      var input = el(spec[3], "cw-input");
      input.id = id;
      input.name = spec[1];
      if (spec[4]) input.type = spec[4];
      if (spec[3] === "textarea") input.rows = 6;
      if (spec[0] === "author_name" || spec[0] === "content") input.setAttribute("aria-required", "true");
      if (spec[0] === "author_name") input.autocomplete = "name";
      if (spec[0] === "author_email") input.autocomplete = "email";
      if (spec[0] === "author_url") input.autocomplete = "url";
      var error = el("span", "cw-error");
      error.id = id + "-error";
      error.hidden = true;
      var describedBy = [error.id];
      row.append(label);
      if (spec[5]) {
        var hint = el("span", "cw-hint", spec[5]);
        hint.id = id + "-hint";
        describedBy.push(hint.id);
        row.append(hint);
      }
      input.setAttribute("aria-describedby", describedBy.join(" "));
      row.append(input, error);
      form.appendChild(row);
      self.inputs[spec[0]] = input;
      self.errors[spec[0]] = error;
    });

    var remember = el("p", "cw-field cw-remember");
    this.remember = el("input", "cw-checkbox");
    this.remember.type = "checkbox";
    this.remember.id = this.prefix + "remember";
    var rememberLabel = el("label", "cw-remember-label",
      "Save my name, e-mail and website in this browser for the next time I comment.");
    rememberLabel.htmlFor = this.remember.id;
    remember.append(this.remember, " ", rememberLabel);
    form.appendChild(remember);
    var saved = load(AUTHOR_KEY);
    if (saved && typeof saved === "object") {
      ["author_name", "author_email", "author_url"].forEach(function (field) {
        if (typeof saved[field] === "string") self.inputs[field].value = saved[field];
      });
      this.remember.checked = true;
    }

    // The honeypot: off-screen for people (by class, no inline style), skipped by keyboards
    // and screen readers, left empty by humans; form-filling bots tend to fill it.
    var trap = el("div", "cw-hp");
    trap.setAttribute("aria-hidden", "true");
    var trapLabel = el("label", null, "Leave this field empty");
    trapLabel.htmlFor = this.prefix + "hp";
    this.honeypot = el("input");
    this.honeypot.type = "text";
    this.honeypot.id = this.prefix + "hp";
    this.honeypot.name = "hp_website";
    this.honeypot.tabIndex = -1;
    this.honeypot.autocomplete = "off";
    trap.append(trapLabel, this.honeypot);
    form.appendChild(trap);

    var actions = el("p", "cw-actions");
    this.submit = el("button", "cw-button cw-submit", "Post Comment");
    this.submit.type = "submit";
    actions.appendChild(this.submit);
    form.appendChild(actions);

    this.notice = el("p", "cw-notice");
    this.notice.setAttribute("role", "status");
    this.notice.setAttribute("aria-live", "polite");
    this.notice.hidden = true;
    form.appendChild(this.notice);

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      self.send();
    });
    this.form = form;
    section.appendChild(form);
    this.closed = el("p", "cw-closed", CLOSED);
    this.closed.hidden = true;
    section.appendChild(this.closed);

    while (this.root.firstChild) this.root.removeChild(this.root.firstChild);
    this.root.appendChild(section);
  };

  // --- the list --------------------------------------------------------------------------

  Widget.prototype.setTotal = function (total) {
    this.total = total;
    this.title.textContent = plural(total, "Comment", "Comments");
    setCounters(this.post, total);
  };

  Widget.prototype.loadComments = function (cursor) {
    var self = this;
    var path = "/posts/" + encodeURIComponent(this.post) + "/comments?limit=" + PAGE_SIZE +
      (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
    this.more.disabled = true;
    var posted = load(this.postedKey);
    var recent = typeof posted === "number" && Date.now() - posted < REVALIDATE_AFTER_POST_MS;
    return request("GET", path, undefined, undefined, recent ? "no-cache" : "default").then(function (answer) {
      if (answer.status !== 200 || !answer.data) {
        var failed = new Error("status " + answer.status);
        failed.answered = true;
        throw failed;
      }
      answer.data.comments.forEach(function (comment) { self.addComment(comment); });
      self.next = answer.data.next;
      self.more.hidden = !self.next;
      self.setTotal(answer.data.total);
      self.listStatus.textContent = answer.data.total ? "" : "No comments yet. Be the first!";
      self.listStatus.hidden = !!answer.data.total;
      if (answer.data.closed) self.close();
      return true;
    }).catch(function (error) {
      self.listStatus.hidden = false;
      self.listStatus.textContent = "The comments could not be loaded. Please try again later.";
      if (!error.answered && cursor === null) self.explainFailure();
      return false;
    }).then(function (loaded) {
      self.more.disabled = false;
      return loaded;
    });
  };

  // The post takes no more comments: no form to type into, one line saying so.
  Widget.prototype.close = function () {
    this.form.hidden = true;
    this.closed.hidden = false;
    this.section.classList.add("cw-is-closed"); // no "Reply" either
    this.setParent(null);
  };

  // No answer at all. From another origin, the usual cause is the service not allowing this
  // blog (CORS): the service itself answers a no-cors request, but not a readable one. Say
  // what the site owner must set, on the page and in the console.
  Widget.prototype.explainFailure = function () {
    var self = this;
    var here = window.location.origin;
    if (here === ORIGIN) return;
    fetch(ORIGIN + "/healthz", { mode: "no-cors", credentials: "omit" }).then(function () {
      var text = "Site owner: the comment service at " + ORIGIN + " does not allow this site (" +
        here + "). Add it to the service's CORS_ORIGINS setting (CORS_ORIGINS=" + here +
        ") and restart it.";
      if (window.console && console.error) console.error("Comments widget: " + text);
      self.listStatus.textContent = "The comments cannot be shown on this site yet.";
      self.listStatus.appendChild(el("span", "cw-hint cw-owner-hint", text));
      self.form.hidden = true;
    }).catch(function () { /* the service is down: nothing more to say */ });
  };

  Widget.prototype.renderBody = function (content) {
    var body = el("div", "cw-body");
    content.split(/\n{2,}/).forEach(function (paragraph) {
      var p = el("p");
      paragraph.split("\n").forEach(function (line, index) {
        if (index) p.appendChild(document.createElement("br"));
        appendLinked(p, line);
      });
      body.appendChild(p);
    });
    return body;
  };

  Widget.prototype.addComment = function (comment) {
    var self = this;
    var existing = this.nodes[comment.id];
    if (existing) {
      if (comment.status === "published" && existing.classList.contains("cw-awaiting")) {
        // Its author was looking at it while it waited: now everyone sees it.
        existing.classList.remove("cw-awaiting");
        var badge = existing.querySelector(":scope > .cw-card .cw-awaiting-badge");
        if (badge) badge.remove();
        var note = existing.querySelector(":scope > .cw-card .cw-awaiting-note");
        if (note) note.remove();
        var replyButton = existing.querySelector(":scope > .cw-card .cw-reply");
        if (replyButton) replyButton.hidden = false;
      }
      return existing;
    }
    var awaiting = comment.status === "pending" || comment.status === "held";
    var item = el("li", "cw-comment" + (awaiting ? " cw-awaiting" : ""));
    item.id = this.prefix + "comment-" + comment.id;
    item.setAttribute("data-comment-id", String(comment.id));
    var article = el("article", "cw-card");
    var meta = el("header", "cw-meta");
    var href = safeUrl(comment.author_url);
    var author;
    if (href) {
      author = el("a", "cw-author", comment.author_name);
      author.href = href;
      author.rel = "nofollow ugc noopener";
    } else {
      author = el("strong", "cw-author", comment.author_name);
    }
    var time = el("time", "cw-date", formatDate(comment.created_at));
    time.dateTime = comment.created_at;
    meta.append(author, " ", time);
    var replyCount = el("span", "cw-reply-count");
    replyCount.hidden = true;
    meta.append(" ", replyCount);
    if (awaiting) meta.append(" ", el("span", "cw-awaiting-badge", "Awaiting moderation"));
    var reply = el("button", "cw-link cw-reply", "Reply");
    reply.type = "button";
    reply.hidden = awaiting; // a reply needs a published parent
    reply.addEventListener("click", function () { self.setParent(comment); });
    article.append(meta, this.renderBody(comment.content));
    if (awaiting) {
      article.append(el("p", "cw-awaiting-note",
        "Only you can see this comment until a moderator approves it."));
    }
    article.append(reply);
    var replies = el("ol", "cw-replies");
    item.append(article, replies);

    var parent = comment.parent_id ? this.nodes[comment.parent_id] : null;
    if (parent) {
      parent.querySelector(":scope > .cw-replies").appendChild(item);
      var count = parent.querySelector(":scope > .cw-card .cw-reply-count");
      var n = parent.querySelectorAll(":scope > .cw-replies > .cw-comment").length;
      count.textContent = plural(n, "reply", "replies");
      count.hidden = false;
    } else {
      // A reply whose parent is not shown (removed later) stands on its own.
      this.list.appendChild(item);
    }
    this.nodes[comment.id] = item;
    return item;
  };

  // --- the reader's own comments ---------------------------------------------------------

  Widget.prototype.mine = function () {
    var list = load(this.mineKey);
    return Array.isArray(list) ? list.filter(function (entry) {
      return entry && typeof entry.id === "number" && typeof entry.secret === "string";
    }) : [];
  };

  Widget.prototype.keepMine = function (id, secret) {
    var list = this.mine().filter(function (entry) { return entry.id !== id; });
    list.push({ id: id, secret: secret });
    store(this.mineKey, list.slice(-MAX_MINE));
  };

  Widget.prototype.forgetMine = function (id) {
    var list = this.mine().filter(function (entry) { return entry.id !== id; });
    store(this.mineKey, list.length ? list : null);
  };

  // Ask for one of the reader's comments with its secret; show it if it is not published
  // (marked awaiting moderation) or if it is published but not listed yet.
  Widget.prototype.showOwn = function (id, secret) {
    var self = this;
    return request("GET", "/comments/" + encodeURIComponent(id), undefined,
                   { "X-Comment-Secret": secret }).then(function (answer) {
      if (answer.status === 404) {
        self.forgetMine(id); // erased, or removed for good
        return null;
      }
      if (answer.status !== 200 || !answer.data) return null;
      var status = answer.data.status;
      if (status === "published") {
        self.forgetMine(id); // everyone sees it now: the list shows it
        if (self.nodes[id] && !self.nodes[id].classList.contains("cw-awaiting")) return status;
        if (self.next && !self.nodes[id]) return status; // on a later page of the list
      }
      var isNew = !self.nodes[id];
      var item = self.addComment(answer.data);
      item.classList.add("cw-mine");
      if (isNew && status === "published") self.setTotal(self.total + 1);
      self.listStatus.hidden = true;
      return status;
    }).catch(function () { return null; });
  };

  Widget.prototype.showMine = function () {
    var self = this;
    return Promise.all(this.mine().map(function (entry) {
      return self.showOwn(entry.id, entry.secret);
    }));
  };

  Widget.prototype.setParent = function (comment) {
    this.parentId = comment ? comment.id : null;
    this.replying.hidden = !comment;
    this.replyingText.textContent = comment ? "Replying to " + comment.author_name + "." : "";
    if (comment) this.inputs.content.focus();
  };

  // --- the form --------------------------------------------------------------------------

  Widget.prototype.fetchToken = function () {
    var self = this;
    return request("GET", "/form-token?post=" + encodeURIComponent(this.post)).then(function (answer) {
      // A service without form tokens (404) predates the anti-bot fields: send neither.
      self.antiBot = answer.status === 200 && !!answer.data && typeof answer.data.token === "string";
      self.formToken = self.antiBot ? answer.data.token : null;
    }).catch(function () {
      self.antiBot = false;
      self.formToken = null;
    });
  };

  Widget.prototype.showNotice = function (text, kind) {
    this.notice.textContent = text;
    this.notice.className = "cw-notice" + (kind ? " cw-notice-" + kind : "");
    this.notice.hidden = !text;
  };

  Widget.prototype.clearErrors = function () {
    var self = this;
    Object.keys(this.errors).forEach(function (field) {
      self.errors[field].textContent = "";
      self.errors[field].hidden = true;
      self.inputs[field].removeAttribute("aria-invalid");
    });
  };

  Widget.prototype.showErrors = function (problem) {
    var self = this;
    var errors = (problem && problem.errors) || {};
    var other = [];
    var first = null;
    Object.keys(errors).forEach(function (field) {
      var messages = errors[field];
      var text = Array.isArray(messages) ? messages.join(" ") :
        (typeof messages === "string" ? messages : "Invalid value.");
      if (self.errors[field]) {
        self.errors[field].textContent = text;
        self.errors[field].hidden = false;
        self.inputs[field].setAttribute("aria-invalid", "true");
        first = first || self.inputs[field];
      } else if (field === "parent_id") {
        self.setParent(null);
        other.push("The comment you replied to is no longer available; post again to comment on the article.");
      } else {
        other.push(text);
      }
    });
    if (first) first.focus();
    var message = first ? "Please correct the marked fields." : "Your comment could not be posted.";
    if (other.length) message += " " + other.join(" ");
    this.showNotice(message, "error");
  };

  Widget.prototype.body = function () {
    var self = this;
    var body = { post: this.post };
    FIELDS.forEach(function (spec) {
      var value = self.inputs[spec[0]].value;
      if (value.trim() !== "" || spec[0] === "author_name" || spec[0] === "content") {
        body[spec[0]] = value;
      }
    });
    if (this.parentId) body.parent_id = this.parentId;
    // A filled honeypot is always sent (the service refuses it); an empty one only to a
    // service that knows the field.
    if (this.antiBot || this.honeypot.value !== "") body.hp_website = this.honeypot.value;
    if (this.formToken) body.form_token = this.formToken;
    var reader = readerToken();
    if (reader) body.reader_token = reader;
    return body;
  };

  // The box ticked: keep name, e-mail and website in this browser; unticked: forget them.
  Widget.prototype.rememberAuthor = function () {
    var self = this;
    if (!this.remember.checked) {
      store(AUTHOR_KEY, null);
      return;
    }
    var author = {};
    ["author_name", "author_email", "author_url"].forEach(function (field) {
      author[field] = self.inputs[field].value.trim();
    });
    store(AUTHOR_KEY, author);
  };

  Widget.prototype.send = function () {
    var self = this;
    this.clearErrors();
    this.showNotice("", null);
    this.submit.disabled = true;
    this.submit.textContent = "Posting…";
    this.draftKey = this.draftKey || newKey();
    var headers = { "Idempotency-Key": this.draftKey };
    return request("POST", "/comments", this.body(), headers).then(function (answer) {
      if ((answer.status === 202 || answer.status === 409) && answer.data && answer.data.id) {
        keepReaderToken(answer.data.reader_token);
        store(self.postedKey, Date.now());
        self.rememberAuthor();
        self.inputs.content.value = "";
        self.draftKey = null;
        self.setParent(null);
        self.showNotice(answer.status === 409 ? "You already sent this comment; checking on it…" :
          "Thank you! Your comment is being checked…", "info");
        self.fetchToken(); // a fresh token for the next comment (a token serves one post)
        // The 202's secret shows us our comment before it is published (a 409 has none:
        // then we see it only once it is published).
        var secret = typeof answer.data.secret === "string" ? answer.data.secret : null;
        if (secret) self.keepMine(answer.data.id, secret);
        self.follow(answer.data.id, secret);
        return;
      }
      if (answer.status === 403) self.close();
      if (answer.status === 422) {
        self.showErrors(answer.data);
        if (answer.data && answer.data.errors && answer.data.errors.form_token) self.fetchToken();
        return;
      }
      var detail = answer.data && (answer.data.detail || answer.data.title);
      self.showNotice(detail ? "Your comment could not be posted: " + detail :
        "Your comment could not be posted (error " + answer.status + "). Please try again.", "error");
    }).catch(function () {
      self.showNotice("The comment service could not be reached. Please try again.", "error");
    }).then(function () {
      self.submit.disabled = false;
      self.submit.textContent = "Post Comment";
    });
  };

  // Ask for the new comment's status until it is decided. Held, spam and rejected all read
  // "awaiting moderation": a bot learns nothing about how it was judged.
  Widget.prototype.follow = function (id, secret) {
    var self = this;
    var deadline = Date.now() + POLL_DURATION_MS;
    var headers = secret ? { "X-Comment-Secret": secret } : undefined;
    function poll() {
      return sleep(POLL_INTERVAL_MS).then(function () {
        return request("GET", "/comments/" + encodeURIComponent(id), undefined, headers);
      }).then(function (answer) {
        var status = answer.status === 200 && answer.data ? answer.data.status : "pending";
        if (status === "published") {
          var isNew = !self.nodes[id] || self.nodes[id].classList.contains("cw-awaiting");
          var item = self.addComment(answer.data);
          if (isNew) self.setTotal(self.total + 1);
          self.listStatus.hidden = true;
          item.classList.add("cw-mine");
          self.forgetMine(id);
          self.showNotice("Your comment is published.", "success");
          return;
        }
        if (answer.status === 200 && answer.data && !self.nodes[id]) {
          // Its author sees it at once, marked, while it waits.
          self.addComment(answer.data).classList.add("cw-mine");
          self.listStatus.hidden = true;
        }
        if (status !== "pending" || Date.now() >= deadline) {
          self.showNotice(AWAITING, "info");
          return;
        }
        return poll();
      }, function () {
        if (Date.now() >= deadline) {
          self.showNotice(AWAITING, "info");
          return;
        }
        return poll();
      });
    }
    return poll();
  };

  // --- start -----------------------------------------------------------------------------

  function start() {
    var roots = document.querySelectorAll("[data-comments]");
    if (roots.length) ensureStylesheet();
    for (var i = 0; i < roots.length; i++) {
      var post = roots[i].getAttribute("data-post");
      if (post && !roots[i].hasAttribute("data-comments-ready")) {
        roots[i].setAttribute("data-comments-ready", "");
        new Widget(roots[i], post);
      }
    }
    refreshCounters();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
