// What clients get back when a request is wrong: the status and the
// {status, message, data} body that the SDK turns into ClientResponseError.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startServer } from "./server.mjs";
import { createBlogSchema, rejectsWith, signUp } from "./fixtures.mjs";

let server;
let pb;

before(async () => {
    server = await startServer();
    await createBlogSchema(await server.superuser());
    ({ pb } = await signUp(server, "erring"));
});
after(async () => {
    await server?.stop();
});

test("a missing required field is validation_required on that field", async () => {
    const err = await rejectsWith(pb.collection("posts").create({ views: 3 }), 400, "create without title");
    assert.equal(err.response.data.title.code, "validation_required");
    assert.equal(typeof err.response.data.title.message, "string");
    assert.ok(err.response.data.title.message.length > 0);
    assert.deepEqual(Object.keys(err.response.data), ["title"], "only the field at fault is named");
    assert.equal((await pb.collection("posts").getList(1, 1)).totalItems, 0, "nothing was written");

    // Blanking it on update is the same error.
    const rec = await pb.collection("posts").create({ title: "has title" });
    const upd = await rejectsWith(pb.collection("posts").update(rec.id, { title: "" }), 400, "blank title on update");
    assert.equal(upd.response.data.title.code, "validation_required");
    assert.equal((await pb.collection("posts").getOne(rec.id)).title, "has title");
});

test("several invalid fields are reported together", async () => {
    const err = await rejectsWith(pb.collection("posts").create({
        title: "x".repeat(201), tags: ["nope"], author: "doesnotexist123",
    }), 400, "invalid fields");
    assert.deepEqual(Object.keys(err.response.data).sort(), ["author", "tags", "title"], JSON.stringify(err.response.data));
    assert.equal(err.response.data.title.code, "validation_max_text_constraint");
    assert.equal(err.response.data.author.code, "validation_missing_rel_records");
    assert.match(err.response.data.tags.code, /^validation_/);
});

test("a relation to a record that does not exist is refused", async () => {
    const err = await rejectsWith(pb.collection("posts").create({ title: "orphan", coauthors: ["doesnotexist123"] }), 400, "missing relation");
    assert.equal(err.response.data.coauthors?.code, "validation_missing_rel_records", JSON.stringify(err.response));
    assert.deepEqual(await pb.collection("posts").getFullList({ filter: "title = 'orphan'" }), []);
});

test("a unique index violation is validation_not_unique on the field", async () => {
    await pb.collection("posts").create({ title: "first", slug: "taken" });
    const err = await rejectsWith(pb.collection("posts").create({ title: "second", slug: "taken" }), 400, "duplicate slug");
    assert.equal(err.response.data.slug?.code, "validation_not_unique", JSON.stringify(err.response));
    assert.equal((await pb.collection("posts").getFullList({ filter: "slug = 'taken'" })).length, 1);

    const other = await pb.collection("posts").create({ title: "third", slug: "free" });
    const upd = await rejectsWith(pb.collection("posts").update(other.id, { slug: "taken" }), 400, "duplicate slug on update");
    assert.equal(upd.response.data.slug?.code, "validation_not_unique");
    assert.equal((await pb.collection("posts").getOne(other.id)).slug, "free");
});

test("an unknown collection is a 404 with empty data", async () => {
    for (const [what, call] of [
        ["list", () => pb.collection("nope").getList()],
        ["view", () => pb.collection("nope").getOne("abcdefghijklmno")],
        ["create", () => pb.collection("nope").create({ title: "x" })],
        ["update", () => pb.collection("nope").update("abcdefghijklmno", { title: "x" })],
        ["delete", () => pb.collection("nope").delete("abcdefghijklmno")],
    ]) {
        const err = await rejectsWith(call(), 404, `${what} in unknown collection`);
        assert.deepEqual(err.response.data, {}, what);
    }
});

test("an unknown record id is a 404", async () => {
    const err = await rejectsWith(pb.collection("posts").getOne("abcdefghijklmno"), 404, "unknown id");
    assert.deepEqual(err.response.data, {});
    await rejectsWith(pb.collection("posts").update("abcdefghijklmno", { title: "x" }), 404, "update unknown id");
    await rejectsWith(pb.collection("posts").delete("abcdefghijklmno"), 404, "delete unknown id");
});

test("an invalid filter is a 400, not a server error", async () => {
    for (const filter of ["title = (", "title ==== 'x'", "nosuchfield = 1", "title = 'unterminated", "&& views > 1"]) {
        await rejectsWith(pb.collection("posts").getList(1, 10, { filter }), 400, `filter ${JSON.stringify(filter)}`);
    }
});

test("sorting by an unknown field is a 400", async () => {
    await rejectsWith(pb.collection("posts").getList(1, 10, { sort: "nosuchfield" }), 400, "sort by unknown field");
    await rejectsWith(pb.collection("posts").getList(1, 10, { sort: "-title,nosuchfield" }), 400, "second sort term unknown");
});

test("client filters may not use @request or @collection", async () => {
    // API.md allows 400 or 403 here; PocketBase answers 403.
    for (const filter of ["@request.auth.id != ''", "@collection.users.email != ''"]) {
        let res;
        try {
            res = await pb.collection("posts").getList(1, 10, { filter });
        } catch (err) {
            assert.ok([400, 403].includes(err.status), `${filter}: ${err.status} ${JSON.stringify(err.response)}`);
            continue;
        }
        assert.fail(`${filter} was accepted: ${JSON.stringify(res)}`);
    }
});

test("filter values with SQL in them are data", async () => {
    const before = (await pb.collection("posts").getList(1, 1)).totalItems;
    for (const evil of ["'; DROP TABLE posts; --", "x' OR '1'='1", "%", "_"]) {
        const res = await pb.collection("posts").getList(1, 50, { filter: pb.filter("title = {:t}", { t: evil }) });
        assert.deepEqual(res.items, [], `filter value ${JSON.stringify(evil)} matched records`);
    }
    assert.equal((await pb.collection("posts").getList(1, 1)).totalItems, before, "posts changed");
});

test("an unknown API path is a 404 in the error shape", async () => {
    const err = await rejectsWith(pb.send("/api/does-not-exist", {}), 404, "unknown path");
    assert.deepEqual(err.response.data, {});
});
