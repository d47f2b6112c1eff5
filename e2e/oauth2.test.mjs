// OAuth2 sign-in with the SDK's authWithOAuth2Code against a real OpenID
// Connect provider started by this file on loopback: discovery, a JWK set,
// authorize, token (checking the client secret and the PKCE verifier) and
// userinfo, with RS256 id_tokens signed by node:crypto. The server may
// reach it because this file starts the server with
// UH_OUTBOUND_ALLOW=127.0.0.1/32; a second server without it shows the
// provider refused. The popup flow, authWithOAuth2({provider}), runs with
// a urlCallback that plays the browser's popup.

import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, randomBytes, sign, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { EventSource } from "eventsource";
import { startServer } from "./server.mjs";
import { assertNoSecrets, RECORD_ID, rejectsWith, signUp } from "./fixtures.mjs";

const CLIENT_ID = "e2e-client";
const CLIENT_SECRET = "e2e-client-secret";
const REDIRECT_URL = "http://127.0.0.1:5173/oauth2-callback";

// Node has no EventSource of its own; the SDK's popup flow needs one.
globalThis.EventSource = EventSource;

const b64url = (buf) => Buffer.from(buf).toString("base64url");
const s256 = (s) => b64url(createHash("sha256").update(s).digest());

/** startIdP runs the test provider; it resolves to { url, users, tokenRequests(), close() }. */
async function startIdP() {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = { ...publicKey.export({ format: "jwk" }), kid: "e2e-key", use: "sig", alg: "RS256" };
    const users = new Map(); // login → { sub, email, email_verified, name }
    const codes = new Map(); // code → { redirectURI, challenge, nonce, login, used }
    const access = new Map(); // access token → login
    let tokenRequests = 0;
    let url;

    const signJWT = (claims) => {
        const head = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid: jwk.kid }));
        const body = b64url(JSON.stringify(claims));
        return `${head}.${body}.${b64url(sign("sha256", Buffer.from(`${head}.${body}`), privateKey))}`;
    };
    const json = (res, status, v) => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(v));
    };
    const readForm = (req) =>
        new Promise((ok) => {
            let s = "";
            req.on("data", (c) => (s += c));
            req.on("end", () => ok(new URLSearchParams(s)));
        });
    const same = (a, b) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

    const srv = createServer(async (req, res) => {
        const u = new URL(req.url, url);
        if (req.method === "GET" && u.pathname === "/.well-known/openid-configuration") {
            return json(res, 200, {
                issuer: url,
                authorization_endpoint: `${url}/authorize`,
                token_endpoint: `${url}/token`,
                userinfo_endpoint: `${url}/userinfo`,
                jwks_uri: `${url}/jwks`,
                token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
            });
        }
        if (req.method === "GET" && u.pathname === "/jwks") {
            return json(res, 200, { keys: [jwk] });
        }
        if (req.method === "GET" && u.pathname === "/authorize") {
            // No login page: login_hint names the user who signs in.
            const q = u.searchParams;
            const back = new URL(q.get("redirect_uri"));
            back.searchParams.set("state", q.get("state"));
            const login = q.get("login_hint");
            if (q.get("client_id") !== CLIENT_ID || !users.has(login)) {
                back.searchParams.set("error", "access_denied");
            } else {
                const code = b64url(randomBytes(24));
                codes.set(code, {
                    redirectURI: q.get("redirect_uri"), challenge: q.get("code_challenge"),
                    method: q.get("code_challenge_method"), nonce: q.get("nonce"), login, used: false,
                });
                back.searchParams.set("code", code);
            }
            res.writeHead(302, { Location: back.toString() });
            return res.end();
        }
        if (req.method === "POST" && u.pathname === "/token") {
            tokenRequests++;
            const form = await readForm(req);
            let id = form.get("client_id") ?? "";
            let secret = form.get("client_secret") ?? "";
            const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? "");
            if (basic) {
                [id, secret] = Buffer.from(basic[1], "base64").toString().split(":").map(decodeURIComponent);
            }
            if (id !== CLIENT_ID || !same(secret, CLIENT_SECRET)) {
                return json(res, 401, { error: "invalid_client" });
            }
            const code = codes.get(form.get("code"));
            if (!code || code.used || code.redirectURI !== form.get("redirect_uri")) {
                return json(res, 400, { error: "invalid_grant" });
            }
            code.used = true;
            const verifier = form.get("code_verifier") ?? "";
            if (code.challenge && (code.method !== "S256" || !verifier || !same(s256(verifier), code.challenge))) {
                return json(res, 400, { error: "invalid_grant", error_description: "PKCE verification failed" });
            }
            const user = users.get(code.login);
            const token = b64url(randomBytes(24));
            access.set(token, code.login);
            const now = Math.floor(Date.now() / 1000);
            const idToken = signJWT({
                iss: url, aud: CLIENT_ID, sub: user.sub, iat: now, exp: now + 600,
                ...(code.nonce ? { nonce: code.nonce } : {}),
                email: user.email, email_verified: user.email_verified, name: user.name,
            });
            return json(res, 200, {
                access_token: token, token_type: "Bearer", expires_in: 600, refresh_token: `r-${token}`, id_token: idToken,
            });
        }
        if (req.method === "GET" && u.pathname === "/userinfo") {
            const login = access.get((req.headers.authorization ?? "").replace(/^Bearer /, ""));
            if (!login) {
                return json(res, 401, { error: "invalid_token" });
            }
            const user = users.get(login);
            return json(res, 200, { ...user, preferred_username: login });
        }
        json(res, 404, { error: "not_found" });
    });
    await new Promise((ok) => srv.listen(0, "127.0.0.1", ok));
    url = `http://127.0.0.1:${srv.address().port}`;
    return {
        url,
        users,
        tokenRequests: () => tokenRequests,
        close: () => new Promise((ok) => srv.close(ok)),
    };
}

/** authorize plays the browser: it follows authURL as `login` and returns the redirect's query. */
async function authorize(provider, login) {
    const res = await fetch(`${provider.authURL}${REDIRECT_URL}&login_hint=${encodeURIComponent(login)}`, { redirect: "manual" });
    assert.equal(res.status, 302, `authorize answered ${res.status}`);
    const back = new URL(res.headers.get("location"));
    assert.ok(back.href.startsWith(REDIRECT_URL), `redirected to ${back.href}`);
    return back.searchParams;
}

/**
 * popup plays the browser window the SDK would open: it loads the auth
 * URL as `login`, follows the provider's redirect to the server's
 * /api/oauth2-redirect and returns that page's { res, html }.
 */
async function popup(url, login) {
    const res = await fetch(`${url}&login_hint=${encodeURIComponent(login)}`, { redirect: "manual" });
    assert.equal(res.status, 302, `authorize answered ${res.status}`);
    const back = res.headers.get("location");
    assert.ok(back.startsWith(`${server.url}/api/oauth2-redirect?`), `the provider sent the browser to ${back}`);
    const page = await fetch(back);
    return { res: page, html: await page.text() };
}

let idp;
let server;
let su;

async function enableOAuth2(admin) {
    await admin.collections.update("users", {
        oauth2: {
            enabled: true,
            mappedFields: { name: "name", avatarURL: "avatar" },
            providers: [{
                name: "oidc", displayName: "E2E IdP", clientId: CLIENT_ID, clientSecret: CLIENT_SECRET,
                extra: { issuer: idp.url },
            }],
        },
    });
}

before(async () => {
    idp = await startIdP();
    idp.users.set("carol", { sub: "sub-carol", email: "carol@example.com", email_verified: true, name: "Carol Example" });
    idp.users.set("dave", { sub: "sub-dave", email: "dave@example.com", email_verified: true, name: "Dave at IdP" });
    idp.users.set("mallory", { sub: "sub-mallory", email: "dave@example.com", email_verified: false, name: "Mallory" });
    process.env.UH_OUTBOUND_ALLOW = "127.0.0.1/32";
    try {
        server = await startServer();
    } finally {
        delete process.env.UH_OUTBOUND_ALLOW;
    }
    su = await server.superuser();
    await enableOAuth2(su);
});
after(async () => {
    await server?.stop();
    await idp?.close();
});

/** provider returns the oidc entry of listAuthMethods for a fresh client. */
async function startSignIn(pb) {
    const methods = await pb.collection("users").listAuthMethods();
    const p = methods.oauth2.providers.find((x) => x.name === "oidc");
    assert.ok(p, `auth-methods lists no oidc provider: ${JSON.stringify(methods.oauth2)}`);
    return p;
}

async function userCount() {
    return (await su.collection("users").getList(1, 1)).totalItems;
}

describe("oauth2 sign-in", () => {
    test("listAuthMethods lists the provider with state, PKCE and an authURL to append to", async () => {
        const pb = server.client();
        const methods = await pb.collection("users").listAuthMethods();
        assert.equal(methods.oauth2.enabled, true);
        const p = methods.oauth2.providers.find((x) => x.name === "oidc");
        assert.equal(p.displayName, "E2E IdP");
        assert.equal(p.codeChallengeMethod, "S256");
        assert.equal(p.codeChallenge, s256(p.codeVerifier));
        assert.ok(p.state.length >= 30, `state ${p.state}`);
        assert.ok(p.authURL.startsWith(`${idp.url}/authorize?`), p.authURL);
        assert.ok(p.authURL.endsWith("&redirect_uri="), p.authURL);
        const q = new URL(p.authURL).searchParams;
        assert.equal(q.get("client_id"), CLIENT_ID);
        assert.equal(q.get("code_challenge"), p.codeChallenge);
        assert.equal(q.get("state"), p.state);
        assert.ok(!p.authURL.includes(CLIENT_SECRET), "the authURL carries the client secret");
    });

    test("a new user signs up, and signs in again to the same record", async () => {
        const before = await userCount();
        const pb = server.client();
        let p = await startSignIn(pb);
        let back = await authorize(p, "carol");
        assert.equal(back.get("state"), p.state, "the provider must return the client's state");
        const first = await pb.collection("users").authWithOAuth2Code("oidc", back.get("code"), p.codeVerifier, REDIRECT_URL, {
            emailVisibility: true,
        });
        assert.match(first.record.id, RECORD_ID);
        assert.equal(first.record.email, "carol@example.com");
        assert.equal(first.record.verified, true);
        assert.equal(first.record.name, "Carol Example");
        assert.equal(first.record.emailVisibility, true);
        assertNoSecrets(first.record, "oauth2 record");
        assert.equal(first.meta.isNew, true);
        assert.equal(first.meta.id, "sub-carol");
        assert.equal(first.meta.email, "carol@example.com");
        assert.ok(first.meta.accessToken && first.meta.refreshToken, `meta ${JSON.stringify(first.meta)}`);
        assert.equal(first.meta.rawUser.sub, "sub-carol");
        assert.ok(pb.authStore.isValid, "the SDK did not store the token");
        assert.equal((await pb.collection("users").authRefresh()).record.id, first.record.id);
        assert.equal(await userCount(), before + 1);

        const pb2 = server.client();
        p = await startSignIn(pb2);
        back = await authorize(p, "carol");
        const second = await pb2.collection("users").authWithOAuth2Code("oidc", back.get("code"), p.codeVerifier, REDIRECT_URL);
        assert.equal(second.record.id, first.record.id);
        assert.equal(second.meta.isNew, false);
        assert.equal(await userCount(), before + 1);
    });

    test("a provider account with a verified email signs in to the existing account", async () => {
        const pw = "dave-password-123";
        const dave = await server.client().collection("users").create({ email: "dave@example.com", password: pw, passwordConfirm: pw });
        const pb = server.client();
        const p = await startSignIn(pb);
        const back = await authorize(p, "dave");
        const auth = await pb.collection("users").authWithOAuth2Code("oidc", back.get("code"), p.codeVerifier, REDIRECT_URL);
        assert.equal(auth.record.id, dave.id);
        assert.equal(auth.meta.isNew, false);
        assert.equal(auth.record.verified, true);
    });

    test("an unverified email at the provider links nothing and creates nothing", async () => {
        const before = await userCount();
        const pb = server.client();
        const p = await startSignIn(pb);
        const back = await authorize(p, "mallory");
        const err = await rejectsWith(
            pb.collection("users").authWithOAuth2Code("oidc", back.get("code"), p.codeVerifier, REDIRECT_URL),
            400, "unverified email");
        assert.ok("email" in err.response.data, `error data ${JSON.stringify(err.response.data)}`);
        assert.equal(pb.authStore.isValid, false);
        assert.equal(await userCount(), before);
    });

    test("a missing or wrong PKCE verifier is refused by the provider: a clean 400", async () => {
        const before = await userCount();
        for (const verifier of ["", "x".repeat(43)]) {
            const pb = server.client();
            const p = await startSignIn(pb);
            const back = await authorize(p, "carol");
            const requests = idp.tokenRequests();
            const err = await rejectsWith(
                pb.collection("users").authWithOAuth2Code("oidc", back.get("code"), verifier, REDIRECT_URL),
                400, `verifier ${JSON.stringify(verifier)}`);
            assert.equal(err.response.message, "Failed to fetch OAuth2 token.");
            assert.equal(idp.tokenRequests(), requests + 1, "the provider was not asked");
        }
        assert.equal(await userCount(), before);
    });

    test("a provider error (a reused code, a denied consent) is a 400", async () => {
        const pb = server.client();
        const p = await startSignIn(pb);
        const back = await authorize(p, "carol");
        await pb.collection("users").authWithOAuth2Code("oidc", back.get("code"), p.codeVerifier, REDIRECT_URL);
        const err = await rejectsWith(
            server.client().collection("users").authWithOAuth2Code("oidc", back.get("code"), p.codeVerifier, REDIRECT_URL),
            400, "reused code");
        assert.equal(err.response.message, "Failed to fetch OAuth2 token.");

        // A denied consent comes back without a code; the SDK's popup flow
        // stops there, and a client that posts anyway gets a 400.
        const denied = await authorize(await startSignIn(pb), "nobody");
        assert.equal(denied.get("error"), "access_denied");
        const err2 = await rejectsWith(
            server.client().collection("users").authWithOAuth2Code("oidc", denied.get("code") ?? "", p.codeVerifier, REDIRECT_URL),
            400, "no code");
        assert.ok("code" in err2.response.data, JSON.stringify(err2.response.data));
    });

    test("an unknown provider is a 400 naming the field", async () => {
        const err = await rejectsWith(
            server.client().collection("users").authWithOAuth2Code("nope", "code", "verifier", REDIRECT_URL),
            400, "unknown provider");
        assert.equal(err.response.data.provider.code, "validation_invalid_provider");
    });

    test("client secrets stay with superusers", async () => {
        const methods = await server.client().collection("users").listAuthMethods();
        assert.ok(!JSON.stringify(methods).includes(CLIENT_SECRET), "auth-methods shows the client secret");
        await rejectsWith(server.client().collections.getOne("users"), 401, "guest reads the collection");
        const { pb } = await signUp(server, "frank");
        await rejectsWith(pb.collections.getOne("users"), 403, "user reads the collection");
        assert.ok(!server.output().includes(CLIENT_SECRET), "the server log holds the client secret");
    });
});

describe("oauth2 popup flow (authWithOAuth2 over realtime)", () => {
    test("a new user signs up through the popup and the SDK stores the login", async () => {
        idp.users.set("erin", { sub: "sub-erin", email: "erin@example.com", email_verified: true, name: "Erin Popup" });
        const before = await userCount();
        const pb = server.client();
        let authURL;
        let browsing; // the popup's page may still load when the login is done
        const auth = await pb.collection("users").authWithOAuth2({
            provider: "oidc",
            createData: { emailVisibility: true },
            urlCallback: (url) => {
                authURL = new URL(url);
                browsing = popup(url, "erin");
                return browsing;
            },
        });
        const page = await browsing;
        assert.equal(authURL.searchParams.get("redirect_uri"), `${server.url}/api/oauth2-redirect`);
        assert.ok(authURL.searchParams.get("state")?.length >= 30, `state ${authURL.searchParams.get("state")}`);
        assert.equal(page.res.status, 200, page.html);
        assert.match(page.res.headers.get("content-type"), /^text\/html/);
        assert.match(page.res.headers.get("content-security-policy"), /default-src 'none'/);
        assert.equal(page.res.headers.get("cache-control"), "no-store");
        assert.match(page.html, /window\.close\(\)/);
        assert.ok(!page.html.includes(authURL.searchParams.get("state")), "the page shows the state");

        assert.equal(auth.meta.isNew, true);
        assert.equal(auth.record.email, "erin@example.com");
        assert.equal(auth.record.name, "Erin Popup");
        assert.equal(auth.record.emailVisibility, true);
        assert.ok(pb.authStore.isValid, "the SDK did not store the token");
        assert.equal(pb.authStore.record.id, auth.record.id);
        assert.equal((await pb.collection("users").authRefresh()).record.email, "erin@example.com");
        assert.equal(await userCount(), before + 1);

        // The same account through the popup again: the same record.
        const pb2 = server.client();
        const again = await pb2.collection("users").authWithOAuth2({ provider: "oidc", urlCallback: (url) => popup(url, "erin") });
        assert.equal(again.record.id, auth.record.id);
        assert.equal(again.meta.isNew, false);
        assert.equal(await userCount(), before + 1);
    });

    test("a denied consent reaches the SDK as an error and logs nobody in", async () => {
        const before = await userCount();
        const pb = server.client();
        let browsing;
        await assert.rejects(
            pb.collection("users").authWithOAuth2({
                provider: "oidc",
                urlCallback: (url) => {
                    browsing = popup(url, "nobody");
                    return browsing;
                },
            }),
            (err) => {
                // The SDK wraps the redirect's error; its text is the cause's.
                assert.match(err.originalError?.message ?? "", /OAuth2 redirect error.*access_denied/);
                return true;
            },
        );
        const page = await browsing;
        assert.equal(page.res.status, 200, page.html);
        assert.match(page.html, /Sign-in failed/);
        assert.match(page.html, /access_denied/);
        assert.equal(pb.authStore.isValid, false);
        assert.equal(await userCount(), before);
    });

    test("a redirect with a state no client waits for sends nothing and shows an error page", async () => {
        const res = await fetch(`${server.url}/api/oauth2-redirect?state=not-a-client&code=some-code`);
        const html = await res.text();
        assert.equal(res.status, 400, html);
        assert.match(html, /Sign-in expired/);
        assert.ok(!html.includes("window.close"), "an error page closes itself");
    });
});

describe("without the outbound allow list", () => {
    let strict;
    before(async () => {
        strict = await startServer();
        await enableOAuth2(await strict.superuser());
    });
    after(async () => {
        await strict?.stop();
    });

    test("a provider on loopback is refused", async () => {
        const requests = idp.tokenRequests();
        const methods = await strict.client().collection("users").listAuthMethods();
        assert.equal(methods.oauth2.enabled, true);
        assert.deepEqual(methods.oauth2.providers, [], "discovery on loopback must fail");
        await rejectsWith(
            strict.client().collection("users").authWithOAuth2Code("oidc", "some-code", "v".repeat(43), REDIRECT_URL),
            400, "provider on loopback");
        assert.equal(idp.tokenRequests(), requests, "the server reached the loopback provider");
    });
});
