// What every page shares: the API key for this browser session, JSON fetches with it, the
// connection indicator and the toasts. DOM code only; the logic it uses lives in lib/.

import { describeMessage, describeStatus, RealtimeConnection } from "./stream-client.js";
import { TabSharedConnection } from "./shared-tabs.js";

const KEY_ITEM = "rakuda.apiKey";

export const apiKey = {
  get: () => sessionStorage.getItem(KEY_ITEM),
  set: (value) => sessionStorage.setItem(KEY_ITEM, value),
  clear: () => sessionStorage.removeItem(KEY_ITEM),
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** GET a JSON API path with the key; ApiError carries the gateway's own error message. */
export async function api(path) {
  const response = await fetch(path, { headers: { "X-API-Key": apiKey.get() ?? "", Accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body?.error ?? `HTTP ${response.status} from ${path}`);
  return body;
}

/** Why a key was refused, in words an operator can act on. */
function refusal(status, body) {
  if (status === 429) return `Too many failed attempts from this address; wait and try again (${body?.error ?? "HTTP 429"}).`;
  return `The API key was not accepted: ${body?.error ?? `HTTP ${status}`}. Check the key and try again.`;
}

/**
 * Ask for the key when there is none (or it was refused), then call `onReady(connection)`
 * once with a started connection (one stream shared by all of this browser's tabs).
 */
export function startSession(onReady) {
  const login = document.getElementById("login");
  const form = document.getElementById("key-form");
  const input = /** @type {HTMLInputElement} */ (document.getElementById("api-key"));
  const error = document.getElementById("login-error");
  const forget = document.getElementById("forget-key");
  const options = globalThis.RAKUDA_REALTIME_OPTIONS ?? {};
  const connection = new TabSharedConnection(new RealtimeConnection({ getApiKey: apiKey.get, ...options }));
  bindStatus(document.getElementById("connection"), connection);
  let ready = false;

  const showLogin = (message) => {
    login.hidden = false;
    forget.hidden = true;
    error.hidden = !message;
    error.textContent = message ?? "";
    input.focus();
  };
  const begin = () => {
    login.hidden = true;
    forget.hidden = false;
    connection.start();
    if (!ready) {
      ready = true;
      onReady(connection);
    }
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return showLogin("Enter the API key.");
    let response;
    try {
      response = await fetch("/api/realtime/token", { method: "POST", headers: { "X-API-Key": key } });
    } catch (e) {
      return showLogin(`The gateway cannot be reached (${e.message}).`);
    }
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      connection.stop(`authentication failed (${body?.error ?? `HTTP ${response.status}`})`);
      return showLogin(refusal(response.status, body));
    }
    input.value = "";
    apiKey.set(key);
    begin();
  });
  forget.addEventListener("click", () => {
    connection.stop("API key forgotten");
    apiKey.clear();
    showLogin();
  });
  connection.onStatus((status) => {
    if (status.authFailed) {
      apiKey.clear();
      showLogin(`The API key was not accepted: ${status.reason.replace(/^authentication failed \((.*)\)$/, "$1")}. Check the key and try again.`);
    }
  });

  if (apiKey.get()) begin();
  else showLogin();
  return connection;
}

/** Keep the indicator's accessible name, tooltip and colour in step with the connection. */
export function bindStatus(element, connection) {
  const word = element.querySelector(".connection-word");
  const tip = element.querySelector(".tooltip");
  let latest = connection.status;
  const paint = () => {
    const { tone, label } = describeStatus(latest);
    element.dataset.tone = tone;
    element.setAttribute("aria-label", label);
    const first = label.split(/[ :]/)[0];
    if (word.textContent !== first) word.textContent = first; // the live region speaks on a change of phase only
    tip.textContent = label;
  };
  connection.onStatus((status) => { latest = status; paint(); });
  setInterval(paint, 1000); // the "reconnecting in N s" countdown
}

/** One toast per stream message, in the aria-live region: a link named after its event. */
export class Toasts {
  /**
   * @param {HTMLElement} region the aria-live element the toasts go in
   * @param {{timeoutMs?: number, max?: number}} [options] how long one stays, how many at once
   */
  constructor(region, { timeoutMs = 5000, max = 3 } = {}) {
    this.region = region;
    this.timeoutMs = timeoutMs;
    this.max = max;
  }

  show(message) {
    const { text, href } = describeMessage(message);
    const toast = document.createElement("a");
    toast.className = "toast";
    toast.href = href;
    toast.textContent = text;
    toast.dataset.type = message.type;
    let timer = null;
    const arm = () => { timer = setTimeout(() => toast.remove(), this.timeoutMs); };
    toast.addEventListener("focus", () => clearTimeout(timer)); // never vanish under the keyboard
    toast.addEventListener("blur", arm);
    toast.addEventListener("keydown", (e) => { if (e.key === "Escape") toast.remove(); });
    this.region.append(toast);
    while (this.region.children.length > this.max) this.region.firstElementChild.remove();
    arm();
    return toast;
  }
}

/** A table row of cells; a cell may be text or a Node. */
export function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    td.append(cell instanceof Node ? cell : document.createTextNode(cell ?? "–"));
    tr.append(td);
  }
  return tr;
}

export function link(href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  return a;
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}
