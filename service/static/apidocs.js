// The API reference page: renders /api/v1/openapi.json (operations by tag, parameters,
// bodies, responses, schemas). Builds DOM nodes only (no innerHTML), no third-party code.
"use strict";

(function () {
  const METHODS = ["get", "post", "put", "patch", "delete"];

  // Append children to node: nodes as they are, text as text, arrays (nested at any depth,
  // as the builders below return them) element by element; null, undefined and false skipped.
  function appendAll(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(key, value);
    }
    return appendAll(node, children);
  }

  function refName(ref) {
    return ref.split("/").pop();
  }

  // A local reference ("#/components/schemas/X", "#/components/responses/Y") and its target.
  function resolve(spec, schema) {
    if (schema && schema.$ref) {
      let target = spec;
      for (const part of schema.$ref.replace(/^#\//, "").split("/")) {
        target = target && target[part];
      }
      return [refName(schema.$ref), target || {}];
    }
    return [null, schema || {}];
  }

  // Descriptions come from docstrings: `code` and ``code`` spans become <code>, the rest
  // stays text.
  function prose(text) {
    const parts = [];
    let last = 0;
    for (const match of String(text).matchAll(/``(.+?)``|`([^`]+)`/g)) {
      parts.push(text.slice(last, match.index), el("code", {}, match[1] || match[2]));
      last = match.index + match[0].length;
    }
    parts.push(String(text).slice(last));
    return parts;
  }

  function typeOf(spec, schema) {
    if (!schema) return "any";
    if (schema.$ref) return el("a", { href: "#schema-" + refName(schema.$ref) }, refName(schema.$ref));
    if (schema.type === "array") return el("span", {}, "array of ", typeOf(spec, schema.items));
    if (schema.allOf) return el("span", {}, schema.allOf.map((s) => typeOf(spec, s)));
    let text = schema.type || (schema.enum ? "string" : "object");
    if (schema.format) text += " (" + schema.format + ")";
    if (schema.nullable) text += ", nullable";
    return text;
  }

  function constraints(schema) {
    const parts = [];
    if (schema.enum) parts.push("one of: " + schema.enum.join(", "));
    if (schema.minLength !== undefined) parts.push("min length " + schema.minLength);
    if (schema.maxLength !== undefined) parts.push("max length " + schema.maxLength);
    if (schema.minimum !== undefined) parts.push("≥ " + schema.minimum);
    if (schema.maximum !== undefined) parts.push("≤ " + schema.maximum);
    if (schema.default !== undefined) parts.push("default " + JSON.stringify(schema.default));
    if (schema.readOnly) parts.push("read-only");
    return parts.join("; ");
  }

  function propertiesTable(spec, schema) {
    const [, body] = resolve(spec, schema);
    const props = body.properties || {};
    const required = new Set(body.required || []);
    if (!Object.keys(props).length) return el("p", { class: "muted" }, typeOf(spec, schema));
    return el("table", { class: "fields" },
      el("thead", {}, el("tr", {}, el("th", {}, "Field"), el("th", {}, "Type"),
        el("th", {}, "Notes"))),
      el("tbody", {}, Object.entries(props).map(([name, prop]) => {
        const [, inner] = resolve(spec, prop);
        return el("tr", {},
          el("td", {}, el("code", {}, name), required.has(name) ? el("span", { class: "req" }, " required") : null),
          el("td", {}, typeOf(spec, prop)),
          el("td", {}, prose([constraints(inner), prop.description || inner.description || ""]
            .filter(Boolean).join(". "))));
      })));
  }

  function parametersTable(spec, params) {
    return el("table", { class: "fields" },
      el("thead", {}, el("tr", {}, el("th", {}, "Parameter"), el("th", {}, "In"),
        el("th", {}, "Type"), el("th", {}, "Notes"))),
      el("tbody", {}, params.map((p) => el("tr", {},
        el("td", {}, el("code", {}, p.name), p.required ? el("span", { class: "req" }, " required") : null),
        el("td", {}, p.in),
        el("td", {}, typeOf(spec, p.schema)),
        el("td", {}, prose([constraints(p.schema || {}), p.description || ""].filter(Boolean)
          .join(". ")))))));
  }

  function content(spec, body) {
    return Object.entries(body.content || {}).map(([type, media]) =>
      el("div", { class: "media" }, el("p", {}, el("code", {}, type)),
        media.schema ? propertiesTable(spec, media.schema) : null));
  }

  function operation(spec, path, method, op) {
    const id = "op-" + method + "-" + path.replace(/[^A-Za-z0-9]+/g, "-");
    const parts = [
      el("h3", { id }, el("span", { class: "method method-" + method }, method.toUpperCase()),
        " ", el("code", {}, path)),
      op.summary ? el("p", { class: "summary" }, prose(op.summary)) : null,
      op.description ? el("p", {}, prose(op.description)) : null,
      op.security && op.security.length ? el("p", { class: "muted" }, "Needs a moderator's Bearer token.") : null,
    ];
    if (op.parameters && op.parameters.length) {
      parts.push(el("h4", {}, "Parameters"), parametersTable(spec, op.parameters));
    }
    if (op.requestBody) parts.push(el("h4", {}, "Request body"), content(spec, op.requestBody));
    parts.push(el("h4", {}, "Responses"));
    for (const [code, response] of Object.entries(op.responses || {})) {
      const [, resolved] = resolve(spec, response);
      parts.push(el("div", { class: "response" },
        el("p", {}, el("strong", {}, code), " ", prose(resolved.description || "")),
        content(spec, resolved)));
    }
    return [id, el("section", { class: "operation" }, parts)];
  }

  function render(spec) {
    document.getElementById("doc-title").textContent = spec.info.title;
    const meta = document.getElementById("doc-meta");
    meta.replaceChildren("Version " + spec.info.version + " · OpenAPI " + spec.openapi + " · ",
      el("a", { href: document.body.dataset.specUrl }, "raw document"));
    const main = document.getElementById("doc-main");
    const nav = document.getElementById("doc-nav");
    const tags = new Map((spec.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
    for (const [path, item] of Object.entries(spec.paths || {})) {
      for (const method of METHODS) {
        if (!item[method]) continue;
        const op = { ...item[method], parameters: [...(item.parameters || []), ...(item[method].parameters || [])] };
        const name = (op.tags || ["other"])[0];
        if (!tags.has(name)) tags.set(name, { tag: { name }, ops: [] });
        tags.get(name).ops.push(operation(spec, path, method, op));
      }
    }
    main.replaceChildren();
    nav.replaceChildren();
    for (const { tag, ops } of tags.values()) {
      if (!ops.length) continue;
      appendAll(main, [el("h2", { id: "tag-" + tag.name }, tag.name),
        tag.description ? el("p", { class: "muted" }, tag.description) : null,
        ops.map(([, section]) => section)]);
      appendAll(nav, [el("h2", {}, el("a", { href: "#tag-" + tag.name }, tag.name)),
        el("ul", {}, ops.map(([id, section]) => el("li", {},
          el("a", { href: "#" + id }, section.querySelector("h3").textContent))))]);
    }
    const schemas = (spec.components && spec.components.schemas) || {};
    main.append(el("h2", { id: "schemas" }, "Schemas"));
    for (const [name, schema] of Object.entries(schemas)) {
      main.append(el("section", { class: "schema", id: "schema-" + name },
        el("h3", {}, name), schema.description ? el("p", {}, prose(schema.description)) : null,
        propertiesTable(spec, schema)));
    }
    nav.append(el("h2", {}, el("a", { href: "#schemas" }, "Schemas")));
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    fetch(document.body.dataset.specUrl, { headers: { Accept: "application/json" } })
      .then((response) => {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(render)
      .catch((error) => {
        document.getElementById("doc-meta").textContent = "Could not load the OpenAPI document: " + error.message;
      });
  });
})();
