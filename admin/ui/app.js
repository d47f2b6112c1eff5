// app.js starts the dashboard: it checks the stored session with
// auth-refresh, then shows the page of the address's fragment
// (#/install?token=…, #/collections, …). Routing is by fragment so that
// the server serves one page and the install token never leaves the
// browser.

import { onSessionEnd, session, superusers } from "./api.js";
import { h } from "./dom.js";
import { installPage } from "./views/install.js";
import { shellPage } from "./views/shell.js";
import { signInPage } from "./views/signin.js";

const root = document.getElementById("app");
let superuser = null; // the signed-in superuser's record
let notice = null; // what the sign-in page says first

function route() {
    const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
    return { path: path || "/", params: new URLSearchParams(query) };
}

function show(page) {
    root.replaceChildren(page);
    // Move the focus to the new page's heading, so that keyboard and
    // screen reader users start at its top.
    const target = page.querySelector("h1[tabindex], #content") ?? page.querySelector("input");
    target?.focus({ preventScroll: true });
}

function render() {
    const { path, params } = route();
    if (path === "/install") {
        if (superuser) {
            go("#/collections");
            return;
        }
        title("Create the first superuser");
        show(installPage({ token: params.get("token") ?? "", done: installed }));
        return;
    }
    if (!superuser) {
        title("Sign in");
        show(signInPage({ notice, done: signedIn }));
        return;
    }
    if (path === "/" || path === "/signin") {
        go("#/collections");
        return;
    }
    const page = shellPage({ path, superuser, signOut });
    title(page.dataset.title);
    show(page);
}

/** go shows the page of hash, replacing the current history entry. */
function go(hash) {
    if (location.hash === hash) render();
    else location.replace(hash); // hashchange renders
}

function title(page) {
    document.title = page ? `${page} · Underhood` : "Underhood";
}

function signedIn(record) {
    superuser = record;
    notice = null;
    const { path } = route();
    go(path === "/" || path === "/signin" ? "#/collections" : location.hash);
}

function installed({ record, message }) {
    if (record) {
        superuser = record;
        notice = null;
        // go replaces the history entry: the used link is gone from it.
        go("#/collections");
        return;
    }
    notice = { kind: "info", text: message };
    go("#/");
}

function signOut() {
    session.clear();
    superuser = null;
    notice = { kind: "info", text: "You signed out." };
    go("#/");
}

onSessionEnd(() => {
    superuser = null;
    notice = { kind: "warning", text: "Your session has ended: it expired or was revoked. Sign in again." };
    render();
});

async function boot() {
    if (!session.token) {
        render();
        return;
    }
    root.replaceChildren(h("p", { class: "page-message muted", role: "status" }, "Loading…"));
    try {
        const answer = await superusers.authRefresh();
        session.save(answer.token);
        superuser = answer.record;
        render();
    } catch (err) {
        if (err.status === 401) return; // onSessionEnd shows the sign-in page
        if (err.status === 403 || err.status === 404) {
            // Not a superuser's token (another collection's), or gone.
            session.clear();
            notice = { kind: "warning", text: "Your session has ended. Sign in again." };
            render();
            return;
        }
        const retry = h("button", { type: "button", class: "button", onclick: boot }, "Try again");
        root.replaceChildren(h("main", { class: "center" },
            h("section", { class: "card" },
                h("h1", {}, "The dashboard cannot start"),
                h("p", { role: "alert" }, err.message),
                retry)));
    }
}

window.addEventListener("hashchange", render);
boot();
