// Pnyx's service worker: shows the notifications the server pushes (Web Push, opted in
// from the bell) and opens the space when one is clicked. Nothing else: no caching.
// Each message is JSON: {kind, space, host, title, at, detail} (GET /v1/notifications).

const TEXT = {
  space_live: (n) => [`@${n.host} is live`, n.title],
  space_soon: (n) => ["Starting soon", `${n.title} (@${n.host})`],
  space_rescheduled: (n) => ["Rescheduled", `${n.title} (@${n.host})`],
  space_cancelled: (n) => ["Cancelled", `${n.title} (@${n.host})${n.detail ? `: ${n.detail}` : ""}`],
  speak_invite: (n) => [`@${n.host} invites you to speak`, n.title],
  space_invite: (n) => [`@${n.host} invited you to listen`, n.title],
};

self.addEventListener("push", (event) => {
  let n = {};
  try {
    n = event.data ? event.data.json() : {};
  } catch {
    return;
  }
  const [title, body] = (TEXT[n.kind] || (() => ["Pnyx", n.title || ""]))(n);
  event.waitUntil(self.registration.showNotification(title, {
    body,
    tag: `${n.kind}:${n.space}`,
    icon: "/web/icon.svg",
    data: { url: n.space ? `/s/${encodeURIComponent(n.space)}` : "/" },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = event.notification.data?.url || "/";
  event.waitUntil(self.clients.openWindow(url));
});
