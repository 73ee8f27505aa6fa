/* The admins' pages (rules, webhooks, sites, models): each form is sent as JSON to the
 * moderation API (session cookie + CSRF header), then the page reloads to show the stored
 * state. A form with data-reveal shows that field of the answer (a secret shown once) first.
 *
 * Form attributes: data-method, data-url (+ data-url-field: a field appended to the URL),
 * data-confirm (asked first), data-reveal. Field attributes: data-type = int, float, bool
 * (a checkbox), list (checkboxes of one name: the checked values); data-skip leaves a field
 * out; an empty optional field (data-optional) is left out. */
"use strict";

(function () {
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;

  function flash(message, kind) {
    const box = document.getElementById("flash");
    box.textContent = message;
    box.className = "flash flash-" + kind;
    box.hidden = false;
  }

  function body(form) {
    const data = {};
    for (const input of form.querySelectorAll("input[name], select[name], textarea[name]")) {
      if (input.name === "csrf_token" || input.dataset.skip) continue;
      const type = input.dataset.type;
      if (type === "list") {
        data[input.name] = data[input.name] || [];
        if (input.checked) data[input.name].push(input.value);
      } else if (type === "bool") data[input.name] = input.checked;
      else if (type === "int") data[input.name] = parseInt(input.value, 10);
      else if (type === "float") data[input.name] = parseFloat(input.value);
      else if (input.value.trim() !== "" || !(input.dataset.optional || input.name === "note")) {
        data[input.name] = input.value;
      }
    }
    return data;
  }

  function reveal(label, value) {
    const box = document.getElementById("reveal");
    box.querySelector(".reveal-label").textContent = label;
    box.querySelector(".reveal-value").textContent = value;
    box.hidden = false;
    box.querySelector("button").focus();
  }

  async function submit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const method = form.dataset.method;
    let url = form.dataset.url;
    if (form.dataset.urlField) {
      const value = form.elements[form.dataset.urlField].value.trim().replace(/^\/+|\/+$/g, "");
      url += value.split("/").map(encodeURIComponent).join("/");
    }
    // A row's button may sit outside its form (form="..."): the submitter is the one pressed.
    const button = event.submitter || form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      const response = await fetch(url, {
        method,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken, "Content-Type": "application/json",
                   Accept: "application/json" },
        body: method === "DELETE" ? undefined : JSON.stringify(body(form)),
      });
      if (response.status === 401) {
        window.location.assign("/moderate/login?next=" + encodeURIComponent(location.pathname));
        return;
      }
      const answer = response.status === 204 ? {} : await response.json().catch(() => ({}));
      if (!response.ok) {
        const fields = answer.errors ? Object.entries(answer.errors)
          .map(([name, messages]) => name + ": " + [].concat(messages).join(" ")).join("; ") : "";
        flash(fields || answer.detail || answer.title || "HTTP " + response.status, "error");
        return;
      }
      if (form.dataset.reveal && answer[form.dataset.reveal]) {
        reveal(form.dataset.revealLabel || "Shown only now:", answer[form.dataset.reveal]);
        return;
      }
      if (form.dataset.done) {
        flash(form.dataset.done, "ok");
        return;
      }
      window.location.reload();
    } catch (error) {
      flash(String(error), "error");
    } finally {
      if (button) button.disabled = false;
    }
  }

  for (const form of document.querySelectorAll("form.api-form")) {
    form.addEventListener("submit", submit);
  }
  const done = document.getElementById("reveal-done");
  if (done) done.addEventListener("click", () => window.location.reload());
})();
