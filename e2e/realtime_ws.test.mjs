// Realtime over WebSocket (docs/realtime-ws.md) with an independent,
// strict client: the `ws` npm package, which checks every frame it gets
// (no mask from a server, UTF-8 text, valid close codes). The same rules
// as the SSE API decide who gets what.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket from "ws";
import { startWithOwners, waitFor } from "./fixtures.mjs";

let server;
let su;
let alice; // { pb, user }
let bob;

before(async () => {
    ({ server, su, alice, bob } = await startWithOwners("notes", "ws"));
});

after(async () => {
    await server?.stop();
});

/**
 * connect opens the WebSocket endpoint and resolves once the server said
 * "connected". The client keeps every message in `messages` and its close
 * code in `closed` (a promise).
 */
async function connect() {
    const url = server.url.replace(/^http/, "ws") + "/api/realtime/ws";
    const sock = new WebSocket(url);
    const c = { sock, messages: [] };
    c.closed = new Promise((ok) => sock.on("close", (code) => ok(code)));
    sock.on("message", (data, isBinary) => {
        assert.equal(isBinary, false, "every server message is text");
        c.messages.push(JSON.parse(data.toString("utf8")));
    });
    await new Promise((ok, fail) => {
        sock.once("open", ok);
        sock.once("error", fail);
    });
    await waitFor(() => c.messages.length > 0, "the connected message");
    assert.equal(c.messages[0].type, "connected");
    assert.match(c.messages[0].clientId, /\S/);
    c.messages.shift();
    return c;
}

/** subscribe sends a subscribe message and waits for its answer. */
async function subscribe(c, topics, token) {
    const before = c.messages.length;
    c.sock.send(JSON.stringify({ type: "subscribe", topics, ...(token ? { token } : {}) }));
    await waitFor(() => c.messages.length > before, "the answer to subscribe");
    const answer = c.messages.splice(before, 1)[0];
    assert.equal(answer.type, "subscribed", JSON.stringify(answer));
    assert.deepEqual(answer.topics, topics);
}

/** events returns the event messages c got, as "action text". */
function events(c) {
    return c.messages.filter((m) => m.type === "event").map((m) => `${m.action} ${m.record.text}`);
}

test("subscribers get what their identity may see, as text frames", async () => {
    const a = await connect();
    await subscribe(a, ["notes/*"], alice.pb.authStore.token);
    const b = await connect();
    await subscribe(b, ["notes/*"], bob.pb.authStore.token);
    const guest = await connect();
    const opts = encodeURIComponent(JSON.stringify({ query: { fields: "id,text" } }));
    await subscribe(guest, [`notes/*?options=${opts}`]);

    const notes = alice.pb.collection("notes");
    const secret = await notes.create({ text: "private", public: false, secret: "s1", owner: alice.user.id });
    const open = await notes.create({ text: "public", public: true, secret: "s2", owner: alice.user.id });
    await notes.update(open.id, { text: "public, edited" });
    await notes.delete(secret.id);

    await waitFor(() => events(a).length === 4, "alice's four events");
    assert.deepEqual(events(a), ["create private", "create public", "update public, edited", "delete private"]);
    assert.ok(a.messages.every((m) => !("secret" in m.record)), "hidden fields stay hidden");
    assert.equal(a.messages[0].topic, "notes/*");

    await waitFor(() => events(b).length === 2 && events(guest).length === 2, "the public record's two events");
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(events(b), ["create public", "update public, edited"], "bob never gets alice's private note");
    assert.deepEqual(events(guest), ["create public", "update public, edited"]);
    assert.deepEqual(Object.keys(guest.messages[0].record).sort(), ["id", "text"]);

    for (const c of [a, b, guest]) c.sock.close(1000);
    for (const c of [a, b, guest]) assert.equal(await c.closed, 1000);
});

test("a burst of large events arrives whole, each once, with ping and pong on the way", async () => {
    const c = await connect();
    await subscribe(c, ["notes/*"]);
    c.sock.send(JSON.stringify({ type: "ping" }));
    const notes = alice.pb.collection("notes");
    const n = 60;
    await Promise.all(
        Array.from({ length: n }, (_, i) => notes.create({ text: `burst ${i} ${"x".repeat(2000)}`, public: true, owner: alice.user.id })),
    );
    await waitFor(() => events(c).length === n, `${n} events`);
    assert.ok(c.messages.some((m) => m.type === "pong"), "the ping was answered");
    const got = events(c).map((e) => Number(e.split(" ")[2]));
    assert.deepEqual([...got].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i), "each event once");
    c.sock.close(1000);
    assert.equal(await c.closed, 1000);
});

test("a refused message gets an error and the connection stays; a binary one closes it", async () => {
    const c = await connect();
    c.sock.send(JSON.stringify({ type: "subscribe", topics: ["notes/*"], token: "not-a-token" }));
    await waitFor(() => c.messages.length > 0, "the error");
    assert.equal(c.messages[0].type, "error");
    assert.equal(c.messages[0].status, 401);
    await subscribe(c, ["notes/*"]); // still open
    c.sock.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.equal(await c.closed, 1007);
});
