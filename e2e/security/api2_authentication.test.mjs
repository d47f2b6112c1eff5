// OWASP API Security Top 10 (2023), API2 — Broken Authentication: account
// takeover by a case-variant email (M2), lock-out of the owner by someone
// else's failures (M5), and guesses that race past the failure limit (L1).
// Client addresses are simulated with X-Forwarded-For through the
// trustedProxy setting.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { SUPERUSER_EMAIL, SUPERUSER_PASSWORD, startServer } from "../server.mjs";
import { assertOK, call, preview, signIn, superuserToken, trustForwardedFor } from "./lib.mjs";

let server;
let su;

before(async () => {
    server = await startServer();
    su = await server.superuser();
    await trustForwardedFor(su);
});

after(() => server?.stop());

const login = (collection, identity, password, ip) =>
    call(server, `/api/collections/${collection}/auth-with-password`, { method: "POST", body: { identity, password }, ip });

// M2 — emails are unique whatever their case: Zed@ then zed@ is refused,
// so the first account cannot take the login, reset and OTP flows of the second.
test("M2 an email differing only in case from an existing account's is refused", async () => {
    await signIn(server, "Zed@casetest.example");
    for (const email of ["zed@casetest.example", "ZED@CASETEST.EXAMPLE"]) {
        const r = await call(server, "/api/collections/users/records", {
            method: "POST", body: { email, password: "Other-pass-123456", passwordConfirm: "Other-pass-123456" },
        });
        assert.equal(r.status, 400, `sign-up as ${email}: HTTP ${r.status}, want 400; body ${preview(r.body)}`);
    }
    const other = await signIn(server, "other-m2@casetest.example");
    const r = await call(server, `/api/collections/users/records/${other.id}`, {
        method: "PATCH", token: await superuserToken(server), body: { email: "zed@CASETEST.example" },
    });
    assert.equal(r.status, 400, `changing another account's email to a case variant: HTTP ${r.status}; body ${preview(r.body)}`);
    const all = await call(server, "/api/collections/users/records?perPage=500", { token: await superuserToken(server) });
    const zeds = all.body.items.filter((u) => u.email.toLowerCase() === "zed@casetest.example");
    assert.equal(zeds.length, 1, `one account for zed@casetest.example, got ${JSON.stringify(zeds)}`);
});

// M5 — fifty failures from one address must not lock the owner, logging in
// from another address with the right password, out: neither a user nor a
// superuser.
test("M5 another address's failures do not refuse the owner's correct password", async () => {
    const owner = await signIn(server, "m5-owner@example.com");
    for (const [collection, email, password, ownerIP] of [
        ["users", owner.email, owner.password, "10.5.0.2"],
        ["_superusers", SUPERUSER_EMAIL, SUPERUSER_PASSWORD, "10.5.0.3"],
    ]) {
        const statuses = {};
        for (let i = 0; i < 50; i++) {
            const r = await login(collection, email, `wrong-${i}-password`, "10.5.0.66");
            assert.notEqual(r.status, 200, "a wrong password must never sign in");
            statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        }
        const r = await login(collection, email, password, ownerIP);
        assert.equal(r.status, 200, `${collection}: the owner's correct password from ${ownerIP} after 50 failures from 10.5.0.66 ` +
            `(${JSON.stringify(statuses)}): HTTP ${r.status}; body ${preview(r.body)}`);
    }
});

// L1 — failures are counted before the password is checked: 30 concurrent
// wrong guesses from one address get at most 5 evaluated, the rest 429.
test("L1 thirty concurrent guesses: at most 5 evaluated, the rest 429", async () => {
    const victim = await signIn(server, "l1-victim@example.com");
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => login("users", victim.email, `guess-${i}-password`, "10.1.0.9")));
    const statuses = answers.map((a) => a.status);
    assert.ok(statuses.every((s) => s === 400 || s === 429), `only 400 (wrong password) or 429: ${statuses}`);
    const evaluated = statuses.filter((s) => s !== 429).length;
    assert.ok(evaluated <= 5, `${evaluated} of 30 concurrent guesses were evaluated, want at most 5: ${statuses}`);
    // The owner, from elsewhere, is not locked out by them (M5).
    assertOK(await login("users", victim.email, victim.password, "10.1.0.10"), "the owner after the burst");
});
