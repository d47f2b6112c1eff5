// install.js is the one-time form that creates the first superuser. The
// server prints its link (/_/#/install?token=…) when no superuser exists;
// the token stays in the fragment, which the browser never sends.

import { install, installLinkWorks, signIn, superusers } from "../api.js";
import { busy, field, formAlert, h, showErrors } from "../dom.js";

/**
 * installPage returns the install form. done gets {record} once the new
 * superuser is signed in, or {message} when it was created but not signed in.
 */
export function installPage({ token, done }) {
    if (!token) {
        return card("Create the first superuser",
            h("p", {}, "This page needs the one-time link that the server prints when it starts without a superuser. Open that link, or run ",
                h("code", {}, "underhood superuser upsert EMAIL PASSWORD"), "."),
            h("p", {}, h("a", { href: "#/" }, "Go to sign in")));
    }
    const form = h("form", { class: "stack", novalidate: true },
        formAlert(),
        field({ id: "install-email", name: "email", label: "Email", type: "email", autocomplete: "username" }),
        field({ id: "install-password", name: "password", label: "Password", type: "password", autocomplete: "new-password", hint: "At least 8 characters." }),
        field({ id: "install-password-confirm", name: "passwordConfirm", label: "Password again", type: "password", autocomplete: "new-password" }),
        h("button", { type: "submit", class: "button primary" }, "Create superuser and sign in"));
    form.addEventListener("submit", (e) => {
        e.preventDefault();
        const v = (name) => form.elements.namedItem(name).value;
        busy(form, async () => {
            try {
                await install(token, v("email").trim(), v("password"), v("passwordConfirm"));
            } catch (err) {
                showErrors(form, err.status === 403 ? { message: `${err.message} Sign in if a superuser exists, or restart the server for a new link.` } : err);
                return;
            }
            let record;
            try {
                record = signIn(await superusers.authWithPassword(v("email").trim(), v("password")));
            } catch (err) {
                // Created, but not signed in (MFA cannot be on yet; a rate
                // limit can): the sign-in page takes it from here.
                done({ message: `The superuser was created. ${err.message}` });
                return;
            }
            done({ record });
        });
    });
    const page = card("Create the first superuser",
        h("p", { class: "muted" }, "No superuser exists yet. This account manages collections, settings and every record; the link that opened this page works once."),
        form);
    installLinkWorks(token).then((works) => {
        if (works) return;
        page.replaceWith(usedLink());
        document.getElementById("card-title")?.focus();
    });
    return page;
}

/** usedLink is the page of a link that no longer works. */
function usedLink() {
    return card("This install link no longer works",
        h("p", {}, "It has created a superuser already, or it expired (after an hour), or another superuser was created meanwhile."),
        h("p", {}, h("a", { href: "#/" }, "Sign in"), " if you have an account. Otherwise restart the server on a data directory without a superuser for a new link, or run ",
            h("code", {}, "underhood superuser upsert EMAIL PASSWORD"), "."));
}

/** card is the centered panel of the pages shown before sign-in. */
export function card(title, ...children) {
    return h("main", { class: "center" },
        h("section", { class: "card", "aria-labelledby": "card-title" },
            h("p", { class: "brand" }, h("img", { src: "/_/icon.svg", alt: "", width: 28, height: 28 }), "Underhood"),
            h("h1", { id: "card-title", tabindex: "-1" }, title),
            ...children));
}
