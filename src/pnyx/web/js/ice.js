// ICE servers for publishing, the WHIP way (RFC 9725 section 4.6): an OPTIONS of the
// publish URL answers with Link headers, one per STUN or TURN URL:
//   Link: <stun:stun.example.net:3478>; rel="ice-server"
//   Link: <turn:turn.example.net:3478?transport=udp>; rel="ice-server";
//         username="1733400000:alice"; credential="…"; credential-type="password"
// (fetch joins repeated headers with ", "). TURN credentials are minted for the signed-in
// account and expire, so they are asked for before every offer. No Link header, or no
// answer at all: no ICE servers, host candidates only (as before there were any).

import { call } from "./api.js";

/** The RTCIceServer list in a Link header value (other links are ignored). */
export function parseIceServers(header) {
  const s = header || "";
  const servers = [];
  let i = 0;
  const skipSpace = () => {
    while (i < s.length && (s[i] === " " || s[i] === "\t")) i++;
  };
  while (i < s.length) {
    const open = s.indexOf("<", i);
    if (open < 0) break;
    const close = s.indexOf(">", open);
    if (close < 0) break;
    const url = s.slice(open + 1, close).trim();
    i = close + 1;
    const params = {};
    for (;;) {
      skipSpace();
      if (s[i] !== ";") break;
      i++;
      skipSpace();
      let name = "";
      while (i < s.length && !"=;, \t".includes(s[i])) name += s[i++];
      skipSpace();
      let value = "";
      if (s[i] === "=") {
        i++;
        skipSpace();
        if (s[i] === '"') {
          i++;
          while (i < s.length && s[i] !== '"') {
            if (s[i] === "\\") i++;
            if (i < s.length) value += s[i++];
          }
          i++; // the closing quote
        } else {
          while (i < s.length && !";, \t".includes(s[i])) value += s[i++];
        }
      }
      params[name.toLowerCase()] = value;
    }
    while (i < s.length && s[i] !== ",") i++; // anything else up to the next link
    i++;
    if (!(params.rel || "").toLowerCase().split(/\s+/).includes("ice-server")) continue;
    const server = { urls: url };
    if (params.username !== undefined) server.username = params.username;
    if (params.credential !== undefined) server.credential = params.credential;
    // A TURN URL is unusable without credentials (and RTCPeerConnection refuses it).
    if (/^turns?:/i.test(url) && (server.username === undefined || server.credential === undefined)) {
      continue;
    }
    servers.push(server);
  }
  return servers;
}

/** The ICE servers for publishing at `path` (an OPTIONS with the account's token). Any
 * failure gives none: the POST that follows reports what is wrong. */
export async function fetchIceServers(path, { token, signal } = {}) {
  try {
    const res = await call(path, { method: "OPTIONS", token, signal });
    return parseIceServers(res.headers.get("Link"));
  } catch (err) {
    if (err.name === "AbortError") throw err;
    return [];
  }
}
