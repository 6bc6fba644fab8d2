// What the operator's pages share: the token (kept in this tab's sessionStorage, never in
// the URL), calls to the API with it, signing in and out, and small drawing helpers. Every
// value from the server is written with textContent, never as HTML.
"use strict";

window.Relay = (function () {
  const TOKEN_KEY = "relay.operatorToken";
  const STATUS = {
    delivered: "已送达",
    pending: "待发送",
    retrying: "重试中",
    failed: "失败",
    disabled: "渠道已停用",
    dead: "多次重试未成功",
  };
  const CHANNELS = {
    email: "邮件",
    webhook: "Webhook",
    wecom: "企业微信群",
    dingtalk: "钉钉群",
    feishu: "飞书群",
  };
  const FAILED = ["failed", "disabled", "dead"];
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

  async function api(path, options) {
    const headers = Object.assign({ Authorization: "Bearer " + token() }, (options || {}).headers);
    return fetch(path, Object.assign({ cache: "no-store" }, options, { headers: headers }));
  }

  async function postJSON(path, body) {
    return api(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  async function errorOf(response) {
    try {
      const body = await response.json();
      return { code: body.error.code, message: body.error.message };
    } catch (e) {
      return { code: "http_" + response.status, message: "HTTP " + response.status };
    }
  }

  async function errorMessage(response) {
    return (await errorOf(response)).message;
  }

  // The page's sign-in: `onSignedIn` starts its polling; `refused(response)` is a message
  // when an answer means the token is not (or no longer) the operator's.
  let page = null;

  async function refused(response) {
    if (response.status === 401) {
      return "令牌无效或已更换：请输入正确的操作员令牌（RELAY_OPERATOR_TOKEN）。";
    }
    if (response.status === 403) {
      return "这是合作方令牌：本页仅供操作员使用，请输入操作员令牌。";
    }
    if (response.status === 503) {
      const message = await errorMessage(response);
      if (/operator/.test(message) || /RELAY_OPERATOR_TOKEN/.test(message)) {
        return "操作员接口未启用：请为服务设置 RELAY_OPERATOR_TOKEN 后重启。（" + message + "）";
      }
    }
    return null;
  }

  function signedOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    if (page && page.onSignedOut) page.onSignedOut();
    $("board").hidden = true;
    $("signin").hidden = false;
    $("signout").hidden = true;
    $("status").textContent = "未登录";
    show("notice", "");
    show("problem", message || "");
    $("token").value = "";
    $("token").focus();
  }

  function signedIn() {
    $("signin").hidden = true;
    $("board").hidden = false;
    $("signout").hidden = false;
  }

  function setUp(options) {
    page = options;
    $("signin-form").addEventListener("submit", (event) => {
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
      page.onSignedIn();
    });
    $("signout").addEventListener("click", () => signedOut(""));
    if (token()) {
      $("signin").hidden = true;
      $("status").textContent = "正在连接…";
      page.onSignedIn();
    } else {
      $("token").focus();
    }
  }

  // Re-queue dead letters under their delivery ids, after the operator confirms.
  async function replay(criteria, what, button, done) {
    if (!window.confirm("确定重新投递" + what + "吗？\n将沿用原推送编号重新投递，接收方可据此去重。")) {
      return;
    }
    button.disabled = true;
    show("notice", "");
    try {
      const response = await postJSON("/api/v1/dead-letters/replay", criteria);
      const refusal = await refused(response);
      if (refusal) {
        signedOut(refusal);
        return;
      }
      if (!response.ok) {
        show("problem", "重新投递失败：" + (await errorMessage(response)));
        return;
      }
      const body = await response.json();
      show(
        "notice",
        body.requeued
          ? "已安排重新投递 " + body.requeued + " 条推送，将沿用原推送编号。"
          : "没有找到可重新投递的推送：失败记录可能刚刚写入，请稍后再试。"
      );
    } catch (e) {
      show("problem", "重新投递的请求没有送达服务，请稍后再试。");
    } finally {
      button.disabled = false;
      if (done) done();
    }
  }

  function failedCount(byStatus) {
    return FAILED.reduce((n, s) => n + (byStatus[s] || 0), 0);
  }

  // A label for a cell: shown beside its value where a table becomes a list (phones).
  function cell(text, field, label, className) {
    const td = el("td", text, className === undefined ? "num" : className);
    if (field) td.dataset.field = field;
    if (label) td.dataset.label = label;
    return td;
  }

  return {
    $,
    api,
    postJSON,
    cell,
    CHANNELS,
    el,
    errorMessage,
    errorOf,
    FAILED,
    failedCount,
    num,
    refused,
    replay,
    setUp,
    show,
    signedIn,
    signedOut,
    STATUS,
    token,
    when,
  };
})();
