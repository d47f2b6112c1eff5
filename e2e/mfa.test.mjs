// Multi-factor authentication through the SDK: password then a mailed
// one-time password (the SDK's own MFA flow), and an authenticator app
// (TOTP, our addition under /totp/ and /auth-with-totp) with recovery
// codes.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { startServer } from "./server.mjs";
import { assertNoSecrets, rejectsWith, signUp } from "./fixtures.mjs";
import { codeIn, MAILPIT_MISSING, startMailpit, useMailpit } from "./mailpit.mjs";

// mailpit listens on loopback, which the server refuses to send mail to
// unless the operator allows it.
process.env.UH_OUTBOUND_ALLOW = "127.0.0.1/32";

let server, mailpit;
let alice, bob, carol; // signed up before MFA is switched on
before(async () => {
    if (MAILPIT_MISSING) return;
    server = await startServer();
    mailpit = await startMailpit();
    const su = await server.superuser();
    await useMailpit(su, mailpit);
    alice = await signUp(server, "mfa-alice");
    bob = await signUp(server, "mfa-bob");
    carol = await signUp(server, "mfa-carol");
    await su.collections.update("users", { otp: { enabled: true }, mfa: { enabled: true, duration: 600 } });
});
after(async () => {
    await server?.stop();
    await mailpit?.stop();
});

/** firstFactor signs in with a password and returns the mfaId of the 401. */
async function firstFactor(pb, who) {
    const err = await rejectsWith(pb.collection("users").authWithPassword(who.email, who.password), 401,
        `${who.email}: password with MFA on`, { clientMade: true });
    assert.match(err.response.mfaId ?? "", /^[a-z0-9]{15}$/, `401 body ${JSON.stringify(err.response)} has an mfaId`);
    assert.equal(pb.authStore.isValid, false, "no session after the first factor");
    return err.response.mfaId;
}

/** mailedCode asks for an OTP and returns { otpId, code } from the mail. */
async function mailedCode(pb, email) {
    const before = await mailpit.count(email);
    const { otpId } = await pb.collection("users").requestOTP(email);
    const deadline = Date.now() + 15_000;
    while ((await mailpit.count(email)) <= before && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
    }
    return { otpId, code: codeIn(await mailpit.waitFor(email, "OTP mail")) };
}

// base32 (RFC 4648, no padding) and RFC 6238 codes, to play the
// authenticator app.
function base32Decode(s) {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bits = 0, value = 0;
    const out = [];
    for (const ch of s.toUpperCase()) {
        value = (value << 5) | alphabet.indexOf(ch);
        bits += 5;
        if (bits >= 8) {
            out.push((value >>> (bits - 8)) & 0xff);
            bits -= 8;
        }
    }
    return Buffer.from(out);
}

function totp(secret, step) {
    const msg = Buffer.alloc(8);
    msg.writeBigUInt64BE(BigInt(step));
    const sum = createHmac("sha1", base32Decode(secret)).update(msg).digest();
    const off = sum[sum.length - 1] & 0x0f;
    return String((sum.readUInt32BE(off) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

const currentStep = () => Math.floor(Date.now() / 1000 / 30);

describe("MFA with password and OTP", { skip: MAILPIT_MISSING }, () => {
    test("the first method answers 401 {mfaId}; a different second one gets the token", async () => {
        const pb = server.client();
        const mfaId = await firstFactor(pb, alice);

        // The same method again is refused.
        await rejectsWith(pb.collection("users").authWithPassword(alice.email, alice.password, { mfaId }), 400, "password twice");

        const { otpId, code } = await mailedCode(pb, alice.email);
        const auth = await pb.collection("users").authWithOTP(otpId, code, { mfaId });
        assert.equal(auth.record.id, alice.user.id);
        assertNoSecrets(auth.record);
        assert.equal(pb.authStore.token, auth.token);
        const me = await pb.collection("users").authRefresh();
        assert.equal(me.record.id, alice.user.id);

        // The session is used up.
        const again = await mailedCode(pb, alice.email);
        await rejectsWith(server.client().collection("users").authWithOTP(again.otpId, again.code, { mfaId }), 400, "reused mfaId");
    });

    test("an mfaId belongs to its record", async () => {
        const mfaId = await firstFactor(server.client(), alice);
        const { otpId, code } = await mailedCode(server.client(), bob.email);
        await rejectsWith(server.client().collection("users").authWithOTP(otpId, code, { mfaId }), 400, "bob's code on alice's session");
        await rejectsWith(server.client().collection("users").authWithPassword(alice.email, alice.password, { mfaId: "nosuchmfaid1234" }), 400, "unknown mfaId");
    });
});

describe("authenticator app (TOTP)", { skip: MAILPIT_MISSING }, () => {
    test("enrol, confirm, sign in with password + TOTP, recovery code, disable", async () => {
        const pb = carol.pb; // signed in before MFA was switched on
        const post = (path, body) => pb.send(`/api/collections/users/${path}`, { method: "POST", body });

        await rejectsWith(server.client().send("/api/collections/users/totp/enroll", { method: "POST" }), 401, "guest enrols");
        const enrolment = await post("totp/enroll");
        assert.match(enrolment.secret, /^[A-Z2-7]{32}$/);
        assert.match(enrolment.otpauthUrl, /^otpauth:\/\/totp\/E2E:mfa-carol(@|%40)example\.com\?/);
        assert.equal(enrolment.recoveryCodes.length, 10);

        await rejectsWith(post("totp/confirm", { code: "000000" === totp(enrolment.secret, currentStep()) ? "111111" : "000000" }), 400, "wrong first code");
        const step = currentStep();
        await post("totp/confirm", { code: totp(enrolment.secret, step) });

        // Password + OTP no longer suffice for carol: her app is required.
        const guest = server.client();
        let mfaId = await firstFactor(guest, carol);
        const { otpId, code } = await mailedCode(guest, carol.email);
        await rejectsWith(guest.collection("users").authWithOTP(otpId, code, { mfaId }), 400, "OTP instead of the app");

        // The confirming code cannot be replayed; the next one works.
        await rejectsWith(guest.send("/api/collections/users/auth-with-totp", { method: "POST", body: { mfaId, code: totp(enrolment.secret, step) } }), 400, "replayed code");
        const next = totp(enrolment.secret, step + 1);
        const auth = await guest.send("/api/collections/users/auth-with-totp", { method: "POST", body: { mfaId, code: next } });
        assert.equal(auth.record.id, carol.user.id);
        assertNoSecrets(auth.record);
        guest.authStore.save(auth.token, auth.record);
        assert.equal((await guest.collection("users").authRefresh()).record.id, carol.user.id);

        // A code alone is no login.
        await rejectsWith(server.client().send("/api/collections/users/auth-with-totp", { method: "POST", body: { code: next } }), 400, "no mfaId");

        // A recovery code completes a login once.
        const recovery = enrolment.recoveryCodes[0];
        mfaId = await firstFactor(server.client(), carol);
        const viaRecovery = await server.client().send("/api/collections/users/auth-with-totp", { method: "POST", body: { mfaId, code: recovery } });
        assert.equal(viaRecovery.record.id, carol.user.id);
        mfaId = await firstFactor(server.client(), carol);
        await rejectsWith(server.client().send("/api/collections/users/auth-with-totp", { method: "POST", body: { mfaId, code: recovery } }), 400, "used recovery code");

        // Disabling takes a code; afterwards password + OTP work again.
        const signedIn = server.client();
        signedIn.authStore.save(auth.token, auth.record);
        await rejectsWith(signedIn.send("/api/collections/users/totp/disable", { method: "POST", body: { code: "abcde-fghij" } }), 400, "disable with a wrong code");
        await signedIn.send("/api/collections/users/totp/disable", { method: "POST", body: { code: enrolment.recoveryCodes[1] } });
        const again = server.client();
        mfaId = await firstFactor(again, carol);
        const otp = await mailedCode(again, carol.email);
        const done = await again.collection("users").authWithOTP(otp.otpId, otp.code, { mfaId });
        assert.equal(done.record.id, carol.user.id);
    });
});
