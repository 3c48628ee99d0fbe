/**
 * The service worker: keeps the page's own files (the HTML and the bundle) so the page opens while
 * offline and its outbox (IndexedDB) keeps working across a reload. It caches nothing else: no API
 * answer, no config, no result, and never an image.
 */
const sw = self as unknown as ServiceWorkerGlobalScope;

const CACHE = "ccc-page-v1";
const PAGE_FILES = ["/", "/dist/app.js"];

sw.addEventListener("install", (event: ExtendableEvent) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(PAGE_FILES)).then(() => sw.skipWaiting()));
});

sw.addEventListener("activate", (event: ExtendableEvent) => {
  event.waitUntil(sw.clients.claim());
});

sw.addEventListener("fetch", (event: FetchEvent) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== sw.location.origin || !PAGE_FILES.includes(url.pathname)) return;
  // Network first (a new build wins), the cached copy when offline.
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        const copy = response.clone();
        void caches.open(CACHE).then((cache) => cache.put(event.request, copy));
        return response;
      })
      .catch(async () => (await caches.match(event.request)) ?? Response.error()),
  );
});
