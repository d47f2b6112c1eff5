// The access matrix of an owner-only collection: what its owner, another
// user, a guest and a superuser can see and do. Nothing of Alice's note
// may reach Bob or a guest: not the record, not its existence, not its
// count through a guessing filter.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startServer } from "./server.mjs";
import { ids, rejectsWith, signUp } from "./fixtures.mjs";

const OWNER = "owner = @request.auth.id";
const SECRET = "xyzzy-42";

let server;
let su;
let alice; // { pb, user }
let bob;
let aliceNote;
let bobNote;

before(async () => {
    server = await startServer();
    su = await server.superuser();
    await su.settings.update({ batch: { enabled: true, maxRequests: 20, timeout: 5 } });
    await su.collections.create({
        name: "notes",
        type: "base",
        listRule: OWNER,
        viewRule: OWNER,
        createRule: `@request.auth.id != '' && ${OWNER}`,
        updateRule: OWNER,
        deleteRule: OWNER,
        fields: [
            { name: "title", type: "text", required: true },
            { name: "secret", type: "text" },
            { name: "owner", type: "relation", collectionId: "_pb_users_auth_", maxSelect: 1, required: true },
        ],
    });
    await su.collections.create({
        name: "bookmarks",
        type: "base",
        listRule: OWNER,
        viewRule: OWNER,
        createRule: `@request.auth.id != '' && ${OWNER}`,
        fields: [
            { name: "owner", type: "relation", collectionId: "_pb_users_auth_", maxSelect: 1, required: true },
            { name: "note", type: "relation", collectionId: (await su.collections.getOne("notes")).id, maxSelect: 1 },
        ],
    });
    alice = await signUp(server, "alice");
    bob = await signUp(server, "bob");
    aliceNote = await alice.pb.collection("notes").create({ title: "alice's plan", secret: SECRET, owner: alice.user.id });
    bobNote = await bob.pb.collection("notes").create({ title: "bob's list", secret: "groceries", owner: bob.user.id });
});
after(async () => {
    await server?.stop();
});

/** aliceNoteNow reads Alice's note as a superuser, to check it is unchanged. */
const aliceNoteNow = () => su.collection("notes").getOne(aliceNote.id);

describe("the owner", () => {
    test("sees her note in view, list and filters", async () => {
        const got = await alice.pb.collection("notes").getOne(aliceNote.id);
        assert.equal(got.secret, SECRET);
        assert.equal(got.owner, alice.user.id);

        const list = await alice.pb.collection("notes").getList(1, 50);
        assert.deepEqual(ids(list.items), [aliceNote.id], "Alice sees only her own note");
        assert.equal(list.totalItems, 1);

        const found = await alice.pb.collection("notes").getList(1, 50, { filter: "secret ~ 'xyzzy'" });
        assert.deepEqual(ids(found.items), [aliceNote.id]);
        assert.equal(found.totalItems, 1);
        const first = await alice.pb.collection("notes").getFirstListItem(`secret = '${SECRET}'`);
        assert.equal(first.id, aliceNote.id);
    });

    test("updates and deletes her own notes", async () => {
        const upd = await alice.pb.collection("notes").update(aliceNote.id, { title: "alice's revised plan" });
        assert.equal(upd.title, "alice's revised plan");
        assert.equal(upd.secret, SECRET);
        aliceNote = upd;

        const temp = await alice.pb.collection("notes").create({ title: "temp", owner: alice.user.id });
        assert.equal(await alice.pb.collection("notes").delete(temp.id), true);
        await rejectsWith(alice.pb.collection("notes").getOne(temp.id), 404, "Alice's deleted note");
    });

    test("cannot create a note in someone else's name", async () => {
        await rejectsWith(alice.pb.collection("notes").create({ title: "forged", owner: bob.user.id }), 400, "forged owner");
        const bobs = await bob.pb.collection("notes").getFullList();
        assert.deepEqual(ids(bobs), [bobNote.id], "a forged note reached Bob's list");
    });
});

describe("another user", () => {
    test("gets 404 viewing the note", async () => {
        const err = await rejectsWith(bob.pb.collection("notes").getOne(aliceNote.id), 404, "Bob views Alice's note");
        assert.doesNotMatch(JSON.stringify(err.response), new RegExp(SECRET));
        // Same answer as for an id that does not exist: existence is not revealed.
        const none = await rejectsWith(bob.pb.collection("notes").getOne("doesnotexist123"), 404);
        assert.deepEqual(err.response, none.response);
    });

    test("does not find it in lists", async () => {
        const list = await bob.pb.collection("notes").getList(1, 50);
        assert.deepEqual(ids(list.items), [bobNote.id]);
        assert.equal(list.totalItems, 1);
        assert.equal(list.totalPages, 1);
        const full = await bob.pb.collection("notes").getFullList({ sort: "-secret" });
        assert.deepEqual(ids(full), [bobNote.id]);
    });

    test("learns nothing from filters that guess at it", async () => {
        // Each guess is true of Alice's note and false of Bob's: Bob must
        // get exactly what he would get if Alice's note did not exist.
        const guesses = [
            "secret ~ 'x'",
            "secret ~ 'xyzzy'",
            `secret = '${SECRET}'`,
            "secret ~ 'xyzzy%'",
            "secret > 'x'",
            "secret:lower ~ 'XYZZY'",
            `id = '${aliceNote.id}'`,
            `owner = '${alice.user.id}'`,
            "title ~ 'plan'",
        ];
        for (const filter of guesses) {
            const res = await bob.pb.collection("notes").getList(1, 50, { filter });
            assert.deepEqual(res.items, [], `${filter} returned ${JSON.stringify(res.items)}`);
            assert.equal(res.totalItems, 0, `${filter}: totalItems ${res.totalItems} reveals a hidden note`);
            assert.equal(res.totalPages, 0, `${filter}: totalPages ${res.totalPages}`);
            await rejectsWith(bob.pb.collection("notes").getFirstListItem(filter), 404, `getFirstListItem(${filter})`, { clientMade: true });
        }
        // Guesses through the owner relation reach into users, whose rules
        // hide Alice from Bob: refusing such a filter also reveals nothing.
        for (const filter of ["owner.name = 'alice'", "owner.email ~ 'alice'", "owner.id = owner.id && secret ~ 'x'"]) {
            let res;
            try {
                res = await bob.pb.collection("notes").getList(1, 50, { filter });
            } catch (err) {
                assert.ok([400, 403].includes(err.status), `${filter}: ${err.status} ${JSON.stringify(err.response)}`);
                continue;
            }
            assert.deepEqual(res.items, [], `${filter} returned ${JSON.stringify(res.items)}`);
            assert.equal(res.totalItems, 0, `${filter}: totalItems ${res.totalItems} reveals a hidden note`);
        }
        // A filter that is true of every note still yields only Bob's.
        const all = await bob.pb.collection("notes").getList(1, 50, { filter: "secret ~ 'x' || secret !~ 'x'" });
        assert.deepEqual(ids(all.items), [bobNote.id]);
        assert.equal(all.totalItems, 1);
    });

    test("cannot reach the note through a back-relation from users", async () => {
        // The default users rules only let Bob see himself.
        await rejectsWith(bob.pb.collection("users").getOne(alice.user.id), 404, "Bob views Alice's user");
        const users = await bob.pb.collection("users").getList(1, 50);
        assert.deepEqual(ids(users.items), [bob.user.id]);
        try {
            const res = await bob.pb.collection("users").getList(1, 50, { filter: "notes_via_owner.secret ?~ 'xyzzy'" });
            assert.deepEqual(res.items, []);
            assert.equal(res.totalItems, 0);
        } catch (err) {
            assert.ok([400, 403].includes(err.status), `${err.status} ${JSON.stringify(err.response)}`);
        }
        const me = await bob.pb.collection("users").getOne(bob.user.id, { expand: "notes_via_owner" });
        const expanded = me.expand?.notes_via_owner ?? [];
        assert.deepEqual(ids(expanded), [bobNote.id]);
    });

    test("cannot read the note through a relation from his own records", async () => {
        // Bob's own bookmarks may point at any note id; following the
        // relation must still obey the notes rules.
        let mark;
        try {
            mark = await bob.pb.collection("bookmarks").create({ owner: bob.user.id, note: aliceNote.id });
        } catch (err) {
            // Refusing to link a note Bob cannot see is also safe.
            assert.equal(err.status, 400, JSON.stringify(err.response));
            return;
        }
        const viewed = await bob.pb.collection("bookmarks").getOne(mark.id, { expand: "note" });
        assert.equal(viewed.expand?.note, undefined, `expand leaked ${JSON.stringify(viewed.expand)}`);
        const listed = await bob.pb.collection("bookmarks").getFullList({ expand: "note" });
        assert.ok(listed.every((b) => b.expand?.note?.secret !== SECRET), `list expand leaked ${JSON.stringify(listed)}`);

        for (const filter of ["note.secret ~ 'xyzzy'", `note.secret = '${SECRET}'`, "note.title ~ 'plan'", "note.owner.name = 'alice'"]) {
            let res;
            try {
                res = await bob.pb.collection("bookmarks").getList(1, 50, { filter });
            } catch (err) {
                assert.ok([400, 403].includes(err.status), `${filter}: ${err.status} ${JSON.stringify(err.response)}`);
                continue;
            }
            assert.deepEqual(ids(res.items), [], `${filter} matched through Alice's note`);
            assert.equal(res.totalItems, 0, `${filter}: totalItems ${res.totalItems} reveals Alice's note`);
        }
    });

    test("can expand and filter through a relation to his own note", async () => {
        const own = await bob.pb.collection("bookmarks").create({ owner: bob.user.id, note: bobNote.id });
        const viewed = await bob.pb.collection("bookmarks").getOne(own.id, { expand: "note" });
        assert.equal(viewed.expand?.note?.secret, "groceries", "expand of Bob's own note");
        // PocketBase filters through relations for any caller; Bob may
        // list his own notes, so this must not be refused.
        const mine = await bob.pb.collection("bookmarks").getList(1, 50, { filter: "note.secret = 'groceries'" });
        assert.deepEqual(ids(mine.items), [own.id]);
        assert.equal(mine.totalItems, 1);
    });

    test("gets 404 updating or deleting the note, and it stays as it was", async () => {
        const before = await aliceNoteNow();
        await rejectsWith(bob.pb.collection("notes").update(aliceNote.id, { title: "pwned", secret: "gone" }), 404, "Bob updates");
        await rejectsWith(bob.pb.collection("notes").update(aliceNote.id, { owner: bob.user.id }), 404, "Bob takes ownership");
        await rejectsWith(bob.pb.collection("notes").delete(aliceNote.id), 404, "Bob deletes");
        assert.deepEqual(await aliceNoteNow(), before);
    });

    test("cannot get around the rules with a batch", async () => {
        const before = await aliceNoteNow();
        const batch = bob.pb.createBatch();
        batch.collection("notes").update(aliceNote.id, { title: "batched pwn" });
        batch.collection("notes").delete(aliceNote.id);
        await rejectsWith(batch.send(), 400, "Bob's batch against Alice's note");
        assert.deepEqual(await aliceNoteNow(), before);
    });

    test("cannot create a note owned by someone else", async () => {
        await rejectsWith(bob.pb.collection("notes").create({ title: "planted", owner: alice.user.id }), 400, "Bob plants a note");
        const alices = await alice.pb.collection("notes").getFullList();
        assert.deepEqual(ids(alices), [aliceNote.id]);
    });
});

describe("a guest", () => {
    test("sees an empty list and 404s", async () => {
        const guest = server.client();
        const list = await guest.collection("notes").getList(1, 50);
        assert.deepEqual(list.items, []);
        assert.equal(list.totalItems, 0);
        const guessed = await guest.collection("notes").getList(1, 50, { filter: "secret ~ 'xyzzy'" });
        assert.deepEqual(guessed.items, []);
        assert.equal(guessed.totalItems, 0);
        await rejectsWith(guest.collection("notes").getOne(aliceNote.id), 404, "guest view");
        await rejectsWith(guest.collection("notes").update(aliceNote.id, { title: "guest" }), 404, "guest update");
        await rejectsWith(guest.collection("notes").delete(aliceNote.id), 404, "guest delete");
    });

    test("cannot create a note, even naming an owner", async () => {
        const guest = server.client();
        await rejectsWith(guest.collection("notes").create({ title: "anon", owner: alice.user.id }), 400, "guest create");
        const total = (await su.collection("notes").getList(1, 1)).totalItems;
        assert.equal(total, 2, "only Alice's and Bob's notes exist");
    });
});

describe("a superuser", () => {
    test("sees and manages every note", async () => {
        const all = await su.collection("notes").getFullList({ sort: "title" });
        assert.deepEqual(ids(all).sort(), [aliceNote.id, bobNote.id].sort());
        const found = await su.collection("notes").getList(1, 50, { filter: "secret ~ 'xyzzy'" });
        assert.deepEqual(ids(found.items), [aliceNote.id]);
        const upd = await su.collection("notes").update(bobNote.id, { title: "moderated" });
        assert.equal(upd.title, "moderated");
        assert.equal((await bob.pb.collection("notes").getOne(bobNote.id)).title, "moderated");
    });
});
