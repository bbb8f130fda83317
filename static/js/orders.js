// Buying pages. No inline scripts: behaviour hangs off data- attributes.

// Submit-once forms (checkout, pay, order actions): a double click sends one request.
// The server is idempotent anyway (one-time checkout token, conditional updates); this only
// spares people a confusing second page.
document.querySelectorAll("form[data-submit-once]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (form.dataset.submitted === "1") {
      event.preventDefault();
      return;
    }
    form.dataset.submitted = "1";
    form.querySelectorAll("button[type=submit]").forEach((button) => {
      button.classList.add("disabled");
      button.setAttribute("aria-disabled", "true");
      if (button.dataset.busyText) button.textContent = button.dataset.busyText;
    });
  });
});

// Buttons that ask before doing something that cannot be undone.
document.querySelectorAll("[data-confirm]").forEach((element) => {
  element.addEventListener("click", (event) => {
    if (!window.confirm(element.dataset.confirm)) event.preventDefault();
  });
});

// Show the fields that belong to the chosen radio option: data-toggle-group="name" on the
// radios' container, data-show-for="value" on the dependent blocks.
document.querySelectorAll("[data-toggle-group]").forEach((group) => {
  const name = group.dataset.toggleGroup;
  const update = () => {
    const checked = document.querySelector(`input[name="${name}"]:checked`);
    document.querySelectorAll(`[data-show-for-group="${name}"]`).forEach((block) => {
      const show = checked && block.dataset.showFor.split(" ").includes(checked.value);
      block.classList.toggle("d-none", !show);
      block.querySelectorAll("input, select, textarea").forEach((field) => { field.disabled = !show; });
    });
  };
  document.querySelectorAll(`input[name="${name}"]`).forEach((radio) => radio.addEventListener("change", update));
  update();
});

// Selects that reload the page with their value (the voucher preview at checkout).
document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
  const form = select.form;
  form.querySelectorAll(".js-autosubmit-hide").forEach((button) => button.classList.add("d-none"));
  select.addEventListener("change", () => form.submit());
});
