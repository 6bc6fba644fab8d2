// One document's page (GET /documents/{id}): its funnel per version, each partner's status
// (matched → delivered or failed → acknowledged, with reach and note), the questions asked
// about it with a form to answer each and publish the answer, and replay of its failures.
// Data from GET /api/v1/documents/{id}/trace (polled) and …/questions (the questions API).
"use strict";

(function () {
  const R = window.Relay;
  const $ = R.$;
  const el = R.el;
  const num = R.num;
  const POLL_MS = 3000;
  const KINDS = {
    "policy.relayed": "新政策",
    "policy.revised": "修订",
    "policy.repealed": "废止",
    "policy.expiring": "到期提醒",
    "policy.digest": "汇总",
  };
  const docId = decodeURIComponent(location.pathname.replace(/^\/documents\//, ""));
  let timer = 0;
  let running = false;
  let partnerNames = {};
  let questionsSeen = null; // what the questions list shows, to redraw only on change

  function start() {
    clearTimeout(timer);
    timer = 0;
    if (!running) poll();
  }

  function stop() {
    clearTimeout(timer);
    timer = 0;
  }

  async function poll() {
    if (!R.token()) return;
    running = true;
    try {
      const response = await R.api("/api/v1/documents/" + encodeURIComponent(docId) + "/trace");
      const refusal = await R.refused(response);
      if (refusal) {
        R.signedOut(refusal);
        return;
      }
      if (response.status === 404) {
        R.signedIn();
        $("doc-title").textContent = docId;
        R.show("problem", "还没有这份政策的记录：刚发布的政策需要几秒钟才会出现，本页会自动刷新。");
      } else if (!response.ok) {
        R.show("problem", "数据暂时取不到：" + (await R.errorMessage(response)) + "。稍后自动重试。");
      } else {
        render(await response.json());
        R.show("problem", "");
        await loadQuestions(false);
      }
    } catch (e) {
      R.show("problem", "连接不上服务，" + POLL_MS / 1000 + " 秒后自动重试。");
      $("status").textContent = "连接中断";
    } finally {
      running = false;
      if (R.token()) timer = setTimeout(poll, POLL_MS);
    }
  }

  // ------------------------------------------------------------------ the funnel

  function render(t) {
    R.signedIn();
    $("status").textContent = "实时 · 更新于 " + R.when(new Date().toISOString());
    document.title = (t.title || t.document_id) + " · 政策接力";
    $("doc-title").textContent = t.title || "（标题暂不可见）";
    const rejected = t.events.filter((e) => e.kind === "event.rejected");
    $("doc-meta").textContent = [
      t.doc_number,
      "文件编号 " + t.document_id,
      t.versions.length ? "已受理版本：" + t.versions.map((v) => "第 " + v + " 版").join("、") : "",
      rejected.length ? "未受理 " + rejected.length + " 次（最近：" + (rejected[rejected.length - 1].reason || "") + "）" : "",
    ]
      .filter(Boolean)
      .join(" · ");
    partnerNames = {};
    for (const n of t.notifications) partnerNames[n.partner_id] = n.partner_name || n.partner_id;

    const failedTotal = t.funnels.reduce((n, v) => n + R.failedCount(v.funnel.deliveries_by_status), 0);
    const replayAll = $("replay-all");
    replayAll.hidden = failedTotal === 0;
    replayAll.textContent = "重新投递全部失败推送（" + failedTotal + " 条）";

    const funnels = t.funnels.slice().reverse();
    $("versions-empty").hidden = funnels.length > 0;
    $("versions").hidden = funnels.length === 0;
    $("versions-body").replaceChildren(
      ...funnels.map((v) => {
        const f = v.funnel;
        const s = f.deliveries_by_status;
        const row = el("tr");
        row.dataset.version = v.version;
        row.append(
          R.cell("第 " + v.version + " 版", "version", "版本", "pair strong"),
          R.cell(num(f.partners_matched), "partners_matched", "推送合作方"),
          R.cell(num(f.notifications_delivered), "delivered", "已送达"),
          R.cell(num(f.notifications_acknowledged), "acknowledged", "已确认"),
          R.cell(num(f.enterprises_reached), "enterprises_reached", "触达企业"),
          R.cell(num((s.pending || 0) + (s.retrying || 0)), "in_progress", "投递中"),
          R.cell(num(R.failedCount(s)), "failed", "投递失败")
        );
        return row;
      })
    );
    renderPartners(t.notifications);
  }

  // ------------------------------------------------------------------ partners

  function stateOf(n) {
    const statuses = n.deliveries.map((d) => d.status);
    if (n.acknowledgement) return "acknowledged";
    if (statuses.includes("delivered")) return "delivered";
    if (statuses.length && statuses.every((s) => R.FAILED.includes(s))) return "failed";
    return "sending";
  }

  function steps(state) {
    const chain = el("ol", null, "steps");
    const delivered = state === "delivered" || state === "acknowledged";
    const items = [
      ["已匹配", "done"],
      state === "failed" ? ["投递失败", "bad"] : [delivered ? "已送达" : "投递中", delivered ? "done" : "now"],
      ["已确认", state === "acknowledged" ? "done" : "todo"],
    ];
    for (const [text, cls] of items) chain.append(el("li", text, cls));
    return chain;
  }

  function channelLine(d) {
    const line = el("li", null, "channel " + d.status);
    line.append(el("span", (R.CHANNELS[d.channel_type] || d.channel_type || "渠道") + "：", "channel-name"));
    line.append(el("span", R.STATUS[d.status] || d.status, "channel-status"));
    const last = d.attempts.length ? d.attempts[d.attempts.length - 1] : null;
    if (last && d.status !== "delivered" && (last.detail || last.reply_code)) {
      const why = [last.reply_code ? "[" + last.reply_code + "]" : "", last.detail || ""];
      line.append(el("span", " " + why.filter(Boolean).join(" "), "detail"));
    }
    return line;
  }

  function renderPartners(notifications) {
    const byVersion = {};
    for (const n of notifications) (byVersion[n.version || 0] = byVersion[n.version || 0] || []).push(n);
    const versions = Object.keys(byVersion).map(Number).sort((a, b) => b - a);
    $("partners-empty").hidden = versions.length > 0;
    $("partners").replaceChildren(
      ...versions.map((version) => {
        const box = el("div", null, "version-block");
        box.dataset.version = version;
        const kinds = new Set(byVersion[version].map((n) => KINDS[n.type] || n.type).filter(Boolean));
        box.append(el("h3", "第 " + version + " 版" + (kinds.size ? "（" + Array.from(kinds).join("、") + "）" : "")));
        const table = el("table", null, "list partners");
        const head = el("thead");
        const hr = el("tr");
        for (const h of ["合作方", "进度", "渠道", "确认转发", "操作"]) hr.append(el("th", h));
        head.append(hr);
        const body = el("tbody");
        for (const n of byVersion[version]) body.append(partnerRow(n));
        table.append(head, body);
        box.append(table);
        return box;
      })
    );
  }

  function partnerRow(n) {
    const state = stateOf(n);
    const row = el("tr", null, "partner " + state);
    row.dataset.partnerId = n.partner_id;
    row.dataset.state = state;
    const who = R.cell(n.partner_name || n.partner_id, null, "合作方", "");
    who.append(el("div", n.partner_id, "doc-id"));
    const progress = R.cell(null, "state", "进度", "");
    progress.append(steps(state));
    const channels = R.cell(null, null, "渠道", "");
    const list = el("ul", null, "channels");
    for (const d of n.deliveries) list.append(channelLine(d));
    channels.append(list);
    const ack = R.cell(null, "ack", "确认转发", "");
    if (n.acknowledgement) {
      const a = n.acknowledgement;
      ack.append(el("div", "触达企业 " + num(a.forwarded_to) + " 家", "reach"));
      if (a.note) ack.append(el("div", a.note, "note"));
      ack.append(el("div", R.when(a.at) + (n.acknowledgements > 1 ? " · 共确认 " + n.acknowledgements + " 次" : ""), "doc-id"));
    } else {
      ack.append(el("span", "尚未确认", "muted"));
    }
    const action = R.cell(null, null, "操作", "actions");
    const dead = n.deliveries.filter((d) => R.FAILED.includes(d.status)).map((d) => d.delivery_id);
    if (dead.length) {
      const button = el("button", "重新投递", "small danger");
      button.type = "button";
      button.addEventListener("click", () =>
        R.replay({ delivery_ids: dead }, "给「" + (n.partner_name || n.partner_id) + "」的 " + dead.length + " 条失败推送", button, start)
      );
      action.append(button);
    }
    row.append(who, progress, channels, ack, action);
    return row;
  }

  // ------------------------------------------------------------------ questions

  function typing() {
    // Never redraw under the operator's hands.
    for (const area of document.querySelectorAll("#questions textarea")) {
      if (area === document.activeElement || area.value !== area.defaultValue) return true;
    }
    return false;
  }

  async function loadQuestions(force) {
    let response;
    try {
      response = await R.api("/api/v1/documents/" + encodeURIComponent(docId) + "/questions");
    } catch (e) {
      return;
    }
    if (response.status === 404) {
      $("questions-empty").hidden = false;
      $("questions").replaceChildren();
      questionsSeen = "";
      return;
    }
    if (!response.ok) {
      $("questions-empty").hidden = true;
      $("questions").replaceChildren(el("p", "提问暂时取不到：" + (await R.errorMessage(response)), "empty"));
      return;
    }
    const items = (await response.json()).items || [];
    const seen = JSON.stringify(items);
    if (!force && (seen === questionsSeen || typing())) return;
    const first = questionsSeen === null;
    questionsSeen = seen;
    $("questions-empty").hidden = items.length > 0;
    $("questions").replaceChildren(...items.map(questionBox));
    // Came from the workbench's 去答复: straight to that question's answer.
    const target = first && location.hash ? document.getElementById(location.hash.slice(1)) : null;
    if (target) {
      target.scrollIntoView({ block: "start" });
      const area = target.querySelector("textarea");
      if (area) area.focus({ preventScroll: true });
    }
  }

  function questionBox(q) {
    const box = el("article", null, "question " + (q.answer ? "answered" : "open"));
    box.dataset.questionId = q.id;
    box.id = "q-" + q.id;
    box.append(el("p", q.question, "question-text"));
    const who = [
      q.partner_id ? "合作方 " + (partnerNames[q.partner_id] || q.partner_id) : "",
      q.asker ? "提问人 " + q.asker : "",
      q.version ? "第 " + q.version + " 版" : "",
      R.when(q.asked_at),
    ];
    box.append(el("div", who.filter(Boolean).join(" · "), "doc-id"));
    if (q.answer) {
      const shown = el("div", null, "answer");
      shown.append(el("span", q.answer.published ? "已答复 · 已公开" : "已答复 · 未公开", "status " + (q.answer.published ? "published" : "private")));
      shown.append(el("p", q.answer.text));
      box.append(shown);
    } else {
      box.append(el("span", "待答复", "status waiting"));
    }
    box.append(answerForm(q));
    return box;
  }

  function answerForm(q) {
    const form = el("form", null, "answer-form");
    form.noValidate = true;
    const id = "answer-" + q.id;
    const label = el("label", q.answer ? "修改答复" : "答复");
    label.htmlFor = id;
    const area = el("textarea");
    area.id = id;
    area.name = "answer";
    area.rows = 3;
    area.required = true;
    area.setAttribute("aria-required", "true");
    if (q.answer) area.defaultValue = q.answer.text;
    const publish = el("label", null, "choice");
    const box = el("input");
    box.type = "checkbox";
    box.name = "publish";
    box.defaultChecked = Boolean(q.answer && q.answer.published);
    publish.append(box, " 公开到常见问题解答（随后续通知推送）");
    const error = el("div", null, "field-error");
    error.hidden = true;
    error.setAttribute("role", "alert");
    const button = el("button", q.answer ? "更新答复" : "提交答复");
    button.type = "submit";
    form.append(label, area, publish, error, button);
    form.addEventListener("submit", (event) => answer(event, q, area, box, error, button));
    return form;
  }

  async function answer(event, q, area, publish, error, button) {
    event.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      const response = await R.postJSON("/api/v1/questions/" + encodeURIComponent(q.id) + "/answer", {
        answer: area.value,
        publish: publish.checked,
      });
      const refusal = await R.refused(response);
      if (refusal) {
        R.signedOut(refusal);
        return;
      }
      if (!response.ok) {
        const e = await R.errorOf(response);
        error.textContent = (/answer/.test(e.message) && !area.value.trim() ? "请填写答复。" : "答复未保存：") + e.message;
        error.hidden = false;
        area.setAttribute("aria-invalid", "true");
        area.focus();
        return;
      }
      R.show("notice", publish.checked ? "已答复并公开到常见问题解答。" : "已答复（未公开）。");
      area.defaultValue = area.value;
      await loadQuestions(true);
    } catch (e) {
      error.textContent = "答复没有送达服务，请稍后再试。";
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ start

  document.addEventListener("DOMContentLoaded", () => {
    $("revise").href = "/?revise=" + encodeURIComponent(docId);
    $("repeal").href = "/?repeal=" + encodeURIComponent(docId);
    $("replay-all").addEventListener("click", () =>
      R.replay({ document_id: docId }, "这份政策全部失败的推送", $("replay-all"), start)
    );
    R.setUp({ onSignedIn: start, onSignedOut: stop });
  });
})();
