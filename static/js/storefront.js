// Storefront filter and sort forms: submit as soon as a field changes. The forms also work
// without JavaScript through their submit buttons, which are hidden once this script runs.
function submitClean(form) {
  // Leave empty choices ("Any region") out of the URL so links stay short and shareable.
  form.querySelectorAll("select, input").forEach((field) => {
    if (field.name && field.value === "" && !field.disabled) field.disabled = true;
  });
  form.submit();
}

document.querySelectorAll("form[data-autosubmit]").forEach((form) => {
  form.querySelectorAll(".js-autosubmit-hide").forEach((button) => button.classList.add("d-none"));
  form.addEventListener("change", () => submitClean(form));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitClean(form);
  });
});

// Coming back through the browser history must not leave fields disabled.
window.addEventListener("pageshow", () => {
  document.querySelectorAll("form[data-autosubmit] [disabled]").forEach((field) => {
    field.disabled = false;
  });
});
