// Real Stripe only (see templates/checkout/_card_stripe_elements.html): the card is entered
// in Stripe.js Elements and every order's PaymentIntent (capture_method=manual) is confirmed
// in the browser, 3-D Secure included. Then we go back to our server, which retrieves each
// intent from Stripe and records the result; the webhook covers a browser that never returns.
(function () {
  const mount = document.getElementById("card-element");
  if (!mount || typeof window.Stripe !== "function") return;
  const stripe = window.Stripe(mount.dataset.publishableKey);
  const card = stripe.elements().create("card");
  card.mount(mount);
  const button = document.getElementById("card-pay");
  const errors = document.getElementById("card-errors");
  const secrets = (mount.dataset.clientSecrets || "").split(" ").filter(Boolean);

  button.addEventListener("click", async () => {
    button.disabled = true;
    errors.textContent = "";
    for (const secret of secrets) {
      const result = await stripe.confirmCardPayment(secret, { payment_method: { card } });
      if (result.error) {
        errors.textContent = result.error.message;
        break;
      }
    }
    window.location.assign(mount.dataset.returnUrl);
  });
})();
