// The partner's own page (GET /partner): asks for the partner's token (kept in this tab's
// sessionStorage, never in the URL), learns whose it is from GET /api/v1/me, and works through
// the partner API: the profile and coverage (edited with pickers from GET /api/v1/catalogues),
// the channels, the deliveries with their acknowledgements, and questions on a document.
// Every value from the server is written with textContent, never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "relay.partnerToken";
  const REFRESH_MS = 20000;
  const STATUS = {
    delivered: "已送达",
    pending: "待发送",
    retrying: "发送失败，稍后自动重试",
    failed: "未送达",
    disabled: "渠道已停用，未发送",
    dead: "多次重试后仍未送达",
  };
  const CHANNELS = {
    email: "邮件",
    webhook: "Webhook",
    wecom: "企业微信群机器人",
    dingtalk: "钉钉群机器人",
    feishu: "飞书群机器人",
  };
  const KINDS = { association: "行业协会", park: "产业园区" };
  const URL_HINTS = {
    webhook: "贵单位系统接收推送的地址（https://…）。签名密钥由平台生成，只显示一次。",
    wecom: "群机器人的 Webhook 地址：https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…",
    dingtalk: "自定义机器人的 Webhook 地址：https://oapi.dingtalk.com/robot/send?access_token=…",
    feishu: "自定义机器人的 Webhook 地址：https://open.feishu.cn/open-apis/bot/v2/hook/…",
  };
  const TIME = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai",
    hour12: false,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  });
  // The coverage and interest lists the profile form edits, and where each lives in the body.
  const LISTS = {
    industries: "coverage",
    regions: "coverage",
    parks: "coverage",
    tags_any: "interests",
    exclude_tags: "interests",
  };

  const $ = (id) => document.getElementById(id);
  const state = {
    me: null,
    catalogues: null,
    names: {},
    profile: null,
    draft: null,
    deliveries: [],
    cursor: null,
    shown: "",
    asked: new Map(),
    timer: 0,
  };

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }

  function button(text, className, onClick) {
    const b = el("button", text, className);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }

  function when(iso) {
    return iso ? TIME.format(new Date(iso)) : "—";
  }

  // A notice goes by itself after a while; a problem stays until read (a tap closes either).
  const NOTICE_MS = 8000;
  let noticeTimer = 0;

  function show(id, message) {
    const box = $(id);
    box.textContent = message || "";
    box.hidden = !message;
    if (id === "notice") {
      clearTimeout(noticeTimer);
      if (message) noticeTimer = setTimeout(() => (box.hidden = true), NOTICE_MS);
    }
  }

  function notice(message) {
    show("problem", "");
    show("notice", message);
  }

  function problem(message) {
    show("notice", "");
    show("problem", message);
  }

  // ------------------------------------------------------------------ talking to the API

  class SignedOut extends Error {}

  async function api(path, options) {
    const opts = options || {};
    const headers = Object.assign({ Authorization: "Bearer " + token() }, opts.headers);
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(opts.json);
    }
    const response = await fetch(
      path,
      Object.assign({ cache: "no-store" }, opts, { headers: headers, json: undefined })
    );
    if (response.status === 401) {
      signedOut("令牌无效或已更换：请重新输入贵单位的合作方令牌。");
      throw new SignedOut();
    }
    return response;
  }

  async function errorMessage(response) {
    try {
      const body = await response.json();
      return body.error.message;
    } catch (e) {
      return "HTTP " + response.status;
    }
  }

  function partnerPath(rest) {
    return "/api/v1/partners/" + encodeURIComponent(state.me.partner_id) + (rest || "");
  }

  // A 422 names the field first ("coverage.regions[1]: …"): shown next to that field.
  function fieldError(form, message) {
    const colon = message.indexOf(": ");
    const path = colon > 0 ? message.slice(0, colon) : "";
    const text = colon > 0 ? message.slice(colon + 2) : message;
    let best = null;
    for (const slot of form.querySelectorAll("[data-error-for]")) {
      const key = slot.dataset.errorFor;
      const fits = key === "" || path === key || path.startsWith(key + ".") || path.startsWith(key + "[");
      if (fits && (best === null || key.length > best.dataset.errorFor.length)) best = slot;
    }
    if (best === null) return false;
    best.textContent = "填写有误：" + text + (path ? "（" + path + "）" : "");
    best.hidden = false;
    const field = best.closest(".field") || best;
    field.classList.add("invalid");
    const index = /\[(\d+)\]/.exec(path);
    const list = field.querySelector(".chips");
    if (index && list && list.children[Number(index[1])]) {
      list.children[Number(index[1])].classList.add("bad");
    }
    const focus = field.querySelector("input, select, textarea");
    if (focus) focus.focus();
    return true;
  }

  function clearErrors(form) {
    for (const slot of form.querySelectorAll("[data-error-for]")) {
      slot.textContent = "";
      slot.hidden = true;
    }
    for (const f of form.querySelectorAll(".invalid")) f.classList.remove("invalid");
    for (const c of form.querySelectorAll(".bad")) c.classList.remove("bad");
  }

  // ------------------------------------------------------------------ signing in and out

  function signedOut(message) {
    clearTimeout(state.timer);
    state.timer = 0;
    state.me = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $("app").hidden = true;
    $("nav").hidden = true;
    $("signin").hidden = false;
    $("signout").hidden = true;
    $("who").textContent = "未登录";
    $("new-token").replaceChildren();
    $("new-token").hidden = true;
    show("notice", "");
    show("problem", message || "");
    $("token").value = "";
    $("token").focus();
  }

  function signIn(event) {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) {
      problem("请输入合作方令牌。");
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    show("problem", "");
    start();
  }

  async function start() {
    $("who").textContent = "正在连接…";
    try {
      const response = await api("/api/v1/me");
      if (!response.ok) {
        signedOut("暂时无法登录：" + (await errorMessage(response)));
        return;
      }
      const me = await response.json();
      if (me.kind !== "partner") {
        signedOut("这是运营方（操作员）令牌：本页面供合作方使用，请输入贵单位的合作方令牌（prt_…）。运营方请使用运行看板。");
        return;
      }
      state.me = me;
      $("signin").hidden = true;
      $("who").textContent = "正在读取 " + (me.name || me.partner_id) + " 的资料…";
      await loadCatalogues();
      await Promise.all([loadProfile(), loadDeliveries(false)]);
      // Shown once everything is in, so nothing is edited half-loaded.
      $("who").textContent = me.name || me.partner_id;
      $("signout").hidden = false;
      $("app").hidden = false;
      $("nav").hidden = false;
      show("problem", "");
      schedule();
    } catch (e) {
      if (e instanceof SignedOut) return;
      $("who").textContent = "连接中断";
      $("signout").hidden = false;
      problem("连接不上服务，请检查网络后刷新页面。");
    }
  }

  // ------------------------------------------------------------------ catalogues and names

  async function loadCatalogues() {
    if (state.catalogues) return;
    const response = await api("/api/v1/catalogues");
    if (!response.ok) throw new Error(await errorMessage(response));
    const c = await response.json();
    state.catalogues = c;
    state.names = {};
    for (const dim of ["industries", "regions", "parks", "scales", "tags"]) {
      const names = (state.names[dim] = new Map());
      for (const e of c[dim].entries) names.set(e.code, e);
    }
    fillPickers(c);
  }

  // An industry code may come without its section letter (39 for C39).
  function industryEntry(code) {
    const names = state.names.industries;
    const upper = String(code).trim().toUpperCase();
    if (names.has(upper)) return names.get(upper);
    for (const letter of "ABCDEFGHIJKLMNOPQRST") {
      if (names.has(letter + upper)) return names.get(letter + upper);
    }
    return null;
  }

  // A region code may carry trailing 000 groups (310118106000 is 徐泾镇).
  function regionEntry(code) {
    let c = String(code).trim();
    const names = state.names.regions;
    while (c.length > 6 && c.endsWith("000") && !names.has(c)) c = c.slice(0, -3);
    return names.get(c) || null;
  }

  function nameOf(dim, code) {
    let entry = null;
    if (dim === "industries") entry = industryEntry(code);
    else if (dim === "regions") entry = regionEntry(code);
    else if (dim === "parks") entry = state.names.parks.get(code) || null;
    else if (dim === "scales") entry = state.names.scales.get(code) || null;
    else entry = state.names.tags.get(code) || null;
    return entry ? entry.name : null;
  }

  function option(value, text) {
    const o = el("option", text);
    o.value = value;
    return o;
  }

  function fillPickers(c) {
    // Industries: one group per section; the section itself, its divisions, listed groups.
    const ind = $("pick-industries");
    const sections = c.industries.entries.filter((e) => e.level === "section");
    for (const s of sections) {
      const group = el("optgroup");
      group.label = s.code + " " + s.name;
      group.append(option(s.code, s.name + "（整个门类 " + s.code + "）"));
      const indent = { division: "", group: "\u3000", class: "\u3000\u3000" };
      for (const e of c.industries.entries) {
        if (e.level === "section" || e.code[0] !== s.code) continue;
        group.append(option(e.code, indent[e.level] + e.name + "（" + e.code + "）"));
      }
      ind.append(group);
    }
    // Regions: the city, its districts, then each district's listed townships.
    const reg = $("pick-regions");
    const regions = c.regions.entries;
    const top = el("optgroup");
    top.label = "市、区";
    for (const e of regions.filter((r) => r.level === "province" || r.level === "district")) {
      top.append(option(e.code, (e.level === "province" ? e.name + "（全市）" : e.name) + "（" + e.code + "）"));
    }
    reg.append(top);
    for (const d of regions.filter((r) => r.level === "district")) {
      const towns = regions.filter((r) => r.parent === d.code);
      if (!towns.length) continue;
      const group = el("optgroup");
      group.label = d.name + "的街镇";
      for (const t of towns) group.append(option(t.code, t.name + "（" + t.code + "）"));
      reg.append(group);
    }
    for (const e of c.parks.entries) $("pick-parks").append(option(e.code, e.name + "（" + e.code + "）"));
    // Tags, grouped as the vocabulary groups them, for both interest lists.
    for (const id of ["pick-tags_any", "pick-exclude_tags"]) {
      const groups = new Map();
      for (const e of c.tags.entries) {
        if (!groups.has(e.group)) {
          const g = el("optgroup");
          g.label = e.group || "其他";
          groups.set(e.group, g);
          $(id).append(g);
        }
        groups.get(e.group).append(option(e.code, e.name));
      }
    }
    const scales = $("scales");
    scales.replaceChildren(
      ...c.scales.entries.map((e) => {
        const label = el("label", null, "check inline");
        const box = el("input");
        box.type = "checkbox";
        box.value = e.code;
        box.dataset.scale = e.code;
        box.addEventListener("change", () => {
          const on = [...scales.querySelectorAll("input:checked")].map((i) => i.value);
          state.draft.scales = c.scales.entries.map((s) => s.code).filter((s) => on.includes(s));
        });
        label.append(box, document.createTextNode(" " + e.name));
        return label;
      })
    );
  }

  // ------------------------------------------------------------------ profile and coverage

  async function loadProfile() {
    const response = await api(partnerPath());
    if (!response.ok) {
      problem("读取资料失败：" + (await errorMessage(response)));
      return;
    }
    const p = await response.json();
    state.profile = p;
    state.draft = {
      industries: [...p.coverage.industries],
      regions: [...p.coverage.regions],
      parks: [...p.coverage.parks],
      scales: [...p.coverage.scales],
      tags_any: [...p.interests.tags_any],
      exclude_tags: [...p.interests.exclude_tags],
    };
    $("paused-banner").hidden = !p.paused;
    $("f-name").value = p.name;
    $("f-kind").textContent = KINDS[p.kind] || p.kind;
    $("f-paused").checked = p.paused;
    $("f-catch-up").checked = p.catch_up;
    $("f-mode-" + p.delivery.mode).checked = true;
    if (p.delivery.digest_at) $("f-digest-at").value = p.delivery.digest_at;
    for (const box of $("scales").querySelectorAll("input")) {
      box.checked = p.coverage.scales.includes(box.value);
    }
    for (const dim of Object.keys(LISTS)) drawChips(dim);
    clearErrors($("profile-form"));
    renderChannels(p.channels);
  }

  function drawChips(dim) {
    const list = $("chips-" + dim);
    const codes = state.draft[dim];
    const chips = codes.map((code, i) => {
      const name = nameOf(dim, code);
      const chip = el("li", null, "chip");
      chip.dataset.code = code;
      const label = el("span", name || code, "chip-name");
      chip.append(label);
      if (name && name !== code) chip.append(el("span", code, "chip-code"));
      if (!name && (dim === "industries" || dim === "regions")) chip.append(el("span", "目录未列名称", "chip-code"));
      chip.append(
        button("×", "chip-remove", () => {
          state.draft[dim].splice(i, 1);
          drawChips(dim);
          $("pick-" + dim).focus();
        })
      );
      chip.lastChild.setAttribute("aria-label", "移除 " + (name || code));
      return chip;
    });
    if (!chips.length) {
      const empty = el("li", dim === "tags_any" ? "全部标签" : dim === "exclude_tags" ? "无" : "未登记", "chip-empty");
      chips.push(empty);
    }
    list.replaceChildren(...chips);
  }

  function addCode(dim, code) {
    code = code.trim();
    if (!code) return;
    if (!state.draft[dim].includes(code)) state.draft[dim].push(code);
    drawChips(dim);
  }

  async function saveProfile(event) {
    event.preventDefault();
    const form = $("profile-form");
    clearErrors(form);
    const d = state.draft;
    const mode = form.querySelector("input[name=mode]:checked");
    const delivery = { mode: mode ? mode.value : "immediate" };
    if (delivery.mode === "digest") delivery.digest_at = $("f-digest-at").value || null;
    const body = {
      name: $("f-name").value,
      coverage: { industries: d.industries, regions: d.regions, parks: d.parks, scales: d.scales },
      interests: { tags_any: d.tags_any, exclude_tags: d.exclude_tags },
      paused: $("f-paused").checked,
      catch_up: $("f-catch-up").checked,
      delivery: delivery,
    };
    const submit = $("save-profile");
    submit.disabled = true;
    try {
      const response = await api(partnerPath(), { method: "PUT", json: body });
      if (response.status === 422) {
        const message = await errorMessage(response);
        fieldError(form, message);
        problem("资料没有保存：请按提示修改后再保存。");
        return;
      }
      if (!response.ok) {
        problem("资料没有保存：" + (await errorMessage(response)));
        return;
      }
      await loadProfile();
      notice("已保存。新的覆盖范围对此后发布的政策生效。");
    } catch (e) {
      if (!(e instanceof SignedOut)) problem("资料没有保存：连接不上服务，请稍后再试。");
    } finally {
      submit.disabled = false;
    }
  }

  // ------------------------------------------------------------------ channels

  async function loadChannels() {
    const response = await api(partnerPath("/channels"));
    if (response.ok) renderChannels(await response.json());
  }

  function channelAddress(c) {
    if (c.type === "email") return c.to.join("、");
    return c.url;
  }

  function renderChannels(channels) {
    $("channels-empty").hidden = channels.length > 0;
    $("channel-list").replaceChildren(
      ...channels.map((c) => {
        const item = el("li", null, "card channel" + (c.disabled ? " off" : ""));
        item.dataset.channelId = c.id;
        const head = el("div", null, "card-head");
        head.append(el("strong", CHANNELS[c.type] || c.type), el("span", c.id, "chip-code"));
        item.append(head);
        item.append(el("div", channelAddress(c), "address"));
        const facts = [];
        if (c.keyword) facts.push("关键词：" + c.keyword);
        if (c.type !== "email" && c.type !== "webhook") facts.push(c.has_secret ? "已开启签名" : "未开启签名");
        if (c.type === "webhook") facts.push("请求均带签名（Standard Webhooks）");
        if (c.has_previous_secret) facts.push("旧密钥在 " + when(c.previous_secret_until) + " 前仍同时签名");
        if (facts.length) item.append(el("div", facts.join(" · "), "muted"));
        item.append(
          el("div", c.disabled ? "已停用" + (c.disabled_reason ? "：" + c.disabled_reason : "") : "已启用", c.disabled ? "state bad" : "state ok")
        );
        const result = el("div", null, "result");
        result.setAttribute("role", "status");
        result.hidden = true;
        const secret = el("div", null, "secret-box");
        secret.setAttribute("role", "status");
        secret.hidden = true;
        const actions = el("div", null, "actions");
        actions.append(button("发送测试", "secondary", (e) => testChannel(c, result, e.target)));
        if (c.type === "webhook") {
          actions.append(button("更换签名密钥", "secondary", (e) => rotateSecret(c, result, e.target)));
        }
        actions.append(
          button(c.disabled ? "重新启用" : "停用", "secondary", (e) => toggleChannel(c, e.target))
        );
        actions.append(button("删除", "danger", (e) => removeChannel(c, e.target)));
        item.append(actions, result, secret);
        return item;
      })
    );
  }

  function say(box, text, good) {
    box.replaceChildren(el("span", text));
    box.className = "result " + (good ? "good" : "bad");
    box.hidden = false;
  }

  async function testChannel(c, box, b) {
    b.disabled = true;
    say(box, "正在发送测试消息…", true);
    try {
      const response = await api(partnerPath("/channels/" + encodeURIComponent(c.id) + "/test"), { method: "POST" });
      if (!response.ok) {
        say(box, "测试没有发出：" + (await errorMessage(response)), false);
        return;
      }
      const r = await response.json();
      const code = r.http_status ? "HTTP " + r.http_status : r.smtp_code ? "SMTP " + r.smtp_code : "";
      const took = r.latency_ms !== null && r.latency_ms !== undefined ? "用时 " + Math.round(r.latency_ms) + " 毫秒" : "";
      const facts = [code, took].filter(Boolean).join("，");
      const words = {
        delivered: "测试消息已送达" + (facts ? "（" + facts + "）" : "") + "。",
        retry: "测试消息暂时没有送达：" + r.detail + (code ? "（" + code + "）" : "") + "。正式推送遇到这种情况会自动重试。",
        failed: "测试消息没有送达：" + r.detail + (code ? "（" + code + "）" : "") + "。请检查地址和设置。",
        disabled: "对方表示此渠道已停用：" + r.detail + "。",
      };
      say(box, words[r.status] || r.status + "：" + r.detail, r.status === "delivered");
      box.dataset.outcome = r.status;
    } catch (e) {
      if (!(e instanceof SignedOut)) say(box, "测试请求没有送达服务，请稍后再试。", false);
    } finally {
      b.disabled = false;
    }
  }

  async function rotateSecret(c, box, b) {
    const ok = window.confirm(
      "确定更换渠道 " + c.id + " 的签名密钥吗？\n新密钥只显示一次；旧密钥在 24 小时内仍同时签名，请在此期间更新贵单位系统。"
    );
    if (!ok) return;
    b.disabled = true;
    try {
      const response = await api(partnerPath("/channels/" + encodeURIComponent(c.id) + "/rotate-secret"), { method: "POST" });
      if (!response.ok) {
        say(box, "密钥没有更换：" + (await errorMessage(response)), false);
        return;
      }
      const r = await response.json();
      await loadChannels();
      showSecret(c.id, r.secret, "新的签名密钥（只显示这一次，请立即复制到贵单位系统）：",
        "旧密钥在 " + when(r.previous_secret_until) + " 前仍同时签名，请在此之前换上新密钥。");
    } catch (e) {
      if (!(e instanceof SignedOut)) say(box, "请求没有送达服务，请稍后再试。", false);
    } finally {
      b.disabled = false;
    }
  }

  // A secret the relay made, under its channel's card: shown this once, never again.
  function showSecret(channelId, secret, lead, after) {
    const card = $("channel-list").querySelector('[data-channel-id="' + CSS.escape(channelId) + '"]');
    if (!card) return;
    const box = card.querySelector(".secret-box");
    const field = el("input");
    field.type = "text";
    field.readOnly = true;
    field.value = secret;
    field.className = "secret-field";
    field.setAttribute("aria-label", "新密钥");
    field.addEventListener("focus", () => field.select());
    box.replaceChildren(el("div", lead), field, el("div", after, "muted"));
    box.hidden = false;
    field.focus();
  }

  async function toggleChannel(c, b) {
    b.disabled = true;
    try {
      const response = await api(partnerPath("/channels/" + encodeURIComponent(c.id)), {
        method: "PUT",
        json: { disabled: !c.disabled },
      });
      if (!response.ok) {
        problem("渠道没有更改：" + (await errorMessage(response)));
        return;
      }
      await loadChannels();
      notice(c.disabled ? "渠道 " + c.id + " 已重新启用。" : "渠道 " + c.id + " 已停用，不再向它推送。");
    } catch (e) {
      if (!(e instanceof SignedOut)) problem("请求没有送达服务，请稍后再试。");
    } finally {
      b.disabled = false;
    }
  }

  async function removeChannel(c, b) {
    const what = (CHANNELS[c.type] || c.type) + " " + c.id + "（" + channelAddress(c) + "）";
    if (!window.confirm("确定删除渠道 " + what + " 吗？\n删除后不再向它推送。")) return;
    b.disabled = true;
    try {
      const response = await api(partnerPath("/channels/" + encodeURIComponent(c.id)), { method: "DELETE" });
      if (!response.ok && response.status !== 404) {
        problem("渠道没有删除：" + (await errorMessage(response)));
        return;
      }
      await loadChannels();
      notice("已删除渠道 " + c.id + "。");
    } catch (e) {
      if (!(e instanceof SignedOut)) problem("请求没有送达服务，请稍后再试。");
    } finally {
      b.disabled = false;
    }
  }

  function channelTypeChanged() {
    const type = $("c-type").value;
    for (const f of $("channel-form").querySelectorAll("[data-for]")) {
      f.hidden = !f.dataset.for.split(" ").includes(type);
    }
    $("c-url-hint").textContent = URL_HINTS[type] || "";
    clearErrors($("channel-form"));
  }

  async function addChannel(event) {
    event.preventDefault();
    const form = $("channel-form");
    clearErrors(form);
    const type = $("c-type").value;
    const body = { type: type };
    const id = $("c-id").value.trim();
    if (id) body.id = id;
    if (type === "email") {
      body.to = $("c-to").value.split(/[\s,，;；、]+/).filter(Boolean);
      if (!body.to.length) {
        fieldError(form, "to: 请至少填写一个收件地址");
        return;
      }
    } else {
      body.url = $("c-url").value.trim();
      if (!body.url) {
        fieldError(form, "url: 请填写地址");
        return;
      }
      if (type !== "webhook") {
        const keyword = $("c-keyword").value.trim();
        if (keyword) body.keyword = keyword;
      }
      if (type === "dingtalk" || type === "feishu") {
        const secret = $("c-secret").value.trim();
        if (secret) body.secret = secret;
      }
    }
    const submit = $("add-channel-submit");
    submit.disabled = true;
    try {
      const response = await api(partnerPath("/channels"), { method: "POST", json: body });
      if (response.status === 422 || response.status === 409) {
        const message = await errorMessage(response);
        if (!fieldError(form, response.status === 409 ? "id: " + message : message)) problem(message);
        return;
      }
      if (!response.ok) {
        problem("渠道没有添加：" + (await errorMessage(response)));
        return;
      }
      const created = await response.json();
      form.reset();
      channelTypeChanged();
      $("add-channel").open = false;
      await loadChannels();
      notice("已添加" + (CHANNELS[created.channel.type] || "") + "渠道 " + created.channel.id + "。可点“发送测试”确认能收到。");
      if (created.secret) {
        showSecret(created.channel.id, created.secret,
          "平台为此 Webhook 生成的签名密钥（只显示这一次，请立即复制到贵单位系统）：",
          "用它校验每个请求的 webhook-signature 签名（Standard Webhooks）。");
      }
    } catch (e) {
      if (!(e instanceof SignedOut)) problem("请求没有送达服务，请稍后再试。");
    } finally {
      submit.disabled = false;
    }
  }

  // ------------------------------------------------------------------ deliveries

  async function loadDeliveries(more) {
    // A refresh reads as many as are shown, so pages loaded with "more" stay.
    const limit = more ? 50 : Math.min(500, Math.max(50, state.deliveries.length));
    const params = new URLSearchParams({ limit: String(limit) });
    if (more && state.cursor) params.set("cursor", state.cursor);
    const response = await api(partnerPath("/deliveries?" + params));
    if (!response.ok) {
      problem("读取推送失败：" + (await errorMessage(response)));
      return;
    }
    const page = await response.json();
    await loadAsked();
    if (more) {
      const known = new Set(state.deliveries.map((d) => d.delivery_id));
      state.deliveries = state.deliveries.concat(page.items.filter((d) => !known.has(d.delivery_id)));
    } else {
      state.deliveries = page.items;
    }
    state.cursor = page.next_cursor;
    $("more").hidden = !state.cursor;
    const shown = JSON.stringify([state.deliveries, [...state.asked]]);
    if (shown !== state.shown) {
      state.shown = shown;
      renderDeliveries();
    }
  }

  // The partner's own questions, counted per document for the notices' 问答 lines.
  async function loadAsked() {
    const response = await api(partnerPath("/questions"));
    if (!response.ok) return; // the counts are a convenience; the 问答 section reads its own
    const asked = new Map();
    for (const q of (await response.json()).items) {
      const n = asked.get(q.document_id) || { asked: 0, answered: 0 };
      n.asked += 1;
      if (q.answer) n.answered += 1;
      asked.set(q.document_id, n);
    }
    state.asked = asked;
  }

  function questionsSummary(documentId) {
    const n = state.asked.get(documentId);
    const tally = n ? "（我方已问 " + n.asked + " 个，已答复 " + n.answered + " 个）" : "";
    return "问答：向起草单位提问、常见问题" + tally;
  }

  // Something typed but not sent, or a form in use: an automatic refresh would lose it.
  function busy() {
    const list = $("delivery-list");
    if (list.contains(document.activeElement) && document.activeElement.matches("input, textarea")) return true;
    for (const f of list.querySelectorAll("input, textarea")) if (f.value) return true;
    return false;
  }

  function schedule() {
    clearTimeout(state.timer);
    state.timer = setTimeout(async () => {
      try {
        if (state.me && !busy()) await loadDeliveries(false);
      } catch (e) {
        if (e instanceof SignedOut) return;
      }
      if (state.me) schedule();
    }, REFRESH_MS);
  }

  // The API lists one delivery per channel; a notice (one document version) groups them.
  function notices() {
    const byId = new Map();
    for (const d of state.deliveries) {
      const key = d.notification_id || d.delivery_id;
      if (!byId.has(key)) byId.set(key, { id: key, deliveries: [], first: d });
      byId.get(key).deliveries.push(d);
    }
    return [...byId.values()];
  }

  function attemptsLine(d) {
    const tries = d.attempts.filter((a) => a.attempt !== null && a.attempt !== undefined);
    const count = tries.length ? Math.max(...tries.map((a) => a.attempt)) : 0;
    const parts = [count ? "已尝试 " + count + " 次" : "尚未发送"];
    const last = d.attempts.length ? d.attempts[d.attempts.length - 1] : null;
    if (last && d.status !== "delivered" && (last.detail || last.reply_code)) {
      parts.push("最近一次：" + [last.reply_code ? "[" + last.reply_code + "]" : "", last.detail || ""].filter(Boolean).join(" "));
    }
    if (d.status === "retrying" && last && last.next_attempt_at) parts.push("下次重试 " + when(last.next_attempt_at));
    if (d.status === "delivered" && last) parts.push(when(last.at));
    return parts.join(" · ");
  }

  function renderDeliveries() {
    const open = new Set([...document.querySelectorAll("#delivery-list details[open]")].map((x) => x.dataset.key));
    const list = notices();
    $("deliveries-empty").hidden = list.length > 0;
    $("delivery-list").replaceChildren(...list.map((n) => noticeCard(n, open)));
  }

  function noticeCard(n, open) {
    const d0 = n.first;
    const card = el("li", null, "card notice-card");
    card.dataset.notificationId = n.id;
    card.dataset.documentId = d0.document_id || "";
    const head = el("div", null, "card-head");
    head.append(el("strong", d0.title || d0.document_id || "（标题暂不可见）", "doc-title"));
    card.append(head);
    const meta = [d0.document_id, d0.version ? "第 " + d0.version + " 版" : "", "推送于 " + when(d0.planned_at)];
    card.append(el("div", meta.filter(Boolean).join(" · "), "muted"));

    const channels = el("ul", null, "deliveries");
    for (const d of n.deliveries) {
      const li = el("li", null, "delivery");
      li.dataset.deliveryId = d.delivery_id;
      const top = el("div", null, "delivery-top");
      top.append(el("span", (CHANNELS[d.channel_type] || d.channel_type || "渠道") + " " + (d.channel_id || ""), "channel-name"));
      const badge = el("span", STATUS[d.status] || d.status, "status " + d.status);
      badge.dataset.status = d.status;
      top.append(badge);
      li.append(top, el("div", attemptsLine(d), "attempts"));
      channels.append(li);
    }
    card.append(channels);

    // Acknowledgement: one per notice, through any of its deliveries.
    const ack = d0.acknowledgement;
    const ackBox = el("div", null, "ack");
    if (ack) {
      ackBox.append(
        el("div", "已确认：转发给 " + ack.forwarded_to + " 家企业 · " + when(ack.at), "acked")
      );
      if (ack.note) ackBox.append(el("div", "备注：" + ack.note, "note"));
    } else {
      ackBox.append(el("div", "尚未确认转发", "muted"));
    }
    const form = el("form", null, "ack-form");
    form.noValidate = true;
    const countId = "ack-count-" + n.id;
    const noteId = "ack-note-" + n.id;
    const countLabel = el("label", "转发给多少家企业");
    countLabel.htmlFor = countId;
    const count = el("input");
    count.id = countId;
    count.type = "number";
    count.min = "0";
    count.inputMode = "numeric";
    count.name = "forwarded_to";
    const noteLabel = el("label", "备注（可选）");
    noteLabel.htmlFor = noteId;
    const note = el("textarea");
    note.id = noteId;
    note.name = "note";
    note.rows = 2;
    note.maxLength = 2000;
    const err = el("div", null, "field-error");
    err.dataset.errorFor = "";
    err.hidden = true;
    const submit = el("button", ack ? "更新确认" : "确认已转发");
    submit.type = "submit";
    form.append(countLabel, count, noteLabel, note, err, submit);
    form.addEventListener("submit", (e) => acknowledge(e, d0, form, count, note, submit));
    const ackDetails = el("details", null, "ack-details");
    ackDetails.dataset.key = "ack:" + n.id;
    ackDetails.open = open.has(ackDetails.dataset.key);
    ackDetails.append(el("summary", ack ? "修改转发确认" : "确认转发"), form);
    ackBox.append(ackDetails);
    card.append(ackBox);

    // Questions on this document: asking, and reading its questions and published answers.
    const q = el("details", null, "questions");
    q.dataset.key = "q:" + n.id;
    q.append(el("summary", questionsSummary(d0.document_id)));
    const body = el("div", null, "questions-body");
    q.append(body);
    q.addEventListener("toggle", () => {
      if (q.open) loadQuestions(d0, body);
    });
    if (open.has(q.dataset.key)) {
      q.open = true;
    }
    card.append(q);
    return card;
  }

  async function acknowledge(event, d, form, count, note, submit) {
    event.preventDefault();
    clearErrors(form);
    const text = count.value.trim();
    if (!/^\d+$/.test(text)) {
      fieldError(form, "forwarded_to: 请填写 0 或更大的整数");
      return;
    }
    const body = { forwarded_to: Number(text) };
    if (note.value.trim()) body.note = note.value.trim();
    submit.disabled = true;
    try {
      const response = await api("/api/v1/deliveries/" + encodeURIComponent(d.delivery_id) + "/ack", {
        method: "POST",
        json: body,
      });
      if (!response.ok) {
        fieldError(form, await errorMessage(response));
        return;
      }
      const r = await response.json();
      count.value = "";
      note.value = "";
      notice("已确认：「" + (d.title || d.document_id) + "」转发给 " + r.forwarded_to + " 家企业。");
      await loadDeliveries(false);
    } catch (e) {
      if (!(e instanceof SignedOut)) fieldError(form, "请求没有送达服务，请稍后再试。");
    } finally {
      submit.disabled = false;
    }
  }

  // ------------------------------------------------------------------ questions

  async function loadQuestions(d, body) {
    body.replaceChildren(el("div", "正在读取问答…", "muted"));
    let items = [];
    let unavailable = null;
    try {
      const response = await api("/api/v1/documents/" + encodeURIComponent(d.document_id) + "/questions");
      if (response.ok) items = (await response.json()).items;
      else unavailable = await errorMessage(response);
    } catch (e) {
      if (e instanceof SignedOut) return;
      unavailable = "连接不上服务";
    }
    const parts = [];
    if (unavailable) parts.push(el("div", "暂时读取不到问答（" + unavailable + "）。", "muted"));
    const own = items.filter((q) => q.own);
    const faq = items.filter((q) => !q.own && q.answer);
    const ownList = el("ul", null, "qa-list own-questions");
    for (const q of own) ownList.append(questionItem(q, true));
    parts.push(el("h3", "我方的提问"));
    parts.push(own.length ? ownList : el("p", "还没有提问。", "empty"));
    parts.push(el("h3", "常见问题解答"));
    const faqList = el("ul", null, "qa-list faq");
    for (const q of faq) faqList.append(questionItem(q, false));
    const none = own.some((x) => x.answer && x.answer.published)
      ? "除我方的问题外，暂无其他公开答复。"
      : "起草单位尚未公开答复。";
    parts.push(faq.length ? faqList : el("p", none, "empty"));
    parts.push(askForm(d, body));
    body.replaceChildren(...parts);
  }

  function questionItem(q, own) {
    const li = el("li", null, "qa");
    li.dataset.questionId = q.id;
    li.append(el("div", "问：" + q.question, "q"));
    if (own) {
      const by = [q.asker, q.asked_at ? when(q.asked_at) : ""].filter(Boolean).join(" · ");
      if (by) li.append(el("div", by, "muted"));
    }
    if (q.answer) {
      li.append(el("div", "答：" + q.answer.text, "a"));
      if (own) li.append(el("div", q.answer.published ? "已公开为常见问题" : "仅答复贵单位", "muted"));
    } else {
      li.append(el("div", "待起草单位答复", "pending"));
    }
    return li;
  }

  function askForm(d, body) {
    const form = el("form", null, "ask-form");
    form.noValidate = true;
    const qid = "ask-q-" + d.delivery_id;
    const aid = "ask-who-" + d.delivery_id;
    const ql = el("label", "问题");
    ql.htmlFor = qid;
    const question = el("textarea");
    question.id = qid;
    question.rows = 3;
    question.maxLength = 2000;
    const al = el("label", "提问企业或联系人（可选）");
    al.htmlFor = aid;
    const asker = el("input");
    asker.id = aid;
    asker.type = "text";
    asker.maxLength = 200;
    const err = el("div", null, "field-error");
    err.dataset.errorFor = "";
    err.hidden = true;
    const submit = el("button", "提交问题");
    submit.type = "submit";
    form.append(ql, question, al, asker, err, submit);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(form);
      if (!question.value.trim()) {
        fieldError(form, "question: 请填写问题");
        return;
      }
      const payload = { question: question.value.trim() };
      if (asker.value.trim()) payload.asker = asker.value.trim();
      submit.disabled = true;
      try {
        const response = await api("/api/v1/deliveries/" + encodeURIComponent(d.delivery_id) + "/questions", {
          method: "POST",
          json: payload,
        });
        if (!response.ok) {
          fieldError(form, "暂时无法提问：" + (await errorMessage(response)));
          return;
        }
        question.value = "";
        asker.value = "";
        notice("问题已提交给起草单位，答复后会显示在这里。");
        await loadQuestions(d, body);
        await loadAsked();
        body.parentElement.querySelector("summary").textContent = questionsSummary(d.document_id);
      } catch (err2) {
        if (!(err2 instanceof SignedOut)) fieldError(form, "请求没有送达服务，请稍后再试。");
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  // ------------------------------------------------------------------ the token

  async function rotateToken() {
    const ok = window.confirm(
      "确定更换贵单位的令牌吗？\n旧令牌立即失效，用它对接的系统须改用新令牌。新令牌只显示一次。"
    );
    if (!ok) return;
    const b = $("rotate-token");
    b.disabled = true;
    try {
      const response = await api(partnerPath("/token"), { method: "POST" });
      if (!response.ok) {
        problem("令牌没有更换：" + (await errorMessage(response)));
        return;
      }
      const issued = await response.json();
      sessionStorage.setItem(TOKEN_KEY, issued.token);
      const box = $("new-token");
      const field = el("input");
      field.type = "text";
      field.readOnly = true;
      field.value = issued.token;
      field.className = "secret-field";
      field.setAttribute("aria-label", "新令牌");
      field.addEventListener("focus", () => field.select());
      box.replaceChildren(
        el("div", "新令牌（只显示这一次，请立即交给需要对接的系统保存）："),
        field,
        el("div", "旧令牌已失效。下次登录本页面请使用新令牌。", "muted")
      );
      box.hidden = false;
      field.focus();
    } catch (e) {
      if (!(e instanceof SignedOut)) problem("请求没有送达服务，请稍后再试。");
    } finally {
      b.disabled = false;
    }
  }

  // ------------------------------------------------------------------ start

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    for (const id of ["notice", "problem"]) $(id).addEventListener("click", () => show(id, ""));
    $("signout").addEventListener("click", () => signedOut(""));
    $("rotate-token").addEventListener("click", rotateToken);
    // Choosing a digest time means the digest.
    $("f-digest-at").addEventListener("input", () => ($("f-mode-digest").checked = true));
    $("profile-form").addEventListener("submit", saveProfile);
    $("channel-form").addEventListener("submit", addChannel);
    $("c-type").addEventListener("change", channelTypeChanged);
    $("refresh").addEventListener("click", async () => {
      try {
        await Promise.all([loadDeliveries(false), loadChannels()]);
        notice("已刷新。");
      } catch (e) {
        if (!(e instanceof SignedOut)) problem("连接不上服务，请稍后再试。");
      }
    });
    $("more").addEventListener("click", async () => {
      try {
        await loadDeliveries(true);
      } catch (e) {
        if (!(e instanceof SignedOut)) problem("连接不上服务，请稍后再试。");
      }
    });
    for (const b of document.querySelectorAll("[data-add]")) {
      b.addEventListener("click", () => {
        const dim = b.dataset.add;
        const pick = $("pick-" + dim);
        addCode(dim, pick.value);
        pick.value = "";
      });
    }
    for (const b of document.querySelectorAll("[data-add-other]")) {
      b.addEventListener("click", () => {
        const dim = b.dataset.addOther;
        addCode(dim, $("other-" + dim).value);
        $("other-" + dim).value = "";
      });
    }
    channelTypeChanged();
    if (token()) {
      $("signin").hidden = true;
      start();
    } else {
      $("token").focus();
    }
  });
})();
