// shell.js is the frame of every page after sign-in: the navigation, who
// is signed in, sign-out, and the page of the current route.

import { h } from "../dom.js";
import { collectionsPage } from "./collections.js";

/** sections are the dashboard's pages, in the order of the navigation. */
const sections = [
    { path: "/collections", title: "Collections", page: collectionsPage },
    { path: "/settings", title: "Settings", plan: "Application name and URL, mail (SMTP), file storage (S3), rate limits, trusted proxy, token secrets and superusers." },
    { path: "/webhooks", title: "Webhooks", plan: "Webhooks with their signing secrets, and the delivery log with replay." },
    { path: "/system", title: "System", plan: "Version, database engine and size, the nodes seen, and the health of each dependency." },
];

/** shellPage returns the signed-in frame showing the section of path; its data-title names the page. */
export function shellPage({ path, superuser, signOut }) {
    const current = sections.find((s) => path === s.path || path.startsWith(`${s.path}/`));
    const main = h("main", { class: "content", id: "content", tabindex: "-1" });
    const nav = h("nav", { class: "nav", "aria-label": "Sections" },
        h("ul", {}, sections.map((s) =>
            h("li", {}, h("a", { href: `#${s.path}`, "aria-current": s === current ? "page" : null }, s.title)))));
    const signOutButton = h("button", { type: "button", class: "button quiet", onclick: signOut }, "Sign out");
    const shell = h("div", { class: "shell", "data-title": current?.title ?? "Page not found" },
        h("a", { class: "skip", href: "#content", onclick: (e) => { e.preventDefault(); main.focus(); } }, "Skip to content"),
        h("header", { class: "topbar" },
            h("p", { class: "brand" }, h("img", { src: "/_/icon.svg", alt: "", width: 24, height: 24 }), "Underhood"),
            h("div", { class: "who" }, h("span", { class: "muted", title: "Signed in as" }, superuser?.email ?? ""), signOutButton)),
        nav, main);
    if (!current) {
        main.append(h("h1", {}, "Page not found"),
            h("p", {}, "The dashboard has no page at this address. ", h("a", { href: "#/collections" }, "Go to the collections"), "."));
    } else if (current.page) {
        main.append(current.page());
    } else {
        main.append(h("h1", {}, current.title),
            h("div", { class: "empty" },
                h("p", {}, h("strong", {}, "This page does not exist yet.")),
                h("p", { class: "muted" }, `It will show: ${current.plan}`),
                h("p", { class: "muted" }, "Until then, the same is available through the REST API under /api/.")));
    }
    return shell;
}
