// The email flows through the SDK, with the mail going over real SMTP to
// mailpit: verification, password reset, email change and one-time
// passwords; and the request endpoints' answers, which are the same for
// an unknown address.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startServer } from "./server.mjs";
import { rejectsWith, signUp } from "./fixtures.mjs";
import { codeIn, MAILPIT_MISSING, startMailpit, tokenIn, useMailpit } from "./mailpit.mjs";

// mailpit listens on loopback, which the server refuses to send mail to
// unless the operator allows it.
process.env.UH_OUTBOUND_ALLOW = "127.0.0.1/32";

let server, mailpit;
before(async () => {
    if (MAILPIT_MISSING) return;
    server = await startServer();
    mailpit = await startMailpit();
    await useMailpit(await server.superuser(), mailpit);
});
after(async () => {
    await server?.stop();
    await mailpit?.stop();
});

/** rawPost posts a JSON body and returns { status, text }. */
async function rawPost(path, body) {
    const res = await fetch(server.url + path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
}

describe("email flows", { skip: MAILPIT_MISSING }, () => {
    test("requestVerification mails a link; confirmVerification marks the user verified", async () => {
        const { pb, user, email } = await signUp(server, "verify-me");
        assert.equal(user.verified, false);

        assert.equal(await pb.collection("users").requestVerification(email), true);
        const msg = await mailpit.waitFor(email, "verification mail");
        assert.equal(msg.Subject, "Verify your E2E email");
        assert.equal(msg.From.Address, "no-reply@e2e.test");
        assert.match(msg.Text, /https:\/\/e2e\.test\/_\/#\/auth\/confirm-verification\//, "the plain-text part has the link");
        const token = tokenIn(msg, "confirm-verification");

        assert.equal(await server.client().collection("users").confirmVerification(token), true);
        // The SDK updates its stored record; the server agrees.
        const refreshed = await pb.collection("users").authRefresh();
        assert.equal(refreshed.record.verified, true);

        // The verification token is no auth token.
        const guest = server.client();
        guest.authStore.save(token, null);
        await rejectsWith(guest.collection("users").authRefresh(), 401, "verification token as auth token");
        await rejectsWith(server.client().collection("users").confirmVerification("not-a-token"), 400, "garbage token");
    });

    test("requestPasswordReset / confirmPasswordReset change the password and void earlier tokens", async () => {
        const { pb, email, password } = await signUp(server, "forgetful");
        const oldToken = pb.authStore.token;

        assert.equal(await server.client().collection("users").requestPasswordReset(email), true);
        const msg = await mailpit.waitFor(email, "password reset mail");
        assert.equal(msg.Subject, "Reset your E2E password");
        const token = tokenIn(msg, "confirm-password-reset");

        const guest = server.client();
        const err = await rejectsWith(guest.collection("users").confirmPasswordReset(token, "new-pass-123", "other-pass-123"), 400, "mismatch");
        assert.ok(err.response.data.passwordConfirm, `data ${JSON.stringify(err.response.data)} names passwordConfirm`);
        assert.equal(await guest.collection("users").confirmPasswordReset(token, "new-pass-123", "new-pass-123"), true);

        // The old session is gone, the old password too; the new one works.
        await rejectsWith(pb.collection("users").authRefresh(), 401, "refresh with a token from before the reset");
        const stale = server.client();
        stale.authStore.save(oldToken, null);
        await rejectsWith(stale.collection("users").authRefresh(), 401, "old token");
        await rejectsWith(server.client().collection("users").authWithPassword(email, password), 400, "old password");
        const fresh = await server.client().collection("users").authWithPassword(email, "new-pass-123");
        assert.equal(fresh.record.email, email);
        assert.equal(fresh.record.verified, true, "a completed reset proves the address");
        // The reset token works once.
        await rejectsWith(guest.collection("users").confirmPasswordReset(token, "third-pass-123", "third-pass-123"), 400, "reused reset token");
    });

    test("requestEmailChange / confirmEmailChange move the account to a new address", async () => {
        const { pb, email, password } = await signUp(server, "mover");
        const newEmail = "mover.new@example.com";
        await rejectsWith(server.client().collection("users").requestEmailChange(newEmail), 401, "guest asks for a change");

        assert.equal(await pb.collection("users").requestEmailChange(newEmail), true);
        const msg = await mailpit.waitFor(newEmail, "email change mail");
        assert.equal(msg.Subject, "Confirm your E2E new email address");
        assert.equal(await mailpit.count(email), 0, "nothing goes to the old address");
        const token = tokenIn(msg, "confirm-email-change");

        const err = await rejectsWith(server.client().collection("users").confirmEmailChange(token, "wrong-password"), 400, "wrong password");
        assert.ok(err.response.data.password, `data ${JSON.stringify(err.response.data)} names password`);
        assert.equal(await pb.collection("users").confirmEmailChange(token, password), true);
        assert.equal(pb.authStore.isValid, false, "the SDK signs out the changed account");

        const after = await server.client().collection("users").authWithPassword(newEmail, password);
        assert.equal(after.record.email, newEmail);
        assert.equal(after.record.verified, true);
        await rejectsWith(server.client().collection("users").authWithPassword(email, password), 400, "old address");
    });

    test("requestOTP / authWithOTP sign in with a mailed code", async () => {
        const su = await server.superuser();
        await su.collections.update("users", { otp: { enabled: true, duration: 180, length: 8 } });
        const { email } = await signUp(server, "otp-user");

        const pb = server.client();
        const { otpId } = await pb.collection("users").requestOTP(email);
        assert.match(otpId, /^[a-z0-9]{15}$/);
        const msg = await mailpit.waitFor(email, "OTP mail");
        assert.equal(msg.Subject, "OTP for E2E");
        const code = codeIn(msg);

        const wrong = code === "00000000" ? "11111111" : "00000000";
        const bad = await rejectsWith(pb.collection("users").authWithOTP(otpId, wrong), 400, "wrong code");
        const auth = await pb.collection("users").authWithOTP(otpId, code);
        assert.equal(auth.record.email, email);
        assert.equal(auth.record.verified, true, "the code reached the address");
        assert.equal(pb.authStore.token, auth.token);
        assert.ok(pb.authStore.isValid);
        // A code works once.
        const reused = await rejectsWith(server.client().collection("users").authWithOTP(otpId, code), 400, "reused code");
        assert.equal(reused.response.message, bad.response.message);
    });
});

describe("request endpoints reveal nothing", { skip: MAILPIT_MISSING }, () => {
    test("a known and an unknown address get the same answer", async () => {
        const su = await server.superuser();
        await su.collections.update("users", { otp: { enabled: true } });
        const { email } = await signUp(server, "known");
        const unknown = "nobody-at-all@example.com";
        for (const path of ["request-verification", "request-password-reset"]) {
            const a = await rawPost(`/api/collections/users/${path}`, { email });
            const b = await rawPost(`/api/collections/users/${path}`, { email: unknown });
            assert.equal(a.status, 204, `${path} known: ${a.text}`);
            assert.deepEqual(b, a, `${path}: unknown address answered differently`);
        }
        const a = await rawPost("/api/collections/users/request-otp", { email });
        const b = await rawPost("/api/collections/users/request-otp", { email: unknown });
        assert.equal(a.status, 200);
        assert.equal(b.status, 200);
        assert.deepEqual(Object.keys(JSON.parse(a.text)), ["otpId"]);
        assert.deepEqual(Object.keys(JSON.parse(b.text)), ["otpId"]);
        // The unknown address's otpId fails like a wrong code.
        const fake = await rejectsWith(server.client().collection("users").authWithOTP(JSON.parse(b.text).otpId, "12345678"), 400, "otp of unknown address");
        const real = await rejectsWith(server.client().collection("users").authWithOTP(JSON.parse(a.text).otpId, "1234567"), 400, "wrong code");
        assert.equal(fake.response.message, real.response.message);

        await mailpit.waitFor(email, "mail to the known address");
        assert.equal(await mailpit.count(unknown), 0, "mail went to an address no account has");
    });
});
