// OWASP API Security Top 10 (2023), API8 — Security Misconfiguration, for
// the static site of serve --public: what a guest can reach with paths
// written to leave the folder, dotfiles, other methods and a file that
// would shadow the API. Raw requests: fetch would normalise the paths.

import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { startServer } from "../server.mjs";

const SECRET = "top-secret-outside-the-site";
let server;
let top;

before(async () => {
    top = mkdtempSync(join(tmpdir(), "uh-static-"));
    const site = join(top, "site");
    mkdirSync(join(site, "api"), { recursive: true });
    writeFileSync(join(site, "index.html"), "<!doctype html><title>site</title>");
    writeFileSync(join(site, ".env"), SECRET);
    writeFileSync(join(site, "api", "health"), SECRET);
    writeFileSync(join(top, "secret.txt"), SECRET);
    symlinkSync(join(top, "secret.txt"), join(site, "link.txt"));
    server = await startServer({ freshDir: true, args: ["--public", site, "--index-fallback"] });
});

after(() => {
    server?.stop();
    if (top) rmSync(top, { recursive: true, force: true });
});

// raw sends path exactly as written.
function raw(method, path, headers = {}) {
    const u = new URL(server.url);
    return new Promise((resolve, reject) => {
        const req = request({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (c) => (body += c));
            res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
        });
        req.on("error", reject);
        req.end();
    });
}

test("paths written to leave the site's folder never reach a file outside it", async () => {
    for (const path of [
        "/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt", "/..%2fsecret.txt",
        "/..%5csecret.txt", "/.%2e/secret.txt", "/a/../../secret.txt", "/link.txt", "//../secret.txt",
    ]) {
        const r = await raw("GET", path, { Accept: "text/plain" });
        assert.ok(!r.body.includes(SECRET), `GET ${path} = ${r.status} with the secret`);
        // A 3xx is the router cleaning the path, to a path inside the site.
        assert.ok(r.status < 500, `GET ${path} = ${r.status}`);
    }
});

test("dotfiles are not served, even with the SPA fallback on", async () => {
    for (const path of ["/.env", "/.git/config", "/%2eenv"]) {
        const r = await raw("GET", path, { Accept: "text/html" });
        assert.equal(r.status, 404, `GET ${path}`);
        assert.ok(!r.body.includes(SECRET), `GET ${path} carries the secret`);
    }
});

test("a file named like an API route never shadows the API", async () => {
    for (const path of ["/api/health", "/API/health", "/Api/health"]) {
        const r = await raw("GET", path);
        assert.ok(!r.body.includes(SECRET), `GET ${path} served the site's file`);
    }
    const health = await raw("GET", "/api/health");
    assert.equal(health.status, 200);
    assert.match(health.body, /API is healthy/);
});

test("only GET and HEAD reach the site", async () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
        const r = await raw(method, "/index.html");
        assert.equal(r.status, 405, `${method} /index.html`);
    }
    const head = await raw("HEAD", "/index.html");
    assert.equal(head.status, 200);
});

test("the site keeps the server's security headers", async () => {
    const r = await raw("GET", "/");
    assert.equal(r.status, 200);
    assert.equal(r.headers["x-content-type-options"], "nosniff");
});
