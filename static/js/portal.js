// Institution portal and staff review screens. Loaded as a static file (no inline scripts).
(function () {
  "use strict";

  // Show only the form section of the chosen pricing mode (all sections show without JS).
  function syncPricing() {
    const chosen = document.querySelector('input[name="pricing_mode"]:checked');
    if (!chosen) return;
    document.querySelectorAll("[data-pricing-mode]").forEach((section) => {
      section.hidden = section.dataset.pricingMode !== chosen.value;
    });
  }
  document.addEventListener("change", (event) => {
    if (event.target.matches('input[name="pricing_mode"]')) syncPricing();
  });

  // Ask before irreversible actions: <form data-confirm="Are you sure…">.
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  // Staff decision forms: reveal the reason box of the chosen decision.
  document.addEventListener("click", (event) => {
    const toggle = event.target.closest("[data-reveal]");
    if (!toggle) return;
    const target = document.getElementById(toggle.dataset.reveal);
    if (target) {
      target.hidden = false;
      const input = target.querySelector("textarea, input");
      if (input) input.focus();
    }
  });

  // Copy an invitation code or link to the clipboard.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button || !navigator.clipboard) return;
    const source = document.getElementById(button.dataset.copy);
    if (!source) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(() => {
      const label = button.innerHTML;
      button.textContent = button.dataset.copied || "Copied";
      setTimeout(() => { button.innerHTML = label; }, 1500);
    });
  });

  document.addEventListener("DOMContentLoaded", syncPricing);
})();
