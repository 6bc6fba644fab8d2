// The operator's workbench (GET /): polls GET /api/v1/dashboard every 2 s and redraws.
// Plain figures first (pushed, delivered, acknowledged, enterprises reached, questions
// waiting), each document's latest version with its own funnel, failures to send again;
// the stream's technical figures in a section of their own, closed by default.
"use strict";

(function () {
  const R = window.Relay;
  const $ = R.$;
  const el = R.el;
  const num = R.num;
  const POLL_MS = 2000;
  let timer = 0;
  let running = false;
  let pending = null; // document id → unanswered questions, when the questions API answers
  let noQuestions = false; // a worker without the questions API: stop asking

  function start() {
    clearTimeout(timer);
    timer = 0;
    if (!running) poll();
  }

  function stop() {
    clearTimeout(timer);
    timer = 0;
  }

  // ------------------------------------------------------------------ polling

  async function questions() {
    // The questions API (DESIGN §7); an older worker without it shows "—".
    if (noQuestions) return null;
    try {
      const response = await R.api("/api/v1/questions?limit=500");
      if (response.status === 404) noQuestions = true;
      if (!response.ok) return null;
      return await response.json();
    } catch (e) {
      return null;
    }
  }

  async function poll() {
    if (!R.token()) return;
    running = true;
    try {
      const [response, asked] = await Promise.all([R.api("/api/v1/dashboard"), questions()]);
      const refusal = await R.refused(response);
      if (refusal) {
        R.signedOut(refusal);
        return;
      }
      if (!response.ok) {
        R.show("problem", "数据暂时取不到：" + (await R.errorMessage(response)) + "。稍后自动重试。");
      } else {
        renderQuestions(asked);
        render(await response.json());
        R.show("problem", "");
      }
    } catch (e) {
      R.show("problem", "连接不上服务，" + POLL_MS / 1000 + " 秒后自动重试。");
      $("status").textContent = "连接中断";
    } finally {
      running = false;
      if (R.token()) timer = setTimeout(poll, POLL_MS);
    }
  }

  // ------------------------------------------------------------------ drawing

  function renderQuestions(asked) {
    if (!asked) {
      pending = null;
      $("asked").hidden = true;
      $("ov-questions").textContent = "—";
      $("ov-questions-note").textContent = "问题功能暂未启用";
      return;
    }
    pending = {};
    const titles = {};
    for (const d of asked.documents || []) {
      pending[d.document_id] = d.unanswered;
      titles[d.document_id] = d.title || d.document_id;
    }
    $("ov-questions").textContent = num(asked.unanswered);
    $("ov-questions-note").textContent = "企业提出、尚未答复";
    // Newest first, like everything on this page; the rest are on their documents' pages.
    const items = (asked.items || [])
      .slice()
      .sort((a, b) => String(b.asked_at).localeCompare(String(a.asked_at)))
      .slice(0, 10);
    $("asked").hidden = items.length === 0;
    $("asked-list").replaceChildren(
      ...items.map((q) => {
        const item = el("li");
        item.dataset.questionId = q.id;
        item.append(el("div", q.question, "question-text"));
        const meta = el("div", null, "doc-id");
        meta.append(
          "《" + (titles[q.document_id] || q.document_id) + "》 · " +
            [q.asker, R.when(q.asked_at)].filter(Boolean).join(" · ") + " "
        );
        const go = el("a", "去答复");
        go.href = "/documents/" + encodeURIComponent(q.document_id) + "#q-" + encodeURIComponent(q.id);
        meta.append(go);
        item.append(meta);
        return item;
      })
    );
    if (asked.unanswered > items.length) {
      $("asked-list").append(el("li", "另有 " + (asked.unanswered - items.length) + " 个问题，见各政策详情。", "muted"));
    }
  }

  function render(data) {
    R.signedIn();
    $("status").textContent = "实时 · 更新于 " + R.when(data.generated_at);
    const o = data.overview;
    $("ov-notifications").textContent = num(o.notifications);
    $("ov-documents").textContent = num(o.documents);
    $("ov-delivered").textContent = num(o.notifications_delivered);
    $("ov-acknowledged").textContent = num(o.notifications_acknowledged);
    $("ov-reached").textContent = num(o.enterprises_reached);
    $("ov-failed").textContent = num(o.failed);
    renderDocuments(data.documents, data.documents_total);
    renderFailures(data.failures);
    renderTechnical(data);
  }

  function funnelBar(f) {
    const s = f.deliveries_by_status;
    const total = Math.max(1, f.deliveries);
    const bar = el("div", null, "bar");
    const parts = [
      ["delivered", s.delivered],
      ["progress", s.pending + s.retrying],
      ["dead", R.failedCount(s)],
    ];
    for (const [name, n] of parts) {
      if (!n) continue;
      const part = el("div", null, name);
      part.style.width = (100 * n) / total + "%";
      bar.append(part);
    }
    bar.title = "已送达 " + s.delivered + " / 共 " + f.deliveries + " 条推送";
    return bar;
  }

  function versionLine(v) {
    const f = v.funnel;
    return (
      "第 " + v.version + " 版：推送 " + num(f.partners_matched) + " 个合作方，送达 " +
      num(f.notifications_delivered) + "，确认 " + num(f.notifications_acknowledged) +
      "，触达企业 " + num(f.enterprises_reached)
    );
  }

  function renderDocuments(documents, total) {
    $("documents-shown").textContent = documents.length;
    $("documents-total").textContent = total;
    $("documents-empty").hidden = documents.length > 0;
    $("documents").hidden = documents.length === 0;
    $("documents-body").replaceChildren(
      ...documents.map((d) => {
        const f = d.funnel;
        const failed = R.failedCount(f.deliveries_by_status);
        const row = el("tr");
        row.dataset.documentId = d.document_id;
        const title = el("td", null, "doc");
        const link = el("a", d.title || "（标题暂不可见）", "doc-title");
        link.href = "/documents/" + encodeURIComponent(d.document_id);
        title.append(link);
        title.append(el("div", [d.doc_number, d.document_id].filter(Boolean).join(" · "), "doc-id"));
        if (d.last_event === "event.rejected") {
          title.append(el("span", "未受理：" + (d.rejected_reason || "原因未知"), "status rejected"));
        } else if (d.last_event === "event.accepted") {
          title.append(el("div", "已受理，正在匹配合作方…", "doc-id"));
        }
        const waiting = pending ? pending[d.document_id] || 0 : 0;
        if (waiting) title.append(el("span", waiting + " 个问题待答复", "status waiting"));
        if (f.deliveries) title.append(funnelBar(f));
        for (const v of d.versions.filter((v) => v.version !== d.version).reverse()) {
          title.append(el("div", versionLine(v), "doc-id earlier"));
        }
        const action = el("td", null, "actions");
        action.dataset.label = "操作";
        const open = el("a", "详情", "button-link");
        open.href = link.href;
        action.append(open);
        if (failed) {
          const button = el("button", "重新投递", "small danger");
          button.type = "button";
          button.addEventListener("click", () =>
            R.replay(
              { document_id: d.document_id },
              "政策《" + (d.title || d.document_id) + "》失败的 " + failed + " 条推送",
              button,
              start
            )
          );
          action.append(button);
        }
        row.append(
          title,
          R.cell(d.version === null ? "—" : "第 " + d.version + " 版", "version", "版本"),
          R.cell(num(f.partners_matched), "partners_matched", "推送合作方"),
          R.cell(num(f.notifications_delivered), "delivered", "已送达"),
          R.cell(num(f.notifications_acknowledged), "acknowledged", "已确认"),
          R.cell(num(f.enterprises_reached), "enterprises_reached", "触达企业"),
          R.cell(num(failed), "failed", "投递失败"),
          action
        );
        return row;
      })
    );
  }

  function renderFailures(failures) {
    $("failures-empty").hidden = failures.length > 0;
    $("failures").hidden = failures.length === 0;
    $("failures-body").replaceChildren(
      ...failures.map((f) => {
        const row = el("tr");
        row.dataset.deliveryId = f.delivery_id;
        const partner = R.cell(f.partner_name || f.partner_id || "—", null, "合作方", "");
        if (f.partner_name) partner.append(el("div", f.partner_id, "doc-id"));
        const doc = R.cell(null, null, "政策", "");
        if (f.document_id) {
          const link = el("a", f.title || f.document_id);
          link.href = "/documents/" + encodeURIComponent(f.document_id);
          doc.append(link);
        } else {
          doc.append("—");
        }
        const channel = R.cell(R.CHANNELS[f.channel_type] || f.channel_type || "—", null, "渠道", "pair");
        const status = R.cell(null, null, "状态", "pair");
        status.append(el("span", R.STATUS[f.status] || f.status, "status"));
        const why = [f.reply_code ? "[" + f.reply_code + "]" : "", f.detail || f.reason || ""];
        const detail = R.cell(why.filter(Boolean).join(" "), null, "原因", "detail");
        detail.append(el("div", "第 " + (f.attempt || 1) + " 次尝试 · 推送编号 " + f.delivery_id, "doc-id"));
        const action = R.cell(null, null, "操作", "actions");
        const button = el("button", "重新投递", "small danger");
        button.type = "button";
        button.addEventListener("click", () =>
          R.replay({ delivery_ids: [f.delivery_id] }, "这条推送（" + f.delivery_id + "）", button, start)
        );
        action.append(button);
        row.append(R.cell(R.when(f.at), null, "时间", "pair"), partner, doc, channel, status, detail, action);
        return row;
      })
    );
  }

  // ------------------------------------------------------------------ technical section

  function renderTechnical(data) {
    const t = data.throughput;
    $("rate-window").textContent = t.window_s;
    $("rate").textContent = t.delivered_per_s.toFixed(2);
    $("attempts").textContent = t.attempts_per_s.toFixed(2);
    const parts = Object.entries(t.delivered_per_s_by_channel).map(
      ([channel, rate]) => (R.CHANNELS[channel] || channel) + " " + rate.toFixed(2) + " 条/秒"
    );
    $("rate-by-channel").textContent = parts.length ? parts.join(" · ") : "最近一分钟没有送达";
    const series = t.delivered_per_second;
    const top = Math.max(1, ...series);
    $("spark").replaceChildren(
      ...series.map((n) => {
        const bar = el("div");
        bar.style.height = (100 * n) / top + "%";
        return bar;
      })
    );
    const lag = data.lag;
    const labels = { rebalancing: "重新均衡中", unavailable: "暂不可用" };
    $("lag-total").textContent = lag.status === "ok" ? num(lag.total) : labels[lag.status];
    $("lag-detail").textContent = lag.detail || (lag.topics.length ? "" : "本 worker 暂未持有分区");
    $("lag-topics").replaceChildren(
      ...lag.topics.map((t) => {
        const row = el("tr");
        row.append(el("td", t.topic, "topic"), el("td", t.partitions, "num"), el("td", num(t.lag), "num"));
        return row;
      })
    );
    for (const box of document.querySelectorAll("[data-count]")) {
      box.textContent = num(data.deliveries_by_status[box.dataset.count]);
    }
    $("dead-letters").textContent = num(data.dead_letters);
    $("events-rejected").textContent = num(data.events_rejected);
    const w = data.worker;
    $("worker").textContent =
      "本 worker：已运行 " + Math.round(w.uptime_s / 60) + " 分钟 · 合作方 " + num(w.partners) +
      " · " + (w.ready ? "就绪" : "未就绪（分区分配或合作方加载中）") +
      (w.stalled ? " · 消费停滞：" + w.stalled : "");
  }

  // ------------------------------------------------------------------ start

  // /?revise=ID or /?repeal=ID (the document page's buttons): the form, filled in.
  const asked = new URLSearchParams(location.search);
  let draft = asked.get("revise")
    ? [asked.get("revise"), "document.revised"]
    : asked.get("repeal")
      ? [asked.get("repeal"), "document.repealed"]
      : null;

  function signedIn() {
    start();
    if (draft) {
      const [id, type] = draft;
      draft = null;
      history.replaceState(null, "", "/");
      window.RelayPublish.prefill(id, type);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    window.RelayPublish.setUp({ onPublished: start });
    R.setUp({ onSignedIn: signedIn, onSignedOut: stop });
  });
})();
