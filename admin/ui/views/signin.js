// signin.js signs a superuser in: email and password, then, when the
// superusers collection requires multi-factor authentication (the API
// answers 401 with an mfaId), a code from an authenticator app or a
// one-time password sent by email.

import { signIn, superusers } from "../api.js";
import { alertIn, busy, clearErrors, field, formAlert, h, showErrors } from "../dom.js";
import { card } from "./install.js";

/**
 * signInPage returns the sign-in form. notice is a message to show first
 * ({text, kind: "info" | "warning"}); done runs once signed in.
 */
export function signInPage({ notice, done }) {
    const form = h("form", { class: "stack", novalidate: true },
        formAlert(),
        field({ id: "signin-email", name: "identity", label: "Email", type: "email", autocomplete: "username" }),
        field({ id: "signin-password", name: "password", label: "Password", type: "password", autocomplete: "current-password" }),
        h("button", { type: "submit", class: "button primary" }, "Sign in"));
    const page = card("Sign in",
        notice ? h("p", { class: `notice ${notice.kind}`, role: "status" }, notice.text) : null,
        form,
        h("p", { class: "muted small" }, "No superuser yet? Open the one-time link the server printed at its start, or run ",
            h("code", {}, "underhood superuser upsert EMAIL PASSWORD"), "."));
    form.addEventListener("submit", (e) => {
        e.preventDefault();
        const email = form.elements.namedItem("identity").value.trim();
        const password = form.elements.namedItem("password").value;
        if (!email || !password) {
            clearErrors(form);
            alertIn(form, "Enter your email and password.");
            return;
        }
        busy(form, async () => {
            try {
                done(signIn(await superusers.authWithPassword(email, password)));
            } catch (err) {
                if (err.status === 401 && err.body?.mfaId) {
                    page.replaceWith(secondFactorPage({ email, mfaId: err.body.mfaId, done }));
                    focusTitle();
                    return;
                }
                // The API's "Failed to authenticate." does not say why;
                // a wrong email and a wrong password are one answer.
                showErrors(form, err.status === 400 ? { message: "The email or the password is wrong." } : err);
            }
        });
    });
    return page;
}

/** secondFactorPage asks for the second factor of an MFA sign-in. */
function secondFactorPage({ email, mfaId, done }) {
    let otpId = "";
    const code = field({ id: "mfa-code", name: "code", label: "Code from your authenticator app", autocomplete: "one-time-code", inputmode: "numeric",
        hint: "Or one of your recovery codes." });
    const form = h("form", { class: "stack", novalidate: true },
        formAlert(), code,
        h("button", { type: "submit", class: "button primary" }, "Verify"));
    const otpButton = h("button", { type: "button", class: "button" }, "Email me a code instead");
    otpButton.addEventListener("click", async () => {
        otpButton.disabled = true;
        try {
            ({ otpId } = await superusers.requestOTP(email));
            code.querySelector("label").textContent = `Code sent to ${email}`;
            code.querySelector(".field-hint").textContent = "It may take a minute to arrive.";
            otpButton.hidden = true;
            form.elements.namedItem("code").focus();
        } catch (err) {
            showErrors(form, err);
            otpButton.disabled = false;
        }
    });
    form.addEventListener("submit", (e) => {
        e.preventDefault();
        const value = form.elements.namedItem("code").value.trim();
        busy(form, async () => {
            try {
                const answer = otpId ? await superusers.authWithOTP(otpId, value, mfaId) : await superusers.authWithTOTP(mfaId, value);
                done(signIn(answer));
            } catch (err) {
                showErrors(form, err);
            }
        });
    });
    return card("Second step",
        h("p", { class: "muted" }, `The password of ${email} was right. This account also needs a second proof.`),
        form, otpButton,
        h("p", { class: "small after" }, h("a", { href: "#/", onclick: () => location.reload() }, "Start over with another account")));
}

function focusTitle() {
    document.getElementById("card-title")?.focus();
}
