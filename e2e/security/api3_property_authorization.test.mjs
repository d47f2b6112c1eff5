// OWASP API Security Top 10 (2023), API3 — Broken Object Property Level
// Authorization: a caller writes a property a rule forbids (mass
// assignment through field modifiers, C1) or reads one the schema hides
// (expand of a hidden relation, L2).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startServer } from "../server.mjs";
import { assertOK, assertRefused, call, signIn, superuserToken } from "./lib.mjs";

let server;
let su; // superuser token
let user; // { id, token }

before(async () => {
    server = await startServer();
    su = await superuserToken(server);
    user = await signIn(server, "prop-user@example.com");
});

after(() => server?.stop());

// C1 — field modifiers (`roles+`, `+roles`, `roles-`, `credits+`) must be
// resolved into the body before a rule sees it: a rule that forbids
// setting `roles`/`credits` forbids every modifier of them, on every path
// (JSON, multipart, batch create/update/upsert), for :isset, :changed and
// !~ alike.
describe("C1 field modifiers cannot bypass @request.body rules", () => {
    const profileFields = [
        { name: "owner", type: "relation", collectionId: "_pb_users_auth_", maxSelect: 1 },
        { name: "nick", type: "text" },
        { name: "roles", type: "select", values: ["user", "editor", "admin"], maxSelect: 3 },
        { name: "credits", type: "number" },
    ];
    const owner = "owner = @request.auth.id";
    // What each rule forbids; `roles-` only breaks the rules that forbid any
    // change of roles, not the one that forbids "admin" in them.
    const variants = [
        { name: "isset", guard: "@request.body.roles:isset = false && @request.body.credits:isset = false", guardsAll: true },
        // On create, :changed compares the body with the record being
        // created (PocketBase's meaning), so it forbids nothing there: it
        // guards updates only.
        { name: "changed", guard: "@request.body.roles:changed = false && @request.body.credits:changed = false", guardsAll: true, updateOnly: true },
        { name: "notlike", guard: "@request.body.roles !~ 'admin'", guardsAll: false },
    ];

    /** updateAttacks are the update bodies (makers: a body is sent once) each variant must refuse. */
    function updateAttacks(guardsAll) {
        const attacks = [
            ["JSON roles+", () => ({ "roles+": "admin" })],
            ["JSON +roles", () => ({ "+roles": "admin" })],
            ["multipart roles+", form({ "roles+": "admin" })],
            ["multipart +roles", form({ "+roles": "admin" })],
        ];
        if (guardsAll) {
            attacks.push(
                ["JSON credits+", () => ({ "credits+": 1000 })],
                ["JSON roles-", () => ({ "roles-": "user" })],
                ["multipart credits+", form({ "credits+": "1000" })],
            );
        }
        return attacks;
    }

    for (const v of variants) {
        describe(`updateRule with ${v.name}`, () => {
            const coll = `prof_upd_${v.name}`;
            before(async () => {
                const r = await call(server, "/api/collections", {
                    method: "POST",
                    token: su,
                    body: {
                        name: coll, type: "base", listRule: owner, viewRule: owner, createRule: owner,
                        updateRule: `${owner} && ${v.guard}`, fields: profileFields,
                    },
                });
                assertOK(r, `create ${coll}`);
            });

            /** fresh creates the user's profile as the superuser would: roles [user], credits 0. */
            async function fresh() {
                const r = await call(server, `/api/collections/${coll}/records`, {
                    method: "POST", token: su, body: { owner: user.id, roles: ["user"], credits: 0 },
                });
                assertOK(r, "create a profile");
                return r.body.id;
            }

            test("a plain update the rule allows still works (control)", async () => {
                const id = await fresh();
                const r = await call(server, `/api/collections/${coll}/records/${id}`, { method: "PATCH", token: user.token, body: { nick: "ok" } });
                assertOK(r, "update nick");
                assert.equal(r.body.nick, "ok");
            });

            for (const [what, body] of updateAttacks(v.guardsAll)) {
                test(`PATCH ${what} is refused and the record stays`, async () => {
                    const id = await fresh();
                    const r = await call(server, `/api/collections/${coll}/records/${id}`, { method: "PATCH", token: user.token, body: body() });
                    assertRefused(r, `PATCH ${what}`);
                    await assertUnchanged(coll, id);
                });
            }

            for (const [what, body] of [
                ["batch PATCH roles+", (id) => ({ method: "PATCH", url: `/api/collections/${coll}/records/${id}`, body: { "roles+": "admin" } })],
                ["batch PATCH +roles", (id) => ({ method: "PATCH", url: `/api/collections/${coll}/records/${id}`, body: { "+roles": "admin" } })],
                ["batch PUT upsert roles+", (id) => ({ method: "PUT", url: `/api/collections/${coll}/records`, body: { id, "roles+": "admin" } })],
            ]) {
                test(`${what} is refused and the record stays`, async () => {
                    const id = await fresh();
                    const r = await call(server, "/api/batch", { method: "POST", token: user.token, body: { requests: [body(id)] } });
                    assertRefused(r, what);
                    await assertUnchanged(coll, id);
                });
            }
        });

        describe(`createRule with ${v.name}`, { skip: v.updateOnly && ":changed guards updates only" }, () => {
            const coll = `prof_new_${v.name}`;
            before(async () => {
                const r = await call(server, "/api/collections", {
                    method: "POST",
                    token: su,
                    body: {
                        name: coll, type: "base", listRule: owner, viewRule: owner,
                        createRule: `${owner} && ${v.guard}`, updateRule: owner, fields: profileFields,
                    },
                });
                assertOK(r, `create ${coll}`);
            });

            test("a plain create the rule allows still works (control)", async () => {
                const r = await call(server, `/api/collections/${coll}/records`, { method: "POST", token: user.token, body: { owner: user.id, nick: "ok" } });
                assertOK(r, "create");
                await call(server, `/api/collections/${coll}/records/${r.body.id}`, { method: "DELETE", token: su });
            });

            const attacks = [
                ["JSON roles+", () => ({ owner: user.id, "roles+": "admin" })],
                ["JSON +roles", () => ({ owner: user.id, "+roles": "admin" })],
                ["multipart roles+", () => form({ owner: user.id, "roles+": "admin" })()],
                ["multipart +roles", () => form({ owner: user.id, "+roles": "admin" })()],
            ];
            if (v.guardsAll) attacks.push(["JSON credits+", () => ({ owner: user.id, "credits+": 1000 })]);
            for (const [what, body] of attacks) {
                test(`POST ${what} is refused and nothing is created`, async () => {
                    const before = await count(coll);
                    const r = await call(server, `/api/collections/${coll}/records`, { method: "POST", token: user.token, body: body() });
                    assertRefused(r, `POST ${what}`);
                    assert.equal(await count(coll), before, "no record may be created");
                });
            }
            for (const [what, req] of [
                ["batch POST roles+", () => ({ method: "POST", url: `/api/collections/${coll}/records`, body: { owner: user.id, "roles+": "admin" } })],
                ["batch PUT upsert (new id) roles+", () => ({ method: "PUT", url: `/api/collections/${coll}/records`, body: { id: "c1upsertnew0001", owner: user.id, "roles+": "admin" } })],
            ]) {
                test(`${what} is refused and nothing is created`, async () => {
                    const before = await count(coll);
                    const r = await call(server, "/api/batch", { method: "POST", token: user.token, body: { requests: [req()] } });
                    assertRefused(r, what);
                    assert.equal(await count(coll), before, "no record may be created");
                });
            }
        });
    }

    /** form returns a maker of FormData with these fields (a body can be sent once). */
    function form(fields) {
        return () => {
            const fd = new FormData();
            for (const [k, v] of Object.entries(fields)) fd.append(k, v);
            return fd;
        };
    }

    async function assertUnchanged(coll, id) {
        const r = await call(server, `/api/collections/${coll}/records/${id}`, { token: su });
        assertOK(r, "read back");
        assert.deepEqual(r.body.roles, ["user"], `roles must stay ["user"]: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.credits, 0, `credits must stay 0: ${JSON.stringify(r.body)}`);
    }

    async function count(coll) {
        const r = await call(server, `/api/collections/${coll}/records?perPage=1`, { token: su });
        assertOK(r, "count");
        return r.body.totalItems;
    }
});

// L2 — a hidden relation field is not expandable (nor its back-relation)
// by anyone but a superuser.
describe("L2 a hidden relation cannot be expanded", () => {
    let doc;
    let target;
    before(async () => {
        let r = await call(server, "/api/collections", {
            method: "POST", token: su,
            body: { name: "l2_targets", type: "base", listRule: "", viewRule: "", fields: [{ name: "label", type: "text" }] },
        });
        assertOK(r, "create l2_targets");
        const targets = r.body.id;
        r = await call(server, "/api/collections", {
            method: "POST", token: su,
            body: {
                name: "l2_docs", type: "base", listRule: "", viewRule: "",
                fields: [{ name: "title", type: "text" }, { name: "ref", type: "relation", collectionId: targets, maxSelect: 1, hidden: true }],
            },
        });
        assertOK(r, "create l2_docs");
        r = await call(server, "/api/collections/l2_targets/records", { method: "POST", token: su, body: { label: "the hidden target" } });
        target = r.body;
        r = await call(server, "/api/collections/l2_docs/records", { method: "POST", token: su, body: { title: "doc", ref: target.id } });
        doc = r.body;
    });

    test("a superuser expands it and its back-relation (control)", async () => {
        let r = await call(server, `/api/collections/l2_docs/records/${doc.id}?expand=ref`, { token: su });
        assertOK(r, "superuser view");
        assert.equal(r.body.expand?.ref?.id, target.id, `superuser expand: ${JSON.stringify(r.body)}`);
        r = await call(server, `/api/collections/l2_targets/records/${target.id}?expand=l2_docs_via_ref`, { token: su });
        assertOK(r, "superuser view of the target");
        assert.deepEqual(r.body.expand?.l2_docs_via_ref?.map((d) => d.id), [doc.id], `superuser back-relation expand: ${JSON.stringify(r.body)}`);
    });

    for (const who of ["guest", "user"]) {
        for (const [what, path, key] of [
            ["list expand=ref", "/api/collections/l2_docs/records?expand=ref", "ref"],
            ["view expand=ref", () => `/api/collections/l2_docs/records/${doc.id}?expand=ref`, "ref"],
            ["back-relation expand=l2_docs_via_ref", () => `/api/collections/l2_targets/records/${target.id}?expand=l2_docs_via_ref`, "l2_docs_via_ref"],
        ]) {
            test(`${who}: ${what} reveals nothing`, async () => {
                const p = typeof path === "function" ? path() : path;
                const r = await call(server, p, { token: who === "user" ? user.token : undefined });
                // Refusing the expand is as safe as ignoring it.
                if (r.status >= 400 && r.status < 500) return;
                assertOK(r, what);
                const records = r.body.items ?? [r.body];
                assert.ok(records.length > 0, `${what}: no records in ${JSON.stringify(r.body)}`);
                for (const rec of records) {
                    assert.equal(rec.expand?.[key], undefined, `${what}: the hidden relation was expanded: ${JSON.stringify(rec)}`);
                    assert.ok(!("ref" in rec), `${what}: the hidden field is in the record: ${JSON.stringify(rec)}`);
                }
            });
        }
    }
});
