// The operator dashboard: asks for the operator token (kept in this tab's sessionStorage,
// never in the URL), polls GET /api/v1/dashboard every 2 s and redraws. Every value from the
// server is written with textContent, never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "relay.operatorToken";
  const POLL_MS = 2000;
  const STATUS = {
    delivered: "已送达",
    pending: "待发送",
    retrying: "重试中",
    failed: "失败",
    disabled: "渠道已停用",
    dead: "重试耗尽",
  };
  const CHANNELS = { email: "邮件", webhook: "Webhook" };
  const TIME = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai",
    hour12: false,
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });

  const $ = (id) => document.getElementById(id);
  let timer = 0;
  let running = false;

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }

  function num(n) {
    return Number(n || 0).toLocaleString("zh-CN");
  }

  function when(iso) {
    return iso ? TIME.format(new Date(iso)) : "—";
  }

  function show(id, message) {
    const box = $(id);
    box.textContent = message || "";
    box.hidden = !message;
  }

  // ------------------------------------------------------------------ signing in and out

  function signedOut(message) {
    clearTimeout(timer);
    timer = 0;
    sessionStorage.removeItem(TOKEN_KEY);
    $("board").hidden = true;
    $("signin").hidden = false;
    $("signout").hidden = true;
    $("status").textContent = "未登录";
    show("notice", "");
    show("problem", message || "");
    $("token").value = "";
    $("token").focus();
  }

  function signIn(event) {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) {
      show("problem", "请输入操作员令牌。");
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    show("problem", "");
    $("status").textContent = "正在连接…";
    start();
  }

  function start() {
    clearTimeout(timer);
    timer = 0;
    if (!running) poll();
  }

  // ------------------------------------------------------------------ polling

  async function api(path, options) {
    const headers = Object.assign({ Authorization: "Bearer " + token() }, (options || {}).headers);
    return fetch(path, Object.assign({ cache: "no-store" }, options, { headers: headers }));
  }

  async function errorMessage(response) {
    try {
      const body = await response.json();
      return body.error.message;
    } catch (e) {
      return "HTTP " + response.status;
    }
  }

  async function poll() {
    if (!token()) return;
    running = true;
    try {
      const response = await api("/api/v1/dashboard");
      if (response.status === 401) {
        signedOut("令牌无效或已更换：请输入正确的操作员令牌（RELAY_OPERATOR_TOKEN）。");
        return;
      }
      if (response.status === 403) {
        signedOut("这是合作方令牌：运行看板仅供操作员使用，请输入操作员令牌。");
        return;
      }
      if (response.status === 503) {
        const message = await errorMessage(response);
        signedOut("操作员接口未启用：请为 worker 设置 RELAY_OPERATOR_TOKEN 后重启。（" + message + "）");
        return;
      }
      if (!response.ok) {
        show("problem", "看板数据暂时取不到：" + (await errorMessage(response)) + "。稍后自动重试。");
      } else {
        render(await response.json());
        show("problem", "");
      }
    } catch (e) {
      show("problem", "连接不上 worker，" + POLL_MS / 1000 + " 秒后自动重试。");
      $("status").textContent = "连接中断";
    } finally {
      running = false;
      if (token()) timer = setTimeout(poll, POLL_MS);
    }
  }

  // ------------------------------------------------------------------ drawing

  function render(data) {
    $("signin").hidden = true;
    $("board").hidden = false;
    $("signout").hidden = false;
    $("status").textContent = "实时 · 更新于 " + when(data.generated_at);
    renderThroughput(data.throughput);
    renderLag(data.lag);
    for (const box of document.querySelectorAll("[data-count]")) {
      box.textContent = num(data.deliveries_by_status[box.dataset.count]);
    }
    $("dead-letters").textContent = num(data.dead_letters);
    $("events-rejected").textContent = num(data.events_rejected);
    renderDocuments(data.documents, data.documents_total);
    renderFailures(data.failures);
    const w = data.worker;
    $("worker").textContent =
      "本 worker：已运行 " + Math.round(w.uptime_s / 60) + " 分钟 · 合作方 " + num(w.partners) +
      " · " + (w.ready ? "就绪" : "未就绪（分区分配或合作方加载中）") +
      (w.stalled ? " · 消费停滞：" + w.stalled : "");
  }

  function renderThroughput(t) {
    $("rate-window").textContent = t.window_s;
    $("rate").textContent = t.delivered_per_s.toFixed(2);
    $("attempts").textContent = t.attempts_per_s.toFixed(2);
    const parts = Object.entries(t.delivered_per_s_by_channel).map(
      ([channel, rate]) => (CHANNELS[channel] || channel) + " " + rate.toFixed(2) + " 条/秒"
    );
    $("rate-by-channel").textContent = parts.length ? parts.join(" · ") : "最近一分钟没有送达";
    const series = t.delivered_per_second;
    const top = Math.max(1, ...series);
    const bars = series.map((n) => {
      const bar = el("div");
      bar.style.height = (100 * n) / top + "%";
      bar.title = n + " 条";
      return bar;
    });
    $("spark").replaceChildren(...bars);
  }

  function renderLag(lag) {
    const labels = { rebalancing: "重新均衡中", unavailable: "暂不可用" };
    $("lag-total").textContent = lag.status === "ok" ? num(lag.total) : labels[lag.status];
    $("lag-detail").textContent = lag.detail || (lag.topics.length ? "" : "本 worker 暂未持有分区");
    $("lag-topics").replaceChildren(
      ...lag.topics.map((t) => {
        const row = el("tr");
        row.append(el("td", t.topic), el("td", t.partitions, "num"), el("td", num(t.lag), "num"));
        return row;
      })
    );
  }

  function funnelBar(f) {
    const s = f.deliveries_by_status;
    const total = Math.max(1, f.deliveries);
    const bar = el("div", null, "bar");
    const parts = [
      ["delivered", s.delivered],
      ["progress", s.pending + s.retrying],
      ["dead", s.failed + s.disabled + s.dead],
    ];
    for (const [name, n] of parts) {
      if (!n) continue;
      const part = el("div", null, name);
      part.style.width = (100 * n) / total + "%";
      bar.append(part);
    }
    bar.title = "已送达 " + s.delivered + " / 共 " + f.deliveries;
    return bar;
  }

  function cell(text, field) {
    const td = el("td", text, "num");
    td.dataset.field = field;
    return td;
  }

  function renderDocuments(documents, total) {
    $("documents-shown").textContent = documents.length;
    $("documents-total").textContent = total;
    $("documents-empty").hidden = documents.length > 0;
    $("documents").hidden = documents.length === 0;
    $("documents-body").replaceChildren(
      ...documents.map((d) => {
        const f = d.funnel;
        const s = f.deliveries_by_status;
        const dead = s.failed + s.disabled + s.dead;
        const row = el("tr");
        row.dataset.documentId = d.document_id;
        const title = el("td");
        title.append(el("div", d.title || "（标题暂不可见）", "doc-title"));
        title.append(el("div", [d.document_id, d.doc_number].filter(Boolean).join(" · "), "doc-id"));
        if (d.last_event === "event.rejected") {
          title.append(el("span", "被拒绝：" + (d.rejected_reason || "未知原因"), "status rejected"));
        } else if (d.last_event === "event.accepted") {
          title.append(el("div", "已受理，匹配中…", "doc-id"));
        }
        if (f.deliveries) title.append(funnelBar(f));
        const action = el("td");
        if (dead) {
          const button = el("button", "重发死信", "small");
          button.type = "button";
          button.addEventListener("click", () =>
            replay({ document_id: d.document_id }, "政策「" + (d.title || d.document_id) + "」的 " + dead + " 条死信", button)
          );
          action.append(button);
        }
        row.append(
          title,
          cell(d.version === null ? "—" : "v" + d.version, "version"),
          cell(num(f.partners_matched), "partners_matched"),
          cell(num(f.notifications), "notifications"),
          cell(num(f.deliveries), "deliveries"),
          cell(num(s.delivered), "delivered"),
          cell(num(s.pending + s.retrying), "in_progress"),
          cell(num(dead), "dead_letters"),
          cell(num(f.notifications_acknowledged), "acknowledged"),
          cell(num(f.enterprises_reached), "enterprises_reached"),
          action
        );
        return row;
      })
    );
  }

  function statusCell(status) {
    const td = el("td");
    td.append(el("span", STATUS[status] || status, "status"));
    return td;
  }

  function renderFailures(failures) {
    $("failures-empty").hidden = failures.length > 0;
    $("failures").hidden = failures.length === 0;
    $("failures-body").replaceChildren(
      ...failures.map((f) => {
        const row = el("tr");
        row.dataset.deliveryId = f.delivery_id;
        const partner = el("td", f.partner_name || f.partner_id || "—");
        if (f.partner_name) partner.append(el("div", f.partner_id, "doc-id"));
        const doc = el("td", f.title || f.document_id || "—");
        if (f.title) doc.append(el("div", f.document_id, "doc-id"));
        const channel = el("td", (CHANNELS[f.channel_type] || f.channel_type || "—"));
        if (f.channel_id) channel.append(el("div", f.channel_id, "doc-id"));
        const why = [f.reply_code ? "[" + f.reply_code + "]" : "", f.detail || f.reason || ""];
        const detail = el("td", why.filter(Boolean).join(" "), "detail");
        detail.append(el("div", "第 " + (f.attempt || 1) + " 次尝试 · " + f.delivery_id, "doc-id"));
        const action = el("td");
        const button = el("button", "重发", "small");
        button.type = "button";
        button.addEventListener("click", () =>
          replay({ delivery_ids: [f.delivery_id] }, "推送 " + f.delivery_id, button)
        );
        action.append(button);
        row.append(
          el("td", when(f.at)),
          partner,
          doc,
          channel,
          statusCell(f.status),
          detail,
          action
        );
        return row;
      })
    );
  }

  // ------------------------------------------------------------------ replaying dead letters

  async function replay(criteria, what, button) {
    if (!window.confirm("确定重发" + what + "吗？\n将沿用原推送编号重新投递，接收方可据此去重。")) return;
    button.disabled = true;
    show("notice", "");
    try {
      const response = await api("/api/v1/dead-letters/replay", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(criteria),
      });
      if (response.status === 401 || response.status === 403) {
        signedOut("令牌无效或已更换：请重新输入操作员令牌。");
        return;
      }
      if (!response.ok) {
        show("problem", "重发失败：" + (await errorMessage(response)));
        return;
      }
      const body = await response.json();
      show(
        "notice",
        body.requeued
          ? "已重新排队 " + body.requeued + " 条死信，将沿用原推送编号投递。"
          : "没有找到可重发的死信：可能刚刚写入，请稍后再试。"
      );
    } catch (e) {
      show("problem", "重发请求没有送达 worker，请稍后再试。");
    } finally {
      button.disabled = false;
      start();
    }
  }

  // ------------------------------------------------------------------ start

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", () => signedOut(""));
    if (token()) {
      $("signin").hidden = true;
      $("status").textContent = "正在连接…";
      start();
    } else {
      $("token").focus();
    }
  });
})();
