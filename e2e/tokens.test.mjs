// Tokens and brute-force defence through the SDK: impersonation (a token
// that cannot be refreshed), auth-revoke (our addition: sign out
// everywhere), and the default rate limits answering 429 with Retry-After.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startServer } from "./server.mjs";
import { assertNoSecrets, rejectsWith, signUp } from "./fixtures.mjs";

let server;
before(async () => {
    server = await startServer();
});
after(async () => {
    await server?.stop();
});

describe("impersonate", () => {
    test("a superuser gets a working, non-refreshable token for a user", async () => {
        const { user } = await signUp(server, "imp-target");
        const su = await server.superuser();
        const as = await su.collection("users").impersonate(user.id, 3600);

        assert.equal(as.authStore.record.id, user.id);
        assertNoSecrets(as.authStore.record, "impersonated record");
        const claims = JSON.parse(Buffer.from(as.authStore.token.split(".")[1], "base64url").toString("utf8"));
        assert.ok(!claims.refreshable, `claims ${JSON.stringify(claims)} must not be refreshable`);
        assert.ok(Math.abs(claims.exp - (Date.now() / 1000 + 3600)) < 10, `exp ${claims.exp} is not an hour away`);

        // It acts as the user, and cannot be extended.
        const me = await as.collection("users").getOne(user.id);
        assert.equal(me.id, user.id);
        await rejectsWith(as.collection("users").authRefresh(), 403, "refresh an impersonation token");
    });

    test("a user cannot impersonate", async () => {
        const { pb } = await signUp(server, "imp-attacker");
        const { user: other } = await signUp(server, "imp-victim");
        await rejectsWith(pb.collection("users").impersonate(other.id, 60), 403, "user impersonating");
        await rejectsWith(server.client().collection("users").impersonate(other.id, 60), 401, "guest impersonating");
    });
});

describe("auth-revoke", () => {
    test("signs a user out everywhere, and only that user", async () => {
        const { pb: phone, email, password } = await signUp(server, "revoker");
        const laptop = server.client();
        await laptop.collection("users").authWithPassword(email, password);
        const { pb: bystander } = await signUp(server, "bystander");

        await phone.send("/api/collections/users/auth-revoke", { method: "POST" });

        await rejectsWith(phone.collection("users").authRefresh(), 401, "refresh on the revoking device");
        await rejectsWith(laptop.collection("users").authRefresh(), 401, "refresh on another device");
        await bystander.collection("users").authRefresh();
        // Signing in again works.
        const again = await server.client().collection("users").authWithPassword(email, password);
        assert.ok(again.token);
    });

    test("a superuser revokes another user's tokens by id", async () => {
        const { pb, user } = await signUp(server, "revoked-by-su");
        const su = await server.superuser();
        await su.send("/api/collections/users/auth-revoke", { method: "POST", body: { recordId: user.id } });
        await rejectsWith(pb.collection("users").authRefresh(), 401, "refresh after a superuser's revoke");
    });
});

describe("brute-force defence", () => {
    test("is on by default and editable in the settings", async () => {
        const su = await server.superuser();
        const settings = await su.settings.getAll();
        assert.equal(settings.rateLimits.enabled, true);
        const labels = settings.rateLimits.rules.map((r) => r.label);
        for (const want of ["*:auth", "*:request", "identity:auth-with-password"]) {
            assert.ok(labels.includes(want), `default rules ${JSON.stringify(labels)} lack ${want}`);
        }
    });

    test("failed logins of one account end in 429 with Retry-After; its owner is not locked out for long", async () => {
        const { email, password } = await signUp(server, "guessed");
        const pb = server.client();
        for (let i = 1; i <= 5; i++) {
            await rejectsWith(pb.collection("users").authWithPassword(email, `guess-${i}-xxxx`), 400, `guess ${i}`);
        }
        const err = await rejectsWith(pb.collection("users").authWithPassword(email, password), 429, "right password after 5 failures");
        assert.equal(err.response.message, "Too many requests.");

        const res = await fetch(`${server.url}/api/collections/users/auth-with-password`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ identity: email, password }),
        });
        assert.equal(res.status, 429);
        const wait = Number(res.headers.get("retry-after"));
        assert.ok(wait >= 1 && wait <= 60, `Retry-After ${res.headers.get("retry-after")}, want 1..60 seconds`);

        // Other accounts sign in as usual.
        const { email: other, password: otherPassword } = await signUp(server, "unaffected");
        await server.client().collection("users").authWithPassword(other, otherPassword);
    });
});
