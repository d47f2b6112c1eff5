// Signing in: the CLI-made superuser, user sign-up through the public
// users collection, token refresh and wrong credentials.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startServer, SUPERUSER_EMAIL, SUPERUSER_PASSWORD } from "./server.mjs";
import { assertNoSecrets, RECORD_ID, rejectsWith } from "./fixtures.mjs";

/** tokenPayload decodes a JWT's claims without checking the signature. */
function tokenPayload(token) {
    const parts = token.split(".");
    assert.equal(parts.length, 3, `token ${token} is not a JWT`);
    return JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
}

let server;
before(async () => {
    server = await startServer();
});
after(async () => {
    await server?.stop();
});

describe("superuser", () => {
    test("signs in with the password set by `superuser upsert`", async () => {
        const pb = server.client();
        const auth = await pb.collection("_superusers").authWithPassword(SUPERUSER_EMAIL, SUPERUSER_PASSWORD);

        assert.equal(auth.record.email, SUPERUSER_EMAIL);
        assert.equal(auth.record.collectionName, "_superusers");
        assert.match(auth.record.id, RECORD_ID);
        assertNoSecrets(auth.record, "superuser");
        assert.equal(pb.authStore.token, auth.token);
        assert.ok(pb.authStore.isValid, "authStore is not valid after sign-in");
        assert.ok(pb.authStore.isSuperuser, "the SDK does not recognise the token as a superuser's");
        const claims = tokenPayload(auth.token);
        assert.equal(claims.id, auth.record.id);
        assert.equal(claims.type, "auth");
        assert.ok(claims.exp * 1000 > Date.now(), "token is already expired");

        // The token opens superuser-only endpoints.
        const collections = await pb.collections.getFullList();
        assert.ok(collections.some((c) => c.name === "users"), "collections list lacks users");
    });

    test("authRefresh returns a working token for the same record", async () => {
        const pb = server.client();
        const first = await pb.collection("_superusers").authWithPassword(SUPERUSER_EMAIL, SUPERUSER_PASSWORD);
        const refreshed = await pb.collection("_superusers").authRefresh();

        assert.equal(refreshed.record.id, first.record.id);
        assert.equal(refreshed.record.email, SUPERUSER_EMAIL);
        assertNoSecrets(refreshed.record, "refreshed superuser");
        assert.equal(pb.authStore.token, refreshed.token);
        assert.equal(tokenPayload(refreshed.token).id, first.record.id);
        const list = await pb.collections.getList(1, 5);
        assert.ok(list.totalItems >= 2, `collections totalItems = ${list.totalItems}`);
    });

    test("a wrong password is a 400 and leaves the client signed out", async () => {
        const pb = server.client();
        const err = await rejectsWith(
            pb.collection("_superusers").authWithPassword(SUPERUSER_EMAIL, "not-the-password"), 400, "wrong password");
        assert.equal(pb.authStore.isValid, false);
        assert.equal(pb.authStore.token, "");
        assert.doesNotMatch(JSON.stringify(err.response), /not-the-password/);
    });

    test("an unknown email is the same 400 as a wrong password", async () => {
        const pb = server.client();
        const wrongPw = await rejectsWith(
            pb.collection("_superusers").authWithPassword(SUPERUSER_EMAIL, "not-the-password"), 400);
        const noUser = await rejectsWith(
            pb.collection("_superusers").authWithPassword("nobody@example.com", "not-the-password"), 400);
        assert.equal(noUser.response.message, wrongPw.response.message, "the message tells whether the account exists");
    });

    test("authRefresh without a valid token is a 401", async () => {
        const pb = server.client();
        await rejectsWith(pb.collection("_superusers").authRefresh(), 401, "refresh as guest");
        pb.authStore.save("not.a.token", null);
        await rejectsWith(pb.collection("_superusers").authRefresh(), 401, "refresh with garbage token");
    });

    test("a user's token does not sign in as a superuser", async () => {
        const pb = server.client();
        await pb.collection("users").create({ email: "climber@example.com", password: "climber-123456", passwordConfirm: "climber-123456" });
        await pb.collection("users").authWithPassword("climber@example.com", "climber-123456");
        assert.equal(pb.authStore.isSuperuser, false);
        await rejectsWith(pb.collections.getFullList(), 403, "collections list as user");
        // PocketBase answers 403 when the token belongs to another auth collection.
        await rejectsWith(pb.collection("_superusers").authRefresh(), 403, "superuser refresh with a user token");
    });
});

describe("users", () => {
    test("a guest signs up, then signs in with email and password", async () => {
        const guest = server.client();
        const created = await guest.collection("users").create({
            email: "ada@example.com",
            password: "ada-password-1",
            passwordConfirm: "ada-password-1",
            name: "Ada",
        });
        assert.match(created.id, RECORD_ID);
        assert.equal(created.collectionName, "users");
        assert.equal(created.collectionId, "_pb_users_auth_");
        assert.equal(created.name, "Ada");
        assert.equal(created.verified, false);
        assertNoSecrets(created, "signed-up user");
        assert.equal(guest.authStore.isValid, false, "sign-up alone must not sign the client in");

        const pb = server.client();
        const auth = await pb.collection("users").authWithPassword("ada@example.com", "ada-password-1");
        assert.equal(auth.record.id, created.id);
        assert.equal(auth.record.email, "ada@example.com", "a user sees their own email");
        assert.equal(auth.record.name, "Ada");
        assertNoSecrets(auth.record, "signed-in user");
        assert.ok(pb.authStore.isValid);
        assert.equal(pb.authStore.isSuperuser, false);
        assert.equal(pb.authStore.record.id, created.id);
        assert.equal(tokenPayload(auth.token).id, created.id);

        // The user can see and change their own record with that token.
        const me = await pb.collection("users").getOne(created.id);
        assert.equal(me.name, "Ada");
        const renamed = await pb.collection("users").update(created.id, { name: "Ada L." });
        assert.equal(renamed.name, "Ada L.");
        assert.equal(pb.authStore.record.name, "Ada L.", "the SDK keeps the signed-in record in sync");

        const refreshed = await pb.collection("users").authRefresh();
        assert.equal(refreshed.record.id, created.id);
        assert.equal(refreshed.record.name, "Ada L.");
    });

    test("a wrong user password is a 400", async () => {
        const guest = server.client();
        await guest.collection("users").create({ email: "bo@example.com", password: "bo-password-1", passwordConfirm: "bo-password-1" });
        const pb = server.client();
        await rejectsWith(pb.collection("users").authWithPassword("bo@example.com", "bo-password-2"), 400, "wrong user password");
        assert.equal(pb.authStore.isValid, false);
    });

    test("users and superusers are separate: a user cannot sign in as a superuser", async () => {
        const guest = server.client();
        await guest.collection("users").create({ email: "cy@example.com", password: "cy-password-1", passwordConfirm: "cy-password-1" });
        await rejectsWith(server.client().collection("_superusers").authWithPassword("cy@example.com", "cy-password-1"), 400);
        await rejectsWith(server.client().collection("users").authWithPassword(SUPERUSER_EMAIL, SUPERUSER_PASSWORD), 400);
    });

    test("sign-up is validated: mismatched confirmation, short password, taken email", async () => {
        const guest = server.client();
        let err = await rejectsWith(guest.collection("users").create({
            email: "dee@example.com", password: "dee-password-1", passwordConfirm: "dee-password-2",
        }), 400, "mismatched passwordConfirm");
        assert.equal(err.response.data.passwordConfirm?.code, "validation_values_mismatch", JSON.stringify(err.response));

        err = await rejectsWith(guest.collection("users").create({
            email: "dee@example.com", password: "short", passwordConfirm: "short",
        }), 400, "short password");
        assert.ok(err.response.data.password, `no password error in ${JSON.stringify(err.response)}`);

        await guest.collection("users").create({ email: "dee@example.com", password: "dee-password-1", passwordConfirm: "dee-password-1" });
        err = await rejectsWith(guest.collection("users").create({
            email: "dee@example.com", password: "dee-password-9", passwordConfirm: "dee-password-9",
        }), 400, "taken email");
        assert.equal(err.response.data.email?.code, "validation_not_unique", JSON.stringify(err.response));

        // The first account still signs in with its own password.
        const auth = await server.client().collection("users").authWithPassword("dee@example.com", "dee-password-1");
        assert.equal(auth.record.email, "dee@example.com");
    });
});
