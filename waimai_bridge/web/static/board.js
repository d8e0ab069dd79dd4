// The order board: today's cards in two lanes, kept live over Server-Sent Events, with
// the buttons of the actions each order allows. A plain ES module: no build, no library.

const data = JSON.parse(document.querySelector("#board-data").textContent);
const L = data.labels;
const csrf = document.querySelector('meta[name="csrf-token"]').content;

const cards = new Map(); // card key -> card
const askKeys = new Map(); // "card key|action" -> idempotency key, made once
const asked = new Map(); // "card key|action" -> {id, status, message}
const reasonOpen = new Map(); // card key -> {action, text}
const fresh = new Set(); // keys of the cards that just came to need action
let lastId = data.last_id ?? null; // the change feed's id the cards shown are as of
let authorizations = data.authorizations ?? []; // channels whose authorization is lost or expiring
let source = null;
let audio = null;

const POLL_MS = 700;
const POLL_LIMIT = 90;
const RECONNECT_MS = 3000;
const AUTHORIZATIONS_MS = 60000;

// ------------------------------------------------------------------ helpers

const label = (key, fallback) => L[key] ?? fallback ?? key;

function el(tag, attrs = {}, ...children) {
  // a node of the tag from markup (the tags are this module's own, never input)
  const node = document.createRange().createContextualFragment(`<${tag}></${tag}>`).firstChild;
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Fen as yuan with two decimals, in integers (no float rounding). */
export function yuan(fen) {
  if (fen === null || fen === undefined) return "–";
  const sign = fen < 0 ? "-" : "";
  const abs = Math.abs(fen);
  return `${sign}¥${Math.trunc(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

function hue(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

function randomKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return "board-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function filters() {
  const query = new URLSearchParams(location.search);
  return {
    store_id: query.get("store_id") || "",
    platform: query.get("platform") || "",
    state: query.get("state") || "",
  };
}

function matches(card, f) {
  return (
    (!f.store_id || card.store_id === f.store_id) &&
    (!f.platform || card.platform === f.platform) &&
    (!f.state || card.state === f.state)
  );
}

function channelName(platform) {
  const found = data.channels.find((c) => c.id === platform);
  return found ? found.name : platform;
}

function storeName(storeId) {
  const found = data.stores.find((s) => s.id === storeId);
  return found ? found.name : storeId;
}

function clock(iso) {
  const at = new Date(iso);
  return Number.isNaN(at.getTime())
    ? ""
    : at.toLocaleTimeString(document.querySelector("html").lang, { hour: "2-digit", minute: "2-digit" });
}

// ------------------------------------------------------------------ the cue

function beep() {
  try {
    audio ??= new AudioContext();
    if (audio.state === "suspended") audio.resume();
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.4);
  } catch {
    // no sound (no audio device, or the browser wants a gesture first): the visual cue stays
  }
}

// A browser starts audio only after a gesture: the first click anywhere unlocks it.
document.addEventListener("click", () => {
  try {
    audio ??= new AudioContext();
    audio.resume();
  } catch {
    // no Web Audio here: the visual cue stays
  }
}, { once: true });

// ------------------------------------------------------------------ authorization

function authorizationOf(storeId, platform) {
  return authorizations.find((a) => a.store_id === storeId && a.platform === platform) ?? null;
}

function authorizationText(a) {
  if (a.status !== "expiring") return label(`authorization.${a.status}`, a.status);
  const at = a.expires_at ? new Date(a.expires_at) : null;
  if (at && at.getTime() <= Date.now()) return label("authorization.expired");
  const when = at ? at.toLocaleString(document.querySelector("html").lang, {
    month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit",
  }) : "";
  return `${label("authorization.expiring")}${when ? ` · ${when}` : ""}`;
}

function renderAuthorizations() {
  const f = filters();
  const shown = authorizations.filter((a) =>
    (!f.store_id || a.store_id === f.store_id) && (!f.platform || a.platform === f.platform));
  const list = document.querySelector("#authorizations");
  list.replaceChildren(...shown.map((a) => {
    const badge = el("span", { class: "badge", text: channelName(a.platform) });
    badge.style.setProperty("--hue", hue(a.platform));
    return el("li", {
      class: `authorization auth-${a.status}`,
      "data-store": a.store_id,
      "data-platform": a.platform,
      "data-status": a.status,
    }, badge, " ", el("b", { text: storeName(a.store_id) }), " · ", authorizationText(a));
  }));
  list.hidden = shown.length === 0;
}

async function refreshAuthorizations() {
  const answer = await fetch("/board/channels", { headers: { Accept: "application/json" } })
    .catch(() => null);
  if (!answer?.ok) return;
  authorizations = (await answer.json()).authorizations;
  render();
}

// ------------------------------------------------------------------ rendering

function recentActions(card) {
  const rows = new Map(card.recent_actions.map((a) => [a.id, a]));
  for (const [slot, mine] of asked) {
    if (slot.startsWith(card.key + "|") && mine.id && !rows.has(mine.id)) rows.set(mine.id, mine);
  }
  return [...rows.values()].sort((a, b) => b.id - a.id).slice(0, 5);
}

function actionButton(card, action) {
  const slot = `${card.key}|${action}`;
  const mine = asked.get(slot);
  const status = mine?.status;
  const text = label(`action.${action}`, action) + (status ? ` · ${label(`status.${status}`, status)}` : "");
  const button = el("button", {
    type: "button",
    class: `act act-${action}` + (status ? ` status-${status}` : ""),
    "data-action": action,
    "data-status": status,
    disabled: status === "pending",
    title: mine?.message,
    text,
  });
  button.addEventListener("click", () => {
    if (needsReason(action)) openReason(card, action);
    else ask(card, action, null, button);
  });
  return button;
}

function needsReason(action) {
  return action === "cancel" || action === "reject_cancel" || action === "reject_refund";
}

function reasonForm(card, open) {
  const reasons = label("reasons", "").split("|").filter(Boolean);
  const select = el("select", { name: "reason", "aria-label": label("reason") },
    reasons.map((r) => el("option", { value: r, text: r })),
    el("option", { value: "", text: label("reason_other") }));
  const other = el("input", { name: "other", type: "text", maxlength: 200, placeholder: label("reason_other") });
  if (open.text) {
    if (reasons.includes(open.text)) select.value = open.text;
    else { select.value = ""; other.value = open.text; }
  }
  const chosen = () => (select.value || other.value).trim();
  select.addEventListener("change", () => { open.text = chosen(); });
  other.addEventListener("input", () => { open.text = chosen(); });
  const form = el("form", { class: "reason", "data-action": open.action },
    el("label", { text: label(`action.${open.action}`) + " – " + label("reason") }),
    select, other,
    el("button", { type: "submit", class: "send", text: label("send") }),
    el("button", { type: "button", class: "close", text: label("close") }));
  form.querySelector(".close").addEventListener("click", () => {
    reasonOpen.delete(card.key);
    render();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const reason = chosen();
    if (!reason) return;
    reasonOpen.delete(card.key);
    ask(card, open.action, reason, null);
  });
  return form;
}

function openReason(card, action) {
  reasonOpen.set(card.key, { action, text: "" });
  render();
}

function cardNode(card) {
  const needs = card.needs_action;
  const node = el("article", {
    class: `card state-${card.state}` + (needs ? " needs" : "") + (card.anomalies.length ? " anomalous" : ""),
    "data-key": card.key,
    "data-state": card.state,
  });
  const authorization = authorizationOf(card.store_id, card.platform);
  const badge = el("span", {
    class: "badge" + (authorization ? ` auth-${authorization.status}` : ""),
    title: authorization ? authorizationText(authorization) : null,
    text: channelName(card.platform),
  });
  badge.style.setProperty("--hue", hue(card.platform));
  node.append(el("header", {},
    badge,
    card.day_seq !== null ? el("span", { class: "seq", text: `#${card.day_seq}` }) : null,
    el("span", { class: "state", text: label(`state.${card.state}`, card.state) }),
    card.request ? el("span", { class: "request", text: label(`request.${card.request}`, card.request) }) : null,
    card.rider_state ? el("span", { class: "rider", text: `${label("rider")}: ${label(`rider.${card.rider_state}`, card.rider_state)}` }) : null,
    el("span", { class: "where" }, storeName(card.store_id), " · ", card.platform_order_id, " · ", clock(card.created_at)),
  ));
  node.append(el("ul", { class: "items" }, card.items.map((item) =>
    el("li", { class: item.unmapped ? "unmapped" : null },
      el("span", { class: "qty", text: `${item.quantity}×` }), " ", item.name,
      item.unmapped ? el("span", { class: "flag", text: label("unmapped") }) : null))));
  if (card.remark) node.append(el("p", { class: "remark" }, el("b", { text: label("remark") + ": " }), card.remark));
  node.append(el("dl", { class: "money" },
    el("dt", { text: label("user_paid") }), el("dd", { class: "user-paid", text: yuan(card.user_paid) }),
    el("dt", { text: label("merchant_income") }), el("dd", { class: "income", text: yuan(card.merchant_income) })));
  if (card.anomalies.length) {
    node.append(el("ul", { class: "anomalies", "aria-label": label("anomalies") },
      card.anomalies.map((a) => el("li", { "data-rule": a.rule },
        el("b", { text: label(`anomaly.${a.rule}`, a.rule) }), a.detail ? `: ${a.detail}` : ""))));
  }
  if (data.can_act && card.actions.length) {
    node.append(el("div", { class: "actions" }, card.actions.map((action) => actionButton(card, action))));
    const open = reasonOpen.get(card.key);
    if (open && card.actions.includes(open.action)) node.append(reasonForm(card, open));
  }
  const recent = recentActions(card);
  if (recent.length) {
    node.append(el("ul", { class: "recent" }, recent.map((a) =>
      el("li", { class: `status-${a.status}`, "data-action-id": a.id, "data-action": a.action, "data-status": a.status },
        `${label(`action.${a.action}`, a.action)} · ${label(`status.${a.status}`, a.status)}`,
        a.message ? ` · ${a.message}` : ""))));
  }
  return node;
}

function render() {
  const f = filters();
  const shown = [...cards.values()]
    .filter((card) => matches(card, f))
    .sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
  const needs = shown.filter((card) => card.needs_action);
  const rest = shown.filter((card) => !card.needs_action);
  fill("needs-action", "needs-count", needs);
  fill("today", "today-count", rest);
  renderAuthorizations();
}

function fill(laneId, countId, list) {
  const lane = document.querySelector(`#${laneId}`);
  const active = document.querySelector(":focus");
  const focused = active?.closest?.(".reason") ? active : null;
  const keepName = focused?.name;
  const keepKey = focused?.closest(".card")?.dataset.key;
  lane.querySelector(".cards").replaceChildren(...list.map((card) => {
    const node = cardNode(card);
    if (fresh.has(card.key)) node.classList.add("fresh");
    return node;
  }));
  lane.classList.toggle("is-empty", list.length === 0);
  document.querySelector(`#${countId}`).textContent = list.length ? `(${list.length})` : "";
  if (keepName && keepKey) {
    lane.querySelector(`.card[data-key="${CSS.escape(keepKey)}"] .reason [name="${keepName}"]`)?.focus();
  }
}

function flagFresh(card) {
  fresh.add(card.key);
  setTimeout(() => {
    fresh.delete(card.key);
    document.querySelector(`.card[data-key="${CSS.escape(card.key)}"]`)?.classList.remove("fresh");
  }, 8000);
}

// ------------------------------------------------------------------ data in

function take(card, { live }) {
  const before = cards.get(card.key);
  cards.set(card.key, card);
  for (const a of card.recent_actions) {
    for (const [slot, mine] of asked) {
      if (mine.id === a.id && a.status !== "pending") settle(slot, a);
    }
  }
  if (live && card.needs_action && !(before && before.needs_action)) {
    flagFresh(card);
    beep();
  }
}

async function refetch() {
  const f = filters();
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(f)) if (value) query.set(name, value);
  const answer = await fetch(`/board/orders?${query}`, { headers: { Accept: "application/json" } })
    .catch(() => null);
  if (answer === null) return;
  if (answer.status === 401) {
    location.assign("/board/login"); // the session ended
    return;
  }
  if (!answer.ok) return;
  const body = await answer.json();
  cards.clear();
  for (const card of body.cards) take(card, { live: false });
  lastId = body.last_id ?? lastId;
  render();
}

function connect() {
  source?.close();
  const f = filters();
  const query = new URLSearchParams();
  if (f.store_id) query.set("store_id", f.store_id);
  if (lastId !== null) query.set("last_id", lastId);
  const stream = new EventSource(`/board/events?${query}`);
  source = stream;
  const live = document.querySelector("#live");
  stream.addEventListener("open", () => {
    live.dataset.live = "yes";
    live.textContent = label("live");
  });
  stream.addEventListener("error", () => {
    live.dataset.live = "no";
    live.textContent = label("offline");
    if (stream.readyState === EventSource.CLOSED && stream === source) {
      // refused rather than dropped (the session ended, or the server restarts): check
      // the session (a lost one leads to the login page), then follow again
      setTimeout(() => refetch().then(connect), RECONNECT_MS);
    }
  });
  stream.addEventListener("order", (event) => {
    const card = JSON.parse(event.data);
    if (event.lastEventId) lastId = Number(event.lastEventId) || lastId;
    take(card, { live: true });
    render();
  });
  stream.addEventListener("resync", () => { refetch(); });
}

// ------------------------------------------------------------------ acting

function settle(slot, action) {
  const mine = asked.get(slot);
  if (!mine) return;
  mine.status = action.status;
  mine.message = action.message ?? action.result?.message ?? null;
  if (mine.status === "failed") askKeys.delete(slot); // a click after a failure is a new action
}

async function ask(card, action, reason, button) {
  const slot = `${card.key}|${action}`;
  if (asked.get(slot)?.status === "pending") return;
  let key = askKeys.get(slot);
  if (!key) {
    key = randomKey();
    askKeys.set(slot, key);
  }
  asked.set(slot, { id: null, action, status: "pending", message: null });
  if (button) {
    button.disabled = true;
    button.dataset.status = "pending";
  }
  render();
  let answer;
  try {
    answer = await fetch(
      `/api/v1/platform-orders/${encodeURIComponent(card.platform)}/${encodeURIComponent(card.platform_order_id)}/actions`,
      {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
        body: JSON.stringify({ action, reason, idempotency_key: key }),
      },
    );
  } catch (error) {
    asked.set(slot, { id: null, action, status: "failed", message: String(error) });
    render();
    return;
  }
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    askKeys.delete(slot);
    asked.set(slot, {
      id: null, action, status: "failed",
      message: `${answer.status} ${body.error ?? label("action_refused")}`,
    });
    render();
    return;
  }
  asked.set(slot, { id: body.id, action, status: body.status, message: body.result?.message ?? null });
  render();
  poll(slot, body.id);
}

async function poll(slot, id) {
  for (let n = 0; n < POLL_LIMIT; n++) {
    const mine = asked.get(slot);
    if (!mine || mine.id !== id || mine.status !== "pending") return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    const answer = await fetch(`/api/v1/actions/${id}`, { headers: { Accept: "application/json" } }).catch(() => null);
    if (answer?.ok) {
      const action = await answer.json();
      if (action.status !== "pending") {
        settle(slot, action);
        render();
        return;
      }
    }
  }
}

// ------------------------------------------------------------------ filters

document.querySelector("#filters").addEventListener("change", (event) => {
  const form = event.currentTarget;
  const before = filters();
  const query = new URLSearchParams();
  for (const [name, value] of new FormData(form)) if (value) query.set(name, value);
  const search = query.toString();
  history.replaceState(null, "", search ? `?${search}` : location.pathname);
  render();
  const after = filters();
  if (after.store_id !== before.store_id) {
    lastId = null;
    refetch().then(connect);
  } else {
    refetch();
  }
});

// ------------------------------------------------------------------ start

setInterval(refreshAuthorizations, AUTHORIZATIONS_MS);

if (Array.isArray(data.cards)) {
  for (const card of data.cards) take(card, { live: false });
  render();
  connect();
} else {
  refetch().then(connect);
}
