// Realtime with the SDK's subscribe(): events arrive for what the
// subscriber's identity may see, and nothing of another user's private
// records leaks into a stream.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { EventSource } from "eventsource";
import { startWithOwners, waitFor } from "./fixtures.mjs";

// Node has no EventSource of its own; the SDK expects the browser's.
globalThis.EventSource = EventSource;

let server;
let su;
let alice; // { pb, user }
let bob;

before(async () => {
    ({ server, su, alice, bob } = await startWithOwners("diary", "rt"));
});

after(async () => {
    for (const c of [alice?.pb, bob?.pb, su]) c?.realtime.unsubscribe();
    await server?.stop();
});

/** collect subscribes pb to topic and returns the list its events go to. */
async function collect(pb, topic, options) {
    const got = [];
    await pb.collection("diary").subscribe(topic, (e) => got.push(e), options);
    return got;
}

test("subscribers see only what their rules let them see", async () => {
    const bobAll = await collect(bob.pb, "*");
    const aliceAll = await collect(alice.pb, "*");
    const aliceFiltered = await collect(alice.pb, "*", { filter: "public = true", fields: "id,text" });

    const secret = await alice.pb.collection("diary").create({ text: "dear diary", public: false, secret: "s3", owner: alice.user.id });
    const open = await alice.pb.collection("diary").create({ text: "hello world", public: true, secret: "s4", owner: alice.user.id });
    await alice.pb.collection("diary").update(open.id, { text: "hello again" });
    await alice.pb.collection("diary").delete(secret.id);

    await waitFor(() => aliceAll.length === 4, "alice's four events");
    assert.deepEqual(aliceAll.map((e) => `${e.action} ${e.record.text}`),
        ["create dear diary", "create hello world", "update hello again", "delete dear diary"]);
    assert.ok(aliceAll.every((e) => !("secret" in e.record)), "hidden fields stay hidden in events");

    await waitFor(() => bobAll.length === 2, "bob's two events");
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(bobAll.map((e) => `${e.action} ${e.record.id}`), [`create ${open.id}`, `update ${open.id}`],
        "bob sees the public record only, never alice's private one");

    await waitFor(() => aliceFiltered.length === 2, "filtered events");
    assert.deepEqual(Object.keys(aliceFiltered[0].record).sort(), ["id", "text"]);
});

test("a single-record subscription follows that record only", async () => {
    const mine = await alice.pb.collection("diary").create({ text: "watched", public: false, owner: alice.user.id });
    const other = await alice.pb.collection("diary").create({ text: "not watched", public: false, owner: alice.user.id });
    const got = await collect(alice.pb, mine.id);
    const bobGot = await collect(bob.pb, mine.id);
    await alice.pb.collection("diary").update(other.id, { text: "still not watched" });
    await alice.pb.collection("diary").update(mine.id, { text: "watched and changed" });
    await waitFor(() => got.length === 1, "the watched record's update");
    assert.equal(got[0].record.text, "watched and changed");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(bobGot.length, 0, "bob may not view alice's private record, so he gets no events for it");
});
