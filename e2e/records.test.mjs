// Records through pb.collection(...): create, read, update, delete; list
// with filter, sort, paging, expand, fields and skipTotal; write modifiers.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startServer } from "./server.mjs";
import { createBlogSchema, DATETIME, ids, RECORD_ID, rejectsWith, signUp, titles } from "./fixtures.mjs";

let server;
let pb; // a signed-in user
let authors; // name -> record
let seeded; // title -> record

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
    server = await startServer();
    await createBlogSchema(await server.superuser());
    ({ pb } = await signUp(server, "writer"));

    authors = {};
    for (const name of ["Ann", "Ben", "Cat"]) {
        authors[name] = await pb.collection("authors").create({ name, bio: `${name} writes` });
    }
    // Fixed list data: views and titles chosen so that filter and sort
    // results are unambiguous.
    const rows = [
        { title: "alpha", views: 10, published: true, tags: ["go"], author: authors.Ann.id, coauthors: [authors.Ben.id] },
        { title: "beta", views: 20, published: true, tags: ["go", "db"], author: authors.Ann.id, coauthors: [] },
        { title: "gamma", views: 30, published: false, tags: ["web"], author: authors.Ben.id, coauthors: [authors.Ann.id, authors.Cat.id] },
        { title: "delta", views: 30, published: true, tags: [], author: authors.Cat.id, coauthors: [] },
        { title: "beta", views: 5, published: false, tags: ["js"], author: authors.Ben.id, coauthors: [] },
    ];
    seeded = {};
    for (const r of rows) {
        const rec = await pb.collection("posts").create({ ...r, body: `<p>About <b>${r.title}</b> and more text here</p>` });
        seeded[`${r.title}/${r.views}`] = rec;
    }
});
after(async () => {
    await server?.stop();
});

describe("CRUD", () => {
    test("create returns the stored record with every field type", async () => {
        const data = {
            title: "full",
            body: "<p>Hello <b>brave</b> new world</p>",
            views: 42.5,
            published: true,
            tags: ["db", "go"],
            slug: "full-record",
            author: authors.Ann.id,
            coauthors: [authors.Ben.id, authors.Cat.id],
            meta: { a: 1, nested: { b: [1, 2, "three"] }, ok: null },
            publishedAt: "2024-05-01 10:30:00.000Z",
        };
        const rec = await pb.collection("posts").create(data);

        assert.match(rec.id, RECORD_ID);
        assert.equal(rec.collectionName, "posts");
        assert.ok(rec.collectionId, "no collectionId");
        for (const k of ["title", "body", "views", "published", "tags", "slug", "author", "coauthors", "meta", "publishedAt"]) {
            assert.deepEqual(rec[k], data[k], `field ${k}`);
        }
        assert.match(rec.created, DATETIME);
        assert.match(rec.updated, DATETIME);
        assert.equal(rec.created, rec.updated);

        const got = await server.client().collection("posts").getOne(rec.id);
        assert.deepEqual(got, rec, "a guest's getOne differs from the create response");
    });

    test("a client-chosen id is kept", async () => {
        const rec = await pb.collection("posts").create({ id: "customid1234567", title: "with id" });
        assert.equal(rec.id, "customid1234567");
        assert.equal((await pb.collection("posts").getOne("customid1234567")).title, "with id");
    });

    test("unset fields come back as their zero values", async () => {
        const rec = await pb.collection("posts").create({ title: "bare" });
        assert.equal(rec.body, "");
        assert.equal(rec.views, 0);
        assert.equal(rec.published, false);
        assert.deepEqual(rec.tags, []);
        assert.equal(rec.author, "");
        assert.deepEqual(rec.coauthors, []);
        assert.equal(rec.meta, null);
        assert.equal(rec.publishedAt, "");
        assert.equal(rec.slug, "");
    });

    test("a JavaScript Date is stored and returned in the API's datetime format", async () => {
        const when = new Date(Date.UTC(2024, 4, 1, 10, 30, 0, 123));
        const rec = await pb.collection("posts").create({ title: "dated", publishedAt: when });
        assert.equal(rec.publishedAt, "2024-05-01 10:30:00.123Z");
        const found = await pb.collection("posts").getFullList({
            filter: pb.filter("publishedAt = {:d}", { d: when }),
        });
        assert.deepEqual(ids(found), [rec.id], "pb.filter with a Date finds the record");
        const later = await pb.collection("posts").getFullList({
            filter: pb.filter("publishedAt > {:d}", { d: new Date(Date.UTC(2024, 4, 1, 10, 30, 0, 124)) }),
        });
        assert.ok(!ids(later).includes(rec.id), "a millisecond later is after it");
    });

    test("update changes only the given fields and bumps updated, not created", async () => {
        const rec = await pb.collection("posts").create({ title: "before", views: 1, tags: ["go"], meta: { v: 1 } });
        await sleep(15);
        const upd = await pb.collection("posts").update(rec.id, { title: "after", meta: { v: 2 } });

        assert.equal(upd.id, rec.id);
        assert.equal(upd.title, "after");
        assert.deepEqual(upd.meta, { v: 2 });
        assert.equal(upd.views, 1);
        assert.deepEqual(upd.tags, ["go"]);
        assert.equal(upd.created, rec.created);
        assert.ok(upd.updated > rec.updated, `updated ${upd.updated} not after ${rec.updated}`);
        assert.deepEqual(await pb.collection("posts").getOne(rec.id), upd);
    });

    test("delete removes the record", async () => {
        const rec = await pb.collection("posts").create({ title: "doomed" });
        assert.equal(await pb.collection("posts").delete(rec.id), true);
        await rejectsWith(pb.collection("posts").getOne(rec.id), 404, "getOne after delete");
        await rejectsWith(pb.collection("posts").delete(rec.id), 404, "second delete");
        await rejectsWith(pb.collection("posts").update(rec.id, { title: "zombie" }), 404, "update after delete");
    });

    test("guests cannot write where the rule needs a signed-in user", async () => {
        const guest = server.client();
        await rejectsWith(guest.collection("posts").create({ title: "by guest" }), 400, "guest create");
        await rejectsWith(guest.collection("posts").update(seeded["alpha/10"].id, { title: "defaced" }), 404, "guest update");
        await rejectsWith(guest.collection("posts").delete(seeded["alpha/10"].id), 404, "guest delete");
        assert.equal((await guest.collection("posts").getOne(seeded["alpha/10"].id)).title, "alpha");
        const list = await guest.collection("posts").getFullList({ filter: "title = 'by guest'" });
        assert.deepEqual(list, []);
    });
});

describe("list", () => {
    test("getList with filter, sort, fields with excerpt and skipTotal", async () => {
        const res = await pb.collection("posts").getList(1, 10, {
            filter: pb.filter("title = {:t} && views > {:v}", { t: "beta", v: 1 }),
            sort: "-views,title",
            expand: "author",
            fields: "id,title,body:excerpt(10,true)",
            skipTotal: true,
        });
        assert.equal(res.page, 1);
        assert.equal(res.perPage, 10);
        assert.equal(res.totalItems, -1);
        assert.equal(res.totalPages, -1);
        assert.deepEqual(ids(res.items), [seeded["beta/20"].id, seeded["beta/5"].id]);
        for (const item of res.items) {
            assert.deepEqual(Object.keys(item).sort(), ["body", "id", "title"], `projection: ${JSON.stringify(item)}`);
            assert.equal(item.title, "beta");
            assert.equal(item.body, "About beta...", "excerpt of '<p>About <b>beta</b> and…' to 10 chars");
        }
    });

    test("getList counts totals and pages", async () => {
        const res = await pb.collection("posts").getList(2, 2, { filter: "views >= 10 && views <= 30", sort: "views,title" });
        // alpha 10, beta 20, delta 30, gamma 30: page 2 of 2 is delta, gamma.
        assert.equal(res.totalItems, 4);
        assert.equal(res.totalPages, 2);
        assert.equal(res.page, 2);
        assert.equal(res.perPage, 2);
        assert.deepEqual(titles(res.items), ["delta", "gamma"]);

        const past = await pb.collection("posts").getList(3, 2, { filter: "views >= 10 && views <= 30" });
        assert.deepEqual(past.items, []);
        assert.equal(past.totalItems, 4);
    });

    test("sort is applied term by term", async () => {
        const asc = await pb.collection("posts").getFullList({ filter: "views >= 5 && views <= 30", sort: "title,-views" });
        assert.deepEqual(asc.map((r) => `${r.title}/${r.views}`), ["alpha/10", "beta/20", "beta/5", "delta/30", "gamma/30"]);
        const desc = await pb.collection("posts").getFullList({ filter: "views >= 5 && views <= 30", sort: "-views,+title" });
        assert.deepEqual(desc.map((r) => `${r.title}/${r.views}`), ["delta/30", "gamma/30", "beta/20", "alpha/10", "beta/5"]);
    });

    test("filters on bool, multi-select, relation and text", async () => {
        // Only the seeded posts have 5 <= views <= 30.
        const f = async (filter) =>
            titles(await pb.collection("posts").getFullList({ filter: `views >= 5 && views <= 30 && (${filter})`, sort: "title,views" }));
        assert.deepEqual(await f("published = false"), ["beta", "gamma"]);
        assert.deepEqual(await f("tags ~ 'go'"), ["alpha", "beta"]);
        assert.deepEqual(await f("tags:length = 2"), ["beta"]);
        assert.deepEqual(await f(pb.filter("author = {:a}", { a: authors.Ben.id })), ["beta", "gamma"]);
        assert.deepEqual(await f("author.name = 'Cat'"), ["delta"]);
        assert.deepEqual(await f("coauthors.name ?= 'Cat'"), ["gamma"]);
        assert.deepEqual(await f("title ~ 'mm' || title = 'alpha'"), ["alpha", "gamma"]);
        assert.deepEqual(await f("title !~ 'a'"), [], "every seeded title has an a");
    });

    test("@rowid and @random sorts", async () => {
        const seededIds = Object.values(seeded).map((r) => r.id);
        const filter = "views >= 5 && views <= 30";
        const byRow = await pb.collection("posts").getFullList({ filter, sort: "-@rowid" });
        assert.deepEqual(ids(byRow), [...seededIds].reverse(), "-@rowid is reverse insertion order");
        const random = await pb.collection("posts").getFullList({ filter, sort: "@random" });
        assert.deepEqual(ids(random).sort(), [...seededIds].sort(), "@random returns every record once");
    });

    test("datetime macros in filters", async () => {
        const seededIds = Object.values(seeded).map((r) => r.id).sort();
        const recent = await pb.collection("posts").getFullList({
            filter: "views >= 5 && views <= 30 && created >= @yesterday && created <= @now && updated <= @tomorrow",
        });
        assert.deepEqual(ids(recent).sort(), seededIds);
        const future = await pb.collection("posts").getFullList({ filter: "created > @tomorrow" });
        assert.deepEqual(future, []);
    });

    test("pb.filter keeps quotes in values as data", async () => {
        const tricky = "it's \"quoted\" ' || 1=1 --";
        const rec = await pb.collection("posts").create({ title: tricky });
        const found = await pb.collection("posts").getFullList({ filter: pb.filter("title = {:t}", { t: tricky }) });
        assert.deepEqual(ids(found), [rec.id]);
        const none = await pb.collection("posts").getFullList({ filter: pb.filter("title = {:t}", { t: "' || 1=1 || '" }) });
        assert.deepEqual(none, []);
    });

    test("getFullList returns every matching record across pages", async () => {
        const many = [];
        for (let i = 0; i < 12; i++) {
            many.push(await pb.collection("posts").create({ title: `bulk-${String(i).padStart(2, "0")}`, views: 1000 + i }));
        }
        const all = await pb.collection("posts").getFullList({ batch: 5, filter: "title ~ 'bulk-'", sort: "title" });
        assert.deepEqual(ids(all), ids(many));
    });

    test("getFirstListItem returns the first match, and a 404 when none", async () => {
        const first = await pb.collection("posts").getFirstListItem("views = 30", { sort: "-title" });
        assert.equal(first.title, "gamma");
        assert.equal(first.id, seeded["gamma/30"].id);
        await rejectsWith(pb.collection("posts").getFirstListItem("views = 12345"), 404, "no match", { clientMade: true });
    });
});

describe("expand and fields", () => {
    test("expand a single and a multi relation", async () => {
        const gamma = await pb.collection("posts").getOne(seeded["gamma/30"].id, { expand: "author,coauthors" });
        assert.equal(gamma.author, authors.Ben.id, "the relation id stays in place");
        assert.equal(gamma.expand.author.id, authors.Ben.id);
        assert.equal(gamma.expand.author.name, "Ben");
        assert.equal(gamma.expand.author.collectionName, "authors");
        assert.ok(Array.isArray(gamma.expand.coauthors), JSON.stringify(gamma.expand));
        assert.deepEqual(gamma.expand.coauthors.map((a) => a.name), ["Ann", "Cat"], "expanded in stored order");

        const delta = await pb.collection("posts").getOne(seeded["delta/30"].id, { expand: "author,coauthors" });
        assert.equal(delta.expand.author.name, "Cat");
        assert.equal(delta.expand.coauthors, undefined, "an empty relation has nothing to expand");

        const plain = await pb.collection("posts").getOne(seeded["gamma/30"].id);
        assert.equal(plain.expand, undefined, "expand appears only when asked for");
    });

    test("expand in a list", async () => {
        const list = await pb.collection("posts").getFullList({ filter: "views >= 5 && views <= 30", sort: "title,-views", expand: "author" });
        assert.deepEqual(list.map((p) => p.expand?.author?.name), ["Ann", "Ann", "Ben", "Cat", "Ben"]);
    });

    test("expand through a back-relation", async () => {
        const ann = await pb.collection("authors").getOne(authors.Ann.id, { expand: "posts_via_author" });
        const got = ann.expand?.posts_via_author;
        assert.ok(Array.isArray(got), `expand = ${JSON.stringify(ann.expand)}`);
        const want = await pb.collection("posts").getFullList({ filter: pb.filter("author = {:a}", { a: authors.Ann.id }) });
        assert.ok(want.length >= 2, "seeded data has two posts by Ann");
        assert.deepEqual(ids(got).sort(), ids(want).sort());
    });

    test("fields projects nested expanded fields", async () => {
        const rec = await pb.collection("posts").getOne(seeded["alpha/10"].id, {
            expand: "author,coauthors",
            fields: "id,title,expand.author.name,expand.coauthors.name",
        });
        assert.deepEqual(rec, {
            id: seeded["alpha/10"].id,
            title: "alpha",
            expand: { author: { name: "Ann" }, coauthors: [{ name: "Ben" }] },
        });

        const all = await pb.collection("posts").getOne(seeded["alpha/10"].id, { expand: "author", fields: "*,expand.author.name" });
        assert.equal(all.title, "alpha");
        assert.equal(all.views, 10);
        assert.deepEqual(all.expand, { author: { name: "Ann" } });

        const list = await pb.collection("posts").getList(1, 2, { sort: "views", filter: "views >= 5", fields: "title" });
        for (const item of list.items) {
            assert.deepEqual(Object.keys(item), ["title"], JSON.stringify(item));
        }
    });
});

describe("write modifiers", () => {
    test("views+ and views- add to and subtract from a number", async () => {
        const rec = await pb.collection("posts").create({ title: "counter", views: 10 });
        let upd = await pb.collection("posts").update(rec.id, { "views+": 5 });
        assert.equal(upd.views, 15);
        upd = await pb.collection("posts").update(rec.id, { "views-": 3 });
        assert.equal(upd.views, 12);
        assert.equal((await pb.collection("posts").getOne(rec.id)).views, 12);
    });

    test("concurrent increments are not lost", async () => {
        const rec = await pb.collection("posts").create({ title: "hot", views: 0 });
        await Promise.all(Array.from({ length: 10 }, () => pb.collection("posts").update(rec.id, { "views+": 1 })));
        assert.equal((await pb.collection("posts").getOne(rec.id)).views, 10);
    });

    test("tags+ appends, +tags prepends, tags- removes", async () => {
        const rec = await pb.collection("posts").create({ title: "tagged", tags: ["db"] });
        let upd = await pb.collection("posts").update(rec.id, { "tags+": "go" });
        assert.deepEqual(upd.tags, ["db", "go"]);
        upd = await pb.collection("posts").update(rec.id, { "+tags": "web" });
        assert.deepEqual(upd.tags, ["web", "db", "go"]);
        upd = await pb.collection("posts").update(rec.id, { "tags-": ["db", "web"] });
        assert.deepEqual(upd.tags, ["go"]);
        upd = await pb.collection("posts").update(rec.id, { "tags+": ["js", "db"] });
        assert.deepEqual(upd.tags, ["go", "js", "db"]);
        upd = await pb.collection("posts").update(rec.id, { "tags+": "go" });
        assert.deepEqual(upd.tags, ["go", "js", "db"], "adding a value already there keeps one copy");
        assert.deepEqual((await pb.collection("posts").getOne(rec.id)).tags, ["go", "js", "db"]);
    });

    test("coauthors+ and coauthors- change a multi relation", async () => {
        const rec = await pb.collection("posts").create({ title: "team", coauthors: [authors.Ann.id] });
        let upd = await pb.collection("posts").update(rec.id, { "coauthors+": authors.Cat.id });
        assert.deepEqual(upd.coauthors, [authors.Ann.id, authors.Cat.id]);
        upd = await pb.collection("posts").update(rec.id, { "coauthors-": authors.Ann.id }, { expand: "coauthors" });
        assert.deepEqual(upd.coauthors, [authors.Cat.id]);
        assert.deepEqual(upd.expand.coauthors.map((a) => a.name), ["Cat"]);
    });

    test("a modifier that breaks validation is refused and changes nothing", async () => {
        const rec = await pb.collection("posts").create({ title: "full set", tags: ["go", "db", "web", "js"] });
        const err = await rejectsWith(pb.collection("posts").update(rec.id, { "tags+": "nope" }), 400, "unknown select value");
        assert.ok(err.response.data.tags, JSON.stringify(err.response));
        assert.deepEqual((await pb.collection("posts").getOne(rec.id)).tags, ["go", "db", "web", "js"]);
    });
});
