// OWASP API Security Top 10 (2023), API4 — Unrestricted Resource
// Consumption: one guest, no account needed, must not take the server's
// memory (expand H1, thumbnails H4, JSON bodies M3), its reader
// connections (relation filters H3), realtime for everyone (H2), a
// connection forever (L3), or someone's mailbox (L5).
//
// Memory is measured on the server process (/proc/<pid>/status), time as
// another client's latency while the attack runs; the bounds are generous
// (they fail on the unbounded code by an order of magnitude). Each attack
// gets a server of its own, so one attack's leftovers never slow the next.

import assert from "node:assert/strict";
import { request } from "node:http";
import { connect } from "node:net";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { serveFlags, startServer } from "../server.mjs";
import { MAILPIT_MISSING, startMailpit, useMailpit } from "../mailpit.mjs";
import {
    MB, assertOK, assertRefused, bombPNG, call, createGraph, mb, openRealtime, preview,
    signIn, subscription, superuserToken, timed, trustForwardedFor, watchMemory,
} from "./lib.mjs";

// The bounds of this file.
const RSS_BOUND = 200 * MB; // memory an attack may add to the server (it took 1-2 GB)
const MESSAGE_BOUND = 1 * MB; // one response or realtime message of a refused expand (it was 539 MB / 18 MB)
const LATENCY_BOUND_MS = 3000; // another client's answer or event while an attack runs (it was 10-20 s)
const HEAVY_END_MS = 30_000; // a heavy query must end by itself (it ran for minutes)

/** heavyFilter follows kids five hops (within PocketBase's 6) over the 30x30 graph: 24M paths, ~30 s of SQLite. */
const heavyFilter = "kids.kids.kids.kids.kids.label ?= 'nothing has this label'";

/** withServer runs a describe block against a server of its own; ctx gets { server, su }. */
function withServer(ctx, options) {
    before(async () => {
        ctx.server = await startServer(options);
        ctx.su = await superuserToken(ctx.server);
    });
    after(() => ctx.server?.stop());
}

/** createPings creates a small public collection unrelated to the attacks. */
async function createPings(server, su) {
    const r = await call(server, "/api/collections", {
        method: "POST", token: su,
        body: { name: "pings", type: "base", listRule: "", viewRule: "", createRule: "", fields: [{ name: "n", type: "number" }] },
    });
    assertOK(r, "create pings");
}

// H1 — expand=kids.kids.kids over 30 records that each relate to all 30
// returned 539 MB and took the server to 2 GB. Past the expand cap the
// answer is a 400; a realtime message with that expand stays small.
describe("H1 expand is bounded", () => {
    const ctx = {};
    withServer(ctx);
    before(async () => {
        await createGraph(ctx.server, ctx.su);
        await createPings(ctx.server, ctx.su);
    });

    test("a sane expand still works (control)", async () => {
        const r = await call(ctx.server, "/api/collections/nodes/records?perPage=30&expand=kids");
        assertOK(r, "expand=kids");
        assert.equal(r.body.items.length, 30);
        assert.ok(r.body.items.every((i) => i.expand?.kids?.length === 30), "every node has its 30 kids expanded");
    });

    test("expand=kids.kids.kids is refused with a small answer and bounded memory", async () => {
        const mem = watchMemory(ctx.server.pid);
        const r = await call(ctx.server, "/api/collections/nodes/records?perPage=30&expand=kids.kids.kids", { maxBytes: 64 * MB });
        const { growth } = mem.stop();
        assert.ok(!r.cut, `the answer passed ${mb(r.size)} before it was cut off`);
        assertRefused(r, "expand=kids.kids.kids");
        assert.ok(r.size < MESSAGE_BOUND, `answer of ${mb(r.size)}`);
        assert.ok(growth < RSS_BOUND, `the server grew by ${mb(growth)} (bound ${mb(RSS_BOUND)})`);
    });

    test("a realtime subscription with that expand gets bounded messages", async () => {
        const rt = await openRealtime(ctx.server);
        try {
            await rt.subscribe([subscription("nodes/*", { expand: "kids.kids.kids" }), "pings/*"]);
            const mem = watchMemory(ctx.server.pid);
            const nodes = await call(ctx.server, "/api/collections/nodes/records?perPage=1", { token: ctx.su });
            assertOK(await call(ctx.server, `/api/collections/nodes/records/${nodes.body.items[0].id}`, {
                method: "PATCH", token: ctx.su, body: { label: "changed" },
            }), "update a node");
            // A client's events arrive in order: once the ping is there, the
            // node's event (if the server sends one) has arrived before it.
            assertOK(await call(ctx.server, "/api/collections/pings/records", { method: "POST", body: { n: 1 } }), "ping");
            await rt.waitFor(() => rt.events.some((e) => e.event === "pings/*"), "the ping event", 60_000);
            const { growth } = mem.stop();
            const biggest = Math.max(...rt.events.map((e) => e.size));
            assert.ok(biggest < MESSAGE_BOUND, `a realtime message of ${mb(biggest)} (bound ${mb(MESSAGE_BOUND)})`);
            assert.ok(growth < RSS_BOUND, `the server grew by ${mb(growth)}`);
        } finally {
            await rt.close();
        }
    });
});

// H3 — relation paths in client filters and sorts are capped at 6 hops,
// and a few expensive list requests leave the server able to answer others
// (more reader connections, identity lookups that never queue behind
// client queries, a statement time limit that ends them).
describe("H3 relation filters cannot block the readers", () => {
    const ctx = {};
    withServer(ctx);
    let ping;
    let user;
    before(async () => {
        await createGraph(ctx.server, ctx.su);
        await createPings(ctx.server, ctx.su);
        ping = (await call(ctx.server, "/api/collections/pings/records", { method: "POST", body: { n: 7 } })).body;
        user = await signIn(ctx.server, "h3-user@example.com");
    });

    const eight = "kids.kids.kids.kids.kids.kids.kids.kids.label ?= 'x'";
    for (const [what, query] of [
        ["an 8-hop filter", `filter=${encodeURIComponent(eight)}`],
        ["an 8-hop sort", "sort=parent.parent.parent.parent.parent.parent.parent.parent.label"],
    ]) {
        test(`${what} is refused with 400`, async () => {
            const r = await call(ctx.server, `/api/collections/nodes/records?perPage=1&skipTotal=1&${query}`, {
                signal: AbortSignal.timeout(15_000),
            }).catch((err) => ({ status: `no answer (${err.message})` }));
            assert.equal(r.status, 400, `${what}: HTTP ${r.status}; body ${preview(r.body)}`);
        });
    }

    test("a 6-hop path is accepted (control)", async () => {
        const r = await call(ctx.server, `/api/collections/nodes/records?perPage=1&filter=${encodeURIComponent("parent.parent.parent.parent.parent.parent.label != ''")}`);
        assertOK(r, "6-hop filter over single relations");
    });

    test("six heavy list requests in flight: an unrelated view and a signed-in request still answer", async () => {
        const stop = new AbortController();
        const cpuBefore = cpuSeconds(ctx.server.pid);
        const heavy = Array.from({ length: 6 }, () =>
            call(ctx.server, `/api/collections/nodes/records?perPage=1&skipTotal=1&filter=${encodeURIComponent(heavyFilter)}`, { signal: stop.signal })
                .then((r) => ({ status: r.status, body: r.body }), (err) => ({ status: "aborted", body: err.message })));
        try {
            // The heavy queries have started once the server burns CPU.
            for (const end = Date.now() + 10_000; Date.now() < end && cpuSeconds(ctx.server.pid) - cpuBefore < 1; ) {
                await new Promise((r) => setTimeout(r, 20));
            }
            // A request still unanswered after 5x the bound has failed it.
            const patience = () => AbortSignal.timeout(5 * LATENCY_BOUND_MS);
            const [view, viewMs] = await timed(() => call(ctx.server, `/api/collections/pings/records/${ping.id}`, { signal: patience() }).catch(() => null));
            assert.ok(viewMs < LATENCY_BOUND_MS, `the unrelated view took ${viewMs.toFixed(0)} ms (bound ${LATENCY_BOUND_MS})`);
            assertOK(view, "unrelated view");
            const [refresh, refreshMs] = await timed(() => call(ctx.server, "/api/collections/users/auth-refresh", {
                method: "POST", token: user.token, signal: patience(),
            }).catch(() => null));
            assert.ok(refreshMs < LATENCY_BOUND_MS, `the signed-in request took ${refreshMs.toFixed(0)} ms (bound ${LATENCY_BOUND_MS})`);
            assertOK(refresh, "signed-in request");

            // The heavy requests end by themselves (a statement time limit),
            // with an answer, not a 5xx.
            const timer = setTimeout(() => stop.abort(), HEAVY_END_MS);
            const ended = await Promise.all(heavy);
            clearTimeout(timer);
            for (const h of ended) {
                assert.ok(typeof h.status === "number", `a heavy request still ran after ${HEAVY_END_MS} ms: no query time limit`);
                assert.ok(h.status < 500, `a heavy request ended with HTTP ${h.status}; body ${preview(h.body)}`);
            }
        } finally {
            stop.abort();
            await Promise.all(heavy);
        }
    });
});

// H2 — three guests with heavy realtime filters must not delay or drop a
// fourth subscriber's events.
describe("H2 heavy realtime subscribers do not delay others", () => {
    const ctx = {};
    withServer(ctx);
    before(async () => {
        await createGraph(ctx.server, ctx.su);
        await createPings(ctx.server, ctx.su);
    });

    test("a fourth subscriber gets every event promptly", async () => {
        const heavy = [];
        const light = await openRealtime(ctx.server);
        try {
            for (let i = 0; i < 3; i++) {
                const rt = await openRealtime(ctx.server);
                heavy.push(rt);
                await rt.subscribe([subscription("nodes/*", { filter: heavyFilter })]);
            }
            await light.subscribe(["nodes/*", "pings/*"]);
            const nodes = (await call(ctx.server, "/api/collections/nodes/records?perPage=2", { token: ctx.su })).body.items;
            const writes = [];
            for (const [i, node] of nodes.entries()) {
                await call(ctx.server, `/api/collections/nodes/records/${node.id}`, { method: "PATCH", token: ctx.su, body: { label: `round ${i}` } });
                writes.push({ topic: "nodes/*", id: node.id, at: performance.now() });
                const p = await call(ctx.server, "/api/collections/pings/records", { method: "POST", body: { n: i } });
                writes.push({ topic: "pings/*", id: p.body.id, at: performance.now() });
            }
            for (const w of writes) {
                const ev = await light.waitFor(() => light.events.find((e) => e.event === w.topic && e.data?.record?.id === w.id),
                    `the ${w.topic} event of ${w.id}`, 60_000);
                const delay = ev.at - w.at;
                assert.ok(delay < LATENCY_BOUND_MS, `the ${w.topic} event of ${w.id} came ${delay.toFixed(0)} ms after its write (bound ${LATENCY_BOUND_MS})`);
            }
        } finally {
            await Promise.all([light, ...heavy].map((rt) => rt.close()));
        }
    });
});

// H4 — a 381 KB 7000x7000 16-bit PNG avatar decoded to ~600 MB per
// thumbnail; four at once took 2.35 GB. Generation is bounded in pixels
// and in concurrency, whatever is served instead.
describe("H4 thumbnails of a decompression bomb are bounded", () => {
    const ctx = {};
    withServer(ctx);

    test("four concurrent thumbnails of 7000x7000 16-bit PNG avatars", async () => {
        const png = await bombPNG(7000, 7000);
        const avatars = [];
        for (let i = 0; i < 4; i++) {
            const u = await signIn(ctx.server, `bomb${i}@example.com`);
            const fd = new FormData();
            fd.append("avatar", new Blob([png], { type: "image/png" }), "avatar.png");
            const r = await call(ctx.server, `/api/collections/users/records/${u.id}`, { method: "PATCH", token: u.token, body: fd });
            assertOK(r, "upload the avatar");
            avatars.push(`/api/files/users/${u.id}/${r.body.avatar}?thumb=100x100`);
        }
        const mem = watchMemory(ctx.server.pid);
        const answers = await Promise.all(avatars.map((path) => call(ctx.server, path, { signal: AbortSignal.timeout(120_000) })));
        const { growth } = mem.stop();
        for (const a of answers) assert.ok(a.status < 500, `thumb: HTTP ${a.status}`);
        assert.ok(growth < RSS_BOUND, `four thumbnails grew the server by ${mb(growth)} (bound ${mb(RSS_BOUND)})`);
    });
});

// M3 — a 31 MB JSON body cost ~1 GB of heap; a chunked 1 GiB body was read
// to the 32 MiB limit. JSON bodies have a limit far below multipart ones,
// answered with 413 without reading on.
describe("M3 JSON bodies are bounded", () => {
    const ctx = {};
    withServer(ctx);
    before(async () => {
        const r = await call(ctx.server, "/api/collections", {
            method: "POST", token: ctx.su,
            body: { name: "notes", type: "base", createRule: "", fields: [{ name: "title", type: "text" }, { name: "meta", type: "json" }] },
        });
        assertOK(r, "create notes");
    });

    test("a 31 MB JSON body gets 413 and bounded memory", async () => {
        // Ten million empty objects: each one a map when decoded naively.
        const items = Buffer.from("{},".repeat((31 * MB) / 3));
        const body = Buffer.concat([Buffer.from('{"title":"x","meta":['), items, Buffer.from("{}]}")]);
        const mem = watchMemory(ctx.server.pid);
        const r = await call(ctx.server, "/api/collections/notes/records", {
            method: "POST", body, headers: { "Content-Type": "application/json" },
        }).catch((err) => ({ status: `failed: ${err.cause?.code ?? err.message}` }));
        const { growth } = mem.stop();
        assert.equal(r.status, 413, `31 MB JSON: HTTP ${r.status}; body ${preview(r.body)}`);
        assert.ok(growth < RSS_BOUND, `the server grew by ${mb(growth)} (bound ${mb(RSS_BOUND)})`);
    });

    test("a chunked JSON body is cut off at the limit with 413", async () => {
        const mem = watchMemory(ctx.server.pid);
        const { status, sent } = await sendChunked(ctx.server, "/api/collections/notes/records", 1024 * MB);
        const { growth } = mem.stop();
        assert.equal(status, 413, `chunked body: ${status} after ${mb(sent)}`);
        assert.ok(sent < 16 * MB, `the server read on to ${mb(sent)} before refusing`);
        assert.ok(growth < 100 * MB, `the server grew by ${mb(growth)}`);
    });

    test("a deeply nested JSON body is refused quickly", async () => {
        const body = `{"title":"x","meta":${"[".repeat(100_000)}${"]".repeat(100_000)}}`;
        const [r, ms] = await timed(() => call(ctx.server, "/api/collections/notes/records", { method: "POST", body, headers: { "Content-Type": "application/json" } }));
        assertRefused(r, "100,000 nested arrays");
        assert.ok(ms < 5000, `refused after ${ms.toFixed(0)} ms`);
    });
});

// L3 — a body trickling in must not hold a connection forever. The
// server's body read timeout is set low through its flag; the flag is
// looked up in `serve -h` (the first of these names that exists).
const L3_FLAGS = ["read-timeout", "body-timeout", "body-read-timeout", "max-body-time", "request-timeout", "max-request-time"];
const L3_LIMIT_S = 2;
describe("L3 a trickling body is cut off", async () => {
    const flags = await serveFlags();
    const flag = L3_FLAGS.find((f) => flags.has(f));
    const ctx = {};
    if (flag) withServer(ctx, { args: [`--${flag}`, `${L3_LIMIT_S}s`] });

    test("one byte every 100 ms is cut off, an SSE stream lives on", { skip: flag ? false : `serve has no body read timeout flag (looked for --${L3_FLAGS.join(", --")})` }, async () => {
        const rt = await openRealtime(ctx.server);
        try {
            const { port } = new URL(ctx.server.url);
            const sock = connect(Number(port), "127.0.0.1");
            sock.on("error", () => {});
            sock.write(`POST /api/collections/users/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n`);
            const start = performance.now();
            let closed = false;
            sock.on("close", () => (closed = true));
            sock.on("data", () => {}); // a 408/400 answer, then the close
            const deadline = start + 10 * L3_LIMIT_S * 1000;
            while (!closed && performance.now() < deadline) {
                sock.write(" ");
                await new Promise((r) => setTimeout(r, 100));
            }
            sock.destroy();
            assert.ok(closed, `the trickling body held its connection for ${((performance.now() - start) / 1000).toFixed(1)} s (limit ${L3_LIMIT_S} s)`);
            // The SSE stream, open all along, still delivers.
            await rt.subscribe(["users/*"]);
        } finally {
            await rt.close();
        }
    });
});

// L5 — one address could be sent 10 mails a minute from rotating client
// addresses. Mails to one recipient are capped whatever the sender's
// address, and the answers stay alike so they reveal no account.
describe("L5 mails to one address are capped across client addresses", { skip: MAILPIT_MISSING }, () => {
    const ctx = {};
    // Loopback SMTP (mailpit) must be allowed when the outbound guard covers SMTP.
    withServer(ctx, { args: ["--outbound-allow", "127.0.0.1/32"] });
    let mailpit;
    before(async () => {
        mailpit = await startMailpit();
        const su = await ctx.server.superuser();
        await useMailpit(su, mailpit, { keepRecipientLimit: true });
        await trustForwardedFor(su);
    });
    after(() => mailpit?.stop());

    test("ten password-reset requests from ten addresses", async () => {
        const target = await signIn(ctx.server, "l5-target@example.com");
        const sentinel = await signIn(ctx.server, "l5-sentinel@example.com");
        const statuses = new Set();
        for (let i = 0; i < 10; i++) {
            const r = await call(ctx.server, "/api/collections/users/request-password-reset", { method: "POST", body: { email: target.email }, ip: `10.55.0.${i + 1}` });
            statuses.add(r.status);
        }
        const unknown = await call(ctx.server, "/api/collections/users/request-password-reset", { method: "POST", body: { email: "nobody-l5@example.com" }, ip: "10.55.1.1" });
        statuses.add(unknown.status);
        assert.deepEqual([...statuses], [204], "every request answers alike, capped or not, account or not");
        // A mail requested after them all: once it is there, so are theirs.
        await call(ctx.server, "/api/collections/users/request-password-reset", { method: "POST", body: { email: sentinel.email }, ip: "10.55.2.1" });
        await mailpit.waitFor(sentinel.email, "the sentinel's reset mail");
        const got = await mailpit.count(target.email);
        assert.ok(got >= 1, "the first reset mail is sent");
        assert.ok(got <= 3, `${got} reset mails reached one address from ten client addresses (want at most 3)`);
    });
});

/** cpuSeconds is the CPU time the process has used (utime + stime). */
function cpuSeconds(pid) {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * sendChunked streams a JSON body of up to `total` bytes with
 * Transfer-Encoding: chunked, generated as it goes, until the server
 * answers; it returns { status, sent }.
 */
function sendChunked(server, path, total) {
    return new Promise((resolve) => {
        const { hostname, port } = new URL(server.url);
        let sent = 0;
        let done = false;
        const finish = (status) => {
            if (done) return;
            done = true;
            req.destroy();
            resolve({ status, sent });
        };
        const req = request({ host: hostname, port, path, method: "POST", headers: { "Content-Type": "application/json", "Transfer-Encoding": "chunked" } }, (res) => {
            res.resume();
            finish(res.statusCode);
        });
        req.on("error", (err) => finish(`connection error ${err.code} without an answer`));
        const chunk = Buffer.from("[1,2,3,4,5,6,7],".repeat(4096));
        const pump = () => {
            if (done) return;
            if (sent === 0) {
                req.write('{"title":"x","meta":[');
            }
            while (!done && sent < total) {
                sent += chunk.length;
                if (!req.write(chunk)) {
                    req.once("drain", pump);
                    return;
                }
            }
            if (!done) req.end("[]]}");
        };
        pump();
    });
}
