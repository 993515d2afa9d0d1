/**
 * Serves the SPA's build (dist/) on 127.0.0.1, gzip-compressed like the dashboard, so the two pages pay the
 * same transfer costs. `node serve.mjs [port]`; prints `listening <url>` once ready.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = fileURLToPath(new URL("./dist", import.meta.url));
const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml" };
const files = new Map();
(function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else {
      const body = readFileSync(path);
      files.set("/" + path.slice(root.length + 1), { body, gz: gzipSync(body), type: types[extname(path)] ?? "application/octet-stream" });
    }
  }
})(root);

const server = createServer((req, res) => {
  const path = (req.url ?? "/").split("?", 1)[0];
  const file = files.get(path === "/" ? "/index.html" : path) ?? files.get("/index.html");
  const gzip = /\bgzip\b/.test(req.headers["accept-encoding"] ?? "");
  res.writeHead(200, {
    "Content-Type": file.type,
    "Cache-Control": path.startsWith("/assets/") ? "public, max-age=31536000, immutable" : "no-store",
    ...(gzip ? { "Content-Encoding": "gzip" } : {}),
    Vary: "Accept-Encoding",
  });
  res.end(gzip ? file.gz : file.body);
});
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  console.log(`listening http://127.0.0.1:${server.address().port}`);
});
process.once("SIGTERM", () => server.close(() => process.exit(0)));
