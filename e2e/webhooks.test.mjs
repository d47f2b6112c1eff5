// Webhooks checked by a receiver that knows nothing of underhood: every
// request is verified with the Standard Webhooks reference library
// (`standardwebhooks` on npm), through a secret rotation, a replay and a
// retry after a failed attempt.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { Webhook } from "standardwebhooks";
import { waitFor } from "./fixtures.mjs";
import { startServer } from "./server.mjs";

// The receiver listens on loopback, which the server refuses to deliver
// to unless it is allowed (the setting a user sets for a local receiver).
process.env.UH_OUTBOUND_ALLOW = "127.0.0.1/32";

let server;
let su;
let receiver;
/** The receiver's origin; each test's webhook posts to a path of its own. */
let receiverURL;
/** Every request the receiver got: { path, headers, body (raw string) }. */
const received = [];
/** Record ids whose first delivery attempt the receiver answers 503. */
const failOnce = new Set();

before(async () => {
    receiver = createServer((req, res) => {
        const chunks = [];
        req.on("data", (c) => chunks.push(c));
        req.on("end", () => {
            const body = Buffer.concat(chunks).toString("utf8");
            received.push({ path: req.url, headers: req.headers, body });
            const id = JSON.parse(body).record?.id;
            if (failOnce.delete(id)) {
                res.writeHead(503).end("try later");
                return;
            }
            res.writeHead(200).end("ok");
        });
    });
    await new Promise((ok) => receiver.listen(0, "127.0.0.1", ok));
    receiverURL = `http://127.0.0.1:${receiver.address().port}`;

    server = await startServer();
    su = await server.superuser();
    await su.collections.create({
        name: "orders",
        type: "base",
        fields: [
            { name: "item", type: "text" },
            { name: "note", type: "text", hidden: true },
        ],
    });
});

after(async () => {
    await server?.stop();
    await new Promise((ok) => (receiver ? receiver.close(ok) : ok()));
});

/**
 * deliveriesOf returns the requests about one record that the receiver got
 * at path (each test's webhook has its own), in the order of the events:
 * deliveries of different events may arrive in any order, and `position`
 * orders the events.
 */
function deliveriesOf(recordId, path) {
    const about = received.filter((r) => r.path === path && JSON.parse(r.body).record?.id === recordId);
    return about.sort((a, b) => JSON.parse(a.body).position - JSON.parse(b.body).position);
}

/** verify checks a request with the reference library and returns its event. */
function verify(secret, req) {
    return new Webhook(secret).verify(req.body, {
        "webhook-id": req.headers["webhook-id"],
        "webhook-timestamp": req.headers["webhook-timestamp"],
        "webhook-signature": req.headers["webhook-signature"],
    });
}

test("deliveries verify with the Standard Webhooks library, through a secret rotation", async () => {
    const hook = await su.send("/api/webhooks", {
        method: "POST",
        body: { name: "orders", url: receiverURL + "/orders", collections: ["orders"] },
    });
    assert.equal(hook.secrets.length, 1);
    const [first] = hook.secrets;
    assert.match(first, /^whsec_/);

    const orders = su.collection("orders");
    const rec = await orders.create({ item: "tea", note: "for the back office" });
    await orders.update(rec.id, { item: "green tea" });
    await orders.delete(rec.id);
    await waitFor(() => deliveriesOf(rec.id, "/orders").length >= 3, "three deliveries");

    const events = deliveriesOf(rec.id, "/orders").map((req) => verify(first, req));
    assert.deepEqual(events.map((e) => e.action), ["create", "update", "delete"]);
    assert.deepEqual(events.map((e) => e.collection), ["orders", "orders", "orders"]);
    assert.equal(events[1].record.item, "green tea");
    assert.equal(events[0].record.note, "for the back office", "the payload is the record as a superuser sees it");
    // Each event's webhook-id is its own event id; sequences count up.
    const ids = deliveriesOf(rec.id, "/orders").map((r) => r.headers["webhook-id"]);
    assert.deepEqual(ids, events.map((e) => e.id));
    assert.equal(new Set(ids).size, 3);
    assert.deepEqual(events.map((e) => e.sequence - events[0].sequence), [0, 1, 2]);

    // A wrong secret or a changed body fails the library's check.
    assert.throws(() => verify("whsec_" + Buffer.alloc(32, 7).toString("base64"), deliveriesOf(rec.id, "/orders")[0]));
    const tampered = { ...deliveriesOf(rec.id, "/orders")[0] };
    tampered.body = tampered.body.replace("tea", "TEA");
    assert.throws(() => verify(first, tampered));

    // After a rotation both secrets verify, so receivers can switch over.
    const rotated = await su.send(`/api/webhooks/${hook.id}/rotate-secret`, { method: "POST" });
    assert.equal(rotated.secrets.length, 2);
    const [second] = rotated.secrets;
    assert.notEqual(second, first);
    assert.ok(rotated.secrets.includes(first));
    const next = await orders.create({ item: "coffee" });
    await waitFor(() => deliveriesOf(next.id, "/orders").length >= 1, "the delivery after the rotation");
    const [req] = deliveriesOf(next.id, "/orders");
    assert.equal(verify(second, req).record.item, "coffee");
    assert.equal(verify(first, req).record.item, "coffee");

    // A replay sends the same event again, under the same webhook-id.
    const replay = await su.send(`/api/webhooks/${hook.id}/replay`, {
        method: "POST",
        body: { eventId: req.headers["webhook-id"] },
    });
    assert.equal(replay.replayed, 1);
    await waitFor(() => deliveriesOf(next.id, "/orders").length >= 2, "the replay");
    const again = deliveriesOf(next.id, "/orders")[1];
    assert.equal(again.headers["webhook-id"], req.headers["webhook-id"]);
    assert.deepEqual(verify(second, again), verify(second, req));

    await su.send(`/api/webhooks/${hook.id}`, { method: "DELETE" });
});

test("a failed attempt is retried, and the log shows both", async () => {
    const hook = await su.send("/api/webhooks", {
        method: "POST",
        body: { name: "retry", url: receiverURL + "/retry", collections: ["orders"], actions: ["create"] },
    });
    const id = "retry0000000001"; // the id the receiver fails once
    failOnce.add(id);
    await su.collection("orders").create({ id, item: "late" });
    // The first retry comes about 5 s (±25%) after the failure.
    await waitFor(() => deliveriesOf(id, "/retry").length >= 2, "the retry", 20_000);
    const [firstTry, secondTry] = deliveriesOf(id, "/retry");
    assert.equal(firstTry.headers["webhook-id"], secondTry.headers["webhook-id"]);
    assert.equal(verify(hook.secrets[0], secondTry).record.item, "late");

    const attempts = await su.send(`/api/webhooks/${hook.id}/attempts`, {
        query: { eventId: secondTry.headers["webhook-id"] },
    });
    const items = attempts.items ?? attempts;
    assert.deepEqual(
        items.map((a) => a.status).sort(),
        [200, 503],
        `attempts: ${JSON.stringify(items)}`,
    );
    await su.send(`/api/webhooks/${hook.id}`, { method: "DELETE" });
});
