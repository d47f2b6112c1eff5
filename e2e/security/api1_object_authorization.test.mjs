// OWASP API Security Top 10 (2023), API1 — Broken Object Level
// Authorization: the server must tell whose object a caller is by the
// collection and the id together, never by a client-chosen id alone (M1),
// and a user never reads or changes another user's record.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startServer } from "../server.mjs";
import { assertOK, assertRefused, call, signIn, superuserToken } from "./lib.mjs";

let server;
let su;

before(async () => {
    server = await startServer();
    su = await superuserToken(server);
});

after(() => server?.stop());

// M1 — the hidden-email guard compared the caller's record id only: a users
// record created with the id of a staff member could probe that member's
// hidden email with a filter. Whatever the guess, the answer must be the same.
test("M1 a users record with a staff member's id cannot probe the member's hidden email", async () => {
    let r = await call(server, "/api/collections", {
        method: "POST", token: su,
        body: { name: "staff", type: "auth", listRule: "", viewRule: "", fields: [] },
    });
    assertOK(r, "create staff");
    const victimEmail = "victim.secret@corp.example";
    r = await call(server, "/api/collections/staff/records", {
        method: "POST", token: su,
        body: { email: victimEmail, emailVisibility: false, password: "Victim-pass-123456", passwordConfirm: "Victim-pass-123456" },
    });
    assertOK(r, "create the victim");
    const victim = r.body;

    // The attacker picks the victim's id for a record of their own.
    const attacker = await signIn(server, "attacker-m1@example.com", undefined, { id: victim.id });
    assert.equal(attacker.id, victim.id, "setup: the attacker's record has the victim's id");

    const probe = async (filter) => {
        const res = await call(server, `/api/collections/staff/records?filter=${encodeURIComponent(filter)}`, { token: attacker.token });
        if (res.status >= 400 && res.status < 500) return `refused ${res.status}`;
        assertOK(res, `probe ${filter}`);
        for (const item of res.body.items) {
            assert.ok(!JSON.stringify(item).includes(victimEmail), `the hidden email came back: ${JSON.stringify(item)}`);
        }
        return JSON.stringify(res.body.items.map((i) => i.id));
    };
    const right = await probe("email ~ 'victim.s%'");
    const wrong = await probe("email ~ 'zzz%'");
    assert.equal(right, wrong, "a right and a wrong guess of the hidden email must answer alike");
    assert.equal(await probe(`email = '${victimEmail}'`), await probe("email = 'nobody@corp.example'"),
        "an exact guess must answer like a wrong one");
});

// Another user's private record: neither readable nor writable (already
// safe; kept so it stays so).
test("a user can neither read nor change another user's private record", async () => {
    const r = await call(server, "/api/collections", {
        method: "POST", token: su,
        body: {
            name: "diary", type: "base",
            listRule: "owner = @request.auth.id", viewRule: "owner = @request.auth.id",
            createRule: "owner = @request.auth.id", updateRule: "owner = @request.auth.id", deleteRule: "owner = @request.auth.id",
            fields: [{ name: "text", type: "text" }, { name: "owner", type: "relation", collectionId: "_pb_users_auth_", maxSelect: 1 }],
        },
    });
    assertOK(r, "create diary");
    const alice = await signIn(server, "bola-alice@example.com");
    const bob = await signIn(server, "bola-bob@example.com");
    const note = (await call(server, "/api/collections/diary/records", { method: "POST", token: alice.token, body: { text: "private", owner: alice.id } })).body;

    const path = `/api/collections/diary/records/${note.id}`;
    assertRefused(await call(server, path, { token: bob.token }), "bob views alice's note");
    assertRefused(await call(server, path, { method: "PATCH", token: bob.token, body: { text: "bob was here", owner: bob.id } }), "bob updates alice's note");
    assertRefused(await call(server, path, { method: "DELETE", token: bob.token }), "bob deletes alice's note");
    assertRefused(await call(server, "/api/batch", {
        method: "POST", token: bob.token,
        body: { requests: [{ method: "PATCH", url: path, body: { text: "bob was here" } }] },
    }), "bob updates alice's note in a batch");
    const list = await call(server, "/api/collections/diary/records", { token: bob.token });
    assertOK(list, "bob lists");
    assert.equal(list.body.totalItems, 0, "bob's list shows none of alice's notes");
    const back = await call(server, path, { token: alice.token });
    assert.equal(back.body.text, "private", "the note is unchanged");
});
