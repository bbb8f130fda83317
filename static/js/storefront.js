// Storefront filter and sort forms: submit as soon as a field changes. The forms also work
// without JavaScript through their submit buttons, which are hidden once this script runs.
document.querySelectorAll("form[data-autosubmit]").forEach((form) => {
  form.querySelectorAll(".js-autosubmit-hide").forEach((button) => button.classList.add("d-none"));
  form.addEventListener("change", () => form.requestSubmit ? form.requestSubmit() : form.submit());
});
