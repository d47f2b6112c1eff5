// Helpers of the security regression suite (e2e/security/*.test.mjs):
// plain HTTP calls that keep status and size, client addresses through
// the trusted proxy header, the server's memory read from /proc, and a
// realtime (SSE) client that records each message's size.
//
// The suite asserts the safe outcome of each attack of issue 13 (a 4xx
// and the data unchanged, bounded memory, another client answered), not
// the wording of the messages, so each fix may phrase its errors freely.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { createDeflate, crc32 } from "node:zlib";

export const MB = 1 << 20;

/**
 * call sends one request and returns { status, body, size, ms }: body is
 * the parsed JSON when the answer is JSON, else its text; size is the
 * number of bytes of the answer. Options: method, body (an object is sent
 * as JSON; a string, Buffer, FormData or stream as it is), token, headers,
 * ip (sent as X-Forwarded-For, see trustForwardedFor), signal, maxBytes
 * (stop reading a larger answer: body is then null and cut is true).
 */
export async function call(server, path, { method = "GET", body, token, headers = {}, ip, signal, maxBytes = Infinity } = {}) {
    const h = { ...headers };
    if (token) h.Authorization = token;
    if (ip) h["X-Forwarded-For"] = ip;
    let payload = body;
    if (body !== undefined && body !== null && typeof body === "object" && !(body instanceof FormData) &&
        !Buffer.isBuffer(body) && typeof body.getReader !== "function") {
        payload = JSON.stringify(body);
        h["Content-Type"] ??= "application/json";
    }
    const init = { method, headers: h, body: payload, signal };
    if (payload && typeof payload.getReader === "function") init.duplex = "half";
    const start = performance.now();
    const res = await fetch(server.url + path, init);
    const chunks = [];
    let size = 0;
    let cut = false;
    for await (const chunk of res.body ?? []) {
        size += chunk.length;
        if (size > maxBytes) {
            cut = true;
            await res.body.cancel().catch(() => {});
            break;
        }
        chunks.push(chunk);
    }
    const ms = performance.now() - start;
    if (cut) return { status: res.status, body: null, size, ms, cut };
    const text = Buffer.concat(chunks).toString("utf8");
    let parsed = text;
    if ((res.headers.get("content-type") || "").includes("json")) {
        try {
            parsed = JSON.parse(text);
        } catch {
            // not JSON after all: keep the text
        }
    }
    return { status: res.status, body: parsed, size, ms, cut };
}

/** assertRefused checks that an attack got a 4xx answer (a clear refusal, not a crash). */
export function assertRefused(res, what) {
    assert.ok(res.status >= 400 && res.status < 500,
        `${what}: got HTTP ${res.status}, want a 4xx refusal; body ${preview(res.body)}`);
}

/** assertOK checks a 2xx answer. */
export function assertOK(res, what) {
    assert.ok(res.status >= 200 && res.status < 300, `${what}: got HTTP ${res.status}; body ${preview(res.body)}`);
}

/** preview shortens a body for a failure message. */
export function preview(body) {
    const s = typeof body === "string" ? body : JSON.stringify(body);
    return s && s.length > 300 ? `${s.slice(0, 300)}…` : s;
}

/**
 * trustForwardedFor makes the server take the client address from
 * X-Forwarded-For (its trustedProxy setting), so one test can act from
 * many addresses with the ip option of call.
 */
export async function trustForwardedFor(su) {
    await su.settings.update({ trustedProxy: { headers: ["X-Forwarded-For"], useLeftmostIP: true } });
}

/** memory returns the server's resident set (VmRSS) and its peak (VmHWM), in bytes. */
export function memory(pid) {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kB = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kB("VmRSS"), hwm: kB("VmHWM") };
}

/**
 * watchMemory samples the server's RSS while an attack runs (a timer, not
 * a sleep: the attack goes on meanwhile); stop() returns { before, peak,
 * growth } in bytes, growth being the largest rise over the RSS at the
 * start, from the samples or the kernel's peak, whichever is larger.
 */
export function watchMemory(pid) {
    const start = memory(pid);
    let peak = start.rss;
    const sample = () => {
        try {
            peak = Math.max(peak, memory(pid).rss);
        } catch {
            // the process is gone: the caller's assertions will say so
        }
    };
    const timer = setInterval(sample, 20);
    timer.unref(); // a test that fails before stop() must not keep the process alive
    return {
        stop() {
            clearInterval(timer);
            sample();
            let hwm = start.hwm;
            try {
                hwm = memory(pid).hwm;
            } catch {
                // gone
            }
            const growth = Math.max(peak - start.rss, hwm > start.hwm ? hwm - start.rss : 0);
            return { before: start.rss, peak: Math.max(peak, hwm), growth };
        },
    };
}

/** mb formats bytes for a message. */
export const mb = (n) => `${(n / MB).toFixed(1)} MB`;

/**
 * timed runs fn and returns [its result, milliseconds taken].
 */
export async function timed(fn) {
    const start = performance.now();
    const out = await fn();
    return [out, performance.now() - start];
}

/**
 * listenTCP opens a TCP listener on a free loopback port that counts the
 * connections made to it (it stands for an internal service the server
 * must not be made to reach); it returns { port, connections(), close() }.
 */
export async function listenTCP() {
    let count = 0;
    const sockets = new Set();
    const srv = createServer((sock) => {
        count++;
        sockets.add(sock);
        sock.on("close", () => sockets.delete(sock));
        sock.on("error", () => {});
        // Counted: hang up at once, so the client fails fast.
        sock.destroy();
    });
    await new Promise((ok) => srv.listen(0, "127.0.0.1", ok));
    return {
        port: srv.address().port,
        connections: () => count,
        close: () => {
            for (const s of sockets) s.destroy();
            return new Promise((ok) => srv.close(ok));
        },
    };
}

/**
 * openRealtime opens GET /api/realtime with fetch and parses its events;
 * it returns { clientId, events, subscribe(subscriptions), waitFor(pred,
 * what, ms), close() }. Each event is { event, data, size } with data
 * parsed and size the bytes of its data line.
 */
export async function openRealtime(server, token) {
    const ac = new AbortController();
    const headers = token ? { Authorization: token } : {};
    const res = await fetch(`${server.url}/api/realtime`, { headers, signal: ac.signal });
    assert.equal(res.status, 200, "GET /api/realtime");
    const events = [];
    let clientId = null;
    const reader = res.body.getReader();
    const pump = (async () => {
        let buf = Buffer.alloc(0);
        for (;;) {
            let r;
            try {
                r = await reader.read();
            } catch {
                return;
            }
            if (r.done) return;
            buf = Buffer.concat([buf, r.value]);
            for (let end; (end = buf.indexOf("\n\n")) >= 0; ) {
                const block = buf.subarray(0, end).toString("utf8");
                buf = buf.subarray(end + 2);
                let event = "message";
                let data = "";
                for (const line of block.split("\n")) {
                    if (line.startsWith("event:")) event = line.slice(6).trim();
                    else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
                }
                const size = Buffer.byteLength(data);
                let parsed = data;
                try {
                    parsed = JSON.parse(data);
                } catch {
                    // keep the text
                }
                if (event === "PB_CONNECT") clientId = parsed.clientId;
                events.push({ event, data: parsed, size, at: performance.now() });
            }
        }
    })();
    const self = {
        events,
        get clientId() {
            return clientId;
        },
        async subscribe(subscriptions) {
            await self.waitFor(() => clientId, "PB_CONNECT");
            const r = await call(server, "/api/realtime", { method: "POST", token, body: { clientId, subscriptions } });
            assertOK(r, `subscribe ${subscriptions}`);
        },
        async waitFor(pred, what, ms = 15_000) {
            for (const end = Date.now() + ms; Date.now() < end; ) {
                const v = pred();
                if (v) return v;
                await new Promise((r) => setTimeout(r, 10));
            }
            assert.fail(`realtime: timed out after ${ms} ms waiting for ${what}`);
        },
        async close() {
            ac.abort();
            await pump;
        },
    };
    return self;
}

/** subscription builds a topic with options as the SDK sends them. */
export function subscription(topic, query) {
    return `${topic}?options=${encodeURIComponent(JSON.stringify({ query }))}`;
}

/**
 * signIn signs up `email` in users (with name) and signs in; it returns
 * { id, token, email, password }.
 */
export async function signIn(server, email, password = "Passw0rd-long-enough", extra = {}) {
    const created = await call(server, "/api/collections/users/records", {
        method: "POST",
        body: { email, password, passwordConfirm: password, ...extra },
    });
    assertOK(created, `sign up ${email}`);
    const auth = await call(server, "/api/collections/users/auth-with-password", {
        method: "POST",
        body: { identity: email, password },
    });
    assertOK(auth, `sign in ${email}`);
    return { id: auth.body.record.id, token: auth.body.token, email, password };
}

/** superuserToken returns a token of the CLI-made superuser. */
export async function superuserToken(server) {
    const su = await server.superuser();
    return su.authStore.token;
}

/**
 * createGraph creates the public collection `nodes` (label, a single
 * relation `parent` and a multi relation `kids` to itself) with n records
 * whose kids are all n records and whose parent is the next one: every
 * expand or relation path multiplies by n at each hop. It returns the ids.
 */
export async function createGraph(server, token, n = 30) {
    let r = await call(server, "/api/collections", {
        method: "POST",
        token,
        body: { name: "nodes", type: "base", listRule: "", viewRule: "", fields: [{ name: "label", type: "text" }] },
    });
    assertOK(r, "create nodes");
    const id = r.body.id;
    r = await call(server, `/api/collections/${id}`, {
        method: "PATCH",
        token,
        body: {
            fields: [
                ...r.body.fields,
                { name: "parent", type: "relation", collectionId: id, maxSelect: 1 },
                { name: "kids", type: "relation", collectionId: id, maxSelect: n },
            ],
        },
    });
    assertOK(r, "add the relations of nodes");
    const ids = [];
    for (let i = 0; i < n; i++) {
        r = await call(server, "/api/collections/nodes/records", { method: "POST", token, body: { label: `n${i}` } });
        assertOK(r, "create a node");
        ids.push(r.body.id);
    }
    for (let i = 0; i < n; i++) {
        r = await call(server, `/api/collections/nodes/records/${ids[i]}`, {
            method: "PATCH",
            token,
            body: { kids: ids, parent: ids[(i + 1) % n] },
        });
        assertOK(r, "link a node");
    }
    return ids;
}

/**
 * bombPNG returns a PNG of width x height 16-bit RGBA pixels, all zero: a
 * few hundred KB that decode to width*height*8 bytes (7000 x 7000: 392
 * MB). It is deflated row by row, so the test never holds the raw image.
 */
export async function bombPNG(width = 7000, height = 7000) {
    const row = Buffer.alloc(1 + width * 8); // filter byte 0, then the pixels
    const deflate = createDeflate({ level: 9 });
    const parts = [];
    deflate.on("data", (b) => parts.push(b));
    const done = new Promise((ok, fail) => {
        deflate.on("end", ok);
        deflate.on("error", fail);
    });
    for (let y = 0; y < height; y++) {
        if (!deflate.write(row)) await new Promise((ok) => deflate.once("drain", ok));
    }
    deflate.end();
    await done;
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 16; // bit depth
    ihdr[9] = 6; // RGBA
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        pngChunk("IHDR", ihdr),
        pngChunk("IDAT", Buffer.concat(parts)),
        pngChunk("IEND", Buffer.alloc(0)),
    ]);
}

function pngChunk(type, data) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
}
