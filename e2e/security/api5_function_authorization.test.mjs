// OWASP API Security Top 10 (2023), API5 — Broken Function Level
// Authorization: superuser functions stay a superuser's, and a
// superuserIPs setting, once accepted, is honoured (a setting accepted
// and ignored gave a false sense of safety).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { SUPERUSER_EMAIL, SUPERUSER_PASSWORD, startServer } from "../server.mjs";
import { assertOK, assertRefused, call, preview, signIn, superuserToken, trustForwardedFor } from "./lib.mjs";

let server;
let su;
let user;

before(async () => {
    server = await startServer();
    su = await superuserToken(server);
    user = await signIn(server, "bfla-user@example.com");
});

after(() => server?.stop());

// Superuser-only functions refuse guests and users (already safe; kept so).
test("guests and users cannot reach superuser functions", async () => {
    const calls = [
        ["GET", "/api/settings"],
        ["PATCH", "/api/settings", { meta: { appName: "pwned" } }],
        ["GET", "/api/collections"],
        ["POST", "/api/collections", { name: "pwned", type: "base" }],
        ["PATCH", "/api/collections/users", { listRule: "" }],
        ["DELETE", "/api/collections/users/truncate"],
        ["PUT", "/api/collections/import", { collections: [], deleteMissing: false }],
        ["POST", `/api/collections/users/impersonate/${user.id}`, {}],
        ["GET", "/api/webhooks"],
        ["GET", "/debug/pprof/"],
    ];
    for (const [method, path, body] of calls) {
        for (const [who, token] of [["guest", undefined], ["user", user.token]]) {
            const r = await call(server, path, { method, body, token });
            assertRefused(r, `${who} ${method} ${path}`);
        }
    }
    const st = await call(server, "/api/settings", { token: su });
    assert.notEqual(st.body.meta.appName, "pwned", "the settings are unchanged");
});

// superuserIPs — accepted and ignored before. Either the setting is refused
// (400) or a superuser is refused outside the listed addresses, while users
// are not affected.
test("superuserIPs is honoured or refused", async () => {
    const suClient = await server.superuser();
    await trustForwardedFor(suClient);
    const allowed = "10.77.0.1";
    const outside = "10.77.0.2";
    const r = await call(server, "/api/settings", { method: "PATCH", token: su, ip: allowed, body: { superuserIPs: [allowed] } });
    if (r.status >= 400 && r.status < 500) {
        return; // refused: nothing is promised that is not kept
    }
    assertOK(r, "PATCH superuserIPs");
    const fromOutside = await call(server, "/api/collections", { token: su, ip: outside });
    assertRefused(fromOutside, `a superuser request from ${outside}, outside superuserIPs`);
    const login = await call(server, "/api/collections/_superusers/auth-with-password", {
        method: "POST", ip: outside, body: { identity: SUPERUSER_EMAIL, password: SUPERUSER_PASSWORD },
    });
    assert.ok(login.status !== 200 || !login.body.token, `a superuser login from ${outside} succeeded: ${preview(login.body)}`);
    assertOK(await call(server, "/api/collections", { token: su, ip: allowed }), `a superuser request from ${allowed}`);
    assertOK(await call(server, `/api/collections/users/records/${user.id}`, { token: user.token, ip: outside }), "a user is not affected");
    // Leave the server usable for the rest of the file.
    assertOK(await call(server, "/api/settings", { method: "PATCH", token: su, ip: allowed, body: { superuserIPs: [] } }), "clear superuserIPs");
});
