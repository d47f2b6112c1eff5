// The admin dashboard at /_/ in a real browser: Debian's Chromium driven
// by playwright-core, against the real binary. One browser for the whole
// file; the steps run in order on one server, as a person would go:
// install, sign in, reload, see a collection, sign out, lose the session
// to a revocation and to a bad token, then sign in with a second factor.
// Every page is checked with axe-core. Screenshots of each page go to
// e2e/screenshots/ (and, when a step
// fails, failure.png and the server's output in failure-server.log).

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import AxeBuilder from "@axe-core/playwright";
import { chromium } from "playwright-core";
import { startServer } from "./server.mjs";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = join(dirname(fileURLToPath(import.meta.url)), "screenshots");
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} missing: apt-get install -y chromium (.ci/test does)`;

const EMAIL = "owner@example.com";
const PASSWORD = "dashboard-Pass-1234";

let server, browser, page;
let installLink; // the one-time link the server printed
const problems = []; // console errors and CSP violations of the page

before(async () => {
    if (skip) return;
    await mkdir(SHOTS, { recursive: true });
    for (const old of ["failure.png", "failure-server.log"]) await rm(join(SHOTS, old), { force: true });
    server = await startServer({ superuser: false });
    browser = await chromium.launch({
        executablePath: CHROMIUM,
        // playwright-core adds --headless and --no-sandbox, and gives the
        // browser a new empty profile; the rest keep Chromium off the
        // network, which this machine closes.
        args: ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"],
    });
    const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
    page = await context.newPage();
    page.setDefaultTimeout(5_000);
    page.on("console", (m) => {
        // A 401 the dashboard expects shows as a failed resource load.
        if (m.type() === "error" && !/status of 40[013]/.test(m.text())) problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(String(e)));
});

after(async () => {
    await browser?.close();
    await server?.stop();
});

/** step runs fn and, when it fails, saves a screenshot of the page. */
function step(name, fn) {
    test(name, { skip }, async () => {
        try {
            await fn();
            assert.deepEqual(problems, [], "no console error or CSP violation");
        } catch (err) {
            await page?.screenshot({ path: join(SHOTS, "failure.png"), fullPage: true }).catch(() => {});
            await writeFile(join(SHOTS, "failure-server.log"), server?.output() ?? "").catch(() => {});
            throw err;
        }
    });
}

/**
 * look saves a screenshot of the page as name.png and checks it with
 * axe-core: no serious or critical accessibility violation.
 */
async function look(name) {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
    const { violations } = await new AxeBuilder({ page }).analyze();
    const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    assert.deepEqual(bad.map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`), [],
        `${name}: accessibility violations`);
}

async function signInAs(email, password) {
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password", { exact: true }).fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
}

async function apiSuperuser() {
    const pb = server.client();
    await pb.collection("_superusers").authWithPassword(EMAIL, PASSWORD);
    return pb;
}

step("the server prints the dashboard and the install link, which opens the install form", async () => {
    const out = server.output();
    assert.ok(out.includes(`Dashboard: ${server.url}/_/`), `banner:\n${out}`);
    installLink = out.match(/(http:\/\/\S+\/_\/#\/install\?token=\S+)/)?.[1];
    assert.ok(installLink, `install link in:\n${out}`);

    const res = await page.goto(installLink);
    const h = res.headers();
    assert.match(h["content-security-policy"], /script-src 'self'; style-src 'self'/);
    assert.equal(h["x-frame-options"], "DENY");
    assert.equal(h["referrer-policy"], "no-referrer");
    assert.equal(h["x-content-type-options"], "nosniff");
    await page.getByRole("heading", { name: "Create the first superuser" }).waitFor();
    await look("install");

    // A refusal of the server shows beside its field; the form stays.
    await page.getByLabel("Email").fill(EMAIL);
    await page.getByLabel("Password", { exact: true }).fill("short");
    await page.getByLabel("Password again").fill("short");
    await page.getByRole("button", { name: /Create superuser/ }).click();
    await page.locator("#install-password-error").filter({ hasText: /\S/ }).waitFor();
    await look("install-error");

    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByLabel("Password again").fill(PASSWORD);
    await page.getByRole("button", { name: /Create superuser/ }).click();
    await page.getByRole("heading", { name: "Collections" }).waitFor();
    assert.match(page.url(), /#\/collections$/, "the used link is gone from the address");
    assert.ok(await page.getByText(EMAIL).isVisible(), "the signed-in superuser is shown");
});

step("the collections list shows a collection made through the API, with its count, after a reload", async () => {
    const pb = await apiSuperuser();
    await pb.collections.create({ name: "posts", type: "base", fields: [{ name: "title", type: "text" }],
        listRule: "", viewRule: "" });
    for (const title of ["one", "two", "three"]) await pb.collection("posts").create({ title });

    await page.reload();
    const row = page.getByRole("row", { name: /^posts / });
    // The counts arrive after the list.
    await row.getByRole("cell", { name: "3", exact: true }).waitFor();
    assert.deepEqual(await row.getByRole("cell").allInnerTexts(), ["Base", "3"]);
    assert.ok(await page.getByRole("row", { name: /^users / }).getByText("Auth").isVisible());
    await look("collections");

    await page.emulateMedia({ colorScheme: "dark" });
    await look("collections-dark");
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(bg, "rgb(17, 20, 24)", "dark mode follows the system");
    await page.emulateMedia({ colorScheme: "light" });

    // On a phone the navigation goes above the page, and nothing but
    // the table scrolls sideways.
    await page.setViewportSize({ width: 390, height: 800 });
    await look("collections-narrow");
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth), "no horizontal scroll on a narrow screen");
    await page.setViewportSize({ width: 1100, height: 700 });
});

step("pages that do not exist yet say so; the keyboard reaches the navigation", async () => {
    await page.getByRole("link", { name: "Webhooks" }).click();
    await page.getByText("This page does not exist yet.").waitFor();
    await look("webhooks-placeholder");

    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to content");
    await page.getByRole("link", { name: "Collections" }).focus();
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Collections" }).waitFor();
});

step("sign-out returns to sign-in, a reload keeps it signed out, and the used install link says so", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByText("You signed out.").waitFor();
    await page.reload();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    assert.equal(await page.evaluate(() => localStorage.length), 0);

    // The used install link says so at once, and leads to sign-in.
    await page.goto(installLink);
    await page.getByRole("heading", { name: "This install link no longer works" }).waitFor();
    await look("install-used");
    await page.getByRole("link", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();

    await signInAs(EMAIL, "not-the-password");
    await page.getByRole("alert").filter({ hasText: /\S/ }).waitFor();
    await look("signin-error");
    await signInAs(EMAIL, PASSWORD);
    await page.getByRole("heading", { name: "Collections" }).waitFor();
});

step("a revoked session returns to sign-in with a message", async () => {
    const pb = await apiSuperuser();
    await pb.send("/api/collections/_superusers/auth-revoke", { method: "POST" });
    await page.getByRole("link", { name: "Settings" }).click();
    await page.getByRole("link", { name: "Collections" }).click();
    await page.getByText(/Your session has ended/).waitFor();
    await look("session-ended");
    assert.equal(await page.evaluate(() => localStorage.length), 0, "the refused token is forgotten");
});

step("a token the server refuses at load returns to sign-in with a message", async () => {
    await signInAs(EMAIL, PASSWORD);
    await page.getByRole("heading", { name: "Collections" }).waitFor();
    await page.evaluate(() => localStorage.setItem("underhood.dashboard.token", "expired.or.forged"));
    await page.reload();
    await page.getByText(/Your session has ended/).waitFor();
});

step("with MFA on, sign-in asks for a second factor", async () => {
    const pb = await apiSuperuser();
    const enrolment = await pb.send("/api/collections/_superusers/totp/enroll", { method: "POST" });
    // Confirming needs a code of the app: compute the current one.
    await pb.send("/api/collections/_superusers/totp/confirm", { method: "POST", body: { code: totpNow(enrolment.secret) } });
    // MFA needs two methods: passwords, and one-time passwords by mail.
    await pb.collections.update("_superusers", { otp: { enabled: true }, mfa: { enabled: true } });

    await signInAs(EMAIL, PASSWORD);
    await page.getByRole("heading", { name: "Second step" }).waitFor();
    await look("second-factor");
    await page.getByLabel("Code from your authenticator app").fill(enrolment.recoveryCodes[0]);
    await page.getByRole("button", { name: "Verify" }).click();
    await page.getByRole("heading", { name: "Collections" }).waitFor();
});

// totpNow is the current RFC 6238 code (SHA-1, 30 s, 6 digits) of a
// base32 secret, as an authenticator app shows it.
function totpNow(secret) {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bits = 0, value = 0;
    const key = [];
    for (const ch of secret.toUpperCase()) {
        value = (value << 5) | alphabet.indexOf(ch);
        bits += 5;
        if (bits >= 8) {
            key.push((value >>> (bits - 8)) & 0xff);
            bits -= 8;
        }
    }
    const msg = Buffer.alloc(8);
    msg.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30_000)));
    const sum = createHmac("sha1", Buffer.from(key)).update(msg).digest();
    const at = sum[sum.length - 1] & 0xf;
    return String((sum.readUInt32BE(at) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}
