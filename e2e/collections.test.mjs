// Managing collections through pb.collections as a superuser: create a
// collection with every common field type and a unique index, read it
// back, rename a field without losing data, delete it.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startServer } from "./server.mjs";
import { createBlogSchema, DATETIME, rejectsWith, signUp } from "./fixtures.mjs";

let server;
let su;
before(async () => {
    server = await startServer();
    su = await server.superuser();
});
after(async () => {
    await server?.stop();
});

/** fieldsByName indexes a collection's fields by name. */
const fieldsByName = (c) => Object.fromEntries(c.fields.map((f) => [f.name, f]));

test("a fresh install has the users and _superusers collections", async () => {
    const all = await su.collections.getFullList();
    const byName = Object.fromEntries(all.map((c) => [c.name, c]));
    assert.ok(byName.users, `no users collection in ${all.map((c) => c.name)}`);
    assert.ok(byName._superusers, `no _superusers collection in ${all.map((c) => c.name)}`);
    assert.equal(byName.users.id, "_pb_users_auth_");
    assert.equal(byName.users.type, "auth");
    assert.equal(byName._superusers.type, "auth");
    const users = fieldsByName(byName.users);
    for (const name of ["id", "email", "password", "tokenKey", "emailVisibility", "verified", "name", "avatar"]) {
        assert.ok(users[name], `users lacks field ${name}`);
    }
    assert.equal(users.password.hidden, true);
    assert.equal(byName.users.createRule, "", "users must be open for sign-up by default");
    assert.equal(byName.users.passwordAuth.enabled, true);
    assert.deepEqual(byName.users.passwordAuth.identityFields, ["email"]);
});

test("create a base collection with every common field type and a unique index", async () => {
    const { authors, posts } = await createBlogSchema(su);

    assert.equal(posts.name, "posts");
    assert.equal(posts.type, "base");
    assert.equal(posts.system, false);
    assert.match(posts.id, /^\w+$/);
    assert.notEqual(posts.id, authors.id);
    assert.equal(posts.listRule, "");
    assert.equal(posts.createRule, "@request.auth.id != ''");
    assert.equal(posts.created === undefined || DATETIME.test(posts.created), true, `created = ${posts.created}`);

    const f = fieldsByName(posts);
    assert.equal(f.id?.type, "text", "a base collection gets an id field");
    assert.equal(f.id.primaryKey, true);
    const want = {
        title: "text", body: "editor", views: "number", published: "bool", tags: "select", slug: "text",
        author: "relation", coauthors: "relation", meta: "json", publishedAt: "date", created: "autodate", updated: "autodate",
    };
    for (const [name, type] of Object.entries(want)) {
        assert.equal(f[name]?.type, type, `field ${name}: ${JSON.stringify(f[name])}`);
        assert.ok(f[name].id, `field ${name} has no id`);
    }
    assert.equal(f.title.required, true);
    assert.equal(f.title.max, 200);
    assert.deepEqual(f.tags.values, ["go", "db", "web", "js"]);
    assert.equal(f.tags.maxSelect, 4);
    assert.equal(f.author.collectionId, authors.id);
    assert.equal(f.author.maxSelect, 1);
    assert.equal(f.coauthors.maxSelect, 5);
    assert.equal(f.updated.onUpdate, true);
    assert.equal(f.created.onUpdate, false);
    assert.equal(posts.indexes.length, 1);
    assert.match(posts.indexes[0], /CREATE UNIQUE INDEX\s+`?idx_posts_slug`?/i);

    // Read back by name and by id: the same collection.
    const byName = await su.collections.getOne("posts");
    const byId = await su.collections.getOne(posts.id);
    assert.equal(byName.id, posts.id);
    assert.equal(byId.name, "posts");
    assert.deepEqual(byName.fields.map((x) => x.name), posts.fields.map((x) => x.name));
    assert.deepEqual(byName.indexes, posts.indexes);

    const list = await su.collections.getFullList({ filter: "type = 'base' && system = false", sort: "name" });
    assert.deepEqual(list.map((c) => c.name), ["authors", "posts"]);

    // The unique index is enforced on records.
    await su.collection("posts").create({ title: "one", slug: "same" });
    const err = await rejectsWith(su.collection("posts").create({ title: "two", slug: "same" }), 400, "duplicate slug");
    assert.equal(err.response.data.slug?.code, "validation_not_unique", JSON.stringify(err.response));
});

test("a duplicate collection name is refused with a field error", async () => {
    const err = await rejectsWith(su.collections.create({ name: "posts", type: "base" }), 400, "duplicate name");
    assert.ok(err.response.data.name, `no name error in ${JSON.stringify(err.response)}`);
});

test("renaming a field keeps its data, and rules can be changed", async () => {
    const rec = await su.collection("posts").create({ title: "keep me", views: 7, slug: "keep-me" });

    const posts = await su.collections.getOne("posts");
    const fields = posts.fields.map((f) => (f.name === "title" ? { ...f, name: "headline" } : f));
    const updated = await su.collections.update("posts", { fields, listRule: "views > 0" });

    const names = updated.fields.map((f) => f.name);
    assert.ok(names.includes("headline"), `fields after rename: ${names}`);
    assert.ok(!names.includes("title"), `title still present: ${names}`);
    assert.equal(fieldsByName(updated).headline.id, fieldsByName(posts).title.id, "a rename keeps the field id");
    assert.equal(updated.listRule, "views > 0");

    const after = await su.collection("posts").getOne(rec.id);
    assert.equal(after.headline, "keep me");
    assert.equal(after.views, 7);
    assert.ok(!("title" in after), `old key still returned: ${JSON.stringify(after)}`);

    // The new rule applies to guests: a zero-view post is hidden from lists.
    await su.collection("posts").create({ headline: "unseen", views: 0 });
    const guestList = await server.client().collection("posts").getFullList({ sort: "headline" });
    assert.ok(guestList.some((p) => p.headline === "keep me"), JSON.stringify(guestList));
    assert.ok(!guestList.some((p) => p.headline === "unseen"), JSON.stringify(guestList));

    // A rule naming an unknown field is refused and the old one stays.
    const err = await rejectsWith(su.collections.update("posts", { listRule: "nosuchfield = 1" }), 400, "bad rule");
    assert.ok(err.response.data.listRule, `no listRule error in ${JSON.stringify(err.response)}`);
    assert.equal((await su.collections.getOne("posts")).listRule, "views > 0");
});

test("collections are for superusers only", async () => {
    const { pb } = await signUp(server, "mallory");
    await rejectsWith(pb.collections.getFullList(), 403, "list as user");
    await rejectsWith(pb.collections.getOne("posts"), 403, "view as user");
    await rejectsWith(pb.collections.create({ name: "evil", type: "base" }), 403, "create as user");
    await rejectsWith(server.client().collections.getFullList(), 401, "list as guest");
});

test("deleting a collection removes it and its records", async () => {
    const temp = await su.collections.create({ name: "scratch", type: "base", fields: [{ name: "n", type: "number" }] });
    await su.collection("scratch").create({ n: 1 });

    assert.equal(await su.collections.delete("scratch"), true);
    await rejectsWith(su.collections.getOne("scratch"), 404, "deleted by name");
    await rejectsWith(su.collections.getOne(temp.id), 404, "deleted by id");
    await rejectsWith(su.collection("scratch").getList(), 404, "records of a deleted collection");
    const names = (await su.collections.getFullList()).map((c) => c.name);
    assert.ok(!names.includes("scratch"), `still listed: ${names}`);

    // The name is free again.
    await su.collections.create({ name: "scratch", type: "base", fields: [{ name: "n", type: "number" }] });
    assert.equal((await su.collection("scratch").getList()).totalItems, 0, "records came back with the name");
});

test("a collection referenced by a relation cannot be deleted", async () => {
    await rejectsWith(su.collections.delete("authors"), 400, "delete referenced authors");
    assert.equal((await su.collections.getOne("authors")).name, "authors");
});
