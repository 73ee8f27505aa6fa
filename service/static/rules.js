/* The admin's rules page: each form is sent as JSON to the moderation API (session cookie +
 * CSRF header), then the page reloads to show the stored state. */
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
    for (const input of form.querySelectorAll("input[name], select[name]")) {
      if (input.name === "csrf_token" || input.dataset.skip) continue;
      const type = input.dataset.type;
      if (type === "bool") data[input.name] = input.checked;
      else if (type === "int") data[input.name] = parseInt(input.value, 10);
      else if (type === "float") data[input.name] = parseFloat(input.value);
      else if (input.value.trim() !== "" || input.name !== "note") data[input.name] = input.value;
    }
    return data;
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
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const response = await fetch(url, {
        method,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken, "Content-Type": "application/json",
                   Accept: "application/json" },
        body: method === "DELETE" ? undefined : JSON.stringify(body(form)),
      });
      if (response.status === 401) {
        window.location.assign("/moderate/login?next=/moderate/rules");
        return;
      }
      if (!response.ok) {
        const problem = await response.json().catch(() => ({}));
        const fields = problem.errors ? Object.entries(problem.errors)
          .map(([name, messages]) => name + ": " + [].concat(messages).join(" ")).join("; ") : "";
        flash(fields || problem.detail || problem.title || "HTTP " + response.status, "error");
        return;
      }
      window.location.reload();
    } catch (error) {
      flash(String(error), "error");
    } finally {
      button.disabled = false;
    }
  }

  for (const form of document.querySelectorAll("form.api-form")) {
    form.addEventListener("submit", submit);
  }
})();
