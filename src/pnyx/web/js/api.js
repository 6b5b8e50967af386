// The HTTP API, as the server documents it (/openapi.json). Every error body is
// {"error": {"kind", "code", "message"}}; 429 and 503 carry Retry-After.

export class ApiError extends Error {
  constructor(status, { kind = "unknown", code = "", message = "" } = {}, retryAfterS = null) {
    super(message || `request failed (${status || "network"})`);
    this.name = "ApiError";
    this.status = status; // 0: the request never got an answer
    this.kind = kind;
    this.code = code;
    this.retryAfterS = retryAfterS; // seconds, from Retry-After, or null
  }

  get isNetwork() { return this.status === 0; }
  /** The server asked us to come back later (overload, rate limit, contention). */
  get isRetryLater() { return this.status === 429 || this.status === 503; }
  get isAuth() { return this.status === 401; }
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), or null. */
export function parseRetryAfter(value) {
  if (!value) return null;
  const n = Number(value);
  if (Number.isFinite(n)) return Math.max(0, n);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

async function errorFrom(res) {
  let body = {};
  try {
    const data = await res.json();
    if (data && typeof data.error === "object") body = data.error;
  } catch { /* not JSON: keep the status */ }
  return new ApiError(res.status, body, parseRetryAfter(res.headers.get("Retry-After")));
}

/**
 * One API call. `json` sends a JSON body, `sdp` an SDP body; `token` becomes a bearer
 * token. Resolves {status, data, headers, url} (data: parsed JSON, text for SDP, or
 * null); rejects with ApiError.
 */
export async function call(path, { method = "GET", token, json, sdp, signal, keepalive } = {}) {
  const headers = {};
  let body;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (sdp !== undefined) {
    headers["Content-Type"] = "application/sdp";
    body = sdp;
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body, signal, keepalive, credentials: "omit" });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, { kind: "network", code: "network", message: "no answer from the server" });
  }
  if (!res.ok) throw await errorFrom(res);
  const type = res.headers.get("Content-Type") || "";
  let data = null;
  if (res.status !== 204) {
    if (type.includes("json")) data = await res.json();
    else data = await res.text();
  }
  return { status: res.status, data, headers: res.headers, url: res.url };
}

export const get = (path, opts) => call(path, { ...opts, method: "GET" });
export const post = (path, opts) => call(path, { ...opts, method: "POST" });
export const put = (path, opts) => call(path, { ...opts, method: "PUT" });
export const del = (path, opts) => call(path, { ...opts, method: "DELETE" });
export const patch = (path, opts) => call(path, { ...opts, method: "PATCH" });

const enc = encodeURIComponent;
export const paths = {
  accounts: "/v1/accounts",
  sessions: "/v1/sessions",
  signOut: "/v1/auth/signout",
  signOutAll: "/v1/auth/signout-all",
  spaces: (state) => `/v1/spaces?state=${enc(state)}`,
  profile: (handle) => `/v1/accounts/${enc(handle)}`,
  hosted: (handle, state, limit = 20) => `/v1/accounts/${enc(handle)}/spaces?state=${enc(state)}&limit=${limit}`,
  follow: (handle) => `/v1/accounts/${enc(handle)}/follow`,
  account: "/v1/account",
  password: "/v1/account/password",
  deleteAccount: "/v1/account/delete",
  createSpace: "/v1/spaces",
  space: (id) => `/v1/spaces/${enc(id)}`,
  state: (id, after) => `/v1/spaces/${enc(id)}/state${after == null ? "" : `?after=${after}`}`,
  start: (id) => `/v1/spaces/${enc(id)}/start`,
  end: (id) => `/v1/spaces/${enc(id)}/end`,
  join: (id, client) => `/v1/spaces/${enc(id)}/join${client ? `?client=${enc(client)}` : ""}`,
  heartbeat: (id) => `/v1/spaces/${enc(id)}/heartbeat`,
  leave: (id) => `/v1/spaces/${enc(id)}/leave`,
  reactions: (id) => `/v1/spaces/${enc(id)}/reactions`,
  hand: (id) => `/v1/spaces/${enc(id)}/hand`,
  declineHand: (id, h) => `/v1/spaces/${enc(id)}/hands/${enc(h)}`,
  role: (id, h) => `/v1/spaces/${enc(id)}/members/${enc(h)}/role`,
  invitation: (id) => `/v1/spaces/${enc(id)}/invitation`,
  mute: (id, h) => `/v1/spaces/${enc(id)}/members/${enc(h)}/mute`,
  unmute: (id, h) => `/v1/spaces/${enc(id)}/members/${enc(h)}/unmute`,
  remove: (id, h) => `/v1/spaces/${enc(id)}/members/${enc(h)}/remove`,
  pin: (id) => `/v1/spaces/${enc(id)}/pin`,
  speakPolicy: (id) => `/v1/spaces/${enc(id)}/speak-policy`,
  publish: (id) => `/v1/spaces/${enc(id)}/publish`,
  stageSocket: (id) => `/v1/spaces/${enc(id)}/stage`,
  links: (id) => `/v1/spaces/${enc(id)}/links`,
  invites: (id) => `/v1/spaces/${enc(id)}/invites`,
  invite: (id, h) => `/v1/spaces/${enc(id)}/invites/${enc(h)}`,
  live: (id) => `/media/${enc(id)}/live.m3u8`,
  main: (id) => `/media/${enc(id)}/main.m3u8`,
  transcript: (id) => `/v1/spaces/${enc(id)}/transcript`,
  replay: (id) => `/media/${enc(id)}/replay.m3u8`,
  recording: (id) => `/v1/spaces/${enc(id)}/recording.m4a`,
  deleteRecording: (id) => `/v1/spaces/${enc(id)}/recording`,
  replayEvent: (id, event) => `/v1/spaces/${enc(id)}/replay/${enc(event)}`,
  clips: (id) => `/v1/spaces/${enc(id)}/clips`,
  clip: (id) => `/v1/clips/${enc(id)}`,
  search: (q) => `/v1/spaces?q=${enc(q)}`,
  replays: "/v1/replays",
  reminder: (id) => `/v1/spaces/${enc(id)}/reminder`,
  webhooks: "/v1/webhooks",
  webhook: (id) => `/v1/webhooks/${enc(id)}`,
  webhookTest: (id) => `/v1/webhooks/${enc(id)}/test`,
  webhookDeliveries: (id, limit) => `/v1/webhooks/${enc(id)}/deliveries?limit=${limit}`,
};

/** The id this browser keeps across joins (localStorage "pnyx.client", 22 random base64url
 * characters): the server counts anonymous listeners once per browser in a space's unique
 * listeners, and uses it for nothing else. Null when storage is blocked. */
export function clientId() {
  const KEY = "pnyx.client";
  try {
    let id = localStorage.getItem(KEY);
    if (!id || !/^[A-Za-z0-9_-]{16,64}$/.test(id)) {
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      id = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      localStorage.setItem(KEY, id);
    }
    return id;
  } catch {
    return null;
  }
}

/** Tell the server a replay was played or downloaded (it counts these: the replay itself
 * is cached at the edges). Fire and forget; survives the page being left. */
export function replayBeacon(id, event) {
  const url = paths.replayEvent(id, event);
  try {
    if (navigator.sendBeacon && navigator.sendBeacon(url)) return;
  } catch { /* fall back to fetch */ }
  fetch(url, { method: "POST", keepalive: true, credentials: "omit" }).catch(() => {});
}

/** A private space's id begins with "p-": its media, state and description are read only
 * through the signed links the server hands its audience (GET …/links, POST …/join). */
export const isPrivateId = (id) => id.startsWith("p-");

/** A read link with ?after=V added (state long-polls), signed or plain. */
export const withAfter = (link, after) => (after == null ? link : `${link}${link.includes("?") ? "&" : "?"}after=${after}`);
