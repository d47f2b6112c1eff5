// OWASP API Security Top 10 (2023), API7 — Server Side Request Forgery:
// the S3 and SMTP settings a superuser types in must not make the server
// connect to an internal address. A TCP listener on loopback stands for
// the internal service (the cloud metadata address 169.254.169.254 is
// refused by the same outbound guard, but a connection to it cannot be
// observed from a test); the server runs without --outbound-allow, so
// loopback is not allowed. Either the setting is refused or the
// connection is never made.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { SUPERUSER_EMAIL, startServer } from "../server.mjs";
import { call, listenTCP, superuserToken } from "./lib.mjs";

let internal;

before(async () => {
    internal = await listenTCP();
});

after(() => internal?.close());

test("SMTP settings pointing at an internal address never connect", async () => {
    const server = await startServer();
    try {
        const su = await superuserToken(server);
        for (const host of ["169.254.169.254", "127.0.0.1"]) {
            const r = await call(server, "/api/settings", {
                method: "PATCH", token: su,
                body: { smtp: { enabled: true, host, port: host === "127.0.0.1" ? internal.port : 25 } },
            });
            if (r.status >= 400 && r.status < 500) continue; // refused when saved
            assert.ok(r.status < 300, `PATCH smtp ${host}: HTTP ${r.status}`);
            if (host !== "127.0.0.1") continue; // accepted: only the loopback one can be watched
            const logged = server.output().length;
            const reset = await call(server, "/api/collections/_superusers/request-password-reset", { method: "POST", body: { email: SUPERUSER_EMAIL } });
            assert.ok(reset.status < 300, `request-password-reset: HTTP ${reset.status}`);
            // Wait for the mail's fate: a connection, or the server saying it was not sent.
            for (const end = Date.now() + 5000; Date.now() < end; ) {
                if (internal.connections() > 0 || /email not sent|refused/i.test(server.output().slice(logged))) break;
                await new Promise((res) => setTimeout(res, 20));
            }
            assert.equal(internal.connections(), 0, "the server connected to the internal SMTP address");
        }
    } finally {
        await server.stop();
    }
});

test("S3 settings pointing at an internal address never connect", async () => {
    const server = await startServer();
    try {
        const su = await superuserToken(server);
        const before = internal.connections();
        for (const endpoint of ["http://169.254.169.254", `http://127.0.0.1:${internal.port}`]) {
            const r = await call(server, "/api/settings", {
                method: "PATCH", token: su,
                body: { s3: { enabled: true, bucket: "b", region: "us-east-1", endpoint, accessKey: "k", secret: "s", forcePathStyle: true } },
            });
            if (r.status >= 400 && r.status < 500) continue; // refused when saved
            assert.ok(r.status < 300, `PATCH s3 ${endpoint}: HTTP ${r.status}`);
            if (!endpoint.includes("127.0.0.1")) continue;
            // The S3 settings take effect when serve starts: refusing to
            // start is a refusal too.
            await server.restart().catch(() => {});
            assert.equal(internal.connections() - before, 0, "the server connected to the internal S3 endpoint");
        }
    } finally {
        await server.stop();
    }
});
