// Browsers: files fetched from the Hub are kept in the Cache API between visits (a Qwen2-0.5B checkpoint is 1 GB),
// keyed by URL. Only `/resolve/<commit>/` URLs are stored: a commit's files never change, while a branch URL
// (`/resolve/main/`) may, so those are always fetched.
export const HUB_CACHE_NAME = 'latentlm-hub';

const IMMUTABLE = /\/resolve\/[0-9a-f]{40}\//;

/** The subset of the Cache API used (tests pass a fake). */
export interface CacheLike {
  match(url: string): Promise<Response | undefined>;
  put(url: string, res: Response): Promise<void>;
}
export interface CacheStorageLike {
  open(name: string): Promise<CacheLike>;
}

function defaultCaches(): CacheStorageLike | undefined {
  return (globalThis as { caches?: CacheStorageLike }).caches;
}

/**
 * The two cache strategies take the same arguments: fetch's, then the cache storage (default: the page's Cache API,
 * undefined where there is none) and the fetch to use.
 */
export type CachingFetch = (url: string, init?: RequestInit, storage?: CacheStorageLike, fetchFn?: typeof fetch) => Promise<Response>;

export function isCacheableHubUrl(url: string): boolean {
  return IMMUTABLE.test(url);
}

/**
 * fetch() for Hub file URLs through the Cache API: a hit is served from the cache; a miss is fetched and a copy
 * stored. Anything else (or no Cache API: Node, an insecure origin) is a plain fetch.
 */
export const cachedFetch: CachingFetch = async (url, init, storage = defaultCaches(), fetchFn = fetch) => {
  if (!storage || !isCacheableHubUrl(url) || (init?.method && init.method !== 'GET' && init.method !== 'HEAD')) return fetchFn(url, init);
  let cache: CacheLike;
  try {
    cache = await storage.open(HUB_CACHE_NAME);
  } catch {
    return fetchFn(url, init); // storage disabled (private mode, quota): still works, just uncached
  }
  const hit = await cache.match(url);
  if (hit) return hit;
  if (init?.method === 'HEAD') return fetchFn(url, init); // an existence check: nothing to store
  const res = await fetchFn(url, init);
  if (res.ok && res.status === 200) {
    try {
      await cache.put(url, res.clone());
    } catch {
      // over quota: the bytes are still returned
    }
  }
  return res;
};

/**
 * For the one mutable request, the repo API's revision -> commit lookup: the network when it answers (and a copy
 * kept), the last copy when it does not, so a page loaded offline still finds the commit whose files are cached.
 */
export const networkFirst: CachingFetch = async (url, init, storage = defaultCaches(), fetchFn = fetch) => {
  const cache = storage ? await storage.open(HUB_CACHE_NAME).catch(() => undefined) : undefined;
  let res: Response;
  try {
    res = await fetchFn(url, init);
  } catch (e) {
    const hit = await cache?.match(url);
    if (hit) return hit;
    throw e;
  }
  if (res.ok && cache) await cache.put(url, res.clone()).catch(() => undefined);
  return res;
};
