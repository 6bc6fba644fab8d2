// The dashboard's publish form: builds one document event (DESIGN §4) from the form and
// POSTs it to /api/v1/documents. The API is the one validator: its 422 names the field
// (`document.scope.industries[0]: …`), and the message is shown under that field. The
// scope pickers offer the catalogues' codes with their Chinese names (GET /api/v1/catalogues).
"use strict";

window.RelayPublish = (function () {
  const R = window.Relay;
  const $ = R.$;
  let names = {}; // catalogue → code → name
  let loaded = false;
  const chosen = {}; // catalogue → [codes]
  let onPublished = null;

  function uuid() {
    if (window.crypto.randomUUID) return window.crypto.randomUUID();
    const b = window.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
  }

  // ------------------------------------------------------------------ catalogues and pickers

  function label(catalogue, code) {
    const name = (names[catalogue] || {})[code];
    if (catalogue === "tags") return code;
    return name ? code + " " + name : code + "（目录外）";
  }

  async function loadCatalogues() {
    if (loaded) return;
    const response = await R.api("/api/v1/catalogues");
    if (!response.ok) return; // the pickers still take typed codes; the API checks them
    const body = await response.json();
    loaded = true;
    const entriesOf = (key) => (body[key] && body[key].entries) || [];
    for (const key of Object.keys(body)) {
      const entries = entriesOf(key);
      names[key] = {};
      for (const e of entries) names[key][e.code] = e.name;
      const list = $("dl-" + key);
      if (list) {
        list.replaceChildren(
          ...entries.map((e) => {
            const option = el("option");
            option.value = key === "tags" ? e.code : e.code + " " + e.name;
            // Where it sits: a tag's group, or the name of the level above (制造业 for C39).
            const above = e.group || (e.parent && names[key][e.parent]);
            if (above) option.label = above;
            return option;
          })
        );
      }
    }
    for (const box of document.querySelectorAll("[data-choices]")) {
      const key = box.dataset.choices;
      const field = box.closest(".field").dataset.path;
      box.replaceChildren(
        ...entriesOf(key).map((e) => {
          const wrap = el("label", null, "choice");
          const input = el("input");
          input.type = "checkbox";
          input.name = field;
          input.value = e.code;
          wrap.append(input, " " + e.name);
          return wrap;
        })
      );
    }
  }

  function el(tag, text, className) {
    return R.el(tag, text, className);
  }

  // Typed text → a code: an option as listed ("C39 计算机…"), a code, or a name; anything
  // else is taken as written, for the API to judge (tags and parks are open lists).
  function resolve(catalogue, text) {
    const value = text.trim();
    if (!value) return null;
    const table = names[catalogue] || {};
    const first = value.split(/\s+/)[0];
    for (const candidate of [first, first.toUpperCase()]) {
      if (candidate in table) return candidate;
    }
    for (const [code, name] of Object.entries(table)) {
      if (name === value) return code;
    }
    return value;
  }

  function drawChips(field) {
    const catalogue = field.dataset.catalogue;
    const box = field.querySelector(".chips");
    box.replaceChildren(
      ...(chosen[catalogue] || []).map((code) => {
        const chip = el("span", null, "chip");
        chip.dataset.code = code;
        chip.append(el("span", label(catalogue, code)));
        const remove = el("button", "×", "remove");
        remove.type = "button";
        remove.setAttribute("aria-label", "移除 " + label(catalogue, code));
        remove.addEventListener("click", () => {
          chosen[catalogue] = chosen[catalogue].filter((c) => c !== code);
          drawChips(field);
        });
        chip.append(remove);
        return chip;
      })
    );
  }

  function add(field) {
    const catalogue = field.dataset.catalogue;
    const input = field.querySelector("input");
    const code = resolve(catalogue, input.value);
    input.value = "";
    if (!code) return;
    const list = (chosen[catalogue] = chosen[catalogue] || []);
    if (!list.includes(code)) list.push(code);
    clearError(field);
    drawChips(field);
  }

  function setUpPickers() {
    for (const field of document.querySelectorAll(".picker")) {
      const input = field.querySelector("input");
      field.querySelector(".add").addEventListener("click", () => add(field));
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter") {
          event.preventDefault();
          add(field);
        }
      });
      // Choosing from the list adds it at once (typing does not).
      input.addEventListener("input", (event) => {
        const picked = !event.inputType || event.inputType === "insertReplacementText";
        if (picked && input.value.trim()) add(field);
      });
    }
  }

  // ------------------------------------------------------------------ the event

  function value(name) {
    const input = document.querySelector('#publish-form [name="' + name + '"]');
    if (!input) return undefined;
    if (input.type === "checkbox") return input.checked;
    const text = input.value.trim();
    return text === "" ? undefined : text;
  }

  function checked(name) {
    return Array.from(document.querySelectorAll('#publish-form [name="' + name + '"]:checked'), (i) => i.value);
  }

  function compact(object) {
    for (const key of Object.keys(object)) if (object[key] === undefined) delete object[key];
    return object;
  }

  function eventFromForm() {
    const type = value("type");
    const version = value("document.version");
    const doc = compact({
      id: value("document.id"),
      // Digits become a number; anything else goes as typed, for the API to name.
      version: version !== undefined && /^\d+$/.test(version) ? Number(version) : version,
      title: value("document.title"),
      doc_number: value("document.doc_number"),
      issuer: value("document.issuer"),
      published_on: value("document.published_on"),
      effective_from: value("document.effective_from"),
      expires_on: value("document.expires_on"),
      normative: value("document.normative"),
      url: value("document.url"),
      interpretation_url: value("document.interpretation_url"),
      index_no: value("document.index_no"),
      disclosure: value("document.disclosure"),
      summary: value("document.summary"),
      tags: chosen.tags || [],
      scope: {
        audiences: checked("document.scope.audiences"),
        industries: chosen.industries || [],
        regions: chosen.regions || [],
        parks: chosen.parks || [],
        scales: checked("document.scope.scales"),
      },
    });
    if (type === "document.revised") doc.changes = value("document.changes");
    if (type === "document.repealed") doc.repealed_on = value("document.repealed_on");
    const contact = compact({
      unit: value("document.contact.unit"),
      phone: value("document.contact.phone"),
      email: value("document.contact.email"),
    });
    if (Object.keys(contact).length) doc.contact = contact;
    return {
      event_id: uuid(),
      type: type,
      occurred_at: new Date().toISOString(),
      document: compact(doc),
    };
  }

  // ------------------------------------------------------------------ errors by field

  function clearError(field) {
    field.classList.remove("invalid");
    const box = field.querySelector(".field-error");
    if (box) box.remove();
    const input = field.querySelector("input, select, textarea");
    if (input) {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    }
  }

  function clearErrors() {
    for (const field of document.querySelectorAll("#publish-form .field")) clearError(field);
    R.show("publish-problem", "");
  }

  // `document.scope.industries[0]` → the field for document.scope.industries (the longest
  // data-path the error's path starts with).
  function fieldFor(path) {
    const plain = path.replace(/\[\d+\]/g, "");
    let best = null;
    for (const field of document.querySelectorAll("#publish-form .field[data-path]")) {
      const p = field.dataset.path;
      if ((plain === p || plain.startsWith(p + ".")) && (!best || p.length > best.dataset.path.length)) {
        best = field;
      }
    }
    return best;
  }

  function plainWords(code, message, path) {
    if (/required field is missing/.test(message)) return "此项必填。";
    if (code === "unknown_code") return "代码不在目录中，请从列表中选择。";
    if (/industries|regions/.test(path)) return "不是有效的代码，请从列表中选择。";
    if (code === "expired") return "该政策已过有效期，不能推送。";
    if (code === "too_large") return "内容过长。";
    if (/URL|url/.test(message)) return "请填写完整的网址（以 http:// 或 https:// 开头）。";
    if (/date/i.test(message)) return "日期格式有误。";
    if (/version/.test(message)) return "版本号有误。";
    return "填写有误。";
  }

  function showError(code, message) {
    const match = /^([A-Za-z_][\w.\[\]]*): /.exec(message);
    const field = match ? fieldFor(match[1]) : null;
    const words = plainWords(code, message, match ? match[1] : "");
    if (!field) {
      R.show("publish-problem", words + "（" + message + "）");
      $("publish-problem").scrollIntoView({ block: "center" });
      return;
    }
    if (field.hidden) field.hidden = false;
    field.classList.add("invalid");
    const box = el("div", null, "field-error");
    box.id = "err-" + field.dataset.path.replace(/\W/g, "-");
    box.setAttribute("role", "alert");
    box.append(el("strong", words), el("span", " " + message, "api-message"));
    field.append(box);
    const input = field.querySelector("input, select, textarea");
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", box.id);
      input.focus();
    }
    field.scrollIntoView({ block: "center" });
  }

  // ------------------------------------------------------------------ submitting

  function showForType() {
    const type = value("type");
    for (const field of document.querySelectorAll("#publish-form [data-for-type]")) {
      field.hidden = field.dataset.forType !== type;
    }
  }

  function resetForm() {
    for (const key of Object.keys(chosen)) delete chosen[key];
    for (const field of document.querySelectorAll(".picker")) drawChips(field);
    clearErrors();
    window.setTimeout(showForType, 0);
  }

  async function submit(event) {
    event.preventDefault();
    clearErrors();
    const button = $("publish-submit");
    button.disabled = true;
    try {
      const ev = eventFromForm();
      const response = await R.postJSON("/api/v1/documents", ev);
      const refusal = await R.refused(response);
      if (refusal) {
        R.signedOut(refusal);
        return;
      }
      if (response.status === 202) {
        const body = await response.json();
        $("publish-form").reset();
        resetForm();
        $("publish").open = false;
        R.show(
          "notice",
          "已提交发布：《" + ev.document.title + "》第 " + body.version +
            " 版。正在匹配合作方并推送，进展见下方列表。"
        );
        if (onPublished) onPublished(body.document_id);
        return;
      }
      const error = await R.errorOf(response);
      showError(error.code, error.message);
    } catch (e) {
      R.show("publish-problem", "提交没有送达服务，请检查网络后再试。");
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ revising, repealing

  function set(name, v) {
    const input = document.querySelector('#publish-form [name="' + name + '"]');
    if (!input) return;
    if (input.type === "checkbox") input.checked = Boolean(v);
    else input.value = v === null || v === undefined ? "" : String(v);
  }

  // The form filled from the document's latest version, for its revision or repeal.
  async function prefill(documentId, type) {
    const response = await R.api("/api/v1/documents/" + encodeURIComponent(documentId));
    const refusal = await R.refused(response);
    if (refusal) {
      R.signedOut(refusal);
      return;
    }
    if (!response.ok) {
      R.show("problem", "读取政策《" + documentId + "》失败：" + (await R.errorMessage(response)));
      return;
    }
    const body = await response.json();
    const doc = body.document;
    await loadCatalogues();
    $("publish-form").reset();
    resetForm();
    set("type", type);
    const latest = Math.max(...body.versions);
    const fields = [
      "id", "title", "doc_number", "issuer", "published_on", "effective_from", "expires_on",
      "normative", "url", "interpretation_url", "index_no", "disclosure", "summary",
    ];
    for (const f of fields) set("document." + f, doc[f]);
    set("document.version", type === "document.revised" ? latest + 1 : latest);
    if (doc.contact) {
      for (const f of ["unit", "phone", "email"]) set("document.contact." + f, doc.contact[f]);
    }
    chosen.tags = (doc.tags || []).slice();
    for (const key of ["industries", "regions", "parks"]) chosen[key] = (doc.scope[key] || []).slice();
    for (const key of ["audiences", "scales"]) {
      for (const box of document.querySelectorAll('#publish-form [name="document.scope.' + key + '"]')) {
        box.checked = (doc.scope[key] || []).includes(box.value);
      }
    }
    for (const field of document.querySelectorAll(".picker")) drawChips(field);
    showForType();
    $("publish").open = true;
    R.show(
      "notice",
      (type === "document.revised" ? "已按第 " + latest + " 版填好修订稿" : "已填好废止通知") +
        "：请核对后提交。"
    );
    $("publish").scrollIntoView({ block: "start" });
  }

  function setUp(options) {
    onPublished = options.onPublished;
    setUpPickers();
    $("publish-form").addEventListener("submit", submit);
    $("publish-form").addEventListener("reset", resetForm);
    $("f-type").addEventListener("change", showForType);
    $("publish").addEventListener("toggle", () => {
      if ($("publish").open) loadCatalogues();
    });
    showForType();
  }

  return { setUp, loadCatalogues, prefill };
})();
