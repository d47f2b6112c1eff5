// Transactional batches through pb.createBatch(): everything in one
// send() is written together, or nothing is.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startServer } from "./server.mjs";
import { createBlogSchema, RECORD_ID, rejectsWith, signUp, titles } from "./fixtures.mjs";

let server;
let pb;

before(async () => {
    server = await startServer();
    const su = await server.superuser();
    await createBlogSchema(su);
    // PocketBase ships with batch requests off; an app turns them on here.
    const settings = await su.settings.update({ batch: { enabled: true, maxRequests: 20, timeout: 5 } });
    assert.equal(settings.batch.enabled, true);
    assert.equal(settings.batch.maxRequests, 20);
    ({ pb } = await signUp(server, "batcher"));
});
after(async () => {
    await server?.stop();
});

/** snapshot returns title/views of every post, sorted, for before/after comparisons. */
async function snapshot() {
    const all = await pb.collection("posts").getFullList({ sort: "title,views,id" });
    return all.map((p) => ({ id: p.id, title: p.title, views: p.views, tags: p.tags }));
}

test("creates, updates and deletes in one send()", async () => {
    const keep = await pb.collection("posts").create({ title: "keep", views: 1 });
    const drop = await pb.collection("posts").create({ title: "drop", views: 2 });

    const batch = pb.createBatch();
    batch.collection("posts").create({ title: "new-1", views: 10, tags: ["go"] });
    batch.collection("posts").create({ title: "new-2", views: 20 }, { fields: "id,title" });
    batch.collection("posts").update(keep.id, { title: "kept", "views+": 4 });
    batch.collection("posts").delete(drop.id);
    const res = await batch.send();

    assert.equal(res.length, 4);
    assert.deepEqual(res.map((r) => r.status), [200, 200, 200, 204]);
    assert.match(res[0].body.id, RECORD_ID);
    assert.equal(res[0].body.title, "new-1");
    assert.equal(res[0].body.views, 10);
    assert.deepEqual(res[0].body.tags, ["go"]);
    assert.equal(res[0].body.collectionName, "posts");
    assert.deepEqual(Object.keys(res[1].body).sort(), ["id", "title"], "fields applies per request");
    assert.equal(res[2].body.id, keep.id);
    assert.equal(res[2].body.title, "kept");
    assert.equal(res[2].body.views, 5);

    assert.equal((await pb.collection("posts").getOne(res[0].body.id)).title, "new-1");
    assert.equal((await pb.collection("posts").getOne(res[1].body.id)).views, 20);
    assert.equal((await pb.collection("posts").getOne(keep.id)).title, "kept");
    await rejectsWith(pb.collection("posts").getOne(drop.id), 404, "deleted in batch");
});

test("later requests see earlier ones in the same batch", async () => {
    const batch = pb.createBatch();
    batch.collection("posts").create({ id: "batchchained001", title: "chained", views: 1 });
    batch.collection("posts").update("batchchained001", { "views+": 1 });
    batch.collection("posts").update("batchchained001", { "views+": 1 });
    const res = await batch.send();
    assert.deepEqual(res.map((r) => r.body.views), [1, 2, 3]);
    assert.equal((await pb.collection("posts").getOne("batchchained001")).views, 3);
});

test("upsert creates a missing record and updates an existing one", async () => {
    const existing = await pb.collection("posts").create({ title: "upsert-me", views: 1 });
    const batch = pb.createBatch();
    batch.collection("posts").upsert({ id: existing.id, title: "upserted", views: 2 });
    batch.collection("posts").upsert({ id: "upsertnew000001", title: "upsert-new", views: 3 });
    const res = await batch.send();
    assert.deepEqual(res.map((r) => r.status), [200, 200]);
    assert.equal((await pb.collection("posts").getOne(existing.id)).title, "upserted");
    assert.equal((await pb.collection("posts").getOne("upsertnew000001")).title, "upsert-new");
});

test("a failing request rolls back the whole batch and is named in the error", async () => {
    const victim = await pb.collection("posts").create({ title: "victim", views: 7, tags: ["db"] });
    const survivor = await pb.collection("posts").create({ title: "survivor", views: 8 });
    const before = await snapshot();

    const batch = pb.createBatch();
    batch.collection("posts").create({ title: "ghost", views: 99 });
    batch.collection("posts").update(victim.id, { title: "overwritten", "views+": 100, "tags+": "go" });
    batch.collection("posts").delete(survivor.id);
    batch.collection("posts").create({ views: 1 }); // title is required
    batch.collection("posts").create({ title: "never reached" });
    const err = await rejectsWith(batch.send(), 400, "batch with an invalid create");

    const failed = err.response.data.requests;
    assert.ok(failed && typeof failed === "object", `no data.requests in ${JSON.stringify(err.response)}`);
    assert.deepEqual(Object.keys(failed), ["3"], `the error names request 3 only: ${JSON.stringify(failed)}`);
    assert.equal(failed["3"].response?.status, 400, JSON.stringify(failed["3"]));
    assert.equal(failed["3"].response?.data?.title?.code, "validation_required", JSON.stringify(failed["3"]));

    assert.deepEqual(await snapshot(), before, "the failed batch changed data");
    const ghosts = await pb.collection("posts").getFullList({ filter: "title = 'ghost' || title = 'never reached'" });
    assert.deepEqual(titles(ghosts), []);
    assert.equal((await pb.collection("posts").getOne(victim.id)).title, "victim");
    assert.equal((await pb.collection("posts").getOne(survivor.id)).title, "survivor");
});

test("a unique violation inside a batch rolls back the earlier creates", async () => {
    const before = await snapshot();
    const batch = pb.createBatch();
    batch.collection("posts").create({ title: "first slug", slug: "batch-slug" });
    batch.collection("posts").create({ title: "second slug", slug: "batch-slug" });
    const err = await rejectsWith(batch.send(), 400, "duplicate slug in batch");
    assert.equal(err.response.data.requests?.["1"]?.response?.data?.slug?.code, "validation_not_unique", JSON.stringify(err.response));
    assert.deepEqual(await snapshot(), before);
});

test("access rules apply inside a batch", async () => {
    const target = await pb.collection("posts").create({ title: "guarded" });
    const guest = server.client();
    const before = await snapshot();
    const batch = guest.createBatch();
    batch.collection("posts").create({ title: "guest-made" });
    batch.collection("posts").delete(target.id);
    await rejectsWith(batch.send(), 400, "guest batch");
    assert.deepEqual(await snapshot(), before);
});

test("a batch over the configured limit is refused", async () => {
    const before = await snapshot();
    const batch = pb.createBatch();
    for (let i = 0; i < 21; i++) {
        batch.collection("posts").create({ title: `over-${i}` });
    }
    await rejectsWith(batch.send(), 400, "21 requests with maxRequests 20");
    assert.deepEqual(await snapshot(), before);
});
