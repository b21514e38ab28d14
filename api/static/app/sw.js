/* gridkit field app service worker: keeps the shell (and Leaflet for the small map)
   so the app opens with no connection. Submissions are not its business: the app
   queues them in IndexedDB and sends them itself, each with its Idempotency-Key. */
'use strict';
const CACHE = 'gridkit-app-v1';
const SHELL = ['/app/', '/app/app.js', '/app/manifest.webmanifest', '/app/icon.svg'];
const OPTIONAL = ['/assets/leaflet.js', '/assets/leaflet.css'];  // the maps extra

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(SHELL);
    await Promise.all(OPTIONAL.map((url) => cache.add(url).catch(() => null)));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

function cached(url) {
  const path = new URL(url).pathname;
  return SHELL.includes(path) || OPTIONAL.includes(path) || path === '/app/index.html'
    || path.startsWith('/assets/images/');
}

/* the shell from the cache at once, refreshed from the network behind it
   (stale-while-revalidate): the next start has the new version */
self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET' || new URL(req.url).origin !== self.location.origin) return;
  const nav = req.mode === 'navigate' && new URL(req.url).pathname.startsWith('/app');
  if (!nav && !cached(req.url)) return;  // the API: straight to the network
  const key = nav ? '/app/' : req;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(key);
    const fresh = fetch(req).then((resp) => {
      if (resp.ok) cache.put(key, resp.clone());
      return resp;
    }).catch(() => null);
    if (hit) { event.waitUntil(fresh); return hit; }
    return (await fresh) || new Response('offline', {status: 503});
  })());
});
